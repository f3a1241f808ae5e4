//! Writing one message in mbox form: From_ line, filtered header section, quoted body,
//! separator. Streams in bounded memory except for mboxcl/mboxcl2, whose `Content-Length` must
//! be known before the body and so buffer it (up to [`WriteOptions::max_message_bytes`]).

use std::io::{self, Read, Write};

use crate::from_line::FromLine;
use crate::headers::is_field_name;
use crate::variant::{Direction, Quoter, Variant};

/// Header fields removed from every message on delivery.
///
/// They carry a mail store's own state (flags: `Status`, `X-Status`, `X-Keywords`; Dovecot's
/// and UW-IMAP's UID bookkeeping: `X-UID`, `X-IMAP`, `X-IMAPbase`; the mboxcl body length:
/// `Content-Length`). Taken from a sender they would let a message arrive already read,
/// flagged or deleted, collide with UIDs, or swallow the next message in a Content-Length
/// reader; Dovecot and mutt strip the same set when saving into an mbox.
pub const SPOOFABLE_HEADERS: [&str; 7] = [
    "Status",
    "X-Status",
    "X-Keywords",
    "X-UID",
    "X-IMAP",
    "X-IMAPbase",
    "Content-Length",
];

/// Options of [`write_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// The largest message accepted, as given (default 256 MiB).
    pub max_message_bytes: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            max_message_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why a message could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Reading the message or writing the output failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The message is larger than [`WriteOptions::max_message_bytes`].
    #[error("message larger than {0} bytes")]
    TooLarge(u64),
}

const CHUNK: usize = 64 * 1024;

/// Line splitter over the input with CRLF turned into LF.
struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    total: u64,
    max: u64,
}

/// One piece of a line: bytes (line end normalised to `\n`), and whether the line ends here.
impl<R: Read> Lines<R> {
    fn new(inner: R, max: u64) -> Self {
        Self {
            inner,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
            total: 0,
            max,
        }
    }

