//! Commands: the server's parser and the client's encoder, side by side (RFC 9051 section 9).

use super::core::{
    PResult, astring, atom, byte, check_depth, crlf, date, date_time, encode_list, fail, flag,
    flag_list, kw, list_token, literal_any, mailbox, nstring, number64, nz_number, paren_list,
    peek_kw, push_num, sequence_set, sp, string, tag, take1,
};
use super::{Encode, base64};
use crate::types::{
    AString, Atom, Command, CommandBody, FetchAttribute, FetchItems, IString, ListMailbox,
    ListReturnOption, ListSelectOption, NString, SearchKey, SearchReturnOption, Secret, Section,
    SectionText, StatusAttribute, StoreKind, is_atom_char,
};

/// Upper-cases a short keyword into `buf` for matching; longer words cannot be keywords.
fn upper<'b>(word: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    if word.len() > buf.len() {
        return b"";
    }
    for (d, s) in buf.iter_mut().zip(word) {
        *d = s.to_ascii_uppercase();
    }
    &buf[..word.len()]
}

/// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
/// (RFC 9051 section 9).
pub(crate) fn command(i: &[u8]) -> PResult<'_, Command> {
    let (i, tag) = tag(i)?;
    let (i, ()) = sp(i)?;
    let (i, body) = command_body(i)?;
    let (i, ()) = crlf(i)?;
    Ok((i, Command { tag, body }))
}

/// Everything after the tag, without the CRLF.
pub(crate) fn command_body(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, name) = take1(i, is_atom_char, "a command name")?;
    let mut buf = [0u8; 24];
    let r = rest;
    let one = |m: fn(crate::types::Mailbox) -> CommandBody| -> PResult<'_, CommandBody> {
        let (r, ()) = sp(r)?;
        let (r, m2) = mailbox(r)?;
        Ok((r, m(m2)))
    };
    match upper(name, &mut buf) {
        b"CAPABILITY" => Ok((r, CommandBody::Capability)),
        b"NOOP" => Ok((r, CommandBody::Noop)),
        b"LOGOUT" => Ok((r, CommandBody::Logout)),
        b"STARTTLS" => Ok((r, CommandBody::StartTls)),
        b"NAMESPACE" => Ok((r, CommandBody::Namespace)),
        b"IDLE" => Ok((r, CommandBody::Idle)),
        b"CHECK" => Ok((r, CommandBody::Check)),
        b"CLOSE" => Ok((r, CommandBody::Close)),
        b"UNSELECT" => Ok((r, CommandBody::Unselect)),
        b"EXPUNGE" => Ok((r, CommandBody::Expunge)),
        b"AUTHENTICATE" => authenticate(r),
        b"LOGIN" => login(r),
        b"ENABLE" => enable(r),
        b"SELECT" => one(CommandBody::Select),
        b"EXAMINE" => one(CommandBody::Examine),
        b"CREATE" => one(CommandBody::Create),
        b"DELETE" => one(CommandBody::Delete),
        b"SUBSCRIBE" => one(CommandBody::Subscribe),
        b"UNSUBSCRIBE" => one(CommandBody::Unsubscribe),
        b"RENAME" => {
            let (r, ()) = sp(r)?;
            let (r, from) = mailbox(r)?;
            let (r, ()) = sp(r)?;
            let (r, to) = mailbox(r)?;
            Ok((r, CommandBody::Rename { from, to }))
        }
        b"LIST" => list(r),
        b"LSUB" => {
            let (r, ()) = sp(r)?;
            let (r, reference) = mailbox(r)?;
            let (r, ()) = sp(r)?;
            let (r, pattern) = list_mailbox(r)?;
            Ok((r, CommandBody::Lsub { reference, pattern }))
        }
        b"STATUS" => status(r),
        b"APPEND" => append(r),
        b"SEARCH" => search(r, false),
        b"FETCH" => fetch(r, false),
        b"STORE" => store(r, false),
        b"COPY" => copy_move(r, false, false),
        b"MOVE" => copy_move(r, false, true),
        b"ID" => {
            let (r, ()) = sp(r)?;
            let (r, params) = id_params_list(r)?;
            Ok((r, CommandBody::Id(params)))
        }
        b"UID" => {
            let (r, ()) = sp(r)?;
            let (r2, name) = take1(r, is_atom_char, "a command after UID")?;
            match upper(name, &mut buf) {
                b"FETCH" => fetch(r2, true),
                b"SEARCH" => search(r2, true),
                b"STORE" => store(r2, true),
                b"COPY" => copy_move(r2, true, false),
                b"MOVE" => copy_move(r2, true, true),
                b"EXPUNGE" => {
                    let (r2, ()) = sp(r2)?;
                    let (r2, set) = sequence_set(r2)?;
                    Ok((r2, CommandBody::UidExpunge(set)))
                }
                _ => fail(r, "FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE after UID"),
            }
        }
        _ => fail(i, "a known command (CAPABILITY, LOGIN, SELECT, FETCH, ...)"),
    }
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp] *(CRLF base64)`;
/// `initial-resp = (base64 / "=")` (RFC 4959). The continuation lines are the session's.
fn authenticate(i: &[u8]) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, mechanism) = atom(i)?;
    let (i, initial_response) = match i.strip_prefix(b" ") {
        Some(r) => {
            let n = r
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
                .unwrap_or(r.len());
            let text = &r[..n];
            let data = if text == b"=" {
                Some(Vec::new())
            } else if text.is_empty() {
                None
            } else {
                base64::decode(text)
            };
            match data {
                Some(d) => (&r[n..], Some(Secret::new(d))),
                None => return fail(r, "an initial response in base64 or \"=\""),
            }
        }
        None => (i, None),
    };
    Ok((
        i,
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        },
    ))
}

/// `login = "LOGIN" SP userid SP password`; `userid = astring`; `password = astring`.
fn login(i: &[u8]) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, username) = astring(i)?;
    let (i, ()) = sp(i)?;
    let (i, password) = astring(i)?;
    Ok((
        i,
        CommandBody::Login {
            username,
            password: Secret::new(password),
        },
    ))
}

/// `enable = "ENABLE" 1*(SP capability)` (RFC 5161).
fn enable(mut i: &[u8]) -> PResult<'_, CommandBody> {
    let mut caps = Vec::new();
    while let Some(r) = i.strip_prefix(b" ") {
        let (r, a) = atom(r)?;
        caps.push(a);
        i = r;
    }
    if caps.is_empty() {
        return fail(i, "at least one capability after ENABLE");
    }
    Ok((i, CommandBody::Enable(caps)))
}

/// `list-mailbox = 1*list-char / string`.
fn list_mailbox(i: &[u8]) -> PResult<'_, ListMailbox> {
    match i.first() {
        Some(b'"' | b'{') => string(i).map(|(r, s)| (r, ListMailbox::String(s))),
        _ => list_token(i).map(|(r, t)| (r, ListMailbox::Token(t))),
    }
}

/// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`;
/// `list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"`;
/// `mbox-or-pat = list-mailbox / patterns`; `patterns = "(" list-mailbox *(SP list-mailbox) ")"`;
/// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"` (RFC 9051, RFC 5258).
fn list(i: &[u8]) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, selection) = if i.first() == Some(&b'(') {
        let (i, s) = paren_list(i, 0, |i| {
            let (r, a) = atom(i)?;
            let o = match a.as_str().to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => ListSelectOption::Subscribed,
                "REMOTE" => ListSelectOption::Remote,
                "RECURSIVEMATCH" => ListSelectOption::RecursiveMatch,
                "SPECIAL-USE" => ListSelectOption::SpecialUse,
                _ => ListSelectOption::Other(a),
            };
            Ok((r, o))
        })?;
        let (i, ()) = sp(i)?;
        (i, s)
    } else {
        (i, Vec::new())
    };
    let (i, reference) = mailbox(i)?;
    let (i, ()) = sp(i)?;
    let (i, patterns, patterns_parenthesized) = if i.first() == Some(&b'(') {
        let (i, p) = paren_list(i, 1, list_mailbox)?;
        (i, p, true)
    } else {
        let (i, p) = list_mailbox(i)?;
        (i, vec![p], false)
    };
    let (i, returns) = match i.strip_prefix(b" ") {
        Some(r) => {
            let (r, ()) = kw("RETURN ")(r)?;
            let (r, opts) = paren_list(r, 0, return_option)?;
            (r, Some(opts))
        }
        None => (i, None),
    };
    Ok((
        i,
        CommandBody::List {
            selection,
            reference,
            patterns,
            patterns_parenthesized,
            returns,
        },
    ))
}

