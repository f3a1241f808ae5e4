//! Responses: the server's encoder and the client's parser, side by side (RFC 9051 section 9).

use super::Encode;
use super::command::{
    encode_id_params, encode_section_binary, id_params_list, section, section_binary, status_att,
};
use super::core::{
    PResult, astring, atom, byte, check_depth, crlf, date_time, encode_list, fail, flag_list,
    flag_perm, kw, literal_any, mailbox, nstring, number, number64, nz_number, paren_list,
    push_num, quoted, sequence_set, sp, string, tag, take1,
};
use crate::types::{
    Address, Body, BodyExtension, BodyFields, Code, Continue, Data, ESearchItem, Envelope,
    ExtValue, FetchValue, IString, ListData, MailboxAttr, NamespaceDescr, PartSpecific, Response,
    SinglePart, StatusKind, StatusResponse, Tag, is_atom_char, is_text_char,
};

fn upper<'b>(word: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    if word.len() > buf.len() {
        return b"";
    }
    for (d, s) in buf.iter_mut().zip(word) {
        *d = s.to_ascii_uppercase();
    }
    &buf[..word.len()]
}

/// One response line (with its literals): `continue-req / response-data / response-tagged /
/// response-fatal / greeting`, CRLF included.
pub(crate) fn response(i: &[u8]) -> PResult<'_, Response> {
    let (i, r) = match i.first() {
        Some(b'+') => {
            let (i, c) = continue_req(&i[1..])?;
            (i, Response::Continue(c))
        }
        Some(b'*') => {
            let (i, ()) = kw("* ")(i)?;
            untagged(i)?
        }
        _ => {
            let (i, t) = tag(i)?;
            let (i, ()) = sp(i)?;
            let (i, s) = status(i, Some(t))?;
            (i, Response::Status(s))
        }
    };
    let (i, ()) = crlf(i)?;
    Ok((i, r))
}

/// `continue-req = "+" SP (resp-text / base64) CRLF` (leniently: the SP may be missing when
/// nothing follows).
fn continue_req(i: &[u8]) -> PResult<'_, Continue> {
    let i = i.strip_prefix(b" ").unwrap_or(i);
    let (i, (code, text)) = resp_text(i)?;
    Ok((i, Continue { code, text }))
}

/// `resp-text = ["[" resp-text-code "]" SP] [text]`.
fn resp_text(i: &[u8]) -> PResult<'_, (Option<Code>, String)> {
    let (i, code) = match i.first() {
        Some(b'[') => match resp_text_code(&i[1..]) {
            Ok((r, c)) => match r.strip_prefix(b"]") {
                Some(r) => (r.strip_prefix(b" ").unwrap_or(r), Some(c)),
                None => (i, None),
            },
            Err(_) => (i, None),
        },
        _ => (i, None),
    };
    let n = i.iter().position(|&b| !is_text_char(b)).unwrap_or(i.len());
    match std::str::from_utf8(&i[..n]) {
        Ok(t) => Ok((&i[n..], (code, t.to_owned()))),
        Err(_) => fail(i, "text in UTF-8"),
    }
}

/// `resp-text-code` (RFC 9051 section 9, RFC 4315).
fn resp_text_code(i: &[u8]) -> PResult<'_, Code> {
    let (r, name) = atom(i)?;
    let mut buf = [0u8; 24];
    let specific: PResult<'_, Code> = match upper(name.as_str().as_bytes(), &mut buf) {
        b"ALERT" => Ok((r, Code::Alert)),
        b"PARSE" => Ok((r, Code::Parse)),
        b"READ-ONLY" => Ok((r, Code::ReadOnly)),
        b"READ-WRITE" => Ok((r, Code::ReadWrite)),
        b"TRYCREATE" => Ok((r, Code::TryCreate)),
        b"BADCHARSET" => match r.strip_prefix(b" ") {
            Some(r) => paren_list(r, 1, astring).map(|(r, l)| (r, Code::BadCharset(l))),
            None => Ok((r, Code::BadCharset(Vec::new()))),
        },
        b"CAPABILITY" => capabilities(r).map(|(r, c)| (r, Code::Capability(c))),
        b"PERMANENTFLAGS" => (|| {
            let (r, ()) = sp(r)?;
            let (r, f) = paren_list(r, 0, flag_perm)?;
            Ok((r, Code::PermanentFlags(f)))
        })(),
        b"UIDNEXT" => sp_nz(r).map(|(r, n)| (r, Code::UidNext(n))),
        b"UIDVALIDITY" => sp_nz(r).map(|(r, n)| (r, Code::UidValidity(n))),
        b"UNSEEN" => sp_nz(r).map(|(r, n)| (r, Code::Unseen(n))),
        b"APPENDUID" => (|| {
            let (r, v) = sp_nz(r)?;
            let (r, ()) = sp(r)?;
            let (r, uids) = sequence_set(r)?;
            Ok((
                r,
                Code::AppendUid {
                    uid_validity: v,
                    uids,
                },
            ))
        })(),
        b"COPYUID" => (|| {
            let (r, v) = sp_nz(r)?;
            let (r, ()) = sp(r)?;
            let (r, source) = sequence_set(r)?;
            let (r, ()) = sp(r)?;
            let (r, destination) = sequence_set(r)?;
            Ok((
                r,
                Code::CopyUid {
                    uid_validity: v,
                    source,
                    destination,
                },
            ))
        })(),
        _ => fail(i, "a response code"),
    };
    match specific {
        Ok((rest, c)) if rest.first() == Some(&b']') => Ok((rest, c)),
        _ => {
            // `atom [SP 1*<any TEXT-CHAR except "]">]`
            let (r, text) = match r.strip_prefix(b" ") {
                Some(r) => {
                    let n = r
                        .iter()
                        .position(|&b| b == b']' || !is_text_char(b))
                        .unwrap_or(r.len());
                    match std::str::from_utf8(&r[..n]) {
                        Ok(t) if n > 0 => (&r[n..], Some(t.to_owned())),
                        _ => return fail(r, "response code text"),
                    }
                }
                None => (r, None),
            };
            Ok((r, Code::Other(name, text)))
        }
    }
}

