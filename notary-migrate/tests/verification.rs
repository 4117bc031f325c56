//! Client-style collection, row verification and inventory on repositories made by
//! notary-tuf's test builder, without a network or a database server.

use std::sync::Arc;

use chrono::Utc;
use notary_migrate::collect::{collect_gun, CollectError, CollectOptions, StoreSource};
use notary_migrate::db::TufRow;
use notary_migrate::import::{verify_server_rows, ImportReport};
use notary_migrate::inventory::{inventory_of, judge, parse_image_ref};
use notary_server::storage::{sha256_hex, MemoryStore, MetaStore, MetaUpdate};
use notary_tuf::test_support::{swizzle, RepoFiles, TestRepo};

const GUN: &str = "registry.example.com/unit/app";

/// Two generations of one repository: the second rotates the root key and bumps every
/// other role. Returns (role, version, bytes) in write order.
fn history(drop_old_root_signer: bool) -> Vec<(String, i64, Vec<u8>)> {
    let mut repo = TestRepo::new(GUN);
    repo.add_target("targets", "v1", b"one");
    repo.add_delegation("targets", "targets/releases", &[""]);
    repo.add_target("targets/releases", "r1", b"two");
    let first = repo.build();
    repo.rotate_root_key();
    if drop_old_root_signer {
        repo.root_signers.remove(0);
    }
    repo.add_target("targets", "v2", b"three");
    repo.bump_targets("targets");
    repo.bump_targets("targets/releases");
    repo.snapshot_common.version += 1;
    repo.timestamp_common.version += 1;
    let second = repo.build();
    let mut rows = Vec::new();
    let gens: [(&RepoFiles, i64); 2] = [(&first, 1), (&second, 2)];
    for role in [
        "root",
        "targets",
        "targets/releases",
        "snapshot",
        "timestamp",
    ] {
        for (files, v) in gens {
            rows.push((role.to_string(), v, files.get(role).unwrap().to_vec()));
        }
    }
    rows
}

async fn store_with(rows: &[(String, i64, Vec<u8>)]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let updates = rows
        .iter()
        .map(|(role, version, data)| MetaUpdate {
            role: role.clone(),
            version: *version,
            data: data.clone(),
        })
        .collect();
    store.update_many(GUN, updates).await.unwrap();
    store
}

fn tuf_rows(rows: &[(String, i64, Vec<u8>)]) -> Vec<TufRow> {
    rows.iter()
        .enumerate()
        .map(|(i, (role, version, data))| TufRow {
            id: i as i32 + 1,
            created_at: None,
            updated_at: None,
            deleted_at: None,
            gun: GUN.into(),
            role: role.clone(),
            version: *version as i32,
            data: data.clone(),
            sha256: Some(sha256_hex(data)),
        })
        .collect()
}

const ALL: CollectOptions = CollectOptions {
    history: true,
    allow_expired: false,
};

#[tokio::test]
async fn a_repository_is_collected_with_its_root_chain_and_history() {
    let rows = history(false);
    let store = store_with(&rows).await;
    let c = collect_gun(&StoreSource(store), GUN, Utc::now(), ALL)
        .await
        .unwrap();
    assert_eq!(c.roots.len(), 2);
    assert_eq!(c.timestamp.common.version, 2);
    assert_eq!(c.targets["targets/releases"].common.version, 2);
    let mut old: Vec<(String, i64)> = c
        .history
        .iter()
        .map(|h| (h.role.clone(), h.file.common.version))
        .collect();
    old.sort();
    assert_eq!(
        old,
        vec![
            ("snapshot".to_string(), 1),
            ("targets".to_string(), 1),
            ("targets/releases".to_string(), 1),
            ("timestamp".to_string(), 1),
        ]
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Everything, in an order the store accepts, byte for byte.
    let files = c.all_files();
    assert_eq!(files.len(), rows.len());
    assert_eq!(files[0].role, "root");
    assert_eq!(files.last().unwrap().role, "timestamp");
    for f in &files {
        assert!(rows
            .iter()
            .any(|(r, v, d)| *r == f.role && *v == f.file.common.version && *d == f.file.raw));
    }
    let fresh = MemoryStore::new();
    let batch = files
        .into_iter()
        .map(|f| MetaUpdate {
            role: f.role,
            version: f.file.common.version,
            data: f.file.raw,
        })
        .collect();
    fresh.update_many(GUN, batch).await.unwrap();
}

#[tokio::test]
async fn unknown_guns_and_files_the_snapshot_does_not_certify_are_errors() {
    let rows = history(false);
    let store = store_with(&rows).await;
    let source = StoreSource(store);
    let err = collect_gun(&source, "registry.example.com/other", Utc::now(), ALL)
        .await
        .unwrap_err();
    assert_eq!(err, CollectError::UnknownGun);

    // A current targets file whose bytes differ from what the snapshot certifies.
    let mut bad = rows.clone();
    let t = bad
        .iter_mut()
        .find(|(r, v, _)| r == "targets" && *v == 2)
        .unwrap();
    t.2 = swizzle::add_whitespace(&t.2);
    let err = collect_gun(&StoreSource(store_with(&bad).await), GUN, Utc::now(), ALL)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CollectError::Missing(ref m) if m.starts_with("targets.")),
        "{err:?}"
    );

    // A root chain with a version the previous root did not sign.
    let broken = history(true);
    let err = collect_gun(
        &StoreSource(store_with(&broken).await),
        GUN,
        Utc::now(),
        ALL,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CollectError::Invalid { ref role, .. } if role == "root version 2"),
        "{err:?}"
    );
}

