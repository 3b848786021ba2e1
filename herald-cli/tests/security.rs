//! `herald produce` against the secured broker (`harness/kafka start --secure`):
//! the OAUTHBEARER OIDC login (KIP-768) from `-X` properties and from a
//! `--producer.config` file, with no code at all.
//!
//! Needs that broker: `scripts/test.sh`'s `security` phase runs these with
//! `HERALD_TEST_SECURE` set to its description (`secure.env`). They are
//! `#[ignore]`d otherwise.

mod common;

use std::collections::HashMap;
use std::io::Write;

use common::{herald, json_lines};
use herald::{Admin, NewTopic, TopicReader};

fn secure() -> HashMap<String, String> {
    let path = std::env::var("HERALD_TEST_SECURE").unwrap_or_else(|_| {
        panic!(
            "HERALD_TEST_SECURE is not set: start a secured broker with `harness/kafka start --name sec --secure` \
             and set HERALD_TEST_SECURE=$(harness/kafka secure-env --name sec) (scripts/test.sh does)"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

async fn topic(s: &HashMap<String, String>, prefix: &str) -> String {
    let name = format!("{prefix}-{:08x}", fastrand::u32(..));
    Admin::new(&s["PLAINTEXT"]).unwrap().create_topic(NewTopic::new(name.clone(), 1, 1)).await.unwrap();
    name
}

async fn read_back(s: &HashMap<String, String>, topic: &str) -> Vec<String> {
    let records = TopicReader::new(&s["PLAINTEXT"]).unwrap().read_to_end(topic).await.unwrap();
    records.into_iter().map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap()).collect()
}

#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn produce_logs_in_with_oidc_from_x_properties() {
    let s = secure();
    let t = topic(&s, "cli-oidc").await;
    let props = [
        "security.protocol=SASL_PLAINTEXT".to_owned(),
        "sasl.mechanism=OAUTHBEARER".to_owned(),
        "sasl.oauthbearer.method=oidc".to_owned(),
        format!("sasl.oauthbearer.token.endpoint.url={}", s["OIDC_TOKEN_URL"]),
        "sasl.oauthbearer.client.id=herald".to_owned(),
        format!("sasl.oauthbearer.client.secret={}", s["OIDC_SECRET_herald"]),
    ];
    let mut args = vec!["produce", "-b", &s["OIDC"], "-t", &t, "--report", "json"];
    for p in &props {
        args.extend(["-X", p.as_str()]);
    }
    let out = herald(&args, "one\ntwo\nthree\n");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_lines(&out).len(), 3);
    assert_eq!(read_back(&s, &t).await, ["one", "two", "three"]);
}

/// Java's properties file, as a Java producer would use it (the token endpoint
/// over HTTPS, trusted through ssl.truststore.location), and a wrong secret's
/// error on stderr.
#[tokio::test]
#[ignore = "needs the secured broker: scripts/test.sh security phase (HERALD_TEST_SECURE)"]
async fn produce_logs_in_with_oidc_from_a_java_producer_config() {
    let s = secure();
    let t = topic(&s, "cli-oidc-file").await;
    let config = |secret: &str| {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        write!(
            f,
            "bootstrap.servers={}\n\
             security.protocol=SASL_PLAINTEXT\n\
             sasl.mechanism=OAUTHBEARER\n\
             sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
             sasl.oauthbearer.token.endpoint.url={}\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n\
             sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \\\n  \
             clientId=\"herald\" clientSecret=\"{secret}\";\n",
            s["OIDC"], s["OIDC_TOKEN_URL_HTTPS"], s["CA_PEM"]
        )
        .unwrap();
        f
    };
    let good = config(&s["OIDC_SECRET_herald"]);
    let out = herald(&["produce", "--producer.config", good.path().to_str().unwrap(), "-t", &t], "a\nb\n");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_back(&s, &t).await, ["a", "b"]);

    let bad = config("not-the-secret");
    let out = herald(&["produce", "--producer.config", bad.path().to_str().unwrap(), "-t", &t], "c\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 401") && stderr.contains(&s["OIDC_TOKEN_URL_HTTPS"]), "stderr: {stderr}");
    assert!(!stderr.contains("not-the-secret"), "stderr: {stderr}");
}
