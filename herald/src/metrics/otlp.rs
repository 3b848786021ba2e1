//! The producer's metrics as an OpenTelemetry `MetricsData` protobuf message
//! (opentelemetry-proto `metrics/v1`), the payload of a KIP-714 PushTelemetry
//! request. Pure encoding, no I/O.
//!
//! Names follow Java's `TelemetryMetricNamingConvention`: `org.apache.kafka.` +
//! the group without its `-metrics` suffix + the metric's name, dashes turned to
//! dots (`producer-metrics` / `record-send-total` →
//! `org.apache.kafka.producer.record.send.total`); tag keys turn dashes into
//! underscores. Java's `KafkaMetricsCollector` sends cumulative counters (the
//! `-total` metrics) as monotonic sums and everything else as gauges; so does
//! this. Only the fields herald fills are written; protobuf readers take the
//! rest as defaults.

use super::ProducerMetrics;

/// Java's prefix of client metric names (`TelemetryMetricNamingConvention`).
pub(crate) const PREFIX: &str = "org.apache.kafka.";

/// How a point is aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A value at one moment.
    Gauge,
    /// A monotonic counter: since `start` (cumulative) or since the last push (delta).
    Sum,
}

/// One data point of one metric.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Point {
    /// The full OpenTelemetry name (`org.apache.kafka.producer.record.send.total`).
    pub(crate) name: String,
    /// Its tags (Java's, keys with `_` for `-`).
    pub(crate) attributes: Vec<(&'static str, String)>,
    pub(crate) kind: Kind,
    pub(crate) value: f64,
}

/// Java's telemetry name of `metric` in `group` (`producer-metrics`).
pub(crate) fn metric_name(group: &str, metric: &str) -> String {
    let group = group.strip_suffix("-metrics").unwrap_or(group);
    let mut name = String::with_capacity(PREFIX.len() + group.len() + metric.len() + 1);
    name.push_str(PREFIX);
    name.push_str(&group.replace('-', "."));
    name.push('.');
    name.push_str(&metric.replace('-', "."));
    name
}

fn kind_of(metric: &str) -> Kind {
    if metric.ends_with("-total") { Kind::Sum } else { Kind::Gauge }
}

/// Every metric of `m` as points: producer-wide (`producer-metrics`), per topic
/// (`producer-topic-metrics`, tag `topic`) and per broker
/// (`producer-node-metrics`, tag `node_id` = `node-N`, as Java names it).
/// `metadata-age` before the first metadata answer is left out.
pub(crate) fn points(m: &ProducerMetrics) -> Vec<Point> {
    let mut out = Vec::new();
    add(&mut out, "producer-metrics", &[], m.iter());
    for (topic, t) in &m.topics {
        add(&mut out, "producer-topic-metrics", &[("topic", topic.clone())], t.iter());
    }
    for (node, b) in &m.brokers {
        add(&mut out, "producer-node-metrics", &[("node_id", format!("node-{node}"))], b.iter());
    }
    out
}

