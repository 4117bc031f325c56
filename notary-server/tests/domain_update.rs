//! `apply_update`: every validation rule of spec server.md §6.3 with a passing and a failing
//! case, server-side snapshot/timestamp generation (§6.4), versions and concurrency (§11.4).

mod domain_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use domain_support::*;
use notary_server::domain::{
    apply_update, UpdateError, ValidationDetail, NO_ROOT_MSG, NO_SNAPSHOT_KEY_MSG,
    NO_TIMESTAMP_KEY_MSG,
};
use notary_server::storage::MetaStore;
use notary_tuf::metadata::{go_expiry_display, BaseRole, FileMeta, Snapshot, TYPE_ROOT};
use notary_tuf::test_support::{swizzle, TestRepo};
use notary_tuf::verify::{verify_signatures, SNAPSHOT_EXPIRY_DAYS, TIMESTAMP_EXPIRY_DAYS};
use notary_tuf::{CryptoError, MemoryCryptoService, PrivateKey, SignedFile};

const BAD_ROOT: &str = ValidationDetail::BAD_ROOT;
const BAD_TARGETS: &str = ValidationDetail::BAD_TARGETS;
const BAD_SNAPSHOT: &str = ValidationDetail::BAD_SNAPSHOT;
const VALIDATION: &str = ValidationDetail::VALIDATION;

/// Verifies a stored, server-generated file against the role keys in `root`.
fn assert_signed_by(file: &SignedFile, root_bytes: &[u8], role: &str) {
    let root = SignedFile::parse(root_bytes).unwrap().root().unwrap();
    let base: BaseRole = root.build_base_role(role).unwrap();
    verify_signatures(file, &base).expect("generated file verifies against the root");
}

// ---------------------------------------------------------------------------------------
// First upload, generated files

#[tokio::test]
async fn first_upload_with_client_snapshot_gets_timestamp_v1() {
    let repo = repo();
    let files = repo.build();
    let env = Env::client_snapshot(&repo);
    init(&env, &files, true).await;

    assert_eq!(env.current("root").await.unwrap().data, files.root);
    assert_eq!(
        env.current("targets").await.unwrap().data,
        files.targets["targets"]
    );
    assert_eq!(env.current("snapshot").await.unwrap().data, files.snapshot);
    let ts = env.current("timestamp").await.unwrap();
    assert_eq!(ts.version, 1);
    let ts_file = parse(&ts);
    assert_signed_by(&ts_file, &files.root, "timestamp");
    let typed = ts_file.timestamp().unwrap();
    assert_eq!(typed.common.version, 1);
    assert_eq!(
        typed.common.expires,
        env.now + Duration::days(TIMESTAMP_EXPIRY_DAYS)
    );
    assert_eq!(
        typed.snapshot_meta().unwrap(),
        &FileMeta::from_bytes(&files.snapshot)
    );
}

#[tokio::test]
async fn first_upload_without_snapshot_generates_one_over_exact_bytes() {
    let repo = repo();
    // Non-canonical but validly signed bytes: hashes must cover what was stored.
    let files = repo.build();
    let root = swizzle::add_whitespace(&files.root);
    let targets = swizzle::add_whitespace(&files.targets["targets"]);
    let env = Env::server_managed(&repo);
    env.update(&[("root", &root), ("targets", &targets)])
        .await
        .unwrap();

    let snap = env.current("snapshot").await.unwrap();
    assert_eq!(snap.version, 1);
    let snap_file = parse(&snap);
    assert_signed_by(&snap_file, &root, "snapshot");
    let typed = snap_file.snapshot().unwrap();
    assert_eq!(typed.common.version, 1);
    assert_eq!(
        typed.common.expires,
        env.now + Duration::days(SNAPSHOT_EXPIRY_DAYS)
    );
    let mut want = BTreeMap::new();
    want.insert("root".to_string(), FileMeta::from_bytes(&root));
    want.insert("targets".to_string(), FileMeta::from_bytes(&targets));
    assert_eq!(typed.meta, want);
    // Envelope bytes exactly as Go writes them: canonical `signed`, then signatures.
    let canonical = snap_file.canonical_signed().unwrap();
    let mut expected = b"{\"signed\":".to_vec();
    expected.extend_from_slice(&canonical);
    assert!(snap.data.starts_with(&expected));
    assert!(snap.data.ends_with(b"\"}]}"));

    let ts = parse(&env.current("timestamp").await.unwrap());
    assert_eq!(
        ts.timestamp().unwrap().snapshot_meta().unwrap(),
        &FileMeta::from_bytes(&snap.data)
    );
}

#[tokio::test]
async fn generated_snapshot_keeps_previous_entries_and_bumps_version() {
    let mut repo = repo();
    repo.add_delegation("targets", "targets/a", &[""]);
    let files = repo.build();
    let env = Env::server_managed(&repo);
    init(&env, &files, false).await;
    let first = parse(&env.current("snapshot").await.unwrap())
        .snapshot()
        .unwrap();
    assert!(first.meta.contains_key("targets/a"));

    // The client drops the delegation from targets: the stale entry stays (spec §15).
    repo.targets
        .get_mut("targets")
        .unwrap()
        .delegations
        .roles
        .clear();
    repo.add_target("targets", "file", b"content");
    repo.bump_targets("targets");
    let targets_v2 = repo.targets_file("targets");
    env.update(&[("targets", &targets_v2)]).await.unwrap();

    let second = parse(&env.current("snapshot").await.unwrap())
        .snapshot()
        .unwrap();
    assert_eq!(second.common.version, 2);
    assert_eq!(second.meta["targets/a"], first.meta["targets/a"]);
    assert_eq!(second.meta["root"], first.meta["root"]);
    assert_eq!(second.meta["targets"], FileMeta::from_bytes(&targets_v2));
    assert_eq!(second.meta.len(), 3);
}

