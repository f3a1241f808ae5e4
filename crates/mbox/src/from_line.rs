//! The From_ line that opens every message of an mbox: `From sender asctime-date`.
//!
//! RFC 4155, Appendix A, describes the separator that the default mbox format uses:
//!
//! > The exact character sequence of "From"; a single Space character (0x20); the email address
//! > of the message sender (as obtained from the message envelope or other authoritative
//! > source), conformant with the "addr-spec" syntax from RFC 2822; a single Space character; a
//! > timestamp indicating the UTC date and time when the message was originally received,
//! > conformant with the syntax of the traditional UNIX 'ctime' output sans timezone (note that
//! > the use of UTC precludes the need for a timezone indicator); an end-of-line marker.
//!
//! The asctime/ctime form is `Www Mmm dd hh:mm:ss yyyy` (C's `"%.3s %.3s%3d %.2d:%.2d:%.2d %d"`):
//! the day is padded with a space, not a zero (`Sat Jan  3 01:05:34 1996`).
//!
//! # What the parser accepts (tolerance)
//!
//! Real files hold many variations, and the parser takes them all as long as a date can be found:
//!
//! - a sender with spaces (a quoted local part such as `"a b"@example.org`): the date is found
//!   by its shape, and everything between `From ` and the date is the sender;
//! - no sender at all (`From  Sat Jan  3 01:05:34 1996`, as qmail's mbox(5) shows): the sender
//!   becomes `MAILER-DAEMON`;
//! - tabs or several spaces between fields, a day with or without its padding;
//! - a time without seconds (`01:05`), two-digit years (70-99 mean 19xx, 00-69 mean 20xx);
//! - up to two timezone words between the time and the year (`+0000`, `CET DST`);
//! - anything after the year (qmail's `moreinfo`, UUCP's `remote from host`), ignored;
//! - a line end of `\n` or `\r\n`.
//!
//! The weekday is read but not checked against the date; a written line always carries the
//! weekday computed from the date. A line that starts with `From ` but holds no such date is not
//! a From_ line, and the reader keeps it in the body (that is what mutt does, and it is what
//! stops a sloppy writer's unescaped "From here on..." line from splitting a message).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest From_ line accepted, line end included.
///
/// RFC 5322's line limit (998 characters plus CRLF) holds an envelope sender of any real length
/// plus the date; a longer line that begins with `From ` is body text, not a separator.
pub const MAX_FROM_LINE: usize = 1000;

/// The longest envelope sender written into a From_ line (RFC 5321's path limit is 256; 998
/// leaves room for the odd real-world value without letting a line grow without bound).
pub const MAX_SENDER: usize = 900;

/// Why bytes are not a valid From_ line, a sender or a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FromLineError {
    /// The line does not start with the five bytes `From `.
    #[error("a From_ line must start with \"From \"")]
    NoFromPrefix,
    /// The line is longer than [`MAX_FROM_LINE`].
    #[error("a From_ line is at most {MAX_FROM_LINE} bytes")]
    TooLong,
    /// No `Www Mmm dd hh:mm[:ss] [zone] yyyy` date was found after the sender.
    #[error("no asctime date (Www Mmm dd hh:mm:ss yyyy) in the From_ line")]
    NoDate,
    /// A line end or other control byte inside the line.
    #[error("control byte inside a From_ line")]
    ControlByte,
    /// The sender is longer than [`MAX_SENDER`] bytes.
    #[error("envelope sender longer than {MAX_SENDER} bytes")]
    SenderTooLong,
    /// The sender is empty or begins or ends with white space.
    #[error("envelope sender is empty or has leading or trailing white space")]
    SenderBlank,
    /// A date field is out of range.
    #[error("date out of range: {0}")]
    DateOutOfRange(&'static str),
}

/// The envelope sender of a From_ line.
///
/// Invariant: 1 to [`MAX_SENDER`] bytes, no control bytes (so no line end), no leading or
/// trailing white space. Inner spaces are allowed only because real files hold them (quoted
/// local parts); [`Sender::from_reverse_path`] never produces them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sender(Vec<u8>);

impl Sender {
    /// The sender written for a null reverse-path (`MAIL FROM:<>`), as Postfix and qmail do.
    pub const MAILER_DAEMON: &'static str = "MAILER-DAEMON";

