//! OffsetFetch (key 9), versions 1–9: a group's committed offsets (here, those of
//! committed transactions). v8+ asks for several groups at once. A null topic
//! list asks for every partition the group has an offset for; a partition without
//! one is answered with offset -1. With `require_stable` (v7+), a partition an open
//! transaction has committed an offset for is `UNSTABLE_OFFSET_COMMIT` (KIP-447).

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::state::State;
use super::txn::{NOT_COORDINATOR, UNSTABLE_OFFSET_COMMIT};
use super::wire::Ctx;
use crate::error::ErrorCode;

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type PartitionAnswer = (i32, i64, i32, String, ErrorCode);

pub(super) fn handle(
    ctx: &Ctx,
    req: OffsetFetchRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> OffsetFetchResponse {
    let s = ctx.cluster.state.lock();
    let mut resp = OffsetFetchResponse::default();
    if version >= 8 {
        for g in &req.groups {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>()
            });
            let (code, answer) = group(&s, ctx.broker, &g.group_id.0, topics, req.require_stable, fault);
            let mut gr = OffsetFetchResponseGroup::default();
            gr.group_id = g.group_id.clone();
            gr.error_code = code.code();
            for (topic, parts) in answer {
                let mut tr = OffsetFetchResponseTopics::default();
                tr.name = TopicName(StrBytes::from_string(topic));
                for (index, offset, epoch, metadata, code) in parts {
                    let mut p = OffsetFetchResponsePartitions::default();
                    p.partition_index = index;
                    p.committed_offset = offset;
                    p.committed_leader_epoch = epoch;
                    p.metadata = Some(StrBytes::from_string(metadata));
                    p.error_code = code.code();
                    tr.partitions.push(p);
                }
                gr.topics.push(tr);
            }
            resp.groups.push(gr);
        }
    } else {
        let topics = req.topics.as_ref().map(|ts| {
            ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>()
        });
        let stable = version >= 7 && req.require_stable;
        let (code, mut answer) = group(&s, ctx.broker, &req.group_id.0, topics.clone(), stable, fault);
        resp.error_code = code.code();
        if version < 2 && !code.is_ok() {
            // v1 has no top-level error: every partition asked about carries it.
            answer = topics
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, -1, -1, String::new(), code)).collect()))
                .collect();
        }
        for (topic, parts) in answer {
            let mut tr = OffsetFetchResponseTopic::default();
            tr.name = TopicName(StrBytes::from_string(topic));
            for (index, offset, epoch, metadata, code) in parts {
                let mut p = OffsetFetchResponsePartition::default();
                p.partition_index = index;
                p.committed_offset = offset;
                p.committed_leader_epoch = epoch;
                p.metadata = Some(StrBytes::from_string(metadata));
                p.error_code = code.code();
                tr.partitions.push(p);
            }
            resp.topics.push(tr);
        }
    }
    resp
}

/// The group-level error and the answers per topic.
fn group(
    s: &State,
    broker: i32,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    fault: Option<ErrorCode>,
) -> (ErrorCode, Vec<(String, Vec<PartitionAnswer>)>) {
    if let Some(code) = fault {
        return (code, Vec::new());
    }
    if s.coordinator_for(group) != Some(broker) {
        return (NOT_COORDINATOR, Vec::new());
    }
    let offsets = s.txn.offsets_of(group);
    let topics = topics.unwrap_or_else(|| {
        let mut all: Vec<(String, Vec<i32>)> = Vec::new();
        for (t, p) in offsets.into_iter().flat_map(|o| o.keys()) {
            match all.last_mut() {
                Some((last, parts)) if last == t => parts.push(*p),
                _ => all.push((t.clone(), vec![*p])),
            }
        }
        all
    });
    let answer = topics
        .into_iter()
        .map(|(topic, parts)| {
            let parts = parts
                .into_iter()
                .map(|p| {
                    if require_stable && s.txn.has_pending_offset(group, &topic, p) {
                        return (p, -1, -1, String::new(), UNSTABLE_OFFSET_COMMIT);
                    }
                    match offsets.and_then(|o| o.get(&(topic.clone(), p))) {
                        Some(o) => (
                            p,
                            o.offset,
                            o.leader_epoch,
                            o.metadata.clone().unwrap_or_default(),
                            ErrorCode::NONE,
                        ),
                        None => (p, -1, -1, String::new(), ErrorCode::NONE),
                    }
                })
                .collect();
            (topic, parts)
        })
        .collect();
    (ErrorCode::NONE, answer)
}