fn sp_nz(i: &[u8]) -> PResult<'_, u32> {
    let (i, ()) = sp(i)?;
    nz_number(i)
}

/// `*(SP capability)`; `capability = ("AUTH=" auth-type) / atom`.
fn capabilities(mut i: &[u8]) -> PResult<'_, Vec<crate::types::Atom>> {
    let mut caps = Vec::new();
    while let Some(r) = i.strip_prefix(b" ") {
        let (r, a) = atom(r)?;
        caps.push(a);
        i = r;
    }
    Ok((i, caps))
}

/// `resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text`, `resp-cond-bye`, `resp-cond-auth`.
fn status(i: &[u8], tag: Option<Tag>) -> PResult<'_, StatusResponse> {
    let (r, name) = take1(i, is_atom_char, "OK, NO or BAD")?;
    let mut buf = [0u8; 24];
    let kind = match upper(name, &mut buf) {
        b"OK" => StatusKind::Ok,
        b"NO" => StatusKind::No,
        b"BAD" => StatusKind::Bad,
        b"PREAUTH" if tag.is_none() => StatusKind::PreAuth,
        b"BYE" if tag.is_none() => StatusKind::Bye,
        _ => return fail(i, "OK, NO or BAD"),
    };
    let r = r.strip_prefix(b" ").unwrap_or(r);
    let (r, (code, text)) = resp_text(r)?;
    Ok((
        r,
        StatusResponse {
            tag,
            kind,
            code,
            text,
        },
    ))
}

/// `response-data = "*" SP (resp-cond-state / resp-cond-bye / mailbox-data / message-data /
/// capability-data / enable-data) CRLF`.
fn untagged(i: &[u8]) -> PResult<'_, Response> {
    if i.first().is_some_and(u8::is_ascii_digit) {
        let (r, n) = number(i)?;
        let (r, ()) = sp(r)?;
        let (r2, name) = take1(r, is_atom_char, "EXISTS, RECENT, EXPUNGE or FETCH")?;
        let mut buf = [0u8; 24];
        let d = match upper(name, &mut buf) {
            b"EXISTS" => (r2, Data::Exists(n)),
            b"RECENT" => (r2, Data::Recent(n)),
            b"EXPUNGE" if n > 0 => (r2, Data::Expunge(n)),
            b"FETCH" if n > 0 => {
                let (r2, ()) = sp(r2)?;
                let (r2, items) = msg_att(r2)?;
                (r2, Data::Fetch { seq: n, items })
            }
            _ => return fail(r, "EXISTS, RECENT, EXPUNGE or FETCH"),
        };
        return Ok((d.0, Response::Data(d.1)));
    }
    let (r, name) = take1(i, is_atom_char, "a response")?;
    let mut buf = [0u8; 24];
    let (r, d) = match upper(name, &mut buf) {
        b"OK" | b"NO" | b"BAD" | b"PREAUTH" | b"BYE" => {
            let (r, s) = status(i, None)?;
            return Ok((r, Response::Status(s)));
        }
        b"CAPABILITY" => capabilities(r).map(|(r, c)| (r, Data::Capability(c)))?,
        b"ENABLED" => capabilities(r).map(|(r, c)| (r, Data::Enabled(c)))?,
        b"LIST" => {
            let (r, ()) = sp(r)?;
            let (r, l) = mailbox_list(r)?;
            (r, Data::List(l))
        }
        b"LSUB" => {
            let (r, ()) = sp(r)?;
            let (r, l) = mailbox_list(r)?;
            (r, Data::Lsub(l))
        }
        b"STATUS" => {
            let (r, ()) = sp(r)?;
            let (r, m) = mailbox(r)?;
            let (r, ()) = sp(r)?;
            let (r, items) = paren_list(r, 0, |i| {
                let (i, a) = status_att(i)?;
                let (i, ()) = sp(i)?;
                let (i, n) = number64(i)?;
                Ok((i, (a, n)))
            })?;
            (r, Data::Status { mailbox: m, items })
        }
        b"SEARCH" => {
            let mut r = r;
            let mut v = Vec::new();
            while let Some(r2) = r.strip_prefix(b" ") {
                let (r2, n) = nz_number(r2)?;
                v.push(n);
                r = r2;
            }
            (r, Data::Search(v))
        }
        b"ESEARCH" => esearch(r)?,
        b"FLAGS" => {
            let (r, ()) = sp(r)?;
            let (r, f) = flag_list(r)?;
            (r, Data::Flags(f))
        }
        b"NAMESPACE" => {
            let (r, ()) = sp(r)?;
            let (r, a) = namespace(r)?;
            let (r, ()) = sp(r)?;
            let (r, b) = namespace(r)?;
            let (r, ()) = sp(r)?;
            let (r, c) = namespace(r)?;
            (r, Data::Namespace([a, b, c]))
        }
        b"ID" => {
            let (r, ()) = sp(r)?;
            let (r, p) = id_params_list(r)?;
            (r, Data::Id(p))
        }
        _ => return fail(i, "a known response (OK, CAPABILITY, LIST, FETCH, ...)"),
    };
    Ok((r, Response::Data(d)))
}

/// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`;
/// `search-correlator = SP "(" "TAG" SP tag-string ")"`.
fn esearch(i: &[u8]) -> PResult<'_, Data> {
    let mut r = i;
    let mut tag = None;
    if let Some(r2) = r.strip_prefix(b" (") {
        let (r2, ()) = kw("TAG ")(r2)?;
        let (r2, s) = string(r2)?;
        let (r2, ()) = byte(b')', ") closing the search correlator")(r2)?;
        match Tag::new(s.to_string_lossy().into_owned()) {
            Ok(t) => tag = Some(t),
            Err(_) => return fail(r, "a tag in the search correlator"),
        }
        r = r2;
    }
    let mut uid = false;
    if super::core::peek_kw(r, " UID") && !r.get(4).is_some_and(|&b| is_atom_char(b)) {
        uid = true;
        r = &r[4..];
    }
    let mut items = Vec::new();
    while let Some(r2) = r.strip_prefix(b" ") {
        let (r2, name) = take1(r2, is_atom_char, "a search result (MIN, MAX, ALL, COUNT)")?;
        let mut buf = [0u8; 24];
        let (r2, ()) = sp(r2)?;
        let (r2, item) = match upper(name, &mut buf) {
            b"MIN" => nz_number(r2).map(|(r, n)| (r, ESearchItem::Min(n)))?,
            b"MAX" => nz_number(r2).map(|(r, n)| (r, ESearchItem::Max(n)))?,
            b"COUNT" => number(r2).map(|(r, n)| (r, ESearchItem::Count(n)))?,
            b"ALL" => sequence_set(r2).map(|(r, s)| (r, ESearchItem::All(s)))?,
            b"MODSEQ" => number64(r2).map(|(r, n)| (r, ESearchItem::ModSeq(n)))?,
            _ => return fail(r, "MIN, MAX, ALL, COUNT or MODSEQ"),
        };
        items.push(item);
        r = r2;
    }
    Ok((r, Data::ESearch { tag, uid, items }))
}

/// `namespace = nil / "(" 1*namespace-descr ")"`;
/// `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`.
fn namespace(i: &[u8]) -> PResult<'_, Option<Vec<NamespaceDescr>>> {
    if i.first() != Some(&b'(') {
        let (r, ()) = kw("NIL")(i)?;
        return Ok((r, None));
    }
    let (mut r, ()) = byte(b'(', "(")(i)?;
    let mut v = Vec::new();
    while r.first() == Some(&b'(') {
        let (r2, prefix) = string(&r[1..])?;
        let (r2, ()) = sp(r2)?;
        let (r2, delimiter) = delimiter(r2)?;
        let (r2, ()) = byte(b')', ") closing a namespace")(r2)?;
        v.push(NamespaceDescr { prefix, delimiter });
        r = r2;
    }
    if v.is_empty() {
        return fail(r, "a namespace description");
    }
    let (r, ()) = byte(b')', ") closing the namespace list")(r)?;
    Ok((r, Some(v)))
}

/// `DQUOTE QUOTED-CHAR DQUOTE / nil`: a hierarchy delimiter.
fn delimiter(i: &[u8]) -> PResult<'_, Option<char>> {
    if i.first() == Some(&b'"') {
        let (r, q) = quoted(i)?;
        let mut chars = q.as_str().chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) => Ok((r, Some(c))),
            _ => fail(i, "a one-character delimiter"),
        };
    }
    let (r, ()) = kw("NIL")(i)?;
    Ok((r, None))
}

/// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
/// [SP mbox-list-extended]`.
fn mailbox_list(i: &[u8]) -> PResult<'_, ListData> {
    let (r, attributes) = paren_list(i, 0, |i| {
        let (i, ()) = byte(b'\\', "a mailbox attribute (\\Noselect, ...)")(i)?;
        let (i, a) = atom(i)?;
        Ok((i, MailboxAttr(a)))
    })?;
    let (r, ()) = sp(r)?;
    let (r, delimiter) = delimiter(r)?;
    let (r, ()) = sp(r)?;
    let (r, m) = mailbox(r)?;
    let (r, extended) = match r.strip_prefix(b" ") {
        Some(r) => paren_list(r, 0, |i| {
            let (i, t) = astring(i)?;
            let (i, ()) = sp(i)?;
            let (i, v) = ext_value(i, 0)?;
            Ok((i, (t, v)))
        })?,
        None => (r, Vec::new()),
    };
    Ok((
        r,
        ListData {
            attributes,
            delimiter,
            mailbox: m,
            extended,
        },
    ))
}

/// `tagged-ext-val` (loosely: numbers, astrings and nested lists).
fn ext_value(i: &[u8], depth: usize) -> PResult<'_, ExtValue> {
    check_depth(i, depth)?;
    match i.first() {
        Some(b'(') => {
            paren_list(i, 0, |i| ext_value(i, depth + 1)).map(|(r, l)| (r, ExtValue::List(l)))
        }
        Some(b'0'..=b'9')
            if number64(i).is_ok_and(|(r, _)| matches!(r.first(), Some(b' ' | b')') | None)) =>
        {
            number64(i).map(|(r, n)| (r, ExtValue::Number(n)))
        }
        _ => astring(i).map(|(r, a)| (r, ExtValue::AString(a))),
    }
}

/// `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (msg-att-dynamic / msg-att-static))
/// ")"`.
fn msg_att(i: &[u8]) -> PResult<'_, Vec<FetchValue>> {
    paren_list(i, 1, msg_att_item)
}