#[tokio::test]
async fn timestamp_version_grows_by_one_per_update() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    for expected in 2..=4 {
        repo.add_target("targets", &format!("t{expected}"), b"x");
        repo.bump_targets("targets");
        env.update(&[("targets", &repo.targets_file("targets"))])
            .await
            .unwrap();
        assert_eq!(env.current("timestamp").await.unwrap().version, expected);
    }
    assert_eq!(env.versions("timestamp").await, vec![1, 2, 3, 4]);
    assert_eq!(env.versions("snapshot").await, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn uploaded_timestamp_is_ignored() {
    let repo = repo();
    let files = repo.build();
    let env = Env::client_snapshot(&repo);
    let bogus = swizzle::bump_version(&swizzle::bump_version(&files.timestamp));
    env.update(&[
        ("root", &files.root),
        ("targets", &files.targets["targets"]),
        ("snapshot", &files.snapshot),
        ("timestamp", &bogus),
    ])
    .await
    .unwrap();
    let ts = env.current("timestamp").await.unwrap();
    assert_eq!(ts.version, 1);
    assert_ne!(ts.data, bogus);
    assert_ne!(
        ts.data, files.timestamp,
        "the server signs its own timestamp"
    );
}

#[tokio::test]
async fn repeated_role_last_part_wins() {
    let mut repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    repo.add_target("targets", "second", b"2");
    let second = repo.targets_file("targets");
    env.update(&[
        ("root", &files.root),
        ("targets", &files.targets["targets"]),
        ("targets", &second),
    ])
    .await
    .unwrap();
    assert_eq!(env.current("targets").await.unwrap().data, second);
}

// ---------------------------------------------------------------------------------------
// V1: stored root

#[tokio::test]
async fn stored_root_that_no_longer_validates_blocks_updates_without_detail() {
    let mut repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    // Plant a consistent chain whose root has a broken signature (as if the data were
    // tampered with in the database).
    let root = swizzle::corrupt_signature(&files.root);
    let targets = files.targets.clone();
    let snapshot = repo.snapshot_file(&root, &targets);
    let timestamp = repo.timestamp_file(&snapshot);
    env.store
        .update_many(
            GUN,
            vec![
                upd("root", 1, &root),
                upd("targets", 1, &targets["targets"]),
                upd("snapshot", 1, &snapshot),
                upd("timestamp", 1, &timestamp),
            ],
        )
        .await
        .unwrap();

    repo.bump_targets("targets");
    let result = env
        .update(&[("targets", &repo.targets_file("targets"))])
        .await;
    assert_eq!(result, Err(UpdateError::Invalid(None)));
    assert_eq!(env.versions("timestamp").await, vec![1]);
}

#[tokio::test]
async fn stored_root_may_be_expired() {
    // A root that expires long before its certificate (Go checks the certificates of the
    // stored root, but not the root's own expiry).
    let mut repo = repo();
    repo.root.common.expires = t0() + Duration::days(30);
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    repo.bump_targets("targets");
    let later = env.ctx_at(t0() + Duration::days(31));
    apply_update(
        &later,
        GUN,
        to_parts(&[("targets", &repo.targets_file("targets"))]),
    )
    .await
    .expect("an expired stored root still anchors updates");
    assert_eq!(env.versions("targets").await, vec![1, 2]);
}

// ---------------------------------------------------------------------------------------
// V2: root

#[tokio::test]
async fn no_root_anywhere_is_err_validation() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let result = env.update(&[("targets", &files.targets["targets"])]).await;
    assert_invalid(result, VALIDATION, NO_ROOT_MSG);
}

#[tokio::test]
async fn new_repository_root_may_start_at_version_1_or_2_but_not_3() {
    for (version, ok) in [(1, true), (2, true), (3, false)] {
        let mut repo = repo();
        repo.root.common.version = version;
        let files = repo.build();
        let env = Env::server_managed(&repo);
        let result = env
            .update(&[
                ("root", &files.root),
                ("targets", &files.targets["targets"]),
            ])
            .await;
        if ok {
            result.unwrap();
            assert_eq!(env.current("root").await.unwrap().version, version);
        } else {
            assert_invalid(
                result,
                BAD_ROOT,
                "Root modifications must increment the version. Current 1, new 3",
            );
        }
    }
}

#[tokio::test]
async fn root_version_must_be_current_or_next() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;

    repo.root.common.version = 3;
    let skip = repo.root_file();
    assert_invalid(
        env.update(&[("root", &skip)]).await,
        BAD_ROOT,
        "Root modifications must increment the version. Current 1, new 3",
    );

    // Re-sending the current version passes validation and is refused by storage.
    repo.root.common.version = 1;
    let same = repo.root_file();
    assert_eq!(
        env.update(&[("root", &same)]).await,
        Err(UpdateError::OldVersion)
    );

    repo.root.common.version = 2;
    env.update(&[("root", &repo.root_file())]).await.unwrap();
    assert_eq!(env.current("root").await.unwrap().version, 2);
}

