//! The expiry gauges ([`crate::http::metrics::Metrics::set_expiry`]), refreshed from the
//! inventory on an interval, off the request path, so a scrape costs nothing and the label
//! sets stay fixed at any number of GUNs: one grouped range scan of the next 90 days, plus an
//! index walk for the soonest expiry of each role and kind with nothing in that window.

use std::time::Duration;

use chrono::Utc;

use crate::http::metrics::Metrics;
use crate::storage::SqlStore;

/// Refreshes `metrics` from `store` now and then every `interval`.
pub fn spawn(store: SqlStore, metrics: Metrics, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let started = std::time::Instant::now();
            match store.expiry_summary(Utc::now()).await {
                Ok(summary) => {
                    metrics.set_expiry(&summary);
                    metrics.observe_expiry_refresh(started.elapsed().as_secs_f64());
                }
                Err(e) => tracing::warn!(error = %e, "expiry metrics not refreshed"),
            }
            tokio::time::sleep(interval).await;
        }
    })
}
