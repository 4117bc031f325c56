//! The admin side Notary v1 never had: deleting a GUN with its signer keys, retention,
//! storage statistics and the audit trail ([`crate::audit`]).
//!
//! [`Admin`] holds the operations; two front ends use them: the admin listener
//! ([`http`], its own address, client certificates required) and the `notary-server admin`
//! command (`main.rs`), which opens the configured database directly. The listener also
//! serves a read-only HTML console ([`console`]). Scheduled pruning
//! ([`Admin::spawn_retention`]) runs inside the server.

pub mod console;
mod expiry;
pub mod http;

pub use expiry::Expiring;

use std::sync::Arc;

use notary_tuf::CryptoService;
use serde::Serialize;

use crate::audit::{Action, Actor, Audit, AuditEntry, AuditQuery};
use crate::storage::{MetaStore, PrunePolicy, PruneReport, SqlStore, StatsRow, StoreError};

/// A server-held key of a deleted GUN, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyOutcome {
    /// TUF key ID.
    pub key_id: String,
    /// The role it was made for.
    pub role: String,
    /// Deleted in the signer (false on a dry run or when the signer refused).
    pub deleted: bool,
    /// Why it was not deleted, when the signer refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a GUN delete removed (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteReport {
    /// The GUN.
    pub gun: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Metadata rows (all roles, all versions).
    pub rows: i64,
    /// Their bytes.
    pub bytes: i64,
    /// The server-held keys (timestamp, and snapshot when server-managed).
    pub keys: Vec<KeyOutcome>,
}

/// Admin operations over one SQL store and the signer.
#[derive(Clone)]
pub struct Admin {
    store: SqlStore,
    crypto: Arc<dyn CryptoService>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("store", &self.store).finish()
    }
}

impl Admin {
    /// Operations on `store`, deleting keys through `crypto`.
    pub fn new(store: SqlStore, crypto: Arc<dyn CryptoService>) -> Admin {
        Admin { store, crypto }
    }

    /// The store.
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Removes the GUN's metadata (one transaction, with its changefeed `deletion` record as
    /// Go writes it and an audit row), then deletes its server-held keys in the signer
    /// (Go's `DeleteKey`, which Go's signer has too) and forgets them. A key the signer
    /// refuses stays listed, so running the delete again retries it.
    pub async fn delete_gun(
        &self,
        gun: &str,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<DeleteReport, StoreError> {
        let stats = self.store.stats(Some(gun)).await?;
        let keys = self.store.server_keys_of(gun).await?;
        let mut report = DeleteReport {
            gun: gun.to_owned(),
            dry_run,
            rows: stats.rows,
            bytes: stats.bytes,
            keys: keys
                .iter()
                .map(|(key_id, role)| KeyOutcome {
                    key_id: key_id.clone(),
                    role: role.clone(),
                    deleted: false,
                    error: None,
                })
                .collect(),
        };
        if dry_run {
            return Ok(report);
        }
        let detail = serde_json::json!({
            "rows": stats.rows,
            "bytes": stats.bytes,
            "keys": keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        });
        let audit = Audit::new(Action::AdminDelete, actor).with_detail(detail);
        self.store.delete_as(gun, &audit).await?;
        let mut deleted = Vec::new();
        for outcome in &mut report.keys {
            match self.crypto.delete_key(&outcome.key_id).await {
                Ok(()) => {
                    outcome.deleted = true;
                    deleted.push(outcome.key_id.clone());
                    let audit = Audit::new(Action::KeyDelete, actor)
                        .with_detail(serde_json::json!({ "key_id": outcome.key_id }));
                    self.store
                        .audit_record(gun, Some(&outcome.role), &audit)
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(%gun, key_id = %outcome.key_id, error = %e, "signer did not delete the key");
                    outcome.error = Some(e.to_string());
                }
            }
        }
        self.store.forget_server_keys(gun, &deleted).await?;
        tracing::warn!(%gun, rows = stats.rows, keys = deleted.len(), actor = %actor.name, "deleted repository");
        Ok(report)
    }

    /// Prunes one GUN, or every GUN.
    pub async fn prune(
        &self,
        gun: Option<&str>,
        policy: &PrunePolicy,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<PruneReport, StoreError> {
        match gun {
            Some(gun) => {
                self.store
                    .prune_gun(gun, policy, dry_run, actor, chrono::Utc::now())
                    .await
            }
            None => self.store.prune_all(policy, dry_run, actor).await,
        }
    }

    /// Storage statistics of the server or one GUN.
    pub async fn stats(&self, gun: Option<&str>) -> Result<StatsRow, StoreError> {
        self.store.stats(gun).await
    }

    /// One page of the audit trail.
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit_query(query).await
    }

    /// Runs `policy` over every GUN every `interval` (the first run one interval after the
    /// start, so restarts cause no burst).
    pub fn spawn_retention(
        &self,
        policy: PrunePolicy,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let admin = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match admin.prune(None, &policy, false, &Actor::server()).await {
                    Ok(r) => tracing::info!(
                        guns = r.guns,
                        guns_pruned = r.guns_pruned,
                        rows = r.rows,
                        bytes = r.bytes,
                        "scheduled prune done"
                    ),
                    Err(e) => tracing::warn!(error = %e, "scheduled prune failed"),
                }
            }
        })
    }
}

