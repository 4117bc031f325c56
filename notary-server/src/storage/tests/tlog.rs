//! The transparency log on SQLite and MySQL: every stored file gets exactly one leaf in its
//! own transaction, proofs verify (and the root matches an independent RFC 6962
//! implementation, ct-merkle), and two server replicas on one database build one log.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use notary_tlog::{verify_inclusion, Checkpoint, Hash, LeafRecord};
use notary_tuf::crypto::{CryptoService, MemoryCryptoService};
use sha2::Sha256;

use super::{MysqlDb, PgDb, SqliteDb};
use crate::storage::{sha256_hex, MetaStore, MetaUpdate, SqlStore, StoreError};
use crate::tlog::{LogConfig, TransparencyLog};

const ORIGIN: &str = "example.com/test-log";

fn log_on(store: &SqlStore, crypto: Arc<dyn CryptoService>) -> (SqlStore, TransparencyLog) {
    let store = store.clone().with_transparency_log(true);
    let log = TransparencyLog::new(
        store.clone(),
        crypto,
        LogConfig {
            origin: ORIGIN.into(),
            interval: Duration::from_millis(50),
        },
    );
    (store, log)
}

fn file(role: &str, version: i64, gun: &str) -> MetaUpdate {
    MetaUpdate {
        role: role.into(),
        version,
        data: format!(r#"{{"signed":{{"_type":"{role}","version":{version}}},"gun":"{gun}"}}"#)
            .into_bytes(),
    }
}

fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn hash(b64: &str) -> Hash {
    Hash(decode(b64).try_into().unwrap())
}

/// Checks every listed file's inclusion proof against the signed checkpoint, and the
/// checkpoint's root against ct-merkle over the log's entries.
async fn check_log(log: &TransparencyLog, files: &[(String, MetaUpdate)]) -> Checkpoint {
    let (_, key) = log.key().await.unwrap().clone();
    let note = log.checkpoint().await.unwrap();
    let checkpoint = Checkpoint::open(note.as_bytes(), &key).unwrap();
    assert_eq!(checkpoint.size(), files.len() as u64, "one leaf per file");
    for (gun, f) in files {
        let sha = sha256_hex(&f.data);
        let proof = log
            .inclusion(gun, &f.role, f.version, &sha, None)
            .await
            .unwrap();
        let leaf = decode(&proof.leaf);
        let record = LeafRecord::decode(&leaf).unwrap();
        assert_eq!(
            (record.gun.as_str(), record.role.as_str(), record.version),
            (gun.as_str(), f.role.as_str(), f.version as u64)
        );
        assert_eq!(hex::encode(record.sha256), sha);
        assert_eq!(record.length, f.data.len() as u64);
        let hashes: Vec<Hash> = proof.proof.iter().map(|h| hash(h)).collect();
        verify_inclusion(
            &hashes,
            proof.leaf_index,
            checkpoint.size(),
            notary_tlog::leaf_hash(&leaf),
            checkpoint.root(),
        )
        .unwrap();
    }
    // The independent implementation agrees on the root of the whole log.
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let size = checkpoint.size();
    let mut start = 0;
    while start < size {
        let width = (size - start).min(256);
        let path = if width == 256 {
            format!("tile/entries/{}", tile_index(start / 256))
        } else {
            format!("tile/entries/{}.p/{width}", tile_index(start / 256))
        };
        let bundle = log.entry_bundle(&path).await.unwrap();
        let parsed = notary_tlog::EntryBundle::parse(&path)
            .unwrap()
            .decode(&bundle)
            .unwrap();
        for entry in parsed {
            theirs.push(entry);
        }
        start += width;
    }
    assert_eq!(&checkpoint.root().0[..], &theirs.root().as_bytes()[..]);
    checkpoint
}

/// C2SP tile index: groups of three digits, all but the last prefixed with `x`.
fn tile_index(n: u64) -> String {
    let digits = format!("{n:03}");
    let pad = digits.len().div_ceil(3) * 3;
    let digits = format!("{n:0pad$}");
    let groups: Vec<&str> = digits
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let (last, rest) = groups.split_last().unwrap();
    rest.iter().map(|g| format!("x{g}/")).collect::<String>() + last
}

async fn every_update_gets_one_leaf_and_proofs_verify(store: &SqlStore) {
    let crypto: Arc<dyn CryptoService> = Arc::new(MemoryCryptoService::new());
    let (store, log) = log_on(store, crypto);
    let mut files = Vec::new();
    for g in 0..5 {
        let gun = format!("example.com/app{g}");
        let batch = vec![
            file("root", 1, &gun),
            file("targets", 1, &gun),
            file("snapshot", 1, &gun),
            file("timestamp", 1, &gun),
        ];
        store.update_many(&gun, batch.clone()).await.unwrap();
        files.extend(batch.into_iter().map(|f| (gun.clone(), f)));
    }
    // A refused batch writes no leaf.
    let refused = store
        .update_many("example.com/app0", vec![file("targets", 1, "x")])
        .await;
    assert_eq!(refused, Err(StoreError::OldVersion));
    assert_eq!(log.step().await.unwrap(), files.len() as u64);
    let first = check_log(&log, &files).await;

    for v in 2..300 {
        let gun = "example.com/app1".to_string();
        let f = file("timestamp", v, &gun);
        store.update_many(&gun, vec![f.clone()]).await.unwrap();
        files.push((gun, f));
    }
    log.step().await.unwrap();
    let second = check_log(&log, &files).await;
    let proof = log.consistency(first.size(), None).await.unwrap();
    let hashes: Vec<Hash> = proof.proof.iter().map(|h| hash(h)).collect();
    second.verify_extends(&first, &hashes).unwrap();
    // A proof from a rewritten past does not verify.
    let forged = Checkpoint::new(ORIGIN, first.size(), notary_tlog::leaf_hash(b"other")).unwrap();
    assert!(second.verify_extends(&forged, &hashes).is_err());
}

/// Two replicas (two stores, two logs, one signer) publishing and integrating at once.
async fn two_replicas_build_one_log(a: &SqlStore, b: &SqlStore) {
    let crypto: Arc<dyn CryptoService> = Arc::new(MemoryCryptoService::new());
    let (store_a, log_a) = log_on(a, crypto.clone());
    let (store_b, log_b) = log_on(b, crypto);
    let (log_a, log_b) = (Arc::new(log_a), Arc::new(log_b));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut integrators = Vec::new();
    for log in [log_a.clone(), log_b.clone()] {
        let stop = stop.clone();
        integrators.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                log.step().await.unwrap();
                if let Ok(note) = log.checkpoint().await {
                    seen.push(note);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        }));
    }
    let mut writers = Vec::new();
    for w in 0..4usize {
        let store = if w % 2 == 0 {
            store_a.clone()
        } else {
            store_b.clone()
        };
        writers.push(tokio::spawn(async move {
            let gun = format!("example.com/replica{w}");
            let mut written = Vec::new();
            for v in 1..=40 {
                let f = file("timestamp", v, &gun);
                store.update_many(&gun, vec![f.clone()]).await.unwrap();
                written.push((gun.clone(), f));
            }
            written
        }));
    }
    let mut files = Vec::new();
    for w in writers {
        files.extend(w.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut notes = Vec::new();
    for i in integrators {
        notes.extend(i.await.unwrap());
    }
    log_a.step().await.unwrap();
    log_b.step().await.unwrap();
    // Both replicas answer with the same log, holding every file once.
    assert_eq!(
        log_a.checkpoint().await.unwrap(),
        log_b.checkpoint().await.unwrap()
    );
    assert_eq!(log_a.key().await.unwrap().0, log_b.key().await.unwrap().0);
    let last = check_log(&log_b, &files).await;
    // Every checkpoint either replica saw during the run is a prefix of the final one.
    let key = log_a.key().await.unwrap().1.clone();
    for note in notes {
        let old = Checkpoint::open(note.as_bytes(), &key).unwrap();
        let proof = log_a.consistency(old.size(), None).await.unwrap();
        let hashes: Vec<Hash> = proof.proof.iter().map(|h| hash(h)).collect();
        last.verify_extends(&old, &hashes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_update_gets_one_leaf_and_proofs_verify() {
    let db = SqliteDb::new();
    every_update_gets_one_leaf_and_proofs_verify(&db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_every_update_gets_one_leaf_and_proofs_verify() {
    let Some(db) = MysqlDb::create() else { return };
    let store = db.store.clone().unwrap();
    every_update_gets_one_leaf_and_proofs_verify(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_replicas_build_one_log() {
    let db = SqliteDb::new();
    let other = SqlStore::open_sqlite(&db._dir.path().join("server.db")).unwrap();
    two_replicas_build_one_log(&db.store, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_two_replicas_build_one_log() {
    let Some(db) = MysqlDb::create() else { return };
    let other = SqlStore::open_mysql(&db.url()).unwrap();
    let store = db.store.clone().unwrap();
    two_replicas_build_one_log(&store, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_update_gets_one_leaf_and_proofs_verify() {
    let Some(db) = PgDb::create() else { return };
    every_update_gets_one_leaf_and_proofs_verify(&db.sql_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_build_one_log() {
    let Some(db) = PgDb::create() else { return };
    let other = SqlStore::open_postgres(&db.dsn()).unwrap();
    two_replicas_build_one_log(&db.sql_store(), &other).await;
}
