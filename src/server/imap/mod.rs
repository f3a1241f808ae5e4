//! The IMAP server over Maildir (the role of Dovecot's imap): imap-proto's sans-IO session,
//! answered by a mailbox backend over mailroom-maildir, driven by a tokio adapter with
//! STARTTLS (port-143 role) or implicit TLS (port-993 role).
//!
//! ```text
//! TCP / TLS  <->  serve_connection (this file: bytes, TLS, timers, IDLE wake-ups)
//!                   <-> imap_proto::session::ServerSession (syntax, states, SASL, IDLE)
//!                   <-> Backend (backend.rs: commands against the user's Maildir++ tree)
//!                         -> message.rs (ENVELOPE, BODYSTRUCTURE, sections: mail-parser)
//! ```
//!
//! The user database is behind [`Authenticator`], so the reference server's passwd-file (or
//! anything else) plugs in; [`StaticUsers`] is a small one for tests and embedding.
//!
//! Sessions on one mailbox learn of each other's changes through a [`Hub`] (a change counter
//! per Maildir) and of changes by other processes (LMTP, Dovecot, mutt) by polling the
//! Maildir while idling.
//!
//! Storage facts: UIDs, UIDVALIDITY and UIDNEXT are Dovecot's `dovecot-uidlist`, keywords its
//! `dovecot-keywords`, subscriptions a `subscriptions` file (one name per line) in the root
//! Maildir; INBOX is the root, other mailboxes Maildir++ folders with `.` as the hierarchy
//! delimiter; INTERNALDATE is the file's modification time. A flag change is a rename
//! ([`mailroom_maildir::Maildir::set_flags_if_unchanged`]), retried on a fresh listing when
//! another session renamed the file first, so concurrent STOREs lose nothing.
//!
//! Threads and memory: the backend does its file I/O (listings, reads, fsync) in tokio's
//! blocking pool, lent there for each command, IDLE's polls included, so a slow disk never
//! stalls the runtime's workers. A FETCH is answered in batches of about 1 MiB of responses (or
//! 1,000 messages): each batch is written to the connection, waiting for the client to take
//! it, before the next is read from the Maildir ([`Backend::start`], [`Backend::resume`]), so
//! `FETCH 1:* BODY[]` of a 10 GB mailbox holds one batch, not 10 GB. One message's section is
//! one literal, which the encoder writes from memory: a batch can exceed the budget by one
//! message, read whole, at most 256 MiB (more than APPEND, 64 MiB by default, or LMTP accept;
//! a bigger file put in the Maildir by other means is served from its first 256 MiB). What
//! stays in proportion to the mailbox is the view (a few dozen octets per message) and the
//! untagged responses of the other commands (STORE's FLAGS, SEARCH's numbers).
//!
//! Not done yet: CONDSTORE/QRESYNC, COMPRESS, `\Recent` (always none, as IMAP4rev2 allows),
//! RENAME of INBOX, quotas; the adapter does not read while it writes, so a client that sends
//! a long pipeline without reading the responses can stall both sides.

mod backend;
mod message;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailroom_imap_proto::session::{Event, ServerConfig, ServerSession, State};
use mailroom_imap_proto::types::Envelope;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use backend::{Backend, Step};

/// A logged-in user: a name and the root of its Maildir++ tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailUser {
    /// The login name.
    pub name: String,
    /// The Maildir (INBOX; folders are `.Name` inside it). Created at first login if missing.
    pub maildir: PathBuf,
}

/// Checks credentials. The reference server implements it over its passwd-file.
pub trait Authenticator: Send + Sync {
    /// The user when `password` is right for `user`, else `None`.
    fn verify(&self, user: &str, password: &str) -> Option<MailUser>;
}

/// Users with plain-text passwords in memory: for tests and small embeddings.
#[derive(Debug, Default, Clone)]
pub struct StaticUsers {
    users: HashMap<String, (String, PathBuf)>,
}

