//! Maildir and Maildir++ store: durable delivery, flags, folders, Dovecot-compatible UIDs,
//! quota.
//!
//! A Maildir (<https://cr.yp.to/proto/maildir.html>) is a directory with three subdirectories:
//! a message is written in `tmp/`, moved to `new/` when complete, and to `cur/` once a mail
//! reader has seen it, its flags then kept in the `:2,` suffix of its name. No locks are needed
//! to deliver, so Dovecot, mutt, Python's `mailbox` and this crate can share one Maildir.
//!
//! # What it does
//!
//! - [`Maildir::deliver`]: delivery by the Maildir protocol with the fsyncs that make it
//!   durable; [`Batch`] groups many deliveries (many messages, or one message to many
//!   Maildirs) so they share their flushes: on ext4 one `syncfs(2)` makes the data of the
//!   whole batch durable, then one fsync per `new/` its entries (see [`RealFs`] for the
//!   trade-off: `syncfs` also writes back other programs' dirty data on that file system).
//! - Reading: [`Maildir::scan`], [`Maildir::open_message`], sizes from `S=`, flags from `:2,`,
//!   [`Maildir::set_flags`], [`Maildir::move_to_cur`], [`Maildir::expunge`],
//!   [`Maildir::clean_tmp`].
//! - Maildir++ folders ([`Maildir::create_folder`], [`Maildir::list_folders`], rename, delete)
//!   with names in modified UTF-7 as Dovecot writes them, or UTF-8.
//! - What an IMAP server needs: UIDs in Dovecot's `dovecot-uidlist` ([`Maildir::sync_uids`]),
//!   keyword names in `dovecot-keywords` ([`Maildir::keyword_flag`]), and the Maildir++ quota
//!   file `maildirsize` ([`Maildir::set_quota_limit`], [`DeliverError::OverQuota`]).
//! - Every file operation goes through the [`Fs`] trait: [`RealFs`] for the disk, and
//!   [`sim::SimFs`], a simulated file system that keeps written and durable state apart and can
//!   fail or crash at any operation.
//!
//! # What it does not do
//!
//! No index or cache of its own (scans read directory listings; an IMAP server keeps its own
//! view), no message parsing (bodies are byte streams), no mbox, no NFS-specific tricks, no
//! Dovecot index files (`dovecot.index*`; Dovecot rebuilds them from the Maildir when they
//! are stale), no async API (wrap calls in `spawn_blocking`).
//!
//! # Guarantees
//!
//! - `deliver` returns `Ok` only after the file was fsynced, renamed into `new/` and `new/`
//!   fsynced: the message survives a crash or power cut from then on. A failed fsync is a
//!   failed delivery, never retried into a success. A [`Batch`] gives each message the same
//!   promise; a failed flush of the batch (`syncfs`) fails every message it covered.
//! - After any failure or crash, a message is either absent from `new/` and `cur/` or there
//!   whole, under one name. A failed delivery leaves nothing visible (a crash may leave a file
//!   in `tmp/`, which readers never look at and [`Maildir::clean_tmp`] removes after 36 hours).
//! - What this rests on: fsync of a file makes its data durable, fsync of a directory makes its
//!   entries durable, and a rename survives a crash whole or not at all (true of the journaling
//!   file systems: ext4 with its journal, the default, XFS and btrfs; the Maildir protocol
//!   itself assumes it). ext4 made without a journal (`mkfs.ext4 -O ^has_journal`) keeps the
//!   first two but not the third: after a power cut in the middle of a rename, `fsck` may find
//!   the message under both names, or under neither (in `lost+found`). The crash tests check
//!   the guarantees above on [`sim::SimFs`] under exactly these assumptions, crashing at every
//!   operation.
//! - Names are unique across processes and hosts: seconds, `M` microseconds, `P` pid, `Q` a
//!   per-process counter, `R` 64 random bits, the host name; created with `O_EXCL` and renamed
//!   with `RENAME_NOREPLACE`, so a collision is an error and never an overwrite.
//! - Memory per delivery is bounded (a 64 KiB buffer) whatever the message size.
//! - No input panics: hostile file and folder names, malformed `dovecot-uidlist`,
//!   `dovecot-keywords` and `maildirsize` give errors naming the file (and the line).
//!
//! # Example
//!
//! ```
//! use mailroom_maildir::{Flags, Maildir};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let maildir = Maildir::create(dir.path().join("Maildir"))?;
//! let delivered = maildir.deliver(&b"Subject: hi\r\n\r\nhello\r\n"[..])?;
//! assert_eq!(delivered.size, 22);
//!
//! let scan = maildir.scan()?;
//! let message = &scan.messages[0];
//! let message = maildir.add_flags(message, Flags::SEEN)?; // now in cur/ as ...:2,S
//! assert!(message.flags().contains(Flags::SEEN));
//! let uids = maildir.sync_uids()?; // dovecot-uidlist
//! assert_eq!(uids.uid_of(message.key().as_str()), Some(1));
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! None: the crate has one configuration. It depends on `rustix` for `RENAME_NOREPLACE`,
//! `syncfs` and the host name, and `thiserror`.

mod batch;
mod error;
mod folder;
mod fs;
mod maildir;
mod name;
mod quota;
pub mod sim;
mod uidlist;

pub use batch::Batch;
pub use error::{
    DeliverError, DeliverStep, FolderError, OpenError, QuotaError, ReadError, UidListError,
};
pub use folder::{
    FolderList, FolderName, MAX_FOLDER_DEPTH, MAX_FOLDER_DIR_LEN, NameEncoding, decode_mutf7,
    encode_mutf7,
};
pub use fs::{Fs, Metadata, RealFs};
pub use maildir::{Delivered, Maildir, Message, Scan, Skipped, Subdir, TMP_MAX_AGE};
pub use name::{Flags, MAX_NAME_LEN, MessageKey};
pub use quota::{Quota, QuotaLimit, RECALCULATE_ABOVE};
pub use uidlist::{
    KEYWORDS_FILE, Keywords, LOCK_STALE_AFTER, LOCK_WAIT, UIDLIST_FILE, UidEntry, UidList,
};
