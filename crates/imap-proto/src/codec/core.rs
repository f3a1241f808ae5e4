//! Parsers and encoders of the lexical rules of RFC 9051 section 9, side by side.
//!
//! Parsers run on a whole frame (the framing layer has already gathered a line and its
//! literals), so they are nom "complete" parsers: running out of input is a syntax error.

use std::num::NonZeroU32;

use nom::error::{ContextError, ErrorKind, FromExternalError, ParseError};
use nom::{Err, IResult};

use super::Encode;
use crate::types::{
    AString, Atom, AtomExt, Date, DateTime, Flag, FlagPerm, IString, ListToken, Literal,
    LiteralMode, Mailbox, NString, Quoted, SeqNumber, Sequence, SequenceSet, Tag, is_astring_char,
    is_atom_char, is_list_char, is_tag_char,
};

/// The parsers' error: where it failed and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PError<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) expected: &'static str,
}

impl<'a> ParseError<&'a [u8]> for PError<'a> {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        PError {
            input,
            expected: match kind {
                ErrorKind::Eof => "more input",
                _ => "valid syntax",
            },
        }
    }
    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        // Of two failed alternatives, the one that got further says more.
        if other.input.len() <= self.input.len() {
            other
        } else {
            self
        }
    }
}
impl<'a> ContextError<&'a [u8]> for PError<'a> {}
impl<'a, E> FromExternalError<&'a [u8], E> for PError<'a> {
    fn from_external_error(input: &'a [u8], kind: ErrorKind, _: E) -> Self {
        Self::from_error_kind(input, kind)
    }
}

pub(crate) type PResult<'a, O> = IResult<&'a [u8], O, PError<'a>>;

/// Fails at `input` saying what was expected.
pub(crate) fn fail<'a, O>(input: &'a [u8], expected: &'static str) -> PResult<'a, O> {
    Err(Err::Error(PError { input, expected }))
}

/// Maximum nesting of parenthesised structures (SEARCH keys, BODYSTRUCTURE, extension lists):
/// deep enough for any real message, shallow enough that recursion cannot exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// Fails when `depth` exceeds [`MAX_DEPTH`].
pub(crate) fn check_depth(input: &[u8], depth: usize) -> PResult<'_, ()> {
    if depth > MAX_DEPTH {
        return Err(Err::Failure(PError {
            input,
            expected: "nesting no deeper than 32 levels",
        }));
    }
    Ok((input, ()))
}

/// One exact octet.
#[inline]
pub(crate) fn byte(c: u8, expected: &'static str) -> impl Fn(&[u8]) -> PResult<'_, ()> {
    move |i: &[u8]| match i.first() {
        Some(&b) if b == c => Ok((&i[1..], ())),
        _ => fail(i, expected),
    }
}

/// `SP`.
#[inline]
pub(crate) fn sp(i: &[u8]) -> PResult<'_, ()> {
    byte(b' ', "a space")(i)
}

/// `CRLF`.
pub(crate) fn crlf(i: &[u8]) -> PResult<'_, ()> {
    if i.starts_with(b"\r\n") {
        Ok((&i[2..], ()))
    } else {
        fail(i, "CRLF at the end of the line")
    }
}

/// A keyword, any case.
#[inline]
pub(crate) fn kw<'a>(word: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, ()> {
    move |i: &'a [u8]| {
        let n = word.len();
        if i.len() >= n && i[..n].eq_ignore_ascii_case(word.as_bytes()) {
            Ok((&i[n..], ()))
        } else {
            fail(i, word)
        }
    }
}

/// Whether `i` starts with keyword `word` (any case), without consuming.
#[inline]
pub(crate) fn peek_kw(i: &[u8], word: &str) -> bool {
    i.len() >= word.len() && i[..word.len()].eq_ignore_ascii_case(word.as_bytes())
}

/// Takes the longest run of octets of a class, at least one.
#[inline]
pub(crate) fn take1<'a>(
    i: &'a [u8],
    ok: fn(u8) -> bool,
    expected: &'static str,
) -> PResult<'a, &'a [u8]> {
    let n = i.iter().position(|&b| !ok(b)).unwrap_or(i.len());
    if n == 0 {
        return fail(i, expected);
    }
    Ok((&i[n..], &i[..n]))
}

