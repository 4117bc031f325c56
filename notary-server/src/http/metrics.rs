//! Prometheus metrics for the instrumented routes (spec §10).
//!
//! Each [`Metrics`] owns its registry, so tests and several apps in one process do
//! not collide. Families:
//! - `notary_server_http_requests_total{operation,code}`: requests answered;
//! - `notary_server_http_request_duration_seconds{operation}`: handler latency.
//!
//! `operation` is the route's label from [`crate::http::routes::ROUTES`].

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Request counters and latency histograms.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
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

impl Metrics {
    /// Creates the metric families in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
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
        // Registering two distinct families in a fresh registry cannot collide.
        registry
            .register(Box::new(requests.clone()))
            .expect("fresh registry");
        registry
            .register(Box::new(duration.clone()))
            .expect("fresh registry");
        Metrics {
            registry,
            requests,
            duration,
        }
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

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
