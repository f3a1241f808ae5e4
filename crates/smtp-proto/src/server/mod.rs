//! The sans-IO SMTP server session (RFC 5321), with STARTTLS (RFC 3207), AUTH PLAIN and LOGIN
//! (RFC 4954, RFC 4616), PIPELINING (RFC 2920), SIZE (RFC 1870), CHUNKING (RFC 3030) and,
//! behind [`ServerConfig::lmtp`], LMTP (RFC 2033).
//!
//! [`ServerSession`] takes bytes, the time and the application's decisions; it gives back
//! events, bytes to send and its next deadline. It opens no socket and reads no clock: the
//! tokio adapter (`crate::tokio::Server`, feature `tokio`) or a test drives it.

mod config;
mod event;
#[doc(hidden)]
pub mod fuzz;
mod sasl;
mod session;

pub use config::ServerConfig;
pub use event::{
    AuthRequest, AuthToken, Credentials, Event, MailRequest, MailToken, MessageEnd, MessageToken,
    RcptRequest, RcptToken,
};
pub use session::{AnswerError, ServerSession};
