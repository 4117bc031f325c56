//! CPU denial of service through signatures: an upload whose metadata carries thousands of
//! garbage signatures, all naming a key the role really has, is refused as a threshold
//! failure without verifying every one of them, and leaves the stored state untouched.
//!
//! Nothing here asserts on time; the measured durations are printed (`--nocapture`) so
//! the effect of the verification bound can be seen.

mod http_support;

use std::sync::Arc;
use std::time::Instant;

use actix_web::test::TestRequest;
use http_support::{call, Reply};
use notary_server::http::AppState;
use notary_server::storage::{MemoryStore, MetaStore};
use notary_tuf::crypto::CryptoService;
use notary_tuf::keys::{KeyType, SignatureMethod};
use notary_tuf::metadata::Signature;
use notary_tuf::test_support::{swizzle, TestRepo};
use sha2::{Digest, Sha256};

const GUN: &str = "docker.io/hostile/dos";
const BOUNDARY: &str = "DosBoundary";
/// Garbage signatures per hostile file.
const FLOOD: usize = 10_000;
const ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

struct Server {
    store: Arc<MemoryStore>,
    crypto: Arc<dyn CryptoService>,
}

impl Server {
    fn new(repo: &TestRepo) -> Server {
        Server {
            store: Arc::new(MemoryStore::new()),
            crypto: Arc::new(repo.server_crypto()),
        }
    }

    async fn post(&self, parts: &[(&str, &[u8])]) -> Reply {
        let state = AppState::new(self.store.clone(), self.crypto.clone(), KeyType::Ecdsa);
        call(state, upload_request(parts)).await
    }

    /// Every stored row (role, version, sha256) and changefeed record.
    async fn dump(&self) -> Vec<String> {
        let mut out = Vec::new();
        for role in ROLES {
            let max = self
                .store
                .get_latest(GUN, role)
                .await
                .unwrap()
                .map_or(0, |f| f.version);
            for v in 1..=max {
                if let Some(f) = self.store.get_version(GUN, role, v).await.unwrap() {
                    out.push(format!("{role} v{v} {}", f.sha256));
                }
            }
        }
        for c in self.store.get_changes(0, 1000, None).await.unwrap() {
            out.push(format!(
                "change {} {} v{} {}",
                c.id, c.gun, c.version, c.sha256
            ));
        }
        out
    }
}

fn upload_request(parts: &[(&str, &[u8])]) -> TestRequest {
    http_support::upload_request(GUN, BOUNDARY, parts)
}

/// `n` distinct, well-formed but wrong P-256 signatures (64 bytes, so each one would reach
/// the real verification) claiming `keyid`.
fn garbage(keyid: &str, n: usize) -> Vec<Signature> {
    (0..n)
        .map(|i| {
            let mut sig = Sha256::digest(format!("r{i}").as_bytes()).to_vec();
            sig.extend_from_slice(&Sha256::digest(format!("s{i}").as_bytes()));
            Signature {
                keyid: keyid.to_string(),
                method: SignatureMethod::Ecdsa,
                sig,
            }
        })
        .collect()
}

/// A published repository (root, targets, server-made snapshot and timestamp).
async fn published() -> (TestRepo, Server, Vec<u8>) {
    let mut repo = TestRepo::new(GUN);
    repo.add_target("targets", "app-v1", b"first release");
    let files = repo.build();
    let server = Server::new(&repo);
    let r = server
        .post(&[
            ("root", &files.root),
            ("targets", files.get("targets").unwrap()),
        ])
        .await;
    assert_eq!(r.status, 200, "setup publish: {}", r.text());
    (repo, server, files.root)
}

/// The next targets version, validly signed.
fn next_targets(repo: &mut TestRepo) -> Vec<u8> {
    repo.add_target("targets", "app-v2", b"second release");
    repo.bump_targets("targets");
    repo.targets_file("targets")
}

async fn assert_threshold_refusal(
    server: &Server,
    what: &str,
    parts: &[(&str, &[u8])],
    kind: &str,
    msg: &str,
) {
    let before = server.dump().await;
    let start = Instant::now();
    let r = server.post(parts).await;
    eprintln!("{what}: answered {} in {:?}", r.status, start.elapsed());
    let ctx = format!("{what}: {} {}", r.status, r.text());
    assert_eq!(r.status, 400, "{ctx}");
    assert_eq!(r.code(), "INVALID_UPDATE", "{ctx}");
    let detail = &r.json()["errors"][0]["detail"];
    assert_eq!(detail["Name"].as_str(), Some(kind), "{ctx}");
    assert_eq!(detail["Error"]["Msg"].as_str(), Some(msg), "{ctx}");
    assert_eq!(server.dump().await, before, "{ctx}: stored state changed");
}

#[actix_web::test]
async fn targets_flooded_with_bad_signatures_is_a_threshold_failure() {
    let (mut repo, server, _) = published().await;
    let targets = next_targets(&mut repo);
    let keyid = repo.role_key("targets").key_id();
    // Only garbage, all for the real targets key.
    let flooded = swizzle::modify_signatures(&targets, |s| *s = garbage(&keyid, FLOOD));
    // Decoding alone, for comparison: with verification bounded, what is left grows with
    // the body size (bounded by `server.max_request_bytes`), not with the signature count.
    let start = Instant::now();
    let decoded = notary_tuf::SignedFile::parse(&flooded).unwrap();
    eprintln!(
        "flooded targets: {} bytes, {} signatures, one decode in {:?}",
        flooded.len(),
        decoded.signatures.len(),
        start.elapsed()
    );
    assert_threshold_refusal(
        &server,
        "targets with 10k bad signatures",
        &[("targets", &flooded)],
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    )
    .await;

    // Control: the real signature first, then the flood. Go accepts this (one valid
    // signature meets threshold 1) and so do we, without trying the rest.
    let before = server.dump().await;
    let good_first = swizzle::modify_signatures(&targets, |s| s.extend(garbage(&keyid, FLOOD)));
    let start = Instant::now();
    let r = server.post(&[("targets", &good_first)]).await;
    eprintln!(
        "valid signature + 10k bad ones: answered {} in {:?}",
        r.status,
        start.elapsed()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after = server.dump().await;
    assert_ne!(after, before);
    let current = server.store.get_latest(GUN, "targets").await.unwrap();
    assert_eq!(current.unwrap().data, good_first);
}

#[actix_web::test]
async fn root_flooded_with_bad_signatures_is_a_threshold_failure() {
    let (mut repo, server, _) = published().await;
    repo.root.common.version += 1;
    let root = repo.root_file();
    let keyid = repo.role_key("root").key_id();
    let flooded = swizzle::modify_signatures(&root, |s| *s = garbage(&keyid, FLOOD));
    assert_threshold_refusal(
        &server,
        "root with 10k bad signatures",
        &[("root", &flooded)],
        "ErrBadRoot",
        "could not rotate trust to a new trusted root: failed to validate data with current trusted certificates",
    )
    .await;
}
