//! The producer's metrics, named and meant as Java's producer metrics
//! (`producer-metrics`, `producer-topic-metrics`, `producer-node-metrics`), so
//! dashboards and runbooks carry over. [`Producer::metrics`] returns a
//! [`ProducerMetrics`] snapshot; [`ProducerMetrics::iter`] lists every value under
//! its Java name.
//!
//! Recording is cheap enough to be always on: the sender task records once per
//! batch and once per request (one writer, relaxed atomics, no contention); the
//! only per-record work is a comparison for the largest record, on the partition's
//! lock the append already holds. Rates are per second over the last 30 seconds
//! (Java's default `metrics.sample.window.ms` × `metrics.num.samples`), or since
//! the producer started when it is younger.
//!
//! [`Producer::metrics`]: crate::Producer::metrics

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[cfg(feature = "metrics")]
mod export;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use export::{MetricsPublisher, publish, record};
pub(crate) mod otlp;
pub(crate) mod statistics;

/// Bytes a client's connections wrote and read, counted as frames go by.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) written: AtomicU64,
    pub(crate) read: AtomicU64,
}

/// A running maximum.
fn raise(a: &AtomicU64, v: u64) {
    a.fetch_max(v, Relaxed);
}

/// Per-topic counters.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
struct TopicTotals {
    records: u64,
    bytes: u64,
    errors: u64,
    raw_bytes: u64,
}

/// Per-broker counters.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
struct NodeTotals {
    sent: u64,
    requests: u64,
    latency_ms_total: f64,
    latency_ms_max: f64,
}

/// The totals that rates are computed from.
#[derive(Default, Debug, Clone, Copy)]
struct RateTotals {
    records: u64,
    errors: u64,
    retries: u64,
    splits: u64,
    requests: u64,
    bytes_out: u64,
    bytes_in: u64,
}

/// What the producer records; shared by its handles and its sender.
#[derive(Debug)]
pub(crate) struct Recorder {
    started: Instant,
    /// Every byte the producer's connections wrote and read.
    pub(crate) traffic: Arc<Traffic>,
    records_sent: AtomicU64,
    records_failed: AtomicU64,
    records_failed_maybe_written: AtomicU64,
    records_retried: AtomicU64,
    record_bytes_total: AtomicU64,
    record_bytes_max: AtomicU64,
    queue_time_ms_total: AtomicU64,
    queue_time_ms_max: AtomicU64,
    batches: AtomicU64,
    batch_bytes_total: AtomicU64,
    batch_bytes_max: AtomicU64,
    batch_raw_bytes_total: AtomicU64,
    requests: AtomicU64,
    request_records_total: AtomicU64,
    request_latency_us_total: AtomicU64,
    request_latency_us_max: AtomicU64,
    responses: AtomicU64,
    in_flight: AtomicU64,
    throttle_ms_total: AtomicU64,
    throttle_ms_max: AtomicU64,
    throttled: AtomicU64,
    connections: AtomicU64,
    connections_created: AtomicU64,
    buffer_wait_ns_total: AtomicU64,
    epoch_bumps: AtomicU64,
    batch_splits: AtomicU64,
    /// Nanoseconds since `started` of the last metadata answer (0: none yet).
    metadata_at_ns: AtomicU64,
    topics: Mutex<HashMap<Arc<str>, TopicTotals>>,
    nodes: Mutex<HashMap<i32, NodeTotals>>,
    /// One sample a second of the rate totals, the last 31 seconds.
    samples: Mutex<VecDeque<(Instant, RateTotals)>>,
    /// Nanoseconds since `started` when the next sample is due: the sender's loop
    /// reads this, not the lock, on the turns (nearly all) where none is.
    next_sample_ns: AtomicU64,
}

/// The rate window (Java: `metrics.sample.window.ms` 30 s × `metrics.num.samples` 2, read as 30 s).
const WINDOW: Duration = Duration::from_secs(30);