impl StaticUsers {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a user whose Maildir is `maildir`.
    pub fn with_user(mut self, name: &str, password: &str, maildir: impl Into<PathBuf>) -> Self {
        self.users
            .insert(name.to_owned(), (password.to_owned(), maildir.into()));
        self
    }
}

impl Authenticator for StaticUsers {
    fn verify(&self, user: &str, password: &str) -> Option<MailUser> {
        let (stored, maildir) = self.users.get(user)?;
        // Compare every byte whatever the first difference, so timing says nothing.
        let same = stored.len() == password.len()
            && stored
                .bytes()
                .zip(password.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then(|| MailUser {
            name: user.to_owned(),
            maildir: maildir.clone(),
        })
    }
}

/// Change notifications between sessions: one counter per Maildir path, bumped by the session
/// that changed it (flags, expunge, new message); sessions idling on it wake and resynchronise.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<PathBuf, watch::Sender<u64>>>,
    /// ENVELOPEs by Maildir and message key (Dovecot keeps them in `dovecot.index.cache`):
    /// a Maildir message never changes once delivered (flags live in its name), so an entry
    /// never goes stale. Bounded: emptied when full.
    envelopes: Mutex<HashMap<(PathBuf, String), Arc<Envelope>>>,
}

/// Most ENVELOPEs kept in the [`Hub`]'s cache (about 1 KiB each).
const ENVELOPE_CACHE: usize = 200_000;

impl Hub {
    /// A new hub.
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(&self, path: &Path) -> watch::Sender<u64> {
        let mut map = match self.channels.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        // One channel per directory however the path is spelled (`Maildir/` or `Maildir`).
        let key: PathBuf = path.components().collect();
        map.entry(key)
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    /// Tells the sessions watching `path` that it changed.
    pub fn changed(&self, path: &Path) {
        self.sender(path).send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn envelope(&self, path: &Path, key: &str) -> Option<Arc<Envelope>> {
        let map = match self.envelopes.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(&(path.to_owned(), key.to_owned())).cloned()
    }

    pub(crate) fn keep_envelope(&self, path: &Path, key: &str, envelope: Arc<Envelope>) {
        let mut map = match self.envelopes.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= ENVELOPE_CACHE {
            map.clear();
        }
        map.insert((path.to_owned(), key.to_owned()), envelope);
    }

    /// A receiver woken at each change of `path`.
    pub fn watch(&self, path: &Path) -> watch::Receiver<u64> {
        self.sender(path).subscribe()
    }
}

/// Settings of the IMAP server.
#[derive(Clone)]
pub struct ImapConfig {
    /// The users.
    pub auth: Arc<dyn Authenticator>,
    /// TLS for STARTTLS and implicit TLS; `None`: no TLS offered.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Dovecot's `disable_plaintext_auth`: no LOGIN or AUTHENTICATE PLAIN before TLS. Ignored
    /// (treated as `false`) when there is no TLS at all.
    pub disable_plaintext_auth: bool,
    /// Delay before answering a failed login (Dovecot's `auth_failure_delay`, 2 s), times the
    /// number of failures so far on the connection: each failure waits longer than the last.
    pub auth_failure_delay: Duration,
    /// Failed logins allowed per connection: the one that reaches it is answered NO, then
    /// `* BYE`, and the connection closed (0: no limit).
    pub auth_failure_limit: u32,
    /// How often an idling session looks at the Maildir for changes by other processes.
    pub idle_poll: Duration,
    /// Sessions share change notifications through this.
    pub hub: Arc<Hub>,
    /// The session settings (limits, capabilities).
    pub session: ServerConfig,
    /// About how many octets of FETCH responses a session holds at once (1 MiB).
    pub(crate) fetch_batch_bytes: usize,
}

impl std::fmt::Debug for ImapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConfig")
            .field("tls", &self.tls.is_some())
            .field("disable_plaintext_auth", &self.disable_plaintext_auth)
            .field("auth_failure_delay", &self.auth_failure_delay)
            .field("auth_failure_limit", &self.auth_failure_limit)
            .field("idle_poll", &self.idle_poll)
            .finish_non_exhaustive()
    }
}