/// A `notary-server admin` command (the binary parses the command line into this).
#[derive(Debug, Clone)]
pub enum Command {
    /// Print the audit trail as JSON Lines, oldest first.
    AuditExport(AuditQuery),
    /// Delete a GUN with its server-held signer keys.
    DeleteGun {
        /// The GUN.
        gun: String,
        /// Report only.
        dry_run: bool,
    },
    /// Prune superseded versions of one GUN or all.
    Prune {
        /// One GUN, or all.
        gun: Option<String>,
        /// What to keep.
        policy: PrunePolicy,
        /// Report only.
        dry_run: bool,
    },
    /// Rows, bytes and versions per role.
    Stats {
        /// One GUN, or the whole server.
        gun: Option<String>,
    },
    /// What expires within so many days, soonest first.
    Expiring {
        /// Days from now.
        within_days: u32,
        /// Only this role.
        role: Option<String>,
        /// Only GUNs starting with this.
        prefix: Option<String>,
    },
    /// Rebuild the expiry inventory from every GUN's current metadata.
    ExpiryBackfill,
}

/// Runs `command` against the configured database (and signer, for a delete), printing
/// JSON to `out`.
pub async fn run_command(
    admin: &Admin,
    command: Command,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let actor = Actor::operator();
    match command {
        Command::AuditExport(mut query) => {
            query.limit = crate::audit::MAX_PAGE;
            loop {
                let page = admin.audit(query.clone()).await?;
                let Some(last) = page.last() else { break };
                query.after_id = last.id;
                for entry in &page {
                    writeln!(out, "{}", serde_json::to_string(entry)?)?;
                }
            }
        }
        Command::DeleteGun { gun, dry_run } => {
            let report = admin.delete_gun(&gun, dry_run, &actor).await?;
            print(out, &report)?;
            if report.keys.iter().any(|k| k.error.is_some()) {
                anyhow::bail!("some keys were not deleted in the signer; run the delete again");
            }
        }
        Command::Prune {
            gun,
            policy,
            dry_run,
        } => {
            policy.check().map_err(anyhow::Error::msg)?;
            let report = admin
                .prune(gun.as_deref(), &policy, dry_run, &actor)
                .await?;
            print(out, &report)?;
        }
        Command::Stats { gun } => {
            let stats = admin.stats(gun.as_deref()).await?;
            print(out, &stats)?;
        }
        Command::Expiring {
            within_days,
            role,
            prefix,
        } => {
            let entries = admin
                .expiring(within_days, role, prefix, 100_000, chrono::Utc::now())
                .await?;
            print(out, &entries)?;
        }
        Command::ExpiryBackfill => {
            let guns = admin.store.expiry_backfill().await?;
            print(out, &serde_json::json!({ "guns": guns }))?;
        }
    }
    Ok(())
}

/// Writes `value` as pretty JSON and a newline.
fn print(out: &mut dyn std::io::Write, value: &impl Serialize) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MetaUpdate;
    use notary_tuf::crypto::MemoryCryptoService;

    fn file(role: &str, version: i64) -> MetaUpdate {
        MetaUpdate {
            role: role.into(),
            version,
            data: format!("{{\"{role}\":{version}}}").into_bytes(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scheduled_retention_prunes_on_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
        store.run_migrations().unwrap();
        for v in 1..=4 {
            store
                .update_many("example.com/sched", vec![file("targets", v)])
                .await
                .unwrap();
        }
        let admin = Admin::new(store.clone(), Arc::new(MemoryCryptoService::new()));
        let policy = PrunePolicy {
            keep_versions: Some(1),
            keep_days: None,
        };
        let task = admin.spawn_retention(policy, std::time::Duration::from_millis(100));
        let mut rows = 4;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            rows = store.stats(None).await.unwrap().rows;
            if rows == 1 {
                break;
            }
        }
        task.abort();
        assert_eq!(rows, 1, "the scheduled prune did not run");
        let trail = store
            .audit_query(AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (trail[0].action.as_str(), trail[0].actor_kind.as_str()),
            ("prune", "server")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_reports_keys_the_signer_refuses_and_retries_them() {
        /// A signer that cannot delete (the trait's default).
        struct NoDelete(MemoryCryptoService);
        #[async_trait::async_trait]
        impl CryptoService for NoDelete {
            async fn create_key(
                &self,
                gun: &str,
                role: &str,
                key_type: &notary_tuf::KeyType,
            ) -> Result<notary_tuf::keys::PublicKey, notary_tuf::CryptoError> {
                self.0.create_key(gun, role, key_type).await
            }
            async fn get_key(
                &self,
                key_id: &str,
            ) -> Result<Option<(notary_tuf::keys::PublicKey, String)>, notary_tuf::CryptoError>
            {
                self.0.get_key(key_id).await
            }
            async fn sign(
                &self,
                key_id: &str,
                msg: &[u8],
            ) -> Result<Vec<u8>, notary_tuf::CryptoError> {
                self.0.sign(key_id, msg).await
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
        store.run_migrations().unwrap();
        let gun = "example.com/keys";
        store
            .update_many(gun, vec![file("timestamp", 1)])
            .await
            .unwrap();
        store.record_key(gun, "timestamp", "k-ts").await.unwrap();
        let refusing = Admin::new(
            store.clone(),
            Arc::new(NoDelete(MemoryCryptoService::new())),
        );
        let report = refusing
            .delete_gun(gun, false, &Actor::operator())
            .await
            .unwrap();
        assert_eq!(report.rows, 1);
        assert!(
            !report.keys[0].deleted && report.keys[0].error.is_some(),
            "{report:?}"
        );
        // The key stays listed; a signer that deletes finishes the job on the next run.
        let working = Admin::new(store.clone(), Arc::new(MemoryCryptoService::new()));
        let again = working
            .delete_gun(gun, false, &Actor::operator())
            .await
            .unwrap();
        assert_eq!(again.rows, 0);
        assert!(again.keys[0].deleted, "{again:?}");
        assert!(store.server_keys_of(gun).await.unwrap().is_empty());
    }
}
