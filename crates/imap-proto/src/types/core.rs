//! The lexical building blocks of RFC 9051 section 9: tags, atoms, strings, literals.
//!
//! Every type here is a validated newtype: a value that exists can be encoded.

use std::fmt;

/// Why a value could not become one of this crate's validated types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The value was empty where the grammar needs at least one character.
    #[error("{what} must not be empty")]
    Empty {
        /// The type being built (`tag`, `atom`, ...).
        what: &'static str,
    },
    /// The value contained a byte the grammar does not allow there.
    #[error("{what} must not contain byte 0x{byte:02x} (at index {index})")]
    Byte {
        /// The type being built.
        what: &'static str,
        /// The offending byte.
        byte: u8,
        /// Its position.
        index: usize,
    },
    /// The value broke another rule of its type.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The type being built.
        what: &'static str,
        /// What was wrong.
        detail: &'static str,
    },
}

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 1usize;
    while b < 0x80 {
        let c = b as u8;
        let ctl = c < 0x20 || c == 0x7f;
        // atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
        let special = matches!(
            c,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        );
        if !ctl && !special {
            t[b] |= ATOM;
        }
        if !ctl && (!special || c == b']') {
            t[b] |= ASTRING;
            if c != b'+' {
                t[b] |= TAG;
            }
        }
        if !ctl && (!special || matches!(c, b']' | b'%' | b'*')) {
            t[b] |= LIST;
        }
        b += 1;
    }
    t
}
const ATOM: u8 = 1;
const ASTRING: u8 = 2;
const TAG: u8 = 4;
const LIST: u8 = 8;
static CLASSES: [u8; 256] = class_table();

/// `ATOM-CHAR = <any CHAR except atom-specials>` (RFC 9051 section 9).
#[inline]
pub fn is_atom_char(b: u8) -> bool {
    CLASSES[b as usize] & ATOM != 0
}
/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
#[inline]
pub fn is_astring_char(b: u8) -> bool {
    CLASSES[b as usize] & ASTRING != 0
}
/// `tag = 1*<any ASTRING-CHAR except "+">`.
#[inline]
pub fn is_tag_char(b: u8) -> bool {
    CLASSES[b as usize] & TAG != 0
}
/// `list-char = ATOM-CHAR / list-wildcards / resp-specials`.
#[inline]
pub fn is_list_char(b: u8) -> bool {
    CLASSES[b as usize] & LIST != 0
}
/// `TEXT-CHAR = <any CHAR except CR and LF>`, widened to UTF-8 octets as RFC 9051 allows in text.
#[inline]
pub fn is_text_char(b: u8) -> bool {
    !matches!(b, 0 | b'\r' | b'\n')
}

fn check_chars(what: &'static str, s: &str, ok: fn(u8) -> bool) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::Empty { what });
    }
    match s.bytes().enumerate().find(|&(_, b)| !ok(b)) {
        Some((index, byte)) => Err(ValidationError::Byte { what, byte, index }),
        None => Ok(()),
    }
}

