//! The signing service abstraction the server signs snapshot and timestamp metadata
//! through, plus an in-memory implementation (Go `signed.CryptoService`; the remote gRPC
//! client lives in the server crate, the database-backed one in the signer crate).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::keys::{KeyType, PrivateKey, PublicKey};

/// Failure of a [`CryptoService`] call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The service does not hold this key ID.
    #[error("signing key not found: {0}")]
    NotFound(String),
    /// The service could not be reached (e.g. the remote signer is down).
    #[error("signing service unavailable: {0}")]
    Unavailable(String),
    /// Any other failure (unsupported algorithm, signing failure, storage error, ...).
    #[error("{0}")]
    Other(String),
}

/// What a [`CryptoService`] knows about a key it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    /// The public key.
    pub public: PublicKey,
    /// The role the key was created for.
    pub role: String,
    /// The GUN the key was created for; `None` when the service does not say.
    pub gun: Option<String>,
}

/// Creates keys and signs with them, addressing keys by TUF key ID.
#[async_trait::async_trait]
pub trait CryptoService: Send + Sync {
    /// Create (or, for a backend with pending-key reuse, return the pending) key for (gun, role).
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, CryptoError>;
    /// The public key and stored role for a key ID; Ok(None) when this service does not hold it.
    async fn get_key(&self, key_id: &str) -> Result<Option<(PublicKey, String)>, CryptoError>;
    /// [`CryptoService::get_key`] plus the GUN the key was created for, when the service
    /// says (Go's signer does not: its `GetKeyInfo` answer has no GUN). The default knows
    /// no GUN.
    async fn get_key_info(&self, key_id: &str) -> Result<Option<HeldKey>, CryptoError> {
        Ok(self.get_key(key_id).await?.map(|(public, role)| HeldKey {
            public,
            role,
            gun: None,
        }))
    }
    /// Sign `msg` (the full canonical bytes of `signed`) with the key; returns raw signature bytes.
    async fn sign(&self, key_id: &str, msg: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Delete the key (Go's `DeleteKey`; deleting a key the service does not hold succeeds,
    /// as Go's does). The default refuses: not every service can delete.
    async fn delete_key(&self, key_id: &str) -> Result<(), CryptoError> {
        Err(CryptoError::Other(format!(
            "this signing service cannot delete keys (key {key_id})"
        )))
    }
}

/// A held key: private key, role, GUN.
type Held = (PrivateKey, String, String);

/// In-memory [`CryptoService`], like Go's memory trust service: every `create_key` makes a
/// new key (no pending-key reuse). Keys are lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryCryptoService {
    /// key ID → (private key, role, GUN).
    pub keys: Mutex<HashMap<String, Held>>,
}

impl MemoryCryptoService {
    /// An empty service.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an existing key under its TUF key ID; returns that ID.
    pub fn add_key(&self, key: PrivateKey, gun: &str, role: &str) -> String {
        let id = key.public_key().key_id();
        self.lock()
            .insert(id.clone(), (key, role.to_string(), gun.to_string()));
        id
    }

    /// Removes a key; true if it was held.
    pub fn remove_key(&self, key_id: &str) -> bool {
        self.lock().remove(key_id).is_some()
    }

    /// Number of held keys.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A copy of the private key for an ID (tests use it to sign by hand).
    pub fn private_key(&self, key_id: &str) -> Option<PrivateKey> {
        self.lock().get(key_id).map(|(k, _, _)| k.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding the lock cannot leave the map half-updated, so keep going.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl CryptoService for MemoryCryptoService {
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, CryptoError> {
        let key = PrivateKey::generate(key_type).map_err(|_| {
            CryptoError::Other(format!("algorithm {key_type} not supported for create key"))
        })?;
        let public = key.public_key();
        self.add_key(key, gun, role);
        Ok(public)
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        Ok(self
            .lock()
            .get(key_id)
            .map(|(k, role, _)| (k.public_key(), role.clone())))
    }

    async fn get_key_info(&self, key_id: &str) -> Result<Option<HeldKey>, CryptoError> {
        Ok(self.lock().get(key_id).map(|(k, role, gun)| HeldKey {
            public: k.public_key(),
            role: role.clone(),
            gun: Some(gun.clone()),
        }))
    }

    async fn sign(&self, key_id: &str, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .private_key(key_id)
            .ok_or_else(|| CryptoError::NotFound(key_id.to_string()))?;
        key.sign(msg)
            .map_err(|e| CryptoError::Other(format!("Signing failed for KeyID {key_id}: {e}")))
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), CryptoError> {
        self.lock().remove(key_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_get_sign() {
        let cs = MemoryCryptoService::new();
        let a = cs
            .create_key("gun", "timestamp", &KeyType::Ecdsa)
            .await
            .unwrap();
        let b = cs
            .create_key("gun", "timestamp", &KeyType::Ecdsa)
            .await
            .unwrap();
        assert_ne!(a.key_id(), b.key_id(), "memory service never reuses keys");
        assert_eq!(cs.len(), 2);
        let (pk, role) = cs.get_key(&a.key_id()).await.unwrap().unwrap();
        assert_eq!(pk, a);
        assert_eq!(role, "timestamp");
        assert!(cs.get_key("00").await.unwrap().is_none());
        let sig = cs.sign(&a.key_id(), b"msg").await.unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(
            cs.sign("00", b"msg").await,
            Err(CryptoError::NotFound("00".into()))
        );
        let e = cs
            .create_key("gun", "snapshot", &KeyType::Rsa)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "algorithm rsa not supported for create key");
        assert!(cs.remove_key(&a.key_id()));
        assert!(cs.get_key(&a.key_id()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn add_key_uses_tuf_id() {
        let cs = MemoryCryptoService::new();
        let k = PrivateKey::generate(&KeyType::Ed25519).unwrap();
        let id = cs.add_key(k.clone(), "g", "snapshot");
        assert_eq!(id, k.public_key().key_id());
        assert_eq!(cs.get_key(&id).await.unwrap().unwrap().1, "snapshot");
    }
}
