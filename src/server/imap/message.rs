//! One message as FETCH sees it: ENVELOPE, BODYSTRUCTURE and `BODY[section]` bytes, from the
//! MIME structure mail-parser finds (RFC 9051 sections 6.4.5 and 7.5.2).

use mail_parser::{Address as MpAddress, HeaderValue, Message, MessageParser, MessagePart};
use mail_parser::{MimeHeaders, PartType};
use mailroom_imap_proto::types::{
    Address, Body, BodyFields, Envelope, IString, Literal, LiteralMode, NString, PartSpecific,
    SectionText, SinglePart,
};

/// Deepest MIME nesting we describe; deeper parts are shown as opaque (mail-parser has its own
/// limit too, this one bounds our recursion).
const MAX_DEPTH: usize = 32;

/// Parses `raw` (never fails: mail-parser accepts anything, an empty message included).
pub(crate) fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn nstr(s: Option<&str>) -> NString {
    s.and_then(|s| IString::from_bytes(s.as_bytes().to_vec()).ok())
}

fn nbytes(b: &[u8]) -> NString {
    // A section holding NUL can only go as literal8 (RFC 3516), which clients accept.
    Some(
        IString::from_bytes(b.to_vec())
            .unwrap_or_else(|_| IString::Literal(Literal::binary(b.to_vec(), LiteralMode::Sync))),
    )
}

/// The raw value of the first header `name`, unfolded and trimmed (ENVELOPE carries header
/// values as sent).
fn raw_header(msg: &Message<'_>, raw: &[u8], name: &str) -> Option<String> {
    let part = msg.parts.first()?;
    let h = part
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    let bytes = raw.get(h.offset_start as usize..h.offset_end as usize)?;
    let text = String::from_utf8_lossy(bytes);
    let unfolded: String = text.replace("\r\n", "").replace('\n', "");
    Some(unfolded.trim().to_owned())
}

