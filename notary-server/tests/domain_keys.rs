//! `get_or_create_key` / `rotate_key` (spec server.md §7).

mod domain_support;

use domain_support::*;
use notary_server::domain::{get_or_create_key, rotate_key, DomainError};
use notary_tuf::{CryptoError, CryptoService, KeyType, MemoryCryptoService};

#[tokio::test]
async fn without_root_every_get_creates_a_key_of_the_configured_type() {
    let env = Env {
        store: notary_server::storage::MemoryStore::new(),
        crypto: MemoryCryptoService::new(),
        now: t0(),
    };
    let a = get_or_create_key(&env.ctx(), GUN, "timestamp")
        .await
        .unwrap();
    let b = get_or_create_key(&env.ctx(), GUN, "timestamp")
        .await
        .unwrap();
    assert_eq!(a.key_type, KeyType::Ecdsa);
    // The memory signer has no pending-key reuse, like Go's local signer.
    assert_ne!(a, b);
    assert_eq!(env.crypto.len(), 2);
    let (_, role) = env.crypto.get_key(&a.key_id()).await.unwrap().unwrap();
    assert_eq!(role, "timestamp");

    let mut ed = env.ctx();
    ed.key_type = KeyType::Ed25519;
    let c = get_or_create_key(&ed, GUN, "snapshot").await.unwrap();
    assert_eq!(c.key_type, KeyType::Ed25519);
}

#[tokio::test]
async fn with_root_the_held_key_is_returned_stably() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let held = env.crypto.len();
    for role in ["timestamp", "snapshot"] {
        let first = get_or_create_key(&env.ctx(), GUN, role).await.unwrap();
        let again = get_or_create_key(&env.ctx(), GUN, role).await.unwrap();
        assert_eq!(first, repo.role_key(role));
        assert_eq!(again, first);
    }
    assert_eq!(env.crypto.len(), held, "no key was created");
}

#[tokio::test]
async fn with_root_but_no_held_key_a_new_key_is_created() {
    let repo = repo();
    let env = Env::client_snapshot(&repo);
    init(&env, &repo.build(), true).await;
    // The signer holds the timestamp key but not the client's snapshot key.
    let snap = get_or_create_key(&env.ctx(), GUN, "snapshot")
        .await
        .unwrap();
    assert_ne!(snap, repo.role_key("snapshot"));
    assert!(env.crypto.get_key(&snap.key_id()).await.unwrap().is_some());

    // A remote signer answering NotFound behaves the same.
    let not_found = NotFoundCrypto(MemoryCryptoService::new());
    let ts = get_or_create_key(&env.ctx_with(&not_found), GUN, "timestamp")
        .await
        .unwrap();
    assert_ne!(ts, repo.role_key("timestamp"));
    assert_eq!(not_found.0.len(), 1);
}

#[tokio::test]
async fn rotate_always_creates() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    init(&env, &repo.build(), false).await;
    let current = get_or_create_key(&env.ctx(), GUN, "timestamp")
        .await
        .unwrap();
    let rotated = rotate_key(&env.ctx(), GUN, "timestamp").await.unwrap();
    assert_ne!(rotated, current);
    // Until a root lists the new key, GET keeps returning the current one.
    assert_eq!(
        get_or_create_key(&env.ctx(), GUN, "timestamp")
            .await
            .unwrap(),
        current
    );
}

#[tokio::test]
async fn signer_errors_are_reported() {
    let repo = repo();
    let env = Env::server_managed(&repo);
    let down = FailingCrypto::unavailable();
    let r = get_or_create_key(&env.ctx_with(&down), GUN, "timestamp").await;
    assert!(
        matches!(r, Err(DomainError::Crypto(CryptoError::Unavailable(_)))),
        "{r:?}"
    );
    init(&env, &repo.build(), false).await;
    let r = get_or_create_key(&env.ctx_with(&down), GUN, "timestamp").await;
    assert!(
        matches!(r, Err(DomainError::Crypto(CryptoError::Unavailable(_)))),
        "{r:?}"
    );
    let r = rotate_key(&env.ctx_with(&down), GUN, "snapshot").await;
    assert!(matches!(r, Err(DomainError::Crypto(_))), "{r:?}");

    // An algorithm the signer cannot create (Go's signer has no RSA generation).
    let mut rsa = env.ctx();
    rsa.key_type = KeyType::Rsa;
    let r = rotate_key(&rsa, GUN, "timestamp").await;
    assert!(
        matches!(r, Err(DomainError::Crypto(CryptoError::Other(_)))),
        "{r:?}"
    );
}

#[tokio::test]
async fn another_guns_key_named_by_the_root_is_not_handed_out() {
    // A state Go allowed: org/evil's stored root lists org/app's timestamp key.
    let app = notary_tuf::test_support::TestRepo::new_at("org/app", t0());
    let mut evil = notary_tuf::test_support::TestRepo::new_at("org/evil", t0());
    evil.set_role_key("timestamp", app.timestamp_key.public_key());
    evil.root.common.version = 1;
    let env = Env {
        store: notary_server::storage::MemoryStore::new(),
        crypto: MemoryCryptoService::new(),
        now: t0(),
    };
    let app_id = env
        .crypto
        .add_key(app.timestamp_key.clone(), "org/app", "timestamp");
    let files = evil.build();
    let rows = [
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
    .collect();
    use notary_server::storage::MetaStore as _;
    env.store.update_many("org/evil", rows).await.unwrap();

    let got = get_or_create_key(&env.ctx(), "org/evil", "timestamp")
        .await
        .unwrap();
    assert_ne!(got.key_id(), app_id, "org/app's key was handed to org/evil");
    assert_eq!(
        env.store.key_owner(&got.key_id()).await.unwrap(),
        Some(("org/evil".to_string(), "timestamp".to_string()))
    );
}
