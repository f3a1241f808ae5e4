//! The content of a DATA command: the server's streaming decoder and the client's encoder.
//!
//! RFC 5321 §4.1.1.4: "The mail data are terminated by a line containing only a period, that
//! is, the character sequence "`<CRLF>.<CRLF>`", where the first `<CRLF>` is actually the
//! terminator of the previous line." RFC 5321 §4.5.2 (transparency): "Before sending a line of mail text,
//! the SMTP client checks the first character of the line. If it is a period, one additional
//! period is inserted at the beginning of the line" and "When a line of mail text is received
//! by the SMTP server, it checks the line. If the line is composed of a single period, it is
//! treated as the end of mail indicator. If the first character is a period and there are other
//! characters on the line, the first character is deleted."
//!
//! - [`DataDecoder`] (server side) turns the bytes that follow `354` into message content,
//!   in pieces, without buffering, and says where the message ended so that the bytes after
//!   the final `.\r\n` stay with the command parser (a pipelined `QUIT`, the next `MAIL`).
//! - [`DataEncoder`] (client side) dot-stuffs content, turns every bare CR or LF into CRLF so
//!   the server never sees one, and writes the final `.\r\n`.
//!
//! # SMTP smuggling
//!
//! Only `<CRLF>.<CRLF>` ends the data. `\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r` and
//! `\r\n.\r\r\n` are content, never an end: a server that ends the data on one of them while
//! the next hop does not lets a sender hide a second message inside the first (CVE-2023-51764
//! and friends). By default ([`BareNewline::Reject`]) a message that contains a bare CR or LF
//! anywhere is read to its real end and then rejected with
//! `550 5.5.2 Error: bare <LF> received`, the reply Postfix gives with
//! `smtpd_forbid_bare_newline = yes`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use memchr::memchr2;

/// What the [`DataDecoder`] does with a bare LF (an LF not preceded by CR) or a bare CR (a CR
/// not followed by LF) in the message content.
///
/// Neither ever ends the message: only `<CRLF>.<CRLF>` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareNewline {
    /// Read the message to its real end, then reject it ([`DataRejection::BareLf`] or
    /// [`DataRejection::BareCr`], replied `550 5.5.2`). This is Postfix's
    /// `smtpd_forbid_bare_newline = yes` (minus its exclusion of `$mynetworks`). RFC 5321
    /// §2.3.8: "Conforming implementations MUST NOT recognize or generate any other character
    /// or character sequence as a line terminator", and "SMTP client implementations MUST NOT
    /// transmit these characters except when they are intended as line terminators".
    #[default]
    Reject,
    /// Keep a bare CR or LF as an ordinary content byte, unchanged. For old clients on a
    /// trusted network that cannot be fixed; the content then holds the bare newline, and
    /// whoever relays it must encode it (as [`DataEncoder`] does) before sending it on.
    Accept,
}

/// Settings of one [`DataDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataConfig {
    /// The largest message accepted, in octets of content after dot-unstuffing (RFC 1870
    /// counts "the number of octets, including CR-LF pairs, but not the SMTP DATA command's
    /// terminating dot or doubled quoting dots"). `None` is no limit. A session sets it to the
    /// `SIZE` it advertised (Postfix's `message_size_limit`, default 10240000).
    pub max_size: Option<u64>,
    /// What to do with a bare CR or LF.
    pub bare_newline: BareNewline,
}

impl DataConfig {
    /// The default settings with `max_size` as the size limit.
    #[must_use]
    pub fn with_max_size(max_size: u64) -> Self {
        Self {
            max_size: Some(max_size),
            ..Self::default()
        }
    }
}

/// Why a message that was read to its end is refused.
///
/// Each reason knows its reply; the session sends it after the final `.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataRejection {
    /// The content held an LF not preceded by CR.
    #[error("bare <LF> received")]
    BareLf,
    /// The content held a CR not followed by LF.
    #[error("bare <CR> received")]
    BareCr,
    /// The content was larger than the configured limit (RFC 1870 §6.3: "552 message size
    /// exceeds fixed maximum message size").
    #[error("message larger than the limit of {limit} octets")]
    TooLarge {
        /// The limit in force, in octets.
        limit: u64,
    },
}

impl DataRejection {
    /// The reply code: 550 for a bare newline (Postfix's
    /// `smtpd_forbid_bare_newline_reject_code` default), 552 for a message too large
    /// (RFC 1870 §6.3).
    #[must_use]
    pub fn code(&self) -> u16 {
        match self {
            Self::BareLf | Self::BareCr => 550,
            Self::TooLarge { .. } => 552,
        }
    }

