//! Hostile uploads through the HTTP app: every attack is refused with the right status and
//! error code, and the stored state is exactly what it was before (every row, every
//! changefeed record), on the memory store and on SQLite.
//!
//! Each attack starts from a repository with history (root v1, targets v1 then v2, client
//! snapshots v1 and v2), so replays of older, validly signed files are possible. Where an
//! attack depends on one detail (a missing signature, a swapped key), a control upload that
//! differs only in that detail is accepted, so the refusal is known to come from the
//! detail under test.

mod http_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::test::TestRequest;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use http_support::{call, multipart, Reply};
use notary_server::http::AppState;
use notary_server::storage::{MemoryStore, MetaStore, SqlStore};
use notary_tuf::crypto::CryptoService;
use notary_tuf::keys::{KeyType, PrivateKey, PublicKey};
use notary_tuf::metadata::RootRole;
use notary_tuf::test_support::{
    self_signed_cert, sign_envelope, swizzle, x509_key, CertOptions, RepoFiles, TestRepo,
};
use serde_json::Value;

const GUN: &str = "docker.io/hostile/app";
const BOUNDARY: &str = "HostileBoundary";

/// Every role name an attack in this file can touch.
const ROLES: [&str; 7] = [
    "root",
    "targets",
    "snapshot",
    "timestamp",
    "targets/releases",
    "targets/other",
    "targets/nobody",
];

/// One server (store + signer) under attack.
struct Server {
    store: Arc<dyn MetaStore>,
    crypto: Arc<dyn CryptoService>,
    /// SQLite file, when the store is SQLite (raw rows are compared too).
    sqlite: Option<PathBuf>,
    max_request_bytes: Option<u64>,
    _dir: Option<tempfile::TempDir>,
}

/// Everything a server has stored, as seen through the store API and (on SQLite) directly
/// in the tables.
#[derive(Debug, PartialEq)]
struct Dump {
    /// (role, version, sha256) of every row reachable through `get_version`.
    rows: Vec<(String, i64, String)>,
    /// Latest row per role.
    latest: Vec<(String, Option<i64>)>,
    /// Every changefeed record (all GUNs).
    changes: Vec<(i64, String, i64, String, String)>,
    /// Raw `tuf_files` and `changefeed` rows (SQLite only).
    raw: Vec<String>,
}

#[derive(QueryableByName)]
struct RawFile {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    gun: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    role: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    sha256: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    data: Vec<u8>,
}

#[derive(QueryableByName)]
struct RawChange {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    gun: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    sha256: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    category: String,
}

impl Server {
    fn memory(crypto: Arc<dyn CryptoService>) -> Server {
        Server {
            store: Arc::new(MemoryStore::new()),
            crypto,
            sqlite: None,
            max_request_bytes: None,
            _dir: None,
        }
    }

    fn sqlite(crypto: Arc<dyn CryptoService>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let store = SqlStore::open_sqlite(&path).unwrap();
        store.run_migrations().unwrap();
        Server {
            store: Arc::new(store),
            crypto,
            sqlite: Some(path),
            max_request_bytes: None,
            _dir: Some(dir),
        }
    }

    /// Both backends, each with the signer `crypto` makes.
    fn both(crypto: impl Fn() -> Arc<dyn CryptoService>) -> Vec<Server> {
        vec![Server::memory(crypto()), Server::sqlite(crypto())]
    }

