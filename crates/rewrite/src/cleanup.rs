//! The header fixes of Postfix's cleanup(8), as a streaming pass over the header section; the
//! body is passed through untouched.
//!
//! - `header_checks` (regexp or hash tables of whole headers; folded headers are matched as one
//!   string with `\n` between their lines) with the actions WARN, REJECT, DISCARD, HOLD,
//!   IGNORE, REPLACE, PREPEND, REDIRECT, and DUNNO/OK;
//! - `Bcc:`, `Resent-Bcc:`, `Return-Path:` and `Content-Length:` are removed;
//! - `Received:` headers are counted: at `hopcount_limit` (50) the message is refused with
//!   `554 5.4.0 too many hops` (a mail loop);
//! - `Date:`, `Message-ID:` and `From:` are added at the end of the header section when
//!   missing (from the arrival time, the queue id and `$myhostname`, and the envelope sender);
//! - a header longer than `header_size_limit` is truncated, as Postfix does;
//! - the first line that is not a header (nor a continuation) ends the header section; an
//!   empty line is inserted before it.
//!
//! Sans-IO: the caller gives the arrival time and queue id, feeds bytes with
//! [`HeaderCleanup::handle_input`], takes output with [`HeaderCleanup::take_output`], and ends
//! with [`HeaderCleanup::finish`]. Text that cleanup writes into a header (added headers,
//! REPLACE, PREPEND, `$n` substitutions) never holds CR, LF or NUL: they become spaces.

use std::time::SystemTime;

use mailroom_smtp_proto::date::{CivilTime, rfc5322_date};
use mailroom_smtp_proto::{Mailbox, ReversePath};

use crate::address::canonicalize;
use crate::error::CleanupError;
use crate::params::Params;

/// What the caller knows about the message when cleanup starts.
#[derive(Debug, Clone)]
pub struct MessageInfo {
    /// The envelope sender (after rewriting), for a missing `From:`.
    pub sender: ReversePath,
    /// The arrival time, for a missing `Date:` and the `Message-ID:`.
    pub arrival: SystemTime,
    /// The queue id, for a missing `Message-ID:` (`<YYYYMMDDhhmmss.QUEUEID@$myhostname>`).
    pub queue_id: String,
}

/// What header_checks decided for the whole message, beside the rewritten bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// DISCARD: accept and throw away, with this reason.
    pub discard: Option<String>,
    /// HOLD: put the message on hold, with this reason.
    pub hold: Option<String>,
    /// REDIRECT: deliver to this address instead of the envelope recipients.
    pub redirect: Option<Mailbox>,
    /// WARN texts, and notes (unknown actions, truncated headers), for the log.
    pub warnings: Vec<String>,
    /// How many `Received:` headers the message had.
    pub received: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Headers,
    Body,
}

/// The streaming header pass; see the module documentation.
#[derive(Debug)]
pub struct HeaderCleanup<'p> {
    params: &'p Params,
    info: MessageInfo,
    state: State,
    /// The current physical line, not yet complete.
    line: Vec<u8>,
    line_truncated: bool,
    /// Whether the last byte of the previous input chunk was CR (it may have been dropped by
    /// truncation, and still tells the line end).
    pending_cr: bool,
    /// The current logical header (with its folding and line ends), not yet complete.
    header: Vec<u8>,
    header_truncated: bool,
    crlf: Option<bool>,
    out: Vec<u8>,
    seen_date: bool,
    seen_message_id: bool,
    seen_from: bool,
    verdict: Verdict,
    error: Option<CleanupError>,
}

impl<'p> HeaderCleanup<'p> {
    /// Starts a pass for one message.
    pub fn new(params: &'p Params, info: MessageInfo) -> Self {
        HeaderCleanup {
            params,
            info,
            state: State::Headers,
            line: Vec::new(),
            line_truncated: false,
            pending_cr: false,
            header: Vec::new(),
            header_truncated: false,
            crlf: None,
            out: Vec::new(),
            seen_date: false,
            seen_message_id: false,
            seen_from: false,
            verdict: Verdict::default(),
            error: None,
        }
    }

