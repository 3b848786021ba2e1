//! Metadata refreshes, from the sender: every `metadata.max.age.ms`, at once when a
//! topic is new or an error says leadership moved, with backoff after failures.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::accumulator::TopicEntry;
use super::sender::{Event, Sender, backoff};
use crate::error::{Error, ErrorCode, ErrorKind};
use crate::metadata;

/// Consecutive "does not exist" metadata answers after which sends to a topic fail
/// (with a backoff between answers, about a second in all) — franz-go's approach,
/// rather than Java's wait of `max.block.ms`, so a typo fails fast.
const UNKNOWN_TOPIC_ANSWERS: u32 = 3;

/// Where the sender's metadata stands.
pub(crate) struct MetadataState {
    pub(crate) in_flight: bool,
    /// Something asked for a refresh (new topic, stale leader, error).
    pub(crate) needed: bool,
    pub(crate) last_success: Option<Instant>,
    pub(crate) not_before: Instant,
    pub(crate) failures: u32,
}

impl MetadataState {
    pub(crate) fn new() -> MetadataState {
        MetadataState {
            in_flight: false,
            needed: true,
            last_success: None,
            not_before: Instant::now(),
            failures: 0,
        }
    }
}

impl Sender {
    pub(crate) fn maybe_refresh_metadata(&mut self, now: Instant, next: &mut Instant) {
        let cfg = &self.shared.config;
        if self.metadata.in_flight {
            return;
        }
        let topics = self.shared.accumulator.topics();
        let stale = self.metadata.last_success.is_none_or(|t| now >= t + cfg.metadata_max_age);
        let new_topic = topics.iter().any(|t| t.meta.load().is_none() && t.verdict.lock().is_none());
        if !(self.metadata.needed || stale || new_topic) {
            if let Some(t) = self.metadata.last_success {
                *next = (*next).min(t + cfg.metadata_max_age);
            }
            return;
        }
        if topics.is_empty() && self.metadata.last_success.is_some() && !self.metadata.needed {
            return;
        }
        if now < self.metadata.not_before {
            *next = (*next).min(self.metadata.not_before);
            return;
        }
        let Some(conn) = self.pool.any() else {
            if let Some(t) = self.pool.next_retry_at() {
                *next = (*next).min(t);
            }
            return;
        };
        let names: Vec<Arc<str>> = topics.iter().map(|t| t.name.clone()).collect();
        let broker = conn.name().clone();
        let fut = conn.call(metadata::request(Some(&names), true), true);
        self.metadata.in_flight = true;
        self.metadata.needed = false;
        self.events.push(Box::pin(async move {
            let r = fut.await.and_then(|(_, resp)| match resp {
                Some(resp) => metadata::parse(resp, &broker),
                None => Err(Error::protocol(&*broker, "no Metadata response")),
            });
            Event::Metadata(r)
        }));
    }

    pub(crate) fn handle_metadata(&mut self, result: Result<metadata::Snapshot, Error>) {
        self.metadata.in_flight = false;
        let now = Instant::now();
        let snapshot = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metadata request failed");
                self.metadata.failures = self.metadata.failures.saturating_add(1);
                self.metadata.needed = true;
                self.metadata.not_before = now + backoff(&self.shared, self.metadata.failures);
                if e.is_authentication() {
                    self.authentication_failed(&e);
                }
                *self.shared.last_metadata_error.lock() = Some(e);
                return;
            }
        };
        self.metadata.failures = 0;
        self.metadata.last_success = Some(now);
        self.metadata.not_before = now + self.shared.config.retry_backoff;
        self.pool.set_brokers(snapshot.brokers);
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
                self.metadata.needed = true;
                return;
            }
            if leaders.iter().any(|l| *l < 0) {
                self.metadata.needed = true;
            }
            entry.update(info.id, &leaders, self.shared.config.codec().is_some());
            return;
        }
        match code {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                let n = entry.unknown_answers.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if entry.meta.load().is_none() && n >= UNKNOWN_TOPIC_ANSWERS {
                    tracing::warn!(topic = %entry.name, "topic does not exist");
                    entry.set_verdict(Error::new(ErrorKind::UnknownTopic).for_partition(&entry.name, None));
                } else {
                    self.metadata.needed = true;
                    self.metadata.not_before = Instant::now() + backoff(&self.shared, n);
                }
            }
            c if c.is_retriable() => self.metadata.needed = true,
            c => {
                tracing::warn!(topic = %entry.name, error = %c, "metadata refused the topic");
                entry.set_verdict(Error::broker(c, None).for_partition(&entry.name, None));
            }
        }
    }
}
