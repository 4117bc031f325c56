//! Shared helpers for the `domain_*` integration tests: an environment of memory store,
//! memory signer and a fixed clock, plus signer doubles that fail in controlled ways.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeZone as _, Utc};
use notary_server::domain::{apply_update, Ctx, UpdateError};
use notary_server::storage::{get_current, MemoryStore, MetaStore, StoredFile};
use notary_tuf::test_support::{RepoFiles, TestRepo};
use notary_tuf::{CryptoError, CryptoService, KeyType, MemoryCryptoService, PublicKey, SignedFile};

/// A fixed "now" (tests never read the wall clock for domain decisions).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

/// Store + signer + clock.
pub struct Env {
    pub store: MemoryStore,
    pub crypto: MemoryCryptoService,
    pub now: DateTime<Utc>,
}

impl Env {
    /// An empty store and a signer holding `repo`'s snapshot and timestamp keys.
    pub fn server_managed(repo: &TestRepo) -> Env {
        Env {
            store: MemoryStore::new(),
            crypto: repo.server_crypto(),
            now: repo.now,
        }
    }

    /// An empty store and a signer holding only `repo`'s timestamp key (the client keeps
    /// the snapshot key, as the notary CLI does by default).
    pub fn client_snapshot(repo: &TestRepo) -> Env {
        let crypto = MemoryCryptoService::new();
        crypto.add_key(repo.timestamp_key.clone(), &repo.gun, "timestamp");
        Env {
            store: MemoryStore::new(),
            crypto,
            now: repo.now,
        }
    }

    pub fn ctx(&self) -> Ctx<'_> {
        self.ctx_at(self.now)
    }

    pub fn ctx_at(&self, now: DateTime<Utc>) -> Ctx<'_> {
        Ctx {
            store: &self.store,
            crypto: &self.crypto,
            key_type: KeyType::Ecdsa,
            now,
            actor: notary_server::audit::Actor::server(),
        }
    }

    pub fn ctx_with<'a>(&'a self, crypto: &'a dyn CryptoService) -> Ctx<'a> {
        Ctx {
            store: &self.store,
            crypto,
            key_type: KeyType::Ecdsa,
            now: self.now,
            actor: notary_server::audit::Actor::server(),
        }
    }

    pub async fn update(&self, parts: &[(&str, &[u8])]) -> Result<(), UpdateError> {
        apply_update(&self.ctx(), GUN, to_parts(parts)).await
    }

    /// The current file of a role (spec §11.3 resolution).
    pub async fn current(&self, role: &str) -> Option<StoredFile> {
        get_current(&self.store, GUN, role).await.unwrap()
    }

    /// Every stored version of a role, ascending.
    pub async fn versions(&self, role: &str) -> Vec<i64> {
        let mut out = Vec::new();
        let Some(latest) = self.store.get_latest(GUN, role).await.unwrap() else {
            return out;
        };
        for v in 1..=latest.version {
            if self
                .store
                .get_version(GUN, role, v)
                .await
                .unwrap()
                .is_some()
            {
                out.push(v);
            }
        }
        out
    }
}

/// The GUN every domain test uses.
pub const GUN: &str = "docker.io/library/domain-test";

/// A repository for [`GUN`] at [`t0`].
pub fn repo() -> TestRepo {
    TestRepo::new_at(GUN, t0())
}

pub fn to_parts(parts: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    parts
        .iter()
        .map(|(r, b)| (r.to_string(), b.to_vec()))
        .collect()
}

/// Uploads root + targets (+ the client's snapshot when `with_snapshot`) of `files`.
pub async fn init(env: &Env, files: &RepoFiles, with_snapshot: bool) {
    let mut parts: Vec<(&str, &[u8])> = vec![
        ("root", &files.root),
        ("targets", &files.targets["targets"]),
    ];
    for (role, bytes) in &files.targets {
        if role != "targets" {
            parts.push((role, bytes));
        }
    }
    if with_snapshot {
        parts.push(("snapshot", &files.snapshot));
    }
    env.update(&parts)
        .await
        .expect("initial upload is accepted");
}

/// Parses stored bytes.
pub fn parse(file: &StoredFile) -> SignedFile {
    SignedFile::parse(&file.data).expect("stored files parse")
}

/// Asserts an update was refused with exactly this validation kind and message.
pub fn assert_invalid(result: Result<(), UpdateError>, name: &str, msg: &str) {
    match result {
        Err(UpdateError::Invalid(Some(d))) => {
            assert_eq!(d.name, name, "kind (message: {})", d.msg);
            assert_eq!(d.msg, msg);
        }
        other => panic!("expected {name}: {msg}, got {other:?}"),
    }
}

/// A signer double whose every call fails with the given error; counts calls.
pub struct FailingCrypto {
    pub error: CryptoError,
    pub calls: AtomicUsize,
}

impl FailingCrypto {
    pub fn unavailable() -> Self {
        FailingCrypto {
            error: CryptoError::Unavailable("rpc error: code = Unavailable desc = down".into()),
            calls: AtomicUsize::new(0),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl CryptoService for FailingCrypto {
    async fn create_key(&self, _: &str, _: &str, _: &KeyType) -> Result<PublicKey, CryptoError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(self.error.clone())
    }
    async fn get_key(&self, _: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(self.error.clone())
    }
    async fn sign(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(self.error.clone())
    }
}

/// A signer double that answers `NotFound` for every key (a remote signer that never held
/// the keys), delegating key creation to a memory signer.
pub struct NotFoundCrypto(pub MemoryCryptoService);

#[async_trait::async_trait]
impl CryptoService for NotFoundCrypto {
    async fn create_key(&self, g: &str, r: &str, k: &KeyType) -> Result<PublicKey, CryptoError> {
        self.0.create_key(g, r, k).await
    }
    async fn get_key(&self, id: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        Err(CryptoError::NotFound(format!("key {id} not found")))
    }
    async fn sign(&self, id: &str, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::NotFound(id.to_string()))
    }
}