    /// Feeds the next bytes of the message (any split).
    ///
    /// # Errors
    ///
    /// [`CleanupError`] once the message is refused (too many hops, REJECT); later calls
    /// return the same error.
    pub fn handle_input(&mut self, mut data: &[u8]) -> Result<(), CleanupError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        while !data.is_empty() {
            if self.state == State::Body {
                self.out.extend_from_slice(data);
                return Ok(());
            }
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    self.push_line_bytes(&data[..=nl]);
                    if self.line_truncated {
                        // Keep the line end the line had, within the limit.
                        let crlf = if nl > 0 {
                            data[nl - 1] == b'\r'
                        } else {
                            self.pending_cr
                        };
                        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                        let keep = self.params.header_size_limit.saturating_sub(eol.len());
                        self.line.truncate(keep);
                        while self.line.last().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
                            self.line.pop();
                        }
                        self.line.extend_from_slice(eol);
                        if !self.header_truncated {
                            self.verdict.warnings.push(format!(
                                "header longer than header_size_limit ({}): truncated",
                                self.params.header_size_limit
                            ));
                        }
                    }
                    data = &data[nl + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.line_truncated = false;
                    self.handle_line(line)?;
                }
                None => {
                    self.pending_cr = data.last() == Some(&b'\r');
                    self.push_line_bytes(data);
                    data = &[];
                }
            }
        }
        Ok(())
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        // One physical line may not exceed the limit; a logical header (with its continuation
        // lines) is held to it in handle_line.
        let room = self
            .params
            .header_size_limit
            .saturating_sub(self.line.len());
        if bytes.len() <= room {
            self.line.extend_from_slice(bytes);
        } else {
            self.line.extend_from_slice(&bytes[..room]);
            self.line_truncated = true;
        }
    }

    /// The rewritten bytes so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Ends the message: flushes a header section that had no body, adds missing headers.
    ///
    /// # Errors
    ///
    /// [`CleanupError`] when the message is refused.
    pub fn finish(mut self) -> Result<(Vec<u8>, Verdict), CleanupError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.state == State::Headers {
            if !self.line.is_empty() {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(self.eol());
                self.handle_line(line)?;
            }
            if self.state == State::Headers {
                self.flush_header()?;
                self.add_missing();
            }
        }
        Ok((self.out, self.verdict))
    }

    fn eol(&self) -> &'static [u8] {
        if self.crlf.unwrap_or(true) {
            b"\r\n"
        } else {
            b"\n"
        }
    }

    fn handle_line(&mut self, line: Vec<u8>) -> Result<(), CleanupError> {
        if self.crlf.is_none() {
            self.crlf = Some(line.ends_with(b"\r\n"));
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            self.flush_header()?;
            self.add_missing();
            self.out.extend_from_slice(&line);
            self.state = State::Body;
            return Ok(());
        }
        if matches!(content[0], b' ' | b'\t') && !self.header.is_empty() {
            if self.header.len() + line.len() > self.params.header_size_limit {
                if !self.header_truncated {
                    self.header_truncated = true;
                    self.verdict.warnings.push(format!(
                        "header longer than header_size_limit ({}): truncated",
                        self.params.header_size_limit
                    ));
                }
                return Ok(());
            }
            self.header.extend_from_slice(&line);
            return Ok(());
        }
        if is_header_line(content) {
            self.flush_header()?;
            self.header = line;
            return Ok(());
        }
        // Not a header: the body starts here, after an inserted empty line.
        self.flush_header()?;
        self.add_missing();
        let eol = self.eol();
        self.out.extend_from_slice(eol);
        self.out.extend_from_slice(&line);
        self.state = State::Body;
        Ok(())
    }

    fn fail(&mut self, e: CleanupError) -> Result<(), CleanupError> {
        self.error = Some(e.clone());
        Err(e)
    }

    fn flush_header(&mut self) -> Result<(), CleanupError> {
        if self.header.is_empty() {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.header);
        self.header_truncated = false;
        let text = String::from_utf8_lossy(&raw);
        // The logical header as header_checks see it: line ends removed, lines joined by \n.
        let logical: String = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let name = logical
            .split(':')
            .next()
            .unwrap_or("")
            .trim_end()
            .to_ascii_lowercase();

        let mut keep = true;
        let mut replacement: Option<String> = None;
        if !self.params.header_checks.is_empty()
            && let Some(action) = self.params.header_checks.find(&logical, false)
        {
            let action = action.into_owned();
            let (verb, arg) = match action.split_once(char::is_whitespace) {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
                None => (action.to_ascii_uppercase(), String::new()),
            };
            let arg = sanitize(&arg);
            match verb.as_str() {
                "REJECT" => {
                    let e = reject(&arg);
                    return self.fail(e);
                }
                "WARN" => self
                    .verdict
                    .warnings
                    .push(format!("warning: header {}: {arg}", first_line(&logical))),
                "DISCARD" => self.verdict.discard = Some(arg),
                "HOLD" => self.verdict.hold = Some(arg),
                "IGNORE" => keep = false,
                "REPLACE" => {
                    if is_header_line(arg.as_bytes()) {
                        replacement = Some(arg);
                    } else {
                        self.verdict
                            .warnings
                            .push(format!("REPLACE action without a header: {arg:?}"));
                    }
                }
                "PREPEND" => {
                    if is_header_line(arg.as_bytes()) {
                        let eol = self.eol();
                        self.out.extend_from_slice(arg.as_bytes());
                        self.out.extend_from_slice(eol);
                    } else {
                        self.verdict
                            .warnings
                            .push(format!("PREPEND action without a header: {arg:?}"));
                    }
                }
                "REDIRECT" => match canonicalize(&arg, self.params) {
                    Ok(m) => self.verdict.redirect = Some(m),
                    Err(e) => self
                        .verdict
                        .warnings
                        .push(format!("REDIRECT to a bad address {arg:?}: {e}")),
                },
                "DUNNO" | "OK" => {}
                other => self.verdict.warnings.push(format!(
                    "unsupported header_checks action {other:?}: ignored"
                )),
            }
        }

        match name.as_str() {
            "bcc" | "resent-bcc" | "return-path" | "content-length" => keep = false,
            "received" => {
                self.verdict.received += 1;
                if self.verdict.received >= self.params.hopcount_limit {
                    let e = CleanupError::TooManyHops {
                        count: self.verdict.received,
                    };
                    return self.fail(e);
                }
            }
            "date" => self.seen_date = true,
            "message-id" => self.seen_message_id = true,
            "from" => self.seen_from = true,
            _ => {}
        }
        if !keep {
            return Ok(());
        }
        match replacement {
            Some(r) => {
                let eol = self.eol();
                self.out.extend_from_slice(r.as_bytes());
                self.out.extend_from_slice(eol);
            }
            None => {
                self.out.extend_from_slice(&raw);
            }
        }
        Ok(())
    }

    fn add_missing(&mut self) {
        let eol = self.eol();
        let add = |out: &mut Vec<u8>, h: String| {
            out.extend_from_slice(sanitize(&h).as_bytes());
            out.extend_from_slice(eol);
        };
        if !self.seen_date {
            add(
                &mut self.out,
                format!("Date: {}", rfc5322_date(self.info.arrival)),
            );
            self.seen_date = true;
        }
        if !self.seen_message_id {
            let id = format!(
                "<{}.{}@{}>",
                compact_date(self.info.arrival),
                self.info.queue_id,
                self.params.myhostname
            );
            add(&mut self.out, format!("Message-Id: {id}"));
            self.seen_message_id = true;
        }
        if !self.seen_from {
            let from = match &self.info.sender {
                ReversePath::Mailbox(m) => m.to_string(),
                ReversePath::Null => format!("MAILER-DAEMON@{}", self.params.myhostname),
            };
            add(&mut self.out, format!("From: <{from}>"));
            self.seen_from = true;
        }
    }
}

