//! Fetch (key 1), versions 4–16: whole stored batches from the fetch offset on,
//! up to the partition's and the request's byte limits (always at least one batch,
//! as Kafka does). Waits up to `max_wait_ms` for `min_bytes` to arrive. No fetch
//! sessions: the answer's session id is 0, which clients take as "full fetches".
//!
//! `isolation_level` 1 (read_committed) reads only below the last stable offset
//! and names the aborted transactions overlapping what is returned, for the
//! consumer to skip (Kafka's `collectAbortedTransactions`).

use std::time::Duration;

use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};

use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) async fn handle(
    ctx: &Ctx,
    req: FetchRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> FetchResponse {
    let max_wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0).min(30_000));
    let deadline = tokio::time::Instant::now() + max_wait;
    loop {
        let notified = ctx.cluster.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (resp, bytes) = answer(ctx, &req, version, fault);
        if bytes >= usize::try_from(req.min_bytes).unwrap_or(0) || fault.is_some() {
            return resp;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return resp;
        }
    }
}

fn answer(ctx: &Ctx, req: &FetchRequest, version: i16, fault: Option<ErrorCode>) -> (FetchResponse, usize) {
    let s = ctx.cluster.state.lock();
    let mut resp = FetchResponse::default();
    let mut budget = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let read_committed = req.isolation_level == 1;
    for t in &req.topics {
        let name = if version >= 13 {
            s.topic_by_id(t.topic_id).map(|(n, _)| n.clone())
        } else {
            Some(t.topic.0.to_string())
        };
        let topic = name.as_ref().and_then(|n| s.topics.get(n));
        let mut tr = FetchableTopicResponse::default();
        tr.topic = t.topic.clone();
        tr.topic_id = t.topic_id;
        for p in &t.partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = p.partition;
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
            pd.preferred_read_replica = BrokerId(-1);
            pd.aborted_transactions = None;
            let part = topic.and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?));
            let code = match (fault, topic, part) {
                (Some(code), _, _) => code,
                (None, None, _) if version >= 13 => ErrorCode::UNKNOWN_TOPIC_ID,
                (None, _, None) => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                (None, _, Some(part)) if part.leader != ctx.broker => ErrorCode::NOT_LEADER_OR_FOLLOWER,
                (None, _, Some(part)) => {
                    pd.high_watermark = part.high_watermark();
                    pd.last_stable_offset = part.last_stable_offset();
                    pd.log_start_offset = part.log_start;
                    if p.fetch_offset < part.log_start || p.fetch_offset > part.high_watermark() {
                        ErrorCode::new(1) // OFFSET_OUT_OF_RANGE
                    } else {
                        let limit = usize::try_from(p.partition_max_bytes).unwrap_or(0).min(budget);
                        let data = if read_committed {
                            let (data, end) =
                                part.read_below(p.fetch_offset, limit, part.last_stable_offset());
                            let aborted = part
                                .aborted_between(p.fetch_offset, end)
                                .into_iter()
                                .map(|a| {
                                    let mut t = AbortedTransaction::default();
                                    t.producer_id = ProducerId(a.producer_id);
                                    t.first_offset = a.first_offset;
                                    t
                                })
                                .collect();
                            pd.aborted_transactions = Some(aborted);
                            data
                        } else {
                            part.read(p.fetch_offset, limit)
                        };
                        budget = budget.saturating_sub(data.len());
                        total += data.len();
                        pd.records = Some(data);
                        ErrorCode::NONE
                    }
                }
            };
            pd.error_code = code.code();
            tr.partitions.push(pd);
        }
        resp.responses.push(tr);
    }
    (resp, total)
}
