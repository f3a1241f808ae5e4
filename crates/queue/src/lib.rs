//! Durable mail queue with Postfix's semantics: incoming/active/deferred/hold/corrupt, group
//! commit, retries, DSN bounces.
//!
//! [`Queue::enqueue`] returns a [`QueueId`] only once the envelope and the content are on
//! stable storage; concurrent enqueues share their fsyncs (group commit), which is how the queue
//! goes many times faster than one fsync per message without weakening "250 queued". A
//! delivery agent [`Queue::take`]s a [`Lease`] (a message and its recipients for one
//! destination, within the active window and the destination's concurrency window), delivers,
//! and hands back one [`Outcome`] per recipient with [`Queue::complete`]; each result is
//! recorded durably, so a delivered recipient is never delivered again after a retry or a
//! restart. Deferred messages are retried with Postfix's back-off; permanent failures and
//! expired messages bounce with an RFC 3464 DSN, and `delay_warning_time` sends one delay DSN.
//!
//! What it does not do: no network, no DNS, no address rewriting (the caller's [`Router`]
//! names a recipient's destination), no content filtering. The API is blocking (threads); from async code call it through
//! `spawn_blocking`. The on-disk format is described in `FORMAT.md` beside this crate; one
//! process owns a queue directory at a time (a lock file enforces it).
//!
//! | Module | What |
//! |---|---|
//! | [`queue`] | [`Queue`]: enqueue with group commit, take/complete, administration, recovery |
//! | [`record`] | the log's records and their checksummed framing |
//! | [`envelope`] | [`Envelope`], [`Recipient`], [`RcptStatus`], [`Diagnostic`] |
//! | [`schedule`] | [`Clock`], [`ManualClock`], Postfix's [`Backoff`] |
//! | [`dsn`] | RFC 3464 bounces |
//! | [`listing`] | `postqueue -p` output |
//! | [`fs`], [`sim`] | the file-operation trait, the real file system, the crash simulator |
//! | [`crc`] | CRC-32C |
//! | [`id`] | [`QueueId`] |
//!
//! The crate has no cargo features.
//!
//! | Standard | Where |
//! |---|---|
//! | RFC 3461 (NOTIFY, ORCPT, RET, ENVID) | [`Recipient`], [`Envelope`] |
//! | RFC 3463 (enhanced status codes) | [`Diagnostic`] |
//! | RFC 3464 (delivery status notifications) | bounces ([`dsn`]) |
//! | RFC 5321 §4.5.5 (null reverse-path for notifications) | bounces |
//!
//! # Examples
//!
//! ```
//! use mailroom_queue::{Envelope, Outcome, Queue, sim::SimFs};
//! use mailroom_smtp_proto::{ForwardPath, ReversePath};
//!
//! let queue = Queue::open(SimFs::new(), "/q", Default::default())?;
//! let env = Envelope::new(
//!     ReversePath::Mailbox("alice@example.org".parse()?),
//!     vec![ForwardPath::Mailbox("bob@example.net".parse()?)],
//! );
//! let id = queue.enqueue(env, &b"Subject: hi\r\n\r\nhello\r\n"[..])?;
//! let lease = queue.take().expect("the message is ready");
//! assert_eq!(lease.id(), id);
//! queue.complete(lease, &[(0, Outcome::Delivered)])?;
//! assert!(queue.list().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Use [`fs::RealFs`] (the default type parameter) for a real directory.

pub mod crc;
pub mod dsn;
pub mod envelope;
pub mod error;
pub mod fs;
pub mod id;
pub mod listing;
pub mod queue;
pub mod record;
pub mod schedule;
pub mod sim;

pub use envelope::{Diagnostic, Envelope, MAX_DIAGNOSTIC_LEN, RcptStatus, Recipient};
pub use error::QueueError;
pub use fs::{Fs, RealFs};
pub use id::{ParseQueueIdError, QueueId};
pub use listing::postqueue_listing;
pub use queue::{
    BodyReader, Config, Lease, Logger, Outcome, Queue, QueueState, Recovery, Router, Summary,
    default_route,
};
pub use record::MAX_RECIPIENTS;
pub use schedule::{Backoff, Clock, ManualClock, SystemClock};

/// A small deterministic generator for tests (splitmix64).
#[cfg(test)]
pub(crate) fn sim_rand(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(1);
    schedule::mix(*seed)
}
