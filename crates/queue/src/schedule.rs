//! Time and retries: the injectable clock and Postfix's back-off.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Where the queue gets the time from; tests inject a [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Postfix's retry parameters, with Postfix's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// `minimal_backoff_time` (300 s): the shortest wait before a deferred message is retried.
    pub minimal_backoff_time: Duration,
    /// `maximal_backoff_time` (4000 s): the longest wait.
    pub maximal_backoff_time: Duration,
    /// `maximal_queue_lifetime` (5 days): after this, a deferred message bounces.
    pub maximal_queue_lifetime: Duration,
    /// `bounce_queue_lifetime` (5 days): the same for a bounce (null reverse-path), which is
    /// then dropped, never bounced.
    pub bounce_queue_lifetime: Duration,
    /// Up to this many per mille of the wait are added at random, so messages deferred
    /// together are not all retried at the same second (100 = up to 10%).
    pub jitter_per_mille: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            minimal_backoff_time: Duration::from_secs(300),
            maximal_backoff_time: Duration::from_secs(4000),
            maximal_queue_lifetime: Duration::from_secs(5 * 86400),
            bounce_queue_lifetime: Duration::from_secs(5 * 86400),
            jitter_per_mille: 100,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt of a message that has been queued for `age`.
    ///
    /// As Postfix's queue manager does it (`qmgr_active.c`): the wait is the message's age,
    /// clamped between `minimal_backoff_time` and `maximal_backoff_time`, so retries space out
    /// exponentially while the message is young (each wait about doubles its age) and settle at
    /// the maximum. `seed` picks the jitter.
    pub fn delay(&self, age: Duration, seed: u64) -> Duration {
        let min = self.minimal_backoff_time;
        let max = self.maximal_backoff_time.max(min);
        let base = age.clamp(min, max);
        let per_mille = u64::from(self.jitter_per_mille);
        if per_mille == 0 {
            return base;
        }
        let roll = mix(seed) % (per_mille + 1);
        let extra_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX) / 1000 * roll;
        base + Duration::from_millis(extra_ms)
    }
}

/// A well-mixed 64-bit value from `x` (splitmix64's finaliser).
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_backoff_without_jitter() {
        let b = Backoff {
            jitter_per_mille: 0,
            ..Backoff::default()
        };
        assert_eq!(b.delay(Duration::ZERO, 1), Duration::from_secs(300));
        assert_eq!(
            b.delay(Duration::from_secs(299), 1),
            Duration::from_secs(300)
        );
        assert_eq!(
            b.delay(Duration::from_secs(1000), 1),
            Duration::from_secs(1000)
        );
        assert_eq!(
            b.delay(Duration::from_secs(4000), 1),
            Duration::from_secs(4000)
        );
        assert_eq!(
            b.delay(Duration::from_secs(86400), 1),
            Duration::from_secs(4000)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let b = Backoff::default();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200 {
            let d = b.delay(Duration::from_secs(1000), seed);
            assert!(
                d >= Duration::from_secs(1000) && d <= Duration::from_secs(1100),
                "{d:?}"
            );
            seen.insert(d);
        }
        assert!(seen.len() > 50);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(SystemTime::UNIX_EPOCH);
        let c2 = c.clone();
        c.advance(Duration::from_secs(5));
        assert_eq!(c2.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(5));
    }
}
