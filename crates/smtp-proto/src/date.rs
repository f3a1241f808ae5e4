//! Dates as mail writes them: the `date-time` of RFC 5322 §3.3, used in Received trace headers
//! (RFC 5321 §4.4), Date headers and DSNs. One formatter for the whole workspace.

use std::time::{SystemTime, UNIX_EPOCH};

/// A civil UTC time broken into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    /// The year (1970 and later for times after the epoch).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59 (no leap seconds: Unix time has none).
    pub second: u32,
    /// 0 (Sunday) to 6 (Saturday).
    pub weekday: u32,
}

impl CivilTime {
    /// The UTC fields of `t`; a time before the epoch counts as the epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // u64 seconds / 86400 fits an i64 for any SystemTime.
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        // Days to civil date, proleptic Gregorian (H. Hinnant, "chrono-Compatible Low-Level
        // Date Algorithms", days_from_civil's inverse).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let small = |v: i64| u32::try_from(v).unwrap_or(0);
        let small_u = |v: u64| u32::try_from(v).unwrap_or(0);
        Self {
            year,
            month: small(month),
            day: small(day),
            hour: small_u(rem / 3600),
            minute: small_u(rem / 60 % 60),
            second: small_u(rem % 60),
            // 1970-01-01 was a Thursday.
            weekday: small((days + 4).rem_euclid(7)),
        }
    }
}

impl CivilTime {
    /// `day-name` of RFC 5322 §3.3: `Mon` to `Sun`.
    pub fn weekday_name(&self) -> &'static str {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        DAYS[self.weekday as usize % 7]
    }

    /// `month` of RFC 5322 §3.3: `Jan` to `Dec`.
    pub fn month_name(&self) -> &'static str {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        MONTHS[(self.month as usize + 11) % 12]
    }
}

/// `Sat, 21 Nov 2026 02:53:03 +0000`: RFC 5322 §3.3 `date-time` in UTC.
pub fn rfc5322_date(t: SystemTime) -> String {
    let c = CivilTime::from_system_time(t);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        c.weekday_name(),
        c.day,
        c.month_name(),
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let at = |s: u64| rfc5322_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // `date -u -d @951782400`: the leap day of a year divisible by 400.
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(at(1_795_229_583), "Sat, 21 Nov 2026 02:53:03 +0000");
        assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000");
        assert_eq!(
            rfc5322_date(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
    }
}
