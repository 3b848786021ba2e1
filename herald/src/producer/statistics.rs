//! `statistics.interval.ms`: a task that hands the statistics callback a JSON
//! document every interval (`metrics/statistics.rs` writes it), and the view of a
//! producer's metrics that exporters hold without keeping the producer open.
//!
//! The callback is user code: it runs on a task of its own, where no lock of
//! herald's is held (the snapshot is taken, and every guard dropped, before it is
//! called; DESIGN.md, "No user code under a herald lock"), under `catch_unwind`:
//! a panic is logged and the next interval calls it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Shared;
use crate::metrics::ProducerMetrics;
use crate::metrics::statistics::Statistics;

/// A producer's metrics, without its handle: holding one does not keep the
/// producer open (its sender stops when the last `Producer` goes).
pub(crate) struct MetricsSource {
    shared: Arc<Shared>,
}

impl MetricsSource {
    pub(crate) fn new(shared: Arc<Shared>) -> MetricsSource {
        MetricsSource { shared }
    }

    /// The snapshot `Producer::metrics` returns.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn snapshot(&self) -> ProducerMetrics {
        snapshot(&self.shared)
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn client_id(&self) -> &str {
        &self.shared.config.client_id
    }

    /// Whether the producer's sender has stopped: nothing will change any more.
    pub(crate) fn is_stopped(&self) -> bool {
        self.shared.accumulator.is_closed()
    }
}

/// The producer's metrics snapshot.
pub(crate) fn snapshot(shared: &Shared) -> ProducerMetrics {
    let available = shared.accumulator.memory.available_permits() as u64;
    shared.accumulator.deliveries().recorder.snapshot(shared.config.buffer_memory as u64, available)
}

/// Producers that emitted statistics, for their instance names.
static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// A monotonic clock for `ts`: microseconds since the first statistics document of
/// the process.
fn monotonic_us() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The statistics document of the producer now.
fn document(shared: &Shared, name: &str) -> String {
    let metrics = snapshot(shared);
    let recorder = &shared.accumulator.deliveries().recorder;
    Statistics {
        name,
        client_id: &shared.config.client_id,
        ts_us: monotonic_us(),
        time_s: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        age_us: recorder.age().as_micros() as u64,
        msg_cnt: shared.accumulator.queued_records(),
        metrics: &metrics,
    }
    .to_json()
}

/// Starts the statistics task when `statistics.interval.ms` is above zero and a
/// callback is set; it ends once the producer's sender has stopped.
pub(crate) fn start(shared: &Arc<Shared>, runtime: &tokio::runtime::Handle) {
    let interval = shared.config.statistics_interval;
    let Some(callback) = shared.config.statistics_callback.clone() else {
        if !interval.is_zero() {
            tracing::warn!(
                "statistics.interval.ms is set but no statistics callback is: no statistics are emitted"
            );
        }
        return;
    };
    if interval.is_zero() {
        return;
    }
    let name = format!("herald#producer-{}", INSTANCES.fetch_add(1, Ordering::Relaxed));
    let source = MetricsSource::new(shared.clone());
    runtime.spawn(async move {
        let start = tokio::time::Instant::now() + interval;
        let mut ticks = tokio::time::interval_at(start, interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if source.is_stopped() {
                break;
            }
            let json = document(&source.shared, &name);
            let f = &callback.0;
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(json))).is_err() {
                tracing::error!(client_id = %source.shared.config.client_id, "the statistics callback panicked");
            }
        }
    });
}