#[tokio::test]
async fn root_with_bad_signature_is_rejected() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let result = env
        .update(&[
            ("root", &swizzle::corrupt_signature(&files.root)),
            ("targets", &files.targets["targets"]),
        ])
        .await;
    assert_invalid(
        result,
        BAD_ROOT,
        "could not validate the path to a trusted root: failed to validate integrity of roots",
    );
}

#[tokio::test]
async fn root_for_another_gun_is_rejected() {
    let other = TestRepo::new_at("docker.io/library/other", t0());
    let files = other.build();
    let env = Env::server_managed(&other);
    let result = env
        .update(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ])
        .await;
    assert_invalid(
        result,
        BAD_ROOT,
        "could not validate the path to a trusted root: unable to retrieve valid leaf certificates",
    );
}

#[tokio::test]
async fn expired_root_upload_is_rejected() {
    let mut repo = repo();
    let expires = t0() - Duration::hours(1);
    repo.root.common.expires = expires;
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let result = env
        .update(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ])
        .await;
    assert_invalid(
        result,
        BAD_ROOT,
        &format!("root expired at {}", go_expiry_display(&expires)),
    );
}

#[tokio::test]
async fn root_with_wrong_type_is_rejected() {
    let mut repo = repo();
    repo.root.common.type_ = "Targets".into();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let result = env
        .update(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ])
        .await;
    match result {
        Err(UpdateError::Invalid(Some(d))) => {
            assert_eq!(d.name, BAD_ROOT);
            assert!(d.msg.contains(TYPE_ROOT), "{}", d.msg);
        }
        other => panic!("expected ErrBadRoot, got {other:?}"),
    }
}

#[tokio::test]
async fn root_rotation_needs_old_and_new_threshold() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let old_signer = repo.root_signers[0].clone();

    // Signed only by the new key: the stored root's threshold is not met.
    let mut only_new = repo.clone();
    only_new.rotate_root_key();
    only_new.root_signers.remove(0);
    assert_invalid(
        env.update(&[("root", &only_new.root_file())]).await,
        BAD_ROOT,
        "could not rotate trust to a new trusted root: failed to validate data with current trusted certificates",
    );

    // Signed only by the old key: the new root's own threshold is not met.
    let mut only_old = repo.clone();
    only_old.rotate_root_key();
    only_old.root_signers = vec![old_signer];
    assert_invalid(
        env.update(&[("root", &only_old.root_file())]).await,
        BAD_ROOT,
        "could not validate the path to a trusted root: failed to validate integrity of roots",
    );

    // Both: accepted, and the next rotation only needs the new key.
    repo.rotate_root_key();
    env.update(&[("root", &repo.root_file())]).await.unwrap();
    assert_eq!(env.current("root").await.unwrap().version, 2);
    repo.root_signers.remove(0);
    repo.root.common.version += 1;
    env.update(&[("root", &repo.root_file())]).await.unwrap();
    assert_eq!(env.current("root").await.unwrap().version, 3);
}

#[tokio::test]
async fn new_root_decides_which_keys_sign_the_rest() {
    // Rotating the targets key: the new targets must be signed by the key in the new root.
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let old_targets = repo.clone();
    let new_key = PrivateKey::generate(&notary_tuf::KeyType::Ecdsa).unwrap();
    repo.set_role_key("targets", new_key.public_key());
    repo.targets_key = new_key;
    repo.bump_targets("targets");

    let mut stale = old_targets.clone();
    stale.bump_targets("targets");
    assert_invalid(
        env.update(&[
            ("root", &repo.root_file()),
            ("targets", &stale.targets_file("targets")),
        ])
        .await,
        BAD_TARGETS,
        "valid signatures did not meet threshold for targets",
    );
    env.update(&[
        ("root", &repo.root_file()),
        ("targets", &repo.targets_file("targets")),
    ])
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// V3: targets and delegations

#[tokio::test]
async fn targets_signature_and_expiry_are_checked() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;

    repo.bump_targets("targets");
    let good = repo.targets_file("targets");
    assert_invalid(
        env.update(&[("targets", &swizzle::corrupt_signature(&good))])
            .await,
        BAD_TARGETS,
        "valid signatures did not meet threshold for targets",
    );
    assert_invalid(
        env.update(&[("targets", &swizzle::remove_signatures(&good))])
            .await,
        BAD_TARGETS,
        "tuf: data has no signatures",
    );

    let mut expired = repo.clone();
    let when = t0() - Duration::seconds(1);
    expired.targets.get_mut("targets").unwrap().common.expires = when;
    assert_invalid(
        env.update(&[("targets", &expired.targets_file("targets"))])
            .await,
        BAD_TARGETS,
        &format!("targets expired at {}", go_expiry_display(&when)),
    );

    let mut wrong_type = repo.clone();
    wrong_type.targets.get_mut("targets").unwrap().common.type_ = "Snapshot".into();
    assert_invalid(
        env.update(&[("targets", &wrong_type.targets_file("targets"))])
            .await,
        BAD_TARGETS,
        "targets type metadata invalid: expected type Targets, not Snapshot",
    );

    env.update(&[("targets", &good)]).await.unwrap();
    assert_eq!(env.current("targets").await.unwrap().data, good);
}

