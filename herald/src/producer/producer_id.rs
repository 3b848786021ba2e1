//! The idempotent producer's id and epoch (KIP-98): when to ask a broker for them
//! (InitProducerId), what to do with the answer, and when to ask again (a
//! partition's epoch ran out). Per-partition sequences live with each partition's
//! queue ([`super::idempotence::SeqState`]), stamped with what this hands out.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::protocol::batch::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// An InitProducerId request is due.
    Needed,
    /// One is in flight.
    Requesting,
    /// Batches can be stamped.
    Ready,
}

/// What the sender must do after an InitProducerId answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdOutcome {
    /// The id is ready: batches can be stamped.
    Ready,
    /// A retriable failure: asked again after a backoff.
    Retrying,
    /// The broker refused herald's credentials: fail what waits, as for any
    /// authentication failure.
    AuthenticationFailed,
    /// Refused for good (e.g. not authorised): records cannot be written without an
    /// id, so fail what waits; asked again after a backoff (an ACL fixed later lets
    /// the producer go on).
    Refused,
}

/// The producer id and epoch the idempotent producer writes with.
#[derive(Debug)]
pub(crate) struct ProducerIdManager {
    id: i64,
    epoch: i16,
    phase: Phase,
    failures: u32,
    not_before: Instant,
}

impl ProducerIdManager {
    /// No id yet; one is due at once.
    pub(crate) fn new(now: Instant) -> ProducerIdManager {
        ProducerIdManager {
            id: NO_PRODUCER_ID,
            epoch: NO_PRODUCER_EPOCH,
            phase: Phase::Needed,
            failures: 0,
            not_before: now,
        }
    }

    /// The id and epoch to stamp batches with, once known.
    pub(crate) fn current(&self) -> Option<(i64, i16)> {
        (self.phase == Phase::Ready).then_some((self.id, self.epoch))
    }

    /// Whether an InitProducerId request should be sent now; if one is due later,
    /// lowers `next` to then.
    pub(crate) fn due(&self, now: Instant, next: &mut Instant) -> bool {
        if self.phase != Phase::Needed {
            return false;
        }
        if now < self.not_before {
            *next = (*next).min(self.not_before);
            return false;
        }
        true
    }

    /// The request was handed to a broker.
    pub(crate) fn requesting(&mut self) {
        self.phase = Phase::Requesting;
    }

    /// A partition's epoch reached its maximum: a new producer id is needed.
    pub(crate) fn renew(&mut self) {
        if self.phase == Phase::Ready {
            tracing::info!("a partition's epoch is exhausted: asking for a new producer id");
            self.phase = Phase::Needed;
        }
    }

    /// Takes the broker's answer; `backoff` gives the wait after n failures.
    pub(crate) fn on_answer(
        &mut self,
        answer: &Result<(i64, i16), Error>,
        now: Instant,
        backoff: impl Fn(u32) -> Duration,
    ) -> IdOutcome {
        match answer {
            Ok((id, epoch)) => {
                tracing::info!(producer_id = id, epoch, "idempotent producer ready");
                self.id = *id;
                self.epoch = *epoch;
                self.phase = Phase::Ready;
                self.failures = 0;
                IdOutcome::Ready
            }
            Err(e) => {
                self.phase = Phase::Needed;
                self.failures = self.failures.saturating_add(1);
                self.not_before = now + backoff(self.failures);
                if e.is_retriable() {
                    tracing::debug!(error = %e, "InitProducerId failed; retrying");
                    IdOutcome::Retrying
                } else if e.is_authentication() {
                    IdOutcome::AuthenticationFailed
                } else {
                    tracing::warn!(error = %e, "InitProducerId refused; failing queued records");
                    IdOutcome::Refused
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn backoff(n: u32) -> Duration {
        Duration::from_millis(100 * u64::from(n))
    }

    #[test]
    fn due_at_once_then_ready_after_an_answer() {
        let now = Instant::now();
        let mut m = ProducerIdManager::new(now);
        let mut next = now + Duration::from_secs(60);
        assert!(m.due(now, &mut next));
        assert_eq!(m.current(), None);
        m.requesting();
        assert!(!m.due(now, &mut next), "one request at a time");
        assert_eq!(m.on_answer(&Ok((7, 3)), now, backoff), IdOutcome::Ready);
        assert_eq!(m.current(), Some((7, 3)));
        assert!(!m.due(now, &mut next));
    }

    #[test]
    fn failures_back_off_longer_each_time_and_are_classified() {
        let now = Instant::now();
        let mut m = ProducerIdManager::new(now);
        m.requesting();
        let retriable = Error::broker(ErrorCode::NOT_ENOUGH_REPLICAS, None);
        assert_eq!(m.on_answer(&Err(retriable.clone()), now, backoff), IdOutcome::Retrying);
        let mut next = now + Duration::from_secs(60);
        assert!(!m.due(now, &mut next));
        assert_eq!(next, now + Duration::from_millis(100));
        assert!(m.due(now + Duration::from_millis(100), &mut next));
        m.requesting();
        assert_eq!(m.on_answer(&Err(retriable), now, backoff), IdOutcome::Retrying);
        let mut next = now + Duration::from_secs(60);
        m.due(now, &mut next);
        assert_eq!(next, now + Duration::from_millis(200), "the second failure waits twice as long");
        m.requesting();
        let refused = Error::broker(ErrorCode::new(31), None);
        assert_eq!(m.on_answer(&Err(refused), now, backoff), IdOutcome::Refused);
        m.requesting();
        let auth = crate::security::sasl::auth_error("b:1", "bad password".into());
        assert_eq!(m.on_answer(&Err(auth), now, backoff), IdOutcome::AuthenticationFailed);
        assert_eq!(m.current(), None);
        m.requesting();
        assert_eq!(m.on_answer(&Ok((9, 0)), now, backoff), IdOutcome::Ready);
        assert_eq!(m.current(), Some((9, 0)), "a success resets the failures");
    }

    #[test]
    fn an_exhausted_epoch_asks_for_a_new_id() {
        let now = Instant::now();
        let mut m = ProducerIdManager::new(now);
        m.requesting();
        m.on_answer(&Ok((1, 0)), now, backoff);
        m.renew();
        assert_eq!(m.current(), None);
        let mut next = now;
        assert!(m.due(now, &mut next));
    }
}