impl ImapConfig {
    /// Defaults as Dovecot's: plaintext authentication only over TLS, 2 s failure delay; the
    /// Maildir polled every second while idling.
    pub fn new(auth: Arc<dyn Authenticator>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mut session = ServerConfig {
            greeting: "mailroom IMAP ready".into(),
            ..ServerConfig::default()
        };
        session.starttls = tls.is_some();
        Self {
            auth,
            tls,
            disable_plaintext_auth: true,
            auth_failure_delay: Duration::from_secs(2),
            auth_failure_limit: 3,
            idle_poll: Duration::from_secs(1),
            hub: Arc::new(Hub::new()),
            session,
            fetch_batch_bytes: backend::FETCH_BATCH_BYTES,
        }
    }

    fn session_config(&self) -> ServerConfig {
        let mut c = self.session.clone();
        c.starttls = self.tls.is_some();
        c.login_requires_tls = self.disable_plaintext_auth && self.tls.is_some();
        c
    }
}

/// Accepts connections on `listener` until the task is dropped; `implicit_tls` for the
/// port-993 role.
///
/// # Errors
///
/// When `accept` fails for good, or implicit TLS is asked without a TLS configuration.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ImapConfig>,
    implicit_tls: bool,
) -> std::io::Result<()> {
    serve_with_shutdown(listener, config, implicit_tls, std::future::pending()).await
}

/// How long sessions get, after shutdown, to finish the command they are running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// As [`serve`], until `shutdown` completes: then no new connection is accepted, and each
/// session finishes the command it is executing (an APPEND received whole is stored and
/// answered), says `* BYE Server shutting down.` and closes; a command still arriving (an
/// APPEND literal half sent) is dropped unanswered, so nothing of it is stored. Sessions still
/// busy after 10 s are dropped.
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: Arc<ImapConfig>,
    implicit_tls: bool,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if implicit_tls && config.tls.is_none() {
        return Err(std::io::Error::other(
            "implicit TLS needs a TLS configuration",
        ));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => break Err(e),
                };
                let config = config.clone();
                let stop = stop_rx.clone();
                sessions.spawn(async move {
                    let _ = serve_connection_until(stream, config, implicit_tls, stop).await;
                });
            }
            // Reap finished sessions so the set does not grow with the connections served.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = &mut shutdown => break Ok(()),
        }
    };
    let _ = stop_tx.send(true);
    let drained = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        sessions.shutdown().await;
    }
    result
}

/// Serves one connection to its end.
///
/// # Errors
///
/// I/O errors of the connection or the TLS handshake.
pub async fn serve_connection(
    stream: TcpStream,
    config: Arc<ImapConfig>,
    implicit_tls: bool,
) -> std::io::Result<()> {
    // A sender kept alive for the whole connection: never a shutdown.
    let (_keep, stop) = watch::channel(false);
    serve_connection_until(stream, config, implicit_tls, stop).await
}

async fn serve_connection_until(
    stream: TcpStream,
    config: Arc<ImapConfig>,
    implicit_tls: bool,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let now = Instant::now();
    if implicit_tls {
        let Some(tls) = config.tls.clone() else {
            return Err(std::io::Error::other("no TLS configuration"));
        };
        let stream = tokio_rustls::TlsAcceptor::from(tls).accept(stream).await?;
        let session = ServerSession::new_tls(config.session_config(), now);
        let mut conn = Connection::new(session, config, stop);
        conn.run(stream).await.map(|_| ())
    } else {
        let session = ServerSession::new(config.session_config(), now);
        let mut conn = Connection::new(session, config.clone(), stop);
        if let Some(plain) = conn.run(stream).await? {
            // STARTTLS: the session already dropped what the client sent after it.
            let Some(tls) = config.tls.clone() else {
                return Ok(());
            };
            let stream = tokio_rustls::TlsAcceptor::from(tls).accept(plain).await?;
            conn.run(stream).await?;
        }
        Ok(())
    }
}

