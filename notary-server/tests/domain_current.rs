//! `current_timestamp_or_snapshot`: lazy regeneration with an injected clock
//! (spec server.md §5.2).

mod domain_support;

use std::sync::{Arc, Mutex};

use chrono::Duration;
use domain_support::*;
use notary_server::domain::{current_timestamp_or_snapshot, Ctx, DomainError};
use notary_server::storage::{Change, MemoryStore, MetaStore, MetaUpdate, StoreError, StoredFile};
use notary_tuf::metadata::FileMeta;
use notary_tuf::verify::{SNAPSHOT_EXPIRY_DAYS, TIMESTAMP_EXPIRY_DAYS};
use notary_tuf::{CryptoError, KeyType};

async fn get(ctx: &Ctx<'_>, role: &str) -> Option<StoredFile> {
    current_timestamp_or_snapshot(ctx, GUN, role).await.unwrap()
}

#[tokio::test]
async fn nothing_stored_is_none() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    assert_eq!(get(&env.ctx(), "timestamp").await, None);
    assert_eq!(get(&env.ctx(), "snapshot").await, None);
}

#[tokio::test]
async fn roles_other_than_timestamp_and_snapshot_are_refused() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    let r = current_timestamp_or_snapshot(&env.ctx(), GUN, "targets").await;
    assert!(matches!(r, Err(DomainError::Other(_))), "{r:?}");
}

#[tokio::test]
async fn fresh_files_are_served_without_the_signer() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let stored_ts = env.current("timestamp").await.unwrap();
    let stored_snap = env.current("snapshot").await.unwrap();

    let down = FailingCrypto::unavailable();
    let ctx = env.ctx_with(&down);
    assert_eq!(get(&ctx, "timestamp").await.unwrap(), stored_ts);
    assert_eq!(get(&ctx, "snapshot").await.unwrap(), stored_snap);
    assert_eq!(down.calls(), 0, "no signer call when nothing has expired");
}

#[tokio::test]
async fn expired_timestamp_is_regenerated_once() {
    let repo = repo();
    let env = Env::client_snapshot(&repo);
    init(&env, &repo.build(), true).await;
    let snap_before = env.current("snapshot").await.unwrap();

    let later = t0() + Duration::days(TIMESTAMP_EXPIRY_DAYS) + Duration::seconds(1);
    let ctx = env.ctx_at(later);
    let ts = get(&ctx, "timestamp").await.unwrap();
    assert_eq!(ts.version, 2);
    let typed = parse(&ts).timestamp().unwrap();
    assert_eq!(
        typed.common.expires,
        later + Duration::days(TIMESTAMP_EXPIRY_DAYS)
    );
    assert_eq!(
        typed.snapshot_meta().unwrap(),
        &FileMeta::from_bytes(&snap_before.data)
    );

    // The snapshot is untouched; asking again regenerates nothing.
    assert_eq!(get(&ctx, "snapshot").await.unwrap(), snap_before);
    assert_eq!(get(&ctx, "timestamp").await.unwrap(), ts);
    assert_eq!(env.versions("timestamp").await, vec![1, 2]);
    assert_eq!(env.versions("snapshot").await, vec![1]);
}

#[tokio::test]
async fn expired_server_snapshot_is_regenerated_with_its_timestamp() {
    let mut repo = repo();
    repo.add_delegation("targets", "targets/releases", &[""]);
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let snap_before = parse(&env.current("snapshot").await.unwrap())
        .snapshot()
        .unwrap();

    let later = t0() + Duration::days(SNAPSHOT_EXPIRY_DAYS) + Duration::days(1);
    let ctx = env.ctx_at(later);
    let snap_row = get(&ctx, "snapshot").await.unwrap();
    let snap = parse(&snap_row).snapshot().unwrap();
    assert_eq!(snap.common.version, 2);
    assert_eq!(
        snap.common.expires,
        later + Duration::days(SNAPSHOT_EXPIRY_DAYS)
    );
    assert_eq!(snap.meta, snap_before.meta, "entries are carried over");

    let ts = parse(&get(&ctx, "timestamp").await.unwrap())
        .timestamp()
        .unwrap();
    assert_eq!(ts.common.version, 2);
    assert_eq!(
        ts.snapshot_meta().unwrap(),
        &FileMeta::from_bytes(&snap_row.data)
    );
    assert_eq!(env.versions("snapshot").await, vec![1, 2]);
    assert_eq!(env.versions("timestamp").await, vec![1, 2]);
}

