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

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mailroom::lmtp::{Address, Listener};
use mailroom::server::lmtpd::{self, MaildirMda, Recipient};
use mailroom::smtp::ForwardPath;

/// `<base>/<domain>/<user>` for a recipient, or `None` when it cannot name a directory safely
/// (no `/`, no NUL, not `.` or `..`, not empty, no leading `.`) or is not in `users`.
fn user_dir(base: &Path, users: Option<&HashSet<String>>, rcpt: &ForwardPath) -> Option<PathBuf> {
    let mailbox = rcpt.mailbox()?;
    let user = mailbox.local_part().as_str().to_lowercase();
    let domain = mailbox.host().domain()?.as_str().to_lowercase();
    let safe = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0']) && !s.starts_with('.')
    };
    if !safe(&user) || !safe(&domain) {
        return None;
    }
    if let Some(users) = users
        && !users.contains(&format!("{user}@{domain}"))
    {
        return None;
    }
    Some(base.join(domain).join(user))
}

/// The MDA delivering under `base` (to `users` only when given, `user@domain` lowercase): a
/// recipient whose directory `<base>/<domain>/<user>` exists gets `<that>/Maildir`.
pub fn mda(base: impl Into<PathBuf>, users: Option<HashSet<String>>) -> MaildirMda {
    let base = base.into();
    let users: Option<HashSet<String>> =
        users.map(|u| u.into_iter().map(|a| a.to_lowercase()).collect());
    MaildirMda::new(Box::new(move |rcpt: &ForwardPath| {
        let Some(dir) = user_dir(&base, users.as_ref(), rcpt) else {
            return Recipient::Unknown;
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Recipient::Maildir(dir.join("Maildir")),
            Ok(_) => Recipient::Unknown,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Recipient::Unknown,
            Err(e) => Recipient::Temporary(format!("{}: {e}", dir.display())),
        }
    }))
}

/// Serves `mda` on `listener` until `shutdown` completes.
///
/// # Errors
///
/// As [`mailroom::lmtp::Server::serve_with_shutdown`].
pub async fn serve(
    mda: MaildirMda,
    listener: Listener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    lmtpd::serve(mda, "localhost", None, listener, shutdown).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
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
    serve(mda(base, users), listener, ctrl_c).await?;
    if let Address::Unix(path) = address {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
