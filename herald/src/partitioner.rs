//! Which partition a record goes to.
//!
//! herald's default, in order:
//! 1. a partition set on the record ([`Record::partition`](crate::Record::partition)) wins;
//! 2. a record with a key goes to `toPositive(murmur2(key)) % numPartitions`, bit for
//!    bit what the Java client computes, so herald and every Java, librdkafka
//!    (`murmur2_random`) or franz-go producer of a topic agree on where a key lives;
//! 3. a record without a key goes round-robin over the topic's partitions
//!    (p0, p1, p2, … back to p0), skipping partitions that have no leader — or, with
//!    [`NullKeyPartitioning::UniformSticky`], to one partition until `batch.size`
//!    bytes have gone there, then to another (Java's default since KIP-794); bytes
//!    as the batch will carry them, so with compression each record counts at the
//!    partition's estimated compression ratio, as in Java's `BuiltInPartitioner`.
//!
//! # The formula in a widely copied introduction is wrong
//! A widely copied introduction to Kafka producers gives
//! `Math.abs(Utils.murmur2(keyBytes)) % (numPartitions - 1)`. Both halves are wrong:
//! - `% (numPartitions - 1)` never picks the last partition, and divides by zero on a
//!   topic with one partition;
//! - `Math.abs(Integer.MIN_VALUE)` is still negative in Java, so a key whose hash is
//!   `i32::MIN` would get a negative partition. Java clears the sign bit instead:
//!   `toPositive(x) = x & 0x7fffffff`.
//!
//! The Java client's code (`BuiltInPartitioner.partitionForKey`) is
//! `Utils.toPositive(Utils.murmur2(serializedKey)) % numPartitions`, and herald follows
//! it, because a key must land in the same partition whichever producer wrote it.
//! The differential test (`tests/partitioner_java.rs`) checks herald against that
//! Java code on tens of thousands of random keys.
//!
//! # Round-robin or sticky for null keys?
//! Round-robin spreads records evenly one by one (the rule the README documents), but each
//! record of a burst lands in a different partition, so a burst of N records makes up
//! to N small batches: more requests, less compression, more broker work. Uniform
//! sticky fills one batch at a time and still spreads bytes evenly over time, which
//! is why Java made it the default; choose it for throughput, round-robin when every
//! consumer must see an even share of every burst.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;

/// The 32-bit murmur2 hash exactly as the Java client's `Utils.murmur2` computes it
/// (seed `0x9747b28c`), as a signed Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java computes `seed ^ length` on ints; keys longer than i32::MAX cannot reach
    // a Kafka batch, so truncating the length here matches Java wherever it matters.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (`x & 0x7fffffff`). Unlike `abs`,
/// it is non-negative for every input, `i32::MIN` included.
pub fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

/// The partition for a non-null key on a topic with `num_partitions` partitions:
/// `toPositive(murmur2(key)) % numPartitions`, as the Java client computes it.
///
/// Returns 0 when `num_partitions` is not positive (no topic has such a count).
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key)) % num_partitions
}

/// What a [`Partitioner`] knows about the topic's partitions.
#[derive(Debug, Clone, Copy)]
pub struct Partitions<'a> {
    count: i32,
    available: &'a [i32],
}

impl<'a> Partitions<'a> {
    pub(crate) fn new(count: i32, available: &'a [i32]) -> Partitions<'a> {
        Partitions { count, available }
    }

    /// How many partitions the topic has (`0..count`).
    pub fn count(&self) -> i32 {
        self.count
    }

    /// The partitions that currently have a leader, ascending. Empty when none has.
    pub fn available(&self) -> &'a [i32] {
        self.available
    }
}

