//! The idempotent producer (KIP-98), with epoch bumps for unresolved sequences
//! (KIP-360).
//!
//! The broker keeps, per partition, the last sequence numbers and epoch of each
//! producer id, and refuses a batch that does not continue them. So each partition
//! here carries a [`SeqState`]: the epoch it writes with, the next sequence to
//! assign, and the last sequence the broker acknowledged. Sequences are assigned
//! when a batch is first sent and kept on every retry, so a retry of a batch the
//! broker already has is answered as a duplicate, with the original offset —
//! retries never duplicate records.
//!
//! A partition's sequence becomes *unresolved* when the broker cannot continue it:
//! a batch that was sent failed for good (a gap the broker would refuse), or the
//! broker says it lost the producer's state (`UNKNOWN_PRODUCER_ID`, or
//! `OUT_OF_ORDER_SEQUENCE_NUMBER` for the very batch it should expect). The
//! partition then stops taking new sequences, lets every batch that may already be
//! written finish (resending it with its old sequence), and bumps its own epoch:
//! the broker accepts a higher epoch starting again at sequence 0.
//!
//! Unlike Java, which bumps one epoch for the whole producer, herald bumps per
//! partition: the broker checks epochs per partition only, and a partition whose
//! leader is unreachable then never holds up the others.

use std::collections::VecDeque;

use super::batch::{ProducerBatch, Stamp};
use crate::error::ErrorCode;

/// One partition's idempotence state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeqState {
    /// The producer id this state belongs to (-1: none yet).
    pub(crate) producer_id: i64,
    /// The epoch this partition writes with.
    pub(crate) epoch: i16,
    /// The sequence the next new batch gets.
    pub(crate) next: i32,
    /// The last sequence the broker acknowledged (-1: none under this epoch).
    pub(crate) last_acked: i32,
    /// The sequence cannot go on: bump the epoch once nothing may be in doubt.
    pub(crate) unresolved: bool,
}

impl Default for SeqState {
    fn default() -> SeqState {
        SeqState { producer_id: -1, epoch: 0, next: 0, last_acked: -1, unresolved: false }
    }
}

/// Java's `DefaultRecordBatch.incrementSequence`: sequences wrap from
/// `i32::MAX` to 0.
pub(crate) fn add_sequence(seq: i32, n: i32) -> i32 {
    if seq > i32::MAX - n { n - (i32::MAX - seq) - 1 } else { seq + n }
}

/// What to do with a batch after the broker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Written (a duplicate of a batch the broker has counts too).
    Written,
    /// Send it again (with the stamp it has, or a new one once the epoch is bumped).
    Retry,
    /// It failed for good.
    Fail,
}

/// What bumping a partition's epoch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bump {
    /// Not needed, or not yet possible (something may still be written).
    NotNow,
    /// Done: the partition writes with a new epoch from sequence 0.
    Bumped,
    /// The epoch is at its maximum: the producer needs a new producer id.
    NeedsProducerId,
}

impl SeqState {
    /// Takes on the producer's current id and epoch, starting over if the id changed.
    pub(crate) fn adopt(&mut self, producer_id: i64, epoch: i16) {
        if self.producer_id != producer_id {
            *self = SeqState { producer_id, epoch, ..SeqState::default() };
        }
    }

    /// Transactions: takes on exactly the producer's id and epoch, starting over
    /// whenever either changed (a transactional producer's epoch moves only through
    /// its coordinator: InitProducerId, and every EndTxn with transactions v2).
    pub(crate) fn adopt_exact(&mut self, producer_id: i64, epoch: i16) {
        if self.producer_id != producer_id || self.epoch != epoch {
            *self = SeqState { producer_id, epoch, ..SeqState::default() };
        }
    }

    /// Whether another batch may go out while `in_flight` are unanswered. Until the
    /// broker has acknowledged a batch under this producer id and epoch it holds no
    /// state for us, and a broker without state accepts *any* first sequence: a
    /// second batch overtaking a refused first one would be written ahead of it,
    /// and the first could then never be. So one at a time until the first ack.
    pub(crate) fn may_send(&self, in_flight: usize) -> bool {
        self.last_acked >= 0 || in_flight == 0
    }

    /// The sequence the broker expects next.
    fn expected(&self) -> i32 {
        if self.last_acked < 0 { 0 } else { add_sequence(self.last_acked, 1) }
    }