impl Recorder {
    pub(crate) fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            started: Instant::now(),
            traffic: Arc::default(),
            records_sent: AtomicU64::new(0),
            records_failed: AtomicU64::new(0),
            records_failed_maybe_written: AtomicU64::new(0),
            records_retried: AtomicU64::new(0),
            record_bytes_total: AtomicU64::new(0),
            record_bytes_max: AtomicU64::new(0),
            queue_time_ms_total: AtomicU64::new(0),
            queue_time_ms_max: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batch_bytes_total: AtomicU64::new(0),
            batch_bytes_max: AtomicU64::new(0),
            batch_raw_bytes_total: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            request_records_total: AtomicU64::new(0),
            request_latency_us_total: AtomicU64::new(0),
            request_latency_us_max: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            throttle_ms_total: AtomicU64::new(0),
            throttle_ms_max: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            connections_created: AtomicU64::new(0),
            buffer_wait_ns_total: AtomicU64::new(0),
            epoch_bumps: AtomicU64::new(0),
            batch_splits: AtomicU64::new(0),
            metadata_at_ns: AtomicU64::new(0),
            topics: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            samples: Mutex::new(VecDeque::new()),
            next_sample_ns: AtomicU64::new(0),
        })
    }

    /// A batch was written: `records` records of `record_bytes` bytes in all (the
    /// largest `max_record`), `raw` bytes before compression, `wire` after.
    pub(crate) fn batch_written(
        &self,
        topic: &Arc<str>,
        records: u64,
        record_bytes: u64,
        max_record: u64,
        raw: u64,
        wire: u64,
    ) {
        self.records_sent.fetch_add(records, Relaxed);
        self.record_bytes_total.fetch_add(record_bytes, Relaxed);
        raise(&self.record_bytes_max, max_record);
        let mut topics = self.topics.lock();
        let t = topics.entry(topic.clone()).or_default();
        t.records += records;
        t.bytes += wire;
        t.raw_bytes += raw;
    }

    /// A batch failed; `maybe_written` says whether it may have been written.
    pub(crate) fn batch_failed(&self, topic: &Arc<str>, records: u64, maybe_written: bool) {
        self.records_failed.fetch_add(records, Relaxed);
        if maybe_written {
            self.records_failed_maybe_written.fetch_add(records, Relaxed);
        }
        self.topics.lock().entry(topic.clone()).or_default().errors += records;
    }

    /// A batch goes again after a retriable failure.
    pub(crate) fn batch_retried(&self, records: u64) {
        self.records_retried.fetch_add(records, Relaxed);
    }

    /// A batch goes out for the first time, `queued` after it was opened, with
    /// `wire` bytes (`raw` before compression).
    pub(crate) fn batch_sent(&self, queued: Duration, raw: u64, wire: u64) {
        let ms = queued.as_millis() as u64;
        self.batches.fetch_add(1, Relaxed);
        self.queue_time_ms_total.fetch_add(ms, Relaxed);
        raise(&self.queue_time_ms_max, ms);
        self.batch_bytes_total.fetch_add(wire, Relaxed);
        raise(&self.batch_bytes_max, wire);
        self.batch_raw_bytes_total.fetch_add(raw, Relaxed);
    }

    /// A Produce request of `records` records went to broker `node`.
    pub(crate) fn request_sent(&self, node: i32, records: u64) {
        self.requests.fetch_add(1, Relaxed);
        self.request_records_total.fetch_add(records, Relaxed);
        self.nodes.lock().entry(node).or_default().sent += 1;
    }

    /// How long ago the producer started.
    pub(crate) fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// A Produce request to `node` was answered after `latency`, asking herald to
    /// hold that broker's requests for `throttle_ms`.
    pub(crate) fn response(&self, node: i32, latency: Duration, throttle_ms: u64) {
        let us = latency.as_micros() as u64;
        self.responses.fetch_add(1, Relaxed);
        self.request_latency_us_total.fetch_add(us, Relaxed);
        raise(&self.request_latency_us_max, us);
        self.throttled.fetch_add(1, Relaxed);
        self.throttle_ms_total.fetch_add(throttle_ms, Relaxed);
        raise(&self.throttle_ms_max, throttle_ms);
        let mut nodes = self.nodes.lock();
        let n = nodes.entry(node).or_default();
        let ms = latency.as_secs_f64() * 1000.0;
        n.requests += 1;
        n.latency_ms_total += ms;
        n.latency_ms_max = n.latency_ms_max.max(ms);
    }

    pub(crate) fn set_in_flight(&self, n: usize) {
        self.in_flight.store(n as u64, Relaxed);
    }

    pub(crate) fn set_connections(&self, open: usize, created: u64) {
        self.connections.store(open as u64, Relaxed);
        self.connections_created.store(created, Relaxed);
    }

    /// `send` waited `waited` for room in `buffer.memory`.
    pub(crate) fn buffer_wait(&self, waited: Duration) {
        self.buffer_wait_ns_total.fetch_add(waited.as_nanos() as u64, Relaxed);
    }

    /// A batch the broker refused as too large was split (KIP-126).
    pub(crate) fn batch_split(&self) {
        self.batch_splits.fetch_add(1, Relaxed);
    }

    pub(crate) fn epoch_bumped(&self) {
        self.epoch_bumps.fetch_add(1, Relaxed);
    }

    pub(crate) fn metadata_answered(&self) {
        let ns = self.started.elapsed().as_nanos().max(1) as u64;
        self.metadata_at_ns.store(ns, Relaxed);
    }

    fn rate_totals(&self) -> RateTotals {
        RateTotals {
            records: self.records_sent.load(Relaxed),
            errors: self.records_failed.load(Relaxed),
            retries: self.records_retried.load(Relaxed),
            splits: self.batch_splits.load(Relaxed),
            requests: self.requests.load(Relaxed),
            bytes_out: self.traffic.written.load(Relaxed),
            bytes_in: self.traffic.read.load(Relaxed),
        }
    }

    /// Takes a sample for the rates, at most once a second (the sender calls it
    /// every turn of its loop).
    pub(crate) fn sample(&self, now: Instant) {
        let at_ns = now.saturating_duration_since(self.started).as_nanos() as u64;
        if at_ns < self.next_sample_ns.load(Relaxed) {
            return;
        }
        self.next_sample_ns.store(at_ns + 1_000_000_000, Relaxed);
        let mut s = self.samples.lock();
        if s.back().is_some_and(|(at, _)| now.duration_since(*at) < Duration::from_secs(1)) {
            return;
        }
        s.push_back((now, self.rate_totals()));
        while s.front().is_some_and(|(at, _)| now.duration_since(*at) > WINDOW + Duration::from_secs(1)) {
            s.pop_front();
        }
    }

    /// The snapshot, with `buffer.memory` and what is free of it.
    pub(crate) fn snapshot(&self, buffer_total: u64, buffer_available: u64) -> ProducerMetrics {
        let now = Instant::now();
        let totals = self.rate_totals();
        // Rates over the window: from the oldest sample within it, or from the start.
        let (since, base) = {
            let s = self.samples.lock();
            s.iter()
                .find(|(at, _)| now.duration_since(*at) <= WINDOW)
                .copied()
                .unwrap_or((self.started, RateTotals::default()))
        };
        let secs = now.duration_since(since).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let avg = |total: u64, n: u64| if n == 0 { 0.0 } else { total as f64 / n as f64 };
        let batches = self.batches.load(Relaxed);
        let sent = totals.records;
        let responses = self.responses.load(Relaxed);
        let metadata_at = self.metadata_at_ns.load(Relaxed);
        let raw = self.batch_raw_bytes_total.load(Relaxed);
        ProducerMetrics {
            record_send_total: sent,
            record_send_rate: rate(totals.records, base.records),
            record_error_total: totals.errors,
            record_error_rate: rate(totals.errors, base.errors),
            record_retry_total: totals.retries,
            record_retry_rate: rate(totals.retries, base.retries),
            batch_split_total: totals.splits,
            batch_split_rate: rate(totals.splits, base.splits),
            record_size_avg: avg(self.record_bytes_total.load(Relaxed), sent),
            record_size_max: self.record_bytes_max.load(Relaxed),
            record_queue_time_avg: avg(self.queue_time_ms_total.load(Relaxed), batches),
            record_queue_time_max: self.queue_time_ms_max.load(Relaxed),
            request_latency_avg: avg(self.request_latency_us_total.load(Relaxed), responses) / 1000.0,
            request_latency_max: self.request_latency_us_max.load(Relaxed) as f64 / 1000.0,
            request_total: totals.requests,
            request_rate: rate(totals.requests, base.requests),
            requests_in_flight: self.in_flight.load(Relaxed),
            batch_send_total: batches,
            batch_size_avg: avg(self.batch_bytes_total.load(Relaxed), batches),
            batch_size_max: self.batch_bytes_max.load(Relaxed),
            records_per_request_avg: avg(self.request_records_total.load(Relaxed), totals.requests),
            compression_rate_avg: if raw == 0 {
                1.0
            } else {
                self.batch_bytes_total.load(Relaxed) as f64 / raw as f64
            },
            buffer_total_bytes: buffer_total,
            buffer_available_bytes: buffer_available,
            bufferpool_wait_time_ns_total: self.buffer_wait_ns_total.load(Relaxed),
            produce_throttle_time_avg: avg(
                self.throttle_ms_total.load(Relaxed),
                self.throttled.load(Relaxed),
            ),
            produce_throttle_time_max: self.throttle_ms_max.load(Relaxed),
            outgoing_byte_total: totals.bytes_out,
            outgoing_byte_rate: rate(totals.bytes_out, base.bytes_out),
            incoming_byte_total: totals.bytes_in,
            incoming_byte_rate: rate(totals.bytes_in, base.bytes_in),
            connection_count: self.connections.load(Relaxed),
            connection_creation_total: self.connections_created.load(Relaxed),
            metadata_age: if metadata_at == 0 {
                None
            } else {
                let at = self.started + Duration::from_nanos(metadata_at);
                Some(now.saturating_duration_since(at).as_secs_f64())
            },
            record_error_maybe_written_total: self.records_failed_maybe_written.load(Relaxed),
            record_error_not_written_total: totals
                .errors
                .saturating_sub(self.records_failed_maybe_written.load(Relaxed)),
            epoch_bump_total: self.epoch_bumps.load(Relaxed),
            topics: self
                .topics
                .lock()
                .iter()
                .map(|(name, t)| {
                    (
                        name.to_string(),
                        TopicMetrics {
                            record_send_total: t.records,
                            byte_total: t.bytes,
                            record_error_total: t.errors,
                            compression_rate: if t.raw_bytes == 0 {
                                1.0
                            } else {
                                t.bytes as f64 / t.raw_bytes as f64
                            },
                        },
                    )
                })
                .collect(),
            brokers: self
                .nodes
                .lock()
                .iter()
                .map(|(id, n)| {
                    let avg = if n.requests == 0 { 0.0 } else { n.latency_ms_total / n.requests as f64 };
                    let b = BrokerMetrics {
                        request_total: n.requests,
                        request_latency_avg: avg,
                        request_latency_max: n.latency_ms_max,
                        request_sent_total: n.sent,
                    };
                    (*id, b)
                })
                .collect(),
        }
    }
}

