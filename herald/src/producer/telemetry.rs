//! Client telemetry push (KIP-714): when to ask a broker which metrics it wants
//! (GetTelemetrySubscriptions), when to push them (PushTelemetry), and what a
//! push carries. The sender hands the requests to its transport and brings the
//! answers back here; like [`super::producer_id`] this does no I/O itself.
//!
//! The rules are Java's `ClientTelemetryReporter`: the first request carries a
//! zero client instance id and the broker assigns one; a subscription with no
//! requested metrics (a broker with a `ClientTelemetry` plugin but no matching
//! `CLIENT_METRICS` resource) means nothing is pushed, only asked again after the
//! push interval; the first push waits the interval times a jitter of 0.5–1.5,
//! later ones the interval; `UNKNOWN_SUBSCRIPTION_ID` or
//! `UNSUPPORTED_COMPRESSION_TYPE` asks for the subscription again at once; on
//! close one last push says `terminating`. A broker that does not serve the APIs
//! (no telemetry plugin: it leaves them out of ApiVersions) or any other failure
//! waits five minutes (Java's `DEFAULT_PUSH_INTERVAL_MS`) before asking again;
//! `INVALID_REQUEST` and `INVALID_RECORD` turn telemetry off for the producer's
//! life. Nothing here logs above debug: telemetry is the broker operator's
//! business, not the application's.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest,
    PushTelemetryResponse,
};
use tokio::time::Instant;
use uuid::Uuid;

use crate::compression::{self, Codec};
use crate::error::{Error, ErrorCode};
use crate::metrics::ProducerMetrics;
use crate::metrics::otlp::{self, Kind, Times};

/// Java's `ClientTelemetryReporter.DEFAULT_PUSH_INTERVAL_MS`: the wait after a
/// failure, or before the first answer tells the interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// `UNKNOWN_SUBSCRIPTION_ID` (117): the subscription changed; ask again.
const UNKNOWN_SUBSCRIPTION_ID: ErrorCode = ErrorCode::new(117);
/// `TELEMETRY_TOO_LARGE` (118).
const TELEMETRY_TOO_LARGE: ErrorCode = ErrorCode::new(118);
/// `THROTTLING_QUOTA_EXCEEDED` (89): pushed before the interval passed.
const THROTTLING_QUOTA_EXCEEDED: ErrorCode = ErrorCode::new(89);

/// What the broker asked for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Subscription {
    pub(crate) id: i32,
    /// Metric name prefixes; a single empty one means every metric.
    pub(crate) prefixes: Vec<String>,
    pub(crate) interval: Duration,
    /// The first of the broker's accepted types (its order is its preference);
    /// `None`: uncompressed.
    pub(crate) compression: Option<Codec>,
    pub(crate) delta: bool,
    pub(crate) max_bytes: usize,
}

impl Subscription {
    fn wants(&self, name: &str) -> bool {
        self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting until `next_at`, then asking for the subscription or pushing.
    Waiting,
    /// A request is in flight.
    Requesting(Due),
    /// Refused for good, or the terminating push was sent.
    Off,
}

/// What is due now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Subscriptions,
    Push,
}

/// What closing the producer waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseStep {
    /// Send the terminating push now.
    Push,
    /// A push is in flight: wait for its answer.
    Wait,
    /// Nothing more to send.
    Done,
}

