//! herald against the Java producer's own list of properties: every name of
//! kafka-clients' `ProducerConfig.configNames()` is known to herald (supported,
//! accepted with no effect, or refused with a reason — never "unknown"), herald's
//! defaults are Java's, values are accepted and refused as Java accepts and
//! refuses them, and a `.properties` file reads as `java.util.Properties.load`
//! reads it. kafka-clients answers through `harness/java-tools`
//! (`dev.herald.tools.ProducerConfigNames`), so a new Kafka version's properties
//! show up here as a failing test. Every difference is listed below, with its
//! reason.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use herald::config::{PropertyStatus, property_info};
use herald::properties::PropertiesFile;
use herald::{ProducerConfig, Record};

/// One property as kafka-clients declares it.
#[derive(Debug)]
struct JavaProperty {
    name: String,
    /// `ConfigDef.Type`: BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD.
    ty: String,
    /// The default as a property value; `None` when the property is required.
    default: Option<String>,
}

async fn java_properties() -> Vec<JavaProperty> {
    let out = support::java("dev.herald.tools.ProducerConfigNames", &[], None).await;
    let props: Vec<JavaProperty> = out
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (name, ty, default) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            JavaProperty {
                name: name.to_owned(),
                ty: ty.to_owned(),
                default: (default != "<none>").then(|| default.to_owned()),
            }
        })
        .collect();
    assert!(props.len() > 100, "kafka-clients lists {} producer properties", props.len());
    props
}

#[tokio::test]
async fn every_java_producer_property_is_known_to_herald() {
    let java = java_properties().await;
    let unknown: Vec<&str> =
        java.iter().map(|p| p.name.as_str()).filter(|n| property_info(n).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "kafka-clients has producer properties herald does not know; declare each in herald/src/config.rs's \
         PROPERTIES (supported, no effect with a reason, or refused with what to use instead): {unknown:?}"
    );
    assert!(java.iter().all(|p| p.ty != "UNKNOWN"), "{java:?}");
    let count =
        |s: PropertyStatus| java.iter().filter(|p| property_info(&p.name).unwrap().status == s).count();
    eprintln!(
        "{} Java producer properties: {} supported, {} no effect, {} refused",
        java.len(),
        count(PropertyStatus::Supported),
        count(PropertyStatus::NoEffect),
        count(PropertyStatus::Refused)
    );
}

/// Where herald's declared default differs from Java's, and why.
const DEFAULTS_DIFFER: &[(&str, &str)] = &[
    (
        "sasl.mechanism",
        "Java's default is GSSAPI (Kerberos), which herald does not have: with SASL, herald needs \
         sasl.mechanism, or a sasl.jaas.config login module that implies one",
    ),
    (
        "ssl.truststore.type",
        "herald reads PEM only, so a truststore given without a type is read as PEM (Java's JKS is accepted \
         while no truststore is set)",
    ),
    ("ssl.keystore.type", "as ssl.truststore.type: herald reads PEM keystores only"),
];

#[tokio::test]
async fn herald_s_defaults_are_java_s() {
    let java = java_properties().await;
    let mut wrong = Vec::new();
    for p in &java {
        let Some(herald) = property_info(&p.name) else { continue };
        // Java spells a null default and no default alike for herald: empty.
        let expected = p.default.clone().unwrap_or_default();
        let differs = herald.default != expected;
        match DEFAULTS_DIFFER.iter().find(|(n, _)| *n == p.name) {
            Some(_) => assert!(differs, "{} is listed in DEFAULTS_DIFFER but has Java's default now", p.name),
            None if differs => {
                wrong.push(format!("{}: herald {:?}, Java {:?}", p.name, herald.default, expected))
            }
            None => {}
        }
    }
    assert!(wrong.is_empty(), "defaults that differ from Java's:\n{}", wrong.join("\n"));
}

