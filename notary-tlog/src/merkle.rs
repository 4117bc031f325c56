//! RFC 6962 / RFC 9162 Merkle tree over SHA-256: leaf and node hashes, tree heads, inclusion
//! proofs ("audit paths") and consistency proofs.
//!
//! - leaf hash: `SHA-256(0x00 || data)`; node hash: `SHA-256(0x01 || left || right)`;
//! - the root of `n > 1` leaves splits at the largest power of two `k < n`;
//! - the root of the empty tree is `SHA-256("")`.
//!
//! The arithmetic is `tlog_tiles`' (a port of Go's `golang.org/x/mod/sumdb/tlog`); these
//! wrappers fix the argument order to (index, size), read through a [`HashStore`], turn the
//! crate's panics on bad store answers into errors, and settle the size-0 edge cases.

use crate::error::Error;
use crate::store::{with_reader, HashStore};

/// A SHA-256 hash of a leaf, a subtree or a tree. Re-exported from `tlog_tiles`: its `Display`
/// is standard base64, as in checkpoints.
pub use tlog_tiles::Hash;

pub const HASH_SIZE: usize = tlog_tiles::HASH_SIZE;

/// The root hash of the empty tree, `SHA-256("")`.
pub const EMPTY_ROOT: Hash = tlog_tiles::EMPTY_HASH;

/// Longest proof worth looking at: a tree of at most 2^64 leaves has at most 64 levels, and a
/// consistency proof at most one extra hash. Checked first so hostile input costs nothing.
const MAX_PROOF_LEN: usize = 65;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    tlog_tiles::record_hash(data)
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    tlog_tiles::node_hash(left, right)
}

/// The root hash of the tree made of the first `size` leaves of the log in `store`. Works for any
/// past size as well as the current one, since stored hashes never change.
pub fn tree_hash<S: HashStore + ?Sized>(size: u64, store: &S) -> Result<Hash, Error> {
    with_reader(store, |r| tlog_tiles::tree_hash(size, r))
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1).
pub fn prove_inclusion<S: HashStore + ?Sized>(
    index: u64,
    size: u64,
    store: &S,
) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(Error::InvalidInput(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    with_reader(store, |r| tlog_tiles::prove_record(size, index, r))
}

/// Checks that `proof` shows leaf `index` with hash `leaf_hash` in the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    proof: &[Hash],
    index: u64,
    size: u64,
    leaf_hash: Hash,
    root: Hash,
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::InvalidInput(format!(
            "leaf {index} is not in a tree of size {size}"
        )));
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(Error::InvalidProof);
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf_hash).map_err(Error::from)
}

/// The consistency proof that the tree of `old_size` leaves is a prefix of the tree of
/// `new_size` leaves (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals `new_size`.
pub fn prove_consistency<S: HashStore + ?Sized>(
    old_size: u64,
    new_size: u64,
    store: &S,
) -> Result<Vec<Hash>, Error> {
    if old_size > new_size {
        return Err(Error::InvalidInput(format!(
            "old size {old_size} is above new size {new_size}"
        )));
    }
    // RFC 6962 defines PROOF(m, D[n]) only for 0 < m; every tree extends the empty one.
    if old_size == 0 {
        return Ok(vec![]);
    }
    with_reader(store, |r| tlog_tiles::prove_tree(new_size, old_size, r))
}

/// Checks that `proof` shows the tree (`old_size`, `old_root`) to be a prefix of the tree
/// (`new_size`, `new_root`) (RFC 9162 §2.1.4.2). This is what catches a log that was rewritten or
/// truncated between two checkpoints.
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), Error> {
    if old_size > new_size {
        return Err(Error::InvalidInput(format!(
            "old size {old_size} is above new size {new_size}"
        )));
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(Error::InvalidProof);
    }
    if old_size == 0 {
        // Same rule as transparency-dev/merkle: nothing to prove, so the proof must be empty;
        // and the old root must be the empty tree's, or the "old tree" was never empty.
        return if proof.is_empty() && old_root == EMPTY_ROOT {
            Ok(())
        } else {
            Err(Error::InvalidProof)
        };
    }
    tlog_tiles::check_tree(&proof.to_vec(), new_size, new_root, old_size, old_root)
        .map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryHashStore;

    #[test]
    fn empty_tree() {
        let store = MemoryHashStore::new();
        assert_eq!(tree_hash(0, &store).unwrap(), EMPTY_ROOT);
        assert_eq!(prove_consistency(0, 0, &store).unwrap(), vec![]);
        verify_consistency(&[], 0, EMPTY_ROOT, 0, EMPTY_ROOT).unwrap();
        assert!(prove_inclusion(0, 0, &store).is_err());
    }

    #[test]
    fn out_of_domain_arguments_are_errors_not_panics() {
        let mut store = MemoryHashStore::new();
        for i in 0..5u8 {
            store.append(&[i]).unwrap();
        }
        let root = store.root().unwrap();
        assert!(matches!(
            verify_inclusion(&[], 5, 5, root, root),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            verify_consistency(&[], 6, root, 5, root),
            Err(Error::InvalidInput(_))
        ));
        assert!(prove_consistency(6, 5, &store).is_err());
        // A tree larger than what the store holds: the store says so.
        assert!(matches!(tree_hash(6, &store), Err(Error::Store(_))));
        let long = vec![root; 1000];
        assert!(matches!(
            verify_inclusion(&long, 1, 5, root, root),
            Err(Error::InvalidProof)
        ));
        assert!(matches!(
            verify_consistency(&long, 1, root, 5, root),
            Err(Error::InvalidProof)
        ));
        // Growing from empty: only the empty proof, and only from the empty root.
        verify_consistency(&[], 0, EMPTY_ROOT, 5, root).unwrap();
        assert!(verify_consistency(&[root], 0, EMPTY_ROOT, 5, root).is_err());
        assert!(verify_consistency(&[], 0, root, 5, root).is_err());
    }
}
