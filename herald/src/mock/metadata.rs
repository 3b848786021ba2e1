//! Metadata (key 3), versions 0–12: the live brokers, and each topic's partitions
//! with their leader, leader epoch, replicas and in-sync replicas.
//!
//! Unknown topics are `UNKNOWN_TOPIC_OR_PARTITION`, unless the cluster auto-creates
//! topics and the request allows it (always before v4). A partition without a live
//! leader is `LEADER_NOT_AVAILABLE` with leader -1. Stopped brokers are left out,
//! as fenced brokers are in KRaft.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::state::{State, TopicConfig, validate_topic_name};
use super::wire::Ctx;
use crate::error::ErrorCode;

/// "Not requested" for authorized-operations fields, as Kafka sends it.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub(super) fn handle(
    ctx: &Ctx,
    req: MetadataRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> MetadataResponse {
    let mut s = ctx.cluster.state.lock();
    let mut resp = MetadataResponse::default();
    resp.cluster_id = Some(StrBytes::from_string(s.cluster_id.clone()));
    let live = s.live_brokers();
    resp.controller_id = BrokerId(live.first().copied().unwrap_or(-1));
    resp.cluster_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    for id in &live {
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(*id);
        b.host = StrBytes::from_static_str("127.0.0.1");
        b.port = i32::from(s.brokers[id].port);
        resp.brokers.push(b);
    }
    let allow_auto = version < 4 || req.allow_auto_topic_creation;
    let names: Vec<(Option<String>, uuid::Uuid)> = match &req.topics {
        None => s.topics.keys().map(|n| (Some(n.clone()), uuid::Uuid::nil())).collect(),
        Some(ts) => ts.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect(),
    };
    for (name, id) in names {
        let name = match name {
            Some(n) => n,
            None => match s.topic_by_id(id) {
                Some((n, _)) => n.clone(),
                None => {
                    let mut t = MetadataResponseTopic::default();
                    t.error_code = ErrorCode::UNKNOWN_TOPIC_ID.code();
                    t.topic_id = id;
                    t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
                    resp.topics.push(t);
                    continue;
                }
            },
        };
        resp.topics.push(describe(&mut s, &name, fault, allow_auto));
    }
    resp
}

fn describe(s: &mut State, name: &str, fault: Option<ErrorCode>, allow_auto: bool) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(name.to_owned())));
    t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    if let Some(code) = fault {
        t.error_code = code.code();
        return t;
    }
    if !s.topics.contains_key(name) {
        if let Err(_msg) = validate_topic_name(name) {
            t.error_code = ErrorCode::INVALID_TOPIC_EXCEPTION.code();
            return t;
        }
        if !(allow_auto && s.settings.auto_create_topics) {
            t.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
            return t;
        }
        if s.create_topic(name, -1, 1, TopicConfig::default()).is_err() {
            t.error_code = ErrorCode::LEADER_NOT_AVAILABLE.code();
            return t;
        }
        tracing::debug!(topic = name, "auto-created topic");
    }
    let live = s.live_brokers();
    let Some(topic) = s.topics.get(name) else {
        t.error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
        return t;
    };
    t.topic_id = topic.id;
    for (i, p) in topic.partitions.iter().enumerate() {
        let mut mp = MetadataResponsePartition::default();
        mp.partition_index = i as i32;
        mp.leader_epoch = p.leader_epoch;
        if p.leader >= 0 && live.contains(&p.leader) {
            mp.leader_id = BrokerId(p.leader);
        } else {
            mp.leader_id = BrokerId(-1);
            mp.error_code = ErrorCode::LEADER_NOT_AVAILABLE.code();
        }
        mp.replica_nodes = p.replicas.iter().map(|r| BrokerId(*r)).collect();
        mp.isr_nodes = p.replicas.iter().filter(|r| live.contains(r)).map(|r| BrokerId(*r)).collect();
        mp.offline_replicas = p.replicas.iter().filter(|r| !live.contains(r)).map(|r| BrokerId(*r)).collect();
        t.partitions.push(mp);
    }
    t
}
