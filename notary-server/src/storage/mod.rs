//! Storage of TUF metadata per GUN, and the changefeed.
//!
//! [`MetaStore`] is the narrow contract every backend implements (Go:
//! `server/storage/interface.go`). Two implementations exist:
//!
//! - [`SqlStore`]: MySQL/MariaDB or SQLite through diesel, with one r2d2 pool;
//!   blocking diesel calls run on tokio's blocking pool.
//! - [`MemoryStore`]: a process-local store with the same semantics, for tests
//!   of the layers above.
//!
//! "Current" metadata is not a store method: [`get_current`] resolves it the way
//! Go's `TUFMetaStorage` does (timestamp → snapshot by checksum → role by
//! checksum), on top of any backend, so all backends agree.
//!
//! # Case sensitivity
//! GUNs and roles match byte for byte on every backend, as token scopes do (a
//! token for `Alice/app` must not act on `alice/app`). Go's MySQL tables use a
//! case-insensitive `*_general_ci` collation and are left exactly as Go creates
//! them, so the SQL store adds a `HEX(gun)` comparison to each lookup (after
//! `gun = ?`, which keeps the index in use). Their unique key (gun, role,
//! version) still equates GUNs that differ only in case, so on MySQL a write to
//! a GUN whose case variant already has rows is refused with
//! [`StoreError::GunCaseConflict`] rather than mixed into it. SQLite and memory
//! compare exactly throughout. `sha256` is still matched case-insensitively on
//! MySQL (stock clients send lower-case hex).
//!
//! # Testing
//! One conformance suite (`storage::tests`) runs against every backend. The
//! MySQL part needs `NOTARY_TEST_MYSQL_URL` (e.g.
//! `mysql://notary_test:notary_test_pw@127.0.0.1:3306`); each test creates a
//! randomly named database and drops it afterwards. Without the variable the
//! MySQL tests print a skip message and pass.

mod audit_sql;
mod console_sql;
mod expiry_sql;
mod lease_sql;
mod memory;
mod retention_sql;
pub mod schema;
mod sql;
mod tlog_sql;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};

use crate::audit::Audit;
use crate::cache::MetaCache;
pub use console_sql::{GunSummary, Soonest};
pub use expiry_sql::{ExpirySummary, InventoryRow, ROLE_CLASSES, SUMMARY_WINDOWS};
pub use memory::MemoryStore;
pub use retention_sql::{PrunePolicy, PruneReport, RoleStats, StatsRow};
pub use sql::{PoolOptions, SqlStore};
pub use tlog_sql::{Integrated, LogLeaf, LogState};

/// Role name of the timestamp metadata: its rows feed the changefeed.
pub const TIMESTAMP_ROLE: &str = "timestamp";
/// Role name of the snapshot metadata.
pub const SNAPSHOT_ROLE: &str = "snapshot";
/// Changefeed category of a new timestamp version.
pub const CATEGORY_UPDATE: &str = "update";
/// Changefeed category of a deleted GUN.
pub const CATEGORY_DELETION: &str = "deletion";

/// One stored version of one role's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Role name (`root`, `targets`, `snapshot`, `timestamp`, `targets/...`).
    pub role: String,
    /// `signed.version` of the file, as given by the writer.
    pub version: i64,
    /// The exact bytes that were uploaded or generated.
    pub data: Vec<u8>,
    /// Lower-case hex SHA-256 of `data`.
    pub sha256: String,
    /// When the row was written (UTC, whole seconds).
    pub created_at: DateTime<Utc>,
    /// Equal to `created_at`: rows are never updated (kept because Go serves
    /// it as Last-Modified for current metadata).
    pub updated_at: DateTime<Utc>,
}

/// One file to write in [`MetaStore::update_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaUpdate {
    /// Role name.
    pub role: String,
    /// `signed.version` of `data`; must fit a 32-bit signed integer (Go's column type).
    pub version: i64,
    /// Exact bytes to store.
    pub data: Vec<u8>,
}