/// `return-option = "SUBSCRIBED" / "CHILDREN" / status-option / option-extension`;
/// `status-option = "STATUS" SP "(" status-att *(SP status-att) ")"` (RFC 5819).
fn return_option(i: &[u8]) -> PResult<'_, ListReturnOption> {
    let (r, a) = atom(i)?;
    Ok(match a.as_str().to_ascii_uppercase().as_str() {
        "SUBSCRIBED" => (r, ListReturnOption::Subscribed),
        "CHILDREN" => (r, ListReturnOption::Children),
        "SPECIAL-USE" => (r, ListReturnOption::SpecialUse),
        "STATUS" => {
            let (r, ()) = sp(r)?;
            let (r, atts) = paren_list(r, 1, status_att)?;
            (r, ListReturnOption::Status(atts))
        }
        _ => (r, ListReturnOption::Other(a)),
    })
}

/// `status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE"`
/// (plus `RECENT` of RFC 3501 and `HIGHESTMODSEQ` of RFC 7162).
pub(crate) fn status_att(i: &[u8]) -> PResult<'_, StatusAttribute> {
    let (r, a) = take1(i, is_atom_char, "a status attribute")?;
    match StatusAttribute::ALL
        .iter()
        .find(|s| s.name().as_bytes().eq_ignore_ascii_case(a))
    {
        Some(&s) => Ok((r, s)),
        None => fail(
            i,
            "a status attribute (MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN, ...)",
        ),
    }
}

/// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`.
fn status(i: &[u8]) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, mailbox) = mailbox(i)?;
    let (i, ()) = sp(i)?;
    let (i, items) = paren_list(i, 1, status_att)?;
    Ok((i, CommandBody::Status { mailbox, items }))
}

/// The part of `append` before the literal: `SP mailbox [SP flag-list] [SP date-time] SP`.
type AppendHead = (
    crate::types::Mailbox,
    Option<Vec<crate::types::Flag>>,
    Option<crate::types::DateTime>,
);

fn append_head(i: &[u8]) -> PResult<'_, AppendHead> {
    let (i, ()) = sp(i)?;
    let (mut i, mailbox) = mailbox(i)?;
    let (i2, ()) = sp(i)?;
    i = i2;
    let mut flags = None;
    if i.first() == Some(&b'(') {
        let (r, f) = flag_list(i)?;
        let (r, ()) = sp(r)?;
        flags = Some(f);
        i = r;
    }
    let mut date = None;
    if i.first() == Some(&b'"') {
        let (r, d) = date_time(i)?;
        let (r, ()) = sp(r)?;
        date = Some(d);
        i = r;
    }
    Ok((i, (mailbox, flags, date)))
}

/// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal` (RFC 9051; `literal8`
/// from RFC 3516 for BINARY).
fn append(i: &[u8]) -> PResult<'_, CommandBody> {
    let (i, (mailbox, flags, date)) = append_head(i)?;
    let (i, message) = match i.first() {
        Some(b'~') => literal_any(i, true)?,
        Some(b'{') => literal_any(i, false)?,
        _ => return fail(i, "the message as a literal"),
    };
    Ok((
        i,
        CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
        },
    ))
}

/// An APPEND whose message literal is announced but not yet sent:
/// `tag SP "APPEND" SP mailbox [SP flag-list] [SP date-time] SP ("{" / "~{") number "}" CRLF`.
/// Returns the tag, the head and whether the literal is a `literal8`.
pub(crate) fn append_announcement(partial: &[u8]) -> Option<(crate::types::Tag, AppendHead, bool)> {
    let (i, t) = tag(partial).ok()?;
    let (i, ()) = sp(i).ok()?;
    let (i, ()) = kw("APPEND")(i).ok()?;
    let (i, head) = append_head(i).ok()?;
    let (i, binary) = match i.strip_prefix(b"~") {
        Some(r) => (r, true),
        None => (i, false),
    };
    let i = i.strip_prefix(b"{")?;
    let (i, _) = number64(i).ok()?;
    (i == b"}\r\n").then_some((t, head, binary))
}

