//! The console's GUN list on every SQL backend: keyset paging in the database's name order,
//! prefix search with `_`/`%` taken literally, the soonest expiry of each GUN.

use chrono::{Duration, Utc};
use serde_json::json;

use super::fixtures::update;
use super::{MysqlDb, PgDb, SqliteDb};
use crate::expiry::Kind;
use crate::storage::{MetaStore, SqlStore};

fn file(role: &str, days: i64) -> Vec<u8> {
    let expires = (Utc::now() + Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    serde_json::to_vec(&json!({
        "signed": {"_type": role, "version": 1, "expires": expires},
        "signatures": [],
    }))
    .unwrap()
}

async fn console_gun_list(store: &SqlStore) {
    let guns = [
        "a.example/one",
        "a.example/two",
        "b.example/x_y",
        "b.example/xay",
        "b.example/x%z",
        "c.example/none",
    ];
    for gun in &guns[..5] {
        store
            .update_many(gun, vec![update("targets", 1, &file("Targets", 300))])
            .await
            .unwrap();
    }
    store
        .update_many(
            "a.example/one",
            vec![update("timestamp", 1, &file("Timestamp", 10))],
        )
        .await
        .unwrap();
    // No `expires`: nothing in the inventory.
    store
        .update_many("c.example/none", vec![update("targets", 1, b"{}")])
        .await
        .unwrap();

    // Pages of two, each after the last name of the one before, cover every GUN once.
    let all = store.console_guns("", "", 100).await.unwrap();
    assert_eq!(all.len(), guns.len(), "{all:?}");
    let mut walked = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.console_guns(&after, "", 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.gun.clone();
        walked.extend(page.into_iter().map(|s| s.gun));
    }
    assert_eq!(
        walked,
        all.iter().map(|s| s.gun.clone()).collect::<Vec<_>>()
    );

    // The soonest of a GUN's expiries; none for a GUN the inventory lacks.
    let one = all.iter().find(|s| s.gun == "a.example/one").unwrap();
    let soonest = one.soonest.as_ref().unwrap();
    assert_eq!(
        (soonest.role.as_str(), soonest.kind),
        ("timestamp", Kind::Metadata)
    );
    assert!(soonest.expires < Utc::now() + Duration::days(11));
    let none = all.iter().find(|s| s.gun == "c.example/none").unwrap();
    assert!(none.soonest.is_none(), "{none:?}");

    // Prefix search: wildcards are literal, and it pages too.
    let names = |v: Vec<crate::storage::GunSummary>| {
        let mut n: Vec<String> = v.into_iter().map(|s| s.gun).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(store.console_guns("", "b.example/x_", 100).await.unwrap()),
        ["b.example/x_y"]
    );
    assert_eq!(
        names(store.console_guns("", "b.example/x%", 100).await.unwrap()),
        ["b.example/x%z"]
    );
    assert_eq!(
        names(store.console_guns("", "a.example/", 100).await.unwrap()),
        ["a.example/one", "a.example/two"]
    );
    // `after` before the prefix's range does not narrow it.
    assert_eq!(
        store
            .console_guns("a", "b.example/", 100)
            .await
            .unwrap()
            .len(),
        3
    );
    let first = store.console_guns("", "a.example/", 1).await.unwrap();
    let rest = store
        .console_guns(&first[0].gun, "a.example/", 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_ne!(rest[0].gun, first[0].gun);
    assert!(store.console_guns("", "zzz", 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_console_gun_list() {
    let db = SqliteDb::new();
    console_gun_list(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_console_gun_list() {
    let Some(db) = MysqlDb::create() else { return };
    console_gun_list(&db.store.clone().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_console_gun_list() {
    let Some(db) = PgDb::create() else { return };
    console_gun_list(&db.sql_store()).await;
}
