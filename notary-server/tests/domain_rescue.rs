//! Rescue of a GUN whose root (metadata and certificate) and targets have expired (issue
//! 14), with the clock shifted eleven years past the repository's creation: the server keeps
//! serving and re-signing the timestamp, and takes the owner's repairs, while an invalid
//! repair is still refused.

mod domain_support;

use chrono::{DateTime, Duration, Utc};
use domain_support::*;
use notary_server::domain::{current_timestamp_or_snapshot, UpdateError};
use notary_tuf::test_support::TestRepo;
use notary_tuf::verify::RepoBuilder;

/// Eleven years on: the ten-year root certificate and root, and the three-year targets and
/// snapshot, have all expired.
fn later() -> DateTime<Utc> {
    t0() + Duration::days(11 * 365)
}

/// A server-managed repository created at [`t0`], with the environment's clock at [`later`].
async fn expired_repository() -> (TestRepo, Env) {
    let repo = repo();
    let mut env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    env.now = later();
    (repo, env)
}

/// The owner re-signs targets with a fresh expiry (as `notary witness` + `publish` does).
fn resign_targets(repo: &mut TestRepo, now: DateTime<Utc>) -> Vec<u8> {
    repo.now = now;
    repo.bump_targets("targets");
    repo.targets.get_mut("targets").unwrap().common.expires = now + Duration::days(3 * 365);
    repo.targets_file("targets")
}

/// The owner rotates the root to a new certificate made now, signed by old and new key (as
/// `notary key rotate <gun> root` does), with a fresh expiry.
fn rotate_root(repo: &mut TestRepo, now: DateTime<Utc>) -> Vec<u8> {
    repo.now = now;
    repo.rotate_root_key();
    repo.root.common.expires = now + Duration::days(10 * 365);
    repo.root_file()
}

#[tokio::test]
async fn expired_root_still_gets_timestamps() {
    let (_repo, env) = expired_repository().await;
    let ts = current_timestamp_or_snapshot(&env.ctx(), GUN, "timestamp")
        .await
        .expect("no error for a GUN whose root expired")
        .expect("a timestamp is served");
    let typed = parse(&ts).timestamp().unwrap();
    assert!(typed.common.expires > later(), "re-signed: {typed:?}");
    // The server-managed snapshot had expired too: re-signed with it.
    assert_eq!(env.versions("snapshot").await, vec![1, 2]);
    // The stored root is served as it was.
    assert_eq!(env.versions("root").await, vec![1]);
}

#[tokio::test]
async fn owner_repairs_are_accepted_and_validate_for_a_new_client() {
    let (mut repo, env) = expired_repository().await;
    let now = later();
    // Targets first, under the expired root: accepted.
    let targets = resign_targets(&mut repo, now);
    env.update(&[("targets", &targets)])
        .await
        .expect("re-signed targets accepted under an expired root");
    // Then the root, to a new certificate.
    let root = rotate_root(&mut repo, now);
    env.update(&[("root", &root)])
        .await
        .expect("root rotation accepted from an expired root");

    // A client with no cache, at `now`, validates the whole chain the server serves.
    let ts = current_timestamp_or_snapshot(&env.ctx(), GUN, "timestamp")
        .await
        .unwrap()
        .unwrap();
    let snapshot = current_timestamp_or_snapshot(&env.ctx(), GUN, "snapshot")
        .await
        .unwrap()
        .unwrap();
    let mut client = RepoBuilder::new(GUN, now);
    client
        .load("root", &env.current("root").await.unwrap().data, 1, false)
        .expect("rotated root valid now");
    client
        .load("timestamp", &ts.data, 1, false)
        .expect("timestamp valid now");
    client
        .load("snapshot", &snapshot.data, 1, false)
        .expect("snapshot valid now");
    client
        .load(
            "targets",
            &env.current("targets").await.unwrap().data,
            1,
            false,
        )
        .expect("targets valid now");
}

#[tokio::test]
async fn a_root_not_signed_by_the_expired_root_is_still_refused() {
    let (mut repo, env) = expired_repository().await;
    let now = later();
    rotate_root(&mut repo, now);
    // Drop the old key: the new root is signed by its own key only.
    repo.root_signers.remove(0);
    let root = repo.root_file();
    assert_bad_root(env.update(&[("root", &root)]).await);
}

#[tokio::test]
async fn a_new_root_with_an_expired_certificate_is_refused() {
    let (mut repo, env) = expired_repository().await;
    // The new certificate is made at t0 (ten years, so expired now).
    let root = rotate_root(&mut repo, t0());
    assert_bad_root(env.update(&[("root", &root)]).await);
}

#[tokio::test]
async fn expired_targets_under_a_valid_root_are_repaired() {
    let repo0 = repo();
    let mut env = Env::server_managed(&repo0);
    init(&env, &repo0.build(), false).await;
    // Four years on: targets (three years) expired, root (ten) still fine.
    let now = t0() + Duration::days(4 * 365);
    env.now = now;
    let mut repo = repo0;
    let targets = resign_targets(&mut repo, now);
    env.update(&[("targets", &targets)]).await.unwrap();
    assert_eq!(env.versions("targets").await, vec![1, 2]);
}

fn assert_bad_root(result: Result<(), UpdateError>) {
    match result {
        Err(UpdateError::Invalid(Some(d))) => assert_eq!(d.name, "ErrBadRoot", "{}", d.msg),
        other => panic!("expected ErrBadRoot, got {other:?}"),
    }
}
