//! OAUTHBEARER login with an OAuth 2.0 / OIDC token endpoint (KIP-768): the
//! client-credentials grant (RFC 6749 §4.4) as Java's `OAuthBearerLoginCallbackHandler`
//! (`ClientCredentialsJwtRetriever`) and librdkafka's `sasl.oauthbearer.method=oidc`
//! send it, behind the same [`TokenProvider`] path as a token callback: the
//! [`Authenticator`](super::sasl::Authenticator) caches the token, asks again
//! once it is past its refresh window, and at every re-authentication (KIP-368).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;

use super::{OAuthBearerToken, OidcConfig, Secret, TlsConfig, TokenProvider};
use crate::error::{Error, Result};

/// One token endpoint and the client's credentials for it.
struct Fetcher {
    http: reqwest::Client,
    url: String,
    authorization: Secret,
    body: String,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    reason: String,
    retriable: bool,
}

/// The token provider for `oidc`'s endpoint. `tls` is used for an `https` URL.
pub(crate) fn provider(oidc: &ResolvedOidc, tls: &TlsConfig) -> Result<TokenProvider> {
    let mut http = reqwest::Client::builder()
        .connect_timeout(oidc.connect_timeout)
        .read_timeout(oidc.read_timeout)
        .timeout(oidc.connect_timeout + oidc.read_timeout)
        .redirect(reqwest::redirect::Policy::none());
    if oidc.url.starts_with("https:") {
        http = http.use_preconfigured_tls(super::tls::client_config(tls)?);
    }
    let http = http.build().map_err(|e| {
        Error::config("sasl.oauthbearer.token.endpoint.url", format!("cannot set up an HTTP client: {e}"))
    })?;
    let (id, secret) = if oidc.header_urlencode {
        (form_encode(&oidc.client_id), form_encode(oidc.client_secret.expose()))
    } else {
        (oidc.client_id.clone(), oidc.client_secret.expose().to_owned())
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut body = "grant_type=client_credentials".to_owned();
    if let Some(scope) = oidc.scope.as_deref().filter(|s| !s.is_empty()) {
        body.push_str("&scope=");
        body.push_str(&form_encode(scope));
    }
    let f = Arc::new(Fetcher {
        http,
        url: oidc.url.clone(),
        authorization: Secret::new(format!("Basic {basic}")),
        body,
        retry_backoff: oidc.retry_backoff,
        retry_backoff_max: oidc.retry_backoff_max,
    });
    Ok(TokenProvider::new(move || {
        let f = f.clone();
        async move { f.fetch().await }
    }))
}

impl Fetcher {
    /// Asks the endpoint for a token, retrying connection failures and 5xx
    /// answers with exponential backoff for up to `retry_backoff_max` in all
    /// (Java's `sasl.login.retry.backoff.ms` / `.max.ms`).
    async fn fetch(&self) -> std::result::Result<OAuthBearerToken, String> {
        let end = Instant::now() + self.retry_backoff_max;
        let mut wait = self.retry_backoff;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let failure = match self.attempt().await {
                Ok(token) => return parse_token(&self.url, &token),
                Err(f) => f,
            };
            let left = end.saturating_duration_since(Instant::now());
            if !failure.retriable || left.is_zero() {
                let tries = if attempts > 1 { format!(" ({attempts} attempts)") } else { String::new() };
                return Err(format!("{}{tries}", failure.reason));
            }
            tracing::debug!(url = %self.url, attempts, reason = %failure.reason, "token request failed; retrying");
            tokio::time::sleep(wait.min(left)).await;
            wait = wait.saturating_mul(2);
        }
    }

    /// One POST; the response body on success.
    async fn attempt(&self) -> std::result::Result<String, Failure> {
        let url = &self.url;
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::CACHE_CONTROL, "no-cache")
            .body(self.body.clone())
            .send()
            .await
            .map_err(|e| Failure {
                reason: format!("cannot reach the token endpoint {url}: {}", causes(&e)),
                retriable: true,
            })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| Failure {
            reason: format!("reading the answer of the token endpoint {url}: {}", causes(&e)),
            retriable: true,
        })?;
        if status.is_success() {
            return Ok(text);
        }
        // RFC 6749 §5.2: {"error": ..., "error_description": ...}.
        let detail = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) if v.get("error").is_some() => {
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
                format!("{} {}", s("error"), s("error_description")).trim().to_owned()
            }
            _ => text.chars().take(200).collect::<String>().trim().to_owned(),
        };
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
            " (check the client id and secret)"
        } else {
            ""
        };
        Err(Failure {
            reason: format!("the token endpoint {url} answered HTTP {status}{hint}: {detail}")
                .trim()
                .to_owned(),
            retriable: status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
        })
    }
}