struct Connection {
    session: ServerSession,
    /// Lent to a blocking thread for each command (its file I/O must not stall the runtime's
    /// workers); `None` only while lent.
    backend: Option<Backend>,
    config: Arc<ImapConfig>,
    idling: bool,
    /// Failed logins so far.
    auth_failures: u32,
    /// Becomes `true` when the server shuts down.
    stop: watch::Receiver<bool>,
}

impl Connection {
    fn new(session: ServerSession, config: Arc<ImapConfig>, stop: watch::Receiver<bool>) -> Self {
        let mut backend = Backend::new(config.hub.clone());
        backend.set_batch_bytes(config.fetch_batch_bytes);
        Self {
            session,
            backend: Some(backend),
            config,
            idling: false,
            auth_failures: 0,
            stop,
        }
    }

    /// Runs on `stream` until logout or EOF (`None`), or until STARTTLS (the stream is given
    /// back for the handshake).
    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut stream: S,
    ) -> std::io::Result<Option<S>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut watcher: Option<watch::Receiver<u64>> = None;
        loop {
            // Answer every event; flush output.
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::StartTls => {
                        self.flush(&mut stream).await?;
                        return Ok(Some(stream));
                    }
                    Event::Logout => {
                        self.flush(&mut stream).await?;
                        let _ = stream.shutdown().await;
                        return Ok(None);
                    }
                    Event::Idle => {
                        self.idling = true;
                        watcher = self
                            .backend
                            .as_ref()
                            .and_then(Backend::selected_path)
                            .map(|p| self.config.hub.watch(&p));
                        if let Some(w) = &mut watcher {
                            w.mark_unchanged();
                        }
                    }
                    Event::IdleDone => {
                        self.idling = false;
                        watcher = None;
                    }
                    Event::Login {
                        token,
                        username,
                        password,
                        ..
                    } => {
                        let user = String::from_utf8_lossy(&username).into_owned();
                        let pass = String::from_utf8_lossy(password.expose()).into_owned();
                        let auth = self.config.auth.clone();
                        let found = tokio::task::spawn_blocking(move || auth.verify(&user, &pass))
                            .await
                            .ok()
                            .flatten();
                        let answer = match found {
                            Some(user) => self.with_backend(move |b| b.login(user)).await?,
                            None => {
                                // A growing delay per failure slows password guessing.
                                self.auth_failures = self.auth_failures.saturating_add(1);
                                tokio::time::sleep(
                                    self.config.auth_failure_delay * self.auth_failures,
                                )
                                .await;
                                tracing::warn!(
                                    "imap: authentication failed for {:?} ({} of {})",
                                    String::from_utf8_lossy(&username),
                                    self.auth_failures,
                                    self.config.auth_failure_limit
                                );
                                // RFC 5530's AUTHENTICATIONFAILED code, as Dovecot sends it.
                                mailroom_imap_proto::session::Answer::no(
                                    "[AUTHENTICATIONFAILED] Authentication failed.",
                                )
                            }
                        };
                        let _ = self.session.respond(token, answer);
                        let limit = self.config.auth_failure_limit;
                        if limit > 0 && self.auth_failures >= limit {
                            self.session.bye("Too many authentication failures.");
                        }
                    }
                    Event::Command { token, command } => {
                        let utf8 = self.session.utf8_accept();
                        let mut step = self.with_backend(move |b| b.start(command, utf8)).await?;
                        let answer = loop {
                            for data in std::mem::take(&mut step.data) {
                                self.session.send_untagged(data);
                            }
                            if let Some(answer) = step.answer {
                                break answer;
                            }
                            // A FETCH batch is on the wire before the next is read: the
                            // session holds one batch, and a slow reader slows the reading
                            // of the mailbox (TCP back-pressure) instead of memory growing.
                            self.flush(&mut stream).await?;
                            step = self.with_backend(Backend::resume).await?;
                        };
                        let _ = self.session.respond(token, answer);
                    }
                    Event::AppendStart { token, .. } => {
                        // Streaming is off in our ServerConfig; refuse if someone turns it on.
                        let _ = self.session.respond(
                            token,
                            mailroom_imap_proto::session::Answer::no(
                                "APPEND streaming not supported",
                            ),
                        );
                    }
                    _ => {}
                }
            }
            self.flush(&mut stream).await?;
            if self.session.state() == State::Logout {
                return Ok(None);
            }
            let deadline = self
                .session
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1800));
            let poll = self.config.idle_poll;
            let can_read = self.session.wants_input();
            let mut stop = self.stop.clone();
            // The branches only say what woke us; the work (which may wait on the backend's
            // thread) comes after, when no branch holds a borrow or a guard.
            let poll_mailbox = tokio::select! {
                n = stream.read(&mut buf), if can_read => {
                    let n = n?;
                    if n == 0 {
                        return Ok(None);
                    }
                    self.session.handle_input(Instant::now(), &buf[..n]);
                    false
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.session.handle_timeout(Instant::now());
                    false
                }
                _ = async {
                    match &mut watcher {
                        Some(w) => w.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                }, if self.idling => true,
                _ = tokio::time::sleep(poll), if self.idling => true,
                // Shutdown: between commands (none is being answered here), say BYE.
                _ = stop.wait_for(|stop| *stop) => {
                    self.session.bye("Server shutting down.");
                    false
                }
            };
            if poll_mailbox {
                self.push_updates().await?;
            }
        }
    }

    async fn push_updates(&mut self) -> std::io::Result<()> {
        for data in self.with_backend(Backend::updates).await? {
            self.session.send_untagged(data);
        }
        Ok(())
    }

    /// Runs `f` on the backend in a blocking thread: Maildir work (directory listings, file
    /// reads, fsync) would otherwise stall every session on the same runtime worker.
    async fn with_backend<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Backend) -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let Some(mut backend) = self.backend.take() else {
            // Only a panic in an earlier call leaves it missing, and that call ended the
            // connection.
            return Err(std::io::Error::other("imap: the mailbox backend is gone"));
        };
        let (backend, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut backend);
            (backend, result)
        })
        .await
        .map_err(|e| std::io::Error::other(format!("imap: the mailbox backend failed: {e}")))?;
        self.backend = Some(backend);
        Ok(result)
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        while let Some(out) = self.session.poll_transmit() {
            stream.write_all(&out).await?;
        }
        stream.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_imap_proto::types::{FetchValue, Flag, Response, StatusKind};
    use mailroom_maildir::Flags;
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// A server on a free loopback port with one user; returns its address and the stop
    /// sender.
    async fn start(config: ImapConfig) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with_shutdown(
            listener,
            Arc::new(config),
            false,
            async {
                let _ = rx.await;
            },
        ));
        (addr, tx)
    }

    fn users(dir: &Path) -> Arc<StaticUsers> {
        Arc::new(StaticUsers::new().with_user("u", "right", dir.join("Maildir")))
    }

    async fn line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut l = String::new();
        tokio::time::timeout(Duration::from_secs(30), r.read_line(&mut l))
            .await
            .unwrap()
            .unwrap();
        l
    }

    /// A stream that records how many octets were written between flushes: the adapter
    /// flushes after each batch, so each entry is one piece of output it held.
    struct Recorder<S> {
        inner: S,
        current: usize,
        pieces: Arc<Mutex<Vec<usize>>>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
            if let std::task::Poll::Ready(Ok(n)) = polled {
                self.current += n;
            }
            polled
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.current > 0 {
                let n = std::mem::take(&mut self.current);
                self.pieces.lock().unwrap().push(n);
            }
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// A Maildir of `n` messages of different sizes (one far above `budget`); the body of
    /// each by its key.
    fn mailbox(root: &Path, n: usize, budget: usize) -> HashMap<String, Vec<u8>> {
        let md = mailroom_maildir::Maildir::create(root.join("Maildir")).unwrap();
        let mut bodies = HashMap::new();
        for i in 0..n {
            let size = if i == n / 2 {
                3 * budget
            } else {
                500 + (i % 9) * 1500
            };
            let line = format!("line of message {i} ");
            let text = line.repeat(size / line.len() + 1);
            let body = format!(
                "From: <s{i}@example.test>\r\nSubject: message {i}\r\n\
                 Message-ID: <{i}@example.test>\r\n\r\n{text}\r\n"
            )
            .into_bytes();
            let delivered = md.deliver(&body[..]).unwrap();
            bodies.insert(delivered.key.as_str().to_owned(), body);
        }
        bodies
    }

    /// Runs one connection over an in-memory stream, the client sending `commands` at once;
    /// returns the responses and the pieces the adapter wrote between flushes.
    async fn converse(config: ImapConfig, commands: &str) -> (Vec<Response>, Vec<usize>) {
        let config = Arc::new(config);
        let (client, server) = tokio::io::duplex(64 * 1024);
        let pieces = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder {
            inner: server,
            current: 0,
            pieces: pieces.clone(),
        };
        let (_keep, stop) = watch::channel(false);
        let session = ServerSession::new(config.session_config(), Instant::now());
        let mut conn = Connection::new(session, config, stop);
        let server = tokio::spawn(async move { conn.run(recorder).await.map(|_| ()) });
        let (mut r, mut w) = tokio::io::split(client);
        w.write_all(commands.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        server.await.unwrap().unwrap();
        let limits = mailroom_imap_proto::framing::FramingLimits::default();
        let mut responses = Vec::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            match mailroom_imap_proto::decode_response(rest, &limits).unwrap() {
                mailroom_imap_proto::Decoded::Done { value, consumed } => {
                    responses.push(value);
                    rest = &rest[consumed..];
                }
                mailroom_imap_proto::Decoded::Incomplete => panic!("truncated output"),
            }
        }
        let pieces = pieces.lock().unwrap().clone();
        (responses, pieces)
    }

    fn fetch_config(dir: &Path, budget: usize) -> ImapConfig {
        let mut config = ImapConfig::new(users(dir), None);
        config.disable_plaintext_auth = false;
        config.fetch_batch_bytes = budget;
        config
    }

    #[tokio::test]
    async fn a_fetch_in_many_batches_arrives_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 16 * 1024;
        let bodies = mailbox(dir.path(), 300, budget);
        let (responses, pieces) = converse(
            fetch_config(dir.path(), budget),
            "a LOGIN u right\r\nb SELECT INBOX\r\nc UID FETCH 1:* (BODY[] FLAGS)\r\nd LOGOUT\r\n",
        )
        .await;
        let md = mailroom_maildir::Maildir::open(dir.path().join("Maildir")).unwrap();
        let list = md.read_uidlist().unwrap().unwrap();
        let key_of: HashMap<u32, String> = list
            .entries()
            .iter()
            .map(|e| (e.uid, e.key.as_str().to_owned()))
            .collect();
        let mut seen = 0u32;
        let mut last_uid = 0;
        let mut tagged = Vec::new();
        for r in &responses {
            match r {
                Response::Data(mailroom_imap_proto::types::Data::Fetch { seq, items }) => {
                    seen += 1;
                    assert_eq!(*seq, seen, "sequence numbers in order");
                    let [
                        FetchValue::Uid(uid),
                        FetchValue::BodySection { data, .. },
                        FetchValue::Flags(flags),
                    ] = &items[..]
                    else {
                        panic!("{items:?}");
                    };
                    assert!(*uid > last_uid, "UIDs ascending");
                    last_uid = *uid;
                    let body = data.as_ref().unwrap().as_bytes();
                    assert_eq!(body, &bodies[&key_of[uid]][..], "body of UID {uid}");
                    assert!(flags.contains(&Flag::Seen), "\\Seen set by BODY[]");
                }
                Response::Status(s) if s.tag.is_some() => tagged.push(s.clone()),
                _ => {}
            }
        }
        assert_eq!(seen, 300);
        let fetch = tagged
            .iter()
            .find(|s| s.tag.as_ref().unwrap().as_str() == "c")
            .unwrap();
        assert_eq!(fetch.kind, StatusKind::Ok);
        // BODY[] stored \Seen in the Maildir, every message.
        let scan = md.scan().unwrap();
        assert_eq!(scan.messages.len(), 300);
        assert!(
            scan.messages
                .iter()
                .all(|m| m.flags().contains(Flags::SEEN))
        );
        // Written in many pieces, not in one.
        let total: usize = pieces.iter().sum();
        assert!(pieces.len() > total / (2 * budget), "{pieces:?}");
    }

    #[tokio::test]
    async fn a_fetch_is_written_in_pieces_of_the_budget_plus_one_message() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 16 * 1024;
        let bodies = mailbox(dir.path(), 120, budget);
        let largest = bodies.values().map(Vec::len).max().unwrap();
        let (responses, pieces) = converse(
            fetch_config(dir.path(), budget),
            "a LOGIN u right\r\nb SELECT INBOX\r\nc FETCH 1:* (UID BODY.PEEK[] ENVELOPE)\r\n\
             d LOGOUT\r\n",
        )
        .await;
        let fetched = responses
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Response::Data(mailroom_imap_proto::types::Data::Fetch { .. })
                )
            })
            .count();
        assert_eq!(fetched, 120);
        // Each piece: less than the budget, plus the message that crossed it (its response:
        // the body, its envelope and the framing), plus the short lines of other commands.
        let bound = budget + largest + 4096;
        assert!(pieces.iter().all(|p| *p <= bound), "{pieces:?} > {bound}");
        let total: usize = pieces.iter().sum();
        assert!(total > 120 * 500);
        assert!(pieces.len() > total / (2 * budget), "{pieces:?}");
    }

    #[tokio::test]
    async fn failed_logins_wait_longer_each_time_then_bye() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ImapConfig::new(users(dir.path()), None);
        config.auth_failure_delay = Duration::from_millis(20);
        config.auth_failure_limit = 3;
        let (addr, _stop) = start(config).await;
        let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut r = BufReader::new(r);
        assert!(line(&mut r).await.starts_with("* OK"));
        let mut waited = Vec::new();
        for n in 1..=3 {
            let sent = Instant::now();
            w.write_all(format!("a{n} LOGIN u wrong\r\n").as_bytes())
                .await
                .unwrap();
            let reply = line(&mut r).await;
            waited.push(sent.elapsed());
            assert_eq!(
                reply,
                format!("a{n} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
            );
        }
        // The n-th failure waits at least n times the delay.
        for (n, w) in waited.iter().enumerate() {
            assert!(
                *w >= Duration::from_millis(20) * (n as u32 + 1),
                "{waited:?}"
            );
        }
        assert_eq!(
            line(&mut r).await,
            "* BYE Too many authentication failures.\r\n"
        );
        assert_eq!(line(&mut r).await, "", "closed after BYE");
    }

    #[tokio::test]
    async fn shutdown_says_bye_to_open_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ImapConfig::new(users(dir.path()), None);
        config.disable_plaintext_auth = false;
        let (addr, stop) = start(config).await;
        let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut r = BufReader::new(r);
        assert!(line(&mut r).await.starts_with("* OK"));
        w.write_all(b"a LOGIN u right\r\nb SELECT INBOX\r\n")
            .await
            .unwrap();
        loop {
            let l = line(&mut r).await;
            assert!(!l.starts_with("a NO") && !l.starts_with("b NO"), "{l}");
            if l.starts_with("b OK") {
                break;
            }
        }
        stop.send(()).unwrap();
        assert_eq!(line(&mut r).await, "* BYE Server shutting down.\r\n");
        assert_eq!(line(&mut r).await, "", "closed after BYE");
        // No new connection is accepted.
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if TcpStream::connect(addr).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "the listener is closed");
    }
}
