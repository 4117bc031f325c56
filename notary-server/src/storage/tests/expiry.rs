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

/// The metrics' summary (its literal-time SQL) and the re-signing lease, per backend.
async fn summary_and_lease(store: &SqlStore) {
    let now = Utc::now();
    store
        .update_many(
            "example.com/sum/a",
            vec![
                update("targets", 1, &file("Targets", 1, -1)),
                update("timestamp", 1, &file("Timestamp", 1, 3)),
            ],
        )
        .await
        .unwrap();
    store
        .update_many(
            "example.com/sum/b",
            vec![
                update("targets", 1, &file("Targets", 1, 20)),
                update("targets/releases", 1, &file("Targets", 1, 60)),
            ],
        )
        .await
        .unwrap();
    let summary = store.expiry_summary(now).await.unwrap();
    let get = |role: &str| {
        summary
            .iter()
            .find(|s| s.role == role && s.kind == "metadata")
            .unwrap()
            .clone()
    };
    let targets = get("targets");
    assert_eq!((targets.expired, targets.within), (1, [0, 0, 1, 1]));
    assert!(targets.soonest.unwrap() < now);
    assert_eq!(get("timestamp").within, [0, 1, 1, 1]);
    assert_eq!(get("delegation").within, [0, 0, 0, 1]);
    assert_eq!(get("root").soonest, None);

    // Lease: one holder at a time; renewals; take-over once lapsed.
    let until = now + Duration::seconds(60);
    assert!(store.lease_acquire("job", "a", now, until).await.unwrap());
    assert!(!store.lease_acquire("job", "b", now, until).await.unwrap());
    assert!(
        store.lease_acquire("job", "a", now, until).await.unwrap(),
        "renewal with the same values"
    );
    let later = now + Duration::seconds(61);
    assert!(store
        .lease_acquire("job", "b", later, later + Duration::seconds(60))
        .await
        .unwrap());
    assert!(!store.lease_acquire("job", "a", later, later).await.unwrap());
    assert_eq!(store.lease_holder("job").await.unwrap().unwrap().0, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inventory_follows_updates() {
    let db = SqliteDb::new();
    inventory_follows_updates(&db.store).await;
    backfill_rebuilds_from_current_metadata(&db.store).await;
    let db = SqliteDb::new();
    summary_and_lease(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_inventory_follows_updates() {
    let Some(db) = MysqlDb::create() else { return };
    let store = db.store.clone().unwrap();
    inventory_follows_updates(&store).await;
    backfill_rebuilds_from_current_metadata(&store).await;
    let Some(db) = MysqlDb::create() else { return };
    summary_and_lease(&db.store.clone().unwrap()).await;
    let Some(db) = MysqlDb::create() else { return };
    crate::expiry::resign::tests::resign_pass_on(&db.store.clone().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inventory_follows_updates() {
    let Some(db) = PgDb::create() else { return };
    let store = db.sql_store();
    inventory_follows_updates(&store).await;
    backfill_rebuilds_from_current_metadata(&store).await;
    let Some(db) = PgDb::create() else { return };
    summary_and_lease(&db.sql_store()).await;
    let Some(db) = PgDb::create() else { return };
    crate::expiry::resign::tests::resign_pass_on(&db.sql_store()).await;
}