/// `number64 = 1*DIGIT` (RFC 9051: unsigned 63-bit).
pub(crate) fn number64(i: &[u8]) -> PResult<'_, u64> {
    let (rest, digits) = take1(i, |b| b.is_ascii_digit(), "a number")?;
    let mut n: u64 = 0;
    for &d in digits {
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(n) if n <= i64::MAX as u64 => n,
            _ => return fail(i, "a number below 2^63"),
        };
    }
    Ok((rest, n))
}

/// `number = 1*DIGIT` (unsigned 32-bit).
pub(crate) fn number(i: &[u8]) -> PResult<'_, u32> {
    let (rest, n) = number64(i)?;
    match u32::try_from(n) {
        Ok(n) => Ok((rest, n)),
        Err(_) => fail(i, "a number below 2^32"),
    }
}

/// `nz-number = digit-nz *DIGIT`.
pub(crate) fn nz_number(i: &[u8]) -> PResult<'_, u32> {
    let (rest, n) = number(i)?;
    if n == 0 {
        return fail(i, "a non-zero number");
    }
    Ok((rest, n))
}

/// `atom = 1*ATOM-CHAR`.
pub(crate) fn atom(i: &[u8]) -> PResult<'_, Atom> {
    let (rest, a) = take1(i, is_atom_char, "an atom")?;
    Ok((rest, Atom::from_checked(a)))
}

/// `tag = 1*<any ASTRING-CHAR except "+">`.
pub(crate) fn tag(i: &[u8]) -> PResult<'_, Tag> {
    let (rest, a) = take1(i, is_tag_char, "a tag")?;
    Ok((rest, Tag::from_checked(a)))
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`;
/// `QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2 / UTF8-3 /
/// UTF8-4`.
pub(crate) fn quoted(i: &[u8]) -> PResult<'_, Quoted> {
    let (mut rest, ()) = byte(b'"', "a quoted string")(i)?;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let n = rest
            .iter()
            .position(|&b| matches!(b, b'"' | b'\\' | 0 | b'\r' | b'\n'))
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        match rest.first() {
            Some(b'"') => {
                rest = &rest[1..];
                break;
            }
            Some(b'\\') => match rest.get(1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    rest = &rest[2..];
                }
                _ => return fail(rest, "\\\" or \\\\ after a backslash in a quoted string"),
            },
            Some(0) => return fail(rest, "a quoted string without NUL"),
            _ => {
                return fail(
                    rest,
                    "a closing DQUOTE (quoted strings cannot hold CR or LF)",
                );
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Ok((rest, Quoted::from_checked(s))),
        Err(_) => fail(i, "a quoted string in UTF-8"),
    }
}

/// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` (RFC 9051, RFC 7888) and, with `binary`,
/// `literal8 = "~{" number64 "}" CRLF *OCTET` (RFC 3516).
pub(crate) fn literal_any(i: &[u8], binary: bool) -> PResult<'_, Literal> {
    let (i2, ()) = if binary {
        kw("~{")(i)?
    } else {
        byte(b'{', "a literal")(i)?
    };
    let (i2, n) = number64(i2)?;
    let (i2, mode) = match i2.first() {
        Some(b'+') => (&i2[1..], LiteralMode::NonSync),
        _ => (i2, LiteralMode::Sync),
    };
    let (i2, ()) = byte(b'}', "} closing the literal's size")(i2)?;
    let (i2, ()) = crlf(i2)?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if i2.len() < n {
        return fail(i2, "the literal's octets");
    }
    let data = &i2[..n];
    if !binary && let Some(p) = memchr::memchr(0, data) {
        return fail(&i2[p..], "a literal without NUL (CHAR8 = %x01-ff)");
    }
    Ok((&i2[n..], Literal::from_checked(data.to_vec(), mode, binary)))
}

/// `literal`.
pub(crate) fn literal(i: &[u8]) -> PResult<'_, Literal> {
    literal_any(i, false)
}

/// `string = quoted / literal`.
pub(crate) fn string(i: &[u8]) -> PResult<'_, IString> {
    match i.first() {
        Some(b'"') => quoted(i).map(|(r, q)| (r, IString::Quoted(q))),
        Some(b'{') => literal(i).map(|(r, l)| (r, IString::Literal(l))),
        _ => fail(i, "a string (quoted or literal)"),
    }
}

