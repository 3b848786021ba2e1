//! A Kafka-aware TCP proxy for fault tests: it sits between herald and a real
//! broker, forwards frames both ways, and rewrites the broker addresses in Metadata
//! responses so that every connection the client makes goes through the proxy.
//!
//! Not a mock: the broker behind it is real; the proxy only breaks the transport
//! on command: close a connection when a given request arrives, delay responses,
//! blackhole (stop moving bytes, both ways, while connections stay open — the
//! client sees silence and times out, as with a dead network), reset (close every
//! connection at once).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to traffic.
#[derive(Default)]
struct Faults {
    /// Close the connection instead of forwarding the next `n` requests of this API.
    close_on: HashMap<i16, usize>,
    /// Delay each response by this much.
    response_delay: Duration,
    /// Requests seen, by API key.
    seen: HashMap<i16, usize>,
}

struct Inner {
    faults: Mutex<Faults>,
    /// While set, no byte moves in either direction.
    blackholed: std::sync::atomic::AtomicBool,
    /// Every live connection's task, for reset.
    conns: Mutex<Vec<tokio::task::AbortHandle>>,
    /// node id → (proxy listener address, upstream address)
    nodes: Mutex<HashMap<i32, SocketAddr>>,
}

/// A running proxy. Dropping it does not stop its tasks; they end with the runtime.
#[derive(Clone)]
pub struct KafkaProxy {
    inner: Arc<Inner>,
    bootstrap: SocketAddr,
}

impl KafkaProxy {
    /// Starts a proxy in front of `upstream` (`host:port[,…]`: the first is used to
    /// bootstrap; the others are reached through Metadata rewriting).
    pub async fn start(upstream: &str) -> KafkaProxy {
        let first = upstream.split(',').next().unwrap_or(upstream).trim();
        let upstream: SocketAddr =
            tokio::net::lookup_host(first).await.expect("resolve upstream").next().expect("upstream address");
        let inner = Arc::new(Inner {
            faults: Mutex::new(Faults::default()),
            blackholed: std::sync::atomic::AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            nodes: Mutex::new(HashMap::new()),
        });
        let bootstrap = listen(inner.clone(), upstream).await;
        KafkaProxy { inner, bootstrap }
    }

    /// The address clients should bootstrap from.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.to_string()
    }

    /// Closes the client's connection instead of forwarding the next `n` requests
    /// with this API key (e.g. `ApiKey::Produce as i16`).
    pub fn close_on_next(&self, api_key: i16, n: usize) {
        self.inner.faults.lock().close_on.insert(api_key, n);
    }

    /// Delays every response by `d`.
    pub fn delay_responses(&self, d: Duration) {
        self.inner.faults.lock().response_delay = d;
    }

    /// Starts or ends a blackhole: while on, nothing is read or forwarded.
    pub fn blackhole(&self, on: bool) {
        self.inner.blackholed.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes every connection through the proxy at once.
    pub fn reset(&self) {
        for c in self.inner.conns.lock().drain(..) {
            c.abort();
        }
    }

    /// How many requests of this API the proxy has seen (forwarded or not).
    pub fn seen(&self, api_key: i16) -> usize {
        self.inner.faults.lock().seen.get(&api_key).copied().unwrap_or(0)
    }
}

/// Boxed with an explicit `Send`: `listen` is reached again from `rewrite`, and a
/// recursive async fn's future needs a named type.
fn listen(inner: Arc<Inner>, upstream: SocketAddr) -> Pin<Box<dyn Future<Output = SocketAddr> + Send>> {
    Box::pin(listen_inner(inner, upstream))
}

async fn listen_inner(inner: Arc<Inner>, upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let inner2 = inner.clone();
            let task = tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    pipe(inner2, client, server).await;
                }
            });
            let mut conns = inner.conns.lock();
            conns.retain(|c| !c.is_finished());
            conns.push(task.abort_handle());
        }
    });
    addr
}

async fn wait_out_blackhole(inner: &Inner) {
    while inner.blackholed.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_frame(s: &mut tokio::net::tcp::OwnedReadHalf) -> Option<Bytes> {
    let len = s.read_i32().await.ok()?;
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

async fn pipe(inner: Arc<Inner>, client: TcpStream, server: TcpStream) {
    let (mut crd, mut cwr) = client.into_split();
    let (mut srd, mut swr) = server.into_split();
    // correlation id → (api key, version), for decoding responses.
    let requests: Arc<Mutex<HashMap<i32, (i16, i16)>>> = Arc::default();
    let reqs = requests.clone();
    let inner2 = inner.clone();
    let upstream = async move {
        loop {
            wait_out_blackhole(&inner2).await;
            let Some(frame) = read_frame(&mut crd).await else { return };
            wait_out_blackhole(&inner2).await;
            if frame.len() < 8 {
                return;
            }
            let api = i16::from_be_bytes([frame[0], frame[1]]);
            let version = i16::from_be_bytes([frame[2], frame[3]]);
            let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            {
                let mut f = inner2.faults.lock();
                *f.seen.entry(api).or_default() += 1;
                if let Some(n) = f.close_on.get_mut(&api) {
                    if *n > 0 {
                        *n -= 1;
                        return; // drops both halves: the client sees the connection close
                    }
                }
            }
            reqs.lock().insert(corr, (api, version));
            let mut out = BytesMut::with_capacity(frame.len() + 4);
            out.put_i32(frame.len() as i32);
            out.put_slice(&frame);
            if swr.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    let downstream = async move {
        loop {
            wait_out_blackhole(&inner).await;
            let Some(frame) = read_frame(&mut srd).await else { return };
            wait_out_blackhole(&inner).await;
            let delay = inner.faults.lock().response_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let frame = match rewrite(&inner, &requests, frame.clone()).await {
                Some(f) => f,
                None => frame,
            };
            let mut out = BytesMut::with_capacity(frame.len() + 4);
            out.put_i32(frame.len() as i32);
            out.put_slice(&frame);
            if cwr.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// Rewrites broker addresses in a Metadata response to proxy listeners.
async fn rewrite(
    inner: &Arc<Inner>,
    requests: &Mutex<HashMap<i32, (i16, i16)>>,
    mut frame: Bytes,
) -> Option<Bytes> {
    if frame.len() < 4 {
        return None;
    }
    let corr = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let (api, version) = requests.lock().remove(&corr)?;
    if api != ApiKey::Metadata as i16 {
        return None;
    }
    let hv = ApiKey::Metadata.response_header_version(version);
    let header = ResponseHeader::decode(&mut frame, hv).ok()?;
    let mut resp = MetadataResponse::decode(&mut frame, version).ok()?;
    for b in &mut resp.brokers {
        let upstream: SocketAddr = format!("{}:{}", b.host, b.port).parse().ok()?;
        let existing = inner.nodes.lock().get(&b.node_id.0).copied();
        let proxy_addr = match existing {
            Some(a) => a,
            None => {
                let a = listen(inner.clone(), upstream).await;
                inner.nodes.lock().insert(b.node_id.0, a);
                a
            }
        };
        b.host = StrBytes::from_string(proxy_addr.ip().to_string());
        b.port = i32::from(proxy_addr.port());
    }
    let mut out = BytesMut::new();
    header.encode(&mut out, hv).ok()?;
    resp.encode(&mut out, version).ok()?;
    Some(out.freeze())
}
