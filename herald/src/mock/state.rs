//! The embedded cluster's state: brokers, topics, partition logs, producer state.
//!
//! Pure logic, no I/O: the API handlers lock the state, call in here, and encode
//! what comes back. Validation follows the Kafka broker (`ProduceRequest
//! .validateRecords`, `UnifiedLog.analyzeAndValidateRecords`, `LogValidator`,
//! `ProducerStateManager`) and returns the error codes Kafka returns.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use super::txn::Coordinator;
use super::txn_log::PartitionTxns;
use crate::compression::Codec;
use crate::error::ErrorCode;
use crate::protocol::batch;
use crate::protocol::records::{self, BatchError, BatchHeader, ReadRecord};

/// Kafka's default `max.message.bytes` (1 MiB + 12 bytes of log overhead).
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
/// Kafka 4.0's default `message.timestamp.after.max.ms` (KIP-1030): one hour.
const DEFAULT_TIMESTAMP_AFTER_MAX_MS: i64 = 3_600_000;
/// How many recent batches per producer and partition Kafka remembers for
/// duplicate detection.
const PRODUCER_BATCH_MEMORY: usize = 5;
/// `POLICY_VIOLATION`.
pub(crate) const POLICY_VIOLATION: ErrorCode = ErrorCode::new(44);
/// The most partitions one CreateTopics request may create: KRaft's
/// `ReplicationControlManager.MAX_PARTITIONS_PER_BATCH` (KAFKA-17870). Beyond it
/// Kafka answers `POLICY_VIOLATION`; here it also keeps a request from making the
/// cluster allocate a partition table of any size it names.
pub(crate) const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;
/// Kafka's message for [`MAX_PARTITIONS_PER_REQUEST`].
pub(crate) const TOO_MANY_PARTITIONS: &str = "Excessively large number of partitions per request.";

/// One broker.
#[derive(Clone, Debug)]
pub(crate) struct BrokerInfo {
    pub(crate) port: u16,
    pub(crate) up: bool,
}

/// A topic's settings that the embedded cluster acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopicConfig {
    /// The topic's `compression.type` as a codec id (0 = uncompressed), or `None`
    /// for `producer`: keep what the producer sent.
    pub(crate) compression: Option<u8>,
    pub(crate) log_append_time: bool,
    pub(crate) max_message_bytes: usize,
    pub(crate) compact: bool,
    pub(crate) timestamp_before_max_ms: i64,
    pub(crate) timestamp_after_max_ms: i64,
    /// Every config given at creation, as given.
    pub(crate) raw: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> TopicConfig {
        TopicConfig {
            compression: None,
            log_append_time: false,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            compact: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            raw: BTreeMap::new(),
        }
    }
}

/// Topic configs Kafka knows; others are `INVALID_CONFIG` as on a real broker.
const KNOWN_TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

impl TopicConfig {
    /// Parses topic configs as CreateTopics receives them; the error is the message
    /// for `INVALID_CONFIG`.
    pub(crate) fn parse(configs: &[(String, Option<String>)]) -> Result<TopicConfig, String> {
        let mut c = TopicConfig::default();
        for (k, v) in configs {
            if !KNOWN_TOPIC_CONFIGS.contains(&k.as_str()) {
                return Err(format!("Unknown topic config name: {k}"));
            }
            let Some(v) = v else { continue };
            let int = |v: &str| {
                v.trim().parse::<i64>().map_err(|_| format!("Invalid value {v} for configuration {k}"))
            };
            match k.as_str() {
                "message.timestamp.type" => {
                    c.log_append_time = match v.as_str() {
                        "CreateTime" => false,
                        "LogAppendTime" => true,
                        _ => {
                            return Err(format!(
                                "Invalid value {v} for configuration {k}: String must be one of: CreateTime, LogAppendTime"
                            ));
                        }
                    }
                }
                "max.message.bytes" => {
                    c.max_message_bytes = usize::try_from(int(v)?)
                        .map_err(|_| format!("Invalid value {v} for configuration {k}"))?
                }
                "cleanup.policy" => {
                    let policies: Vec<&str> = v.split(',').map(str::trim).collect();
                    if policies.iter().any(|p| !matches!(*p, "delete" | "compact")) {
                        return Err(format!("Invalid value {v} for configuration {k}"));
                    }
                    c.compact = policies.contains(&"compact");
                }
                "compression.type" => {
                    c.compression = match v.as_str() {
                        "producer" => None,
                        "uncompressed" => Some(0),
                        "gzip" => Some(1),
                        "snappy" => Some(2),
                        "lz4" => Some(3),
                        "zstd" => Some(4),
                        _ => {
                            return Err(format!(
                                "Invalid value {v} for configuration {k}: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
                            ));
                        }
                    }
                }
                "message.timestamp.before.max.ms" => c.timestamp_before_max_ms = int(v)?.max(0),
                "message.timestamp.after.max.ms" => c.timestamp_after_max_ms = int(v)?.max(0),
                "min.insync.replicas"
                | "retention.ms"
                | "retention.bytes"
                | "segment.bytes"
                | "segment.ms" => {
                    int(v)?;
                }
                _ => {}
            }
            c.raw.insert(k.clone(), v.clone());
        }
        Ok(c)
    }
}

