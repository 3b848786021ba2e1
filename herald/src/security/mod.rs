//! Security settings: TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
//!
//! - [`SecurityProtocol`]: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, as in Java.
//! - TLS ([`TlsConfig`]) with rustls: CA certificates from PEM (a file or inline) or
//!   Mozilla's root set, an optional client certificate (mTLS), hostname
//!   verification on by default, TLS 1.2 and 1.3.
//! - SASL ([`SaslConfig`]): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (a
//!   token from your callback, or from an OAuth 2.0 / OIDC token endpoint with the
//!   client-credentials grant: [`OidcConfig`], KIP-768), with re-authentication
//!   when the broker sets a session lifetime (KIP-368).
//!
//! Secrets (passwords, private keys, tokens) are held in [`Secret`], whose `Debug`
//! prints `"****"`: they never reach logs or a config dump.

#[cfg(feature = "oidc")]
pub(crate) mod oidc;
pub(crate) mod sasl;
pub(crate) mod scram;
pub(crate) mod tls;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// A secret string (password, private key, token): its `Debug` output is masked.
///
/// It has no `Display`; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(Arc::from(secret.into()))
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"****\"")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s)
    }
}

/// How connections to brokers are secured (`security.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// No TLS, no SASL (the default).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plain TCP: credentials travel unencrypted (SCRAM's password does
    /// not, PLAIN's does).
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    fn parse(v: &str) -> std::result::Result<SecurityProtocol, String> {
        match v.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL".to_owned()),
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        })
    }
}

/// A SASL mechanism herald implements (`sasl.mechanism`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`: username and password in the clear (use it over TLS).
    Plain,
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628) with a token from a callback.
    OAuthBearer,
}

const SUPPORTED_MECHANISMS: &str = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER";

impl SaslMechanism {
    /// The mechanism's name on the wire, e.g. `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    fn parse(v: &str) -> std::result::Result<SaslMechanism, String> {
        match v.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OAuthBearer),
            "GSSAPI" => {
                Err(format!("GSSAPI (Kerberos) is not supported; herald supports {SUPPORTED_MECHANISMS}"))
            }
            _ => Err(format!("unknown SASL mechanism; herald supports {SUPPORTED_MECHANISMS}")),
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An OAUTHBEARER token, as a [`TokenProvider`] returns it.
#[derive(Clone, Debug)]
pub struct OAuthBearerToken {
    /// The token (a JWT, typically): sent to the broker, never logged.
    pub value: Secret,
    /// When it expires. herald asks for a new one before then.
    pub expires_at: SystemTime,
    /// SASL extensions (`key=value` pairs sent with the token, KIP-342); usually empty.
    pub extensions: Vec<(String, String)>,
}

impl OAuthBearerToken {
    /// A token valid until `expires_at`.
    pub fn new(value: impl Into<String>, expires_at: SystemTime) -> OAuthBearerToken {
        OAuthBearerToken { value: Secret::new(value), expires_at, extensions: Vec::new() }
    }
}

/// The future a [`TokenProvider`] returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = std::result::Result<OAuthBearerToken, String>> + Send>>;

/// Your OAUTHBEARER token callback. herald calls it when a connection
/// authenticates and its cached token is near expiry, and for every
/// re-authentication (KIP-368), so a fresh token is always used.
#[derive(Clone)]
pub struct TokenProvider(Arc<dyn Fn() -> TokenFuture + Send + Sync>);

impl TokenProvider {
    /// Wraps an async callback returning a token or an error message.
    pub fn new<F, Fut>(callback: F) -> TokenProvider
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<OAuthBearerToken, String>> + Send + 'static,
    {
        TokenProvider(Arc::new(move || Box::pin(callback())))
    }

    pub(crate) fn call(&self) -> TokenFuture {
        (self.0)()
    }
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenProvider(..)")
    }
}

/// SASL settings.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SaslConfig {
    /// `sasl.mechanism` (librdkafka: `sasl.mechanisms`). Required with SASL_*,
    /// unless `sasl.jaas.config` names PlainLoginModule or OAuthBearerLoginModule.
    pub mechanism: Option<SaslMechanism>,
    /// The user (PLAIN, SCRAM): `sasl.jaas.config`'s `username`, or librdkafka's
    /// `sasl.username`.
    pub username: Option<String>,
    /// The password (PLAIN, SCRAM).
    pub password: Option<Secret>,
    /// The OAUTHBEARER token callback
    /// ([`ProducerBuilder::oauthbearer_token_provider`](crate::ProducerBuilder::oauthbearer_token_provider)).
    /// When set, it is used rather than [`oidc`](SaslConfig::oidc).
    pub token_provider: Option<TokenProvider>,
    /// The OAUTHBEARER login with a token endpoint (KIP-768).
    pub oidc: OidcConfig,
    /// The mechanism `sasl.jaas.config`'s login module implies, if any.
    jaas_mechanism: Option<SaslMechanism>,
}