    /// Whether `b` may be sent now, giving it a stamp if it needs one (a batch never
    /// sent, or one whose stamp belongs to an older epoch or producer id).
    /// Returns the stamp to send with, or `None` while the partition waits for its
    /// epoch bump and `b` cannot go out under the old one.
    pub(crate) fn stamp_for(&mut self, b: &mut ProducerBatch) -> Option<Stamp> {
        let current = b.stamp.filter(|s| s.producer_id == self.producer_id && s.epoch == self.epoch);
        match current {
            Some(s) if !b.needs_restamp => Some(s),
            _ if self.unresolved => None,
            _ => {
                let s = Stamp { producer_id: self.producer_id, epoch: self.epoch, base_sequence: self.next };
                self.next = add_sequence(self.next, b.records.max(1));
                b.stamp = Some(s);
                b.needs_restamp = false;
                b.maybe_written = false;
                Some(s)
            }
        }
    }

    /// Records a written batch.
    pub(crate) fn written(&mut self, stamp: Stamp, records: i32) {
        if stamp.producer_id == self.producer_id && stamp.epoch == self.epoch {
            self.last_acked = add_sequence(stamp.base_sequence, records.max(1) - 1);
        }
    }

    /// Classifies a broker error for a batch sent with `b.stamp`.
    pub(crate) fn on_error(&mut self, b: &mut ProducerBatch, code: ErrorCode) -> Verdict {
        let Some(stamp) = b.stamp else {
            return if code.is_retriable() { Verdict::Retry } else { Verdict::Fail };
        };
        let ours = stamp.producer_id == self.producer_id && stamp.epoch == self.epoch;
        match code {
            ErrorCode::DUPLICATE_SEQUENCE_NUMBER => Verdict::Written,
            // Transactions (KIP-890): the partition's previous transaction is
            // still being completed, so the broker refused the batch before
            // appending it; it goes again with the same sequence, as Java retries.
            ErrorCode::CONCURRENT_TRANSACTIONS => {
                b.maybe_written = false;
                Verdict::Retry
            }
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
            | ErrorCode::UNKNOWN_PRODUCER_ID
            | ErrorCode::INVALID_PRODUCER_EPOCH => {
                // The broker refused the batch: it is certainly not written.
                b.maybe_written = false;
                let lost_state =
                    code != ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER || stamp.base_sequence == self.expected();
                if !ours {
                    b.needs_restamp = true; // an older epoch's batch: renumber it
                } else if lost_state || self.unresolved {
                    // The broker cannot continue this sequence; start a new epoch.
                    self.unresolved = true;
                    b.needs_restamp = true;
                }
                // Otherwise an earlier batch is missing (in flight or being retried):
                // this one goes again after it, with the same sequence.
                Verdict::Retry
            }
            c if c.is_retriable() => Verdict::Retry,
            _ => {
                self.failed_after_send(b);
                Verdict::Fail
            }
        }
    }

    /// A batch that was sent (it has a stamp) fails for good: the broker may have a
    /// gap it will not accept past, so the sequence is unresolved.
    pub(crate) fn failed_after_send(&mut self, b: &ProducerBatch) {
        if b.stamp.is_some_and(|s| s.producer_id == self.producer_id && s.epoch == self.epoch) {
            self.unresolved = true;
        }
    }

