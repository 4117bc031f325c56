//! The transparency log of accepted metadata (see `docs/transparency.md`).
//!
//! Every metadata file the server stores (uploaded or generated) gets a leaf, written in the
//! same transaction as the file ([`crate::storage`]). This module runs the rest: a background
//! task that integrates pending leaves into the Merkle tree and publishes a signed C2SP
//! checkpoint whenever the tree has grown (at most once per interval), and the reads behind the
//! HTTP API ([`http`]): checkpoint, tiles, entry bundles, inclusion and consistency proofs.
//!
//! The log key is an Ed25519 key made and used through the signer's gRPC CreateKey/Sign (our
//! signer or Go's), for GUN = the log's origin and role [`LOG_KEY_ROLE`]. Several server
//! replicas on one database share one log: the integrator takes a database lock, the first
//! replica to record the key wins and the others adopt it, and a checkpoint is only ever
//! replaced by a larger one.

pub mod http;

use std::sync::Arc;
use std::time::Duration;

use notary_tlog::tiles::{EntryBundle, HashTile};
use notary_tlog::{
    prove_consistency, prove_inclusion, tree_hash, Checkpoint, Hash, NoteKey, NoteSigner, SignError,
};
use notary_tuf::crypto::{CryptoError, CryptoService};
use notary_tuf::keys::KeyType;

use crate::storage::{LogState, SqlStore, StoreError};

/// The role name the log key is created under (not a TUF role, so it never names a
/// repository's key).
pub const LOG_KEY_ROLE: &str = "transparency-log";

/// Leaves integrated per transaction at most.
const INTEGRATE_BATCH: i64 = 2000;

/// Settings of the log (`transparency_log` in the server config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The checkpoint origin line, which names the log (and its key).
    pub origin: String,
    /// How often the tree is extended and, when it grew, a checkpoint signed.
    pub interval: Duration,
}

/// Failures of log operations, mapped to HTTP in [`http`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Nothing matches (yet).
    #[error("{0}")]
    NotFound(String),
    /// Bad request parameters.
    #[error("{0}")]
    BadRequest(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signer failed.
    #[error("signer: {0}")]
    Signer(String),
    /// Anything else.
    #[error("transparency log: {0}")]
    Other(String),
}

/// Signs note text with the log key through the server's crypto service (the signer).
struct SignerNotes {
    crypto: Arc<dyn CryptoService>,
    key_id: String,
}

#[async_trait::async_trait]
impl NoteSigner for SignerNotes {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let signature = self
            .crypto
            .sign(&self.key_id, message)
            .await
            .map_err(|e| SignError::msg(e.to_string()))?;
        signature
            .try_into()
            .map_err(|s: Vec<u8>| SignError::msg(format!("{}-byte Ed25519 signature", s.len())))
    }
}

/// An inclusion proof answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InclusionProof {
    /// The leaf's index.
    pub leaf_index: u64,
    /// The tree size the proof is for (the checkpoint's).
    pub tree_size: u64,
    /// The leaf record, base64.
    pub leaf: String,
    /// The proof hashes, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint note of `tree_size`.
    pub checkpoint: String,
}

/// A consistency proof answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub old: u64,
    /// The newer tree size (the checkpoint's).
    pub new: u64,
    /// The proof hashes, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint note of `new`.
    pub checkpoint: String,
}

fn b64(h: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

/// The log service of one server process.
pub struct TransparencyLog {
    store: SqlStore,
    crypto: Arc<dyn CryptoService>,
    config: LogConfig,
    key: tokio::sync::OnceCell<(String, NoteKey)>,
}

impl std::fmt::Debug for TransparencyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransparencyLog")
            .field("config", &self.config)
            .finish()
    }
}

impl TransparencyLog {
    /// The log over `store` (whose updates must write leaves), signing through `crypto`.
    pub fn new(store: SqlStore, crypto: Arc<dyn CryptoService>, config: LogConfig) -> Self {
        Self {
            store,
            crypto,
            config,
            key: tokio::sync::OnceCell::new(),
        }
    }

