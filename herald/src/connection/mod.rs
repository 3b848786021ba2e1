//! One TCP connection to one broker, with pipelined requests.
//!
//! A [`Connection`] is a cheap handle onto two tasks: a writer that encodes queued
//! calls at the version negotiated with the broker (ApiVersions, at connect time) and
//! writes them back to back, and a reader that matches each response to its call by
//! correlation id. Kafka answers the requests of one connection in order, so the
//! reader expects the oldest outstanding correlation id; anything else is a protocol
//! error that closes the connection and fails every outstanding call.
//!
//! With TLS (`security.protocol` SSL or SASL_SSL) the TCP stream is wrapped by
//! rustls before ApiVersions; with SASL the connection authenticates right after
//! ApiVersions, and again on the same connection before the session lifetime the
//! broker set runs out (KIP-368): the writer stops taking calls, waits for the
//! outstanding responses, re-authenticates through the pipeline, and goes on. The
//! plaintext path splits the `TcpStream` (`into_split`); TLS uses `tokio::io::split`,
//! and the loops are generic over both.
//!
//! Each outstanding call has a deadline (`request.timeout.ms`): when the oldest one
//! passes it, the connection is closed as the Java client does, failing every call
//! on it, so the caller retries elsewhere with fresh metadata.

pub(crate) mod pool;

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Message, Request, StrBytes, VersionRange};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::error::{Error, ErrorCode, ErrorKind, TimeoutKind};
use crate::protocol::{self, MAX_RESPONSE_FRAME};
use crate::security::sasl::{self, Authenticator, SaslTransport, SaslVersions};
use crate::security::tls;

/// Where a broker is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BrokerAddr {
    /// The node id, once metadata has named it; `None` for bootstrap servers.
    pub(crate) node_id: Option<i32>,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match self.node_id {
            Some(id) => write!(f, " (node {id})"),
            None => f.write_str(" (bootstrap)"),
        }
    }
}

/// Settings a connection needs.
#[derive(Clone)]
pub(crate) struct ConnectionConfig {
    pub(crate) client_id: StrBytes,
    pub(crate) setup_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// TLS, for SSL and SASL_SSL.
    pub(crate) tls: Option<TlsConnector>,
    /// SASL, for SASL_PLAINTEXT and SASL_SSL.
    pub(crate) sasl: Option<Arc<Authenticator>>,
}

