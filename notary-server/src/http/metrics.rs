//! Prometheus metrics (spec §10, plus our operational families).
//!
//! Each [`Metrics`] owns its registry, so tests and several apps in one process do
//! not collide. Families:
//! - `notary_server_http_requests_total{operation,code}`: requests answered;
//! - `notary_server_http_request_duration_seconds{operation}`: handler latency;
//! - `notary_server_signer_call_duration_seconds{rpc,outcome}`: calls to the trust
//!   service (`CreateKey`, `GetKeyInfo`, `Sign`, `Check` for the health probe), `outcome`
//!   `ok` or `error`, recorded by [`InstrumentedCrypto`] and [`Metrics::observe_signer`];
//! - `notary_server_db_pool_connections{state}`: SQL pool connections `in_use` and `idle`,
//!   read from the source set with [`Metrics::set_pool_source`] at every scrape (absent for
//!   the memory store);
//! - `notary_server_expiry_guns{role,kind,window}`: GUNs whose `role` (`root`, `targets`,
//!   `delegation` for all delegations, `snapshot`, `timestamp`) has a `kind` (`metadata` or
//!   `certificate`) entry already expired (`window="expired"`) or expiring within
//!   `1d`, `7d`, `30d`, `90d` (cumulative, expired excluded), and
//!   `notary_server_expiry_soonest_timestamp_seconds{role,kind}`: fixed label sets whatever
//!   the number of GUNs, refreshed by [`crate::expiry::watch`];
//! - `notary_server_expiry_refresh_duration_seconds`: time of each refresh of those gauges;
//! - `notary_server_log_dropped_lines_total`: log lines dropped because the log writer's
//!   buffer was full (the writer never blocks a worker; see `notary_common::logging`);
//! - `notary_server_expiry_resigned_total{role}`: timestamps and snapshots the background
//!   task re-signed ahead of expiry ([`crate::expiry::resign`]).
//!
//! `operation` is the route's label from [`crate::http::routes::ROUTES`].

use std::sync::{Arc, RwLock};
use std::time::Instant;

use notary_tuf::crypto::{CryptoError, CryptoService, HeldKey};
use notary_tuf::keys::{KeyType, PublicKey};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Connections of a database pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUse {
    /// Checked out by a request.
    pub in_use: u32,
    /// Open and waiting in the pool.
    pub idle: u32,
}

/// Reads the pool's current use; `None` when unknown.
pub type PoolSource = Arc<dyn Fn() -> Option<PoolUse> + Send + Sync>;