macro_rules! token_type {
    ($(#[$m:meta])* $name:ident, $what:literal, $class:path) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against the grammar rule and wraps it.
            ///
            /// # Errors
            ///
            /// [`ValidationError`] when `s` is empty or holds a byte the rule forbids.
            pub fn new(s: impl Into<String>) -> Result<Self, ValidationError> {
                let s = s.into();
                check_chars($what, &s, $class)?;
                Ok(Self(s))
            }
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Built by the parser from bytes it has already checked.
            pub(crate) fn from_checked(b: &[u8]) -> Self {
                // The parser only hands over ASCII bytes of the right class.
                Self(String::from_utf8_lossy(b).into_owned())
            }
        }
        impl TryFrom<&str> for $name {
            type Error = ValidationError;
            fn try_from(s: &str) -> Result<Self, ValidationError> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, ValidationError> {
                Self::new(s)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

token_type!(
    /// A command tag: `tag = 1*<any ASTRING-CHAR except "+">` (RFC 9051 section 9).
    Tag, "tag", is_tag_char
);
token_type!(
    /// An atom: `atom = 1*ATOM-CHAR` (RFC 9051 section 9).
    Atom, "atom", is_atom_char
);
token_type!(
    /// The unquoted form of an astring: `1*ASTRING-CHAR` (an atom that may contain `]`).
    AtomExt, "astring atom", is_astring_char
);
token_type!(
    /// An unquoted mailbox pattern: `1*list-char` (may contain the wildcards `%` and `*`).
    ListToken, "list-mailbox", is_list_char
);

/// A quoted string: `quoted = DQUOTE *QUOTED-CHAR DQUOTE` (RFC 9051 section 9).
///
/// Holds the unescaped text; valid UTF-8 (rev2 allows UTF-8 in quoted strings) with no NUL,
/// CR or LF.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quoted(String);

impl Quoted {
    /// Validates and wraps.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when `s` holds NUL, CR or LF.
    pub fn new(s: impl Into<String>) -> Result<Self, ValidationError> {
        let s = s.into();
        match s.bytes().enumerate().find(|&(_, b)| !is_text_char(b)) {
            Some((index, byte)) => Err(ValidationError::Byte {
                what: "quoted string",
                byte,
                index,
            }),
            None => Ok(Self(s)),
        }
    }
    /// The unescaped text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub(crate) fn from_checked(s: String) -> Self {
        Self(s)
    }
}
impl fmt::Debug for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quoted({:?})", self.0)
    }
}

/// Whether a literal waits for the server's `+` (RFC 9051 section 4.3, RFC 7888).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LiteralMode {
    /// `{n}`: the client waits for a continuation request before sending the octets.
    Sync,
    /// `{n+}` (LITERAL+ / LITERAL-): the octets follow at once.
    NonSync,
}

/// A literal: `literal = "{" number64 ["+"] "}" CRLF *CHAR8` or, when `binary`,
/// `literal8 = "~{" number64 "}" CRLF *OCTET` (RFC 9051 section 9, RFC 3516).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Literal {
    data: Vec<u8>,
    mode: LiteralMode,
    binary: bool,
}

impl Literal {
    /// A literal of octets other than NUL (`CHAR8 = %x01-ff`).
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when `data` holds a NUL octet: only `literal8` may.
    pub fn new(data: impl Into<Vec<u8>>, mode: LiteralMode) -> Result<Self, ValidationError> {
        let data = data.into();
        if let Some(index) = memchr::memchr(0, &data) {
            return Err(ValidationError::Byte {
                what: "literal",
                byte: 0,
                index,
            });
        }
        Ok(Self {
            data,
            mode,
            binary: false,
        })
    }
    /// A `literal8` (`~{n}`), which may hold any octet (RFC 3516 BINARY).
    pub fn binary(data: impl Into<Vec<u8>>, mode: LiteralMode) -> Self {
        Self {
            data: data.into(),
            mode,
            binary: true,
        }
    }
    /// The octets.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Sync or non-sync.
    pub fn mode(&self) -> LiteralMode {
        self.mode
    }
    /// Whether this is a `literal8`.
    pub fn is_binary(&self) -> bool {
        self.binary
    }
    /// The same octets as a different kind of literal.
    pub fn with_mode(mut self, mode: LiteralMode) -> Self {
        self.mode = mode;
        self
    }
    pub(crate) fn from_checked(data: Vec<u8>, mode: LiteralMode, binary: bool) -> Self {
        Self { data, mode, binary }
    }
}
impl fmt::Debug for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Literal{}({:?}, {:?})",
            if self.binary { "8" } else { "" },
            self.mode,
            String::from_utf8_lossy(&self.data)
        )
    }
}

/// `string = quoted / literal` (RFC 9051 section 9). The form is kept so that re-encoding gives the
/// same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IString {
    /// `"..."`.
    Quoted(Quoted),
    /// `{n}` followed by the octets.
    Literal(Literal),
}