fn msg_att_item(i: &[u8]) -> PResult<'_, FetchValue> {
    let (r, name) = take1(
        i,
        |b| b.is_ascii_alphanumeric() || b == b'.',
        "a fetch item",
    )?;
    let mut buf = [0u8; 24];
    use FetchValue as F;
    match upper(name, &mut buf) {
        b"FLAGS" => {
            let (r, ()) = sp(r)?;
            flag_list(r).map(|(r, f)| (r, F::Flags(f)))
        }
        b"UID" => sp_nz(r).map(|(r, n)| (r, F::Uid(n))),
        b"RFC822.SIZE" => {
            let (r, ()) = sp(r)?;
            number64(r).map(|(r, n)| (r, F::Rfc822Size(n)))
        }
        b"INTERNALDATE" => {
            let (r, ()) = sp(r)?;
            date_time(r).map(|(r, d)| (r, F::InternalDate(d)))
        }
        b"ENVELOPE" => {
            let (r, ()) = sp(r)?;
            envelope(r).map(|(r, e)| (r, F::Envelope(Box::new(e))))
        }
        b"BODYSTRUCTURE" => {
            let (r, ()) = sp(r)?;
            body(r, 0).map(|(r, b)| (r, F::BodyStructure(Box::new(b))))
        }
        b"BODY" if r.first() == Some(&b' ') => {
            body(&r[1..], 0).map(|(r, b)| (r, F::Body(Box::new(b))))
        }
        b"BODY" => {
            let (r, s) = section(r)?;
            let (r, origin) = origin(r)?;
            let (r, ()) = sp(r)?;
            let (r, data) = nstring(r)?;
            Ok((
                r,
                F::BodySection {
                    section: s,
                    origin,
                    data,
                },
            ))
        }
        b"BINARY" => {
            let (r, part) = section_binary(r)?;
            let (r, origin) = origin(r)?;
            let (r, ()) = sp(r)?;
            let (r, data) = if r.first() == Some(&b'~') {
                literal_any(r, true).map(|(r, l)| (r, Some(IString::Literal(l))))?
            } else {
                nstring(r)?
            };
            Ok((r, F::Binary { part, origin, data }))
        }
        b"BINARY.SIZE" => {
            let (r, part) = section_binary(r)?;
            let (r, ()) = sp(r)?;
            number64(r).map(|(r, size)| (r, F::BinarySize { part, size }))
        }
        b"RFC822" => {
            let (r, ()) = sp(r)?;
            nstring(r).map(|(r, s)| (r, F::Rfc822(s)))
        }
        b"RFC822.HEADER" => {
            let (r, ()) = sp(r)?;
            nstring(r).map(|(r, s)| (r, F::Rfc822Header(s)))
        }
        b"RFC822.TEXT" => {
            let (r, ()) = sp(r)?;
            nstring(r).map(|(r, s)| (r, F::Rfc822Text(s)))
        }
        b"MODSEQ" => {
            let (r, ()) = kw(" (")(r)?;
            let (r, n) = number64(r)?;
            let (r, ()) = byte(b')', ")")(r)?;
            Ok((r, F::ModSeq(n)))
        }
        _ => fail(i, "a fetch item (FLAGS, UID, ENVELOPE, BODY[...], ...)"),
    }
}

/// `["<" number ">"]` after a section in a FETCH response.
fn origin(i: &[u8]) -> PResult<'_, Option<u32>> {
    match i.strip_prefix(b"<") {
        Some(r) => {
            let (r, n) = number(r)?;
            let (r, ()) = byte(b'>', "> closing the origin")(r)?;
            Ok((r, Some(n)))
        }
        None => Ok((i, None)),
    }
}

/// `env-from = "(" 1*address ")" / nil` (and the other address lists).
fn address_list(i: &[u8]) -> PResult<'_, Option<Vec<Address>>> {
    if i.first() != Some(&b'(') {
        let (r, ()) = kw("NIL")(i)?;
        return Ok((r, None));
    }
    let mut r = &i[1..];
    let mut v = Vec::new();
    while r.first() == Some(&b'(') {
        let (r2, a) = address(r)?;
        v.push(a);
        r = r2;
    }
    if v.is_empty() {
        return fail(r, "an address");
    }
    let (r, ()) = byte(b')', ") closing the address list")(r)?;
    Ok((r, Some(v)))
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`.
fn address(i: &[u8]) -> PResult<'_, Address> {
    let (r, ()) = byte(b'(', "( opening an address")(i)?;
    let (r, name) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, adl) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, mailbox) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, host) = nstring(r)?;
    let (r, ()) = byte(b')', ") closing an address")(r)?;
    Ok((
        r,
        Address {
            name,
            adl,
            mailbox,
            host,
        },
    ))
}

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to SP
/// env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`.
pub(crate) fn envelope(i: &[u8]) -> PResult<'_, Envelope> {
    let (r, ()) = byte(b'(', "( opening an envelope")(i)?;
    let (r, date) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, subject) = nstring(r)?;
    let mut lists: [Option<Vec<Address>>; 6] = Default::default();
    let mut r = r;
    for l in &mut lists {
        let (r2, ()) = sp(r)?;
        let (r2, a) = address_list(r2)?;
        *l = a;
        r = r2;
    }
    let (r, ()) = sp(r)?;
    let (r, in_reply_to) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, message_id) = nstring(r)?;
    let (r, ()) = byte(b')', ") closing the envelope")(r)?;
    let [from, sender, reply_to, to, cc, bcc] = lists;
    Ok((
        r,
        Envelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to,
            message_id,
        },
    ))
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"`, nesting bounded by
/// [`super::core::MAX_DEPTH`].
pub(crate) fn body(i: &[u8], depth: usize) -> PResult<'_, Body> {
    check_depth(i, depth)?;
    let (r, ()) = byte(b'(', "( opening a body structure")(i)?;
    if r.first() == Some(&b'(') {
        // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        let mut parts = Vec::new();
        let mut r = r;
        while r.first() == Some(&b'(') {
            let (r2, b) = body(r, depth + 1)?;
            parts.push(b);
            r = r2;
        }
        let (r, ()) = sp(r)?;
        let (r, subtype) = string(r)?;
        let (r, extension) = extensions(r, depth)?;
        return Ok((
            r,
            Body::Multi {
                parts,
                subtype,
                extension,
            },
        ));
    }
    // body-type-1part: media type, subtype, body-fields, then type-specific fields.
    let (r, media_type) = string(r)?;
    let (r, ()) = sp(r)?;
    let (r, subtype) = string(r)?;
    let (r, ()) = sp(r)?;
    let (r, fields) = body_fields(r)?;
    let t = media_type.as_bytes();
    let st = subtype.as_bytes();
    let (r, specific) = if t.eq_ignore_ascii_case(b"TEXT") {
        let (r, ()) = sp(r)?;
        let (r, lines) = number64(r)?;
        (r, PartSpecific::Text { lines })
    } else if t.eq_ignore_ascii_case(b"MESSAGE")
        && (st.eq_ignore_ascii_case(b"RFC822") || st.eq_ignore_ascii_case(b"GLOBAL"))
        && r.starts_with(b" (")
    {
        let (r, ()) = sp(r)?;
        let (r, env) = envelope(r)?;
        let (r, ()) = sp(r)?;
        let (r, b) = body(r, depth + 1)?;
        let (r, ()) = sp(r)?;
        let (r, lines) = number64(r)?;
        (
            r,
            PartSpecific::Message {
                envelope: Box::new(env),
                body: Box::new(b),
                lines,
            },
        )
    } else {
        (r, PartSpecific::Basic)
    };
    let (r, extension) = extensions(r, depth)?;
    Ok((
        r,
        Body::Single(SinglePart {
            media_type,
            subtype,
            fields,
            specific,
            extension,
        }),
    ))
}

