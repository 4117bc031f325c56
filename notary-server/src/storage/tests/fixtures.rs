//! Minimal Notary-shaped metadata for storage tests: only what the "current"
//! resolution reads (`signed.meta.<role>.hashes.sha256`, base64 as Go writes
//! it), plus a salt so otherwise equal files differ.

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::storage::MetaUpdate;

/// A non-snapshot, non-timestamp role file.
pub(crate) fn role_file(role: &str, version: i64, salt: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "signed": {"_type": role, "version": version, "salt": salt},
        "signatures": [],
    }))
    .unwrap()
}

fn meta_entry(data: &[u8]) -> serde_json::Value {
    let sha256 = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data));
    json!({"hashes": {"sha256": sha256}, "length": data.len()})
}

/// A snapshot listing the given (role, bytes) pairs.
pub(crate) fn snapshot_file(version: i64, roles: &[(&str, &[u8])], salt: &str) -> Vec<u8> {
    let meta: serde_json::Map<String, serde_json::Value> = roles
        .iter()
        .map(|(role, data)| ((*role).to_owned(), meta_entry(data)))
        .collect();
    serde_json::to_vec(&json!({
        "signed": {"_type": "Snapshot", "version": version, "meta": meta, "salt": salt},
        "signatures": [],
    }))
    .unwrap()
}

/// A timestamp pointing at `snapshot`.
pub(crate) fn timestamp_file(version: i64, snapshot: &[u8], salt: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "signed": {
            "_type": "Timestamp",
            "version": version,
            "meta": {"snapshot": meta_entry(snapshot)},
            "salt": salt,
        },
        "signatures": [],
    }))
    .unwrap()
}

pub(crate) fn update(role: &str, version: i64, data: &[u8]) -> MetaUpdate {
    MetaUpdate {
        role: role.to_owned(),
        version,
        data: data.to_vec(),
    }
}

/// A consistent repository at one version: root, targets, a snapshot listing
/// both, and a timestamp for that snapshot.
pub(crate) struct Repo {
    pub root: Vec<u8>,
    pub targets: Vec<u8>,
    pub snapshot: Vec<u8>,
    pub timestamp: Vec<u8>,
    pub version: i64,
}

impl Repo {
    pub(crate) fn new(version: i64, salt: &str) -> Self {
        let root = role_file("Root", version, salt);
        let targets = role_file("Targets", version, salt);
        let snapshot = snapshot_file(version, &[("root", &root), ("targets", &targets)], salt);
        let timestamp = timestamp_file(version, &snapshot, salt);
        Repo {
            root,
            targets,
            snapshot,
            timestamp,
            version,
        }
    }

    /// The batch a client upload plus server timestamp would write.
    pub(crate) fn updates(&self) -> Vec<MetaUpdate> {
        vec![
            update("root", self.version, &self.root),
            update("targets", self.version, &self.targets),
            update("snapshot", self.version, &self.snapshot),
            update("timestamp", self.version, &self.timestamp),
        ]
    }
}
