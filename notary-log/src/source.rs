//! Where the log and the metadata come from: the [`LogSource`] trait, the wire formats of the
//! log's JSON answers, and the fetch errors.
//!
//! The trait hands back raw bodies; everything that is parsed or checked is parsed and checked
//! by the verification code in this crate, so a test source and the HTTP one go through the same
//! checks.

use async_trait::async_trait;
use base64::Engine as _;
use notary_tlog::{Hash, HASH_SIZE};
use serde::Deserialize;

/// The leaf a proof is asked for: the fields the client computed from the file it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafQuery {
    pub gun: String,
    pub role: String,
    pub version: u64,
    /// Lower-case hex SHA-256 of the file's exact bytes.
    pub sha256: String,
}

/// A failed fetch. `NotFound` is its own variant because its meaning differs per endpoint
/// (no integrated leaf, a removed file, a deleted GUN).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: 404 not found")]
    NotFound { url: String },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: body {reason}")]
    Body { url: String, reason: String },
}

impl FetchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }
}

/// The server's log and metadata endpoints, as raw bodies.
#[async_trait]
pub trait LogSource: Send + Sync {
    /// `GET /_notary_server/log/checkpoint`: the signed note.
    async fn checkpoint(&self) -> Result<Vec<u8>, FetchError>;

    /// `GET /_notary_server/log/proof?gun=&role=&version=&sha256=[&tree_size=]`: JSON.
    async fn proof(&self, leaf: &LeafQuery, tree_size: Option<u64>) -> Result<Vec<u8>, FetchError>;

    /// `GET /_notary_server/log/consistency?old=[&new=]`: JSON.
    async fn consistency(&self, old: u64, new: Option<u64>) -> Result<Vec<u8>, FetchError>;

    /// `GET /_notary_server/log/tile/entries/<N>[.p/<W>]`: the entry bundle body.
    async fn entry_bundle(&self, bundle: &notary_tlog::EntryBundle) -> Result<Vec<u8>, FetchError>;

    /// `GET /v2/<gun>/_trust/tuf/<role>.json`: the current metadata file.
    async fn metadata(&self, gun: &str, role: &str) -> Result<Vec<u8>, FetchError>;

    /// `GET /v2/<gun>/_trust/tuf/<role>.<sha256hex>.json`: a metadata file by checksum.
    async fn metadata_by_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Vec<u8>, FetchError>;
}

/// Body of the proof endpoint.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct ProofResponse {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Base64 of the leaf record bytes.
    pub leaf: String,
    /// Base64 32-byte hashes.
    pub proof: Vec<String>,
    /// Signed note of a tree of size at least `tree_size`.
    pub checkpoint: String,
}

/// Body of the consistency endpoint.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct ConsistencyResponse {
    pub old: u64,
    pub new: u64,
    pub proof: Vec<String>,
    /// Signed note of the tree of size `new`.
    pub checkpoint: String,
}

/// Longest proof accepted from the wire (a tree of 2^64 leaves needs 65 hashes at most).
const MAX_PROOF_HASHES: usize = 65;

/// Decodes a list of base64 hashes, each exactly 32 bytes.
pub fn decode_hashes(list: &[String]) -> Result<Vec<Hash>, String> {
    if list.len() > MAX_PROOF_HASHES {
        return Err(format!("proof of {} hashes", list.len()));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("proof hash {i} is not base64: {e}"))?;
            let bytes: [u8; HASH_SIZE] = raw
                .try_into()
                .map_err(|v: Vec<u8>| format!("proof hash {i} has {} bytes", v.len()))?;
            Ok(Hash(bytes))
        })
        .collect()
}

/// Encodes hashes the way the endpoints do (for test sources and tools).
pub fn encode_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes
        .iter()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_and_bad_ones_are_refused() {
        let h = notary_tlog::leaf_hash(b"x");
        let enc = encode_hashes(&[h, h]);
        assert_eq!(decode_hashes(&enc).unwrap(), vec![h, h]);
        assert!(decode_hashes(&["AAAA".to_owned()]).is_err());
        assert!(decode_hashes(&["not base64!".to_owned()]).is_err());
        assert!(decode_hashes(&vec![enc[0].clone(); 66]).is_err());
    }
}
