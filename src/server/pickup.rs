//! Local submission (Postfix's maildrop and pickup): `examples/sendmail.rs` writes each message
//! as one file into `<data>/maildrop/` (written, fsynced, renamed, directory fsynced), so mail
//! can be submitted while the server is down; the server picks the files up at start and every
//! second, runs them through cleanup into the queue, then removes them.
//!
//! The file format (version 1): the line `MAILROOM-MAILDROP 1`, then `S <sender>` (an empty
//! sender is the null reverse-path), one `R <recipient>` per recipient, an empty line, then the
//! message content with CRLF line ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mailroom_smtp_proto::{ForwardPath, ReversePath};
use tokio::sync::watch;

use super::Shared;

/// The first line of a maildrop file.
pub const MAGIC: &str = "MAILROOM-MAILDROP 1";

/// The most a maildrop file may hold (larger files are set aside in `maildrop/bad/`).
const MAX_FILE: u64 = 64 << 20;

/// Writes a maildrop file durably; returns its path.
///
/// # Errors
///
/// When the directory cannot be made or the file cannot be written and flushed.
pub fn write(
    data_directory: &Path,
    sender: &str,
    recipients: &[String],
    content: &[u8],
) -> std::io::Result<PathBuf> {
    let dir = data_directory.join("maildrop");
    std::fs::create_dir_all(&dir)?;
    let micros = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let name = format!("{micros}.{}", std::process::id());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let mut head = format!("{MAGIC}\nS {sender}\n");
    for r in recipients {
        head.push_str(&format!("R {r}\n"));
    }
    head.push('\n');
    f.write_all(head.as_bytes())?;
    f.write_all(content)?;
    f.sync_all()?;
    drop(f);
    let path = dir.join(name);
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(path)
}

/// A parsed maildrop file.
struct Dropped {
    sender: ReversePath,
    recipients: Vec<ForwardPath>,
    content: Vec<u8>,
}

fn parse(bytes: &[u8]) -> Result<Dropped, String> {
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("no end of the envelope")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "envelope is not UTF-8")?;
    let mut lines = head.lines();
    if lines.next() != Some(MAGIC) {
        return Err("not a maildrop file".into());
    }
    let mut sender = ReversePath::Null;
    let mut recipients = Vec::new();
    for line in lines {
        if let Some(s) = line.strip_prefix("S ") {
            if !s.is_empty() {
                sender = ReversePath::Mailbox(s.parse().map_err(|e| format!("sender {s:?}: {e}"))?);
            }
        } else if let Some(r) = line.strip_prefix("R ") {
            let m: mailroom_smtp_proto::Mailbox =
                r.parse().map_err(|e| format!("recipient {r:?}: {e}"))?;
            recipients.push(ForwardPath::from(m));
        } else if line != "S" {
            return Err(format!("unknown line {line:?}"));
        }
    }
    if recipients.is_empty() {
        return Err("no recipients".into());
    }
    Ok(Dropped {
        sender,
        recipients,
        content: bytes[end + 2..].to_vec(),
    })
}

/// Picks up one file: enqueue, then remove. A file that cannot be parsed goes to `bad/`.
fn pick(shared: &Shared, path: &Path) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let bytes = match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE => Err(format!("larger than {MAX_FILE} bytes")),
        Ok(_) => std::fs::read(path).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let dropped = bytes.and_then(|b| parse(&b));
    let dropped = match dropped {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("maildrop {}: {e}; moved to maildrop/bad/", path.display());
            let bad = dir.join("bad");
            let _ = std::fs::create_dir_all(&bad);
            if let Some(name) = path.file_name() {
                let _ = std::fs::rename(path, bad.join(name));
            }
            return;
        }
    };
    let received = format!(
        "Received: by {} (mailroom, from local submission);\r\n\t{}\r\n",
        shared.config.myhostname,
        mailroom_smtp_proto::date::rfc5322_date(SystemTime::now())
    );
    match super::smtpd::enqueue(
        shared,
        dropped.sender,
        &dropped.recipients,
        received,
        &dropped.content,
    ) {
        Ok((id, env)) => {
            tracing::info!(
                "{id}: uid=local, from=<{}>",
                super::smtpd::reverse_text(&env.reverse_path)
            );
            tracing::info!(
                "{id}: from=<{}>, size={}, nrcpt={} (queue active)",
                super::smtpd::reverse_text(&env.reverse_path),
                dropped.content.len(),
                env.recipients.len()
            );
            // Removed only once queued: a crash in between delivers twice, never zero times.
            if let Err(e) = std::fs::remove_file(path)
                .and_then(|()| std::fs::File::open(dir).and_then(|d| d.sync_all()))
            {
                tracing::error!(
                    "maildrop {}: queued as {id} but not removed: {e}",
                    path.display()
                );
            }
            shared.wake.notify_one();
        }
        Err(reply) => tracing::warn!("maildrop {}: not queued: {reply}", path.display()),
    }
}

fn scan(shared: &Shared) {
    let dir = shared.config.data_directory.join("maildrop");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    for f in files {
        pick(shared, &f);
    }
}

/// Scans `maildrop/` at start and every second until `stop`.
pub async fn pickup(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let s = Arc::clone(&shared);
        let _ = tokio::task::spawn_blocking(move || scan(&s)).await;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
