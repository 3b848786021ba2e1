//! Feature `metrics`: a producer's metrics through the [`metrics`](::metrics)
//! crate's facade, so `metrics-exporter-prometheus` (or any other recorder)
//! publishes them with no glue.
//!
//! Why a publisher you start rather than a builder option: the facade's recorder
//! is global and installed by the application, often after its producers are
//! built; a producer cannot know whether anyone listens, nor how often the
//! exporter is read. [`publish`] copies a [`ProducerMetrics`] snapshot into the
//! facade every `every` (a tokio task, no lock of the producer's held while the
//! recorder runs), and the [`MetricsPublisher`] it returns is the task's lifetime,
//! as a `JoinHandle` is: keep it as long as you want the metrics published; drop it
//! (or [`stop`](MetricsPublisher::stop) it) to stop. It never keeps the producer
//! open: once the producer is closed (or its last handle dropped and its records
//! delivered) it publishes a last snapshot and ends. [`record`] publishes one
//! snapshot now, for an exporter read on demand.
//!
//! Names are Java's producer metric names with `_` for `-`, prefixed
//! `herald_producer_` (`herald_producer_record_send_total`), labelled `client_id`;
//! the per-topic ones (`producer-topic-metrics`) are `herald_producer_topic_*`
//! with a `topic` label, the per-broker ones (`producer-node-metrics`)
//! `herald_producer_node_*` with a `node_id` label. Totals (names ending `_total`)
//! are counters set to their absolute value; everything else is a gauge.
//! `metadata-age` is not published before the first metadata answer.

use std::time::Duration;

use super::{ProducerMetrics, description};
use crate::producer::Producer;

const PREFIX: &str = "herald_producer_";

/// The facade's name for the Java name `java` in `group` ("" / "topic_" / "node_").
fn name(group: &str, java: &str) -> String {
    let mut n = String::with_capacity(PREFIX.len() + group.len() + java.len());
    n.push_str(PREFIX);
    n.push_str(group);
    n.extend(java.chars().map(|c| if c == '-' { '_' } else { c }));
    n
}

/// One value: a counter for totals, a gauge otherwise.
fn emit(group: &str, java: &str, value: f64, labels: Vec<::metrics::Label>) {
    if !value.is_finite() {
        return;
    }
    let n = name(group, java);
    let help = description(&format!("{}{java}", group.replace('_', "-")));
    if java.ends_with("-total") {
        ::metrics::describe_counter!(n.clone(), help);
        ::metrics::counter!(n, labels).absolute(value as u64);
    } else {
        ::metrics::describe_gauge!(n.clone(), help);
        ::metrics::gauge!(n, labels).set(value);
    }
}

/// Publishes one snapshot `metrics` of the producer `client_id` through the
/// `metrics` facade's recorder now (the global one, or the local one of
/// [`metrics::with_local_recorder`](::metrics::with_local_recorder)). [`publish`]
/// calls it every interval; call it yourself before an exporter renders, to
/// publish on demand.
pub fn record(metrics: &ProducerMetrics, client_id: &str) {
    let client = ::metrics::Label::new("client_id", client_id.to_owned());
    for (java, v) in metrics.iter() {
        emit("", java, v, vec![client.clone()]);
    }
    for (topic, t) in &metrics.topics {
        let topic = ::metrics::Label::new("topic", topic.clone());
        for (java, v) in t.iter() {
            emit("topic_", java, v, vec![client.clone(), topic.clone()]);
        }
    }
    for (id, b) in &metrics.brokers {
        let node = ::metrics::Label::new("node_id", id.to_string());
        for (java, v) in b.iter() {
            emit("node_", java, v, vec![client.clone(), node.clone()]);
        }
    }
}

/// Publishes `producer`'s metrics through the `metrics` facade every `every`
/// (the first time at once), until the returned handle is dropped or stopped, or
/// the producer is closed. See [the module](self) for the names.
///
/// ```no_run
/// # async fn demo(producer: herald::Producer) {
/// // Install a recorder first, e.g. metrics-exporter-prometheus's:
/// // PrometheusBuilder::new().with_http_listener(([127, 0, 0, 1], 9000)).install()?;
/// let publisher = herald::metrics::publish(&producer, std::time::Duration::from_secs(1));
/// // ... produce ...
/// publisher.stop();
/// # }
/// ```
///
/// # Panics
/// Outside a tokio runtime (as `tokio::spawn`; [`Producer::build`] needs one too),
/// or if `every` is zero.
///
/// [`Producer::build`]: crate::ProducerBuilder::build
pub fn publish(producer: &Producer, every: Duration) -> MetricsPublisher {
    assert!(!every.is_zero(), "herald::metrics::publish: the interval must not be zero");
    let source = producer.metrics_source();
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let stopped = source.is_stopped();
            record(&source.snapshot(), source.client_id());
            if stopped {
                break;
            }
        }
    });
    MetricsPublisher { task }
}

/// The task of [`publish`]: dropping it (or [`stop`](Self::stop)) stops it.
#[derive(Debug)]
#[must_use = "dropping the publisher stops it at once"]
pub struct MetricsPublisher {
    task: tokio::task::JoinHandle<()>,
}

impl MetricsPublisher {
    /// Stops publishing (the values already published stay in the recorder).
    pub fn stop(self) {}

    /// Whether it has ended: stopped, or its producer closed.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for MetricsPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_java_s_with_underscores_and_a_prefix() {
        assert_eq!(name("", "record-send-total"), "herald_producer_record_send_total");
        assert_eq!(name("topic_", "byte-total"), "herald_producer_topic_byte_total");
        assert_eq!(name("node_", "request-latency-avg"), "herald_producer_node_request_latency_avg");
    }
}
