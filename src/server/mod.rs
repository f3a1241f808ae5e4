//! The reference server: an MTA assembled from the workspace's crates, as Postfix is from its
//! daemons. `examples/server.rs` is its command line.
//!
//! ```text
//! SMTP (port-25 role), submission (STARTTLS, AUTH), submissions (implicit TLS)   smtpd
//!   -> policy: mynetworks, AUTH, reject_unauth_destination, valid recipients    [smtpd.rs]
//!   -> cleanup: header fixes, canonical maps, virtual alias expansion           [smtpd.rs]
//!   -> queue::enqueue, durable before "250 2.0.0 Ok: queued as ID"
//!   -> queue manager: Queue::take by destination (transport:nexthop from resolve) [deliver.rs]
//!   -> local (aliases, Maildir or mbox), virtual (Maildir), lmtp, smtp, pipe      [deliver.rs]
//!   -> Queue::complete per recipient: delivered / deferred (back-off) / bounced (DSN)
//! sendmail (examples/sendmail.rs) -> maildrop/ -> pickup -> cleanup -> queue      [pickup.rs]
//!
//! LMTP (Dovecot's lmtp role) -> passwd-file users' Maildirs, a reply per recipient [lmtpd.rs]
//! IMAP (143 role: STARTTLS; 993 role: implicit TLS) <- the same Maildirs          [imap/]
//! ```
//!
//! The mailbox roles share a [`imap::Hub`] with the delivery agents: a message stored by
//! LMTP or by the local and virtual agents wakes the IMAP sessions idling on that Maildir.
//!
//! The smtp agent looks up MX records for a next hop without brackets ([`dns`]). The failed
//! AUTH that reaches `smtpd_auth_failure_limit` is answered `421 4.7.0` and the connection
//! closed.
//!
//! A client outside `mynetworks` may hold `smtpd_client_connection_count_limit` connections
//! per listener; one more gets `421 4.7.0` (the total per listener is `default_process_limit`).
//!
//! The local agent reads each user's `~/.forward` after alias expansion (items as in an
//! `:include:` file), adds `Delivered-To:` to what it forwards and bounces a message that
//! already carries its recipient's `Delivered-To:` (a forwarding loop, 5.4.6), as local(8).
//!
//! What it does not do yet: queue administration while the server runs; `.forward+ext`
//! files and the ownership checks local(8) makes on `.forward` (every home belongs to the
//! server's one user here).

pub mod config;
pub mod deliver;
pub mod dns;
pub mod imap;
pub mod lmtpd;
pub mod passwd;
pub mod pickup;
pub mod smtpd;
pub mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mailroom_queue::{Backoff, Queue};
use mailroom_rewrite::params::DomainList;
use mailroom_rewrite::table::{HashTable, Table};
use mailroom_rewrite::{ForwardPath, Maps, Params};
use tokio::sync::Notify;

pub use config::{Config, ConfigError, DEFAULT_CONFIG};
pub use passwd::Passwd;

/// Everything the roles share: configuration, rewriting parameters, users, the queue.
pub struct Shared {
    /// The configuration (paths made absolute).
    pub config: Config,
    /// The rewriting and resolution parameters built from it.
    pub params: Arc<Params>,
    /// The users.
    pub passwd: Passwd,
    /// `mynetworks`, parsed.
    pub networks: Vec<config::Network>,
    /// The queue.
    pub queue: Queue,
    /// Wakes the queue manager when a message was queued.
    pub wake: Notify,
    /// The smtp agent's name service (MX and address lookups).
    pub resolver: Arc<dyn dns::Resolve>,
    /// The smtp agent's idle connections by next hop (Postfix's connection cache).
    pub smtp_cache: deliver::ConnectionCache,
    /// Change notifications for the IMAP sessions (deliveries, other sessions' changes).
    pub hub: Arc<imap::Hub>,
}

/// The IMAP server's users: the passwd-file's, each with the Maildir `home_mailbox` names in
/// its home.
struct PasswdUsers(Arc<Shared>);

