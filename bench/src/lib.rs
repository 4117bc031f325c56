//! Shared pieces of the benchmark drivers: latency recording and reporting.

use std::time::Duration;

/// Latencies of one benchmark phase.
#[derive(Default)]
pub struct Latencies {
    samples: Vec<Duration>,
    errors: u64,
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

    /// Merges another recorder into this one.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.errors += other.errors;
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