/// `*(SP body-extension) ")"`: the extension fields of a body, then its closing parenthesis.
fn extensions(mut r: &[u8], depth: usize) -> PResult<'_, Vec<BodyExtension>> {
    let mut v = Vec::new();
    while let Some(r2) = r.strip_prefix(b" ") {
        let (r2, e) = body_extension(r2, depth + 1)?;
        v.push(e);
        r = r2;
    }
    let (r, ()) = byte(b')', ") closing the body structure")(r)?;
    Ok((r, v))
}

/// `body-extension = nstring / number64 / "(" body-extension *(SP body-extension) ")"`.
fn body_extension(i: &[u8], depth: usize) -> PResult<'_, BodyExtension> {
    check_depth(i, depth)?;
    match i.first() {
        Some(b'(') => paren_list(i, 1, |i| body_extension(i, depth + 1))
            .map(|(r, l)| (r, BodyExtension::List(l))),
        Some(b'0'..=b'9') => number64(i).map(|(r, n)| (r, BodyExtension::Number(n))),
        _ => nstring(i).map(|(r, s)| (r, BodyExtension::NString(s))),
    }
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`; `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
fn body_fields(i: &[u8]) -> PResult<'_, BodyFields> {
    let (r, params) = if i.first() == Some(&b'(') {
        let (r, l) = paren_list(i, 1, string)?;
        if l.len() % 2 != 0 {
            return fail(i, "body parameters in name-value pairs");
        }
        let mut it = l.into_iter();
        let mut pairs = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        (r, Some(pairs))
    } else {
        let (r, ()) = kw("NIL")(i)?;
        (r, None)
    };
    let (r, ()) = sp(r)?;
    let (r, id) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, description) = nstring(r)?;
    let (r, ()) = sp(r)?;
    let (r, encoding) = string(r)?;
    let (r, ()) = sp(r)?;
    let (r, octets) = number64(r)?;
    Ok((
        r,
        BodyFields {
            params,
            id,
            description,
            encoding,
            octets,
        },
    ))
}