    /// The enhanced status code (RFC 3463) as `(class, subject, detail)`: 5.5.2 "syntax
    /// error" for a bare newline, 5.3.4 "message too big for system" for size.
    #[must_use]
    pub fn enhanced_code(&self) -> (u8, u16, u16) {
        match self {
            Self::BareLf | Self::BareCr => (5, 5, 2),
            Self::TooLarge { .. } => (5, 3, 4),
        }
    }

    /// The reply text after the enhanced code, worded as Postfix words it.
    #[must_use]
    pub fn reply_text(&self) -> &'static str {
        match self {
            Self::BareLf => "Error: bare <LF> received",
            Self::BareCr => "Error: bare <CR> received",
            Self::TooLarge { .. } => "Error: message file too big",
        }
    }

    /// The whole reply line without its CRLF, for example
    /// `550 5.5.2 Error: bare <LF> received`.
    #[must_use]
    pub fn reply_line(&self) -> &'static str {
        match self {
            Self::BareLf => "550 5.5.2 Error: bare <LF> received",
            Self::BareCr => "550 5.5.2 Error: bare <CR> received",
            Self::TooLarge { .. } => "552 5.3.4 Error: message file too big",
        }
    }
}

/// How a message ended: after the final `.` of DATA, or after a BDAT chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataOutcome {
    /// The content is complete and passed every check; the application decides the reply
    /// (`250 2.0.0 Ok: queued as ...` once it is on stable storage).
    Accepted {
        /// Octets of content (after dot-unstuffing).
        size: u64,
    },
    /// The message was read to its end and must be refused with `reason`'s reply. Any content
    /// already handed out for it must be discarded.
    Rejected {
        /// Why, and which reply to send.
        reason: DataRejection,
        /// Octets of content received, including those past the size limit that were dropped.
        size: u64,
    },
}

impl DataOutcome {
    /// Octets of content received.
    #[must_use]
    pub fn size(&self) -> u64 {
        match self {
            Self::Accepted { size } | Self::Rejected { size, .. } => *size,
        }
    }

    /// The reason for refusing the message, if it is refused.
    #[must_use]
    pub fn rejection(&self) -> Option<DataRejection> {
        match self {
            Self::Accepted { .. } => None,
            Self::Rejected { reason, .. } => Some(*reason),
        }
    }

    /// Whether the message passed every check.
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// What a decoder hands out: a piece of content, or the end of the message.
///
/// `T` is `&[u8]` for [`DataDecoder::decode`] (a slice of the input, or a static `"\r"`) and
/// [`Bytes`] for [`DataDecoder::decode_buf`] (a zero-copy slice of the session's buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEvent<T> {
    /// The next piece of message content, never empty. Pieces concatenate to the message.
    Content(T),
    /// The message ended; the decoder is done.
    End(DataOutcome),
}

/// The result of one [`DataDecoder::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// How many input bytes were used. Drop them from the input before the next call; the
    /// bytes after them belong to whatever comes next (after [`DataEvent::End`]: the command
    /// parser).
    pub consumed: usize,
    /// `None` when the decoder needs more input: then `consumed` is the whole input.
    pub event: Option<DataEvent<&'a [u8]>>,
}

/// Where the decoder is in the current line. Only `<CRLF>` starts a line; the CRLF that ends
/// the DATA command line counts, so the decoder starts at a line start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// Inside a line.
    Middle,
    /// After a CR inside a line (the CR is content).
    Cr,
    /// After a "." that began a line (the dot is deleted, whatever follows).
    Dot,
    /// After "." CR at the start of a line; the CR is held back: LF ends the message, anything
    /// else makes it a bare CR of the content.
    DotCr,
}

/// One step of the decoder, in positions of the input it was given.
#[derive(Debug, Clone, Copy)]
enum Raw {
    Content(usize, usize),
    HeldCr,
    End(DataOutcome),
}

