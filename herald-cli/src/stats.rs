//! What `herald produce --stats` prints at the end and `herald bench --json`
//! includes: a run's summary from `Producer::metrics()` (Java's producer metrics),
//! and `--metrics-addr`, which serves them for Prometheus while the command runs.

use std::net::SocketAddr;
use std::time::Duration;

use herald::{Producer, ProducerMetrics};
use serde_json::{Value, json};

use crate::CliError;

/// A run's summary: rates over the whole run, the rest as the metrics say.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub records: u64,
    pub seconds: f64,
    pub records_per_sec: f64,
    /// Bytes written to brokers (requests, framing included) per second.
    pub bytes_per_sec: f64,
    pub batches: u64,
    pub batch_size_avg: f64,
    pub records_per_request_avg: f64,
    /// Compressed ÷ uncompressed bytes (1 without compression).
    pub compression_rate: f64,
    pub retries: u64,
    pub errors: u64,
    /// Java's `record-queue-time-avg`/`-max`: from a batch's first record until
    /// the batch is first sent, in milliseconds.
    pub queue_time_avg_ms: f64,
    pub queue_time_max_ms: u64,
    pub request_latency_avg_ms: f64,
    pub request_latency_max_ms: f64,
    pub throttle_time_avg_ms: f64,
    pub throttle_time_max_ms: u64,
}

impl Summary {
    /// The summary of a run of `elapsed` whose producer's metrics are `m`.
    pub fn of(m: &ProducerMetrics, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            records: m.record_send_total,
            seconds: secs,
            records_per_sec: m.record_send_total as f64 / secs,
            bytes_per_sec: m.outgoing_byte_total as f64 / secs,
            batches: m.batch_send_total,
            batch_size_avg: m.batch_size_avg,
            records_per_request_avg: m.records_per_request_avg,
            compression_rate: m.compression_rate_avg,
            retries: m.record_retry_total,
            errors: m.record_error_total,
            queue_time_avg_ms: m.record_queue_time_avg,
            queue_time_max_ms: m.record_queue_time_max,
            request_latency_avg_ms: m.request_latency_avg,
            request_latency_max_ms: m.request_latency_max,
            throttle_time_avg_ms: m.produce_throttle_time_avg,
            throttle_time_max_ms: m.produce_throttle_time_max,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "records": self.records,
            "seconds": self.seconds,
            "records_per_sec": self.records_per_sec,
            "bytes_per_sec": self.bytes_per_sec,
            "batches": self.batches,
            "batch_size_avg": self.batch_size_avg,
            "records_per_request_avg": self.records_per_request_avg,
            "compression_rate": self.compression_rate,
            "retries": self.retries,
            "errors": self.errors,
            "queue_time_avg_ms": self.queue_time_avg_ms,
            "queue_time_max_ms": self.queue_time_max_ms,
            "request_latency_avg_ms": self.request_latency_avg_ms,
            "request_latency_max_ms": self.request_latency_max_ms,
            "throttle_time_avg_ms": self.throttle_time_avg_ms,
            "throttle_time_max_ms": self.throttle_time_max_ms,
        })
    }

    /// The summary as `--stats` prints it on stderr.
    pub fn to_text(&self) -> String {
        format!(
            "herald: {} records in {:.2} s: {:.0} records/s, {:.2} MiB/s sent\n\
             herald: {} batches of {:.0} bytes on average, {:.1} records per request, compression ratio {:.3}\n\
             herald: {} retries, {} errors; queue time avg {:.2} ms, max {} ms; request latency avg {:.2} ms, max {:.2} ms; throttle avg {:.1} ms, max {} ms",
            self.records,
            self.seconds,
            self.records_per_sec,
            self.bytes_per_sec / (1024.0 * 1024.0),
            self.batches,
            self.batch_size_avg,
            self.records_per_request_avg,
            self.compression_rate,
            self.retries,
            self.errors,
            self.queue_time_avg_ms,
            self.queue_time_max_ms,
            self.request_latency_avg_ms,
            self.request_latency_max_ms,
            self.throttle_time_avg_ms,
            self.throttle_time_max_ms,
        )
    }
}

/// How often `--metrics-addr` copies the producer's metrics into the exporter.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// `--metrics-addr`: serves the producer's metrics at `http://ADDR/metrics` in
/// Prometheus's text format (metrics-exporter-prometheus's listener) while the
/// command runs. Keep the returned publisher as long as they should be served.
pub fn serve_metrics(
    addr: SocketAddr,
    producer: &Producer,
) -> Result<herald::metrics::MetricsPublisher, CliError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| CliError::usage(format!("--metrics-addr {addr}: {e}")))?;
    Ok(herald::metrics::publish(producer, PUBLISH_EVERY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_over_the_run() {
        let mut m = ProducerMetrics::default();
        m.record_send_total = 1000;
        m.outgoing_byte_total = 2 * 1024 * 1024;
        m.batch_send_total = 10;
        m.record_queue_time_avg = 1.5;
        let s = Summary::of(&m, Duration::from_secs(2));
        assert_eq!((s.records_per_sec, s.bytes_per_sec, s.batches), (500.0, 1024.0 * 1024.0, 10));
        assert_eq!(s.to_json()["records_per_sec"], 500.0);
        assert!(s.to_text().contains("500 records/s, 1.00 MiB/s"), "{}", s.to_text());
        assert_eq!(s.to_json()["queue_time_avg_ms"], 1.5);
        assert!(s.to_text().contains("queue time avg 1.50 ms"), "{}", s.to_text());
    }
}
