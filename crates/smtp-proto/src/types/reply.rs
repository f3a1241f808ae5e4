//! Replies (RFC 5321 §4.2) with enhanced status codes (RFC 2034, RFC 3463).

use std::fmt;

/// A reply code: three digits, the first 2 to 5, the second 0 to 5 (RFC 5321 §4.2.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// 220 `<domain>` Service ready.
    pub const SERVICE_READY: ReplyCode = ReplyCode(220);
    /// 221 `<domain>` Service closing transmission channel.
    pub const CLOSING: ReplyCode = ReplyCode(221);
    /// 235 Authentication successful (RFC 4954).
    pub const AUTH_SUCCEEDED: ReplyCode = ReplyCode(235);
    /// 250 Requested mail action okay, completed.
    pub const OK: ReplyCode = ReplyCode(250);
    /// 252 Cannot VRFY user, but will accept message and attempt delivery.
    pub const CANNOT_VERIFY: ReplyCode = ReplyCode(252);
    /// 334 SASL continuation (RFC 4954).
    pub const AUTH_CONTINUE: ReplyCode = ReplyCode(334);
    /// 354 Start mail input; end with `<CRLF>.<CRLF>`.
    pub const START_MAIL_INPUT: ReplyCode = ReplyCode(354);
    /// 421 Service not available, closing transmission channel.
    pub const SERVICE_NOT_AVAILABLE: ReplyCode = ReplyCode(421);
    /// 450 Mailbox unavailable (temporary).
    pub const MAILBOX_BUSY: ReplyCode = ReplyCode(450);
    /// 451 Local error in processing.
    pub const LOCAL_ERROR: ReplyCode = ReplyCode(451);
    /// 452 Insufficient system storage (also: too many recipients, RFC 5321 §4.5.3.1.10).
    pub const INSUFFICIENT_STORAGE: ReplyCode = ReplyCode(452);
    /// 454 TLS not available / temporary authentication failure.
    pub const TLS_NOT_AVAILABLE: ReplyCode = ReplyCode(454);
    /// 500 Syntax error, command unrecognized (also: line too long).
    pub const SYNTAX_ERROR: ReplyCode = ReplyCode(500);
    /// 501 Syntax error in parameters or arguments.
    pub const PARAMETER_SYNTAX_ERROR: ReplyCode = ReplyCode(501);
    /// 502 Command not implemented.
    pub const NOT_IMPLEMENTED: ReplyCode = ReplyCode(502);
    /// 503 Bad sequence of commands.
    pub const BAD_SEQUENCE: ReplyCode = ReplyCode(503);
    /// 504 Command parameter not implemented.
    pub const PARAMETER_NOT_IMPLEMENTED: ReplyCode = ReplyCode(504);
    /// 530 Authentication required / must issue STARTTLS first (RFC 3207, RFC 4954).
    pub const AUTH_REQUIRED: ReplyCode = ReplyCode(530);
    /// 535 Authentication credentials invalid (RFC 4954).
    pub const AUTH_FAILED: ReplyCode = ReplyCode(535);
    /// 538 Encryption required for requested authentication mechanism (RFC 4954).
    pub const ENCRYPTION_REQUIRED: ReplyCode = ReplyCode(538);
    /// 550 Mailbox unavailable.
    pub const MAILBOX_UNAVAILABLE: ReplyCode = ReplyCode(550);
    /// 552 Exceeded storage allocation (message too big, RFC 1870).
    pub const EXCEEDED_STORAGE: ReplyCode = ReplyCode(552);
    /// 553 Mailbox name not allowed.
    pub const MAILBOX_NAME_NOT_ALLOWED: ReplyCode = ReplyCode(553);
    /// 554 Transaction failed.
    pub const TRANSACTION_FAILED: ReplyCode = ReplyCode(554);
    /// 555 MAIL FROM/RCPT TO parameters not recognized or not implemented.
    pub const PARAMETERS_NOT_RECOGNIZED: ReplyCode = ReplyCode(555);

    /// Validates a reply code.
    pub const fn new(code: u16) -> Option<Self> {
        if code >= 200 && code <= 599 && (code / 10) % 10 <= 5 {
            Some(Self(code))
        } else {
            None
        }
    }

    /// The code as a number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2 positive completion, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(self) -> u8 {
        // 200..=599: the first digit fits a u8.
        (self.0 / 100) as u8
    }

    /// `2yz`: the action completed.
    pub fn is_positive(self) -> bool {
        self.class() == 2
    }

    /// `3yz`: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(self) -> bool {
        self.class() == 3
    }

    /// `4yz`: a temporary failure; the client may try again later.
    pub fn is_transient(self) -> bool {
        self.class() == 4
    }

    /// `5yz`: a permanent failure.
    pub fn is_permanent(self) -> bool {
        self.class() == 5
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplyCode({})", self.0)
    }
}

