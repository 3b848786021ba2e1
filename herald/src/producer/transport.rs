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
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    ApiVersionsRequest, ApiVersionsResponse, EndTxnRequest, EndTxnResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, PushTelemetryRequest,
    PushTelemetryResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use tokio::time::Instant;

use crate::connection::BrokerAddr;
use crate::connection::pool::Pool;
use crate::error::{Error, ErrorCode, ErrorKind};
use crate::metadata;
use crate::protocol::batch::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

/// A request's answer, to be awaited off the sender's state.
pub(crate) type Answer<T> = BoxFuture<'static, Result<T, Error>>;

/// Where a coordinator request goes.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// Any broker (FindCoordinator).
    Any,
    /// A coordinator, as FindCoordinator named it.
    Broker(BrokerAddr),
}

/// Declares a family of requests the sender carries for another component
/// without knowing what they mean: an enum of requests, one of their answers,
/// and how to queue each on a connection.
macro_rules! carried_calls {
    ($(#[$req_doc:meta])* $req_enum:ident, $(#[$resp_doc:meta])* $resp_enum:ident:
     $($name:ident($req:ty => $resp:ty)),* $(,)?) => {
        $(#[$req_doc])*
        #[derive(Debug)]
        pub(crate) enum $req_enum { $($name($req)),* }

        $(#[$resp_doc])*
        #[derive(Debug)]
        pub(crate) enum $resp_enum { $($name($resp)),* }

        impl $req_enum {
            /// Kafka's name of the request, for errors.
            pub(crate) fn name(&self) -> &'static str {
                match self { $($req_enum::$name(_) => stringify!($name)),* }
            }

            /// Queues the request on `conn`.
            fn send(self, conn: &crate::connection::Connection, max_version: Option<i16>) -> Answer<$resp_enum> {
                match self {
                    $($req_enum::$name(r) => {
                        let name = conn.name().clone();
                        let fut = conn.call_with_max(r, true, max_version);
                        Box::pin(async move {
                            match fut.await? {
                                (_, Some(resp)) => Ok($resp_enum::$name(resp)),
                                (_, None) => Err(Error::protocol(&*name, concat!("no ", stringify!($name), " response"))),
                            }
                        })
                    })*
                }
            }
        }
    };
}

carried_calls! {
    /// A request of the transaction protocol.
    TxnRequest,
    /// Its answer.
    TxnResponse:
    ApiVersions(ApiVersionsRequest => ApiVersionsResponse),
    FindCoordinator(FindCoordinatorRequest => FindCoordinatorResponse),
    InitProducerId(InitProducerIdRequest => InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnRequest => AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnRequest => AddOffsetsToTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitRequest => TxnOffsetCommitResponse),
    EndTxn(EndTxnRequest => EndTxnResponse),
}

carried_calls! {
    /// A request of client telemetry (KIP-714).
    TelemetryRequest,
    /// Its answer.
    TelemetryResponse:
    GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest => GetTelemetrySubscriptionsResponse),
    PushTelemetry(PushTelemetryRequest => PushTelemetryResponse),
}

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

    /// Counts the bytes its connections write and read into `traffic`.
    fn count_traffic(&mut self, _traffic: Arc<crate::metrics::Traffic>) {}

    /// Hands a client telemetry request (KIP-714) to any reachable broker, a
    /// connected one first. `None` when every broker is backing off, or (the
    /// default) when the transport carries no telemetry.
    fn telemetry(&mut self, _req: TelemetryRequest) -> Option<Answer<TelemetryResponse>> {
        None
    }

    /// Connections open now, and opened in all.
    fn connection_stats(&self) -> (usize, u64) {
        (0, 0)
    }

    /// Hands a request of the transaction protocol to `target` (at most at
    /// `max_version`). Fails at once when no connection can be had now.
    fn call(
        &mut self,
        target: &Target,
        req: TxnRequest,
        max_version: Option<i16>,
    ) -> Result<Answer<TxnResponse>, Error>;
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

    fn count_traffic(&mut self, traffic: Arc<crate::metrics::Traffic>) {
        Pool::count_traffic(self, traffic);
    }

    fn telemetry(&mut self, req: TelemetryRequest) -> Option<Answer<TelemetryResponse>> {
        let conn = self.any()?;
        tracing::trace!(request = req.name(), broker = %conn.name(), "client telemetry request");
        Some(req.send(&conn, None))
    }

    fn connection_stats(&self) -> (usize, u64) {
        Pool::connection_stats(self)
    }

    fn call(
        &mut self,
        target: &Target,
        req: TxnRequest,
        max_version: Option<i16>,
    ) -> Result<Answer<TxnResponse>, Error> {
        let conn = match target {
            Target::Any => self.any().ok_or_else(|| {
                Error::new(ErrorKind::Connection { broker: "any broker".into() }).with_source(
                    std::io::Error::new(std::io::ErrorKind::WouldBlock, "every broker is backing off"),
                )
            })?,
            Target::Broker(addr) => {
                let Some(id) = addr.node_id else {
                    return Err(Error::protocol(addr.to_string(), "a coordinator without a node id"));
                };
                self.add_broker(addr.clone());
                self.node(id)?
            }
        };
        tracing::trace!(request = req.name(), broker = %conn.name(), "transactional request");
        Ok(req.send(&conn, max_version))
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