    /// Bumps the epoch if the sequence is unresolved and nothing of this partition
    /// is in flight or may have been written without an answer yet.
    pub(crate) fn try_bump(&mut self, in_flight: usize, queued: &VecDeque<ProducerBatch>) -> Bump {
        if !self.unresolved || in_flight > 0 {
            return Bump::NotNow;
        }
        let in_doubt = queued.iter().any(|b| {
            b.maybe_written
                && !b.needs_restamp
                && b.stamp.is_some_and(|s| s.producer_id == self.producer_id && s.epoch == self.epoch)
        });
        if in_doubt {
            return Bump::NotNow;
        }
        if self.epoch == i16::MAX {
            return Bump::NeedsProducerId;
        }
        self.epoch += 1;
        self.next = 0;
        self.last_acked = -1;
        self.unresolved = false;
        Bump::Bumped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::batch::tests_support::batch;

    fn state() -> SeqState {
        let mut s = SeqState::default();
        s.adopt(7, 0);
        s
    }

    #[test]
    fn sequences_wrap_like_java() {
        assert_eq!(add_sequence(0, 5), 5);
        assert_eq!(add_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(add_sequence(i32::MAX, 1), 0);
        assert_eq!(add_sequence(i32::MAX - 2, 5), 2);
    }

    #[test]
    fn stamps_are_assigned_once_and_kept_on_retry() {
        let mut s = state();
        let mut a = batch(10);
        let mut b = batch(5);
        let sa = s.stamp_for(&mut a).unwrap();
        let sb = s.stamp_for(&mut b).unwrap();
        assert_eq!((sa.base_sequence, sb.base_sequence, s.next), (0, 10, 15));
        // A retriable error keeps the stamp.
        assert_eq!(s.on_error(&mut a, ErrorCode::NOT_LEADER_OR_FOLLOWER), Verdict::Retry);
        assert_eq!(s.stamp_for(&mut a), Some(sa));
    }

    #[test]
    fn out_of_order_behind_a_missing_batch_is_retried_with_the_same_sequence() {
        let mut s = state();
        let mut a = batch(10);
        let mut b = batch(10);
        s.stamp_for(&mut a);
        s.stamp_for(&mut b);
        // b arrived before a was written: retry b as it is.
        assert_eq!(s.on_error(&mut b, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER), Verdict::Retry);
        assert!(!s.unresolved && !b.needs_restamp);
    }

    #[test]
    fn out_of_order_for_the_expected_batch_means_lost_state_and_bumps() {
        let mut s = state();
        let mut a = batch(10);
        s.stamp_for(&mut a);
        s.written(a.stamp.unwrap(), 10);
        let mut b = batch(10);
        s.stamp_for(&mut b);
        assert_eq!(s.on_error(&mut b, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER), Verdict::Retry);
        assert!(s.unresolved && b.needs_restamp);
        assert_eq!(s.stamp_for(&mut b), None, "waits for the bump");
        let mut q = VecDeque::new();
        q.push_back(b);
        assert_eq!(s.try_bump(0, &q), Bump::Bumped);
        let mut b = q.pop_front().unwrap();
        assert_eq!(s.stamp_for(&mut b), Some(Stamp { producer_id: 7, epoch: 1, base_sequence: 0 }));
    }

    #[test]
    fn a_bump_waits_for_batches_in_doubt() {
        let mut s = state();
        let mut a = batch(10);
        let mut b = batch(10);
        s.stamp_for(&mut a);
        s.stamp_for(&mut b);
        // a failed for good after being sent; b timed out: it may be written.
        s.failed_after_send(&a);
        b.maybe_written = true;
        let mut q = VecDeque::new();
        q.push_back(b);
        assert_eq!(s.try_bump(0, &q), Bump::NotNow, "b must be resolved first");
        assert_eq!(s.try_bump(1, &VecDeque::new()), Bump::NotNow, "requests still in flight");
        // b goes again with its old stamp, and is refused: not written.
        let mut b = q.pop_front().unwrap();
        assert!(s.stamp_for(&mut b).is_some());
        s.on_error(&mut b, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
        q.push_back(b);
        assert_eq!(s.try_bump(0, &q), Bump::Bumped);
    }

    #[test]
    fn duplicates_count_as_written_and_other_errors_fail() {
        let mut s = state();
        let mut a = batch(1);
        s.stamp_for(&mut a);
        assert_eq!(s.on_error(&mut a, ErrorCode::DUPLICATE_SEQUENCE_NUMBER), Verdict::Written);
        assert_eq!(s.on_error(&mut a, ErrorCode::MESSAGE_TOO_LARGE), Verdict::Fail);
        assert!(s.unresolved, "a sent batch failing leaves a gap");
    }

    #[test]
    fn one_batch_at_a_time_until_the_broker_has_state() {
        let mut s = state();
        assert!(s.may_send(0));
        assert!(!s.may_send(1), "no pipelining before the first ack");
        let mut a = batch(2);
        s.stamp_for(&mut a);
        s.written(a.stamp.unwrap(), 2);
        assert!(s.may_send(4));
    }

    #[test]
    fn a_new_producer_id_starts_over() {
        let mut s = state();
        let mut a = batch(3);
        s.stamp_for(&mut a);
        s.adopt(8, 0);
        assert_eq!(s.stamp_for(&mut a).unwrap(), Stamp { producer_id: 8, epoch: 0, base_sequence: 0 });
    }

    #[test]
    fn a_batch_refused_while_the_previous_transaction_completes_goes_again_as_it_was() {
        let mut s = state();
        let mut b = batch(3);
        let stamp = s.stamp_for(&mut b).unwrap();
        b.maybe_written = true;
        assert_eq!(s.on_error(&mut b, ErrorCode::CONCURRENT_TRANSACTIONS), Verdict::Retry);
        assert!(!b.maybe_written, "refused before the append");
        assert_eq!(s.stamp_for(&mut b), Some(stamp), "the same sequence");
        assert!(!s.unresolved);
    }

    #[test]
    fn a_transactional_epoch_change_starts_the_sequence_over() {
        let mut s = state();
        s.next = 9;
        s.last_acked = 8;
        s.adopt_exact(s.producer_id, s.epoch);
        assert_eq!(s.next, 9, "the same id and epoch keep the sequence");
        s.adopt_exact(s.producer_id, s.epoch + 1);
        assert_eq!((s.next, s.last_acked), (0, -1));
    }

    #[test]
    fn the_last_epoch_needs_a_new_producer_id() {
        let mut s = state();
        s.epoch = i16::MAX;
        s.unresolved = true;
        assert_eq!(s.try_bump(0, &VecDeque::new()), Bump::NeedsProducerId);
    }
}