#[tokio::test]
async fn expired_client_snapshot_is_served_with_a_fresh_timestamp() {
    // The owner signs the snapshot: the server cannot re-sign it, but keeps serving it (a
    // client then reports the expired snapshot; Go answers 500).
    let repo = repo();
    let env = Env::client_snapshot(&repo);
    init(&env, &repo.build(), true).await;
    let snap_before = env.current("snapshot").await.unwrap();
    let later = t0() + Duration::days(SNAPSHOT_EXPIRY_DAYS) + Duration::days(1);
    let ctx = env.ctx_at(later);
    let ts = current_timestamp_or_snapshot(&ctx, GUN, "timestamp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ts.version, 2, "the expired timestamp is re-signed");
    let typed = parse(&ts).timestamp().unwrap();
    assert_eq!(
        typed.snapshot_meta().unwrap(),
        &FileMeta::from_bytes(&snap_before.data)
    );
    let snap = current_timestamp_or_snapshot(&ctx, GUN, "snapshot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap, snap_before);
    assert_eq!(env.versions("snapshot").await, vec![1]);
}

#[tokio::test]
async fn regeneration_with_signer_down_reports_unavailable() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let down = FailingCrypto::unavailable();
    let ctx = Ctx {
        now: t0() + Duration::days(TIMESTAMP_EXPIRY_DAYS + 1),
        actor: notary_server::audit::Actor::server(),
        ..env.ctx_with(&down)
    };
    let r = current_timestamp_or_snapshot(&ctx, GUN, "timestamp").await;
    assert!(
        matches!(r, Err(DomainError::Crypto(CryptoError::Unavailable(_)))),
        "{r:?}"
    );
}

/// A store that lets a "concurrent writer" commit a prepared batch just before our first
/// `update_many`, which then collides.
struct RacingStore {
    inner: MemoryStore,
    winner: Mutex<Option<Vec<MetaUpdate>>>,
}

#[async_trait::async_trait]
impl MetaStore for RacingStore {
    async fn record_key(&self, gun: &str, role: &str, key_id: &str) -> Result<(), StoreError> {
        self.inner.record_key(gun, role, key_id).await
    }
    async fn key_owner(&self, key_id: &str) -> Result<Option<(String, String)>, StoreError> {
        self.inner.key_owner(key_id).await
    }
    async fn get_latest(&self, gun: &str, role: &str) -> Result<Option<StoredFile>, StoreError> {
        self.inner.get_latest(gun, role).await
    }
    async fn get_checksum(
        &self,
        gun: &str,
        role: &str,
        sha: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        self.inner.get_checksum(gun, role, sha).await
    }
    async fn get_version(
        &self,
        gun: &str,
        role: &str,
        v: i64,
    ) -> Result<Option<StoredFile>, StoreError> {
        self.inner.get_version(gun, role, v).await
    }
    async fn update_many(&self, gun: &str, updates: Vec<MetaUpdate>) -> Result<(), StoreError> {
        let winner = self.winner.lock().unwrap().take();
        if let Some(batch) = winner {
            self.inner.update_many(gun, batch).await?;
        }
        self.inner.update_many(gun, updates).await
    }
    async fn delete(&self, gun: &str) -> Result<u64, StoreError> {
        self.inner.delete(gun).await
    }
    async fn get_changes(
        &self,
        id: i64,
        records: i64,
        gun: Option<&str>,
    ) -> Result<Vec<Change>, StoreError> {
        self.inner.get_changes(id, records, gun).await
    }
    async fn check_health(&self) -> Result<(), StoreError> {
        self.inner.check_health().await
    }
}

#[tokio::test]
async fn regeneration_that_loses_the_race_serves_the_winner() {
    let repo = repo();
    let files = repo.build();
    let crypto = repo.server_crypto();
    let later = t0() + Duration::days(TIMESTAMP_EXPIRY_DAYS + 1);

    // The winner's timestamp: made by an identical server on a copy of the data.
    let copy = Env::server_managed(&repo);
    init(&copy, &files, false).await;
    let winner_ts = get(&copy.ctx_at(later), "timestamp").await.unwrap();
    assert_eq!(winner_ts.version, 2);

    let racing = RacingStore {
        inner: MemoryStore::new(),
        winner: Mutex::new(None),
    };
    // Same starting data as the copy.
    let mut seed = Vec::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let row = copy.store.get_version(GUN, role, 1).await.unwrap().unwrap();
        seed.push(MetaUpdate {
            role: role.into(),
            version: 1,
            data: row.data,
        });
    }
    racing.inner.update_many(GUN, seed).await.unwrap();
    *racing.winner.lock().unwrap() = Some(vec![MetaUpdate {
        role: "timestamp".into(),
        version: 2,
        data: winner_ts.data.clone(),
    }]);
    let ctx = Ctx {
        store: &racing,
        crypto: &crypto,
        key_type: KeyType::Ecdsa,
        now: later,
        actor: notary_server::audit::Actor::server(),
    };
    let served = get(&ctx, "timestamp").await.unwrap();
    assert_eq!(
        served.data, winner_ts.data,
        "the winner's timestamp is served"
    );
    assert!(racing.winner.lock().unwrap().is_none(), "the race happened");
    let latest = racing
        .inner
        .get_latest(GUN, "timestamp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_regenerations_agree() {
    let repo = repo();
    let env = Arc::new(Env::server_managed(&repo));
    init(&env, &repo.build(), false).await;
    let later = t0() + Duration::days(TIMESTAMP_EXPIRY_DAYS + 1);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            current_timestamp_or_snapshot(&env.ctx_at(later), GUN, "timestamp").await
        }));
    }
    let mut served = Vec::new();
    for t in tasks {
        served.push(t.await.unwrap().unwrap().unwrap().data);
    }
    assert!(
        served.windows(2).all(|w| w[0] == w[1]),
        "all readers see one timestamp"
    );
    assert_eq!(env.versions("timestamp").await, vec![1, 2]);
}
