//! Freeze attacks: a client must never be served an expired timestamp (or snapshot) by the
//! HTTP app. The repositories are published "in the past" through the domain layer's
//! injected clock, then read over HTTP at the real time: the server regenerates what has
//! expired; when the signer is down it answers with an error instead of the stale file; an
//! owner-signed snapshot it cannot re-sign is served as stored under a fresh timestamp, and
//! clients refuse it as expired (they check expiry themselves).

mod http_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::test::TestRequest;
use chrono::{DateTime, Duration, Utc};
use http_support::{call, Reply};
use notary_server::domain::{apply_update, Ctx};
use notary_server::http::AppState;
use notary_server::storage::{MemoryStore, MetaStore, SqlStore};
use notary_tuf::crypto::{CryptoError, CryptoService, MemoryCryptoService};
use notary_tuf::keys::{KeyType, PublicKey};
use notary_tuf::test_support::TestRepo;
use notary_tuf::verify::{RepoBuilder, SNAPSHOT_EXPIRY_DAYS, TIMESTAMP_EXPIRY_DAYS};
use notary_tuf::SignedFile;

const GUN: &str = "docker.io/hostile/frozen";

/// A signer that is down: every call fails as unreachable.
struct DownSigner(AtomicUsize);

#[async_trait::async_trait]
impl CryptoService for DownSigner {
    async fn create_key(&self, _: &str, _: &str, _: &KeyType) -> Result<PublicKey, CryptoError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(CryptoError::Unavailable("connection refused".into()))
    }
    async fn get_key(&self, _: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(CryptoError::Unavailable("connection refused".into()))
    }
    async fn sign(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(CryptoError::Unavailable("connection refused".into()))
    }
}

struct Backend {
    store: Arc<dyn MetaStore>,
    name: &'static str,
    _dir: Option<tempfile::TempDir>,
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sql = SqlStore::open_sqlite(&dir.path().join("server.db")).unwrap();
    sql.run_migrations().unwrap();
    vec![
        Backend {
            store: Arc::new(MemoryStore::new()),
            name: "memory",
            _dir: None,
        },
        Backend {
            store: Arc::new(sql),
            name: "sqlite",
            _dir: Some(dir),
        },
    ]
}

/// Publishes `repo` (root + targets, plus its snapshot when `client_snapshot`) at the
/// repo's own clock.
async fn publish_at(
    store: &dyn MetaStore,
    crypto: &dyn CryptoService,
    repo: &TestRepo,
    client_snapshot: bool,
) {
    let files = repo.build();
    let mut parts = vec![
        ("root".to_string(), files.root.clone()),
        ("targets".to_string(), files.targets["targets"].clone()),
    ];
    if client_snapshot {
        parts.push(("snapshot".to_string(), files.snapshot.clone()));
    }
    let ctx = Ctx {
        store,
        crypto,
        key_type: KeyType::Ecdsa,
        now: repo.now,
        actor: notary_server::audit::Actor::server(),
    };
    apply_update(&ctx, GUN, parts)
        .await
        .expect("publish in the past");
}

async fn get(store: &Arc<dyn MetaStore>, crypto: Arc<dyn CryptoService>, path: &str) -> Reply {
    let state = AppState::new(store.clone(), crypto, KeyType::Ecdsa);
    call(
        state,
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/{path}")),
    )
    .await
}

fn expires(body: &[u8]) -> DateTime<Utc> {
    SignedFile::parse(body).unwrap().common.expires
}

/// Verifies what the server serves now the way a client does: root, then timestamp,
/// snapshot and targets, each checked against its parent and not expired.
async fn client_verifies(store: &Arc<dyn MetaStore>, crypto: Arc<dyn CryptoService>) {
    let mut builder = RepoBuilder::new(GUN, Utc::now());
    for role in ["root", "timestamp", "snapshot", "targets"] {
        let r = get(store, crypto.clone(), &format!("{role}.json")).await;
        assert_eq!(r.status, 200, "{role}: {}", r.text());
        // The root is trusted on first use (its expiry still matters).
        builder
            .load(role, &r.body, 1, false)
            .unwrap_or_else(|e| panic!("client rejects {role}: {e}"));
    }
}

#[actix_web::test]
async fn an_expired_timestamp_is_never_served() {
    for b in backends() {
        // Published 20 days ago: the 14-day timestamp has expired, the snapshot has not.
        let repo = TestRepo::new_at(GUN, Utc::now() - Duration::days(20));
        let crypto: Arc<dyn CryptoService> = Arc::new(repo.server_crypto());
        publish_at(b.store.as_ref(), crypto.as_ref(), &repo, true).await;
        let stale = b.store.get_latest(GUN, "timestamp").await.unwrap().unwrap();
        assert!(expires(&stale.data) < Utc::now(), "{}: fixture", b.name);

        let r = get(&b.store, crypto.clone(), "timestamp.json").await;
        assert_eq!(r.status, 200, "{}: {}", b.name, r.text());
        assert_ne!(r.body, stale.data, "{}: stale timestamp served", b.name);
        let now = Utc::now();
        let exp = expires(&r.body);
        assert!(exp > now, "{}: served timestamp expired at {exp}", b.name);
        assert!(
            exp <= now + Duration::days(TIMESTAMP_EXPIRY_DAYS),
            "{}",
            b.name
        );
        assert_eq!(r.json()["signed"]["version"], 2, "{}", b.name);
        client_verifies(&b.store, crypto.clone()).await;

        // Served again: the same regenerated file, no further version.
        let again = get(&b.store, crypto.clone(), "timestamp.json").await;
        assert_eq!(again.body, r.body, "{}", b.name);
    }
}