/// `search = "SEARCH" [search-return-opts] SP search-program`;
/// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`;
/// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`.
fn search(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (mut i, ()) = sp(i)?;
    let mut returns = None;
    if peek_kw(i, "RETURN ") {
        let (r, opts) = paren_list(&i[7..], 0, |i| {
            let (r, a) = take1(i, is_atom_char, "a search return option")?;
            let o = [
                SearchReturnOption::Min,
                SearchReturnOption::Max,
                SearchReturnOption::All,
                SearchReturnOption::Count,
                SearchReturnOption::Save,
            ]
            .into_iter()
            .find(|o| o.name().as_bytes().eq_ignore_ascii_case(a));
            match o {
                Some(o) => Ok((r, o)),
                None => fail(i, "MIN, MAX, ALL, COUNT or SAVE"),
            }
        })?;
        let (r, ()) = sp(r)?;
        returns = Some(opts);
        i = r;
    }
    let mut charset = None;
    if peek_kw(i, "CHARSET ") {
        let (r, c) = astring(&i[8..])?;
        let (r, ()) = sp(r)?;
        charset = Some(c);
        i = r;
    }
    let mut criteria = Vec::new();
    loop {
        let (r, k) = search_key(i, 0)?;
        criteria.push(k);
        match r.strip_prefix(b" ") {
            Some(r) => i = r,
            None => {
                i = r;
                break;
            }
        }
    }
    Ok((
        i,
        CommandBody::Search {
            uid,
            returns,
            charset,
            criteria,
        },
    ))
}

/// `search-key` (RFC 9051 section 9), recursion bounded by [`super::core::MAX_DEPTH`].
pub(crate) fn search_key(i: &[u8], depth: usize) -> PResult<'_, SearchKey> {
    check_depth(i, depth)?;
    match i.first() {
        Some(b'(') => {
            let (r, keys) = paren_list(i, 1, |i| search_key(i, depth + 1))?;
            return Ok((r, SearchKey::And(keys)));
        }
        Some(b'0'..=b'9' | b'*' | b'$') => {
            let (r, s) = sequence_set(i)?;
            return Ok((r, SearchKey::SequenceSet(s)));
        }
        _ => {}
    }
    let (r, name) = take1(i, is_atom_char, "a search key")?;
    let mut buf = [0u8; 24];
    let with_astring = |f: fn(AString) -> SearchKey| -> PResult<'_, SearchKey> {
        let (r, ()) = sp(r)?;
        let (r, a) = astring(r)?;
        Ok((r, f(a)))
    };
    let with_date = |f: fn(crate::types::Date) -> SearchKey| -> PResult<'_, SearchKey> {
        let (r, ()) = sp(r)?;
        let (r, d) = date(r)?;
        Ok((r, f(d)))
    };
    let with_number = |f: fn(u64) -> SearchKey| -> PResult<'_, SearchKey> {
        let (r, ()) = sp(r)?;
        let (r, n) = number64(r)?;
        Ok((r, f(n)))
    };
    let with_keyword = |f: fn(Atom) -> SearchKey| -> PResult<'_, SearchKey> {
        let (r, ()) = sp(r)?;
        let (r, a) = atom(r)?;
        Ok((r, f(a)))
    };
    use SearchKey as K;
    match upper(name, &mut buf) {
        b"ALL" => Ok((r, K::All)),
        b"ANSWERED" => Ok((r, K::Answered)),
        b"DELETED" => Ok((r, K::Deleted)),
        b"DRAFT" => Ok((r, K::Draft)),
        b"FLAGGED" => Ok((r, K::Flagged)),
        b"NEW" => Ok((r, K::New)),
        b"OLD" => Ok((r, K::Old)),
        b"RECENT" => Ok((r, K::Recent)),
        b"SEEN" => Ok((r, K::Seen)),
        b"UNANSWERED" => Ok((r, K::Unanswered)),
        b"UNDELETED" => Ok((r, K::Undeleted)),
        b"UNDRAFT" => Ok((r, K::Undraft)),
        b"UNFLAGGED" => Ok((r, K::Unflagged)),
        b"UNSEEN" => Ok((r, K::Unseen)),
        b"BCC" => with_astring(K::Bcc),
        b"BODY" => with_astring(K::Body),
        b"CC" => with_astring(K::Cc),
        b"FROM" => with_astring(K::From),
        b"SUBJECT" => with_astring(K::Subject),
        b"TEXT" => with_astring(K::Text),
        b"TO" => with_astring(K::To),
        b"BEFORE" => with_date(K::Before),
        b"ON" => with_date(K::On),
        b"SINCE" => with_date(K::Since),
        b"SENTBEFORE" => with_date(K::SentBefore),
        b"SENTON" => with_date(K::SentOn),
        b"SENTSINCE" => with_date(K::SentSince),
        b"LARGER" => with_number(K::Larger),
        b"SMALLER" => with_number(K::Smaller),
        b"KEYWORD" => with_keyword(K::Keyword),
        b"UNKEYWORD" => with_keyword(K::Unkeyword),
        b"HEADER" => {
            let (r, ()) = sp(r)?;
            let (r, name) = astring(r)?;
            let (r, ()) = sp(r)?;
            let (r, value) = astring(r)?;
            Ok((r, K::Header(name, value)))
        }
        b"UID" => {
            let (r, ()) = sp(r)?;
            let (r, s) = sequence_set(r)?;
            Ok((r, K::Uid(s)))
        }
        b"NOT" => {
            let (r, ()) = sp(r)?;
            let (r, k) = search_key(r, depth + 1)?;
            Ok((r, K::Not(Box::new(k))))
        }
        b"OR" => {
            let (r, ()) = sp(r)?;
            let (r, a) = search_key(r, depth + 1)?;
            let (r, ()) = sp(r)?;
            let (r, b) = search_key(r, depth + 1)?;
            Ok((r, K::Or(Box::new(a), Box::new(b))))
        }
        _ => fail(i, "a search key (ALL, FROM, SINCE, UID, OR, ...)"),
    }
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att
/// *(SP fetch-att) ")")`.
fn fetch(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, set) = sequence_set(i)?;
    let (i, ()) = sp(i)?;
    let (i, items) = if i.first() == Some(&b'(') {
        let (i, l) = paren_list(i, 1, fetch_att)?;
        (i, FetchItems::List(l))
    } else {
        let n = i
            .iter()
            .position(|&b| !b.is_ascii_alphabetic())
            .unwrap_or(i.len());
        let mut buf = [0u8; 24];
        match upper(&i[..n], &mut buf) {
            b"ALL" => (&i[n..], FetchItems::All),
            b"FAST" => (&i[n..], FetchItems::Fast),
            b"FULL" => (&i[n..], FetchItems::Full),
            _ => {
                let (i, a) = fetch_att(i)?;
                (i, FetchItems::Single(a))
            }
        }
    };
    Ok((i, CommandBody::Fetch { uid, set, items }))
}

/// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822.SIZE" / "BODY" ["STRUCTURE"] /
/// "UID" / "BODY" section [partial] / "BODY.PEEK" section [partial] / "BINARY" [".PEEK"]
/// section-binary [partial] / "BINARY.SIZE" section-binary` (plus RFC 3501's RFC822 forms and
/// RFC 7162's MODSEQ).
pub(crate) fn fetch_att(i: &[u8]) -> PResult<'_, FetchAttribute> {
    let (r, name) = take1(
        i,
        |b| b.is_ascii_alphanumeric() || b == b'.',
        "a fetch attribute",
    )?;
    let mut buf = [0u8; 24];
    use FetchAttribute as F;
    let simple = match upper(name, &mut buf) {
        b"ENVELOPE" => Some(F::Envelope),
        b"FLAGS" => Some(F::Flags),
        b"INTERNALDATE" => Some(F::InternalDate),
        b"RFC822.SIZE" => Some(F::Rfc822Size),
        b"RFC822" => Some(F::Rfc822),
        b"RFC822.HEADER" => Some(F::Rfc822Header),
        b"RFC822.TEXT" => Some(F::Rfc822Text),
        b"BODYSTRUCTURE" => Some(F::BodyStructure),
        b"UID" => Some(F::Uid),
        b"MODSEQ" => Some(F::ModSeq),
        b"BODY" if r.first() != Some(&b'[') => Some(F::Body),
        _ => None,
    };
    if let Some(a) = simple {
        return Ok((r, a));
    }
    match upper(name, &mut buf) {
        b"BODY" | b"BODY.PEEK" => {
            let peek = name.len() > 4;
            let (r, section) = section(r)?;
            let (r, partial) = partial(r)?;
            Ok((
                r,
                F::BodySection {
                    peek,
                    section,
                    partial,
                },
            ))
        }
        b"BINARY" | b"BINARY.PEEK" => {
            let peek = name.len() > 6;
            let (r, part) = section_binary(r)?;
            let (r, partial) = partial(r)?;
            Ok((
                r,
                F::Binary {
                    peek,
                    part,
                    partial,
                },
            ))
        }
        b"BINARY.SIZE" => {
            let (r, part) = section_binary(r)?;
            Ok((r, F::BinarySize(part)))
        }
        _ => fail(
            i,
            "a fetch attribute (FLAGS, UID, ENVELOPE, BODY[...], ...)",
        ),
    }
}

/// `section-part = nz-number *("." nz-number)`, stopping before `.` + letter.
fn section_part(mut i: &[u8]) -> PResult<'_, Vec<u32>> {
    let mut part = Vec::new();
    loop {
        let (r, n) = nz_number(i)?;
        part.push(n);
        if part.len() > super::core::MAX_DEPTH {
            return fail(i, "a section part no deeper than 32 levels");
        }
        match r {
            [b'.', d, ..] if d.is_ascii_digit() => i = &r[1..],
            _ => return Ok((r, part)),
        }
    }
}

/// `section = "[" [section-spec] "]"`; `section-spec = section-msgtext / (section-part ["."
/// section-text])`; `section-text = section-msgtext / "MIME"`; `section-msgtext = "HEADER" /
/// "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`.
pub(crate) fn section(i: &[u8]) -> PResult<'_, Section> {
    let (mut i, ()) = byte(b'[', "[ opening a section")(i)?;
    let mut s = Section::default();
    if i.first().is_some_and(u8::is_ascii_digit) {
        let (r, part) = section_part(i)?;
        s.part = part;
        i = r;
        match i.strip_prefix(b".") {
            Some(r) => i = r,
            None => {
                let (i, ()) = byte(b']', "] closing the section")(i)?;
                return Ok((i, s));
            }
        }
    } else if let Some(r) = i.strip_prefix(b"]") {
        return Ok((r, s));
    }
    let (r, name) = take1(
        i,
        |b| b.is_ascii_alphabetic() || b == b'.',
        "a section text",
    )?;
    let mut buf = [0u8; 24];
    let (r, text) = match upper(name, &mut buf) {
        b"HEADER" => (r, SectionText::Header),
        b"TEXT" => (r, SectionText::Text),
        b"MIME" if !s.part.is_empty() => (r, SectionText::Mime),
        b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
            let not = name.len() > 13;
            let (r, ()) = sp(r)?;
            let (r, fields) = paren_list(r, 1, astring)?;
            if not {
                (r, SectionText::HeaderFieldsNot(fields))
            } else {
                (r, SectionText::HeaderFields(fields))
            }
        }
        _ => return fail(i, "HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME"),
    };
    s.text = Some(text);
    let (r, ()) = byte(b']', "] closing the section")(r)?;
    Ok((r, s))
}

/// `section-binary = "[" [section-part] "]"`.
pub(crate) fn section_binary(i: &[u8]) -> PResult<'_, Vec<u32>> {
    let (i, ()) = byte(b'[', "[ opening a section")(i)?;
    if let Some(r) = i.strip_prefix(b"]") {
        return Ok((r, Vec::new()));
    }
    let (i, part) = section_part(i)?;
    let (i, ()) = byte(b']', "] closing the section")(i)?;
    Ok((i, part))
}

