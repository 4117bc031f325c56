//! The key service the gRPC handlers use: a [`KeyStore`] plus the Go signer's cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use notary_tuf::keys::PublicKey;

use super::{creatable_key_type, KeyStore, KeyStoreError, StoredKey};

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
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    cache: Mutex<HashMap<String, Arc<StoredKey>>>,
}

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
        }
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
    /// key active. A failure to mark it is logged only, as in Go.
    pub async fn sign(
        &self,
        key_id: &str,
        content: &[u8],
    ) -> Result<(Arc<StoredKey>, Vec<u8>), ServiceError> {
        let key = self.get_key(key_id).await?;
        let signature = key
            .private
            .sign(content)
            .map_err(|e| ServiceError::Signing {
                key_id: key_id.to_string(),
                reason: e.to_string(),
            })?;
        if let Err(e) = self.store.mark_active(key_id).await {
            tracing::error!(key_id, error = %e, "could not mark key as active");
        }
        Ok((key, signature))
    }

    /// Drops the key from the cache and soft-deletes it.
    pub async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError> {
        self.lock().remove(key_id);
        self.store.delete_key(key_id).await
    }
}
