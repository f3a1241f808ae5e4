//! Mailbox names: `mailbox = "INBOX" / astring` (RFC 9051 section 9), modified UTF-7
//! (RFC 3501 section 5.1.3) and UTF-8 under UTF8=ACCEPT (RFC 6855).

use super::core::{AString, ValidationError};

/// A mailbox name as it travels on the wire (the astring, its form kept).
///
/// `INBOX` is case-insensitive (RFC 9051 section 5.1); [`Mailbox::is_inbox`] asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox(AString);

impl Mailbox {
    /// Wraps a wire name.
    pub fn new(name: AString) -> Self {
        Self(name)
    }
    /// `INBOX`.
    pub fn inbox() -> Self {
        Self(AString::Atom(super::core::AtomExt::from_checked(b"INBOX")))
    }
    /// Builds the wire name for a Unicode name: raw UTF-8 when the client enabled UTF8=ACCEPT,
    /// else modified UTF-7.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when `name` is empty or holds NUL, CR or LF.
    pub fn from_unicode(name: &str, utf8_accept: bool) -> Result<Self, ValidationError> {
        if name.is_empty() {
            return Err(ValidationError::Empty {
                what: "mailbox name",
            });
        }
        if let Some((index, byte)) = name
            .bytes()
            .enumerate()
            .find(|&(_, b)| matches!(b, 0 | b'\r' | b'\n'))
        {
            return Err(ValidationError::Byte {
                what: "mailbox name",
                byte,
                index,
            });
        }
        let wire = if utf8_accept {
            name.to_owned()
        } else {
            encode_modified_utf7(name)
        };
        AString::from_bytes(wire.into_bytes()).map(Self)
    }
    /// The wire form.
    pub fn as_astring(&self) -> &AString {
        &self.0
    }
    /// The wire octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
    /// Whether this names INBOX (any case).
    pub fn is_inbox(&self) -> bool {
        self.0.as_bytes().eq_ignore_ascii_case(b"INBOX")
    }
    /// The Unicode name: decoded from modified UTF-7 unless `utf8_accept`.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when the wire name is not valid modified UTF-7 (or UTF-8).
    pub fn to_unicode(&self, utf8_accept: bool) -> Result<String, ValidationError> {
        let bytes = self.0.as_bytes();
        if utf8_accept {
            return String::from_utf8(bytes.to_vec()).map_err(|_| ValidationError::Invalid {
                what: "mailbox name",
                detail: "not UTF-8",
            });
        }
        decode_modified_utf7(bytes)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes `name` in modified UTF-7 (RFC 3501 section 5.1.3): printable US-ASCII stands for
/// itself, `&` becomes `&-`, everything else is UTF-16 in modified BASE64 between `&` and `-`.
pub fn encode_modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes modified UTF-7 strictly: rejects 8-bit octets, unterminated shifts, non-canonical
/// padding bits and shifted runs that encode printable ASCII.
///
/// # Errors
///
/// [`ValidationError::Invalid`] naming what was wrong.
pub fn decode_modified_utf7(wire: &[u8]) -> Result<String, ValidationError> {
    let bad = |detail| ValidationError::Invalid {
        what: "modified UTF-7 mailbox name",
        detail,
    };
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    while i < wire.len() {
        let b = wire[i];
        if !(0x20..=0x7e).contains(&b) {
            return Err(bad("octet outside printable US-ASCII"));
        }
        if b != b'&' {
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let end = wire[i + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| i + 1 + p)
            .ok_or_else(|| bad("'&' without closing '-'"))?;
        let run = &wire[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units = Vec::new();
        for &c in run {
            let v = B64
                .iter()
                .position(|&x| x == c)
                .ok_or_else(|| bad("character outside modified BASE64"))?;
            bits = (bits << 6) | v as u32;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push(((bits >> nbits) & 0xffff) as u16);
            }
        }
        if nbits >= 6 || bits & ((1 << nbits) - 1) != 0 {
            return Err(bad("non-zero or excess padding bits"));
        }
        let s = String::from_utf16(&units).map_err(|_| bad("invalid UTF-16"))?;
        if s.chars().any(|c| (' '..='~').contains(&c)) {
            return Err(bad("printable ASCII must not be shifted"));
        }
        out.push_str(&s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3501 section 5.1.3: "~peter/mail/&U,BTFw-/&ZeVnLIqe-" is ~peter/mail/台北/日本語.
    const KNOWN: &[(&str, &str)] = &[
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("&", "&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("INBOX", "INBOX"),
        ("😀", "&2D3eAA-"),
    ];

    #[test]
    fn modified_utf7_known_answers() {
        for (name, wire) in KNOWN {
            assert_eq!(encode_modified_utf7(name), *wire);
            assert_eq!(decode_modified_utf7(wire.as_bytes()).unwrap(), *name);
        }
    }

    #[test]
    fn modified_utf7_rejects_malformed() {
        for bad in ["&U,BTF2XlZyyKng", "&AGE-", "&Jjo!", "\u{e9}", "&U,BTFw"] {
            assert!(decode_modified_utf7(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn mailbox_utf8_accept_and_inbox() {
        let m = Mailbox::from_unicode("台北", true).unwrap();
        assert_eq!(m.as_bytes(), "台北".as_bytes());
        assert_eq!(m.to_unicode(true).unwrap(), "台北");
        let m = Mailbox::from_unicode("台北", false).unwrap();
        assert_eq!(m.as_bytes(), b"&U,BTFw-");
        assert!(Mailbox::new(AString::try_from("inBoX").unwrap()).is_inbox());
        assert!(Mailbox::from_unicode("", false).is_err());
    }
}
