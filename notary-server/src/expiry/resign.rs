//! Re-signing server-held roles ahead of expiry.
//!
//! Reads re-sign a timestamp or server-managed snapshot only once it has expired (Go does
//! the same), so a GUN nobody reads can sit on an expired timestamp, and the first reader
//! after it lapses waits for the signer. This task walks the expiry inventory instead: each
//! pass re-signs the timestamps that expire within `timestamp_margin` and the server-managed
//! snapshots that expire within `snapshot_margin`, at most `batch` of each, soonest first.
//!
//! Several replicas on one database: a pass runs only while its replica holds the
//! `expiry-resign` lease (`server_leases`), renewed each pass and taken over by another
//! replica once it lapses (two intervals). A restarted replica waits a random part of an
//! interval before its first pass, and what another replica re-signed has left the
//! inventory's window, so restarts cause no burst. The snapshot and timestamp writes are the
//! read path's ([`crate::domain::resign_ahead`]): one transaction, version races retried.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use notary_tuf::{CryptoService, KeyType};
use serde::Serialize;

use crate::audit::Actor;
use crate::domain::{resign_ahead, Ctx};
use crate::http::metrics::Metrics;
use crate::storage::{SqlStore, StoreError};

/// The lease that makes one replica at a time re-sign.
pub const LEASE: &str = "expiry-resign";

/// `expiry.*` settings of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResignSettings {
    /// Time between passes (`expiry.resign_interval_seconds`).
    pub interval: Duration,
    /// Timestamps expiring within this are re-signed (`expiry.timestamp_margin_hours`; a
    /// timestamp lives 14 days).
    pub timestamp_margin: chrono::Duration,
    /// Server-managed snapshots expiring within this are re-signed
    /// (`expiry.snapshot_margin_days`; a snapshot lives three years).
    pub snapshot_margin: chrono::Duration,
    /// At most this many timestamps and this many snapshots per pass
    /// (`expiry.resign_batch`).
    pub batch: i64,
}

