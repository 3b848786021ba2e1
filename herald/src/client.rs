//! The settings every client of a cluster shares — the producer, [`Admin`] and
//! [`TopicReader`] — and the one place they turn into a connection pool: bootstrap
//! servers (one parser), `client.id`, security, request and connection-setup
//! timeouts, reconnect backoff.
//!
//! [`Admin`]: crate::admin::Admin
//! [`TopicReader`]: crate::reader::TopicReader

use std::time::Duration;

use kafka_protocol::protocol::StrBytes;

use crate::config::ProducerConfig;
use crate::connection::pool::Pool;
use crate::connection::{BrokerAddr, ConnectionConfig};
use crate::error::{Error, Result};
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
            bootstrap: parse_bootstrap(&c.bootstrap_servers)?,
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

/// `bootstrap.servers` as addresses: at least one, each `host:port`.
pub(crate) fn parse_bootstrap(servers: &[String]) -> Result<Vec<BrokerAddr>> {
    let addrs = servers
        .iter()
        .map(|s| {
            parse_host_port(s)
                .map(|(host, port)| BrokerAddr { node_id: None, host, port })
                .map_err(|e| Error::config("bootstrap.servers", e))
        })
        .collect::<Result<Vec<_>>>()?;
    if addrs.is_empty() {
        return Err(Error::config("bootstrap.servers", "at least one host:port is required"));
    }
    Ok(addrs)
}

/// Splits `host:port` (or `[v6]:port`), checking the port.
pub(crate) fn parse_host_port(s: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    let port: u16 =
        port.parse().ok().filter(|p| *p > 0).ok_or_else(|| format!("{s:?} has no valid port (1-65535)"))?;
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parsing() {
        assert_eq!(parse_host_port("a:1").unwrap(), ("a".to_owned(), 1));
        assert_eq!(parse_host_port("[::1]:9092").unwrap(), ("::1".to_owned(), 9092));
        assert!(parse_host_port("a:0").is_err());
        assert!(parse_host_port(":9").is_err());
    }

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
