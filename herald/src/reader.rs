//! Reads records back from a topic, to see what was written.
//!
//! This is not a consumer: no groups, no committed offsets, no rebalancing. It
//! reads each partition from its first offset to the end it had when the read
//! began (`herald consume` uses it, and so can tests).
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald::Error> {
//! let reader = herald::TopicReader::new("127.0.0.1:9092")?;
//! for r in reader.read_to_end("trucks").await? {
//!     println!("{}/{} {:?}", r.partition, r.offset, r.value);
//! }
//! # Ok(()) }
//! ```

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

/// Reads topics back. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TopicReader {
    admin: Admin,
}

impl TopicReader {
    /// A reader for the cluster at `bootstrap_servers` (`host:port[,…]`).
    pub fn new(bootstrap_servers: &str) -> Result<TopicReader> {
        Ok(TopicReader { admin: Admin::new(bootstrap_servers)? })
    }

    /// A reader from Kafka properties (`bootstrap.servers` and the security
    /// ones), as [`Admin::from_properties`].
    pub fn from_properties<'a>(props: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<TopicReader> {
        Ok(TopicReader { admin: Admin::from_properties(props)? })
    }

    /// A reader that uses `admin`'s connections (and security settings).
    pub fn from_admin(admin: Admin) -> TopicReader {
        TopicReader { admin }
    }

    /// Every record of `topic`, from each partition's first offset to the end it had
    /// when this call began, sorted by partition and offset.
    pub async fn read_to_end(&self, topic: &str) -> Result<Vec<ConsumedRecord>> {
        let deadline = Instant::now() + self.admin.timeout();
        let name: Arc<str> = Arc::from(topic);
        let snapshot = self.admin.metadata(Some(vec![name.clone()]), deadline).await?;
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
        let mut out = Vec::new();
        for (p, part) in info.partitions.iter().enumerate() {
            let partition = p as i32;
            if part.leader < 0 {
                return Err(Error::broker(ErrorCode::LEADER_NOT_AVAILABLE, None)
                    .for_partition(&name, Some(partition)));
            }
            let start = self.list_offset(&name, partition, part.leader, EARLIEST).await?;
            let end = self.list_offset(&name, partition, part.leader, LATEST).await?;
            let mut position = start;
            while position < end {
                if Instant::now() >= deadline {
                    return Err(Error::timeout(TimeoutKind::Request, self.admin.timeout())
                        .for_partition(&name, Some(partition)));
                }
                let batch = self.fetch(&name, info.id, partition, part.leader, position).await?;
                let before = position;
                for r in batch {
                    if r.offset >= position && r.offset < end {
                        position = r.offset + 1;
                        out.push(r);
                    }
                }
                if position == before {
                    // Nothing new below the end: compacted or transactional gaps.
                    break;
                }
            }
        }
        Ok(out)
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
    ) -> Result<Vec<ConsumedRecord>> {
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
        req.max_wait_ms = 500;
        req.min_bytes = 1;
        req.max_bytes = 16 * 1024 * 1024;
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
        let mut out = Vec::new();
        let mut rest = data.records.unwrap_or_default();
        while let Some(h) = records::read_header(&rest).map_err(bad)? {
            let batch = rest.split_to(h.size());
            records::check_crc(&h, &batch).map_err(bad)?;
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
        Ok(out)
    }
}

impl TopicReader {
    /// Sets how long one read may take in all (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> TopicReader {
        self.admin = self.admin.with_timeout(timeout);
        self
    }
}