fn first_line(s: &str) -> &str {
    s.split('\n').next().unwrap_or("")
}

fn reject(arg: &str) -> CleanupError {
    let mut code = 550;
    let mut enhanced = "5.7.1".to_string();
    let mut text = arg;
    let mut words = arg.splitn(2, ' ');
    let first = words.next().unwrap_or("");
    if first.len() == 3
        && first.starts_with(['4', '5'])
        && first.bytes().all(|b| b.is_ascii_digit())
        && let Ok(c) = first.parse()
    {
        code = c;
        text = words.next().unwrap_or("");
        enhanced = format!("{}.7.1", first.as_bytes()[0] as char);
    }
    let mut words = text.splitn(2, ' ');
    let first = words.next().unwrap_or("");
    let parts: Vec<&str> = first.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && (parts[0] == "4" || parts[0] == "5")
    {
        enhanced = first.to_string();
        text = words.next().unwrap_or("");
    }
    let text = if text.is_empty() {
        "message content rejected".to_string()
    } else {
        text.to_string()
    };
    CleanupError::Rejected {
        code,
        enhanced,
        text,
    }
}

/// `field-name ":"`: printable ASCII except colon and space (RFC 5322 §3.6.8).
fn is_header_line(line: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', line) else {
        return false;
    };
    let name = &line[..colon];
    let name = match name.iter().rposition(|b| !matches!(b, b' ' | b'\t')) {
        Some(end) => &name[..=end],
        None => return false,
    };
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

