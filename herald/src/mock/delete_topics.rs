//! DeleteTopics (key 20), versions 1–6: by name (v1–5 and v6) or by id (v6).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::wire::Ctx;
use crate::error::ErrorCode;

pub(super) fn handle(
    ctx: &Ctx,
    req: DeleteTopicsRequest,
    version: i16,
    fault: Option<ErrorCode>,
) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
    let mut s = ctx.cluster.state.lock();
    // (name, id) of each topic asked for
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    for (name, id) in wanted {
        let mut r = DeletableTopicResult::default();
        r.topic_id = id;
        let resolved = match &name {
            Some(n) => s.topics.contains_key(n).then(|| n.clone()),
            None => s.topic_by_id(id).map(|(n, _)| n.clone()),
        };
        r.name = name.clone().or_else(|| resolved.clone()).map(|n| TopicName(StrBytes::from_string(n)));
        match (fault, resolved) {
            (Some(code), _) => r.error_code = code.code(),
            (None, None) => {
                r.error_code = if name.is_some() {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    ErrorCode::UNKNOWN_TOPIC_ID
                }
                .code()
            }
            (None, Some(n)) => {
                if let Some(t) = s.topics.remove(&n) {
                    r.topic_id = t.id;
                }
            }
        }
        resp.responses.push(r);
    }
    resp
}
