//! Reads records back from a topic, to see what was written.
//!
//! This is not a consumer: no groups, no committed offsets, no rebalancing.
//! [`TopicReader::read_to_end`] reads each partition from its first offset to the
//! end it had when the read began (tests use it); [`TopicReader::read`] with
//! [`ReadOptions`] reads chosen partitions from an offset, up to a count, or on
//! as new records come (`herald consume`'s `-p`, `-o`, `-c`, `-f`).
//!
//! By default it reads as a `read_uncommitted` consumer: every record, including
//! those of transactions still open or aborted. [`TopicReader::isolation`] with
//! [`IsolationLevel::ReadCommitted`] reads as Kafka's `isolation.level=read_committed`
//! consumer: up to each partition's last stable offset, skipping aborted
//! transactions' records. Transaction markers (control records) are never returned.
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald::Error> {
//! let reader = herald::TopicReader::new("127.0.0.1:9092")?;
//! for r in reader.read_to_end("trucks").await? {
//!     println!("{}/{} {:?}", r.partition, r.offset, r.value);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::admin::Admin;
use crate::error::{Error, ErrorCode, ErrorKind, Result, TimeoutKind};
use crate::parts::{Header, TimestampType};
use crate::protocol::records::{self, BatchError};

/// `timestamp` of a ListOffsets query for the first offset.
const EARLIEST: i64 = -2;
/// `timestamp` of a ListOffsets query for the end offset.
const LATEST: i64 = -1;

/// One record as read back from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumedRecord {
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Whose clock the timestamp is from.
    pub timestamp_type: TimestampType,
    /// The key, `None` when null.
    pub key: Option<Bytes>,
    /// The value, `None` when null.
    pub value: Option<Bytes>,
    /// The headers, in order, repeats kept.
    pub headers: Vec<Header>,
}

/// Which records of transactions a [`TopicReader`] returns (Kafka's consumer
/// `isolation.level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IsolationLevel {
    /// Every record, whether its transaction committed, aborted, or is still open
    /// (`read_uncommitted`, the default as in Kafka).
    #[default]
    ReadUncommitted,
    /// Records outside transactions and those of committed transactions, up to
    /// the last stable offset (`read_committed`).
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value of Fetch's and ListOffsets' `isolation_level`.
    fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Where a read starts in each partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartOffset {
    /// The partition's first offset (its log start).
    #[default]
    Earliest,
    /// The partition's end: only records written from now on (with `follow`).
    Latest,
    /// This offset, clamped to the partition's first offset and end.
    Offset(i64),
    /// This many records before the end (kcat's `-o -N`), or the first offset.
    FromEnd(i64),
}

/// What [`TopicReader::read`] reads.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReadOptions {
    /// These partitions only (default: every partition of the topic).
    pub partitions: Option<Vec<i32>>,
    /// Where to start in each partition.
    pub start: StartOffset,
    /// Stop after this many records.
    pub max_records: Option<u64>,
    /// At the end of a partition, wait for more (until the callback breaks)
    /// instead of stopping.
    pub follow: bool,
}

impl ReadOptions {
    /// Every partition from its first offset to its end, as
    /// [`TopicReader::read_to_end`].
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Reads these partitions only.
    pub fn partitions(mut self, partitions: Vec<i32>) -> ReadOptions {
        self.partitions = Some(partitions);
        self
    }

    /// Starts each partition there.
    pub fn start(mut self, start: StartOffset) -> ReadOptions {
        self.start = start;
        self
    }

    /// Stops after `n` records.
    pub fn max_records(mut self, n: u64) -> ReadOptions {
        self.max_records = Some(n);
        self
    }

    /// Waits for more records at the end instead of stopping.
    pub fn follow(mut self, follow: bool) -> ReadOptions {
        self.follow = follow;
        self
    }
}

/// Reads topics back. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TopicReader {
    admin: Admin,
    isolation: IsolationLevel,
}

/// What one fetch returned: the records, and the offset after the last batch.
struct Fetched {
    records: Vec<ConsumedRecord>,
    next_offset: i64,
}

impl TopicReader {
    /// A reader for the cluster at `bootstrap_servers` (`host:port[,…]`).
    pub fn new(bootstrap_servers: &str) -> Result<TopicReader> {
        Ok(TopicReader { admin: Admin::new(bootstrap_servers)?, isolation: IsolationLevel::default() })
    }