/// One batch in a partition's log: the bytes exactly as a consumer will get them.
#[derive(Clone, Debug)]
pub(crate) struct StoredBatch {
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) bytes: Bytes,
}

/// Where a producer's sequence stands on one partition.
#[derive(Clone, Debug, Default)]
struct ProducerSeq {
    epoch: i16,
    /// (first sequence, last sequence, base offset) of the latest batches.
    recent: VecDeque<(i32, i32, i64)>,
}

/// One partition.
#[derive(Clone, Debug)]
pub(crate) struct Partition {
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) log: Vec<StoredBatch>,
    pub(crate) next_offset: i64,
    pub(crate) log_start: i64,
    producers: HashMap<i64, ProducerSeq>,
    /// Transactions open here and aborted here.
    pub(crate) txns: PartitionTxns,
}

/// One topic.
#[derive(Clone, Debug)]
pub(crate) struct Topic {
    pub(crate) id: Uuid,
    pub(crate) partitions: Vec<Partition>,
    pub(crate) config: TopicConfig,
}

/// The outcome of appending one partition's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AppendResult {
    pub(crate) code: ErrorCode,
    pub(crate) message: Option<String>,
    pub(crate) base_offset: i64,
    pub(crate) log_append_time: i64,
    pub(crate) log_start_offset: i64,
    /// (batch index of the record, message) for record-level errors.
    pub(crate) record_errors: Vec<(i32, String)>,
}

impl AppendResult {
    fn error(code: ErrorCode, message: impl Into<String>) -> AppendResult {
        AppendResult {
            code,
            message: Some(message.into()),
            base_offset: -1,
            log_append_time: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
        }
    }
}

/// Cluster-wide settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) auto_create_topics: bool,
    pub(crate) default_partitions: i32,
    /// Whether Produce stores records (false: acknowledge and count only).
    pub(crate) store_records: bool,
    /// The finalized `transaction.version` feature level (2: KIP-890 part 2).
    pub(crate) transaction_version: i16,
    /// `transaction.max.timeout.ms`.
    pub(crate) max_transaction_timeout_ms: i32,
}

/// The whole cluster.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) cluster_id: String,
    pub(crate) brokers: BTreeMap<i32, BrokerInfo>,
    pub(crate) topics: BTreeMap<String, Topic>,
    pub(crate) next_producer_id: i64,
    pub(crate) settings: Settings,
    /// The transaction coordinator's (and group coordinator's) state.
    pub(crate) txn: Coordinator,
}

/// Kafka's rule for topic names.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".to_owned());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".to_owned());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

impl State {
    pub(crate) fn live_brokers(&self) -> Vec<i32> {
        self.brokers.iter().filter(|(_, b)| b.up).map(|(id, _)| *id).collect()
    }