#[tokio::test]
async fn delegation_signed_by_parent_listed_key_is_accepted() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;

    // Parent and child in one update.
    repo.add_delegation("targets", "targets/releases", &[""]);
    repo.bump_targets("targets");
    repo.add_target("targets/releases", "app", b"v1");
    env.update(&[
        ("targets/releases", &repo.targets_file("targets/releases")),
        ("targets", &repo.targets_file("targets")),
    ])
    .await
    .unwrap();

    // Child alone later: its parent comes from storage.
    repo.add_target("targets/releases", "app", b"v2");
    repo.bump_targets("targets/releases");
    let child_v2 = repo.targets_file("targets/releases");
    env.update(&[("targets/releases", &child_v2)])
        .await
        .unwrap();
    assert_eq!(
        env.current("targets/releases").await.unwrap().data,
        child_v2
    );
    let snap = parse(&env.current("snapshot").await.unwrap())
        .snapshot()
        .unwrap();
    assert_eq!(
        snap.meta["targets/releases"],
        FileMeta::from_bytes(&child_v2)
    );
}

#[tokio::test]
async fn delegation_missing_from_parent_is_rejected() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let mut other = repo.clone();
    other.add_delegation("targets", "targets/ghost", &[""]);
    // The stored parent does not list targets/ghost.
    assert_invalid(
        env.update(&[("targets/ghost", &other.targets_file("targets/ghost"))])
            .await,
        BAD_TARGETS,
        "tuf: invalid role targets/ghost. delegation does not exist",
    );
    // Nested delegation whose intermediate parent does not exist at all.
    repo.add_delegation("targets", "targets/a", &[""]);
    repo.add_delegation("targets/a", "targets/a/b", &[""]);
    assert_invalid(
        env.update(&[("targets/a/b", &repo.targets_file("targets/a/b"))])
            .await,
        BAD_TARGETS,
        "tuf: invalid role targets/a/b. delegation does not exist",
    );
    // With the whole chain in one upload it is fine.
    repo.bump_targets("targets");
    env.update(&[
        ("targets/a/b", &repo.targets_file("targets/a/b")),
        ("targets", &repo.targets_file("targets")),
        ("targets/a", &repo.targets_file("targets/a")),
    ])
    .await
    .unwrap();
    assert!(env.current("targets/a/b").await.is_some());
}

#[tokio::test]
async fn delegation_signed_with_swapped_key_is_rejected() {
    let mut repo = repo();
    repo.add_delegation("targets", "targets/releases", &[""]);
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;

    // The client signs with a key the parent does not list for the role.
    let mut swapped = repo.clone();
    swapped.delegation_keys.insert(
        "targets/releases".into(),
        vec![PrivateKey::generate(&notary_tuf::KeyType::Ecdsa).unwrap()],
    );
    swapped.bump_targets("targets/releases");
    assert_invalid(
        env.update(&[(
            "targets/releases",
            &swapped.targets_file("targets/releases"),
        )])
        .await,
        BAD_TARGETS,
        "valid signatures did not meet threshold for targets/releases",
    );
    repo.bump_targets("targets/releases");
    env.update(&[("targets/releases", &repo.targets_file("targets/releases"))])
        .await
        .unwrap();
}

#[tokio::test]
async fn delegation_entry_that_is_not_a_direct_child_is_rejected() {
    let mut repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    repo.add_delegation("targets", "targets/x", &[""]);
    // Rename the entry into a grandchild: invalid structure for the parent.
    repo.targets.get_mut("targets").unwrap().delegations.roles[0].name = "targets/x/y".into();
    repo.bump_targets("targets");
    assert_invalid(
        env.update(&[("targets", &repo.targets_file("targets"))])
            .await,
        BAD_TARGETS,
        "targets type metadata invalid: delegation role targets/x/y invalid",
    );
}

// ---------------------------------------------------------------------------------------
// V4: snapshot

#[tokio::test]
async fn client_snapshot_must_match_every_loaded_file() {
    let mut repo = repo();
    let files = repo.build();
    let env = Env::client_snapshot(&repo);
    init(&env, &files, true).await;

    // Mix and match: a new targets with a snapshot that still describes the old one.
    repo.add_target("targets", "new", b"1");
    repo.bump_targets("targets");
    let targets_v2 = repo.targets_file("targets");
    repo.snapshot_common.version = 2;
    let stale_snapshot = repo.snapshot_file(&files.root, &files.targets);
    let old_sha = hex::encode(&FileMeta::from_bytes(&files.targets["targets"]).hashes["sha256"]);
    assert_invalid(
        env.update(&[("targets", &targets_v2), ("snapshot", &stale_snapshot)])
            .await,
        BAD_SNAPSHOT,
        &format!("sha256 checksum for targets did not match: expected {old_sha}"),
    );

    // The stored root is checked too.
    let mut other_root = BTreeMap::new();
    other_root.insert("targets".to_string(), targets_v2.clone());
    let wrong_root = repo.snapshot_file(b"not the root", &other_root);
    let root_sha = hex::encode(&FileMeta::from_bytes(b"not the root").hashes["sha256"]);
    assert_invalid(
        env.update(&[("targets", &targets_v2), ("snapshot", &wrong_root)])
            .await,
        BAD_SNAPSHOT,
        &format!("sha256 checksum for root did not match: expected {root_sha}"),
    );

    let good = repo.snapshot_file(&files.root, &other_root);
    env.update(&[("targets", &targets_v2), ("snapshot", &good)])
        .await
        .unwrap();
    assert_eq!(env.current("snapshot").await.unwrap().data, good);
}