/// The streaming, sans-IO decoder of DATA content (server side), one per message.
///
/// It holds a few words of state and no buffer: memory stays constant whatever the message
/// size. It hands out content in pieces that borrow from (or, with [`decode_buf`], share the
/// allocation of) the input, deletes the transparency dots, enforces the size limit and the
/// bare-newline policy, and reports how many input bytes it used so that the bytes after the
/// final `.\r\n` stay with the caller.
///
/// # Call order
///
/// ```text
///   354 sent ──> new(config) ──> decode / decode_buf ──┬─> Content(piece)  ── call again
///                                    ^                 ├─> None (needs more) ── read, call again
///                                    └─────────────────┘
///                                                      └─> End(outcome) ── done: back to commands
/// ```
///
/// 1. After replying `354` to DATA, create the decoder with [`DataDecoder::new`].
/// 2. Call [`decode_buf`] with the session's input buffer (or [`decode`] with a slice, then
///    drop `consumed` bytes from it) until it returns `None` (read more input, then call
///    again) or [`DataEvent::End`].
/// 3. Each [`DataEvent::Content`] is the next piece of the message, for the application.
/// 4. At [`DataEvent::End`] the message is over; whatever remains in the buffer is the next
///    command. Reply with the outcome: [`DataOutcome::Rejected`] carries its reply (discard
///    the pieces already handed out), [`DataOutcome::Accepted`] is the application's call.
///    Calls after `End` use no input and return nothing.
///
/// Content may be handed out before a reason to reject the message is found (a bare LF near
/// the end, or the byte that crosses the size limit): once the decoder knows the message is
/// refused it hands out nothing more, but only the outcome says whether to keep what came
/// before. An over-size message is read to its end without buffering: RFC 1870 §6.3 answers
/// it with 552, and the server still has to find the end of the data to stay in step with the
/// client.
///
/// [`decode`]: DataDecoder::decode
/// [`decode_buf`]: DataDecoder::decode_buf
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use mailroom_smtp_proto::data::{DataConfig, DataDecoder, DataEvent, DataOutcome};
///
/// let mut input = BytesMut::from(&b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n"[..]);
/// let mut decoder = DataDecoder::new(DataConfig::default());
/// let mut message = Vec::new();
/// loop {
///     match decoder.decode_buf(&mut input) {
///         Some(DataEvent::Content(piece)) => message.extend_from_slice(&piece),
///         Some(DataEvent::End(outcome)) => {
///             assert_eq!(outcome, DataOutcome::Accepted { size: 21 });
///             break;
///         }
///         None => unreachable!("the whole message is in the buffer"),
///     }
/// }
/// assert_eq!(message, b"Subject: hi\r\n\r\n.dot\r\n");
/// assert_eq!(&input[..], b"QUIT\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DataDecoder {
    config: DataConfig,
    state: State,
    size: u64,
    bare_lf: bool,
    bare_cr: bool,
    too_large: bool,
    done: Option<DataOutcome>,
}

impl DataDecoder {
    /// A decoder at the start of the message content (just after the DATA command's CRLF).
    #[must_use]
    pub fn new(config: DataConfig) -> Self {
        Self {
            config,
            state: State::LineStart,
            size: 0,
            bare_lf: false,
            bare_cr: false,
            too_large: false,
            done: None,
        }
    }

    /// The settings this decoder was built with.
    #[must_use]
    pub fn config(&self) -> &DataConfig {
        &self.config
    }

    /// Octets of content seen so far (after dot-unstuffing), including any past the limit.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the message has ended.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// The outcome, once the message has ended.
    #[must_use]
    pub fn outcome(&self) -> Option<DataOutcome> {
        self.done
    }

    /// Whether the message is already known to be refused (it is still read to its end).
    #[must_use]
    pub fn is_rejected(&self) -> bool {
        self.too_large
            || (self.config.bare_newline == BareNewline::Reject && (self.bare_lf || self.bare_cr))
    }

