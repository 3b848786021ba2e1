//! A connection's life once it is set up: the writer (encodes and coalesces
//! requests, pauses to re-authenticate before the session ends, KIP-368) and the
//! reader (matches answers to outstanding calls by correlation id).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::Request;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::setup::{Reauth, frame_len};
use super::{BrokerVersions, Call, ConnectionConfig, Outstanding, RawResponse, Shared, closed_error};
use crate::error::{Error, ErrorKind, TimeoutKind};
use crate::protocol::{self};
use crate::security::sasl::{self, SaslTransport};

/// Runs the reader and the writer over the two halves of a stream.
pub(super) async fn pipe<R, W>(
    shared: Arc<Shared>,
    config: ConnectionConfig,
    versions: BrokerVersions,
    reauth: Option<Reauth>,
    rd: R,
    wr: W,
    mut calls: mpsc::UnboundedReceiver<Call>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let reader =
        tokio::spawn(read_loop(shared.clone(), rd, out_rx, config.request_timeout, config.traffic.clone()));
    let err = write_loop(&shared, &config, &versions, reauth, wr, &mut calls, out_tx).await;
    shared.close();
    let _ = reader.await;
    fail_queue(&mut calls, &err);
}

pub(super) fn fail_queue(calls: &mut mpsc::UnboundedReceiver<Call>, err: &Error) {
    calls.close();
    while let Ok(call) = calls.try_recv() {
        let _ = call.reply.send(Err(err.clone()));
    }
}

/// SASL on a live connection (re-authentication): requests go through the
/// pipeline, so the reader matches their responses as any other.
pub(super) struct Pipelined<'a, W> {
    shared: &'a Shared,
    config: &'a ConnectionConfig,
    wr: &'a mut W,
    outstanding: &'a mpsc::UnboundedSender<Outstanding>,
    correlation_id: &'a mut i32,
    sent: &'a mut u64,
}

impl<W: AsyncWrite + Unpin> SaslTransport for Pipelined<'_, W> {
    fn broker(&self) -> &str {
        &self.shared.name
    }

    async fn round_trip<R: Request + Send + 'static>(
        &mut self,
        req: R,
        version: i16,
    ) -> Result<R::Response, Error> {
        let name = &*self.shared.name;
        *self.correlation_id = self.correlation_id.wrapping_add(1).max(1);
        let mut buf = BytesMut::new();
        protocol::encode_request(&mut buf, *self.correlation_id, &self.config.client_id, version, &req)
            .map_err(|d| Error::protocol(name, d))?;
        let (tx, rx) = oneshot::channel();
        let o = Outstanding {
            correlation_id: *self.correlation_id,
            api_key: R::KEY,
            version,
            response_header_version: protocol::response_header_version::<R>(version),
            deadline: Instant::now() + self.config.request_timeout,
            reply: tx,
        };
        if self.outstanding.send(o).is_err() {
            return Err(closed_error(name));
        }
        *self.sent += 1;
        let write = async {
            self.wr.write_all(&buf).await?;
            self.wr.flush().await
        };
        tokio::select! {
            r = write => r.map_err(|e| Error::connection(name, e))?,
            _ = self.shared.shutdown.notified() => return Err(closed_error(name)),
        }
        // The reader answers or fails every outstanding call, also on shutdown.
        let raw = rx.await.map_err(|_| closed_error(name))??;
        protocol::decode_response::<R>(raw.body, version).map_err(|d| Error::protocol(name, d))
    }
}