#[tokio::test]
async fn client_snapshot_signature_and_expiry_are_checked() {
    let mut repo = repo();
    let files = repo.build();
    let env = Env::client_snapshot(&repo);
    init(&env, &files, true).await;
    repo.snapshot_common.version = 2;

    let resigned = repo.snapshot_file(&files.root, &files.targets);
    assert_invalid(
        env.update(&[("snapshot", &swizzle::corrupt_signature(&resigned))])
            .await,
        BAD_SNAPSHOT,
        "valid signatures did not meet threshold for snapshot",
    );
    let mut expired = repo.clone();
    let when = t0() - Duration::minutes(5);
    expired.snapshot_common.expires = when;
    assert_invalid(
        env.update(&[(
            "snapshot",
            &expired.snapshot_file(&files.root, &files.targets),
        )])
        .await,
        BAD_SNAPSHOT,
        &format!("snapshot expired at {}", go_expiry_display(&when)),
    );
    env.update(&[("snapshot", &resigned)]).await.unwrap();
    assert_eq!(env.current("snapshot").await.unwrap().version, 2);
}

#[tokio::test]
async fn missing_snapshot_key_is_err_bad_hierarchy() {
    let repo = repo();
    let files = repo.build();
    let env = Env::client_snapshot(&repo);
    let result = env
        .update(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ])
        .await;
    match result {
        Err(UpdateError::Invalid(Some(d))) => {
            assert_eq!(d.name, ValidationDetail::BAD_HIERARCHY);
            assert_eq!(d.missing.as_deref(), Some("snapshot"));
            assert_eq!(d.msg, NO_SNAPSHOT_KEY_MSG);
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!(
                    r#"{{"Name":"ErrBadHierarchy","Error":{{"Missing":"snapshot","Msg":"{NO_SNAPSHOT_KEY_MSG}"}}}}"#
                )
            );
        }
        other => panic!("expected ErrBadHierarchy, got {other:?}"),
    }
    assert!(
        env.current("timestamp").await.is_none(),
        "nothing is written"
    );
}

#[tokio::test]
async fn remote_not_found_counts_as_not_held() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let crypto = NotFoundCrypto(MemoryCryptoService::new());
    let result = apply_update(
        &env.ctx_with(&crypto),
        GUN,
        to_parts(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ]),
    )
    .await;
    assert_invalid(result, ValidationDetail::BAD_HIERARCHY, NO_SNAPSHOT_KEY_MSG);
    let result = apply_update(
        &env.ctx_with(&crypto),
        GUN,
        to_parts(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
            ("snapshot", &files.snapshot),
        ]),
    )
    .await;
    assert_invalid(result, BAD_ROOT, NO_TIMESTAMP_KEY_MSG);
}

#[tokio::test]
async fn first_generated_snapshot_needs_targets() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    assert_invalid(
        env.update(&[("root", &files.root)]).await,
        VALIDATION,
        "targets must be loaded first",
    );
}

// ---------------------------------------------------------------------------------------
// V5: timestamp

#[tokio::test]
async fn missing_timestamp_key_is_err_bad_root() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    env.crypto
        .remove_key(&repo.timestamp_key.public_key().key_id());
    assert_invalid(
        env.update(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ])
        .await,
        BAD_ROOT,
        NO_TIMESTAMP_KEY_MSG,
    );
}

#[tokio::test]
async fn unreachable_signer_is_unavailable_not_invalid() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let down = FailingCrypto::unavailable();
    let result = apply_update(
        &env.ctx_with(&down),
        GUN,
        to_parts(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
            ("snapshot", &files.snapshot),
        ]),
    )
    .await;
    assert!(
        matches!(result, Err(UpdateError::Unavailable(ref m)) if m.contains("Unavailable")),
        "{result:?}"
    );
    assert!(down.calls() > 0);
    assert!(env.current("timestamp").await.is_none());
}

#[tokio::test]
async fn other_signer_failure_is_err_validation() {
    let repo = repo();
    let files = repo.build();
    let env = Env::server_managed(&repo);
    let broken = FailingCrypto {
        error: CryptoError::Other("Signing failed".into()),
        calls: Default::default(),
    };
    let result = apply_update(
        &env.ctx_with(&broken),
        GUN,
        to_parts(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ]),
    )
    .await;
    assert_invalid(result, VALIDATION, "Signing failed");
}

// ---------------------------------------------------------------------------------------
// V6: versions and concurrency