fn addresses(value: Option<&MpAddress<'_>>) -> Option<Vec<Address>> {
    let value = value?;
    let mut out = Vec::new();
    let one = |a: &mail_parser::Addr<'_>| {
        let addr = a.address.as_deref().unwrap_or("");
        let (mailbox, host) = match addr.rsplit_once('@') {
            Some((m, h)) => (m, Some(h)),
            None => (addr, None),
        };
        Address {
            name: nstr(a.name.as_deref()),
            adl: None,
            mailbox: nstr(Some(mailbox)),
            host: nstr(Some(host.unwrap_or("MISSING_DOMAIN"))),
        }
    };
    match value {
        MpAddress::List(list) => out.extend(list.iter().map(one)),
        MpAddress::Group(groups) => {
            for g in groups {
                match &g.name {
                    // RFC 9051 7.5.2: a group is a start marker (NIL host, mailbox = the group
                    // name), its members, and an end marker (NIL mailbox and host).
                    Some(name) => {
                        out.push(Address {
                            mailbox: nstr(Some(name)),
                            ..Address::default()
                        });
                        out.extend(g.addresses.iter().map(one));
                        out.push(Address::default());
                    }
                    None => out.extend(g.addresses.iter().map(one)),
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// ENVELOPE of a message.
pub(crate) fn envelope(msg: &Message<'_>) -> Envelope {
    envelope_in(msg, msg.raw_message())
}

/// ENVELOPE of a (possibly nested) message; `raw` is the outermost message, which
/// mail-parser's offsets count from, nested messages included.
fn envelope_in(msg: &Message<'_>, raw: &[u8]) -> Envelope {
    let from = addresses(msg.from());
    // RFC 9051 7.5.2: sender and reply-to default to from when absent.
    let sender = addresses(msg.sender()).or_else(|| from.clone());
    let reply_to = addresses(msg.reply_to()).or_else(|| from.clone());
    Envelope {
        date: nstr(raw_header(msg, raw, "Date").as_deref()),
        subject: nstr(raw_header(msg, raw, "Subject").as_deref()),
        from,
        sender,
        reply_to,
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        bcc: addresses(msg.bcc()),
        in_reply_to: nstr(raw_header(msg, raw, "In-Reply-To").as_deref()),
        message_id: nstr(raw_header(msg, raw, "Message-ID").as_deref()),
    }
}

fn istr(s: &str) -> IString {
    // IString::from_bytes refuses only NUL, removed here; the fallback is never taken.
    IString::from_bytes(s.replace('\0', "").into_bytes())
        .unwrap_or_else(|_| IString::Literal(Literal::binary(Vec::new(), LiteralMode::Sync)))
}

/// BODYSTRUCTURE (or BODY) of a message.
pub(crate) fn body_structure(msg: &Message<'_>) -> Body {
    part_body(msg, msg.raw_message(), 0, 0)
}

fn part_body(msg: &Message<'_>, raw: &[u8], id: usize, depth: usize) -> Body {
    let Some(part) = msg.parts.get(id) else {
        return text_plain(0, 0);
    };
    let ct = part.content_type();
    let (ty, sub) = match ct {
        Some(ct) => (
            ct.ctype().to_ascii_uppercase(),
            ct.subtype().unwrap_or("").to_ascii_uppercase(),
        ),
        None => ("TEXT".to_owned(), "PLAIN".to_owned()),
    };
    if let PartType::Multipart(children) = &part.body
        && depth < MAX_DEPTH
    {
        let parts: Vec<Body> = children
            .iter()
            .map(|c| part_body(msg, raw, *c as usize, depth + 1))
            .collect();
        if !parts.is_empty() {
            return Body::Multi {
                parts,
                subtype: istr(if sub.is_empty() { "MIXED" } else { &sub }),
                extension: Vec::new(),
            };
        }
    }
    let body_raw = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or(&[]);
    let params = ct.and_then(|ct| ct.attributes()).map(|attrs| {
        attrs
            .iter()
            .map(|a| (istr(&a.name.to_ascii_uppercase()), istr(&a.value)))
            .collect::<Vec<_>>()
    });
    let params = match (params, ty.as_str()) {
        (Some(p), _) if !p.is_empty() => Some(p),
        (_, "TEXT") => Some(vec![(istr("CHARSET"), istr("US-ASCII"))]),
        _ => None,
    };
    let fields = BodyFields {
        params,
        id: nstr(part.content_id().map(|s| format!("<{s}>")).as_deref()),
        description: nstr(part.content_description()),
        encoding: istr(
            &part
                .content_transfer_encoding()
                .unwrap_or("7BIT")
                .to_ascii_uppercase(),
        ),
        octets: body_raw.len() as u64,
    };
    let lines = body_raw.iter().filter(|b| **b == b'\n').count() as u64;
    let specific = match (&part.body, ty.as_str()) {
        (PartType::Message(inner), _) if depth < MAX_DEPTH => PartSpecific::Message {
            envelope: Box::new(envelope_in(inner, raw)),
            body: Box::new(part_body(inner, raw, 0, depth + 1)),
            lines,
        },
        (_, "TEXT") => PartSpecific::Text { lines },
        _ => PartSpecific::Basic,
    };
    let (ty, sub) = if matches!(specific, PartSpecific::Message { .. }) {
        ("MESSAGE".to_owned(), "RFC822".to_owned())
    } else if ty == "MESSAGE" && sub == "RFC822" {
        // Not parsed as a message (too deep): describe it as opaque.
        ("APPLICATION".to_owned(), "OCTET-STREAM".to_owned())
    } else if sub.is_empty() {
        ("APPLICATION".to_owned(), "OCTET-STREAM".to_owned())
    } else {
        (ty, sub)
    };
    Body::Single(SinglePart {
        media_type: istr(&ty),
        subtype: istr(&sub),
        fields,
        specific,
        extension: Vec::new(),
    })
}

fn text_plain(octets: u64, lines: u64) -> Body {
    Body::Single(SinglePart {
        media_type: istr("TEXT"),
        subtype: istr("PLAIN"),
        fields: BodyFields {
            params: Some(vec![(istr("CHARSET"), istr("US-ASCII"))]),
            id: None,
            description: None,
            encoding: istr("7BIT"),
            octets,
        },
        specific: PartSpecific::Text { lines },
        extension: Vec::new(),
    })
}

/// Where a section path leads: the message that holds the part, and the part.
struct Located<'m, 'x> {
    msg: &'m Message<'x>,
    part: &'m MessagePart<'x>,
}

fn locate<'m, 'x>(root: &'m Message<'x>, path: &[u32]) -> Option<Located<'m, 'x>> {
    let mut msg = root;
    let mut part = msg.parts.first()?;
    for (i, n) in path.iter().enumerate() {
        // RFC 9051 6.4.5: a part of an encapsulated message is numbered within that message.
        if i > 0
            && let PartType::Message(inner) = &part.body
        {
            msg = inner;
            part = msg.parts.first()?;
        }
        let index = (*n as usize).checked_sub(1)?;
        part = match &part.body {
            PartType::Multipart(children) => msg.parts.get(*children.get(index)? as usize)?,
            // A non-multipart message has one part, number 1: its body.
            _ if index == 0 => part,
            _ => return None,
        };
    }
    Some(Located { msg, part })
}

/// The octets of `BODY[part.text]`; `None` when the part does not exist (the response is then
/// an empty string, as Dovecot answers).
pub(crate) fn section(root: &Message<'_>, path: &[u32], text: Option<&SectionText>) -> Vec<u8> {
    let Some(Located { msg, part }) = locate(root, path) else {
        return Vec::new();
    };
    // Offsets of nested parts count from the outermost message.
    let raw = root.raw_message();
    let slice = |a: u32, b: u32| raw.get(a as usize..b as usize).unwrap_or(&[]).to_vec();
    // HEADER and TEXT of a part apply to the message it encapsulates.
    let header_of = |inner: &Message<'_>| -> (Vec<u8>, Vec<u8>) {
        let Some(p) = inner.parts.first() else {
            return (Vec::new(), Vec::new());
        };
        (
            slice(p.offset_header, p.offset_body),
            slice(p.offset_body, p.offset_end),
        )
    };
    match text {
        None if path.is_empty() => raw.to_vec(),
        None => slice(part.offset_body, part.offset_end),
        Some(SectionText::Mime) => slice(part.offset_header, part.offset_body),
        Some(t) => {
            let (header, body) = if path.is_empty() {
                header_of(msg)
            } else if let PartType::Message(inner) = &part.body {
                header_of(inner)
            } else {
                return Vec::new();
            };
            match t {
                SectionText::Text => body,
                SectionText::Header => header,
                SectionText::HeaderFields(names) => filter_header(&header, names, true),
                SectionText::HeaderFieldsNot(names) => filter_header(&header, names, false),
                SectionText::Mime => Vec::new(),
            }
        }
    }
}

/// The decoded content of a part for `BINARY[part]` (RFC 3516); `None` when it cannot be
/// decoded (the server then answers NO with `UNKNOWN-CTE`).
pub(crate) fn binary(root: &Message<'_>, path: &[u32]) -> Option<Vec<u8>> {
    if path.is_empty() {
        return Some(root.raw_message().to_vec());
    }
    let Located { part, .. } = locate(root, path)?;
    match &part.body {
        PartType::Multipart(_) | PartType::Message(_) => Some(
            root.raw_message()
                .get(part.offset_body as usize..part.offset_end as usize)?
                .to_vec(),
        ),
        _ => Some(part.contents().to_vec()),
    }
}

/// The header lines whose field name is (or, with `keep == false`, is not) in `names`, then
/// the blank line (RFC 9051 6.4.5).
fn filter_header(
    header: &[u8],
    names: &[mailroom_imap_proto::types::AString],
    keep: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut include = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|b| *b == b':').next().unwrap_or(&[]);
            let name = name.trim_ascii();
            let listed = names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
            include = listed == keep;
        }
        if include {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The header's value as text for SEARCH (decoded where mail-parser decodes it).
pub(crate) fn header_text(msg: &Message<'_>, name: &str) -> Vec<String> {
    let Some(part) = msg.parts.first() else {
        return Vec::new();
    };
    part.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            let mut s = match &h.value {
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(l) => l.join(" "),
                HeaderValue::Address(a) => {
                    let mut s = String::new();
                    let addrs: Vec<&mail_parser::Addr<'_>> = match a {
                        MpAddress::List(l) => l.iter().collect(),
                        MpAddress::Group(g) => g.iter().flat_map(|g| g.addresses.iter()).collect(),
                    };
                    for a in addrs {
                        s.push_str(a.name.as_deref().unwrap_or(""));
                        s.push_str(" <");
                        s.push_str(a.address.as_deref().unwrap_or(""));
                        s.push_str("> ");
                    }
                    s
                }
                _ => String::new(),
            };
            let raw = msg
                .raw_message()
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or(&[]);
            s.push(' ');
            s.push_str(&String::from_utf8_lossy(raw));
            s
        })
        .collect()
}