#[actix_web::test]
async fn an_expired_server_snapshot_is_regenerated_with_its_timestamp() {
    for b in backends() {
        let mut repo = TestRepo::new_at(
            GUN,
            Utc::now() - Duration::days(SNAPSHOT_EXPIRY_DAYS) - Duration::days(2),
        );
        // The client chose a long targets expiry; only the server-made files are stale.
        repo.targets.get_mut("targets").unwrap().common.expires = Utc::now() + Duration::days(365);
        let crypto: Arc<dyn CryptoService> = Arc::new(repo.server_crypto());
        publish_at(b.store.as_ref(), crypto.as_ref(), &repo, false).await;

        // Asking for the snapshot first: it comes back fresh, and the timestamp names it.
        let snap = get(&b.store, crypto.clone(), "snapshot.json").await;
        assert_eq!(snap.status, 200, "{}: {}", b.name, snap.text());
        assert!(expires(&snap.body) > Utc::now(), "{}", b.name);
        assert_eq!(snap.json()["signed"]["version"], 2, "{}", b.name);
        let ts = get(&b.store, crypto.clone(), "timestamp.json").await;
        assert!(expires(&ts.body) > Utc::now(), "{}", b.name);
        let ts_meta = &ts.json()["signed"]["meta"]["snapshot"];
        assert_eq!(ts_meta["length"], snap.body.len(), "{}", b.name);
        client_verifies(&b.store, crypto.clone()).await;
    }
}

#[actix_web::test]
async fn when_regeneration_is_impossible_an_error_is_served_not_the_stale_file() {
    for b in backends() {
        // Signer down: an expired timestamp cannot be re-signed.
        let repo = TestRepo::new_at(GUN, Utc::now() - Duration::days(20));
        let signer = repo.server_crypto();
        publish_at(b.store.as_ref(), &signer, &repo, true).await;
        let down = Arc::new(DownSigner(AtomicUsize::new(0)));
        for path in ["timestamp.json", "snapshot.json"] {
            let r = get(&b.store, down.clone(), path).await;
            assert_eq!(r.status, 503, "{} {path}: {}", b.name, r.text());
            assert_eq!(r.code(), "UNAVAILABLE", "{} {path}", b.name);
        }
        assert!(down.0.load(Ordering::SeqCst) > 0, "the signer was asked");
        assert_eq!(
            b.store
                .get_latest(GUN, "timestamp")
                .await
                .unwrap()
                .unwrap()
                .version,
            1,
            "{}: nothing written",
            b.name
        );
        // The signer is back: the next read regenerates.
        let r = get(&b.store, Arc::new(signer), "timestamp.json").await;
        assert_eq!(r.status, 200, "{}", b.name);
        assert!(expires(&r.body) > Utc::now(), "{}", b.name);
    }

    for b in backends() {
        // Client-held snapshot key and an expired snapshot: the server cannot re-sign it.
        // It serves a fresh timestamp over the stored snapshot (issue 14: a GUN whose
        // targets and owner-signed snapshot expired, as `notary init` repositories do after
        // three years, is served, never a 500), and a client still refuses the expired
        // snapshot: nothing stale is accepted.
        let when = Utc::now() - Duration::days(SNAPSHOT_EXPIRY_DAYS) - Duration::days(2);
        let repo = TestRepo::new_at(GUN, when);
        let timestamp_only = MemoryCryptoService::new();
        timestamp_only.add_key(repo.timestamp_key.clone(), GUN, "timestamp");
        let crypto: Arc<dyn CryptoService> = Arc::new(timestamp_only);
        publish_at(b.store.as_ref(), crypto.as_ref(), &repo, true).await;
        let ts = get(&b.store, crypto.clone(), "timestamp.json").await;
        assert_eq!(ts.status, 200, "{}: {}", b.name, ts.text());
        assert!(expires(&ts.body) > Utc::now(), "{}", b.name);
        let snap = get(&b.store, crypto.clone(), "snapshot.json").await;
        assert_eq!(snap.status, 200, "{}: {}", b.name, snap.text());
        assert!(expires(&snap.body) < Utc::now(), "{}", b.name);
        let root = get(&b.store, crypto.clone(), "root.json").await;
        let mut client = RepoBuilder::new(GUN, Utc::now());
        client.load("root", &root.body, 1, true).unwrap();
        client.load("timestamp", &ts.body, 1, false).unwrap();
        let refused = client.load("snapshot", &snap.body, 1, false);
        assert!(
            refused.is_err(),
            "{}: a client refuses the expired snapshot",
            b.name
        );
    }
}