    /// Checks `bytes` against the invariant.
    ///
    /// # Errors
    ///
    /// [`FromLineError::SenderBlank`], [`FromLineError::SenderTooLong`] or
    /// [`FromLineError::ControlByte`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, FromLineError> {
        let bytes = bytes.into();
        if bytes.is_empty()
            || bytes.first().is_some_and(u8::is_ascii_whitespace)
            || bytes.last().is_some_and(u8::is_ascii_whitespace)
        {
            return Err(FromLineError::SenderBlank);
        }
        if bytes.len() > MAX_SENDER {
            return Err(FromLineError::SenderTooLong);
        }
        if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(FromLineError::ControlByte);
        }
        Ok(Self(bytes))
    }

    /// The sender to write for an SMTP reverse-path (without its angle brackets).
    ///
    /// qmail's mbox(5): "If the envelope sender is empty (i.e., if this is a bounce message),
    /// the program uses MAILER-DAEMON instead. If the envelope sender contains spaces, tabs, or
    /// newlines, the program replaces them with hyphens." Control bytes are replaced the same
    /// way, so the result is always one word.
    ///
    /// # Errors
    ///
    /// [`FromLineError::SenderTooLong`] when the reverse-path is longer than [`MAX_SENDER`].
    pub fn from_reverse_path(reverse_path: &[u8]) -> Result<Self, FromLineError> {
        if reverse_path.is_empty() {
            return Ok(Self::mailer_daemon());
        }
        if reverse_path.len() > MAX_SENDER {
            return Err(FromLineError::SenderTooLong);
        }
        Ok(Self(
            reverse_path
                .iter()
                .map(|&b| if b <= b' ' || b == 0x7f { b'-' } else { b })
                .collect(),
        ))
    }

    /// `MAILER-DAEMON`, the sender of bounces.
    pub fn mailer_daemon() -> Self {
        Self(Self::MAILER_DAEMON.as_bytes().to_vec())
    }

    /// The sender's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sender({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date and time in UTC as a From_ line carries it (asctime, no zone).