impl imap::Authenticator for PasswdUsers {
    fn verify(&self, user: &str, password: &str) -> Option<imap::MailUser> {
        let shared = &self.0;
        if !shared.passwd.verify(user, password) {
            return None;
        }
        let found = shared.passwd.get(user)?;
        if found.home.as_os_str().is_empty() {
            tracing::warn!("imap: user {} has no home directory", found.name);
            return None;
        }
        Some(imap::MailUser {
            name: found.name.clone(),
            maildir: found.home.join(&shared.config.home_mailbox),
        })
    }
}

/// The IMAP server's settings from the configuration.
fn imap_config(shared: &Arc<Shared>, tls: &Arc<rustls::ServerConfig>) -> Arc<imap::ImapConfig> {
    let c = &shared.config;
    let mut config = imap::ImapConfig::new(
        Arc::new(PasswdUsers(Arc::clone(shared))),
        Some(Arc::clone(tls)),
    );
    config.disable_plaintext_auth = c.disable_plaintext_auth;
    config.auth_failure_delay = Duration::from_secs(c.auth_failure_delay);
    config.auth_failure_limit = c.imap_auth_failure_limit;
    config.hub = Arc::clone(&shared.hub);
    config.session.greeting = format!("{} IMAP ready", c.myhostname);
    // An APPEND may be as large as a message the MTA accepts.
    let limits = &mut config.session.limits;
    limits.max_literal = limits.max_literal.max(c.message_size_limit);
    limits.max_frame = limits.max_frame.max(
        usize::try_from(c.message_size_limit)
            .unwrap_or(usize::MAX)
            .saturating_add(64 * 1024),
    );
    Arc::new(config)
}

/// Lookups that always fail temporarily: the server runs (and defers remote mail) when the
/// system's resolver configuration cannot be read.
struct NoDns(String);

impl dns::Resolve for NoDns {
    fn mx<'a>(&'a self, _: &'a str) -> dns::Lookup<'a, Vec<(u16, String)>> {
        let e = dns::DnsError::Temporary(self.0.clone());
        Box::pin(std::future::ready(Err(e)))
    }

    fn addresses<'a>(&'a self, _: &'a str) -> dns::Lookup<'a, Vec<std::net::IpAddr>> {
        let e = dns::DnsError::Temporary(self.0.clone());
        Box::pin(std::future::ready(Err(e)))
    }
}

/// What [`prepare_data`] found or made on first start.
#[derive(Debug, Clone)]
pub struct FirstStart {
    /// The demo user's login (`demo@localhost`).
    pub login: String,
    /// Its password, generated now.
    pub password: String,
}

/// An error starting the server, as text naming what failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn err(what: impl std::fmt::Display) -> StartError {
    StartError(what.to_string())
}

/// Rewrites relative table paths (`hash:aliases`) against the data directory.
fn table_spec(config: &Config, spec: &str) -> String {
    let spec = config.expand(spec);
    match spec.split_once(':') {
        Some((kind, path))
            if !path.starts_with('/') && !path.starts_with('{') && kind != "inline" =>
        {
            format!("{kind}:{}", config.data_directory.join(path).display())
        }
        _ => spec,
    }
}

fn open_maps(config: &Config, specs: &[String], aliases: bool) -> Result<Maps, StartError> {
    let mut maps = Maps::new();
    for spec in specs {
        let spec = table_spec(config, spec);
        maps.push(Table::open(&spec, aliases).map_err(err)?);
    }
    Ok(maps)
}

