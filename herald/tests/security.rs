//! TLS and SASL against a real secured Kafka broker (`harness/kafka start --secure`).
//!
//! These tests need that broker: `scripts/test.sh`'s `security` phase starts it and
//! runs them with `HERALD_TEST_SECURE` set to its description (`secure.env`). They
//! are `#[ignore]`d otherwise, so a plain `cargo test` lists them as ignored (not
//! run), never as passed; `--include-ignored` without the variable fails loudly.
//!
//! Each listener and mechanism gets a produce and read-back; SASL_SSL is also read
//! back by the Java consumer, byte for byte; re-authentication (KIP-368) is
//! exercised across several 10 s session lifetimes; and each misconfiguration
//! asserts its own error, within seconds.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use herald::{
    Admin, Error, ErrorKind, NewTopic, OAuthBearerToken, Producer, ProducerBuilder, Record, TopicReader,
};

/// The secured broker's description (`harness/kafka secure-env`).
struct Secure(HashMap<String, String>);

impl Secure {
    fn load() -> Secure {
        let path = std::env::var("HERALD_TEST_SECURE").unwrap_or_else(|_| {
            panic!(
                "HERALD_TEST_SECURE is not set: start a secured broker with `harness/kafka start --name sec --secure` \
                 and set HERALD_TEST_SECURE=$(harness/kafka secure-env --name sec) (scripts/test.sh does)"
            )
        });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        Secure(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> &str {
        self.0.get(key).unwrap_or_else(|| panic!("{key} missing from HERALD_TEST_SECURE"))
    }

    /// Properties for `listener` with `protocol` (and more).
    fn props<'a>(&'a self, listener: &str, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
        let mut p = vec![("bootstrap.servers", self.get(listener).to_owned())];
        p.extend(extra.iter().cloned());
        p
    }

    fn tls(&self) -> Vec<(&'static str, String)> {
        vec![("ssl.truststore.type", "PEM".into()), ("ssl.truststore.location", self.get("CA_PEM").into())]
    }

    /// `security.protocol=SSL` trusting the harness's CA.
    fn ssl(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("security.protocol", "SSL".to_owned())];
        v.extend(self.tls());
        v
    }

    fn jaas(&self, module: &str, password: &str) -> String {
        format!(
            "org.apache.kafka.common.security.{module} required username=\"{}\" password=\"{password}\";",
            self.get("USER")
        )
    }

    fn scram(&self, mechanism: &str, password: &str) -> Vec<(&'static str, String)> {
        vec![
            ("sasl.mechanism", mechanism.into()),
            ("sasl.jaas.config", self.jaas("scram.ScramLoginModule", password)),
        ]
    }

    fn plain(&self, password: &str) -> Vec<(&'static str, String)> {
        vec![
            ("sasl.mechanism", "PLAIN".into()),
            ("sasl.jaas.config", self.jaas("plain.PlainLoginModule", password)),
        ]
    }
}

fn builder(props: &[(&str, String)]) -> ProducerBuilder {
    let mut b = Producer::builder()
        .max_block(Duration::from_secs(20))
        .delivery_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(10));
    for (k, v) in props {
        b = b.set(k, v);
    }
    b
}

/// A topic made over the broker's PLAINTEXT listener.
async fn topic(s: &Secure, prefix: &str) -> String {
    let name = support::topic_name(prefix);
    let admin = Admin::new(s.get("PLAINTEXT")).expect("admin");
    admin.create_topic(NewTopic::new(name.clone(), 2, 1)).await.expect("create topic");
    name
}

fn values(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}-\u{1F512}").into_bytes()).collect()
}

/// Produces `values` with `p`, then reads the topic back over the same listener
/// and settings with herald's reader, and checks every value arrived once.
async fn produce_and_read_back(p: &Producer, props: &[(&str, String)], topic: &str, values: &[Vec<u8>]) {
    let mut futures = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let r = Record::new(topic).key(format!("k{i}")).value(v.clone()).header("h", "x");
        futures.push(p.send(r).await.expect("send accepted"));
    }
    for f in futures {
        f.await.expect("delivered");
    }
    let reader = TopicReader::from_properties(props.iter().map(|(k, v)| (*k, v.as_str()))).expect("reader");
    let mut got: Vec<Vec<u8>> = reader
        .read_to_end(topic)
        .await
        .expect("read back")
        .into_iter()
        .map(|r| r.value.unwrap().to_vec())
        .collect();
    let mut want = values.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "read back over the same listener");
}

