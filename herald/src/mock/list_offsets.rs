//! ListOffsets (key 2), versions 1–9: a partition's first offset (timestamp -2, or
//! -4 for the earliest local), its end (-1), the record with the largest timestamp
//! (-3), or the first record at or after a timestamp (offset -1 when none is).
//! With `isolation_level` 1 (read_committed, v2+) the end is the last stable
//! offset, and a timestamp found at or past it is not answered, as Kafka does.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: ListOffsetsRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> ListOffsetsResponse {
    let read_committed = version >= 2 && req.isolation_level == 1;
    let s = ctx.cluster.state.lock();
    let mut resp = ListOffsetsResponse::default();
    for t in req.topics {
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = t.name.clone();
        let topic = s.topics.get(t.name.0.as_str());
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            let part = topic.and_then(|t| t.partitions.get(usize::try_from(p.partition_index).ok()?));
            let code = match (fault, part) {
                (Some(code), _) => code,
                (None, None) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                (None, Some(part)) if part.leader != ctx.broker => ErrorCode::NOT_LEADER_OR_FOLLOWER,
                (None, Some(part)) => {
                    pr.leader_epoch = part.leader_epoch;
                    let end = if read_committed { part.last_stable_offset() } else { part.high_watermark() };
                    let found = match p.timestamp {
                        -2 | -4 => Some((part.log_start, -1)),
                        -1 => Some((end, -1)),
                        -3 => part.max_timestamp_offset(),
                        ts if ts >= 0 => part.offset_for_timestamp(ts).filter(|(o, _)| *o < end),
                        _ => Some((part.log_start, -1)),
                    };
                    if let Some((offset, ts)) = found {
                        pr.offset = offset;
                        pr.timestamp = ts;
                    }
                    ErrorCode::NONE
                }
            };
            pr.error_code = code.code();
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