/// The OAUTHBEARER login with an OAuth 2.0 / OIDC token endpoint (KIP-768): herald
/// asks `token_endpoint_url` for a token with the client-credentials grant,
/// sending the client id and secret in HTTP Basic auth and `scope` in the form, as
/// Java's `OAuthBearerLoginCallbackHandler` and librdkafka's
/// `sasl.oauthbearer.method=oidc` do. The token is cached and asked for again as
/// a token callback's is. An `https` endpoint is checked against the same CA
/// certificates as brokers (`ssl.truststore.*`, else Mozilla's root set).
///
/// Requires the `oidc` feature (on by default).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OidcConfig {
    /// librdkafka's `sasl.oauthbearer.method`: `Some(true)` for `oidc`,
    /// `Some(false)` for `default`. Java's `sasl.login.callback.handler.class` set
    /// to `OAuthBearerLoginCallbackHandler` also sets `Some(true)`. `None`: the
    /// login is used when a token endpoint URL is set.
    pub method_oidc: Option<bool>,
    /// `sasl.oauthbearer.token.endpoint.url`.
    pub token_endpoint_url: Option<String>,
    /// `sasl.oauthbearer.client.credentials.client.id` (librdkafka:
    /// `sasl.oauthbearer.client.id`); else `sasl.jaas.config`'s `clientId`.
    pub client_id: Option<String>,
    /// `sasl.oauthbearer.client.credentials.client.secret` (librdkafka:
    /// `sasl.oauthbearer.client.secret`); else `sasl.jaas.config`'s `clientSecret`.
    pub client_secret: Option<Secret>,
    /// `sasl.oauthbearer.scope`; else `sasl.jaas.config`'s `scope`. Not sent when empty.
    pub scope: Option<String>,
    /// `sasl.oauthbearer.header.urlencode`: URL-encode the id and secret in the
    /// Basic auth header (RFC 6749 §2.3.1). Default false, as Java's.
    pub header_urlencode: bool,
    /// `sasl.login.connect.timeout.ms`; default 10 s (Java: the JVM's, unbounded).
    pub connect_timeout: Duration,
    /// `sasl.login.read.timeout.ms`; default 30 s (Java: the JVM's, unbounded).
    pub read_timeout: Duration,
    /// `sasl.login.retry.backoff.ms`: the first wait before asking again after a
    /// connection failure or a 5xx answer, doubled each time. Default 100 ms.
    pub retry_backoff: Duration,
    /// `sasl.login.retry.backoff.max.ms`: how long a token request is retried in
    /// all. Default 10 s.
    pub retry_backoff_max: Duration,
    jaas_client_id: Option<String>,
    jaas_client_secret: Option<Secret>,
    jaas_scope: Option<String>,
}

impl Default for OidcConfig {
    fn default() -> OidcConfig {
        OidcConfig {
            method_oidc: None,
            token_endpoint_url: None,
            client_id: None,
            client_secret: None,
            scope: None,
            header_urlencode: false,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(10_000),
            jaas_client_id: None,
            jaas_client_secret: None,
            jaas_scope: None,
        }
    }
}

impl OidcConfig {
    /// Whether the OIDC login is asked for: `sasl.oauthbearer.method=oidc` (or
    /// Java's `OAuthBearerLoginCallbackHandler`), or a token endpoint URL without
    /// `sasl.oauthbearer.method=default`.
    pub fn wanted(&self) -> bool {
        match self.method_oidc {
            Some(oidc) => oidc,
            None => self.token_endpoint_url.as_deref().is_some_and(|u| !u.trim().is_empty()),
        }
    }
}

/// The two class names of Java's OIDC login callback handler (Kafka 3.x and 4.x).
const OIDC_LOGIN_HANDLERS: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

/// `n` milliseconds, if more than 0.
fn millis(n: i64) -> Option<Duration> {
    u64::try_from(n).ok().filter(|n| *n > 0).map(Duration::from_millis)
}

impl SaslConfig {
    /// `sasl.mechanism`, or the one `sasl.jaas.config`'s login module implies.
    pub fn effective_mechanism(&self) -> Option<SaslMechanism> {
        self.mechanism.or(self.jaas_mechanism)
    }
}

