//! The side-by-side table: one row per figure, one column per server, and the ratios
//! ours/Go and ours/nginx.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Unit of a figure, which also says which direction is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Operations per second (higher is better).
    PerSec,
    /// Milliseconds (lower is better).
    Ms,
    /// Mebibytes (lower is better).
    MiB,
    /// A plain count (informational).
    Count,
    /// Microseconds (lower is better), e.g. CPU time per request.
    Us,
    /// Megabytes (10^6 bytes) per second (higher is better).
    MBPerSec,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::PerSec => "/s",
            Unit::Ms => "ms",
            Unit::MiB => "MiB",
            Unit::Count => "",
            Unit::Us => "us",
            Unit::MBPerSec => "MB/s",
        }
    }
}

/// Figures by row, then by server name (`ours`, `go`, `nginx`, ...).
#[derive(Debug, Default, Clone)]
pub struct Report {
    rows: Vec<(String, Unit)>,
    values: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Report {
    /// Records `value` for `row` and `server`. Rows print in first-recorded order.
    pub fn add(&mut self, row: &str, unit: Unit, server: &str, value: f64) {
        if !self.values.contains_key(row) {
            self.rows.push((row.to_string(), unit));
        }
        self.values
            .entry(row.to_string())
            .or_default()
            .insert(server.to_string(), value);
    }

    /// A recorded value.
    pub fn get(&self, row: &str, server: &str) -> Option<f64> {
        self.values.get(row)?.get(server).copied()
    }

    /// Renders the table with the ratios ours/go and ours/nginx, and ours-pg/ours when ours
    /// also ran on PostgreSQL (`scripts/bench.sh` with `BENCH_POSTGRES=1`).
    pub fn render(&self, servers: &[&str]) -> String {
        let mut ratios = vec![("ours", "go"), ("ours", "nginx")];
        if servers.contains(&"ours-pg") {
            ratios.push(("ours-pg", "ours"));
        }
        self.render_ratios(servers, &ratios)
    }

    /// Renders the table with a ratio column `a/b` for each pair.
    pub fn render_ratios(&self, servers: &[&str], ratios: &[(&str, &str)]) -> String {
        let mut out = String::new();
        let _ = write!(out, "{:<60}", "figure");
        for s in servers {
            let _ = write!(out, "{:>12}", s);
        }
        for (a, b) in ratios {
            // Always a space before the name: `ours-pg/ours` fills the width by itself.
            let _ = write!(out, "{:>13}", format!(" {a}/{b}"));
        }
        let _ = writeln!(out);
        for (row, unit) in &self.rows {
            let vals = &self.values[row];
            let _ = write!(
                out,
                "{:<60}",
                format!("{row} ({})", unit.suffix()).replace(" ()", "")
            );
            for s in servers {
                match vals.get(*s) {
                    Some(v) => {
                        let _ = write!(out, "{:>12}", fmt_value(*v, *unit));
                    }
                    None => {
                        let _ = write!(out, "{:>12}", "-");
                    }
                }
            }
            for (a, b) in ratios {
                let ratio = match (vals.get(*a), vals.get(*b)) {
                    (Some(x), Some(y)) if *y > 0.0 => format!("{:.2}", x / y),
                    _ => "-".to_string(),
                };
                let _ = write!(out, "{ratio:>13}");
            }
            let _ = writeln!(out);
        }
        out
    }
}

fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSec | Unit::Count => format!("{v:.0}"),
        Unit::Ms => format!("{v:.2}"),
        Unit::MiB | Unit::Us | Unit::MBPerSec => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_ours_over_other() {
        let mut r = Report::default();
        r.add("GET timestamp", Unit::PerSec, "ours", 20000.0);
        r.add("GET timestamp", Unit::PerSec, "go", 1000.0);
        r.add("GET timestamp", Unit::PerSec, "nginx", 25000.0);
        r.add("publish p50", Unit::Ms, "ours", 3.0);
        let text = r.render(&["ours", "go", "nginx"]);
        let ts = text
            .lines()
            .find(|l| l.starts_with("GET timestamp"))
            .unwrap();
        assert!(ts.contains("20.00") && ts.contains("0.80"), "{ts}");
        let publish = text.lines().find(|l| l.starts_with("publish p50")).unwrap();
        assert!(
            publish.contains("3.00") && publish.trim_end().ends_with('-'),
            "{publish}"
        );
        assert_eq!(r.get("publish p50", "ours"), Some(3.0));
    }
}