    fn name(&self) -> &'static str {
        if self.sqlite.is_some() {
            "sqlite"
        } else {
            "memory"
        }
    }

    fn state(&self) -> AppState {
        let mut state = AppState::new(self.store.clone(), self.crypto.clone(), KeyType::Ecdsa);
        if let Some(limit) = self.max_request_bytes {
            state.max_request_bytes = limit;
        }
        state
    }

    async fn send(&self, req: TestRequest) -> Reply {
        call(self.state(), req).await
    }

    async fn post(&self, parts: &[(&str, &[u8])]) -> Reply {
        self.send(upload_request(parts)).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/{path}")))
            .await
    }

    /// Publishes and insists on success.
    async fn publish(&self, parts: &[(&str, &[u8])]) {
        let r = self.post(parts).await;
        assert_eq!(
            r.status,
            200,
            "{}: publish refused: {}",
            self.name(),
            r.text()
        );
    }

    async fn dump(&self) -> Dump {
        let mut rows = Vec::new();
        let mut latest = Vec::new();
        for role in ROLES {
            let top = self.store.get_latest(GUN, role).await.unwrap();
            let max = top.as_ref().map(|f| f.version);
            latest.push((role.to_string(), max));
            for v in 1..=max.unwrap_or(0).clamp(0, 1000) {
                if let Some(f) = self.store.get_version(GUN, role, v).await.unwrap() {
                    rows.push((role.to_string(), v, f.sha256));
                }
            }
        }
        let changes = self
            .store
            .get_changes(0, 10_000, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.gun, c.version, c.sha256, c.category))
            .collect();
        let raw = match &self.sqlite {
            Some(path) => raw_rows(path),
            None => Vec::new(),
        };
        Dump {
            rows,
            latest,
            changes,
            raw,
        }
    }

    /// Sends `parts`, expects `status`/`code` (and the validation kind when given), and
    /// checks nothing stored changed.
    async fn refused(
        &self,
        what: &str,
        parts: &[(&str, &[u8])],
        status: u16,
        code: &str,
        kind: Option<&str>,
    ) -> Reply {
        self.refused_request(what, upload_request(parts), status, code, kind)
            .await
    }

    async fn refused_request(
        &self,
        what: &str,
        req: TestRequest,
        status: u16,
        code: &str,
        kind: Option<&str>,
    ) -> Reply {
        let before = self.dump().await;
        let r = self.send(req).await;
        let ctx = format!("{} / {what}: {} {}", self.name(), r.status, r.text());
        assert_eq!(r.status, status, "{ctx}");
        assert_eq!(r.code(), code, "{ctx}");
        if let Some(kind) = kind {
            assert_eq!(
                r.json()["errors"][0]["detail"]["Name"].as_str(),
                Some(kind),
                "{ctx}"
            );
        }
        let after = self.dump().await;
        assert_eq!(before, after, "{ctx}: stored state changed");
        r
    }
}

/// Every row of both tables, rendered for comparison (data as its length and hash, since
/// `sha256` is computed by the store and could itself be wrong).
fn raw_rows(path: &std::path::Path) -> Vec<String> {
    let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let files: Vec<RawFile> =
        diesel::sql_query("SELECT id, gun, role, version, sha256, data FROM tuf_files ORDER BY id")
            .load(&mut conn)
            .unwrap();
    let changes: Vec<RawChange> =
        diesel::sql_query("SELECT id, gun, version, sha256, category FROM changefeed ORDER BY id")
            .load(&mut conn)
            .unwrap();
    let mut out: Vec<String> = files
        .into_iter()
        .map(|f| {
            format!(
                "file {} {} {} v{} {:?} {} bytes {}",
                f.id,
                f.gun,
                f.role,
                f.version,
                f.sha256,
                f.data.len(),
                http_support::sha256_hex(&f.data)
            )
        })
        .collect();
    out.extend(changes.into_iter().map(|c| {
        format!(
            "change {} {} v{} {:?} {}",
            c.id, c.gun, c.version, c.sha256, c.category
        )
    }));
    out
}

fn upload_request(parts: &[(&str, &[u8])]) -> TestRequest {
    http_support::upload_request(GUN, BOUNDARY, parts)
}

/// The repository after two publishes, with both versions' files kept for replays.
struct History {
    repo: TestRepo,
    v1: RepoFiles,
    v2: RepoFiles,
}

/// Publishes v1 (root, targets, snapshot) and v2 (targets, snapshot) of `repo`.
async fn with_history(server: &Server, mut repo: TestRepo) -> History {
    repo.add_target("targets", "app-v1", b"first release");
    let v1 = repo.build();
    let mut parts: Vec<(&str, &[u8])> = vec![("root", &v1.root)];
    for (role, bytes) in &v1.targets {
        parts.push((role, bytes));
    }
    parts.push(("snapshot", &v1.snapshot));
    server.publish(&parts).await;

    repo.add_target("targets", "app-v2", b"second release");
    repo.bump_targets("targets");
    repo.snapshot_common.version += 1;
    let v2 = files_over(&repo, &v1.root);
    server
        .publish(&[
            ("targets", v2.get("targets").unwrap()),
            ("snapshot", &v2.snapshot),
        ])
        .await;
    History { repo, v1, v2 }
}

/// `repo`'s targets roles, snapshot and timestamp, signed over an already stored root. Root
/// signatures are randomised, so re-signing the root would give other bytes than the
/// stored ones, and a snapshot over those would not match the server's root.
fn files_over(repo: &TestRepo, root: &[u8]) -> RepoFiles {
    let targets: BTreeMap<String, Vec<u8>> = repo
        .targets
        .keys()
        .map(|r| (r.clone(), repo.targets_file(r)))
        .collect();
    let snapshot = repo.snapshot_file(root, &targets);
    let timestamp = repo.timestamp_file(&snapshot);
    RepoFiles {
        root: root.to_vec(),
        targets,
        snapshot,
        timestamp,
    }
}

/// Signers holding `repo`'s snapshot and timestamp keys.
fn crypto_for(repo: &TestRepo) -> impl Fn() -> Arc<dyn CryptoService> + '_ {
    move || Arc::new(repo.server_crypto()) as Arc<dyn CryptoService>
}