/// Values herald decides differently from Java: `(property, value, why)`, `*`
/// for every value. Each must still disagree (the test says when one no longer
/// does).
const VALUES_DIFFER: &[(&str, &str, &str)] = &[
    // herald accepts, Java refuses.
    (
        "acks",
        "ALL",
        "enumerations are case-insensitive in herald, as in librdkafka (its alias request.required.acks)",
    ),
    ("compression.type", "GZIP", "case-insensitive, as librdkafka's alias compression.codec"),
    ("compression.type", "", "an empty compression.type is none"),
    ("partitioner.class", "", "empty is the default partitioner"),
    (
        "bootstrap.servers",
        "127.0.0.1:9092,,127.0.0.1:9093",
        "empty entries are skipped, as librdkafka's alias metadata.broker.list does",
    ),
    ("ssl.cipher.suites", "a,,b", "empty names are skipped; herald offers the named suites it has"),
    ("ssl.enabled.protocols", "a,,b", "checked only when TLS is used (a PLAINTEXT config never uses it)"),
    (
        "max.in.flight.requests.per.connection",
        "*",
        "more than 5 turns implied idempotence off in herald, as acks=1 and retries=0 do; Java refuses it \
         unless enable.idempotence=false is set",
    ),
    (
        "sasl.oauthbearer.jwt.retriever.class",
        "com.example.DoesNotExist",
        "no effect in herald, which cannot tell whether a Java class exists",
    ),
    ("sasl.oauthbearer.jwt.validator.class", "com.example.DoesNotExist", "as the retriever class"),
    // herald refuses, Java accepts.
    ("max.request.size", "0", "a 0-byte request holds no record: herald refuses it when built"),
    ("buffer.memory", "0", "no memory for any record: herald refuses it when built"),
    ("request.timeout.ms", "0", "every request would time out at once: herald refuses it when built"),
    ("socket.connection.setup.timeout.ms", "-1", "a negative timeout cannot be honoured"),
    ("transaction.timeout.ms", "-1", "a negative timeout cannot be honoured (the coordinator refuses it)"),
    ("transaction.timeout.ms", "-2", "a negative timeout cannot be honoured (the coordinator refuses it)"),
    (
        "transaction.timeout.ms",
        "-2147483648",
        "a negative timeout cannot be honoured (the coordinator refuses it)",
    ),
    (
        "security.protocol",
        "*",
        "with SASL and no sasl.mechanism, Java uses GSSAPI (Kerberos), which herald does not support",
    ),
    (
        "transaction.two.phase.commit.enable",
        "*",
        "two-phase commit (KIP-939) is not supported (false is accepted)",
    ),
    ("interceptor.classes", "*", "interceptors are Java classes (empty is accepted)"),
    ("config.providers", "*", "config providers are Java classes (empty is accepted)"),
    ("sasl.client.callback.handler.class", "*", "Java classes; herald's SASL is its own"),
    (
        "sasl.login.callback.handler.class",
        "*",
        "Java classes; herald's SASL is its own (it knows OAuthBearerLoginCallbackHandler: the OIDC login)",
    ),
    ("sasl.login.class", "*", "Java classes; herald's SASL is its own"),
    ("ssl.engine.factory.class", "*", "Java classes; herald's TLS is rustls"),
    (
        "ssl.keymanager.algorithm",
        "*",
        "herald accepts JSSE's standard key managers only (with no effect): it cannot honour another one",
    ),
    (
        "ssl.trustmanager.algorithm",
        "*",
        "herald accepts the standard PKIX trust managers only: it cannot check certificates another way",
    ),
];

