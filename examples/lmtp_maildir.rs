//! An LMTP MDA (what Dovecot's `lmtp` is in a Postfix + Dovecot setup): each recipient
//! `user@domain` is delivered into `<base>/<domain>/<user>/Maildir` through the maildir
//! crate's batch delivery (one message, read once, to every recipient's Maildir, fsyncs
//! grouped), with a reply per recipient:
//!
//! - unknown user (no directory `<base>/<domain>/<user>`, or not in the users list given on
//!   the command line): `550 5.1.1` at RCPT, for that recipient only;
//! - over its Maildir++ quota (`maildirsize`): `552 5.2.2` after the data, for that recipient
//!   only;
//! - any other failure (a failed write or fsync): `451 4.3.0`, so the client retries; never a
//!   250 for a message that is not on stable storage.
//!
//! ```text
//! cargo run --release --example lmtp_maildir -- BASE LISTEN [USER@DOMAIN ...]
//! cargo run --release --example lmtp_maildir -- /srv/vmail inet:127.0.0.1:2424
//! cargo run --release --example lmtp_maildir -- /srv/vmail unix:/run/mda.sock alice@example.org
//! ```
//!
//! Postfix hands mail to it with `virtual_transport = lmtp:inet:127.0.0.1:2424` (or
//! `lmtp:unix:/run/mda.sock`). The message is spooled in memory up to 1 MiB and in an
//! anonymous temporary file beyond, so a large message is never whole in memory.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use mailroom::lmtp::{
    Address, Answer, Context, Delivery, Handler, Listener, Server, server_config,
};
use mailroom::maildir::{Batch, DeliverError, Maildir};
use mailroom::smtp::{ForwardPath, RcptParams, Reply, ReplyCode};

/// Content kept in memory up to this size; beyond it the spool moves to a temporary file.
const SPOOL_IN_MEMORY: usize = 1024 * 1024;

/// The MDA: where the Maildirs are, and who may receive mail.
pub struct MaildirMda {
    base: PathBuf,
    /// `user@domain`, lowercase; `None` accepts every user that has a directory.
    users: Option<HashSet<String>>,
    /// Maildirs already opened (created when missing, quota enforced).
    maildirs: Mutex<HashMap<PathBuf, Maildir>>,
}

impl MaildirMda {
    /// An MDA delivering under `base`, to `users` only when given.
    pub fn new(base: impl Into<PathBuf>, users: Option<HashSet<String>>) -> Self {
        Self {
            base: base.into(),
            users: users.map(|u| u.into_iter().map(|a| a.to_lowercase()).collect()),
            maildirs: Mutex::new(HashMap::new()),
        }
    }

    /// `<base>/<domain>/<user>` for a recipient, or `None` when it cannot name a directory
    /// safely (no `/`, no NUL, not `.` or `..`, not empty) or is not in the users list.
    fn user_dir(&self, rcpt: &ForwardPath) -> Option<PathBuf> {
        let mailbox = rcpt.mailbox()?;
        let user = mailbox.local_part().as_str().to_lowercase();
        let domain = mailbox.host().domain()?.as_str().to_lowercase();
        let safe = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.contains(['/', '\0'])
                && !s.starts_with('.')
        };
        if !safe(&user) || !safe(&domain) {
            return None;
        }
        if let Some(users) = &self.users
            && !users.contains(&format!("{user}@{domain}"))
        {
            return None;
        }
        Some(self.base.join(domain).join(user))
    }

    fn maildir(&self, user_dir: &Path) -> Result<Maildir, String> {
        let path = user_dir.join("Maildir");
        let mut cache = self.maildirs.lock().map_err(|_| "maildir cache poisoned")?;
        if let Some(m) = cache.get(&path) {
            return Ok(m.clone());
        }
        let mut maildir = Maildir::create(&path).map_err(|e| e.to_string())?;
        maildir.set_quota_enforced(true);
        cache.insert(path, maildir.clone());
        Ok(maildir)
    }
}

/// The message being received: in memory, or in a temporary file once large.
#[derive(Default)]
pub struct Spool {
    chunks: Vec<Bytes>,
    len: usize,
    file: Option<std::fs::File>,
    error: Option<String>,
}

impl Spool {
    fn push(&mut self, chunk: Bytes) {
        if self.error.is_some() {
            return;
        }
        self.len += chunk.len();
        if self.file.is_none() && self.len > SPOOL_IN_MEMORY {
            let spilled = tempfile::tempfile().and_then(|mut f| {
                for c in self.chunks.drain(..) {
                    f.write_all(&c)?;
                }
                Ok(f)
            });
            match spilled {
                Ok(f) => self.file = Some(f),
                Err(e) => self.error = Some(format!("cannot spool the message: {e}")),
            }
        }
        match &mut self.file {
            Some(f) => {
                if let Err(e) = f.write_all(&chunk) {
                    self.error = Some(format!("cannot spool the message: {e}"));
                }
            }
            None => self.chunks.push(chunk),
        }
    }

    fn take(&mut self) -> Result<Body, String> {
        let spool = std::mem::take(self);
        if let Some(e) = spool.error {
            return Err(e);
        }
        match spool.file {
            Some(mut f) => {
                f.rewind()
                    .map_err(|e| format!("cannot read the spool: {e}"))?;
                Ok(Body::File(f))
            }
            None => Ok(Body::Memory(spool.chunks, 0)),
        }
    }
}