/// One series of points: a metric's name and its attributes.
type SeriesKey = (String, Vec<(&'static str, String)>);

/// The producer's side of KIP-714.
#[derive(Debug)]
pub(crate) struct Telemetry {
    instance_id: Uuid,
    phase: Phase,
    subscription: Option<Subscription>,
    next_at: Instant,
    /// The terminating push was made: its answer ends telemetry.
    terminating: bool,
    /// Unix nanoseconds when the producer started (cumulative sums start there).
    started_ns: u64,
    /// Unix nanoseconds of the last push, and the sums it carried (delta sums).
    last_push_ns: u64,
    last_sums: HashMap<SeriesKey, f64>,
    /// `transactional.id`, a resource attribute as Java sends it.
    transactional_id: Option<String>,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The codec for a Kafka compression type id, at Java's default level.
fn codec(id: i8) -> Option<Codec> {
    u8::try_from(id).ok().and_then(Codec::from_id)
}

impl Telemetry {
    /// Nothing known yet; the subscription is due at once.
    pub(crate) fn new(now: Instant, transactional_id: Option<String>) -> Telemetry {
        let started_ns = unix_ns();
        Telemetry {
            instance_id: Uuid::nil(),
            phase: Phase::Waiting,
            subscription: None,
            next_at: now,
            started_ns,
            last_push_ns: started_ns,
            last_sums: HashMap::new(),
            terminating: false,
            transactional_id,
        }
    }

    /// The client instance id the broker assigned (nil before its first answer).
    pub(crate) fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// What to send now, if anything; if something is due later, lowers `next`.
    pub(crate) fn due(&self, now: Instant, next: &mut Instant) -> Option<Due> {
        if self.phase != Phase::Waiting {
            return None;
        }
        if now < self.next_at {
            *next = (*next).min(self.next_at);
            return None;
        }
        Some(if self.wants_metrics() { Due::Push } else { Due::Subscriptions })
    }

    /// What closing the producer waits for: the terminating push when a
    /// subscription wants metrics (after a push in flight is answered); a
    /// subscription request in flight is not waited for.
    pub(crate) fn close_step(&mut self) -> CloseStep {
        match self.phase {
            Phase::Requesting(Due::Push) => CloseStep::Wait,
            Phase::Waiting if !self.terminating && self.wants_metrics() => CloseStep::Push,
            _ => {
                self.phase = Phase::Off;
                CloseStep::Done
            }
        }
    }

    fn wants_metrics(&self) -> bool {
        self.subscription.as_ref().is_some_and(|s| !s.prefixes.is_empty())
    }

    /// Stops for good (close went on without the terminating push).
    pub(crate) fn stop(&mut self) {
        self.phase = Phase::Off;
    }

    /// The GetTelemetrySubscriptions request; the state is now in flight.
    pub(crate) fn subscriptions_request(&mut self) -> GetTelemetrySubscriptionsRequest {
        self.phase = Phase::Requesting(Due::Subscriptions);
        let mut req = GetTelemetrySubscriptionsRequest::default();
        req.client_instance_id = self.instance_id;
        req
    }

    /// The transport could not hand the request over now; try again at `at`.
    pub(crate) fn not_sent(&mut self, at: Instant) {
        self.phase = Phase::Waiting;
        self.next_at = at;
    }

    /// Takes the GetTelemetrySubscriptions answer.
    pub(crate) fn on_subscriptions(
        &mut self,
        r: Result<GetTelemetrySubscriptionsResponse, Error>,
        now: Instant,
    ) {
        if self.phase == Phase::Off {
            return;
        }
        self.phase = Phase::Waiting;
        let resp = match r {
            Ok(resp) => resp,
            Err(e) => return self.failed("GetTelemetrySubscriptions", &e, now),
        };
        let code = ErrorCode::new(resp.error_code);
        if !code.is_ok() {
            return self.failed("GetTelemetrySubscriptions", &Error::broker(code, None), now);
        }
        // Assigned when the request's was zero (KIP-714); zero otherwise.
        if !resp.client_instance_id.is_nil() {
            self.instance_id = resp.client_instance_id;
        }
        let interval = Duration::from_millis(u64::try_from(resp.push_interval_ms).unwrap_or(0))
            .max(Duration::from_millis(100));
        let sub = Subscription {
            id: resp.subscription_id,
            prefixes: resp.requested_metrics.iter().map(|m| m.to_string()).collect(),
            interval,
            compression: resp.accepted_compression_types.first().copied().and_then(codec),
            delta: resp.delta_temporality,
            max_bytes: usize::try_from(resp.telemetry_max_bytes).unwrap_or(0),
        };
        if sub.prefixes.is_empty() {
            tracing::debug!(instance_id = %self.instance_id, interval_ms = interval.as_millis() as u64,
                "the cluster asks for no client metrics (KIP-714); asking again after the interval");
            self.next_at = now + interval;
        } else {
            tracing::debug!(instance_id = %self.instance_id, subscription = sub.id, metrics = ?sub.prefixes,
                interval_ms = interval.as_millis() as u64, compression = ?sub.compression, delta = sub.delta,
                "client metrics subscription (KIP-714)");
            // Java staggers the first push of a subscription over 0.5–1.5 intervals.
            self.next_at = now + interval.mul_f64(0.5 + fastrand::f64());
            // A new subscription starts its deltas afresh.
            self.last_sums.clear();
            self.last_push_ns = unix_ns();
        }
        self.subscription = Some(sub);
    }

    fn failed(&mut self, request: &str, e: &Error, now: Instant) {
        let fatal = matches!(e.code(), Some(ErrorCode::INVALID_REQUEST | ErrorCode::INVALID_RECORD));
        if fatal {
            tracing::debug!(error = %e, "{request} refused; client telemetry is off for this producer");
            self.phase = Phase::Off;
        } else {
            tracing::debug!(error = %e, "{request} failed; asking for the subscription again in 5 minutes");
            self.subscription = None;
            self.next_at = now + DEFAULT_INTERVAL;
        }
    }

    /// The PushTelemetry request carrying `metrics`, filtered and encoded as the
    /// subscription says; the state is now in flight. `None` (waiting the
    /// interval again) when the payload could not be made or passes the
    /// broker's `telemetry_max_bytes`.
    pub(crate) fn push_request(
        &mut self,
        metrics: &ProducerMetrics,
        terminating: bool,
        now: Instant,
    ) -> Option<PushTelemetryRequest> {
        let sub = self.subscription.clone()?;
        let now_ns = unix_ns();
        let mut points: Vec<_> = otlp::points(metrics).into_iter().filter(|p| sub.wants(&p.name)).collect();
        let start_ns = if sub.delta { self.last_push_ns } else { self.started_ns };
        if sub.delta {
            for p in points.iter_mut().filter(|p| p.kind == Kind::Sum) {
                let key = (p.name.clone(), p.attributes.clone());
                let total = p.value;
                p.value = total - self.last_sums.insert(key, total).unwrap_or(0.0);
            }
        }
        self.last_push_ns = now_ns;
        let resource: Vec<(&str, &str)> =
            self.transactional_id.iter().map(|id| ("transactional_id", id.as_str())).collect();
        let payload = otlp::encode(&resource, &points, Times { start_ns, now_ns, delta: sub.delta });
        let (compression_type, metrics) = match sub.compression {
            None => (0, payload),
            Some(c) => {
                let mut out = Vec::with_capacity(payload.len() / 2);
                match compression::compress(c, &payload, &mut out) {
                    Ok(()) => (c.id() as i8, out),
                    Err(e) => {
                        // Java falls back to no compression when compressing fails.
                        tracing::debug!(error = %e, "compressing client metrics failed; sending them uncompressed");
                        (0, payload)
                    }
                }
            }
        };
        if sub.max_bytes > 0 && metrics.len() > sub.max_bytes {
            tracing::debug!(
                bytes = metrics.len(),
                max = sub.max_bytes,
                "client metrics larger than the broker's telemetry_max_bytes; not pushed"
            );
            self.next_at = now + sub.interval;
            return None;
        }
        self.phase = Phase::Requesting(Due::Push);
        self.terminating |= terminating;
        let mut req = PushTelemetryRequest::default();
        req.client_instance_id = self.instance_id;
        req.subscription_id = sub.id;
        req.terminating = terminating;
        req.compression_type = compression_type;
        req.metrics = Bytes::from(metrics);
        Some(req)
    }

    /// A request failed without an answer (connection lost, or the broker does
    /// not serve the API): judged as the request in flight was.
    pub(crate) fn on_failure(&mut self, e: Error, now: Instant) {
        match self.phase {
            Phase::Requesting(Due::Push) => self.on_push(Err(e), now),
            _ => self.on_subscriptions(Err(e), now),
        }
    }

    /// Takes the PushTelemetry answer.
    pub(crate) fn on_push(&mut self, r: Result<PushTelemetryResponse, Error>, now: Instant) {
        if self.phase == Phase::Off {
            return;
        }
        if self.terminating {
            if let Err(e) = &r {
                tracing::debug!(error = %e, "the terminating PushTelemetry failed");
            }
            self.phase = Phase::Off;
            return;
        }
        self.phase = Phase::Waiting;
        let interval = self.subscription.as_ref().map_or(DEFAULT_INTERVAL, |s| s.interval);
        let code = match r {
            Ok(resp) => ErrorCode::new(resp.error_code),
            Err(e) => {
                // Java's handleFailedPushTelemetryRequest: ask for the subscription
                // again after the interval (maybe of another broker).
                tracing::debug!(error = %e, "PushTelemetry failed");
                self.subscription = None;
                self.next_at = now + interval;
                return;
            }
        };
        match code {
            c if c.is_ok() => self.next_at = now + interval,
            UNKNOWN_SUBSCRIPTION_ID | ErrorCode::UNSUPPORTED_COMPRESSION_TYPE => {
                tracing::debug!(error = %Error::broker(code, None), "PushTelemetry: asking for the subscription again");
                self.subscription = None;
                self.next_at = now;
            }
            TELEMETRY_TOO_LARGE | THROTTLING_QUOTA_EXCEEDED => {
                tracing::debug!(error = %Error::broker(code, None), "PushTelemetry refused; pushing again after the interval");
                self.next_at = now + interval;
            }
            other => self.failed("PushTelemetry", &Error::broker(other, None), now),
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn answer(metrics: &[&str], compression: &[i8], delta: bool) -> GetTelemetrySubscriptionsResponse {
        let mut r = GetTelemetrySubscriptionsResponse::default();
        r.client_instance_id = Uuid::from_u128(42);
        r.subscription_id = 7;
        r.push_interval_ms = 1000;
        r.telemetry_max_bytes = 1 << 20;
        r.accepted_compression_types = compression.to_vec();
        r.delta_temporality = delta;
        r.requested_metrics = metrics.iter().map(|m| StrBytes::from_string(m.to_string())).collect();
        r
    }

    fn far(now: Instant) -> Instant {
        now + Duration::from_secs(3600)
    }

    #[test]
    fn no_requested_metrics_means_asking_again_after_the_interval_and_never_pushing() {
        let now = Instant::now();
        let mut t = Telemetry::new(now, None);
        let mut next = far(now);
        assert_eq!(t.due(now, &mut next), Some(Due::Subscriptions));
        assert!(t.subscriptions_request().client_instance_id.is_nil(), "the broker assigns the id");
        assert_eq!(t.due(now, &mut next), None, "one request at a time");
        t.on_subscriptions(Ok(answer(&[], &[4], false)), now);
        assert_eq!(t.instance_id(), Uuid::from_u128(42));
        assert_eq!(t.due(now, &mut next), None);
        assert_eq!(next, now + Duration::from_secs(1));
        assert_eq!(t.due(next, &mut far(now)), Some(Due::Subscriptions));
        assert_eq!(t.subscriptions_request().client_instance_id, Uuid::from_u128(42));
        assert_eq!(t.close_step(), CloseStep::Done, "no subscription: nothing to push on close");
    }

    #[test]
    fn a_subscription_pushes_its_metrics_first_after_a_jittered_interval() {
        let now = Instant::now();
        let mut t = Telemetry::new(now, Some("tx".into()));
        t.subscriptions_request();
        t.on_subscriptions(Ok(answer(&["org.apache.kafka.producer.record."], &[4, 3], false)), now);
        let mut next = far(now);
        assert_eq!(t.due(now, &mut next), None);
        assert!(next >= now + Duration::from_millis(500) && next <= now + Duration::from_millis(1500));
        assert_eq!(t.due(next, &mut far(now)), Some(Due::Push));
        let m = ProducerMetrics { record_send_total: 5, ..Default::default() };
        let req = t.push_request(&m, false, next).unwrap();
        assert_eq!((req.subscription_id, req.compression_type, req.terminating), (7, 4, false));
        assert_eq!(req.client_instance_id, Uuid::from_u128(42));
        let raw = compression::decompress(4, &req.metrics).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("org.apache.kafka.producer.record.send.total"));
        assert!(!text.contains("request.total"), "only the requested prefixes");
        assert!(text.contains("transactional_id"));
        t.on_push(Ok(PushTelemetryResponse::default()), next);
        let mut later = far(now);
        assert_eq!(t.due(next, &mut later), None);
        assert_eq!(later, next + Duration::from_secs(1));
        assert_eq!(t.close_step(), CloseStep::Push);
        assert!(t.push_request(&m, true, next).unwrap().terminating);
        assert_eq!(t.close_step(), CloseStep::Wait, "the terminating push is awaited");
        t.on_push(Ok(PushTelemetryResponse::default()), next);
        assert_eq!(t.close_step(), CloseStep::Done);
        assert_eq!(t.due(far(now), &mut far(now)), None, "nothing after the terminating push");
    }

    #[test]
    fn push_errors_ask_again_wait_or_stop() {
        let now = Instant::now();
        let subscribed = || {
            let mut t = Telemetry::new(now, None);
            t.subscriptions_request();
            t.on_subscriptions(Ok(answer(&[""], &[], true)), now);
            let req = t.push_request(&ProducerMetrics::default(), false, now).unwrap();
            assert_eq!(req.compression_type, 0, "no accepted types: uncompressed");
            t
        };
        let push_error = |code: i16| {
            let mut t = subscribed();
            let mut r = PushTelemetryResponse::default();
            r.error_code = code;
            t.on_push(Ok(r), now);
            let mut next = far(now);
            (t.due(now, &mut next), next, t)
        };
        assert_eq!(push_error(117).0, Some(Due::Subscriptions), "UNKNOWN_SUBSCRIPTION_ID: at once");
        assert_eq!(push_error(76).0, Some(Due::Subscriptions), "UNSUPPORTED_COMPRESSION_TYPE: at once");
        let (due, next, _) = push_error(89);
        assert_eq!((due, next), (None, now + Duration::from_secs(1)), "throttled: after the interval");
        let (due, next, mut t) = push_error(42);
        assert_eq!((due, next), (None, far(now)), "INVALID_REQUEST: off");
        assert_eq!(t.close_step(), CloseStep::Done);
    }

    #[test]
    fn delta_sums_carry_what_changed_since_the_last_push() {
        let now = Instant::now();
        let mut t = Telemetry::new(now, None);
        t.subscriptions_request();
        t.on_subscriptions(Ok(answer(&["org.apache.kafka.producer.record.send.total"], &[], true)), now);
        let mut m = ProducerMetrics { record_send_total: 5, ..Default::default() };
        let first = t.push_request(&m, false, now).unwrap();
        t.on_push(Ok(PushTelemetryResponse::default()), now);
        m.record_send_total = 8;
        let second = t.push_request(&m, true, now).unwrap();
        assert!(second.terminating);
        let has = |b: &Bytes, v: f64| b.windows(8).any(|w| w == v.to_bits().to_le_bytes());
        assert!(has(&first.metrics, 5.0));
        assert!(has(&second.metrics, 3.0) && !has(&second.metrics, 8.0));
    }

    #[test]
    fn a_broker_without_the_apis_is_asked_again_in_five_minutes() {
        let now = Instant::now();
        let mut t = Telemetry::new(now, None);
        t.subscriptions_request();
        let e = Error::new(crate::error::ErrorKind::Unsupported { what: "GetTelemetrySubscriptions".into() });
        t.on_subscriptions(Err(e), now);
        let mut next = far(now);
        assert_eq!(t.due(now, &mut next), None);
        assert_eq!(next, now + DEFAULT_INTERVAL);
    }
}
