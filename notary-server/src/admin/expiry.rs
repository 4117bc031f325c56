//! Expiry answers of the admin API: what expires soon, and one GUN's whole picture.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::Admin;
use crate::expiry::repair;
use crate::storage::{get_current, referenced_roles, InventoryRow, MetaStore, StoreError};

/// One entry of `expiring`, soonest first: the inventory row, plus how near and who fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    /// The inventory row (gun, role, kind, key, expiry, version).
    #[serde(flatten)]
    pub row: InventoryRow,
    /// Whole days from now, negative once expired.
    pub days_left: i64,
    /// `server` or `owner`.
    pub who_can_fix: &'static str,
    /// The repair command, for the owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl Admin {
    /// Whether the server holds `gun`'s snapshot key (a server-managed snapshot).
    async fn server_snapshot(&self, gun: &str) -> Result<bool, StoreError> {
        Ok(self
            .store()
            .server_keys_of(gun)
            .await?
            .iter()
            .any(|(_, role)| role == "snapshot"))
    }

    fn entry(row: InventoryRow, now: DateTime<Utc>, server_snapshot: bool) -> Expiring {
        let days_left = (row.expires - now).num_days();
        let fix = repair(
            &row.gun,
            &row.role,
            row.kind,
            server_snapshot,
            days_left,
            row.expires <= now,
        );
        Expiring {
            days_left,
            row,
            who_can_fix: fix.who_can_fix,
            command: fix.command,
        }
    }

    /// What expires within `within_days` (expired included), soonest first.
    pub async fn expiring(
        &self,
        within_days: u32,
        role: Option<String>,
        prefix: Option<String>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Expiring>, StoreError> {
        let before = now + chrono::Duration::days(i64::from(within_days));
        let rows = self.store().expiring(before, role, prefix, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let server_snapshot = row.role == "snapshot" && self.server_snapshot(&row.gun).await?;
            out.push(Self::entry(row, now, server_snapshot));
        }
        Ok(out)
    }

    /// One GUN: each current role's version, sha256, expiry, keys and certificates, the
    /// delegations, the server-held keys, storage figures and the last changes.
    pub async fn gun_report(&self, gun: &str, now: DateTime<Utc>) -> Result<Value, StoreError> {
        let store = self.store();
        let server_keys = store.server_keys_of(gun).await?;
        let server_snapshot = server_keys.iter().any(|(_, r)| r == "snapshot");
        let expiries: Vec<Expiring> = store
            .expiry_of(gun)
            .await?
            .into_iter()
            .map(|r| Self::entry(r, now, server_snapshot))
            .collect();
        let mut roles = serde_json::Map::new();
        let mut delegations = Vec::new();
        if let Some(snapshot) = get_current(store, gun, "snapshot").await? {
            let mut names = vec!["timestamp".to_owned(), "snapshot".to_owned()];
            names.extend(referenced_roles(&snapshot)?.into_iter().map(|(r, _)| r));
            for role in names {
                let Some(file) = get_current(store, gun, &role).await? else {
                    continue;
                };
                let parsed = notary_tuf::SignedFile::parse(&file.data).ok();
                let mut info = json!({
                    "version": file.version,
                    "sha256": file.sha256,
                    "stored_at": file.created_at,
                    "expires": parsed.as_ref().map(|p| p.common.expires),
                });
                if role == "root" {
                    if let Some(root) = parsed.as_ref().and_then(|p| p.root().ok()) {
                        let keys: serde_json::Map<String, Value> = root
                            .roles
                            .iter()
                            .map(|(name, r)| {
                                (
                                    name.clone(),
                                    json!({"keyids": r.keyids, "threshold": r.threshold}),
                                )
                            })
                            .collect();
                        info["roles"] = Value::Object(keys);
                    }
                }
                if role == "targets" || role.starts_with("targets/") {
                    if let Some(t) = parsed.as_ref().and_then(|p| p.targets().ok()) {
                        info["targets"] = json!(t.targets.len());
                        for d in &t.delegations.roles {
                            delegations.push(json!({
                                "role": d.name, "parent": role, "paths": d.paths,
                                "threshold": d.threshold, "keyids": d.keyids,
                            }));
                        }
                    }
                }
                roles.insert(role, info);
            }
        }
        let changes = store.get_changes(-1, -10, Some(gun)).await?;
        let stats = store.stats(Some(gun)).await?;
        Ok(json!({
            "gun": gun,
            "roles": roles,
            "delegations": delegations,
            "expiries": expiries,
            "server_keys": server_keys.iter().map(|(k, r)| json!({"key_id": k, "role": r})).collect::<Vec<_>>(),
            "stats": stats,
            "last_changes": changes.iter().rev().map(|c| json!({
                "id": c.id, "at": c.created_at, "version": c.version, "category": c.category,
            })).collect::<Vec<_>>(),
        }))
    }
}