impl ConnectionConfig {
    /// The connection settings of a client with these security settings; reads
    /// the TLS PEM files now.
    pub(crate) fn new(
        client_id: StrBytes,
        setup_timeout: Duration,
        request_timeout: Duration,
        security: &crate::security::SecurityConfig,
    ) -> Result<ConnectionConfig, Error> {
        let tls = if security.protocol.uses_tls() { Some(tls::connector(&security.tls)?) } else { None };
        let sasl = if security.protocol.uses_sasl() {
            Authenticator::new(&security.sasl).map(Arc::new)
        } else {
            None
        };
        Ok(ConnectionConfig { client_id, setup_timeout, request_timeout, tls, sasl })
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("client_id", &self.client_id)
            .field("setup_timeout", &self.setup_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// The versions a broker supports, by API key.
#[derive(Debug, Default)]
struct BrokerVersions {
    ranges: Vec<Option<VersionRange>>,
}

impl BrokerVersions {
    fn from_response(resp: &ApiVersionsResponse) -> BrokerVersions {
        let mut ranges = Vec::new();
        for k in &resp.api_keys {
            let Ok(i) = usize::try_from(k.api_key) else { continue };
            if i >= 1024 {
                continue; // No real API key is that large; ignore rather than allocate.
            }
            if ranges.len() <= i {
                ranges.resize(i + 1, None);
            }
            ranges[i] = Some(VersionRange { min: k.min_version, max: k.max_version });
        }
        BrokerVersions { ranges }
    }

    fn get(&self, api: i16) -> Option<VersionRange> {
        usize::try_from(api).ok().and_then(|i| self.ranges.get(i).copied().flatten())
    }
}

type Encoder = Box<dyn FnOnce(&mut BytesMut, i32, &StrBytes, i16) -> Result<(), String> + Send>;

/// A request waiting to be written.
struct Call {
    api_key: i16,
    versions: VersionRange,
    encode: Encoder,
    response_header_version: fn(i16) -> i16,
    expect_response: bool,
    reply: oneshot::Sender<Result<RawResponse, Error>>,
}

/// A response body (after its header) and the version it was encoded at.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) version: i16,
    pub(crate) body: Bytes,
}

/// A request written, waiting for its response.
struct Outstanding {
    correlation_id: i32,
    api_key: i16,
    version: i16,
    response_header_version: i16,
    deadline: Instant,
    reply: oneshot::Sender<Result<RawResponse, Error>>,
}

struct Shared {
    addr: BrokerAddr,
    name: Arc<str>,
    connected: AtomicBool,
    closed: AtomicBool,
    shutdown: Notify,
    /// Responses matched so far; the writer compares it with the requests it sent
    /// to know when none is outstanding (before re-authenticating).
    answered: AtomicU64,
    /// Set while the writer waits for `answered` to catch up.
    draining: AtomicBool,
    drained: Notify,
}

impl Shared {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }
}

/// A handle onto one broker connection. Cloning shares the connection.
#[derive(Clone)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    calls: mpsc::UnboundedSender<Call>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.shared.name)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Starts connecting to `addr` in the background and returns at once. Calls made
    /// before the connection is up wait for it; if it cannot be made they fail with
    /// the connection error.
    pub(crate) fn open(addr: BrokerAddr, config: ConnectionConfig) -> Connection {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            name: Arc::from(addr.to_string()),
            addr,
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            shutdown: Notify::new(),
            answered: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            drained: Notify::new(),
        });
        tokio::spawn(run(shared.clone(), config, rx));
        Connection { shared, calls: tx }
    }

    /// The broker this connects to.
    pub(crate) fn addr(&self) -> &BrokerAddr {
        &self.shared.addr
    }

    /// Whether the connection has failed or been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.calls.is_closed()
    }

    /// Whether the connection was ever established (versions negotiated).
    pub(crate) fn was_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// The broker's name for logs and errors, e.g. `127.0.0.1:9092 (node 1)`.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.shared.name
    }

    /// Closes the connection, failing every call on it.
    pub(crate) fn close(&self) {
        self.shared.close();
    }

    /// Queues `req`; the returned future resolves to the broker's response. With
    /// `expect_response` false (Produce with acks=0) it resolves once the request is
    /// written, with an empty body.
    pub(crate) fn call<R>(&self, req: R, expect_response: bool) -> ResponseFuture<R>
    where
        R: Request + Send + 'static,
    {
        self.call_with_max(req, expect_response, None)
    }

    /// [`call`](Self::call), at most at `max_version` when given.
    pub(crate) fn call_with_max<R>(
        &self,
        req: R,
        expect_response: bool,
        max_version: Option<i16>,
    ) -> ResponseFuture<R>
    where
        R: Request + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let mut versions =
            ApiKey::try_from(R::KEY).ok().and_then(protocol::herald_versions).unwrap_or(R::VERSIONS);
        if let Some(max) = max_version {
            versions.max = versions.max.min(max);
        }
        let call = Call {
            api_key: R::KEY,
            versions,
            encode: Box::new(move |buf, correlation_id, client_id, version| {
                protocol::encode_request(buf, correlation_id, client_id, version, &req)
            }),
            response_header_version: protocol::response_header_version::<R>,
            expect_response,
            reply: tx,
        };
        if let Err(mpsc::error::SendError(call)) = self.calls.send(call) {
            let _ = call.reply.send(Err(closed_error(&self.shared.name)));
        }
        ResponseFuture { rx, broker: self.shared.name.clone(), expect_response, _request: PhantomData }
    }
}

fn closed_error(broker: &str) -> Error {
    Error::new(ErrorKind::Connection { broker: broker.to_owned() })
        .with_source(std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed"))
}

/// The response to one call, decoded to `R::Response`.
pub(crate) struct ResponseFuture<R: Request> {
    rx: oneshot::Receiver<Result<RawResponse, Error>>,
    broker: Arc<str>,
    expect_response: bool,
    _request: PhantomData<fn() -> R>,
}

impl<R: Request> Future for ResponseFuture<R> {
    /// The version the request was sent at, and the response (`None` when no
    /// response was expected).
    type Output = Result<(i16, Option<R::Response>), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let raw = match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(closed_error(&self.broker))),
            Poll::Ready(Ok(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(Ok(raw))) => raw,
        };
        if !self.expect_response {
            return Poll::Ready(Ok((raw.version, None)));
        }
        Poll::Ready(
            protocol::decode_response::<R>(raw.body, raw.version)
                .map(|r| (raw.version, Some(r)))
                .map_err(|detail| Error::protocol(&*self.broker, detail)),
        )
    }
}