/// The rewriting parameters for `config` and the users of `passwd`.
///
/// # Errors
///
/// A table that cannot be opened (file and line named).
pub fn build_params(config: &Config, passwd: &Passwd) -> Result<Params, StartError> {
    let mut p = Params::new(&config.myhostname);
    p.mydomain = config.mydomain();
    if !config.myorigin.is_empty() {
        p.myorigin = config.expand(&config.myorigin);
    }
    let dests: Vec<String> = config
        .mydestination
        .iter()
        .map(|d| config.expand(d))
        .collect();
    p.mydestination = DomainList::of(dests.iter().map(String::as_str));
    p.relay_domains = DomainList::parse(&config.relay_domains.join(" "), true).map_err(err)?;
    p.virtual_mailbox_domains =
        DomainList::parse(&config.virtual_mailbox_domains.join(" "), false).map_err(err)?;
    p.relayhost = config.relayhost.clone();
    p.recipient_delimiter = config.recipient_delimiter.clone();
    p.transport_maps = open_maps(config, &config.transport_maps, false)?;
    p.virtual_alias_maps = open_maps(config, &config.virtual_alias_maps, false)?;
    p.canonical_maps = open_maps(config, &config.canonical_maps, false)?;
    p.relocated_maps = open_maps(config, &config.relocated_maps, false)?;
    p.alias_maps = open_maps(config, &config.alias_maps, true)?;
    p.virtual_mailbox_maps = open_maps(config, &config.virtual_mailbox_maps, false)?;
    // Postfix's default local_recipient_maps: the users ($passwd) and $alias_maps.
    let users: Vec<String> = passwd.local_parts().map(str::to_string).collect();
    let mut local = Maps::new().with(Table::Hash(HashTable::from_pairs(
        users.iter().map(|u| (u.as_str(), "ok")),
    )));
    for t in p.alias_maps.tables() {
        local.push(Arc::clone(t));
    }
    p.local_recipient_maps = Some(local);
    Ok(p)
}

/// Prepares the data directory: creates it, the passwd-file with the demo user (returned when
/// made now), the aliases file and the home of the demo user.
///
/// # Errors
///
/// When a file or directory cannot be made.
pub fn prepare_data(config: &Config) -> Result<Option<FirstStart>, StartError> {
    let mut config = config.clone();
    absolutize(&mut config)?;
    let config = &config;
    let data = &config.data_directory;
    std::fs::create_dir_all(data).map_err(|e| err(format!("{}: {e}", data.display())))?;
    let passwd_path = config.data_path(&config.passwd_file);
    let mut first = None;
    if !passwd_path.exists() && !config.demo_user.is_empty() {
        let password = passwd::random_password().map_err(|e| err(format!("/dev/urandom: {e}")))?;
        let login = format!("{}@{}", config.demo_user, config.myhostname);
        let hash = passwd::hash_argon2id(&password).map_err(err)?;
        let home = data.join("home").join(&config.demo_user);
        std::fs::create_dir_all(&home).map_err(|e| err(format!("{}: {e}", home.display())))?;
        let line = format!("{login}:{hash}::::{}::\n", home.display());
        write_durably(&passwd_path, line.as_bytes())?;
        first = Some(FirstStart { login, password });
    }
    // The aliases file the default alias_maps names: postmaster goes to the demo user.
    let aliases = data.join("aliases");
    if !aliases.exists() {
        let text = if config.demo_user.is_empty() {
            "# aliases(5)\n".to_string()
        } else {
            format!(
                "# aliases(5): name: targets\npostmaster: {}\nMAILER-DAEMON: postmaster\n",
                config.demo_user
            )
        };
        write_durably(&aliases, text.as_bytes())?;
    }
    Ok(first)
}

/// Makes `data_directory` absolute: the homes written in the passwd-file must not depend on
/// the directory the server was started from.
fn absolutize(config: &mut Config) -> Result<(), StartError> {
    if config.data_directory.is_relative() {
        let cwd = std::env::current_dir().map_err(err)?;
        let rel = config.data_directory.clone();
        config.data_directory = cwd.join(rel.strip_prefix(".").unwrap_or(&rel));
    }
    Ok(())
}