/// A snapshot of a producer's metrics. Field names are Java's producer metric
/// names with `_` for `-`; times are in milliseconds and sizes in bytes unless
/// the name says otherwise; rates are per second over the last 30 seconds.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records written (acknowledged; with acks=0, sent).
    pub record_send_total: u64,
    /// Records written per second.
    pub record_send_rate: f64,
    /// Records that failed (their future or callback got an error).
    pub record_error_total: u64,
    /// Records failed per second.
    pub record_error_rate: f64,
    /// Record sends retried (a batch of n records retried once counts n).
    pub record_retry_total: u64,
    /// Record retries per second.
    pub record_retry_rate: f64,
    /// Batches split because the broker refused them as too large (KIP-126).
    pub batch_split_total: u64,
    /// Batch splits per second.
    pub batch_split_rate: f64,
    /// Average size of a written record in its batch, uncompressed.
    pub record_size_avg: f64,
    /// Largest record written.
    pub record_size_max: u64,
    /// Average time a batch waited in the accumulator before it was first sent.
    pub record_queue_time_avg: f64,
    /// Longest such wait.
    pub record_queue_time_max: u64,
    /// Average Produce request latency (sent to answered).
    pub request_latency_avg: f64,
    /// Longest Produce request latency.
    pub request_latency_max: f64,
    /// Produce requests sent.
    pub request_total: u64,
    /// Produce requests per second.
    pub request_rate: f64,
    /// Produce requests awaiting an answer now.
    pub requests_in_flight: u64,
    /// herald's own: batches sent (each counted once, retries not).
    pub batch_send_total: u64,
    /// Average batch size on the wire (compressed when compressing).
    pub batch_size_avg: f64,
    /// Largest batch sent.
    pub batch_size_max: u64,
    /// Average records per Produce request.
    pub records_per_request_avg: f64,
    /// Compressed ÷ uncompressed batch bytes (1.0 without compression).
    pub compression_rate_avg: f64,
    /// `buffer.memory`.
    pub buffer_total_bytes: u64,
    /// `buffer.memory` not held by records now.
    pub buffer_available_bytes: u64,
    /// Nanoseconds `send` waited for room in `buffer.memory`, in all.
    pub bufferpool_wait_time_ns_total: u64,
    /// Average throttle time brokers asked for in Produce answers (KIP-219).
    pub produce_throttle_time_avg: f64,
    /// Longest such throttle time.
    pub produce_throttle_time_max: u64,
    /// Bytes written to brokers (every request, framing included).
    pub outgoing_byte_total: u64,
    /// Those bytes per second.
    pub outgoing_byte_rate: f64,
    /// Bytes read from brokers.
    pub incoming_byte_total: u64,
    /// Those bytes per second.
    pub incoming_byte_rate: f64,
    /// Broker connections open now.
    pub connection_count: u64,
    /// Broker connections opened in all.
    pub connection_creation_total: u64,
    /// Seconds since the last metadata answer (`None` before the first).
    pub metadata_age: Option<f64>,
    /// herald's own: failed records that may have been written anyway.
    pub record_error_maybe_written_total: u64,
    /// herald's own: failed records that certainly were not written.
    pub record_error_not_written_total: u64,
    /// herald's own: producer epoch bumps of the idempotent producer (KIP-360).
    pub epoch_bump_total: u64,
    /// Per topic (Java's `producer-topic-metrics`).
    pub topics: BTreeMap<String, TopicMetrics>,
    /// Per broker node id (Java's `producer-node-metrics`).
    pub brokers: BTreeMap<i32, BrokerMetrics>,
}

