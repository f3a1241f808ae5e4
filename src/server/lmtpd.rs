//! LMTP delivery into Maildirs (the role of Dovecot's `lmtp`): the lmtp crate's server with a
//! [`Handler`] that stores each message through the maildir crate's batch delivery (one
//! message, read once, to every recipient's Maildir, the fsyncs grouped), with one reply per
//! recipient (RFC 2033 §4.2):
//!
//! - unknown recipient: `550 5.1.1` at RCPT, for that recipient only;
//! - over its Maildir++ quota (`maildirsize`): `552 5.2.2` after the data, for that recipient
//!   only, as Dovecot answers without `quota_full_tempfail`;
//! - any other failure (a failed write or fsync, an unreadable spool): `451 4.3.0`, so the
//!   client retries; never a 250 for a copy that is not on stable storage.
//!
//! Who the recipients are is the [`MaildirMda`]'s resolver's business: the reference server
//! looks them up in its passwd-file ([`passwd_resolver`]), `examples/lmtp_maildir.rs` in a
//! directory tree. Each stored copy starts with a `Return-Path:` header (RFC 5321 §4.4: the
//! final delivery adds it) and wakes the IMAP sessions idling on that Maildir ([`Hub`]).
//!
//! The message is spooled in memory up to 1 MiB and in an anonymous temporary file beyond, so
//! a large message is never whole in memory.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mailroom_lmtp::{Answer, Context, Delivery, Handler, Listener, Server, server_config};
use mailroom_maildir::{Batch, DeliverError, Maildir};
use mailroom_smtp_proto::{ForwardPath, RcptParams, Reply, ReplyCode};

use super::Shared;
use super::imap::Hub;
use super::smtpd::reverse_text;

/// Content kept in memory up to this size; beyond it the spool moves to a temporary file.
const SPOOL_IN_MEMORY: usize = 1024 * 1024;

/// Most Maildir handles kept open (their quota state is cached with them); the cache is
/// emptied when full.
const MAILDIR_CACHE: usize = 10_000;

/// What a resolver says of a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Deliver into this Maildir (created, with its parents, when missing).
    Maildir(PathBuf),
    /// No such user: `550 5.1.1`.
    Unknown,
    /// The lookup failed for now: `451 4.3.0` with this text.
    Temporary(String),
}

/// Maps a recipient to its Maildir.
pub type Resolver = Box<dyn Fn(&ForwardPath) -> Recipient + Send + Sync>;

/// The LMTP handler: resolves recipients, spools the message, delivers it to every Maildir
/// in one batch.
pub struct MaildirMda {
    resolve: Resolver,
    hub: Option<Arc<Hub>>,
    /// Maildirs already opened (quota enforced).
    maildirs: Mutex<HashMap<PathBuf, Maildir>>,
}

impl MaildirMda {
    /// An MDA delivering where `resolve` says.
    pub fn new(resolve: Resolver) -> Self {
        Self {
            resolve,
            hub: None,
            maildirs: Mutex::new(HashMap::new()),
        }
    }

    /// Tells `hub` of every delivery, so IMAP sessions idling on the Maildir see the message
    /// at once.
    pub fn with_hub(mut self, hub: Arc<Hub>) -> Self {
        self.hub = Some(hub);
        self
    }

    fn maildir(&self, path: &Path) -> Result<Maildir, String> {
        let mut cache = self
            .maildirs
            .lock()
            .map_err(|_| "maildir cache poisoned".to_owned())?;
        if let Some(m) = cache.get(path) {
            return Ok(m.clone());
        }
        // As local(8) and Dovecot make a missing Maildir, we make the home it lives in too.
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut maildir = Maildir::create(path).map_err(|e| e.to_string())?;
        maildir.set_quota_enforced(true);
        if cache.len() >= MAILDIR_CACHE {
            cache.clear();
        }
        cache.insert(path.to_owned(), maildir.clone());
        Ok(maildir)
    }
}

/// The resolver of the reference server: `user@domain` (or `user+ext@domain` with
/// `recipient_delimiter`) is a user of the passwd-file, whose Maildir is `home_mailbox` in its
/// home, as Dovecot's LMTP finds users in its userdb.
pub fn passwd_resolver(shared: Arc<Shared>) -> Resolver {
    Box::new(move |rcpt: &ForwardPath| {
        let Some(mailbox) = rcpt.mailbox() else {
            return Recipient::Unknown;
        };
        let local = mailbox.local_part().to_string();
        let domain = mailbox.host().to_string().to_ascii_lowercase();
        let c = &shared.config;
        match shared
            .passwd
            .recipient_user(&local, &domain, &c.recipient_delimiter)
        {
            None => Recipient::Unknown,
            Some(u) if u.home.as_os_str().is_empty() => {
                Recipient::Temporary(format!("user {} has no home directory", u.name))
            }
            Some(u) => Recipient::Maildir(u.home.join(&c.home_mailbox)),
        }
    })
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
    // RFC 3463: X.3.0 "Other or undefined mail system status".
    Reply::new(ReplyCode::LOCAL_ERROR, &format!("4.3.0 {text}"))
}

