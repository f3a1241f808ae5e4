//! IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501): types, command and response codecs, literal
//! framing and a sans-IO server session.
//!
//! What it does:
//!
//! - [`types`]: validated values of the grammar ([`Tag`](types::Tag), [`Atom`](types::Atom),
//!   [`Mailbox`](types::Mailbox) with modified UTF-7 and UTF8=ACCEPT,
//!   [`SequenceSet`](types::SequenceSet), flags, commands, responses, ENVELOPE, BODYSTRUCTURE).
//! - [`codec`]: both directions. The server parses commands and encodes responses; a client
//!   encodes commands and parses responses ([`decode_command`], [`decode_response`],
//!   [`Encode`](codec::Encode)).
//! - [`framing`]: lines and literals (`{n}`, `{n+}`, `~{n}`) are gathered into whole frames
//!   before parsing, under configurable limits; the server decides whether to send `+`; a
//!   rejected command's literal octets are skipped, never parsed as a command.
//! - [`session`]: the server's state machine (not authenticated, authenticated, selected,
//!   logout), sans-IO: bytes in, events and bytes out; the application (a mailbox backend)
//!   answers the events.
//!
//! What it does not do: no sockets, no TLS, no clock, no files. The caller moves the bytes, runs
//! the TLS handshake when told, and passes the time in.
//!
//! RFCs covered: 9051, 3501, 7888 (LITERAL+/LITERAL-), 2177 (IDLE), 4315 (UIDPLUS: APPENDUID,
//! COPYUID, UID EXPUNGE), 6851 (MOVE), 5161 (ENABLE), 2971 (ID), 2342 (NAMESPACE), 5258 and 6154
//! (LIST-EXTENDED, SPECIAL-USE), 5819 (LIST-STATUS), 4731 (ESEARCH), 4959 (SASL-IR), 4616 (PLAIN),
//! 3516 (BINARY), 6855 (UTF8=ACCEPT).
//!
//! Limits: lines, literals and whole commands ([`framing::FramingLimits`]); nesting of SEARCH
//! keys and BODYSTRUCTURE ([`codec::MAX_DEPTH`]); NUL is refused in every string and literal
//! (only `literal8` may carry it).
//!
//! # Examples
//!
//! ```
//! use mailroom_imap_proto::codec::Encode;
//! use mailroom_imap_proto::framing::FramingLimits;
//! use mailroom_imap_proto::types::CommandBody;
//! use mailroom_imap_proto::{Decoded, decode_command};
//!
//! let wire = b"a1 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n";
//! let Ok(Decoded::Done { value, consumed }) = decode_command(wire, &FramingLimits::default())
//! else {
//!     panic!("a valid command")
//! };
//! assert_eq!(consumed, wire.len());
//! assert!(matches!(value.body, CommandBody::Fetch { uid: true, .. }));
//! assert_eq!(value.to_bytes(), wire);
//! ```
//!
//! # Tests and long campaigns
//!
//! `cargo test -p mailroom-imap-proto` runs the known-answer tables, the transcripts
//! (`tests/transcripts/`), the proptests (256 cases each), the fuzz corpora
//! (`fuzz-corpus/<target>/`) and the interop tests against Dovecot and Python's imaplib. Longer:
//! `PROPTEST_CASES=20000 cargo test --release -p mailroom-imap-proto --test proptest`, and from
//! `fuzz/`: `cargo +nightly fuzz run imap_command_parser` (also `imap_response_parser`,
//! `imap_framing`, `imap_server_session`).
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | (none) | | the crate has no optional parts |

pub mod codec;
mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod session;
pub mod types;

pub use error::DecodeError;

use framing::{FrameLength, FramingLimits, frame_length};
use types::{Command, Response};

/// The outcome of decoding that is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A value and how many octets it used.
    Done {
        /// The value.
        value: T,
        /// Octets used from the start of the input.
        consumed: usize,
    },
    /// The input ends before the value does: read more and call again.
    Incomplete,
}

/// Decodes one command from the start of `buf`, its literals assumed present (as in a recorded
/// session, or after the framer gathered them).
///
/// # Errors
///
/// [`DecodeError`] when a limit is broken or the command is malformed.
pub fn decode_command(buf: &[u8], limits: &FramingLimits) -> Result<Decoded<Command>, DecodeError> {
    match frame_length(buf, limits)? {
        FrameLength::Incomplete => Ok(Decoded::Incomplete),
        FrameLength::Complete(n) => codec::command::parse_command_frame(&buf[..n])
            .map(|value| Decoded::Done { value, consumed: n }),
    }
}

/// Decodes one response (continuation request, status or data) from the start of `buf`.
///
/// # Errors
///
/// [`DecodeError`] when a limit is broken or the response is malformed.
pub fn decode_response(
    buf: &[u8],
    limits: &FramingLimits,
) -> Result<Decoded<Response>, DecodeError> {
    match frame_length(buf, limits)? {
        FrameLength::Incomplete => Ok(Decoded::Incomplete),
        FrameLength::Complete(n) => codec::response::parse_response_frame(&buf[..n])
            .map(|value| Decoded::Done { value, consumed: n }),
    }
}

/// Parses one whole command frame (as [`framing::CommandFramer`] hands out).
///
/// # Errors
///
/// [`DecodeError::Syntax`] naming what was expected where.
pub fn parse_command(frame: &[u8]) -> Result<Command, DecodeError> {
    codec::command::parse_command_frame(frame)
}

/// Parses one whole response frame.
///
/// # Errors
///
/// [`DecodeError::Syntax`] naming what was expected where.
pub fn parse_response(frame: &[u8]) -> Result<Response, DecodeError> {
    codec::response::parse_response_frame(frame)
}