/// Sample values for a property of Java type `ty`.
fn samples(p: &JavaProperty) -> Vec<String> {
    let mut v: Vec<&str> = match p.ty.as_str() {
        "BOOLEAN" => vec!["true", "false", "TRUE", "False", "yes", "1", ""],
        "INT" => vec![
            "0",
            "1",
            "5",
            "-1",
            "-2",
            "2000",
            "86400",
            "86401",
            "2147483647",
            "2147483648",
            "-2147483648",
            "+3",
            "x",
            "1.5",
            "",
        ],
        "LONG" => vec![
            "0",
            "1",
            "5",
            "-1",
            "4999",
            "5000",
            "60000",
            "9223372036854775807",
            "9223372036854775808",
            "x",
            "1.5",
            "",
        ],
        "SHORT" => vec!["0", "60", "900", "901", "3600", "3601", "-1", "32768", "x", ""],
        "DOUBLE" => {
            vec!["0", "0.05", "0.25", "0.26", "0.5", "0.8", "1", "1.0", "1.5", "-0.1", "5e-2", "x", ""]
        }
        "LIST" => vec!["", "a", "a,b", "a,,b", " a , b "],
        "CLASS" => vec![
            "",
            "org.apache.kafka.common.serialization.StringSerializer",
            "org.apache.kafka.common.serialization.ByteArraySerializer",
            "org.apache.kafka.common.serialization.StringDeserializer",
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
            "com.example.DoesNotExist",
            "java.lang.String",
        ],
        "PASSWORD" => vec!["", "pw"],
        _ => vec!["", "x", "X y"],
    };
    let specific: &[&str] = match p.name.as_str() {
        "acks" => &["all", "-1", "0", "1", "2", "ALL"],
        "compression.type" => &["none", "gzip", "snappy", "lz4", "zstd", "GZIP", "brotli"],
        "client.dns.lookup" => {
            &["use_all_dns_ips", "resolve_canonical_bootstrap_servers_only", "USE_ALL_DNS_IPS", "default"]
        }
        "metadata.recovery.strategy" => &["rebootstrap", "none", "NONE", "Rebootstrap", "sometimes"],
        "metrics.recording.level" => &["INFO", "DEBUG", "TRACE", "info"],
        "security.protocol" => &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", "plaintext", "TLS"],
        "sasl.oauthbearer.assertion.algorithm" => &["RS256", "ES256", "rs256", "HS256"],
        "sasl.mechanism" => &["PLAIN", "GSSAPI", "SCRAM-SHA-256", "OAUTHBEARER"],
        "ssl.protocol" => &["TLS", "TLSv1.2", "TLSv1.3", "TLSv1.1"],
        "ssl.endpoint.identification.algorithm" => &["https", "HTTPS", "ldaps"],
        "ssl.keymanager.algorithm" => &["SunX509", "PKIX"],
        "ssl.trustmanager.algorithm" => &["PKIX", "SunX509"],
        "ssl.enabled.protocols" => &["TLSv1.2", "TLSv1.2,TLSv1.3", "TLSv1.1,TLSv1.2"],
        "ssl.cipher.suites" => {
            &["TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256,TLS_CHACHA20_POLY1305_SHA256"]
        }
        "bootstrap.servers" => {
            &["127.0.0.1:9092", "127.0.0.1:9092,127.0.0.1:9093", "127.0.0.1:9092,,127.0.0.1:9093"]
        }
        "metric.reporters" => &["org.apache.kafka.common.metrics.JmxReporter"],
        "partitioner.class" => &["org.apache.kafka.clients.producer.RoundRobinPartitioner"],
        _ => &[],
    };
    v.extend_from_slice(specific);
    let mut out: Vec<String> = v.into_iter().map(str::to_owned).collect();
    if let Some(d) = &p.default {
        out.push(d.clone());
    }
    out.sort();
    out.dedup();
    // Values that only a real broker or file system could judge.
    if p.name == "bootstrap.servers" {
        out.retain(|v| !v.is_empty() && v != "a" && v != "a,b" && v != "x" && v != "X y" && v != " a , b ");
    }
    out
}

/// Whether herald accepts a config of `bootstrap.servers` and `name=value`.
fn herald_accepts(name: &str, value: &str) -> Result<(), String> {
    let mut c = ProducerConfig::default();
    c.set("bootstrap.servers", "127.0.0.1:9092").unwrap();
    c.set(name, value).and_then(|()| c.validate()).map_err(|e| e.to_string())
}

