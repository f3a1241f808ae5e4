//! mailroom: the building blocks of a mail system, and a reference server assembled from them.
//!
//! Each building block is its own crate (`mailroom-smtp-proto`, ...), usable alone. This package
//! re-exports them under one name, each behind a feature of the same name:
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `smtp` (default) | [`smtp`] | `mailroom-smtp-proto`: SMTP codec, DATA/BDAT, sans-IO sessions, tokio adapter |
//! | `maildir` (default) | [`maildir`] | `mailroom-maildir`: Maildir/Maildir++ store |
//! | `mbox` (default) | [`mbox`] | `mailroom-mbox`: mbox store |
//! | `imap` (default) | [`imap`] | `mailroom-imap-proto`: IMAP codec and server session |
//! | `queue` (default) | [`queue`] | `mailroom-queue`: durable mail queue |
//! | `rewrite` (default) | [`rewrite`] | `mailroom-rewrite`: lookup tables, rewriting, resolution |
//! | `lmtp` (default) | [`lmtp`] | `mailroom-lmtp`: LMTP server and client (RFC 2033) |
//! | `server` (default) | [`server`] | the reference server (`examples/server.rs`), assembled from all of them |
//!
//! See `ARCHITECTURE.md` for how the crates fit together.

#[cfg(feature = "imap")]
pub use mailroom_imap_proto as imap;
#[cfg(feature = "lmtp")]
pub use mailroom_lmtp as lmtp;
#[cfg(feature = "maildir")]
pub use mailroom_maildir as maildir;
#[cfg(feature = "mbox")]
pub use mailroom_mbox as mbox;
#[cfg(feature = "queue")]
pub use mailroom_queue as queue;
#[cfg(feature = "rewrite")]
pub use mailroom_rewrite as rewrite;
#[cfg(feature = "smtp")]
pub use mailroom_smtp_proto as smtp;
#[cfg(feature = "server")]
pub mod server;
