//! Error types, one per concern. Every I/O error names the step that failed and its path.

use std::io;
use std::path::PathBuf;

/// Opening or creating a Maildir failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A required subdirectory (`tmp`, `new` or `cur`) or the Maildir itself is missing.
    #[error("not a maildir: {path} is missing")]
    Missing {
        /// The missing directory.
        path: PathBuf,
    },
    /// A path that must be a directory is something else.
    #[error("not a maildir: {path} is not a directory")]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// Looking at a directory failed.
    #[error("cannot stat {path}: {source}")]
    Stat {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Creating a directory failed.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Flushing a directory to disk failed.
    #[error("cannot fsync directory {path}: {source}")]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// The step of a delivery that failed, for callers that react per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliverStep {
    /// Creating the file in `tmp/` with `O_EXCL`.
    Create,
    /// Reading the message from the caller's reader.
    ReadBody,
    /// Writing the message to the file in `tmp/`.
    Write,
    /// fsync of the file.
    SyncFile,
    /// Renaming the file from `tmp/` into `new/`.
    Rename,
    /// fsync of `new/`.
    SyncDir,
    /// Reading or updating the quota file.
    Quota,
}

/// A delivery failed: nothing is visible in `new/` and the message must be considered not
/// delivered (LMTP and SMTP answer with a temporary failure, or a permanent one for
/// [`DeliverError::OverQuota`] and [`DeliverError::TooLarge`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// Creating the temporary file failed.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file in `tmp/`.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Reading the message from the caller's reader failed.
    #[error("cannot read the message to deliver to {path}: {source}")]
    ReadBody {
        /// The file in `tmp/` being written.
        path: PathBuf,
        /// The reader's error.
        source: io::Error,
    },
    /// Writing the temporary file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file in `tmp/`.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// fsync of the temporary file failed: the data may not be on disk.
    #[error("cannot fsync {path}: {source}")]
    SyncFile {
        /// The file in `tmp/`.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Renaming the file into `new/` failed.
    #[error("cannot rename {from} to {to}: {source}")]
    Rename {
        /// The file in `tmp/`.
        from: PathBuf,
        /// The name in `new/`.
        to: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// fsync of `new/` failed: the new name may not survive a crash, so the file was removed.
    #[error("cannot fsync directory {path}: {source}")]
    SyncDir {
        /// The `new/` directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The message is larger than the limit set with [`crate::Maildir::set_max_message_size`].
    #[error("message is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The delivery would exceed the Maildir++ quota (`maildirsize`).
    #[error(
        "mailbox {path} is over quota: {used_bytes} bytes in {used_messages} messages, adding {size} bytes exceeds {limit}"
    )]
    OverQuota {
        /// The Maildir.
        path: PathBuf,
        /// Bytes in use before this delivery.
        used_bytes: u64,
        /// Messages before this delivery.
        used_messages: u64,
        /// The size of this message.
        size: u64,
        /// The limit that would be exceeded, as written in `maildirsize` (for example `1000S,10C`).
        limit: String,
    },
    /// Reading or updating `maildirsize` failed.
    #[error("quota: {0}")]
    Quota(#[source] Box<QuotaError>),
}

impl DeliverError {
    /// The step that failed.
    pub fn step(&self) -> DeliverStep {
        match self {
            Self::Create { .. } => DeliverStep::Create,
            Self::ReadBody { .. } => DeliverStep::ReadBody,
            Self::Write { .. } | Self::TooLarge { .. } => DeliverStep::Write,
            Self::SyncFile { .. } => DeliverStep::SyncFile,
            Self::Rename { .. } => DeliverStep::Rename,
            Self::SyncDir { .. } => DeliverStep::SyncDir,
            Self::OverQuota { .. } | Self::Quota(_) => DeliverStep::Quota,
        }
    }

    /// Whether retrying at once cannot help (too large, over quota): a permanent failure
    /// (5xx), as Dovecot answers over quota unless `quota_full_tempfail = yes`.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::OverQuota { .. })
    }

    /// Whether this is [`DeliverError::OverQuota`].
    pub fn is_over_quota(&self) -> bool {
        matches!(self, Self::OverQuota { .. })
    }
}

/// Reading, flagging or removing messages failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Listing a directory failed.
    #[error("cannot list {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The message is gone (expunged by another process).
    #[error("message {key} not found in {maildir}")]
    NotFound {
        /// The message's key.
        key: String,
        /// The Maildir.
        maildir: PathBuf,
    },
    /// Opening a message failed.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Looking at a file failed.
    #[error("cannot stat {path}: {source}")]
    Stat {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Renaming a message (flags, new to cur) failed.
    #[error("cannot rename {from} to {to}: {source}")]
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Removing a file failed.
    #[error("cannot remove {path}: {source}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Flushing a directory failed.
    #[error("cannot fsync directory {path}: {source}")]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A message key that cannot name a file in the Maildir.
    #[error("invalid message key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Updating `maildirsize` after an expunge failed.
    #[error("quota: {0}")]
    Quota(#[source] Box<QuotaError>),
}

/// A Maildir++ folder operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    /// The folder name is refused.
    #[error("invalid folder name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (lossily converted to UTF-8).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The folder exists already.
    #[error("folder {name:?} exists already")]
    Exists {
        /// The folder name.
        name: String,
    },
    /// The folder does not exist.
    #[error("folder {name:?} does not exist")]
    NotFound {
        /// The folder name.
        name: String,
    },
    /// The folder still holds messages or subfolders.
    #[error("folder {name:?} is not empty")]
    NotEmpty {
        /// The folder name.
        name: String,
    },
    /// Opening or creating the folder's Maildir failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A file operation failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Reading or writing `dovecot-uidlist` or `dovecot-keywords` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UidListError {
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `create`, `write`, `fsync`, `rename`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A line of the file is malformed.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds `dovecot-uidlist.lock` and did not release it in time.
    #[error("{path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Scanning the Maildir failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// More than 26 keywords: the Maildir letters `a`-`z` are all taken.
    #[error("no keyword letter left for {name:?}: a maildir holds at most 26 keywords")]
    TooManyKeywords {
        /// The keyword that did not fit.
        name: String,
    },
}

/// Reading or writing the Maildir++ quota file `maildirsize` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A line of the file is malformed.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Scanning the Maildir for a recalculation failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}
