//! SASL authentication of one connection: SaslHandshake v1, then the mechanism's
//! messages in SaslAuthenticate requests (KIP-152), run right after ApiVersions
//! and again before the session lifetime the broker set runs out (KIP-368).

use std::time::{Duration, SystemTime};

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Request, StrBytes, VersionRange};
use parking_lot::Mutex;

use super::scram::{ScramClient, ScramHash};
use super::{OAuthBearerToken, SaslConfig, SaslMechanism, Secret, TokenProvider};
use crate::error::{Error, ErrorCode, ErrorKind, Result};

/// `UNSUPPORTED_SASL_MECHANISM`.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// Sends one request and waits for its response: on a fresh connection directly
/// on the socket, on a live one through its pipeline.
pub(crate) trait SaslTransport {
    /// The broker's name, for errors.
    fn broker(&self) -> &str;
    /// One request/response at `version`.
    async fn round_trip<R: Request + Send + 'static>(&mut self, req: R, version: i16) -> Result<R::Response>;
}

/// The versions SaslHandshake and SaslAuthenticate are sent at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SaslVersions {
    handshake: i16,
    authenticate: i16,
}

impl SaslVersions {
    /// Picks versions from the broker's ranges (`get` by API key). SaslHandshake
    /// must be v1 (the v0 legacy framing is not spoken).
    pub(crate) fn choose(get: impl Fn(i16) -> Option<VersionRange>, broker: &str) -> Result<SaslVersions> {
        let pick = |key: i16, ours: VersionRange| {
            get(key).map(|r| r.intersect(&ours)).filter(|r| !r.is_empty()).map(|r| r.max)
        };
        let handshake = pick(SaslHandshakeRequest::KEY, VersionRange { min: 1, max: 1 });
        let authenticate = pick(SaslAuthenticateRequest::KEY, VersionRange { min: 0, max: 2 });
        match (handshake, authenticate) {
            (Some(handshake), Some(authenticate)) => Ok(SaslVersions { handshake, authenticate }),
            _ => Err(auth_error(
                broker,
                "the broker does not offer SaslHandshake v1 and SaslAuthenticate (Kafka 1.0+); \
                 is the listener a SASL listener?"
                    .to_owned(),
            )),
        }
    }
}

pub(crate) fn auth_error(broker: &str, reason: String) -> Error {
    Error::new(ErrorKind::Authentication { broker: broker.to_owned(), reason })
}

/// The credentials of a client and its cached OAUTHBEARER token; shared by its
/// connections.
pub(crate) struct Authenticator {
    mechanism: SaslMechanism,
    username: String,
    password: Secret,
    tokens: Option<TokenProvider>,
    /// The last token and when it was fetched.
    cached: Mutex<Option<(OAuthBearerToken, SystemTime)>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish()
    }
}

impl Authenticator {
    /// From validated settings (the mechanism and what it needs are present).
    /// `tokens`: the OAUTHBEARER token provider (a callback or the OIDC login).
    pub(crate) fn new(sasl: &SaslConfig, tokens: Option<TokenProvider>) -> Option<Authenticator> {
        Some(Authenticator {
            mechanism: sasl.effective_mechanism()?,
            username: sasl.username.clone().unwrap_or_default(),
            password: sasl.password.clone().unwrap_or_default(),
            tokens,
            cached: Mutex::new(None),
        })
    }

