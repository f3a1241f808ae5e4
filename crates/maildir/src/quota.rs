//! Maildir++ quota: the `maildirsize` file.
//!
//! The format, summarised from Courier's Maildir++ quota specification (maildirquota(7)),
//! which Dovecot's `maildir` quota backend follows:
//!
//! - The first line is the quota: comma-separated `<bytes>S` and `<messages>C` items, such as
//!   `10000000S,1000C`.
//! - Every further line holds two whitespace-separated integers, a byte count and a message
//!   count (negative for removals); their sums are the current usage.
//! - A delivery appends its line with a single `write()` to the file opened with `O_APPEND`,
//!   so concurrent writers never interleave.
//! - Past 5120 bytes the file is recalculated: the folders are counted and a new file is
//!   written in `tmp/` and renamed over the old one.
//!
//! The file lives at the top of a Maildir++ tree and counts the messages of every folder. The
//! usage lines are not fsynced: a crash can lose an update, and the next recalculation (or any
//! read of an over-long file) fixes the totals. The limit line is fsynced when written.

use std::io::Write;
use std::path::PathBuf;

use crate::error::{DeliverError, QuotaError};
use crate::fs::Fs;
use crate::maildir::{Delivered, Maildir};

/// Recalculate when `maildirsize` grows past this many bytes (the specification's figure).
pub const RECALCULATE_ABOVE: u64 = 5120;

/// The largest `maildirsize` we read: anything bigger is recalculated, never parsed.
const READ_LIMIT: u64 = 1 << 20;

/// A quota limit: bytes (`S`) and messages (`C`), each optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimit {
    /// The most bytes, `<n>S`.
    pub bytes: Option<u64>,
    /// The most messages, `<n>C`.
    pub messages: Option<u64>,
}

impl QuotaLimit {
    /// Parses the first line of `maildirsize`, such as `1000000S,500C`.
    ///
    /// # Errors
    ///
    /// Returns what is wrong with the line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut limit = QuotaLimit::default();
        for item in line.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (num, kind) = item
                .split_at_checked(item.len().saturating_sub(1))
                .ok_or_else(|| format!("quota item {item:?} is not <number>S or <number>C"))?;
            let value: u64 = num
                .parse()
                .map_err(|_| format!("quota item {item:?} is not <number>S or <number>C"))?;
            match kind {
                "S" => limit.bytes = Some(value),
                "C" => limit.messages = Some(value),
                _ => return Err(format!("quota item {item:?} is not <number>S or <number>C")),
            }
        }
        Ok(limit)
    }

    /// The line as written in `maildirsize` (without the newline).
    pub fn to_line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.bytes {
            parts.push(format!("{b}S"));
        }
        if let Some(c) = self.messages {
            parts.push(format!("{c}C"));
        }
        parts.join(",")
    }
}

/// The state of a Maildir++ quota: its limit and the current usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The limit (first line of `maildirsize`).
    pub limit: QuotaLimit,
    /// Bytes in use (sum of the usage lines, never below zero).
    pub bytes: u64,
    /// Messages in use.
    pub messages: u64,
    file_len: u64,
}

impl Quota {
    /// Whether adding one message of `size` bytes goes over the limit.
    pub fn would_exceed(&self, size: u64) -> bool {
        self.limit
            .bytes
            .is_some_and(|l| self.bytes.saturating_add(size) > l)
            || self
                .limit
                .messages
                .is_some_and(|l| self.messages.saturating_add(1) > l)
    }

