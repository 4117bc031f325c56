//! The expiry inventory on every SQL backend: kept with each accepted update, queried by
//! time, role and prefix, rebuilt by the backfill.

use chrono::{Duration, Utc};
use serde_json::json;

use super::fixtures::update;
use super::{MysqlDb, PgDb, SqliteDb};
use crate::expiry::Kind;
use crate::storage::{MetaStore, SqlStore};

fn file(role: &str, version: i64, expires_in_days: i64) -> Vec<u8> {
    let expires = (Utc::now() + Duration::days(expires_in_days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    serde_json::to_vec(&json!({
        "signed": {"_type": role, "version": version, "expires": expires},
        "signatures": [],
    }))
    .unwrap()
}

async fn inventory_follows_updates(store: &SqlStore) {
    let a = "docker.io/lib/app";
    let b = "quay.io/other/app";
    store
        .update_many(
            a,
            vec![
                update("targets", 1, &file("Targets", 1, 400)),
                update("timestamp", 1, &file("Timestamp", 1, 10)),
            ],
        )
        .await
        .unwrap();
    store
        .update_many(b, vec![update("targets", 1, &file("Targets", 1, 5))])
        .await
        .unwrap();
    let soon = store
        .expiring(Utc::now() + Duration::days(30), None, None, 100)
        .await
        .unwrap();
    let seen: Vec<(&str, &str)> = soon
        .iter()
        .map(|r| (r.gun.as_str(), r.role.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![(b, "targets"), (a, "timestamp")],
        "soonest first"
    );
    assert!(soon.iter().all(|r| r.kind == Kind::Metadata));
    // Role and prefix filters; `_` and `%` in a prefix are literal.
    let by_role = store
        .expiring(
            Utc::now() + Duration::days(500),
            Some("targets".into()),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(by_role.len(), 2);
    let by_prefix = store
        .expiring(
            Utc::now() + Duration::days(500),
            None,
            Some("docker.io/".into()),
            100,
        )
        .await
        .unwrap();
    assert_eq!(by_prefix.len(), 2);
    assert!(store
        .expiring(
            Utc::now() + Duration::days(500),
            None,
            Some("docker_io".into()),
            100
        )
        .await
        .unwrap()
        .is_empty());
    // A new version replaces its role's rows.
    store
        .update_many(b, vec![update("targets", 2, &file("Targets", 2, 900))])
        .await
        .unwrap();
    let rows = store.expiry_of(b).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].version, 2);
    assert!(rows[0].expires > Utc::now() + Duration::days(899));
}

async fn backfill_rebuilds_from_current_metadata(store: &SqlStore) {
    let gun = "example.com/backfill";
    let repo = super::fixtures::Repo::new(3, "bf");
    store.update_many(gun, repo.updates()).await.unwrap();
    let before = store.expiry_of(gun).await.unwrap();
    // The fixture files have no `expires`: nothing to record until they do, but the
    // backfill must still walk the current chain without failing.
    assert!(before.is_empty(), "{before:?}");
    let with_expiry = "example.com/backfill2";
    store
        .update_many(
            with_expiry,
            vec![update("timestamp", 1, &file("Timestamp", 1, 3))],
        )
        .await
        .unwrap();
    store
        .run(|conn| {
            use diesel::RunQueryDsl;
            diesel::delete(crate::storage::schema::expiry_inventory::table)
                .execute(conn)
                .map(drop)
                .map_err(super::super::sql::map_error)
        })
        .await
        .unwrap();
    assert!(store.expiry_of(with_expiry).await.unwrap().is_empty());
    // Every GUN with a timestamp: the two here and docker.io/lib/app of the test before
    // (quay.io/other/app has none).
    let guns = store.expiry_backfill().await.unwrap();
    assert_eq!(guns, 3);
    let app = store.expiry_of("docker.io/lib/app").await.unwrap();
    assert_eq!(
        app.iter().map(|r| r.role.as_str()).collect::<Vec<_>>(),
        vec!["timestamp"]
    );
    let rows = store.expiry_of(with_expiry).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].role, "timestamp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inventory_follows_updates() {
    let db = SqliteDb::new();
    inventory_follows_updates(&db.store).await;
    backfill_rebuilds_from_current_metadata(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_inventory_follows_updates() {
    let Some(db) = MysqlDb::create() else { return };
    let store = db.store.clone().unwrap();
    inventory_follows_updates(&store).await;
    backfill_rebuilds_from_current_metadata(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inventory_follows_updates() {
    let Some(db) = PgDb::create() else { return };
    let store = db.sql_store();
    inventory_follows_updates(&store).await;
    backfill_rebuilds_from_current_metadata(&store).await;
}
