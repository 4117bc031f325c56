//! Backend-agnostic test bodies: every function takes a fresh, empty store
//! and is run against each backend by `conformance_suite!` in `mod.rs`.

use std::sync::Arc;

use chrono::{Duration, Timelike, Utc};
use tokio::sync::Barrier;

use super::fixtures::{role_file, snapshot_file, timestamp_file, update, Repo};
use crate::storage::{
    get_current, sha256_hex, Change, MetaStore, StoreError, StoredFile, CATEGORY_DELETION,
    CATEGORY_UPDATE,
};

const GUN: &str = "example.com/conformance/app";

async fn all_changes(store: &dyn MetaStore) -> Vec<Change> {
    store.get_changes(0, i64::MAX, None).await.unwrap()
}

fn summary(changes: &[Change]) -> Vec<(String, i64, String)> {
    changes
        .iter()
        .map(|c| (c.gun.clone(), c.version, c.category.clone()))
        .collect()
}

pub(crate) async fn get_put_round_trip(store: Arc<dyn MetaStore>) {
    // Binary, non-UTF-8 and large enough to need more than a BLOB (64 KiB).
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let v1 = vec![0u8, 0xff, 0x80, b'{', 0];
    let before = Utc::now() - Duration::seconds(1);
    store
        .update_many(GUN, vec![update("root", 1, &v1)])
        .await
        .unwrap();
    let after = Utc::now() + Duration::seconds(1);

    let latest = store.get_latest(GUN, "root").await.unwrap().unwrap();
    assert_eq!(latest.role, "root");
    assert_eq!(latest.version, 1);
    assert_eq!(latest.data, v1);
    assert_eq!(latest.sha256, sha256_hex(&v1));
    assert_eq!(latest.sha256.len(), 64);
    assert_eq!(latest.created_at, latest.updated_at);
    assert!(latest.created_at >= before && latest.created_at <= after);
    assert_eq!(
        latest.created_at.nanosecond(),
        0,
        "stored times are whole seconds"
    );

    assert_eq!(
        store.get_version(GUN, "root", 1).await.unwrap().as_ref(),
        Some(&latest)
    );
    assert_eq!(
        store
            .get_checksum(GUN, "root", &sha256_hex(&v1))
            .await
            .unwrap()
            .as_ref(),
        Some(&latest)
    );

    store
        .update_many(GUN, vec![update("root", 2, &big)])
        .await
        .unwrap();
    let latest = store.get_latest(GUN, "root").await.unwrap().unwrap();
    assert_eq!((latest.version, latest.data.len()), (2, big.len()));
    assert_eq!(latest.data, big);
    assert_eq!(latest.sha256, sha256_hex(&big));
    // Older versions stay addressable.
    assert_eq!(
        store
            .get_version(GUN, "root", 1)
            .await
            .unwrap()
            .unwrap()
            .data,
        v1
    );
    assert_eq!(
        store
            .get_checksum(GUN, "root", &sha256_hex(&big))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

pub(crate) async fn lookups_miss_cleanly(store: Arc<dyn MetaStore>) {
    let data = role_file("Root", 1, "miss");
    let sha = sha256_hex(&data);
    assert_eq!(store.get_latest(GUN, "root").await.unwrap(), None);
    assert_eq!(store.get_version(GUN, "root", 1).await.unwrap(), None);
    assert_eq!(store.get_checksum(GUN, "root", &sha).await.unwrap(), None);

    store
        .update_many(GUN, vec![update("root", 1, &data)])
        .await
        .unwrap();
    // Every lookup matches GUN and role, not just the data.
    assert_eq!(store.get_latest(GUN, "targets").await.unwrap(), None);
    assert_eq!(
        store.get_latest("example.com/other", "root").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_checksum(GUN, "targets", &sha).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .get_checksum("example.com/other", "root", &sha)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_checksum(GUN, "root", &sha256_hex(b"something else"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_version(GUN, "root", 2).await.unwrap(), None);
    assert_eq!(store.get_version(GUN, "targets", 1).await.unwrap(), None);
    // Version 0 and below never match (Go's SQL store returned a random row).
    assert_eq!(store.get_version(GUN, "root", 0).await.unwrap(), None);
    assert_eq!(store.get_version(GUN, "root", -1).await.unwrap(), None);
    assert_eq!(
        store.get_version(GUN, "root", i64::MAX).await.unwrap(),
        None
    );
    assert!(store.get_version(GUN, "root", 1).await.unwrap().is_some());
}

pub(crate) async fn old_versions_are_rejected(store: Arc<dyn MetaStore>) {
    let first = role_file("Root", 1, "first");
    store
        .update_many(GUN, vec![update("root", 1, &first)])
        .await
        .unwrap();
    let replay = role_file("Root", 1, "replay");
    assert_eq!(
        store
            .update_many(GUN, vec![update("root", 1, &replay)])
            .await,
        Err(StoreError::OldVersion)
    );
    assert_eq!(
        store.get_latest(GUN, "root").await.unwrap().unwrap().data,
        first
    );

    // Gaps are allowed; going back below the newest is not.
    store
        .update_many(GUN, vec![update("root", 3, &role_file("Root", 3, ""))])
        .await
        .unwrap();
    assert_eq!(
        store
            .update_many(GUN, vec![update("root", 2, &role_file("Root", 2, ""))])
            .await,
        Err(StoreError::OldVersion)
    );
    assert_eq!(store.get_version(GUN, "root", 2).await.unwrap(), None);
    store
        .update_many(GUN, vec![update("root", 4, &role_file("Root", 4, ""))])
        .await
        .unwrap();

    // Versions are per (gun, role).
    store
        .update_many(
            GUN,
            vec![update("targets", 1, &role_file("Targets", 1, ""))],
        )
        .await
        .unwrap();
    store
        .update_many(
            "example.com/another",
            vec![update("root", 1, &role_file("Root", 1, "other"))],
        )
        .await
        .unwrap();
    // One role below its newest version (a gap, so no duplicate key) sinks a batch whose
    // other role is new.
    store
        .update_many(
            GUN,
            vec![update("targets", 3, &role_file("Targets", 3, ""))],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .update_many(
                GUN,
                vec![
                    update("root", 5, &role_file("Root", 5, "")),
                    update("targets", 2, &role_file("Targets", 2, "")),
                ],
            )
            .await,
        Err(StoreError::OldVersion)
    );
    assert_eq!(store.get_version(GUN, "root", 5).await.unwrap(), None);

    // Versions beyond Go's INT column are refused the same way everywhere.
    let too_big = i64::from(i32::MAX) + 1;
    assert!(matches!(
        store
            .update_many(GUN, vec![update("root", too_big, b"x")])
            .await,
        Err(StoreError::Other(_))
    ));
    // An empty batch is a no-op.
    store.update_many(GUN, Vec::new()).await.unwrap();
    assert_eq!(
        store
            .get_latest(GUN, "root")
            .await
            .unwrap()
            .unwrap()
            .version,
        4
    );
}

pub(crate) async fn failing_batch_writes_nothing(store: Arc<dyn MetaStore>) {
    let root = role_file("Root", 1, "");
    let targets = role_file("Targets", 1, "");
    store
        .update_many(
            GUN,
            vec![update("root", 1, &root), update("targets", 1, &targets)],
        )
        .await
        .unwrap();

    // One stale entry in the middle sinks the whole batch, timestamp included.
    let snapshot = snapshot_file(1, &[("root", &root), ("targets", &targets)], "");
    let timestamp = timestamp_file(1, &snapshot, "");
    let stale = role_file("Targets", 1, "stale");
    assert_eq!(
        store
            .update_many(
                GUN,
                vec![
                    update("snapshot", 1, &snapshot),
                    update("targets", 1, &stale),
                    update("timestamp", 1, &timestamp),
                ],
            )
            .await,
        Err(StoreError::OldVersion)
    );
    assert_eq!(store.get_latest(GUN, "snapshot").await.unwrap(), None);
    assert_eq!(store.get_latest(GUN, "timestamp").await.unwrap(), None);
    assert_eq!(
        store
            .get_latest(GUN, "targets")
            .await
            .unwrap()
            .unwrap()
            .data,
        targets
    );

    // The same (role, version) twice in one batch is refused.
    assert_eq!(
        store
            .update_many(
                GUN,
                vec![
                    update("snapshot", 1, &snapshot),
                    update("targets", 2, &role_file("Targets", 2, "a")),
                    update("targets", 2, &role_file("Targets", 2, "b")),
                ],
            )
            .await,
        Err(StoreError::OldVersion)
    );
    assert_eq!(store.get_latest(GUN, "snapshot").await.unwrap(), None);
    assert_eq!(
        store
            .get_latest(GUN, "targets")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert!(all_changes(&*store).await.is_empty());

    // Several new versions of one role in one batch are fine.
    store
        .update_many(
            GUN,
            vec![
                update("targets", 2, &role_file("Targets", 2, "")),
                update("targets", 3, &role_file("Targets", 3, "")),
                update("snapshot", 1, &snapshot),
                update("timestamp", 1, &timestamp),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_latest(GUN, "targets")
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    assert_eq!(all_changes(&*store).await.len(), 1);
}

pub(crate) async fn timestamp_writes_feed_the_changefeed(store: Arc<dyn MetaStore>) {
    assert!(all_changes(&*store).await.is_empty());
    let repo = Repo::new(1, "feed");
    let before = Utc::now() - Duration::seconds(1);
    store.update_many(GUN, repo.updates()).await.unwrap();
    let after = Utc::now() + Duration::seconds(1);

    let changes = all_changes(&*store).await;
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(c.gun, GUN);
    assert_eq!(c.version, 1);
    assert_eq!(c.sha256, sha256_hex(&repo.timestamp));
    assert_eq!(c.category, CATEGORY_UPDATE);
    assert!(c.created_at >= before && c.created_at <= after);

    // Writes without a timestamp leave no record.
    store
        .update_many(
            GUN,
            vec![update("targets", 2, &role_file("Targets", 2, ""))],
        )
        .await
        .unwrap();
    assert_eq!(all_changes(&*store).await.len(), 1);

    // One record per timestamp row, in batch order.
    let ts2 = timestamp_file(2, &repo.snapshot, "2");
    let ts3 = timestamp_file(3, &repo.snapshot, "3");
    store
        .update_many(
            GUN,
            vec![update("timestamp", 2, &ts2), update("timestamp", 3, &ts3)],
        )
        .await
        .unwrap();
    let changes = all_changes(&*store).await;
    assert_eq!(changes.len(), 3);
    assert_eq!(
        (changes[1].version, changes[1].sha256.as_str()),
        (2, sha256_hex(&ts2).as_str())
    );
    assert_eq!(
        (changes[2].version, changes[2].sha256.as_str()),
        (3, sha256_hex(&ts3).as_str())
    );
    assert!(changes[0].id < changes[1].id && changes[1].id < changes[2].id);
}

/// Writes 12 timestamp updates over three GUNs, then deletes the second GUN:
/// 13 changes in all. Returns them in id order.
async fn populate_changefeed(store: &dyn MetaStore) -> Vec<Change> {
    let guns = ["example.com/g1", "example.com/g2", "example.com/g3"];
    let mut expected = Vec::new();
    for version in 1..=4 {
        for gun in guns {
            let ts = timestamp_file(version, b"snapshot", gun);
            store
                .update_many(gun, vec![update("timestamp", version, &ts)])
                .await
                .unwrap();
            expected.push((gun.to_owned(), version, CATEGORY_UPDATE.to_owned()));
        }
    }
    assert_eq!(store.delete("example.com/g2").await.unwrap(), 4);
    expected.push(("example.com/g2".to_owned(), 0, CATEGORY_DELETION.to_owned()));

    let all = all_changes(store).await;
    assert_eq!(summary(&all), expected);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    all
}

pub(crate) async fn changefeed_paging(store: Arc<dyn MetaStore>) {
    let all = populate_changefeed(&*store).await;
    let n = all.len();
    let page = |from: i64, records: i64| {
        let store = store.clone();
        async move { store.get_changes(from, records, None).await.unwrap() }
    };

    // Forward pages.
    assert_eq!(page(0, 5).await, all[0..5]);
    assert_eq!(page(all[4].id, 5).await, all[5..10]);
    assert_eq!(page(all[9].id, 5).await, all[10..]);
    assert!(page(all[n - 1].id, 5).await.is_empty());

    // Deep paging, two at a time, visits every record once.
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let p = page(cursor, 2).await;
        if p.is_empty() {
            break;
        }
        assert!(p.len() <= 2);
        cursor = p.last().unwrap().id;
        seen.extend(p);
    }
    assert_eq!(seen, all);

    // "Latest N": negative change_id or negative records; oldest first.
    assert_eq!(page(-1, 4).await, all[n - 4..]);
    assert_eq!(page(0, -4).await, all[n - 4..]);
    assert_eq!(page(-1, -4).await, all[n - 4..]);
    // Reversed from a cursor: the records just before it.
    assert_eq!(page(all[5].id, -2).await, all[3..5]);
    assert_eq!(page(all[2].id, -1).await, all[1..2]);
    assert!(page(all[0].id, -3).await.is_empty());
    assert_eq!(page(all[n - 1].id + 1000, -3).await, all[n - 3..]);

    // Deep paging backwards from the newest.
    let mut cursor = -1;
    let mut seen: Vec<Change> = Vec::new();
    loop {
        let p = page(cursor, -3).await;
        if p.is_empty() {
            break;
        }
        cursor = p[0].id;
        seen.splice(0..0, p);
    }
    assert_eq!(seen, all);

    // Extreme limits.
    assert_eq!(page(0, i64::MAX).await, all);
    assert_eq!(page(0, i64::MIN).await, all);
}

pub(crate) async fn changefeed_gun_filter(store: Arc<dyn MetaStore>) {
    let all = populate_changefeed(&*store).await;
    let only =
        |gun: &str| -> Vec<Change> { all.iter().filter(|c| c.gun == gun).cloned().collect() };
    let g1 = only("example.com/g1");
    let g2 = only("example.com/g2");
    assert_eq!(g1.len(), 4);
    assert_eq!(g2.len(), 5);

    let get = |from: i64, records: i64, gun: &'static str| {
        let store = store.clone();
        async move { store.get_changes(from, records, Some(gun)).await.unwrap() }
    };
    assert_eq!(get(0, 100, "example.com/g1").await, g1);
    assert_eq!(get(0, 2, "example.com/g1").await, g1[..2]);
    assert_eq!(get(g1[1].id, 100, "example.com/g1").await, g1[2..]);
    assert_eq!(get(-1, 2, "example.com/g2").await, g2[3..]);
    assert_eq!(get(g2[3].id, -2, "example.com/g2").await, g2[1..3]);
    // Exact match only: no prefixes, no unknown GUNs.
    assert!(get(0, 100, "example.com/g").await.is_empty());
    assert!(get(0, 100, "example.com/g1/sub").await.is_empty());
    assert!(get(-1, 100, "example.com/none").await.is_empty());
}

pub(crate) async fn delete_removes_exactly_the_gun(store: Arc<dyn MetaStore>) {
    let a = "example.com/a";
    let ab = "example.com/ab";
    let a_sub = "example.com/a/b";
    let repo = Repo::new(1, "a");
    store.update_many(a, repo.updates()).await.unwrap();
    store
        .update_many(a, vec![update("targets/releases", 1, b"delegation")])
        .await
        .unwrap();
    for gun in [ab, a_sub] {
        store
            .update_many(gun, vec![update("root", 1, &role_file("Root", 1, gun))])
            .await
            .unwrap();
    }
    let changes_before = all_changes(&*store).await.len();

    assert_eq!(store.delete(a).await.unwrap(), 5);
    for role in [
        "root",
        "targets",
        "snapshot",
        "timestamp",
        "targets/releases",
    ] {
        assert_eq!(store.get_latest(a, role).await.unwrap(), None, "{role}");
        assert_eq!(store.get_version(a, role, 1).await.unwrap(), None, "{role}");
    }
    assert_eq!(get_current(&*store, a, "root").await.unwrap(), None);
    for gun in [ab, a_sub] {
        assert!(
            store.get_latest(gun, "root").await.unwrap().is_some(),
            "{gun}"
        );
    }

    let changes = all_changes(&*store).await;
    assert_eq!(changes.len(), changes_before + 1);
    let last = changes.last().unwrap();
    assert_eq!(
        (
            last.gun.as_str(),
            last.version,
            last.sha256.as_str(),
            last.category.as_str()
        ),
        (a, 0, "", CATEGORY_DELETION)
    );

    // Nothing left to delete: no rows, no record.
    assert_eq!(store.delete(a).await.unwrap(), 0);
    assert_eq!(store.delete("example.com/never").await.unwrap(), 0);
    assert_eq!(all_changes(&*store).await.len(), changes_before + 1);

    // The GUN starts over from version 1.
    store.update_many(a, repo.updates()).await.unwrap();
    assert_eq!(
        get_current(&*store, a, "targets")
            .await
            .unwrap()
            .unwrap()
            .data,
        repo.targets
    );
}

fn assert_file(file: Option<StoredFile>, role: &str, data: &[u8]) {
    let file = file.unwrap_or_else(|| panic!("no current {role}"));
    assert_eq!(file.role, role);
    assert_eq!(file.data, data, "current {role}");
}

pub(crate) async fn current_follows_the_timestamp_chain(store: Arc<dyn MetaStore>) {
    let store = &*store;
    // Nothing is current before the first timestamp, even if files exist.
    let repo = Repo::new(1, "chain");
    store
        .update_many(GUN, vec![update("root", 1, &repo.root)])
        .await
        .unwrap();
    for role in ["root", "snapshot", "timestamp"] {
        assert_eq!(get_current(store, GUN, role).await.unwrap(), None, "{role}");
    }

    store
        .update_many(GUN, repo.updates()[1..].to_vec())
        .await
        .unwrap();
    assert_file(
        get_current(store, GUN, "root").await.unwrap(),
        "root",
        &repo.root,
    );
    assert_file(
        get_current(store, GUN, "targets").await.unwrap(),
        "targets",
        &repo.targets,
    );
    assert_file(
        get_current(store, GUN, "snapshot").await.unwrap(),
        "snapshot",
        &repo.snapshot,
    );
    assert_file(
        get_current(store, GUN, "timestamp").await.unwrap(),
        "timestamp",
        &repo.timestamp,
    );

    // A newer targets row that no snapshot names is stored, not current.
    let targets2 = role_file("Targets", 2, "chain");
    store
        .update_many(GUN, vec![update("targets", 2, &targets2)])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_latest(GUN, "targets")
            .await
            .unwrap()
            .unwrap()
            .data,
        targets2
    );
    assert_file(
        get_current(store, GUN, "targets").await.unwrap(),
        "targets",
        &repo.targets,
    );

    // Once a timestamp certifies a snapshot naming it, it is current.
    let delegation = role_file("Targets", 1, "releases");
    let snapshot2 = snapshot_file(
        2,
        &[
            ("root", &repo.root),
            ("targets", &targets2),
            ("targets/releases", &delegation),
        ],
        "chain",
    );
    let timestamp2 = timestamp_file(2, &snapshot2, "chain");
    store
        .update_many(
            GUN,
            vec![
                update("targets/releases", 1, &delegation),
                update("snapshot", 2, &snapshot2),
                update("timestamp", 2, &timestamp2),
            ],
        )
        .await
        .unwrap();
    assert_file(
        get_current(store, GUN, "targets").await.unwrap(),
        "targets",
        &targets2,
    );
    assert_file(
        get_current(store, GUN, "targets/releases").await.unwrap(),
        "targets/releases",
        &delegation,
    );
    assert_file(
        get_current(store, GUN, "snapshot").await.unwrap(),
        "snapshot",
        &snapshot2,
    );
    assert_file(
        get_current(store, GUN, "timestamp").await.unwrap(),
        "timestamp",
        &timestamp2,
    );
    assert_file(
        get_current(store, GUN, "root").await.unwrap(),
        "root",
        &repo.root,
    );

    // Roles the snapshot does not list have no current version (404, not 500),
    // even when rows exist for them.
    store
        .update_many(GUN, vec![update("targets/other", 1, b"unlisted")])
        .await
        .unwrap();
    assert_eq!(
        get_current(store, GUN, "targets/other").await.unwrap(),
        None
    );
    assert_eq!(get_current(store, GUN, "targets/none").await.unwrap(), None);
    // Other GUNs are unaffected.
    assert_eq!(
        get_current(store, "example.com/other", "root")
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn current_with_a_broken_chain(store: Arc<dyn MetaStore>) {
    let store = &*store;
    // Timestamp naming a snapshot that is not stored: nothing below it.
    let dangling = "example.com/dangling";
    let ts = timestamp_file(1, b"missing snapshot", "");
    store
        .update_many(
            dangling,
            vec![update("root", 1, b"root"), update("timestamp", 1, &ts)],
        )
        .await
        .unwrap();
    assert_file(
        get_current(store, dangling, "timestamp").await.unwrap(),
        "timestamp",
        &ts,
    );
    assert_eq!(
        get_current(store, dangling, "snapshot").await.unwrap(),
        None
    );
    assert_eq!(get_current(store, dangling, "root").await.unwrap(), None);

    // Unparsable timestamp: served as is, but nothing can be resolved below it.
    let bad_ts = "example.com/bad-timestamp";
    store
        .update_many(bad_ts, vec![update("timestamp", 1, b"{not json")])
        .await
        .unwrap();
    assert!(get_current(store, bad_ts, "timestamp")
        .await
        .unwrap()
        .is_some());
    assert!(matches!(
        get_current(store, bad_ts, "snapshot").await,
        Err(StoreError::Other(_))
    ));
    assert!(matches!(
        get_current(store, bad_ts, "root").await,
        Err(StoreError::Other(_))
    ));

    // Timestamp without a snapshot entry.
    let no_meta = "example.com/no-snapshot-meta";
    let ts = br#"{"signed":{"_type":"Timestamp","version":1,"meta":{}},"signatures":[]}"#;
    store
        .update_many(no_meta, vec![update("timestamp", 1, ts)])
        .await
        .unwrap();
    assert!(matches!(
        get_current(store, no_meta, "snapshot").await,
        Err(StoreError::Other(_))
    ));

    // Unparsable snapshot: the snapshot itself resolves, roles below do not.
    let bad_snap = "example.com/bad-snapshot";
    let snapshot = b"[1, 2".to_vec();
    let ts = timestamp_file(1, &snapshot, "");
    store
        .update_many(
            bad_snap,
            vec![
                update("root", 1, b"root"),
                update("snapshot", 1, &snapshot),
                update("timestamp", 1, &ts),
            ],
        )
        .await
        .unwrap();
    assert_file(
        get_current(store, bad_snap, "snapshot").await.unwrap(),
        "snapshot",
        &snapshot,
    );
    assert!(matches!(
        get_current(store, bad_snap, "root").await,
        Err(StoreError::Other(_))
    ));

    // A listed role whose hash is not valid base64.
    let bad_hash = "example.com/bad-hash";
    let snapshot = br#"{"signed":{"meta":{"root":{"hashes":{"sha256":"%%%"},"length":4}}}}"#;
    let ts = timestamp_file(1, snapshot, "");
    store
        .update_many(
            bad_hash,
            vec![
                update("root", 1, b"root"),
                update("snapshot", 1, snapshot),
                update("timestamp", 1, &ts),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(
        get_current(store, bad_hash, "root").await,
        Err(StoreError::Other(_))
    ));
}

pub(crate) async fn concurrent_updates_one_wins(store: Arc<dyn MetaStore>) {
    const WRITERS: usize = 8;
    let base = Repo::new(1, "base");
    store.update_many(GUN, base.updates()).await.unwrap();

    // Every writer starts from the same state and writes the next version,
    // as concurrent uploads do; they differ only in content.
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let store = store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let salt = format!("writer-{i}");
            let targets = role_file("Targets", 2, &salt);
            let snapshot = snapshot_file(2, &[("targets", &targets)], &salt);
            let timestamp = timestamp_file(2, &snapshot, &salt);
            let batch = vec![
                update("targets", 2, &targets),
                update("snapshot", 2, &snapshot),
                update("timestamp", 2, &timestamp),
            ];
            barrier.wait().await;
            (store.update_many(GUN, batch).await, targets, timestamp)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (result, targets, timestamp) = task.await.unwrap();
        match result {
            Ok(()) => winners.push((targets, timestamp)),
            Err(e) => assert_eq!(e, StoreError::OldVersion),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let (targets, timestamp) = &winners[0];

    // The winner's batch is stored whole; nothing from the losers.
    assert_file(
        get_current(&*store, GUN, "targets").await.unwrap(),
        "targets",
        targets,
    );
    assert_file(
        get_current(&*store, GUN, "timestamp").await.unwrap(),
        "timestamp",
        timestamp,
    );
    let changes = all_changes(&*store).await;
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.version, c.sha256.clone()))
            .collect::<Vec<_>>(),
        vec![(1, sha256_hex(&base.timestamp)), (2, sha256_hex(timestamp)),]
    );
}

/// Many requests at once (more than any pool holds) all complete.
pub(crate) async fn many_concurrent_requests(store: Arc<dyn MetaStore>) {
    const TASKS: i64 = 48;
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let gun = format!("example.com/load/{}", i % 6);
            let role = format!("targets/r{i}");
            let data = role_file("Targets", 1, &role);
            store
                .update_many(&gun, vec![update(&role, 1, &data)])
                .await
                .unwrap();
            let read = store.get_latest(&gun, &role).await.unwrap().unwrap();
            assert_eq!(read.data, data);
            store.check_health().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for i in 0..TASKS {
        let gun = format!("example.com/load/{}", i % 6);
        assert!(store
            .get_version(&gun, &format!("targets/r{i}"), 1)
            .await
            .unwrap()
            .is_some());
    }
}

pub(crate) async fn health_check_passes(store: Arc<dyn MetaStore>) {
    store.check_health().await.unwrap();
    store
        .update_many(GUN, vec![update("root", 1, b"root")])
        .await
        .unwrap();
    store.check_health().await.unwrap();
}

pub(crate) async fn key_records_are_exact_and_first_wins(store: Arc<dyn MetaStore>) {
    let id = "a".repeat(64);
    assert_eq!(store.key_owner(&id).await.unwrap(), None);
    store.record_key("org/app", "timestamp", &id).await.unwrap();
    // Recording again, even for another GUN, keeps the first record.
    store.record_key("org/app", "timestamp", &id).await.unwrap();
    store.record_key("org/evil", "snapshot", &id).await.unwrap();
    assert_eq!(
        store.key_owner(&id).await.unwrap(),
        Some(("org/app".to_string(), "timestamp".to_string()))
    );
    // GUNs keep their bytes (no case folding).
    let other = "b".repeat(64);
    store
        .record_key("Org/App", "snapshot", &other)
        .await
        .unwrap();
    assert_eq!(
        store.key_owner(&other).await.unwrap(),
        Some(("Org/App".to_string(), "snapshot".to_string()))
    );
    assert_eq!(store.key_owner(&"A".repeat(64)).await.unwrap(), None);
}

/// GUNs and roles match byte for byte (token scopes do), whatever the database's collation.
pub(crate) async fn gun_and_role_match_exactly(store: Arc<dyn MetaStore>) {
    let (lower, upper) = ("alice/app", "Alice/app");
    let root = b"lower root v1".to_vec();
    store
        .update_many(
            lower,
            vec![update("root", 1, &root), update("timestamp", 1, b"ts")],
        )
        .await
        .unwrap();
    assert!(store.get_latest(upper, "root").await.unwrap().is_none());
    assert!(store.get_version(upper, "root", 1).await.unwrap().is_none());
    let sha = sha256_hex(&root);
    assert!(store
        .get_checksum(upper, "root", &sha)
        .await
        .unwrap()
        .is_none());
    assert!(store.get_latest(lower, "ROOT").await.unwrap().is_none());
    assert!(store.get_version(lower, "Root", 1).await.unwrap().is_none());
    assert!(store
        .get_checksum(lower, "ROOT", &sha)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_changes(0, 100, Some(upper))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_changes(0, 100, Some(lower)).await.unwrap().len(),
        1
    );
    // Deleting the variant removes nothing of the other repository.
    assert_eq!(store.delete(upper).await.unwrap(), 0);
    assert_eq!(
        store.get_latest(lower, "root").await.unwrap().unwrap().data,
        root
    );

    // Writing the variant: a separate repository, or (MySQL, whose unique key equates the
    // two) a clear refusal. Never a row that reads back under the other name.
    for version in [2, 1] {
        let data = format!("upper root v{version}").into_bytes();
        match store
            .update_many(upper, vec![update("root", version, &data)])
            .await
        {
            Ok(()) => {
                let got = store.get_latest(upper, "root").await.unwrap().unwrap();
                assert_eq!(got.data, data);
                store.delete(upper).await.unwrap();
            }
            Err(StoreError::GunCaseConflict(g)) => assert_eq!(g, upper),
            Err(e) => panic!("v{version}: {e:?}"),
        }
        let mine = store.get_latest(lower, "root").await.unwrap().unwrap();
        assert_eq!((mine.version, &mine.data), (1, &root), "v{version}");
    }
}
