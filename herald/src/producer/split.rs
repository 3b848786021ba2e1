//! Splitting a batch the broker refused as too large (KIP-126, Java's
//! `ProducerBatch.split` and `RecordAccumulator.splitAndReenqueue`).
//!
//! A batch is sized by an estimate: with compression, its raw size times the
//! partition's learned ratio, which data that compresses worse than the batches
//! before it makes wrong; and `batch.size` itself may be above the topic's
//! `max.message.bytes`. The broker then answers `MESSAGE_TOO_LARGE` and writes
//! nothing. A batch of more than one record is read back (decompressed), its
//! records re-encoded into parts, and the parts go back to the front of the
//! partition's queue in order, as if never sent.
//!
//! - **Size.** Each part holds at most `batch.size` raw bytes of records, as
//!   Java's, and at most half of the refused batch's: Java's parts of a batch that
//!   already fit in `batch.size` would be the batch again, refused again until
//!   `delivery.timeout.ms` when `batch.size` is above the topic's limit. Halving
//!   ends at batches of one record, so every split makes progress.
//! - **Sequences.** With idempotence the parts keep the refused batch's sequence
//!   range, each from its first record's place in it, as Java's
//!   `assignProducerStateToBatches` does: the broker never wrote the refused
//!   batch, so the parts fill exactly the sequences it would have, and the
//!   batches sent after it (refused meanwhile with `OUT_OF_ORDER_SEQUENCE_NUMBER`,
//!   and retried with their own sequences, see `idempotence.rs`) follow them.
//! - **Outcomes.** The refused batch's completion hands its records over to the
//!   parts' (`BatchCompletion::split`): a future of one of its records resolves
//!   once, with the offset its part was written at; each callback moves to the
//!   part holding its record.

use bytes::Bytes;

use super::batch::{Order, Payload, ProducerBatch, Stamp};
use super::delivery::RecordCallback;
use super::idempotence::add_sequence;
use crate::error::Error;
use crate::protocol::batch::{BATCH_HEADER_LEN, BatchWriter, fields_len};
use crate::protocol::records::{ReadRecord, decode_records, read_header, records_section};

/// The most raw bytes of records a part of a refused batch holds, when the
/// refused batch held `records_len`: `batch.size`, and at most half of it.
pub(crate) fn part_target(batch_size: usize, records_len: usize) -> usize {
    batch_size.min(records_len.div_ceil(2)).max(1)
}

/// Splits `b`, refused with `err` as too large, into parts of at most `batch_size`
/// raw bytes and at most half its own; `compress` says whether its partition
/// compresses batches (the parts are then left raw, for the compression
/// workers). Returns the parts in order, owning `b`'s records, callbacks and
/// futures; or `b` untouched and why, if its bytes cannot be read back.
pub(crate) fn split(
    b: ProducerBatch,
    batch_size: usize,
    compress: bool,
    err: &Error,
) -> Result<Vec<ProducerBatch>, Box<(ProducerBatch, String)>> {
    let (records, records_len) = match read_back(&b.payload) {
        Ok(r) => r,
        Err(why) => return Err(Box::new((b, why))),
    };
    if records.len() < 2 {
        return Err(Box::new((b, format!("a batch of {} record(s) cannot be split", records.len()))));
    }
    let target = part_target(batch_size, records_len);
    let ProducerBatch { completion, created, order, stamp, mut callbacks, .. } = b;
    // Each part: its first record's offset delta in `b`, and its writer.
    let mut writers: Vec<(i32, BatchWriter, usize)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let fields = fields_len(r.key.as_deref(), r.value.as_deref(), &r.headers);
        let full = writers.last().is_none_or(|(_, w, _)| {
            w.count() > 0 && w.len() + w.size_of_next(r.timestamp, fields) > BATCH_HEADER_LEN + target
        });
        if full {
            let first = i32::try_from(i).unwrap_or(i32::MAX);
            writers.push((first, BatchWriter::new(BATCH_HEADER_LEN + target.min(records_len)), 0));
        }
        if let Some((_, w, max_record)) = writers.last_mut() {
            let before = w.len();
            w.append_sized(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers, fields);
            *max_record = (*max_record).max(w.len() - before);
        }
    }
    // Callbacks were pushed in offset order; each moves to its record's part.
    callbacks.sort_by_key(|c| c.offset_delta);
    let mut callbacks = callbacks.into_iter().peekable();
    let mut parts = Vec::with_capacity(writers.len());
    let mut handover = Vec::with_capacity(writers.len());
    let firsts: Vec<i32> = writers.iter().map(|(first, _, _)| *first).collect();
    for (k, (first, w, max_record)) in writers.into_iter().enumerate() {
        let end = firsts.get(k + 1).copied().unwrap_or(i32::MAX);
        let mut moved: Vec<RecordCallback> = Vec::new();
        while let Some(cb) = callbacks.next_if(|c| c.offset_delta < end) {
            moved.push(RecordCallback { offset_delta: cb.offset_delta - first, ..cb });
        }
        let count = w.count();
        let bytes = w.finish();
        let raw_len = bytes.len();
        let payload = if compress { Payload::Raw(bytes) } else { Payload::Ready(bytes) };
        let part_completion = completion.sibling();
        handover.push((first, part_completion.clone()));
        // Orders leave room for every record of a batch (see `QueueState`), so a
        // part sorts where its first record was.
        let part_order = order + Order::try_from(first).unwrap_or(0);
        let mut part = ProducerBatch::sealed(payload, count, part_completion, created, part_order, moved);
        part.raw_len = raw_len;
        part.max_record = max_record;
        part.stamp = stamp.map(|s| Stamp { base_sequence: add_sequence(s.base_sequence, first), ..s });
        part.last_error = Some(err.clone());
        parts.push(part);
    }
    // Every callback found its part (deltas run 0..records).
    debug_assert!(callbacks.next().is_none());
    if !completion.split(handover) {
        // Resolved meanwhile (it cannot be: the sender owns it); its parts are
        // dropped unresolved, their records having their outcome already.
        return Ok(Vec::new());
    }
    Ok(parts)
}

