//! Errors of the log library: one enum for the Merkle, checkpoint, note and tile layers, so a
//! caller (the server) maps one type to its responses; the leaf record has its own, narrower one.

use std::error::Error as StdError;

/// A failure to read stored hashes; raised by [`HashStore`](crate::HashStore) implementations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store has no hash at this stored-hash index (the tree is smaller than asked for).
    #[error("no stored hash at index {0}")]
    Missing(u64),
    /// The store answered with a different number of hashes than indexes asked for.
    #[error("hash store returned {got} hashes for {want} indexes")]
    WrongCount { want: usize, got: usize },
    /// The backing storage failed (SQL error, I/O, ...).
    #[error("hash store backend: {0}")]
    Backend(Box<dyn StdError + Send + Sync>),
}

/// A failure of the note signer (in production a remote service, so it can be unreachable).
#[derive(Debug, thiserror::Error)]
#[error("note signer: {0}")]
pub struct SignError(pub Box<dyn StdError + Send + Sync>);

impl SignError {
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}

/// Errors of the Merkle, checkpoint, note and tile functions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A proof did not verify: the log is not what the proof claims (or the proof is corrupt).
    #[error("invalid transparency proof")]
    InvalidProof,
    /// Arguments outside the function's domain (index past the tree, old size above new size...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Merkle computation failed in a way not covered above (kept for completeness: the
    /// underlying crate's error enum is wider than what the wrappers let through).
    #[error("merkle: {0}")]
    Merkle(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("malformed note: {0}")]
    MalformedNote(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The note carries no valid signature by the expected key, or a bad one by it.
    #[error("note verification failed: {0}")]
    Verification(String),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("malformed tile: {0}")]
    MalformedTile(String),
}

impl From<tlog_tiles::Error> for Error {
    fn from(e: tlog_tiles::Error) -> Self {
        match e {
            tlog_tiles::Error::InvalidProof => Error::InvalidProof,
            tlog_tiles::Error::InvalidInput(s) => Error::InvalidInput(s),
            other => Error::Merkle(other.to_string()),
        }
    }
}
