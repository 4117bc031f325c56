//! The verification logic against an in-memory log built with notary-tlog: real trees, real
//! Ed25519-signed checkpoints, real proofs, and a server that can be made to lie.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use notary_log::consistency::ConsistencyError;
use notary_log::source::{encode_hashes, ConsistencyResponse, ProofResponse};
use notary_log::{
    monitor, parse_key_arg, verify_consistency, verify_gun, EntryProblem, FetchError,
    InclusionOptions, LeafQuery, LogSource, MonitorError, MonitorOptions, RoleOutcome,
};
use notary_tlog::tiles::TILE_WIDTH;
use notary_tlog::{
    prove_consistency, prove_inclusion, Checkpoint, Ed25519NoteSigner, EntryBundle, LeafRecord,
    MemoryHashStore, NoteKey,
};

const ORIGIN: &str = "notary.example.com/log";
const GUN: &str = "docker.io/library/app";

fn key(seed: u8) -> NoteKey {
    let signer = Ed25519NoteSigner::from_seed([seed; 32]);
    NoteKey::new(ORIGIN, signer.public_key()).unwrap()
}

fn no_retry() -> InclusionOptions {
    InclusionOptions {
        not_found_retries: 0,
        retry_delay: Duration::ZERO,
    }
}

/// A TUF-looking metadata file.
fn meta(role: &str, version: u64, salt: &str) -> Vec<u8> {
    format!(
        r#"{{"signed":{{"_type":"{role}","version":{version},"salt":"{salt}"}},"signatures":[]}}"#
    )
    .into_bytes()
}

fn snapshot(version: u64, delegations: &[&str]) -> Vec<u8> {
    let mut meta = serde_json::Map::new();
    for role in ["root", "targets"].iter().chain(delegations) {
        meta.insert(
            (*role).to_owned(),
            serde_json::json!({"length": 1, "hashes": {"sha256": "00"}}),
        );
    }
    serde_json::to_vec(&serde_json::json!({
        "signed": {"_type": "Snapshot", "version": version, "meta": meta},
        "signatures": []
    }))
    .unwrap()
}

/// An in-memory server: the log (with every checkpoint signed), the metadata by role and by
/// checksum, and switches to make it lie.
struct FakeLog {
    signer: Ed25519NoteSigner,
    key: NoteKey,
    /// The entries as served in bundles (tests may rewrite them behind the tree's back).
    entries: Vec<Vec<u8>>,
    /// The tree the checkpoints are signed over.
    store: MemoryHashStore,
    notes: HashMap<u64, String>,
    current: HashMap<(String, String), Vec<u8>>,
    by_checksum: HashMap<(String, String, String), Vec<u8>>,
    /// Answer every proof request with this leaf.
    proof_leaf: Option<u64>,
    /// Answer proof requests without tree_size with a proof in this (older) tree.
    stale_proof_size: Option<u64>,
    /// Flip a bit in inclusion proofs.
    corrupt_proofs: bool,
    /// Answer 500 for this checksum.
    failing_checksum: Option<String>,
}

impl FakeLog {
    fn new(seed: u8) -> Self {
        let signer = Ed25519NoteSigner::from_seed([seed; 32]);
        Self {
            key: NoteKey::new(ORIGIN, signer.public_key()).unwrap(),
            signer,
            entries: vec![],
            store: MemoryHashStore::new(),
            notes: HashMap::new(),
            current: HashMap::new(),
            by_checksum: HashMap::new(),
            proof_leaf: None,
            stale_proof_size: None,
            corrupt_proofs: false,
            failing_checksum: None,
        }
    }

    fn size(&self) -> u64 {
        self.store.size()
    }

    fn note(&self) -> String {
        self.notes[&self.size()].clone()
    }

    /// Appends an entry to the tree and signs the new checkpoint.
    async fn append(&mut self, entry: Vec<u8>) -> u64 {
        let index = self.store.append(&entry).unwrap();
        self.entries.push(entry);
        let cp = Checkpoint::new(ORIGIN, self.size(), self.store.root().unwrap()).unwrap();
        let note = cp.sign(&self.key, &self.signer).await.unwrap();
        self.notes.insert(self.size(), note);
        index
    }

    /// Logs a file without serving it.
    async fn log_only(&mut self, role: &str, bytes: &[u8]) -> u64 {
        let version = notary_log::inclusion::signed_version(bytes).unwrap();
        let time = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let record = LeafRecord::for_metadata(GUN, role, version, bytes, time);
        self.append(record.encode().unwrap().into_bytes()).await
    }

