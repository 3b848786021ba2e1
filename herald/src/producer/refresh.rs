//! Metadata refreshes, from the sender: every `metadata.max.age.ms`, at once when a
//! topic is new or an error says leadership moved, with backoff after failures.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::accumulator::TopicEntry;
use super::sender::{Event, Sender};
use crate::error::{Error, ErrorCode, ErrorKind};
use crate::metadata;

/// Consecutive "does not exist" metadata answers after which sends to a topic fail
/// (with a backoff between answers, about a second in all) — franz-go's approach,
/// rather than Java's wait of `max.block.ms`, so a typo fails fast.
const UNKNOWN_TOPIC_ANSWERS: u32 = 3;

/// When the sender asks for metadata: every `metadata.max.age.ms`, at once when
/// something asks (a new topic, a stale leader, an error), one request at a time,
/// backing off after failures. Pure state: the sender sends and applies.
pub(crate) struct MetadataState {
    in_flight: bool,
    /// Something asked for a refresh (new topic, stale leader, error).
    needed: bool,
    last_success: Option<Instant>,
    not_before: Instant,
    failures: u32,
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

    /// Asks for a refresh as soon as the backoff allows.
    pub(crate) fn request(&mut self) {
        self.needed = true;
    }

    /// Asks for a refresh no sooner than `at` (backing off between answers).
    fn request_after(&mut self, at: Instant) {
        self.needed = true;
        self.not_before = at;
    }

    /// Whether a request should go out now; if one will be due later, lowers `next`
    /// to then. `new_topic`: a topic waits for its first metadata; `no_topics`:
    /// nothing is being sent.
    pub(crate) fn due(
        &self,
        now: Instant,
        max_age: std::time::Duration,
        new_topic: bool,
        no_topics: bool,
        next: &mut Instant,
    ) -> bool {
        if self.in_flight {
            return false;
        }
        let stale = self.last_success.is_none_or(|t| now >= t + max_age);
        if !(self.needed || stale || new_topic) {
            if let Some(t) = self.last_success {
                *next = (*next).min(t + max_age);
            }
            return false;
        }
        if no_topics && self.last_success.is_some() && !self.needed {
            return false;
        }
        if now < self.not_before {
            *next = (*next).min(self.not_before);
            return false;
        }
        true
    }

    /// A request went out.
    pub(crate) fn started(&mut self) {
        self.in_flight = true;
        self.needed = false;
    }

    /// It failed; `backoff` gives the wait after n failures in a row.
    fn failed(&mut self, now: Instant, backoff: impl Fn(u32) -> std::time::Duration) {
        self.in_flight = false;
        self.failures = self.failures.saturating_add(1);
        self.request_after(now + backoff(self.failures));
    }

    /// It succeeded; the next may go out after `retry_backoff` at the soonest.
    fn succeeded(&mut self, now: Instant, retry_backoff: std::time::Duration) {
        self.in_flight = false;
        self.failures = 0;
        self.last_success = Some(now);
        self.not_before = now + retry_backoff;
    }
}

impl Sender {
    pub(crate) fn maybe_refresh_metadata(&mut self, now: Instant, next: &mut Instant) {
        let topics = self.shared.accumulator.topics();
        let new_topic = topics.iter().any(|t| t.meta.load().is_none() && t.verdict.lock().is_none());
        let max_age = self.shared.config.metadata_max_age;
        if !self.metadata.due(now, max_age, new_topic, topics.is_empty(), next) {
            return;
        }
        let names: Vec<Arc<str>> = topics.iter().map(|t| t.name.clone()).collect();
        let Some(answer) = self.transport.metadata(&names) else {
            if let Some(t) = self.transport.next_retry_at() {
                *next = (*next).min(t);
            }
            return;
        };
        self.metadata.started();
        self.events.push(Box::pin(async move { Event::Metadata(answer.await) }));
    }

    pub(crate) fn handle_metadata(&mut self, result: Result<metadata::Snapshot, Error>) {
        let now = Instant::now();
        let snapshot = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metadata request failed");
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const AGE: Duration = Duration::from_secs(300);

    fn far(now: Instant) -> Instant {
        now + Duration::from_secs(3600)
    }

    #[test]
    fn asks_at_once_then_every_max_age() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        let mut next = far(now);
        assert!(m.due(now, AGE, false, false, &mut next));
        m.started();
        assert!(!m.due(now, AGE, true, false, &mut next), "one request at a time");
        m.succeeded(now, Duration::from_millis(100));
        let mut next = far(now);
        assert!(!m.due(now + Duration::from_secs(1), AGE, false, false, &mut next));
        assert_eq!(next, now + AGE);
        assert!(m.due(now + AGE, AGE, false, false, &mut next));
    }

    #[test]
    fn a_request_waits_out_the_retry_backoff_after_a_success() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.succeeded(now, Duration::from_millis(100));
        m.request();
        let mut next = far(now);
        assert!(!m.due(now, AGE, false, false, &mut next));
        assert_eq!(next, now + Duration::from_millis(100));
        assert!(m.due(now + Duration::from_millis(100), AGE, false, false, &mut next));
    }

    #[test]
    fn failures_back_off_and_ask_again() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.failed(now, |n| Duration::from_millis(100 * u64::from(n)));
        let mut next = far(now);
        assert!(!m.due(now, AGE, false, false, &mut next));
        assert_eq!(next, now + Duration::from_millis(100));
        m.started();
        m.failed(now, |n| Duration::from_millis(100 * u64::from(n)));
        let mut next = far(now);
        m.due(now, AGE, false, false, &mut next);
        assert_eq!(next, now + Duration::from_millis(200));
    }

    #[test]
    fn a_new_topic_asks_before_max_age() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.succeeded(now, Duration::ZERO);
        let mut next = far(now);
        assert!(!m.due(now, AGE, false, false, &mut next));
        assert!(m.due(now, AGE, true, false, &mut next));
    }
}