/// One topic's metrics.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct TopicMetrics {
    /// Records written to it.
    pub record_send_total: u64,
    /// Bytes of its batches written (on the wire).
    pub byte_total: u64,
    /// Its records that failed.
    pub record_error_total: u64,
    /// Compressed ÷ uncompressed bytes of its batches.
    pub compression_rate: f64,
}

/// One broker's metrics.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BrokerMetrics {
    /// Produce requests it answered.
    pub request_total: u64,
    /// Their average latency, in milliseconds.
    pub request_latency_avg: f64,
    /// Their longest latency, in milliseconds.
    pub request_latency_max: f64,
    /// herald's own: Produce requests sent to it (answered or not).
    pub request_sent_total: u64,
}

impl ProducerMetrics {
    /// Every producer-wide metric as (Java's name, value): what exporters publish.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        [
            ("record-send-total", self.record_send_total as f64),
            ("record-send-rate", self.record_send_rate),
            ("record-error-total", self.record_error_total as f64),
            ("record-error-rate", self.record_error_rate),
            ("record-retry-total", self.record_retry_total as f64),
            ("record-retry-rate", self.record_retry_rate),
            ("batch-split-total", self.batch_split_total as f64),
            ("batch-split-rate", self.batch_split_rate),
            ("record-size-avg", self.record_size_avg),
            ("record-size-max", self.record_size_max as f64),
            ("record-queue-time-avg", self.record_queue_time_avg),
            ("record-queue-time-max", self.record_queue_time_max as f64),
            ("request-latency-avg", self.request_latency_avg),
            ("request-latency-max", self.request_latency_max),
            ("request-total", self.request_total as f64),
            ("request-rate", self.request_rate),
            ("requests-in-flight", self.requests_in_flight as f64),
            ("batch-send-total", self.batch_send_total as f64),
            ("batch-size-avg", self.batch_size_avg),
            ("batch-size-max", self.batch_size_max as f64),
            ("records-per-request-avg", self.records_per_request_avg),
            ("compression-rate-avg", self.compression_rate_avg),
            ("buffer-total-bytes", self.buffer_total_bytes as f64),
            ("buffer-available-bytes", self.buffer_available_bytes as f64),
            ("bufferpool-wait-time-ns-total", self.bufferpool_wait_time_ns_total as f64),
            ("produce-throttle-time-avg", self.produce_throttle_time_avg),
            ("produce-throttle-time-max", self.produce_throttle_time_max as f64),
            ("outgoing-byte-total", self.outgoing_byte_total as f64),
            ("outgoing-byte-rate", self.outgoing_byte_rate),
            ("incoming-byte-total", self.incoming_byte_total as f64),
            ("incoming-byte-rate", self.incoming_byte_rate),
            ("connection-count", self.connection_count as f64),
            ("connection-creation-total", self.connection_creation_total as f64),
            ("metadata-age", self.metadata_age.unwrap_or(f64::NAN)),
            ("record-error-maybe-written-total", self.record_error_maybe_written_total as f64),
            ("record-error-not-written-total", self.record_error_not_written_total as f64),
            ("epoch-bump-total", self.epoch_bump_total as f64),
        ]
        .into_iter()
    }
}