    /// Decodes from the start of `input`: returns the next piece of content or the end, and
    /// how many bytes of `input` were used.
    ///
    /// A returned piece borrows from `input`, except a CR that was held back across calls
    /// (after `"\r\n.\r"` at the end of the previous input), which is a static `"\r"`. When
    /// `event` is `None`, all of `input` was used and more is needed.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Decoded<'a> {
        let (consumed, raw) = self.step(input);
        let event = raw.map(|raw| match raw {
            Raw::Content(start, end) => DataEvent::Content(input.get(start..end).unwrap_or(b"")),
            Raw::HeldCr => DataEvent::Content(&b"\r"[..]),
            Raw::End(outcome) => DataEvent::End(outcome),
        });
        Decoded { consumed, event }
    }

    /// Decodes from the front of a session's input buffer, removing the bytes used.
    ///
    /// A content piece is split off the buffer without copying ([`BytesMut::split_to`]): it
    /// shares the buffer's allocation until the application drops it. `None` means the buffer
    /// is now empty and more input is needed. After [`DataEvent::End`] the buffer starts with
    /// the bytes that followed the final `.\r\n`.
    pub fn decode_buf(&mut self, buf: &mut BytesMut) -> Option<DataEvent<Bytes>> {
        let (consumed, raw) = self.step(buf);
        match raw {
            Some(Raw::Content(start, end)) => {
                let used = buf.split_to(consumed).freeze();
                Some(DataEvent::Content(used.slice(start..end)))
            }
            Some(Raw::HeldCr) => {
                buf.advance(consumed);
                Some(DataEvent::Content(Bytes::from_static(b"\r")))
            }
            Some(Raw::End(outcome)) => {
                buf.advance(consumed);
                Some(DataEvent::End(outcome))
            }
            None => {
                buf.advance(consumed);
                None
            }
        }
    }

    /// The state machine. Returns the bytes used and at most one event; `None` only once the
    /// whole input is used.
    fn step(&mut self, input: &[u8]) -> (usize, Option<Raw>) {
        if self.done.is_some() {
            return (0, None);
        }
        let len = input.len();
        let mut i = 0;
        // Start of the content not yet handed out.
        let mut run = 0;
        loop {
            match self.state {
                State::Middle => {
                    // The hot loop: only CR and LF matter inside a line, and a CRLF followed by
                    // an ordinary byte keeps us here; the rest goes through the other states.
                    let Some(at) = input.get(i..).and_then(|rest| memchr2(b'\r', b'\n', rest))
                    else {
                        i = len;
                        break;
                    };
                    i += at;
                    if input.get(i) == Some(&b'\n') {
                        // An LF not after CR: content, never a line end.
                        self.bare_lf = true;
                        i += 1;
                        continue;
                    }
                    match input.get(i + 1) {
                        Some(b'\n') => {
                            i += 2;
                            if matches!(input.get(i), None | Some(b'.' | b'\r')) {
                                self.state = State::LineStart;
                            }
                        }
                        Some(_) => {
                            // A CR not followed by LF; the next byte is looked at here.
                            self.bare_cr = true;
                            i += 1;
                        }
                        None => {
                            i += 1;
                            self.state = State::Cr;
                        }
                    }
                }
                State::Cr => {
                    let Some(&byte) = input.get(i) else { break };
                    if byte == b'\n' {
                        i += 1;
                        self.state = State::LineStart;
                    } else {
                        // The CR before `byte` is bare; `byte` is looked at in Middle.
                        self.bare_cr = true;
                        self.state = State::Middle;
                    }
                }
                State::LineStart => {
                    let Some(&byte) = input.get(i) else { break };
                    match byte {
                        b'.' => {
                            // RFC 5321 §4.5.2: a leading period is deleted, whether it is
                            // the transparency dot or the start of the end-of-data line.
                            let end = i;
                            i += 1;
                            self.state = State::Dot;
                            if let Some(raw) = self.run(run, end) {
                                return (i, Some(raw));
                            }
                            run = i;
                        }
                        b'\r' => {
                            i += 1;
                            self.state = State::Cr;
                        }
                        _ => self.state = State::Middle,
                    }
                }
                State::Dot => {
                    let Some(&byte) = input.get(i) else { break };
                    if byte == b'\r' {
                        // Held back: it is content only if no LF follows.
                        i += 1;
                        run = i;
                        self.state = State::DotCr;
                    } else {
                        self.state = State::Middle;
                    }
                }
                State::DotCr => {
                    let Some(&byte) = input.get(i) else { break };
                    if byte == b'\n' {
                        // <CRLF>.<CRLF>: the first CRLF was handed out with the content.
                        return (i + 1, Some(Raw::End(self.finish())));
                    }
                    // "." CR then not LF: the line had other characters, so only the dot
                    // goes; the CR is a bare CR of the content.
                    self.bare_cr = true;
                    self.state = State::Middle;
                    if let Some(raw) = self.held_cr() {
                        return (i, Some(raw));
                    }
                }
            }
        }
        (i, self.run(run, i))
    }

    /// Accounts for content `start..end` of the input; returns it unless the message is
    /// refused or the content is empty.
    fn run(&mut self, start: usize, end: usize) -> Option<Raw> {
        if start >= end {
            return None;
        }
        self.add_size((end - start) as u64);
        (!self.is_rejected()).then_some(Raw::Content(start, end))
    }

    /// Accounts for the held-back CR; returns it unless the message is refused.
    fn held_cr(&mut self) -> Option<Raw> {
        self.add_size(1);
        (!self.is_rejected()).then_some(Raw::HeldCr)
    }

    fn add_size(&mut self, octets: u64) {
        self.size = self.size.saturating_add(octets);
        if let Some(max) = self.config.max_size
            && self.size > max
        {
            self.too_large = true;
        }
    }

    fn finish(&mut self) -> DataOutcome {
        let reject_bare = self.config.bare_newline == BareNewline::Reject;
        let reason = if reject_bare && self.bare_lf {
            Some(DataRejection::BareLf)
        } else if reject_bare && self.bare_cr {
            Some(DataRejection::BareCr)
        } else if self.too_large {
            Some(DataRejection::TooLarge {
                limit: self.config.max_size.unwrap_or(u64::MAX),
            })
        } else {
            None
        };
        let outcome = match reason {
            Some(reason) => DataOutcome::Rejected {
                reason,
                size: self.size,
            },
            None => DataOutcome::Accepted { size: self.size },
        };
        self.done = Some(outcome);
        outcome
    }
}

