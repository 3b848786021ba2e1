//! One embedded broker: a listener on 127.0.0.1 and a task per client connection.
//!
//! Requests of one connection are handled one at a time, in order, as Kafka does.
//! Anything malformed — a frame shorter than a header, larger than Kafka's
//! `socket.request.max.bytes`, an unknown API or version, a body that does not
//! decode — closes the connection; nothing a client sends can panic the host.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, CreateTopicsRequest, DeleteTopicsRequest,
    EndTxnRequest, FetchRequest, FindCoordinatorRequest, GetTelemetrySubscriptionsRequest,
    InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, OffsetFetchRequest, ProduceRequest,
    PushTelemetryRequest, RequestHeader, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::wire::{Close, Ctx, decode, frame_response, versions};
use super::{
    Cluster, Corruption, Fault, add_offsets_to_txn, add_partitions_to_txn, api_versions, create_topics,
    delete_topics, end_txn, fetch, find_coordinator, get_telemetry_subscriptions, init_producer_id,
    list_offsets, metadata, offset_fetch, produce, push_telemetry, txn_offset_commit,
};

/// Kafka's default `socket.request.max.bytes`.
const MAX_REQUEST_FRAME: usize = 104_857_600;

/// A running broker.
pub(crate) struct BrokerServer {
    id: i32,
    port: u16,
    tasks: JoinSet<()>,
}

