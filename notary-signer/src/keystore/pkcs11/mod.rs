//! Keys in a PKCS#11 token (an HSM, or SoftHSM in tests).
//!
//! The private keys are generated inside the token as sensitive, non-extractable objects and
//! never leave it. The database keeps what the signer must list and query: each key's GUN,
//! role, algorithm, pending/active state and soft-delete mark, in the table `pkcs11_keys`
//! beside Go's `private_keys` (which stays as Go wrote it, so a Go signer can still read
//! that database). A row names its objects by `object_id`, the hex of their `CKA_ID`:
//! object handles are only valid within one module session, IDs are stable.
//!
//! Mechanisms used: `CKM_EC_KEY_PAIR_GEN` + `CKM_ECDSA` for ecdsa (P-256; the signer hashes
//! with SHA-256 and the token returns raw r‖s, Notary's signature format), and
//! `CKM_EC_EDWARDS_KEY_PAIR_GEN` + `CKM_EDDSA` for ed25519. A key type whose mechanisms the
//! token lacks is refused at CreateKey.
//!
//! Keys still in `private_keys` (encrypted, from before the token was configured) keep
//! signing until [`Pkcs11KeyStore::import_database_keys`] moves them into the token.

mod token;

use std::io::Write;
use std::sync::Arc;

use chrono::{NaiveDateTime, Timelike};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass};
use diesel::prelude::*;
use notary_tuf::keys::{KeyType, PrivateKey, PublicKey};
use sha2::{Digest as _, Sha256};

use super::sql::private_keys;
use super::{creatable_key_type, open, KeyStore, KeyStoreError, Passphrases, SqlKeyStore};
use super::{KeySigner, StoredKey};
use token::{describe, Conn};
pub use token::{ConnectError, Token, TokenConfig, RECONNECT_INTERVAL};

diesel::table! {
    /// Keys held in a PKCS#11 token (ours; Go ignores it).
    pkcs11_keys (id) {
        id -> Integer,
        created_at -> Nullable<Timestamp>,
        updated_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        key_id -> Text,
        algorithm -> Text,
        gun -> Text,
        role -> Text,
        token_label -> Text,
        object_id -> Text,
        last_used -> Nullable<Timestamp>,
        imported -> Bool,
    }
}

#[derive(Insertable)]
#[diesel(table_name = pkcs11_keys)]
struct NewRow<'a> {
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    key_id: &'a str,
    algorithm: &'a str,
    gun: &'a str,
    role: &'a str,
    token_label: &'a str,
    object_id: &'a str,
    last_used: Option<NaiveDateTime>,
    imported: bool,
}

fn now() -> NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    t.with_nanosecond(0).unwrap_or(t)
}

fn db_err(e: diesel::result::Error) -> KeyStoreError {
    KeyStoreError::Database(e.to_string())
}

/// DER of the curve OIDs a token takes in `CKA_EC_PARAMS`.
fn ec_params(key_type: &KeyType) -> Vec<u8> {
    let arcs: &[u64] = match key_type {
        KeyType::Ed25519 => &[1, 3, 101, 112],
        _ => &[1, 2, 840, 10045, 3, 1, 7],
    };
    yasna::construct_der(|w| w.write_oid(&yasna::models::ObjectIdentifier::from_slice(arcs)))
}

/// The mechanisms a key type needs: (key-pair generation, signing).
fn mechanisms(key_type: &KeyType) -> (MechanismType, MechanismType) {
    match key_type {
        KeyType::Ed25519 => (
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
        ),
        _ => (MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA),
    }
}

/// The TUF public key from a token's `CKA_EC_POINT` (a DER OCTET STRING as the standard
/// says; some tokens return the bare point, which the lengths tell apart).
fn public_from_ec_point(key_type: &KeyType, value: &[u8]) -> Result<PublicKey, KeyStoreError> {
    let bare_len = match key_type {
        KeyType::Ed25519 => 32,
        _ => 65,
    };
    let point = if value.len() == bare_len {
        value.to_vec()
    } else {
        yasna::parse_der(value, |r| r.read_bytes()).map_err(|e| {
            KeyStoreError::Crypto(format!("CKA_EC_POINT is not an OCTET STRING: {e}"))
        })?
    };
    match key_type {
        KeyType::Ed25519 if point.len() == 32 => Ok(PublicKey::new(KeyType::Ed25519, point)),
        KeyType::Ed25519 => Err(KeyStoreError::Crypto(format!(
            "token returned a {}-byte ed25519 point",
            point.len()
        ))),
        _ => PublicKey::from_p256_point(&point).map_err(|e| KeyStoreError::Crypto(e.to_string())),
    }
}