/// The connection's life: connect (and TLS), negotiate versions, authenticate,
/// then pipe calls until something fails or the connection is closed. Whatever is
/// still queued or outstanding at the end fails with the reason.
async fn run(shared: Arc<Shared>, config: ConnectionConfig, mut calls: mpsc::UnboundedReceiver<Call>) {
    let established = tokio::select! {
        r = establish(&shared, &config) => match r {
            Ok(v) => v,
            Err(e) => {
                if e.is_authentication() {
                    tracing::warn!(broker = %shared.name, error = %e, "connection refused");
                } else {
                    tracing::debug!(broker = %shared.name, error = %e, "connection failed");
                }
                shared.close();
                fail_queue(&mut calls, &e);
                return;
            }
        },
        _ = shared.shutdown.notified() => {
            fail_queue(&mut calls, &closed_error(&shared.name));
            return;
        }
    };
    shared.connected.store(true, Ordering::Release);
    tracing::debug!(broker = %shared.name, "connected");
    match established {
        Established::Plain(stream, versions, reauth) => {
            let (rd, wr) = stream.into_split();
            pipe(shared, config, versions, reauth, rd, wr, calls).await;
        }
        Established::Tls(stream, versions, reauth) => {
            let (rd, wr) = tokio::io::split(*stream);
            pipe(shared, config, versions, reauth, rd, wr, calls).await;
        }
    }
}

/// A connection ready for calls.
enum Established {
    Plain(TcpStream, BrokerVersions, Option<Reauth>),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, BrokerVersions, Option<Reauth>),
}

/// When and how a SASL session is renewed (KIP-368).
struct Reauth {
    auth: Arc<Authenticator>,
    versions: SaslVersions,
    /// `None` when the broker set no session lifetime.
    at: Option<Instant>,
}

async fn establish(shared: &Shared, config: &ConnectionConfig) -> Result<Established, Error> {
    let tcp = connect(&shared.addr, config.setup_timeout).await?;
    match &config.tls {
        None => {
            let mut stream = tcp;
            let (versions, reauth) = setup(&mut stream, config, &shared.name).await?;
            Ok(Established::Plain(stream, versions, reauth))
        }
        Some(connector) => {
            let handshake = tls::handshake(connector, tcp, &shared.addr.host, &shared.name);
            let mut stream =
                tokio::time::timeout(config.setup_timeout, handshake).await.map_err(|_| {
                    Error::timeout(TimeoutKind::Connect, config.setup_timeout)
                        .caused_by(closed_error(&shared.name))
                })??;
            let (versions, reauth) = setup(&mut stream, config, &shared.name).await?;
            Ok(Established::Tls(Box::new(stream), versions, reauth))
        }
    }
}

/// ApiVersions, then SASL when configured.
async fn setup<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &ConnectionConfig,
    name: &str,
) -> Result<(BrokerVersions, Option<Reauth>), Error> {
    let versions = negotiate(stream, config, name).await?;
    let Some(auth) = &config.sasl else { return Ok((versions, None)) };
    let sasl_versions = SaslVersions::choose(|k| versions.get(k), name)?;
    let mut t = Direct { stream, config, name, correlation_id: 2 };
    let lifetime = auth.authenticate(&mut t, sasl_versions, false).await?;
    let at = lifetime.map(|l| Instant::now() + sasl::reauth_after(l));
    Ok((versions, Some(Reauth { auth: auth.clone(), versions: sasl_versions, at })))
}

/// Runs the reader and the writer over the two halves of a stream.
async fn pipe<R, W>(
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
    let reader = tokio::spawn(read_loop(shared.clone(), rd, out_rx, config.request_timeout));
    let err = write_loop(&shared, &config, &versions, reauth, wr, &mut calls, out_tx).await;
    shared.close();
    let _ = reader.await;
    fail_queue(&mut calls, &err);
}

