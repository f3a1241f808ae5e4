//! The errors of the queue.

use std::io;
use std::path::PathBuf;

use crate::id::QueueId;

/// What went wrong in a queue operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A file operation failed; `what` says which, `path` on what.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// The operation, such as "fsync" or "create".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Reading the message content from the caller's reader failed; nothing was queued.
    #[error("cannot read the message content: {0}")]
    Content(io::Error),
    /// Writing or flushing a group of records failed: none of the group's operations happened
    /// (an enqueue was not acknowledged, a state change was not recorded).
    #[error("the queue could not make the change durable: {0}")]
    Commit(String),
    /// An earlier failure left the queue's memory and disk possibly apart; reopen the queue.
    #[error("the queue stopped after a failed write ({0}); reopen it to recover")]
    Poisoned(String),
    /// The envelope has no recipients.
    #[error("a message needs at least one recipient")]
    NoRecipients,
    /// The envelope has more recipients than a queued message may have.
    #[error("{0} recipients, at most {max} per message", max = crate::record::MAX_RECIPIENTS)]
    TooManyRecipients(usize),
    /// No message with this ID is queued.
    #[error("no message {0} in the queue")]
    NotFound(QueueId),
    /// The lease was already completed, or the message was deleted or changed meanwhile.
    #[error("the lease on message {0} is no longer valid")]
    StaleLease(QueueId),
    /// A message's stored content does not match its checksum or size.
    #[error("the content of message {id} is damaged: {detail}")]
    Damaged {
        /// The message.
        id: QueueId,
        /// What did not match.
        detail: String,
    },
}

impl QueueError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        QueueError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