/// `partial = "<" number64 "." nz-number64 ">"`.
fn partial(i: &[u8]) -> PResult<'_, Option<(u32, u32)>> {
    let Some(r) = i.strip_prefix(b"<") else {
        return Ok((i, None));
    };
    let (r, a) = super::core::number(r)?;
    let (r, ()) = byte(b'.', ". in a partial range")(r)?;
    let (r, b) = nz_number(r)?;
    let (r, ()) = byte(b'>', "> closing a partial range")(r)?;
    Ok((r, Some((a, b))))
}

/// `store = "STORE" SP sequence-set SP store-att-flags`; `store-att-flags = (["+" / "-"] "FLAGS"
/// [".SILENT"]) SP (flag-list / (flag *(SP flag)))`.
fn store(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, set) = sequence_set(i)?;
    let (i, ()) = sp(i)?;
    let (i, kind) = match i.first() {
        Some(b'+') => (&i[1..], StoreKind::Add),
        Some(b'-') => (&i[1..], StoreKind::Remove),
        _ => (i, StoreKind::Replace),
    };
    let (i, ()) = kw("FLAGS")(i)?;
    let (i, silent) = if peek_kw(i, ".SILENT") {
        (&i[7..], true)
    } else {
        (i, false)
    };
    let (i, ()) = sp(i)?;
    let (i, flags, parenthesized) = if i.first() == Some(&b'(') {
        let (i, f) = flag_list(i)?;
        (i, f, true)
    } else {
        let (mut i, f) = flag(i)?;
        let mut flags = vec![f];
        while let Some(r) = i.strip_prefix(b" ") {
            let (r, f) = flag(r)?;
            flags.push(f);
            i = r;
        }
        (i, flags, false)
    };
    Ok((
        i,
        CommandBody::Store {
            uid,
            set,
            kind,
            silent,
            flags,
            parenthesized,
        },
    ))
}

/// `copy = "COPY" SP sequence-set SP mailbox`; `move = "MOVE" SP sequence-set SP mailbox`.
fn copy_move(i: &[u8], uid: bool, is_move: bool) -> PResult<'_, CommandBody> {
    let (i, ()) = sp(i)?;
    let (i, set) = sequence_set(i)?;
    let (i, ()) = sp(i)?;
    let (i, mailbox) = mailbox(i)?;
    Ok((
        i,
        if is_move {
            CommandBody::Move { uid, set, mailbox }
        } else {
            CommandBody::Copy { uid, set, mailbox }
        },
    ))
}

/// `id-params-list = "(" *(string SP nstring) ")" / nil` (RFC 2971; both sides use it).
pub(crate) fn id_params_list(i: &[u8]) -> PResult<'_, Option<Vec<(IString, NString)>>> {
    if i.first() != Some(&b'(') {
        let (r, ()) = kw("NIL")(i)?;
        return Ok((r, None));
    }
    let (r, l) = paren_list(i, 0, |i| {
        let (r, k) = string(i)?;
        let (r, ()) = sp(r)?;
        let (r, v) = nstring(r)?;
        Ok((r, (k, v)))
    })?;
    Ok((r, Some(l)))
}

// ---------------------------------------------------------------------------------------------
// Encoder (client side).

impl Encode for Command {
    fn encode(&self, out: &mut Vec<u8>) {
        self.tag.encode(out);
        out.push(b' ');
        self.body.encode(out);
        out.extend_from_slice(b"\r\n");
    }
}

fn sp_then<T: Encode>(out: &mut Vec<u8>, v: &T) {
    out.push(b' ');
    v.encode(out);
}

