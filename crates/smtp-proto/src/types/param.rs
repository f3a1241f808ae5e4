//! ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 `esmtp-param`), typed for the extensions
//! this crate knows, and kept as keyword and value for the others so the application can judge.

use std::fmt;

use crate::error::ParamError;

/// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`, stored in upper case (keywords are
/// case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyword(String);

impl Keyword {
    /// Validates an ESMTP keyword (at most 64 octets, which no registered keyword approaches).
    ///
    /// # Errors
    ///
    /// [`ParamError::Keyword`] when `s` is not an `esmtp-keyword`.
    pub fn new(s: &str) -> Result<Self, ParamError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 64
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-');
        if ok {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(ParamError::Keyword)
        }
    }

    /// The keyword in upper case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `esmtp-value`: `1*(%d33-60 / %d62-126)` (any printable ASCII but `=`), and under SMTPUTF8
/// also UTF-8 (RFC 6531 §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Value(String);

impl Value {
    /// Validates an ESMTP parameter value.
    ///
    /// # Errors
    ///
    /// [`ParamError::Value`] when `s` is empty or holds `=`, a space or a control character.
    pub fn new(s: &str) -> Result<Self, ParamError> {
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| matches!(c, '!'..='<' | '>'..='~') || (!c.is_ascii() && !c.is_control()));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParamError::Value)
        }
    }

    /// The value as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parameter this crate does not interpret, for the application to accept or refuse
/// (an unknown parameter is refused with `555 5.5.4` unless the application says otherwise).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    /// The keyword, upper case.
    pub keyword: Keyword,
    /// The value after `=`, if any.
    pub value: Option<Value>,
}

/// `xtext` (RFC 3461 §4): printable ASCII except `+` and `=`, with any other octet written as
/// `+` and two upper-case hex digits. Kept in its encoded form, so it is sent back exactly.
///
/// Never empty: the grammar allows an empty xtext, but every parameter that holds one (ENVID,
/// ORCPT's address, AUTH=) needs a value, so an empty one could not be sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XText(String);

impl XText {
    /// Validates the encoded form.
    ///
    /// ```text
    /// xtext = *( xchar / hexchar )
    /// xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except for "+" and "=".
    /// hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
    /// ```
    ///
    /// # Errors
    ///
    /// [`ParamError::XText`] when `encoded` is empty or breaks that grammar.
    pub fn new(encoded: &str) -> Result<Self, ParamError> {
        let b = encoded.as_bytes();
        if b.is_empty() {
            return Err(ParamError::XText);
        }
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => {
                    let hex = |c: Option<&u8>| matches!(c, Some(b'0'..=b'9' | b'A'..=b'F'));
                    if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                        return Err(ParamError::XText);
                    }
                    i += 3;
                }
                b'=' => return Err(ParamError::XText),
                b'!'..=b'~' => i += 1,
                _ => return Err(ParamError::XText),
            }
        }
        Ok(Self(encoded.to_owned()))
    }

    /// Encodes arbitrary octets as xtext; `None` for no octets (an xtext is never empty).
    pub fn encode(decoded: &[u8]) -> Option<Self> {
        if decoded.is_empty() {
            return None;
        }
        let mut s = String::with_capacity(decoded.len());
        for &b in decoded {
            if matches!(b, b'!'..=b'~') && b != b'+' && b != b'=' {
                s.push(char::from(b));
            } else {
                s.push_str(&format!("+{b:02X}"));
            }
        }
        Some(Self(s))
    }

    /// The encoded form, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decoded octets.
    pub fn decode(&self) -> Vec<u8> {
        let b = self.0.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'+' {
                // Validated at construction: two hex digits follow.
                let hi = char::from(b[i + 1]).to_digit(16).unwrap_or(0);
                let lo = char::from(b[i + 2]).to_digit(16).unwrap_or(0);
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }
}

/// `BODY=` (RFC 6152 8BITMIME, RFC 3030 BINARYMIME).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// `7BIT`: the content is 7-bit ASCII.
    SevenBit,
    /// `8BITMIME`: octets above 127 may appear, lines still end with CRLF.
    EightBitMime,
    /// `BINARYMIME`: arbitrary octets; only with BDAT (RFC 3030 §3).
    BinaryMime,
}