    /// Creates a topic, spreading partition leaders over the live brokers.
    pub(crate) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication: i16,
        config: TopicConfig,
    ) -> Result<Uuid, (ErrorCode, String)> {
        validate_topic_name(name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION, m))?;
        if self.topics.contains_key(name) {
            return Err((ErrorCode::TOPIC_ALREADY_EXISTS, format!("Topic '{name}' already exists.")));
        }
        let partitions = if partitions == -1 { self.settings.default_partitions } else { partitions };
        if partitions <= 0 {
            return Err((
                ErrorCode::INVALID_PARTITIONS,
                "Number of partitions must be larger than 0.".to_owned(),
            ));
        }
        if i64::from(partitions) > MAX_PARTITIONS_PER_REQUEST {
            return Err((POLICY_VIOLATION, TOO_MANY_PARTITIONS.to_owned()));
        }
        let live = self.live_brokers();
        let replication = if replication == -1 { 1 } else { replication };
        if replication <= 0 {
            return Err((
                ErrorCode::INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0.".to_owned(),
            ));
        }
        if replication as usize > live.len() {
            return Err((
                ErrorCode::INVALID_REPLICATION_FACTOR,
                format!(
                    "Unable to replicate the partition {replication} time(s): The target replication factor of {replication} cannot be reached because only {} broker(s) are registered.",
                    live.len()
                ),
            ));
        }
        let start = (crate::partitioner::murmur2(name.as_bytes()) as u32 as usize) % live.len();
        let parts = (0..partitions as usize)
            .map(|p| {
                let replicas: Vec<i32> =
                    (0..replication as usize).map(|r| live[(start + p + r) % live.len()]).collect();
                Partition {
                    leader: replicas[0],
                    leader_epoch: 0,
                    replicas,
                    log: Vec::new(),
                    next_offset: 0,
                    log_start: 0,
                    producers: HashMap::new(),
                    txns: PartitionTxns::default(),
                }
            })
            .collect();
        let id = Uuid::from_u128(fastrand::u128(1..));
        self.topics.insert(name.to_owned(), Topic { id, partitions: parts, config });
        Ok(id)
    }

    /// The topic with this id.
    pub(crate) fn topic_by_id(&self, id: Uuid) -> Option<(&String, &Topic)> {
        self.topics.iter().find(|(_, t)| t.id == id)
    }

    /// Marks a broker down and moves the leadership of its partitions to a live
    /// replica (or any live broker), as Kafka's controller would after electing.
    pub(crate) fn broker_down(&mut self, id: i32) {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.up = false;
        }
        let live = self.live_brokers();
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                if p.leader == id {
                    let next = p
                        .replicas
                        .iter()
                        .copied()
                        .find(|r| live.contains(r))
                        .or_else(|| live.first().copied())
                        .unwrap_or(-1);
                    p.leader = next;
                    p.leader_epoch += 1;
                }
            }
        }
    }

    /// Marks a broker up; partitions without a leader get it.
    pub(crate) fn broker_up(&mut self, id: i32) {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.up = true;
        }
        for t in self.topics.values_mut() {
            for p in &mut t.partitions {
                if p.leader < 0 {
                    p.leader = id;
                    p.leader_epoch += 1;
                }
            }
        }
    }

    /// Appends one partition's records, validating them as a Kafka broker does
    /// (for a request without a transactional id).
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        topic: &str,
        partition: i32,
        broker: i32,
        records: Option<Bytes>,
        produce_version: i16,
        now_ms: i64,
    ) -> AppendResult {
        self.append_with(topic, partition, broker, records, produce_version, None, now_ms)
    }

    /// Appends one partition's records of a Produce request carrying
    /// `transactional_id`, validating them as a Kafka broker does; transactional
    /// batches are checked with the transaction coordinator first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append_with(
        &mut self,
        topic: &str,
        partition: i32,
        broker: i32,
        records: Option<Bytes>,
        produce_version: i16,
        transactional_id: Option<&str>,
        now_ms: i64,
    ) -> AppendResult {
        let store = self.settings.store_records;
        let Some(t) = self.topics.get_mut(topic) else {
            return AppendResult::error(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
            );
        };
        let config = t.config.clone();
        let Some(p) = usize::try_from(partition).ok().and_then(|i| t.partitions.get_mut(i)) else {
            return AppendResult::error(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
            );
        };
        if p.leader != broker {
            return AppendResult::error(
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                format!("Broker {broker} is not the leader for {topic}-{partition}"),
            );
        }
        let data = records.unwrap_or_default();
        let header = match records::read_header(&data) {
            Ok(Some(h)) => h,
            Ok(None) if data.is_empty() => {
                return AppendResult::error(
                    ErrorCode::INVALID_RECORD,
                    "Produce requests with version 3 and above must contain exactly one record batch",
                );
            }
            Ok(None) => {
                return AppendResult::error(ErrorCode::CORRUPT_MESSAGE, "The record batch is truncated");
            }
            Err(e) => return batch_error(e),
        };
        if header.size() != data.len() {
            return AppendResult::error(
                ErrorCode::INVALID_RECORD,
                "Produce requests with version 3 and above must contain exactly one record batch",
            );
        }
        if header.size() > config.max_message_bytes {
            return AppendResult::error(
                ErrorCode::MESSAGE_TOO_LARGE,
                format!(
                    "The record batch size in the append to {topic}-{partition} is {} bytes which exceeds the maximum configured value of {}.",
                    header.size(),
                    config.max_message_bytes
                ),
            );
        }
        if let Err(e) = records::check_crc(&header, &data) {
            return batch_error(e);
        }
        if header.control() {
            return AppendResult::error(
                ErrorCode::INVALID_RECORD,
                "Clients are not allowed to write control records",
            );
        }
        if header.transactional() {
            let tv = self.settings.transaction_version;
            if let Err((code, m)) = self.txn.verify_produce(
                transactional_id,
                topic,
                partition,
                &header,
                produce_version,
                tv,
                now_ms,
            ) {
                return AppendResult::error(code, m);
            }
        }
        if matches!(Codec::from_id(header.compression()), Some(Codec::Zstd { .. })) && produce_version < 7 {
            return AppendResult::error(
                ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
                "Produce requests with version below 7 cannot carry zstd-compressed batches",
            );
        }
        // The records are walked, not copied out: the batch is stored as it came.
        let body = match records::records_section(&header, &data) {
            Ok(b) => b,
            Err(e) => return batch_error(e),
        };
        let mut record_errors = Vec::new();
        let mut computed_max = None::<i64>;
        let walked = records::walk_records(&header, &body, |r| {
            if let Some(e) = check_record(&r, &config, now_ms) {
                record_errors.push((r.offset_delta, e));
            }
            computed_max = Some(computed_max.map_or(r.timestamp, |m| m.max(r.timestamp)));
            Ok(())
        });
        if let Err(e) = walked {
            return batch_error(e);
        }
        let Some(computed_max) = computed_max else {
            return AppendResult::error(ErrorCode::INVALID_RECORD, "The record batch has no records");
        };
        if !record_errors.is_empty() {
            let code = if record_errors.iter().any(|(_, m)| m.starts_with("Timestamp")) {
                ErrorCode::INVALID_TIMESTAMP
            } else {
                ErrorCode::INVALID_RECORD
            };
            let mut r = AppendResult::error(code, record_errors[0].1.clone());
            r.record_errors = record_errors;
            return r;
        }
        // Idempotence: sequence and epoch checks, duplicates answered with the
        // original offset.
        if header.producer_id >= 0 {
            match check_sequence(p, &header) {
                Ok(None) => {}
                Ok(Some(dup_base)) => {
                    return AppendResult {
                        code: ErrorCode::NONE,
                        message: None,
                        base_offset: dup_base,
                        log_append_time: -1,
                        log_start_offset: p.log_start,
                        record_errors: Vec::new(),
                    };
                }
                Err(r) => return r,
            }
        }
        let base = p.next_offset;
        let count = i64::from(header.record_count);
        let (max_timestamp, log_append_time) =
            if config.log_append_time { (now_ms, now_ms) } else { (computed_max, -1) };
        if store {
            let data = match recompress(&header, &data, config.compression) {
                Ok(d) => d,
                Err(e) => return batch_error(e),
            };
            let mut b = BytesMut::from(&data[..]);
            batch::rewrite_for_log(&mut b, base, p.leader_epoch, config.log_append_time, max_timestamp);
            p.log.push(StoredBatch { last_offset: base + count - 1, max_timestamp, bytes: b.freeze() });
        }
        if header.producer_id >= 0 {
            let s = p.producers.entry(header.producer_id).or_default();
            s.epoch = header.producer_epoch;
            let last = header.base_sequence.wrapping_add(header.record_count - 1);
            s.recent.push_back((header.base_sequence, last, base));
            while s.recent.len() > PRODUCER_BATCH_MEMORY {
                s.recent.pop_front();
            }
            if header.transactional() {
                p.note_transactional(header.producer_id, base);
            }
        }
        p.next_offset = base + count;
        AppendResult {
            code: ErrorCode::NONE,
            message: None,
            base_offset: base,
            log_append_time,
            log_start_offset: p.log_start,
            record_errors: Vec::new(),
        }
    }
}