/// Where PEM text comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    /// A file, read when the producer is built.
    File(PathBuf),
    /// The PEM text itself (a certificate, or a private key: masked in `Debug`).
    Inline(Secret),
}

impl Pem {
    fn read(&self, setting: &str) -> Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p)
                .map_err(|e| Error::config(setting, format!("cannot read {}: {e}", p.display()))),
            Pem::Inline(s) => Ok(s.expose().as_bytes().to_vec()),
        }
    }
}

/// A TLS protocol version (`ssl.enabled.protocols`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

/// TLS settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The CA certificates brokers are checked against: `ssl.truststore.location`
    /// / `ssl.truststore.certificates` (PEM), librdkafka's `ssl.ca.location`.
    /// `None`: Mozilla's root set (webpki-roots), as a public CA would need.
    pub ca: Option<Pem>,
    /// The client certificate chain, for brokers that require one (mTLS).
    pub client_cert: Option<Pem>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM, unencrypted).
    pub client_key: Option<Pem>,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default) checks that
    /// the broker's certificate names the host herald connected to; empty turns
    /// the check off, which lets anyone with a certificate from your CA pose as
    /// any broker.
    pub verify_hostname: bool,
    /// `ssl.enabled.protocols`; default TLSv1.2 and TLSv1.3.
    pub versions: Vec<TlsVersion>,
    /// `ssl.cipher.suites`: the IANA names (as Java spells them, e.g.
    /// `TLS_AES_256_GCM_SHA384`) of the cipher suites herald may offer; herald
    /// offers those of its own suites that are named here. Empty (the default):
    /// every suite of rustls's default set.
    pub cipher_suites: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            ca: None,
            client_cert: None,
            client_key: None,
            verify_hostname: true,
            versions: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            cipher_suites: Vec::new(),
        }
    }
}

/// Every security setting of a client.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// TLS, used with SSL and SASL_SSL.
    pub tls: TlsConfig,
    /// SASL, used with SASL_PLAINTEXT and SASL_SSL.
    pub sasl: SaslConfig,
    /// Values herald cannot honour in a setting that only matters with TLS or
    /// SASL: refused by [`validate`](SecurityConfig::validate) when it does, so a
    /// PLAINTEXT config carrying Java's defaults (`sasl.mechanism=GSSAPI`,
    /// `ssl.truststore.type=JKS`) still builds, as in Java.
    deferred: Vec<Deferred>,
}

/// A refused value of a TLS or SASL setting, and when it matters.
#[derive(Clone, Debug)]
struct Deferred {
    property: String,
    reason: String,
    when: Needs,
}

/// When a [`Deferred`] problem matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    /// With SASL_PLAINTEXT or SASL_SSL.
    Sasl,
    /// With SSL or SASL_SSL.
    Tls,
    /// With TLS and CA certificates set (a truststore location or certificates).
    TlsCa,
    /// With TLS and a client certificate or key set.
    TlsClientCert,
}

fn pem_only(kind: &str, v: &str) -> std::result::Result<(), String> {
    if v.eq_ignore_ascii_case("PEM") {
        Ok(())
    } else {
        Err(format!(
            "herald reads PEM only; convert the {kind} (e.g. `keytool -exportcert -rfc` for certificates, \
             `openssl pkcs12 -nodes` for a key) and set ssl.{kind}.type=PEM"
        ))
    }
}

fn no_password(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() {
        Ok(())
    } else {
        Err("encrypted or password-protected stores are not supported: use unencrypted PEM".to_owned())
    }
}