/// Chooses partitions for records that do not name one: the equivalent of Java's
/// `partitioner.class`. Plug one in with
/// [`ProducerBuilder::partitioner`](crate::ProducerBuilder::partitioner).
///
/// The producer calls it on the caller's thread inside `send`, so it must be cheap.
/// A partition outside `0..partitions.count()` fails that record's send with an
/// error naming the partitioner's answer.
///
/// ```
/// use herald::{Partitioner, Partitions};
///
/// /// Sends every record whose key starts with "vip-" to partition 0.
/// #[derive(Debug)]
/// struct VipFirst;
///
/// impl Partitioner for VipFirst {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>,
///                  partitions: &Partitions<'_>) -> i32 {
///         match key {
///             Some(k) if k.starts_with(b"vip-") => 0,
///             Some(k) => herald::partitioner::partition_for_key(k, partitions.count()),
///             None => 0,
///         }
///     }
/// }
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug + 'static {
    /// The partition for a record of `topic` with this key and value.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: &Partitions<'_>,
    ) -> i32;
}

/// Where records without a key go, with the built-in partitioner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NullKeyPartitioning {
    /// p0, p1, p2, … back to p0, over the partitions that have a leader (the
    /// round-robin rule documented in the README, and herald's default).
    #[default]
    RoundRobin,
    /// One partition until its batch is full, then another one chosen at random
    /// (Java's default, KIP-794, without its adaptive weighting).
    UniformSticky,
}

/// The per-topic state the built-in partitioner keeps.
#[derive(Debug, Default)]
pub(crate) struct TopicPartitionerState {
    round_robin: AtomicU32,
    /// The current sticky partition (or -1), the bytes produced to it, and
    /// whether its batch filled up since it was chosen.
    sticky: Mutex<Sticky>,
}

#[derive(Debug)]
struct Sticky {
    current: i32,
    produced: usize,
    filled: bool,
}

impl Default for Sticky {
    fn default() -> Sticky {
        Sticky { current: -1, produced: 0, filled: false }
    }
}

impl TopicPartitionerState {
    /// The next round-robin partition, as Java's `RoundRobinPartitioner` chooses it.
    pub(crate) fn next_round_robin(&self, partitions: &Partitions<'_>) -> i32 {
        let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let n = to_positive(n as i32);
        let available = partitions.available();
        if available.is_empty() {
            n % partitions.count().max(1)
        } else {
            // available.len() is at most the partition count, an i32.
            available[(n as usize) % available.len()]
        }
    }

    /// The uniform sticky partition for a record of `size` bytes in its batch. It
    /// moves on when the partition's batch has filled up
    /// ([`batch_filled`](Self::batch_filled), told by the accumulator when the
    /// batch has no room for another record like the last), as Java's
    /// `RecordAccumulator` lets its `BuiltInPartitioner` switch only once the
    /// partition's batches are full: moving on earlier leaves a partial batch
    /// behind to wait for `linger.ms`, later starts a small one. It also counts
    /// the bytes a record adds to its batch on the wire (`size` scaled by the
    /// partition's compression `ratio` estimate), and moves on after twice
    /// `batch_size` from a partition whose batches the sender takes before
    /// they fill.
    pub(crate) fn next_sticky(
        &self,
        partitions: &Partitions<'_>,
        size: usize,
        batch_size: usize,
        ratio: impl Fn(i32) -> f32,
    ) -> i32 {
        let on_wire = |p: i32| ((size as f32 * ratio(p).clamp(0.0, 1.0)).ceil() as usize).max(1);
        let mut s = self.sticky.lock();
        let done = s.filled || s.produced >= 2 * batch_size;
        if s.current < 0 || s.current >= partitions.count() || done {
            let available = partitions.available();
            let next = if available.is_empty() {
                fastrand::i32(0..partitions.count().max(1))
            } else if available.len() == 1 {
                available[0]
            } else {
                // Switch to a different partition when there is one to switch to.
                loop {
                    let p = available[fastrand::usize(0..available.len())];
                    if p != s.current {
                        break p;
                    }
                }
            };
            *s = Sticky { current: next, produced: on_wire(next), filled: false };
            next
        } else {
            s.produced += on_wire(s.current);
            s.current
        }
    }

