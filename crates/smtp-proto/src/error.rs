//! The errors of the codec, by concern.

/// An address (domain, local-part, mailbox, path) that does not follow RFC 5321's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text breaks the grammar; `expected` names what should have been there.
    #[error("invalid {what}: expected {expected}")]
    Syntax {
        /// The rule being parsed (`domain`, `local-part`, `path`, ...).
        what: &'static str,
        /// What the grammar expected.
        expected: &'static str,
    },
    /// The text is longer than a limit of RFC 5321 §4.5.3.1 (or the configured one).
    #[error("{what} is longer than {limit} octets")]
    TooLong {
        /// The part that is too long.
        what: &'static str,
        /// The limit in octets.
        limit: usize,
    },
    /// Non-ASCII text where SMTPUTF8 is not in force (RFC 6531 §3.4).
    #[error("non-ASCII {what} without SMTPUTF8")]
    NonAscii {
        /// The part holding non-ASCII text.
        what: &'static str,
    },
}

/// An ESMTP parameter, keyword or value that breaks its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// Not an `esmtp-keyword`.
    #[error("invalid parameter keyword")]
    Keyword,
    /// Not an `esmtp-value`.
    #[error("invalid parameter value")]
    Value,
    /// Not `xtext` (RFC 3461 §4).
    #[error("invalid xtext")]
    XText,
    /// Not a SASL mechanism name (RFC 4422 §3.1).
    #[error("invalid SASL mechanism name")]
    Mechanism,
}

use crate::types::reply::{Reply, ReplyCode};

/// A command line the server cannot accept. Each error knows the reply that answers it
/// ([`DecodeError::reply`]); none of them ends the session by itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The line is longer than the limit (RFC 5321 §4.5.3.1.4).
    #[error("command line longer than {limit} octets")]
    LineTooLong {
        /// The limit that applied, CRLF included.
        limit: usize,
    },
    /// The verb is not a command this server knows.
    #[error("command not recognized")]
    UnknownCommand,
    /// The command's arguments break its grammar.
    #[error("syntax error in {verb}: expected {expected}")]
    Syntax {
        /// The command verb.
        verb: &'static str,
        /// The expected form, quoted in the reply.
        expected: &'static str,
    },
    /// The path of MAIL or RCPT is not a valid address.
    #[error("bad {} address: {source}", if *.sender { "sender" } else { "recipient" })]
    Address {
        /// MAIL (true) or RCPT (false).
        sender: bool,
        /// What is wrong with it.
        source: AddressError,
    },
    /// A parameter is malformed or its value is not allowed.
    #[error("invalid {keyword} parameter: expected {expected}")]
    Parameter {
        /// The keyword, upper case (for an unparseable keyword, `"parameter"`).
        keyword: String,
        /// What the value should have been.
        expected: &'static str,
    },
    /// The same parameter twice on one command.
    #[error("duplicate {keyword} parameter")]
    DuplicateParameter {
        /// The keyword, upper case.
        keyword: String,
    },
}

impl DecodeError {
    /// The reply that answers the bad command, with its enhanced status code (RFC 3463):
    /// 500 5.5.2 for an unknown command or an over-long line, 501 5.5.4 for bad arguments,
    /// 501 5.1.7 / 5.1.3 for a bad sender / recipient address, 553 5.6.7 for a non-ASCII
    /// address without SMTPUTF8 (RFC 6531 §3.5).
    pub fn reply(&self) -> Reply {
        let (code, text) = match self {
            DecodeError::LineTooLong { .. } => (
                ReplyCode::SYNTAX_ERROR,
                "5.5.2 Error: line too long".to_owned(),
            ),
            DecodeError::UnknownCommand => (
                ReplyCode::SYNTAX_ERROR,
                "5.5.2 Error: command not recognized".to_owned(),
            ),
            DecodeError::Syntax { verb, expected } => (
                ReplyCode::PARAMETER_SYNTAX_ERROR,
                format!("5.5.4 Syntax: {verb} {expected}"),
            ),
            DecodeError::Address {
                source: AddressError::NonAscii { .. },
                ..
            } => (
                ReplyCode::MAILBOX_NAME_NOT_ALLOWED,
                "5.6.7 Non-ASCII address requires SMTPUTF8".to_owned(),
            ),
            DecodeError::Address { sender, source } => {
                let (status, who) = if *sender {
                    ("5.1.7", "sender")
                } else {
                    ("5.1.3", "recipient")
                };
                (
                    ReplyCode::PARAMETER_SYNTAX_ERROR,
                    format!("{status} Bad {who} address syntax: {source}"),
                )
            }
            DecodeError::Parameter { keyword, expected } => (
                ReplyCode::PARAMETER_SYNTAX_ERROR,
                format!("5.5.4 Bad {keyword} parameter: expected {expected}"),
            ),
            DecodeError::DuplicateParameter { keyword } => (
                ReplyCode::PARAMETER_SYNTAX_ERROR,
                format!("5.5.4 Duplicate {keyword} parameter"),
            ),
        };
        Reply::new(code, &text)
    }
}

/// A reply the client cannot read (server side of the wire misbehaving, or hostile).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyDecodeError {
    /// A line longer than the limit (RFC 5321 §4.5.3.1.5).
    #[error("reply line longer than {limit} octets")]
    LineTooLong {
        /// The limit, CRLF included.
        limit: usize,
    },
    /// More lines than the configured limit in one reply.
    #[error("reply with more than {limit} lines")]
    TooManyLines {
        /// The limit.
        limit: usize,
    },
    /// A line that is not `Reply-code [ SP / "-" textstring ]`.
    #[error("malformed reply line: expected {expected}")]
    Syntax {
        /// What the line should have held.
        expected: &'static str,
    },
    /// The lines of one multi-line reply carry different codes.
    #[error("reply lines with different codes ({first} and {other})")]
    MixedCodes {
        /// The first line's code.
        first: u16,
        /// The code that differs.
        other: u16,
    },
}
