//! The wall clock for records' CreateTime, read once per record.
//!
//! `clock_gettime(CLOCK_REALTIME)` costs about 30 ns through the vDSO on the
//! virtual machines herald is benchmarked on, a tenth of a record's whole cost.
//! Reading the CPU's time-stamp counter through [`quanta`] costs about 12 ns, so
//! each thread keeps an *anchor* — the system wall clock and the counter read
//! together — and derives the time from the counter's progress since then,
//! re-anchoring on the system clock every [`REANCHOR_NS`] so that NTP slews and
//! steps are followed within that time. Where quanta finds no invariant TSC it
//! falls back to the OS clock itself, and so does this.
//!
//! The result is Kafka's millisecond timestamp; the drift between two anchors is
//! the counter's calibration error over 100 ms (well under a millisecond).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long one anchor is trusted before the system clock is read again.
const REANCHOR_NS: u64 = 100_000_000;

fn counter() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

thread_local! {
    /// (counter reading, wall clock in ns since the epoch) taken together; the
    /// counter is 0 before the first use on this thread.
    static ANCHOR: Cell<(u64, i64)> = const { Cell::new((0, 0)) };
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    let clock = counter();
    let raw = clock.raw();
    ANCHOR.with(|a| {
        let (at, wall_ns) = a.get();
        if at != 0 && raw >= at {
            let elapsed = clock.delta_as_nanos(at, raw);
            if elapsed < REANCHOR_NS {
                // elapsed < 10^8, so the cast cannot truncate.
                return (wall_ns + elapsed as i64).div_euclid(1_000_000);
            }
        }
        let wall_ns = system_now_ns();
        a.set((clock.raw().max(1), wall_ns));
        wall_ns.div_euclid(1_000_000)
    })
}

/// The system wall clock in ns since the epoch (0 before 1970, saturating in 2262).
fn system_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_ms() -> i64 {
        system_now_ns() / 1_000_000
    }

    #[test]
    fn follows_the_system_clock_across_anchors() {
        // Over about 350 ms, so several re-anchorings happen, every reading lies
        // within the system clock readings around it (1 ms of slack for the
        // millisecond rounding of two different clocks).
        let end = std::time::Instant::now() + std::time::Duration::from_millis(350);
        let mut last = 0;
        let mut n = 0u64;
        while std::time::Instant::now() < end {
            let before = system_ms();
            let t = now_ms();
            let after = system_ms();
            assert!(t >= before - 1 && t <= after + 1, "{before} <= {t} <= {after}");
            assert!(t >= last - 1, "went back from {last} to {t}");
            last = t;
            n += 1;
            if n % 1024 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert!(n > 1000);
    }

    #[test]
    fn each_thread_has_its_own_anchor() {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let before = system_ms();
                    let t = now_ms();
                    let after = system_ms();
                    (before, t, after)
                })
            })
            .collect();
        for h in hs {
            let (before, t, after) = h.join().unwrap();
            assert!(t >= before - 1 && t <= after + 1, "{before} <= {t} <= {after}");
        }
    }
}
