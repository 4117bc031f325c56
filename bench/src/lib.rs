//! Benchmark drivers for notary-server and notary-signer, ours or Go's.
//!
//! - [`client`]: [`client::TrustClient`], a Notary client over HTTPS (create GUNs with real
//!   keys and x509 roots, publish, delegate, pull and verify), also used by fault tests;
//! - [`Latencies`]: latency recording and reporting.
//!
//! Binaries: `signer-bench` (gRPC signer) and `notary-bench` (HTTP server side by side
//! with the Go reference; `scripts/bench.sh` runs everything).

pub mod bigrepo;
pub mod client;
pub mod harness;
pub mod report;
pub mod scale;
pub mod wrk;

use std::time::Duration;

/// Latencies of one benchmark phase.
#[derive(Default, Debug, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
    errors: u64,
    rejected: u64,
    first_error: Option<String>,
}

impl Latencies {
    /// Records one successful operation.
    pub fn ok(&mut self, d: Duration) {
        self.samples.push(d);
    }

    /// Records one failed operation.
    pub fn err(&mut self) {
        self.errors += 1;
    }

    /// Records one failed operation and keeps the first error message for the report.
    pub fn err_msg(&mut self, msg: impl Into<String>) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(msg.into());
        }
    }

    /// Records an operation the server refused as expected (e.g. a publish that lost the
    /// version race on a shared GUN): neither a success nor an error.
    pub fn rejected(&mut self) {
        self.rejected += 1;
    }

    /// Merges another recorder into this one.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.errors += other.errors;
        self.rejected += other.rejected;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Successful operations recorded.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// Failed operations recorded.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Operations refused as expected.
    pub fn rejections(&self) -> u64 {
        self.rejected
    }

    /// The first error message recorded with [`Latencies::err_msg`].
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    /// The q-quantile (0..=1) of the recorded latencies.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.sort_unstable();
        let idx = ((self.samples.len() as f64 - 1.0) * q).round() as usize;
        self.samples[idx]
    }

    /// One report line: `name: N ok, E errors, X/s, p50 .. ms, p99 .. ms`.
    pub fn report(&mut self, name: &str, wall: Duration) -> String {
        let n = self.samples.len();
        let rate = n as f64 / wall.as_secs_f64();
        let p50 = self.quantile(0.50).as_secs_f64() * 1e3;
        let p99 = self.quantile(0.99).as_secs_f64() * 1e3;
        format!(
            "{name}: {n} ok, {} errors, {rate:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
            self.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_sorted_samples() {
        let mut l = Latencies::default();
        for ms in [5u64, 1, 3, 2, 4] {
            l.ok(Duration::from_millis(ms));
        }
        l.err();
        assert_eq!(l.quantile(0.5), Duration::from_millis(3));
        assert_eq!(l.quantile(1.0), Duration::from_millis(5));
        assert!(l
            .report("x", Duration::from_secs(1))
            .contains("5 ok, 1 errors"));
    }
}