    /// The log's settings.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The log key (signer key ID and note verifier key), made on first use.
    pub async fn key(&self) -> Result<&(String, NoteKey), LogError> {
        self.key
            .get_or_try_init(|| async {
                let mut state = self.store.tlog_state().await?;
                if state.key_id.is_none() {
                    let public = self
                        .crypto
                        .create_key(&self.config.origin, LOG_KEY_ROLE, &KeyType::Ed25519)
                        .await
                        .map_err(|e| LogError::Signer(e.to_string()))?;
                    state = self
                        .store
                        .tlog_set_key(&public.key_id(), &public.public)
                        .await?;
                }
                let (Some(key_id), Some(public)) = (state.key_id, state.public_key) else {
                    return Err(LogError::Other("log key not recorded".into()));
                };
                let public: [u8; 32] = public.try_into().map_err(|p: Vec<u8>| {
                    LogError::Other(format!("log key is {} bytes, not Ed25519", p.len()))
                })?;
                let note_key = NoteKey::new(&self.config.origin, public)
                    .map_err(|e| LogError::Other(e.to_string()))?;
                Ok((key_id, note_key))
            })
            .await
    }

    /// One round: integrate every pending leaf, then sign and store a checkpoint if the tree
    /// is larger than the last one. Returns the tree size.
    pub async fn step(&self) -> Result<u64, LogError> {
        let size = self.integrate().await?;
        let state = self.store.tlog_state().await?;
        if state.checkpoint.is_some() && state.checkpoint_size >= size {
            return Ok(size);
        }
        let (key_id, note_key) = self.key().await?;
        let root = self
            .store
            .tlog_with_hashes(move |hashes| tree_hash(size, hashes))
            .await?;
        let checkpoint = Checkpoint::new(&self.config.origin, size, root)
            .map_err(|e| LogError::Other(e.to_string()))?;
        let signer = SignerNotes {
            crypto: self.crypto.clone(),
            key_id: key_id.clone(),
        };
        let note = checkpoint
            .sign(note_key, &signer)
            .await
            .map_err(|e| LogError::Signer(e.to_string()))?;
        self.store.tlog_store_checkpoint(size, &note).await?;
        Ok(size)
    }

    /// Gives every pending leaf its place in the tree (no signing); returns the tree size.
    pub async fn integrate(&self) -> Result<u64, LogError> {
        loop {
            let done = self.store.tlog_integrate(INTEGRATE_BATCH).await?;
            if done.size - done.old_size < INTEGRATE_BATCH as u64 {
                return Ok(done.size);
            }
        }
    }

