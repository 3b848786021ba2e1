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

mod io;
pub(crate) mod pool;
mod setup;

use self::io::{fail_queue, pipe};
use self::setup::{Established, establish};

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Request, StrBytes, VersionRange};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::error::{Error, ErrorKind};
use crate::protocol::{self};
use crate::security::TokenProvider;
use crate::security::sasl::Authenticator;
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
    /// Where to count the bytes written and read (the producer's metrics).
    pub(crate) traffic: Option<Arc<crate::metrics::Traffic>>,
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
            Authenticator::new(&security.sasl, token_provider(security)?).map(Arc::new)
        } else {
            None
        };
        Ok(ConnectionConfig { client_id, setup_timeout, request_timeout, tls, sasl, traffic: None })
    }
}

/// The OAUTHBEARER token provider: the callback set in code, else the OIDC login
/// (KIP-768) when its settings ask for it. Built once per client (the OIDC login's
/// HTTP client and TLS settings with it).
fn token_provider(security: &crate::security::SecurityConfig) -> Result<Option<TokenProvider>, Error> {
    let sasl = &security.sasl;
    if sasl.token_provider.is_some() || !sasl.oidc.wanted() {
        return Ok(sasl.token_provider.clone());
    }
    #[cfg(feature = "oidc")]
    {
        let oidc = sasl.oidc.resolve()?;
        crate::security::oidc::provider(&oidc, &security.tls).map(Some)
    }
    #[cfg(not(feature = "oidc"))]
    Err(Error::config(
        "sasl.oauthbearer.token.endpoint.url",
        "the OIDC login needs herald's `oidc` feature, which this build leaves out",
    ))
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