/// Writes a new file with fsyncs (file, then directory).
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StartError> {
    let fail = |e: std::io::Error| err(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

/// Opens the queue and everything the roles share.
///
/// # Errors
///
/// A table, the passwd-file or the queue cannot be opened.
pub fn open(config: Config) -> Result<Arc<Shared>, StartError> {
    let resolver: Arc<dyn dns::Resolve> = match dns::Hickory::from_system() {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::warn!("{e}; mail to remote domains is deferred");
            Arc::new(NoDns(e))
        }
    };
    open_with_resolver(config, resolver)
}

/// As [`open`], with the smtp agent's name service given (tests use a
/// [`dns::StaticResolver`]).
///
/// # Errors
///
/// As [`open`].
pub fn open_with_resolver(
    mut config: Config,
    resolver: Arc<dyn dns::Resolve>,
) -> Result<Arc<Shared>, StartError> {
    absolutize(&mut config)?;
    let passwd_path = config.data_path(&config.passwd_file);
    let passwd = if passwd_path.exists() {
        Passwd::load(&passwd_path).map_err(err)?
    } else {
        Passwd::default()
    };
    let params = Arc::new(build_params(&config, &passwd)?);
    let qconfig = queue_config(&config, Arc::clone(&params));
    let queue_dir = config.data_directory.join("queue");
    let queue = Queue::open(mailroom_queue::RealFs, &queue_dir, qconfig).map_err(|e| {
        err(format!(
            "cannot open the queue {}: {e} (is another server running on it?)",
            queue_dir.display()
        ))
    })?;
    let networks = config.networks();
    Ok(Arc::new(Shared {
        config,
        params,
        passwd,
        networks,
        queue,
        wake: Notify::new(),
        resolver,
        smtp_cache: deliver::ConnectionCache::default(),
        hub: Arc::new(imap::Hub::new()),
    }))
}

/// The queue directory and configuration for `config`, for administration commands that open
/// the queue of a stopped server.
///
/// # Errors
///
/// As [`open`].
pub fn open_queue_config(config: &Config) -> Result<(PathBuf, mailroom_queue::Config), StartError> {
    let mut config = config.clone();
    absolutize(&mut config)?;
    let passwd_path = config.data_path(&config.passwd_file);
    let passwd = if passwd_path.exists() {
        Passwd::load(&passwd_path).map_err(err)?
    } else {
        Passwd::default()
    };
    let params = Arc::new(build_params(&config, &passwd)?);
    Ok((
        config.data_directory.join("queue"),
        queue_config(&config, params),
    ))
}

fn queue_config(config: &Config, params: Arc<Params>) -> mailroom_queue::Config {
    let route_params = params;
    let router = Arc::new(move |path: &ForwardPath| deliver::route(&route_params, path));
    mailroom_queue::Config {
        myhostname: config.myhostname.clone(),
        router,
        backoff: Backoff {
            minimal_backoff_time: Duration::from_secs(config.minimal_backoff_time),
            maximal_backoff_time: Duration::from_secs(config.maximal_backoff_time),
            maximal_queue_lifetime: Duration::from_secs(config.maximal_queue_lifetime),
            bounce_queue_lifetime: Duration::from_secs(config.bounce_queue_lifetime),
            ..Backoff::default()
        },
        logger: Arc::new(|line: &str| tracing::warn!("queue: {line}")),
        ..mailroom_queue::Config::default()
    }
}

/// The addresses the listeners are bound to.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    /// The port-25 role.
    pub smtp: Option<SocketAddr>,
    /// Submission (STARTTLS, AUTH).
    pub submission: Option<SocketAddr>,
    /// Submission over implicit TLS.
    pub submissions: Option<SocketAddr>,
    /// IMAP with STARTTLS (the port-143 role).
    pub imap: Option<SocketAddr>,
    /// IMAP over implicit TLS (the port-993 role).
    pub imaps: Option<SocketAddr>,
    /// LMTP delivery (`inet:host:port` or `unix:/path`).
    pub lmtp: Option<mailroom_lmtp::Address>,
}

async fn bind(addr: &str) -> Result<Option<tokio::net::TcpListener>, StartError> {
    if addr.is_empty() {
        return Ok(None);
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|e| err(format!("cannot listen on {addr}: {e}")))
}

/// A started server: call [`Running::run`] to serve until `shutdown`.
pub struct Running {
    shared: Arc<Shared>,
    tls: Arc<rustls::ServerConfig>,
    listeners: [Option<tokio::net::TcpListener>; 3],
    imap: [Option<tokio::net::TcpListener>; 2],
    lmtp: Option<mailroom_lmtp::Listener>,
    /// Where the listeners are.
    pub bound: Bound,
}

/// Binds the LMTP listener; a Unix socket left by an earlier run is replaced.
async fn bind_lmtp(
    address: Option<mailroom_lmtp::Address>,
) -> Result<
    (
        Option<mailroom_lmtp::Listener>,
        Option<mailroom_lmtp::Address>,
    ),
    StartError,
