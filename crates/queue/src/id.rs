//! Queue IDs: unique, sorted by arrival, safe as file names.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A queue ID, such as `0006250F3A2C1D00`.
///
/// The value is the arrival time in microseconds since the Unix epoch, shifted left by 8 bits,
/// plus a counter for IDs taken in the same microsecond. Written as 16 upper-case hexadecimal
/// digits, IDs sort by arrival both as numbers and as strings, and are safe file names on every
/// file system (no `/`, no dot, no case clash). Postfix's long queue IDs have the same purpose.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(u64);

impl QueueId {
    /// The ID with this numeric value.
    pub fn from_u64(value: u64) -> Self {
        Self(value)
    }

    /// The numeric value.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The arrival time encoded in the ID (to the microsecond).
    pub fn time(self) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::from_micros(self.0 >> 8)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueId({self})")
    }
}

/// The error of parsing a [`QueueId`]: not 16 upper-case hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a queue id is 16 upper-case hexadecimal digits")]
pub struct ParseQueueIdError;

impl FromStr for QueueId {
    type Err = ParseQueueIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            return Err(ParseQueueIdError);
        }
        u64::from_str_radix(s, 16)
            .map(QueueId)
            .map_err(|_| ParseQueueIdError)
    }
}

/// Hands out strictly increasing IDs, even when the clock stands still or steps back.
#[derive(Debug, Default)]
pub(crate) struct IdGenerator {
    last: AtomicU64,
}

impl IdGenerator {
    /// Makes every later ID larger than `id` (after recovery, from the largest ID seen).
    pub(crate) fn observe(&self, id: QueueId) {
        self.last.fetch_max(id.0, Ordering::SeqCst);
    }

    /// A new ID for a message arriving at `now`.
    pub(crate) fn next(&self, now: SystemTime) -> QueueId {
        let micros = now
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX >> 8))
            .unwrap_or(0);
        let base = micros.min(u64::MAX >> 8) << 8;
        let mut last = self.last.load(Ordering::SeqCst);
        loop {
            let next = base.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return QueueId(next),
                Err(actual) => last = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_increase_and_sort_as_strings() {
        let g = IdGenerator::default();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = g.next(t);
        let b = g.next(t);
        let c = g.next(t - Duration::from_secs(10));
        let d = g.next(t + Duration::from_secs(1));
        assert!(a < b && b < c && c < d);
        let mut s = [d, c, a, b].map(|i| i.to_string());
        s.sort();
        assert_eq!(s, [a, b, c, d].map(|i| i.to_string()));
        assert_eq!(a.time(), t);
    }

    #[test]
    fn parse_round_trip_and_rejects() {
        let id = QueueId::from_u64(0x0006_250F_3A2C_1D00);
        assert_eq!(id.to_string(), "0006250F3A2C1D00");
        assert_eq!("0006250F3A2C1D00".parse::<QueueId>(), Ok(id));
        for bad in [
            "",
            "0006250f3a2c1d00",
            "0006250F3A2C1D0",
            "../../etc/passwd",
            "0006250F3A2C1D0G",
        ] {
            assert!(bad.parse::<QueueId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn observe_moves_past_recovered_ids() {
        let g = IdGenerator::default();
        g.observe(QueueId::from_u64(u64::MAX >> 1));
        assert!(g.next(UNIX_EPOCH).as_u64() > u64::MAX >> 1);
    }
}