impl TopicMetrics {
    /// Every metric of the topic as (Java's `producer-topic-metrics` name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        [
            ("record-send-total", self.record_send_total as f64),
            ("byte-total", self.byte_total as f64),
            ("record-error-total", self.record_error_total as f64),
            ("compression-rate", self.compression_rate),
        ]
        .into_iter()
    }
}

impl BrokerMetrics {
    /// Every metric of the broker as (Java's `producer-node-metrics` name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        [
            ("request-total", self.request_total as f64),
            ("request-latency-avg", self.request_latency_avg),
            ("request-latency-max", self.request_latency_max),
            ("request-sent-total", self.request_sent_total as f64),
        ]
        .into_iter()
    }
}

/// What each metric means, by its Java name: the help text exporters publish.
/// Producer-wide names first, then per topic (`topic-` prefixed) and per broker
/// (`node-` prefixed), as the `metrics` feature names them.
pub(crate) const DESCRIPTIONS: &[(&str, &str)] = &[
    ("record-send-total", "Records written (acknowledged; with acks=0, sent)."),
    ("record-send-rate", "Records written per second (last 30 s)."),
    ("record-error-total", "Records that failed."),
    ("record-error-rate", "Records failed per second (last 30 s)."),
    ("record-retry-total", "Record sends retried (a batch of n records retried once counts n)."),
    ("record-retry-rate", "Record retries per second (last 30 s)."),
    ("batch-split-total", "Batches split because the broker refused them as too large (KIP-126)."),
    ("batch-split-rate", "Batch splits per second (last 30 s)."),
    ("record-size-avg", "Average size of a written record in its batch, uncompressed, in bytes."),
    ("record-size-max", "Largest record written, in bytes."),
    ("record-queue-time-avg", "Average time a batch waited before it was first sent, in ms."),
    ("record-queue-time-max", "Longest time a batch waited before it was first sent, in ms."),
    ("request-latency-avg", "Average Produce request latency, in ms."),
    ("request-latency-max", "Longest Produce request latency, in ms."),
    ("request-total", "Produce requests sent."),
    ("request-rate", "Produce requests per second (last 30 s)."),
    ("requests-in-flight", "Produce requests awaiting an answer now."),
    ("batch-send-total", "Batches sent (each once, retries not counted)."),
    ("batch-size-avg", "Average batch size on the wire, in bytes."),
    ("batch-size-max", "Largest batch sent, in bytes."),
    ("records-per-request-avg", "Average records per Produce request."),
    ("compression-rate-avg", "Compressed / uncompressed batch bytes (1 without compression)."),
    ("buffer-total-bytes", "buffer.memory, in bytes."),
    ("buffer-available-bytes", "Bytes of buffer.memory not held by records now."),
    ("bufferpool-wait-time-ns-total", "Nanoseconds send waited for room in buffer.memory, in all."),
    ("produce-throttle-time-avg", "Average throttle time brokers asked for (KIP-219), in ms."),
    ("produce-throttle-time-max", "Longest throttle time brokers asked for, in ms."),
    ("outgoing-byte-total", "Bytes written to brokers."),
    ("outgoing-byte-rate", "Bytes written to brokers per second (last 30 s)."),
    ("incoming-byte-total", "Bytes read from brokers."),
    ("incoming-byte-rate", "Bytes read from brokers per second (last 30 s)."),
    ("connection-count", "Broker connections open now."),
    ("connection-creation-total", "Broker connections opened in all."),
    ("metadata-age", "Seconds since the last metadata answer."),
    ("record-error-maybe-written-total", "Failed records that may have been written anyway."),
    ("record-error-not-written-total", "Failed records that certainly were not written."),
    ("epoch-bump-total", "Producer epoch bumps of the idempotent producer (KIP-360)."),
    ("topic-record-send-total", "Records written to the topic."),
    ("topic-byte-total", "Bytes of the topic's batches written, on the wire."),
    ("topic-record-error-total", "The topic's records that failed."),
    ("topic-compression-rate", "Compressed / uncompressed bytes of the topic's batches."),
    ("node-request-total", "Produce requests the broker answered."),
    ("node-request-latency-avg", "Average latency of the broker's Produce requests, in ms."),
    ("node-request-latency-max", "Longest latency of the broker's Produce requests, in ms."),
    ("node-request-sent-total", "Produce requests sent to the broker."),
];