/// The streaming, sans-IO encoder of DATA content (client side), one per message.
///
/// It is fed the message in chunks of any size and writes what goes on the wire after the
/// server's `354`:
///
/// - a line that starts with "." gets one more "." (RFC 5321 §4.5.2);
/// - every bare LF, and every bare CR, becomes CRLF, so the server never sees a bare newline
///   and the end of data cannot be faked (Postfix's SMTP client does the same), including a
///   CR at the end of one chunk followed by an LF at the start of the next, which is one CRLF;
/// - [`finish`](DataEncoder::finish) adds a CRLF if the content does not end with one, then
///   the final `.\r\n`.
///
/// It holds two flags and no buffer. Each call writes at most twice the chunk's length plus
/// two bytes.
///
/// # Examples
///
/// ```
/// use mailroom_smtp_proto::data::DataEncoder;
///
/// let mut wire = Vec::new();
/// let mut encoder = DataEncoder::new();
/// encoder.encode(b"a\n.b\r", &mut wire);
/// encoder.encode(b"\nc", &mut wire);
/// encoder.finish(&mut wire);
/// assert_eq!(wire, b"a\r\n..b\r\nc\r\n.\r\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct DataEncoder {
    /// The next byte starts a line (the DATA command's CRLF counts).
    mid_line: bool,
    /// The previous chunk ended with a CR whose fate depends on the next byte.
    pending_cr: bool,
}

impl DataEncoder {
    /// An encoder at the start of the content.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes the next chunk of content into `out`.
    pub fn encode<B: BufMut>(&mut self, chunk: &[u8], out: &mut B) {
        let mut i = 0;
        if self.pending_cr {
            let Some(&first) = chunk.first() else { return };
            self.pending_cr = false;
            out.put_slice(b"\r\n");
            self.mid_line = false;
            if first == b'\n' {
                i = 1;
            }
        }
        // Start of the input not yet written.
        let mut run = i;
        loop {
            if !self.mid_line {
                let Some(&byte) = chunk.get(i) else { break };
                if byte == b'.' {
                    // RFC 5321 §4.5.2: the extra dot; the line's own dot goes with the run.
                    out.put_slice(chunk.get(run..i).unwrap_or(b""));
                    out.put_u8(b'.');
                    run = i;
                }
                self.mid_line = true;
            }
            let Some(at) = chunk.get(i..).and_then(|rest| memchr2(b'\r', b'\n', rest)) else {
                i = chunk.len();
                break;
            };
            i += at;
            if chunk.get(i) == Some(&b'\n') {
                // A bare LF becomes CRLF.
                out.put_slice(chunk.get(run..i).unwrap_or(b""));
                out.put_slice(b"\r\n");
                i += 1;
                run = i;
            } else {
                match chunk.get(i + 1) {
                    Some(b'\n') => i += 2,
                    None => {
                        out.put_slice(chunk.get(run..i).unwrap_or(b""));
                        self.pending_cr = true;
                        self.mid_line = false;
                        return;
                    }
                    Some(_) => {
                        // A bare CR becomes CRLF.
                        out.put_slice(chunk.get(run..i).unwrap_or(b""));
                        out.put_slice(b"\r\n");
                        i += 1;
                        run = i;
                    }
                }
            }
            self.mid_line = false;
        }
        out.put_slice(chunk.get(run..i).unwrap_or(b""));
    }

    /// Ends the content: a CRLF if the last line is unfinished, then `.\r\n`.
    pub fn finish<B: BufMut>(self, out: &mut B) {
        if self.pending_cr || self.mid_line {
            out.put_slice(b"\r\n");
        }
        out.put_slice(b".\r\n");
    }

    /// Encodes a whole message at once, final `.\r\n` included.
    #[must_use]
    pub fn encode_all(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
        let mut encoder = Self::new();
        encoder.encode(content, &mut out);
        encoder.finish(&mut out);
        out
    }
}