/// Re-authenticates a live connection (KIP-368): waits until every request sent
/// has its response, then runs SaslHandshake and SaslAuthenticate again, with a
/// fresh OAUTHBEARER token. No call is written meanwhile.
pub(super) async fn reauthenticate<W: AsyncWrite + Unpin>(
    shared: &Shared,
    config: &ConnectionConfig,
    r: &mut Reauth,
    wr: &mut W,
    outstanding: &mpsc::UnboundedSender<Outstanding>,
    correlation_id: &mut i32,
    sent: &mut u64,
) -> Result<(), Error> {
    shared.draining.store(true, Ordering::Release);
    while shared.answered.load(Ordering::Acquire) < *sent {
        tokio::select! {
            _ = shared.drained.notified() => {}
            _ = shared.shutdown.notified() => return Err(closed_error(&shared.name)),
        }
    }
    shared.draining.store(false, Ordering::Release);
    let mut t = Pipelined { shared, config, wr, outstanding, correlation_id, sent };
    let lifetime = r.auth.authenticate(&mut t, r.versions, true).await?;
    r.at = lifetime.map(|l| Instant::now() + sasl::reauth_after(l));
    tracing::info!(broker = %shared.name, next_in = ?lifetime, "re-authenticated");
    Ok(())
}

/// Writes queued calls, several per syscall when they pile up. Returns why it stopped.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    shared: &Shared,
    config: &ConnectionConfig,
    versions: &BrokerVersions,
    mut reauth: Option<Reauth>,
    mut wr: W,
    calls: &mut mpsc::UnboundedReceiver<Call>,
    outstanding: mpsc::UnboundedSender<Outstanding>,
) -> Error {
    const COALESCE_BYTES: usize = 256 * 1024;
    // Past the ApiVersions and SASL requests of the setup.
    let mut correlation_id: i32 = 16;
    // Requests sent that expect a response (compared with `shared.answered`).
    let mut sent: u64 = 0;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut written_without_response: Vec<(i16, oneshot::Sender<Result<RawResponse, Error>>)> = Vec::new();
    loop {
        let first = tokio::select! {
            c = calls.recv() => match c {
                Some(c) => c,
                None => return closed_error(&shared.name),
            },
            _ = shared.shutdown.notified() => return closed_error(&shared.name),
            _ = sleep_until_opt(reauth.as_ref().and_then(|r| r.at)) => {
                if let Some(r) = reauth.as_mut() {
                    let res = reauthenticate(shared, config, r, &mut wr, &outstanding, &mut correlation_id, &mut sent);
                    if let Err(e) = res.await {
                        tracing::warn!(broker = %shared.name, error = %e, "re-authentication failed; closing the connection");
                        return e;
                    }
                }
                continue;
            }
        };
        let mut next = Some(first);
        while let Some(call) = next.take() {
            correlation_id = correlation_id.wrapping_add(1).max(1);
            let Some(version) = versions
                .get(call.api_key)
                .map(|theirs| theirs.intersect(&call.versions))
                .filter(|r| !r.is_empty())
                .map(|r| r.max)
            else {
                let _ = call.reply.send(Err(Error::new(ErrorKind::Unsupported {
                    what: format!(
                        "{} does not support {} at any version herald speaks ({})",
                        shared.name,
                        protocol::api_name(call.api_key),
                        call.versions
                    ),
                })));
                next = if buf.len() < COALESCE_BYTES { calls.try_recv().ok() } else { None };
                continue;
            };
            let start = buf.len();
            if let Err(detail) = (call.encode)(&mut buf, correlation_id, &config.client_id, version) {
                buf.truncate(start);
                let _ = call.reply.send(Err(Error::protocol(&*shared.name, detail)));
            } else if call.expect_response {
                let o = Outstanding {
                    correlation_id,
                    api_key: call.api_key,
                    version,
                    response_header_version: (call.response_header_version)(version),
                    deadline: Instant::now() + config.request_timeout,
                    reply: call.reply,
                };
                // Registered before the bytes go out, so the reader always knows the
                // request its next response answers.
                if let Err(mpsc::error::SendError(o)) = outstanding.send(o) {
                    let _ = o.reply.send(Err(closed_error(&shared.name)));
                    return closed_error(&shared.name);
                }
                sent += 1;
            } else {
                written_without_response.push((version, call.reply));
            }
            next = if buf.len() < COALESCE_BYTES { calls.try_recv().ok() } else { None };
        }
        if buf.is_empty() {
            continue;
        }
        let write = async {
            wr.write_all(&buf).await?;
            if let Some(t) = &config.traffic {
                t.written.fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            // TLS buffers inside rustls; a TcpStream's flush does nothing.
            wr.flush().await
        };
        let result = tokio::select! {
            r = write => r,
            _ = shared.shutdown.notified() => Err(std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")),
        };
        buf.clear();
        if let Err(e) = result {
            let err = Error::connection(&*shared.name, e);
            for (_, reply) in written_without_response.drain(..) {
                let _ = reply.send(Err(err.clone()));
            }
            return err;
        }
        for (version, reply) in written_without_response.drain(..) {
            let _ = reply.send(Ok(RawResponse { version, body: Bytes::new() }));
        }
    }
}

/// Reads response frames and hands each to the call it answers.
pub(super) async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    mut rd: R,
    mut incoming: mpsc::UnboundedReceiver<Outstanding>,
    request_timeout: Duration,
    traffic: Option<Arc<crate::metrics::Traffic>>,
) {
    let mut waiting: VecDeque<Outstanding> = VecDeque::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let err = loop {
        // Answer every complete frame already read.
        match next_frame(&mut buf) {
            Err(e) => break Error::connection(&*shared.name, e),
            Ok(Some(frame)) => {
                if let Some(t) = &traffic {
                    t.read.fetch_add(4 + frame.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                while let Ok(o) = incoming.try_recv() {
                    waiting.push_back(o);
                }
                match answer(&shared, &mut waiting, frame) {
                    Ok(()) => continue,
                    Err(e) => break e,
                }
            }
            Ok(None) => {}
        }
        let deadline = waiting.front().map(|o| o.deadline);
        tokio::select! {
            biased;
            _ = shared.shutdown.notified() => break closed_error(&shared.name),
            o = incoming.recv() => match o {
                Some(o) => waiting.push_back(o),
                None => break closed_error(&shared.name),
            },
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => break Error::connection(
                    &*shared.name,
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "broker closed the connection"),
                ),
                Ok(_) => {}
                Err(e) => break Error::connection(&*shared.name, e),
            },
            _ = sleep_until_opt(deadline) => {
                let api = waiting.front().map(|o| protocol::api_name(o.api_key)).unwrap_or_default();
                tracing::warn!(broker = %shared.name, api = %api, "request timed out; closing the connection");
                break Error::timeout(TimeoutKind::Request, request_timeout)
                    .caused_by(closed_error(&shared.name));
            }
        }
    };
    shared.close();
    incoming.close();
    while let Ok(o) = incoming.try_recv() {
        waiting.push_back(o);
    }
    for o in waiting {
        let _ = o.reply.send(Err(err.clone()));
    }
}

pub(super) async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Takes one complete frame (without its size prefix) off the front of `buf`.
pub(super) fn next_frame(buf: &mut BytesMut) -> std::io::Result<Option<Bytes>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = frame_len(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))?;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

pub(super) fn answer(
    shared: &Shared,
    waiting: &mut VecDeque<Outstanding>,
    frame: Bytes,
) -> Result<(), Error> {
    let Some(o) = waiting.pop_front() else {
        return Err(Error::protocol(&*shared.name, "response to no outstanding request"));
    };
    let (correlation_id, body) = match protocol::split_response_header(frame, o.response_header_version) {
        Ok(v) => v,
        Err(d) => {
            let e = Error::protocol(&*shared.name, d);
            let _ = o.reply.send(Err(e.clone()));
            return Err(e);
        }
    };
    if correlation_id != o.correlation_id {
        let e = Error::protocol(
            &*shared.name,
            format!(
                "response with correlation id {correlation_id} while {} ({}) was expected",
                o.correlation_id,
                protocol::api_name(o.api_key)
            ),
        );
        let _ = o.reply.send(Err(e.clone()));
        return Err(e);
    }
    let _ = o.reply.send(Ok(RawResponse { version: o.version, body }));
    shared.answered.fetch_add(1, Ordering::AcqRel);
    if shared.draining.load(Ordering::Acquire) {
        shared.drained.notify_one();
    }
    Ok(())
}