    /// Serves a file as current and by checksum without logging it.
    fn serve_only(&mut self, role: &str, bytes: &[u8]) {
        self.current
            .insert((GUN.to_owned(), role.to_owned()), bytes.to_vec());
        self.by_checksum.insert(
            (GUN.to_owned(), role.to_owned(), sha_hex(bytes)),
            bytes.to_vec(),
        );
    }

    /// What an honest server does on an accepted update.
    async fn publish(&mut self, role: &str, bytes: &[u8]) -> u64 {
        self.serve_only(role, bytes);
        self.log_only(role, bytes).await
    }

    /// A repository with every default role and one delegation, some updated twice.
    async fn with_repository(seed: u8) -> Self {
        let mut log = Self::new(seed);
        log.publish("root", &meta("Root", 1, "")).await;
        log.publish("targets", &meta("Targets", 1, "")).await;
        log.publish("targets/releases", &meta("Targets", 1, ""))
            .await;
        log.publish("snapshot", &snapshot(1, &["targets/releases"]))
            .await;
        log.publish("timestamp", &meta("Timestamp", 1, "")).await;
        log.publish("targets", &meta("Targets", 2, "")).await;
        log.publish("snapshot", &snapshot(2, &["targets/releases"]))
            .await;
        log.publish("timestamp", &meta("Timestamp", 2, "")).await;
        log
    }

    fn find_leaf(&self, q: &LeafQuery, size: u64) -> Option<u64> {
        (0..size).find(|&i| {
            LeafRecord::decode(&self.entries[i as usize]).is_ok_and(|r| {
                r.gun == q.gun
                    && r.role == q.role
                    && r.version == q.version
                    && hex::encode(r.sha256) == q.sha256
            })
        })
    }
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn not_found(what: &str) -> FetchError {
    FetchError::NotFound {
        url: what.to_owned(),
    }
}

#[async_trait]
impl LogSource for FakeLog {
    async fn checkpoint(&self) -> Result<Vec<u8>, FetchError> {
        Ok(self.note().into_bytes())
    }

    async fn proof(&self, leaf: &LeafQuery, tree_size: Option<u64>) -> Result<Vec<u8>, FetchError> {
        let n = match tree_size {
            Some(n) if n > self.size() => {
                return Err(FetchError::Status {
                    url: "proof".into(),
                    status: 400,
                    body: "tree_size".into(),
                })
            }
            Some(n) => n,
            None => self.stale_proof_size.unwrap_or(self.size()),
        };
        let index = match self.proof_leaf {
            Some(i) => i,
            None => self.find_leaf(leaf, n).ok_or_else(|| not_found("proof"))?,
        };
        let mut proof = prove_inclusion(index, n, &self.store).unwrap();
        if self.corrupt_proofs {
            proof[0].0[0] ^= 1;
        }
        let response = ProofResponse {
            leaf_index: index,
            tree_size: n,
            leaf: base64::engine::general_purpose::STANDARD.encode(&self.entries[index as usize]),
            proof: encode_hashes(&proof),
            checkpoint: self.note(),
        };
        Ok(serde_json::to_vec(&response).unwrap())
    }

    async fn consistency(&self, old: u64, new: Option<u64>) -> Result<Vec<u8>, FetchError> {
        let n = new.unwrap_or(self.size());
        if old > n || n > self.size() {
            return Err(FetchError::Status {
                url: "consistency".into(),
                status: 400,
                body: "sizes".into(),
            });
        }
        let response = ConsistencyResponse {
            old,
            new: n,
            proof: encode_hashes(&prove_consistency(old, n, &self.store).unwrap()),
            checkpoint: self.notes[&n].clone(),
        };
        Ok(serde_json::to_vec(&response).unwrap())
    }

    async fn entry_bundle(&self, bundle: &EntryBundle) -> Result<Vec<u8>, FetchError> {
        let first = bundle.first_leaf() as usize;
        let end = first + usize::from(bundle.width());
        if end > self.entries.len() {
            return Err(not_found(&bundle.path()));
        }
        let entries: Vec<&[u8]> = self.entries[first..end].iter().map(Vec::as_slice).collect();
        Ok(EntryBundle::encode(&entries).unwrap())
    }