/// The records of a sent batch, and the raw size of its records section.
fn read_back(payload: &Payload) -> Result<(Vec<ReadRecord>, usize), String> {
    let bytes = match payload {
        Payload::Stamped(b, _) => b.clone(),
        Payload::Ready(b) => Bytes::copy_from_slice(b),
        Payload::Raw(_) | Payload::Compressing => return Err("the batch was never sent".into()),
    };
    let h = read_header(&bytes)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the batch is shorter than its header says".to_string())?;
    let section = records_section(&h, &bytes).map_err(|e| e.to_string())?;
    let len = section.len();
    let records = decode_records(&h, section).map_err(|e| e.to_string())?;
    Ok((records, len))
}

/// Whether a broker's error for a batch means it was too large to append:
/// `MESSAGE_TOO_LARGE` (over the topic's `max.message.bytes`), or
/// `RECORD_LIST_TOO_LARGE` (over its `segment.bytes`), both fixed by smaller
/// batches. Java splits on the first only; the second has the same remedy.
pub(crate) fn too_large(code: crate::error::ErrorCode) -> bool {
    code == crate::error::ErrorCode::MESSAGE_TOO_LARGE
        || code == crate::error::ErrorCode::RECORD_LIST_TOO_LARGE
}

/// The error for a batch of one record the broker refused as too large: what it
/// weighed, on the wire and uncompressed, and which limit refused it.
pub(crate) fn one_record_too_large(wire: usize, raw: usize, broker_message: Option<&str>) -> String {
    let mut m = format!(
        "a record alone in its batch is {wire} bytes on the wire ({raw} uncompressed), more than the topic's \
         max.message.bytes (or the broker's message.max.bytes) allows; it cannot be split further"
    );
    if let Some(b) = broker_message.filter(|b| !b.is_empty()) {
        m.push_str("; the broker said: ");
        m.push_str(b);
    }
    m
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use tokio::time::Instant;

    use super::*;
    use crate::compression::Codec;
    use crate::error::ErrorCode;
    use crate::producer::delivery::{BatchAck, BatchCompletion, DeliveryFuture, test_deliveries};
    use crate::protocol::batch::{compress_batch, stamp_producer};

    /// A sent batch of `n` records of `len` bytes each (value `i` repeated),
    /// stamped with sequence 100, compressed with `codec` if given.
    fn sent_batch(n: usize, len: usize, codec: Option<Codec>) -> (ProducerBatch, Vec<DeliveryFuture>) {
        let mut w = BatchWriter::new(0);
        for i in 0..n {
            w.append(1_000 + i as i64, None, Some(&vec![i as u8; len]), &[]);
        }
        let raw = w.finish();
        let raw_len = raw.len();
        let mut bytes: BytesMut = match codec {
            Some(c) => compress_batch(&raw, c).unwrap().0,
            None => raw,
        };
        stamp_producer(&mut bytes, 7, 0, 100);
        let stamp = Stamp { producer_id: 7, epoch: 0, base_sequence: 100 };
        let completion = BatchCompletion::new(Arc::from("t"), 0, test_deliveries());
        let futures =
            (0..n).map(|i| DeliveryFuture::new(completion.clone(), i as i32, 1_000 + i as i64)).collect();
        let mut b = ProducerBatch::sealed(
            Payload::Stamped(bytes.freeze(), stamp),
            n as i32,
            completion,
            Instant::now(),
            5 << 32,
            Vec::new(),
        );
        b.stamp = Some(stamp);
        b.raw_len = raw_len;
        (b, futures)
    }

    fn too_large_err() -> Error {
        Error::broker(ErrorCode::MESSAGE_TOO_LARGE, None)
    }

    #[test]
    fn parts_hold_at_most_half_and_at_most_batch_size() {
        assert_eq!(part_target(16384, 1000), 500);
        assert_eq!(part_target(100, 1000), 100);
        assert_eq!(part_target(100, 1), 1);
    }

    #[tokio::test]
    async fn a_split_batch_keeps_its_records_order_sequences_and_futures() {
        for codec in [None, Some(Codec::Zstd { level: 3 }), Some(Codec::Lz4 { level: 9 })] {
            let (b, futures) = sent_batch(10, 100, codec);
            let parts = split(b, 16384, codec.is_some(), &too_large_err()).unwrap();
            assert!(parts.len() >= 2, "{}", parts.len());
            let counts: Vec<i32> = parts.iter().map(|p| p.records).collect();
            assert_eq!(counts.iter().sum::<i32>(), 10);
            // Sequences: the refused batch's range, in order, from 100.
            let mut seq = 100;
            for p in &parts {
                assert_eq!(p.stamp.map(|s| s.base_sequence), Some(seq));
                seq += p.records;
                assert_eq!(p.order >> 32, 5, "sorted where the refused batch was");
                assert_eq!(matches!(p.payload, Payload::Raw(_)), codec.is_some());
            }
            assert!(parts.windows(2).all(|w| w[0].order < w[1].order));
            // Each part written at its own offset: the futures read theirs.
            let mut offset = 40;
            for p in parts {
                let n = p.records;
                p.complete(BatchAck { base_offset: Some(offset), log_append_time: None });
                offset += i64::from(n);
            }
            for (i, f) in futures.into_iter().enumerate() {
                let md = f.await.unwrap();
                assert_eq!((md.offset(), md.timestamp()), (Some(40 + i as i64), 1_000 + i as i64));
            }
        }
    }

    #[test]
    fn parts_carry_the_records_themselves() {
        let (b, _futures) = sent_batch(5, 30, Some(Codec::Zstd { level: 3 }));
        let parts = split(b, 16384, false, &too_large_err()).unwrap();
        let mut values = Vec::new();
        for p in &parts {
            let Payload::Ready(bytes) = &p.payload else { panic!("uncompressed parts are ready") };
            let bytes = Bytes::copy_from_slice(bytes);
            let h = read_header(&bytes).unwrap().unwrap();
            for r in decode_records(&h, records_section(&h, &bytes).unwrap()).unwrap() {
                values.push((r.timestamp, r.value.unwrap()[0]));
            }
        }
        assert_eq!(values, (0..5).map(|i| (1_000 + i as i64, i as u8)).collect::<Vec<_>>());
    }

    #[test]
    fn a_single_record_is_not_split() {
        let (b, _f) = sent_batch(1, 100, None);
        let (b, why) = *split(b, 16384, false, &too_large_err()).unwrap_err();
        assert_eq!(b.records, 1);
        assert!(why.contains("cannot be split"), "{why}");
    }

    #[tokio::test]
    async fn callbacks_move_to_their_records_part() {
        let (mut b, _f) = sent_batch(4, 100, None);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        for i in 0..4 {
            let seen = seen.clone();
            b.callbacks.push(RecordCallback {
                offset_delta: i,
                timestamp: 1_000 + i64::from(i),
                f: crate::producer::delivery::Callback::boxed(move |r| {
                    seen.lock().push((i, r.map(|m| m.offset()).ok().flatten()))
                }),
            });
        }
        let deliveries = b.completion.deliveries().clone();
        let parts = split(b, 150, false, &too_large_err()).unwrap();
        assert_eq!(parts.len(), 4, "150 bytes hold one record of 100");
        for (offset, p) in (10..).zip(parts) {
            p.complete(BatchAck { base_offset: Some(offset), log_append_time: None });
        }
        deliveries.run_pending();
        assert_eq!(*seen.lock(), vec![(0, Some(10)), (1, Some(11)), (2, Some(12)), (3, Some(13))]);
    }
}
