//! The parts of a record every layer shares — its headers, whose clock its
//! timestamp is from, and where it was written — in a leaf module, so that the
//! wire format (`protocol`) and the delivery futures need nothing from the
//! producer's API. Re-exported from [`crate::record`].

use std::sync::Arc;

use bytes::Bytes;

/// A record header: a string key and an optional value. Used for metadata such as
/// tracing ids.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Header {
    /// The key. Keys may repeat within one record.
    pub key: String,
    /// The value, `None` when null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a non-null value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header { key: key.into(), value: Some(value.into()) }
    }
}

/// Whose clock a record's timestamp is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// The producer's (the caller's, or the time of `send`).
    CreateTime,
    /// The broker's, when it appended the record (topics with
    /// `message.timestamp.type=LogAppendTime`).
    LogAppendTime,
}

/// Where a record was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: Option<i64>,
    pub(crate) timestamp: i64,
    pub(crate) timestamp_type: TimestampType,
}

impl RecordMetadata {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The record's offset in its partition. `None` with `acks=0`, where the broker
    /// does not answer.
    pub fn offset(&self) -> Option<i64> {
        self.offset
    }

    /// The record's timestamp in milliseconds since the Unix epoch: the producer's
    /// for CreateTime topics, the broker's for LogAppendTime topics.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Whose clock [`timestamp`](Self::timestamp) is from.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type
    }
}
