//! Parsers for the address rules of RFC 5321 §4.1.2 and §4.1.3, named after their ABNF rules.
//!
//! Each takes the input and whether UTF-8 is allowed (the SMTPUTF8 rules of RFC 6531 §3.3,
//! which add `UTF8-non-ascii` to `atext`, `qtextSMTP` and sub-domains), and returns the value
//! and the rest of the input. Encoding is the `Display` of each type.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::AddressError;
use crate::types::address::{
    AddressLiteral, Domain, ForwardPath, GeneralLiteral, Host, LocalPart, Mailbox, ReversePath,
};

type Parsed<'a, T> = Result<(T, &'a [u8]), AddressError>;

fn syntax(what: &'static str, expected: &'static str) -> AddressError {
    AddressError::Syntax { what, expected }
}

/// `Let-dig = ALPHA / DIGIT`
fn is_let_dig(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `atext` of RFC 5322 §3.2.3: `ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
/// "-" / "/" / "=" / "?" / "^" / "_" / "`" / "{" / "|" / "}" / "~"`
pub(crate) fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// `qtextSMTP = %d32-33 / %d35-91 / %d93-126`: any ASCII graphic or space except `"` and `\`.
fn is_qtext_smtp(b: u8) -> bool {
    matches!(b, 32..=33 | 35..=91 | 93..=126)
}

/// `dcontent = %d33-90 / %d94-126`: printable US-ASCII except `[`, `\` and `]`.
pub(crate) fn is_dcontent(b: u8) -> bool {
    matches!(b, 33..=90 | 94..=126)
}

/// `Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig`, here also allowing a single `Let-dig`, as it
/// appears in `sub-domain = Let-dig [Ldh-str]` and `Standardized-tag = Ldh-str`.
pub(crate) fn is_ldh_str(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(&first), Some(&last)) => {
            is_let_dig(first) && is_let_dig(last) && s.iter().all(|&b| is_let_dig(b) || b == b'-')
        }
        _ => false,
    }
}

/// `Dot-string = Atom *("."  Atom)`, `Atom = 1*atext` (UTF-8 allowed: this checks a value that
/// was already validated as UTF-8).
pub(crate) fn is_dot_string(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b'.')
            .all(|atom| !atom.is_empty() && atom.iter().all(|&b| is_atext(b) || b >= 0x80))
}

/// Checks that `span` is UTF-8 when it holds non-ASCII bytes, and that those are allowed.
fn check_utf8(span: &[u8], utf8: bool, what: &'static str) -> Result<String, AddressError> {
    if span.is_ascii() {
        // ASCII is UTF-8.
        return Ok(String::from_utf8_lossy(span).into_owned());
    }
    if !utf8 {
        return Err(AddressError::NonAscii { what });
    }
    match std::str::from_utf8(span) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => Ok(s.to_owned()),
        _ => Err(syntax(what, "valid UTF-8 text")),
    }
}

/// `Domain = sub-domain *("." sub-domain)`, `sub-domain = Let-dig [Ldh-str]`, and under
/// SMTPUTF8 `sub-domain =/ U-label` (RFC 6531 §3.3).
///
/// Stops before a dot that is not followed by another sub-domain, so a trailing dot is left
/// in the rest for the caller to reject.
pub(crate) fn domain(input: &[u8], utf8: bool) -> Parsed<'_, Domain> {
    let label_char = |b: u8| is_let_dig(b) || b == b'-' || b >= 0x80;
    let mut end = 0;
    loop {
        let start = end;
        match input.get(start) {
            Some(&b) if is_let_dig(b) || b >= 0x80 => {}
            _ => {
                return Err(syntax(
                    "domain",
                    "a letter or digit at the start of each label",
                ));
            }
        }
        let len = input[start..]
            .iter()
            .position(|&b| !label_char(b))
            .unwrap_or(input.len() - start);
        let label = &input[start..start + len];
        if label.last() == Some(&b'-') {
            return Err(syntax(
                "domain",
                "a letter or digit at the end of each label",
            ));
        }
        if label.len() > 63 {
            return Err(AddressError::TooLong {
                what: "domain label",
                limit: 63,
            });
        }
        end = start + len;
        // Continue only when the dot starts another label.
        match (input.get(end), input.get(end + 1)) {
            (Some(b'.'), Some(&b)) if is_let_dig(b) || b >= 0x80 => end += 1,
            _ => break,
        }
    }
    if end > Domain::MAX_LEN {
        return Err(AddressError::TooLong {
            what: "domain",
            limit: Domain::MAX_LEN,
        });
    }
    let name = check_utf8(&input[..end], utf8, "domain")?;
    Ok((Domain::from_validated(name), &input[end..]))
}