/// The decoded text of every text part, for SEARCH BODY.
pub(crate) fn body_text(msg: &Message<'_>) -> String {
    let mut out = String::new();
    for part in &msg.parts {
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                out.push_str(t);
                out.push('\n');
            }
            PartType::Message(inner) => {
                out.push_str(&String::from_utf8_lossy(inner.raw_message()));
            }
            _ => {}
        }
    }
    out
}

/// Unix time of the Date header, for SENTBEFORE/SENTON/SENTSINCE.
pub(crate) fn sent_date(msg: &Message<'_>) -> Option<(u16, u8, u8)> {
    let d = msg.date()?;
    Some((d.year, d.month, d.day))
}

/// An owned buffer as a string (literal when long), without copying it again.
pub(crate) fn nstring_owned(bytes: Vec<u8>) -> NString {
    // Only NUL is refused by `from_bytes`: such a message goes as literal8, as in `nbytes`.
    if bytes.contains(&0) {
        return nbytes(&bytes);
    }
    IString::from_bytes(bytes).ok()
}

/// Bytes of a header field's raw value for NString use.
pub(crate) fn nstring(bytes: &[u8]) -> NString {
    nbytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"From: A <a@example.test>\r\nTo: b@example.test\r\nSubject: hi\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nfirst\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\n\r\ninner body\r\n--XX--\r\n";

    #[test]
    fn sections_of_a_multipart_message() {
        let m = parse(MULTI).unwrap();
        assert_eq!(section(&m, &[1], None), b"first");
        assert_eq!(
            section(&m, &[1], Some(&SectionText::Mime)),
            b"Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(
            section(&m, &[2], Some(&SectionText::Header)),
            b"Subject: inner\r\n\r\n"
        );
        assert_eq!(section(&m, &[2, 1], None), b"inner body");
        assert_eq!(section(&m, &[3], None), b"");
        let h = section(
            &m,
            &[],
            Some(&SectionText::HeaderFields(vec![
                "subject".try_into().unwrap(),
            ])),
        );
        assert_eq!(h, b"Subject: hi\r\n\r\n");
        assert!(section(&m, &[], Some(&SectionText::Text)).starts_with(b"preamble"));
    }

    #[test]
    fn envelope_and_structure() {
        let m = parse(MULTI).unwrap();
        let e = envelope(&m);
        assert_eq!(e.subject.unwrap().as_bytes(), b"hi");
        let from = e.from.unwrap();
        assert_eq!(from[0].host.as_ref().unwrap().as_bytes(), b"example.test");
        assert_eq!(e.sender.unwrap(), from);
        let Body::Multi { parts, .. } = body_structure(&m) else {
            panic!("multipart")
        };
        assert_eq!(parts.len(), 2);
        assert!(matches!(
            &parts[1],
            Body::Single(SinglePart {
                specific: PartSpecific::Message { .. },
                ..
            })
        ));
    }

    #[test]
    fn single_part_message() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(section(&m, &[1], None), b"body\r\n");
        assert_eq!(binary(&m, &[1]).unwrap(), b"body\r\n");
        assert!(matches!(body_structure(&m), Body::Single(_)));
    }
}
