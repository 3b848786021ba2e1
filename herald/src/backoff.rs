//! Exponential backoff with jitter, for retries (`retry.backoff.ms` /
//! `retry.backoff.max.ms`, KIP-580) and reconnects (`reconnect.backoff.ms` /
//! `reconnect.backoff.max.ms`, KIP-144): the first wait after a failure, doubled
//! for each further failure in a row, capped, and spread ±20% so that clients
//! that failed together do not retry together (Java's `ExponentialBackoff` with
//! its default jitter of 0.2).

use std::time::Duration;

/// An exponential backoff policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    initial: Duration,
    cap: Duration,
}

impl Backoff {
    /// Waits `initial` after the first failure, at most `cap` ever.
    pub(crate) fn new(initial: Duration, cap: Duration) -> Backoff {
        Backoff { initial, cap }
    }

    /// The wait after `failures` failures in a row (0 and 1 both give the first
    /// wait), before jitter.
    pub(crate) fn base(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << doublings).min(self.cap)
    }

    /// The wait after `failures` failures in a row, with ±20% jitter.
    pub(crate) fn after(&self, failures: u32) -> Duration {
        self.base(failures).mul_f64(0.8 + fastrand::f64() * 0.4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failure_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<u128> = (1..=6).map(|n| b.base(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.base(0), Duration::from_millis(100));
        assert_eq!(b.base(u32::MAX), Duration::from_millis(1000), "no overflow");
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for n in 1..200 {
            let w = b.after(n % 7).as_secs_f64();
            let base = b.base(n % 7).as_secs_f64();
            assert!(w >= base * 0.8 - 1e-9 && w <= base * 1.2 + 1e-9, "{w} vs {base}");
        }
    }

    #[test]
    fn a_cap_below_the_first_wait_wins() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_millis(200));
        assert_eq!(b.base(1), Duration::from_millis(200));
    }
}
