//! `verify-inclusion`: is the metadata the server serves now in the log the pinned key signs?

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use notary_tlog::{Checkpoint, LeafRecord, NoteKey};
use sha2::{Digest, Sha256};

use crate::consistency::{check_extends, ConsistencyError};
use crate::source::{decode_hashes, FetchError, LeafQuery, LogSource, ProofResponse};

/// The roles checked when none are named, before the delegations listed in the snapshot.
pub const BASE_ROLES: [&str; 4] = ["timestamp", "snapshot", "root", "targets"];

/// Knobs of [`verify_gun`].
#[derive(Clone, Debug)]
pub struct InclusionOptions {
    /// How many times to ask again when the proof endpoint answers 404: the server integrates
    /// a new file into the log within about a second, so a file just published may not be there.
    pub not_found_retries: u32,
    pub retry_delay: Duration,
}

impl Default for InclusionOptions {
    fn default() -> Self {
        Self {
            not_found_retries: 3,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// A role whose current file was found in the log.
#[derive(Clone, Debug)]
pub struct Included {
    pub role: String,
    pub version: u64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The checkpoint (opened with the pinned key) the proof was checked against.
    pub checkpoint: Checkpoint,
    /// Its signed note as received.
    pub checkpoint_note: String,
}

/// The verdict for one role.
#[derive(Clone, Debug)]
pub enum RoleOutcome {
    Ok(Included),
    Fail { role: String, reason: String },
}

impl RoleOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, RoleOutcome::Ok(_))
    }
}

impl fmt::Display for RoleOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleOutcome::Ok(i) => write!(
                f,
                "ok {} v{} leaf {} in tree {}",
                i.role, i.version, i.leaf_index, i.tree_size
            ),
            RoleOutcome::Fail { role, reason } => write!(f, "FAIL {role}: {reason}"),
        }
    }
}

