//! Framing: lines and literals are split before parsing (RFC 9051 section 4.3, RFC 7888).
//!
//! A command or response is one or more lines; a line ending in `{n}` or `{n+}` (or `~{n}`) is
//! followed by `n` octets of literal and then the rest of the command on the next line. The
//! framer gathers one whole command (or response) into a frame, enforcing the limits while the
//! bytes arrive, and only then does the parser see it.
//!
//! On the server side, [`CommandFramer`] stops at a synchronising literal and lets the server
//! decide whether to send `+` ([`CommandFramer::accept_literal`]) or refuse
//! ([`CommandFramer::reject_literal`]). A refused command's literal octets are skipped, never
//! parsed as a command: a non-synchronising literal that breaks a limit is read and thrown away
//! with the rest of its command.

use crate::codec::core::tag;
use crate::error::DecodeError;
use crate::types::Tag;

/// Limits enforced while framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingLimits {
    /// Longest line, without its CRLF and without literal octets. Dovecot's
    /// `imap_max_line_length` is 64 KiB; so is ours.
    pub max_line: usize,
    /// Largest literal (APPEND size limit).
    pub max_literal: u64,
    /// Largest non-synchronising literal: `Some(4096)` for LITERAL- (RFC 7888 section 4), `None`
    /// for LITERAL+ (any size up to `max_literal`).
    pub max_nonsync_literal: Option<u64>,
    /// Largest whole command or response, lines and literals together.
    pub max_frame: usize,
}

impl Default for FramingLimits {
    fn default() -> Self {
        Self {
            max_line: 64 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_nonsync_literal: Some(4096),
            max_frame: 64 * 1024 * 1024 + 64 * 1024,
        }
    }
}

/// `{n}`, `{n+}` or `~{n}` at the end of a line: its size and whether it is non-synchronising.
pub(crate) fn literal_marker(line: &[u8]) -> Option<(u64, bool)> {
    let body = line.strip_suffix(b"}")?;
    let window = &body[body.len().saturating_sub(24)..];
    let open = memchr::memrchr(b'{', window)?;
    let inner = &window[open + 1..];
    let (digits, nonsync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some((size.unwrap_or(u64::MAX), nonsync))
}

/// What [`frame_length`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLength {
    /// The first `n` octets are one whole command or response.
    Complete(usize),
    /// More octets are needed.
    Incomplete,
}

/// Finds the end of the first command or response in `buf`, assuming every literal's octets
/// follow its line at once (a client reading responses, or a recorded session).
///
/// # Errors
///
/// [`DecodeError`] when a limit is broken or a line ends with a bare LF.
pub fn frame_length(buf: &[u8], limits: &FramingLimits) -> Result<FrameLength, DecodeError> {
    let mut line_start = 0;
    loop {
        let Some(lf) = memchr::memchr(b'\n', &buf[line_start..]).map(|p| line_start + p) else {
            if buf.len() - line_start > limits.max_line + 1 {
                return Err(DecodeError::LineTooLong {
                    max: limits.max_line,
                });
            }
            return Ok(FrameLength::Incomplete);
        };
        if lf == line_start || buf[lf - 1] != b'\r' {
            return Err(DecodeError::BareLineFeed);
        }
        let line = &buf[line_start..lf - 1];
        if line.len() > limits.max_line {
            return Err(DecodeError::LineTooLong {
                max: limits.max_line,
            });
        }
        let Some((size, _)) = literal_marker(line) else {
            return Ok(FrameLength::Complete(lf + 1));
        };
        if size > limits.max_literal {
            return Err(DecodeError::LiteralTooLarge {
                size,
                max: limits.max_literal,
            });
        }
        let end = (lf as u64 + 1).saturating_add(size);
        if end > limits.max_frame as u64 {
            return Err(DecodeError::CommandTooLong {
                max: limits.max_frame,
            });
        }
        let end = end as usize;
        if buf.len() < end {
            return Ok(FrameLength::Incomplete);
        }
        line_start = end;
    }
}