    async fn metadata(&self, gun: &str, role: &str) -> Result<Vec<u8>, FetchError> {
        self.current
            .get(&(gun.to_owned(), role.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(role))
    }

    async fn metadata_by_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Vec<u8>, FetchError> {
        if self.failing_checksum.as_deref() == Some(sha256_hex) {
            return Err(FetchError::Status {
                url: role.into(),
                status: 503,
                body: "database down".into(),
            });
        }
        self.by_checksum
            .get(&(gun.to_owned(), role.to_owned(), sha256_hex.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(role))
    }
}

fn lines(outcomes: &[RoleOutcome]) -> Vec<String> {
    outcomes.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------- verify-inclusion

#[tokio::test]
async fn inclusion_of_every_default_role() {
    let log = FakeLog::with_repository(1).await;
    let outcomes = verify_gun(&log, &key(1), GUN, &[], &no_retry()).await;
    assert_eq!(
        lines(&outcomes),
        [
            "ok timestamp v2 leaf 7 in tree 8",
            "ok snapshot v2 leaf 6 in tree 8",
            "ok root v1 leaf 0 in tree 8",
            "ok targets v2 leaf 5 in tree 8",
            "ok targets/releases v1 leaf 2 in tree 8",
        ]
    );
    // Named roles only.
    let outcomes = verify_gun(&log, &key(1), GUN, &["root".to_owned()], &no_retry()).await;
    assert_eq!(lines(&outcomes), ["ok root v1 leaf 0 in tree 8"]);
}

#[tokio::test]
async fn proof_in_an_older_tree_is_asked_again_in_the_signed_one() {
    let mut log = FakeLog::with_repository(1).await;
    log.stale_proof_size = Some(6);
    let outcomes = verify_gun(&log, &key(1), GUN, &["targets".to_owned()], &no_retry()).await;
    assert_eq!(lines(&outcomes), ["ok targets v2 leaf 5 in tree 8"]);
}

#[tokio::test]
async fn leaf_of_another_version_fails() {
    let mut log = FakeLog::with_repository(1).await;
    // The server serves targets v2 but proves the leaf of targets v1.
    log.proof_leaf = Some(1);
    let outcomes = verify_gun(&log, &key(1), GUN, &["targets".to_owned()], &no_retry()).await;
    let line = outcomes[0].to_string();
    assert!(!outcomes[0].is_ok());
    assert!(
        line.starts_with("FAIL targets: leaf 1 does not describe"),
        "{line}"
    );
    assert!(line.contains("version 1 (file: 2)"), "{line}");
    assert!(line.contains("sha256"), "{line}");
}

#[tokio::test]
async fn leaf_with_another_checksum_fails() {
    let mut log = FakeLog::with_repository(1).await;
    // The log records one targets v3, the server serves a different targets v3 (same length).
    let logged = meta("Targets", 3, "a");
    let served = meta("Targets", 3, "b");
    let index = log.log_only("targets", &logged).await;
    log.serve_only("targets", &served);

    // An honest proof endpoint has no leaf for the served file.
    let outcomes = verify_gun(&log, &key(1), GUN, &["targets".to_owned()], &no_retry()).await;
    let line = outcomes[0].to_string();
    assert!(line.contains("this file was not logged"), "{line}");

    // A lying one proves the leaf of the other file.
    log.proof_leaf = Some(index);
    let outcomes = verify_gun(&log, &key(1), GUN, &["targets".to_owned()], &no_retry()).await;
    let line = outcomes[0].to_string();
    assert!(!outcomes[0].is_ok());
    assert!(
        line.contains(&format!(
            "sha256 {} (file: {})",
            sha_hex(&logged),
            sha_hex(&served)
        )),
        "{line}"
    );
    assert!(!line.contains("version"), "{line}");
    assert!(!line.contains("length"), "{line}");
}

#[tokio::test]
async fn corrupt_inclusion_proof_fails() {
    let mut log = FakeLog::with_repository(1).await;
    log.corrupt_proofs = true;
    let outcomes = verify_gun(&log, &key(1), GUN, &["root".to_owned()], &no_retry()).await;
    let line = outcomes[0].to_string();
    assert!(
        line.starts_with("FAIL root: inclusion proof of leaf 0 does not verify"),
        "{line}"
    );
}

#[tokio::test]
async fn checkpoint_signed_by_another_key_fails_everywhere() {
    let log = FakeLog::with_repository(2).await;
    let pinned = key(1);
    let outcomes = verify_gun(&log, &pinned, GUN, &[], &no_retry()).await;
    assert_eq!(outcomes.len(), 5);
    for o in &outcomes {
        assert!(
            o.to_string()
                .contains("checkpoint does not verify with the pinned key"),
            "{o}"
        );
    }
    let honest = FakeLog::with_repository(1).await;
    let err = verify_consistency(&log, &pinned, honest.notes[&3].as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, ConsistencyError::Checkpoint(_)), "{err}");
    assert!(!err.is_fork());
    let err = monitor(&log, &pinned, None, &MonitorOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MonitorError::Checkpoint(_)), "{err}");
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn missing_role_and_unlisted_delegations() {
    let mut log = FakeLog::new(1);
    log.publish("root", &meta("Root", 1, "")).await;
    let outcomes = verify_gun(&log, &key(1), GUN, &[], &no_retry()).await;
    let text = lines(&outcomes);
    assert!(text[0].starts_with("FAIL (delegations): cannot fetch the snapshot"));
    assert!(text.contains(&"ok root v1 leaf 0 in tree 1".to_owned()));
    assert!(text
        .contains(&"FAIL targets: the server has no current file for this role (404)".to_owned()));
}

/// A split view: proves `root` in log B and everything else in log A.
struct Split {
    a: FakeLog,
    b: FakeLog,
}

#[async_trait]
impl LogSource for Split {
    async fn checkpoint(&self) -> Result<Vec<u8>, FetchError> {
        self.a.checkpoint().await
    }
    async fn proof(&self, leaf: &LeafQuery, n: Option<u64>) -> Result<Vec<u8>, FetchError> {
        if leaf.role == "root" {
            self.b.proof(leaf, n).await
        } else {
            self.a.proof(leaf, n).await
        }
    }
    async fn consistency(&self, old: u64, new: Option<u64>) -> Result<Vec<u8>, FetchError> {
        self.b.consistency(old, new).await
    }
    async fn entry_bundle(&self, bundle: &EntryBundle) -> Result<Vec<u8>, FetchError> {
        self.a.entry_bundle(bundle).await
    }
    async fn metadata(&self, gun: &str, role: &str) -> Result<Vec<u8>, FetchError> {
        self.a.metadata(gun, role).await
    }
    async fn metadata_by_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Vec<u8>, FetchError> {
        self.a.metadata_by_checksum(gun, role, sha256_hex).await
    }
}

#[tokio::test]
async fn checkpoints_seen_by_one_run_must_agree() {
    use notary_log::inclusion::check_views;
    let mut log = FakeLog::with_repository(1).await;
    let outcomes = verify_gun(&log, &key(1), GUN, &[], &no_retry()).await;
    let (largest, note) = check_views(&log, &key(1), &outcomes, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((largest.size(), note), (8, log.note()));

    // Against a saved state: an older one is fine, a newer one means the server went back.
    let saved = Checkpoint::open(log.notes[&3].as_bytes(), &key(1)).unwrap();
    check_views(&log, &key(1), &outcomes, Some(&saved))
        .await
        .unwrap();
    log.publish("timestamp", &meta("Timestamp", 3, "")).await;
    let newer = Checkpoint::open(log.note().as_bytes(), &key(1)).unwrap();
    let err = check_views(&log, &key(1), &outcomes, Some(&newer))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConsistencyError::Truncated { old: 9, new: 8 }),
        "{err}"
    );

    // Every proof verifies on its own, but in two trees that are not one history.
    let a = FakeLog::with_repository(1).await;
    let b = rewritten(&a, 1, 3).await;
    let split = Split { a, b };
    let outcomes = verify_gun(&split, &key(1), GUN, &[], &no_retry()).await;
    assert!(
        outcomes.iter().all(RoleOutcome::is_ok),
        "{:?}",
        lines(&outcomes)
    );
    assert!(lines(&outcomes).contains(&"ok root v1 leaf 0 in tree 11".to_owned()));
    let err = check_views(&split, &key(1), &outcomes, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsistencyError::Inconsistent {
                old: 8,
                new: 11,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_fork());

    // Nothing verified, nothing to compare.
    let none = [RoleOutcome::Fail {
        role: "root".into(),
        reason: "x".into(),
    }];
    assert!(check_views(&split, &key(1), &none, None)
        .await
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------- verify-consistency

#[tokio::test]
async fn consistency_of_a_growing_log() {
    let mut log = FakeLog::with_repository(1).await;
    let old = log.notes[&3].clone();
    let verified = verify_consistency(&log, &key(1), old.as_bytes())
        .await
        .unwrap();
    assert_eq!((verified.old.size(), verified.new.size()), (3, 8));
    assert_eq!(verified.new_note, log.note().into_bytes());
    assert!(verified
        .summary()
        .starts_with("ok: the log grew from 3 to 8"));

    // Same size, same root; and from the empty tree.
    let same = verify_consistency(&log, &key(1), log.note().as_bytes())
        .await
        .unwrap();
    assert!(same
        .summary()
        .starts_with("ok: the log still has 8 entries"));
    let empty = Checkpoint::new(ORIGIN, 0, notary_tlog::EMPTY_ROOT)
        .unwrap()
        .sign(&log.key, &log.signer)
        .await
        .unwrap();
    verify_consistency(&log, &key(1), empty.as_bytes())
        .await
        .unwrap();

    log.publish("timestamp", &meta("Timestamp", 3, "")).await;
    let verified = verify_consistency(&log, &key(1), old.as_bytes())
        .await
        .unwrap();
    assert_eq!(verified.new.size(), 9);
}

#[tokio::test]
async fn truncated_log_fails() {
    let long = FakeLog::with_repository(1).await;
    let mut short = FakeLog::new(1);
    for entry in &long.entries[..5] {
        short.append(entry.clone()).await;
    }
    let err = verify_consistency(&short, &key(1), long.note().as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConsistencyError::Truncated { old: 8, new: 5 }),
        "{err}"
    );
    assert!(err.is_fork());
}

/// Log B holds log A's entries but one, rewritten.
async fn rewritten(a: &FakeLog, at: usize, extra: usize) -> FakeLog {
    let mut b = FakeLog::new(1);
    for (i, entry) in a.entries.iter().enumerate() {
        if i == at {
            b.log_only("targets", &meta("Targets", 9, "evil")).await;
        } else {
            b.append(entry.clone()).await;
        }
    }
    for i in 0..extra {
        b.log_only("timestamp", &meta("Timestamp", 10 + i as u64, ""))
            .await;
    }
    b
}

#[tokio::test]
async fn rewritten_log_fails() {
    let a = FakeLog::with_repository(1).await;
    // Grown since, but with entry 1 replaced.
    let b = rewritten(&a, 1, 3).await;
    let err = verify_consistency(&b, &key(1), a.notes[&4].as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsistencyError::Inconsistent {
                old: 4,
                new: 11,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_fork());
    // A rewrite after the old tree is no fork.
    verify_consistency(&b, &key(1), a.notes[&1].as_bytes())
        .await
        .unwrap();
    // Same size, other root: two signed heads for one tree.
    let c = rewritten(&a, 7, 0).await;
    let err = verify_consistency(&c, &key(1), a.note().as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConsistencyError::SplitView { size: 8, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn old_checkpoint_by_another_key_is_refused() {
    let a = FakeLog::with_repository(2).await;
    let b = FakeLog::with_repository(1).await;
    let err = verify_consistency(&b, &key(1), a.note().as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, ConsistencyError::OldCheckpoint(_)), "{err}");
    let err = monitor(
        &b,
        &key(1),
        Some(a.note().as_bytes()),
        &MonitorOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MonitorError::State(_)), "{err}");
}

// ---------------------------------------------------------------- monitor

/// A log of `n` files, spanning entry bundles.
async fn big_log(n: u64) -> FakeLog {
    let mut log = FakeLog::new(1);
    for v in 1..=n {
        log.publish("timestamp", &meta("Timestamp", v, "")).await;
    }
    log
}

#[tokio::test]
async fn monitor_of_an_honest_log() {
    let log = big_log(u64::from(TILE_WIDTH) + 44).await;
    let report = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.summary(),
        "300 entries, 300 ok, 0 tampered, 0 missing, tree root ok"
    );
    assert!(report.problems.is_empty());
    assert!(report.consistency.is_none());
    assert_eq!(report.exit_code(), 0);
    assert!(report.all_verified());
    assert_eq!(report.note, log.note().into_bytes());

    // With a saved state: checked for consistency first.
    let report = monitor(
        &log,
        &key(1),
        Some(log.notes[&17].as_bytes()),
        &MonitorOptions::default(),
    )
    .await
    .unwrap();
    assert!(matches!(&report.consistency, Some(Ok(old)) if old.size() == 17));
    assert_eq!(report.exit_code(), 0);
    assert!(report.lines()[0].starts_with("ok: tree of 300 entries extends the saved tree of 17"));

    // Exactly one full bundle, and the empty log.
    let full = big_log(u64::from(TILE_WIDTH)).await;
    let report = monitor(&full, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.ok, 256);
    let mut empty = FakeLog::new(1);
    let note = Checkpoint::new(ORIGIN, 0, notary_tlog::EMPTY_ROOT)
        .unwrap()
        .sign(&empty.key, &empty.signer)
        .await
        .unwrap();
    empty.notes.insert(0, note);
    let report = monitor(&empty, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.summary(),
        "0 entries, 0 ok, 0 tampered, 0 missing, tree root ok"
    );
}

#[tokio::test]
async fn monitor_reports_tampered_and_missing_files() {
    let mut log = FakeLog::with_repository(1).await;
    // targets v1 (leaf 1) now served with other bytes under its checksum.
    let v1 = meta("Targets", 1, "");
    log.by_checksum.insert(
        (GUN.to_owned(), "targets".to_owned(), sha_hex(&v1)),
        meta("Targets", 1, "evil"),
    );
    let report = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.summary(),
        "8 entries, 7 ok, 1 tampered, 0 missing, tree root ok"
    );
    assert!(matches!(
        report.problems[..],
        [EntryProblem::Tampered { index: 1, .. }]
    ));
    assert!(report.lines()[1].starts_with("TAMPERED entry 1 docker.io/library/app targets v1"));
    assert_eq!(report.exit_code(), 1);
    assert!(!report.all_verified());

    // Put it back, remove the first snapshot.
    log.by_checksum
        .insert((GUN.to_owned(), "targets".to_owned(), sha_hex(&v1)), v1);
    let snap1 = sha_hex(&snapshot(1, &["targets/releases"]));
    log.by_checksum
        .remove(&(GUN.to_owned(), "snapshot".to_owned(), snap1));
    let report = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.summary(),
        "8 entries, 7 ok, 0 tampered, 1 missing, tree root ok"
    );
    let line = report.problems[0].to_string();
    assert!(
        line.starts_with("MISSING entry 3 docker.io/library/app snapshot v1"),
        "{line}"
    );
    assert!(
        line.contains("removed behind the log's back, or the GUN was deleted"),
        "{line}"
    );
    assert_eq!(report.exit_code(), 2);
    assert!(!report.all_verified());

    // Without fetching, the files are not looked at.
    let report = monitor(
        &log,
        &key(1),
        None,
        &MonitorOptions {
            fetch_files: false,
            concurrency: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        report.summary(),
        "8 entries, files not fetched, tree root ok"
    );
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn monitor_reports_server_errors_apart() {
    let mut log = FakeLog::with_repository(1).await;
    log.failing_checksum = Some(sha_hex(&meta("Root", 1, "")));
    let report = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.summary(),
        "8 entries, 7 ok, 0 tampered, 0 missing, 1 errors, tree root ok"
    );
    assert!(report.problems[0].to_string().contains("HTTP 503"));
    assert_eq!(report.exit_code(), 3);
}

#[tokio::test]
async fn monitor_detects_a_rewritten_entry() {
    let mut log = big_log(300).await;
    // Entry 260 (second bundle) replaced by another valid record; the tree stays as signed.
    let forged = LeafRecord::for_metadata(
        GUN,
        "timestamp",
        261,
        b"forged",
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap(),
    );
    log.entries[260] = forged.encode().unwrap().into_bytes();
    let report = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert!(!report.root_ok());
    assert!(
        report.summary().ends_with("tree root MISMATCH"),
        "{}",
        report.summary()
    );
    assert!(report
        .lines()
        .iter()
        .any(|l| l.starts_with("ROOT MISMATCH") && l.contains("the log was rewritten")));
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn monitor_reports_a_fork_from_the_saved_state() {
    let a = FakeLog::with_repository(1).await;
    let b = rewritten(&a, 2, 2).await;
    let report = monitor(
        &b,
        &key(1),
        Some(a.note().as_bytes()),
        &MonitorOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.fork());
    assert!(
        report.lines()[0].starts_with("FORK: the tree of 10 entries does not extend the tree of 8")
    );
    // B is consistent with itself: the root recomputes, yet the run fails.
    assert!(report.root_ok());
    assert!(report.summary().contains("FORK"));
    assert_eq!(report.exit_code(), 1);
    assert!(!report.all_verified());

    let truncated = {
        let mut t = FakeLog::new(1);
        for e in &a.entries[..4] {
            t.append(e.clone()).await;
        }
        t
    };
    let report = monitor(
        &truncated,
        &key(1),
        Some(a.note().as_bytes()),
        &MonitorOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.fork());
    assert!(report.lines()[0].contains("shrank from 8 to 4"));
}

#[tokio::test]
async fn monitor_reports_malformed_entries_and_bundles() {
    let mut log = FakeLog::with_repository(1).await;
    log.append(b"not a leaf record\n".to_vec()).await;
    let report = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap();
    assert!(report.root_ok());
    assert!(matches!(
        report.problems[..],
        [EntryProblem::Malformed { index: 8, .. }]
    ));
    assert_eq!(report.exit_code(), 1);

    // A bundle that does not hold the entries the checkpoint counts.
    log.entries.pop();
    let err = monitor(&log, &key(1), None, &MonitorOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MonitorError::Bundle { .. }), "{err}");
    assert_eq!(err.exit_code(), 3);
}

// ---------------------------------------------------------------- key argument

#[test]
fn key_argument_is_a_file_or_a_vkey() {
    let vkey = key(1).vkey();
    assert_eq!(parse_key_arg(&vkey).unwrap(), key(1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.vkey");
    std::fs::write(&path, format!("\n{vkey}\n")).unwrap();
    assert_eq!(parse_key_arg(path.to_str().unwrap()).unwrap(), key(1));
    std::fs::write(&path, "garbage\n").unwrap();
    assert!(parse_key_arg(path.to_str().unwrap())
        .unwrap_err()
        .contains("does not hold a verifier key"));
    assert!(parse_key_arg("nonsense").is_err());
}

// ---------------------------------------------------------------- over HTTP

/// Serves a [`FakeLog`] over plain HTTP/1.1 (one request per connection), routing the paths and
/// queries the way the server does, so the HTTP client is exercised too.
async fn serve(log: std::sync::Arc<FakeLog>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
                let (status, body) = match route(&log, &target).await {
                    Ok(body) => ("200 OK", body),
                    Err(FetchError::NotFound { .. }) => ("404 Not Found", b"not found".to_vec()),
                    Err(FetchError::Status { status: 503, .. }) => {
                        ("503 Service Unavailable", b"down".to_vec())
                    }
                    Err(_) => ("400 Bad Request", b"bad request".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn route(log: &FakeLog, target: &str) -> Result<Vec<u8>, FetchError> {
    let url = url::Url::parse(&format!("http://x{target}")).unwrap();
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let num = |k: &str| query.get(k).map(|v| v.parse::<u64>().unwrap());
    let path = percent_encoding::percent_decode_str(url.path())
        .decode_utf8()
        .unwrap()
        .into_owned();
    if let Some(rest) = path.strip_prefix("/_notary_server/log/") {
        return match rest {
            "checkpoint" => log.checkpoint().await,
            "key" => Ok(format!("{}\n", log.key.vkey()).into_bytes()),
            "proof" => {
                let q = LeafQuery {
                    gun: query["gun"].clone(),
                    role: query["role"].clone(),
                    version: num("version").unwrap(),
                    sha256: query["sha256"].clone(),
                };
                log.proof(&q, num("tree_size")).await
            }
            "consistency" => log.consistency(num("old").unwrap(), num("new")).await,
            _ => match EntryBundle::parse(rest) {
                Ok(bundle) => log.entry_bundle(&bundle).await,
                Err(_) => Err(not_found(rest)),
            },
        };
    }
    let rest = path.strip_prefix("/v2/").ok_or_else(|| not_found(&path))?;
    let (gun, file) = rest
        .split_once("/_trust/tuf/")
        .ok_or_else(|| not_found(&path))?;
    let name = file.strip_suffix(".json").ok_or_else(|| not_found(&path))?;
    match name.rsplit_once('.') {
        Some((role, sum)) if sum.len() == 64 => log.metadata_by_checksum(gun, role, sum).await,
        _ => log.metadata(gun, name).await,
    }
}

#[tokio::test]
async fn http_source_against_a_served_log() {
    use notary_log::http::HttpSource;
    // A GUN with a port, and a role and GUN needing escapes in paths and queries.
    let mut log = FakeLog::with_repository(1).await;
    let odd_gun = "localhost:5000/my app+x";
    let bytes = meta("Targets", 1, "");
    log.current
        .insert((odd_gun.to_owned(), "targets".to_owned()), bytes.clone());
    log.by_checksum.insert(
        (odd_gun.to_owned(), "targets".to_owned(), sha_hex(&bytes)),
        bytes.clone(),
    );
    let record = LeafRecord::for_metadata(
        odd_gun,
        "targets",
        1,
        &bytes,
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap(),
    );
    log.append(record.encode().unwrap().into_bytes()).await;
    for v in 3..=300 {
        log.publish("timestamp", &meta("Timestamp", v, "")).await;
    }
    let old = log.notes[&5].clone();
    let unknown_sum = sha_hex(b"nothing");
    let log = std::sync::Arc::new(log);
    let base = serve(log.clone()).await;
    let source = HttpSource::new(&base, None, Duration::from_secs(10)).unwrap();

    assert_eq!(source.unverified_key().await.unwrap().trim(), key(1).vkey());
    let outcomes = verify_gun(&source, &key(1), GUN, &[], &no_retry()).await;
    assert!(
        outcomes.iter().all(RoleOutcome::is_ok),
        "{:?}",
        lines(&outcomes)
    );
    assert_eq!(outcomes.len(), 5);
    let outcomes = verify_gun(
        &source,
        &key(1),
        odd_gun,
        &["targets".to_owned()],
        &no_retry(),
    )
    .await;
    assert_eq!(lines(&outcomes), ["ok targets v1 leaf 8 in tree 307"]);

    let verified = verify_consistency(&source, &key(1), old.as_bytes())
        .await
        .unwrap();
    assert_eq!(verified.new.size(), 307);

    let report = monitor(
        &source,
        &key(1),
        Some(old.as_bytes()),
        &MonitorOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.summary(),
        "307 entries, 307 ok, 0 tampered, 0 missing, tree root ok"
    );

    assert!(source
        .metadata_by_checksum(GUN, "root", &unknown_sum)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn the_binary_end_to_end_over_http() {
    let mut log = FakeLog::with_repository(1).await;
    let old = log.notes[&4].clone();
    let v1 = meta("Targets", 1, "");
    log.by_checksum
        .remove(&(GUN.to_owned(), "targets".to_owned(), sha_hex(&v1)));
    let log = std::sync::Arc::new(log);
    let base = serve(log.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("log.vkey");
    std::fs::write(&key_file, format!("{}\n", key(1).vkey())).unwrap();
    let old_file = dir.path().join("old.checkpoint");
    std::fs::write(&old_file, &old).unwrap();
    let state = dir.path().join("state");
    std::fs::write(&state, &old).unwrap();
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_notary-log"))
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let common = |rest: &[&str]| {
        let mut v = vec![
            "--server".to_owned(),
            base.clone(),
            "--key".to_owned(),
            key_file.to_str().unwrap().to_owned(),
        ];
        v.extend(rest.iter().map(|s| (*s).to_owned()));
        v
    };

    let (code, out) = run(common(&["verify-inclusion", GUN])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 6, "{out}");
    assert!(
        out.contains(
            "ok: the checkpoints shown are consistent with each other (largest: 8 entries)"
        ),
        "{out}"
    );
    let inclusion_state = dir.path().join("inclusion.state");
    std::fs::write(&inclusion_state, &old).unwrap();
    let (code, out) = run(common(&[
        "verify-inclusion",
        GUN,
        "--state",
        inclusion_state.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("with each other and the saved state"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&inclusion_state).unwrap(),
        log.note()
    );
    let (code, out) = run(common(&["verify-inclusion", GUN, "--role", "targets/nope"])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL targets/nope: "), "{out}");

    let saved = dir.path().join("saved.checkpoint");
    let (code, out) = run(common(&[
        "verify-consistency",
        old_file.to_str().unwrap(),
        "--save",
        saved.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), log.note());

    // targets v1 is gone: MISSING, exit 2, state kept as it was.
    let (code, out) = run(common(&["monitor", "--state", state.to_str().unwrap()])).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("8 entries, 7 ok, 0 tampered, 1 missing, tree root ok"),
        "{out}"
    );
    assert!(out.contains("state not saved"), "{out}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), old);
    // The log alone verifies: the state moves on.
    let (code, out) = run(common(&[
        "monitor",
        "--state",
        state.to_str().unwrap(),
        "--no-fetch",
    ]))
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), log.note());

    // The key subcommand needs no pinned key and says what it prints is unverified.
    let (code, out) = run(vec!["--server".to_owned(), base.clone(), "key".to_owned()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("UNVERIFIED"), "{out}");
    assert!(out.contains(&key(1).vkey()), "{out}");

    // A pinned key of another log: every check fails.
    let other = dir.path().join("other.vkey");
    std::fs::write(&other, key(2).vkey()).unwrap();
    let (code, out) = run(vec![
        "--server".to_owned(),
        base.clone(),
        "--key".to_owned(),
        other.to_str().unwrap().to_owned(),
        "verify-consistency".to_owned(),
        saved.to_str().unwrap().to_owned(),
    ])
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FAIL: the old checkpoint does not verify"),
        "{out}"
    );

    // Nobody listening: "could not check", status 3, for consistency and monitor alike.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for cmd in [
        vec!["verify-consistency", saved.to_str().unwrap()],
        vec!["monitor"],
    ] {
        let mut args = vec![
            "--server".to_owned(),
            closed.clone(),
            "--key".to_owned(),
            key_file.to_str().unwrap().to_owned(),
        ];
        args.extend(cmd.iter().map(|s| (*s).to_owned()));
        let (code, out) = run(args).await;
        assert_eq!(code, 3, "{out}");
        assert!(out.starts_with("ERROR: "), "{out}");
    }
}
