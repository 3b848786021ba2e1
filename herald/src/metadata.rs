//! Cluster metadata: which brokers exist and which one leads each partition.
//!
//! [`request`] builds the Metadata request for the topics a client uses; [`parse`]
//! turns the broker's answer into a [`Snapshot`], refusing what cannot be true
//! (negative or absurd partition indexes, ports outside 1..65535) instead of
//! trusting it.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    MetadataRequest, MetadataResponse, TopicName, metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::connection::BrokerAddr;
use crate::error::{Error, ErrorCode};

/// No leader (`-1` in Kafka's metadata).
pub(crate) const NO_LEADER: i32 = -1;

/// The most partitions herald believes a topic can have; Kafka itself has no hard
/// limit, but a metadata answer above this is corrupt, not real. Also the most
/// partitions one answer may describe in all: herald keeps each topic's partitions
/// in a table indexed by partition number, sized by the highest index named, so
/// without a bound over the whole answer a few kilobytes naming a high index in
/// many topics would make herald allocate gigabytes.
const MAX_PARTITIONS: i32 = 1 << 20;

/// One partition as the metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartitionInfo {
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
}

/// One topic as the metadata describes it.
#[derive(Clone, Debug)]
pub(crate) struct TopicInfo {
    pub(crate) name: Arc<str>,
    pub(crate) id: Uuid,
    pub(crate) error: ErrorCode,
    /// Indexed by partition number.
    pub(crate) partitions: Vec<PartitionInfo>,
}

/// One answer to a Metadata request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) brokers: HashMap<i32, BrokerAddr>,
    pub(crate) topics: Vec<TopicInfo>,
}

/// A Metadata request for `topics` (`None`: all topics). Like the Java producer it
/// lets the broker auto-create topics when the broker is configured to.
pub(crate) fn request(topics: Option<&[Arc<str>]>, allow_auto_create: bool) -> MetadataRequest {
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                let mut rt = MetadataRequestTopic::default();
                rt.name = Some(TopicName(StrBytes::from_string(t.to_string())));
                rt
            })
            .collect()
    });
    req.allow_auto_topic_creation = allow_auto_create;
    req
}