fn fail_queue(calls: &mut mpsc::UnboundedReceiver<Call>, err: &Error) {
    calls.close();
    while let Ok(call) = calls.try_recv() {
        let _ = call.reply.send(Err(err.clone()));
    }
}

async fn connect(addr: &BrokerAddr, timeout: Duration) -> Result<TcpStream, Error> {
    let name = addr.to_string();
    let target = (addr.host.as_str(), addr.port);
    let attempt = async {
        let addrs = tokio::net::lookup_host(target).await.map_err(|e| Error::connection(&name, e))?;
        let mut last = None;
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::connection(
            &name,
            last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "host resolved to no address")
            }),
        ))
    };
    let stream = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::timeout(TimeoutKind::Connect, timeout).caused_by(closed_error(&name)))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// ApiVersions: asks the broker what it speaks. A broker that does not know our
/// ApiVersions version answers in v0 with UNSUPPORTED_VERSION and its own range,
/// and we ask again at a version it knows.
async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &ConnectionConfig,
    name: &str,
) -> Result<BrokerVersions, Error> {
    let ours = protocol::herald_versions(ApiKey::ApiVersions).unwrap_or(ApiVersionsRequest::VERSIONS);
    let mut version = ours.max;
    for attempt in 0..2 {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("herald");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let mut buf = BytesMut::new();
        protocol::encode_request(&mut buf, attempt, &config.client_id, version, &req)
            .map_err(|d| Error::protocol(name, d))?;
        let exchange = async {
            stream.write_all(&buf).await?;
            stream.flush().await?;
            read_frame_once(stream).await
        };
        let frame = tokio::time::timeout(config.request_timeout, exchange)
            .await
            .map_err(|_| {
                Error::timeout(TimeoutKind::Request, config.request_timeout).caused_by(closed_error(name))
            })?
            .map_err(|e| explain_setup_failure(name, config, e))?;
        // ApiVersions responses always use header v0.
        let (correlation_id, mut body) =
            protocol::split_response_header(frame, 0).map_err(|d| Error::protocol(name, d))?;
        if correlation_id != attempt {
            return Err(Error::protocol(
                name,
                format!("ApiVersions answered with correlation id {correlation_id}, expected {attempt}"),
            ));
        }
        if body.remaining() < 2 {
            return Err(Error::protocol(name, "ApiVersions response too short"));
        }
        let code = ErrorCode::new(i16::from_be_bytes([body[0], body[1]]));
        let decode_version = if code == ErrorCode::UNSUPPORTED_VERSION { 0 } else { version };
        let resp = ApiVersionsResponse::decode(&mut body, decode_version)
            .map_err(|e| Error::protocol(name, format!("ApiVersions response: {e}")))?;
        if code == ErrorCode::UNSUPPORTED_VERSION && attempt == 0 {
            let theirs = BrokerVersions::from_response(&resp).get(ApiKey::ApiVersions as i16);
            match theirs.map(|r| r.intersect(&ours)).filter(|r| !r.is_empty()) {
                Some(r) => {
                    version = r.max;
                    continue;
                }
                None => {
                    return Err(Error::new(ErrorKind::Unsupported {
                        what: format!("{name} supports no ApiVersions version herald speaks"),
                    }));
                }
            }
        }
        if !code.is_ok() {
            return Err(Error::broker(code, Some("ApiVersions".to_owned())).caused_by(closed_error(name)));
        }
        return Ok(BrokerVersions::from_response(&resp));
    }
    Err(Error::protocol(name, "ApiVersions negotiation did not converge"))
}