    /// Authenticates the connection behind `t`. Returns the session lifetime the
    /// broker set (KIP-368), if any. `reauth` asks for a fresh OAUTHBEARER token.
    pub(crate) async fn authenticate<T: SaslTransport>(
        &self,
        t: &mut T,
        v: SaslVersions,
        reauth: bool,
    ) -> Result<Option<Duration>> {
        let m = self.mechanism;
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str(m.name());
        let resp = t.round_trip(hs, v.handshake).await?;
        if resp.error_code == UNSUPPORTED_SASL_MECHANISM {
            let enabled: Vec<&str> = resp.mechanisms.iter().map(|s| s.as_str()).collect();
            return Err(auth_error(
                t.broker(),
                format!(
                    "unknown SASL mechanism: the listener does not enable {m} (it enables {}); check sasl.mechanism",
                    enabled.join(", ")
                ),
            ));
        }
        if resp.error_code != 0 {
            return Err(auth_error(
                t.broker(),
                format!("SaslHandshake failed: {}", ErrorCode::new(resp.error_code)),
            ));
        }
        let mut ex = Exchange { version: v.authenticate, mechanism: m, lifetime_ms: 0 };
        match m {
            SaslMechanism::Plain => {
                let mut msg = Vec::with_capacity(self.username.len() + self.password.expose().len() + 2);
                msg.push(0);
                msg.extend_from_slice(self.username.as_bytes());
                msg.push(0);
                msg.extend_from_slice(self.password.expose().as_bytes());
                ex.step(t, msg).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash =
                    if m == SaslMechanism::ScramSha256 { ScramHash::Sha256 } else { ScramHash::Sha512 };
                let mut c = ScramClient::new(hash, &self.username, &self.password)
                    .map_err(|e| auth_error(t.broker(), e))?;
                let server_first = ex.step(t, c.client_first().into_bytes()).await?;
                let client_final =
                    c.server_first(&server_first).map_err(|e| auth_error(t.broker(), format!("{m}: {e}")))?;
                let server_final = ex.step(t, client_final.into_bytes()).await?;
                c.server_final(&server_final).map_err(|e| auth_error(t.broker(), format!("{m}: {e}")))?;
            }
            SaslMechanism::OAuthBearer => {
                let token = self.token(reauth).await.map_err(|e| auth_error(t.broker(), e))?;
                let mut msg = format!("n,,\u{1}auth=Bearer {}\u{1}", token.value.expose());
                for (k, v) in &token.extensions {
                    msg.push_str(&format!("{k}={v}\u{1}"));
                }
                msg.push('\u{1}');
                let challenge = ex.step(t, msg.into_bytes()).await?;
                if !challenge.is_empty() {
                    // RFC 7628: the server's error, to be acknowledged with %x01.
                    let detail = String::from_utf8_lossy(&challenge).into_owned();
                    let _ = ex.step(t, vec![1]).await;
                    return Err(auth_error(t.broker(), format!("OAUTHBEARER token refused: {detail}")));
                }
            }
        }
        let lifetime = u64::try_from(ex.lifetime_ms).ok().filter(|ms| *ms > 0).map(Duration::from_millis);
        tracing::debug!(broker = %t.broker(), mechanism = %m, reauth, session_lifetime = ?lifetime, "authenticated");
        Ok(lifetime)
    }

    /// The OAUTHBEARER token: the cached one unless `fresh` or it is past 80% of
    /// its life (Java's refresh window), else a new one from the callback.
    async fn token(&self, fresh: bool) -> std::result::Result<OAuthBearerToken, String> {
        let now = SystemTime::now();
        if !fresh {
            if let Some((t, fetched)) = self.cached.lock().as_ref() {
                let life = t.expires_at.duration_since(*fetched).unwrap_or_default();
                if now < *fetched + life.mul_f64(0.8) {
                    return Ok(t.clone());
                }
            }
        }
        let provider = self.tokens.as_ref().ok_or("OAUTHBEARER needs a token callback")?;
        // User code: a panic in it fails this authentication, not the connection task.
        let panicked = || "the OAUTHBEARER token callback panicked".to_owned();
        let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| provider.call()))
            .map_err(|_| panicked())?;
        let token = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(call))
            .await
            .map_err(|_| {
                tracing::error!("the OAUTHBEARER token callback panicked");
                panicked()
            })?
            .map_err(|e| format!("OAUTHBEARER login failed: {e}"))?;
        if token.expires_at <= now {
            return Err("the OAUTHBEARER token callback returned an expired token".to_owned());
        }
        tracing::debug!(expires_in = ?token.expires_at.duration_since(now).unwrap_or_default(), "new OAUTHBEARER token");
        *self.cached.lock() = Some((token.clone(), now));
        Ok(token)
    }
}

/// The SaslAuthenticate round trips of one authentication.
struct Exchange {
    version: i16,
    mechanism: SaslMechanism,
    lifetime_ms: i64,
}

impl Exchange {
    async fn step<T: SaslTransport>(&mut self, t: &mut T, bytes: Vec<u8>) -> Result<bytes::Bytes> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = bytes.into();
        let resp = t.round_trip(req, self.version).await?;
        if resp.error_code != 0 {
            let msg = resp.error_message.as_deref().map(|s| s.to_string()).unwrap_or_default();
            return Err(auth_error(
                t.broker(),
                format!(
                    "{} authentication failed: {} {msg}",
                    self.mechanism,
                    ErrorCode::new(resp.error_code)
                )
                .trim_end()
                .to_owned(),
            ));
        }
        self.lifetime_ms = resp.session_lifetime_ms;
        Ok(resp.auth_bytes)
    }
}

/// When to re-authenticate a session of `lifetime`: at 85-95% of it (random, so
/// the connections of many clients do not all re-authenticate at once).
pub(crate) fn reauth_after(lifetime: Duration) -> Duration {
    lifetime.mul_f64(0.85 + fastrand::f64() * 0.10)
}