/// One recipient's reply from its delivery result.
fn reply_for(rcpt: &ForwardPath, result: Result<String, DeliverError>) -> Result<String, Reply> {
    match result {
        Ok(key) => {
            tracing::info!("lmtp: to=<{}>, status=sent (saved as {key})", mailbox(rcpt));
            Ok(key)
        }
        // RFC 3463: X.2.2 "Mailbox full"; Dovecot answers the same without
        // quota_full_tempfail.
        Err(e) if e.is_over_quota() => {
            tracing::info!("lmtp: to=<{}>, status=bounced (over quota)", mailbox(rcpt));
            Err(Reply::new(
                ReplyCode::EXCEEDED_STORAGE,
                &format!("5.2.2 {rcpt} Mailbox full: quota exceeded"),
            ))
        }
        // RFC 3463: X.3.4 "Message too big for system".
        Err(DeliverError::TooLarge { .. }) => Err(Reply::new(
            ReplyCode::EXCEEDED_STORAGE,
            "5.3.4 Message too big for mailbox",
        )),
        Err(e) => {
            tracing::warn!("lmtp: to=<{}>, status=deferred ({e})", mailbox(rcpt));
            Err(temporary(&format!("{rcpt} Temporary failure in delivery")))
        }
    }
}

fn mailbox(rcpt: &ForwardPath) -> String {
    rcpt.mailbox().map_or_else(String::new, ToString::to_string)
}

impl Handler for MaildirMda {
    type State = Spool;

    async fn rcpt(
        &self,
        _ctx: &mut Context<Spool>,
        to: &ForwardPath,
        _params: &RcptParams,
    ) -> Result<(), Reply> {
        match (self.resolve)(to) {
            Recipient::Maildir(_) => Ok(()),
            // RFC 3463: X.1.1 "Bad destination mailbox address".
            Recipient::Unknown => Err(Reply::new(
                ReplyCode::MAILBOX_UNAVAILABLE,
                &format!("5.1.1 {to} User unknown"),
            )),
            Recipient::Temporary(why) => {
                tracing::warn!("lmtp: cannot look {to} up: {why}");
                Err(temporary(&format!("{to} Temporary user lookup failure")))
            }
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
        // RFC 5321 4.4: "When the delivery SMTP server makes the "final delivery" of a
        // message, it inserts a return-path line at the beginning of the mail data."
        let return_path = format!(
            "Return-Path: <{}>\r\n",
            ctx.from.as_ref().map(reverse_text).unwrap_or_default()
        );
        let mut maildirs = Vec::with_capacity(delivery.recipients().len());
        for rcpt in delivery.recipients() {
            // Accepted at RCPT; looked up again, as the user may have gone since.
            let opened = match (self.resolve)(rcpt) {
                Recipient::Maildir(path) => self.maildir(&path),
                Recipient::Unknown => Err("user unknown".to_owned()),
                Recipient::Temporary(why) => Err(why),
            };
            maildirs.push(opened);
        }
        let results = tokio::task::spawn_blocking(move || {
            let open: Vec<&Maildir> = maildirs.iter().filter_map(|m| m.as_ref().ok()).collect();
            let mut batch = Batch::new();
            let indexes = batch.add_to_many(&open, return_path.as_bytes().chain(body));
            let mut committed: Vec<Option<_>> = batch.commit().into_iter().map(Some).collect();
            // The result of the n-th open Maildir is at indexes[n].
            let mut results = indexes
                .into_iter()
                .map(|i| committed.get_mut(i).and_then(Option::take));
            maildirs
                .iter()
                .map(|m| match m {
                    Ok(md) => results
                        .next()
                        .flatten()
                        .map(|r| r.map(|d| (md.path().to_owned(), d.key.as_str().to_owned())))
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
                if let Some(hub) = &self.hub {
                    for (path, _) in results.iter().flatten() {
                        hub.changed(path);
                    }
                }
                let mut results = results.into_iter().map(|r| r.map(|(_, key)| key));
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

/// Serves `mda` on `listener` as `hostname` until `shutdown` completes (sessions then get
/// the lmtp crate's grace period to finish their transaction).
///
/// # Errors
///
/// As [`Server::serve_with_shutdown`].
pub async fn serve(
    mda: MaildirMda,
    hostname: &str,
    max_message_size: Option<u64>,
    listener: Listener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut config = server_config(hostname);
    config.max_message_size = max_message_size;
    Server::new(config, mda)
        .serve_with_shutdown(listener, shutdown)
        .await
}