/// Says what a broken ApiVersions exchange most likely means: a TLS listener
/// answers a plaintext client with a TLS alert (0x15 0x03 ...), or just closes.
fn explain_setup_failure(name: &str, config: &ConnectionConfig, e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<LooksLikeTls>()) {
        return tls::tls_error(
            name,
            "the broker answered ApiVersions with TLS bytes: the listener expects TLS; \
             set security.protocol=SSL or SASL_SSL"
                .to_owned(),
        );
    }
    if let Some(tls_err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        // With TLS 1.3 the broker checks the client certificate after the
        // handshake: its refusal arrives as an alert on the first read.
        let hint = match tls_err {
            rustls::Error::AlertReceived(
                rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::UnknownCA
                | rustls::AlertDescription::CertificateExpired,
            ) => "; the listener requires a client certificate it trusts (ssl.keystore.location)",
            _ => "",
        };
        return tls::tls_error(name, format!("the broker ended the TLS session: {tls_err}{hint}"));
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof && config.tls.is_none() {
        return Error::connection(
            name,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during ApiVersions; is the listener TLS/SASL? check security.protocol",
            ),
        );
    }
    Error::connection(name, e)
}

/// The marker error for a response that starts like a TLS record.
#[derive(Debug)]
struct LooksLikeTls;

impl fmt::Display for LooksLikeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response starts with a TLS record header")
    }
}

impl std::error::Error for LooksLikeTls {}

async fn read_frame_once<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    // A TLS record (alert 0x15 or handshake 0x16, version 0x03 0x0N) where a size
    // was expected: a TLS port answering a plaintext client.
    if matches!(size[0], 0x15 | 0x16) && size[1] == 0x03 && size[2] <= 0x04 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, LooksLikeTls));
    }
    let len = frame_len(i32::from_be_bytes(size))?;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

fn frame_len(len: i32) -> std::io::Result<usize> {
    match usize::try_from(len) {
        Ok(n) if (4..=MAX_RESPONSE_FRAME).contains(&n) => Ok(n),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("response frame of {len} bytes is outside 4..={MAX_RESPONSE_FRAME}"),
        )),
    }
}

/// SASL on a fresh connection: one request at a time, straight on the socket.
struct Direct<'a, S> {
    stream: &'a mut S,
    config: &'a ConnectionConfig,
    name: &'a str,
    correlation_id: i32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SaslTransport for Direct<'_, S> {
    fn broker(&self) -> &str {
        self.name
    }

    async fn round_trip<R: Request + Send + 'static>(
        &mut self,
        req: R,
        version: i16,
    ) -> Result<R::Response, Error> {
        self.correlation_id = self.correlation_id.wrapping_add(1).max(1);
        let correlation_id = self.correlation_id;
        let mut buf = BytesMut::new();
        protocol::encode_request(&mut buf, correlation_id, &self.config.client_id, version, &req)
            .map_err(|d| Error::protocol(self.name, d))?;
        let stream = &mut *self.stream;
        let exchange = async {
            stream.write_all(&buf).await?;
            stream.flush().await?;
            read_frame_once(stream).await
        };
        let timeout = self.config.request_timeout;
        let frame = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::timeout(TimeoutKind::Request, timeout).caused_by(closed_error(self.name)))?
            .map_err(|e| Error::connection(self.name, e))?;
        let (got, body) =
            protocol::split_response_header(frame, protocol::response_header_version::<R>(version))
                .map_err(|d| Error::protocol(self.name, d))?;
        if got != correlation_id {
            return Err(Error::protocol(
                self.name,
                format!(
                    "{} answered with correlation id {got}, expected {correlation_id}",
                    protocol::api_name(R::KEY)
                ),
            ));
        }
        protocol::decode_response::<R>(body, version).map_err(|d| Error::protocol(self.name, d))
    }
}

/// SASL on a live connection (re-authentication): requests go through the
/// pipeline, so the reader matches their responses as any other.
struct Pipelined<'a, W> {
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
async fn reauthenticate<W: AsyncWrite + Unpin>(
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
async fn write_loop<W: AsyncWrite + Unpin>(
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
async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    mut rd: R,
    mut incoming: mpsc::UnboundedReceiver<Outstanding>,
    request_timeout: Duration,
) {
    let mut waiting: VecDeque<Outstanding> = VecDeque::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let err = loop {
        // Answer every complete frame already read.
        match next_frame(&mut buf) {
            Err(e) => break Error::connection(&*shared.name, e),
            Ok(Some(frame)) => {
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

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Takes one complete frame (without its size prefix) off the front of `buf`.
fn next_frame(buf: &mut BytesMut) -> std::io::Result<Option<Bytes>> {
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

fn answer(shared: &Shared, waiting: &mut VecDeque<Outstanding>, frame: Bytes) -> Result<(), Error> {
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