impl BrokerServer {
    pub(crate) async fn start(cluster: Arc<Cluster>, id: i32, port: u16) -> std::io::Result<BrokerServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, Arc::new(Ctx { cluster, broker: id })));
        Ok(BrokerServer { id, port, tasks })
    }

    pub(crate) fn id(&self) -> i32 {
        self.id
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops listening and drops every connection.
    pub(crate) fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    // Connections live in this set, so aborting the accept task drops them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve(stream, ctx.clone()));
                }
                Err(e) => {
                    tracing::debug!(broker = ctx.broker, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve(mut stream: TcpStream, ctx: Arc<Ctx>) {
    let mut len = [0u8; 4];
    loop {
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let n = i32::from_be_bytes(len);
        let Some(n) = usize::try_from(n).ok().filter(|n| (8..=MAX_REQUEST_FRAME).contains(n)) else {
            tracing::debug!(broker = ctx.broker, size = n, "request frame size out of range; closing");
            return;
        };
        let mut frame = vec![0u8; n];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        match handle(&ctx, Bytes::from(frame)).await {
            Ok(Some(resp)) => {
                if stream.write_all(&resp).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(Close(why)) => {
                tracing::debug!(broker = ctx.broker, reason = %why, "closing client connection");
                return;
            }
        }
    }
}

/// Handles one request frame (without its size prefix); `Ok(None)` when no
/// response is due (Produce with acks=0).
pub(super) async fn handle(ctx: &Ctx, frame: Bytes) -> Result<Option<BytesMut>, Close> {
    if frame.len() < 8 {
        return Err(Close("frame shorter than a request header".into()));
    }
    let api = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let Ok(key) = ApiKey::try_from(api) else {
        return Err(Close(format!("unknown API key {api}")));
    };
    if key == ApiKey::ApiVersions {
        // Answered even at versions we do not know, so the client can learn ours.
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Some(api_versions::handle(ctx, version, correlation_id, &frame)?));
    }
    let Some(range) = versions(key) else {
        return Err(Close(format!("{key:?} is not served by the embedded cluster")));
    };
    if version < range.min || version > range.max {
        return Err(Close(format!("{key:?} v{version} is outside {range}")));
    }
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, key.request_header_version(version))
        .map_err(|e| Close(format!("request header: {e}")))?;
    let fault = ctx.cluster.take_fault(api, ctx.broker);
    if fault == Some(Fault::Disconnect) {
        return Err(Close(format!("fault injected: disconnect on {key:?}")));
    }
    let error = match fault {
        Some(Fault::Error(code)) => Some(code),
        _ => None,
    };
    let corr = header.correlation_id;
    let response = match key {
        ApiKey::Produce => {
            let req: ProduceRequest = decode(&mut buf, version)?;
            let acks = req.acks;
            let mut resp = produce::handle(ctx, req, version, error);
            if fault == Some(Fault::Corrupt(Corruption::ExtraPartition)) {
                produce::add_unasked_partition(&mut resp);
            }
            (acks != 0).then(|| frame_response(key, version, corr, &resp)).transpose()?
        }
        ApiKey::Fetch => {
            let req: FetchRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &fetch::handle(ctx, req, version, error).await)?)
        }
        ApiKey::ListOffsets => {
            let req: ListOffsetsRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &list_offsets::handle(ctx, req, version, error))?)
        }
        ApiKey::Metadata => {
            let req: MetadataRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &metadata::handle(ctx, req, version, error))?)
        }
        ApiKey::CreateTopics => {
            let req: CreateTopicsRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &create_topics::handle(ctx, req, version, error))?)
        }
        ApiKey::DeleteTopics => {
            let req: DeleteTopicsRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &delete_topics::handle(ctx, req, version, error))?)
        }
        ApiKey::InitProducerId => {
            let req: InitProducerIdRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &init_producer_id::handle(ctx, req, version, error))?)
        }
        ApiKey::FindCoordinator => {
            let req: FindCoordinatorRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &find_coordinator::handle(ctx, req, version, error))?)
        }
        ApiKey::OffsetFetch => {
            let req: OffsetFetchRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &offset_fetch::handle(ctx, req, version, error))?)
        }
        ApiKey::AddPartitionsToTxn => {
            let req: AddPartitionsToTxnRequest = decode(&mut buf, version)?;
            Some(frame_response(
                key,
                version,
                corr,
                &add_partitions_to_txn::handle(ctx, req, version, error),
            )?)
        }
        ApiKey::AddOffsetsToTxn => {
            let req: AddOffsetsToTxnRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &add_offsets_to_txn::handle(ctx, req, version, error))?)
        }
        ApiKey::EndTxn => {
            let req: EndTxnRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &end_txn::handle(ctx, req, version, error))?)
        }
        ApiKey::TxnOffsetCommit => {
            let req: TxnOffsetCommitRequest = decode(&mut buf, version)?;
            Some(frame_response(key, version, corr, &txn_offset_commit::handle(ctx, req, version, error))?)
        }
        ApiKey::GetTelemetrySubscriptions => {
            let req: GetTelemetrySubscriptionsRequest = decode(&mut buf, version)?;
            let client = header.client_id.as_deref().unwrap_or("");
            let resp = get_telemetry_subscriptions::handle(ctx, req, client, error);
            Some(frame_response(key, version, corr, &resp)?)
        }
        ApiKey::PushTelemetry => {
            let req: PushTelemetryRequest = decode(&mut buf, version)?;
            let client = header.client_id.as_deref().unwrap_or("");
            Some(frame_response(key, version, corr, &push_telemetry::handle(ctx, req, client, error))?)
        }
        _ => return Err(Close(format!("{key:?} is not served by the embedded cluster"))),
    };
    if fault == Some(Fault::DisconnectAfterHandling) {
        return Err(Close(format!("fault injected: disconnect after handling {key:?}")));
    }
    let response = match (fault, response) {
        (Some(Fault::Corrupt(c)), Some(frame)) => Some(corrupt(c, frame)),
        (_, r) => r,
    };
    let latency = ctx.cluster.latency(ctx.broker);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    Ok(response)
}

/// Damages a response frame (size prefix included) as `c` says.
fn corrupt(c: Corruption, mut frame: BytesMut) -> BytesMut {
    match c {
        Corruption::Garbage => {
            for b in frame.iter_mut().skip(8) {
                *b = fastrand::u8(..);
            }
            frame
        }
        Corruption::Truncated => {
            let keep = (frame.len() / 2).max(8);
            // The size prefix claims the whole body; only part of it follows, and
            // then the connection carries on with the next response.
            frame.truncate(keep);
            frame
        }
        Corruption::WrongCorrelationId => {
            if frame.len() >= 8 {
                let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]).wrapping_add(1000);
                frame[4..8].copy_from_slice(&corr.to_be_bytes());
            }
            frame
        }
        Corruption::ExtraPartition => frame,
    }
}
