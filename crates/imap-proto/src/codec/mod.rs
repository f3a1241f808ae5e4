//! Codecs: each type's parser and encoder side by side.
//!
//! - `command`: the server parses commands, the client encodes them
//!   ([`crate::parse_command`], [`crate::decode_command`]).
//! - `response`: the server encodes responses, the client parses them
//!   ([`crate::parse_response`], [`crate::decode_response`]).
//! - `core`: strings, numbers, sequence sets, flags, dates.
//!
//! Every type implements [`Encode`]; parsing goes through the crate-level functions.

pub mod base64;
pub(crate) mod command;
pub(crate) mod core;
pub(crate) mod response;

pub use self::core::MAX_DEPTH;

/// Writes a value in its wire form. Anything that can be built can be encoded.
pub trait Encode {
    /// Appends the wire form to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The wire form as a new buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}