async fn round_trip(props: Vec<(&str, String)>, tag: &str) {
    let s = Secure::load();
    let t = topic(&s, tag).await;
    let p = builder(&props).build().expect("producer");
    produce_and_read_back(&p, &props, &t, &values(50, tag)).await;
    p.close(Duration::from_secs(30)).await.expect("close");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn ssl_produce_and_read_back() {
    let s = Secure::load();
    let extra = s.ssl();
    round_trip(s.props("SSL", &extra), "ssl").await;
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn mtls_with_pem_keystore_produces_and_reads_back() {
    let s = Secure::load();
    let mut extra = vec![
        ("security.protocol", "SSL".to_owned()),
        ("ssl.keystore.type", "PEM".to_owned()),
        ("ssl.keystore.location", s.get("CLIENT_KEYSTORE_PEM").to_owned()),
    ];
    extra.extend(s.tls());
    round_trip(s.props("MTLS", &extra), "mtls").await;
    // librdkafka's names for separate certificate and key files work the same.
    let extra = vec![
        ("security.protocol", "SSL".to_owned()),
        ("ssl.ca.location", s.get("CA_PEM").to_owned()),
        ("ssl.certificate.location", s.get("CLIENT_CERT_PEM").to_owned()),
        ("ssl.key.location", s.get("CLIENT_KEY_PEM").to_owned()),
    ];
    round_trip(s.props("MTLS", &extra), "mtls-rdk").await;
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn sasl_plaintext_plain() {
    let s = Secure::load();
    let mut extra = vec![("security.protocol", "SASL_PLAINTEXT".to_owned())];
    extra.extend(s.plain(s.get("PASSWORD")));
    round_trip(s.props("SASL_PLAINTEXT", &extra), "plain").await;
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn sasl_plaintext_scram_sha256() {
    let s = Secure::load();
    let mut extra = vec![("security.protocol", "SASL_PLAINTEXT".to_owned())];
    extra.extend(s.scram("SCRAM-SHA-256", s.get("PASSWORD")));
    round_trip(s.props("SASL_PLAINTEXT", &extra), "scram256").await;
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn sasl_plaintext_scram_sha512_with_librdkafka_names() {
    let s = Secure::load();
    let extra = vec![
        ("security.protocol", "SASL_PLAINTEXT".to_owned()),
        ("sasl.mechanisms", "SCRAM-SHA-512".to_owned()),
        ("sasl.username", s.get("USER").to_owned()),
        ("sasl.password", s.get("PASSWORD").to_owned()),
    ];
    round_trip(s.props("SASL_PLAINTEXT", &extra), "scram512").await;
}

/// An unsigned JWT (`"alg":"none"`) for the broker's default, unsecured
/// OAUTHBEARER validator.
fn unsecured_jwt(lifetime: Duration) -> OAuthBearerToken {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let exp = now + lifetime;
    let header = b64.encode(br#"{"alg":"none"}"#);
    let claims = b64.encode(format!(r#"{{"sub":"admin","iat":{},"exp":{}}}"#, now.as_secs(), exp.as_secs()));
    OAuthBearerToken::new(format!("{header}.{claims}."), UNIX_EPOCH + exp)
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn sasl_plaintext_oauthbearer() {
    let s = Secure::load();
    let props = s.props("SASL_PLAINTEXT", &[("security.protocol", "SASL_PLAINTEXT".to_owned())]);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let p = builder(&props)
        .oauthbearer_token_provider(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async { Ok(unsecured_jwt(Duration::from_secs(3600))) }
        })
        .build()
        .expect("producer");
    let t = topic(&s, "oauth").await;
    let vals = values(30, "oauth");
    let mut futures = Vec::new();
    for v in &vals {
        futures.push(p.send(Record::new(&t).value(v.clone())).await.expect("send accepted"));
    }
    for f in futures {
        f.await.expect("delivered over OAUTHBEARER");
    }
    assert!(calls.load(Ordering::SeqCst) >= 1, "the token callback was used");
    p.close(Duration::from_secs(30)).await.unwrap();
    // Read back over the PLAINTEXT listener (the reader has no token callback).
    let got = TopicReader::new(s.get("PLAINTEXT")).unwrap().read_to_end(&t).await.unwrap();
    assert_eq!(got.len(), vals.len());
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn sasl_ssl_scram_read_back_by_the_java_consumer_byte_for_byte() {
    let s = Secure::load();
    let mut extra = vec![("security.protocol", "SASL_SSL".to_owned())];
    extra.extend(s.tls());
    extra.extend(s.scram("SCRAM-SHA-512", s.get("PASSWORD")));
    let props = s.props("SASL_SSL", &extra);
    let t = topic(&s, "saslssl").await;
    let p = builder(&props).build().expect("producer");
    // Binary keys and values, and a null value, to compare byte for byte.
    let mut sent = Vec::new();
    for i in 0..40u32 {
        let key: Vec<u8> = (0..(i % 7)).map(|j| (i * 31 + j) as u8).collect();
        let value: Option<Vec<u8>> =
            (i % 10 != 3).then(|| (0..(i * 13 % 300)).map(|j| (j ^ i) as u8).collect());
        let r =
            Record::new(&t).key(key.clone()).value_opt(value.clone()).header("n", i.to_string()).partition(0);
        sent.push((key, value));
        p.send(r).await.expect("send accepted").await.expect("delivered");
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    let args = vec![
        "--bootstrap".to_owned(),
        s.get("SASL_SSL").to_owned(),
        "--topic".to_owned(),
        t.clone(),
        "--timeout-ms".to_owned(),
        "60000".to_owned(),
        "--property".to_owned(),
        "security.protocol=SASL_SSL".to_owned(),
        "--property".to_owned(),
        "sasl.mechanism=SCRAM-SHA-512".to_owned(),
        "--property".to_owned(),
        format!("sasl.jaas.config={}", s.jaas("scram.ScramLoginModule", s.get("PASSWORD"))),
        "--property".to_owned(),
        "ssl.truststore.type=PEM".to_owned(),
        "--property".to_owned(),
        format!("ssl.truststore.location={}", s.get("CA_PEM")),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::java("dev.herald.tools.VerifyConsumer", &args, None).await;
    let got: Vec<support::Consumed> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("VerifyConsumer line"))
        .collect();
    assert_eq!(got.len(), sent.len());
    for (i, (c, (k, v))) in got.iter().zip(&sent).enumerate() {
        assert_eq!(c.offset, i as i64);
        assert_eq!(c.key.as_deref(), Some(k.as_slice()), "key {i}");
        assert_eq!(&c.value, v, "value {i}");
        assert_eq!(c.headers[0].value.as_deref(), Some(i.to_string().as_bytes()));
    }
}

/// KIP-368: the REAUTH listener sets a 10 s session lifetime. A producer that runs
/// for more than two lifetimes must re-authenticate on its connections (the token
/// callback is called again: the token itself lasts an hour, so only
/// re-authentication asks for a new one) and lose nothing; a broker whose session
/// expired would close the connection instead.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn reauthenticates_before_the_session_expires() {
    let s = Secure::load();
    let reauth_ms: u64 = s.get("REAUTH_MS").parse().unwrap();
    let props = s.props("REAUTH", &[("security.protocol", "SASL_PLAINTEXT".to_owned())]);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let p = builder(&props)
        .oauthbearer_token_provider(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async { Ok(unsecured_jwt(Duration::from_secs(3600))) }
        })
        .build()
        .expect("producer");
    // And PLAIN on the same listener, side by side.
    let mut plain_props = props.clone();
    plain_props.extend(s.plain(s.get("PASSWORD")));
    let plain = builder(&plain_props).build().expect("PLAIN producer");
    let t = topic(&s, "reauth").await;
    let run_for = Duration::from_millis(reauth_ms * 25 / 10);
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < run_for {
        p.send(Record::new(&t).value(format!("o{n}")))
            .await
            .unwrap()
            .await
            .expect("OAUTHBEARER record delivered");
        plain
            .send(Record::new(&t).value(format!("p{n}")))
            .await
            .unwrap()
            .await
            .expect("PLAIN record delivered");
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token_calls = calls.load(Ordering::SeqCst);
    assert!(
        token_calls >= 3,
        "expected re-authentications (fresh tokens) over {run_for:?} of {reauth_ms} ms sessions, got {token_calls} token calls"
    );
    p.close(Duration::from_secs(30)).await.unwrap();
    plain.close(Duration::from_secs(30)).await.unwrap();
    let got = TopicReader::new(s.get("PLAINTEXT")).unwrap().read_to_end(&t).await.unwrap();
    assert_eq!(got.len(), 2 * n, "every record once");
}

/// Sends one record with `props` and returns the error, checking it came within
/// 10 s (the producer's own limits are 20 s and more).
async fn first_error(props: &[(&str, String)]) -> Error {
    let s = Secure::load();
    let t = topic(&s, "bad").await;
    let p = builder(props).build().expect("producer");
    let start = Instant::now();
    let r = match p.send(Record::new(&t).value("x")).await {
        Ok(delivery) => delivery.await.map(|_| ()),
        Err(e) => Err(e),
    };
    let took = start.elapsed();
    let e = r.expect_err("the record must fail");
    assert!(took < Duration::from_secs(10), "failed after {took:?}, not fast: {e}");
    assert!(!e.is_retriable(), "{e}");
    let _ = p.close(Duration::from_secs(5)).await;
    e
}

fn assert_kind(e: &Error, tls: bool, needle: &str) {
    let ok = if tls {
        matches!(e.kind(), ErrorKind::Tls { .. })
    } else {
        matches!(e.kind(), ErrorKind::Authentication { .. })
    };
    assert!(ok, "wrong kind: {:?}", e.kind());
    assert!(e.to_string().contains(needle), "{e:?} does not say {needle:?}");
    assert!(e.to_string().contains("127.0.0.1:"), "{e} does not name the broker");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn wrong_password_fails_fast() {
    let s = Secure::load();
    let mut extra = vec![("security.protocol", "SASL_PLAINTEXT".to_owned())];
    extra.extend(s.scram("SCRAM-SHA-256", "not-the-password"));
    let e = first_error(&s.props("SASL_PLAINTEXT", &extra)).await;
    assert_kind(&e, false, "SCRAM-SHA-256 authentication failed");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    let mut extra = vec![("security.protocol", "SASL_SSL".to_owned())];
    extra.extend(s.tls());
    extra.extend(s.plain("not-the-password"));
    let e = first_error(&s.props("SASL_SSL", &extra)).await;
    assert_kind(&e, false, "PLAIN authentication failed");
    assert!(!format!("{e:?}").contains("not-the-password"), "{e:?}");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn mechanism_the_listener_does_not_enable_fails_fast() {
    let s = Secure::load();
    let mut extra = vec![("security.protocol", "SASL_PLAINTEXT".to_owned())];
    extra.extend(s.scram("SCRAM-SHA-512", s.get("PASSWORD")));
    let e = first_error(&s.props("REAUTH", &extra)).await;
    assert_kind(&e, false, "does not enable SCRAM-SHA-512");
    assert!(e.to_string().contains("PLAIN"), "names the enabled ones: {e}");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn untrusted_ca_fails_fast() {
    let s = Secure::load();
    let extra = vec![
        ("security.protocol", "SSL".to_owned()),
        ("ssl.truststore.type", "PEM".to_owned()),
        ("ssl.truststore.location", s.get("OTHER_CA_PEM").to_owned()),
    ];
    let e = first_error(&s.props("SSL", &extra)).await;
    assert_kind(&e, true, "not signed by a trusted CA");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn expired_certificate_fails_fast() {
    let s = Secure::load();
    let extra = s.ssl();
    let e = first_error(&s.props("EXPIRED", &extra)).await;
    assert_kind(&e, true, "has expired");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn hostname_mismatch_fails_fast_unless_verification_is_off() {
    let s = Secure::load();
    let mut extra = s.ssl();
    let e = first_error(&s.props("BADHOST", &extra)).await;
    assert_kind(&e, true, "hostname mismatch");
    // ssl.endpoint.identification.algorithm= (empty): the chain is still checked,
    // the name is not.
    extra.push(("ssl.endpoint.identification.algorithm", String::new()));
    round_trip(s.props("BADHOST", &extra), "nohostcheck").await;
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn mtls_listener_without_a_client_certificate_fails_fast() {
    let s = Secure::load();
    let extra = s.ssl();
    let e = first_error(&s.props("MTLS", &extra)).await;
    assert_kind(&e, true, "requires a client certificate");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn plaintext_client_on_a_tls_port_fails_fast() {
    let s = Secure::load();
    let e = first_error(&s.props("SSL", &[])).await;
    assert_kind(&e, true, "set security.protocol=SSL or SASL_SSL");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn tls_client_on_a_plaintext_port_fails_fast() {
    let s = Secure::load();
    let extra = s.ssl();
    let e = first_error(&s.props("PLAINTEXT", &extra)).await;
    assert_kind(&e, true, "is the listener plaintext");
}

// ------------------------------------------------------------------ OIDC login
// KIP-768: tokens from the harness's token endpoint (java-tools TokenEndpoint,
// RS256 JWTs, client-credentials grant), checked by the broker's own validator
// (OAuthBearerValidatorCallbackHandler) on the OIDC listener against the
// endpoint's JWKS, audience and issuer. No Rust token callback anywhere.

impl Secure {
    /// Java's properties for the OIDC login as `client` with `secret` at the token
    /// endpoint `url_key` (OIDC_TOKEN_URL or OIDC_TOKEN_URL_HTTPS).
    fn oidc_java(&self, client: &str, secret: &str, url_key: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "SASL_PLAINTEXT".to_owned()),
            ("sasl.mechanism", "OAUTHBEARER".to_owned()),
            (
                "sasl.login.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler".to_owned(),
            ),
            ("sasl.oauthbearer.token.endpoint.url", self.get(url_key).to_owned()),
            (
                "sasl.jaas.config",
                format!(
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                     clientId=\"{client}\" clientSecret=\"{secret}\" scope=\"kafka.produce\";"
                ),
            ),
        ]
    }

    /// The same login with librdkafka's names.
    fn oidc_librdkafka(&self, client: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "sasl_plaintext".to_owned()),
            ("sasl.mechanisms", "OAUTHBEARER".to_owned()),
            ("sasl.oauthbearer.method", "oidc".to_owned()),
            ("sasl.oauthbearer.token.endpoint.url", self.get("OIDC_TOKEN_URL").to_owned()),
            ("sasl.oauthbearer.client.id", client.to_owned()),
            ("sasl.oauthbearer.client.secret", self.get(&format!("OIDC_SECRET_{client}")).to_owned()),
            ("sasl.oauthbearer.scope", "kafka.produce kafka.describe".to_owned()),
        ]
    }

    /// How many tokens the endpoint has issued to `client`.
    async fn issued(&self, client: &str) -> u64 {
        let url = format!("{}?client={client}", self.get("OIDC_ISSUED_URL"));
        let text = reqwest::get(&url).await.expect("issued").text().await.expect("issued body");
        let body: serde_json::Value = serde_json::from_str(&text).expect("json");
        body["issued"].as_u64().expect("issued count")
    }
}

/// Java's configuration (OAuthBearerLoginModule's clientId/clientSecret/scope,
/// OAuthBearerLoginCallbackHandler) with the token endpoint over HTTPS, trusted
/// through ssl.truststore.location: produce, then read back with herald's reader
/// on the same listener and settings (its own OIDC login), and by the Java
/// consumer over PLAINTEXT.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_login_from_java_properties_over_https() {
    let s = Secure::load();
    let mut extra = s.oidc_java("herald", s.get("OIDC_SECRET_herald"), "OIDC_TOKEN_URL_HTTPS");
    extra.extend(s.tls());
    let props = s.props("OIDC", &extra);
    let before = s.issued("herald").await;
    let t = topic(&s, "oidc").await;
    let p = builder(&props).build().expect("producer from properties only");
    produce_and_read_back(&p, &props, &t, &values(40, "oidc")).await;
    p.close(Duration::from_secs(30)).await.unwrap();
    let issued = s.issued("herald").await - before;
    assert!(issued >= 1, "the token endpoint issued the tokens ({issued})");
    let args = ["--bootstrap", s.get("PLAINTEXT"), "--topic", &t, "--timeout-ms", "60000"];
    let out = support::java("dev.herald.tools.VerifyConsumer", &args, None).await;
    assert_eq!(
        out.lines().filter(|l| !l.trim().is_empty()).count(),
        40,
        "the Java consumer reads every record"
    );
}

/// librdkafka's names (sasl.oauthbearer.method=oidc, .client.id, .client.secret,
/// .scope) with the endpoint over HTTP.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_login_from_librdkafka_properties() {
    let s = Secure::load();
    round_trip(s.props("OIDC", &s.oidc_librdkafka("herald")), "oidc-rdkafka").await;
}

/// Tokens that live 15 s on a listener whose sessions end with the token
/// (KIP-368): a producer running for more than two lifetimes re-authenticates
/// with a fresh token from the endpoint each time, and every record is
/// delivered; the broker would close a connection whose token expired.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_tokens_are_refreshed_before_they_expire() {
    let s = Secure::load();
    let lifetime = Duration::from_secs(s.get("OIDC_SHORT_LIFETIME_S").parse().unwrap());
    let props = s.props("OIDC", &s.oidc_librdkafka("short"));
    let t = topic(&s, "oidc-refresh").await;
    let before = s.issued("short").await;
    let p = builder(&props).build().expect("producer");
    let run_for = lifetime * 5 / 2;
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < run_for {
        p.send(Record::new(&t).value(format!("r{n}")))
            .await
            .expect("send accepted")
            .await
            .unwrap_or_else(|e| panic!("record {n} at {:?}: {e}", start.elapsed()));
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    let issued = s.issued("short").await - before;
    assert!(
        issued >= 3,
        "expected fresh tokens across {run_for:?} of {lifetime:?} tokens, the endpoint issued {issued}"
    );
    let got = TopicReader::new(s.get("PLAINTEXT")).unwrap().read_to_end(&t).await.unwrap();
    assert_eq!(got.len(), n, "every record once");
}

/// An OIDC login error: an authentication error naming the broker and the token
/// endpoint, never the secret.
fn assert_oidc_error(e: &Error, url: &str, needle: &str) {
    eprintln!("as expected: {e}");
    assert_kind(e, false, needle);
    assert!(e.to_string().contains(url), "{e} does not name the token endpoint {url}");
    assert!(!format!("{e} {e:?}").contains("client-secret"), "{e:?}");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_wrong_client_secret_fails_fast_with_http_401() {
    let s = Secure::load();
    let extra = s.oidc_java("herald", "not-the-client-secret", "OIDC_TOKEN_URL");
    let e = first_error(&s.props("OIDC", &extra)).await;
    assert_oidc_error(&e, s.get("OIDC_TOKEN_URL"), "HTTP 401");
    assert!(e.to_string().contains("invalid_client"), "the endpoint's error: {e}");
    assert!(!e.to_string().contains("not-the-client-secret"), "{e}");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_unreachable_token_endpoint_fails_fast_naming_the_url_and_cause() {
    let s = Secure::load();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/token");
    let mut extra = s.oidc_librdkafka("herald");
    extra.retain(|(k, _)| *k != "sasl.oauthbearer.token.endpoint.url");
    extra.push(("sasl.oauthbearer.token.endpoint.url", url.clone()));
    // Connection failures are retried for up to this long (Java's default: 10 s).
    extra.push(("sasl.login.retry.backoff.max.ms", "2000".to_owned()));
    let e = first_error(&s.props("OIDC", &extra)).await;
    assert_oidc_error(&e, &url, "cannot reach the token endpoint");
    assert!(e.to_string().to_lowercase().contains("connection refused"), "names the cause: {e}");
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_expired_token_fails_fast_naming_the_expiry() {
    let s = Secure::load();
    let e = first_error(&s.props("OIDC", &s.oidc_librdkafka("expired"))).await;
    assert_oidc_error(&e, s.get("OIDC_TOKEN_URL"), "has expired");
    assert!(e.to_string().contains("exp claim"), "{e}");
}

/// An https endpoint whose certificate is not from a trusted CA (no truststore:
/// Mozilla's roots) fails as a TLS error of the token request, naming the URL.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_https_endpoint_is_checked_against_the_truststore() {
    let s = Secure::load();
    let mut extra = s.oidc_java("herald", s.get("OIDC_SECRET_herald"), "OIDC_TOKEN_URL_HTTPS");
    extra.push(("sasl.login.retry.backoff.max.ms", "500".to_owned()));
    let e = first_error(&s.props("OIDC", &extra)).await;
    assert_oidc_error(&e, s.get("OIDC_TOKEN_URL_HTTPS"), "cannot reach the token endpoint");
    assert!(e.to_string().contains("certificate"), "names the certificate problem: {e}");
}

/// The OIDC listener really checks signatures: an unsigned JWT (which the other
/// listeners' unsecured validator takes) is refused there.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn oidc_listener_refuses_an_unsigned_token() {
    let s = Secure::load();
    let t = topic(&s, "oidc-unsigned").await;
    let props = s.props("OIDC", &[("security.protocol", "SASL_PLAINTEXT".to_owned())]);
    let p = builder(&props)
        .oauthbearer_token_provider(|| async { Ok(unsecured_jwt(Duration::from_secs(3600))) })
        .build()
        .expect("producer");
    let e = match p.send(Record::new(&t).value("x")).await {
        Ok(d) => d.await.expect_err("an unsigned token must be refused"),
        Err(e) => e,
    };
    eprintln!("as expected: {e}");
    assert_kind(&e, false, "OAUTHBEARER");
    let _ = p.close(Duration::from_secs(5)).await;
}
