//! Envelope addresses: domains, address literals, local-parts, mailboxes, reverse- and
//! forward-paths (RFC 5321 §4.1.2, §4.1.3; UTF-8 forms from RFC 6531 §3.3).
//!
//! Every type here is validated when it is built: anything that can be built can be encoded,
//! and its encoding parses back to the same value.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::codec::address as grammar;
use crate::error::AddressError;

/// A domain name: `Domain = sub-domain *("." sub-domain)` (RFC 5321 §4.1.2).
///
/// Each sub-domain is `Let-dig [Ldh-str]` (letters, digits and inner hyphens), or, under
/// SMTPUTF8, a U-label (RFC 6531 §3.3: `sub-domain =/ U-label`). At most 255 octets in all and 63
/// per label (RFC 1035 §2.3.4). The case is kept as written; compare with
/// [`Domain::eq_ignore_case`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Maximum length of a domain in octets (RFC 5321 §4.5.3.1.2).
    pub const MAX_LEN: usize = 255;

    /// Validates `name` as a domain. Non-ASCII labels are accepted (as U-labels); whether they
    /// may be used in a given transaction is the SMTPUTF8 rule, checked by the codec.
    ///
    /// # Errors
    ///
    /// [`AddressError`] when `name` is not a domain.
    pub fn new(name: impl Into<String>) -> Result<Self, AddressError> {
        let name = name.into();
        match grammar::domain(name.as_bytes(), true) {
            Ok((_, [])) => Ok(Self(name)),
            Ok(_) => Err(AddressError::Syntax {
                what: "domain",
                expected: "letters, digits, hyphens and dots",
            }),
            Err(e) => Err(e),
        }
    }

    /// Builds from text the grammar already accepted.
    pub(crate) fn from_validated(name: String) -> Self {
        Self(name)
    }

    /// The domain as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether every label is ASCII (no U-label), so SMTPUTF8 is not needed for it.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// Compares two domains as DNS does: ASCII letters without regard to case.
    pub fn eq_ignore_case(&self, other: &Domain) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({:?})", self.0)
    }
}

impl FromStr for Domain {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Domain {
    type Error = AddressError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

/// An address literal (RFC 5321 §4.1.3):
/// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal / General-address-literal ) "]"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddressLiteral {
    /// `IPv4-address-literal = Snum 3("."  Snum)`
    Ipv4(Ipv4Addr),
    /// `IPv6-address-literal = "IPv6:" IPv6-addr`
    Ipv6(Ipv6Addr),
    /// `General-address-literal = Standardized-tag ":" 1*dcontent`
    General(GeneralLiteral),
}

/// The tag and content of a general address literal, validated:
/// `Standardized-tag = Ldh-str`, `dcontent = %d33-90 / %d94-126`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GeneralLiteral {
    tag: String,
    content: String,
}

impl GeneralLiteral {
    /// Validates a general address literal's tag and content.
    ///
    /// # Errors
    ///
    /// [`AddressError::Syntax`] when the tag is not an Ldh-str (or is `IPv6`, which has its own
    /// form) or the content is empty or holds a character outside `dcontent`.
    pub fn new(tag: impl Into<String>, content: impl Into<String>) -> Result<Self, AddressError> {
        let (tag, content) = (tag.into(), content.into());
        let tag_ok = grammar::is_ldh_str(tag.as_bytes()) && !tag.eq_ignore_ascii_case("IPv6");
        let content_ok = !content.is_empty() && content.bytes().all(grammar::is_dcontent);
        if tag_ok && content_ok {
            Ok(Self { tag, content })
        } else {
            Err(AddressError::Syntax {
                what: "address literal",
                expected: "Standardized-tag \":\" 1*dcontent",
            })
        }
    }

    /// The standardized tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The content after the colon.
    pub fn content(&self) -> &str {
        &self.content
    }
}

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressLiteral::Ipv4(ip) => write!(f, "[{ip}]"),
            AddressLiteral::Ipv6(ip) => write!(f, "[IPv6:{ip}]"),
            AddressLiteral::General(g) => write!(f, "[{}:{}]", g.tag, g.content),
        }
    }
}

/// What follows the `@` of a mailbox, and the argument of HELO/EHLO/LHLO:
/// `Domain / address-literal`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name.
    Domain(Domain),
    /// An address literal in brackets.
    Literal(AddressLiteral),
}

impl Host {
    /// Whether the host needs no SMTPUTF8 (address literals are always ASCII).
    pub fn is_ascii(&self) -> bool {
        match self {
            Host::Domain(d) => d.is_ascii(),
            Host::Literal(_) => true,
        }
    }

    /// The domain, when the host is one.
    pub fn domain(&self) -> Option<&Domain> {
        match self {
            Host::Domain(d) => Some(d),
            Host::Literal(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => d.fmt(f),
            Host::Literal(l) => l.fmt(f),
        }
    }
}

impl FromStr for Host {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match grammar::host(s.as_bytes(), true)? {
            (host, []) => Ok(host),
            _ => Err(AddressError::Syntax {
                what: "host",
                expected: "a domain or an address literal",
            }),
        }
    }
}

