//! Streaming mbox reader in bounded memory.
//!
//! The reader holds one 64 KiB buffer, the current message's header section (at most
//! [`ReadLimits::max_header_bytes`]) and a counter of greater-than signs; bodies stream through
//! [`Entry`]'s [`Read`] implementation and are never whole in memory unless the caller asks.
//! A body line of any length (10 MB, 10 GB) costs time, not memory.
//!
//! # Where a message ends
//!
//! In mboxo and mboxrd (and mboxcl/mboxcl2 without a usable `Content-Length`) a message ends
//! where the next From_ line begins, a From_ line being a line that starts with `From ` and
//! parses as one ([`FromLine::parse`]). The blank line before it is the separator, not part
//! of the message. With mboxcl and mboxcl2 a `Content-Length` header gives the body length
//! and From_ lines inside it are body text.
//!
//! # Tolerance (what real files do and this reader accepts)
//!
//! - No blank line before a From_ line: the message ends there all the same, and no byte is
//!   removed from its body.
//! - CRLF line ends: `\r\n` ends a From_ line and forms a blank line; bytes are otherwise
//!   returned as stored (no line-end conversion on reading).
//! - Blank lines before the first From_ line, or after a `Content-Length` body, are skipped.
//! - A line starting `From ` that is not a valid From_ line (no date) is body text.
//! - The last message may end without its blank line.
//! - NUL and any other bytes are data.
//!
//! What is an error, each naming the line and byte offset and leaving the reader usable for the
//! next message: text where a From_ line should be ([`ReadError::MissingFromLine`]; the reader
//! skips to the next From_ line), a header section over the limit
//! ([`ReadError::HeaderTooLarge`]), and a file that ends inside a line, inside the header section
//! or inside a `Content-Length` body ([`ReadError::Truncated`], reported after the bytes that
//! were there).
//!
//! `Content-Length` is trusted when present and well-formed: a stream cannot look ahead to
//! check that it lands on a From_ line.

use std::io::{self, Read};

use crate::from_line::{FromLine, MAX_FROM_LINE};
use crate::headers::Headers;
use crate::variant::{Direction, Quoter, Variant};

const BUFFER: usize = 64 * 1024;
/// How much body output one step produces before handing it to the caller.
const STEP: usize = 32 * 1024;

/// Limits for [`Reader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest header section kept in memory (default 1 MiB; Postfix's
    /// `header_size_limit` is 100 KiB, so real mail stays far below).
    pub max_header_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 1024 * 1024,
        }
    }
}

/// A reading error, naming where in the file it happened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The underlying read failed.
    #[error("line {line} (byte {offset}): read failed: {source}")]
    Io {
        /// Byte offset reached.
        offset: u64,
        /// Line number reached (1-based).
        line: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// Text where a From_ line was expected (the start of the file, or after a
    /// `Content-Length` body).
    #[error("line {line} (byte {offset}): expected a From_ line (\"From sender date\")")]
    MissingFromLine {
        /// Byte offset of the line.
        offset: u64,
        /// Line number (1-based).
        line: u64,
    },
    /// A header section larger than [`ReadLimits::max_header_bytes`].
    #[error(
        "line {line} (byte {offset}): the header section of the message at byte {message_offset} exceeds {limit} bytes"
    )]
    HeaderTooLarge {
        /// Byte offset where the limit was crossed.
        offset: u64,
        /// Line number (1-based).
        line: u64,
        /// Offset of the message's From_ line.
        message_offset: u64,
        /// The limit.
        limit: usize,
    },
    /// The input ends inside a message (a line without its end, a header section without the
    /// blank line that ends it, or a `Content-Length` body cut short).
    #[error(
        "line {line} (byte {offset}): the file ends in the middle of the message at byte {message_offset}"
    )]
    Truncated {
        /// Byte offset of the end of input.
        offset: u64,
        /// Line number (1-based).
        line: u64,
        /// Offset of the message's From_ line.
        message_offset: u64,
    },
}

/// What is known of a message once its header section has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Byte offset of the From_ line.
    pub offset: u64,
    /// Line number of the From_ line (1-based).
    pub line: u64,
    /// The parsed From_ line.
    pub from_line: FromLine,
    /// Byte offset of the first header line.
    pub headers_offset: u64,
    /// The header section as stored (quoting not removed: a header line never needs it).
    pub headers: Headers,
    /// Byte offset of the body (after the blank line that ends the header section).
    pub body_offset: u64,
    /// The `Content-Length` that delimits the body (mboxcl and mboxcl2 only).
    pub content_length: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    /// Up to the next From_ line.
    Scan,
    /// Exactly this many more stored bytes.
    Counted(u64),
}

