//! What transactions leave in a partition's log: transaction markers (control
//! batches), the first offsets of ongoing transactions (for the last stable
//! offset) and the index of aborted transactions (for read_committed fetches).
//!
//! As Kafka's `ProducerStateManager` (ongoing transactions), `TransactionIndex`
//! (aborted ones) and `EndTransactionMarker` (the control record).

use std::collections::BTreeMap;

use bytes::BytesMut;

use super::state::{Partition, StoredBatch};
use crate::protocol::batch::{self, BatchWriter};
use crate::protocol::records::{self, BatchHeader, ReadRecord};

/// Where the attributes sit in a RecordBatch v2 header.
const OFF_ATTRIBUTES: usize = 21;
/// Attributes of a transaction marker: transactional (bit 4) and control (bit 5).
const CONTROL_ATTRIBUTES: i16 = 0x10 | 0x20;
/// Control record type of an abort marker (`ControlRecordType.ABORT`).
const ABORT: i16 = 0;
/// Control record type of a commit marker (`ControlRecordType.COMMIT`).
const COMMIT: i16 = 1;

/// One aborted transaction on a partition (an entry of Kafka's `.txnindex`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
    /// The offset of its abort marker.
    pub(crate) last_offset: i64,
}

/// A partition's transactions.
#[derive(Clone, Debug, Default)]
pub(crate) struct PartitionTxns {
    /// Producer id → the first offset of its transaction still open here.
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions, in the order their markers were written.
    aborted: Vec<AbortedTxn>,
}

/// A transaction marker as Kafka's `MemoryRecords.withEndTransactionMarker` writes
/// it: one control record whose key is (version 0, type) and whose value is
/// (version 0, coordinator epoch), in a batch carrying the producer id and epoch.
pub(crate) fn control_batch(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> BytesMut {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&(if commit { COMMIT } else { ABORT }).to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut w = BatchWriter::new(64);
    w.append(now_ms, Some(&key), Some(&value), &[]);
    let mut b = w.finish();
    b[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&CONTROL_ATTRIBUTES.to_be_bytes());
    batch::stamp_producer(&mut b, producer_id, epoch, -1);
    b
}

impl Partition {
    /// The last stable offset: the first offset of the earliest transaction still
    /// open here, else the high watermark.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.txns.ongoing.values().min().copied().unwrap_or_else(|| self.high_watermark())
    }

    /// Notes a transactional batch appended at `base_offset`.
    pub(crate) fn note_transactional(&mut self, producer_id: i64, base_offset: i64) {
        self.txns.ongoing.entry(producer_id).or_insert(base_offset);
    }

    /// Appends a commit or abort marker for `producer_id`'s transaction and closes
    /// it here. Written even where the transaction appended nothing, as Kafka does.
    pub(crate) fn write_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        store: bool,
        now_ms: i64,
    ) {
        let offset = self.next_offset;
        if store {
            let mut b = control_batch(producer_id, epoch, commit, 0, now_ms);
            batch::rewrite_for_log(&mut b, offset, self.leader_epoch, false, now_ms);
            self.log.push(StoredBatch { last_offset: offset, max_timestamp: now_ms, bytes: b.freeze() });
        }
        self.next_offset = offset + 1;
        self.producer_marker(producer_id, epoch);
        if let Some(first) = self.txns.ongoing.remove(&producer_id) {
            if !commit {
                self.txns.aborted.push(AbortedTxn { producer_id, first_offset: first, last_offset: offset });
            }
        }
    }

    /// The aborted transactions a fetch of `[from, to)` must name (Kafka's
    /// `collectAbortedTransactions`): those ending at or after `from` and starting
    /// before `to`.
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.txns.aborted.iter().filter(|a| a.last_offset >= from && a.first_offset < to).copied().collect()
    }

    /// Whole batches from `offset` on that start below `end`, at least one (if
    /// any does), then up to `max_bytes`; with the offset after the last.
    pub(crate) fn read_below(&self, offset: i64, max_bytes: usize, end: i64) -> (bytes::Bytes, i64) {
        let start = self.log.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        let mut next = offset;
        for b in &self.log[start..] {
            let base = b.bytes.get(..8).map(|s| i64::from_be_bytes(s.try_into().unwrap_or_default()));
            if base.is_none_or(|base| base >= end) {
                break;
            }
            if !out.is_empty() && out.len() + b.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&b.bytes);
            next = b.last_offset + 1;
        }
        (out.freeze(), next)
    }

    /// The records a read_committed consumer gets: data of committed transactions
    /// and of no transaction, below the last stable offset; no control records.
    pub(crate) fn committed_records(&self) -> Vec<(BatchHeader, ReadRecord)> {
        let lso = self.last_stable_offset();
        let mut out = Vec::new();
        for b in &self.log {
            let Ok(Some(h)) = records::read_header(&b.bytes) else { continue };
            if h.control() || h.base_offset >= lso {
                continue;
            }
            let aborted = h.transactional()
                && self.txns.aborted.iter().any(|a| {
                    a.producer_id == h.producer_id
                        && a.first_offset <= h.base_offset
                        && h.base_offset <= a.last_offset
                });
            if aborted {
                continue;
            }
            if let Ok(recs) = records::read_records(&h, &b.bytes) {
                out.extend(recs.into_iter().map(|r| (h, r)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{ControlType, control_type};

    #[test]
    fn a_marker_is_a_valid_control_batch() {
        let b = control_batch(7, 3, true, 0, 1_700_000_000_000).freeze();
        let h = records::read_header(&b).unwrap().unwrap();
        records::check_crc(&h, &b).unwrap();
        assert!(h.control() && h.transactional());
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.record_count), (7, 3, -1, 1));
        let r = records::read_records(&h, &b).unwrap().remove(0);
        assert_eq!(control_type(r.key.as_deref()), Some(ControlType::Commit));
        assert_eq!(r.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 0][..]));
        let abort = control_batch(7, 3, false, 0, 0).freeze();
        let h = records::read_header(&abort).unwrap().unwrap();
        let r = records::read_records(&h, &abort).unwrap().remove(0);
        assert_eq!(control_type(r.key.as_deref()), Some(ControlType::Abort));
    }
}