impl SecurityConfig {
    /// Sets one security property (declared in `config::PROPERTIES`, whose Java
    /// names this takes). `None` when `name` is not a security property.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Option<std::result::Result<(), String>> {
        let v = value.trim();
        let path = || Pem::File(PathBuf::from(v));
        // A new value replaces whatever was wrong with the old one.
        self.deferred.retain(|d| d.property != name);
        let r = match name {
            "security.protocol" => SecurityProtocol::parse(v).map(|p| self.protocol = p),
            "sasl.mechanism" | "sasl.mechanisms" => {
                match SaslMechanism::parse(v) {
                    Ok(m) => self.sasl.mechanism = Some(m),
                    // Java's default GSSAPI, or a mechanism herald lacks: refused
                    // only if SASL is used.
                    Err(why) if !v.is_empty() => {
                        self.sasl.mechanism = None;
                        self.defer(name, why, Needs::Sasl);
                    }
                    Err(_) => self.sasl.mechanism = None,
                }
                Ok(())
            }
            "sasl.jaas.config" if v.is_empty() => {
                self.sasl.jaas_mechanism = None;
                Ok(())
            }
            "sasl.jaas.config" => {
                match parse_jaas(v) {
                    Ok(j) => {
                        self.sasl.jaas_mechanism = j.mechanism;
                        self.sasl.oidc.jaas_client_id = j.client_id;
                        self.sasl.oidc.jaas_client_secret = j.client_secret;
                        self.sasl.oidc.jaas_scope = j.scope;
                        if j.username.is_some() {
                            self.sasl.username = j.username;
                        }
                        if j.password.is_some() {
                            self.sasl.password = j.password;
                        }
                    }
                    Err(why) => {
                        self.sasl.jaas_mechanism = None;
                        self.defer(name, why, Needs::Sasl);
                    }
                }
                Ok(())
            }
            "sasl.username" => {
                self.sasl.username = Some(v.to_owned());
                Ok(())
            }
            "sasl.oauthbearer.method" => {
                let method = match v.to_ascii_lowercase().as_str() {
                    "oidc" => Some(true),
                    "default" => Some(false),
                    "" => None,
                    _ => return Some(Err("expected default or oidc".to_owned())),
                };
                self.sasl.oidc.method_oidc = method;
                Ok(())
            }
            "sasl.login.callback.handler.class" => {
                if v.is_empty() {
                    self.sasl.oidc.method_oidc = None;
                    Ok(())
                } else if OIDC_LOGIN_HANDLERS.contains(&v) {
                    self.sasl.oidc.method_oidc = Some(true);
                    Ok(())
                } else {
                    Err(format!(
                        "SASL login callback handlers are Java classes; herald knows {} (the OIDC login, \
                         KIP-768); other OAUTHBEARER tokens come from ProducerBuilder::oauthbearer_token_provider",
                        OIDC_LOGIN_HANDLERS[0]
                    ))
                }
            }
            "sasl.oauthbearer.token.endpoint.url" => {
                self.sasl.oidc.token_endpoint_url = Some(v.to_owned()).filter(|v| !v.is_empty());
                Ok(())
            }
            "sasl.oauthbearer.client.credentials.client.id" => {
                self.sasl.oidc.client_id = Some(v.to_owned()).filter(|v| !v.is_empty());
                Ok(())
            }
            "sasl.oauthbearer.client.credentials.client.secret" => {
                self.sasl.oidc.client_secret = Some(Secret::new(v)).filter(|v| !v.is_empty());
                Ok(())
            }
            "sasl.oauthbearer.scope" => {
                self.sasl.oidc.scope = Some(v.to_owned()).filter(|v| !v.is_empty());
                Ok(())
            }
            "sasl.oauthbearer.header.urlencode" => match v.to_ascii_lowercase().as_str() {
                "true" | "false" => {
                    self.sasl.oidc.header_urlencode = v.eq_ignore_ascii_case("true");
                    Ok(())
                }
                _ => Err("expected true or false".to_owned()),
            },
            // Java's INT and LONG; a timeout of 0 or less is herald's default.
            "sasl.login.connect.timeout.ms" => crate::config::int(v, i64::MIN, i64::MAX).map(|n| {
                self.sasl.oidc.connect_timeout = millis(n).unwrap_or(OidcConfig::default().connect_timeout)
            }),
            "sasl.login.read.timeout.ms" => crate::config::int(v, i64::MIN, i64::MAX).map(|n| {
                self.sasl.oidc.read_timeout = millis(n).unwrap_or(OidcConfig::default().read_timeout)
            }),
            "sasl.login.retry.backoff.ms" => crate::config::long(v, i64::MIN, i64::MAX)
                .map(|n| self.sasl.oidc.retry_backoff = millis(n).unwrap_or_default()),
            "sasl.login.retry.backoff.max.ms" => crate::config::long(v, i64::MIN, i64::MAX)
                .map(|n| self.sasl.oidc.retry_backoff_max = millis(n).unwrap_or_default()),
            "sasl.password" => {
                self.sasl.password = Some(Secret::new(value));
                Ok(())
            }
            "ssl.truststore.type" => {
                self.defer_if(name, pem_only("truststore", v), Needs::TlsCa);
                Ok(())
            }
            "ssl.keystore.type" => {
                self.defer_if(name, pem_only("keystore", v), Needs::TlsClientCert);
                Ok(())
            }
            "ssl.truststore.password" => {
                self.defer_if(name, no_password(v), Needs::TlsCa);
                Ok(())
            }
            "ssl.keystore.password" | "ssl.key.password" => {
                self.defer_if(name, no_password(v), Needs::TlsClientCert);
                Ok(())
            }
            "ssl.truststore.location" | "ssl.ca.location" => {
                if v.is_empty() || v == "probe" {
                    self.tls.ca = None;
                } else {
                    self.tls.ca = Some(path());
                }
                Ok(())
            }
            "ssl.truststore.certificates" | "ssl.ca.pem" => {
                self.tls.ca = if v.is_empty() { None } else { Some(Pem::Inline(Secret::new(v))) };
                Ok(())
            }
            "ssl.keystore.location" => {
                // One PEM file with the private key and the certificate chain.
                let pem = if v.is_empty() { None } else { Some(path()) };
                self.tls.client_cert = pem.clone();
                self.tls.client_key = pem;
                Ok(())
            }
            "ssl.keystore.certificate.chain" | "ssl.certificate.pem" => {
                self.tls.client_cert = if v.is_empty() { None } else { Some(Pem::Inline(Secret::new(v))) };
                Ok(())
            }
            "ssl.keystore.key" | "ssl.key.pem" => {
                self.tls.client_key = if v.is_empty() { None } else { Some(Pem::Inline(Secret::new(v))) };
                Ok(())
            }
            "ssl.certificate.location" => {
                self.tls.client_cert = if v.is_empty() { None } else { Some(path()) };
                Ok(())
            }
            "ssl.key.location" => {
                self.tls.client_key = if v.is_empty() { None } else { Some(path()) };
                Ok(())
            }
            "ssl.endpoint.identification.algorithm" => {
                match v.to_ascii_lowercase().as_str() {
                    "https" => self.tls.verify_hostname = true,
                    "" | "none" => self.tls.verify_hostname = false,
                    _ => self.defer(
                        name,
                        "herald knows https, or empty to turn hostname verification off".to_owned(),
                        Needs::Tls,
                    ),
                }
                Ok(())
            }
            "ssl.enabled.protocols" => {
                let mut versions = Vec::new();
                let mut unknown = Vec::new();
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match p {
                        "TLSv1.2" => versions.push(TlsVersion::Tls12),
                        "TLSv1.3" => versions.push(TlsVersion::Tls13),
                        // Older versions are simply not offered, as a JVM that
                        // disables them does.
                        "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello" => {}
                        _ => unknown.push(p),
                    }
                }
                if let Some(p) = unknown.first() {
                    self.defer(
                        name,
                        format!("{p} is not a TLS version; herald speaks TLSv1.2 and TLSv1.3"),
                        Needs::Tls,
                    );
                } else if versions.is_empty() && !v.is_empty() {
                    self.defer(
                        name,
                        "herald speaks TLSv1.2 and TLSv1.3 only; name at least one".to_owned(),
                        Needs::Tls,
                    );
                } else if versions.is_empty() {
                    // Empty: the defaults, as Java's empty list leaves the JVM's.
                    self.tls.versions = TlsConfig::default().versions;
                } else {
                    self.tls.versions = versions;
                }
                Ok(())
            }
            "ssl.protocol" => {
                if !matches!(v.to_ascii_uppercase().as_str(), "TLS" | "TLSV1.2" | "TLSV1.3") {
                    self.defer(
                        name,
                        "herald knows TLS, TLSv1.2 and TLSv1.3 (ssl.enabled.protocols chooses)".to_owned(),
                        Needs::Tls,
                    );
                }
                Ok(())
            }
            "ssl.cipher.suites" => {
                self.tls.cipher_suites =
                    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                Ok(())
            }
            _ => return None,
        };
        Some(r)
    }

    fn defer(&mut self, property: &str, reason: String, when: Needs) {
        self.deferred.push(Deferred { property: property.to_owned(), reason, when });
    }

    fn defer_if(&mut self, property: &str, check: std::result::Result<(), String>, when: Needs) {
        if let Err(reason) = check {
            self.defer(property, reason, when);
        }
    }

    /// Checks the settings against each other.
    pub(crate) fn validate(&self) -> Result<()> {
        let tls = self.protocol.uses_tls();
        for d in &self.deferred {
            let matters = match d.when {
                Needs::Sasl => self.protocol.uses_sasl(),
                Needs::Tls => tls,
                Needs::TlsCa => tls && self.tls.ca.is_some(),
                Needs::TlsClientCert => {
                    tls && (self.tls.client_cert.is_some() || self.tls.client_key.is_some())
                }
            };
            if matters {
                return Err(Error::config(
                    &d.property,
                    format!("{} (security.protocol={})", d.reason, self.protocol),
                ));
            }
        }
        if !self.protocol.uses_sasl() {
            return Ok(());
        }
        let s = &self.sasl;
        let Some(m) = s.effective_mechanism() else {
            return Err(Error::config(
                "sasl.mechanism",
                format!(
                    "required with security.protocol={}; herald supports {SUPPORTED_MECHANISMS}",
                    self.protocol
                ),
            ));
        };
        match m {
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                if s.username.as_deref().is_none_or(str::is_empty) || s.password.is_none() {
                    return Err(Error::config(
                        "sasl.jaas.config",
                        format!(
                            "{m} needs a username and password: sasl.jaas.config with username=\"…\" \
                             password=\"…\", sasl.username/sasl.password, or ProducerBuilder::sasl_credentials"
                        ),
                    ));
                }
            }
            SaslMechanism::OAuthBearer => {
                if s.token_provider.is_none() && s.oidc.wanted() {
                    #[cfg(feature = "oidc")]
                    s.oidc.resolve()?;
                    #[cfg(not(feature = "oidc"))]
                    return Err(Error::config(
                        "sasl.oauthbearer.token.endpoint.url",
                        "the OIDC login needs herald's `oidc` feature, which this build leaves out",
                    ));
                } else if s.token_provider.is_none() {
                    return Err(Error::config(
                        "sasl.mechanism",
                        "OAUTHBEARER needs a token callback (ProducerBuilder::oauthbearer_token_provider) or an \
                         OIDC token endpoint (sasl.oauthbearer.token.endpoint.url with a client id and secret, \
                         KIP-768)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a `sasl.jaas.config` value says.
#[derive(Debug, Default)]
struct Jaas {
    mechanism: Option<SaslMechanism>,
    username: Option<String>,
    password: Option<Secret>,
    /// OAuthBearerLoginModule's `clientId`, `clientSecret` and `scope` (KIP-768).
    client_id: Option<String>,
    client_secret: Option<Secret>,
    scope: Option<String>,
}

/// Parses `org.apache.kafka.common.security.plain.PlainLoginModule required
/// username="alice" password="secret";` (ScramLoginModule and
/// OAuthBearerLoginModule too): the login module, then `key=value` options with
/// quoted or bare values, then `;`.
fn parse_jaas(v: &str) -> std::result::Result<Jaas, String> {
    let bad = |why: &str| {
        format!(
            "{why}; expected e.g. org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"alice\" password=\"…\";"
        )
    };
    let mut rest = v.trim();
    let module_end =
        rest.find(char::is_whitespace).ok_or_else(|| bad("no control flag after the login module"))?;
    let module = &rest[..module_end];
    rest = rest[module_end..].trim_start();
    let flag_end = rest.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(rest.len());
    let flag = &rest[..flag_end];
    if !matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        return Err(bad(&format!(
            "{flag:?} is not a control flag (required, requisite, sufficient, optional)"
        )));
    }
    rest = &rest[flag_end..];
    let mechanism = match module.rsplit('.').next().unwrap_or(module) {
        "PlainLoginModule" => Some(SaslMechanism::Plain),
        "ScramLoginModule" => None, // SHA-256 or SHA-512: sasl.mechanism says
        "OAuthBearerLoginModule" => Some(SaslMechanism::OAuthBearer),
        other => return Err(bad(&format!("login module {other} is not supported"))),
    };
    let mut jaas = Jaas { mechanism, ..Jaas::default() };
    let mut ended = false;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if ended {
            return Err(bad("text after the closing ';' (herald takes one login module)"));
        }
        if let Some(r) = rest.strip_prefix(';') {
            ended = true;
            rest = r;
            continue;
        }
        let eq = rest.find('=').ok_or_else(|| bad("an option without '='"))?;
        let key = rest[..eq].trim();
        rest = &rest[eq + 1..];
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| bad(&format!("the value of {key} has no closing quote")))?;
            value = out;
            rest = &r[end..];
        } else {
            let end = rest.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(rest.len());
            value = rest[..end].to_owned();
            rest = &rest[end..];
        }
        match key {
            "username" => jaas.username = Some(value),
            "password" => jaas.password = Some(Secret::new(value)),
            "clientId" => jaas.client_id = Some(value),
            "clientSecret" => jaas.client_secret = Some(Secret::new(value)),
            "scope" => jaas.scope = Some(value),
            _ => {} // other options (e.g. tokenauth, unsecuredLoginStringClaim_sub) are not herald's
        }
    }
    if !ended {
        return Err(bad("missing the closing ';'"));
    }
    Ok(jaas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_plain_and_scram_parse() {
        let j = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3 \"cr;et";"#,
        )
        .unwrap();
        assert_eq!(j.mechanism, Some(SaslMechanism::Plain));
        assert_eq!(j.username.as_deref(), Some("alice"));
        assert_eq!(j.password.unwrap().expose(), "s3 \"cr;et");
        let j = parse_jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=bob\n  password=\"pw\"\n;",
        )
        .unwrap();
        assert_eq!(j.mechanism, None);
        assert_eq!(j.username.as_deref(), Some("bob"));
        let j = parse_jaas(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"x\";",
        )
        .unwrap();
        assert_eq!(j.mechanism, Some(SaslMechanism::OAuthBearer));
    }

    #[test]
    fn jaas_errors_are_clear() {
        for (bad, why) in [
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\"",
                "closing ';'",
            ),
            ("org.apache.kafka.common.security.plain.PlainLoginModule maybe;", "control flag"),
            ("com.sun.security.auth.module.Krb5LoginModule required;", "not supported"),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"x;",
                "closing quote",
            ),
        ] {
            let e = parse_jaas(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn secrets_are_masked_in_debug() {
        let mut c = SecurityConfig::default();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"hunter2-pw\";",
            ),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----\nMIIEvKEYBYTES\n-----END PRIVATE KEY-----"),
        ] {
            c.set(k, v).unwrap().unwrap();
        }
        c.validate().unwrap();
        let dump = format!("{c:?} {c:#?}");
        assert!(!dump.contains("hunter2-pw"), "{dump}");
        assert!(!dump.contains("MIIEvKEYBYTES"), "{dump}");
        assert!(dump.contains("alice") && dump.contains("****"), "{dump}");
        let t = OAuthBearerToken::new("eyJ.secret-token.x", SystemTime::now());
        assert!(!format!("{t:?}").contains("secret-token"));
    }

    #[test]
    fn mechanisms_and_stores_are_checked() {
        let mut c = SecurityConfig::default();
        // Java's defaults (and other values only TLS or SASL use) are accepted
        // while neither is in use, as Java accepts them ...
        for (k, v) in [
            ("sasl.mechanism", "GSSAPI"),
            ("ssl.truststore.type", "JKS"),
            ("ssl.keystore.type", "JKS"),
            ("ssl.truststore.password", "changeit"),
            ("ssl.protocol", "TLSv1.1"),
            ("ssl.enabled.protocols", "TLSv1.1"),
            ("ssl.endpoint.identification.algorithm", "ldaps"),
            ("sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required;"),
        ] {
            c.set(k, v).unwrap().unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        c.validate().unwrap();
        // ... and refused once they would be used.
        c.set("security.protocol", "SASL_PLAINTEXT").unwrap().unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("sasl.mechanism") && e.contains("Kerberos") && e.contains("SCRAM-SHA-512"), "{e}");
        c.set("sasl.mechanism", "FOO").unwrap().unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("sasl.jaas.config") && e.contains("Krb5LoginModule"), "{e}");
        c.set("sasl.jaas.config", "").unwrap().unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"), "{e}");
        c.set("sasl.mechanism", "PLAIN").unwrap().unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("username and password"));
        c.set("sasl.username", "u").unwrap().unwrap();
        c.set("sasl.password", "p").unwrap().unwrap();
        c.validate().unwrap();
        c.set("sasl.mechanism", "OAUTHBEARER").unwrap().unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("token callback"));

        let mut c = SecurityConfig::default();
        c.set("security.protocol", "SSL").unwrap().unwrap();
        c.set("ssl.truststore.type", "JKS").unwrap().unwrap();
        c.validate().unwrap(); // no truststore: the default roots, as Java's JVM default
        c.set("ssl.truststore.location", "/tmp/ca.jks").unwrap().unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ssl.truststore.type") && e.contains("PEM"), "{e}");
        c.set("ssl.truststore.type", "PEM").unwrap().unwrap();
        c.validate().unwrap();
        c.set("ssl.enabled.protocols", "TLSv1.1").unwrap().unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("TLSv1.2 and TLSv1.3"));
        c.set("ssl.enabled.protocols", "TLSv1.1,TLSv1.3").unwrap().unwrap();
        c.validate().unwrap();
        assert_eq!(c.tls.versions, [TlsVersion::Tls13]);
        c.set("ssl.enabled.protocols", "").unwrap().unwrap();
        assert_eq!(c.tls.versions, [TlsVersion::Tls12, TlsVersion::Tls13]);
        c.set("ssl.enabled.protocols", "TLSv9").unwrap().unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("TLSv9"));
        c.set("ssl.enabled.protocols", "TLSv1.2").unwrap().unwrap();
        c.set("ssl.key.password", "pw").unwrap().unwrap();
        c.validate().unwrap(); // no client certificate: the key password is not used
        c.set("ssl.keystore.location", "/tmp/client.pem").unwrap().unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ssl.key.password") && !e.contains("pw"), "{e}");
        c.set("ssl.key.password", "").unwrap().unwrap();
        c.validate().unwrap();
        assert!(c.set("ssl.endpoint.identification.algorithm", "").unwrap().is_ok());
        assert!(!c.tls.verify_hostname);
        assert!(c.set("linger.ms", "5").is_none());
    }

    #[test]
    fn oidc_login_settings_from_java_and_librdkafka_names() {
        let oauth = |pairs: &[(&str, &str)]| {
            let mut c = SecurityConfig::default();
            c.set("security.protocol", "SASL_SSL").unwrap().unwrap();
            for (k, v) in pairs {
                c.set(k, v).unwrap().unwrap_or_else(|e| panic!("{k}: {e}"));
            }
            c
        };
        // Java: the login module's options, the callback handler and the URL.
        let c = oauth(&[
            ("sasl.mechanism", "OAUTHBEARER"),
            (
                "sasl.login.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
            ),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example.com/token"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 clientId=\"app\" clientSecret=\"s3cret-value\" scope=\"kafka\";",
            ),
        ]);
        c.validate().unwrap();
        assert!(c.sasl.oidc.wanted());
        assert!(!format!("{c:?}").contains("s3cret-value"));
        #[cfg(feature = "oidc")]
        {
            let r = c.sasl.oidc.resolve().unwrap();
            assert_eq!((r.client_id.as_str(), r.scope.as_deref()), ("app", Some("kafka")));
            assert_eq!(r.client_secret.expose(), "s3cret-value");
        }
        // librdkafka's names; the properties win over the JAAS options (Java's
        // ConfigOrJaas).
        let mut c = oauth(&[
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "OIDC"),
            ("sasl.oauthbearer.token.endpoint.url", "http://127.0.0.1:1/token"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=jaas;",
            ),
            ("sasl.oauthbearer.client.credentials.client.id", "prop"),
            ("sasl.oauthbearer.client.credentials.client.secret", "pw"),
            ("sasl.login.connect.timeout.ms", "-1"),
            ("sasl.login.retry.backoff.max.ms", "2500"),
        ]);
        c.validate().unwrap();
        assert_eq!(c.sasl.oidc.connect_timeout, OidcConfig::default().connect_timeout);
        assert_eq!(c.sasl.oidc.retry_backoff_max, Duration::from_millis(2500));
        #[cfg(feature = "oidc")]
        assert_eq!(c.sasl.oidc.resolve().unwrap().client_id, "prop");
        // method=default: a token callback is needed, whatever the URL says.
        c.set("sasl.oauthbearer.method", "default").unwrap().unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("token callback"));
        assert!(c.set("sasl.oauthbearer.method", "kerberos").unwrap().is_err());
        assert!(c.set("sasl.login.callback.handler.class", "com.example.Handler").unwrap().is_err());

        // What is missing is named.
        #[cfg(feature = "oidc")]
        for (pairs, names) in [
            (vec![("sasl.oauthbearer.method", "oidc")], "sasl.oauthbearer.token.endpoint.url"),
            (vec![("sasl.oauthbearer.token.endpoint.url", "file:///tmp/token.jwt")], "http or https"),
            (
                vec![("sasl.oauthbearer.token.endpoint.url", "https://idp/token")],
                "sasl.oauthbearer.client.credentials.client.id",
            ),
            (
                vec![
                    ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
                    ("sasl.oauthbearer.client.credentials.client.id", "x"),
                ],
                "clientSecret",
            ),
        ] {
            let mut all = vec![("sasl.mechanism", "OAUTHBEARER")];
            all.extend(pairs);
            let e = oauth(&all).validate().unwrap_err().to_string();
            assert!(e.contains(names), "{all:?}: {e}");
        }
    }

    #[test]
    fn jaas_module_implies_the_mechanism() {
        let mut c = SecurityConfig::default();
        c.set("security.protocol", "SASL_SSL").unwrap().unwrap();
        c.set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"b\";",
        )
        .unwrap()
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.sasl.effective_mechanism(), Some(SaslMechanism::Plain));
    }
}
