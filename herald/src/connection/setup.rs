//! Opening a connection: TCP (with the setup timeout), TLS, ApiVersions, then
//! SASL (SaslHandshake + SaslAuthenticate) — everything before the first request
//! of the connection's user, one round trip at a time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Message, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{BrokerAddr, BrokerVersions, ConnectionConfig, Shared, closed_error};
use crate::error::{Error, ErrorCode, ErrorKind, TimeoutKind};
use crate::protocol::{self, MAX_RESPONSE_FRAME};
use crate::security::sasl::{self, Authenticator, SaslTransport, SaslVersions};
use crate::security::tls;

/// A connection ready for calls.
pub(super) enum Established {
    Plain(TcpStream, BrokerVersions, Option<Reauth>),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, BrokerVersions, Option<Reauth>),
}

/// When and how a SASL session is renewed (KIP-368).
pub(super) struct Reauth {
    pub(super) auth: Arc<Authenticator>,
    pub(super) versions: SaslVersions,
    /// `None` when the broker set no session lifetime.
    pub(super) at: Option<Instant>,
}

pub(super) async fn establish(shared: &Shared, config: &ConnectionConfig) -> Result<Established, Error> {
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
pub(super) async fn setup<S: AsyncRead + AsyncWrite + Unpin>(
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

pub(super) async fn connect(addr: &BrokerAddr, timeout: Duration) -> Result<TcpStream, Error> {
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
pub(super) async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
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
pub(super) fn explain_setup_failure(name: &str, config: &ConnectionConfig, e: std::io::Error) -> Error {
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
pub(super) struct LooksLikeTls;

impl fmt::Display for LooksLikeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response starts with a TLS record header")
    }
}

impl std::error::Error for LooksLikeTls {}

pub(super) async fn read_frame_once<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Bytes> {
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

pub(super) fn frame_len(len: i32) -> std::io::Result<usize> {
    match usize::try_from(len) {
        Ok(n) if (4..=MAX_RESPONSE_FRAME).contains(&n) => Ok(n),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("response frame of {len} bytes is outside 4..={MAX_RESPONSE_FRAME}"),
        )),
    }
}

/// SASL on a fresh connection: one request at a time, straight on the socket.
pub(super) struct Direct<'a, S> {
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
