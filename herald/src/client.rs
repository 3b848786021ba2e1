//! The settings every client of a cluster shares — the producer, [`Admin`] and
//! [`TopicReader`] — and the one place they turn into a connection pool: bootstrap
//! servers (one parser), `client.id`, security, request and connection-setup
//! timeouts, reconnect backoff.
//!
//! [`Admin`]: crate::admin::Admin
//! [`TopicReader`]: crate::reader::TopicReader

use std::time::Duration;

use kafka_protocol::protocol::StrBytes;

use crate::config::{ProducerConfig, bootstrap_addresses};
use crate::connection::pool::Pool;
use crate::connection::{BrokerAddr, ConnectionConfig};
use crate::error::Result;
use crate::security::SecurityConfig;

/// What a client needs to reach a cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    pub(crate) bootstrap: Vec<BrokerAddr>,
    pub(crate) client_id: String,
    pub(crate) security: SecurityConfig,
    pub(crate) request_timeout: Duration,
    pub(crate) connection_setup_timeout: Duration,
    pub(crate) reconnect_backoff: Duration,
    pub(crate) reconnect_backoff_max: Duration,
}

impl ClientConfig {
    /// The shared part of `c` (whose properties were set by name or builder),
    /// with `default_client_id` when `client.id` is empty. Fails on bootstrap
    /// servers that are missing or not `host:port`.
    pub(crate) fn from_settings(c: &ProducerConfig, default_client_id: &str) -> Result<ClientConfig> {
        Ok(ClientConfig {
            bootstrap: bootstrap_addresses(&c.bootstrap_servers)?
                .into_iter()
                .map(|(host, port)| BrokerAddr { node_id: None, host, port })
                .collect(),
            client_id: if c.client_id.is_empty() {
                default_client_id.to_owned()
            } else {
                c.client_id.clone()
            },
            security: c.security.clone(),
            request_timeout: c.request_timeout,
            connection_setup_timeout: c.connection_setup_timeout,
            reconnect_backoff: c.reconnect_backoff,
            reconnect_backoff_max: c.reconnect_backoff_max,
        })
    }

    /// A pool of connections with these settings (reads TLS PEM files now).
    pub(crate) fn pool(&self) -> Result<Pool> {
        let conn = ConnectionConfig::new(
            StrBytes::from_string(self.client_id.clone()),
            self.connection_setup_timeout,
            self.request_timeout,
            &self.security,
        )?;
        Ok(Pool::new(conn, self.bootstrap.clone(), self.reconnect_backoff, self.reconnect_backoff_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_settings_come_from_the_properties() {
        let mut c = ProducerConfig::default();
        assert!(ClientConfig::from_settings(&c, "x").unwrap_err().to_string().contains("bootstrap.servers"));
        c.set("bootstrap.servers", "a:1, b:2").unwrap();
        c.set("reconnect.backoff.ms", "7").unwrap();
        let cc = ClientConfig::from_settings(&c, "herald-admin").unwrap();
        assert_eq!(cc.bootstrap.len(), 2);
        assert_eq!(cc.client_id, "herald-admin");
        assert_eq!(cc.reconnect_backoff, Duration::from_millis(7));
        c.set("client.id", "mine").unwrap();
        assert_eq!(ClientConfig::from_settings(&c, "herald-admin").unwrap().client_id, "mine");
    }
}