    /// Runs [`step`](Self::step) every interval until the process ends.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match self.step().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::warn!("transparency log caught up again");
                    }
                    Ok(_) => {}
                    // Once per outage at error level; the leaves wait in the database.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::error!(error = %e, "transparency log step failed; retrying every interval");
                    }
                    Err(e) => tracing::debug!(error = %e, "transparency log step failed"),
                }
            }
        })
    }

    /// The stored state, with a checkpoint.
    async fn published(&self) -> Result<(LogState, String), LogError> {
        let state = self.store.tlog_state().await?;
        let note = state
            .checkpoint
            .clone()
            .ok_or_else(|| LogError::NotFound("no checkpoint has been published yet".into()))?;
        Ok((state, note))
    }

    /// The latest signed checkpoint note.
    pub async fn checkpoint(&self) -> Result<String, LogError> {
        Ok(self.published().await?.1)
    }

    /// The note verifier key line.
    pub async fn verifier_key(&self) -> Result<String, LogError> {
        Ok(self.key().await?.1.vkey())
    }

    /// The inclusion proof of the file (gun, role, version, sha256) in the tree of
    /// `tree_size` leaves (default: the latest checkpoint's, which is returned with it).
    pub async fn inclusion(
        &self,
        gun: &str,
        role: &str,
        version: i64,
        sha256: &str,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, LogError> {
        let (state, note) = self.published().await?;
        let size = within_checkpoint(tree_size, state.checkpoint_size, "tree_size")?;
        let leaf = self
            .store
            .tlog_find_leaf(gun, role, version, sha256)
            .await?
            .filter(|l| l.index < size)
            .ok_or_else(|| {
                LogError::NotFound(format!(
                    "no leaf for {role} version {version} of {gun} with sha256 {sha256} in the \
                     latest checkpoint (tree size {size})"
                ))
            })?;
        let index = leaf.index;
        let proof = self
            .store
            .tlog_with_hashes(move |h| prove_inclusion(index, size, h))
            .await?;
        use base64::Engine as _;
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            leaf: base64::engine::general_purpose::STANDARD.encode(&leaf.leaf),
            proof: proof.iter().map(b64).collect(),
            checkpoint: note,
        })
    }

    /// The consistency proof from a tree of `old` leaves to one of `new` (default: the latest
    /// checkpoint's, which is returned with it).
    pub async fn consistency(
        &self,
        old: u64,
        new: Option<u64>,
    ) -> Result<ConsistencyProof, LogError> {
        let (state, note) = self.published().await?;
        let new = within_checkpoint(new, state.checkpoint_size, "new")?;
        if old > new {
            return Err(LogError::BadRequest(format!(
                "old size {old} is larger than the latest checkpoint's {new}"
            )));
        }
        let proof = self
            .store
            .tlog_with_hashes(move |h| prove_consistency(old, new, h))
            .await?;
        Ok(ConsistencyProof {
            old,
            new,
            proof: proof.iter().map(b64).collect(),
            checkpoint: note,
        })
    }

    /// A hash tile (C2SP path after `tile/`), from the latest checkpoint's tree.
    pub async fn hash_tile(&self, path: &str) -> Result<Vec<u8>, LogError> {
        let tile = HashTile::parse(path).map_err(|e| LogError::NotFound(e.to_string()))?;
        let (state, _) = self.published().await?;
        let size = state.checkpoint_size;
        self.store
            .tlog_with_hashes(move |h| tile.read(size, h))
            .await
            .map_err(|e| LogError::NotFound(format!("tile {path}: {e}")))
    }

    /// An entry bundle (C2SP path after `tile/`), from the latest checkpoint's tree.
    pub async fn entry_bundle(&self, path: &str) -> Result<Vec<u8>, LogError> {
        let bundle = EntryBundle::parse(path).map_err(|e| LogError::NotFound(e.to_string()))?;
        let (state, _) = self.published().await?;
        let start = bundle.first_leaf();
        let end = start + u64::from(bundle.width());
        if end > state.checkpoint_size {
            return Err(LogError::NotFound(format!(
                "entries {start}..{end} are beyond the latest checkpoint (tree size {})",
                state.checkpoint_size
            )));
        }
        let entries = self.store.tlog_entries(start, end).await?;
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        EntryBundle::encode(&refs).map_err(|e| LogError::Other(e.to_string()))
    }

    /// Appends leaves for stored files that have none (see [`SqlStore::tlog_backfill`]).
    pub async fn backfill(&self) -> Result<u64, LogError> {
        Ok(self.store.tlog_backfill().await?)
    }
}

/// A requested tree size, which must not pass the latest checkpoint (default: that one).
fn within_checkpoint(asked: Option<u64>, checkpoint: u64, name: &str) -> Result<u64, LogError> {
    match asked {
        None => Ok(checkpoint),
        Some(n) if n <= checkpoint => Ok(n),
        Some(n) => Err(LogError::NotFound(format!(
            "{name}={n} is beyond the latest checkpoint (tree size {checkpoint})"
        ))),
    }
}

impl From<CryptoError> for LogError {
    fn from(e: CryptoError) -> Self {
        LogError::Signer(e.to_string())
    }
}
