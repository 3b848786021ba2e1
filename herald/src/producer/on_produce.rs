//! The sender's side of a Produce answer: each partition's answer is read by
//! [`classify`] (pure), then the batch is resolved, retried after a backoff
//! (following a KIP-951 leader hint at once), or failed.

use kafka_protocol::messages::ProduceResponse;
use tokio::time::Instant;

use super::accumulator::PartitionQueue;
use super::batch::ProducerBatch;
use super::delivery::BatchAck;
use super::response::{Decision, PartitionAnswer, answers_by_partition, classify, plain_verdict};
use super::sender::Sender;
use super::split::{one_record_too_large, split, too_large};
use crate::connection::BrokerAddr;
use crate::error::{Error, ErrorKind, TimeoutKind};

impl Sender {
    pub(crate) fn handle_produce(&mut self, id: u64, result: Result<Option<ProduceResponse>, crate::Error>) {
        let Some(f) = self.in_flight.remove(&id) else { return };
        if let Some(n) = self.in_flight_per_node.get_mut(&f.node) {
            *n = n.saturating_sub(1);
        }
        for (q, _) in &f.batches {
            q.state.lock().request_done();
        }
        let resp = match result {
            Err(e) => {
                tracing::debug!(broker = %f.broker, error = %e, "produce request got no answer");
                self.metadata.request();
                if matches!(e.kind(), ErrorKind::Timeout { .. } | ErrorKind::Protocol { .. }) {
                    self.transport.close_node(f.node);
                }
                // An authentication failure means the connection never carried
                // the request.
                let unsent = e.is_authentication();
                for (q, mut b) in f.batches {
                    // Handed to the connection and not answered: it may be written.
                    b.maybe_written |= !unsent;
                    let retriable = e.is_retriable();
                    self.retry_or_fail(&q, b, e.clone(), retriable);
                }
                if unsent {
                    self.authentication_failed(&e);
                }
                return;
            }
            Ok(None) => {
                // acks=0: written to the socket is all we will ever know.
                for (_, b) in f.batches {
                    b.complete(BatchAck { base_offset: None, log_append_time: None });
                }
                return;
            }
            Ok(Some(resp)) => resp,
        };
        // KIP-219: a throttled broker answers at once and expects no request for
        // throttle_time_ms; Java's NetworkClient holds that connection meanwhile.
        let throttle_ms = u64::try_from(resp.throttle_time_ms).unwrap_or(0);
        self.recorder().response(f.node, f.sent_at.elapsed(), throttle_ms);
        if throttle_ms > 0 {
            tracing::debug!(broker = %f.broker, throttle_ms, "broker throttles produce requests");
            self.throttle(f.node, std::time::Duration::from_millis(throttle_ms));
        }
        self.learn_endpoints(&resp);
        let mut answers = answers_by_partition(&f.topic_ids, resp);
        for (q, mut b) in f.batches {
            let answer = answers.remove(&(q.topic.clone(), q.partition));
            let Some(a) = answer else {
                b.maybe_written = true;
                let e = Error::protocol(&*f.broker, "the produce response has no answer for this partition");
                self.retry_or_fail(&q, b, e, true);
                continue;
            };
            if a.code.is_stale_metadata() {
                self.metadata.request();
            }
            if let Some(leader) = a.leader_hint.filter(|l| *l >= 0 && self.transport.knows(*l)) {
                // KIP-951: go to the new leader without waiting for metadata.
                q.leader.store(leader, std::sync::atomic::Ordering::Release);
            }
            let mut a = a;
            if too_large(a.code) {
                if b.records > 1 {
                    self.split_too_large(&q, b, &a);
                    continue;
                }
                let detail = one_record_too_large(b.payload.len(), b.raw_len, a.message.as_deref());
                a.message = Some(detail);
            }
            let idempotent = self.idempotent;
            let decision = classify(a, &mut b, |b, code| {
                if idempotent { q.state.lock().judge(b, code) } else { plain_verdict(code) }
            });
            match decision {
                Decision::Written { base_offset, log_append_time } => {
                    self.written(&q, b, base_offset, log_append_time)
                }
                Decision::Retry(e) => self.retry_or_fail(&q, b, e, true),
                Decision::Fail(e) => b.fail_honestly(e),
            }
        }
        for ((t, p), _) in answers {
            tracing::warn!(broker = %f.broker, topic = %t, partition = p, "produce response for a partition that was not asked about; ignored");
        }
    }

