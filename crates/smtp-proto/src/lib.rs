//! SMTP (RFC 5321) with its ESMTP extensions, as a sans-IO library.
//!
//! `mailroom-smtp-proto` holds what both ends of an SMTP connection need, without doing any
//! I/O itself: the envelope vocabulary (domains, mailboxes, reverse- and forward-paths, ESMTP
//! parameters), commands and replies with their decoders and encoders side by side, streaming
//! DATA and BDAT codecs, and sans-IO server and client sessions. A tokio adapter is behind the
//! `tokio` feature.
//!
//! What it does not do: no sockets, clocks or files in the core (the tokio adapter owns those),
//! no DNS, no queue, no policy: the application decides on each MAIL, RCPT and message.
//!
//! ## Standards
//!
//! RFC 5321 (SMTP), 3207 (STARTTLS), 4954 (AUTH), 4616 (SASL PLAIN), 1870 (SIZE),
//! 6152 (8BITMIME), 6531 (SMTPUTF8), 2920 (PIPELINING), 3030 (CHUNKING, BINARYMIME),
//! 3461 (DSN parameters), 2034 and 3463 (enhanced status codes), 8689 (REQUIRETLS),
//! 6710 (MT-PRIORITY), 4865 (FUTURERELEASE), 2852 (DELIVERBY), 2033 (LHLO).
//!
//! ## Example
//!
//! ```
//! use mailroom_smtp_proto::{Command, Limits, Reply, ReplyCode};
//!
//! let cmd = Command::decode(b"MAIL FROM:<alice@example.com> SIZE=1024", &Limits::default(), false)?;
//! let Command::Mail { from, params } = &cmd else { unreachable!() };
//! assert_eq!(from.to_string(), "<alice@example.com>");
//! assert_eq!(params.size, Some(1024));
//!
//! let reply = Reply::new(ReplyCode::OK, "2.1.0 Ok");
//! assert_eq!(reply.to_bytes(), b"250 2.1.0 Ok\r\n");
//! # Ok::<(), mailroom_smtp_proto::DecodeError>(())
//! ```
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `tokio` | `Server` and `Client` over tokio, STARTTLS through tokio-rustls |
//! | `fuzzing` | nothing public: the fuzz target bodies are always compiled, hidden from the docs |

pub mod codec;
pub mod date;
pub mod error;
pub mod types;

pub mod bdat;
pub mod client;
pub mod data;
#[doc(hidden)]
pub mod fuzzing;
pub mod server;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use error::{AddressError, DecodeError, ParamError, ReplyDecodeError};
pub use types::address::{
    AddressLiteral, Domain, ForwardPath, GeneralLiteral, Host, LocalPart, Mailbox, ReversePath,
};
pub use types::command::{Command, Mechanism};
pub use types::extension::Extensions;
pub use types::limits::Limits;
pub use types::param::{
    AuthParam, Body, DeliverBy, DeliverByMode, Hold, Keyword, MailParams, Notify, Orcpt, Param,
    RcptParams, Ret, Value, XText,
};
pub use types::reply::{EnhancedCode, Reply, ReplyCode};
pub use types::secret::Secret;