/// The next targets version signed by the given keys (listed public, private).
fn targets_signed_by(
    repo: &TestRepo,
    role: &str,
    signers: &[(&PublicKey, &PrivateKey)],
) -> Vec<u8> {
    sign_envelope(&repo.targets[role].to_signed_value(), signers)
}

/// A snapshot (next version, client key) over the root and the given targets-role bytes.
fn snapshot_over(repo: &TestRepo, root: &[u8], targets: &[(&str, &[u8])]) -> Vec<u8> {
    let map: BTreeMap<String, Vec<u8>> = targets
        .iter()
        .map(|(r, b)| (r.to_string(), b.to_vec()))
        .collect();
    repo.snapshot_file(root, &map)
}

fn new_root_key(gun: &str) -> (PublicKey, PrivateKey) {
    let private = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let public = x509_key(&[self_signed_cert(
        &private,
        &CertOptions::leaf(gun, Utc::now() - Duration::minutes(1)),
    )]);
    (public, private)
}

#[actix_web::test]
async fn rollback_to_an_older_validly_signed_version_is_refused() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let h = with_history(&server, repo.clone()).await;
        // The v1 files are genuine, signed by the right keys, and consistent.
        server
            .refused(
                "replay targets v1 + snapshot v1",
                &[
                    ("targets", h.v1.get("targets").unwrap()),
                    ("snapshot", &h.v1.snapshot),
                ],
                400,
                "VERSION",
                None,
            )
            .await;
        server
            .refused(
                "replay targets v1 alone (server snapshot)",
                &[("targets", h.v1.get("targets").unwrap())],
                400,
                "VERSION",
                None,
            )
            .await;
        server
            .refused(
                "replay the full v1 upload",
                &[
                    ("root", &h.v1.root),
                    ("targets", h.v1.get("targets").unwrap()),
                    ("snapshot", &h.v1.snapshot),
                ],
                400,
                "VERSION",
                None,
            )
            .await;
        server
            .refused(
                "replay the current v2 upload",
                &[
                    ("targets", h.v2.get("targets").unwrap()),
                    ("snapshot", &h.v2.snapshot),
                ],
                400,
                "VERSION",
                None,
            )
            .await;
        // Rolling the snapshot back alone (root and targets unchanged): old snapshot version.
        server
            .refused(
                "replay snapshot v1 alone",
                &[("snapshot", &h.v1.snapshot)],
                400,
                "VERSION",
                None,
            )
            .await;
    }
}

#[actix_web::test]
async fn mix_and_match_snapshot_naming_old_targets_is_refused() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        h.repo.add_target("targets", "app-v3", b"third release");
        h.repo.bump_targets("targets");
        h.repo.snapshot_common.version += 1;
        let v3 = files_over(&h.repo, &h.v1.root);
        // A correctly signed snapshot v3 that lists targets v2 (or v1) next to targets v3.
        for (label, old) in [("v2", &h.v2), ("v1", &h.v1)] {
            let stale = snapshot_over(
                &h.repo,
                &v3.root,
                &[("targets", old.get("targets").unwrap())],
            );
            server
                .refused(
                    &format!("targets v3 with a snapshot naming targets {label}"),
                    &[
                        ("targets", v3.get("targets").unwrap()),
                        ("snapshot", &stale),
                    ],
                    400,
                    "INVALID_UPDATE",
                    Some("ErrBadSnapshot"),
                )
                .await;
        }
        // The stored snapshot v2 (validly signed, names targets v2) next to targets v3.
        server
            .refused(
                "targets v3 with the stored snapshot v2",
                &[
                    ("targets", v3.get("targets").unwrap()),
                    ("snapshot", &h.v2.snapshot),
                ],
                400,
                "INVALID_UPDATE",
                Some("ErrBadSnapshot"),
            )
            .await;
        // A snapshot naming a root other than the current one.
        let mut other = h.repo.clone();
        other.root.common.version += 5;
        let wrong_root = snapshot_over(
            &h.repo,
            &other.root_file(),
            &[("targets", v3.get("targets").unwrap())],
        );
        server
            .refused(
                "snapshot naming a root that is not stored",
                &[
                    ("targets", v3.get("targets").unwrap()),
                    ("snapshot", &wrong_root),
                ],
                400,
                "INVALID_UPDATE",
                Some("ErrBadSnapshot"),
            )
            .await;
        // Control: the consistent v3 is accepted.
        server
            .publish(&[
                ("targets", v3.get("targets").unwrap()),
                ("snapshot", &v3.snapshot),
            ])
            .await;
    }
}