/// A spooled message as a reader.
enum Body {
    Memory(Vec<Bytes>, usize),
    File(std::fs::File),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Body::File(f) => f.read(buf),
            Body::Memory(chunks, next) => {
                while let Some(chunk) = chunks.get_mut(*next) {
                    if chunk.is_empty() {
                        *next += 1;
                        continue;
                    }
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk.split_to(n));
                    return Ok(n);
                }
                Ok(0)
            }
        }
    }
}

fn temporary(text: &str) -> Reply {
    Reply::new(ReplyCode::LOCAL_ERROR, &format!("4.3.0 {text}"))
}

/// One recipient's reply from its delivery result.
fn reply_for(rcpt: &ForwardPath, result: Result<String, DeliverError>) -> Result<String, Reply> {
    match result {
        Ok(key) => Ok(key),
        // RFC 3463: X.2.2 "Mailbox full"; Dovecot answers the same without
        // quota_full_tempfail.
        Err(e) if e.is_over_quota() => Err(Reply::new(
            ReplyCode::EXCEEDED_STORAGE,
            &format!("5.2.2 {rcpt} Mailbox full: quota exceeded"),
        )),
        // RFC 3463: X.3.4 "Message too big for system".
        Err(DeliverError::TooLarge { .. }) => Err(Reply::new(
            ReplyCode::EXCEEDED_STORAGE,
            "5.3.4 Message too big for mailbox",
        )),
        Err(e) => {
            eprintln!("lmtp_maildir: delivery to {rcpt} failed: {e}");
            Err(temporary(&format!("{rcpt} Temporary failure in delivery")))
        }
    }
}

impl Handler for MaildirMda {
    type State = Spool;

    async fn rcpt(
        &self,
        _ctx: &mut Context<Spool>,
        to: &ForwardPath,
        _params: &RcptParams,
    ) -> Result<(), Reply> {
        // RFC 3463: X.1.1 "Bad destination mailbox address".
        let unknown = || {
            Reply::new(
                ReplyCode::MAILBOX_UNAVAILABLE,
                &format!("5.1.1 {to} User unknown"),
            )
        };
        let dir = self.user_dir(to).ok_or_else(unknown)?;
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(unknown()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(temporary(&format!("cannot look {to} up: {e}"))),
        }
    }

    async fn data_chunk(&self, ctx: &mut Context<Spool>, chunk: Bytes) {
        ctx.state.push(chunk);
    }

    async fn deliver(&self, ctx: &mut Context<Spool>, delivery: Delivery) -> Answer {
        let body = match ctx.state.take() {
            Ok(body) => body,
            Err(e) => return delivery.answer_all(Err(temporary(&e))),
        };
        let mut maildirs = Vec::with_capacity(delivery.recipients().len());
        for rcpt in delivery.recipients() {
            // Accepted at RCPT, so the directory was there; it may have gone since.
            let opened = match self.user_dir(rcpt) {
                Some(dir) => self.maildir(&dir),
                None => Err("user unknown".to_owned()),
            };
            maildirs.push(opened);
        }
        let results = tokio::task::spawn_blocking(move || {
            let open: Vec<&Maildir> = maildirs.iter().filter_map(|m| m.as_ref().ok()).collect();
            let mut batch = Batch::new();
            let indexes = batch.add_to_many(&open, body);
            let mut committed: Vec<Option<_>> = batch.commit().into_iter().map(Some).collect();
            // The result of the n-th open Maildir is at indexes[n].
            let mut results = indexes
                .into_iter()
                .map(|i| committed.get_mut(i).and_then(Option::take));
            maildirs
                .iter()
                .map(|m| match m {
                    Ok(_) => results
                        .next()
                        .flatten()
                        .map(|r| r.map(|d| d.key.as_str().to_owned()))
                        .unwrap_or_else(|| Err(lost())),
                    Err(e) => Err(DeliverError::Write {
                        path: PathBuf::new(),
                        source: std::io::Error::other(e.clone()),
                    }),
                })
                .collect::<Vec<_>>()
        })
        .await;
        match results {
            Ok(results) => {
                let mut results = results.into_iter();
                delivery.answer(|_, rcpt| {
                    reply_for(rcpt, results.next().unwrap_or_else(|| Err(lost())))
                })
            }
            Err(e) => delivery.answer_all(Err(temporary(&format!("delivery task failed: {e}")))),
        }
    }

    async fn reset(&self, ctx: &mut Context<Spool>) {
        ctx.state = Spool::default();
    }
}

fn lost() -> DeliverError {
    DeliverError::Write {
        path: PathBuf::new(),
        source: std::io::Error::other("delivery result missing"),
    }
}

/// Serves `mda` on `listener` until `shutdown` completes.
///
/// # Errors
///
/// As [`Server::serve_with_shutdown`].
pub async fn serve(
    mda: MaildirMda,
    listener: Listener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(server_config("localhost"), mda)
        .serve_with_shutdown(listener, shutdown)
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(base), Some(listen)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: lmtp_maildir BASE LISTEN [USER@DOMAIN ...]   (LISTEN: inet:HOST:PORT or unix:PATH)"
        );
        std::process::exit(64);
    };
    let users: HashSet<String> = args.collect();
    let users = (!users.is_empty()).then_some(users);
    let address: Address = listen.parse()?;
    let listener = Listener::bind(&address).await?;
    eprintln!("lmtp_maildir: delivering under {base}, listening on {address}; Ctrl-C stops");
    let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or_default() };
    serve(MaildirMda::new(base, users), listener, ctrl_c).await?;
    if let Address::Unix(path) = address {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
