//! The key service the gRPC handlers use: a [`KeyStore`] plus the Go signer's cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notary_tuf::keys::PublicKey;

use super::{creatable_key_type, KeySigner, KeyStore, KeyStoreError, StoredKey};

/// Failure of a [`KeyService`] operation that is not a plain store error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// CreateKey with an algorithm other than exactly `ecdsa` / `ed25519`.
    #[error("algorithm {0} not supported for create key")]
    UnsupportedAlgorithm(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] KeyStoreError),
    /// The key was found but signing failed.
    #[error("signing with key {key_id} failed: {reason}")]
    Signing {
        /// The key ID.
        key_id: String,
        /// Why.
        reason: String,
    },
}

/// Key operations with an in-process cache of decrypted keys, like Go's `CachedKeyService`.
///
/// A key enters the cache on its first successful lookup ([`KeyService::get_key`] or
/// [`KeyService::sign`]; creation alone does not cache it) and leaves it only through
/// [`KeyService::delete_key`] on this process. The cache is per process, unbounded and never
/// expires, so changes made by other processes to a cached key (deletion, re-encryption) are
/// not seen until restart: the same trade-off as Go.
///
/// Go records `last_used` on every signature, a database write (and commit) per Sign. Here
/// the first signature of a key in this process records it, later ones only once
/// [`MARK_ACTIVE_INTERVAL`] has passed since: what `last_used` is for, telling pending keys
/// (never used) from active ones, is unchanged, and the column stays accurate to that
/// interval, while a busy signer no longer writes to its database on every Sign.
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    cache: Mutex<HashMap<String, Arc<StoredKey>>>,
    marked: Mutex<HashMap<String, Instant>>,
    mark_interval: Duration,
}

/// How stale `last_used` may get for a key that keeps signing.
pub const MARK_ACTIVE_INTERVAL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("cached_keys", &self.lock().len())
            .finish()
    }
}

