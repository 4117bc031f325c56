//! Runs `wrk` (HTTP/1.1 load generator, fixed URL, no Lua) and reads its summary.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkResult {
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Requests completed.
    pub requests: u64,
    /// Responses with a status other than 2xx/3xx, plus socket errors.
    pub errors: u64,
}

/// Whether a `wrk` binary is on the PATH.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .map(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
        .unwrap_or(false)
}

/// `wrk -t<threads> -c<connections> -d<secs>s --latency <url>`.
pub fn run(url: &str, threads: usize, connections: usize, duration: Duration) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency")
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// [`run`] on tokio's blocking pool, for the async benchmark drivers.
pub async fn run_blocking(
    url: &str,
    threads: usize,
    connections: usize,
    duration: Duration,
) -> Result<WrkResult> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || run(&url, threads, connections, duration))
        .await
        .context("wrk task")?
}

/// Parses wrk's text summary.
pub fn parse(text: &str) -> Result<WrkResult> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut errors = 0u64;
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => rps = words.next().and_then(|w| w.parse::<f64>().ok()),
            Some("50%") => p50 = words.next().and_then(parse_duration),
            Some("99%") => p99 = words.next().and_then(parse_duration),
            Some("Non-2xx") => {
                errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|w| w.parse::<u64>().ok())
                    .unwrap_or(0)
            }
            Some("Socket") => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            Some(n) if line.contains("requests in") => requests = n.parse::<u64>().ok(),
            _ => {}
        }
    }
    match (rps, p50, p99, requests) {
        (Some(rps), Some(p50), Some(p99), Some(requests)) => Ok(WrkResult {
            rps,
            p50,
            p99,
            requests,
            errors,
        }),
        _ => bail!("missing Requests/sec, latency percentiles or request count"),
    }
}

/// wrk durations: `812.00us`, `1.23ms`, `2.00s`, `1.00m`.
fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 5s test @ https://127.0.0.1:4443/v2/x/_trust/tuf/timestamp.json
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.91ms    1.10ms  31.49ms   88.12%
    Req/Sec     5.55k   412.35     6.21k    71.00%
  Latency Distribution
     50%  812.00us
     75%    3.10ms
     90%    3.91ms
     99%    1.05s
  55212 requests in 5.00s, 62.11MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  11039.21
Transfer/sec:     12.42MB
";

    #[test]
    fn parses_summary() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.requests, 55212);
        assert!((r.rps - 11039.21).abs() < 1e-6);
        assert_eq!(r.p50, Duration::from_micros(812));
        assert_eq!(r.p99, Duration::from_millis(1050));
        assert_eq!(r.errors, 10);
    }

    #[test]
    fn rejects_truncated_output() {
        assert!(parse("Running 5s test @ x\n  Requests/sec: 1\n").is_err());
        assert_eq!(parse_duration("3.5q"), None);
        assert_eq!(parse_duration("2.00m"), Some(Duration::from_secs(120)));
    }
}