/// `nil = "NIL"`.
pub(crate) fn nil(i: &[u8]) -> PResult<'_, ()> {
    let (rest, ()) = kw("NIL")(i)?;
    Ok((rest, ()))
}

/// `nstring = string / nil`.
pub(crate) fn nstring(i: &[u8]) -> PResult<'_, NString> {
    match i.first() {
        Some(b'"' | b'{') => string(i).map(|(r, s)| (r, Some(s))),
        _ => match nil(i) {
            Ok((r, ())) => Ok((r, None)),
            Err(_) => fail(i, "a string or NIL"),
        },
    }
}

/// `astring = 1*ASTRING-CHAR / string`.
pub(crate) fn astring(i: &[u8]) -> PResult<'_, AString> {
    match i.first() {
        Some(b'"' | b'{') => string(i).map(|(r, s)| (r, AString::String(s))),
        _ => {
            let (rest, a) = take1(i, is_astring_char, "an astring")?;
            Ok((rest, AString::Atom(AtomExt::from_checked(a))))
        }
    }
}

/// `mailbox = "INBOX" / astring`.
pub(crate) fn mailbox(i: &[u8]) -> PResult<'_, Mailbox> {
    match astring(i) {
        Ok((r, a)) => Ok((r, Mailbox::new(a))),
        Err(Err::Error(e)) if e.input.len() == i.len() => fail(i, "a mailbox name"),
        Err(e) => Err(e),
    }
}

/// `list-mailbox = 1*list-char / string`.
pub(crate) fn list_token(i: &[u8]) -> PResult<'_, ListToken> {
    let (rest, a) = take1(i, is_list_char, "a mailbox pattern")?;
    Ok((rest, ListToken::from_checked(a)))
}

/// `seq-number = nz-number / "*"`.
pub(crate) fn seq_number(i: &[u8]) -> PResult<'_, SeqNumber> {
    if let Some(rest) = i.strip_prefix(b"*") {
        return Ok((rest, SeqNumber::Largest));
    }
    if !i.first().is_some_and(u8::is_ascii_digit) {
        return fail(i, "a sequence number or *");
    }
    let (rest, n) = nz_number(i)?;
    let v = NonZeroU32::new(n).map_or(SeqNumber::Largest, SeqNumber::Value);
    Ok((rest, v))
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set] / seq-last-command`;
/// `seq-range = seq-number ":" seq-number`; `seq-last-command = "$"`.
pub(crate) fn sequence_set(i: &[u8]) -> PResult<'_, SequenceSet> {
    if let Some(rest) = i.strip_prefix(b"$") {
        return Ok((rest, SequenceSet::saved()));
    }
    let mut items = Vec::new();
    let mut rest = i;
    loop {
        let (r, a) = seq_number(rest)?;
        let (r, item) = match r.strip_prefix(b":") {
            Some(r) => {
                let (r, b) = seq_number(r)?;
                (r, Sequence::Range(a, b))
            }
            None => (r, Sequence::Single(a)),
        };
        items.push(item);
        rest = r;
        match rest.strip_prefix(b",") {
            Some(r) => rest = r,
            None => break,
        }
    }
    match SequenceSet::new(items) {
        Ok(s) => Ok((rest, s)),
        Err(_) => fail(i, "a sequence set"),
    }
}

/// `flag = "\Answered" / ... / flag-keyword / flag-extension`; with `allow_star`, also `"\*"`
/// (`flag-perm`).
pub(crate) fn flag_perm(i: &[u8]) -> PResult<'_, FlagPerm> {
    if let Some(rest) = i.strip_prefix(b"\\*") {
        return Ok((rest, FlagPerm::Any));
    }
    flag(i).map(|(r, f)| (r, FlagPerm::Flag(f)))
}

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension`; `flag-extension = "\" atom`; `flag-keyword = atom`.
pub(crate) fn flag(i: &[u8]) -> PResult<'_, Flag> {
    match i.strip_prefix(b"\\") {
        Some(rest) => {
            let (rest, a) = atom(rest).or_else(|_| fail(i, "a flag"))?;
            Ok((rest, Flag::system(a)))
        }
        None => {
            let (rest, a) = atom(i).or_else(|_| fail(i, "a flag"))?;
            Ok((rest, Flag::Keyword(a)))
        }
    }
}