/// An enhanced status code `class.subject.detail` (RFC 3463 §2):
/// `status-code = class "." subject "." detail`, `class = "2"/"4"/"5"`,
/// `subject = 1*3digit`, `detail = 1*3digit`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl EnhancedCode {
    /// Validates an enhanced status code.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Option<Self> {
        if matches!(class, 2 | 4 | 5) && subject <= 999 && detail <= 999 {
            Some(Self {
                class,
                subject,
                detail,
            })
        } else {
            None
        }
    }

    /// 2, 4 or 5: success, persistent transient failure, permanent failure.
    pub fn class(self) -> u8 {
        self.class
    }

    /// The subject (1 addressing, 2 mailbox, 3 mail system, 4 network, 5 protocol, 6 content,
    /// 7 security).
    pub fn subject(self) -> u16 {
        self.subject
    }

    /// The detail within the subject.
    pub fn detail(self) -> u16 {
        self.detail
    }

    /// Parses `class.subject.detail` exactly (no surrounding text).
    pub fn parse(s: &[u8]) -> Option<Self> {
        let mut parts = s.split(|&b| b == b'.');
        let mut next = |max_len: usize| -> Option<u16> {
            let p = parts.next()?;
            if p.is_empty() || p.len() > max_len || !p.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(p.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
        };
        let class = u8::try_from(next(1)?).ok()?;
        let (subject, detail) = (next(3)?, next(3)?);
        if parts.next().is_some() {
            return None;
        }
        Self::new(class, subject, detail)
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl fmt::Debug for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnhancedCode({self})")
    }
}

/// A reply: a code, an optional enhanced status code and one or more lines of text.
///
/// `Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`
/// (RFC 5321 §4.2). The text can never hold CR, LF or another control character but TAB: the
/// constructor splits lines at LF and replaces the others, so a reply can never carry a
/// second reply (or a header) inside it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    lines: Vec<String>,
}

impl Reply {
    /// Builds a reply from its code and text. When the text starts with an enhanced status code
    /// whose class matches the reply's first digit (`"2.1.0 Ok"`), it becomes the reply's
    /// enhanced code, repeated on every line when encoded (RFC 2034 §4). LF separates lines;
    /// other control characters become `?`.
    pub fn new(code: ReplyCode, text: &str) -> Self {
        let mut text = text;
        let mut enhanced = None;
        let first_word = text.split(' ').next().unwrap_or("");
        if let Some(e) = EnhancedCode::parse(first_word.as_bytes())
            && e.class() == code.class()
        {
            enhanced = Some(e);
            text = text[first_word.len()..].strip_prefix(' ').unwrap_or("");
        }
        let lines = text
            .split('\n')
            .map(|line| {
                line.trim_end_matches('\r')
                    .chars()
                    .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
                    .collect()
            })
            .collect();
        Self {
            code,
            enhanced,
            lines,
        }
    }

    /// Builds a reply from parts already checked (by the decoder).
    pub(crate) fn from_parts(
        code: ReplyCode,
        enhanced: Option<EnhancedCode>,
        lines: Vec<String>,
    ) -> Self {
        Self {
            code,
            enhanced,
            lines,
        }
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code, if the reply has one.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The lines of text, without the codes.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text, lines joined with LF, without the codes.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Whether the reply is `2yz`.
    pub fn is_positive(&self) -> bool {
        self.code.is_positive()
    }
}

impl fmt::Display for Reply {
    /// One line: `250 2.1.0 Ok`, with the lines of a multi-line reply joined by `" / "` (for
    /// logs and DSN diagnostic codes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        for (i, line) in self.lines.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { " / " })?;
            f.write_str(line)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({self})")
    }
}