#[actix_web::test]
async fn role_signed_with_another_roles_key_is_refused() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        h.repo.bump_targets("targets");
        h.repo.snapshot_common.version += 1;
        let root = h.v1.root.clone();
        let snapshot_pub = h.repo.snapshot_key.public_key();
        let targets_pub = h.repo.targets_key.public_key();
        let timestamp_pub = h.repo.timestamp_key.public_key();

        // targets signed by the snapshot key, and by the timestamp key.
        for (label, public, private) in [
            ("snapshot", &snapshot_pub, &h.repo.snapshot_key),
            ("timestamp", &timestamp_pub, &h.repo.timestamp_key),
        ] {
            let forged = targets_signed_by(&h.repo, "targets", &[(public, private)]);
            let snap = snapshot_over(&h.repo, &root, &[("targets", &forged)]);
            server
                .refused(
                    &format!("targets signed by the {label} key"),
                    &[("targets", &forged), ("snapshot", &snap)],
                    400,
                    "INVALID_UPDATE",
                    Some("ErrBadTargets"),
                )
                .await;
        }
        // Signed by the snapshot key but labelled with the targets key ID.
        let relabelled = swizzle::set_signature_keyid(
            &targets_signed_by(&h.repo, "targets", &[(&snapshot_pub, &h.repo.snapshot_key)]),
            &targets_pub.key_id(),
        );
        let snap = snapshot_over(&h.repo, &root, &[("targets", &relabelled)]);
        server
            .refused(
                "targets signed by the snapshot key under the targets key ID",
                &[("targets", &relabelled), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;
        // A snapshot signed with the targets key.
        let good_targets = h.repo.targets_file("targets");
        let snapshot_value = h
            .repo
            .snapshot_value(
                &root,
                &[("targets".to_string(), good_targets.clone())].into(),
            )
            .to_signed_value();
        let bad_snap = sign_envelope(&snapshot_value, &[(&targets_pub, &h.repo.targets_key)]);
        server
            .refused(
                "snapshot signed by the targets key",
                &[("targets", &good_targets), ("snapshot", &bad_snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadSnapshot"),
            )
            .await;
        // Control: the right keys.
        let good_snap = snapshot_over(&h.repo, &root, &[("targets", &good_targets)]);
        server
            .publish(&[("targets", &good_targets), ("snapshot", &good_snap)])
            .await;
    }
}

/// Raises the targets role to threshold 2 over (targets key, `second`) in a root v2.
fn targets_threshold_two(repo: &mut TestRepo, second: &PrivateKey) {
    let public = second.public_key();
    let id = public.key_id();
    repo.root.keys.insert(id.clone(), public);
    let role = repo.root.roles.get_mut("targets").unwrap();
    role.keyids.push(id);
    role.threshold = 2;
    repo.root.common.version += 1;
}

#[actix_web::test]
async fn threshold_not_met_and_duplicate_signatures_are_refused() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        let second = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        targets_threshold_two(&mut h.repo, &second);
        h.repo.bump_targets("targets");
        h.repo.snapshot_common.version += 1;
        let root = h.repo.root_file();
        let first_pub = h.repo.targets_key.public_key();
        let second_pub = second.public_key();

        let one = targets_signed_by(&h.repo, "targets", &[(&first_pub, &h.repo.targets_key)]);
        let snap = snapshot_over(&h.repo, &root, &[("targets", &one)]);
        server
            .refused(
                "threshold 2, one signature",
                &[("root", &root), ("targets", &one), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;

        // The same key signing twice is still one key.
        let twice = swizzle::duplicate_signatures(&one);
        assert_eq!(
            notary_tuf::SignedFile::parse(&twice)
                .unwrap()
                .signatures
                .len(),
            2
        );
        let snap = snapshot_over(&h.repo, &root, &[("targets", &twice)]);
        server
            .refused(
                "threshold 2, one key signing twice",
                &[("root", &root), ("targets", &twice), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;

        // A second signature computed by the same key (a separate signing call) is still
        // the same key.
        let other_sig = targets_signed_by(&h.repo, "targets", &[(&first_pub, &h.repo.targets_key)]);
        let two_sigs_one_key = swizzle::modify_signatures(&one, |sigs| {
            let extra = notary_tuf::SignedFile::parse(&other_sig)
                .unwrap()
                .signatures;
            sigs.extend(extra);
        });
        let snap = snapshot_over(&h.repo, &root, &[("targets", &two_sigs_one_key)]);
        server
            .refused(
                "threshold 2, two signing calls by one key",
                &[
                    ("root", &root),
                    ("targets", &two_sigs_one_key),
                    ("snapshot", &snap),
                ],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;

        // Control: both keys.
        let both = targets_signed_by(
            &h.repo,
            "targets",
            &[(&first_pub, &h.repo.targets_key), (&second_pub, &second)],
        );
        let snap = snapshot_over(&h.repo, &root, &[("targets", &both)]);
        server
            .publish(&[("root", &root), ("targets", &both), ("snapshot", &snap)])
            .await;
    }
}

#[actix_web::test]
async fn root_threshold_counts_distinct_keys() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        // Root v2 lists two root keys with threshold 2.
        let (second_pub, second_priv) = new_root_key(GUN);
        let id = second_pub.key_id();
        h.repo.root.keys.insert(id.clone(), second_pub.clone());
        let role: &mut RootRole = h.repo.root.roles.get_mut("root").unwrap();
        role.keyids.push(id);
        role.threshold = 2;
        h.repo.root.common.version += 1;
        let only_first = h.repo.root_file();
        server
            .refused(
                "root threshold 2, one signature",
                &[("root", &only_first)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadRoot"),
            )
            .await;
        let twice = swizzle::duplicate_signatures(&only_first);
        server
            .refused(
                "root threshold 2, the same key twice",
                &[("root", &twice)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadRoot"),
            )
            .await;
        // Control.
        h.repo.root_signers.push((second_pub, second_priv));
        server.publish(&[("root", &h.repo.root_file())]).await;
    }
}

#[actix_web::test]
async fn root_rotation_not_signed_by_the_old_root_is_refused() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        h.repo.rotate_root_key();
        let old_signer = h.repo.root_signers.remove(0);
        let new_only = h.repo.root_file();
        server
            .refused(
                "root v2 signed by the new key only",
                &[("root", &new_only)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadRoot"),
            )
            .await;
        // An attacker's own certificate for the GUN, self-consistent but unknown to v1.
        let mut attacker = h.repo.clone();
        let (pub_a, priv_a) = new_root_key(GUN);
        attacker.root_signers = vec![(pub_a.clone(), priv_a)];
        attacker.set_role_key("root", pub_a);
        attacker.root.common.version = 2;
        server
            .refused(
                "root v2 from an attacker's key",
                &[("root", &attacker.root_file())],
                400,
                "INVALID_UPDATE",
                Some("ErrBadRoot"),
            )
            .await;
        // Control: old and new keys sign.
        h.repo.root_signers.insert(0, old_signer);
        server.publish(&[("root", &h.repo.root_file())]).await;
    }
}

#[actix_web::test]
async fn delegation_key_cannot_sign_for_a_role_it_does_not_have() {
    let mut repo = TestRepo::new(GUN);
    let releases_key = repo.add_delegation("targets", "targets/releases", &[""]);
    let other_key = repo.add_delegation("targets", "targets/other", &["other/"]);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        let root = h.v1.root.clone();
        let releases_pub = releases_key.public_key();
        let other_pub = other_key.public_key();
        let targets_now = h.v2.get("targets").unwrap().to_vec();

        h.repo.add_target("targets/other", "other/x", b"x");
        h.repo.bump_targets("targets/other");
        h.repo.snapshot_common.version += 1;
        // targets/other signed with the releases key (delegated, but for another role).
        let forged = targets_signed_by(&h.repo, "targets/other", &[(&releases_pub, &releases_key)]);
        let snap = snapshot_over(
            &h.repo,
            &root,
            &[
                ("targets", &targets_now),
                ("targets/releases", h.v2.get("targets/releases").unwrap()),
                ("targets/other", &forged),
            ],
        );
        server
            .refused(
                "targets/other signed by the releases key",
                &[("targets/other", &forged), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;

        // The releases key signing the top-level targets role.
        h.repo.bump_targets("targets");
        let forged_top = targets_signed_by(&h.repo, "targets", &[(&releases_pub, &releases_key)]);
        let snap = snapshot_over(&h.repo, &root, &[("targets", &forged_top)]);
        server
            .refused(
                "targets signed by a delegation key",
                &[("targets", &forged_top), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;

        // A role nobody delegated, signed by a delegation key.
        let mut rogue = h.repo.clone();
        rogue.targets.insert(
            "targets/nobody".into(),
            rogue.targets["targets/other"].clone(),
        );
        let nobody = targets_signed_by(&rogue, "targets/nobody", &[(&releases_pub, &releases_key)]);
        server
            .refused(
                "undelegated targets/nobody",
                &[("targets/nobody", &nobody)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadTargets"),
            )
            .await;

        // Control: targets/other signed by its own key.
        let good = targets_signed_by(&h.repo, "targets/other", &[(&other_pub, &other_key)]);
        let snap = snapshot_over(
            &h.repo,
            &root,
            &[
                ("targets", &targets_now),
                ("targets/releases", h.v2.get("targets/releases").unwrap()),
                ("targets/other", &good),
            ],
        );
        server
            .publish(&[("targets/other", &good), ("snapshot", &snap)])
            .await;
    }
}

/// A change to a `signed` value.
type Edit = Box<dyn FnOnce(&mut Value)>;

/// Re-signs `repo`'s next targets after `change` alters its signed value (so the signature
/// is valid and only the content is hostile), with a matching client snapshot.
fn resigned_targets(
    repo: &TestRepo,
    root: &[u8],
    change: impl FnOnce(&mut Value),
) -> (Vec<u8>, Vec<u8>) {
    let mut value = repo.targets["targets"].to_signed_value();
    change(&mut value);
    let public = repo.targets_key.public_key();
    let targets = sign_envelope(&value, &[(&public, &repo.targets_key)]);
    let snapshot = snapshot_over(repo, root, &[("targets", &targets)]);
    (targets, snapshot)
}

#[actix_web::test]
async fn wrong_type_expired_and_out_of_range_versions_are_refused() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        h.repo.bump_targets("targets");
        h.repo.snapshot_common.version += 1;

        let cases: Vec<(&str, Edit)> = vec![
            (
                "targets with _type Snapshot",
                Box::new(|v| v["_type"] = "Snapshot".into()),
            ),
            (
                "targets with _type Root",
                Box::new(|v| v["_type"] = "Root".into()),
            ),
            (
                "targets with lower-case _type",
                Box::new(|v| v["_type"] = "targets".into()),
            ),
            (
                "expired targets",
                Box::new(|v| {
                    v["expires"] =
                        notary_tuf::metadata::format_expires(&(Utc::now() - Duration::hours(1)))
                            .into()
                }),
            ),
            (
                "targets version -1",
                Box::new(|v| v["version"] = (-1).into()),
            ),
            ("targets version 0", Box::new(|v| v["version"] = 0.into())),
            (
                "targets version -2^52",
                Box::new(|v| v["version"] = (-(1i64 << 52)).into()),
            ),
        ];
        for (what, change) in cases {
            let (targets, snapshot) = resigned_targets(&h.repo, &h.v1.root, change);
            server
                .refused(
                    what,
                    &[("targets", &targets), ("snapshot", &snapshot)],
                    400,
                    "INVALID_UPDATE",
                    Some("ErrBadTargets"),
                )
                .await;
        }

        // Versions the storage column (32-bit, like Go's schema) cannot hold: a client
        // error, not a server failure.
        for version in [1i64 << 31, 1 << 40, 1 << 53] {
            let (targets, snapshot) =
                resigned_targets(&h.repo, &h.v1.root, |v| v["version"] = version.into());
            server
                .refused(
                    &format!("targets version {version}"),
                    &[("targets", &targets), ("snapshot", &snapshot)],
                    400,
                    "INVALID_UPDATE",
                    Some("ErrBadTargets"),
                )
                .await;
        }
        let mut big_snapshot = h.repo.clone();
        big_snapshot.snapshot_common.version = 1 << 31;
        let targets = big_snapshot.targets_file("targets");
        let snap = snapshot_over(&big_snapshot, &h.v1.root, &[("targets", &targets)]);
        server
            .refused(
                "snapshot version 2^31",
                &[("targets", &targets), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadSnapshot"),
            )
            .await;

        // Expired snapshot, wrong-typed snapshot, expired root, wrong-typed root.
        let targets = h.repo.targets_file("targets");
        let mut expired = h.repo.clone();
        expired.snapshot_common.expires = Utc::now() - Duration::seconds(5);
        let snap = snapshot_over(&expired, &h.v1.root, &[("targets", &targets)]);
        server
            .refused(
                "expired snapshot",
                &[("targets", &targets), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadSnapshot"),
            )
            .await;
        let mut typed = h.repo.clone();
        typed.snapshot_common.type_ = "Timestamp".into();
        let snap = snapshot_over(&typed, &h.v1.root, &[("targets", &targets)]);
        server
            .refused(
                "snapshot with _type Timestamp",
                &[("targets", &targets), ("snapshot", &snap)],
                400,
                "INVALID_UPDATE",
                Some("ErrBadSnapshot"),
            )
            .await;
        let mut old_root = h.repo.clone();
        old_root.root.common.version += 1;
        old_root.root.common.expires = Utc::now() - Duration::seconds(5);
        server
            .refused(
                "expired root v2",
                &[("root", &old_root.root_file())],
                400,
                "INVALID_UPDATE",
                Some("ErrBadRoot"),
            )
            .await;
        let mut typed_root = h.repo.clone();
        typed_root.root.common.version += 1;
        typed_root.root.common.type_ = "Targets".into();
        server
            .refused(
                "root with _type Targets",
                &[("root", &typed_root.root_file())],
                400,
                "INVALID_UPDATE",
                Some("ErrBadRoot"),
            )
            .await;
        for version in [-1i64, 0, 1 << 31] {
            let mut r = h.repo.clone();
            r.root.common.version = version;
            server
                .refused(
                    &format!("root version {version}"),
                    &[("root", &r.root_file())],
                    400,
                    "INVALID_UPDATE",
                    Some("ErrBadRoot"),
                )
                .await;
        }

        // Control: the same next version, unaltered.
        let (targets, snapshot) = resigned_targets(&h.repo, &h.v1.root, |_| {});
        server
            .publish(&[("targets", &targets), ("snapshot", &snapshot)])
            .await;
    }
}

#[actix_web::test]
async fn malformed_bodies_are_refused_without_touching_storage() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let h = with_history(&server, repo.clone()).await;
        let targets = h.v2.get("targets").unwrap();

        // 100k nested arrays, as a whole part and inside `signed`.
        let deep = "[".repeat(100_000);
        server
            .refused(
                "100k '['",
                &[("targets", deep.as_bytes())],
                400,
                "MALFORMED_JSON",
                None,
            )
            .await;
        let deep_signed = format!(
            "{{\"signed\":{{\"_type\":\"Targets\",\"x\":{}{}}},\"signatures\":[]}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        server
            .refused(
                "100k nesting inside signed",
                &[("targets", deep_signed.as_bytes())],
                400,
                "MALFORMED_JSON",
                None,
            )
            .await;
        let deep_objects = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
        server
            .refused(
                "50k nested objects",
                &[("targets", deep_objects.as_bytes())],
                400,
                "MALFORMED_JSON",
                None,
            )
            .await;

        // Invalid UTF-8 inside a JSON string of an otherwise valid file.
        let mut bad_utf8 = targets.to_vec();
        let pos = bad_utf8
            .windows(8)
            .position(|w| w == b"\"Targets")
            .expect("targets file names its type");
        bad_utf8[pos + 2] = 0xff;
        server
            .refused(
                "invalid UTF-8 in a string",
                &[("targets", &bad_utf8)],
                400,
                "MALFORMED_JSON",
                None,
            )
            .await;
        server
            .refused(
                "lone surrogate escape",
                &[(
                    "targets",
                    br#"{"signed":{"_type":"\ud800"},"signatures":[]}"#,
                )],
                400,
                "MALFORMED_JSON",
                None,
            )
            .await;

        // Invalid UTF-8 in the filename parameter: not a valid role.
        let body = {
            let mut b = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets/"
            )
            .into_bytes();
            b.extend_from_slice(&[0xc3, 0xff]);
            b.extend_from_slice(b"\"\r\n\r\n");
            b.extend_from_slice(targets);
            b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            b
        };
        let before = server.dump().await;
        let r = server
            .send(
                TestRequest::post()
                    .uri(&format!("/v2/{GUN}/_trust/tuf/"))
                    .insert_header((
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    ))
                    .set_payload(body),
            )
            .await;
        assert_eq!(r.status, 400, "invalid UTF-8 filename: {}", r.text());
        assert!(
            ["NO_FILENAME", "INVALID_ROLE", "MALFORMED_UPLOAD"].contains(&r.code().as_str()),
            "{}",
            r.text()
        );
        assert_eq!(before, server.dump().await);

        // A GUN that is not UTF-8 once percent-decoded.
        let before = server.dump().await;
        let r = server
            .send(
                TestRequest::post()
                    .uri("/v2/docker.io/%ff%fe/_trust/tuf/")
                    .insert_header((
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    ))
                    .set_payload(multipart(
                        BOUNDARY,
                        &[("form-data; name=\"files\"; filename=\"targets\"", targets)],
                    )),
            )
            .await;
        assert!(
            (400..500).contains(&r.status),
            "non-UTF-8 GUN: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(before, server.dump().await);
    }
}

#[actix_web::test]
async fn oversized_bodies_are_413() {
    let repo = TestRepo::new(GUN);
    let mut servers = Server::both(crypto_for(&repo));
    for server in &mut servers {
        let h = with_history(server, repo.clone()).await;
        let targets = h.v2.get("targets").unwrap();

        // A declared length above the default limit (100 MiB) is refused before reading.
        let req = upload_request(&[("targets", targets)])
            .insert_header(("content-length", (200u64 << 20).to_string()));
        let r = server
            .refused_request("declared 200 MiB", req, 413, "REQUEST_TOO_LARGE", None)
            .await;
        assert_eq!(r.json()["errors"][0]["detail"]["limit"], 100u64 << 20);

        // A real body one byte over a configured limit.
        let limit = 64 * 1024;
        server.max_request_bytes = Some(limit);
        let filler = vec![b' '; limit as usize];
        let mut padded = targets.to_vec();
        padded.extend_from_slice(&filler);
        let req = upload_request(&[("targets", &padded)]);
        server
            .refused_request("body over the limit", req, 413, "REQUEST_TOO_LARGE", None)
            .await;
        server.max_request_bytes = None;
    }
}

#[actix_web::test]
async fn an_uploaded_timestamp_cannot_freeze_or_fork_the_repository() {
    let repo = TestRepo::new(GUN);
    for server in Server::both(crypto_for(&repo)) {
        let mut h = with_history(&server, repo.clone()).await;
        // A client-made timestamp with a far expiry and a high version rides along with a
        // valid update: the server ignores it and signs its own.
        h.repo.bump_targets("targets");
        h.repo.snapshot_common.version += 1;
        h.repo.timestamp_common.version = 1 << 40;
        h.repo.timestamp_common.expires = Utc::now() + Duration::days(3650);
        let v3 = files_over(&h.repo, &h.v1.root);
        server
            .publish(&[
                ("targets", v3.get("targets").unwrap()),
                ("snapshot", &v3.snapshot),
                ("timestamp", &v3.timestamp),
            ])
            .await;
        let ts = server.get("timestamp.json").await;
        assert_eq!(ts.status, 200);
        assert_ne!(ts.body, v3.timestamp);
        let signed = &ts.json()["signed"];
        assert_eq!(signed["version"], 3, "server counts its own versions");
        let expires =
            notary_tuf::metadata::parse_expires(signed["expires"].as_str().unwrap()).unwrap();
        assert!(expires < Utc::now() + Duration::days(15));
        // It is signed by the server's timestamp key.
        let file = notary_tuf::SignedFile::parse(&ts.body).unwrap();
        assert_eq!(
            file.signatures[0].keyid,
            h.repo.timestamp_key.public_key().key_id()
        );
    }
}

/// Issue 13 (2): a body of very many small parts made the role deduplication quadratic
/// (10^12 comparisons for 1.6 M parts, still running after the 408). Parts and distinct
/// delegation roles per upload are now bounded, and the first part over a limit is refused
/// with 413 and the limit in the detail.
#[actix_web::test]
async fn too_many_parts_or_delegations_are_413() {
    let repo = TestRepo::new(GUN);
    let mut servers = Server::both(crypto_for(&repo));
    for server in &mut servers {
        with_history(server, repo.clone()).await;
        let empty: &[u8] = b"{}";

        // Repeats of one role count as parts (the last would win).
        let parts = vec![("targets/releases", empty); 5_001];
        let r = server
            .refused("5001 parts", &parts, 413, "TOO_MANY_PARTS", None)
            .await;
        assert_eq!(
            r.json()["errors"][0]["detail"],
            serde_json::json!({"limit": 5000})
        );
        assert!(r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("max_upload_parts"));

        let names: Vec<String> = (0..2_001).map(|i| format!("targets/d{i}")).collect();
        let parts: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), empty)).collect();
        let r = server
            .refused(
                "2001 delegations",
                &parts,
                413,
                "TOO_MANY_DELEGATIONS",
                None,
            )
            .await;
        assert_eq!(
            r.json()["errors"][0]["detail"],
            serde_json::json!({"limit": 2000})
        );
        assert!(r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("max_upload_delegations"));
    }
}

/// Issue 13 (3): a part of `[0,0,...]` inside `signed` decoded into about 16 bytes of
/// memory per input byte, three times over (check, parse, clone of `signed`). A part may
/// hold one JSON value per 8 bytes (plus 4096); denser parts are refused while streaming,
/// before anything is decoded.
#[actix_web::test]
async fn absurdly_dense_json_is_413() {
    let repo = TestRepo::new(GUN);
    let servers = Server::both(crypto_for(&repo));
    for server in &servers {
        let h = with_history(server, repo.clone()).await;
        let zeros = vec!["0"; 500_000].join(",");
        let dense = format!(
            r#"{{"signed":{{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":3,"x":[{zeros}]}},"signatures":[]}}"#
        );
        let limit = dense.len() / 8 + 4096;
        let r = server
            .refused(
                "zeros in signed",
                &[("targets", dense.as_bytes())],
                413,
                "TOO_MANY_JSON_VALUES",
                None,
            )
            .await;
        assert_eq!(
            r.json()["errors"][0]["detail"],
            serde_json::json!({"role": "targets", "limit": limit})
        );
        // The whole part one array: MALFORMED_JSON as before, but now at its first byte
        // (it used to be decoded in full first).
        let bare = format!("[{zeros}]");
        server
            .refused(
                "bare array of zeros",
                &[("root", bare.as_bytes())],
                400,
                "MALFORMED_JSON",
                None,
            )
            .await;
        // Real files are far below the bound: a replay of history's targets is refused for
        // its version, as before, not for its shape.
        let targets = h.v2.get("targets").unwrap();
        let r = server.post(&[("targets", targets)]).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "VERSION"),
            "{}",
            r.text()
        );
    }
}