///
/// Invariant: year 1000-9999 (four digits, so asctime's width holds), month 1-12, day valid for
/// the month, hour 0-23, minute 0-59, second 0-60 (a leap second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsctimeDate {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl AsctimeDate {
    /// Checks the fields against the invariant.
    ///
    /// # Errors
    ///
    /// [`FromLineError::DateOutOfRange`] naming the field.
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Result<Self, FromLineError> {
        if !(1000..=9999).contains(&year) {
            return Err(FromLineError::DateOutOfRange("year"));
        }
        if !(1..=12).contains(&month) {
            return Err(FromLineError::DateOutOfRange("month"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(FromLineError::DateOutOfRange("day"));
        }
        if hour > 23 {
            return Err(FromLineError::DateOutOfRange("hour"));
        }
        if minute > 59 {
            return Err(FromLineError::DateOutOfRange("minute"));
        }
        if second > 60 {
            return Err(FromLineError::DateOutOfRange("second"));
        }
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The date of `unix_seconds` seconds after 1970-01-01 00:00:00 UTC.
    ///
    /// # Errors
    ///
    /// [`FromLineError::DateOutOfRange`] after the year 9999.
    pub fn from_unix(unix_seconds: u64) -> Result<Self, FromLineError> {
        let secs =
            i64::try_from(unix_seconds).map_err(|_| FromLineError::DateOutOfRange("year"))?;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let year = u16::try_from(y).map_err(|_| FromLineError::DateOutOfRange("year"))?;
        // The casts below are of values already bounded by the arithmetic (month 1-12,
        // day 1-31, hour < 24, minute and second < 60).
        Self::new(
            year,
            m as u8,
            d as u8,
            (rem / 3600) as u8,
            (rem / 60 % 60) as u8,
            (rem % 60) as u8,
        )
    }

    /// The current time, for a From_ line written now.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::from_unix(secs).unwrap_or(Self {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        })
    }

    /// Seconds since 1970-01-01 00:00:00 UTC (negative before it).
    pub fn unix_seconds(&self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// Day of the week, 0 for Sunday.
    pub fn weekday(&self) -> u8 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        // 1970-01-01 was a Thursday (4).
        (days + 4).rem_euclid(7) as u8
    }

    /// The year (1000-9999).
    pub fn year(&self) -> u16 {
        self.year
    }
    /// The month (1-12).
    pub fn month(&self) -> u8 {
        self.month
    }
    /// The day of the month (1-31).
    pub fn day(&self) -> u8 {
        self.day
    }
    /// The hour (0-23).
    pub fn hour(&self) -> u8 {
        self.hour
    }
    /// The minute (0-59).
    pub fn minute(&self) -> u8 {
        self.minute
    }
    /// The second (0-60).
    pub fn second(&self) -> u8 {
        self.second
    }

    /// Parses the date at the start of `tokens` (white-space separated words of a From_ line).
    /// Returns the date and the number of tokens it used.
    fn parse_tokens(tokens: &[&[u8]]) -> Option<(Self, usize)> {
        let [weekday, month, day, time, rest @ ..] = tokens else {
            return None;
        };
        WEEKDAYS
            .iter()
            .position(|w| w.as_bytes().eq_ignore_ascii_case(weekday))?;
        let month = MONTHS
            .iter()
            .position(|m| m.as_bytes().eq_ignore_ascii_case(month))?;
        let day = parse_number(day, 1, 2)?;
        let mut parts = time.split(|&b| b == b':');
        let hour = parse_number(parts.next()?, 1, 2)?;
        let minute = parse_number(parts.next()?, 1, 2)?;
        let second = match parts.next() {
            Some(s) => parse_number(s, 1, 2)?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        // Up to two zone words ("+0000", "CET DST") may stand before the year.
        for (skip, candidate) in rest.iter().enumerate().take(3) {
            if let Some(year) = parse_year(candidate) {
                let date = Self::new(
                    year,
                    month as u8 + 1,
                    u8::try_from(day).ok()?,
                    u8::try_from(hour).ok()?,
                    u8::try_from(minute).ok()?,
                    u8::try_from(second).ok()?,
                )
                .ok()?;
                return Some((date, 4 + skip + 1));
            }
            if !is_zone_word(candidate) {
                return None;
            }
        }
        None
    }
}

fn parse_number(bytes: &[u8], min_len: usize, max_len: usize) -> Option<u32> {
    if bytes.len() < min_len || bytes.len() > max_len || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')),
    )
}

fn parse_year(bytes: &[u8]) -> Option<u16> {
    let n = parse_number(bytes, 2, 4)?;
    let year = match bytes.len() {
        // "two-digit years greater than or equal to 70 should be interpreted as the years
        // 1970+, while two-digit years less than 70 should be interpreted as the years
        // 2000-2069" (the mbox description shipped with many Unix mailers).
        2 if n >= 70 => 1900 + n,
        2 => 2000 + n,
        4 => n,
        _ => return None,
    };
    u16::try_from(year).ok()
}

fn is_zone_word(bytes: &[u8]) -> bool {
    match bytes {
        [b'+' | b'-', digits @ ..] => digits.len() == 4 && digits.iter().all(u8::is_ascii_digit),
        _ => (1..=5).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_alphabetic),
    }
}

impl fmt::Display for AsctimeDate {
    /// asctime: `Www Mmm dd hh:mm:ss yyyy`, the day padded with a space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:>2} {:02}:{:02}:{:02} {}",
            WEEKDAYS[usize::from(self.weekday())],
            MONTHS[usize::from(self.month - 1)],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }
}

/// A parsed From_ line: envelope sender and delivery date.
///
/// Parsing drops any zone words and trailing `moreinfo`; a rewrite copies the original line
/// byte for byte, so nothing is lost on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FromLine {
    sender: Sender,
    date: AsctimeDate,
}

impl FromLine {
    /// A From_ line for `sender` at `date`.
    pub fn new(sender: Sender, date: AsctimeDate) -> Self {
        Self { sender, date }
    }

    /// A From_ line for an SMTP reverse-path, dated now (see [`Sender::from_reverse_path`]).
    ///
    /// # Errors
    ///
    /// [`FromLineError::SenderTooLong`].
    pub fn now(reverse_path: &[u8]) -> Result<Self, FromLineError> {
        Ok(Self::new(
            Sender::from_reverse_path(reverse_path)?,
            AsctimeDate::now(),
        ))
    }