/// What the server-side framer has for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// More octets are needed.
    Incomplete,
    /// A whole command: its lines, CRLFs and literal octets, as received.
    Command(Vec<u8>),
    /// A line ended with a synchronising literal `{size}`: the server must call
    /// [`CommandFramer::accept_literal`] (and send `+`) or [`CommandFramer::reject_literal`] (and
    /// send a tagged NO or BAD). `partial` is the command so far.
    LiteralAnnounced {
        /// Announced size.
        size: u64,
        /// The command up to and including the line that announced the literal.
        partial: Vec<u8>,
    },
    /// Octets of a literal being streamed (see [`CommandFramer::stream_literal`]), in arrival
    /// order. After the last one the framer is back at the start of a line: the rest of the
    /// command (normally just CRLF) follows, to be read with [`CommandFramer::take_line`].
    LiteralData {
        /// The octets (empty only for an empty literal).
        data: Vec<u8>,
        /// Whether these are the literal's last octets.
        last: bool,
    },
    /// A command broke a limit; its remaining octets (including literal octets) are being
    /// skipped. The server answers with a tagged BAD (or untagged, without a tag).
    Rejected {
        /// The command's tag, when it could be read.
        tag: Option<Tag>,
        /// Which limit.
        error: DecodeError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line that starts at `line_start`.
    Line,
    /// Reading literal octets.
    Literal { remaining: u64 },
    /// Waiting for the server's decision on a synchronising literal.
    Decision { size: u64 },
    /// Handing literal octets out as they arrive instead of gathering them.
    Stream { remaining: u64 },
    /// Skipping the rest of a rejected command: its current line, then `literal` octets.
    Discard { literal: u64 },
}

/// The server side's incremental framer: gathers commands, asks about synchronising literals,
/// skips rejected commands.
#[derive(Debug, Clone)]
pub struct CommandFramer {
    limits: FramingLimits,
    buf: Vec<u8>,
    /// Start of the current line within `buf`.
    line_start: usize,
    /// How far `buf` has been searched for LF.
    scanned: usize,
    state: State,
}