#[tokio::test]
async fn replaying_an_old_update_is_version_error() {
    let mut repo = repo();
    let files = repo.build();
    let env = Env::client_snapshot(&repo);
    init(&env, &files, true).await;
    repo.add_target("targets", "x", b"x");
    repo.bump_targets("targets");
    repo.snapshot_common.version = 2;
    // Root bytes must stay the stored ones (ECDSA signatures differ on every signing).
    let mut targets_v2 = BTreeMap::new();
    targets_v2.insert("targets".to_string(), repo.targets_file("targets"));
    let snapshot_v2 = repo.snapshot_file(&files.root, &targets_v2);
    env.update(&[
        ("targets", &targets_v2["targets"]),
        ("snapshot", &snapshot_v2),
    ])
    .await
    .unwrap();

    // Rollback: the complete first upload again.
    let replay = env
        .update(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
            ("snapshot", &files.snapshot),
        ])
        .await;
    assert_eq!(replay, Err(UpdateError::OldVersion));
    // And just the old targets/snapshot pair.
    let replay = env
        .update(&[
            ("targets", &files.targets["targets"]),
            ("snapshot", &files.snapshot),
        ])
        .await;
    assert_eq!(replay, Err(UpdateError::OldVersion));
    assert_eq!(
        env.current("targets").await.unwrap().data,
        targets_v2["targets"]
    );
    assert_eq!(env.versions("timestamp").await, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_from_one_base_have_one_winner() {
    let repo = repo();
    let env = Arc::new(Env::server_managed(&repo));
    init(&env, &repo.build(), false).await;

    let contenders: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let mut r = repo.clone();
            r.add_target("targets", &format!("contender-{i}"), b"x");
            r.bump_targets("targets");
            r.targets_file("targets")
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(contenders.len()));
    let mut tasks = Vec::new();
    for bytes in contenders.clone() {
        let env = env.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            apply_update(&env.ctx(), GUN, vec![("targets".into(), bytes)]).await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => winners.push(i),
            Err(UpdateError::OldVersion) => {}
            Err(e) => panic!("contender {i}: unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one update commits");
    let winner = &contenders[winners[0]];

    // The stored chain is the winner's, and consistent.
    assert_eq!(env.versions("timestamp").await, vec![1, 2]);
    assert_eq!(env.versions("targets").await, vec![1, 2]);
    assert_eq!(&env.current("targets").await.unwrap().data, winner);
    let snap_row = env.current("snapshot").await.unwrap();
    let snap: Snapshot = parse(&snap_row).snapshot().unwrap();
    assert_eq!(snap.meta["targets"], FileMeta::from_bytes(winner));
    let ts = parse(&env.current("timestamp").await.unwrap())
        .timestamp()
        .unwrap();
    assert_eq!(
        ts.snapshot_meta().unwrap(),
        &FileMeta::from_bytes(&snap_row.data)
    );
}

fn upd(role: &str, version: i64, data: &[u8]) -> notary_server::storage::MetaUpdate {
    notary_server::storage::MetaUpdate {
        role: role.into(),
        version,
        data: data.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------
// The stored root's validation is remembered per GUN (cached SQL store only)

#[tokio::test]
async fn stored_root_memo_follows_the_stored_root_and_the_clock() {
    use notary_server::cache::CacheOptions;
    use notary_server::domain::Ctx;
    use notary_server::storage::SqlStore;

    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("server.db"))
        .unwrap()
        .with_cache(CacheOptions::default());
    store.run_migrations().unwrap();
    let mut repo = repo();
    let crypto = repo.server_crypto();
    let memo = || store.cache().unwrap().trusted_root(GUN);
    let update = |now, parts: Vec<(&str, Vec<u8>)>| {
        let ctx = Ctx {
            store: &store,
            crypto: &crypto,
            key_type: notary_tuf::KeyType::Ecdsa,
            now,
            actor: notary_server::audit::Actor::server(),
        };
        let parts: Vec<(String, Vec<u8>)> =
            parts.into_iter().map(|(r, b)| (r.to_string(), b)).collect();
        async move { apply_update(&ctx, GUN, parts).await }
    };

    // The first upload has no stored root to check.
    let root_v1 = repo.root_file();
    let targets = repo.targets_file("targets");
    update(t0(), vec![("root", root_v1.clone()), ("targets", targets)])
        .await
        .unwrap();
    assert!(memo().is_none());
    // The next publish checks the stored root in full and remembers it; the one after
    // uses the memo.
    for _ in 0..2 {
        repo.bump_targets("targets");
        update(t0(), vec![("targets", repo.targets_file("targets"))])
            .await
            .unwrap();
        assert_eq!(memo().unwrap().raw(), root_v1.as_slice());
    }

    // A rotated root is stored; the memo of the old root is not used for it.
    repo.rotate_root_key();
    repo.root.common.version = 2;
    let root_v2 = repo.root_file();
    repo.bump_targets("targets");
    let targets = repo.targets_file("targets");
    update(t0(), vec![("root", root_v2.clone()), ("targets", targets)])
        .await
        .unwrap();
    repo.bump_targets("targets");
    update(t0(), vec![("targets", repo.targets_file("targets"))])
        .await
        .unwrap();
    assert_eq!(memo().unwrap().raw(), root_v2.as_slice());

    // Once the stored root's certificate has expired the memo no longer holds, and the
    // root is loaded as stored (signatures checked, not the clock): the owner's repair of
    // an expired repository is accepted (issue 14), where Go refuses every update.
    let later = t0() + Duration::days(10 * 365 + 1);
    repo.now = later;
    repo.bump_targets("targets");
    repo.targets.get_mut("targets").unwrap().common.expires = later + Duration::days(30);
    update(later, vec![("targets", repo.targets_file("targets"))])
        .await
        .expect("a repair under a root whose certificate expired is accepted");
    assert_eq!(latest_version(&store, "targets").await, 6);
    // Still only under that root's keys: targets signed by another key are refused.
    repo.bump_targets("targets");
    repo.targets_key = notary_tuf::PrivateKey::generate(&notary_tuf::KeyType::Ecdsa).unwrap();
    let refused = update(later, vec![("targets", repo.targets_file("targets"))]).await;
    assert!(
        matches!(refused, Err(UpdateError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(latest_version(&store, "targets").await, 6);
}

/// The latest stored version of `role`.
async fn latest_version(store: &dyn MetaStore, role: &str) -> i64 {
    store.get_latest(GUN, role).await.unwrap().unwrap().version
}

// ---------------------------------------------------------------------------------------
// Online keys belong to one GUN and role (issue 13, defect 4)

/// A signer that, like Go's, does not say which GUN a key was made for.
struct NoGunSigner(MemoryCryptoService);

#[async_trait::async_trait]
impl notary_tuf::CryptoService for NoGunSigner {
    async fn create_key(
        &self,
        g: &str,
        r: &str,
        k: &notary_tuf::KeyType,
    ) -> Result<notary_tuf::PublicKey, CryptoError> {
        self.0.create_key(g, r, k).await
    }
    async fn get_key(
        &self,
        id: &str,
    ) -> Result<Option<(notary_tuf::PublicKey, String)>, CryptoError> {
        self.0.get_key(id).await
    }
    async fn sign(&self, id: &str, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.sign(id, msg).await
    }
}

const VICTIM: &str = "org/app";
const ATTACKER: &str = "org/evil";

/// A new repository for `gun` whose root lists `key` as its `role` key (root version 1).
fn repo_naming(gun: &str, role: &str, key: notary_tuf::PublicKey) -> TestRepo {
    let mut r = TestRepo::new_at(gun, t0());
    r.set_role_key(role, key);
    r.root.common.version = 1;
    r
}

fn first_upload(files: &notary_tuf::test_support::RepoFiles) -> Vec<(String, Vec<u8>)> {
    to_parts(&[
        ("root", &files.root),
        ("targets", &files.targets["targets"]),
        ("snapshot", &files.snapshot),
    ])
}

/// Asserts a refusal of the server key as an `ErrBadRoot` (400 `INVALID_UPDATE`) naming
/// the key and the GUN/role being signed, and that nothing was stored for the GUN.
async fn assert_key_refused(
    store: &dyn MetaStore,
    result: Result<(), UpdateError>,
    gun: &str,
    role: &str,
    key_id: &str,
) {
    let err = result.expect_err("the update must be refused");
    let api = notary_server::http::error::ApiError::from(err.clone());
    assert_eq!(api.status().as_u16(), 400, "{err:?}");
    assert_eq!(api.code(), "INVALID_UPDATE");
    match err {
        UpdateError::Invalid(Some(d)) => {
            assert_eq!(d.name, BAD_ROOT, "{}", d.msg);
            assert!(
                d.msg.contains(key_id) && d.msg.contains(&format!("{role} of {gun}")),
                "{}",
                d.msg
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(store.get_latest(gun, "timestamp").await.unwrap().is_none());
}

#[tokio::test]
async fn another_guns_timestamp_key_is_refused() {
    // One signer holds every repository's keys, and says which GUN each is for.
    let signer = MemoryCryptoService::new();
    let store = notary_server::storage::MemoryStore::new();
    let ctx = notary_server::domain::Ctx {
        store: &store,
        crypto: &signer,
        key_type: notary_tuf::KeyType::Ecdsa,
        now: t0(),
        actor: notary_server::audit::Actor::server(),
    };
    let victim = TestRepo::new_at(VICTIM, t0());
    let victim_ts = signer.add_key(victim.timestamp_key.clone(), VICTIM, "timestamp");
    apply_update(&ctx, VICTIM, first_upload(&victim.build()))
        .await
        .unwrap();

    // org/evil names org/app's timestamp key: Go signs org/evil's timestamp with it.
    let evil = repo_naming(ATTACKER, "timestamp", victim.timestamp_key.public_key());
    let result = apply_update(&ctx, ATTACKER, first_upload(&evil.build())).await;
    assert_key_refused(&store, result, ATTACKER, "timestamp", &victim_ts).await;

    // A server-managed snapshot: the same for org/app's snapshot key.
    let victim_snap = signer.add_key(victim.snapshot_key.clone(), VICTIM, "snapshot");
    let evil = repo_naming(ATTACKER, "snapshot", victim.snapshot_key.public_key());
    let files = evil.build();
    signer.add_key(evil.timestamp_key.clone(), ATTACKER, "timestamp");
    let result = apply_update(
        &ctx,
        ATTACKER,
        to_parts(&[
            ("root", &files.root),
            ("targets", &files.targets["targets"]),
        ]),
    )
    .await;
    assert_key_refused(&store, result, ATTACKER, "snapshot", &victim_snap).await;

    // org/app itself still publishes.
    assert_eq!(
        store
            .get_latest(VICTIM, "timestamp")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn a_key_of_another_role_is_refused() {
    // org/app's own snapshot key listed as its timestamp key.
    let signer = MemoryCryptoService::new();
    let store = notary_server::storage::MemoryStore::new();
    let ctx = notary_server::domain::Ctx {
        store: &store,
        crypto: &signer,
        key_type: notary_tuf::KeyType::Ecdsa,
        now: t0(),
        actor: notary_server::audit::Actor::server(),
    };
    let base = TestRepo::new_at(VICTIM, t0());
    let snap_id = signer.add_key(base.snapshot_key.clone(), VICTIM, "snapshot");
    let repo = repo_naming(VICTIM, "timestamp", base.snapshot_key.public_key());
    let result = apply_update(&ctx, VICTIM, first_upload(&repo.build())).await;
    assert_key_refused(&store, result, VICTIM, "timestamp", &snap_id).await;
}

#[tokio::test]
async fn with_a_signer_that_names_no_gun_the_servers_record_decides() {
    // Go's signer: GetKeyInfo has no GUN. Keys made through our key endpoint are recorded.
    let signer = NoGunSigner(MemoryCryptoService::new());
    let store = notary_server::storage::MemoryStore::new();
    let ctx = notary_server::domain::Ctx {
        store: &store,
        crypto: &signer,
        key_type: notary_tuf::KeyType::Ecdsa,
        now: t0(),
        actor: notary_server::audit::Actor::server(),
    };
    let app_ts = notary_server::domain::get_or_create_key(&ctx, VICTIM, "timestamp")
        .await
        .unwrap();
    let victim = repo_naming(VICTIM, "timestamp", app_ts.clone());
    apply_update(&ctx, VICTIM, first_upload(&victim.build()))
        .await
        .expect("a key made for the GUN through the key endpoint signs for it");
    assert_eq!(
        store.key_owner(&app_ts.key_id()).await.unwrap(),
        Some((VICTIM.to_string(), "timestamp".to_string()))
    );

    let evil = repo_naming(ATTACKER, "timestamp", app_ts.clone());
    let result = apply_update(&ctx, ATTACKER, first_upload(&evil.build())).await;
    assert_key_refused(&store, result, ATTACKER, "timestamp", &app_ts.key_id()).await;

    // GUNs compare byte for byte.
    let upper = repo_naming("Org/App", "timestamp", app_ts.clone());
    let result = apply_update(&ctx, "Org/App", first_upload(&upper.build())).await;
    assert_key_refused(&store, result, "Org/App", "timestamp", &app_ts.key_id()).await;

    // org/evil's key endpoint does not hand out org/app's key even if its root named it.
    let evil_key = notary_server::domain::get_or_create_key(&ctx, ATTACKER, "timestamp")
        .await
        .unwrap();
    assert_ne!(evil_key, app_ts);
}

#[tokio::test]
async fn keys_from_before_the_record_keep_working_for_their_gun() {
    // A database adopted from a Go notary: org/app's timestamp key was made by Go's server
    // (no record of ours) and a Go signer says no GUN.
    let inner = MemoryCryptoService::new();
    let victim = TestRepo::new_at(VICTIM, t0());
    let ts_id = inner.add_key(victim.timestamp_key.clone(), VICTIM, "timestamp");
    let signer = NoGunSigner(inner);
    let store = notary_server::storage::MemoryStore::new();
    let ctx = notary_server::domain::Ctx {
        store: &store,
        crypto: &signer,
        key_type: notary_tuf::KeyType::Ecdsa,
        now: t0(),
        actor: notary_server::audit::Actor::server(),
    };
    let v1 = victim.build();
    let files = &v1;
    store
        .update_many(
            VICTIM,
            [
                ("root", &files.root),
                ("targets", &files.targets["targets"]),
                ("snapshot", &files.snapshot),
                ("timestamp", &files.timestamp),
            ]
            .into_iter()
            .map(|(role, data)| notary_server::storage::MetaUpdate {
                role: role.into(),
                version: 1,
                data: data.clone(),
            })
            .collect(),
        )
        .await
        .unwrap();

    // Another GUN cannot claim the unrecorded key: its stored root never listed it.
    let evil = repo_naming(ATTACKER, "timestamp", victim.timestamp_key.public_key());
    let result = apply_update(&ctx, ATTACKER, first_upload(&evil.build())).await;
    assert_key_refused(&store, result, ATTACKER, "timestamp", &ts_id).await;
    assert_eq!(store.key_owner(&ts_id).await.unwrap(), None);

    // org/app's stored root lists it: its next publish is signed, and the key recorded.
    let mut next = victim.clone();
    next.add_target("targets", "app", b"v2");
    next.bump_targets("targets");
    next.snapshot_common.version = 2;
    let files = next.build();
    apply_update(
        &ctx,
        VICTIM,
        to_parts(&[
            ("targets", &files.targets["targets"]),
            // Over the stored root's bytes (signing again would give other bytes).
            ("snapshot", &next.snapshot_file(&v1.root, &files.targets)),
        ]),
    )
    .await
    .expect("the GUN's own legacy key signs");
    assert_eq!(
        store.key_owner(&ts_id).await.unwrap(),
        Some((VICTIM.to_string(), "timestamp".to_string()))
    );
    assert_eq!(
        store
            .get_latest(VICTIM, "timestamp")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}
