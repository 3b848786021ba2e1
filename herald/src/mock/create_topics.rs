//! CreateTopics (key 19), versions 2–7.
//!
//! Checks names (`INVALID_TOPIC_EXCEPTION`), partition counts
//! (`INVALID_PARTITIONS`), replication factors against the live brokers
//! (`INVALID_REPLICATION_FACTOR`), config names and values (`INVALID_CONFIG`), and
//! existing topics (`TOPIC_ALREADY_EXISTS`). Manual replica assignments are refused
//! with `INVALID_REQUEST`. `validate_only` checks without creating. A request whose
//! topics together would create more than 10,000 partitions is refused whole with
//! `POLICY_VIOLATION`, as KRaft does (KAFKA-17870).

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::state::{MAX_PARTITIONS_PER_REQUEST, POLICY_VIOLATION, TOO_MANY_PARTITIONS, TopicConfig};
use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: CreateTopicsRequest,
    _version: i16,
    fault: Option<ErrorCode>,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let mut s = ctx.cluster.state.lock();
    // Partitions the request would create, counted as Kafka's controller counts them.
    let default_partitions = i64::from(s.settings.default_partitions);
    let total: i64 = req
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => default_partitions,
            (0, n) => i64::from(n.max(0)),
            (a, _) => a as i64,
        })
        .sum();
    let too_many = total > MAX_PARTITIONS_PER_REQUEST;
    for t in req.topics {
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        r.num_partitions = -1;
        r.replication_factor = -1;
        r.configs = Some(Vec::new());
        let fail = |r: &mut CreatableTopicResult, code: ErrorCode, msg: String| {
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(msg));
        };
        if let Some(code) = fault {
            r.error_code = code.code();
            resp.topics.push(r);
            continue;
        }
        if too_many {
            fail(&mut r, POLICY_VIOLATION, TOO_MANY_PARTITIONS.to_owned());
            resp.topics.push(r);
            continue;
        }
        if !t.assignments.is_empty() {
            fail(
                &mut r,
                ErrorCode::INVALID_REQUEST,
                "manual replica assignments are not supported by the embedded cluster".into(),
            );
            resp.topics.push(r);
            continue;
        }
        let configs: Vec<(String, Option<String>)> =
            t.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
        let config = match TopicConfig::parse(&configs) {
            Ok(c) => c,
            Err(m) => {
                fail(&mut r, ErrorCode::INVALID_CONFIG, m);
                resp.topics.push(r);
                continue;
            }
        };
        let name = t.name.0.to_string();
        let result = if req.validate_only {
            // Validate on a scratch copy of the topic table.
            let exists = s.topics.contains_key(&name);
            let mut scratch = super::state::State {
                cluster_id: String::new(),
                brokers: s.brokers.clone(),
                topics: Default::default(),
                next_producer_id: 0,
                settings: s.settings.clone(),
                txn: Default::default(),
            };
            if exists {
                Err((ErrorCode::TOPIC_ALREADY_EXISTS, format!("Topic '{name}' already exists.")))
            } else {
                scratch.create_topic(&name, t.num_partitions, t.replication_factor, config)
            }
        } else {
            s.create_topic(&name, t.num_partitions, t.replication_factor, config)
        };
        match result {
            Ok(id) => {
                r.topic_id = id;
                if let Some(topic) = s.topics.get(&name) {
                    r.num_partitions = topic.partitions.len() as i32;
                    r.replication_factor =
                        topic.partitions.first().map(|p| p.replicas.len() as i16).unwrap_or(1);
                }
            }
            Err((code, msg)) => fail(&mut r, code, msg),
        }
        resp.topics.push(r);
    }
    resp
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use crate::mock::MockCluster;
    use crate::protocol::{decode_response, encode_request, response_header_version, split_response_header};

    async fn create(cluster: &MockCluster, topics: &[(&'static str, i32)]) -> Vec<(String, i16)> {
        let mut req = CreateTopicsRequest::default();
        req.topics = topics
            .iter()
            .map(|(name, n)| {
                let mut t = CreatableTopic::default();
                t.name = TopicName(StrBytes::from_static_str(name));
                t.num_partitions = *n;
                t.replication_factor = 1;
                t
            })
            .collect();
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 7, &StrBytes::from_static_str("t"), 7, &req).unwrap();
        let frame = Bytes::from(buf).slice(4..);
        let resp = cluster.handle_raw(1, frame).await.unwrap().unwrap();
        let (_, body) = split_response_header(
            Bytes::from(resp).slice(4..),
            response_header_version::<CreateTopicsRequest>(7),
        )
        .unwrap();
        let resp = decode_response::<CreateTopicsRequest>(body, 7).unwrap();
        resp.topics.into_iter().map(|t| (t.name.0.to_string(), t.error_code)).collect()
    }

    /// Found while writing the `mock_request` fuzz harness (review of the handler)
    /// and reproduced through it: CreateTopics v7 naming `num_partitions =
    /// 2147483647` made the cluster build a table of 2^31 partitions, a 257 GB
    /// allocation that aborts the process (or, where it is granted lazily, a loop
    /// that never ends). Kafka refuses requests over 10,000 partitions, whole, with
    /// POLICY_VIOLATION.
    #[tokio::test]
    async fn refuses_requests_for_too_many_partitions() {
        let cluster = MockCluster::builder().brokers(3).start().await.unwrap();
        // The 36-byte frame: header (CreateTopics v7, correlation 7, client "fuzz"),
        // one topic "huge" with 2147483647 partitions, replication factor 1.
        let frame: &[u8] = b"\x00\x13\x00\x07\x00\x00\x00\x07\x00\x04fuzz\x00\x02\x05huge\x7f\xff\xff\xff\
              \x00\x01\x01\x01\x00\x00\x00\x75\x30\x00\x00";
        let resp = cluster.handle_raw(1, Bytes::from_static(frame)).await.unwrap().unwrap();
        let (_, body) = split_response_header(
            Bytes::from(resp).slice(4..),
            response_header_version::<CreateTopicsRequest>(7),
        )
        .unwrap();
        let resp = decode_response::<CreateTopicsRequest>(body, 7).unwrap();
        assert_eq!(resp.topics[0].error_code, 44);
        assert_eq!(create(&cluster, &[("huge", i32::MAX)]).await, vec![("huge".to_owned(), 44)]);
        // Counted over the whole request, as Kafka counts them.
        assert_eq!(
            create(&cluster, &[("a", 9_999), ("b", 2)]).await,
            vec![("a".to_owned(), 44), ("b".to_owned(), 44)]
        );
        assert!(cluster.leader("a", 0).is_none());
        // At the limit: created.
        assert_eq!(create(&cluster, &[("c", 10_000)]).await, vec![("c".to_owned(), 0)]);
        assert_eq!(cluster.end_offset("c", 9_999), Some(0));
        // The cluster's own control refuses it too, instead of aborting.
        assert!(cluster.create_topic("d", i32::MAX).is_err());
    }
}