/// Turns a Metadata response into a [`Snapshot`].
pub(crate) fn parse(resp: MetadataResponse, broker: &str) -> Result<Snapshot, Error> {
    let top = ErrorCode::new(resp.error_code);
    if !top.is_ok() {
        return Err(Error::broker(top, Some(format!("Metadata from {broker}"))));
    }
    let mut brokers = HashMap::new();
    for b in resp.brokers {
        let Ok(port) = u16::try_from(b.port) else {
            tracing::warn!(
                broker,
                node = b.node_id.0,
                port = b.port,
                "metadata names a broker with an invalid port; ignored"
            );
            continue;
        };
        if port == 0 || b.host.is_empty() {
            tracing::warn!(
                broker,
                node = b.node_id.0,
                "metadata names a broker without host or port; ignored"
            );
            continue;
        }
        brokers
            .insert(b.node_id.0, BrokerAddr { node_id: Some(b.node_id.0), host: b.host.to_string(), port });
    }
    let mut topics = Vec::with_capacity(resp.topics.len());
    // Table slots allocated so far, over all topics (bounded by MAX_PARTITIONS).
    let mut slots: i64 = 0;
    for t in resp.topics {
        let Some(name) = t.name else {
            // Only topic-id lookups return nameless topics, and herald makes none.
            continue;
        };
        let mut count: i32 = 0;
        for p in &t.partitions {
            if !(0..MAX_PARTITIONS).contains(&p.partition_index) {
                return Err(Error::protocol(
                    broker,
                    format!("metadata for topic {} names partition {}", name.0, p.partition_index),
                ));
            }
            count = count.max(p.partition_index + 1);
        }
        slots += i64::from(count);
        if slots > i64::from(MAX_PARTITIONS) {
            return Err(Error::protocol(
                broker,
                format!(
                    "metadata describes more than {MAX_PARTITIONS} partitions in all (at topic {})",
                    name.0
                ),
            ));
        }
        let mut partitions = vec![
            PartitionInfo {
                leader: NO_LEADER,
                leader_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
            };
            // count is in 0..=MAX_PARTITIONS, checked above.
            count as usize
        ];
        for p in t.partitions {
            let leader =
                if ErrorCode::new(p.error_code) == ErrorCode::LEADER_NOT_AVAILABLE || p.leader_id.0 < 0 {
                    NO_LEADER
                } else {
                    p.leader_id.0
                };
            partitions[p.partition_index as usize] = PartitionInfo {
                leader,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                isr: p.isr_nodes.iter().map(|r| r.0).collect(),
            };
        }
        topics.push(TopicInfo {
            name: Arc::from(name.0.as_str()),
            id: t.topic_id,
            error: ErrorCode::new(t.error_code),
            partitions,
        });
    }
    Ok(Snapshot { brokers, topics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn partition(i: i32, leader: i32) -> MetadataResponsePartition {
        let mut p = MetadataResponsePartition::default();
        p.partition_index = i;
        p.leader_id = BrokerId(leader);
        p
    }

    #[test]
    fn parses_brokers_and_leaders() {
        let mut resp = MetadataResponse::default();
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(1);
        b.host = StrBytes::from_static_str("127.0.0.1");
        b.port = 9092;
        resp.brokers.push(b);
        let mut bad = MetadataResponseBroker::default();
        bad.node_id = BrokerId(2);
        bad.host = StrBytes::from_static_str("h");
        bad.port = 70000;
        resp.brokers.push(bad);
        let mut t = MetadataResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_static_str("t")));
        t.partitions = vec![partition(1, 1), partition(0, -1)];
        resp.topics.push(t);
        let s = parse(resp, "test").unwrap();
        assert_eq!(s.brokers.len(), 1);
        assert_eq!(s.topics[0].partitions.len(), 2);
        assert_eq!(s.topics[0].partitions[0].leader, NO_LEADER);
        assert_eq!(s.topics[0].partitions[1].leader, 1);
    }

    #[test]
    fn refuses_absurd_partition_index() {
        let mut resp = MetadataResponse::default();
        let mut t = MetadataResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_static_str("t")));
        t.partitions = vec![partition(i32::MAX, 1)];
        resp.topics.push(t);
        assert!(parse(resp, "test").is_err());
    }

    /// Found while writing the `client_response` fuzz harness and reproduced
    /// through it (libFuzzer: out-of-memory, 4391 MB): a 3.7 KB Metadata v12 answer
    /// naming partition 1048575 (the highest herald accepts) in each of 80 topics
    /// made `parse` allocate a 2^20-slot table per topic: 4.5 GB and 12 s. The
    /// tables of one answer are now bounded in all.
    #[test]
    fn bounds_the_partition_tables_of_one_answer() {
        let answer = |topics: usize, index: i32| {
            let mut resp = MetadataResponse::default();
            for i in 0..topics {
                let mut t = MetadataResponseTopic::default();
                t.name = Some(TopicName(StrBytes::from_string(format!("{i}"))));
                t.partitions = vec![partition(index, 1)];
                resp.topics.push(t);
            }
            resp
        };
        let start = std::time::Instant::now();
        assert!(parse(answer(80, MAX_PARTITIONS - 1), "test").is_err());
        assert!(parse(answer(2, MAX_PARTITIONS / 2), "test").is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // One topic at the limit is still read.
        let s = parse(answer(1, MAX_PARTITIONS - 1), "test").unwrap();
        assert_eq!(s.topics[0].partitions.len(), MAX_PARTITIONS as usize);
        assert_eq!(s.topics[0].partitions[MAX_PARTITIONS as usize - 1].leader, 1);
    }
}
