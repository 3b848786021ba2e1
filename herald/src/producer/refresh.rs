//! When the sender asks for metadata: every `metadata.max.age.ms`, at once when a
//! topic is new or an error says leadership moved, with backoff after failures.
//! Pure state; the sender's side of an answer is in `on_metadata.rs`.

use tokio::time::Instant;

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
    /// A failure to reach any broker before the first answer was logged at WARN.
    unreachable_reported: bool,
}

impl MetadataState {
    pub(crate) fn new() -> MetadataState {
        MetadataState {
            in_flight: false,
            needed: true,
            last_success: None,
            not_before: Instant::now(),
            failures: 0,
            unreachable_reported: false,
        }
    }

    /// Whether a failed request is the first one worth a warning: no answer has
    /// come yet (only the bootstrap servers are known) and none was reported.
    /// True at most once.
    pub(crate) fn first_unanswered_failure(&mut self) -> bool {
        let first = self.last_success.is_none() && !self.unreachable_reported;
        self.unreachable_reported |= first;
        first
    }

    /// Asks for a refresh as soon as the backoff allows.
    pub(crate) fn request(&mut self) {
        self.needed = true;
    }

    /// Asks for a refresh no sooner than `at` (backing off between answers).
    pub(crate) fn request_after(&mut self, at: Instant) {
        self.needed = true;
        self.not_before = at;
    }

    /// Whether a request should go out now; if one will be due later, lowers `next`
    /// to then. `new_topic`: a topic waits for its first metadata; `unasked`: a
    /// topic no request has named yet, which goes out without waiting out the
    /// backoff, as Java's `Metadata.requestUpdateForNewTopics` lets it (otherwise
    /// the first record of every topic sent within `retry.backoff.ms` of the
    /// producer's first answer would wait for the rest of it); `no_topics`:
    /// nothing is being sent.
    pub(crate) fn due(
        &self,
        now: Instant,
        max_age: std::time::Duration,
        new_topic: bool,
        unasked: bool,
        no_topics: bool,
        next: &mut Instant,
    ) -> bool {
        if self.in_flight {
            return false;
        }
        if unasked {
            return true;
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
    pub(crate) fn failed(&mut self, now: Instant, backoff: impl Fn(u32) -> std::time::Duration) {
        self.in_flight = false;
        self.failures = self.failures.saturating_add(1);
        self.request_after(now + backoff(self.failures));
    }

    /// It succeeded; the next may go out after `retry_backoff` at the soonest.
    pub(crate) fn succeeded(&mut self, now: Instant, retry_backoff: std::time::Duration) {
        self.in_flight = false;
        self.failures = 0;
        self.last_success = Some(now);
        self.not_before = now + retry_backoff;
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
    fn an_unreachable_cluster_is_reported_once_and_never_after_an_answer() {
        let mut m = MetadataState::new();
        assert!(m.first_unanswered_failure());
        assert!(!m.first_unanswered_failure(), "once");
        let mut m = MetadataState::new();
        m.succeeded(Instant::now(), Duration::from_millis(100));
        assert!(!m.first_unanswered_failure(), "a cluster that answered was reachable");
    }

    #[test]
    fn asks_at_once_then_every_max_age() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        let mut next = far(now);
        assert!(m.due(now, AGE, false, false, false, &mut next));
        m.started();
        assert!(!m.due(now, AGE, true, false, false, &mut next), "one request at a time");
        m.succeeded(now, Duration::from_millis(100));
        let mut next = far(now);
        assert!(!m.due(now + Duration::from_secs(1), AGE, false, false, false, &mut next));
        assert_eq!(next, now + AGE);
        assert!(m.due(now + AGE, AGE, false, false, false, &mut next));
    }

    #[test]
    fn a_request_waits_out_the_retry_backoff_after_a_success() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.succeeded(now, Duration::from_millis(100));
        m.request();
        let mut next = far(now);
        assert!(!m.due(now, AGE, false, false, false, &mut next));
        assert_eq!(next, now + Duration::from_millis(100));
        assert!(m.due(now + Duration::from_millis(100), AGE, false, false, false, &mut next));
    }

    #[test]
    fn failures_back_off_and_ask_again() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.failed(now, |n| Duration::from_millis(100 * u64::from(n)));
        let mut next = far(now);
        assert!(!m.due(now, AGE, false, false, false, &mut next));
        assert_eq!(next, now + Duration::from_millis(100));
        m.started();
        m.failed(now, |n| Duration::from_millis(100 * u64::from(n)));
        let mut next = far(now);
        m.due(now, AGE, false, false, false, &mut next);
        assert_eq!(next, now + Duration::from_millis(200));
    }

    #[test]
    fn a_topic_no_request_named_yet_does_not_wait_out_the_backoff() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.succeeded(now, Duration::from_millis(100));
        let mut next = far(now);
        assert!(!m.due(now, AGE, true, false, false, &mut next), "a named topic waits for the backoff");
        assert_eq!(next, now + Duration::from_millis(100));
        assert!(m.due(now, AGE, true, true, false, &mut next), "an unnamed one does not");
        m.started();
        assert!(!m.due(now, AGE, true, true, false, &mut next), "still one request at a time");
        m.failed(now, |n| Duration::from_millis(100 * u64::from(n)));
        assert!(m.due(now, AGE, true, true, false, &mut next), "nor after a failure (as Java)");
    }

    #[test]
    fn a_new_topic_asks_before_max_age() {
        let mut m = MetadataState::new();
        let now = Instant::now();
        m.started();
        m.succeeded(now, Duration::ZERO);
        let mut next = far(now);
        assert!(!m.due(now, AGE, false, false, false, &mut next));
        assert!(m.due(now, AGE, true, false, false, &mut next));
    }
}