/// Parses one whole response frame.
pub(crate) fn parse_response_frame(frame: &[u8]) -> Result<Response, crate::DecodeError> {
    match response(frame) {
        Ok(([], r)) => Ok(r),
        Ok((rest, _)) => Err(crate::DecodeError::Syntax {
            offset: frame.len() - rest.len(),
            expected: "the end of the response",
        }),
        Err(e) => Err(crate::DecodeError::syntax(frame, e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder (server side).

impl Encode for Response {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Continue(c) => {
                out.extend_from_slice(b"+ ");
                if let Some(code) = &c.code {
                    out.push(b'[');
                    code.encode(out);
                    out.extend_from_slice(b"] ");
                }
                out.extend_from_slice(c.text.as_bytes());
            }
            Response::Status(s) => s.encode_line(out),
            Response::Data(d) => {
                out.extend_from_slice(b"* ");
                d.encode(out);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl StatusResponse {
    fn encode_line(&self, out: &mut Vec<u8>) {
        match &self.tag {
            Some(t) => t.encode(out),
            None => out.push(b'*'),
        }
        out.push(b' ');
        out.extend_from_slice(self.kind.name().as_bytes());
        if let Some(code) = &self.code {
            out.extend_from_slice(b" [");
            code.encode(out);
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.text.as_bytes());
        }
    }
}

impl Encode for StatusResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_line(out);
        out.extend_from_slice(b"\r\n");
    }
}

impl Encode for Code {
    fn encode(&self, out: &mut Vec<u8>) {
        let w = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Code::Alert => w(out, "ALERT"),
            Code::Parse => w(out, "PARSE"),
            Code::ReadOnly => w(out, "READ-ONLY"),
            Code::ReadWrite => w(out, "READ-WRITE"),
            Code::TryCreate => w(out, "TRYCREATE"),
            Code::BadCharset(l) => {
                w(out, "BADCHARSET");
                if !l.is_empty() {
                    out.push(b' ');
                    encode_list(out, l, |a, out| a.encode(out));
                }
            }
            Code::Capability(c) => {
                w(out, "CAPABILITY");
                for a in c {
                    out.push(b' ');
                    a.encode(out);
                }
            }
            Code::PermanentFlags(f) => {
                w(out, "PERMANENTFLAGS ");
                encode_list(out, f, |f, out| f.encode(out));
            }
            Code::UidNext(n) => {
                w(out, "UIDNEXT ");
                push_num(out, u64::from(*n));
            }
            Code::UidValidity(n) => {
                w(out, "UIDVALIDITY ");
                push_num(out, u64::from(*n));
            }
            Code::Unseen(n) => {
                w(out, "UNSEEN ");
                push_num(out, u64::from(*n));
            }
            Code::AppendUid { uid_validity, uids } => {
                w(out, "APPENDUID ");
                push_num(out, u64::from(*uid_validity));
                out.push(b' ');
                uids.encode(out);
            }
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            } => {
                w(out, "COPYUID ");
                push_num(out, u64::from(*uid_validity));
                out.push(b' ');
                source.encode(out);
                out.push(b' ');
                destination.encode(out);
            }
            Code::Other(a, text) => {
                a.encode(out);
                if let Some(t) = text {
                    out.push(b' ');
                    // `1*<any TEXT-CHAR except "]">`: anything else cannot be sent.
                    out.extend(t.bytes().map(|b| {
                        if b == b']' || !is_text_char(b) {
                            b' '
                        } else {
                            b
                        }
                    }));
                }
            }
        }
    }
}

fn encode_delimiter(out: &mut Vec<u8>, d: Option<char>) {
    match d {
        Some(c) => {
            let mut buf = [0u8; 4];
            match crate::types::Quoted::new(c.encode_utf8(&mut buf).to_owned()) {
                Ok(q) => q.encode(out),
                Err(_) => out.extend_from_slice(b"NIL"),
            }
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

impl Encode for ListData {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_list(out, &self.attributes, |a, out| {
            out.push(b'\\');
            a.0.encode(out);
        });
        out.push(b' ');
        encode_delimiter(out, self.delimiter);
        out.push(b' ');
        self.mailbox.encode(out);
        if !self.extended.is_empty() {
            out.push(b' ');
            encode_list(out, &self.extended, |(t, v), out| {
                t.encode(out);
                out.push(b' ');
                v.encode(out);
            });
        }
    }
}

impl Encode for ExtValue {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ExtValue::Number(n) => push_num(out, *n),
            ExtValue::AString(a) => a.encode(out),
            ExtValue::List(l) => encode_list(out, l, |v, out| v.encode(out)),
        }
    }
}

impl Encode for Data {
    fn encode(&self, out: &mut Vec<u8>) {
        let w = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Data::Capability(c) | Data::Enabled(c) => {
                w(
                    out,
                    if matches!(self, Data::Capability(_)) {
                        "CAPABILITY"
                    } else {
                        "ENABLED"
                    },
                );
                for a in c {
                    out.push(b' ');
                    a.encode(out);
                }
            }
            Data::List(l) => {
                w(out, "LIST ");
                l.encode(out);
            }
            Data::Lsub(l) => {
                w(out, "LSUB ");
                l.encode(out);
            }
            Data::Status { mailbox, items } => {
                w(out, "STATUS ");
                mailbox.encode(out);
                out.push(b' ');
                encode_list(out, items, |(a, n), out| {
                    w(out, a.name());
                    out.push(b' ');
                    push_num(out, *n);
                });
            }
            Data::Search(v) => {
                w(out, "SEARCH");
                for n in v {
                    out.push(b' ');
                    push_num(out, u64::from(*n));
                }
            }
            Data::ESearch { tag, uid, items } => {
                w(out, "ESEARCH");
                if let Some(t) = tag {
                    w(out, " (TAG ");
                    match crate::types::Quoted::new(t.as_str()) {
                        Ok(q) => q.encode(out),
                        Err(_) => out.extend_from_slice(b"\"\""),
                    }
                    out.push(b')');
                }
                if *uid {
                    w(out, " UID");
                }
                for it in items {
                    match it {
                        ESearchItem::Min(n) => (w(out, " MIN "), push_num(out, u64::from(*n))).1,
                        ESearchItem::Max(n) => (w(out, " MAX "), push_num(out, u64::from(*n))).1,
                        ESearchItem::Count(n) => {
                            (w(out, " COUNT "), push_num(out, u64::from(*n))).1
                        }
                        ESearchItem::ModSeq(n) => (w(out, " MODSEQ "), push_num(out, *n)).1,
                        ESearchItem::All(s) => (w(out, " ALL "), s.encode(out)).1,
                    }
                }
            }
            Data::Flags(f) => {
                w(out, "FLAGS ");
                encode_list(out, f, |f, out| f.encode(out));
            }
            Data::Exists(n) => {
                push_num(out, u64::from(*n));
                w(out, " EXISTS");
            }
            Data::Recent(n) => {
                push_num(out, u64::from(*n));
                w(out, " RECENT");
            }
            Data::Expunge(n) => {
                push_num(out, u64::from(*n));
                w(out, " EXPUNGE");
            }
            Data::Fetch { seq, items } => {
                push_num(out, u64::from(*seq));
                w(out, " FETCH ");
                encode_list(out, items, |v, out| v.encode(out));
            }
            Data::Namespace(ns) => {
                w(out, "NAMESPACE");
                for n in ns {
                    out.push(b' ');
                    match n {
                        None => w(out, "NIL"),
                        Some(v) => {
                            out.push(b'(');
                            for d in v {
                                out.push(b'(');
                                d.prefix.encode(out);
                                out.push(b' ');
                                encode_delimiter(out, d.delimiter);
                                out.push(b')');
                            }
                            out.push(b')');
                        }
                    }
                }
            }
            Data::Id(p) => {
                w(out, "ID ");
                encode_id_params(out, p.as_deref());
            }
        }
    }
}

