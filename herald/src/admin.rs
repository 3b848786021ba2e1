//! A small admin client: create, delete and describe topics.
//!
//! herald is a producer; this covers what producing needs around it (tests and the
//! CLI create their topics explicitly, since clusters should not auto-create them).
//!
//! ```no_run
//! # async fn demo() -> Result<(), herald::Error> {
//! use herald::{Admin, NewTopic};
//! let admin = Admin::new("127.0.0.1:9092")?;
//! admin.create_topic(NewTopic::new("trucks", 3, 1).config("retention.ms", "86400000")).await?;
//! let t = admin.describe_topic("trucks").await?;
//! assert_eq!(t.partitions.len(), 3);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::client::ClientConfig;
use crate::config::ProducerConfig;
use crate::connection::pool::Pool;

use crate::error::{Error, ErrorCode, ErrorKind, Result, TimeoutKind};
use crate::metadata;
use crate::security::SecurityConfig;

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// How many partitions.
    pub partitions: i32,
    /// How many copies of each partition.
    pub replication_factor: i16,
    /// Topic configs, e.g. `("message.timestamp.type", "LogAppendTime")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions, each on `replication_factor` brokers.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic { name: name.into(), partitions, replication_factor, configs: Vec::new() }
    }

    /// Adds a topic config.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((name.into(), value.into()));
        self
    }
}

/// One partition of a described topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition number.
    pub partition: i32,
    /// The leader's node id, `None` while there is no leader.
    pub leader: Option<i32>,
    /// The nodes holding a copy.
    pub replicas: Vec<i32>,
    /// The copies in sync with the leader.
    pub isr: Vec<i32>,
}

impl PartitionDescription {
    /// A topic's partitions as a Metadata answer lists them (by number).
    pub(crate) fn all(partitions: &[crate::metadata::PartitionInfo]) -> Vec<PartitionDescription> {
        partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionDescription {
                partition: i as i32,
                leader: (p.leader >= 0).then_some(p.leader),
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
            })
            .collect()
    }
}

/// A topic as the cluster's metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its partitions, by number.
    pub partitions: Vec<PartitionDescription>,
}

/// A broker of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Its node id.
    pub node_id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: u16,
}

/// An admin client. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pool: Arc<Mutex<Pool>>,
    timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("timeout", &self.timeout).finish()
    }
}

impl Admin {
    /// An admin client for the cluster at `bootstrap_servers` (`host:port[,…]`),
    /// over PLAINTEXT. Connects on first use; must be called within a tokio runtime.
    pub fn new(bootstrap_servers: &str) -> Result<Admin> {
        Admin::with_security(bootstrap_servers, &SecurityConfig::default())
    }