impl Encode for CommandBody {
    fn encode(&self, out: &mut Vec<u8>) {
        use CommandBody as C;
        out.extend_from_slice(self.name().as_bytes());
        match self {
            C::Capability
            | C::Noop
            | C::Logout
            | C::StartTls
            | C::Namespace
            | C::Idle
            | C::Check
            | C::Close
            | C::Unselect
            | C::Expunge => {}
            C::Authenticate {
                mechanism,
                initial_response,
            } => {
                sp_then(out, mechanism);
                if let Some(ir) = initial_response {
                    out.push(b' ');
                    if ir.expose().is_empty() {
                        out.push(b'=');
                    } else {
                        out.extend_from_slice(base64::encode(ir.expose()).as_bytes());
                    }
                }
            }
            C::Login { username, password } => {
                sp_then(out, username);
                sp_then(out, password.expose());
            }
            C::Enable(caps) => caps.iter().for_each(|c| sp_then(out, c)),
            C::Select(m)
            | C::Examine(m)
            | C::Create(m)
            | C::Delete(m)
            | C::Subscribe(m)
            | C::Unsubscribe(m) => sp_then(out, m),
            C::Rename { from, to } => {
                sp_then(out, from);
                sp_then(out, to);
            }
            C::List {
                selection,
                reference,
                patterns,
                patterns_parenthesized,
                returns,
            } => {
                if !selection.is_empty() {
                    out.push(b' ');
                    encode_list(out, selection, |o, out| match o {
                        ListSelectOption::Subscribed => out.extend_from_slice(b"SUBSCRIBED"),
                        ListSelectOption::Remote => out.extend_from_slice(b"REMOTE"),
                        ListSelectOption::RecursiveMatch => {
                            out.extend_from_slice(b"RECURSIVEMATCH")
                        }
                        ListSelectOption::SpecialUse => out.extend_from_slice(b"SPECIAL-USE"),
                        ListSelectOption::Other(a) => a.encode(out),
                    });
                }
                sp_then(out, reference);
                out.push(b' ');
                if *patterns_parenthesized || patterns.len() != 1 {
                    encode_list(out, patterns, |p, out| p.encode(out));
                } else {
                    patterns.iter().for_each(|p| p.encode(out));
                }
                if let Some(returns) = returns {
                    out.extend_from_slice(b" RETURN ");
                    encode_list(out, returns, |r, out| match r {
                        ListReturnOption::Subscribed => out.extend_from_slice(b"SUBSCRIBED"),
                        ListReturnOption::Children => out.extend_from_slice(b"CHILDREN"),
                        ListReturnOption::SpecialUse => out.extend_from_slice(b"SPECIAL-USE"),
                        ListReturnOption::Status(atts) => {
                            out.extend_from_slice(b"STATUS ");
                            encode_list(out, atts, |a, out| {
                                out.extend_from_slice(a.name().as_bytes())
                            });
                        }
                        ListReturnOption::Other(a) => a.encode(out),
                    });
                }
            }
            C::Lsub { reference, pattern } => {
                sp_then(out, reference);
                sp_then(out, pattern);
            }
            C::Status { mailbox, items } => {
                sp_then(out, mailbox);
                out.push(b' ');
                encode_list(out, items, |a, out| {
                    out.extend_from_slice(a.name().as_bytes())
                });
            }
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                sp_then(out, mailbox);
                if let Some(flags) = flags {
                    out.push(b' ');
                    encode_list(out, flags, |f, out| f.encode(out));
                }
                if let Some(d) = date {
                    sp_then(out, d);
                }
                sp_then(out, message);
            }
            C::UidExpunge(set) => sp_then(out, set),
            C::Search {
                returns,
                charset,
                criteria,
                ..
            } => {
                if let Some(returns) = returns {
                    out.extend_from_slice(b" RETURN ");
                    encode_list(out, returns, |r, out| {
                        out.extend_from_slice(r.name().as_bytes())
                    });
                }
                if let Some(c) = charset {
                    out.extend_from_slice(b" CHARSET");
                    sp_then(out, c);
                }
                criteria.iter().for_each(|k| sp_then(out, k));
            }
            C::Fetch { set, items, .. } => {
                sp_then(out, set);
                out.push(b' ');
                match items {
                    FetchItems::All => out.extend_from_slice(b"ALL"),
                    FetchItems::Fast => out.extend_from_slice(b"FAST"),
                    FetchItems::Full => out.extend_from_slice(b"FULL"),
                    FetchItems::Single(a) => a.encode(out),
                    FetchItems::List(l) => encode_list(out, l, |a, out| a.encode(out)),
                }
            }
            C::Store {
                set,
                kind,
                silent,
                flags,
                parenthesized,
                ..
            } => {
                sp_then(out, set);
                out.extend_from_slice(match kind {
                    StoreKind::Replace => b" FLAGS",
                    StoreKind::Add => b" +FLAGS",
                    StoreKind::Remove => b" -FLAGS",
                });
                if *silent {
                    out.extend_from_slice(b".SILENT");
                }
                out.push(b' ');
                if *parenthesized || flags.is_empty() {
                    encode_list(out, flags, |f, out| f.encode(out));
                } else {
                    for (n, f) in flags.iter().enumerate() {
                        if n > 0 {
                            out.push(b' ');
                        }
                        f.encode(out);
                    }
                }
            }
            C::Copy { set, mailbox, .. } | C::Move { set, mailbox, .. } => {
                sp_then(out, set);
                sp_then(out, mailbox);
            }
            C::Id(params) => {
                out.push(b' ');
                encode_id_params(out, params.as_deref());
            }
        }
    }
}

/// `id-params-list`.
pub(crate) fn encode_id_params(out: &mut Vec<u8>, params: Option<&[(IString, NString)]>) {
    match params {
        None => out.extend_from_slice(b"NIL"),
        Some(p) => encode_list(out, p, |(k, v), out| {
            k.encode(out);
            sp_then(out, v);
        }),
    }
}

impl Encode for ListMailbox {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ListMailbox::Token(t) => t.encode(out),
            ListMailbox::String(s) => s.encode(out),
        }
    }
}

impl Encode for SearchKey {
    fn encode(&self, out: &mut Vec<u8>) {
        use SearchKey as K;
        let word = |out: &mut Vec<u8>, w: &str| out.extend_from_slice(w.as_bytes());
        match self {
            K::All => word(out, "ALL"),
            K::Answered => word(out, "ANSWERED"),
            K::Deleted => word(out, "DELETED"),
            K::Draft => word(out, "DRAFT"),
            K::Flagged => word(out, "FLAGGED"),
            K::New => word(out, "NEW"),
            K::Old => word(out, "OLD"),
            K::Recent => word(out, "RECENT"),
            K::Seen => word(out, "SEEN"),
            K::Unanswered => word(out, "UNANSWERED"),
            K::Undeleted => word(out, "UNDELETED"),
            K::Undraft => word(out, "UNDRAFT"),
            K::Unflagged => word(out, "UNFLAGGED"),
            K::Unseen => word(out, "UNSEEN"),
            K::Bcc(a) => (word(out, "BCC"), sp_then(out, a)).1,
            K::Body(a) => (word(out, "BODY"), sp_then(out, a)).1,
            K::Cc(a) => (word(out, "CC"), sp_then(out, a)).1,
            K::From(a) => (word(out, "FROM"), sp_then(out, a)).1,
            K::Subject(a) => (word(out, "SUBJECT"), sp_then(out, a)).1,
            K::Text(a) => (word(out, "TEXT"), sp_then(out, a)).1,
            K::To(a) => (word(out, "TO"), sp_then(out, a)).1,
            K::Before(d) => (word(out, "BEFORE"), sp_then(out, d)).1,
            K::On(d) => (word(out, "ON"), sp_then(out, d)).1,
            K::Since(d) => (word(out, "SINCE"), sp_then(out, d)).1,
            K::SentBefore(d) => (word(out, "SENTBEFORE"), sp_then(out, d)).1,
            K::SentOn(d) => (word(out, "SENTON"), sp_then(out, d)).1,
            K::SentSince(d) => (word(out, "SENTSINCE"), sp_then(out, d)).1,
            K::Larger(n) => {
                word(out, "LARGER ");
                push_num(out, *n);
            }
            K::Smaller(n) => {
                word(out, "SMALLER ");
                push_num(out, *n);
            }
            K::Keyword(a) => (word(out, "KEYWORD"), sp_then(out, a)).1,
            K::Unkeyword(a) => (word(out, "UNKEYWORD"), sp_then(out, a)).1,
            K::Header(n, v) => {
                word(out, "HEADER");
                sp_then(out, n);
                sp_then(out, v);
            }
            K::Uid(s) => (word(out, "UID"), sp_then(out, s)).1,
            K::Not(k) => (word(out, "NOT"), sp_then(out, k.as_ref())).1,
            K::Or(a, b) => {
                word(out, "OR");
                sp_then(out, a.as_ref());
                sp_then(out, b.as_ref());
            }
            K::SequenceSet(s) => s.encode(out),
            K::And(keys) => encode_list(out, keys, |k, out| k.encode(out)),
        }
    }
}

