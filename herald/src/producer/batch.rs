//! A sealed batch on its way to the broker: its bytes (raw, compressing, ready,
//! or stamped with the producer id, epoch and sequence it was sent with), its
//! records' completion and callbacks, and what its attempts so far left behind.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::delivery::{BatchAck, BatchCompletion, RecordCallback};
use crate::error::Error;

/// A batch's place in its partition's send order (see `QueueState`): wide
/// enough that stepping by 2³² per sealed batch, to leave room for the parts of
/// a split one, never wraps.
pub(crate) type Order = u128;

/// The producer fields a batch was sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) base_sequence: i32,
}

/// A sealed batch's bytes, on their way to the wire.
#[derive(Debug)]
pub(crate) enum Payload {
    /// Finished, to be compressed before sending.
    Raw(BytesMut),
    /// Being compressed on the blocking pool.
    Compressing,
    /// Ready but for the producer fields and the CRC.
    Ready(BytesMut),
    /// Exactly the bytes sent (and re-sent on retry), with the stamp they carry.
    Stamped(Bytes, Stamp),
}

impl Payload {
    /// Whether the sender may send it now.
    pub(crate) fn sendable(&self) -> bool {
        matches!(self, Payload::Ready(_) | Payload::Stamped(..))
    }

    /// Its size on the wire once ready (before, an estimate: the raw size).
    pub(crate) fn len(&self) -> usize {
        match self {
            Payload::Raw(b) | Payload::Ready(b) => b.len(),
            Payload::Stamped(b, _) => b.len(),
            Payload::Compressing => 0,
        }
    }
}

/// A batch sealed and waiting to be sent (or sent again).
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub(crate) payload: Payload,
    pub(crate) records: i32,
    pub(crate) completion: Arc<BatchCompletion>,
    pub(crate) created: Instant,
    /// Order of the batch within its partition, to put retried batches back in place.
    pub(crate) order: Order,
    pub(crate) attempts: u32,
    pub(crate) retry_at: Option<Instant>,
    pub(crate) last_error: Option<Error>,
    /// The producer id, epoch and sequence it was sent with (idempotence).
    pub(crate) stamp: Option<Stamp>,
    /// An attempt ended without an answer (timeout, lost connection): the broker
    /// may have written it.
    pub(crate) maybe_written: bool,
    /// Refused under its stamp; it must get a new one (a new epoch's sequence).
    pub(crate) needs_restamp: bool,
    /// Delivery callbacks of its records, run when it resolves.
    pub(crate) callbacks: Vec<RecordCallback>,
    /// Its size uncompressed, and its largest record's (metrics).
    pub(crate) raw_len: usize,
    pub(crate) max_record: usize,
}

impl ProducerBatch {
    /// A batch just sealed: never sent, no stamp, no error yet.
    pub(crate) fn sealed(
        payload: Payload,
        records: i32,
        completion: Arc<BatchCompletion>,
        created: Instant,
        order: Order,
        callbacks: Vec<RecordCallback>,
    ) -> ProducerBatch {
        ProducerBatch {
            payload,
            records,
            completion,
            created,
            order,
            attempts: 0,
            retry_at: None,
            last_error: None,
            stamp: None,
            maybe_written: false,
            needs_restamp: false,
            callbacks,
            raw_len: 0,
            max_record: 0,
        }
    }

    /// Resolves the batch as written: its futures wake, its callbacks are queued for
    /// the sender to run where it holds no lock.
    pub(crate) fn complete(self, ack: BatchAck) {
        let records = u64::try_from(self.records).unwrap_or(0);
        let raw = self.raw_len as u64;
        self.completion.recorder().batch_written(
            self.completion.topic(),
            records,
            raw.saturating_sub(crate::protocol::batch::BATCH_HEADER_LEN as u64),
            self.max_record as u64,
            raw,
            self.payload.len() as u64,
        );
        self.completion.resolve(Ok(ack), self.callbacks);
    }

    /// Resolves the batch as failed, naming its topic and partition.
    pub(crate) fn fail(self, err: Error) {
        let err = err.for_partition(self.completion.topic(), Some(self.completion.partition()));
        let records = u64::try_from(self.records).unwrap_or(0);
        self.completion.recorder().batch_failed(
            self.completion.topic(),
            records,
            err.may_have_been_written(),
        );
        self.completion.resolve(Err(err), self.callbacks);
    }

    /// Fails it with `err`, saying whether an earlier attempt may have written it.
    pub(crate) fn fail_honestly(self, err: Error) {
        let maybe = self.maybe_written;
        self.fail(err.written(maybe));
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::producer::delivery::test_deliveries;

    /// A sealed batch of `records` records, never sent.
    pub(crate) fn batch(records: i32) -> ProducerBatch {
        ProducerBatch::sealed(
            Payload::Ready(BytesMut::new()),
            records,
            BatchCompletion::new(Arc::from("t"), 0, test_deliveries()),
            Instant::now(),
            0,
            Vec::new(),
        )
    }
}