/// `"(" [item *(SP item)] ")"`, with `min` items at least.
pub(crate) fn paren_list<'a, O>(
    i: &'a [u8],
    min: usize,
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, O>,
) -> PResult<'a, Vec<O>> {
    let (mut rest, ()) = byte(b'(', "an opening parenthesis")(i)?;
    let mut out = Vec::new();
    if let Some(r) = rest.strip_prefix(b")") {
        if min > 0 {
            return fail(rest, "at least one item in the list");
        }
        return Ok((r, out));
    }
    loop {
        let (r, v) = item(rest)?;
        out.push(v);
        match r.first() {
            Some(b' ') => rest = &r[1..],
            Some(b')') => return Ok((&r[1..], out)),
            _ => return fail(r, "a space or a closing parenthesis"),
        }
    }
}

/// `flag-list = "(" [flag *(SP flag)] ")"`.
pub(crate) fn flag_list(i: &[u8]) -> PResult<'_, Vec<Flag>> {
    paren_list(i, 0, flag)
}

fn two_digits(i: &[u8]) -> PResult<'_, u8> {
    match i {
        [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Ok((&i[2..], (a - b'0') * 10 + (b - b'0')))
        }
        _ => fail(i, "two digits"),
    }
}

fn year(i: &[u8]) -> PResult<'_, u16> {
    match i {
        [a, b, c, d, ..] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) => {
            let y = [a, b, c, d]
                .iter()
                .fold(0u16, |n, &&d| n * 10 + u16::from(d - b'0'));
            Ok((&i[4..], y))
        }
        _ => fail(i, "a four-digit year"),
    }
}

fn month(i: &[u8]) -> PResult<'_, u8> {
    match i.get(..3).and_then(crate::types::flag::month_number) {
        Some(m) => Ok((&i[3..], m)),
        None => fail(i, "a month name (Jan, Feb, ...)"),
    }
}

/// `date-text = date-day "-" date-month "-" date-year`; `date-day = 1*2DIGIT`.
fn date_text(i: &[u8]) -> PResult<'_, Date> {
    let (rest, day) = match i {
        [a, b, ..] if a.is_ascii_digit() && b.is_ascii_digit() => two_digits(i)?,
        [a, ..] if a.is_ascii_digit() => (&i[1..], a - b'0'),
        _ => return fail(i, "a date (d-Mon-yyyy)"),
    };
    let (rest, ()) = byte(b'-', "-")(rest)?;
    let (rest, m) = month(rest)?;
    let (rest, ()) = byte(b'-', "-")(rest)?;
    let (rest, y) = year(rest)?;
    match Date::new(y, m, day) {
        Ok(d) => Ok((rest, d)),
        Err(_) => fail(i, "an existing date"),
    }
}

