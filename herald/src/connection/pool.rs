//! The connections of one client: one per broker, opened on demand, with
//! exponential reconnect backoff (`reconnect.backoff.ms` to
//! `reconnect.backoff.max.ms`, ±20% jitter, as the Java client).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{BrokerAddr, Connection, ConnectionConfig};
use crate::backoff::Backoff;
use crate::error::{Error, ErrorKind};

/// Which endpoint a connection is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Endpoint {
    Node(i32),
    Bootstrap(usize),
}

/// An endpoint's reconnect state.
#[derive(Debug, Default, Clone, Copy)]
struct Reconnect {
    failures: u32,
    until: Option<Instant>,
}

/// The connections of one producer or admin client. Owned by one task.
pub(crate) struct Pool {
    config: ConnectionConfig,
    /// `reconnect.backoff.ms` up to `reconnect.backoff.max.ms`.
    reconnect: Backoff,
    bootstrap: Vec<BrokerAddr>,
    brokers: HashMap<i32, BrokerAddr>,
    conns: HashMap<Endpoint, Connection>,
    backoff: HashMap<Endpoint, Reconnect>,
    next_bootstrap: usize,
    /// Connections opened in all.
    created: u64,
}

impl Pool {
    pub(crate) fn new(
        config: ConnectionConfig,
        bootstrap: Vec<BrokerAddr>,
        reconnect_backoff: Duration,
        reconnect_backoff_max: Duration,
    ) -> Pool {
        Pool {
            config,
            reconnect: Backoff::new(reconnect_backoff, reconnect_backoff_max.max(reconnect_backoff)),
            bootstrap,
            brokers: HashMap::new(),
            conns: HashMap::new(),
            backoff: HashMap::new(),
            next_bootstrap: 0,
            created: 0,
        }
    }

    /// Replaces the broker list; connections to brokers that moved or left are closed.
    pub(crate) fn set_brokers(&mut self, brokers: HashMap<i32, BrokerAddr>) {
        self.conns.retain(|ep, conn| match ep {
            Endpoint::Node(id) => {
                let keep =
                    brokers.get(id).is_some_and(|a| a.host == conn.addr().host && a.port == conn.addr().port);
                if !keep {
                    conn.close();
                }
                keep
            }
            Endpoint::Bootstrap(_) => true,
        });
        self.brokers = brokers;
    }

    /// Whether metadata (or a leader hint) has named broker `node_id`.
    pub(crate) fn knows(&self, node_id: i32) -> bool {
        self.brokers.contains_key(&node_id)
    }

    /// Learns one broker's address (from a KIP-951 leader hint), keeping the rest.
    pub(crate) fn add_broker(&mut self, addr: BrokerAddr) {
        if let Some(id) = addr.node_id {
            let known = self.brokers.get(&id).is_some_and(|a| a.host == addr.host && a.port == addr.port);
            if !known {
                let mut brokers = self.brokers.clone();
                brokers.insert(id, addr);
                self.set_brokers(brokers);
            }
        }
    }

    /// Counts the bytes every connection opened from now on writes and reads.
    pub(crate) fn count_traffic(&mut self, traffic: std::sync::Arc<crate::metrics::Traffic>) {
        self.config.traffic = Some(traffic);
    }

    /// Connections open now, and opened in all.
    pub(crate) fn connection_stats(&self) -> (usize, u64) {
        (self.conns.values().filter(|c| !c.is_closed()).count(), self.created)
    }

    /// Forgets a dead connection, scheduling the next attempt.
    fn reap(&mut self, ep: Endpoint) {
        if let Some(c) = self.conns.get(&ep) {
            if !c.is_closed() {
                return;
            }
            let connected = c.was_connected();
            self.conns.remove(&ep);
            let b = self.backoff.entry(ep).or_default();
            // A connection that worked and then broke retries at the base backoff;
            // one that never came up backs off further each time.
            b.failures = if connected { 0 } else { b.failures.saturating_add(1) };
            b.until = Some(Instant::now() + self.reconnect.after(b.failures.saturating_add(1)));
        }
    }