/// Re-encodes a batch with the topic's own `compression.type` when it differs from
/// the producer's, as a broker does; otherwise returns it as it is.
fn recompress(h: &BatchHeader, data: &Bytes, topic_codec: Option<u8>) -> Result<Bytes, BatchError> {
    let Some(target) = topic_codec.filter(|c| *c != h.compression()) else {
        return Ok(data.clone());
    };
    let records = records::records_section(h, data)?;
    let raw = batch::uncompressed_batch(data, &records).map_err(|e| BatchError::Invalid(e.to_string()))?;
    // Uncompressed: the raw records, the codec bits cleared (the CRC is redone
    // when the batch is rewritten for the log).
    let Some(codec) = Codec::from_id(target) else { return Ok(raw.freeze()) };
    let (out, _) = batch::compress_batch(&raw, codec)
        .map_err(|e| BatchError::Corrupt(format!("recompressing for the topic: {e}")))?;
    Ok(out.freeze())
}

fn batch_error(e: BatchError) -> AppendResult {
    match e {
        BatchError::Corrupt(m) => AppendResult::error(ErrorCode::CORRUPT_MESSAGE, m),
        BatchError::Invalid(m) => AppendResult::error(ErrorCode::INVALID_RECORD, m),
        BatchError::UnsupportedCompression(c) => AppendResult::error(
            ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
            format!("compression codec {c} is not supported by the embedded cluster"),
        ),
    }
}

