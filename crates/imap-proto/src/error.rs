//! Errors of decoding.

/// Why a command or response could not be decoded. "Needs more input" is not an error: decoders
/// return [`crate::Decoded::Incomplete`] for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line (without its literals) was longer than the limit.
    #[error("line longer than {max} octets")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A literal announced more octets than allowed.
    #[error("literal of {size} octets is larger than the limit of {max} octets")]
    LiteralTooLarge {
        /// The announced size.
        size: u64,
        /// The limit that applied (4096 for a non-synchronising literal under LITERAL-).
        max: u64,
    },
    /// A command with its literals was larger than the limit.
    #[error("command longer than {max} octets")]
    CommandTooLong {
        /// The limit.
        max: usize,
    },
    /// A line ended with a bare LF.
    #[error("line ends with LF instead of CRLF")]
    BareLineFeed,
    /// The bytes do not follow the grammar.
    #[error("syntax error at octet {offset}: expected {expected}")]
    Syntax {
        /// Where, from the start of the command or response.
        offset: usize,
        /// The rule or token that was expected there.
        expected: &'static str,
    },
}

impl DecodeError {
    pub(crate) fn syntax(frame: &[u8], err: nom::Err<crate::codec::core::PError<'_>>) -> Self {
        match err {
            nom::Err::Incomplete(_) => DecodeError::Syntax {
                offset: frame.len(),
                expected: "more input",
            },
            nom::Err::Error(e) | nom::Err::Failure(e) => DecodeError::Syntax {
                offset: frame.len().saturating_sub(e.input.len()),
                expected: e.expected,
            },
        }
    }
}