/// `date = date-text / DQUOTE date-text DQUOTE`.
pub(crate) fn date(i: &[u8]) -> PResult<'_, Date> {
    match i.strip_prefix(b"\"") {
        Some(r) => {
            let (r, d) = date_text(r)?;
            let (r, ()) = byte(b'"', "a closing DQUOTE")(r)?;
            Ok((r, d))
        }
        None => date_text(i),
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`;
/// `date-day-fixed = (SP DIGIT) / 2DIGIT`; `time = 2DIGIT ":" 2DIGIT ":" 2DIGIT`;
/// `zone = ("+" / "-") 4DIGIT`.
pub(crate) fn date_time(i: &[u8]) -> PResult<'_, DateTime> {
    let (r, ()) = byte(b'"', "a date-time in DQUOTEs")(i)?;
    let (r, day) = match r {
        [b' ', d, ..] if d.is_ascii_digit() => (&r[2..], d - b'0'),
        _ => two_digits(r)?,
    };
    let (r, ()) = byte(b'-', "-")(r)?;
    let (r, m) = month(r)?;
    let (r, ()) = byte(b'-', "-")(r)?;
    let (r, y) = year(r)?;
    let (r, ()) = sp(r)?;
    let (r, hh) = two_digits(r)?;
    let (r, ()) = byte(b':', ":")(r)?;
    let (r, mm) = two_digits(r)?;
    let (r, ()) = byte(b':', ":")(r)?;
    let (r, ss) = two_digits(r)?;
    let (r, ()) = sp(r)?;
    let (r, sign) = match r.first() {
        Some(b'+') => (&r[1..], 1i16),
        Some(b'-') => (&r[1..], -1i16),
        _ => return fail(r, "a zone (+hhmm or -hhmm)"),
    };
    let (r, zh) = two_digits(r)?;
    let (r, zm) = two_digits(r)?;
    let (r, ()) = byte(b'"', "a closing DQUOTE")(r)?;
    let zone = sign * (i16::from(zh) * 60 + i16::from(zm));
    match Date::new(y, m, day).and_then(|d| DateTime::new(d, hh, mm, ss, zone)) {
        Ok(dt) => Ok((r, dt)),
        Err(_) => fail(i, "an existing date and time"),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders.

macro_rules! encode_as_str {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(self.as_str().as_bytes());
            }
        }
    )*};
}
encode_as_str!(Tag, Atom, AtomExt, ListToken);

impl Encode for Quoted {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        for &b in self.as_str().as_bytes() {
            if matches!(b, b'"' | b'\\') {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

impl Encode for Literal {
    fn encode(&self, out: &mut Vec<u8>) {
        if self.is_binary() {
            out.push(b'~');
        }
        out.push(b'{');
        push_num(out, self.data().len() as u64);
        if self.mode() == LiteralMode::NonSync {
            out.push(b'+');
        }
        out.extend_from_slice(b"}\r\n");
        out.extend_from_slice(self.data());
    }
}

impl Encode for IString {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            IString::Quoted(q) => q.encode(out),
            IString::Literal(l) => l.encode(out),
        }
    }
}

impl Encode for AString {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            AString::Atom(a) => a.encode(out),
            AString::String(s) => s.encode(out),
        }
    }
}

impl Encode for NString {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(s) => s.encode(out),
            None => out.extend_from_slice(b"NIL"),
        }
    }
}

impl Encode for Mailbox {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_astring().encode(out);
    }
}

impl Encode for SeqNumber {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SeqNumber::Value(v) => push_num(out, u64::from(v.get())),
            SeqNumber::Largest => out.push(b'*'),
        }
    }
}

impl Encode for SequenceSet {
    fn encode(&self, out: &mut Vec<u8>) {
        if self.is_saved() {
            out.push(b'$');
            return;
        }
        for (n, s) in self.items().iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            match s {
                Sequence::Single(a) => a.encode(out),
                Sequence::Range(a, b) => {
                    a.encode(out);
                    out.push(b':');
                    b.encode(out);
                }
            }
        }
    }
}

impl Encode for Flag {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_wire().as_bytes());
    }
}

impl Encode for FlagPerm {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FlagPerm::Flag(f) => f.encode(out),
            FlagPerm::Any => out.extend_from_slice(b"\\*"),
        }
    }
}

impl Encode for Date {
    fn encode(&self, out: &mut Vec<u8>) {
        push_num(out, u64::from(self.day()));
        out.push(b'-');
        out.extend_from_slice(crate::types::flag::month_name(self.month()).as_bytes());
        out.push(b'-');
        push_padded(out, u64::from(self.year()), 4);
    }
}

impl Encode for DateTime {
    fn encode(&self, out: &mut Vec<u8>) {
        let d = self.date();
        out.push(b'"');
        if d.day() < 10 {
            out.push(b' ');
        }
        push_num(out, u64::from(d.day()));
        out.push(b'-');
        out.extend_from_slice(crate::types::flag::month_name(d.month()).as_bytes());
        out.push(b'-');
        push_padded(out, u64::from(d.year()), 4);
        let (h, m, s) = self.time();
        out.push(b' ');
        push_padded(out, u64::from(h), 2);
        out.push(b':');
        push_padded(out, u64::from(m), 2);
        out.push(b':');
        push_padded(out, u64::from(s), 2);
        let z = self.zone_minutes();
        out.extend_from_slice(if z < 0 { b" -" } else { b" +" });
        let z = u64::from(z.unsigned_abs());
        push_padded(out, z / 60, 2);
        push_padded(out, z % 60, 2);
        out.push(b'"');
    }
}

/// Writes `n` in decimal.
pub(crate) fn push_num(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = Vec::with_capacity(width);
    push_num(&mut tmp, n);
    for _ in tmp.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(&tmp);
}

/// Writes `items` separated by spaces inside parentheses.
pub(crate) fn encode_list<T>(
    out: &mut Vec<u8>,
    items: &[T],
    mut each: impl FnMut(&T, &mut Vec<u8>),
) {
    out.push(b'(');
    for (n, it) in items.iter().enumerate() {
        if n > 0 {
            out.push(b' ');
        }
        each(it, out);
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encode;

    fn enc<T: Encode>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    #[test]
    fn strings_known_answers() {
        let (r, q) = quoted(b"\"a \\\"b\\\\ c\" rest").unwrap();
        assert_eq!((q.as_str(), r), ("a \"b\\ c", &b" rest"[..]));
        assert_eq!(enc(&q), b"\"a \\\"b\\\\ c\"");
        assert!(quoted(b"\"a\0b\"").is_err());
        assert!(quoted(b"\"a\r\nb\"").is_err());
        assert!(quoted(b"\"a\\xb\"").is_err());
        let (r, l) = literal(b"{5}\r\nhello)").unwrap();
        assert_eq!((l.data(), r), (&b"hello"[..], &b")"[..]));
        assert_eq!(enc(&l), b"{5}\r\nhello");
        let (_, l) = literal(b"{2+}\r\nhi").unwrap();
        assert_eq!(l.mode(), LiteralMode::NonSync);
        assert_eq!(enc(&l), b"{2+}\r\nhi");
        assert!(literal(b"{3}\r\na\0b").is_err());
        assert!(literal(b"{9}\r\nshort").is_err());
        let (_, l) = literal_any(b"~{3}\r\na\0b", true).unwrap();
        assert_eq!(l.data(), b"a\0b");
        assert_eq!(enc(&l), b"~{3}\r\na\0b");
        assert_eq!(astring(b"INBOX]x y").unwrap().0, b" y");
        assert_eq!(nstring(b"nil)").unwrap(), (&b")"[..], None));
    }

    #[test]
    fn numbers_and_sets_known_answers() {
        assert_eq!(number(b"4294967295").unwrap().1, u32::MAX);
        assert!(number(b"4294967296").is_err());
        assert!(nz_number(b"0").is_err());
        assert!(number64(b"99999999999999999999").is_err());
        for (wire, rest) in [
            (&b"1:*,3,5:7 x"[..], &b" x"[..]),
            (b"$", b""),
            (b"2,4:7,9,12:*", b""),
            (b"*:4", b""),
        ] {
            let (r, s) = sequence_set(wire).unwrap();
            assert_eq!(r, rest);
            assert_eq!(enc(&s), &wire[..wire.len() - rest.len()]);
        }
        assert!(sequence_set(b"0:3").is_err());
        assert!(sequence_set(b",1").is_err());
    }

    #[test]
    fn dates_known_answers() {
        // RFC 9051 section 8: INTERNALDATE "17-Jul-1996 02:44:25 -0700".
        let (_, dt) = date_time(b"\"17-Jul-1996 02:44:25 -0700\"").unwrap();
        assert_eq!(enc(&dt), b"\"17-Jul-1996 02:44:25 -0700\"");
        let (_, dt) = date_time(b"\" 1-Feb-2024 23:59:60 +0530\"").unwrap();
        assert_eq!(enc(&dt), b"\" 1-Feb-2024 23:59:60 +0530\"");
        assert!(date_time(b"\"31-Feb-2024 00:00:00 +0000\"").is_err());
        let (_, d) = date(b"1-Feb-1994").unwrap();
        assert_eq!(enc(&d), b"1-Feb-1994");
        assert_eq!(date(b"\"01-feb-1994\"").unwrap().1, d);
    }

    #[test]
    fn flags_known_answers() {
        let (_, f) = flag_list(b"(\\Seen \\deleted $Forwarded \\Recent)").unwrap();
        assert_eq!(f[1], Flag::Deleted);
        assert_eq!(enc(&f[3]), b"\\Recent");
        assert!(flag_list(b"(\\Seen").is_err());
        assert_eq!(flag_perm(b"\\*").unwrap().1, FlagPerm::Any);
    }
}