/// Replaces CR, LF, NUL and other control characters (TAB kept) by spaces.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// `20261121025303`: the time part of the Message-Id cleanup adds, as Postfix does.
fn compact_date(t: SystemTime) -> String {
    let c = CivilTime::from_system_time(t);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Runs the whole pass over a message held in memory.
///
/// # Errors
///
/// [`CleanupError`] when the message is refused.
pub fn cleanup_message(
    params: &Params,
    info: MessageInfo,
    message: &[u8],
) -> Result<(Vec<u8>, Verdict), CleanupError> {
    let mut c = HeaderCleanup::new(params, info);
    c.handle_input(message)?;
    let mut out = c.take_output();
    let (rest, verdict) = c.finish()?;
    out.extend_from_slice(&rest);
    Ok((out, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Maps, RegexpTable, Table};
    use std::path::Path;
    use std::time::{Duration, UNIX_EPOCH};

    fn info() -> MessageInfo {
        MessageInfo {
            sender: ReversePath::Mailbox("joe@example.org".parse().unwrap()),
            arrival: UNIX_EPOCH + Duration::from_secs(1_795_229_583),
            queue_id: "4XyZ".into(),
        }
    }

    fn run(p: &Params, msg: &str) -> Result<(String, Verdict), CleanupError> {
        cleanup_message(p, info(), msg.as_bytes()).map(|(o, v)| (String::from_utf8(o).unwrap(), v))
    }

    #[test]
    fn date_format() {
        assert_eq!(
            rfc5322_date(info().arrival),
            "Sat, 21 Nov 2026 02:53:03 +0000"
        );
        assert_eq!(compact_date(info().arrival), "20261121025303");
    }

    #[test]
    fn adds_missing_and_removes_hidden() {
        let p = Params::new("mail.example.com");
        let (out, _) = run(
            &p,
            "Subject: hi\r\nBcc: secret@x\r\n  folded\r\nReturn-Path: <x@y>\r\nContent-Length: 3\r\nResent-Bcc: z@y\r\n\r\nBcc: in body stays\r\n",
        )
        .unwrap();
        assert_eq!(
            out,
            "Subject: hi\r\nDate: Sat, 21 Nov 2026 02:53:03 +0000\r\nMessage-Id: <20261121025303.4XyZ@mail.example.com>\r\nFrom: <joe@example.org>\r\n\r\nBcc: in body stays\r\n"
        );
        let (out, _) = run(&p, "From: a@b\nDate: x\nMessage-ID: <m@x>\n\nbody\n").unwrap();
        assert_eq!(out, "From: a@b\nDate: x\nMessage-ID: <m@x>\n\nbody\n");
    }

    #[test]
    fn streaming_any_split_gives_the_same_output() {
        let p = Params::new("mail.example.com");
        let msg = b"Subject: a\r\n b\r\nBcc: x\r\nFrom: f@x\r\nDate: d\r\nMessage-Id: <i@x>\r\n\r\nbody\r\n.\r\n";
        let whole = cleanup_message(&p, info(), msg).unwrap();
        for split in 0..msg.len() {
            let mut c = HeaderCleanup::new(&p, info());
            c.handle_input(&msg[..split]).unwrap();
            c.handle_input(&msg[split..]).unwrap();
            let mut out = c.take_output();
            let (rest, v) = c.finish().unwrap();
            out.extend_from_slice(&rest);
            assert_eq!((out, v), whole, "split at {split}");
        }
    }

    #[test]
    fn hop_count() {
        let p = Params::new("mail.example.com");
        let many = "Received: from x\r\n".repeat(50) + "\r\n";
        let e = run(&p, &many).unwrap_err();
        assert_eq!(e.to_string(), "554 5.4.0 too many hops");
        let fewer = "Received: from x\r\n".repeat(49) + "\r\n";
        assert_eq!(run(&p, &fewer).unwrap().1.received, 49);
    }

    #[test]
    fn header_checks_actions() {
        let mut p = Params::new("mail.example.com");
        let rules = "/^Subject: .*viagra/ REJECT 5.7.1 spam is not welcome\n/^Subject: warn/ WARN looked odd\n/^X-Drop:/ IGNORE\n/^X-Old: (.*)/ REPLACE X-New: $1\n/^X-Tag:/ PREPEND X-Seen: yes\n/^X-Hold:/ HOLD held for review\n/^X-Discard:/ DISCARD bye\n/^X-Redirect:/ REDIRECT admin@example.com\n/^X-Multi:.*second/ IGNORE\n";
        p.header_checks = Maps::from(Table::Regexp(
            RegexpTable::parse(Path::new("header_checks"), rules).unwrap(),
        ));
        let e = run(&p, "Subject: cheap VIAGRA\r\n\r\n").unwrap_err();
        assert_eq!(e.to_string(), "550 5.7.1 spam is not welcome");
        let (out, v) = run(
            &p,
            "From: a@b\r\nDate: d\r\nMessage-Id: <m@x>\r\nSubject: warn me\r\nX-Drop: 1\r\nX-Old: value\r\nX-Tag: t\r\nX-Hold: h\r\nX-Discard: d\r\nX-Redirect: r\r\nX-Multi: first\r\n second\r\n\r\nbody\r\n",
        )
        .unwrap();
        assert_eq!(
            out,
            "From: a@b\r\nDate: d\r\nMessage-Id: <m@x>\r\nSubject: warn me\r\nX-New: value\r\nX-Seen: yes\r\nX-Tag: t\r\nX-Hold: h\r\nX-Discard: d\r\nX-Redirect: r\r\n\r\nbody\r\n"
        );
        assert_eq!(v.hold.as_deref(), Some("held for review"));
        assert_eq!(v.discard.as_deref(), Some("bye"));
        assert_eq!(
            v.redirect.map(|m| m.to_string()).as_deref(),
            Some("admin@example.com")
        );
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn long_headers_are_truncated_alone() {
        let mut p = Params::new("mail.example.com");
        p.header_size_limit = 100;
        let long = format!("X-Long: {}\r\n", "a".repeat(150));
        let msg = format!(
            "{long}X-Next: {}\r\nX-Folded: a\r\n {}\r\n {}\r\n\r\nbody\r\n",
            "b".repeat(80),
            "c".repeat(60),
            "d".repeat(60)
        );
        let (out, v) = run(&p, &msg).unwrap();
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(
            lines[0].len(),
            98,
            "truncated to the limit with its line end"
        );
        assert_eq!(
            lines[1],
            format!("X-Next: {}", "b".repeat(80)),
            "the next header is whole"
        );
        assert_eq!(lines[2], "X-Folded: a");
        assert_eq!(lines[3].len(), 61);
        assert!(
            lines[4].starts_with("Date: "),
            "third line dropped: {lines:?}"
        );
        assert!(out.ends_with("\r\n\r\nbody\r\n"));
        assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
        for split in 0..msg.len() {
            let mut c = HeaderCleanup::new(&p, info());
            c.handle_input(&msg.as_bytes()[..split]).unwrap();
            c.handle_input(&msg.as_bytes()[split..]).unwrap();
            let mut o = c.take_output();
            o.extend_from_slice(&c.finish().unwrap().0);
            assert_eq!(String::from_utf8(o).unwrap(), out, "split at {split}");
        }
    }

    #[test]
    fn non_header_line_starts_the_body() {
        let p = Params::new("mail.example.com");
        let (out, _) = run(
            &p,
            "From: a@b\nDate: d\nMessage-Id: <m@x>\nthis is body\nmore\n",
        )
        .unwrap();
        assert_eq!(
            out,
            "From: a@b\nDate: d\nMessage-Id: <m@x>\n\nthis is body\nmore\n"
        );
    }
}
