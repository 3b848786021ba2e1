//! CreateTopics (key 19), versions 2–7.
//!
//! Checks names (`INVALID_TOPIC_EXCEPTION`), partition counts
//! (`INVALID_PARTITIONS`), replication factors against the live brokers
//! (`INVALID_REPLICATION_FACTOR`), config names and values (`INVALID_CONFIG`), and
//! existing topics (`TOPIC_ALREADY_EXISTS`). Manual replica assignments are refused
//! with `INVALID_REQUEST`. `validate_only` checks without creating.

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::server::Ctx;
use super::state::TopicConfig;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: CreateTopicsRequest,
    _version: i16,
    fault: Option<ErrorCode>,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let mut s = ctx.cluster.state.lock();
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
