//! Private key storage.
//!
//! [`KeyStore`] is the storage contract; [`SqlKeyStore`] implements it on MySQL (the Go
//! signer's `private_keys` table, shared with Go signers) and SQLite, [`MemoryKeyStore`] in
//! memory, and [`Pkcs11KeyStore`] in a PKCS#11 token, with only the keys' GUN, role and
//! state in the database. [`KeyService`] sits above a store and adds the Go signer's per-process cache of
//! decrypted keys. Private keys are encrypted at rest with [`jwe`], under the passphrase of a
//! named alias ([`Passphrases`]).

pub mod jwe;
mod memory;
pub mod pkcs11;
mod service;
mod sql;

/// Diesel view of Go's `private_keys` table, for tools that read a signer database.
pub use sql::private_keys;

use notary_tuf::keys::{KeyType, PrivateKey, PublicKey};

pub use memory::MemoryKeyStore;
pub use pkcs11::{Pkcs11KeyStore, TokenConfig};
pub use service::{KeyService, ServiceError};
pub use sql::{
    Backend, DbConnection, KeyRecord, SqlKeyStore, MYSQL_MIGRATIONS, PG_MIGRATIONS,
    SQLITE_MIGRATIONS,
};

/// A failure of a [`KeyStore`] operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// No live (not deleted) key has this ID.
    #[error("key {0} not found")]
    NotFound(String),
    /// The passphrase for an alias is not configured.
    #[error("no passphrase for alias {alias:?}: environment variable {env_var} is unset or empty")]
    MissingPassphrase {
        /// The alias.
        alias: String,
        /// The environment variable that should hold its passphrase.
        env_var: String,
    },
    /// A stored key could not be decrypted or decoded.
    #[error("key {key_id} (passphrase alias {alias:?}) cannot be decrypted: {reason}")]
    Undecryptable {
        /// The key ID.
        key_id: String,
        /// The row's passphrase alias.
        alias: String,
        /// Why (wrong passphrase, corrupt data, ...).
        reason: String,
    },
    /// The key type cannot be generated or stored.
    #[error("unsupported key type {0}")]
    UnsupportedKeyType(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// Encryption or key generation failed.
    #[error("crypto error: {0}")]
    Crypto(String),
    /// The device that holds the key (a PKCS#11 token) cannot be reached now; the call may
    /// succeed later without any change here.
    #[error("key device unavailable: {0}")]
    Unavailable(String),
}

/// How a stored key signs.
#[derive(Debug, Clone)]
pub enum KeySigner {
    /// Decrypted into this process (SQL and memory stores).
    Software(PrivateKey),
    /// Held in a PKCS#11 token; each signature is a (blocking) call into the module.
    Token(pkcs11::TokenKey),
}

/// A usable key with what was stored next to it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The public key (for token keys, as read from the token).
    pub public: PublicKey,
    /// What signs.
    pub signer: KeySigner,
    /// The role given at creation.
    pub role: String,
    /// The GUN given at creation.
    pub gun: String,
}

impl StoredKey {
    /// A key decrypted into this process.
    pub fn software(private: PrivateKey, role: String, gun: String) -> Self {
        Self {
            public: private.public_key(),
            signer: KeySigner::Software(private),
            role,
            gun,
        }
    }

    /// The key type.
    pub fn key_type(&self) -> &KeyType {
        &self.public.key_type
    }
}

/// Storage of encrypted private keys.
///
/// Every read ignores soft-deleted keys. Implementations are safe to share between tasks.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Returns the pending key for (gun, role, key type), that is, the live key that has
    /// never signed (`last_used` unset), choosing the smallest key ID; or, if there is none,
    /// generates, encrypts under the default alias and stores a new one. Stores without
    /// pending-key reuse (memory) always generate.
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, KeyStoreError>;

    /// Reads and decrypts a live key. [`KeyStoreError::NotFound`] when absent or deleted.
    async fn get_key(&self, key_id: &str) -> Result<StoredKey, KeyStoreError>;

    /// Records that the key signed: `last_used` and `updated_at` become now, so the key is no
    /// longer pending. Unknown IDs are not an error.
    async fn mark_active(&self, key_id: &str) -> Result<(), KeyStoreError>;

    /// Soft-deletes the key (`deleted_at` = now). Unknown or already deleted IDs are not an
    /// error.
    async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError>;

    /// Re-encrypts every key stored under alias `from` (deleted ones included, so the old
    /// passphrase can be retired) under alias `to`, one row at a time. Returns the number of
    /// rows rewritten. Stops at the first row that cannot be decrypted; rows already done
    /// stay done, so the call can simply be repeated.
    async fn reencrypt_alias(&self, from: &str, to: &str) -> Result<usize, KeyStoreError>;

    /// Checks that the storage answers.
    async fn check_health(&self) -> Result<(), KeyStoreError>;
}

/// Where passphrases come from: `NOTARY_SIGNER_<ALIAS upper-cased, '.' -> '_'>`, read at each
/// use as Go does, or a fixed map (tests, tools).
#[derive(Clone, Default)]
pub struct Passphrases {
    fixed: Option<std::collections::HashMap<String, String>>,
}