/// The token in a token endpoint's answer (`access_token`), with its expiry: the
/// JWT's `exp` claim (read without checking the signature, as Java does: the
/// broker checks it), else `expires_in`.
fn parse_token(url: &str, body: &str) -> std::result::Result<OAuthBearerToken, String> {
    let bad = |why: String| format!("the token endpoint {url} answered 200 but {why}");
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| bad(format!("not with JSON: {e}")))?;
    let token = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("without an access_token".to_owned()))?;
    let now = SystemTime::now();
    let claims = jwt_claims(token);
    let exp = claims.as_ref().and_then(|c| c.get("exp")).and_then(|e| e.as_f64());
    let expires_at = match (exp, v.get("expires_in").and_then(|e| e.as_f64())) {
        (Some(exp), _) => UNIX_EPOCH + Duration::from_secs_f64(exp.max(0.0)),
        (None, Some(secs)) => now + Duration::from_secs_f64(secs.max(0.0)),
        (None, None) => {
            return Err(bad("its token has no exp claim and the answer no expires_in".to_owned()));
        }
    };
    if expires_at <= now {
        let ago = now.duration_since(expires_at).unwrap_or_default().as_secs();
        let what = match exp {
            Some(exp) => format!("its exp claim {exp}"),
            None => "expires_in".to_owned(),
        };
        return Err(format!(
            "the token from {url} has expired: {what} is {ago} s in the past (check the endpoint's \
             token lifetime and this machine's clock)"
        ));
    }
    let sub = claims.as_ref().and_then(|c| c.get("sub")).and_then(|s| s.as_str()).unwrap_or("");
    tracing::debug!(url, sub, expires_in = ?expires_at.duration_since(now).unwrap_or_default(), "OAUTHBEARER token from the token endpoint");
    Ok(OAuthBearerToken::new(token, expires_at))
}

/// The claims of a JWS compact serialization (`header.payload.signature`), or
/// `None` for an opaque token.
fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An error's causes, as one line (reqwest's own message, "error sending request
/// for url (...)", says less than they do).
fn causes(e: &dyn std::error::Error) -> String {
    let Some(first) = e.source() else { return e.to_string() };
    let mut out = first.to_string();
    let mut cur = first.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// The settings of an OIDC login once the properties and `sasl.jaas.config` are
/// put together.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedOidc {
    pub(crate) url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) scope: Option<String>,
    pub(crate) header_urlencode: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
}

impl OidcConfig {
    /// The client id: the property, else `sasl.jaas.config`'s (as Java's
    /// `ConfigOrJaas` prefers the property).
    fn effective_client_id(&self) -> Option<String> {
        self.client_id.clone().or_else(|| self.jaas_client_id.clone())
    }

    fn effective_client_secret(&self) -> Option<Secret> {
        self.client_secret.clone().or_else(|| self.jaas_client_secret.clone())
    }

    fn effective_scope(&self) -> Option<String> {
        self.scope.clone().filter(|s| !s.is_empty()).or_else(|| self.jaas_scope.clone())
    }

    /// The settings, or which property is missing or wrong.
    pub(crate) fn resolve(&self) -> Result<ResolvedOidc> {
        const URL: &str = "sasl.oauthbearer.token.endpoint.url";
        let url = self.token_endpoint_url.as_deref().map(str::trim).unwrap_or_default();
        if url.is_empty() {
            return Err(Error::config(
                URL,
                "required for the OIDC login (sasl.oauthbearer.method=oidc): the OAuth 2.0 token endpoint, \
                 e.g. https://idp.example.com/oauth2/token",
            ));
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::config(URL, format!("{url}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::config(
                URL,
                format!(
                    "{url}: herald fetches tokens over http or https (Java's file: URLs, a token read from a \
                     file, are not supported: pass such a token with ProducerBuilder::oauthbearer_token_provider)"
                ),
            ));
        }
        let client_id = self.effective_client_id().unwrap_or_default();
        if client_id.is_empty() {
            return Err(Error::config(
                "sasl.oauthbearer.client.credentials.client.id",
                "the OIDC login needs a client id: sasl.jaas.config's clientId=\"…\", \
                 sasl.oauthbearer.client.credentials.client.id or librdkafka's sasl.oauthbearer.client.id",
            ));
        }
        let Some(client_secret) = self.effective_client_secret().filter(|s| !s.is_empty()) else {
            return Err(Error::config(
                "sasl.oauthbearer.client.credentials.client.secret",
                "the OIDC login needs a client secret: sasl.jaas.config's clientSecret=\"…\", \
                 sasl.oauthbearer.client.credentials.client.secret or librdkafka's sasl.oauthbearer.client.secret",
            ));
        };
        Ok(ResolvedOidc {
            url: url.to_owned(),
            client_id,
            client_secret,
            scope: self.effective_scope(),
            header_urlencode: self.header_urlencode,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            retry_backoff: self.retry_backoff,
            retry_backoff_max: self.retry_backoff_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", b.encode(r#"{"alg":"RS256"}"#), b.encode(claims))
    }

    #[test]
    fn expiry_comes_from_exp_then_expires_in() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let body =
            format!(r#"{{"access_token":"{}","expires_in":5}}"#, jwt(&format!(r#"{{"exp":{}}}"#, now + 100)));
        let t = parse_token("u", &body).unwrap();
        assert_eq!(t.expires_at, UNIX_EPOCH + Duration::from_secs(now + 100));
        let t = parse_token("u", r#"{"access_token":"opaque","expires_in":60}"#).unwrap();
        assert!(t.expires_at > SystemTime::now() + Duration::from_secs(50));
        let e = parse_token("u", r#"{"access_token":"opaque"}"#).unwrap_err();
        assert!(e.contains("no exp claim"), "{e}");
        let body = format!(r#"{{"access_token":"{}"}}"#, jwt(&format!(r#"{{"exp":{}}}"#, now - 60)));
        let e = parse_token("http://idp/token", &body).unwrap_err();
        assert!(e.contains("has expired") && e.contains("http://idp/token"), "{e}");
        assert!(parse_token("u", "{}").unwrap_err().contains("access_token"));
        assert!(parse_token("u", "<html>").unwrap_err().contains("JSON"));
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("kafka.read-write_x*"), "kafka.read-write_x*");
    }
}