impl Encode for FetchValue {
    fn encode(&self, out: &mut Vec<u8>) {
        let w = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            FetchValue::Flags(f) => {
                w(out, "FLAGS ");
                encode_list(out, f, |f, out| f.encode(out));
            }
            FetchValue::Uid(n) => (w(out, "UID "), push_num(out, u64::from(*n))).1,
            FetchValue::Rfc822Size(n) => (w(out, "RFC822.SIZE "), push_num(out, *n)).1,
            FetchValue::InternalDate(d) => (w(out, "INTERNALDATE "), d.encode(out)).1,
            FetchValue::Envelope(e) => (w(out, "ENVELOPE "), e.encode(out)).1,
            FetchValue::BodyStructure(b) => (w(out, "BODYSTRUCTURE "), b.encode(out)).1,
            FetchValue::Body(b) => (w(out, "BODY "), b.encode(out)).1,
            FetchValue::BodySection {
                section,
                origin,
                data,
            } => {
                w(out, "BODY");
                section.encode(out);
                encode_origin(out, *origin);
                out.push(b' ');
                data.encode(out);
            }
            FetchValue::Binary { part, origin, data } => {
                w(out, "BINARY");
                encode_section_binary(out, part);
                encode_origin(out, *origin);
                out.push(b' ');
                data.encode(out);
            }
            FetchValue::BinarySize { part, size } => {
                w(out, "BINARY.SIZE");
                encode_section_binary(out, part);
                out.push(b' ');
                push_num(out, *size);
            }
            FetchValue::Rfc822(s) => (w(out, "RFC822 "), s.encode(out)).1,
            FetchValue::Rfc822Header(s) => (w(out, "RFC822.HEADER "), s.encode(out)).1,
            FetchValue::Rfc822Text(s) => (w(out, "RFC822.TEXT "), s.encode(out)).1,
            FetchValue::ModSeq(n) => {
                w(out, "MODSEQ (");
                push_num(out, *n);
                out.push(b')');
            }
        }
    }
}

fn encode_origin(out: &mut Vec<u8>, origin: Option<u32>) {
    if let Some(o) = origin {
        out.push(b'<');
        push_num(out, u64::from(o));
        out.push(b'>');
    }
}

fn encode_addresses(out: &mut Vec<u8>, list: &Option<Vec<Address>>) {
    match list {
        None => out.extend_from_slice(b"NIL"),
        Some(v) => {
            out.push(b'(');
            for a in v {
                out.push(b'(');
                a.name.encode(out);
                out.push(b' ');
                a.adl.encode(out);
                out.push(b' ');
                a.mailbox.encode(out);
                out.push(b' ');
                a.host.encode(out);
                out.push(b')');
            }
            out.push(b')');
        }
    }
}

impl Encode for Envelope {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'(');
        self.date.encode(out);
        out.push(b' ');
        self.subject.encode(out);
        for l in [
            &self.from,
            &self.sender,
            &self.reply_to,
            &self.to,
            &self.cc,
            &self.bcc,
        ] {
            out.push(b' ');
            encode_addresses(out, l);
        }
        out.push(b' ');
        self.in_reply_to.encode(out);
        out.push(b' ');
        self.message_id.encode(out);
        out.push(b')');
    }
}

impl Encode for BodyExtension {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            BodyExtension::NString(s) => s.encode(out),
            BodyExtension::Number(n) => push_num(out, *n),
            BodyExtension::List(l) => encode_list(out, l, |e, out| e.encode(out)),
        }
    }
}

