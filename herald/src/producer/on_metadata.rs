//! The sender's side of metadata: when to ask (by
//! [`MetadataState`](super::refresh::MetadataState)), and
//! applying an answer — new leaders, new partitions, topics that do not exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::accumulator::TopicEntry;
use super::sender::{Event, Sender};
use crate::error::{Error, ErrorCode, ErrorKind};
use crate::metadata;

/// Consecutive "does not exist" metadata answers after which sends to a topic fail
/// (with a backoff between answers, about a second in all) — franz-go's approach,
/// rather than Java's wait of `max.block.ms`, so a typo fails fast.
const UNKNOWN_TOPIC_ANSWERS: u32 = 3;

impl Sender {
    pub(crate) fn maybe_refresh_metadata(&mut self, now: Instant, next: &mut Instant) {
        let topics = self.shared.accumulator.topics();
        let new_topic = topics.iter().any(|t| t.meta.load().is_none() && t.verdict.lock().is_none());
        let unasked = topics.iter().any(|t| !t.asked.load(Ordering::Relaxed));
        let max_age = self.shared.config.metadata_max_age;
        if !self.metadata.due(now, max_age, new_topic, unasked, topics.is_empty(), next) {
            return;
        }
        let names: Vec<Arc<str>> = topics.iter().map(|t| t.name.clone()).collect();
        let Some(answer) = self.transport.metadata(&names) else {
            if let Some(t) = self.transport.next_retry_at() {
                *next = (*next).min(t);
            }
            return;
        };
        for t in &topics {
            t.asked.store(true, Ordering::Relaxed);
        }
        self.metadata.started();
        self.events.push(Box::pin(async move { Event::Metadata(answer.await) }));
    }

    pub(crate) fn handle_metadata(&mut self, result: Result<metadata::Snapshot, Error>) {
        let now = Instant::now();
        let snapshot = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metadata request failed");
                // Java's NetworkClient warns at each failed bootstrap connection;
                // herald warns once, at the first, so a wrong address shows at
                // once and not only when max.block.ms runs out.
                if matches!(e.kind(), ErrorKind::Connection { .. })
                    && self.metadata.first_unanswered_failure()
                {
                    tracing::warn!(
                        "cannot reach a bootstrap broker: {e} (retrying until max.block.ms={} ms)",
                        self.shared.config.max_block.as_millis()
                    );
                }
                let backoff = self.backoff;
                self.metadata.failed(now, |n| backoff.after(n));
                if e.is_authentication() {
                    self.authentication_failed(&e);
                }
                *self.shared.last_metadata_error.lock() = Some(e);
                return;
            }
        };
        self.metadata.succeeded(now, self.shared.config.retry_backoff);
        self.recorder().metadata_answered();
        self.transport.set_brokers(snapshot.brokers);
        let by_name: HashMap<&str, &metadata::TopicInfo> =
            snapshot.topics.iter().map(|t| (&*t.name, t)).collect();
        for entry in self.shared.accumulator.topics() {
            let Some(info) = by_name.get(&*entry.name) else { continue };
            self.apply_topic(&entry, info);
        }
    }

    fn apply_topic(&mut self, entry: &TopicEntry, info: &metadata::TopicInfo) {
        let code = info.error;
        if code.is_ok() {
            let leaders: Vec<i32> = info.partitions.iter().map(|p| p.leader).collect();
            if leaders.is_empty() {
                self.metadata.request();
                return;
            }
            if leaders.iter().any(|l| *l < 0) {
                self.metadata.request();
            }
            let described = crate::admin::PartitionDescription::all(&info.partitions);
            entry.update(info.id, &leaders, described, self.shared.config.codec().is_some());
            return;
        }
        match code {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                let n = entry.unknown_answers.fetch_add(1, Ordering::Relaxed) + 1;
                if entry.meta.load().is_none() && n >= UNKNOWN_TOPIC_ANSWERS {
                    tracing::warn!(topic = %entry.name, "topic does not exist");
                    entry.set_verdict(Error::new(ErrorKind::UnknownTopic).for_partition(&entry.name, None));
                } else {
                    self.metadata.request_after(Instant::now() + self.backoff.after(n));
                }
            }
            c if c.is_retriable() => self.metadata.request(),
            c => {
                tracing::warn!(topic = %entry.name, error = %c, "metadata refused the topic");
                entry.set_verdict(Error::broker(c, None).for_partition(&entry.name, None));
            }
        }
    }
}