    fn written(
        &mut self,
        q: &PartitionQueue,
        b: ProducerBatch,
        base_offset: Option<i64>,
        log_append_time: Option<i64>,
    ) {
        if let Some(stamp) = b.stamp {
            q.state.lock().written(stamp, b.records);
        }
        b.complete(BatchAck { base_offset, log_append_time });
    }

    /// KIP-126: a batch of several records the broker refused as too large goes
    /// back to the front of its queue as smaller batches (`split.rs`); not an
    /// attempt, as in Java (the parts start with none).
    fn split_too_large(&mut self, q: &PartitionQueue, b: ProducerBatch, a: &PartitionAnswer) {
        let compress = q.state.lock().compresses();
        let err = Error::broker(a.code, a.message.clone());
        let (records, wire, raw) = (b.records, b.payload.len(), b.raw_len);
        let ratio = if raw == 0 { 1.0 } else { wire as f32 / raw as f32 };
        // Decoding and re-encoding run here, off the partition's lock.
        match split(b, self.shared.config.batch_size, compress, &err) {
            Ok(parts) => {
                tracing::warn!(
                    topic = %q.topic, partition = q.partition, records, bytes = wire, parts = parts.len(),
                    error = %err, "batch too large for the broker: split and sent again"
                );
                self.recorder().batch_split();
                q.state.lock().requeue_split(parts, ratio);
            }
            Err(refused) => {
                let (b, why) = *refused;
                q.state.lock().failed_after_send(&b);
                let message = match a.message.as_deref().filter(|m| !m.is_empty()) {
                    Some(m) => format!("{m}; the batch cannot be split: {why}"),
                    None => format!("the batch cannot be split: {why}"),
                };
                b.fail_honestly(Error::broker(a.code, Some(message)));
            }
        }
    }

    /// KIP-951: brokers named in the answer's endpoints become reachable at once.
    fn learn_endpoints(&mut self, resp: &ProduceResponse) {
        for e in &resp.node_endpoints {
            let Ok(port) = u16::try_from(e.port) else { continue };
            if port == 0 || e.host.is_empty() {
                continue;
            }
            self.transport.add_broker(BrokerAddr {
                node_id: Some(e.node_id.0),
                host: e.host.to_string(),
                port,
            });
        }
    }

    /// Puts a batch back for another attempt if the error is `retriable` and
    /// `retries` and `delivery.timeout.ms` allow; otherwise fails it with `err` (and,
    /// with idempotence, marks the partition's sequence unresolved if the batch had
    /// been sent).
    pub(crate) fn retry_or_fail(
        &mut self,
        q: &PartitionQueue,
        mut b: ProducerBatch,
        err: Error,
        retriable: bool,
    ) {
        let cfg = &self.shared.config;
        let now = Instant::now();
        let wait = self.backoff.after(b.attempts);
        let deadline = b.created + cfg.delivery_timeout;
        if !retriable || b.attempts > cfg.retries || now + wait >= deadline {
            q.state.lock().failed_after_send(&b);
            let err = if retriable && now + wait >= deadline {
                Error::timeout(TimeoutKind::Delivery, cfg.delivery_timeout).caused_by(err)
            } else {
                err
            };
            b.fail_honestly(err);
            return;
        }
        tracing::debug!(topic = %q.topic, partition = q.partition, records = b.records, attempt = b.attempts, error = %err, "retrying batch");
        self.recorder().batch_retried(u64::try_from(b.records).unwrap_or(0));
        b.retry_at = Some(now + wait);
        b.last_error = Some(err);
        q.state.lock().requeue(b);
    }
}