    /// A batch of `partition` filled up: the sticky partitioner may move on from it.
    pub(crate) fn batch_filled(&self, partition: i32) {
        let mut s = self.sticky.lock();
        if s.current == partition {
            s.filled = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published in Apache Kafka's own UtilsTest.testMurmur2; the differential test
    // checks many more against the Java client at run time.
    #[test]
    fn murmur2_matches_java_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), *want, "key {:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn to_positive_handles_min() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn key_partition_uses_every_partition_including_the_last() {
        let mut seen = [false; 3];
        for i in 0..200 {
            seen[partition_for_key(format!("k{i}").as_bytes(), 3) as usize] = true;
        }
        assert_eq!(seen, [true, true, true]);
        // One partition: always 0, never a division by zero.
        assert_eq!(partition_for_key(b"x", 1), 0);
    }

    #[test]
    fn round_robin_cycles_in_order() {
        let s = TopicPartitionerState::default();
        let all = [0, 1, 2];
        let p = Partitions::new(3, &all);
        let got: Vec<i32> = (0..7).map(|_| s.next_round_robin(&p)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn round_robin_skips_partitions_without_leader() {
        let s = TopicPartitionerState::default();
        let avail = [0, 2];
        let p = Partitions::new(3, &avail);
        let got: Vec<i32> = (0..4).map(|_| s.next_round_robin(&p)).collect();
        assert_eq!(got, vec![0, 2, 0, 2]);
    }

    /// How many records of `size` bytes the sticky partitioner sends to its first
    /// partition before it switches, with every partition's ratio estimate `ratio`,
    /// the partition's batch filling up with record `fill_at` (if ever).
    fn sticky_run(size: usize, batch_size: usize, ratio: f32, fill_at: Option<usize>) -> usize {
        let s = TopicPartitionerState::default();
        let all = [0, 1, 2, 3];
        let p = Partitions::new(4, &all);
        let first = s.next_sticky(&p, size, batch_size, |_| ratio);
        let mut n = 1;
        loop {
            if fill_at == Some(n) {
                s.batch_filled(first);
            }
            if s.next_sticky(&p, size, batch_size, |_| ratio) != first {
                return n;
            }
            n += 1;
            assert!(n < 10_000, "never switched");
        }
    }

    #[test]
    fn sticky_moves_on_when_the_batch_filled_up() {
        // The batch full with the 10th record: the 11th moves on.
        assert_eq!(sticky_run(100, 1000, 1.0, Some(10)), 10);
        assert_eq!(sticky_run(100, 1000, 1.0, Some(7)), 7);
        // A batch that never fills (the sender takes it early each time): moved on
        // after twice batch.size.
        assert_eq!(sticky_run(100, 1000, 1.0, None), 20);
    }

    #[test]
    fn a_batch_of_another_partition_filling_up_does_not_move_the_sticky_one() {
        let s = TopicPartitionerState::default();
        let all = [0, 1, 2, 3];
        let p = Partitions::new(4, &all);
        let first = s.next_sticky(&p, 100, 1000, |_| 1.0);
        s.batch_filled((first + 1) % 4);
        for _ in 0..15 {
            assert_eq!(s.next_sticky(&p, 100, 1000, |_| 1.0), first);
        }
    }

    #[test]
    fn sticky_counts_compressed_bytes() {
        // Records that compress to a quarter: 40 of 100 bytes make a 1000-byte
        // batch on the wire, not 10 (Java's BuiltInPartitioner counts the batch's
        // estimated size); the backstop of twice batch.size counts so too.
        assert_eq!(sticky_run(100, 1000, 0.25, None), 80);
        // An estimate above 1 (a codec that grows the data) counts as raw bytes,
        // as the accumulator's batch size estimate does.
        assert_eq!(sticky_run(100, 1000, 1.4, None), 20);
    }
}
