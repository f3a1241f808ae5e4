//! mbox store: read, append and rewrite mbox files safely beside the other mail programs on
//! the machine (Postfix's local(8), mutt, Dovecot, Python's `mailbox`).
//!
//! mbox (RFC 4155, `application/mbox`) is one file holding many messages, each opened by a
//! From_ line (`From sender asctime-date`) and closed by a blank line. It is Postfix's default
//! local mailbox format.
//!
//! # What it does
//!
//! - **From_ lines** ([`FromLine`]): parsed tolerantly, written exactly as asctime.
//! - **Variants** ([`Variant`]): mboxo, mboxrd (the default for writing: its quoting is
//!   reversible), mboxcl and mboxcl2 (`Content-Length`), quoting and unquoting in constant
//!   memory ([`Quoter`]).
//! - **Streaming reading** ([`Reader`]): any file size in bounded memory (a 64 KiB buffer plus
//!   one header section), each message's offset, envelope sender and date, header section and a
//!   body streamed through [`std::io::Read`]; tolerant of real-world files, with the tolerance
//!   listed in [`reader`]; errors name the line and byte offset. [`Index`] gives random access.
//! - **Append** ([`Mbox::append`]): locked, durable, rolled back on failure, with the metadata a
//!   sender could spoof removed ([`SPOOFABLE_HEADERS`]).
//! - **Flags** ([`Flags`]) through `Status` and `X-Status`, and crash-safe **rewrites**
//!   ([`Mbox::rewrite`], [`Mbox::expunge`]).
//!
//! # What it does not do
//!
//! No MIME parsing (headers are raw bytes with field lookup; bodies are bytes), no network, no
//! MMDF or other mailbox formats, no in-place rewrite (a rewrite writes a new file), no
//! `Content-Length` validation by look-ahead, and no NFS-specific dotlocking beyond
//! `O_EXCL` (Linux NFSv3+ supports it). Line ends are not converted on reading.
//!
//! # Example
//!
//! ```
//! use mailroom_mbox::{FromLine, Mbox};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let mbox = Mbox::new(dir.path().join("inbox"));
//! let from_line = FromLine::now(b"alice@example.org")?;
//! mbox.append(&from_line, &b"Subject: hello\r\n\r\nFrom the start.\r\n"[..])?;
//!
//! let mut reader = mbox.reader()?;
//! let message = reader.next_message(1 << 20)?.expect("one message");
//! assert_eq!(message.info.from_line.sender().as_bytes(), b"alice@example.org");
//! assert_eq!(message.info.headers.get("subject"), Some(&b"hello"[..]));
//! assert_eq!(message.body, b"From the start.\n");
//! # Ok(()) }
//! ```
//!
//! # Locking
//!
//! Every write takes the locks the other programs take, in Debian Policy's order: an `fcntl`
//! lock over the whole file, then the dotlock `MAILBOX.lock` (configurable:
//! [`LockOptions`]). Stale dotlocks (dead PID, or older than 500 s) are removed; a lock that
//! stays held is an error after a timeout (30 s), never a hang. Threads of one process are
//! serialised too (POSIX fcntl locks are per process). See [`lock`] for the details and the
//! caveats.
//!
//! # Durability
//!
//! - [`Mbox::append`] returns `Ok` only after the message is written and `fdatasync`ed (and,
//!   for a new file, its directory fsynced), before the locks are released. A failed fsync is a
//!   failed append. On any error the file is truncated back to its length before the append,
//!   still under the lock.
//! - An appender killed mid-write (SIGKILL, power is another matter) leaves a partial message
//!   and its dotlock; the next locker of this crate truncates the partial message away (see
//!   [`lock`]: crash recovery). Every acknowledged message survives; an unacknowledged one may
//!   or may not.
//! - [`Mbox::rewrite`] writes a new file beside the old one, fsyncs it, renames it over the old
//!   one and fsyncs the directory, all under the lock, keeping mode and owner: after a crash the
//!   mailbox is the old file or the new one, never a mix.
//!
//! # Standards
//!
//! RFC 4155 (the mbox format), RFC 5322 (the messages inside), Debian Policy 11.6 (locking),
//! qmail's mbox(5) (From_ line conventions).

pub mod error;
pub mod flags;
pub mod from_line;
pub mod headers;
pub mod index;
mod io_at;
pub mod lock;
pub mod mailbox;
pub mod reader;
pub mod variant;
pub mod writer;

pub use error::Error;
pub use flags::Flags;
pub use from_line::{AsctimeDate, FromLine, FromLineError, Sender};
pub use headers::{Field, Headers};
pub use index::{Index, IndexEntry};
pub use lock::{LockMethod, LockOptions, MailboxLock};
pub use mailbox::{Action, Appended, Mbox, Rewritten};
pub use reader::{Entry, Message, MessageInfo, ReadError, ReadLimits, Reader};
pub use variant::{Direction, Quoter, Variant};
pub use writer::{SPOOFABLE_HEADERS, WriteError, WriteOptions, write_message};