/// One changefeed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Cursor value; strictly increasing in insertion order.
    pub id: i64,
    /// When the change was recorded (UTC, whole seconds).
    pub created_at: DateTime<Utc>,
    /// GUN the change belongs to, as spelled by the writer.
    pub gun: String,
    /// New timestamp version for updates; 0 for deletions.
    pub version: i64,
    /// Hex SHA-256 of the new timestamp; empty for deletions.
    pub sha256: String,
    /// [`CATEGORY_UPDATE`] or [`CATEGORY_DELETION`].
    pub category: String,
}

/// Storage failures. The HTTP layer maps `OldVersion` to 400 `VERSION`,
/// `Unavailable` to 503 and `Other` to 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A written version is not newer than what is stored (or collides with a
    /// concurrent writer, or is duplicated within the batch).
    #[error("old version")]
    OldVersion,
    /// The database cannot be reached (refused, gone away, pool timeout).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: corrupt stored data, unexpected database errors.
    #[error("storage error: {0}")]
    Other(String),
    /// MySQL only: another GUN that differs from this one only in letter case (or
    /// trailing spaces) has rows, and Go's case-insensitive unique key would mix the two
    /// repositories. The write is refused; nothing is written.
    #[error("repository name {0:?} differs only in letter case from an existing repository")]
    GunCaseConflict(String),
}

/// The storage contract (Go: `server/storage/interface.go`).
///
/// All lookups match GUN and role byte for byte and return `Ok(None)` when
/// nothing matches.
#[async_trait::async_trait]
pub trait MetaStore: Send + Sync {
    /// Highest-version row of (gun, role); `None` if there is none.
    ///
    /// This is the raw latest row, not the "current" one certified by the
    /// timestamp: use [`get_current`] for that.
    async fn get_latest(&self, gun: &str, role: &str) -> Result<Option<StoredFile>, StoreError>;

    /// The row of (gun, role) whose data hashes to `sha256_hex`.
    async fn get_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Option<StoredFile>, StoreError>;