#[derive(Debug)]
enum State {
    /// At a line where a From_ line (or the end) is expected.
    Between,
    /// Inside a body (or skipping junk to the next From_ line, with `message_offset` of the
    /// message being skipped).
    Body { mode: BodyMode, message_offset: u64 },
    /// The end of input was reached.
    Done,
}

/// A streaming mbox reader over any [`Read`].
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use mailroom_mbox::{Reader, Variant};
///
/// let file = b"From a@b Sat Jan  3 01:05:34 1996\nSubject: hi\n\n>From the start\n\n";
/// let mut reader = Reader::new(&file[..], Variant::Mboxrd);
/// let mut entry = reader.next_entry().unwrap().unwrap();
/// assert_eq!(entry.info().headers.get("subject"), Some(&b"hi"[..]));
/// let mut body = Vec::new();
/// entry.read_to_end(&mut body).unwrap();
/// assert_eq!(body, b"From the start\n");
/// assert!(reader.next_entry().unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// Byte offset of `buf[start]`.
    pos: u64,
    /// Line number of the line containing `buf[start]`.
    line: u64,
    variant: Variant,
    limits: ReadLimits,
    state: State,
    /// Inside a body line (some of it consumed).
    mid_line: bool,
    /// The blank line held back until we know whether a From_ line follows (`\n` or `\r\n`).
    pending_blank: Option<&'static [u8]>,
    quoter: Quoter,
    /// Body output not yet handed to the caller.
    out: Vec<u8>,
    out_pos: usize,
    /// An error to report once the bytes before it were delivered.
    deferred: Option<ReadError>,
    /// Where the last finished body ended (before its separator).
    body_end: u64,
}

impl<R: Read> Reader<R> {
    /// A reader at the start of an mbox.
    pub fn new(inner: R, variant: Variant) -> Self {
        Self::with_limits(inner, variant, ReadLimits::default())
    }

    /// A reader with explicit limits.
    pub fn with_limits(inner: R, variant: Variant, limits: ReadLimits) -> Self {
        Self::starting_at(inner, variant, limits, 0)
    }

    /// A reader whose input starts at byte `offset` of the file (for random access through an
    /// index: offsets and errors are then reported in file terms).
    pub fn starting_at(inner: R, variant: Variant, limits: ReadLimits, offset: u64) -> Self {
        Self {
            inner,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            pos: offset,
            line: 1,
            variant,
            limits,
            state: State::Between,
            mid_line: false,
            pending_blank: None,
            quoter: Quoter::new(variant, Direction::Unquote),
            out: Vec::new(),
            out_pos: 0,
            deferred: None,
            body_end: offset,
        }
    }

    /// Sets the line number of the first input line (for a reader started inside a file).
    #[must_use]
    pub fn with_first_line(mut self, line: u64) -> Self {
        self.line = line;
        self
    }

    /// The variant being read.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The byte offset reached in the input.
    pub fn position(&self) -> u64 {
        self.pos
    }

    // ----- the input buffer -----

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    fn io_error(&self, source: io::Error) -> ReadError {
        ReadError::Io {
            offset: self.pos,
            line: self.line,
            source,
        }
    }