impl Body {
    /// The keyword value as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` (RFC 3461 §4.3): how much of the message a failure DSN returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// The whole message.
    Full,
    /// The headers only.
    Hdrs,
}

/// `AUTH=` on MAIL (RFC 4954 §5): the identity that submitted the message, if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthParam {
    /// `AUTH=<>`: the submitter is not known or not trusted.
    Unknown,
    /// `AUTH=xtext`: the mailbox of the submitter.
    Identity(XText),
}

/// `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865, FUTURERELEASE).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Hold {
    /// `HOLDFOR=delta-seconds`: hold for this many seconds (`1*9DIGIT`).
    For(u32),
    /// `HOLDUNTIL=date-time`: hold until this RFC 3339 time, kept as sent.
    Until(String),
}

/// `BY=` (RFC 2852, DELIVERBY): `by-value = by-time ";" by-mode [ by-trace ]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliverBy {
    /// Seconds until the deadline (`by-time = ["-" / "+"]1*9digit`; may be negative with `R`).
    pub seconds: i32,
    /// `R` (return if not delivered in time) or `N` (notify).
    pub mode: DeliverByMode,
    /// `T`: trace the message.
    pub trace: bool,
}

/// The `by-mode` of [`DeliverBy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliverByMode {
    /// `N`: deliver late and send a delay notification.
    Notify,
    /// `R`: return the message if not delivered in time.
    Return,
}

/// The parameters of `MAIL FROM:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailParams {
    /// `SIZE=` (RFC 1870): the size the client announces, in octets.
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531): the envelope and headers may hold UTF-8.
    pub smtputf8: bool,
    /// `RET=` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461): the envelope identifier, xtext, at most 100 characters.
    pub envid: Option<XText>,
    /// `AUTH=` (RFC 4954).
    pub auth: Option<AuthParam>,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `MT-PRIORITY=` (RFC 6710): -9 to 9.
    pub mt_priority: Option<i8>,
    /// `HOLDFOR=` or `HOLDUNTIL=` (RFC 4865).
    pub hold: Option<Hold>,
    /// `BY=` (RFC 2852).
    pub by: Option<DeliverBy>,
    /// Parameters this crate does not interpret, in the order sent.
    pub other: Vec<Param>,
}

/// `NOTIFY=` (RFC 3461 §4.1): `"NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" )`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Notify {
    /// Notify on successful delivery.
    pub success: bool,
    /// Notify on failure.
    pub failure: bool,
    /// Notify on delay.
    pub delay: bool,
}

impl Notify {
    /// `NOTIFY=NEVER`.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// Whether this is `NEVER`.
    pub fn is_never(self) -> bool {
        self == Self::NEVER
    }
}

/// `ORCPT=` (RFC 3461 §4.2): `addr-type ";" xtext`, the recipient as originally given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Orcpt {
    addr_type: String,
    address: XText,
}

impl Orcpt {
    /// Builds an ORCPT from its address type (an `atom`, such as `rfc822` or `utf-8`) and the
    /// encoded address.
    ///
    /// # Errors
    ///
    /// [`ParamError::Value`] when `addr_type` is not an atom.
    pub fn new(addr_type: &str, address: XText) -> Result<Self, ParamError> {
        let ok = !addr_type.is_empty()
            && addr_type.len() <= 64
            && addr_type.bytes().all(crate::codec::address::is_atext);
        if ok {
            Ok(Self {
                addr_type: addr_type.to_owned(),
                address,
            })
        } else {
            Err(ParamError::Value)
        }
    }

    /// The address type, as sent (`rfc822`, `utf-8`, ...).
    pub fn addr_type(&self) -> &str {
        &self.addr_type
    }

    /// The encoded address.
    pub fn address(&self) -> &XText {
        &self.address
    }
}

/// The parameters of `RCPT TO:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RcptParams {
    /// `NOTIFY=` (RFC 3461).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461).
    pub orcpt: Option<Orcpt>,
    /// Parameters this crate does not interpret, in the order sent.
    pub other: Vec<Param>,
}
