//! What a caller hands to [`Producer::send`](crate::Producer::send), and what it
//! gets back.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

pub use crate::parts::{Header, RecordMetadata, TimestampType};
use crate::producer::accumulator::TopicEntry;

/// One record to produce: a topic, an optional key and value, headers, and
/// optionally a timestamp and a partition.
///
/// A null key (`None`) is not the same as an empty key (`Some(b"")`): a null key is
/// spread over the partitions, an empty key hashes like any other key. Likewise a
/// null value is a tombstone on a compacted topic, an empty value is not.
///
/// ```
/// use herald::Record;
/// let r = Record::new("trucks")
///     .key("truck_id_123")
///     .value(r#"{"lat":52.52,"lon":13.40}"#)
///     .header("trace-id", "4bf92f3577b34da6");
/// assert_eq!(r.topic(), "trucks");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct Record {
    pub(crate) topic: RecordTopic,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<Header>,
    pub(crate) timestamp: Option<i64>,
}

impl Record {
    /// A record for `topic`, with null key, null value, no headers, the send time
    /// as its timestamp, and its partition chosen by the partitioner.
    pub fn new(topic: impl Into<String>) -> Record {
        Record::with_topic(RecordTopic::Name(topic.into()))
    }

    /// A record for a topic looked up once with
    /// [`Producer::topic`](crate::Producer::topic): the fast path, with no
    /// allocation or lookup of the topic's name per record.
    pub fn to(topic: &Topic) -> Record {
        Record::with_topic(RecordTopic::Handle(topic.clone()))
    }

    fn with_topic(topic: RecordTopic) -> Record {
        Record { topic, partition: None, key: None, value: None, headers: Vec::new(), timestamp: None }
    }

    /// Sets the key. Records with the same key go to the same partition.
    pub fn key(mut self, key: impl Into<Bytes>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Sets the key, or clears it with `None` (a null key).
    pub fn key_opt(mut self, key: Option<impl Into<Bytes>>) -> Record {
        self.key = key.map(Into::into);
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Record {
        self.value = Some(value.into());
        self
    }

    /// Sets the value, or clears it with `None` (a null value: a tombstone).
    pub fn value_opt(mut self, value: Option<impl Into<Bytes>>) -> Record {
        self.value = value.map(Into::into);
        self
    }

    /// Appends a header. Header keys may repeat; their order is kept.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Record {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Appends a header whose value may be null.
    pub fn header_opt(mut self, key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Record {
        self.headers.push(Header { key: key.into(), value: value.map(Into::into) });
        self
    }

    /// Replaces all headers.
    pub fn headers(mut self, headers: Vec<Header>) -> Record {
        self.headers = headers;
        self
    }

    /// Sets the timestamp, in milliseconds since the Unix epoch (CreateTime). Without
    /// it the producer uses the time of `send`. A topic configured with
    /// `message.timestamp.type=LogAppendTime` replaces it with the broker's time,
    /// which is what [`RecordMetadata::timestamp`] then reports.
    pub fn timestamp(mut self, timestamp_ms: i64) -> Record {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Sends the record to this partition, whatever its key.
    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic.name()
    }

    /// The key, `None` when null.
    pub fn key_bytes(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }

    /// The value, `None` when null.
    pub fn value_bytes(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    /// The headers, in order.
    pub fn header_list(&self) -> &[Header] {
        &self.headers
    }

    /// The timestamp set by the caller, if any.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp
    }

    /// The partition set by the caller, if any.
    pub fn partition_hint(&self) -> Option<i32> {
        self.partition
    }

    /// The headers, to change in place (a [producer
    /// interceptor](crate::interceptor::ProducerInterceptor) adding one, say).
    ///
    /// ```
    /// let mut r = herald::Record::new("t").header("a", "1");
    /// r.headers_mut().retain(|h| h.key != "a");
    /// assert!(r.header_list().is_empty());
    /// ```
    pub fn headers_mut(&mut self) -> &mut Vec<Header> {
        &mut self.headers
    }

    /// Sets or clears (`None`: null) the key in place.
    pub fn set_key(&mut self, key: Option<Bytes>) {
        self.key = key;
    }

    /// Sets or clears (`None`: null) the value in place.
    pub fn set_value(&mut self, value: Option<Bytes>) {
        self.value = value;
    }

    /// Sets or clears (`None`: the send time) the timestamp in place.
    pub fn set_timestamp(&mut self, timestamp_ms: Option<i64>) {
        self.timestamp = timestamp_ms;
    }

    /// Sets or clears (`None`: the partitioner's choice) the partition in place.
    pub fn set_partition(&mut self, partition: Option<i32>) {
        self.partition = partition;
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("topic", &self.topic.name())
            .field("partition", &self.partition)
            .field("key", &self.key.as_ref().map(|k| k.len()))
            .field("value_len", &self.value.as_ref().map(|v| v.len()))
            .field("headers", &self.headers.len())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// How a record names its topic.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum RecordTopic {
    Name(String),
    Handle(Topic),
}

impl RecordTopic {
    pub(crate) fn name(&self) -> &str {
        match self {
            RecordTopic::Name(n) => n,
            RecordTopic::Handle(t) => t.name(),
        }
    }
}

/// A topic looked up once by [`Producer::topic`](crate::Producer::topic), for [`Record::to`]. Cheap to
/// clone; a handle from another producer still works, by name.
#[derive(Clone)]
pub struct Topic {
    pub(crate) entry: Arc<TopicEntry>,
    /// The producer that made it (its shared state's address).
    pub(crate) owner: usize,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.entry.name
    }
}

impl PartialEq for Topic {
    fn eq(&self, other: &Topic) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Topic {}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Topic").field(&self.name()).finish()
    }
}