    /// Reads more input. Returns false at the end of input.
    fn fill_more(&mut self) -> Result<bool, ReadError> {
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
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    /// Makes at least `n` bytes available unless the input ends first (`n` ≤ the buffer).
    fn ensure(&mut self, n: usize) -> Result<(), ReadError> {
        while self.avail().len() < n {
            if !self.fill_more()? {
                break;
            }
        }
        Ok(())
    }

    /// Length of the line at the start of the buffer, up to `max` bytes: `(len, has_newline)`.
    fn peek_line(&mut self, max: usize) -> Result<(usize, bool), ReadError> {
        let mut searched = 0;
        loop {
            let a = self.avail();
            let limit = a.len().min(max);
            if let Some(i) = memchr::memchr(b'\n', &a[searched..limit]) {
                return Ok((searched + i + 1, true));
            }
            if a.len() >= max {
                return Ok((max, false));
            }
            searched = limit;
            if !self.fill_more()? {
                return Ok((self.avail().len(), false));
            }
        }
    }

    /// Whether a From_ line starts here (the buffer being at a line start).
    fn at_from_line(&mut self) -> Result<bool, ReadError> {
        self.ensure(5)?;
        if !self.avail().starts_with(b"From ") {
            return Ok(false);
        }
        let (len, newline) = self.peek_line(MAX_FROM_LINE + 1)?;
        Ok((newline || self.eof)
            && len <= MAX_FROM_LINE
            && FromLine::is_from_line(&self.avail()[..len]))
    }

    /// The length of a blank line (`\n` or `\r\n`) here, or 0.
    fn blank_line_len(&mut self) -> Result<usize, ReadError> {
        self.ensure(2)?;
        Ok(match self.avail() {
            [b'\n', ..] => 1,
            [b'\r', b'\n', ..] => 2,
            _ => 0,
        })
    }

    // ----- messages -----

    /// The next message: its From_ line and header section, with the body to stream from the
    /// returned [`Entry`]. A body left unread is skipped on the next call.
    ///
    /// # Errors
    ///
    /// [`ReadError`]; after a format error the next call continues with the next message.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>, ReadError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Body { .. } => {
                    // The previous body (or junk) was not read to its end: skip it.
                    self.out.clear();
                    self.out_pos = 0;
                    while !self.body_step(true)? {}
                    self.out.clear();
                    if let Some(e) = self.deferred.take() {
                        return Err(e);
                    }
                    continue;
                }
                State::Between => {}
            }
            let blank = self.blank_line_len()?;
            if blank > 0 {
                self.consume(blank);
                self.line += 1;
                continue;
            }
            if self.avail().is_empty() {
                self.state = State::Done;
                return Ok(None);
            }
            if !self.at_from_line()? {
                let err = ReadError::MissingFromLine {
                    offset: self.pos,
                    line: self.line,
                };
                self.enter_body(BodyMode::Scan, self.pos);
                return Err(err);
            }
            let info = self.read_head()?;
            return Ok(Some(Entry { reader: self, info }));
        }
    }

    fn enter_body(&mut self, mode: BodyMode, message_offset: u64) {
        self.state = State::Body {
            mode,
            message_offset,
        };
        self.mid_line = false;
        self.pending_blank = None;
        self.quoter = Quoter::new(self.variant, Direction::Unquote);
    }

    /// Reads the From_ line and the header section; the buffer is at a checked From_ line.
    fn read_head(&mut self) -> Result<MessageInfo, ReadError> {
        let offset = self.pos;
        let line = self.line;
        let (len, newline) = self.peek_line(MAX_FROM_LINE + 1)?;
        let from_line = FromLine::parse(&self.avail()[..len]).map_err(|_| {
            // at_from_line() said it parses; keep a clear error rather than a panic anyway.
            ReadError::MissingFromLine { offset, line }
        })?;
        self.consume(len);
        if !newline {
            self.state = State::Done;
            return Err(ReadError::Truncated {
                offset: self.pos,
                line: self.line,
                message_offset: offset,
            });
        }
        self.line += 1;
        let headers_offset = self.pos;
        let mut headers = Vec::new();
        let limit = self.limits.max_header_bytes;
        loop {
            let blank = self.blank_line_len()?;
            if blank > 0 {
                self.consume(blank);
                self.line += 1;
                break;
            }
            if self.avail().is_empty() {
                self.state = State::Done;
                return Err(ReadError::Truncated {
                    offset: self.pos,
                    line: self.line,
                    message_offset: offset,
                });
            }
            if self.at_from_line()? {
                // A message with no blank line and no body, then the next one.
                let info = MessageInfo {
                    offset,
                    line,
                    from_line,
                    headers_offset,
                    headers: Headers::new(headers),
                    body_offset: self.pos,
                    content_length: Some(0),
                };
                self.enter_body(BodyMode::Counted(0), offset);
                return Ok(info);
            }
            // Copy one header line.
            loop {
                let a = self.avail();
                let (n, done) = match memchr::memchr(b'\n', a) {
                    Some(i) => (i + 1, true),
                    None => (a.len(), false),
                };
                if headers.len() + n > limit {
                    let err = ReadError::HeaderTooLarge {
                        offset: self.pos,
                        line: self.line,
                        message_offset: offset,
                        limit,
                    };
                    self.enter_body(BodyMode::Scan, offset);
                    self.mid_line = true;
                    return Err(err);
                }
                headers.extend_from_slice(&a[..n]);
                self.consume(n);
                if done {
                    self.line += 1;
                    break;
                }
                if !self.fill_more()? {
                    self.state = State::Done;
                    return Err(ReadError::Truncated {
                        offset: self.pos,
                        line: self.line,
                        message_offset: offset,
                    });
                }
            }
        }
        let headers = Headers::new(headers);
        let content_length = if self.variant.uses_content_length() {
            headers
                .get("content-length")
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
        } else {
            None
        };
        let mode = content_length.map_or(BodyMode::Scan, BodyMode::Counted);
        let body_offset = self.pos;
        self.enter_body(mode, offset);
        Ok(MessageInfo {
            offset,
            line,
            from_line,
            headers_offset,
            headers,
            body_offset,
            content_length,
        })
    }

    /// Produces body output into `self.out` (or throws it away when `discard`). Returns true
    /// when the body is finished.
    fn body_step(&mut self, discard: bool) -> Result<bool, ReadError> {
        let State::Body {
            mode,
            message_offset,
        } = self.state
        else {
            return Ok(true);
        };
        match mode {
            BodyMode::Scan => self.scan_step(discard, message_offset),
            BodyMode::Counted(remaining) => self.counted_step(discard, message_offset, remaining),
        }
    }

    fn finish_body(&mut self, end: u64, next: State) {
        self.body_end = end;
        self.state = next;
        self.pending_blank = None;
        self.mid_line = false;
    }

    fn scan_step(&mut self, discard: bool, message_offset: u64) -> Result<bool, ReadError> {
        let produced_at_start = self.out.len();
        loop {
            if !discard && self.out.len() - produced_at_start >= STEP {
                return Ok(false);
            }
            if self.mid_line {
                if self.avail().is_empty() && !self.fill_more()? {
                    // The input ends inside a line.
                    if !discard {
                        self.quoter.finish(&mut self.out);
                    }
                    self.finish_body(self.pos, State::Done);
                    self.deferred = Some(ReadError::Truncated {
                        offset: self.pos,
                        line: self.line,
                        message_offset,
                    });
                    return Ok(true);
                }
                // Take this line and every following line in the buffer that can be neither
                // a blank line nor a From_ line (its first byte is not `\n`, `\r` or `F`)
                // in one step: most lines of a body are such lines.
                let a = &self.buf[self.start..self.end];
                let mut n = 0;
                let mut lines = 0;
                let mut done = false;
                while let Some(i) = memchr::memchr(b'\n', &a[n..]) {
                    n += i + 1;
                    lines += 1;
                    match a.get(n) {
                        Some(&c) if c != b'\n' && c != b'\r' && c != b'F' => {}
                        _ => {
                            done = true;
                            break;
                        }
                    }
                }
                if !done {
                    // The buffer ends inside an ordinary line: take what is there of it too.
                    n = a.len();
                }
                if !discard {
                    self.quoter.feed(&a[..n], &mut self.out);
                }
                self.consume(n);
                self.line += lines;
                self.mid_line = !done;
                continue;
            }
            // At a line start.
            let blank = self.blank_line_len()?;
            if blank > 0 {
                if let Some(prev) = self.pending_blank.take()
                    && !discard
                {
                    self.out.extend_from_slice(prev);
                }
                self.pending_blank = Some(if blank == 1 { b"\n" } else { b"\r\n" });
                self.consume(blank);
                self.line += 1;
                continue;
            }
            let held = self.pending_blank.map_or(0, <[u8]>::len) as u64;
            if self.avail().is_empty() {
                self.finish_body(self.pos - held, State::Done);
                return Ok(true);
            }
            if self.avail()[0] == b'F' && self.at_from_line()? {
                self.finish_body(self.pos - held, State::Between);
                return Ok(true);
            }
            if let Some(prev) = self.pending_blank.take()
                && !discard
            {
                self.out.extend_from_slice(prev);
            }
            self.mid_line = true;
        }
    }

    fn counted_step(
        &mut self,
        discard: bool,
        message_offset: u64,
        remaining: u64,
    ) -> Result<bool, ReadError> {
        if remaining == 0 {
            if !discard {
                self.quoter.finish(&mut self.out);
            }
            let end = self.pos;
            // The separator: one blank line, if there.
            let blank = self.blank_line_len()?;
            if blank > 0 {
                self.consume(blank);
                self.line += 1;
            }
            self.finish_body(end, State::Between);
            return Ok(true);
        }
        if self.avail().is_empty() && !self.fill_more()? {
            if !discard {
                self.quoter.finish(&mut self.out);
            }
            self.finish_body(self.pos, State::Done);
            self.deferred = Some(ReadError::Truncated {
                offset: self.pos,
                line: self.line,
                message_offset,
            });
            return Ok(true);
        }
        let a = &self.buf[self.start..self.end];
        let n = usize::try_from(remaining).map_or(a.len(), |r| r.min(a.len()));
        let chunk = &a[..n];
        self.line += memchr::memchr_iter(b'\n', chunk).count() as u64;
        if !discard {
            self.quoter.feed(chunk, &mut self.out);
        }
        self.consume(n);
        self.state = State::Body {
            mode: BodyMode::Counted(remaining - n as u64),
            message_offset,
        };
        Ok(false)
    }

    /// Reads the whole next message, body included, into memory (at most `max_body` bytes of
    /// body; more is an error of kind [`io::ErrorKind::FileTooLarge`] inside
    /// [`ReadError::Io`]).
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn next_message(&mut self, max_body: usize) -> Result<Option<Message>, ReadError> {
        let Some(mut entry) = self.next_entry()? else {
            return Ok(None);
        };
        let body = entry.body_to_vec(max_body)?;
        let info = entry.info.clone();
        Ok(Some(Message { info, body }))
    }
}

