//! The mailroom server: `cargo run --release --example server`.
//!
//! With no configuration it listens for SMTP on 127.0.0.1:2525 (STARTTLS offered with a
//! self-signed certificate made at start) and writes each accepted message as an `.eml` file
//! under `./mailroom-data/inbox/`. A message is acknowledged (`250 2.0.0 Ok: queued as ID`)
//! only once its file is written, fsynced, renamed into `inbox/` and the directory fsynced.
//!
//! This is the SMTP front end alone. The reference server of DESIGN.md (queue, rewriting,
//! delivery agents, LMTP and IMAP) grows here as its crates land.
//!
//! Environment: `MAILROOM_SMTP_LISTEN` (default `127.0.0.1:2525`), `MAILROOM_DATA`
//! (default `./mailroom-data`), `MAILROOM_HOSTNAME` (default `localhost`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mailroom::smtp::date::rfc5322_date;
use mailroom::smtp::server::ServerConfig;
use mailroom::smtp::tokio::{Context, Handler, Server};
use mailroom::smtp::{Reply, ReplyCode};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Writes each message into `tmp/`, then renames it into `inbox/`: the Maildir discipline, so
/// a reader of `inbox/` never sees a partial file.
struct Spool {
    hostname: String,
    tmp: PathBuf,
    inbox: PathBuf,
    counter: AtomicU64,
}

/// The message being received on one connection.
#[derive(Default)]
struct Incoming {
    open: Option<(String, PathBuf, File)>,
    failed: Option<io::Error>,
}

impl Spool {
    fn open(base: &Path, hostname: String) -> io::Result<Self> {
        let (tmp, inbox) = (base.join("tmp"), base.join("inbox"));
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(&inbox)?;
        Ok(Self {
            hostname,
            tmp,
            inbox,
            counter: AtomicU64::new(0),
        })
    }

    /// A queue id in Postfix's spirit: unique in this spool, sorting by arrival.
    fn next_id(&self) -> String {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{micros:X}{:X}{n:X}", std::process::id())
    }

    /// Creates the spool file and writes the trace headers (RFC 5321 §4.4).
    fn start(&self, ctx: &Context<Incoming>) -> io::Result<(String, PathBuf, File)> {
        let id = self.next_id();
        let path = self.tmp.join(format!("{id}.eml"));
        let mut file = File::options().write(true).create_new(true).open(&path)?;
        let from = ctx
            .from
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let helo = ctx
            .helo
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        // RFC 3848: ESMTPS under TLS, ESMTPA / ESMTPSA when authenticated.
        let with = match (ctx.tls, ctx.authenticated.is_some()) {
            (false, false) => "ESMTP",
            (true, false) => "ESMTPS",
            (false, true) => "ESMTPA",
            (true, true) => "ESMTPSA",
        };
        let rcpt = match ctx.recipients.as_slice() {
            [one] => format!("\r\n\tfor {one}"),
            _ => String::new(),
        };
        write!(
            file,
            "Return-Path: {from}\r\nReceived: from {helo} ([{}])\r\n\tby {} (mailroom) with {with} id {id}{rcpt};\r\n\t{}\r\n",
            ctx.peer.ip(),
            self.hostname,
            rfc5322_date(SystemTime::now()),
        )?;
        Ok((id, path, file))
    }

    /// Makes the message durable: fsync the file, rename it into `inbox/`, fsync `inbox/`.
    fn commit(&self, id: &str, tmp_path: &Path, file: File) -> io::Result<()> {
        file.sync_all()?;
        drop(file);
        fs::rename(tmp_path, self.inbox.join(format!("{id}.eml")))?;
        File::open(&self.inbox)?.sync_all()
    }
}

impl Handler for Spool {
    type State = Incoming;

