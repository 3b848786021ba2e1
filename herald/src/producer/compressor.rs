//! Compression off the sender and off the callers' threads: at most `max` workers
//! on tokio's blocking pool, each taking the oldest waiting batch of any
//! partition until none is left. Bounded, so memory holds a few codec contexts and
//! output buffers rather than one per sealed batch; oldest first, so no partition
//! waits behind newer batches; and a worker goes straight on to the next batch,
//! with no round trip through the sender per batch (which made fast codecs slow).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::accumulator::PartitionQueue;
use super::batch::Order;
use crate::compression::Codec;
use crate::protocol::batch::compress_batch;

/// A sealed batch to compress.
pub(crate) struct Job {
    pub(crate) created: Instant,
    pub(crate) order: Order,
    pub(crate) queue: Arc<PartitionQueue>,
    pub(crate) raw: BytesMut,
    /// The sender's group of batches sealed together for one broker, if any.
    pub(crate) group: Option<u64>,
}

impl Job {
    /// The jobs for what `QueueState::take_for_compression` took from `queue`.
    pub(crate) fn all_of(
        queue: &Arc<PartitionQueue>,
        taken: Vec<(Instant, Order, BytesMut)>,
    ) -> impl Iterator<Item = Job> + '_ {
        taken.into_iter().map(|(created, order, raw)| Job {
            created,
            order,
            queue: queue.clone(),
            raw,
            group: None,
        })
    }

    fn key(&self) -> (Instant, Order, usize) {
        (self.created, self.order, Arc::as_ptr(&self.queue) as usize)
    }
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Job {}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Job) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Job {
    /// Older is greater: the heap pops the oldest first.
    fn cmp(&self, other: &Job) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// A compressed batch (or why it could not be), back for the sender.
pub(crate) struct Compressed {
    pub(crate) queue: Arc<PartitionQueue>,
    pub(crate) order: Order,
    /// The job's group.
    pub(crate) group: Option<u64>,
    pub(crate) result: Result<(BytesMut, f32), String>,
}

struct State {
    waiting: BinaryHeap<Job>,
    running: usize,
}

/// The producer's compression workers.
pub(crate) struct Compressor {
    state: Arc<Mutex<State>>,
    results: mpsc::UnboundedSender<Compressed>,
    codec: Codec,
    max: usize,
}

impl Compressor {
    /// Workers for `codec`, at most `max` at once; results arrive on the receiver.
    pub(crate) fn new(codec: Codec, max: usize) -> (Compressor, mpsc::UnboundedReceiver<Compressed>) {
        let (results, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State { waiting: BinaryHeap::new(), running: 0 }));
        (Compressor { state, results, codec, max: max.max(1) }, rx)
    }

    /// Queues batches to compress, starting workers up to the bound.
    pub(crate) fn submit(&self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let start = {
            let mut st = self.state.lock();
            st.waiting.extend(jobs);
            let n = self.max.saturating_sub(st.running).min(st.waiting.len());
            st.running += n;
            n
        };
        for _ in 0..start {
            let (state, results, codec) = (self.state.clone(), self.results.clone(), self.codec);
            tokio::task::spawn_blocking(move || work(&state, &results, codec));
        }
    }

    /// Workers running now (for tests).
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.state.lock().running
    }
}

/// One worker: the oldest waiting batch, then the next, until none is left. The
/// count of running workers drops under the same lock that finds the queue
/// empty, so a batch queued meanwhile always finds a worker to start.
fn work(state: &Mutex<State>, results: &mpsc::UnboundedSender<Compressed>, codec: Codec) {
    loop {
        let job = {
            let mut st = state.lock();
            match st.waiting.pop() {
                Some(job) => job,
                None => {
                    st.running -= 1;
                    return;
                }
            }
        };
        let raw = job.raw;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compress_batch(&raw, codec)))
            .map_err(|_| "the codec panicked".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let _ = results.send(Compressed { queue: job.queue, order: job.order, group: job.group, result });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::BatchWriter;

    fn raw_batch(n: u8) -> BytesMut {
        let mut w = BatchWriter::new(1024);
        let v = [n; 200];
        w.append_sized(1, None, Some(&v), &[], crate::protocol::batch::fields_len(None, Some(&v), &[]));
        w.finish()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bounded_number_of_workers_compress_every_batch() {
        let (c, mut rx) = Compressor::new(Codec::Zstd { level: 3 }, 2);
        let q = Arc::new(PartitionQueue::new(Arc::from("t"), 0, true));
        let now = Instant::now();
        let jobs: Vec<Job> = (0..20u8)
            .map(|i| Job {
                created: now + std::time::Duration::from_millis(u64::from(i)),
                order: Order::from(i),
                queue: q.clone(),
                raw: raw_batch(i),
                group: None,
            })
            .collect();
        c.submit(jobs);
        assert!(c.running() <= 2, "at most two workers");
        let mut seen = Vec::new();
        for _ in 0..20 {
            let done =
                tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
            assert!(done.result.is_ok());
            seen.push(done.order);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>(), "every batch, once");
        // Idle workers leave; a later batch starts one again.
        for _ in 0..100 {
            if c.running() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(c.running(), 0);
        c.submit(vec![Job { created: now, order: 99, queue: q.clone(), raw: raw_batch(9), group: None }]);
        let done =
            tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert_eq!(done.order, 99);
    }

    #[test]
    fn the_oldest_batch_comes_out_first() {
        let q = Arc::new(PartitionQueue::new(Arc::from("t"), 0, true));
        let now = Instant::now();
        let mut heap = BinaryHeap::new();
        for (i, ms) in [(0, 30u64), (1, 10), (2, 20)] {
            heap.push(Job {
                created: now + std::time::Duration::from_millis(ms),
                order: i,
                queue: q.clone(),
                raw: BytesMut::new(),
                group: None,
            });
        }
        let order: Vec<Order> = std::iter::from_fn(|| heap.pop().map(|j| j.order)).collect();
        assert_eq!(order, [1, 2, 0]);
    }
}