    fn in_backoff(&self, ep: Endpoint, now: Instant) -> bool {
        self.backoff.get(&ep).and_then(|b| b.until).is_some_and(|u| now < u)
    }

    fn open(&mut self, ep: Endpoint, addr: BrokerAddr) -> Connection {
        self.created += 1;
        let c = Connection::open(addr, self.config.clone());
        self.conns.insert(ep, c.clone());
        c
    }

    /// The connection to broker `node_id`, opening one if needed. Fails when the
    /// broker is unknown or its reconnect backoff has not passed.
    pub(crate) fn node(&mut self, node_id: i32) -> Result<Connection, Error> {
        let ep = Endpoint::Node(node_id);
        self.reap(ep);
        if let Some(c) = self.conns.get(&ep) {
            return Ok(c.clone());
        }
        let Some(addr) = self.brokers.get(&node_id).cloned() else {
            return Err(Error::new(ErrorKind::Connection { broker: format!("node {node_id}") })
                .with_source(std::io::Error::new(std::io::ErrorKind::NotFound, "broker not in metadata")));
        };
        if self.in_backoff(ep, Instant::now()) {
            return Err(Error::new(ErrorKind::Connection { broker: addr.to_string() }).with_source(
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "waiting out reconnect backoff"),
            ));
        }
        Ok(self.open(ep, addr))
    }

    /// Whether a request to `node_id` could be sent now (connected, or allowed to try).
    pub(crate) fn node_ready(&mut self, node_id: i32) -> bool {
        let ep = Endpoint::Node(node_id);
        self.reap(ep);
        self.conns.contains_key(&ep)
            || (self.brokers.contains_key(&node_id) && !self.in_backoff(ep, Instant::now()))
    }

    /// A connection for a request any broker can answer (Metadata): a live one if
    /// there is one, else a known broker or bootstrap server not backing off, taken
    /// in turn. `None` when every endpoint is backing off.
    pub(crate) fn any(&mut self) -> Option<Connection> {
        let eps: Vec<Endpoint> = self.conns.keys().copied().collect();
        for ep in eps {
            self.reap(ep);
        }
        if let Some(c) = self
            .conns
            .iter()
            .filter(|(ep, c)| matches!(ep, Endpoint::Node(_)) && c.was_connected())
            .map(|(_, c)| c)
            .next()
        {
            return Some(c.clone());
        }
        let now = Instant::now();
        let mut nodes: Vec<i32> = self.brokers.keys().copied().collect();
        nodes.sort_unstable();
        for id in nodes {
            if !self.in_backoff(Endpoint::Node(id), now) {
                return self.node(id).ok();
            }
        }
        for _ in 0..self.bootstrap.len() {
            let i = self.next_bootstrap % self.bootstrap.len();
            self.next_bootstrap = self.next_bootstrap.wrapping_add(1);
            let ep = Endpoint::Bootstrap(i);
            if let Some(c) = self.conns.get(&ep) {
                return Some(c.clone());
            }
            if !self.in_backoff(ep, now) {
                let addr = self.bootstrap[i].clone();
                return Some(self.open(ep, addr));
            }
        }
        None
    }

    /// When the earliest backoff ends, if any endpoint is backing off.
    pub(crate) fn next_retry_at(&self) -> Option<Instant> {
        let now = Instant::now();
        self.backoff.values().filter_map(|b| b.until).filter(|u| *u > now).min()
    }

    /// Closes the connection to `node_id` (after a request timeout, say).
    pub(crate) fn close_node(&mut self, node_id: i32) {
        if let Some(c) = self.conns.get(&Endpoint::Node(node_id)) {
            c.close();
        }
    }

    /// Closes every connection.
    pub(crate) fn close_all(&mut self) {
        for c in self.conns.values() {
            c.close();
        }
        self.conns.clear();
    }
}
