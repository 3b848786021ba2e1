//! The parts of a record every layer shares — its headers and whose clock its
//! timestamp is from — in a leaf module, so that the wire format (`protocol`)
//! needs nothing from the producer's API. Re-exported as [`crate::record::Header`]
//! and [`crate::record::TimestampType`].

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