    /// Parses the contents of `maildirsize`.
    fn parse(text: &[u8], path: &std::path::Path) -> Result<Self, QuotaError> {
        let perr = |line: usize, reason: String| QuotaError::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = std::str::from_utf8(text).map_err(|_| perr(1, "not valid UTF-8".into()))?;
        let mut lines = text.lines();
        let limit = QuotaLimit::parse(lines.next().unwrap_or("")).map_err(|r| perr(1, r))?;
        let (mut bytes, mut messages) = (0i128, 0i128);
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let mut num = |what: &str| -> Result<i128, QuotaError> {
                fields
                    .next()
                    .and_then(|f| f.parse::<i64>().ok())
                    .map(i128::from)
                    .ok_or_else(|| perr(n + 2, format!("expected a {what} count")))
            };
            bytes += num("byte")?;
            messages += num("message")?;
        }
        Ok(Quota {
            limit,
            bytes: u64::try_from(bytes.max(0)).unwrap_or(u64::MAX),
            messages: u64::try_from(messages.max(0)).unwrap_or(u64::MAX),
            file_len: text.len() as u64,
        })
    }
}

impl<F: Fs> Maildir<F> {
    /// The path of the `maildirsize` that counts this Maildir (at the top of its Maildir++ tree).
    pub fn quota_path(&self) -> PathBuf {
        self.root.join("maildirsize")
    }