impl CommandFramer {
    /// A framer with these limits.
    pub fn new(limits: FramingLimits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            line_start: 0,
            scanned: 0,
            state: State::Line,
        }
    }
    /// The limits.
    pub fn limits(&self) -> &FramingLimits {
        &self.limits
    }
    /// Adds received octets.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// Octets received and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
    /// Drops every buffered octet (after STARTTLS: plaintext sent before the TLS handshake must
    /// never be read as commands sent after it).
    pub fn discard_buffered(&mut self) {
        self.buf.clear();
        self.line_start = 0;
        self.scanned = 0;
        self.state = State::Line;
    }
    /// Sends the announced literal's octets on: call after sending `+`.
    pub fn accept_literal(&mut self) {
        if let State::Decision { size } = self.state {
            self.state = State::Literal { remaining: size };
        }
    }
    /// Accepts the announced literal but hands its octets out as [`FrameEvent::LiteralData`]
    /// instead of gathering them into the command (call after sending `+`). The partial command
    /// is dropped from the buffer: the caller has already parsed what it needs from it.
    pub fn stream_literal(&mut self) {
        if let State::Decision { size } = self.state {
            self.buf.drain(..self.scanned.min(self.buf.len()));
            self.line_start = 0;
            self.scanned = 0;
            self.state = State::Stream { remaining: size };
        }
    }
    /// Refuses the announced literal: the partial command is dropped and the client, seeing no
    /// `+`, does not send the octets.
    pub fn reject_literal(&mut self) {
        if let State::Decision { .. } = self.state {
            self.buf.drain(..self.scanned.min(self.buf.len()));
            self.line_start = 0;
            self.scanned = 0;
            self.state = State::Line;
        }
    }
    /// Checks an announced synchronising literal against the limits, for the server's decision.
    ///
    /// # Errors
    ///
    /// [`DecodeError::LiteralTooLarge`] or [`DecodeError::CommandTooLong`].
    pub fn check_literal(&self, size: u64) -> Result<(), DecodeError> {
        if size > self.limits.max_literal {
            return Err(DecodeError::LiteralTooLarge {
                size,
                max: self.limits.max_literal,
            });
        }
        if (self.scanned as u64).saturating_add(size) > self.limits.max_frame as u64 {
            return Err(DecodeError::CommandTooLong {
                max: self.limits.max_frame,
            });
        }
        Ok(())
    }
    /// Takes one raw line (without CRLF), for the octets that are not commands: an AUTHENTICATE
    /// response or IDLE's `DONE`. Returns `Ok(None)` until a whole line is there.
    ///
    /// # Errors
    ///
    /// [`DecodeError::LineTooLong`] when the line breaks the limit (it is then skipped).
    pub fn take_line(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        if self.state != State::Line || self.line_start != 0 {
            return Ok(None);
        }
        match memchr::memchr(b'\n', &self.buf) {
            Some(lf) => {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.scanned = 0;
                if line.len() > self.limits.max_line {
                    return Err(DecodeError::LineTooLong {
                        max: self.limits.max_line,
                    });
                }
                Ok(Some(line))
            }
            None if self.buf.len() > self.limits.max_line + 1 => {
                self.start_discard(0);
                Err(DecodeError::LineTooLong {
                    max: self.limits.max_line,
                })
            }
            None => Ok(None),
        }
    }

    fn frame_tag(&self) -> Option<Tag> {
        match tag(&self.buf) {
            Ok((rest, t)) if rest.first() == Some(&b' ') => Some(t),
            _ => None,
        }
    }

    fn start_discard(&mut self, literal: u64) {
        // Keep the current line's start only to find a literal marker at its end; the octets
        // before it can go.
        self.buf.drain(..self.line_start);
        self.scanned -= self.line_start.min(self.scanned);
        self.line_start = 0;
        self.state = State::Discard { literal };
    }

    fn reject(&mut self, error: DecodeError, literal: u64) -> FrameEvent {
        let tag = self.frame_tag();
        self.start_discard(literal);
        FrameEvent::Rejected { tag, error }
    }

    /// The next event. Call until it returns [`FrameEvent::Incomplete`].
    pub fn next_event(&mut self) -> FrameEvent {
        loop {
            match self.state {
                State::Decision { .. } => return FrameEvent::Incomplete,
                State::Stream { remaining } => {
                    if remaining > 0 && self.buf.is_empty() {
                        return FrameEvent::Incomplete;
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    let data: Vec<u8> = self.buf.drain(..n).collect();
                    let last = remaining == n as u64;
                    self.state = if last {
                        State::Line
                    } else {
                        State::Stream {
                            remaining: remaining - n as u64,
                        }
                    };
                    return FrameEvent::LiteralData { data, last };
                }
                State::Literal { remaining } => {
                    let have = (self.buf.len() - self.scanned) as u64;
                    if have < remaining {
                        self.scanned = self.buf.len();
                        self.state = State::Literal {
                            remaining: remaining - have,
                        };
                        return FrameEvent::Incomplete;
                    }
                    self.scanned += remaining as usize;
                    self.line_start = self.scanned;
                    self.state = State::Line;
                }
                State::Discard { literal } if literal > 0 => {
                    let have = self.buf.len() as u64;
                    let n = have.min(literal);
                    self.buf.drain(..n as usize);
                    self.scanned = 0;
                    self.state = State::Discard {
                        literal: literal - n,
                    };
                    if literal - n > 0 {
                        return FrameEvent::Incomplete;
                    }
                }
                State::Discard { .. } => match memchr::memchr(b'\n', &self.buf) {
                    None => {
                        // Keep a tail long enough to hold a literal marker.
                        let keep = self.buf.len().min(32);
                        self.buf.drain(..self.buf.len() - keep);
                        self.scanned = 0;
                        return FrameEvent::Incomplete;
                    }
                    Some(lf) => {
                        let line = self.buf[..lf]
                            .strip_suffix(b"\r")
                            .unwrap_or(&self.buf[..lf]);
                        let next = match literal_marker(line) {
                            // A non-synchronising literal follows whatever we say: skip it too.
                            Some((size, true)) => State::Discard { literal: size },
                            // The client waits for `+` that never comes: the command ends here.
                            _ => State::Line,
                        };
                        self.buf.drain(..=lf);
                        self.scanned = 0;
                        self.line_start = 0;
                        self.state = next;
                    }
                },
                State::Line => {
                    let from = self.scanned.max(self.line_start);
                    let Some(lf) = memchr::memchr(b'\n', &self.buf[from..]).map(|p| from + p)
                    else {
                        self.scanned = self.buf.len();
                        if self.buf.len() - self.line_start > self.limits.max_line + 1 {
                            let max = self.limits.max_line;
                            return self.reject(DecodeError::LineTooLong { max }, 0);
                        }
                        return FrameEvent::Incomplete;
                    };
                    if lf == self.line_start || self.buf[lf - 1] != b'\r' {
                        self.scanned = lf;
                        return self.reject(DecodeError::BareLineFeed, 0);
                    }
                    let line = &self.buf[self.line_start..lf - 1];
                    if line.len() > self.limits.max_line {
                        self.scanned = lf;
                        let max = self.limits.max_line;
                        return self.reject(DecodeError::LineTooLong { max }, 0);
                    }
                    let marker = literal_marker(line);
                    self.scanned = lf + 1;
                    let Some((size, nonsync)) = marker else {
                        let frame: Vec<u8> = self.buf.drain(..=lf).collect();
                        self.line_start = 0;
                        self.scanned = 0;
                        return FrameEvent::Command(frame);
                    };
                    let frame_end = (lf as u64 + 1).saturating_add(size);
                    let limit = match (nonsync, self.limits.max_nonsync_literal) {
                        (true, Some(m)) => m.min(self.limits.max_literal),
                        _ => self.limits.max_literal,
                    };
                    if nonsync && size > limit {
                        self.line_start = lf + 1;
                        return self
                            .reject(DecodeError::LiteralTooLarge { size, max: limit }, size);
                    }
                    if nonsync && frame_end > self.limits.max_frame as u64 {
                        self.line_start = lf + 1;
                        let max = self.limits.max_frame;
                        return self.reject(DecodeError::CommandTooLong { max }, size);
                    }
                    if nonsync {
                        self.state = State::Literal { remaining: size };
                        continue;
                    }
                    // A synchronising literal: the server decides. The line start stays at the
                    // announcing line so that a refusal drops the whole partial command.
                    let partial = self.buf[..=lf].to_vec();
                    self.state = State::Decision { size };
                    return FrameEvent::LiteralAnnounced { size, partial };
                }
            }
        }
    }
}