    /// The envelope sender.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The delivery date.
    pub fn date(&self) -> &AsctimeDate {
        &self.date
    }

    /// Parses one line, with or without its line end (`\n` or `\r\n`). See the module
    /// documentation for what is accepted.
    ///
    /// # Errors
    ///
    /// [`FromLineError`] saying what is missing.
    ///
    /// # Examples
    ///
    /// ```
    /// use mailroom_mbox::FromLine;
    /// let line = FromLine::parse(b"From alice@example.org Wed Jan  3 01:05:34 1996\n").unwrap();
    /// assert_eq!(line.sender().as_bytes(), b"alice@example.org");
    /// assert_eq!(line.to_string(), "From alice@example.org Wed Jan  3 01:05:34 1996");
    /// ```
    pub fn parse(line: &[u8]) -> Result<Self, FromLineError> {
        if line.len() > MAX_FROM_LINE {
            return Err(FromLineError::TooLong);
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = line
            .strip_prefix(b"From ")
            .ok_or(FromLineError::NoFromPrefix)?;
        if rest.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(FromLineError::ControlByte);
        }
        // Tokens with their start offsets in `rest`, so the sender keeps its inner spacing.
        let mut tokens: Vec<(usize, &[u8])> = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            if rest[i] == b' ' || rest[i] == b'\t' {
                i += 1;
                continue;
            }
            let start = i;
            while i < rest.len() && rest[i] != b' ' && rest[i] != b'\t' {
                i += 1;
            }
            tokens.push((start, &rest[start..i]));
        }
        let words: Vec<&[u8]> = tokens.iter().map(|&(_, t)| t).collect();
        // The date is the first place its shape fits; the sender is what stands before it.
        for at in 0..words.len() {
            if let Some((date, _)) = AsctimeDate::parse_tokens(&words[at..]) {
                let sender = if at == 0 {
                    Sender::mailer_daemon()
                } else {
                    let first = tokens[0].0;
                    let (last_start, last) = tokens[at - 1];
                    Sender::new(&rest[first..last_start + last.len()])?
                };
                return Ok(Self { sender, date });
            }
        }
        Err(FromLineError::NoDate)
    }

    /// Whether `line` (up to and including its `\n`, or the end of input) is a From_ line.
    pub fn is_from_line(line: &[u8]) -> bool {
        line.starts_with(b"From ") && Self::parse(line).is_ok()
    }

    /// The line as written, without its line end: `From sender Www Mmm dd hh:mm:ss yyyy`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.sender.0.len() + 30);
        out.extend_from_slice(b"From ");
        out.extend_from_slice(&self.sender.0);
        out.push(b' ');
        out.extend_from_slice(self.date.to_string().as_bytes());
        out
    }
}

