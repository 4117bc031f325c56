//! SQLite-only checks.

use std::sync::Arc;
use std::time::Duration;

use super::conformance;
use super::fixtures::update;
use super::SqliteDb;
use crate::storage::{MetaStore, PoolOptions, SqlStore};

#[tokio::test(flavor = "current_thread")]
async fn tiny_pool_serves_many_requests() {
    // One connection for 48 concurrent tasks on a single-threaded runtime:
    // checkouts must wait on blocking threads, never on the runtime thread.
    let db = SqliteDb::with_options(PoolOptions {
        max_size: 1,
        connection_timeout: Duration::from_secs(30),
    });
    conformance::many_concurrent_requests(db.store()).await;
}

#[tokio::test]
async fn matching_is_case_sensitive() {
    let db = SqliteDb::new();
    let store = db.store();
    store
        .update_many("example.com/App", vec![update("root", 1, b"root")])
        .await
        .unwrap();
    assert!(store
        .get_latest("example.com/App", "root")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.get_latest("example.com/app", "root").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_latest("example.com/App", "ROOT").await.unwrap(),
        None
    );
    let sha = crate::storage::sha256_hex(b"root");
    assert_eq!(
        store
            .get_checksum("example.com/App", "root", &sha.to_uppercase())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.delete("example.com/app").await.unwrap(), 0);
}

#[tokio::test]
async fn reopening_and_remigrating_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    {
        let store = SqlStore::open_sqlite(&path).unwrap();
        store.run_migrations().unwrap();
        store
            .update_many("example.com/keep", vec![update("root", 1, b"kept")])
            .await
            .unwrap();
    }
    let store = Arc::new(SqlStore::open_sqlite(&path).unwrap());
    store.run_migrations().unwrap();
    store.run_migrations().unwrap();
    let file = store
        .get_latest("example.com/keep", "root")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.data, b"kept");
    // The unique key survives: a replayed version still collides.
    assert_eq!(
        store
            .update_many("example.com/keep", vec![update("root", 1, b"again")])
            .await,
        Err(crate::storage::StoreError::OldVersion)
    );
}

#[tokio::test]
async fn missing_tables_fail_health() {
    let dir = tempfile::tempdir().unwrap();
    // Not migrated: health must not pass on an empty database.
    let store = SqlStore::open_sqlite(&dir.path().join("empty.db")).unwrap();
    assert!(store.check_health().await.is_err());
}
