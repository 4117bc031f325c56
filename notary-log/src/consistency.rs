//! `verify-consistency`: is the log the server shows now an extension of one seen before?

use notary_tlog::{Checkpoint, NoteKey};

use crate::source::{decode_hashes, ConsistencyResponse, FetchError, LogSource};

/// Why two checkpoints could not be shown consistent.
#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    /// The saved checkpoint does not open with the pinned key: a wrong file or a wrong key.
    #[error("the old checkpoint does not verify with the pinned key: {0}")]
    OldCheckpoint(notary_tlog::Error),
    /// The server's checkpoint does not open with the pinned key.
    #[error("the server's checkpoint does not verify with the pinned key: {0}")]
    Checkpoint(notary_tlog::Error),
    #[error("fetch failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("malformed server answer: {0}")]
    Malformed(String),
    /// The signed tree is smaller than one signed before: entries were dropped.
    #[error("the log shrank from {old} to {new} entries (truncated or rolled back)")]
    Truncated { old: u64, new: u64 },
    /// Two checkpoints of one size with different roots, both signed by the pinned key.
    #[error("two different signed roots for the tree of {size} entries ({old_root} and {new_root}): the log was rewritten or forked")]
    SplitView {
        size: u64,
        old_root: String,
        new_root: String,
    },
    /// The consistency proof does not show the old tree to be a prefix of the new one.
    #[error("the tree of {new} entries does not extend the tree of {old}: {reason}")]
    Inconsistent { old: u64, new: u64, reason: String },
}

impl ConsistencyError {
    /// True when this is evidence against the log (a fork, a rewrite, a truncation), rather than
    /// a failure to check.
    pub fn is_fork(&self) -> bool {
        matches!(
            self,
            ConsistencyError::Truncated { .. }
                | ConsistencyError::SplitView { .. }
                | ConsistencyError::Inconsistent { .. }
        )
    }
}

/// A verified step from an old checkpoint to the server's current one.
#[derive(Clone, Debug)]
pub struct Verified {
    pub old: Checkpoint,
    pub new: Checkpoint,
    /// The current checkpoint's signed note as received, to be saved.
    pub new_note: Vec<u8>,
}

impl Verified {
    /// A one-line verdict.
    pub fn summary(&self) -> String {
        if self.old.size() == self.new.size() {
            format!(
                "ok: the log still has {} entries, same root {}",
                self.new.size(),
                self.new.root()
            )
        } else {
            format!(
                "ok: the log grew from {} to {} entries and extends the old tree (root {})",
                self.old.size(),
                self.new.size(),
                self.new.root()
            )
        }
    }
}

/// Opens `old_note` and the server's current checkpoint with `key` and checks that the current
/// tree extends the old one.
pub async fn verify_consistency(
    source: &dyn LogSource,
    key: &NoteKey,
    old_note: &[u8],
) -> Result<Verified, ConsistencyError> {
    let old = Checkpoint::open(old_note, key).map_err(ConsistencyError::OldCheckpoint)?;
    let (new, new_note) = current_checkpoint(source, key).await?;
    check_extends(source, key, &old, &new).await?;
    Ok(Verified { old, new, new_note })
}

/// Fetches and opens the server's current checkpoint.
pub async fn current_checkpoint(
    source: &dyn LogSource,
    key: &NoteKey,
) -> Result<(Checkpoint, Vec<u8>), ConsistencyError> {
    let note = source.checkpoint().await?;
    let cp = Checkpoint::open(&note, key).map_err(ConsistencyError::Checkpoint)?;
    Ok((cp, note))
}

/// Checks that `new` extends `old` (both already opened with `key`), fetching the consistency
/// proof between their exact sizes when they differ.
pub async fn check_extends(
    source: &dyn LogSource,
    key: &NoteKey,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<(), ConsistencyError> {
    if new.size() < old.size() {
        return Err(ConsistencyError::Truncated {
            old: old.size(),
            new: new.size(),
        });
    }
    if new.size() == old.size() {
        return same_root(old, new);
    }
    let body = source.consistency(old.size(), Some(new.size())).await?;
    let response: ConsistencyResponse = serde_json::from_slice(&body)
        .map_err(|e| ConsistencyError::Malformed(format!("consistency response: {e}")))?;
    if response.old != old.size() || response.new != new.size() {
        return Err(ConsistencyError::Malformed(format!(
            "asked for the proof from {} to {}, got one from {} to {}",
            old.size(),
            new.size(),
            response.old,
            response.new
        )));
    }
    // The answer carries a checkpoint too; one of the same size with another root, signed by the
    // pinned key, is itself proof of a fork. Anything else in it is not needed.
    if let Ok(theirs) = Checkpoint::open(response.checkpoint.as_bytes(), key) {
        if theirs.size() == new.size() {
            same_root(new, &theirs)?;
        }
    }
    let proof = decode_hashes(&response.proof).map_err(ConsistencyError::Malformed)?;
    new.verify_extends(old, &proof)
        .map_err(|e| ConsistencyError::Inconsistent {
            old: old.size(),
            new: new.size(),
            reason: e.to_string(),
        })
}

fn same_root(a: &Checkpoint, b: &Checkpoint) -> Result<(), ConsistencyError> {
    if a.root() == b.root() {
        Ok(())
    } else {
        Err(ConsistencyError::SplitView {
            size: a.size(),
            old_root: a.root().to_string(),
            new_root: b.root().to_string(),
        })
    }
}