impl KeyService {
    /// Wraps a store.
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
            marked: Mutex::new(HashMap::new()),
            mark_interval: MARK_ACTIVE_INTERVAL,
        }
    }

    /// Sets how stale `last_used` may get for a key that keeps signing (zero: Go's
    /// behaviour, a write on every Sign).
    pub fn with_mark_active_interval(mut self, interval: Duration) -> Self {
        self.mark_interval = interval;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StoredKey>>> {
        // Map operations cannot be left half-done by a panic; keep serving.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if the key is in this process's cache.
    pub fn is_cached(&self, key_id: &str) -> bool {
        self.lock().contains_key(key_id)
    }

    /// Returns the pending key for (gun, role, algorithm) or a new one. `algorithm` must be
    /// exactly `ecdsa` or `ed25519` (case-sensitive, as in Go).
    pub async fn create_key(
        &self,
        gun: &str,
        role: &str,
        algorithm: &str,
    ) -> Result<PublicKey, ServiceError> {
        let key_type = creatable_key_type(algorithm)
            .ok_or_else(|| ServiceError::UnsupportedAlgorithm(algorithm.to_string()))?;
        Ok(self.store.create_key(gun, role, &key_type).await?)
    }

    /// Looks a key up, from the cache or the store (which caches it).
    pub async fn get_key(&self, key_id: &str) -> Result<Arc<StoredKey>, KeyStoreError> {
        if let Some(hit) = self.lock().get(key_id) {
            return Ok(hit.clone());
        }
        let key = Arc::new(self.store.get_key(key_id).await?);
        self.lock().insert(key_id.to_string(), key.clone());
        Ok(key)
    }

    /// Signs `content` as given (no prehash beyond what the algorithm does) and marks the
    /// key active (at most once per [`MARK_ACTIVE_INTERVAL`]). A failure to mark it is
    /// logged only, as in Go.
    pub async fn sign(
        &self,
        key_id: &str,
        content: &[u8],
    ) -> Result<(Arc<StoredKey>, Vec<u8>), ServiceError> {
        let key = self.get_key(key_id).await?;
        let signature = match &key.signer {
            KeySigner::Software(private) => {
                private.sign(content).map_err(|e| ServiceError::Signing {
                    key_id: key_id.to_string(),
                    reason: e.to_string(),
                })?
            }
            // A token call blocks (and may wait for a free session): keep it off the
            // async workers.
            KeySigner::Token(token_key) => {
                let (token_key, content) = (token_key.clone(), content.to_vec());
                tokio::task::spawn_blocking(move || token_key.sign(&content))
                    .await
                    .map_err(|e| ServiceError::Signing {
                        key_id: key_id.to_string(),
                        reason: format!("signing task failed: {e}"),
                    })?
                    .map_err(|e| match e {
                        e @ (KeyStoreError::Unavailable(_) | KeyStoreError::NotFound(_)) => {
                            ServiceError::Store(e)
                        }
                        other => ServiceError::Signing {
                            key_id: key_id.to_string(),
                            reason: other.to_string(),
                        },
                    })?
            }
        };
        if self.mark_due(key_id) {
            match self.store.mark_active(key_id).await {
                Ok(()) => {
                    self.lock_marked()
                        .insert(key_id.to_string(), Instant::now());
                }
                Err(e) => tracing::error!(key_id, error = %e, "could not mark key as active"),
            }
        }
        Ok((key, signature))
    }

    fn lock_marked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.marked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this Sign should record `last_used`.
    fn mark_due(&self, key_id: &str) -> bool {
        self.lock_marked()
            .get(key_id)
            .is_none_or(|at| at.elapsed() >= self.mark_interval)
    }

    /// Drops the key from the cache and soft-deletes it.
    pub async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError> {
        self.lock().remove(key_id);
        self.lock_marked().remove(key_id);
        self.store.delete_key(key_id).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use notary_tuf::keys::KeyType;

    use super::*;
    use crate::keystore::MemoryKeyStore;

    /// A memory store that counts `mark_active` calls.
    #[derive(Default)]
    struct CountingStore {
        inner: MemoryKeyStore,
        marks: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl KeyStore for CountingStore {
        async fn create_key(
            &self,
            gun: &str,
            role: &str,
            key_type: &KeyType,
        ) -> Result<PublicKey, KeyStoreError> {
            self.inner.create_key(gun, role, key_type).await
        }
        async fn get_key(&self, key_id: &str) -> Result<StoredKey, KeyStoreError> {
            self.inner.get_key(key_id).await
        }
        async fn mark_active(&self, key_id: &str) -> Result<(), KeyStoreError> {
            self.marks.fetch_add(1, Ordering::SeqCst);
            self.inner.mark_active(key_id).await
        }
        async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError> {
            self.inner.delete_key(key_id).await
        }
        async fn reencrypt_alias(&self, from: &str, to: &str) -> Result<usize, KeyStoreError> {
            self.inner.reencrypt_alias(from, to).await
        }
        async fn check_health(&self) -> Result<(), KeyStoreError> {
            self.inner.check_health().await
        }
    }

    #[tokio::test]
    async fn last_used_is_written_once_per_interval_per_key() {
        let store = Arc::new(CountingStore::default());
        let keys = KeyService::new(store.clone());
        let a = keys.create_key("g", "timestamp", "ecdsa").await.unwrap();
        let b = keys.create_key("g", "snapshot", "ed25519").await.unwrap();
        for _ in 0..5 {
            keys.sign(&a.key_id(), b"msg").await.unwrap();
        }
        assert_eq!(
            store.marks.load(Ordering::SeqCst),
            1,
            "first Sign of a marks it"
        );
        keys.sign(&b.key_id(), b"msg").await.unwrap();
        assert_eq!(store.marks.load(Ordering::SeqCst), 2, "each key is marked");
        // Deleting forgets the mark.
        keys.delete_key(&b.key_id()).await.unwrap();
        assert!(!keys.lock_marked().contains_key(&b.key_id()));
    }

    #[tokio::test]
    async fn a_zero_interval_marks_on_every_sign_as_go_does() {
        let store = Arc::new(CountingStore::default());
        let keys = KeyService::new(store.clone()).with_mark_active_interval(Duration::ZERO);
        let a = keys.create_key("g", "timestamp", "ecdsa").await.unwrap();
        for _ in 0..3 {
            keys.sign(&a.key_id(), b"msg").await.unwrap();
        }
        assert_eq!(store.marks.load(Ordering::SeqCst), 3);
    }
}