    /// An admin client from Kafka properties: `bootstrap.servers`, `client.id`,
    /// and the security ones (`security.protocol`, `ssl.*`, `sasl.*`). Producer
    /// properties are accepted too (so one property file serves both) and have no
    /// effect here.
    pub fn from_properties<'a>(props: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Admin> {
        let mut c = ProducerConfig::default();
        for (k, v) in props {
            c.set(k, v)?;
        }
        c.security.validate()?;
        Admin::from_client(&ClientConfig::from_settings(&c, "herald-admin")?)
    }

    /// An admin client for the cluster at `bootstrap_servers` with these security
    /// settings (e.g. a producer's [`ProducerConfig::security`]).
    pub fn with_security(bootstrap_servers: &str, security: &SecurityConfig) -> Result<Admin> {
        let mut c = ProducerConfig::default();
        c.set("bootstrap.servers", bootstrap_servers)?;
        c.security = security.clone();
        Admin::from_client(&ClientConfig::from_settings(&c, "herald-admin")?)
    }

    fn from_client(client: &ClientConfig) -> Result<Admin> {
        Ok(Admin { pool: Arc::new(Mutex::new(client.pool()?)), timeout: Duration::from_secs(30) })
    }

    /// Sets how long each operation may take in all (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Admin {
        self.timeout = timeout;
        self
    }

    /// The overall timeout of one operation.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req` to broker `node`.
    pub(crate) async fn call_node<R: Request + Send + 'static>(
        &self,
        node: i32,
        req: R,
    ) -> Result<R::Response> {
        let conn = self.pool.lock().await.node(node)?;
        match conn.call(req, true).await? {
            (_, Some(resp)) => Ok(resp),
            (_, None) => Err(Error::protocol(&**conn.name(), "no response")),
        }
    }

    /// Sends `req` to some broker, retrying connection failures until the timeout.
    async fn call_any<R: Request + Clone + Send + 'static>(
        &self,
        req: R,
        deadline: Instant,
    ) -> Result<R::Response> {
        let mut last: Option<Error> = None;
        loop {
            let conn = self.pool.lock().await.any();
            if let Some(conn) = conn {
                match conn.call(req.clone(), true).await {
                    Ok((_, Some(resp))) => return Ok(resp),
                    Ok((_, None)) => return Err(Error::protocol(&**conn.name(), "no response")),
                    Err(e) if e.is_retriable() => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                let e = Error::timeout(TimeoutKind::Request, self.timeout);
                return Err(match last {
                    Some(l) => e.caused_by(l),
                    None => e,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn metadata(
        &self,
        topics: Option<Vec<Arc<str>>>,
        deadline: Instant,
    ) -> Result<metadata::Snapshot> {
        let req = metadata::request(topics.as_deref(), false);
        let resp = self.call_any(req, deadline).await?;
        let snapshot = metadata::parse(resp, "metadata")?;
        self.pool.lock().await.set_brokers(snapshot.brokers.clone());
        Ok(snapshot)
    }

    /// Creates a topic and waits until every partition has a leader.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut t = CreatableTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.name.clone()));
        t.num_partitions = topic.partitions;
        t.replication_factor = topic.replication_factor;
        t.configs = topic
            .configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.clone());
                c.value = Some(StrBytes::from_string(v.clone()));
                c
            })
            .collect();
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        let name: Arc<str> = Arc::from(topic.name.as_str());
        loop {
            let resp = self.call_any(req.clone(), deadline).await?;
            let Some(r) = resp.topics.into_iter().find(|r| *r.name.0 == *topic.name) else {
                return Err(Error::protocol("CreateTopics", "no result for the topic"));
            };
            let code = ErrorCode::new(r.error_code);
            if code.is_ok() {
                break;
            }
            if code.is_retriable() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            return Err(
                Error::broker(code, r.error_message.map(|m| m.to_string())).for_partition(&name, None)
            );
        }
        self.wait_for_leaders(&name, topic.partitions, deadline).await
    }

    async fn wait_for_leaders(&self, name: &Arc<str>, partitions: i32, deadline: Instant) -> Result<()> {
        loop {
            let s = self.metadata(Some(vec![name.clone()]), deadline).await?;
            let ready = s.topics.iter().any(|t| {
                t.name == *name
                    && t.error.is_ok()
                    && t.partitions.len() == usize::try_from(partitions).unwrap_or(0)
                    && t.partitions.iter().all(|p| p.leader >= 0)
            });
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::timeout(TimeoutKind::Metadata, self.timeout).for_partition(name, None));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut st = DeleteTopicState::default();
        st.name = Some(TopicName(StrBytes::from_string(name.to_owned())));
        let mut req = DeleteTopicsRequest::default();
        req.topics = vec![st];
        req.topic_names = vec![TopicName(StrBytes::from_string(name.to_owned()))];
        req.timeout_ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        let resp = self.call_any(req, deadline).await?;
        for r in resp.responses {
            let code = ErrorCode::new(r.error_code);
            if !code.is_ok() {
                return Err(Error::broker(code, r.error_message.map(|m| m.to_string()))
                    .for_partition(&Arc::from(name), None));
            }
        }
        Ok(())
    }

    /// Describes a topic: its partitions, their leaders and replicas.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let deadline = Instant::now() + self.timeout;
        let topic: Arc<str> = Arc::from(name);
        let s = self.metadata(Some(vec![topic.clone()]), deadline).await?;
        let t = s
            .topics
            .into_iter()
            .find(|t| *t.name == *name)
            .ok_or_else(|| Error::new(ErrorKind::UnknownTopic).for_partition(&topic, None))?;
        if t.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
            return Err(Error::new(ErrorKind::UnknownTopic).for_partition(&topic, None));
        }
        if !t.error.is_ok() {
            return Err(Error::broker(t.error, None).for_partition(&topic, None));
        }
        Ok(TopicDescription { name: name.to_owned(), partitions: PartitionDescription::all(&t.partitions) })
    }

    /// The cluster's brokers.
    pub async fn brokers(&self) -> Result<Vec<BrokerDescription>> {
        let deadline = Instant::now() + self.timeout;
        let s = self.metadata(Some(Vec::new()), deadline).await?;
        let mut out: Vec<BrokerDescription> = s
            .brokers
            .into_values()
            .filter_map(|b| Some(BrokerDescription { node_id: b.node_id?, host: b.host, port: b.port }))
            .collect();
        out.sort_by_key(|b| b.node_id);
        Ok(out)
    }
}