    fn fill(&mut self) -> Result<bool, WriteError> {
        if self.eof {
            return Ok(false);
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.total += n as u64;
                    if self.total > self.max {
                        return Err(WriteError::TooLarge(self.max));
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// At least `n` bytes available unless the input ends.
    fn ensure(&mut self, n: usize) -> Result<&[u8], WriteError> {
        while self.end - self.start < n && self.fill()? {}
        Ok(&self.buf[self.start..self.end])
    }

    /// Hands the rest of the current line, piece by piece, to `f` (line end normalised to LF,
    /// a bare CR kept). Returns false when the input ended before a line end.
    fn pass_line(&mut self, mut f: impl FnMut(&[u8])) -> Result<bool, WriteError> {
        loop {
            if self.start == self.end && !self.fill()? {
                return Ok(false);
            }
            let a = &self.buf[self.start..self.end];
            match memchr::memchr(b'\n', a) {
                Some(i) => {
                    let line = &a[..i];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    f(line);
                    f(b"\n");
                    self.start += i + 1;
                    return Ok(true);
                }
                None => {
                    // Keep a final CR back: it may be the first half of a CRLF.
                    let keep = usize::from(a.ends_with(b"\r"));
                    if keep == 1 && a.len() == 1 {
                        if !self.fill()? {
                            f(b"\r");
                            self.start = self.end;
                            return Ok(false);
                        }
                        continue;
                    }
                    f(&a[..a.len() - keep]);
                    self.start = self.end - keep;
                }
            }
        }
    }
}

/// Writes `message` (an RFC 5322 message: header section, blank line, body; LF or CRLF line
/// ends) to `out` as one mbox entry of `variant`: the From_ line, the header section without
/// the [`SPOOFABLE_HEADERS`] (plus a computed `Content-Length` for mboxcl and mboxcl2), a blank
/// line, the body quoted as the variant says, a line end if the message lacked its last one,
/// and the blank separator line. CRLF line ends become LF, the Unix mailbox convention (Postfix
/// local(8) does the same). Returns the number of bytes written.
///
/// # Errors
///
/// [`WriteError`]; what was written before the error is left for the caller to roll back.
pub fn write_message(
    from_line: &FromLine,
    message: impl Read,
    variant: Variant,
    options: WriteOptions,
    out: &mut impl Write,
) -> Result<u64, WriteError> {
    let mut input = Lines::new(message, options.max_message_bytes);
    let mut quoter = Quoter::new(variant, Direction::Quote);
    // `Content-Length` protects only the body: in mboxcl2, which quotes nothing, a header line
    // `From ...` would still start a message for every reader. Header lines are quoted in
    // every variant (mboxo rules for mboxcl2); no valid header line begins with `From `.
    let mut head_quoter = if variant.quotes() {
        Quoter::new(variant, Direction::Quote)
    } else {
        Quoter::new(Variant::Mboxo, Direction::Quote)
    };
    let mut head = from_line.to_bytes();
    head.push(b'\n');

    // The header section, filtered and quoted.
    let mut dropping = false;
    let mut ended = true;
    loop {
        let a = input.ensure(2)?;
        if a.is_empty() {
            break;
        }
        if a[0] == b'\n' || a.starts_with(b"\r\n") {
            // The blank line ending the header section.
            input.pass_line(|_| {})?;
            break;
        }
        if !matches!(a[0], b' ' | b'\t') {
            let a = input.ensure(256)?;
            let name_end = memchr::memchr2(b':', b'\n', a).unwrap_or(a.len());
            let name = a[..name_end].trim_ascii_end();
            dropping = a.get(name_end) == Some(&b':')
                && is_field_name(name)
                && SPOOFABLE_HEADERS
                    .iter()
                    .any(|h| h.as_bytes().eq_ignore_ascii_case(name));
        }
        let mut line = Vec::new();
        ended = input.pass_line(|piece| {
            if !dropping {
                line.extend_from_slice(piece);
            }
        })?;
        // Header lines are bounded by the message size limit already.
        head_quoter.feed(&line, &mut head);
        if !ended {
            head_quoter.finish(&mut head);
            head.push(b'\n');
            break;
        }
    }
    let _ = ended;

    let mut written = 0u64;
    let mut emit = |out: &mut dyn Write, bytes: &[u8]| -> io::Result<()> {
        written += bytes.len() as u64;
        out.write_all(bytes)
    };

    if variant.uses_content_length() {
        // The body must be measured before it is written.
        let mut body = Vec::new();
        let mut last = b'\n';
        let mut any = false;
        loop {
            let mut piece_out = Vec::new();
            let ended = input.pass_line(|piece| piece_out.extend_from_slice(piece))?;
            if piece_out.is_empty() && !ended {
                break;
            }
            any = true;
            quoter.feed(&piece_out, &mut body);
            if let Some(&b) = piece_out.last() {
                last = b;
            }
            if !ended {
                break;
            }
        }
        quoter.finish(&mut body);
        if any && last != b'\n' {
            body.push(b'\n');
        }
        head.extend_from_slice(format!("Content-Length: {}\n\n", body.len()).as_bytes());
        emit(out, &head)?;
        emit(out, &body)?;
        emit(out, b"\n")?;
        return Ok(written);
    }

    head.push(b'\n');
    emit(out, &head)?;
    let mut last = b'\n';
    let mut chunk = Vec::with_capacity(CHUNK + 1024);
    loop {
        let mut saw = false;
        let ended = input.pass_line(|piece| {
            if !piece.is_empty() {
                saw = true;
                quoter.feed(piece, &mut chunk);
            }
        })?;
        if let Some(&b) = chunk.last() {
            last = b;
        }
        if chunk.len() >= CHUNK || !ended {
            if !ended {
                quoter.finish(&mut chunk);
                if let Some(&b) = chunk.last() {
                    last = b;
                }
            }
            emit(out, &chunk)?;
            chunk.clear();
        }
        if !ended {
            let _ = saw;
            break;
        }
    }
    if last != b'\n' {
        emit(out, b"\n")?;
    }
    emit(out, b"\n")?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::Reader;

    fn from() -> FromLine {
        FromLine::parse(b"From a@b Sat Jan  3 01:05:34 1996").unwrap()
    }

    fn write(message: &[u8], variant: Variant) -> Vec<u8> {
        let mut out = Vec::new();
        let n =
            write_message(&from(), message, variant, WriteOptions::default(), &mut out).unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    #[test]
    fn known_answers() {
        let f = "From a@b Wed Jan  3 01:05:34 1996\n";
        let table: &[(&[u8], Variant, String)] = &[
            (
                b"Subject: x\r\nStatus: RO\r\nX-UID: 5\r\n  7\r\n\r\nFrom me\r\n>From you\r\n",
                Variant::Mboxrd,
                format!("{f}Subject: x\n\n>From me\n>>From you\n\n"),
            ),
            (
                b"Subject: x\n\nno final newline",
                Variant::Mboxo,
                format!("{f}Subject: x\n\nno final newline\n\n"),
            ),
            (
                b"Subject: x\nContent-Length: 999\n\nFrom a\n",
                Variant::Mboxcl2,
                format!("{f}Subject: x\nContent-Length: 7\n\nFrom a\n\n"),
            ),
            (
                b"Subject: x\n\nFrom a\n",
                Variant::Mboxcl,
                format!("{f}Subject: x\nContent-Length: 8\n\n>From a\n\n"),
            ),
            // Headers only; a header line smuggling a From_ line is quoted.
            (
                b"Subject: x\nFrom a@b Sat Jan  3 01:05:34 1996",
                Variant::Mboxrd,
                format!("{f}Subject: x\n>From a@b Sat Jan  3 01:05:34 1996\n\n\n"),
            ),
            (b"", Variant::Mboxrd, format!("{f}\n\n")),
            (
                b"\nbody only\n",
                Variant::Mboxrd,
                format!("{f}\nbody only\n\n"),
            ),
            (
                b"x-keywords: $Junk\nX-Status: F\nContent-Length : 3\nTo: t\n\nb\r\n",
                Variant::Mboxrd,
                format!("{f}To: t\n\nb\n\n"),
            ),
        ];
        for (input, variant, expected) in table {
            let out = write(input, *variant);
            assert_eq!(
                String::from_utf8_lossy(&out),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn written_message_reads_back() {
        let body = b"line\n>From x\nFrom y\n\n\nend\n";
        for variant in Variant::ALL {
            let mut message = b"Subject: s\n\n".to_vec();
            message.extend_from_slice(body);
            let mut file = write(&message, variant);
            file.extend_from_slice(&write(&message, variant));
            let mut r = Reader::new(&file[..], variant);
            for _ in 0..2 {
                let m = r.next_message(1 << 20).unwrap().unwrap();
                let expected: &[u8] = if variant == Variant::Mboxo || variant == Variant::Mboxcl {
                    b"line\nFrom x\nFrom y\n\n\nend\n"
                } else {
                    body
                };
                assert_eq!(m.body, expected, "{variant}");
                assert_eq!(m.info.headers.get("subject"), Some(&b"s"[..]));
            }
            assert!(r.next_message(10).unwrap().is_none());
        }
    }

    #[test]
    fn too_large() {
        let mut out = Vec::new();
        let err = write_message(
            &from(),
            &[b'x'; 100][..],
            Variant::Mboxrd,
            WriteOptions {
                max_message_bytes: 10,
            },
            &mut out,
        )
        .unwrap_err();
        assert!(matches!(err, WriteError::TooLarge(10)));
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn any_input_is_exactly_one_message(
            message in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"From a@b Sat Jan  3 01:05:34 1996\n".to_vec()),
                    proptest::strategy::Just(b"\n".to_vec()),
                    proptest::strategy::Just(b"\r\n".to_vec()),
                    proptest::strategy::Just(b"Content-Length: 0\n".to_vec()),
                    proptest::strategy::Just(b">".to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..10),
                ],
                0..30,
            ).prop_map(|v: Vec<Vec<u8>>| v.concat()),
        ) {
            // Whatever a sender sends, in any variant, it is read back as one message and
            // cannot forge a second one.
            for variant in Variant::ALL {
                let mut file = write(&message, variant);
                file.extend_from_slice(&write(b"X: last\n\nend\n", variant));
                let mut r = Reader::new(&file[..], variant);
                let first = r.next_message(1 << 20).unwrap().unwrap();
                proptest::prop_assert_eq!(first.info.offset, 0);
                let second = r.next_message(1 << 20).unwrap().unwrap();
                proptest::prop_assert_eq!(second.info.headers.get("x"), Some(&b"last"[..]));
                proptest::prop_assert_eq!(second.body, b"end\n".to_vec());
                proptest::prop_assert!(r.next_message(10).unwrap().is_none());
            }
        }

        #[test]
        fn mboxrd_round_trip(
            body in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"From ".to_vec()),
                    proptest::strategy::Just(b">".to_vec()),
                    proptest::strategy::Just(b"\n".to_vec()),
                    proptest::strategy::Just(b"x".to_vec()),
                    proptest::strategy::Just(b"From a@b Sat Jan  3 01:05:34 1996\n".to_vec()),
                ],
                0..30,
            ).prop_map(|v: Vec<Vec<u8>>| v.concat()),
        ) {
            // Any LF body survives write + read in mboxrd, up to the line end added to a body
            // that lacks its last one.
            let mut message = b"A: 1\n\n".to_vec();
            message.extend_from_slice(&body);
            let mut file = write(&message, Variant::Mboxrd);
            file.extend_from_slice(&write(b"B: 2\n\nnext\n", Variant::Mboxrd));
            let mut r = Reader::new(&file[..], Variant::Mboxrd);
            let m = r.next_message(1 << 20).unwrap().unwrap();
            let mut expected = body.clone();
            if !expected.is_empty() && !expected.ends_with(b"\n") {
                expected.push(b'\n');
            }
            proptest::prop_assert_eq!(m.body, expected);
            let m2 = r.next_message(1 << 20).unwrap().unwrap();
            proptest::prop_assert_eq!(m2.body, b"next\n".to_vec());
        }
    }
}