    /// The row of (gun, role) with this version. `version <= 0` is always
    /// `None` (Go's SQL store returned an arbitrary row for 0).
    async fn get_version(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<StoredFile>, StoreError>;

    /// Writes a batch all-or-nothing (spec §11.4).
    ///
    /// `OldVersion` when the batch holds one (role, version) twice, when a
    /// stored row of a batch role has a version `>=` that role's smallest
    /// version in the batch, or when a concurrent writer inserted a colliding
    /// row first. Otherwise the rows are inserted in batch order in one
    /// transaction with `created_at = updated_at = now`, and each `timestamp`
    /// row is followed by a changefeed `update` record. On any error nothing
    /// is written. An empty batch is a no-op.
    async fn update_many(&self, gun: &str, updates: Vec<MetaUpdate>) -> Result<(), StoreError>;

    /// [`MetaStore::update_many`], also writing one audit row per file ([`crate::audit`]) in
    /// the same transaction. Stores without an audit trail (memory) only write.
    async fn update_many_as(
        &self,
        gun: &str,
        updates: Vec<MetaUpdate>,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let _ = audit;
        self.update_many(gun, updates).await
    }

    /// [`MetaStore::delete`], also writing an audit row in the same transaction.
    async fn delete_as(&self, gun: &str, audit: &Audit) -> Result<u64, StoreError> {
        let _ = audit;
        self.delete(gun).await
    }

    /// [`MetaStore::record_key`], also writing an audit row when the record is new.
    async fn record_key_as(
        &self,
        gun: &str,
        role: &str,
        key_id: &str,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let _ = audit;
        self.record_key(gun, role, key_id).await
    }

    /// Removes every row of exactly this GUN (all roles, all versions) in one
    /// transaction; if any row was removed, appends a changefeed `deletion`
    /// record (version 0, empty sha256). Returns the number of rows removed.
    async fn delete(&self, gun: &str) -> Result<u64, StoreError>;

    /// Changefeed page (spec §11.5).
    ///
    /// Reversed when `change_id < 0` or `records < 0`; at most `|records|`
    /// records (the caller maps 0 to 100). Forward: ids `> change_id`, oldest
    /// first. Reversed: ids `< change_id` when `change_id > 0` (else all), the
    /// newest ones. The result is always ordered oldest → newest. `gun`
    /// filters on an exact GUN.
    async fn get_changes(
        &self,
        change_id: i64,
        records: i64,
        gun: Option<&str>,
    ) -> Result<Vec<Change>, StoreError>;

    /// `Ok` when the store can serve requests (SQL: `tuf_files` is readable).
    async fn check_health(&self) -> Result<(), StoreError>;

    /// Records that the signer made key `key_id` for (`gun`, `role`) at this server's request
    /// (our own table, `server_key_owners`; Go keeps no such record). A key already recorded
    /// keeps its first record. GUNs are compared byte for byte.
    async fn record_key(&self, gun: &str, role: &str, key_id: &str) -> Result<(), StoreError>;

    /// The (gun, role) [`MetaStore::record_key`] recorded for `key_id`, if any.
    async fn key_owner(&self, key_id: &str) -> Result<Option<(String, String)>, StoreError>;

    /// The store's cache, if it has one. Callers use its content-keyed memos
    /// ([`MetaCache::memo_reference`], [`MetaCache::memo_fresh`]) to skip re-parsing
    /// files; the row cache itself is applied inside the store.
    fn cache(&self) -> Option<&MetaCache> {
        None
    }
}

/// The current version of `role` in `gun` (spec §11.3), for every backend.
///
/// - `timestamp`: the latest timestamp row.
/// - `snapshot`: the snapshot whose sha256 the current timestamp names in
///   `signed.meta.snapshot.hashes.sha256`.
/// - any other role: the row whose sha256 the current snapshot names in
///   `signed.meta[role].hashes.sha256`.
///
/// `None` when there is no timestamp, when a referenced file is not stored,
/// or when the role is not listed in the current snapshot. Unparsable JSON or
/// a missing/invalid hash in the chain gives [`StoreError::Other`].
pub async fn get_current(
    store: &dyn MetaStore,
    gun: &str,
    role: &str,
) -> Result<Option<StoredFile>, StoreError> {
    let Some(timestamp) = store.get_latest(gun, TIMESTAMP_ROLE).await? else {
        return Ok(None);
    };
    if role == TIMESTAMP_ROLE {
        return Ok(Some(timestamp));
    }
    let cache = store.cache();
    let snapshot_hash =
        memo_referenced_sha256(cache, &timestamp, SNAPSHOT_ROLE)?.ok_or_else(|| {
            StoreError::Other(format!(
                "timestamp version {} of {gun} lacks meta.snapshot.hashes.sha256",
                timestamp.version
            ))
        })?;
    let Some(snapshot) = store
        .get_checksum(gun, SNAPSHOT_ROLE, &snapshot_hash)
        .await?
    else {
        return Ok(None);
    };
    if role == SNAPSHOT_ROLE {
        return Ok(Some(snapshot));
    }
    match memo_referenced_sha256(cache, &snapshot, role)? {
        Some(hash) => store.get_checksum(gun, role, &hash).await,
        None => Ok(None),
    }
}

/// [`referenced_sha256`] through the cache's content-keyed memo, when there is a cache.
fn memo_referenced_sha256(
    cache: Option<&MetaCache>,
    file: &StoredFile,
    role: &str,
) -> Result<Option<String>, StoreError> {
    let Some(cache) = cache else {
        return referenced_sha256(file, role);
    };
    if let Some(known) = cache.memo_reference(&file.sha256, role) {
        return Ok(known);
    }
    let found = referenced_sha256(file, role)?;
    // Only trust the memo key if it really is this content's hash.
    if file.sha256 == sha256_hex(&file.data) {
        cache.put_memo_reference(&file.sha256, role, found.clone());
    }
    Ok(found)
}

/// Every role `file` (a snapshot) lists under `signed.meta`, with the hex sha256 it names.
pub(crate) fn referenced_roles(file: &StoredFile) -> Result<Vec<(String, String)>, StoreError> {
    let json: serde_json::Value = serde_json::from_slice(&file.data).map_err(|e| {
        StoreError::Other(format!(
            "stored {} version {} is not JSON: {e}",
            file.role, file.version
        ))
    })?;
    let roles: Vec<String> = json
        .get("signed")
        .and_then(|s| s.get("meta"))
        .and_then(|m| m.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut found = Vec::with_capacity(roles.len());
    for role in roles {
        if let Some(sha) = referenced_sha256(file, &role)? {
            found.push((role, sha));
        }
    }
    Ok(found)
}

/// Hex sha256 that `file` (a timestamp or snapshot) lists for `role` under
/// `signed.meta`; `None` if the role is not listed at all.
fn referenced_sha256(file: &StoredFile, role: &str) -> Result<Option<String>, StoreError> {
    let corrupt = |what: &str| {
        StoreError::Other(format!(
            "stored {} version {} {what}",
            file.role, file.version
        ))
    };
    let json: serde_json::Value =
        serde_json::from_slice(&file.data).map_err(|e| corrupt(&format!("is not JSON: {e}")))?;
    let meta = json
        .get("signed")
        .and_then(|s| s.get("meta"))
        .and_then(|m| m.as_object())
        .ok_or_else(|| corrupt("has no signed.meta object"))?;
    let Some(entry) = meta.get(role) else {
        return Ok(None);
    };
    let b64 = entry
        .get("hashes")
        .and_then(|h| h.get("sha256"))
        .and_then(|h| h.as_str())
        .ok_or_else(|| corrupt(&format!("has no sha256 for {role}")))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| corrupt(&format!("has a bad sha256 for {role}: {e}")))?;
    Ok(Some(hex::encode(raw)))
}

/// Lower-case hex SHA-256 of `data`, as stored in the `sha256` columns.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// "Now" as stored: UTC truncated to whole seconds, because MySQL's
/// `TIMESTAMP` columns hold no fractions and all backends should agree.
pub(crate) fn now_utc() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Steps 1 and the version range check of §11.4, shared by all backends.
/// Returns the smallest batch version per role.
pub(crate) fn check_batch(updates: &[MetaUpdate]) -> Result<HashMap<&str, i64>, StoreError> {
    let mut seen = std::collections::HashSet::new();
    let mut min_per_role: HashMap<&str, i64> = HashMap::new();
    for u in updates {
        // The SQL columns are INT (Go's schema); reject what they cannot hold
        // rather than letting backends disagree.
        if i32::try_from(u.version).is_err() {
            return Err(StoreError::Other(format!(
                "version {} of {} is out of range",
                u.version, u.role
            )));
        }
        if !seen.insert((u.role.as_str(), u.version)) {
            return Err(StoreError::OldVersion);
        }
        min_per_role
            .entry(u.role.as_str())
            .and_modify(|v| *v = (*v).min(u.version))
            .or_insert(u.version);
    }
    Ok(min_per_role)
}

/// Page parameters of §11.5, shared by all backends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangeQuery {
    pub reversed: bool,
    pub limit: i64,
    pub change_id: i64,
}

impl ChangeQuery {
    pub(crate) fn new(change_id: i64, records: i64) -> Self {
        ChangeQuery {
            reversed: change_id < 0 || records < 0,
            limit: i64::try_from(records.unsigned_abs()).unwrap_or(i64::MAX),
            change_id,
        }
    }

    /// Whether a record with this id lies on the requested side of the cursor.
    pub(crate) fn id_matches(&self, id: i64) -> bool {
        if !self.reversed {
            id > self.change_id
        } else {
            self.change_id <= 0 || id < self.change_id
        }
    }
}