#[tokio::test]
async fn values_are_accepted_and_refused_as_java_does() {
    let java = java_properties().await;
    let mut cases = Vec::new();
    for p in &java {
        for v in samples(p) {
            cases.push((p.name.clone(), v));
        }
    }
    let input: String = cases.iter().map(|(n, v)| format!("{n}\t{v}\n")).collect();
    let out =
        support::java("dev.herald.tools.ProducerConfigNames", &["--check"], Some(input.into_bytes())).await;
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    let mut disagreements = Vec::new();
    let mut listed_and_agreeing = Vec::new();
    for ((name, value), answer) in cases.iter().zip(answers) {
        let java_ok = answer == "ok";
        let herald = herald_accepts(name, value);
        let listed = VALUES_DIFFER.iter().find(|(n, v, _)| n == name && (*v == "*" || v == value));
        if java_ok != herald.is_ok() {
            if listed.is_none() {
                disagreements.push(format!(
                    "{name}={value:?}: Java {}, herald {}",
                    if java_ok { "accepts" } else { answer },
                    match &herald {
                        Ok(()) => "accepts".to_owned(),
                        Err(e) => format!("refuses ({e})"),
                    }
                ));
            }
        } else if let Some((n, v, _)) = listed.filter(|(_, v, _)| *v != "*") {
            listed_and_agreeing.push(format!("{n}={v:?}"));
        }
        // A refusal always names the property.
        if let Err(e) = &herald {
            assert!(e.contains(name.as_str()) || name == "bootstrap.servers", "{name}={value:?}: {e}");
        }
    }
    assert!(
        disagreements.is_empty(),
        "herald and Java disagree (fix herald, or list the value in VALUES_DIFFER with the reason):\n{}",
        disagreements.join("\n")
    );
    assert!(
        listed_and_agreeing.is_empty(),
        "listed in VALUES_DIFFER but herald and Java agree now: {listed_and_agreeing:?}"
    );
    eprintln!("{} values checked against kafka-clients", cases.len());
}