> {
    let Some(address) = address else {
        return Ok((None, None));
    };
    if let mailroom_lmtp::Address::Unix(path) = &address {
        match std::fs::symlink_metadata(path) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
                let _ = std::fs::remove_file(path);
            }
            _ => {}
        }
    }
    let listener = mailroom_lmtp::Listener::bind(&address)
        .await
        .map_err(|e| err(format!("cannot listen on {address}: {e}")))?;
    let bound = match &listener {
        mailroom_lmtp::Listener::Tcp(l) => l
            .local_addr()
            .map(|a| mailroom_lmtp::Address::Tcp(a.to_string()))
            .unwrap_or(address),
        mailroom_lmtp::Listener::Unix(_) => address,
    };
    Ok((Some(listener), Some(bound)))
}

/// Binds the listeners and loads TLS.
///
/// # Errors
///
/// A listener cannot be bound, the certificate cannot be read or made.
pub async fn start(shared: Arc<Shared>) -> Result<Running, StartError> {
    let tls = tls::server_config(&shared.config).map_err(err)?;
    let c = &shared.config;
    let smtp = bind(&c.smtpd_listen).await?;
    let submission = bind(&c.submission_listen).await?;
    let submissions = bind(&c.submissions_listen).await?;
    let imap = bind(&c.imap_listen).await?;
    let imaps = bind(&c.imaps_listen).await?;
    let (lmtp, lmtp_bound) = bind_lmtp(c.lmtp_address().map_err(err)?).await?;
    let addr = |l: &Option<tokio::net::TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    let bound = Bound {
        smtp: addr(&smtp),
        submission: addr(&submission),
        submissions: addr(&submissions),
        imap: addr(&imap),
        imaps: addr(&imaps),
        lmtp: lmtp_bound,
    };
    Ok(Running {
        shared,
        tls,
        listeners: [smtp, submission, submissions],
        imap: [imap, imaps],
        lmtp,
        bound,
    })
}

impl Running {
    /// Serves until `shutdown` completes: then stops accepting, lets sessions finish their
    /// transaction (up to 30 s), lets deliveries in flight finish (up to 30 s; the rest are
    /// retried at the next start) and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let [smtp, submission, submissions] = self.listeners;
        for (listener, role) in [
            (smtp, smtpd::Role::Smtp),
            (submission, smtpd::Role::Submission),
            (submissions, smtpd::Role::Submissions),
        ] {
            let Some(listener) = listener else { continue };
            let shared = Arc::clone(&self.shared);
            let tls = Arc::clone(&self.tls);
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let signal = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = smtpd::serve(shared, role, tls, listener, signal).await {
                    tracing::error!("{role:?} listener: {e}");
                }
            });
        }
        let imap_config = imap_config(&self.shared, &self.tls);
        for (listener, implicit_tls) in self.imap.into_iter().zip([false, true]) {
            let Some(listener) = listener else { continue };
            let config = Arc::clone(&imap_config);
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let signal = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let result =
                    imap::serve_with_shutdown(listener, config, implicit_tls, signal).await;
                if let Err(e) = result {
                    let role = if implicit_tls { "imaps" } else { "imap" };
                    tracing::error!("{role} listener: {e}");
                }
            });
        }
        if let Some(listener) = self.lmtp {
            let shared = Arc::clone(&self.shared);
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let signal = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let c = &shared.config;
                let mda = lmtpd::MaildirMda::new(lmtpd::passwd_resolver(Arc::clone(&shared)))
                    .with_hub(Arc::clone(&shared.hub));
                let size = Some(c.message_size_limit);
                if let Err(e) = lmtpd::serve(mda, &c.myhostname, size, listener, signal).await {
                    tracing::error!("lmtp listener: {e}");
                }
            });
        }
        let pickup = tokio::spawn(pickup::pickup(Arc::clone(&self.shared), stop_rx.clone()));
        let qmgr = tokio::spawn(deliver::queue_manager(
            Arc::clone(&self.shared),
            stop_rx.clone(),
        ));
        shutdown.await;
        tracing::info!("stopping: no new connections; finishing what is in flight");
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        let _ = pickup.await;
        let _ = qmgr.await;
        tracing::info!("stopped");
    }
}

/// The data directory's path for a relative `path` (as the banner shows it).
pub fn show_path(shared: &Shared, path: &Path) -> PathBuf {
    shared.config.data_path(path)
}