/// Record-level checks of `LogValidator`: keys on compacted topics, timestamp
/// bounds. `None` if the record passes.
fn check_record(r: &records::RecordView<'_>, config: &TopicConfig, now_ms: i64) -> Option<String> {
    if config.compact && r.key.is_none() {
        return Some("Compacted topic cannot accept message without key.".to_owned());
    }
    if !config.log_append_time {
        let too_old = now_ms.saturating_sub(r.timestamp) > config.timestamp_before_max_ms;
        let too_new = r.timestamp.saturating_sub(now_ms) > config.timestamp_after_max_ms;
        if too_old || too_new {
            return Some(format!(
                "Timestamp {} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                r.timestamp,
                r.offset,
                now_ms.saturating_sub(config.timestamp_before_max_ms),
                now_ms.saturating_add(config.timestamp_after_max_ms)
            ));
        }
    }
    None
}

/// `ProducerStateManager`'s checks. `Ok(Some(offset))`: a duplicate of a recent
/// batch, answered with its original base offset.
fn check_sequence(p: &Partition, h: &BatchHeader) -> Result<Option<i64>, AppendResult> {
    let first = h.base_sequence;
    let last = first.wrapping_add(h.record_count - 1);
    // As in Kafka: with no state for the producer on this partition (a new producer,
    // or its batches all deleted), any first sequence is accepted.
    let Some(s) = p.producers.get(&h.producer_id) else {
        return Ok(None);
    };
    if h.producer_epoch < s.epoch {
        return Err(AppendResult::error(
            ErrorCode::INVALID_PRODUCER_EPOCH,
            format!(
                "Epoch of producer {} at offset is {}, which is smaller than the last seen epoch {}",
                h.producer_id, h.producer_epoch, s.epoch
            ),
        ));
    }
    if h.producer_epoch > s.epoch {
        if first != 0 {
            return Err(AppendResult::error(
                ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                format!(
                    "Invalid sequence number for new epoch of producer {}: {first} (request epoch), 0 (expected)",
                    h.producer_id
                ),
            ));
        }
        return Ok(None);
    }
    if let Some((_, _, base)) = s.recent.iter().find(|(f, l, _)| *f == first && *l == last) {
        return Ok(Some(*base));
    }
    let expected = s.recent.back().map(|(_, l, _)| l.wrapping_add(1)).unwrap_or(0);
    let expected = if expected < 0 { 0 } else { expected };
    if first != expected {
        return Err(AppendResult::error(
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            format!(
                "Out of order sequence number for producer {}: {first} (incoming seq. number), {} (current end sequence number)",
                h.producer_id,
                expected - 1
            ),
        ));
    }
    Ok(None)
}

impl Partition {
    /// The high watermark (every record is "replicated" at once).
    pub(crate) fn high_watermark(&self) -> i64 {
        self.next_offset
    }

    /// Whole batches from `offset` on, at least one, then up to `max_bytes`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Bytes {
        let start = self.log.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        for b in &self.log[start..] {
            if !out.is_empty() && out.len() + b.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        out.freeze()
    }