/// `Properties.load` and herald's reader agree on a file full of corner cases.
#[tokio::test]
async fn properties_files_read_as_java_reads_them() {
    let text = concat!(
        "# a comment\n",
        "! another comment\n",
        "   # an indented comment \\\n",
        "plain=value\n",
        "colon: value\n",
        "space value with spaces  \n",
        "  indented\t=\ttabs\n",
        "empty=\n",
        "bare\n",
        "double==x\n",
        "colon.equals:=y\n",
        "escaped\\ key\\=with\\:separators = v\n",
        "escapes=\\t\\n\\r\\f\\q\\\\\\#\n",
        "unicode=\\u0041\\u00e9\\u20ac\\ud83d\\ude00\n",
        "continued = one, \\\n    two, \\\n\t\tthree\n",
        "two.backslashes=a\\\\\n",
        "three.backslashes=a\\\\\\\n  b\n",
        "continued.comment=a\\\n  # not a comment\n",
        "blank.after.continuation=a\\\n\n",
        "crlf=1\r\n",
        "cr=2\r",
        "repeated=first\n",
        "repeated=second\n",
        "trailing.backslash.at.end=z\\",
    );
    let dir = std::env::temp_dir().join(format!("herald-props-java-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corner-cases.properties");
    std::fs::write(&path, text).unwrap();
    let out =
        support::java("dev.herald.tools.ProducerConfigNames", &["--load", path.to_str().unwrap()], None)
            .await;
    let java: BTreeMap<&str, &str> =
        out.lines().map(|l| l.split_once('\t').expect("key<TAB>value")).collect();

    let file = PropertiesFile::read(&path).unwrap();
    let ours: BTreeMap<String, String> = file.iter().map(|(k, v)| (escape(k), escape(v))).collect();
    let java: BTreeMap<String, String> =
        java.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    assert_eq!(ours, java);
    assert!(java.len() >= 20, "{java:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// As the Java tool escapes: backslash, tab, CR, LF, and other characters outside
/// printable ASCII as UTF-16 `\uXXXX`.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for u in s.encode_utf16() {
        match u {
            0x5c => out.push_str("\\\\"),
            0x09 => out.push_str("\\t"),
            0x0d => out.push_str("\\r"),
            0x0a => out.push_str("\\n"),
            0x20..=0x7e => out.push(char::from(u as u8)),
            _ => out.push_str(&format!("\\u{u:04x}")),
        }
    }
    out
}

/// A typical Java producer's `producer.properties`, unchanged: Java's
/// `KafkaProducer` builds from it, and so does herald, which then produces with
/// it (on the embedded cluster, or the broker of `HERALD_TEST_BOOTSTRAP`).
const JAVA_PRODUCER_PROPERTIES: &str = "\
# producer.properties of a Java service
bootstrap.servers=BOOTSTRAP
client.id=orders-service
client.rack=eu-west-1a
key.serializer=org.apache.kafka.common.serialization.StringSerializer
value.serializer=org.apache.kafka.common.serialization.ByteArraySerializer
acks=all
enable.idempotence=true
retries=2147483647
max.in.flight.requests.per.connection=5
delivery.timeout.ms=120000
request.timeout.ms=30000
linger.ms=20
batch.size=65536
compression.type=lz4
metadata.recovery.strategy=rebootstrap
metadata.recovery.rebootstrap.trigger.ms=300000
enable.metrics.push=true
client.dns.lookup=use_all_dns_ips
partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner
partitioner.adaptive.partitioning.enable=true
metrics.recording.level=INFO
";

#[tokio::test]
async fn a_java_producer_config_builds_and_runs_unchanged() {
    let topic = support::create_topic("java-config", 3, &[]).await;
    let dir = std::env::temp_dir().join(format!("herald-java-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("producer.properties");
    std::fs::write(&path, JAVA_PRODUCER_PROPERTIES.replace("BOOTSTRAP", &support::bootstrap())).unwrap();

    // The Java producer builds from it ...
    let out = support::java(
        "dev.herald.tools.ProducerConfigNames",
        &["--load", path.to_str().unwrap(), "--build", &support::bootstrap()],
        None,
    )
    .await;
    assert!(out.ends_with("built\n"), "{out}");

    // ... and so does herald, which produces with it.
    let producer = herald::Producer::builder().properties_file(&path).build().unwrap();
    let c = producer.config();
    assert_eq!(c.client_id, "orders-service");
    assert_eq!(c.linger, Duration::from_millis(20));
    assert_eq!(c.batch_size, 65536);
    assert_eq!(c.compression, herald::Compression::Lz4);
    assert!(c.enable_idempotence);
    let mut partitions = std::collections::BTreeSet::new();
    for i in 0..6 {
        let written = producer
            .send_and_wait(Record::new(topic.as_str()).key(format!("order-{i}")).value("{}"))
            .await
            .unwrap();
        partitions.insert(written.partition());
    }
    // RoundRobinPartitioner ignores keys: six records cover the three partitions.
    assert_eq!(partitions.len(), 3, "{partitions:?}");
    producer.close(Duration::from_secs(30)).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Java configs of docs/migration.md configure herald as they are (all of
/// each file at once, as `ProducerBuilder::properties_file` applies it), and the
/// one whose interceptors are Java classes is refused, as the page says.
#[test]
fn the_migration_page_s_java_configs_are_accepted() {
    let page = std::fs::read_to_string(support::repo_root().join("docs/migration.md")).unwrap();
    let blocks: Vec<&str> =
        page.split("```properties\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 3, "the page's properties examples");
    for (i, text) in blocks.iter().enumerate() {
        let file = PropertiesFile::parse(format!("docs/migration.md example {}", i + 1), text).unwrap();
        assert!(file.len() >= 6, "example {} parsed: {} properties", i + 1, file.len());
        let mut c = ProducerConfig::default();
        c.set_properties_file(&file).unwrap();
        c.validate().unwrap_or_else(|e| panic!("example {}: {e}", i + 1));
    }
    let e = herald_accepts("interceptor.classes", "com.example.AuditInterceptor").unwrap_err();
    assert!(e.contains("ProducerBuilder::interceptor"), "{e}");
}
