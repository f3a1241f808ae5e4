//! Errors of the file-level operations (lock, append, rewrite, index), each naming the file.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::from_line::FromLineError;
use crate::reader::ReadError;

/// An error of a file-level mbox operation. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call on the mailbox or its lock file failed.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("open", "fsync", "truncate back to 1234 bytes", ...).
        action: String,
        /// The error.
        source: io::Error,
    },
    /// The locks were not all acquired within the timeout.
    #[error("{path}: could not take the {method} lock within {timeout:?}")]
    LockTimeout {
        /// The mailbox.
        path: PathBuf,
        /// `fcntl` or `dotlock`.
        method: &'static str,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The mailbox could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The mailbox.
        path: PathBuf,
        /// Where and what.
        source: ReadError,
    },
    /// The message to append is not usable (no header section, too large, ...).
    #[error("{path}: message refused: {reason}")]
    Message {
        /// The mailbox.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The From_ line could not be built.
    #[error("{path}: {source}")]
    FromLine {
        /// The mailbox.
        path: PathBuf,
        /// Why.
        source: FromLineError,
    },
    /// Writing failed and truncating the file back to its length before the append failed too:
    /// the mailbox may hold a partial message at its end.
    #[error(
        "{path}: {first}; then truncating back to {length} bytes failed too: {source} (the mailbox may end with a partial message)"
    )]
    RollbackFailed {
        /// The mailbox.
        path: PathBuf,
        /// The length it had before the append.
        length: u64,
        /// The error that made us roll back.
        first: Box<Error>,
        /// The error of the truncation.
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
        source: io::Error,
    ) -> Self {
        Error::Io {
            path: path.into(),
            action: action.into(),
            source,
        }
    }
}