/// Request counters, latency histograms and the pool gauge.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    signer: HistogramVec,
    pool: IntGaugeVec,
    pool_source: Arc<RwLock<Option<PoolSource>>>,
    expiry_guns: IntGaugeVec,
    expiry_soonest: IntGaugeVec,
    expiry_refresh: prometheus::Histogram,
    resigned: IntCounterVec,
    log_dropped: prometheus::IntCounter,
    log_dropped_seen: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets for signer calls: 1 ms to 10 s (a signing RPC is a few ms; a dead signer
/// shows up in the top buckets).
const SIGNER_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// Creates the metric families in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        // Fixed, valid definitions registered once in a fresh registry cannot fail.
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "Requests answered, by operation and HTTP status.",
            )
            .namespace("notary_server")
            .subsystem("http"),
            &["operation", "code"],
        )
        .expect("valid metric definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time to answer a request, by operation.",
            )
            .namespace("notary_server")
            .subsystem("http"),
            &["operation"],
        )
        .expect("valid metric definition");
        let signer = HistogramVec::new(
            HistogramOpts::new(
                "call_duration_seconds",
                "Time of calls to the trust service, by RPC and outcome.",
            )
            .namespace("notary_server")
            .subsystem("signer")
            .buckets(SIGNER_BUCKETS.to_vec()),
            &["rpc", "outcome"],
        )
        .expect("valid metric definition");
        let pool = IntGaugeVec::new(
            Opts::new(
                "pool_connections",
                "SQL pool connections, in use by requests or idle.",
            )
            .namespace("notary_server")
            .subsystem("db"),
            &["state"],
        )
        .expect("valid metric definition");
        let expiry_guns = IntGaugeVec::new(
            Opts::new(
                "guns",
                "GUNs whose role has metadata or a certificate expired or expiring within a window.",
            )
            .namespace("notary_server")
            .subsystem("expiry"),
            &["role", "kind", "window"],
        )
        .expect("valid metric definition");
        let expiry_soonest = IntGaugeVec::new(
            Opts::new(
                "soonest_timestamp_seconds",
                "Soonest expiry of any GUN's role metadata or certificate (Unix time).",
            )
            .namespace("notary_server")
            .subsystem("expiry"),
            &["role", "kind"],
        )
        .expect("valid metric definition");
        let expiry_refresh = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "refresh_duration_seconds",
                "Time to refresh the expiry gauges from the inventory.",
            )
            .namespace("notary_server")
            .subsystem("expiry"),
        )
        .expect("valid metric definition");
        let resigned = IntCounterVec::new(
            Opts::new(
                "resigned_total",
                "Server-held roles re-signed ahead of expiry by the background task.",
            )
            .namespace("notary_server")
            .subsystem("expiry"),
            &["role"],
        )
        .expect("valid metric definition");
        let log_dropped = prometheus::IntCounter::with_opts(
            Opts::new(
                "dropped_lines_total",
                "Log lines dropped because the log writer's buffer was full.",
            )
            .namespace("notary_server")
            .subsystem("log"),
        )
        .expect("valid metric definition");
        for family in [
            Box::new(log_dropped.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(duration.clone()),
            Box::new(signer.clone()),
            Box::new(pool.clone()),
            Box::new(expiry_guns.clone()),
            Box::new(expiry_soonest.clone()),
            Box::new(expiry_refresh.clone()),
            Box::new(resigned.clone()),
        ] {
            registry.register(family).expect("fresh registry");
        }
        Metrics {
            registry,
            requests,
            duration,
            signer,
            pool,
            pool_source: Arc::new(RwLock::new(None)),
            expiry_guns,
            expiry_soonest,
            expiry_refresh,
            resigned,
            log_dropped,
            log_dropped_seen: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Sets the expiry gauges from a fresh summary (all role classes and kinds).
    pub fn set_expiry(&self, summary: &[crate::storage::ExpirySummary]) {
        for s in summary {
            let (role, kind) = (s.role.as_str(), s.kind.as_str());
            self.expiry_guns
                .with_label_values(&[role, kind, "expired"])
                .set(s.expired);
            for (days, n) in crate::storage::SUMMARY_WINDOWS.iter().zip(s.within) {
                self.expiry_guns
                    .with_label_values(&[role, kind, &format!("{days}d")])
                    .set(n);
            }
            match s.soonest {
                Some(t) => self
                    .expiry_soonest
                    .with_label_values(&[role, kind])
                    .set(t.timestamp()),
                None => {
                    let _ = self.expiry_soonest.remove_label_values(&[role, kind]);
                }
            }
        }
    }

    /// Records how long one refresh of the expiry gauges took.
    pub fn observe_expiry_refresh(&self, seconds: f64) {
        self.expiry_refresh.observe(seconds);
    }

    /// Counts roles re-signed by the background task.
    pub fn observe_resigned(&self, role: &str, n: u64) {
        self.resigned.with_label_values(&[role]).inc_by(n);
    }

    /// Records one answered request.
    pub fn observe(&self, operation: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[operation, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[operation])
            .observe(seconds);
    }

    /// Records one call to the trust service.
    pub fn observe_signer(&self, rpc: &str, ok: bool, seconds: f64) {
        let outcome = if ok { "ok" } else { "error" };
        self.signer
            .with_label_values(&[rpc, outcome])
            .observe(seconds);
    }

    /// Where the pool gauge reads from at each scrape.
    pub fn set_pool_source(&self, source: PoolSource) {
        *self.pool_source.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let source = self
            .pool_source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(pool) = source.and_then(|read| read()) {
            self.pool
                .with_label_values(&["in_use"])
                .set(i64::from(pool.in_use));
            self.pool
                .with_label_values(&["idle"])
                .set(i64::from(pool.idle));
        }
        // The writer counts drops itself; the counter follows it.
        let dropped = notary_common::logging::dropped_log_lines();
        let seen = self
            .log_dropped_seen
            .fetch_max(dropped, std::sync::atomic::Ordering::Relaxed);
        if dropped > seen {
            self.log_dropped.inc_by(dropped - seen);
        }
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// A [`CryptoService`] that times every call of the one it wraps into
/// `notary_server_signer_call_duration_seconds`, labelled with the gRPC method the remote
/// signer serves it with.
pub struct InstrumentedCrypto {
    inner: Arc<dyn CryptoService>,
    metrics: Metrics,
}

impl InstrumentedCrypto {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn CryptoService>, metrics: Metrics) -> Self {
        InstrumentedCrypto { inner, metrics }
    }

    fn record<T>(&self, rpc: &str, started: Instant, result: &Result<T, CryptoError>) {
        self.metrics
            .observe_signer(rpc, result.is_ok(), started.elapsed().as_secs_f64());
    }
}

#[async_trait::async_trait]
impl CryptoService for InstrumentedCrypto {
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, CryptoError> {
        let started = Instant::now();
        let result = self.inner.create_key(gun, role, key_type).await;
        self.record("CreateKey", started, &result);
        result
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        let started = Instant::now();
        let result = self.inner.get_key(key_id).await;
        self.record("GetKeyInfo", started, &result);
        result
    }

    async fn get_key_info(&self, key_id: &str) -> Result<Option<HeldKey>, CryptoError> {
        let started = Instant::now();
        let result = self.inner.get_key_info(key_id).await;
        self.record("GetKeyInfo", started, &result);
        result
    }

    async fn sign(&self, key_id: &str, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let started = Instant::now();
        let result = self.inner.sign(key_id, msg).await;
        self.record("Sign", started, &result);
        result
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), CryptoError> {
        let started = Instant::now();
        let result = self.inner.delete_key(key_id).await;
        self.record("DeleteKey", started, &result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notary_tuf::crypto::MemoryCryptoService;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).unwrap()
    }

    #[test]
    fn request_families_are_labelled_by_operation_and_code() {
        let m = Metrics::new();
        m.observe("GetRole", 200, 0.01);
        m.observe("GetRole", 404, 0.02);
        let t = text(&m);
        assert!(
            t.contains(r#"notary_server_http_requests_total{code="200",operation="GetRole"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"notary_server_http_requests_total{code="404",operation="GetRole"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(
                r#"notary_server_http_request_duration_seconds_count{operation="GetRole"} 2"#
            ),
            "{t}"
        );
    }

    #[tokio::test]
    async fn signer_calls_are_timed_by_rpc_and_outcome() {
        let m = Metrics::new();
        let crypto = InstrumentedCrypto::new(Arc::new(MemoryCryptoService::new()), m.clone());
        let key = crypto
            .create_key("g", "timestamp", &KeyType::Ecdsa)
            .await
            .unwrap();
        crypto.sign(&key.key_id(), b"msg").await.unwrap();
        assert!(crypto.sign("no-such-key", b"msg").await.is_err());
        assert!(crypto.get_key(&key.key_id()).await.unwrap().is_some());
        let t = text(&m);
        for line in [
            r#"notary_server_signer_call_duration_seconds_count{outcome="ok",rpc="CreateKey"} 1"#,
            r#"notary_server_signer_call_duration_seconds_count{outcome="ok",rpc="Sign"} 1"#,
            r#"notary_server_signer_call_duration_seconds_count{outcome="error",rpc="Sign"} 1"#,
            r#"notary_server_signer_call_duration_seconds_count{outcome="ok",rpc="GetKeyInfo"} 1"#,
        ] {
            assert!(t.contains(line), "missing {line}:\n{t}");
        }
    }

    #[test]
    fn pool_gauge_is_read_at_scrape_time() {
        let m = Metrics::new();
        assert!(!text(&m).contains("notary_server_db_pool_connections{"));
        let use_now = Arc::new(RwLock::new(PoolUse { in_use: 2, idle: 3 }));
        let source = use_now.clone();
        m.set_pool_source(Arc::new(move || Some(*source.read().unwrap())));
        let t = text(&m);
        assert!(
            t.contains(r#"notary_server_db_pool_connections{state="in_use"} 2"#),
            "{t}"
        );
        assert!(
            t.contains(r#"notary_server_db_pool_connections{state="idle"} 3"#),
            "{t}"
        );
        *use_now.write().unwrap() = PoolUse { in_use: 0, idle: 5 };
        let t = text(&m);
        assert!(
            t.contains(r#"notary_server_db_pool_connections{state="in_use"} 0"#),
            "{t}"
        );
        assert!(
            t.contains(r#"notary_server_db_pool_connections{state="idle"} 5"#),
            "{t}"
        );
    }
}