#[test]
fn every_row_is_verified_and_bad_rows_are_named() {
    let now = Utc::now();
    let rows = tuf_rows(&history(false));
    let mut report = ImportReport::default();
    let invalid = verify_server_rows(&rows, now, &mut report);
    assert!(invalid.is_empty(), "{:?}", report.invalid);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let g = &report.guns[GUN];
    assert!(g.serves);
    assert_eq!(g.current["root"], 2);
    assert_eq!(g.current["targets/releases"], 2);

    // A hand-edited current targets row whose sha256 column was fixed up too.
    let mut edited = rows.clone();
    let t = edited
        .iter_mut()
        .find(|r| r.role == "targets" && r.version == 2)
        .unwrap();
    t.data = swizzle::modify_signed(&t.data, |v| {
        v["targets"]["v2"]["length"] = 999.into();
    });
    t.sha256 = Some(sha256_hex(&t.data));
    let edited_id = t.id;
    let mut report = ImportReport::default();
    let invalid = verify_server_rows(&edited, now, &mut report);
    assert!(invalid.contains(&edited_id));
    let p = report.invalid.iter().find(|p| p.id == edited_id).unwrap();
    assert!(p.reason.contains("signature"), "{p:?}");
    assert!(!report.guns[GUN].serves);
    assert!(report
        .findings
        .iter()
        .any(|f| f.contains("snapshot version 2 records hashes for targets")));

    // Only the data changed: the sha256 column gives it away first.
    let mut edited = rows.clone();
    edited[3].data = swizzle::add_whitespace(&edited[3].data);
    let mut report = ImportReport::default();
    verify_server_rows(&edited, now, &mut report);
    assert!(
        report.invalid[0].reason.contains("sha256 column"),
        "{:?}",
        report.invalid
    );

    // Soft-deleted rows are counted, not verified.
    let mut deleted = rows.clone();
    deleted[0].deleted_at = Some(now.naive_utc());
    let mut report = ImportReport::default();
    verify_server_rows(&deleted, now, &mut report);
    assert_eq!(report.soft_deleted_rows, 1);

    // A root the previous root did not sign breaks the chain at that version.
    let broken = tuf_rows(&history(true));
    let mut report = ImportReport::default();
    let invalid = verify_server_rows(&broken, now, &mut report);
    assert_eq!(invalid.len(), 1, "{:?}", report.invalid);
    assert_eq!(report.invalid[0].role, "root");
    assert_eq!(report.invalid[0].version, Some(2));
}

#[tokio::test]
async fn inventory_and_verify_resolve_like_docker() {
    let rows = history(false);
    let c = collect_gun(&StoreSource(store_with(&rows).await), GUN, Utc::now(), ALL)
        .await
        .unwrap();
    let inv = inventory_of(&c, Utc::now());
    let mut tags: Vec<(String, String)> = inv
        .targets
        .iter()
        .map(|t| (t.tag.clone(), t.role.clone()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("r1".to_string(), "targets/releases".to_string()),
            ("v1".to_string(), "targets".to_string()),
            ("v2".to_string(), "targets".to_string()),
        ]
    );
    let targets_key = c.root().roles["targets"].keyids.clone();
    for t in &inv.targets {
        assert_eq!(t.signer_key_ids.len(), 1, "{t:?}");
        if t.role == "targets" {
            assert_eq!(t.signer_key_ids, targets_key);
        }
        assert_eq!(t.digest.len(), 64);
    }
    let root = inv.roles.iter().find(|r| r.role == "root").unwrap();
    assert_eq!(root.cert_subjects, vec![format!("CN={GUN}")]);
    assert!(!root.expired);

    let digest_one = sha256_hex(b"one");
    let digest_two = sha256_hex(b"two");
    let r1 = judge(&c, &parse_image_ref(&format!("{GUN}:r1")).unwrap());
    assert!(r1.vouched);
    assert_eq!(r1.role.as_deref(), Some("targets/releases"));
    assert_eq!(r1.digest.as_deref(), Some(digest_two.as_str()));
    let by_digest = judge(
        &c,
        &parse_image_ref(&format!("{GUN}@sha256:{digest_one}")).unwrap(),
    );
    assert!(by_digest.vouched);
    assert_eq!(by_digest.tag.as_deref(), Some("v1"));
    assert_eq!(by_digest.role.as_deref(), Some("targets"));
    let wrong = judge(
        &c,
        &parse_image_ref(&format!("{GUN}:v1@sha256:{digest_two}")).unwrap(),
    );
    assert!(!wrong.vouched);
    let missing = judge(&c, &parse_image_ref(&format!("{GUN}:nope")).unwrap());
    assert!(!missing.vouched);
}

#[test]
fn superseded_roots_are_judged_while_their_certificates_were_valid() {
    let now = Utc::now();
    let old = TestRepo::new_at(GUN, now - chrono::Duration::days(11 * 365));
    let file = notary_tuf::SignedFile::parse(&old.root_file()).unwrap();
    assert!(notary_tuf::verify::validate_root(None, &file, GUN, now).is_err());
    let at = notary_migrate::collect::historical_time(&file, now);
    assert!(at < now);
    notary_tuf::verify::validate_root(None, &file, GUN, at).unwrap();
    // A root whose certificate is valid now is judged now.
    let fresh = TestRepo::new_at(GUN, now);
    let file = notary_tuf::SignedFile::parse(&fresh.root_file()).unwrap();
    assert_eq!(notary_migrate::collect::historical_time(&file, now), now);
}