/// A key in the token, ready to sign.
#[derive(Clone)]
pub struct TokenKey {
    token: Arc<Token>,
    key_id: String,
    object_id: Vec<u8>,
    key_type: KeyType,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("key_id", &self.key_id)
            .field("object_id", &hex::encode(&self.object_id))
            .field("key_type", &self.key_type)
            .finish()
    }
}

impl TokenKey {
    /// Signs `msg` inside the token. ECDSA: SHA-256 here, `CKM_ECDSA` there, raw r‖s.
    /// Ed25519: `CKM_EDDSA` over `msg`. Blocking.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        let data = match self.key_type {
            KeyType::Ed25519 => msg.to_vec(),
            _ => Sha256::digest(msg).to_vec(),
        };
        for attempt in 0..2 {
            let result = self.token.with_session("C_Sign", |session, conn| {
                let Some(handle) =
                    self.token
                        .find(session, conn, ObjectClass::PRIVATE_KEY, &self.object_id)?
                else {
                    return Ok(None);
                };
                let mechanism = match self.key_type {
                    KeyType::Ed25519 => {
                        Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                    }
                    _ => Mechanism::Ecdsa,
                };
                session.sign(&mechanism, handle, &data).map(Some)
            })?;
            match result {
                Ok(Some(signature)) => return Ok(signature),
                Ok(None) => return Err(missing_object(&self.key_id, &self.object_id)),
                // A handle cached before the object was replaced: look it up again, once.
                Err(CkError::Pkcs11(
                    RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                    _,
                )) if attempt == 0 => {
                    self.token.forget(&self.object_id);
                }
                Err(e) => {
                    return Err(KeyStoreError::Crypto(format!(
                        "PKCS#11 signing with key {}: {}",
                        self.key_id,
                        describe(&e)
                    )))
                }
            }
        }
        Err(KeyStoreError::Crypto(format!(
            "PKCS#11 signing with key {}: the key's handle stayed invalid",
            self.key_id
        )))
    }
}

/// A key the database lists as live whose object the token does not show. That is a token
/// being removed, or the object deleted behind the signer's back: either way not a key that
/// does not exist, so the caller is told to retry (UNAVAILABLE), never that the key is gone.
fn missing_object(key_id: &str, object_id: &[u8]) -> KeyStoreError {
    let object_id = hex::encode(object_id);
    tracing::error!(
        key_id,
        object_id,
        "the token does not show the object of a listed key"
    );
    KeyStoreError::Unavailable(format!(
        "the token does not show object {object_id} of key {key_id} (token removed, or the \
         object deleted outside the signer)"
    ))
}

/// What [`Pkcs11KeyStore::import_database_keys`] did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Keys moved into the token (dry run: that would be).
    pub imported: usize,
    /// Keys that could not be moved (undecryptable, unsupported by the token, ...).
    pub failed: usize,
}

/// The PKCS#11 [`KeyStore`]: keys in the token, their GUN/role/state in the database.
pub struct Pkcs11KeyStore {
    token: Arc<Token>,
    db: SqlKeyStore,
    // Serialises this process's CreateKey calls, as in the SQL store.
    create_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Pkcs11KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyStore")
            .field("token", &self.token)
            .field("db", &self.db)
            .finish()
    }
}

/// Which timestamp [`Pkcs11KeyStore::stamp_live_row`] sets.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    Used,
    Deleted,
}

struct Row {
    algorithm: String,
    gun: String,
    role: String,
    object_id: String,
}

