//! Flags (RFC 9051 section 2.3.2) and dates (`date-time`, `date`).

use super::core::{Atom, ValidationError};

/// `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword /
/// flag-extension` (RFC 9051 section 9).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Seen`.
    Seen,
    /// `\Draft`.
    Draft,
    /// `flag-extension = "\" atom`, such as `\Recent` (IMAP4rev1) or a future system flag.
    Extension(Atom),
    /// `flag-keyword = atom` (`$Forwarded`, `$Junk`, ...).
    Keyword(Atom),
}

impl Flag {
    /// The flag for `\name` (system flags matched case-insensitively).
    pub fn system(name: Atom) -> Flag {
        match name.as_str().to_ascii_lowercase().as_str() {
            "answered" => Flag::Answered,
            "flagged" => Flag::Flagged,
            "deleted" => Flag::Deleted,
            "seen" => Flag::Seen,
            "draft" => Flag::Draft,
            _ => Flag::Extension(name),
        }
    }
    /// Parses `\Seen` or `$Junk`.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when the name is not an atom.
    pub fn parse(s: &str) -> Result<Flag, ValidationError> {
        match s.strip_prefix('\\') {
            Some(rest) => Atom::new(rest).map(Flag::system),
            None => Atom::new(s).map(Flag::Keyword),
        }
    }
    /// The flag as written on the wire.
    pub fn as_wire(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Flag::Answered => "\\Answered".into(),
            Flag::Flagged => "\\Flagged".into(),
            Flag::Deleted => "\\Deleted".into(),
            Flag::Seen => "\\Seen".into(),
            Flag::Draft => "\\Draft".into(),
            Flag::Extension(a) => format!("\\{a}").into(),
            Flag::Keyword(a) => a.as_str().into(),
        }
    }
}

/// `flag-perm = flag / "\*"` (PERMANENTFLAGS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FlagPerm {
    /// A flag.
    Flag(Flag),
    /// `\*`: clients may create new keywords.
    Any,
}

/// A mailbox attribute of a LIST response: `mbx-list-flag = "\" atom` (`\Noselect`, `\HasChildren`,
/// `\Sent`, ...), kept without its backslash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailboxAttr(pub Atom);

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The three-letter month name for 1..=12.
pub(crate) fn month_name(m: u8) -> &'static str {
    MONTHS
        .get(usize::from(m.saturating_sub(1)))
        .copied()
        .unwrap_or("Jan")
}
/// The month number for a three-letter name, any case.
pub(crate) fn month_number(name: &[u8]) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .map(|p| p as u8 + 1)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `date = date-text / DQUOTE date-text DQUOTE` as used by SEARCH (RFC 9051 section 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A calendar date.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when the day does not exist or the year has not four digits.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, ValidationError> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || year > 9999
        {
            return Err(ValidationError::Invalid {
                what: "date",
                detail: "no such day",
            });
        }
        Ok(Self { year, month, day })
    }
    /// Year.
    pub fn year(&self) -> u16 {
        self.year
    }
    /// Month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// Day of month.
    pub fn day(&self) -> u8 {
        self.day
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
/// (RFC 9051 section 9): an INTERNALDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    /// Offset from UTC in minutes, -5999..=5999 (`zone = ("+" / "-") 4DIGIT`).
    zone: i16,
}

impl DateTime {
    /// A date and time with its zone offset in minutes.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] when a field is out of range.
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Result<Self, ValidationError> {
        if hour > 23 || minute > 59 || second > 60 || zone_minutes.unsigned_abs() > 99 * 60 + 59 {
            return Err(ValidationError::Invalid {
                what: "date-time",
                detail: "field out of range",
            });
        }
        Ok(Self {
            date,
            hour,
            minute,
            second,
            zone: zone_minutes,
        })
    }
    /// The date.
    pub fn date(&self) -> Date {
        self.date
    }
    /// Hour, minute, second.
    pub fn time(&self) -> (u8, u8, u8) {
        (self.hour, self.minute, self.second)
    }
    /// Zone offset in minutes east of UTC.
    pub fn zone_minutes(&self) -> i16 {
        self.zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_dates_validate() {
        assert_eq!(Flag::parse("\\SEEN").unwrap(), Flag::Seen);
        assert_eq!(Flag::parse("$Junk").unwrap().as_wire(), "$Junk");
        assert!(Flag::parse("\\").is_err());
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(DateTime::new(Date::new(1996, 7, 17).unwrap(), 24, 0, 0, 0).is_err());
        assert_eq!(month_number(b"jul"), Some(7));
        assert_eq!(month_name(12), "Dec");
    }
}