/// Splits an encoded command after each line that announces a synchronising literal: a client
/// sends the first piece, then each next piece after the server's `+`.
pub fn split_at_sync_literals(frame: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut piece_start = 0;
    let mut line_start = 0;
    while let Some(lf) = memchr::memchr(b'\n', &frame[line_start..]).map(|p| line_start + p) {
        let line = frame[line_start..lf]
            .strip_suffix(b"\r")
            .unwrap_or(&frame[line_start..lf]);
        match literal_marker(line) {
            Some((size, nonsync)) => {
                if !nonsync {
                    pieces.push(&frame[piece_start..=lf]);
                    piece_start = lf + 1;
                }
                let skip = usize::try_from(size).unwrap_or(usize::MAX);
                line_start = (lf + 1).saturating_add(skip).min(frame.len());
            }
            None => line_start = lf + 1,
        }
    }
    if piece_start < frame.len() {
        pieces.push(&frame[piece_start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> FramingLimits {
        FramingLimits {
            max_line: 40,
            max_literal: 100,
            max_nonsync_literal: Some(10),
            max_frame: 200,
        }
    }

    #[test]
    fn markers() {
        assert_eq!(literal_marker(b"a LOGIN {5}"), Some((5, false)));
        assert_eq!(literal_marker(b"a LOGIN {5+}"), Some((5, true)));
        assert_eq!(literal_marker(b"a APPEND x ~{7}"), Some((7, false)));
        assert_eq!(literal_marker(b"a LOGIN {}"), None);
        assert_eq!(literal_marker(b"a LOGIN {x}"), None);
        assert_eq!(
            literal_marker(b"a {99999999999999999999999}"),
            Some((u64::MAX, false))
        );
    }

    #[test]
    fn frame_length_counts_literals() {
        let l = limits();
        let s = b"a LOGIN {3}\r\nbob {4+}\r\npass\r\nb NOOP\r\n";
        assert_eq!(frame_length(s, &l), Ok(FrameLength::Complete(29)));
        assert_eq!(frame_length(&s[..20], &l), Ok(FrameLength::Incomplete));
        assert_eq!(
            frame_length(b"a NOOP\n", &l),
            Err(DecodeError::BareLineFeed)
        );
        assert!(matches!(
            frame_length(b"a LOGIN {101}\r\n", &l),
            Err(DecodeError::LiteralTooLarge { .. })
        ));
        assert!(matches!(
            frame_length(&[b'a'; 50], &l),
            Err(DecodeError::LineTooLong { .. })
        ));
    }

    #[test]
    fn server_decides_on_sync_literals() {
        let mut f = CommandFramer::new(limits());
        f.push(b"a LOGIN {3}\r\n");
        let FrameEvent::LiteralAnnounced { size: 3, .. } = f.next_event() else {
            panic!()
        };
        assert_eq!(f.next_event(), FrameEvent::Incomplete);
        f.accept_literal();
        f.push(b"bob pw\r\nb NOOP\r\n");
        assert_eq!(
            f.next_event(),
            FrameEvent::Command(b"a LOGIN {3}\r\nbob pw\r\n".to_vec())
        );
        assert_eq!(f.next_event(), FrameEvent::Command(b"b NOOP\r\n".to_vec()));
        assert_eq!(f.next_event(), FrameEvent::Incomplete);

        f.push(b"c APPEND x {50}\r\n");
        assert!(matches!(
            f.next_event(),
            FrameEvent::LiteralAnnounced { .. }
        ));
        f.reject_literal();
        f.push(b"d NOOP\r\n");
        assert_eq!(f.next_event(), FrameEvent::Command(b"d NOOP\r\n".to_vec()));
    }

    #[test]
    fn streamed_literal_comes_out_in_chunks_then_the_tail() {
        let mut f = CommandFramer::new(limits());
        f.push(b"a APPEND x {10}\r\n");
        assert!(matches!(
            f.next_event(),
            FrameEvent::LiteralAnnounced { size: 10, .. }
        ));
        f.stream_literal();
        assert_eq!(f.next_event(), FrameEvent::Incomplete);
        f.push(b"0123");
        assert_eq!(
            f.next_event(),
            FrameEvent::LiteralData {
                data: b"0123".to_vec(),
                last: false
            }
        );
        f.push(b"456789\r\nb NOOP\r\n");
        assert_eq!(
            f.next_event(),
            FrameEvent::LiteralData {
                data: b"456789".to_vec(),
                last: true
            }
        );
        assert_eq!(f.take_line(), Ok(Some(Vec::new())));
        assert_eq!(f.next_event(), FrameEvent::Command(b"b NOOP\r\n".to_vec()));
    }

    #[test]
    fn rejected_nonsync_literal_is_never_parsed_as_a_command() {
        let mut f = CommandFramer::new(limits());
        // 20 > LITERAL- limit of 10: the 20 octets look like a command but must be skipped,
        // and so must the rest of the command and its second literal.
        f.push(b"a APPEND x {20+}\r\nz DELETE INBOX\r\n1234 {3+}\r\nq\r\n\r\nb NOOP\r\n");
        assert_eq!(
            f.next_event(),
            FrameEvent::Rejected {
                tag: Tag::new("a").ok(),
                error: DecodeError::LiteralTooLarge { size: 20, max: 10 }
            }
        );
        assert_eq!(f.next_event(), FrameEvent::Command(b"b NOOP\r\n".to_vec()));
    }

    #[test]
    fn long_line_is_skipped_with_its_literal() {
        let mut f = CommandFramer::new(limits());
        f.push(b"t1 ");
        f.push(&[b'x'; 60]);
        assert!(matches!(
            f.next_event(),
            FrameEvent::Rejected {
                error: DecodeError::LineTooLong { .. },
                ..
            }
        ));
        f.push(b"xx {4+}\r\nc NO\r\nd NOOP\r\n");
        assert_eq!(f.next_event(), FrameEvent::Command(b"d NOOP\r\n".to_vec()));
    }

    #[test]
    fn split_at_every_byte_gives_the_same_frames() {
        let input = b"a LOGIN {3+}\r\nbob {2+}\r\npw\r\nb SELECT INBOX\r\nc NOOP\r\n";
        let mut whole = CommandFramer::new(limits());
        whole.push(input);
        let mut expected = Vec::new();
        while let FrameEvent::Command(c) = whole.next_event() {
            expected.push(c);
        }
        assert_eq!(expected.len(), 3);
        for cut in 0..input.len() {
            let mut f = CommandFramer::new(limits());
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                f.push(part);
                while let FrameEvent::Command(c) = f.next_event() {
                    got.push(c);
                }
            }
            assert_eq!(got, expected, "cut at {cut}");
        }
    }
}
