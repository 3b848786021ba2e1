//! The seam between the sender and the network.
//!
//! The sender decides *what* to send and *when* (batches, retries, backoff, leader
//! moves, sequences); a [`Transport`] only carries requests and brings answers
//! back. In the producer it is the connection [`Pool`]; in the sender's unit tests
//! it is a scripted transport under `tokio::time::pause`, so that retry, backoff,
//! leader-change and sequence logic is tested without sockets — the shape of
//! rskafka's `ProducerClient`.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse};
use tokio::time::Instant;

use crate::connection::BrokerAddr;
use crate::connection::pool::Pool;
use crate::error::{Error, ErrorCode};
use crate::metadata;
use crate::protocol::batch::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

/// A request's answer, to be awaited off the sender's state.
pub(crate) type Answer<T> = BoxFuture<'static, Result<T, Error>>;

/// What the sender needs of the network.
pub(crate) trait Transport: Send {
    /// Whether a request to `node` could be handed over now (connected, or allowed
    /// to connect: known and not backing off).
    fn node_ready(&mut self, node: i32) -> bool;

    /// When the earliest reconnect backoff ends, if any connection is backing off.
    fn next_retry_at(&self) -> Option<Instant>;

    /// Whether `node` is a broker the transport can reach (from metadata or a
    /// KIP-951 endpoint).
    fn knows(&self, node: i32) -> bool;

    /// Learns a broker's address (KIP-951: endpoints in a Produce answer).
    fn add_broker(&mut self, addr: BrokerAddr);

    /// Replaces the broker list with the one metadata gave.
    fn set_brokers(&mut self, brokers: HashMap<i32, BrokerAddr>);

    /// Drops the connection to `node` (after a request timeout, say).
    fn close_node(&mut self, node: i32);

    /// Drops every connection.
    fn close_all(&mut self);

    /// Hands a Produce request to `node`. Returns the broker's name (for errors)
    /// and its answer: `None` when no answer is expected (acks=0), once written.
    /// Fails at once when no connection to `node` can be had now.
    fn produce(
        &mut self,
        node: i32,
        req: ProduceRequest,
        expect_response: bool,
        max_version: Option<i16>,
    ) -> Result<(Arc<str>, Answer<Option<ProduceResponse>>), Error>;

    /// Asks any reachable broker for the metadata of `topics`. `None` when every
    /// broker is backing off.
    fn metadata(&mut self, topics: &[Arc<str>]) -> Option<Answer<metadata::Snapshot>>;

    /// Asks any reachable broker for an idempotent producer id and epoch. `None`
    /// when every broker is backing off.
    fn init_producer_id(&mut self) -> Option<Answer<(i64, i16)>>;
}

impl Transport for Pool {
    fn node_ready(&mut self, node: i32) -> bool {
        Pool::node_ready(self, node)
    }

    fn next_retry_at(&self) -> Option<Instant> {
        Pool::next_retry_at(self)
    }

    fn knows(&self, node: i32) -> bool {
        Pool::knows(self, node)
    }

    fn add_broker(&mut self, addr: BrokerAddr) {
        Pool::add_broker(self, addr);
    }

    fn set_brokers(&mut self, brokers: HashMap<i32, BrokerAddr>) {
        Pool::set_brokers(self, brokers);
    }

    fn close_node(&mut self, node: i32) {
        Pool::close_node(self, node);
    }

    fn close_all(&mut self) {
        Pool::close_all(self);
    }

    fn produce(
        &mut self,
        node: i32,
        req: ProduceRequest,
        expect_response: bool,
        max_version: Option<i16>,
    ) -> Result<(Arc<str>, Answer<Option<ProduceResponse>>), Error> {
        let conn = self.node(node)?;
        let fut = conn.call_with_max(req, expect_response, max_version);
        Ok((conn.name().clone(), Box::pin(async move { fut.await.map(|(_, resp)| resp) })))
    }

    fn metadata(&mut self, topics: &[Arc<str>]) -> Option<Answer<metadata::Snapshot>> {
        let conn = self.any()?;
        let broker = conn.name().clone();
        let fut = conn.call(metadata::request(Some(topics), true), true);
        Some(Box::pin(async move {
            fut.await.and_then(|(_, resp)| match resp {
                Some(resp) => metadata::parse(resp, &broker),
                None => Err(Error::protocol(&*broker, "no Metadata response")),
            })
        }))
    }

    fn init_producer_id(&mut self) -> Option<Answer<(i64, i16)>> {
        let conn = self.any()?;
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = None;
        req.transaction_timeout_ms = i32::MAX;
        req.producer_id = kafka_protocol::messages::ProducerId(NO_PRODUCER_ID);
        req.producer_epoch = NO_PRODUCER_EPOCH;
        let broker = conn.name().clone();
        let fut = conn.call(req, true);
        Some(Box::pin(async move {
            fut.await.and_then(|(_, resp)| {
                let resp = resp.ok_or_else(|| Error::protocol(&*broker, "no InitProducerId response"))?;
                let code = ErrorCode::new(resp.error_code);
                if code.is_ok() {
                    Ok((resp.producer_id.0, resp.producer_epoch))
                } else {
                    Err(Error::broker(code, Some("InitProducerId".into())))
                }
            })
        }))
    }
}