impl Pkcs11KeyStore {
    /// A store over an opened token and the database that lists its keys (with the
    /// migrations applied).
    pub fn new(token: Token, db: SqlKeyStore) -> Self {
        Self {
            token: Arc::new(token),
            db,
            create_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The token.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// The database half.
    pub fn database(&self) -> &SqlKeyStore {
        &self.db
    }

    /// Live keys still in the database's `private_keys` (not yet imported into the token).
    pub async fn database_key_count(&self) -> Result<i64, KeyStoreError> {
        self.db
            .with_conn(|conn| {
                private_keys::table
                    .filter(private_keys::deleted_at.is_null())
                    .count()
                    .get_result(conn)
                    .map_err(db_err)
            })
            .await
    }

    fn token_key(&self, key_id: &str, object_id: &str, key_type: KeyType) -> TokenKey {
        TokenKey {
            token: self.token.clone(),
            key_id: key_id.to_string(),
            object_id: hex::decode(object_id).unwrap_or_default(),
            key_type,
        }
    }

    /// Runs blocking token work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<Token>) -> Result<T, KeyStoreError> + Send + 'static,
    ) -> Result<T, KeyStoreError> {
        let token = self.token.clone();
        tokio::task::spawn_blocking(move || f(token))
            .await
            .map_err(|e| KeyStoreError::Crypto(format!("token task failed: {e}")))?
    }

    async fn live_row(&self, key_id: &str) -> Result<Option<Row>, KeyStoreError> {
        let key_id = key_id.to_string();
        self.db
            .with_conn(move |conn| {
                use pkcs11_keys::dsl as k;
                let row: Option<(String, String, String, String)> = k::pkcs11_keys
                    .select((k::algorithm, k::gun, k::role, k::object_id))
                    .filter(k::key_id.eq(&key_id))
                    .filter(k::deleted_at.is_null())
                    .first(conn)
                    .optional()
                    .map_err(db_err)?;
                Ok(row.map(|(algorithm, gun, role, object_id)| Row {
                    algorithm,
                    gun,
                    role,
                    object_id,
                }))
            })
            .await
    }

    async fn soft_delete_row(&self, key_id: &str) -> Result<(), KeyStoreError> {
        self.stamp_live_row(key_id, Stamp::Deleted).await.map(drop)
    }

    /// Sets `last_used` or `deleted_at` (and `updated_at`) of the key's live row to now;
    /// returns the rows changed (0: no live row).
    async fn stamp_live_row(&self, key_id: &str, stamp: Stamp) -> Result<usize, KeyStoreError> {
        let key_id = key_id.to_string();
        self.db
            .with_conn(move |conn| {
                use pkcs11_keys::dsl as k;
                let at = now();
                let live = k::pkcs11_keys
                    .filter(k::key_id.eq(&key_id))
                    .filter(k::deleted_at.is_null());
                match stamp {
                    Stamp::Used => diesel::update(live)
                        .set((k::last_used.eq(at), k::updated_at.eq(at)))
                        .execute(conn),
                    Stamp::Deleted => diesel::update(live)
                        .set((k::deleted_at.eq(at), k::updated_at.eq(at)))
                        .execute(conn),
                }
                .map_err(db_err)
            })
            .await
    }

    /// Moves the live keys of `private_keys` into the token: each is decrypted (with its
    /// alias's passphrase from the environment), created in the token as a sensitive,
    /// non-extractable object, test-signed and verified, listed in `pkcs11_keys` with its
    /// GUN, role, creation time and state, and its old row soft-deleted in the same
    /// transaction (undo: clear `deleted_at` there and delete the `pkcs11_keys` row). A run
    /// that stopped half-way can be repeated. With `dry_run`, only reports. Progress lines go
    /// to `out`.
    ///
    /// The JWE format (PBES2 + AES key wrap + AES-GCM) is not an unwrap mechanism any token
    /// offers, so the key is decrypted here, as the signer does on every use of a database
    /// key, and its bytes are wiped after the import.
    pub async fn import_database_keys(
        &self,
        passphrases: &Passphrases,
        dry_run: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<ImportReport, KeyStoreError> {
        type Legacy = (
            i32,
            String,
            String,
            String,
            Vec<u8>,
            String,
            String,
            Option<NaiveDateTime>,
            Option<NaiveDateTime>,
        );
        let rows: Vec<Legacy> = self
            .db
            .with_conn(|conn| {
                use private_keys::dsl as k;
                k::private_keys
                    .select((
                        k::id,
                        k::key_id,
                        k::algorithm,
                        k::passphrase_alias,
                        k::private,
                        k::gun,
                        k::role,
                        k::created_at,
                        k::last_used,
                    ))
                    .filter(k::deleted_at.is_null())
                    .order(k::id.asc())
                    .load(conn)
                    .map_err(db_err)
            })
            .await?;
        let mut report = ImportReport::default();
        let say = |out: &mut (dyn Write + Send), line: String| {
            let _ = writeln!(out, "{line}");
        };
        if rows.is_empty() {
            say(
                out,
                "no live keys in private_keys: nothing to import".into(),
            );
        }
        for (row_id, key_id, algorithm, alias, sealed, gun, role, created_at, last_used) in rows {
            let what = format!("key {key_id} ({algorithm}, gun {gun:?}, role {role:?})");
            let Some(key_type) = creatable_key_type(&algorithm) else {
                say(
                    out,
                    format!("FAILED {what}: the signer does not use {algorithm} keys"),
                );
                report.failed += 1;
                continue;
            };
            let private = match open(&key_id, &algorithm, &alias, &sealed, passphrases) {
                Ok(k) => k,
                Err(e) => {
                    say(out, format!("FAILED {what}: {e}"));
                    report.failed += 1;
                    continue;
                }
            };
            let kt = key_type.clone();
            let token_label = match self
                .blocking(move |t| {
                    Ok(t.with_session("C_GetMechanismList", |_, conn| {
                        Ok(check_mechanisms(conn, &kt).map(|()| conn.label.clone()))
                    })?
                    .unwrap_or_else(|e| Err(KeyStoreError::Crypto(describe(&e)))))
                })
                .await?
            {
                Ok(label) => label,
                Err(e) => {
                    say(out, format!("FAILED {what}: {e}"));
                    report.failed += 1;
                    continue;
                }
            };
            if dry_run {
                say(out, format!("would import {what}"));
                report.imported += 1;
                continue;
            }
            let object_id = hex::decode(&key_id).unwrap_or_else(|_| key_id.as_bytes().to_vec());
            let label = object_label(&gun, &role);
            let oid = object_id.clone();
            let created = self
                .blocking(move |t| create_objects(&t, &private, &oid, &label))
                .await;
            if let Err(e) = created {
                say(out, format!("FAILED {what}: {e}"));
                report.failed += 1;
                continue;
            }
            // Prove the token signs for this key ID before the old row goes.
            let public = match self.read_public(&key_id, &object_id, &key_type).await {
                Ok(p) => p,
                Err(e) => {
                    say(out, format!("FAILED {what}: {e}"));
                    report.failed += 1;
                    continue;
                }
            };
            let probe = self.token_key(&key_id, &hex::encode(&object_id), key_type.clone());
            let signed = self
                .blocking(move |_| probe.sign(b"notary-signer pkcs11 import check"))
                .await;
            let verified = signed.and_then(|sig| {
                let method = notary_tuf::keys::method_for_key_type(&key_type);
                notary_tuf::verify::verify_signature(
                    b"notary-signer pkcs11 import check",
                    &notary_tuf::metadata::Signature {
                        keyid: key_id.clone(),
                        method,
                        sig,
                    },
                    &public,
                )
                .map_err(|e| KeyStoreError::Crypto(format!("test signature does not verify: {e}")))
            });
            if let Err(e) = verified.and_then(|()| {
                if public.key_id() == key_id {
                    Ok(())
                } else {
                    Err(KeyStoreError::Crypto(format!(
                        "the token's object has key ID {}",
                        public.key_id()
                    )))
                }
            }) {
                say(out, format!("FAILED {what}: {e}"));
                report.failed += 1;
                continue;
            }
            let (kid, alg, g, r, obj) = (
                key_id.clone(),
                algorithm.clone(),
                gun.clone(),
                role.clone(),
                hex::encode(&object_id),
            );
            let moved = self
                .db
                .with_conn(move |conn| {
                    conn.transaction(|conn| {
                        use pkcs11_keys::dsl as k;
                        let at = now();
                        let exists: i64 = k::pkcs11_keys
                            .filter(k::key_id.eq(&kid))
                            .filter(k::deleted_at.is_null())
                            .count()
                            .get_result(conn)?;
                        if exists == 0 {
                            diesel::insert_into(k::pkcs11_keys)
                                .values(NewRow {
                                    created_at: created_at.unwrap_or(at),
                                    updated_at: at,
                                    key_id: &kid,
                                    algorithm: &alg,
                                    gun: &g,
                                    role: &r,
                                    token_label: &token_label,
                                    object_id: &obj,
                                    last_used,
                                    imported: true,
                                })
                                .execute(conn)?;
                        }
                        diesel::update(
                            private_keys::table
                                .filter(private_keys::id.eq(row_id))
                                .filter(private_keys::deleted_at.is_null()),
                        )
                        .set((
                            private_keys::deleted_at.eq(at),
                            private_keys::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                        Ok::<_, diesel::result::Error>(())
                    })
                    .map_err(db_err)
                })
                .await;
            match moved {
                Ok(()) => {
                    say(out, format!("imported {what}"));
                    report.imported += 1;
                }
                Err(e) => {
                    say(out, format!("FAILED {what}: {e}"));
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// The public key of a token object, read from its public-key object.
    async fn read_public(
        &self,
        key_id: &str,
        object_id: &[u8],
        key_type: &KeyType,
    ) -> Result<PublicKey, KeyStoreError> {
        let (key_id, object_id, key_type) =
            (key_id.to_string(), object_id.to_vec(), key_type.clone());
        self.blocking(move |t| {
            let point = t
                .with_session("C_GetAttributeValue", |session, conn| {
                    let Some(handle) =
                        t.find(session, conn, ObjectClass::PUBLIC_KEY, &object_id)?
                    else {
                        return Ok(None);
                    };
                    let attrs = session.get_attributes(handle, &[AttributeType::EcPoint])?;
                    Ok(attrs.into_iter().find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(p),
                        _ => None,
                    }))
                })?
                .map_err(|e| {
                    KeyStoreError::Crypto(format!(
                        "reading the public key of {key_id}: {}",
                        describe(&e)
                    ))
                })?
                .ok_or_else(|| missing_object(&key_id, &object_id))?;
            public_from_ec_point(&key_type, &point)
        })
        .await
    }
}

/// `CKA_LABEL` of our objects: what an operator listing the token needs to recognise them.
fn object_label(gun: &str, role: &str) -> String {
    format!("notary {role} {gun}")
}

/// What every private-key object of ours carries, generated or imported: a token object
/// that signs and does nothing else, sensitive and never leaving the token.
fn private_template(id: &[u8], label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// What every public-key object of ours carries: verify only.
fn public_template(id: &[u8], label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// Whether the connection's token has the mechanisms `key_type` needs; the error names them.
fn check_mechanisms(conn: &Conn, key_type: &KeyType) -> Result<(), KeyStoreError> {
    let (gen, sign) = mechanisms(key_type);
    if conn.supports(gen) && conn.supports(sign) {
        Ok(())
    } else {
        Err(KeyStoreError::UnsupportedKeyType(format!(
            "{key_type}: PKCS#11 token {:?} cannot do it (it lacks {gen} or {sign})",
            conn.label
        )))
    }
}

/// Creates an imported key's private and public objects (unless a previous run did). The
/// caller has checked the token's mechanisms ([`check_mechanisms`]).
fn create_objects(
    token: &Token,
    private: &PrivateKey,
    object_id: &[u8],
    label: &str,
) -> Result<(), KeyStoreError> {
    let key_type = private.key_type();
    let public = private.public_key();
    let point = match key_type {
        KeyType::Ed25519 => public.public.clone(),
        _ => public
            .p256_point()
            .map_err(|e| KeyStoreError::Crypto(e.to_string()))?,
    };
    let ck_type = match key_type {
        KeyType::Ed25519 => CkKeyType::EC_EDWARDS,
        _ => CkKeyType::EC,
    };
    let params = ec_params(&key_type);
    let secret = private.secret_bytes();
    token
        .with_session("C_CreateObject", |session, conn| {
            if token
                .find(session, conn, ObjectClass::PRIVATE_KEY, object_id)?
                .is_none()
            {
                let mut template = vec![
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::KeyType(ck_type),
                    Attribute::EcParams(params.clone()),
                    Attribute::Value(secret.to_vec()),
                ];
                template.extend(private_template(object_id, label));
                let created = session.create_object(&template);
                for attribute in template.iter_mut() {
                    if let Attribute::Value(v) = attribute {
                        zeroize::Zeroize::zeroize(v);
                    }
                }
                created?;
            }
            if token
                .find(session, conn, ObjectClass::PUBLIC_KEY, object_id)?
                .is_none()
            {
                let mut template = vec![
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(ck_type),
                    Attribute::EcParams(params.clone()),
                    Attribute::EcPoint(yasna::construct_der(|w| w.write_bytes(&point))),
                ];
                template.extend(public_template(object_id, label));
                session.create_object(&template)?;
            }
            Ok(())
        })?
        .map_err(|e| KeyStoreError::Crypto(format!("creating the token objects: {}", describe(&e))))
}

/// Generates a key pair in the token; returns its public key, object ID and the token's label.
fn generate(
    token: &Token,
    key_type: &KeyType,
    label: &str,
) -> Result<(PublicKey, Vec<u8>, String), KeyStoreError> {
    let params = ec_params(key_type);
    let temporary_id: [u8; 16] = rand::random();
    let result = token.with_session("C_GenerateKeyPair", |session, conn: &Conn| {
        if let Err(e) = check_mechanisms(conn, key_type) {
            return Ok(Err(e));
        }
        let mechanism = match key_type {
            KeyType::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
            _ => Mechanism::EccKeyPairGen,
        };
        let mut public_attributes = vec![Attribute::EcParams(params.clone())];
        public_attributes.extend(public_template(&temporary_id, label));
        let (public_handle, private_handle) = session.generate_key_pair(
            &mechanism,
            &public_attributes,
            &private_template(&temporary_id, label),
        )?;
        let destroy = |session: &cryptoki::session::Session| {
            let _ = session.destroy_object(public_handle);
            let _ = session.destroy_object(private_handle);
        };
        let point = match session.get_attributes(public_handle, &[AttributeType::EcPoint]) {
            Ok(attrs) => attrs.into_iter().find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            }),
            Err(e) => {
                destroy(session);
                return Err(e);
            }
        };
        let public = match point
            .ok_or_else(|| KeyStoreError::Crypto("the token gave no CKA_EC_POINT".into()))
            .and_then(|p| public_from_ec_point(key_type, &p))
        {
            Ok(p) => p,
            Err(e) => {
                destroy(session);
                return Ok(Err(e));
            }
        };
        // Name the objects by the key ID, so that the token's own tools show TUF IDs; a
        // token that refuses to change CKA_ID keeps the random one (the database records
        // whichever it is).
        let key_id_bytes = hex::decode(public.key_id()).unwrap_or_default();
        let renamed = session
            .update_attributes(public_handle, &[Attribute::Id(key_id_bytes.clone())])
            .and_then(|()| {
                session.update_attributes(private_handle, &[Attribute::Id(key_id_bytes.clone())])
            });
        let object_id = match renamed {
            Ok(()) => key_id_bytes,
            Err(e) => {
                tracing::debug!(error = %describe(&e), "token keeps the generated CKA_ID");
                let _ = session
                    .update_attributes(public_handle, &[Attribute::Id(temporary_id.to_vec())]);
                temporary_id.to_vec()
            }
        };
        Ok(Ok((public, object_id, conn.label.clone())))
    })?;
    result.map_err(|e| KeyStoreError::Crypto(format!("generating a key pair: {}", describe(&e))))?
}

/// Destroys a key's objects. Blocking.
fn destroy(token: &Token, object_id: &[u8]) -> Result<(), KeyStoreError> {
    let result = token.with_session("C_DestroyObject", |session, conn| {
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            while let Some(handle) = token.find(session, conn, class, object_id)? {
                token.forget(object_id);
                session.destroy_object(handle)?;
            }
        }
        Ok(())
    })?;
    token.forget(object_id);
    result.map_err(|e| {
        KeyStoreError::Crypto(format!("destroying the token objects: {}", describe(&e)))
    })
}

#[async_trait::async_trait]
impl KeyStore for Pkcs11KeyStore {
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, KeyStoreError> {
        if creatable_key_type(key_type.as_str()).is_none() {
            return Err(KeyStoreError::UnsupportedKeyType(key_type.to_string()));
        }
        let _serialised = self.create_lock.lock().await;
        let (g, r, alg) = (
            gun.to_string(),
            role.to_string(),
            key_type.as_str().to_string(),
        );
        let pending: Option<(String, String)> = self
            .db
            .with_conn(move |conn| {
                use pkcs11_keys::dsl as k;
                k::pkcs11_keys
                    .select((k::key_id, k::object_id))
                    .filter(k::deleted_at.is_null())
                    .filter(k::gun.eq(&g))
                    .filter(k::role.eq(&r))
                    .filter(k::algorithm.eq(&alg))
                    .filter(k::last_used.is_null())
                    .order((k::key_id.asc(), k::id.asc()))
                    .first(conn)
                    .optional()
                    .map_err(db_err)
            })
            .await?;
        if let Some((key_id, object_id)) = pending {
            let object = hex::decode(&object_id).unwrap_or_default();
            match self.read_public(&key_id, &object, key_type).await {
                Ok(public) if public.key_id() == key_id => return Ok(public),
                Ok(_) => {
                    // The listed object holds another key: retire the row, make a new key.
                    tracing::error!(
                        key_id,
                        object_id,
                        "pending key's token object holds another key; retiring it"
                    );
                    self.soft_delete_row(&key_id).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let label = object_label(gun, role);
        let kt = key_type.clone();
        let (public, object_id, token_label) =
            self.blocking(move |t| generate(&t, &kt, &label)).await?;
        let key_id = public.key_id();
        let (g, r, alg, kid, obj) = (
            gun.to_string(),
            role.to_string(),
            key_type.as_str().to_string(),
            key_id.clone(),
            hex::encode(&object_id),
        );
        let inserted = self
            .db
            .with_conn(move |conn| {
                let at = now();
                diesel::insert_into(pkcs11_keys::table)
                    .values(NewRow {
                        created_at: at,
                        updated_at: at,
                        key_id: &kid,
                        algorithm: &alg,
                        gun: &g,
                        role: &r,
                        token_label: &token_label,
                        object_id: &obj,
                        last_used: None,
                        imported: false,
                    })
                    .execute(conn)
                    .map_err(db_err)
            })
            .await;
        if let Err(e) = inserted {
            // Unlisted objects would be orphans: remove them.
            let oid = object_id.clone();
            if let Err(d) = self.blocking(move |t| destroy(&t, &oid)).await {
                tracing::error!(key_id, error = %d, "could not remove the objects of an unlisted key");
            }
            return Err(e);
        }
        Ok(public)
    }

    async fn get_key(&self, key_id: &str) -> Result<StoredKey, KeyStoreError> {
        let Some(row) = self.live_row(key_id).await? else {
            // Not in the token: a key from before the token was configured, if any.
            return self.db.get_key(key_id).await;
        };
        let key_type = KeyType::parse(&row.algorithm);
        let object = hex::decode(&row.object_id).unwrap_or_default();
        let public = self.read_public(key_id, &object, &key_type).await?;
        if public.key_id() != key_id {
            tracing::error!(key_id, object_id = %row.object_id, actual = %public.key_id(),
                "the token object listed for this key holds another key");
            return Err(KeyStoreError::NotFound(key_id.to_string()));
        }
        Ok(StoredKey {
            public,
            signer: KeySigner::Token(self.token_key(key_id, &row.object_id, key_type)),
            role: row.role,
            gun: row.gun,
        })
    }

    async fn mark_active(&self, key_id: &str) -> Result<(), KeyStoreError> {
        let updated = self.stamp_live_row(key_id, Stamp::Used).await?;
        if updated == 0 {
            return self.db.mark_active(key_id).await;
        }
        Ok(())
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError> {
        match self.live_row(key_id).await? {
            Some(row) => {
                let object = hex::decode(&row.object_id).unwrap_or_default();
                // Objects first: a row marked deleted with its key still in the token would
                // hide a live key; the reverse is retried by the caller's next DeleteKey.
                self.blocking(move |t| destroy(&t, &object)).await?;
                self.soft_delete_row(key_id).await
            }
            None => self.db.delete_key(key_id).await,
        }
    }

    async fn reencrypt_alias(&self, from: &str, to: &str) -> Result<usize, KeyStoreError> {
        self.db.reencrypt_alias(from, to).await
    }

    async fn check_health(&self) -> Result<(), KeyStoreError> {
        self.db.check_health().await?;
        self.blocking(|t| {
            t.with_session("C_GetSessionInfo", |session, _| session.get_session_info())?
                .map(|_| ())
                .map_err(|e| KeyStoreError::Unavailable(describe(&e)))
        })
        .await
    }
}
