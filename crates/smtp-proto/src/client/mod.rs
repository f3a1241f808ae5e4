//! The SMTP (and LMTP) client session, sans-IO.
//!
//! [`ClientSession`] speaks the client side of RFC 5321 with the extensions a relay needs:
//! EHLO with the fall-back to HELO, STARTTLS (RFC 3207) with a [`TlsPolicy`], AUTH PLAIN
//! (RFC 4616) and LOGIN (RFC 4954), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
//! (RFC 6531), PIPELINING (RFC 2920), CHUNKING and BINARYMIME (RFC 3030), and LMTP's LHLO with
//! one reply per recipient (RFC 2033, [`ClientConfig::lmtp`]). It does no I/O and reads no
//! clock: the tokio adapter (`crate::tokio::Client`, feature `tokio`) or any other driver
//! moves the bytes. See [`ClientSession`] for the call order.

mod auth;
mod config;
mod envelope;
mod error;
mod event;
mod session;

pub use config::{ClientConfig, Credentials, Timeouts, TlsPolicy};
pub use envelope::{Envelope, Recipient, body_of};
pub use error::{ClientError, SendError};
pub use event::{DataPermit, Event, MessageResult, RecipientResult, Stage, Status, TlsUpgrade};
pub use session::ClientSession;