/// The description of the metric `name` (see [`DESCRIPTIONS`]).
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn description(name: &str) -> &'static str {
    DESCRIPTIONS.iter().find(|(n, _)| *n == name).map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_averages_and_maxima_follow_what_was_recorded() {
        let r = Recorder::new();
        let t: Arc<str> = Arc::from("t");
        r.batch_sent(Duration::from_millis(4), 1000, 400);
        r.batch_sent(Duration::from_millis(8), 1000, 600);
        r.request_sent(1, 30);
        r.batch_written(&t, 10, 900, 120, 1000, 400);
        r.batch_written(&t, 20, 900, 60, 1000, 600);
        r.batch_failed(&t, 5, true);
        r.batch_failed(&t, 2, false);
        r.batch_retried(10);
        r.batch_split();
        r.response(1, Duration::from_millis(3), 0);
        r.response(1, Duration::from_millis(5), 100);
        let m = r.snapshot(1 << 20, 1 << 19);
        assert_eq!((m.record_send_total, m.record_error_total, m.record_retry_total), (30, 7, 10));
        assert_eq!((m.record_error_maybe_written_total, m.record_error_not_written_total), (5, 2));
        assert_eq!(m.record_size_avg, 60.0);
        assert_eq!(m.record_size_max, 120);
        assert_eq!((m.record_queue_time_avg, m.record_queue_time_max), (6.0, 8));
        assert_eq!((m.batch_size_avg, m.batch_size_max), (500.0, 600));
        assert_eq!(m.compression_rate_avg, 0.5);
        assert_eq!(m.records_per_request_avg, 30.0);
        assert_eq!((m.request_latency_avg, m.request_latency_max), (4.0, 5.0));
        assert_eq!((m.produce_throttle_time_avg, m.produce_throttle_time_max), (50.0, 100));
        assert_eq!(m.topics["t"].record_send_total, 30);
        assert_eq!(m.topics["t"].record_error_total, 7);
        assert_eq!(m.topics["t"].compression_rate, 0.5);
        assert_eq!(m.brokers[&1].request_total, 2);
        assert_eq!(m.buffer_available_bytes, 1 << 19);
        assert!(m.metadata_age.is_none());
        assert!(m.record_send_rate > 0.0);
        assert_eq!(m.iter().count(), 37);
        assert_eq!(m.batch_split_total, 1);
        assert!(m.batch_split_rate > 0.0);
        assert_eq!(m.batch_send_total, 2);
        assert_eq!((m.brokers[&1].request_sent_total, m.brokers[&1].request_latency_max), (1, 5.0));
    }

    #[test]
    fn every_metric_has_a_description() {
        let mut m = ProducerMetrics::default();
        m.topics.insert("t".into(), TopicMetrics::default());
        m.brokers.insert(1, BrokerMetrics::default());
        let names = m
            .iter()
            .map(|(n, _)| n.to_owned())
            .chain(m.topics["t"].iter().map(|(n, _)| format!("topic-{n}")))
            .chain(m.brokers[&1].iter().map(|(n, _)| format!("node-{n}")));
        let names: Vec<String> = names.collect();
        assert_eq!(names.len(), DESCRIPTIONS.len());
        for n in names {
            assert!(!description(&n).is_empty(), "{n} has no description");
        }
    }
}