    /// The first offset whose record has a timestamp at or after `ts`, with that
    /// timestamp; `None` when no record does.
    pub(crate) fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        for b in self.log.iter().filter(|b| b.max_timestamp >= ts) {
            let h = records::read_header(&b.bytes).ok()??;
            let recs = records::read_records(&h, &b.bytes).ok()?;
            if let Some(r) = recs.iter().find(|r| r.timestamp >= ts) {
                return Some((r.offset, r.timestamp));
            }
        }
        None
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub(crate) fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let b = self.log.iter().max_by_key(|b| b.max_timestamp)?;
        let h = records::read_header(&b.bytes).ok()??;
        let recs = records::read_records(&h, &b.bytes).ok()?;
        recs.iter().max_by_key(|r| r.timestamp).map(|r| (r.offset, r.timestamp))
    }

    /// A transaction marker of `producer_id` at `epoch` was written: a newer epoch
    /// replaces the producer's (its sequences start again at 0), as Kafka's
    /// `ProducerAppendInfo.appendEndTxnMarker` does.
    pub(crate) fn producer_marker(&mut self, producer_id: i64, epoch: i16) {
        let s = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerSeq { epoch, recent: VecDeque::new() });
        if epoch > s.epoch {
            s.epoch = epoch;
            s.recent.clear();
        }
    }

    /// Every stored data record, whether in a transaction or not, committed or
    /// not; no control records (for tests and the standalone server's inspection).
    pub(crate) fn records(&self) -> Vec<(BatchHeader, ReadRecord)> {
        let mut out = Vec::new();
        for b in &self.log {
            if let Ok(Some(h)) = records::read_header(&b.bytes) {
                if h.control() {
                    continue;
                }
                if let Ok(recs) = records::read_records(&h, &b.bytes) {
                    out.extend(recs.into_iter().map(|r| (h, r)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::BatchWriter;
    use crate::protocol::batch::stamp_producer;

    fn state() -> State {
        let mut brokers = BTreeMap::new();
        for id in 1..=3 {
            brokers.insert(id, BrokerInfo { port: 0, up: true });
        }
        State {
            cluster_id: "test".into(),
            brokers,
            topics: BTreeMap::new(),
            next_producer_id: 1000,
            settings: Settings {
                auto_create_topics: false,
                default_partitions: 1,
                store_records: true,
                transaction_version: 2,
                max_transaction_timeout_ms: 900_000,
            },
            txn: Coordinator::default(),
        }
    }

    fn batch(records: &[(&str, i64)], pid: i64, epoch: i16, seq: i32) -> Bytes {
        let mut w = BatchWriter::new(64);
        for (v, ts) in records {
            w.append(*ts, Some(b"k"), Some(v.as_bytes()), &[]);
        }
        let mut b = w.finish();
        stamp_producer(&mut b, pid, epoch, seq);
        b.freeze()
    }

    const NOW: i64 = 1_700_000_000_000;

    fn leader(s: &State, t: &str, p: usize) -> i32 {
        s.topics[t].partitions[p].leader
    }

    #[test]
    fn leaders_spread_over_brokers() {
        let mut s = state();
        s.create_topic("t", 6, 1, TopicConfig::default()).unwrap();
        let leaders: std::collections::BTreeSet<i32> = (0..6).map(|p| leader(&s, "t", p)).collect();
        assert_eq!(leaders.len(), 3);
    }

    #[test]
    fn appends_assign_offsets_and_store_a_valid_batch() {
        let mut s = state();
        s.create_topic("t", 1, 1, TopicConfig::default()).unwrap();
        let l = leader(&s, "t", 0);
        let r1 = s.append("t", 0, l, Some(batch(&[("a", NOW), ("b", NOW)], -1, -1, -1)), 13, NOW);
        let r2 = s.append("t", 0, l, Some(batch(&[("c", NOW)], -1, -1, -1)), 13, NOW);
        assert_eq!((r1.code, r1.base_offset, r2.base_offset), (ErrorCode::NONE, 0, 2));
        let data = s.topics["t"].partitions[0].read(1, 1 << 20);
        let h = records::read_header(&data).unwrap().unwrap();
        records::check_crc(&h, &data[..h.size()]).unwrap();
        assert_eq!(h.base_offset, 0);
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        let mut s = state();
        let cfg = TopicConfig::parse(&[("max.message.bytes".into(), Some("100".into()))]).unwrap();
        s.create_topic("small", 1, 1, cfg).unwrap();
        s.create_topic("t", 1, 1, TopicConfig::default()).unwrap();
        let l = leader(&s, "t", 0);
        let other = if l == 1 { 2 } else { 1 };
        assert_eq!(
            s.append("t", 0, other, Some(batch(&[("a", NOW)], -1, -1, -1)), 13, NOW).code,
            ErrorCode::NOT_LEADER_OR_FOLLOWER
        );
        assert_eq!(
            s.append("nope", 0, l, Some(batch(&[("a", NOW)], -1, -1, -1)), 13, NOW).code,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        assert_eq!(
            s.append("t", 5, l, Some(batch(&[("a", NOW)], -1, -1, -1)), 13, NOW).code,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        );
        let mut corrupt = BytesMut::from(&batch(&[("a", NOW)], -1, -1, -1)[..]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert_eq!(s.append("t", 0, l, Some(corrupt.freeze()), 13, NOW).code, ErrorCode::CORRUPT_MESSAGE);
        let two = [batch(&[("a", NOW)], -1, -1, -1), batch(&[("b", NOW)], -1, -1, -1)].concat();
        assert_eq!(s.append("t", 0, l, Some(Bytes::from(two)), 13, NOW).code, ErrorCode::INVALID_RECORD);
        let big = "x".repeat(200);
        let ls = leader(&s, "small", 0);
        assert_eq!(
            s.append("small", 0, ls, Some(batch(&[(&big, NOW)], -1, -1, -1)), 13, NOW).code,
            ErrorCode::MESSAGE_TOO_LARGE
        );
        let future = NOW + 2 * 3_600_000;
        let r = s.append("t", 0, l, Some(batch(&[("a", future)], -1, -1, -1)), 13, NOW);
        assert_eq!(r.code, ErrorCode::INVALID_TIMESTAMP);
        assert_eq!(r.record_errors.len(), 1);
        assert_eq!(s.topics["t"].partitions[0].next_offset, 0, "nothing refused was stored");
    }

    #[test]
    fn a_refused_record_is_named_by_its_place_in_the_batch() {
        let mut s = state();
        s.create_topic("t", 1, 1, TopicConfig::default()).unwrap();
        let l = leader(&s, "t", 0);
        // Kafka 4 bounds timestamps one hour into the future (and not into the past).
        let future = NOW + 2 * 3_600_000;
        let b = batch(&[("a", NOW), ("b", future), ("c", NOW), ("d", future + 1)], -1, -1, -1);
        let r = s.append("t", 0, l, Some(b), 13, NOW);
        assert_eq!(r.code, ErrorCode::INVALID_TIMESTAMP);
        assert_eq!(r.record_errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 3]);
        assert!(r.record_errors[0].1.starts_with(&format!("Timestamp {future} ")), "{:?}", r.record_errors);
        // A producer's base offset is anything it likes (the broker assigns the
        // real one): records are named by their place, not by offsets that wrap.
        let mut b = BytesMut::from(&batch(&[("a", NOW), ("b", future)], -1, -1, -1)[..]);
        b[0..8].copy_from_slice(&i64::MAX.to_be_bytes());
        let r = s.append("t", 0, l, Some(b.freeze()), 13, NOW);
        assert_eq!(r.record_errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        // A compacted topic refuses a record without a key, and only that one.
        let cfg = TopicConfig::parse(&[("cleanup.policy".into(), Some("compact".into()))]).unwrap();
        s.create_topic("c", 1, 1, cfg).unwrap();
        let lc = leader(&s, "c", 0);
        let mut w = BatchWriter::new(64);
        w.append(NOW, Some(b"k"), Some(b"v"), &[]);
        w.append(NOW, None, Some(b"v"), &[]);
        let mut b = w.finish();
        stamp_producer(&mut b, -1, -1, -1);
        let r = s.append("c", 0, lc, Some(b.freeze()), 13, NOW);
        assert_eq!(r.code, ErrorCode::INVALID_RECORD);
        assert_eq!(r.record_errors.len(), 1);
        assert_eq!(r.record_errors[0].0, 1);
        assert_eq!(s.topics["c"].partitions[0].next_offset, 0, "nothing refused was stored");
        // With every record valid, the batch is written.
        let r = s.append("t", 0, l, Some(batch(&[("a", NOW), ("b", NOW + 1)], -1, -1, -1)), 13, NOW);
        assert_eq!((r.code, r.base_offset), (ErrorCode::NONE, 0));
    }

    #[test]
    fn idempotent_sequences_and_duplicates() {
        let mut s = state();
        s.create_topic("t", 1, 1, TopicConfig::default()).unwrap();
        let l = leader(&s, "t", 0);
        let b0 = batch(&[("a", NOW), ("b", NOW)], 7, 0, 0);
        assert_eq!(s.append("t", 0, l, Some(b0.clone()), 13, NOW).base_offset, 0);
        // The same batch again: a duplicate, answered with its first offset.
        let dup = s.append("t", 0, l, Some(b0), 13, NOW);
        assert_eq!((dup.code, dup.base_offset), (ErrorCode::NONE, 0));
        // A gap in the sequence.
        assert_eq!(
            s.append("t", 0, l, Some(batch(&[("c", NOW)], 7, 0, 5)), 13, NOW).code,
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(s.append("t", 0, l, Some(batch(&[("c", NOW)], 7, 0, 2)), 13, NOW).base_offset, 2);
        // An older epoch is fenced; a newer one starts again at 0.
        assert_eq!(
            s.append("t", 0, l, Some(batch(&[("d", NOW)], 7, 1, 3)), 13, NOW).code,
            ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(s.append("t", 0, l, Some(batch(&[("d", NOW)], 7, 1, 0)), 13, NOW).code, ErrorCode::NONE);
        assert_eq!(
            s.append("t", 0, l, Some(batch(&[("e", NOW)], 7, 0, 3)), 13, NOW).code,
            ErrorCode::INVALID_PRODUCER_EPOCH
        );
        // A producer the partition has no state for may start anywhere, as in Kafka.
        assert_eq!(s.append("t", 0, l, Some(batch(&[("f", NOW)], 8, 0, 4)), 13, NOW).code, ErrorCode::NONE);
        assert_eq!(s.topics["t"].partitions[0].next_offset, 5);
    }

    #[test]
    fn log_append_time_rewrites_the_batch() {
        let mut s = state();
        let cfg =
            TopicConfig::parse(&[("message.timestamp.type".into(), Some("LogAppendTime".into()))]).unwrap();
        s.create_topic("t", 1, 1, cfg).unwrap();
        let l = leader(&s, "t", 0);
        let r = s.append("t", 0, l, Some(batch(&[("a", 5)], -1, -1, -1)), 13, NOW);
        assert_eq!(r.log_append_time, NOW);
        let recs = s.topics["t"].partitions[0].records();
        assert!(recs[0].0.log_append_time());
        assert_eq!(recs[0].1.timestamp, NOW);
    }

    #[test]
    fn compressed_batches_are_validated_and_recompressed_for_the_topic() {
        use crate::protocol::batch::compress_batch;
        let mut s = state();
        s.create_topic("producer", 1, 1, TopicConfig::default()).unwrap();
        let gz = TopicConfig::parse(&[("compression.type".into(), Some("gzip".into()))]).unwrap();
        s.create_topic("gz", 1, 1, gz).unwrap();
        let lz4 = |values: &[&str]| {
            let mut w = BatchWriter::new(64);
            for v in values {
                w.append(NOW, Some(b"k"), Some(v.as_bytes()), &[]);
            }
            let (mut b, _) = compress_batch(&w.finish(), Codec::Lz4 { level: 9 }).unwrap();
            stamp_producer(&mut b, -1, -1, -1);
            b.freeze()
        };
        for t in ["producer", "gz"] {
            let l = leader(&s, t, 0);
            assert_eq!(s.append(t, 0, l, Some(lz4(&["a", "b"])), 13, NOW).code, ErrorCode::NONE);
        }
        let codec = |s: &State, t: &str| {
            records::read_header(&s.topics[t].partitions[0].log[0].bytes).unwrap().unwrap().compression()
        };
        assert_eq!(codec(&s, "producer"), 3, "kept as the producer sent it");
        assert_eq!(codec(&s, "gz"), 1, "recompressed with the topic's codec");
        let values: Vec<_> =
            s.topics["gz"].partitions[0].records().into_iter().map(|(_, r)| r.value.unwrap()).collect();
        assert_eq!(values, vec![bytes::Bytes::from_static(b"a"), bytes::Bytes::from_static(b"b")]);
        // zstd needs Produce v7+.
        let mut w = BatchWriter::new(64);
        w.append(NOW, None, Some(b"z"), &[]);
        let (mut b, _) = compress_batch(&w.finish(), Codec::Zstd { level: 3 }).unwrap();
        stamp_producer(&mut b, -1, -1, -1);
        let l = leader(&s, "producer", 0);
        assert_eq!(
            s.append("producer", 0, l, Some(b.freeze()), 6, NOW).code,
            ErrorCode::UNSUPPORTED_COMPRESSION_TYPE
        );
    }

    #[test]
    fn broker_down_moves_leadership() {
        let mut s = state();
        s.create_topic("t", 3, 2, TopicConfig::default()).unwrap();
        let l = leader(&s, "t", 0);
        s.broker_down(l);
        let new = leader(&s, "t", 0);
        assert!(new != l && new > 0);
        assert_eq!(s.topics["t"].partitions[0].leader_epoch, 1);
    }

    #[test]
    fn topic_names_and_configs_are_checked() {
        let mut s = state();
        assert_eq!(
            s.create_topic("bad name", 1, 1, TopicConfig::default()).unwrap_err().0,
            ErrorCode::INVALID_TOPIC_EXCEPTION
        );
        assert_eq!(
            s.create_topic("t", 0, 1, TopicConfig::default()).unwrap_err().0,
            ErrorCode::INVALID_PARTITIONS
        );
        assert_eq!(
            s.create_topic("t", 1, 4, TopicConfig::default()).unwrap_err().0,
            ErrorCode::INVALID_REPLICATION_FACTOR
        );
        assert!(TopicConfig::parse(&[("no.such".into(), Some("1".into()))]).is_err());
        assert!(TopicConfig::parse(&[("message.timestamp.type".into(), Some("Now".into()))]).is_err());
        s.create_topic("t", 1, 1, TopicConfig::default()).unwrap();
        assert_eq!(
            s.create_topic("t", 1, 1, TopicConfig::default()).unwrap_err().0,
            ErrorCode::TOPIC_ALREADY_EXISTS
        );
    }
}