    /// Reads `maildirsize`; `None` when the Maildir has no quota file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or is malformed (with the line number).
    pub fn read_quota(&self) -> Result<Option<Quota>, QuotaError> {
        let path = self.quota_path();
        match self.fs.read_small(&path, READ_LIMIT) {
            Ok(text) => Quota::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(QuotaError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Sets the quota limit: counts every message of the Maildir++ tree and writes a fresh
    /// `maildirsize` (in `tmp/`, fsynced, renamed into place).
    ///
    /// # Errors
    ///
    /// When the tree cannot be scanned or the file cannot be written.
    pub fn set_quota_limit(&self, limit: QuotaLimit) -> Result<Quota, QuotaError> {
        self.write_quota(limit)
    }

    /// Recounts the tree and rewrites `maildirsize` with its current limit; `None` when there is
    /// no quota file.
    ///
    /// # Errors
    ///
    /// As [`Maildir::set_quota_limit`], and when the current file's limit line is malformed.
    pub fn recalculate_quota(&self) -> Result<Option<Quota>, QuotaError> {
        let path = self.quota_path();
        let limit = match self.fs.read_small(&path, READ_LIMIT) {
            Ok(text) => {
                let text = String::from_utf8_lossy(&text);
                let first = text.lines().next().unwrap_or("");
                QuotaLimit::parse(first).map_err(|reason| QuotaError::Parse {
                    path: path.clone(),
                    line: 1,
                    reason,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // Too large to read: keep no limit rather than guess one? No: an unreadable limit
            // is an error the administrator must see.
            Err(source) => {
                return Err(QuotaError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        self.write_quota(limit).map(Some)
    }

    fn write_quota(&self, limit: QuotaLimit) -> Result<Quota, QuotaError> {
        let (mut bytes, mut messages) = (0u64, 0u64);
        let root = Maildir::unchecked(self.fs.clone(), self.root.clone());
        let mut trees = vec![root.path.clone()];
        trees.extend(crate::folder::folder_dirs(&root)?);
        for dir in trees {
            let md = Maildir::unchecked(self.fs.clone(), dir);
            let scan = md.scan()?;
            for m in &scan.messages {
                bytes += match m.size() {
                    Some(s) => s,
                    None => md.size(m).unwrap_or(0),
                };
                messages += 1;
            }
        }
        let text = format!("{}\n{bytes} {messages}\n", limit.to_line());
        let path = self.quota_path();
        let tmp = self.root.join("tmp").join(format!(
            "{}.maildirsize",
            crate::name::unique_name(std::time::SystemTime::now())
        ));
        let io = |action, path: &PathBuf, source| QuotaError::Io {
            action,
            path: path.clone(),
            source,
        };
        let mut file = self
            .fs
            .create_new(&tmp)
            .map_err(|e| io("create", &tmp, e))?;
        let written = file
            .write_all(text.as_bytes())
            .map_err(|e| io("write", &tmp, e))
            .and_then(|()| {
                self.fs
                    .sync_file(&mut file)
                    .map_err(|e| io("fsync", &tmp, e))
            });
        drop(file);
        if let Err(e) = written.and_then(|()| {
            self.fs
                .rename(&tmp, &path)
                .map_err(|e| io("rename", &path, e))
        }) {
            let _ = self.fs.remove_file(&tmp);
            return Err(e);
        }
        self.fs
            .sync_dir(&self.root)
            .map_err(|e| io("fsync directory", &self.root, e))?;
        Ok(Quota {
            limit,
            bytes,
            messages,
            file_len: text.len() as u64,
        })
    }

    fn append_quota(&self, bytes: i64, messages: i64) -> Result<(), QuotaError> {
        let path = self.quota_path();
        let mut file = match self.fs.open_append(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(QuotaError::Io {
                    action: "open",
                    path,
                    source,
                });
            }
        };
        // One write call, so concurrent appenders never interleave within a line.
        file.write_all(format!("{bytes} {messages}\n").as_bytes())
            .map_err(|source| QuotaError::Io {
                action: "append to",
                path: path.clone(),
                source,
            })?;
        drop(file);
        if let Some(q) = self.read_quota()?
            && q.file_len > RECALCULATE_ABOVE
        {
            self.write_quota(q.limit)?;
        }
        Ok(())
    }

    /// Refuses a delivery of `size` bytes that would go over quota.
    pub(crate) fn quota_check(&self, size: u64) -> Result<(), DeliverError> {
        if !self.quota {
            return Ok(());
        }
        let quota = match self.read_quota() {
            Ok(Some(q)) => q,
            Ok(None) => return Ok(()),
            Err(e) => return Err(DeliverError::Quota(Box::new(e))),
        };
        if quota.would_exceed(size) {
            return Err(DeliverError::OverQuota {
                path: self.path.clone(),
                used_bytes: quota.bytes,
                used_messages: quota.messages,
                size,
                limit: quota.limit.to_line(),
            });
        }
        Ok(())
    }

    /// Counts delivered messages in `maildirsize`. A failure here does not undo the deliveries
    /// (they are durable already); the totals are fixed by the next recalculation.
    pub(crate) fn quota_after_delivery(&self, delivered: &[&Delivered]) {
        if !self.quota || delivered.is_empty() {
            return;
        }
        let bytes: u64 = delivered.iter().map(|d| d.size).sum();
        let _ = self.append_quota(
            i64::try_from(bytes).unwrap_or(i64::MAX),
            i64::try_from(delivered.len()).unwrap_or(i64::MAX),
        );
    }

    /// Counts an expunged message in `maildirsize`.
    pub(crate) fn quota_after_expunge(&self, size: u64) -> Result<(), QuotaError> {
        if !self.quota {
            return Ok(());
        }
        self.append_quota(-i64::try_from(size).unwrap_or(i64::MAX), -1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn limit_line_round_trip() {
        let l = QuotaLimit::parse("1000S,10C").unwrap();
        assert_eq!(l.bytes, Some(1000));
        assert_eq!(l.messages, Some(10));
        assert_eq!(l.to_line(), "1000S,10C");
        assert_eq!(QuotaLimit::parse("").unwrap(), QuotaLimit::default());
        assert!(QuotaLimit::parse("12X").is_err());
        assert!(QuotaLimit::parse("S").is_err());
        assert!(QuotaLimit::parse("10é").is_err());
    }

    #[test]
    fn usage_lines_sum() {
        let q = Quota::parse(b"100S\n10 1\n20 1\n-10 -1\n", Path::new("m")).unwrap();
        assert_eq!((q.bytes, q.messages), (20, 1));
        assert!(q.would_exceed(81));
        assert!(!q.would_exceed(80));
        let e = Quota::parse(b"100S\n10 x\n", Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("m:2:"), "{e}");
    }
}