impl IString {
    /// Picks the form for `data`: quoted when it can be (short, 7-bit, no CR/LF), else a
    /// synchronising literal. 8-bit text goes as a literal because IMAP4rev1 allows only 7-bit
    /// quoted strings (RFC 3501 section 4.3); IMAP4rev2 readers accept both.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when `data` holds a NUL octet, which no string may carry.
    pub fn from_bytes(data: impl Into<Vec<u8>>) -> Result<Self, ValidationError> {
        let data = data.into();
        if data.len() <= 1024 && data.iter().all(|&b| is_text_char(b) && b < 0x80) {
            // 7-bit, so valid UTF-8.
            return Ok(IString::Quoted(Quoted(
                String::from_utf8_lossy(&data).into_owned(),
            )));
        }
        Literal::new(data, LiteralMode::Sync).map(IString::Literal)
    }
    /// The string's octets, whatever its form.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            IString::Quoted(q) => q.0.as_bytes(),
            IString::Literal(l) => &l.data,
        }
    }
    /// The octets as text, replacing invalid UTF-8.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

/// `astring = 1*ASTRING-CHAR / string` (RFC 9051 section 9).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AString {
    /// The unquoted form.
    Atom(AtomExt),
    /// A quoted string or literal.
    String(IString),
}

impl AString {
    /// Picks the shortest form for `data`: an atom when possible, else as [`IString::from_bytes`].
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when `data` holds a NUL octet.
    pub fn from_bytes(data: impl Into<Vec<u8>>) -> Result<Self, ValidationError> {
        let data = data.into();
        if !data.is_empty() && data.iter().all(|&b| is_astring_char(b)) {
            return Ok(AString::Atom(AtomExt::from_checked(&data)));
        }
        IString::from_bytes(data).map(AString::String)
    }
    /// The octets, whatever the form.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AString::Atom(a) => a.as_str().as_bytes(),
            AString::String(s) => s.as_bytes(),
        }
    }
    /// The octets as text, replacing invalid UTF-8.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl TryFrom<&str> for AString {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, ValidationError> {
        AString::from_bytes(s.as_bytes())
    }
}
impl TryFrom<&str> for IString {
    type Error = ValidationError;
    fn try_from(s: &str) -> Result<Self, ValidationError> {
        IString::from_bytes(s.as_bytes())
    }
}

/// `nstring = string / nil` (RFC 9051 section 9).
pub type NString = Option<IString>;

/// A credential whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a credential.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The credential itself: call only where it is checked.
    pub fn expose(&self) -> &T {
        &self.0
    }
}
impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_classes_follow_rfc9051() {
        for b in [
            b'(', b')', b'{', b' ', b'%', b'*', b'"', b'\\', b']', 0, 0x7f, 0x80, b'\r',
        ] {
            assert!(!is_atom_char(b), "{b:#x}");
        }
        assert!(is_astring_char(b']') && !is_atom_char(b']'));
        assert!(is_astring_char(b'+') && !is_tag_char(b'+'));
        assert!(is_list_char(b'%') && is_list_char(b'*'));
        assert!(is_atom_char(b'}') && is_atom_char(b'A'));
    }

    #[test]
    fn newtypes_cannot_be_built_invalid() {
        assert!(Tag::new("a001").is_ok());
        assert!(Tag::new("a+1").is_err());
        assert!(Tag::new("").is_err());
        assert!(Atom::new("FOO BAR").is_err());
        assert!(Quoted::new("a\r\nb").is_err());
        assert!(Quoted::new("a\0b").is_err());
        assert!(Literal::new(b"a\0".to_vec(), LiteralMode::Sync).is_err());
        assert!(IString::from_bytes(b"x\0".to_vec()).is_err());
        assert!(matches!(AString::try_from("INBOX"), Ok(AString::Atom(_))));
        assert!(matches!(
            AString::try_from("two words"),
            Ok(AString::String(IString::Quoted(_)))
        ));
        assert!(matches!(
            AString::try_from("line\r\nbreak"),
            Ok(AString::String(IString::Literal(_)))
        ));
        // 8-bit text is a literal: IMAP4rev1 quoted strings are 7-bit.
        assert!(matches!(
            IString::try_from("Grüße"),
            Ok(IString::Literal(_))
        ));
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret(<redacted>)"
        );
    }
}
