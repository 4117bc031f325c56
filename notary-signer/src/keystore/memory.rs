//! In-memory key store (`storage.backend = "memory"`): keys are lost on exit.

use std::collections::HashMap;
use std::sync::Mutex;

use notary_tuf::keys::{KeyType, PrivateKey, PublicKey};

use super::{creatable_key_type, KeyStore, KeyStoreError, StoredKey};

/// Keys held in process memory, unencrypted. Like Go's memory backend, every
/// [`KeyStore::create_key`] generates a new key (no pending-key reuse).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<String, StoredKey>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl KeyStore for MemoryKeyStore {
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, KeyStoreError> {
        if creatable_key_type(key_type.as_str()).is_none() {
            return Err(KeyStoreError::UnsupportedKeyType(key_type.to_string()));
        }
        let private =
            PrivateKey::generate(key_type).map_err(|e| KeyStoreError::Crypto(e.to_string()))?;
        let public = private.public_key();
        self.lock().insert(
            public.key_id(),
            StoredKey::software(private, role.to_string(), gun.to_string()),
        );
        Ok(public)
    }

    async fn get_key(&self, key_id: &str) -> Result<StoredKey, KeyStoreError> {
        self.lock()
            .get(key_id)
            .cloned()
            .ok_or_else(|| KeyStoreError::NotFound(key_id.to_string()))
    }

    async fn mark_active(&self, _key_id: &str) -> Result<(), KeyStoreError> {
        Ok(())
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError> {
        self.lock().remove(key_id);
        Ok(())
    }

    async fn reencrypt_alias(&self, _from: &str, _to: &str) -> Result<usize, KeyStoreError> {
        // Nothing is encrypted in memory.
        Ok(0)
    }

    async fn check_health(&self) -> Result<(), KeyStoreError> {
        Ok(())
    }
}