impl Encode for Body {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'(');
        match self {
            Body::Multi {
                parts,
                subtype,
                extension,
            } => {
                parts.iter().for_each(|p| p.encode(out));
                out.push(b' ');
                subtype.encode(out);
                for e in extension {
                    out.push(b' ');
                    e.encode(out);
                }
            }
            Body::Single(p) => {
                p.media_type.encode(out);
                out.push(b' ');
                p.subtype.encode(out);
                out.push(b' ');
                match &p.fields.params {
                    None => out.extend_from_slice(b"NIL"),
                    Some(params) => encode_list(out, params, |(k, v), out| {
                        k.encode(out);
                        out.push(b' ');
                        v.encode(out);
                    }),
                }
                out.push(b' ');
                p.fields.id.encode(out);
                out.push(b' ');
                p.fields.description.encode(out);
                out.push(b' ');
                p.fields.encoding.encode(out);
                out.push(b' ');
                push_num(out, p.fields.octets);
                match &p.specific {
                    PartSpecific::Basic => {}
                    PartSpecific::Text { lines } => {
                        out.push(b' ');
                        push_num(out, *lines);
                    }
                    PartSpecific::Message {
                        envelope,
                        body,
                        lines,
                    } => {
                        out.push(b' ');
                        envelope.encode(out);
                        out.push(b' ');
                        body.encode(out);
                        out.push(b' ');
                        push_num(out, *lines);
                    }
                }
                for e in &p.extension {
                    out.push(b' ');
                    e.encode(out);
                }
            }
        }
        out.push(b')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Flag, FlagPerm, SequenceSet};

    /// Responses from RFC 9051 (sections 6, 7 and 8), RFC 3501 and the extensions' RFCs, each
    /// decoded and re-encoded to the same bytes.
    const KNOWN: &[&str] = &[
        "* OK IMAP4rev2 server ready\r\n",
        "* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED] server ready\r\n",
        "* PREAUTH IMAP4rev2 server logged in as Smith\r\n",
        "* BYE Autologout; idle for too long\r\n",
        "* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n",
        "a002 OK NOOP completed\r\n",
        "* 22 EXPUNGE\r\n",
        "* 23 EXISTS\r\n",
        "* 3 RECENT\r\n",
        "* 14 FETCH (FLAGS (\\Seen \\Deleted))\r\n",
        "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        "* OK [UIDNEXT 4392] Predicted next UID\r\n",
        "* OK [UNSEEN 12] Message 12 is first unseen\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
        "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        "* LIST () \"/\" INBOX\r\n",
        "A142 OK [READ-WRITE] SELECT completed\r\n",
        "A932 OK [READ-ONLY] EXAMINE completed\r\n",
        "* LIST (\\Noselect) \"/\" \"\"\r\n",
        "* LIST (\\Noselect) \".\" #news.\r\n",
        "* LIST (\\Marked \\NoInferiors) NIL inbox\r\n",
        "* LIST (\\HasNoChildren \\Sent) \"\\\\\" \"Sent Items\"\r\n",
        "* LIST () \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
        "* LIST (\\Subscribed) \"/\" \"Fruit/Banana\" (\"OLDNAME\" (\"Fruit/Apple\"))\r\n",
        "* LSUB () \".\" #news.comp.mail.misc\r\n",
        "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
        "* STATUS \"Sent Items\" ()\r\n",
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n",
        "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n",
        "* ESEARCH (TAG \"A284\")\r\n",
        "* ESEARCH (TAG \"a5\") UID COUNT 3 ALL 1:3 MAX 3\r\n",
        "* ESEARCH UID MIN 7\r\n",
        "* SEARCH 2 84 882\r\n",
        "* SEARCH\r\n",
        "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\"))\r\n",
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
        "* ENABLED CONDSTORE\r\n",
        "* ENABLED\r\n",
        "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" NIL)\r\n",
        "* ID NIL\r\n",
        "+ idling\r\n",
        "+ Ready for literal data\r\n",
        "+ \r\n",
        "+ [ALERT] look\r\n",
        "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        "a NO [TRYCREATE] no such mailbox\r\n",
        "A1 NO [ALREADYEXISTS] Mailbox exists\r\n",
        "* OK [CLOSED] Previous mailbox closed\r\n",
        "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
        "a BAD [BADCHARSET (US-ASCII UTF-8)] charset\r\n",
        "a NO [BADCHARSET] charset\r\n",
        "* NO [ALERT] System shutdown in 10 minutes\r\n",
        "a OK [PARSE] header trouble\r\n",
        "a BAD\r\n",
        "a OK [READ-WRITE]\r\n",
        "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n",
        "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))\r\n",
        "* 2 FETCH (UID 5 BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 300 (\"date\" \"subj\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL) 12 NIL (\"attachment\" (\"filename\" \"x.eml\")) NIL NIL)(\"image\" \"png\" NIL NIL NIL \"base64\" 8 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"b1\") NIL (\"en\" \"de\") NIL))\r\n",
        "* 12 FETCH (BODY[HEADER] {12}\r\nSubject: x\r\n)\r\n",
        "* 1 FETCH (BODY[]<0> {3}\r\nabc UID 3)\r\n",
        "* 1 FETCH (BODY[1.2.HEADER.FIELDS (SUBJECT FROM)] \"\" BODY[TEXT] NIL)\r\n",
        "* 1 FETCH (BINARY[1] ~{3}\r\na\0b BINARY.SIZE[1] 3 MODSEQ (12345) RFC822.HEADER NIL RFC822 \"x\" RFC822.TEXT {1}\r\ny)\r\n",
    ];

    #[test]
    fn known_answers_round_trip_exactly() {
        for input in KNOWN {
            let r =
                parse_response_frame(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(String::from_utf8_lossy(&r.to_bytes()), *input, "{r:#?}");
        }
    }

    #[test]
    fn known_values() {
        let r = parse_response_frame(b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n")
            .unwrap();
        assert_eq!(
            r,
            Response::Status(StatusResponse {
                tag: None,
                kind: StatusKind::Ok,
                code: Some(Code::PermanentFlags(vec![
                    FlagPerm::Flag(Flag::Deleted),
                    FlagPerm::Flag(Flag::Seen),
                    FlagPerm::Any
                ])),
                text: "Limited".into(),
            })
        );
        let r = parse_response_frame(b"A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n")
            .unwrap();
        let Response::Status(StatusResponse {
            code: Some(Code::CopyUid { destination, .. }),
            ..
        }) = r
        else {
            panic!()
        };
        assert_eq!(destination, SequenceSet::range(3956, 3958).unwrap());
    }

    #[test]
    fn malformed_responses_fail() {
        for bad in [
            &b"* 0 FETCH (UID 1)\r\n"[..],
            b"* 1 FETCH ()\r\n",
            b"* 1 FETCH (UID 0)\r\n",
            b"a PREAUTH x\r\n",
            b"* LIST () \"ab\" x\r\n",
            b"* FLAGS (\\Seen\r\n",
            b"* 1 FETCH (BODY[] \"a\0\")\r\n",
            b"* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"A\") NIL NIL \"7BIT\" 1 1))\r\n",
        ] {
            assert!(
                parse_response_frame(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bodystructure_nesting_is_bounded() {
        let leaf = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)";
        let mut s = leaf.to_string();
        for _ in 0..40 {
            s = format!("({s} \"MIXED\")");
        }
        let input = format!("* 1 FETCH (BODYSTRUCTURE {s})\r\n");
        let e = parse_response_frame(input.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("32 levels"), "{e}");
        let ext = format!(
            "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL {}NIL{}))\r\n",
            "(".repeat(100),
            ")".repeat(100)
        );
        assert!(parse_response_frame(ext.as_bytes()).is_err());
    }
}