    /// A reader from Kafka properties (`bootstrap.servers` and the security
    /// ones), as [`Admin::from_properties`].
    pub fn from_properties<'a>(props: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<TopicReader> {
        Ok(TopicReader { admin: Admin::from_properties(props)?, isolation: IsolationLevel::default() })
    }

    /// A reader that uses `admin`'s connections (and security settings).
    pub fn from_admin(admin: Admin) -> TopicReader {
        TopicReader { admin, isolation: IsolationLevel::default() }
    }

    /// Reads with this isolation level (default
    /// [`ReadUncommitted`](IsolationLevel::ReadUncommitted)). With
    /// [`ReadCommitted`](IsolationLevel::ReadCommitted) each partition is read up to
    /// its last stable offset (a transaction still open holds back what follows
    /// it), and the records of aborted transactions are skipped, as Kafka's
    /// consumer does with the aborted transactions a fetch names.
    pub fn isolation(mut self, level: IsolationLevel) -> TopicReader {
        self.isolation = level;
        self
    }

    /// Every record of `topic`, from each partition's first offset to the end it had
    /// when this call began (its last stable offset when reading committed
    /// records), sorted by partition and offset.
    pub async fn read_to_end(&self, topic: &str) -> Result<Vec<ConsumedRecord>> {
        let mut out = Vec::new();
        self.read(topic, &ReadOptions::default(), |r| {
            out.push(r);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(out)
    }

    /// Reads `topic` as `options` say, handing each record to `each` until it
    /// breaks, `options.max_records` have been handed over, or (without
    /// `follow`) every partition read is at the end it had when this call began.
    /// Without `follow` the whole read must end within the timeout
    /// ([`with_timeout`](Self::with_timeout)), partition after partition, in
    /// offset order; with `follow` partitions are read in turn and the read goes
    /// on until `each` breaks or a request fails. Returns how many records were
    /// handed over.
    pub async fn read(
        &self,
        topic: &str,
        options: &ReadOptions,
        mut each: impl FnMut(ConsumedRecord) -> ControlFlow<()>,
    ) -> Result<u64> {
        let deadline = (!options.follow).then(|| Instant::now() + self.admin.timeout());
        let name: Arc<str> = Arc::from(topic);
        let metadata_deadline = Instant::now() + self.admin.timeout();
        let snapshot = self.admin.metadata(Some(vec![name.clone()]), metadata_deadline).await?;
        let info = snapshot
            .topics
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::new(ErrorKind::UnknownTopic).for_partition(&name, None))?;
        if info.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
            return Err(Error::new(ErrorKind::UnknownTopic).for_partition(&name, None));
        }
        if !info.error.is_ok() {
            return Err(Error::broker(info.error, None).for_partition(&name, None));
        }
        let wanted: Vec<i32> = match &options.partitions {
            Some(p) => p.clone(),
            None => (0..info.partitions.len() as i32).collect(),
        };
        // Each partition read: (partition, leader, position, end).
        let mut cursors = Vec::with_capacity(wanted.len());
        for partition in wanted {
            let Some(part) = usize::try_from(partition).ok().and_then(|i| info.partitions.get(i)) else {
                return Err(Error::new(ErrorKind::UnknownTopic).for_partition(&name, Some(partition)));
            };
            if part.leader < 0 {
                return Err(Error::broker(ErrorCode::LEADER_NOT_AVAILABLE, None)
                    .for_partition(&name, Some(partition)));
            }
            let first = self.list_offset(&name, partition, part.leader, EARLIEST).await?;
            let end = self.list_offset(&name, partition, part.leader, LATEST).await?;
            let position = match options.start {
                StartOffset::Earliest => first,
                StartOffset::Latest => end,
                StartOffset::Offset(o) => o.clamp(first, end),
                StartOffset::FromEnd(n) => end.saturating_sub(n).max(first),
            };
            cursors.push((partition, part.leader, position, end));
        }
        let max = options.max_records.unwrap_or(u64::MAX);
        let mut handed = 0u64;
        if max == 0 {
            return Ok(0);
        }
        // Without follow, one partition to its end before the next (records in
        // partition and offset order); with follow, a fetch from each in turn.
        let per_round = if options.follow { usize::MAX } else { 1 };
        loop {
            let mut any_open = false;
            let mut fetched_any = false;
            let open = cursors.iter_mut().filter(|c| options.follow || c.2 < c.3);
            for (partition, leader, position, end) in open.take(per_round) {
                let partition = *partition;
                any_open = true;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::timeout(TimeoutKind::Request, self.admin.timeout())
                        .for_partition(&name, Some(partition)));
                }
                let wait = if options.follow { 100 } else { 500 };
                let fetched = self.fetch(&name, info.id, partition, *leader, *position, wait).await?;
                for r in fetched.records {
                    if r.offset < *position || (!options.follow && r.offset >= *end) {
                        continue;
                    }
                    handed += 1;
                    fetched_any = true;
                    if each(r).is_break() || handed >= max {
                        return Ok(handed);
                    }
                }
                if fetched.next_offset > *position {
                    *position = fetched.next_offset;
                } else if !options.follow {
                    // Nothing more below the end.
                    *end = *position;
                }
            }
            if !any_open {
                return Ok(handed);
            }
            if options.follow && !fetched_any {
                // A broker may answer an empty fetch at once: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn list_offset(
        &self,
        topic: &Arc<str>,
        partition: i32,
        leader: i32,
        timestamp: i64,
    ) -> Result<i64> {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = partition;
        p.timestamp = timestamp;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.isolation_level = self.isolation.wire();
        req.topics = vec![t];
        let resp =
            self.admin.call_node(leader, req).await.map_err(|e| e.for_partition(topic, Some(partition)))?;
        let answer = resp
            .topics
            .into_iter()
            .filter(|t| *t.name.0 == **topic)
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| {
                Error::protocol("ListOffsets", "no answer for the partition")
                    .for_partition(topic, Some(partition))
            })?;
        let code = ErrorCode::new(answer.error_code);
        if !code.is_ok() {
            return Err(Error::broker(code, None).for_partition(topic, Some(partition)));
        }
        Ok(answer.offset)
    }

    async fn fetch(
        &self,
        topic: &Arc<str>,
        topic_id: uuid::Uuid,
        partition: i32,
        leader: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> Result<Fetched> {
        let mut p = FetchPartition::default();
        p.partition = partition;
        p.fetch_offset = offset;
        p.partition_max_bytes = 4 * 1024 * 1024;
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_string(topic.to_string()));
        t.topic_id = topic_id;
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = max_wait_ms;
        req.min_bytes = 1;
        req.max_bytes = 16 * 1024 * 1024;
        req.isolation_level = self.isolation.wire();
        req.topics = vec![t];
        let resp =
            self.admin.call_node(leader, req).await.map_err(|e| e.for_partition(topic, Some(partition)))?;
        let top = ErrorCode::new(resp.error_code);
        if !top.is_ok() {
            return Err(Error::broker(top, None).for_partition(topic, Some(partition)));
        }
        let data = resp
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| {
                Error::protocol("Fetch", "no answer for the partition").for_partition(topic, Some(partition))
            })?;
        let code = ErrorCode::new(data.error_code);
        if !code.is_ok() {
            return Err(Error::broker(code, None).for_partition(topic, Some(partition)));
        }
        let bad =
            |e: BatchError| Error::protocol("Fetch", e.to_string()).for_partition(topic, Some(partition));
        let read_committed = self.isolation == IsolationLevel::ReadCommitted;
        // Java's consumer (`CompletedFetch`): aborted transactions by first offset;
        // a producer is "aborted" from its first aborted offset to its abort marker.
        let mut aborted: Vec<(i64, i64)> = data
            .aborted_transactions
            .unwrap_or_default()
            .iter()
            .map(|a| (a.first_offset, a.producer_id.0))
            .collect();
        aborted.sort_unstable();
        let mut aborted = aborted.into_iter().peekable();
        let mut aborted_producers = HashSet::new();
        let mut out = Vec::new();
        let mut next_offset = offset;
        let mut rest = data.records.unwrap_or_default();
        while let Some(h) = records::read_header(&rest).map_err(bad)? {
            let batch = rest.split_to(h.size());
            records::check_crc(&h, &batch).map_err(bad)?;
            let last_offset = h.base_offset + i64::from(h.last_offset_delta);
            next_offset = next_offset.max(last_offset + 1);
            if read_committed && h.producer_id >= 0 {
                while let Some((_, pid)) = aborted.next_if(|(first, _)| *first <= last_offset) {
                    aborted_producers.insert(pid);
                }
                if h.control() {
                    let first = records::read_records(&h, &batch).map_err(bad)?.into_iter().next();
                    if first.and_then(|r| control_type(r.key.as_deref())) == Some(ControlType::Abort) {
                        aborted_producers.remove(&h.producer_id);
                    }
                    continue;
                }
                if h.transactional() && aborted_producers.contains(&h.producer_id) {
                    continue;
                }
            }
            if h.control() {
                continue;
            }
            let timestamp_type =
                if h.log_append_time() { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
            for r in records::read_records(&h, &batch).map_err(bad)? {
                out.push(ConsumedRecord {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    timestamp_type,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
        }
        Ok(Fetched { records: out, next_offset })
    }
}

/// The kind of a control record (Kafka's `ControlRecordType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ControlType {
    /// A transaction's abort marker.
    Abort,
    /// A transaction's commit marker.
    Commit,
}

/// The type of a control record from its key: a version (int16), then the type
/// (int16: 0 abort, 1 commit); `None` for anything else.
pub(crate) fn control_type(key: Option<&[u8]>) -> Option<ControlType> {
    match key? {
        [_, _, 0, 0, ..] => Some(ControlType::Abort),
        [_, _, 0, 1, ..] => Some(ControlType::Commit),
        _ => None,
    }
}

impl TopicReader {
    /// Sets how long one read may take in all (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> TopicReader {
        self.admin = self.admin.with_timeout(timeout);
        self
    }
}
