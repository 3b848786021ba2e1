//! The statistics document of `statistics.interval.ms`: librdkafka's JSON
//! (librdkafka's STATISTICS.md) where a field means the same in herald, plus a
//! `herald` object with the whole [`ProducerMetrics`] snapshot under Java's names.
//! `docs/statistics.md` lists the fields. Written by hand, so it needs no JSON
//! library (the `json` feature is optional).

use std::fmt::Write;

use super::ProducerMetrics;

/// What one statistics document is made of.
pub(crate) struct Statistics<'a> {
    /// librdkafka's `name`: the producer's instance name.
    pub(crate) name: &'a str,
    pub(crate) client_id: &'a str,
    /// A monotonic clock, in microseconds.
    pub(crate) ts_us: u64,
    /// Wall clock, seconds since the epoch.
    pub(crate) time_s: u64,
    /// Since the producer started, in microseconds.
    pub(crate) age_us: u64,
    /// Records queued in the accumulator, not yet in a request.
    pub(crate) msg_cnt: u64,
    pub(crate) metrics: &'a ProducerMetrics,
}

/// A JSON string literal.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number (`null` for NaN and infinities, which JSON cannot hold).
fn number(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// `"key":` after a comma unless it is the object's first member.
fn key(out: &mut String, k: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    string(out, k);
    out.push(':');
}

fn int(out: &mut String, k: &str, v: u64) {
    key(out, k);
    let _ = write!(out, "{v}");
}

/// An object of (Java name, value) pairs.
fn java_object<'a>(out: &mut String, values: impl Iterator<Item = (&'a str, f64)>) {
    out.push('{');
    for (k, v) in values {
        key(out, k);
        number(out, v);
    }
    out.push('}');
}

impl Statistics<'_> {
    /// The document, on one line, as librdkafka emits it.
    pub(crate) fn to_json(&self) -> String {
        let m = self.metrics;
        let mut out = String::with_capacity(2048);
        out.push('{');
        key(&mut out, "name");
        string(&mut out, self.name);
        key(&mut out, "client_id");
        string(&mut out, self.client_id);
        key(&mut out, "type");
        string(&mut out, "producer");
        int(&mut out, "ts", self.ts_us);
        int(&mut out, "time", self.time_s);
        int(&mut out, "age", self.age_us);
        int(&mut out, "msg_cnt", self.msg_cnt);
        int(&mut out, "msg_size", m.buffer_total_bytes.saturating_sub(m.buffer_available_bytes));
        int(&mut out, "msg_size_max", m.buffer_total_bytes);
        int(&mut out, "tx", m.request_total);
        int(&mut out, "tx_bytes", m.outgoing_byte_total);
        int(&mut out, "rx", m.brokers.values().map(|b| b.request_total).sum());
        int(&mut out, "rx_bytes", m.incoming_byte_total);
        int(&mut out, "txmsgs", m.record_send_total);
        int(&mut out, "txmsg_bytes", m.topics.values().map(|t| t.byte_total).sum());
        key(&mut out, "brokers");
        out.push('{');
        for (id, b) in &m.brokers {
            key(&mut out, &id.to_string());
            out.push('{');
            key(&mut out, "name");
            string(&mut out, &id.to_string());
            key(&mut out, "nodeid");
            let _ = write!(out, "{id}");
            int(&mut out, "tx", b.request_sent_total);
            int(&mut out, "rx", b.request_total);
            key(&mut out, "rtt");
            out.push('{');
            // librdkafka's window stats are integers, in microseconds.
            int(&mut out, "avg", (b.request_latency_avg * 1000.0).round() as u64);
            int(&mut out, "max", (b.request_latency_max * 1000.0).round() as u64);
            int(&mut out, "cnt", b.request_total);
            out.push_str("}}");
        }
        out.push('}');
        key(&mut out, "topics");
        out.push('{');
        for (name, t) in &m.topics {
            key(&mut out, name);
            out.push('{');
            key(&mut out, "topic");
            string(&mut out, name);
            int(&mut out, "txmsgs", t.record_send_total);
            int(&mut out, "txbytes", t.byte_total);
            out.push('}');
        }
        out.push('}');
        key(&mut out, "herald");
        out.push('{');
        for (k, v) in m.iter() {
            key(&mut out, k);
            number(&mut out, v);
        }
        key(&mut out, "topics");
        out.push('{');
        for (name, t) in &m.topics {
            key(&mut out, name);
            java_object(&mut out, t.iter());
        }
        out.push('}');
        key(&mut out, "brokers");
        out.push('{');
        for (id, b) in &m.brokers {
            key(&mut out, &id.to_string());
            java_object(&mut out, b.iter());
        }
        out.push_str("}}}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{BrokerMetrics, TopicMetrics};

    #[test]
    fn the_document_is_json_with_librdkafka_s_names() {
        let mut m = ProducerMetrics {
            record_send_total: 30,
            request_total: 3,
            outgoing_byte_total: 5000,
            incoming_byte_total: 300,
            buffer_total_bytes: 1000,
            buffer_available_bytes: 400,
            metadata_age: None,
            ..ProducerMetrics::default()
        };
        let t = TopicMetrics {
            record_send_total: 30,
            byte_total: 4000,
            compression_rate: 1.0,
            ..Default::default()
        };
        m.topics.insert("a \"quoted\"\ntopic".into(), t);
        let b = BrokerMetrics {
            request_total: 2,
            request_sent_total: 3,
            request_latency_avg: 1.5,
            request_latency_max: 2.25,
        };
        m.brokers.insert(7, b);
        let s = Statistics {
            name: "herald#producer-1",
            client_id: "c",
            ts_us: 1,
            time_s: 2,
            age_us: 3,
            msg_cnt: 4,
            metrics: &m,
        };
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["type"], "producer");
        assert_eq!(
            (v["msg_cnt"].as_u64(), v["msg_size"].as_u64(), v["msg_size_max"].as_u64()),
            (Some(4), Some(600), Some(1000))
        );
        assert_eq!((v["tx"].as_u64(), v["rx"].as_u64(), v["txmsgs"].as_u64()), (Some(3), Some(2), Some(30)));
        assert_eq!(
            (v["tx_bytes"].as_u64(), v["rx_bytes"].as_u64(), v["txmsg_bytes"].as_u64()),
            (Some(5000), Some(300), Some(4000))
        );
        let b = &v["brokers"]["7"];
        assert_eq!((b["nodeid"].as_i64(), b["tx"].as_u64(), b["rx"].as_u64()), (Some(7), Some(3), Some(2)));
        assert_eq!((b["rtt"]["avg"].as_u64(), b["rtt"]["max"].as_u64()), (Some(1500), Some(2250)));
        let t = &v["topics"]["a \"quoted\"\ntopic"];
        assert_eq!((t["topic"].as_str(), t["txmsgs"].as_u64()), (Some("a \"quoted\"\ntopic"), Some(30)));
        let h = &v["herald"];
        assert_eq!(h["record-send-total"].as_f64(), Some(30.0));
        assert!(h["metadata-age"].is_null(), "no metadata answer yet");
        assert_eq!(h["topics"]["a \"quoted\"\ntopic"]["byte-total"].as_f64(), Some(4000.0));
        assert_eq!(h["brokers"]["7"]["request-latency-max"].as_f64(), Some(2.25));
    }
}