/// `address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
/// General-address-literal ) "]"` (RFC 5321 §4.1.3).
pub(crate) fn address_literal(input: &[u8]) -> Parsed<'_, AddressLiteral> {
    let expected = "[IPv4], [IPv6:address] or [tag:content]";
    let Some(rest) = input.strip_prefix(b"[") else {
        return Err(syntax("address literal", expected));
    };
    let Some(close) = rest.iter().position(|&b| b == b']') else {
        return Err(syntax("address literal", "a closing \"]\""));
    };
    let (inner, rest) = (&rest[..close], &rest[close + 1..]);
    let literal = if let Some(ip) = ipv4_address_literal(inner) {
        AddressLiteral::Ipv4(ip)
    } else if inner.len() > 5 && inner[..5].eq_ignore_ascii_case(b"IPv6:") {
        // `IPv6-addr` covers the full, compressed and IPv4-embedded forms of RFC 4291 §2.2,
        // which is what the standard library's parser accepts.
        let ip = std::str::from_utf8(&inner[5..])
            .ok()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| syntax("address literal", "an IPv6 address after \"IPv6:\""))?;
        AddressLiteral::Ipv6(ip)
    } else {
        let colon = inner
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| syntax("address literal", expected))?;
        let tag = String::from_utf8_lossy(&inner[..colon]).into_owned();
        let content = String::from_utf8_lossy(&inner[colon + 1..]).into_owned();
        AddressLiteral::General(GeneralLiteral::new(tag, content)?)
    };
    Ok((literal, rest))
}

/// `IPv4-address-literal = Snum 3("."  Snum)`, `Snum = 1*3DIGIT` representing 0-255.
fn ipv4_address_literal(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = part.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        *octet = u8::try_from(value).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// `( Domain / address-literal )`: the host of a mailbox and the argument of EHLO.
pub(crate) fn host(input: &[u8], utf8: bool) -> Parsed<'_, Host> {
    if input.first() == Some(&b'[') {
        address_literal(input).map(|(l, rest)| (Host::Literal(l), rest))
    } else {
        domain(input, utf8).map(|(d, rest)| (Host::Domain(d), rest))
    }
}

/// `Local-part = Dot-string / Quoted-string`.
pub(crate) fn local_part(input: &[u8], utf8: bool) -> Parsed<'_, LocalPart> {
    if input.first() == Some(&b'"') {
        return quoted_string(input, utf8);
    }
    // Dot-string = Atom *("."  Atom)
    let len = input
        .iter()
        .position(|&b| !(is_atext(b) || b == b'.' || b >= 0x80))
        .unwrap_or(input.len());
    let span = &input[..len];
    if !is_dot_string(span) {
        return Err(syntax(
            "local-part",
            "atoms separated by single dots, or a quoted string",
        ));
    }
    let value = check_utf8(span, utf8, "local-part")?;
    Ok((LocalPart::from_validated(value), &input[len..]))
}

/// `Quoted-string = DQUOTE *QcontentSMTP DQUOTE`, `QcontentSMTP = qtextSMTP / quoted-pairSMTP`,
/// `quoted-pairSMTP = %d92 %d32-126`.
fn quoted_string(input: &[u8], utf8: bool) -> Parsed<'_, LocalPart> {
    let mut value = Vec::new();
    let mut i = 1;
    loop {
        match input.get(i) {
            Some(b'"') => break,
            Some(b'\\') => match input.get(i + 1) {
                Some(&b @ 32..=126) => {
                    value.push(b);
                    i += 2;
                }
                _ => return Err(syntax("local-part", "a printable character after \"\\\"")),
            },
            Some(&b) if is_qtext_smtp(b) || b >= 0x80 => {
                value.push(b);
                i += 1;
            }
            Some(_) => return Err(syntax("local-part", "printable characters inside quotes")),
            None => return Err(syntax("local-part", "a closing quote")),
        }
    }
    let value = check_utf8(&value, utf8, "local-part")?;
    Ok((LocalPart::from_validated(value), &input[i + 1..]))
}