/// A message read whole: what [`Reader::next_message`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Offsets, From_ line and header section.
    pub info: MessageInfo,
    /// The body, quoting removed.
    pub body: Vec<u8>,
}

/// One message being read: header section in memory, body streamed through [`Read`] (quoting
/// removed, separator excluded).
#[derive(Debug)]
pub struct Entry<'r, R> {
    reader: &'r mut Reader<R>,
    info: MessageInfo,
}

impl<R: Read> Entry<'_, R> {
    /// The message's offsets, From_ line and header section.
    pub fn info(&self) -> &MessageInfo {
        &self.info
    }

    /// Takes the information out, leaving the body unread (it is skipped by the next
    /// [`Reader::next_entry`]).
    pub fn into_info(self) -> MessageInfo {
        self.info
    }

    /// Skips the rest of the body and returns where it ended (before the separator): the
    /// message occupies `info().offset .. end` in the file.
    ///
    /// # Errors
    ///
    /// [`ReadError`], including [`ReadError::Truncated`] at a cut.
    pub fn skip_body(self) -> Result<u64, ReadError> {
        let reader = self.reader;
        reader.out.clear();
        reader.out_pos = 0;
        while !reader.body_step(true)? {}
        if let Some(e) = reader.deferred.take() {
            return Err(e);
        }
        Ok(reader.body_end)
    }

    /// Reads the rest of the body into memory, at most `max` bytes.
    ///
    /// # Errors
    ///
    /// [`ReadError`]; a body over `max` is [`ReadError::Io`] of kind
    /// [`io::ErrorKind::FileTooLarge`].
    pub fn body_to_vec(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let r = &mut *self.reader;
            body.extend_from_slice(&r.out[r.out_pos..]);
            r.out.clear();
            r.out_pos = 0;
            if body.len() > max {
                return Err(r.io_error(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!("message body larger than {max} bytes"),
                )));
            }
            if !matches!(r.state, State::Body { .. }) {
                break;
            }
            r.body_step(false)?;
        }
        if let Some(e) = self.reader.deferred.take() {
            return Err(e);
        }
        Ok(body)
    }

    /// Where the body ended, once it was read to its end (see [`Entry::skip_body`]).
    pub fn body_end(&self) -> Option<u64> {
        (!matches!(self.reader.state, State::Body { .. })).then_some(self.reader.body_end)
    }
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        while r.out_pos == r.out.len() {
            r.out.clear();
            r.out_pos = 0;
            if !matches!(r.state, State::Body { .. }) {
                return match r.deferred.take() {
                    Some(e) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, e)),
                    None => Ok(0),
                };
            }
            r.body_step(false).map_err(io::Error::other)?;
        }
        let n = buf.len().min(r.out.len() - r.out_pos);
        buf[..n].copy_from_slice(&r.out[r.out_pos..r.out_pos + n]);
        r.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F1: &str = "From a@b Sat Jan  3 01:05:34 1996\n";
    const F2: &str = "From c@d Sun Jan  4 01:05:34 1996\n";

    fn read_all(input: &[u8], variant: Variant) -> Vec<Result<Message, String>> {
        let mut r = Reader::new(input, variant);
        let mut out = Vec::new();
        loop {
            match r.next_message(usize::MAX) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
            assert!(out.len() < 1000, "reader does not advance");
        }
    }

    fn bodies(input: &[u8], variant: Variant) -> Vec<Vec<u8>> {
        read_all(input, variant)
            .into_iter()
            .map(|m| m.unwrap().body)
            .collect()
    }

    #[test]
    fn two_messages_and_offsets() {
        let file =
            format!("{F1}Subject: one\n\nbody 1\n\n{F2}Subject: two\n\n>From x\n>>From y\n\n");
        let msgs: Vec<Message> = read_all(file.as_bytes(), Variant::Mboxrd)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].info.offset, 0);
        assert_eq!(msgs[0].info.line, 1);
        assert_eq!(msgs[0].info.headers.as_bytes(), b"Subject: one\n");
        assert_eq!(msgs[0].body, b"body 1\n");
        assert_eq!(msgs[1].info.offset as usize, file.find(F2).unwrap());
        assert_eq!(msgs[1].info.line, 6);
        assert_eq!(msgs[1].info.from_line.sender().as_bytes(), b"c@d");
        assert_eq!(msgs[1].body, b"From x\n>From y\n");
    }

    #[test]
    fn tolerance() {
        // No blank line before the From_ line, CRLF, blank lines at the start, a "From " line
        // that is not a From_ line, a last message without its blank line.
        let file = format!("\n\n{F1}A: 1\r\n\r\nx\r\nFrom here on\r\n{F2}B: 2\n\nlast\n");
        let b = bodies(file.as_bytes(), Variant::Mboxrd);
        assert_eq!(
            b,
            vec![b"x\r\nFrom here on\r\n".to_vec(), b"last\n".to_vec()]
        );
        // Several blank lines: only the last is the separator.
        let file = format!("{F1}A: 1\n\nx\n\n\n\n{F2}\n");
        let b = bodies(file.as_bytes(), Variant::Mboxrd);
        assert_eq!(b, vec![b"x\n\n\n".to_vec(), b"".to_vec()]);
        // Headers only, then the next message.
        let file = format!("{F1}A: 1\n{F2}B: 2\n\nz\n");
        let msgs = read_all(file.as_bytes(), Variant::Mboxo);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].as_ref().unwrap().info.headers.as_bytes(), b"A: 1\n");
    }

    #[test]
    fn hostile_input() {
        // Text before the first From_ line: an error naming the line, then the messages.
        let file = format!("garbage\nmore\n{F1}A: 1\n\nx\n");
        let r = read_all(file.as_bytes(), Variant::Mboxrd);
        assert_eq!(
            r[0].as_ref().unwrap_err(),
            "line 1 (byte 0): expected a From_ line (\"From sender date\")"
        );
        assert_eq!(r[1].as_ref().unwrap().body, b"x\n");
        // NUL bytes are data.
        let file = format!("{F1}A: \0\n\n\0x\0\n\n{F2}\n");
        let b = bodies(file.as_bytes(), Variant::Mboxrd);
        assert_eq!(b[0], b"\0x\0\n");
        // A file cut inside a line, inside the headers, inside the From_ line.
        for cut in [
            format!("{F1}A: 1\n\nhalf a li"),
            format!("{F1}A: 1\nB: hal"),
            format!("{F1}A: 1\n"),
            F1[..20].to_string(),
        ] {
            let r = read_all(cut.as_bytes(), Variant::Mboxrd);
            let err = r.last().unwrap().as_ref().unwrap_err();
            assert!(
                err.contains("the file ends in the middle of the message at byte 0"),
                "{err}"
            );
        }
        // A 10 MB line in a body and in a header.
        let long = "y".repeat(10 * 1024 * 1024);
        let file = format!("{F1}A: 1\n\n{long}\nFrom {long}\n\n{F2}\n");
        let b = bodies(file.as_bytes(), Variant::Mboxrd);
        assert_eq!(b[0].len(), 2 * long.len() + 7);
        let file = format!("{F1}A: {long}\n\nx\n{F2}\nok\n");
        let mut r = Reader::with_limits(
            file.as_bytes(),
            Variant::Mboxrd,
            ReadLimits {
                max_header_bytes: 1 << 20,
            },
        );
        let err = r.next_entry().unwrap_err().to_string();
        assert!(err.contains("exceeds 1048576 bytes"), "{err}");
        let m = r.next_message(100).unwrap().unwrap();
        assert_eq!(m.body, b"ok\n");
    }

    #[test]
    fn content_length() {
        // mboxcl2: a From_ line inside the counted body is body text.
        let body = format!("{F2}inside\n");
        let file = format!(
            "{F1}Content-Length: {}\n\n{body}\n{F2}Content-Length: 2\n\nok\n",
            body.len()
        );
        let b = bodies(file.as_bytes(), Variant::Mboxcl2);
        assert_eq!(b, vec![body.into_bytes(), b"ok".to_vec()]);
        // Cut short.
        let file = format!("{F1}Content-Length: 100\n\nshort\n");
        let r = read_all(file.as_bytes(), Variant::Mboxcl2);
        assert!(r[0].as_ref().unwrap_err().contains("ends in the middle"));
        // Without Content-Length, mboxcl falls back to From_ lines and mboxo unquoting.
        let file = format!("{F1}A: 1\n\n>From x\n\n{F2}\n");
        assert_eq!(bodies(file.as_bytes(), Variant::Mboxcl)[0], b"From x\n");
    }

    #[test]
    fn streaming_split_reads() {
        // A reader over a source that returns one byte at a time gives the same messages.
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let file = format!("{F1}A: 1\r\n\r\n>>From x\n\n\n{F2}B: 2\n\nFrom here\n");
        let mut whole = Reader::new(file.as_bytes(), Variant::Mboxrd);
        let mut split = Reader::new(OneByte(file.as_bytes()), Variant::Mboxrd);
        loop {
            let a = whole.next_message(1000).unwrap();
            let b = split.next_message(1000).unwrap();
            assert_eq!(a, b);
            if a.is_none() {
                break;
            }
        }
    }

    /// A source that returns the input in pieces of the given sizes (cycled).
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let want = self.sizes[self.next % self.sizes.len()].max(1);
            self.next += 1;
            let n = want.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all_results<R: Read>(mut r: Reader<R>) -> Vec<Result<Message, String>> {
        let mut out = Vec::new();
        loop {
            match r.next_message(usize::MAX) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
            assert!(out.len() < 1000, "reader does not advance");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_gives_the_same_messages(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(F1.as_bytes().to_vec()),
                    proptest::strategy::Just(F2.as_bytes().to_vec()),
                    proptest::strategy::Just(b"Subject: x\n".to_vec()),
                    proptest::strategy::Just(b"\n".to_vec()),
                    proptest::strategy::Just(b"\r\n".to_vec()),
                    proptest::strategy::Just(b">>From y\n".to_vec()),
                    proptest::strategy::Just(b"From here\n".to_vec()),
                    proptest::strategy::Just(b"Content-Length: 7\n".to_vec()),
                    proptest::strategy::Just(vec![b'a'; 70_000]),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                ],
                0..40,
            ),
            sizes in proptest::collection::vec(1usize..70_000, 1..8),
        ) {
            // Message boundaries, unquoting, offsets, line numbers and errors do not depend
            // on where the input's reads happen to end (64 KiB buffer boundaries included).
            let input: Vec<u8> = [F1.as_bytes().to_vec()].into_iter().chain(parts).collect::<Vec<_>>().concat();
            for variant in Variant::ALL {
                let whole = all_results(Reader::new(&input[..], variant));
                let chunked = all_results(Reader::new(
                    Chunked { data: &input, sizes: sizes.clone(), next: 0 },
                    variant,
                ));
                proptest::prop_assert_eq!(&whole, &chunked);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b'\n'),
                    proptest::strategy::Just(b'>'),
                    proptest::num::u8::ANY,
                ],
                0..400,
            ),
            prefix in proptest::bool::ANY,
        ) {
            let mut input = if prefix { F1.as_bytes().to_vec() } else { Vec::new() };
            input.extend_from_slice(&bytes);
            for variant in Variant::ALL {
                let _ = read_all(&input, variant);
            }
        }
    }
}