impl Default for ResignSettings {
    fn default() -> Self {
        ResignSettings {
            interval: Duration::from_secs(3600),
            timestamp_margin: chrono::Duration::days(7),
            snapshot_margin: chrono::Duration::days(30),
            batch: 500,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// This replica held the lease (otherwise nothing was looked at).
    pub leader: bool,
    /// GUNs with a timestamp or snapshot inside its margin.
    pub candidates: usize,
    /// GUNs whose timestamp (and maybe snapshot) was re-signed.
    pub resigned: usize,
    /// GUNs whose re-signing failed (logged; retried next pass).
    pub failed: usize,
}

/// The background re-signer of one replica.
#[derive(Clone)]
pub struct Resigner {
    store: SqlStore,
    crypto: Arc<dyn CryptoService>,
    key_type: KeyType,
    settings: ResignSettings,
    holder: String,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for Resigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resigner")
            .field("settings", &self.settings)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

/// A name for this replica's leases: host, process and a random part (a restarted process
/// is a new holder, so it waits for its predecessor's lease to lapse like any replica).
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

impl Resigner {
    /// A re-signer over `store`, signing through `crypto`.
    pub fn new(
        store: SqlStore,
        crypto: Arc<dyn CryptoService>,
        key_type: KeyType,
        settings: ResignSettings,
    ) -> Resigner {
        Resigner {
            store,
            crypto,
            key_type,
            settings,
            holder: holder_name(),
            metrics: None,
        }
    }

    /// Counts what it re-signs in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Resigner {
        self.metrics = Some(metrics);
        self
    }

    /// This replica's lease holder name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// One pass at `now`.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<PassReport, StoreError> {
        let lapse = chrono::Duration::from_std(self.settings.interval * 2)
            .unwrap_or(chrono::Duration::hours(2));
        if !self
            .store
            .lease_acquire(LEASE, &self.holder, now, now + lapse)
            .await?
        {
            return Ok(PassReport::default());
        }
        let mut report = PassReport {
            leader: true,
            ..PassReport::default()
        };
        let timestamp_before = now + self.settings.timestamp_margin;
        let snapshot_before = now + self.settings.snapshot_margin;
        let mut guns: Vec<String> = Vec::new();
        let timestamps = self
            .store
            .expiring(
                timestamp_before,
                Some("timestamp".to_owned()),
                None,
                self.settings.batch,
            )
            .await?;
        guns.extend(timestamps.into_iter().map(|r| r.gun));
        // Snapshots the owner signs would stay first in line on every pass (nothing the
        // server can do for them), so only those whose key the server made are candidates.
        // A snapshot key made before that record (by Go) is re-signed on read once expired.
        let snapshots = self
            .store
            .expiring(
                snapshot_before,
                Some("snapshot".to_owned()),
                None,
                self.settings.batch,
            )
            .await?;
        for row in snapshots {
            if guns.contains(&row.gun) {
                continue;
            }
            let keys = self.store.server_keys_of(&row.gun).await?;
            if keys.iter().any(|(_, role)| role == "snapshot") {
                guns.push(row.gun);
            }
        }
        report.candidates = guns.len();
        let ctx = Ctx {
            store: &self.store,
            crypto: self.crypto.as_ref(),
            key_type: self.key_type.clone(),
            now,
            actor: Actor::server(),
        };
        let mut snapshots = 0;
        for gun in &guns {
            match resign_ahead(&ctx, gun, timestamp_before, snapshot_before).await {
                Ok(done) if done.timestamp => {
                    report.resigned += 1;
                    snapshots += u64::from(done.snapshot);
                }
                // Nothing of the server's to do.
                Ok(_) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(%gun, error = %e, "re-signing ahead of expiry failed");
                }
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.observe_resigned("timestamp", report.resigned as u64);
            metrics.observe_resigned("snapshot", snapshots);
        }
        if report.candidates > 0 {
            tracing::info!(
                candidates = report.candidates,
                resigned = report.resigned,
                failed = report.failed,
                "re-signed server-held roles ahead of expiry"
            );
        }
        Ok(report)
    }

    /// Runs a pass every interval, the first after a random part of one.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let first = self.settings.interval.mul_f64(rand::random::<f64>());
            tokio::time::sleep(first).await;
            loop {
                if let Err(e) = self.pass(Utc::now()).await {
                    tracing::warn!(error = %e, "expiry re-signing pass failed");
                }
                tokio::time::sleep(self.settings.interval).await;
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::apply_update;
    use crate::storage::{get_current, MetaStore};
    use notary_tuf::test_support::TestRepo;

    /// A SQLite store holding `repo` (server-managed snapshot) uploaded at `at`, and the
    /// signer holding its snapshot and timestamp keys.
    async fn uploaded(
        dir: &std::path::Path,
        repo: &TestRepo,
        at: DateTime<Utc>,
    ) -> (SqlStore, Arc<dyn CryptoService>) {
        let store = SqlStore::open_sqlite(&dir.join("s.db")).unwrap();
        store.run_migrations().unwrap();
        let crypto = upload_into(&store, repo, at).await;
        (store, crypto)
    }

    /// Uploads `repo` (server-managed snapshot) into `store` at `at`; returns a signer
    /// holding its snapshot and timestamp keys.
    async fn upload_into(
        store: &SqlStore,
        repo: &TestRepo,
        at: DateTime<Utc>,
    ) -> Arc<dyn CryptoService> {
        let crypto: Arc<dyn CryptoService> = Arc::new(repo.server_crypto());
        let files = repo.build();
        let ctx = Ctx {
            store,
            crypto: crypto.as_ref(),
            key_type: KeyType::Ecdsa,
            now: at,
            actor: Actor::server(),
        };
        let parts = vec![
            ("root".to_owned(), files.root.clone()),
            ("targets".to_owned(), files.targets["targets"].clone()),
        ];
        apply_update(&ctx, &repo.gun, parts).await.unwrap();
        crypto
    }

    fn settings() -> ResignSettings {
        ResignSettings {
            interval: Duration::from_secs(60),
            ..ResignSettings::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timestamps_inside_the_margin_are_resigned_once_by_one_replica() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
        store.run_migrations().unwrap();
        resign_pass_on(&store).await;
    }

    /// One re-signing pass and the lease between two replicas, on an empty migrated store
    /// (run on MySQL and PostgreSQL by `storage::tests::expiry`).
    pub(crate) async fn resign_pass_on(store: &SqlStore) {
        let store = store.clone();
        let now = Utc::now();
        // Uploaded eight days ago: its 14-day timestamp has six days left, inside the
        // default seven-day margin. A second GUN, uploaded now, is outside it.
        let old = TestRepo::new_at("example.com/old", now - chrono::Duration::days(8));
        let crypto = upload_into(&store, &old, old.now).await;
        let fresh = TestRepo::new_at("example.com/fresh", now);
        {
            let ctx = Ctx {
                store: &store,
                crypto: &fresh.server_crypto(),
                key_type: KeyType::Ecdsa,
                now,
                actor: Actor::server(),
            };
            let files = fresh.build();
            apply_update(
                &ctx,
                &fresh.gun,
                vec![
                    ("root".to_owned(), files.root.clone()),
                    ("targets".to_owned(), files.targets["targets"].clone()),
                ],
            )
            .await
            .unwrap();
        }
        let a = Resigner::new(store.clone(), crypto.clone(), KeyType::Ecdsa, settings());
        let b = Resigner::new(store.clone(), crypto.clone(), KeyType::Ecdsa, settings());

        let report = a.pass(now).await.unwrap();
        assert_eq!(
            report,
            PassReport {
                leader: true,
                candidates: 1,
                resigned: 1,
                failed: 0
            }
        );
        let ts = get_current(&store, &old.gun, "timestamp")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ts.version, 2);
        let expires = notary_tuf::SignedFile::parse(&ts.data)
            .unwrap()
            .common
            .expires;
        assert!(expires > now + chrono::Duration::days(13), "{expires}");
        // The inventory moved on: the next pass finds nothing, and the fresh GUN was never
        // touched.
        assert_eq!(a.pass(now).await.unwrap().candidates, 0);
        let fresh_ts = store.get_latest(&fresh.gun, "timestamp").await.unwrap();
        assert_eq!(fresh_ts.unwrap().version, 1);

        // Another replica is not the leader while the lease holds ...
        assert_eq!(b.pass(now).await.unwrap(), PassReport::default());
        // ... and takes over once it lapses (two intervals without a renewal).
        let later = now + chrono::Duration::seconds(121);
        assert!(b.pass(later).await.unwrap().leader);
        assert!(!a.pass(later).await.unwrap().leader);
        let (holder, _) = store.lease_holder(LEASE).await.unwrap().unwrap();
        assert_eq!(holder, b.holder());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn server_snapshots_inside_their_margin_are_resigned_with_the_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        // A snapshot the server made 3 years less 20 days ago: 20 days left, inside 30.
        let at = now - chrono::Duration::days(3 * 365 - 20);
        let repo = TestRepo::new_at("example.com/snap", at);
        let (store, crypto) = uploaded(dir.path(), &repo, at).await;
        let r = Resigner::new(store.clone(), crypto, KeyType::Ecdsa, settings());
        let report = r.pass(now).await.unwrap();
        assert_eq!((report.candidates, report.resigned), (1, 1), "{report:?}");
        let snap = get_current(&store, &repo.gun, "snapshot")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snap.version, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshots_their_owner_signs_are_not_candidates() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let at = now - chrono::Duration::days(3 * 365 - 20);
        let repo = TestRepo::new_at("example.com/owner", at);
        let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
        store.run_migrations().unwrap();
        // The signer holds the timestamp key only; the owner uploads the snapshot.
        let crypto = Arc::new(notary_tuf::MemoryCryptoService::new());
        crypto.add_key(repo.timestamp_key.clone(), &repo.gun, "timestamp");
        let files = repo.build();
        let ctx = |now| Ctx {
            store: &store,
            crypto: crypto.as_ref(),
            key_type: KeyType::Ecdsa,
            now,
            actor: Actor::server(),
        };
        let parts = vec![
            ("root".to_owned(), files.root.clone()),
            ("targets".to_owned(), files.targets["targets"].clone()),
            ("snapshot".to_owned(), files.snapshot.clone()),
        ];
        apply_update(&ctx(at), &repo.gun, parts).await.unwrap();
        // A read yesterday got a fresh timestamp; the snapshot has 20 days left.
        crate::domain::current_timestamp_or_snapshot(
            &ctx(now - chrono::Duration::days(1)),
            &repo.gun,
            "timestamp",
        )
        .await
        .unwrap();
        let r = Resigner::new(store.clone(), crypto.clone(), KeyType::Ecdsa, settings());
        let report = r.pass(now).await.unwrap();
        assert_eq!((report.candidates, report.resigned), (0, 0), "{report:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn summary_counts_guns_per_role_class_and_window() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let old = TestRepo::new_at("example.com/old", now - chrono::Duration::days(8));
        let (store, _) = uploaded(dir.path(), &old, old.now).await;
        let summary = store.expiry_summary(now).await.unwrap();
        assert_eq!(summary.len(), 10);
        let ts = summary
            .iter()
            .find(|s| s.role == "timestamp" && s.kind == "metadata")
            .unwrap();
        // Six days left: within 7, 30 and 90 days, not 1, not expired.
        assert_eq!((ts.expired, ts.within), (0, [0, 1, 1, 1]));
        let root = summary
            .iter()
            .find(|s| s.role == "root" && s.kind == "certificate")
            .unwrap();
        // Ten years off: counted nowhere, but its soonest expiry is known.
        assert_eq!((root.expired, root.within), (0, [0, 0, 0, 0]));
        assert!(root.soonest.unwrap() > now + chrono::Duration::days(3000));
        let delegation = summary
            .iter()
            .find(|s| s.role == "delegation" && s.kind == "metadata")
            .unwrap();
        assert_eq!(delegation.soonest, None);

        // Exported as gauges with fixed labels.
        let metrics = Metrics::new();
        metrics.set_expiry(&summary);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(
            text.contains(
                "notary_server_expiry_guns{kind=\"metadata\",role=\"timestamp\",window=\"7d\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains(
            "notary_server_expiry_soonest_timestamp_seconds{kind=\"certificate\",role=\"root\"}"
        ));
        assert!(!text.contains("example.com"), "no per-GUN labels");
    }
}