/// `Mailbox = Local-part "@" ( Domain / address-literal )`.
pub(crate) fn mailbox(input: &[u8], utf8: bool) -> Parsed<'_, Mailbox> {
    let (local, rest) = local_part(input, utf8)?;
    let Some(rest) = rest.strip_prefix(b"@") else {
        return Err(syntax("mailbox", "\"@\" after the local-part"));
    };
    let (host, rest) = host(rest, utf8)?;
    Ok((Mailbox::new(local, host), rest))
}

/// `Path = "<" [ A-d-l ":" ] Mailbox ">"`, `A-d-l = At-domain *( "," At-domain )`,
/// `At-domain = "@" Domain`.
///
/// RFC 5321 §4.1.1.3: the source route "MUST BE accepted, SHOULD NOT be generated, and SHOULD be
/// ignored", so it is parsed and dropped.
pub(crate) fn path(input: &[u8], utf8: bool) -> Parsed<'_, Mailbox> {
    let Some(mut rest) = input.strip_prefix(b"<") else {
        return Err(syntax("path", "\"<\""));
    };
    if rest.first() == Some(&b'@') {
        loop {
            let (_, after) = domain(&rest[1..], utf8)?;
            match after.first() {
                Some(b',') if after.get(1) == Some(&b'@') => rest = &after[1..],
                Some(b':') => {
                    rest = &after[1..];
                    break;
                }
                _ => return Err(syntax("path", "\",@domain\" or \":\" in the source route")),
            }
        }
    }
    let (mailbox, rest) = mailbox(rest, utf8)?;
    let Some(rest) = rest.strip_prefix(b">") else {
        return Err(syntax("path", "\">\" after the mailbox"));
    };
    Ok((mailbox, rest))
}

/// `Reverse-path = Path / "<>"`.
pub(crate) fn reverse_path(input: &[u8], utf8: bool) -> Parsed<'_, ReversePath> {
    if let Some(rest) = input.strip_prefix(b"<>") {
        return Ok((ReversePath::Null, rest));
    }
    path(input, utf8).map(|(m, rest)| (ReversePath::Mailbox(m), rest))
}

