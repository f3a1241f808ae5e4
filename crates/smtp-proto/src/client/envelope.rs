//! What the application hands the client for one message.

use crate::types::address::{ForwardPath, ReversePath};
use crate::types::param::{Body, MailParams, RcptParams};

/// One recipient with its RCPT parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The forward-path.
    pub path: ForwardPath,
    /// `NOTIFY=`, `ORCPT=` and others (the DSN ones are sent only when the server offers DSN).
    pub params: RcptParams,
}

impl From<ForwardPath> for Recipient {
    fn from(path: ForwardPath) -> Self {
        Self {
            path,
            params: RcptParams::default(),
        }
    }
}

/// The envelope of one message and what the client must know about its content to choose
/// the MAIL parameters.
///
/// The client fills `SIZE`, `BODY` and `SMTPUTF8` itself from `size`, `body` and the
/// addresses; `params` carries the others (`RET`, `ENVID`, `AUTH`, `MT-PRIORITY`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path (`<>` for a bounce).
    pub from: ReversePath,
    /// The recipients, in the order their RCPT commands are sent.
    pub recipients: Vec<Recipient>,
    /// The content's size in octets, if known: sent as `SIZE=` when the server offers SIZE
    /// (RFC 1870), and checked against the server's announced limit first.
    pub size: Option<u64>,
    /// What the content holds: 7-bit text, 8-bit text (`BODY=8BITMIME`, RFC 6152) or any
    /// octets (`BODY=BINARYMIME`, RFC 3030, which needs BDAT). See [`body_of`].
    pub body: Body,
    /// The message's header holds UTF-8 (RFC 6532), so the transaction needs SMTPUTF8 even if
    /// the addresses are ASCII.
    pub utf8_headers: bool,
    /// Other MAIL parameters; `size`, `body` and `smtputf8` in here are ignored.
    pub params: MailParams,
}

impl Envelope {
    /// An envelope of 7-bit content of unknown size, with no extra parameters.
    pub fn new(from: ReversePath, recipients: impl IntoIterator<Item = ForwardPath>) -> Self {
        Self {
            from,
            recipients: recipients.into_iter().map(Recipient::from).collect(),
            size: None,
            body: Body::SevenBit,
            utf8_headers: false,
            params: MailParams::default(),
        }
    }

    /// Whether the transaction needs SMTPUTF8 (RFC 6531 §3.4): a non-ASCII address, or UTF-8
    /// in the header.
    pub fn needs_smtputf8(&self) -> bool {
        self.utf8_headers
            || !self.from.is_ascii()
            || self.recipients.iter().any(|r| !r.path.is_ascii())
    }
}

/// Classifies content for [`Envelope::body`]: [`Body::EightBitMime`] when an octet above 127
/// appears, else [`Body::SevenBit`]. (Content with NUL or very long lines is
/// [`Body::BinaryMime`] only if the application says so.)
pub fn body_of(content: &[u8]) -> Body {
    if content.is_ascii() {
        Body::SevenBit
    } else {
        Body::EightBitMime
    }
}
