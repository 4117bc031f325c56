//! Background health checks behind `GET /_notary_server/health` (spec §10).
//!
//! Checks run every [`CHECK_INTERVAL`] in a background task; each run replaces
//! the previous result. Until the first run completes the server reports
//! healthy, as Go does. The report maps a failing check's name
//! (`DB operational`, `Trust operational`) to its error text.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

/// How often the checks run.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// One named check: `Ok` when healthy, else the error text to report.
pub type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The registered checks and their latest results.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(String, CheckFn)>,
    failures: Arc<RwLock<BTreeMap<String, String>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.checks.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Health")
            .field("checks", &names)
            .field("failures", &self.failures())
            .finish()
    }
}

impl Health {
    /// No checks: always healthy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a check under `name`.
    pub fn register(&mut self, name: &str, check: CheckFn) {
        self.checks.push((name.to_owned(), check));
    }

    /// Runs every check once and replaces the stored result.
    pub async fn run_once(&self) {
        let mut failures = BTreeMap::new();
        for (name, check) in &self.checks {
            if let Err(err) = check().await {
                tracing::error!(check = %name, error = %err, "health check failed");
                failures.insert(name.clone(), err);
            }
        }
        *self.failures.write().unwrap_or_else(|e| e.into_inner()) = failures;
    }

    /// Runs the checks every [`CHECK_INTERVAL`], first after one interval, until
    /// the returned task is aborted or the runtime stops.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(CHECK_INTERVAL);
            // The first tick completes immediately; Go waits one interval.
            ticker.tick().await;
            loop {
                ticker.tick().await;
                health.run_once().await;
            }
        })
    }

    /// Failing checks of the latest run (empty = healthy).
    pub fn failures(&self) -> BTreeMap<String, String> {
        self.failures
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    fn check(result: Result<(), &'static str>) -> CheckFn {
        Arc::new(move || async move { result.map_err(str::to_owned) }.boxed())
    }

    #[tokio::test]
    async fn database_and_signer_are_reported_separately() {
        let mut health = Health::new();
        health.register("DB operational", check(Err("db down")));
        health.register("Trust operational", check(Ok(())));
        // Healthy until the first run, as in Go.
        assert!(health.failures().is_empty());
        health.run_once().await;
        assert_eq!(
            health.failures(),
            BTreeMap::from([("DB operational".to_owned(), "db down".to_owned())])
        );

        let mut health = Health::new();
        health.register("DB operational", check(Err("db down")));
        health.register("Trust operational", check(Err("signer down")));
        health.run_once().await;
        assert_eq!(
            health.failures(),
            BTreeMap::from([
                ("DB operational".to_owned(), "db down".to_owned()),
                ("Trust operational".to_owned(), "signer down".to_owned()),
            ])
        );
    }

    #[tokio::test]
    async fn each_run_replaces_the_previous_result() {
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = healthy.clone();
        let mut health = Health::new();
        health.register(
            "Trust operational",
            Arc::new(move || {
                let ok = flag.load(std::sync::atomic::Ordering::SeqCst);
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err("down".to_owned())
                    }
                }
                .boxed()
            }),
        );
        health.run_once().await;
        assert_eq!(health.failures().len(), 1);
        healthy.store(true, std::sync::atomic::Ordering::SeqCst);
        health.run_once().await;
        assert!(health.failures().is_empty());
    }
}