/// `( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )`, `Forward-path = Path`.
pub(crate) fn forward_path(input: &[u8], utf8: bool) -> Parsed<'_, ForwardPath> {
    const POSTMASTER: &[u8] = b"<postmaster>";
    if input.len() >= POSTMASTER.len() && input[..POSTMASTER.len()].eq_ignore_ascii_case(POSTMASTER)
    {
        return Ok((ForwardPath::Postmaster, &input[POSTMASTER.len()..]));
    }
    path(input, utf8).map(|(m, rest)| (ForwardPath::Mailbox(m), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(s: &str) -> Mailbox {
        s.parse().unwrap()
    }

    #[test]
    fn known_domains() {
        // (input, accepted part, rest)
        let table: &[(&str, &str, &str)] = &[
            ("example.com", "example.com", ""),
            ("a", "a", ""),
            ("x-1.example", "x-1.example", ""),
            ("example.com.", "example.com", "."),
            ("example.com>", "example.com", ">"),
            ("bücher.example", "bücher.example", ""),
        ];
        for &(input, domain_part, rest) in table {
            let (d, r) = domain(input.as_bytes(), true).unwrap();
            assert_eq!(d.as_str(), domain_part, "{input}");
            assert_eq!(r, rest.as_bytes(), "{input}");
        }
        for bad in ["", "-a.example", "a-.example", ".example", "a..b"] {
            let parsed = domain(bad.as_bytes(), true);
            assert!(
                parsed.is_err() || !parsed.unwrap().1.is_empty(),
                "{bad:?} must not parse whole"
            );
        }
        assert_eq!(
            domain("bücher.example".as_bytes(), false),
            Err(AddressError::NonAscii { what: "domain" })
        );
        let long = format!("{}.example", "a".repeat(64));
        assert!(matches!(
            domain(long.as_bytes(), true),
            Err(AddressError::TooLong { .. })
        ));
    }

    #[test]
    fn known_address_literals() {
        let table: &[(&str, AddressLiteral)] = &[
            (
                "[192.0.2.1]",
                AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            (
                "[010.0.2.001]",
                AddressLiteral::Ipv4(Ipv4Addr::new(10, 0, 2, 1)),
            ),
            (
                "[IPv6:2001:db8::1]",
                AddressLiteral::Ipv6("2001:db8::1".parse().unwrap()),
            ),
            ("[ipv6:::1]", AddressLiteral::Ipv6(Ipv6Addr::LOCALHOST)),
            (
                "[x-tag:some-content]",
                AddressLiteral::General(GeneralLiteral::new("x-tag", "some-content").unwrap()),
            ),
        ];
        for (input, expected) in table {
            let (lit, rest) = address_literal(input.as_bytes()).unwrap();
            assert_eq!(&lit, expected, "{input}");
            assert!(rest.is_empty());
            // Encode, then decode: the same value.
            let encoded = lit.to_string();
            assert_eq!(&address_literal(encoded.as_bytes()).unwrap().0, expected);
        }
        for bad in [
            "[256.0.0.1]",
            "[1.2.3]",
            "[IPv6:zz]",
            "[]",
            "[1.2.3.4",
            "[tag:]",
        ] {
            assert!(address_literal(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_local_parts() {
        let table: &[(&str, &str, &str)] = &[
            ("user@x", "user", "@x"),
            ("first.last@x", "first.last", "@x"),
            ("\"John Doe\"@x", "John Doe", "@x"),
            ("\"a\\\"b\\\\c\"@x", "a\"b\\c", "@x"),
            ("\"\"@x", "", "@x"),
            ("!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~", "@x"),
        ];
        for &(input, value, rest) in table {
            let (lp, r) = local_part(input.as_bytes(), false).unwrap();
            assert_eq!(lp.as_str(), value, "{input}");
            assert_eq!(r, rest.as_bytes());
            // The encoding parses back to the same value.
            let encoded = lp.to_string();
            assert_eq!(encoded.len(), lp.encoded_len());
            assert_eq!(local_part(encoded.as_bytes(), false).unwrap().0, lp);
        }
        for bad in [
            ".a@x",
            "a.@x",
            "a..b@x",
            "\"open@x",
            "\"a\rb\"@x",
            "\"a\\\u{1}\"@x",
        ] {
            let parsed = local_part(bad.as_bytes(), false);
            assert!(
                parsed.is_err() || parsed.unwrap().1 != b"@x",
                "{bad:?} must not parse"
            );
        }
    }

    #[test]
    fn paths() {
        let (m, rest) = path(b"<@a.example,@b.example:user@c.example> SIZE=1", false).unwrap();
        assert_eq!(m, mb("user@c.example"));
        assert_eq!(rest, b" SIZE=1");
        assert_eq!(reverse_path(b"<>", false).unwrap().0, ReversePath::Null);
        assert_eq!(
            forward_path(b"<POSTMASTER>", false).unwrap().0,
            ForwardPath::Postmaster
        );
        assert_eq!(
            forward_path(b"<Postmaster@example.com>", false).unwrap().0,
            ForwardPath::Mailbox(mb("Postmaster@example.com"))
        );
        for bad in [
            &b"user@example.com"[..],
            b"<user@example.com",
            b"<user>",
            b"<@a:>",
            b"<@a,b:u@c>",
            b"<a@b@c>",
            b"<>>>",
        ] {
            let parsed = reverse_path(bad, false);
            assert!(
                parsed.is_err() || !parsed.unwrap().1.is_empty(),
                "{:?} must not parse whole",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
