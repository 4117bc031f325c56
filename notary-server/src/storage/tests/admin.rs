//! The audit trail, retention and statistics on every SQL backend (SQLite always; MySQL and
//! PostgreSQL when configured).

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::fixtures::Repo;
use super::{MysqlDb, PgDb, SqliteDb};
use crate::audit::{Action, Actor, ActorKind, Audit, AuditQuery};
use crate::storage::{get_current, MetaStore, PrunePolicy, SqlStore, StoreError};

fn alice() -> Actor {
    Actor {
        name: "alice".into(),
        kind: ActorKind::Token,
        peer: Some("192.0.2.7".into()),
        request_id: Some("req-1".into()),
    }
}

fn all(gun: Option<&str>) -> AuditQuery {
    AuditQuery {
        gun: gun.map(str::to_owned),
        limit: 1000,
        ..AuditQuery::default()
    }
}

async fn audit_rows_for_each_change(store: &SqlStore) {
    let gun = "example.com/audit/app";
    let other = "example.com/audit/other";
    let v1 = Repo::new(1, "a");
    store
        .update_many_as(gun, v1.updates(), &Audit::new(Action::Update, &alice()))
        .await
        .unwrap();
    let rows = store.audit_query(all(Some(gun))).await.unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (row, u) in rows.iter().zip(v1.updates()) {
        assert_eq!(row.action, "update");
        assert_eq!(row.role.as_deref(), Some(u.role.as_str()));
        assert_eq!(row.version, Some(1));
        assert_eq!(
            row.sha256.as_deref(),
            Some(crate::storage::sha256_hex(&u.data).as_str())
        );
        assert_eq!(
            (row.actor.as_str(), row.actor_kind.as_str()),
            ("alice", "token")
        );
        assert_eq!(row.peer.as_deref(), Some("192.0.2.7"));
        assert_eq!(row.request_id.as_deref(), Some("req-1"));
        assert!(
            (Utc::now() - row.at).num_seconds().abs() < 60,
            "{:?}",
            row.at
        );
    }
    // A refused update writes no audit row (same transaction).
    assert_eq!(
        store
            .update_many_as(gun, v1.updates(), &Audit::new(Action::Update, &alice()))
            .await,
        Err(StoreError::OldVersion)
    );
    assert_eq!(store.audit_query(all(Some(gun))).await.unwrap().len(), 4);

    // Key records: a new one is audited, the same key handed out again is not.
    let key = Audit::new(Action::KeyCreate, &alice());
    store
        .record_key_as(gun, "timestamp", "k1", &key)
        .await
        .unwrap();
    store
        .record_key_as(gun, "timestamp", "k1", &key)
        .await
        .unwrap();
    let rotate = Audit::new(Action::KeyRotate, &alice());
    store
        .record_key_as(gun, "timestamp", "k2", &rotate)
        .await
        .unwrap();
    let rows = store.audit_query(all(Some(gun))).await.unwrap();
    let keys: Vec<(&str, String)> = rows
        .iter()
        .filter(|r| r.action.starts_with("key-"))
        .map(|r| {
            (
                r.action.as_str(),
                r.detail.as_ref().unwrap()["key_id"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("key-create", "\"k1\"".to_owned()),
            ("key-rotate", "\"k2\"".to_owned())
        ]
    );

    // A server re-sign and a delete by another actor, on another GUN.
    store
        .update_many_as(
            other,
            Repo::new(1, "o").updates(),
            &Audit::new(Action::Resign, &alice().server_for()),
        )
        .await
        .unwrap();
    let bob = Actor {
        name: "CN=bob,O=ops".into(),
        kind: ActorKind::ClientCertificate,
        peer: None,
        request_id: None,
    };
    assert_eq!(
        store
            .delete_as(other, &Audit::new(Action::AdminDelete, &bob))
            .await
            .unwrap(),
        4
    );
    let rows = store.audit_query(all(Some(other))).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows[..4].iter().all(|r| r.action == "server-resign"
        && r.actor == "server"
        && r.actor_kind == "server"
        && r.request_id.as_deref() == Some("req-1")));
    let deleted = &rows[4];
    assert_eq!(
        (
            deleted.action.as_str(),
            deleted.actor.as_str(),
            deleted.actor_kind.as_str()
        ),
        ("admin-delete", "CN=bob,O=ops", "client-certificate")
    );
    assert_eq!(deleted.detail.as_ref().unwrap()["rows_removed"], 4);

    // Filters: actor, time window, paging.
    let by_bob = store
        .audit_query(AuditQuery {
            actor: Some("CN=bob,O=ops".into()),
            ..all(None)
        })
        .await
        .unwrap();
    assert_eq!(by_bob.len(), 1);
    let future = store
        .audit_query(AuditQuery {
            since: Some(Utc::now() + Duration::hours(1)),
            ..all(None)
        })
        .await
        .unwrap();
    assert!(future.is_empty());
    let past = store
        .audit_query(AuditQuery {
            until: Some(Utc::now() - Duration::hours(1)),
            ..all(None)
        })
        .await
        .unwrap();
    assert!(past.is_empty());
    let everything = store.audit_query(all(None)).await.unwrap();
    assert_eq!(everything.len(), 11);
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .audit_query(AuditQuery {
                after_id: after,
                limit: 3,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        paged.extend(page);
    }
    assert_eq!(paged, everything);
}

/// Five full versions of a repository; prune keeps roots, the current chain and the newest
/// versions, and the dry run changes nothing.
async fn prune_keeps_what_clients_need(store: &SqlStore) {
    let gun = "example.com/prune/app";
    for v in 1..=5 {
        store
            .update_many_as(
                gun,
                Repo::new(v, "p").updates(),
                &Audit::new(Action::Update, &alice()),
            )
            .await
            .unwrap();
    }
    let before = store.stats(Some(gun)).await.unwrap();
    assert_eq!((before.guns, before.rows), (1, 20));
    let policy = PrunePolicy {
        keep_versions: Some(2),
        keep_days: None,
    };
    let dry = store
        .prune_gun(gun, &policy, true, &alice(), Utc::now())
        .await
        .unwrap();
    assert_eq!((dry.rows, dry.guns_pruned), (9, 1), "{dry:?}");
    assert_eq!(store.stats(Some(gun)).await.unwrap(), before);

    let report = store.prune_all(&policy, false, &alice()).await.unwrap();
    assert_eq!((report.rows, report.bytes), (dry.rows, dry.bytes));
    assert_eq!(report.per_role.get("root"), None, "roots are never pruned");
    let after = store.stats(Some(gun)).await.unwrap();
    assert_eq!(after.rows, 11);
    assert_eq!(
        after.bytes,
        before.bytes - i64::try_from(report.bytes).unwrap()
    );
    let v5 = Repo::new(5, "p");
    for (role, data) in [
        ("root", &v5.root),
        ("targets", &v5.targets),
        ("snapshot", &v5.snapshot),
        ("timestamp", &v5.timestamp),
    ] {
        let current = get_current(store, gun, role).await.unwrap().unwrap();
        assert_eq!(&current.data, data, "{role}");
    }
    for v in 1..=5 {
        assert!(store.get_version(gun, "root", v).await.unwrap().is_some());
        let kept = store
            .get_version(gun, "targets", v)
            .await
            .unwrap()
            .is_some();
        assert_eq!(kept, v >= 4, "targets v{v}");
    }
    // Pruning again removes nothing more; the prune is in the audit trail.
    let again = store.prune_all(&policy, false, &alice()).await.unwrap();
    assert_eq!(again.rows, 0);
    let trail = store.audit_query(all(Some(gun))).await.unwrap();
    let prune = trail.iter().find(|r| r.action == "prune").unwrap();
    let detail = prune.detail.as_ref().unwrap();
    assert_eq!(detail["rows_removed"], 9);
    assert_eq!(
        (
            &detail["roles"]["targets"]["versions_from"],
            &detail["roles"]["targets"]["versions_to"]
        ),
        (&serde_json::json!(1), &serde_json::json!(3))
    );
    // A writer continues from the pruned state.
    store
        .update_many(gun, Repo::new(6, "p").updates())
        .await
        .unwrap();
    assert_eq!(
        store
            .stats(None)
            .await
            .unwrap()
            .roles
            .iter()
            .find(|r| r.role == "targets")
            .unwrap()
            .max_version,
        6
    );
}

/// Publishers keep writing while prune runs over and over: every acknowledged publish stays
/// readable as the current state, and every root stays.
async fn prune_during_concurrent_publishes(store: Arc<SqlStore>) {
    const GUNS: usize = 4;
    const VERSIONS: i64 = 25;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pruner = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let policy = PrunePolicy {
                keep_versions: Some(1),
                keep_days: None,
            };
            let mut rows = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                rows += store
                    .prune_all(&policy, false, &Actor::server())
                    .await
                    .unwrap()
                    .rows;
            }
            rows
        })
    };
    let mut publishers = Vec::new();
    for g in 0..GUNS {
        let store = store.clone();
        publishers.push(tokio::spawn(async move {
            let gun = format!("example.com/race/{g}");
            for v in 1..=VERSIONS {
                let repo = Repo::new(v, &format!("g{g}"));
                store.update_many(&gun, repo.updates()).await.unwrap();
                // What was just acknowledged is what a reader gets.
                let ts = get_current(&*store, &gun, "timestamp")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(ts.data, repo.timestamp, "{gun} v{v}");
                let targets = get_current(&*store, &gun, "targets")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(targets.data, repo.targets, "{gun} v{v}");
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let pruned = pruner.await.unwrap();
    let last = store
        .prune_all(
            &PrunePolicy {
                keep_versions: Some(1),
                keep_days: None,
            },
            false,
            &Actor::server(),
        )
        .await
        .unwrap();
    assert!(pruned + last.rows > 0, "the pruner never removed anything");
    for g in 0..GUNS {
        let gun = format!("example.com/race/{g}");
        let repo = Repo::new(VERSIONS, &format!("g{g}"));
        for (role, data) in [
            ("root", &repo.root),
            ("targets", &repo.targets),
            ("snapshot", &repo.snapshot),
            ("timestamp", &repo.timestamp),
        ] {
            assert_eq!(
                &get_current(&*store, &gun, role)
                    .await
                    .unwrap()
                    .unwrap()
                    .data,
                data
            );
        }
        for v in 1..=VERSIONS {
            assert!(store.get_version(&gun, "root", v).await.unwrap().is_some());
        }
        // Only roots and one version of each other role are left.
        assert_eq!(store.stats(Some(&gun)).await.unwrap().rows, VERSIONS + 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_rows_for_each_change() {
    let db = SqliteDb::new();
    audit_rows_for_each_change(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_audit_rows_for_each_change() {
    let Some(db) = MysqlDb::create() else { return };
    audit_rows_for_each_change(&db.store.clone().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audit_rows_for_each_change() {
    let Some(db) = PgDb::create() else { return };
    audit_rows_for_each_change(&db.sql_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_prune_keeps_what_clients_need() {
    let db = SqliteDb::new();
    prune_keeps_what_clients_need(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_prune_keeps_what_clients_need() {
    let Some(db) = MysqlDb::create() else { return };
    prune_keeps_what_clients_need(&db.store.clone().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_prune_keeps_what_clients_need() {
    let Some(db) = PgDb::create() else { return };
    prune_keeps_what_clients_need(&db.sql_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_prune_during_concurrent_publishes() {
    let db = SqliteDb::new();
    prune_during_concurrent_publishes(db.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_prune_during_concurrent_publishes() {
    let Some(db) = MysqlDb::create() else { return };
    prune_during_concurrent_publishes(db.store.clone().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_prune_during_concurrent_publishes() {
    let Some(db) = PgDb::create() else { return };
    prune_during_concurrent_publishes(db.sql_store()).await;
}
