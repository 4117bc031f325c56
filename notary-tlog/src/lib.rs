//! A verifiable transparency log of the TUF metadata the server accepts: one leaf per accepted
//! metadata file, so that anyone holding two signed tree heads can check that no accepted
//! version was later removed or altered, and that a given file was published.
//!
//! Modules, bottom up:
//! - [`merkle`]: RFC 6962 / RFC 9162 hashing, tree heads, inclusion and consistency proofs;
//! - [`store`]: the [`HashStore`] trait the tree's hashes are read through (SQL later), and an
//!   in-memory store;
//! - [`record`]: the leaf record, a one-line canonical encoding of (GUN, role, version, SHA-256,
//!   length, time);
//! - [`checkpoint`]: C2SP tlog-checkpoint tree heads, signed and opened as notes;
//! - [`note`]: C2SP signed-note with Ed25519, pluggable signer, `vkey` verifier keys;
//! - [`tiles`]: C2SP tlog-tiles paths, hash tile contents, entry bundles.
//!
//! # Example
//!
//! ```
//! use notary_tlog::{prove_inclusion, verify_inclusion, Checkpoint, LeafRecord, MemoryHashStore};
//!
//! let mut log = MemoryHashStore::new();
//! let record = LeafRecord::for_metadata("docker.io/library/alpine", "targets", 2, b"{}", chrono::Utc::now());
//! let index = log.append(record.encode()?.as_bytes())?;
//!
//! let head = Checkpoint::new("notary.example.com/tlog", log.size(), log.root()?)?;
//! // head.sign(&key, &signer).await publishes it as a note; Checkpoint::open verifies one.
//!
//! let proof = prove_inclusion(index, head.size(), &log)?;
//! verify_inclusion(&proof, index, head.size(), record.leaf_hash()?, head.root())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Crates
//!
//! Merkle proofs are not written here. The arithmetic is `tlog_tiles` and the note format is
//! `signed_note` (Cloudflare's Rust ports of Go's `golang.org/x/mod/sumdb/tlog` and
//! `sumdb/note`, BSD-3-Clause, used by their CT log); `ct-merkle` (an independent RFC 6962
//! implementation) cross-checks them in the tests. `tlog_tiles`' tile paths are Go sumdb's
//! (`tile/H/L/N`, with the height in the path), not C2SP's, so [`tiles`] formats C2SP paths
//! itself and uses the crate only for the tile arithmetic.

pub mod checkpoint;
pub mod error;
pub mod merkle;
pub mod note;
pub mod record;
pub mod store;
pub mod tiles;

pub use checkpoint::Checkpoint;
pub use error::{Error, SignError, StoreError};
pub use merkle::{
    leaf_hash, node_hash, prove_consistency, prove_inclusion, tree_hash, verify_consistency,
    verify_inclusion, Hash, EMPTY_ROOT, HASH_SIZE,
};
pub use note::{Ed25519NoteSigner, NoteKey, NoteSigner};
pub use record::{LeafRecord, RecordError};
pub use store::{HashStore, MemoryHashStore};
pub use tiles::{EntryBundle, HashTile};