/// The finite values of one group's `metrics`, each with `attributes`.
fn add(
    out: &mut Vec<Point>,
    group: &str,
    attributes: &[(&'static str, String)],
    metrics: impl Iterator<Item = (&'static str, f64)>,
) {
    for (name, value) in metrics.filter(|(_, v)| v.is_finite()) {
        out.push(Point {
            name: metric_name(group, name),
            attributes: attributes.to_vec(),
            kind: kind_of(name),
            value,
        });
    }
}

/// Times of one push, in nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times {
    /// When the sums start: the producer's start (cumulative) or the last push (delta).
    pub(crate) start_ns: u64,
    /// Now.
    pub(crate) now_ns: u64,
    /// Sums are deltas since `start_ns`.
    pub(crate) delta: bool,
}

/// `MetricsData { resource_metrics: [ResourceMetrics { resource, scope_metrics:
/// [ScopeMetrics { metrics }] }] }`.
pub(crate) fn encode(resource: &[(&str, &str)], points: &[Point], times: Times) -> Vec<u8> {
    let mut res = Vec::new();
    for (k, v) in resource {
        message(&mut res, 1, |b| key_value(b, k, v)); // Resource.attributes
    }
    let mut scope = Vec::new();
    for p in points {
        message(&mut scope, 2, |b| metric(b, p, times)); // ScopeMetrics.metrics
    }
    let mut rm = Vec::new();
    message(&mut rm, 1, |b| b.extend_from_slice(&res)); // ResourceMetrics.resource
    message(&mut rm, 2, |b| b.extend_from_slice(&scope)); // ResourceMetrics.scope_metrics
    let mut out = Vec::with_capacity(rm.len() + 8);
    message(&mut out, 1, |b| b.extend_from_slice(&rm)); // MetricsData.resource_metrics
    out
}

fn metric(b: &mut Vec<u8>, p: &Point, t: Times) {
    bytes_field(b, 1, p.name.as_bytes()); // Metric.name
    match p.kind {
        // Metric.gauge { data_points }
        Kind::Gauge => message(b, 5, |g| message(g, 1, |d| data_point(d, p, None, t.now_ns))),
        // Metric.sum { data_points, aggregation_temporality, is_monotonic }
        Kind::Sum => message(b, 7, |s| {
            message(s, 1, |d| data_point(d, p, Some(t.start_ns), t.now_ns));
            varint_field(s, 2, if t.delta { 1 } else { 2 }); // DELTA = 1, CUMULATIVE = 2
            varint_field(s, 3, 1);
        }),
    }
}

fn data_point(b: &mut Vec<u8>, p: &Point, start_ns: Option<u64>, now_ns: u64) {
    if let Some(start) = start_ns {
        fixed64_field(b, 2, start); // start_time_unix_nano
    }
    fixed64_field(b, 3, now_ns); // time_unix_nano
    fixed64_field(b, 4, p.value.to_bits()); // as_double
    for (k, v) in &p.attributes {
        message(b, 7, |kv| key_value(kv, k, v)); // attributes
    }
}

/// `KeyValue { key, value: AnyValue { string_value } }`.
fn key_value(b: &mut Vec<u8>, k: &str, v: &str) {
    bytes_field(b, 1, k.as_bytes());
    message(b, 2, |a| bytes_field(a, 1, v.as_bytes()));
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn tag(b: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(b, (u64::from(field) << 3) | u64::from(wire_type));
}

fn varint_field(b: &mut Vec<u8>, field: u32, v: u64) {
    tag(b, field, 0);
    varint(b, v);
}

fn fixed64_field(b: &mut Vec<u8>, field: u32, v: u64) {
    tag(b, field, 1);
    b.extend_from_slice(&v.to_le_bytes());
}

fn bytes_field(b: &mut Vec<u8>, field: u32, v: &[u8]) {
    tag(b, field, 2);
    varint(b, v.len() as u64);
    b.extend_from_slice(v);
}

/// A length-delimited sub-message written by `f`.
fn message(b: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    bytes_field(b, field, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_java_s() {
        assert_eq!(
            metric_name("producer-metrics", "record-send-total"),
            "org.apache.kafka.producer.record.send.total"
        );
        assert_eq!(
            metric_name("producer-topic-metrics", "byte-total"),
            "org.apache.kafka.producer.topic.byte.total"
        );
        assert_eq!(
            metric_name("producer-node-metrics", "request-latency-avg"),
            "org.apache.kafka.producer.node.request.latency.avg"
        );
    }

    #[test]
    fn totals_are_sums_the_rest_gauges() {
        let mut m = ProducerMetrics { record_send_total: 7, ..Default::default() };
        m.topics.insert("t".into(), Default::default());
        let p = points(&m);
        let send = p.iter().find(|p| p.name.ends_with("producer.record.send.total")).unwrap();
        assert_eq!((send.kind, send.value), (Kind::Sum, 7.0));
        let rate = p.iter().find(|p| p.name.ends_with("producer.record.send.rate")).unwrap();
        assert_eq!(rate.kind, Kind::Gauge);
        assert!(p.iter().all(|p| !p.name.ends_with("metadata.age")), "no metadata yet: left out");
        let topic = p.iter().find(|p| p.name.ends_with("producer.topic.record.send.total")).unwrap();
        assert_eq!(topic.attributes, vec![("topic", "t".to_string())]);
    }

    #[test]
    fn one_gauge_encodes_as_protobuf_expects() {
        let p = Point { name: "a".into(), attributes: Vec::new(), kind: Kind::Gauge, value: 1.0 };
        let out = encode(&[], &[p], Times { start_ns: 0, now_ns: 2, delta: false });
        let point =
            [[0x19].as_slice(), &2u64.to_le_bytes(), &[0x21], &1.0f64.to_bits().to_le_bytes()].concat();
        let gauge = [[0x0a, point.len() as u8].as_slice(), &point].concat();
        let metric = [[0x0a, 1, b'a', 0x2a, gauge.len() as u8].as_slice(), &gauge].concat();
        let scope = [[0x12, metric.len() as u8].as_slice(), &metric].concat();
        let rm = [[0x0a, 0, 0x12, scope.len() as u8].as_slice(), &scope].concat();
        let expected = [[0x0a, rm.len() as u8].as_slice(), &rm].concat();
        assert_eq!(out, expected);
    }
}
