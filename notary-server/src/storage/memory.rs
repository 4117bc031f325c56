//! In-process [`MetaStore`] with the same semantics as the SQL store.
//!
//! Unlike Go's memory store it matches GUNs exactly on delete (Go deleted every
//! GUN with the given prefix), matches the role on checksum lookups, and
//! implements the SQL changefeed paging (Go's panicked on negative records).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{
    check_batch, now_utc, sha256_hex, Change, ChangeQuery, MetaStore, MetaUpdate, StoreError,
    StoredFile, CATEGORY_DELETION, CATEGORY_UPDATE, TIMESTAMP_ROLE,
};

/// Memory-backed [`MetaStore`]; contents are lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (gun, role) → version → file. BTreeMap keeps versions ordered.
    files: BTreeMap<(String, String), BTreeMap<i64, StoredFile>>,
    /// Ordered by id.
    changes: Vec<Change>,
    last_change_id: i64,
    /// key ID → (gun, role), see [`MetaStore::record_key`].
    key_owners: BTreeMap<String, (String, String)>,
}

impl Inner {
    fn push_change(&mut self, gun: &str, version: i64, sha256: String, category: &str) {
        self.last_change_id += 1;
        self.changes.push(Change {
            id: self.last_change_id,
            created_at: now_utc(),
            gun: gun.to_owned(),
            version,
            sha256,
            category: category.to_owned(),
        });
    }

    fn versions(&self, gun: &str, role: &str) -> Option<&BTreeMap<i64, StoredFile>> {
        self.files.get(&(gun.to_owned(), role.to_owned()))
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied batch
        // (all checks happen before any insert), so poisoning is ignorable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl MetaStore for MemoryStore {
    async fn get_latest(&self, gun: &str, role: &str) -> Result<Option<StoredFile>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .versions(gun, role)
            .and_then(|v| v.values().next_back())
            .cloned())
    }

    async fn get_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .versions(gun, role)
            // Newest first, as the SQL store orders it.
            .and_then(|v| v.values().rev().find(|f| f.sha256 == sha256_hex))
            .cloned())
    }

    async fn get_version(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<StoredFile>, StoreError> {
        if version <= 0 {
            return Ok(None);
        }
        let inner = self.lock();
        Ok(inner
            .versions(gun, role)
            .and_then(|v| v.get(&version))
            .cloned())
    }

    async fn update_many(&self, gun: &str, updates: Vec<MetaUpdate>) -> Result<(), StoreError> {
        let min_per_role = check_batch(&updates)?;
        let mut inner = self.lock();
        for (role, min) in &min_per_role {
            let newest = inner
                .versions(gun, role)
                .and_then(|v| v.keys().next_back().copied());
            if newest.is_some_and(|newest| newest >= *min) {
                return Err(StoreError::OldVersion);
            }
        }
        let now = now_utc();
        for u in updates {
            let sha256 = sha256_hex(&u.data);
            if u.role == TIMESTAMP_ROLE {
                inner.push_change(gun, u.version, sha256.clone(), CATEGORY_UPDATE);
            }
            let file = StoredFile {
                role: u.role.clone(),
                version: u.version,
                data: u.data,
                sha256,
                created_at: now,
                updated_at: now,
            };
            inner
                .files
                .entry((gun.to_owned(), u.role))
                .or_default()
                .insert(u.version, file);
        }
        Ok(())
    }

    async fn delete(&self, gun: &str) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut removed = 0u64;
        inner.files.retain(|(g, _), versions| {
            if g == gun {
                removed += versions.len() as u64;
                false
            } else {
                true
            }
        });
        if removed > 0 {
            inner.push_change(gun, 0, String::new(), CATEGORY_DELETION);
        }
        Ok(removed)
    }

    async fn get_changes(
        &self,
        change_id: i64,
        records: i64,
        gun: Option<&str>,
    ) -> Result<Vec<Change>, StoreError> {
        let q = ChangeQuery::new(change_id, records);
        let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
        let inner = self.lock();
        let matching = inner
            .changes
            .iter()
            .filter(|c| q.id_matches(c.id) && gun.is_none_or(|g| c.gun == g));
        let mut page: Vec<Change> = if q.reversed {
            matching.rev().take(limit).cloned().collect()
        } else {
            matching.take(limit).cloned().collect()
        };
        if q.reversed {
            page.reverse();
        }
        Ok(page)
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn record_key(&self, gun: &str, role: &str, key_id: &str) -> Result<(), StoreError> {
        self.lock()
            .key_owners
            .entry(key_id.to_owned())
            .or_insert_with(|| (gun.to_owned(), role.to_owned()));
        Ok(())
    }

    async fn key_owner(&self, key_id: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self.lock().key_owners.get(key_id).cloned())
    }
}