/// The roles of `gun` to check by default: [`BASE_ROLES`], then every `targets/...` role named
/// in the current snapshot's `signed.meta`, sorted.
pub async fn default_roles(source: &dyn LogSource, gun: &str) -> Result<Vec<String>, String> {
    let snapshot = source
        .metadata(gun, "snapshot")
        .await
        .map_err(|e| format!("cannot fetch the snapshot to list delegations: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&snapshot).map_err(|e| format!("snapshot is not JSON: {e}"))?;
    let meta = value
        .get("signed")
        .and_then(|s| s.get("meta"))
        .and_then(|m| m.as_object())
        .ok_or_else(|| "snapshot has no signed.meta object".to_owned())?;
    let mut delegations: Vec<String> = meta
        .keys()
        .map(|k| k.strip_suffix(".json").unwrap_or(k).to_owned())
        .filter(|k| k.starts_with("targets/"))
        .collect();
    delegations.sort();
    delegations.dedup();
    let mut roles: Vec<String> = BASE_ROLES.iter().map(|r| (*r).to_owned()).collect();
    roles.extend(delegations);
    Ok(roles)
}

/// Checks each role of `gun` (`roles`, or [`default_roles`] when empty); one outcome per role,
/// plus a failure named `(delegations)` when the default list could not be built.
pub async fn verify_gun(
    source: &dyn LogSource,
    key: &NoteKey,
    gun: &str,
    roles: &[String],
    options: &InclusionOptions,
) -> Vec<RoleOutcome> {
    let mut outcomes = Vec::new();
    let roles = if roles.is_empty() {
        match default_roles(source, gun).await {
            Ok(r) => r,
            Err(reason) => {
                outcomes.push(RoleOutcome::Fail {
                    role: "(delegations)".to_owned(),
                    reason,
                });
                BASE_ROLES.iter().map(|r| (*r).to_owned()).collect()
            }
        }
    } else {
        roles.to_vec()
    };
    for role in roles {
        outcomes.push(match verify_role(source, key, gun, &role, options).await {
            Ok(included) => RoleOutcome::Ok(included),
            Err(reason) => RoleOutcome::Fail { role, reason },
        });
    }
    outcomes
}

/// Fetches the current `role` file of `gun`, its proof and checkpoint, and checks that the leaf
/// describes exactly these bytes and is in the tree the pinned key signed.
pub async fn verify_role(
    source: &dyn LogSource,
    key: &NoteKey,
    gun: &str,
    role: &str,
    options: &InclusionOptions,
) -> Result<Included, String> {
    let bytes = source.metadata(gun, role).await.map_err(|e| match e {
        FetchError::NotFound { .. } => "the server has no current file for this role (404)".into(),
        e => format!("cannot fetch the file: {e}"),
    })?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let length = bytes.len() as u64;
    let version = signed_version(&bytes)?;
    let query = LeafQuery {
        gun: gun.to_owned(),
        role: role.to_owned(),
        version,
        sha256: hex::encode(sha256),
    };

    let mut response = fetch_proof(source, &query, None, options).await?;
    let checkpoint_note = response.checkpoint.clone();
    let checkpoint = Checkpoint::open(checkpoint_note.as_bytes(), key)
        .map_err(|e| format!("the checkpoint does not verify with the pinned key: {e}"))?;
    if response.tree_size > checkpoint.size() {
        return Err(format!(
            "proof is for a tree of {} entries but the checkpoint is of {}",
            response.tree_size,
            checkpoint.size()
        ));
    }
    if response.tree_size < checkpoint.size() {
        // The proof is for an older tree than the checkpoint sent with it: ask for the proof in
        // the tree whose root we hold.
        response = fetch_proof(source, &query, Some(checkpoint.size()), options).await?;
        if response.tree_size != checkpoint.size() {
            return Err(format!(
                "asked for a proof in the tree of {} entries, got one for {}",
                checkpoint.size(),
                response.tree_size
            ));
        }
    }

    let leaf = base64::engine::general_purpose::STANDARD
        .decode(&response.leaf)
        .map_err(|e| format!("leaf is not base64: {e}"))?;
    let record =
        LeafRecord::decode(&leaf).map_err(|e| format!("leaf is not a leaf record: {e}"))?;
    let mut mismatches = Vec::new();
    if record.gun != gun {
        mismatches.push(format!("GUN {:?}", record.gun));
    }
    if record.role != role {
        mismatches.push(format!("role {:?}", record.role));
    }
    if record.version != version {
        mismatches.push(format!("version {} (file: {version})", record.version));
    }
    if record.sha256 != sha256 {
        mismatches.push(format!(
            "sha256 {} (file: {})",
            hex::encode(record.sha256),
            hex::encode(sha256)
        ));
    }
    if record.length != length {
        mismatches.push(format!("length {} (file: {length})", record.length));
    }
    if !mismatches.is_empty() {
        return Err(format!(
            "leaf {} does not describe the served file: it has {}",
            response.leaf_index,
            mismatches.join(", ")
        ));
    }

    let proof = decode_hashes(&response.proof).map_err(|e| format!("malformed proof: {e}"))?;
    notary_tlog::verify_inclusion(
        &proof,
        response.leaf_index,
        response.tree_size,
        notary_tlog::leaf_hash(&leaf),
        checkpoint.root(),
    )
    .map_err(|e| {
        format!(
            "inclusion proof of leaf {} does not verify against the signed root of tree {}: {e}",
            response.leaf_index, response.tree_size
        )
    })?;
    Ok(Included {
        role: role.to_owned(),
        version,
        leaf_index: response.leaf_index,
        tree_size: response.tree_size,
        checkpoint,
        checkpoint_note,
    })
}

/// The checkpoints a run of [`verify_gun`] was shown, checked against each other and against
/// `saved` (a checkpoint kept from an earlier run): a server that proves each file in a
/// different tree, or in a tree that does not extend the saved one, is showing a split view.
/// Returns the largest checkpoint seen and its note, the next one to save.
pub async fn check_views(
    source: &dyn LogSource,
    key: &NoteKey,
    outcomes: &[RoleOutcome],
    saved: Option<&Checkpoint>,
) -> Result<Option<(Checkpoint, String)>, ConsistencyError> {
    let mut seen: Vec<(&Checkpoint, Option<&str>)> = outcomes
        .iter()
        .filter_map(|o| match o {
            RoleOutcome::Ok(i) => Some((&i.checkpoint, Some(i.checkpoint_note.as_str()))),
            RoleOutcome::Fail { .. } => None,
        })
        .collect();
    if seen.is_empty() {
        return Ok(None);
    }
    if let Some(saved) = saved {
        // A tree smaller than one already verified is a rollback, as in verify-consistency.
        if let Some((smaller, _)) = seen.iter().find(|(cp, _)| cp.size() < saved.size()) {
            return Err(ConsistencyError::Truncated {
                old: saved.size(),
                new: smaller.size(),
            });
        }
        seen.push((saved, None));
    }
    seen.sort_by_key(|(cp, _)| cp.size());
    for pair in seen.windows(2) {
        check_extends(source, key, pair[0].0, pair[1].0).await?;
    }
    Ok(seen
        .iter()
        .rev()
        .find_map(|(cp, note)| note.map(|n| ((*cp).clone(), n.to_owned()))))
}

/// The proof endpoint's answer, asking again on 404 as `options` say.
async fn fetch_proof(
    source: &dyn LogSource,
    query: &LeafQuery,
    tree_size: Option<u64>,
    options: &InclusionOptions,
) -> Result<ProofResponse, String> {
    let mut attempt = 0;
    let body = loop {
        match source.proof(query, tree_size).await {
            Ok(body) => break body,
            Err(e) if e.is_not_found() && attempt < options.not_found_retries => {
                attempt += 1;
                tokio::time::sleep(options.retry_delay).await;
            }
            Err(FetchError::NotFound { .. }) => {
                return Err(format!(
                "the log has no leaf for version {} with sha256 {} (404): this file was not logged",
                query.version, query.sha256
            ))
            }
            Err(e) => return Err(format!("cannot fetch the proof: {e}")),
        }
    };
    serde_json::from_slice(&body).map_err(|e| format!("malformed proof response: {e}"))
}

/// `signed.version` of a TUF metadata file.
pub fn signed_version(bytes: &[u8]) -> Result<u64, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the file is not JSON: {e}"))?;
    value
        .get("signed")
        .and_then(|s| s.get("version"))
        .and_then(|v| v.as_u64())
        .ok_or_else(|| "the file has no signed.version".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_signed() {
        assert_eq!(
            signed_version(br#"{"signed":{"_type":"Root","version":7},"signatures":[]}"#),
            Ok(7)
        );
        assert!(signed_version(br#"{"signed":{"version":-1}}"#).is_err());
        assert!(signed_version(br#"{"version":1}"#).is_err());
        assert!(signed_version(b"not json").is_err());
    }
}