impl Encode for FetchAttribute {
    fn encode(&self, out: &mut Vec<u8>) {
        use FetchAttribute as F;
        let w: &[u8] = match self {
            F::Envelope => b"ENVELOPE",
            F::Flags => b"FLAGS",
            F::InternalDate => b"INTERNALDATE",
            F::Rfc822Size => b"RFC822.SIZE",
            F::Rfc822 => b"RFC822",
            F::Rfc822Header => b"RFC822.HEADER",
            F::Rfc822Text => b"RFC822.TEXT",
            F::Body => b"BODY",
            F::BodyStructure => b"BODYSTRUCTURE",
            F::Uid => b"UID",
            F::ModSeq => b"MODSEQ",
            F::BodySection {
                peek,
                section,
                partial,
            } => {
                out.extend_from_slice(if *peek { b"BODY.PEEK" } else { b"BODY" });
                section.encode(out);
                encode_partial(out, *partial);
                return;
            }
            F::Binary {
                peek,
                part,
                partial,
            } => {
                out.extend_from_slice(if *peek { b"BINARY.PEEK" } else { b"BINARY" });
                encode_section_binary(out, part);
                encode_partial(out, *partial);
                return;
            }
            F::BinarySize(part) => {
                out.extend_from_slice(b"BINARY.SIZE");
                encode_section_binary(out, part);
                return;
            }
        };
        out.extend_from_slice(w);
    }
}

fn encode_partial(out: &mut Vec<u8>, partial: Option<(u32, u32)>) {
    if let Some((a, b)) = partial {
        out.push(b'<');
        push_num(out, u64::from(a));
        out.push(b'.');
        push_num(out, u64::from(b));
        out.push(b'>');
    }
}

fn encode_part(out: &mut Vec<u8>, part: &[u32]) {
    for (n, p) in part.iter().enumerate() {
        if n > 0 {
            out.push(b'.');
        }
        push_num(out, u64::from(*p));
    }
}

pub(crate) fn encode_section_binary(out: &mut Vec<u8>, part: &[u32]) {
    out.push(b'[');
    encode_part(out, part);
    out.push(b']');
}

impl Encode for Section {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        encode_part(out, &self.part);
        if let Some(t) = &self.text {
            if !self.part.is_empty() {
                out.push(b'.');
            }
            match t {
                SectionText::Header => out.extend_from_slice(b"HEADER"),
                SectionText::Text => out.extend_from_slice(b"TEXT"),
                SectionText::Mime => out.extend_from_slice(b"MIME"),
                SectionText::HeaderFields(f) => {
                    out.extend_from_slice(b"HEADER.FIELDS ");
                    encode_list(out, f, |a, out| a.encode(out));
                }
                SectionText::HeaderFieldsNot(f) => {
                    out.extend_from_slice(b"HEADER.FIELDS.NOT ");
                    encode_list(out, f, |a, out| a.encode(out));
                }
            }
        }
        out.push(b']');
    }
}