// Never print passphrases.
impl std::fmt::Debug for Passphrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let aliases: Vec<&String> = self.fixed.iter().flat_map(|m| m.keys()).collect();
        f.debug_struct("Passphrases")
            .field("fixed_aliases", &aliases)
            .finish()
    }
}

impl Passphrases {
    /// Passphrases from the process environment.
    pub fn from_env() -> Self {
        Self { fixed: None }
    }

    /// Fixed passphrases by alias; the environment is not consulted.
    pub fn fixed<I, A, P>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (A, P)>,
        A: Into<String>,
        P: Into<String>,
    {
        Self {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(a, p)| (a.into(), p.into()))
                    .collect(),
            ),
        }
    }

    /// The environment variable holding the passphrase of `alias`.
    pub fn env_var(alias: &str) -> String {
        format!(
            "NOTARY_SIGNER_{}",
            alias.to_ascii_uppercase().replace('.', "_")
        )
    }

    /// The passphrase of `alias`; empty counts as missing.
    pub fn get(&self, alias: &str) -> Result<String, KeyStoreError> {
        let value = match &self.fixed {
            Some(map) => map.get(alias).cloned(),
            None => std::env::var(Self::env_var(alias)).ok(),
        };
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| KeyStoreError::MissingPassphrase {
                alias: alias.to_string(),
                env_var: Self::env_var(alias),
            })
    }
}

/// The key types the signer creates (Go registers its one service under exactly these).
pub fn creatable_key_type(algorithm: &str) -> Option<KeyType> {
    match algorithm {
        "ecdsa" => Some(KeyType::Ecdsa),
        "ed25519" => Some(KeyType::Ed25519),
        _ => None,
    }
}

/// Encrypts a private key for storage under `alias`.
pub(crate) fn seal(
    key: &PrivateKey,
    alias: &str,
    passphrases: &Passphrases,
) -> Result<String, KeyStoreError> {
    let pass = passphrases.get(alias)?;
    jwe::encrypt(&key.to_go_private_bytes(), pass.as_bytes())
        .map_err(|e| KeyStoreError::Crypto(e.to_string()))
}

/// Decrypts a stored key and checks that it is the key `key_id` names.
pub(crate) fn open(
    key_id: &str,
    algorithm: &str,
    alias: &str,
    private: &[u8],
    passphrases: &Passphrases,
) -> Result<PrivateKey, KeyStoreError> {
    let undecryptable = |reason: String| KeyStoreError::Undecryptable {
        key_id: key_id.to_string(),
        alias: alias.to_string(),
        reason,
    };
    let pass = passphrases.get(alias)?;
    let text = std::str::from_utf8(private).map_err(|_| undecryptable("not ASCII".into()))?;
    let bytes = jwe::decrypt(text, pass.as_bytes()).map_err(|e| undecryptable(e.to_string()))?;
    let key = PrivateKey::from_go_private_bytes(&KeyType::parse(algorithm), &bytes)
        .map_err(|e| undecryptable(e.to_string()))?;
    let actual = key.public_key().key_id();
    if actual != key_id {
        return Err(undecryptable(format!(
            "decrypted key has ID {actual}, not the row's"
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names() {
        assert_eq!(
            Passphrases::env_var("passwordalias1"),
            "NOTARY_SIGNER_PASSWORDALIAS1"
        );
        assert_eq!(Passphrases::env_var("a.b-c"), "NOTARY_SIGNER_A_B-C");
    }

    #[test]
    fn fixed_passphrases_and_missing_ones() {
        let p = Passphrases::fixed([("a", "pw"), ("empty", "")]);
        assert_eq!(p.get("a").unwrap(), "pw");
        for alias in ["empty", "b"] {
            match p.get(alias) {
                Err(KeyStoreError::MissingPassphrase { env_var, .. }) => {
                    assert_eq!(env_var, Passphrases::env_var(alias))
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(!format!("{p:?}").contains("pw"));
    }

    #[test]
    fn seal_and_open_round_trip_and_check_the_id() {
        let p = Passphrases::fixed([("a", "pw"), ("b", "other")]);
        for kt in [KeyType::Ecdsa, KeyType::Ed25519] {
            let key = PrivateKey::generate(&kt).unwrap();
            let id = key.public_key().key_id();
            let sealed = seal(&key, "a", &p).unwrap();
            let opened = open(&id, kt.as_str(), "a", sealed.as_bytes(), &p).unwrap();
            assert_eq!(opened.public_key(), key.public_key());
            assert!(matches!(
                open(&id, kt.as_str(), "b", sealed.as_bytes(), &p),
                Err(KeyStoreError::Undecryptable { .. })
            ));
            assert!(matches!(
                open(&"0".repeat(64), kt.as_str(), "a", sealed.as_bytes(), &p),
                Err(KeyStoreError::Undecryptable { .. })
            ));
        }
    }

    #[test]
    fn only_ecdsa_and_ed25519_are_creatable() {
        assert_eq!(creatable_key_type("ecdsa"), Some(KeyType::Ecdsa));
        assert_eq!(creatable_key_type("ed25519"), Some(KeyType::Ed25519));
        for bad in ["rsa", "", "ECDSA", "ecdsa-x509"] {
            assert_eq!(creatable_key_type(bad), None);
        }
    }
}