    async fn data_chunk(&self, ctx: &mut Context<Incoming>, chunk: Bytes) {
        if ctx.state.failed.is_some() {
            return;
        }
        if ctx.state.open.is_none() {
            match self.start(ctx) {
                Ok(open) => ctx.state.open = Some(open),
                Err(e) => return ctx.state.failed = Some(e),
            }
        }
        if let Some((_, _, file)) = ctx.state.open.as_mut() {
            // Blocking file I/O off the async worker's hot path.
            if let Err(e) = tokio::task::block_in_place(|| file.write_all(&chunk)) {
                ctx.state.failed = Some(e);
            }
        }
    }

    async fn data_end(&self, ctx: &mut Context<Incoming>, size: u64) -> Result<String, Reply> {
        let refuse = |e: io::Error| {
            eprintln!("spool write failed: {e}");
            Reply::new(
                ReplyCode::LOCAL_ERROR,
                "4.3.0 Error: queue file write error",
            )
        };
        if let Some(e) = ctx.state.failed.take() {
            self.discard(ctx);
            return Err(refuse(e));
        }
        let (id, path, file) = match ctx.state.open.take() {
            Some(open) => open,
            // An empty message: no chunk arrived.
            None => self.start(ctx).map_err(refuse)?,
        };
        let result = tokio::task::block_in_place(|| self.commit(&id, &path, file));
        if let Err(e) = result {
            let _ = fs::remove_file(&path);
            return Err(refuse(e));
        }
        let to: Vec<String> = ctx.recipients.iter().map(ToString::to_string).collect();
        let from = ctx
            .from
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        println!(
            "{id}: from={from}, to={}, size={size}, client={} -> {}",
            to.join(","),
            ctx.peer,
            self.inbox.join(format!("{id}.eml")).display()
        );
        Ok(id)
    }

    async fn reset(&self, ctx: &mut Context<Incoming>) {
        self.discard(ctx);
    }
}

impl Spool {
    fn discard(&self, ctx: &mut Context<Incoming>) {
        if let Some((_, path, _)) = ctx.state.open.take() {
            let _ = fs::remove_file(path);
        }
        ctx.state.failed = None;
    }
}

/// A self-signed certificate for the host name, localhost and 127.0.0.1 (ring provider).
fn self_signed_tls(
    hostname: &str,
) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let names = vec![hostname.to_owned(), "localhost".into(), "127.0.0.1".into()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    Ok(Arc::new(config))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let listen = env("MAILROOM_SMTP_LISTEN", "127.0.0.1:2525");
    let data = PathBuf::from(env("MAILROOM_DATA", "./mailroom-data"));
    let hostname = env("MAILROOM_HOSTNAME", "localhost");

    let spool = Spool::open(&data, hostname.clone())
        .map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let inbox = spool.inbox.canonicalize().unwrap_or(spool.inbox.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut config = ServerConfig::new(hostname.clone());
    // No user database yet: AUTH is not offered.
    config.auth_mechanisms.clear();
    let server = Server::new(config, spool).with_tls(self_signed_tls(&hostname)?);

    let addr = listener.local_addr()?;
    println!("mailroom: SMTP on {addr} (STARTTLS with a self-signed certificate)");
    println!(
        "mailroom: every accepted message is written to {}/<ID>.eml",
        inbox.display()
    );
    println!("mailroom: send a first message with");
    println!(
        "    swaks --server {addr} --from alice@example.com --to bob@localhost   # add --tls for STARTTLS"
    );
    println!(
        "    python3 -c 'import smtplib; s = smtplib.SMTP(\"{}\", {}); s.sendmail(\"alice@example.com\", [\"bob@localhost\"], \"Subject: hi\\r\\n\\r\\nHello.\\r\\n\"); s.quit()'",
        addr.ip(),
        addr.port()
    );
    println!("mailroom: Ctrl-C stops (open sessions get up to 30 s to finish)");
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    server.serve_with_shutdown(listener, ctrl_c).await?;
    println!("mailroom: stopped");
    Ok(())
}