/// Builds a whole-input parse result for [`crate::decode_command`].
pub(crate) fn parse_command_frame(frame: &[u8]) -> Result<Command, crate::DecodeError> {
    match command(frame) {
        Ok(([], c)) => Ok(c),
        Ok((rest, _)) => Err(crate::DecodeError::Syntax {
            offset: frame.len() - rest.len(),
            expected: "the end of the command",
        }),
        Err(e) => Err(crate::DecodeError::syntax(frame, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Flag, SequenceSet};

    /// Examples from RFC 9051 section 6 and 8 and RFC 3501, and from the extensions' RFCs:
    /// (input, canonical encoding when it differs from the input).
    const KNOWN: &[(&str, Option<&str>)] = &[
        ("a001 CAPABILITY\r\n", None),
        ("a002 NOOP\r\n", None),
        ("A023 LOGOUT\r\n", None),
        ("a001 STARTTLS\r\n", None),
        ("A001 AUTHENTICATE GSSAPI\r\n", None),
        ("A001 AUTHENTICATE PLAIN AHRlc3QAMTIzNA==\r\n", None),
        ("A001 AUTHENTICATE PLAIN =\r\n", None),
        ("a001 LOGIN SMITH SESAME\r\n", None),
        (
            "a001 login mrc secret\r\n",
            Some("a001 LOGIN mrc secret\r\n"),
        ),
        ("a LOGIN {4+}\r\nuser \"pass word\"\r\n", None),
        ("t1 ENABLE CONDSTORE UTF8=ACCEPT\r\n", None),
        ("A142 SELECT INBOX\r\n", None),
        ("a002 select inbox\r\n", Some("a002 SELECT inbox\r\n")),
        ("A932 EXAMINE blurdybloop\r\n", None),
        ("A003 CREATE owatagusiam/\r\n", None),
        ("A683 DELETE blurdybloop\r\n", None),
        ("A683 RENAME blurdybloop sarasoop\r\n", None),
        ("A002 SUBSCRIBE #news.comp.mail.mime\r\n", None),
        ("A002 UNSUBSCRIBE #news.comp.mail.mime\r\n", None),
        ("A101 LIST \"\" \"\"\r\n", None),
        ("A102 LIST #news.comp.mail.misc \"\"\r\n", None),
        ("A202 LIST ~/Mail/ %\r\n", None),
        ("A02 LIST (SPECIAL-USE) \"\" \"*\"\r\n", None),
        (
            "A01 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)\r\n",
            None,
        ),
        (
            "A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))\r\n",
            None,
        ),
        ("A01 LIST \"\" (\"foo\" \"bar\" baz/*)\r\n", None),
        ("A04 LSUB \"#news.\" \"comp.mail.*\"\r\n", None),
        ("A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", None),
        ("A002 NAMESPACE\r\n", None),
        (
            "A003 APPEND saved-messages (\\Seen) {22}\r\nDate: x\r\n\r\nHello Joe\r\n\r\n",
            None,
        ),
        (
            "A004 APPEND INBOX \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi\r\n",
            None,
        ),
        ("A005 APPEND INBOX () ~{3}\r\na\0b\r\n", None),
        (
            "A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
            None,
        ),
        (
            "A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
            None,
        ),
        ("A284 SEARCH TEXT \"string not in mailbox\"\r\n", None),
        ("A285 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n", None),
        (
            "A286 UID SEARCH RETURN (ALL SAVE) OR (SEEN UNDELETED) UID $ HEADER X-Foo bar LARGER 100\r\n",
            None,
        ),
        (
            "A287 SEARCH NEW OLD RECENT ANSWERED DELETED DRAFT UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN ALL KEYWORD $Junk UNKEYWORD $Fwd BCC a CC b TO c BODY d SUBJECT e ON 3-Mar-2024 BEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTBEFORE 1-Jan-2000 SENTSINCE 1-Jan-2000 SMALLER 5 2:4,7\r\n",
            None,
        ),
        (
            "A288 SEARCH SINCE \"1-Feb-1994\"\r\n",
            Some("A288 SEARCH SINCE 1-Feb-1994\r\n"),
        ),
        (
            "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
            None,
        ),
        ("a003 fetch 12 full\r\n", Some("a003 FETCH 12 FULL\r\n")),
        (
            "a004 fetch 12 body[header]\r\n",
            Some("a004 FETCH 12 BODY[HEADER]\r\n"),
        ),
        ("A999 UID FETCH 4827313:4828442 FLAGS\r\n", None),
        (
            "A1 FETCH 1 (BODY.PEEK[1.2.MIME] BINARY.PEEK[1]<0.100> BINARY.SIZE[2] BODY[]<0.2048> RFC822.HEADER RFC822 RFC822.TEXT BODY BODYSTRUCTURE ENVELOPE INTERNALDATE RFC822.SIZE UID MODSEQ BODY[3.TEXT] BODY.PEEK[HEADER.FIELDS.NOT (X-A)] BINARY[])\r\n",
            None,
        ),
        ("A2 FETCH 1:* ALL\r\n", None),
        ("A3 FETCH $ FAST\r\n", None),
        ("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", None),
        (
            "a005 store 12 +flags \\deleted\r\n",
            Some("a005 STORE 12 +FLAGS \\Deleted\r\n"),
        ),
        (
            "A003 UID STORE 4827313:4828442 +FLAGS.SILENT (\\Deleted)\r\n",
            None,
        ),
        ("A004 STORE 1 -FLAGS ($Junk \\Seen)\r\n", None),
        ("A005 STORE 1 FLAGS ()\r\n", None),
        ("A003 COPY 2:4 MEETING\r\n", None),
        ("a UID MOVE 42:69 foo\r\n", None),
        ("a UID COPY 1,3 \"Sent Items\"\r\n", None),
        ("a MOVE 1 Trash\r\n", None),
        ("A004 UID EXPUNGE 3000:3002\r\n", None),
        ("a IDLE\r\n", None),
        ("A341 CLOSE\r\n", None),
        ("A342 UNSELECT\r\n", None),
        ("A202 EXPUNGE\r\n", None),
        ("FXXZ CHECK\r\n", None),
        ("a023 ID (\"name\" \"sodr\" \"version\" NIL)\r\n", None),
        ("a024 ID NIL\r\n", None),
    ];

    #[test]
    fn known_answers_parse_and_round_trip() {
        for (input, canonical) in KNOWN {
            let c =
                parse_command_frame(input.as_bytes()).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let bytes = c.to_bytes();
            let expected = canonical.unwrap_or(input);
            assert_eq!(String::from_utf8_lossy(&bytes), *expected, "{input:?}");
            assert_eq!(parse_command_frame(&bytes).unwrap(), c);
        }
    }

    #[test]
    fn known_values() {
        let c = parse_command_frame(b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n").unwrap();
        assert_eq!(
            c.body,
            CommandBody::Store {
                uid: false,
                set: SequenceSet::range(2, 4).unwrap(),
                kind: StoreKind::Add,
                silent: false,
                flags: vec![Flag::Deleted],
                parenthesized: true,
            }
        );
        let c = parse_command_frame(b"A1 AUTHENTICATE PLAIN AHRlc3QAMTIzNA==\r\n").unwrap();
        let CommandBody::Authenticate {
            initial_response: Some(ir),
            ..
        } = c.body
        else {
            panic!()
        };
        assert_eq!(ir.expose(), b"\0test\x001234");
    }

    /// Malformed input: (input, what the error must name).
    const BAD: &[(&[u8], &str)] = &[
        (b"a LOGIN \"us\0er\" x\r\n", "NUL"),
        (b"a LOGIN {3}\r\na\0b x\r\n", "NUL"),
        (b"a SELECT\r\n", "space"),
        (b"a FETCH 0 FLAGS\r\n", "non-zero"),
        (b"a NOOP extra\r\n", "CRLF"),
        (b"+ NOOP\r\n", "tag"),
        (b"a FOO\r\n", "known command"),
        (b"a UID NOOP\r\n", "after UID"),
        (b"a FETCH 1 (FLAGS\r\n", "closing parenthesis"),
        (b"a SEARCH FROM\r\n", "space"),
        (b"a STATUS x ()\r\n", "at least one"),
        (b"a SELECT \"x\r\n", "DQUOTE"),
        (b"a FETCH 1 BODY[1.MIMEX]\r\n", "HEADER"),
        (b"a FETCH 1 BODY[MIME]\r\n", "HEADER"),
        (b"a AUTHENTICATE PLAIN ab=c\r\n", "base64"),
    ];

    #[test]
    fn malformed_commands_name_what_was_expected() {
        for (input, needle) in BAD {
            let e = parse_command_frame(input).unwrap_err();
            assert!(
                e.to_string().contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn search_nesting_is_bounded() {
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(40), ")".repeat(40));
        let e = parse_command_frame(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("32 levels"), "{e}");
        let not = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(10_000));
        assert!(parse_command_frame(not.as_bytes()).is_err());
        let ok = format!("a SEARCH {}ALL{}\r\n", "(".repeat(20), ")".repeat(20));
        assert!(parse_command_frame(ok.as_bytes()).is_ok());
    }
}