impl From<Domain> for Host {
    fn from(d: Domain) -> Self {
        Host::Domain(d)
    }
}

/// The part of a mailbox before the `@`: `Local-part = Dot-string / Quoted-string`
/// (RFC 5321 §4.1.2), holding the value, not the quoting.
///
/// Any string of printable ASCII and spaces can be a local-part (it is quoted on the wire when
/// it is not a Dot-string), and non-ASCII UTF-8 under SMTPUTF8 (RFC 6531 §3.3). Control
/// characters (CR, LF, NUL, DEL, ...) can never be part of one. The local-part MAY be
/// case-sensitive (RFC 5321 §2.4), so it is kept and compared exactly.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalPart(String);

impl LocalPart {
    /// Maximum length of a local-part in octets (RFC 5321 §4.5.3.1.1).
    pub const MAX_LEN: usize = 64;

    /// Validates a local-part value (unquoted).
    ///
    /// # Errors
    ///
    /// [`AddressError::Syntax`] when `value` holds a control character.
    pub fn new(value: impl Into<String>) -> Result<Self, AddressError> {
        let value = value.into();
        if value.chars().all(|c| !c.is_control()) {
            Ok(Self(value))
        } else {
            Err(AddressError::Syntax {
                what: "local-part",
                expected: "printable characters",
            })
        }
    }

    pub(crate) fn from_validated(value: String) -> Self {
        Self(value)
    }

    /// The value, without quoting.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the value is a `Dot-string` and so is sent without quotes.
    pub fn is_dot_string(&self) -> bool {
        grammar::is_dot_string(self.0.as_bytes())
    }

    /// Whether the value is ASCII, so SMTPUTF8 is not needed for it.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// The length of the local-part as it is sent (with quotes and backslashes when needed).
    pub fn encoded_len(&self) -> usize {
        if self.is_dot_string() {
            self.0.len()
        } else {
            2 + self.0.len() + self.0.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
        }
    }
}

impl fmt::Display for LocalPart {
    /// Writes the local-part as it is sent: a Dot-string as is, anything else quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_dot_string() {
            return f.write_str(&self.0);
        }
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            fmt::Write::write_char(f, c)?;
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for LocalPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalPart({:?})", self.0)
    }
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )` (RFC 5321 §4.1.2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local_part: LocalPart,
    host: Host,
}

impl Mailbox {
    /// Builds a mailbox from its parts.
    pub fn new(local_part: LocalPart, host: impl Into<Host>) -> Self {
        Self {
            local_part,
            host: host.into(),
        }
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &LocalPart {
        &self.local_part
    }

    /// The part after the `@`.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Whether the whole mailbox is ASCII, so SMTPUTF8 is not needed for it.
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.host.is_ascii()
    }

    /// Splits into the local-part and host.
    pub fn into_parts(self) -> (LocalPart, Host) {
        (self.local_part, self.host)
    }
}

impl fmt::Display for Mailbox {
    /// Writes the mailbox as it is sent, without angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.host)
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({self})")
    }
}

impl FromStr for Mailbox {
    type Err = AddressError;

    /// Parses `local@host` as written in SMTP (without angle brackets), UTF-8 allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match grammar::mailbox(s.as_bytes(), true)? {
            (mailbox, []) => Ok(mailbox),
            _ => Err(AddressError::Syntax {
                what: "mailbox",
                expected: "local-part \"@\" domain",
            }),
        }
    }
}

impl TryFrom<&str> for Mailbox {
    type Error = AddressError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The sender in `MAIL FROM:`: `Reverse-path = Path / "<>"` (RFC 5321 §4.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// The null reverse-path `<>`, used by bounces and other notifications (RFC 5321 §4.5.5).
    Null,
    /// A mailbox that failures are reported to.
    Mailbox(Mailbox),
}

impl ReversePath {
    /// The mailbox, unless the path is null.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m),
        }
    }

    /// Whether this is the null reverse-path.
    pub fn is_null(&self) -> bool {
        matches!(self, ReversePath::Null)
    }

    /// Whether the path needs no SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

impl fmt::Display for ReversePath {
    /// Writes the path as sent, with angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

impl From<Mailbox> for ReversePath {
    fn from(m: Mailbox) -> Self {
        ReversePath::Mailbox(m)
    }
}

/// A recipient in `RCPT TO:`: `"<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path`
/// (RFC 5321 §4.1.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain: the postmaster of the receiving host, which every SMTP
    /// server MUST accept (RFC 5321 §4.5.1).
    Postmaster,
    /// Any other recipient, `<Postmaster@domain>` included.
    Mailbox(Mailbox),
}

impl ForwardPath {
    /// The mailbox, unless the path is the bare `<Postmaster>`.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            ForwardPath::Postmaster => None,
            ForwardPath::Mailbox(m) => Some(m),
        }
    }

    /// Whether the path needs no SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

impl fmt::Display for ForwardPath {
    /// Writes the path as sent, with angle brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

impl From<Mailbox> for ForwardPath {
    fn from(m: Mailbox) -> Self {
        ForwardPath::Mailbox(m)
    }
}
