//! The SQL store's cache (crate::cache): a writer reads its own writes at once, and a
//! second store on the same database (standing in for another server process) catches up
//! with the changefeed. The second store polls by hand (`sync_cache`), so nothing here
//! depends on timing.

use std::sync::Arc;
use std::time::Duration;

use super::fixtures::Repo;
use super::{MysqlDb, SqliteDb};
use crate::cache::CacheOptions;
use crate::storage::{get_current, MetaStore, SqlStore};

/// Cache settings with no background thread; a sync keeps it serving for an hour.
fn manual() -> CacheOptions {
    CacheOptions {
        poll_interval: Duration::ZERO,
        max_staleness: Duration::from_secs(3600),
        ..CacheOptions::default()
    }
}

async fn write(store: &SqlStore, gun: &str, repo: &Repo) {
    store.update_many(gun, repo.updates()).await.unwrap();
}

async fn latest(store: &SqlStore, gun: &str) -> Option<Vec<u8>> {
    store
        .get_latest(gun, "timestamp")
        .await
        .unwrap()
        .map(|f| f.data)
}

/// `a` writes, `b` (another process on the same database) reads through its cache.
async fn two_replicas(a: SqlStore, b: SqlStore, gun: &str, other_spelling: &str) {
    let (v1, v2) = (Repo::new(1, "one"), Repo::new(2, "two"));
    a.sync_cache().unwrap();
    b.sync_cache().unwrap();

    write(&a, gun, &v1).await;
    assert_eq!(latest(&b, gun).await, Some(v1.timestamp.clone()));
    assert!(b.cache().unwrap().stats().misses > 0);

    // The writer sees its own write at once, without any sync.
    write(&a, gun, &v2).await;
    assert_eq!(latest(&a, gun).await, Some(v2.timestamp.clone()));
    let current = get_current(&a, gun, "targets").await.unwrap().unwrap();
    assert_eq!(current.data, v2.targets);

    // The other replica answers from its cache until it reads the changefeed.
    let hits = b.cache().unwrap().stats().hits;
    assert_eq!(latest(&b, gun).await, Some(v1.timestamp.clone()));
    assert_eq!(
        b.cache().unwrap().stats().hits,
        hits + 1,
        "served from the cache"
    );
    b.sync_cache().unwrap();
    assert_eq!(latest(&b, other_spelling).await, Some(v2.timestamp.clone()));
    let current = get_current(&b, gun, "targets").await.unwrap().unwrap();
    assert_eq!(current.data, v2.targets);

    // Immutable rows stay cached across updates but go with a deletion.
    let sha = crate::storage::sha256_hex(&v1.snapshot);
    assert!(b
        .get_checksum(gun, "snapshot", &sha)
        .await
        .unwrap()
        .is_some());
    assert!(a.delete(gun).await.unwrap() > 0);
    assert_eq!(a.get_checksum(gun, "snapshot", &sha).await.unwrap(), None);
    assert_eq!(latest(&a, gun).await, None);
    b.sync_cache().unwrap();
    assert_eq!(b.get_checksum(gun, "snapshot", &sha).await.unwrap(), None);
    assert_eq!(latest(&b, gun).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replicas_catch_up_through_the_changefeed() {
    let db = SqliteDb::new();
    let path = db._dir.path().join("server.db");
    let a = SqlStore::open_sqlite(&path).unwrap().with_cache(manual());
    let b = SqlStore::open_sqlite(&path).unwrap().with_cache(manual());
    two_replicas(a, b, "example.com/cached", "example.com/cached").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_replicas_catch_up_through_the_changefeed() {
    let Some(db) = MysqlDb::create() else { return };
    let a = SqlStore::open_mysql(&db.url())
        .unwrap()
        .with_cache(manual());
    let b = SqlStore::open_mysql(&db.url())
        .unwrap()
        .with_cache(manual());
    // GUNs match exactly on MySQL too (its collation notwithstanding), and so does the cache.
    two_replicas(a, b, "example.com/Cached", "example.com/Cached").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_cannot_sync_answers_nothing() {
    let db = SqliteDb::new();
    let path = db._dir.path().join("server.db");
    let opts = CacheOptions {
        max_staleness: Duration::ZERO,
        ..manual()
    };
    let a = SqlStore::open_sqlite(&path).unwrap().with_cache(opts);
    let b = SqlStore::open_sqlite(&path).unwrap().with_cache(manual());
    let (v1, v2) = (Repo::new(1, "one"), Repo::new(2, "two"));
    write(&b, "g", &v1).await;
    a.sync_cache().unwrap();
    assert_eq!(latest(&a, "g").await, Some(v1.timestamp.clone()));
    write(&b, "g", &v2).await;
    // No sync is ever recent enough: every read goes to the database.
    assert_eq!(latest(&a, "g").await, Some(v2.timestamp.clone()));
    assert_eq!(a.cache().unwrap().stats().hits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_thread_keeps_the_cache_serving() {
    let db = SqliteDb::new();
    let path = db._dir.path().join("server.db");
    let opts = CacheOptions {
        poll_interval: Duration::from_millis(10),
        ..CacheOptions::default()
    };
    let store = Arc::new(SqlStore::open_sqlite(&path).unwrap().with_cache(opts));
    let v1 = Repo::new(1, "one");
    write(&store, "g", &v1).await;
    // Wait (bounded) for the thread's first sync; then reads are answered from memory.
    for _ in 0..500 {
        if store.cache().unwrap().is_serving() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.cache().unwrap().is_serving(), "no sync within 5 s");
    for _ in 0..3 {
        assert_eq!(latest(&store, "g").await, Some(v1.timestamp.clone()));
    }
    assert!(store.cache().unwrap().stats().hits >= 2);
}