impl fmt::Display for FromLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "From {} {}", self.sender, self.date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> AsctimeDate {
        AsctimeDate::new(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn known_answers() {
        // (input, sender, date)
        let table: &[(&[u8], &str, AsctimeDate)] = &[
            // qmail mbox(5), RFC 4155-style line.
            (
                b"From djb@silverton.berkeley.edu Sat Jan  3 01:05:34 1996\n",
                "djb@silverton.berkeley.edu",
                date(1996, 1, 3, 1, 5, 34),
            ),
            // Python's mailbox module (time.asctime) and Postfix local(8).
            (
                b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011",
                "MAILER-DAEMON",
                date(2011, 7, 8, 12, 8, 34),
            ),
            // No sender (qmail's own example).
            (
                b"From Sat Jan  3 01:05:34 1996\n",
                "MAILER-DAEMON",
                date(1996, 1, 3, 1, 5, 34),
            ),
            // CRLF, zone before the year, unpadded day.
            (
                b"From a@b Fri Jun 23 02:56:55 +0000 2000\r\n",
                "a@b",
                date(2000, 6, 23, 2, 56, 55),
            ),
            // Two zone words, no seconds, two-digit year, moreinfo after.
            (
                b"From a@b Fri Jun 23 02:56 CET DST 99 remote from x\n",
                "a@b",
                date(1999, 6, 23, 2, 56, 0),
            ),
            // Quoted local part with a space.
            (
                b"From \"a b\"@example.org  Mon Feb 29 23:59:60 2000\n",
                "\"a b\"@example.org",
                date(2000, 2, 29, 23, 59, 60),
            ),
            // Eudora and Netscape placeholders.
            (
                b"From ???@??? Tue Mar  1 00:00:00 2005\n",
                "???@???",
                date(2005, 3, 1, 0, 0, 0),
            ),
            (
                b"From - Tue Mar  1 00:00:00 2005\n",
                "-",
                date(2005, 3, 1, 0, 0, 0),
            ),
        ];
        for (input, sender, expected) in table {
            let line = FromLine::parse(input)
                .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)));
            assert_eq!(line.sender().as_bytes(), sender.as_bytes());
            assert_eq!(line.date(), expected);
            // encode -> decode -> same value
            assert_eq!(FromLine::parse(&line.to_bytes()).unwrap(), line);
        }
    }

    #[test]
    fn rejects() {
        let table: &[(&[u8], FromLineError)] = &[
            (b"From here on, we go\n", FromLineError::NoDate),
            (
                b"from a@b Sat Jan  3 01:05:34 1996",
                FromLineError::NoFromPrefix,
            ),
            (
                b">From a@b Sat Jan  3 01:05:34 1996",
                FromLineError::NoFromPrefix,
            ),
            (b"From a@b Sat Jan 32 01:05:34 1996", FromLineError::NoDate),
            (b"From a@b Sat Feb 29 01:05:34 1900", FromLineError::NoDate),
            (b"From a@b Sat Jan  3 24:05:34 1996", FromLineError::NoDate),
            (b"From a@b Sat Jan  3 01:05:34", FromLineError::NoDate),
            (
                b"From a\0b Sat Jan  3 01:05:34 1996",
                FromLineError::ControlByte,
            ),
            (
                b"From a@b Sat Jan  3 01:05:34 1996\rx",
                FromLineError::ControlByte,
            ),
        ];
        for (input, error) in table {
            assert_eq!(
                FromLine::parse(input).as_ref(),
                Err(error),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let long = [b"From ".as_slice(), &[b'a'; MAX_FROM_LINE]].concat();
        assert_eq!(FromLine::parse(&long), Err(FromLineError::TooLong));
    }

    #[test]
    fn writes_asctime() {
        let line = FromLine::new(Sender::new("a@b").unwrap(), date(2026, 11, 1, 2, 3, 4));
        assert_eq!(line.to_string(), "From a@b Sun Nov  1 02:03:04 2026");
        assert_eq!(line.to_bytes(), line.to_string().into_bytes());
    }

    #[test]
    fn unix_time_round_trip() {
        for secs in [
            0u64,
            951_782_400,
            1_700_000_000,
            4_102_444_799,
            253_402_300_799,
        ] {
            let d = AsctimeDate::from_unix(secs).unwrap();
            assert_eq!(d.unix_seconds(), secs as i64, "{d}");
        }
        assert_eq!(
            AsctimeDate::from_unix(0).unwrap().to_string(),
            "Thu Jan  1 00:00:00 1970"
        );
        assert!(AsctimeDate::from_unix(253_402_300_800).is_err());
    }

    #[test]
    fn sender_from_reverse_path() {
        assert_eq!(
            Sender::from_reverse_path(b"").unwrap().as_bytes(),
            b"MAILER-DAEMON"
        );
        assert_eq!(
            Sender::from_reverse_path(b"a b\tc\nd").unwrap().as_bytes(),
            b"a-b-c-d"
        );
        assert!(Sender::from_reverse_path(&[b'a'; MAX_SENDER + 1]).is_err());
        assert!(Sender::new(" a").is_err());
        assert!(Sender::new("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut line = b"From ".to_vec();
            line.extend_from_slice(&bytes);
            let _ = FromLine::parse(&line);
        }

        #[test]
        fn written_lines_parse_back(
            sender in "[!-~]{1,60}",
            secs in 0u64..253_402_300_799,
        ) {
            let line = FromLine::new(
                Sender::from_reverse_path(sender.as_bytes()).unwrap(),
                AsctimeDate::from_unix(secs).unwrap(),
            );
            proptest::prop_assert_eq!(FromLine::parse(&line.to_bytes()).unwrap(), line);
        }
    }
}
