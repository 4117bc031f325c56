//! Storage of the tree's hashes, independent of where they live.
//!
//! The log keeps every *stored hash* of the tree: each leaf hash and the hash of every complete
//! subtree, laid out in the dense order of Go's `sumdb/tlog` (Crosby–Wallach §3.3, see
//! [`stored_hash_index`]). A stored hash never changes once written, so a store is append-only:
//! appending leaf `n` writes the hashes [`hashes_to_append`] returns at indexes
//! `stored_hash_count(n)..`. Everything else (tree heads of any past size, proofs, tiles) is
//! computed from reads of at most `O(log n)` of them.
//!
//! [`HashStore`] is the read side (Go's `tlog.HashReader`): the server can keep the hashes in SQL
//! rows keyed by stored-hash index and implement it with one `SELECT ... WHERE idx IN (...)`.
//! [`MemoryHashStore`] is the in-memory implementation for tests and tools.

use std::cell::RefCell;

use crate::error::{Error, StoreError};
use crate::merkle::{self, Hash};

/// Reads stored hashes by stored-hash index.
///
/// Synchronous on purpose: the server's SQL storage (diesel) is synchronous and already runs
/// inside `spawn_blocking`, so a proof is computed there in one go.
pub trait HashStore {
    /// Returns the hashes at `indexes`, in the same order and of the same length. The callers in
    /// this crate ask in increasing index order, which lets SQL stores read one range.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError>;
}

impl<T: HashStore + ?Sized> HashStore for &T {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        (**self).read_hashes(indexes)
    }
}

/// The stored-hash index of the node at `level` (0 = leaves) and position `n` in that level.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    tlog_tiles::stored_hash_index(level, n)
}

/// The inverse of [`stored_hash_index`].
pub fn split_stored_hash_index(index: u64) -> (u8, u64) {
    tlog_tiles::split_stored_hash_index(index)
}

/// How many stored hashes a tree of `size` leaves has; also the index where the hashes for
/// leaf `size` (the next one) start.
pub fn stored_hash_count(size: u64) -> u64 {
    tlog_tiles::stored_hash_count(size)
}

/// The hashes to store when appending leaf number `n` (0-based; the tree has `n` leaves before),
/// whose leaf hash is `leaf_hash`. They go at stored-hash indexes `stored_hash_count(n)` onwards,
/// in order. Reads at most `log2(n)` earlier hashes from `store` to complete subtrees.
///
/// The caller must append them atomically with the leaf itself (one SQL transaction), since a
/// reader trusts every stored hash below `stored_hash_count(size)`.
pub fn hashes_to_append<S: HashStore + ?Sized>(
    n: u64,
    leaf_hash: Hash,
    store: &S,
) -> Result<Vec<Hash>, Error> {
    with_reader(store, |r| {
        tlog_tiles::stored_hashes_for_record_hash(n, leaf_hash, r)
    })
}

/// Runs a `tlog_tiles` function over `store`.
///
/// `tlog_tiles` asserts (panics) when a reader returns the wrong number of hashes, and its error
/// type has no room for a storage failure. This adapter turns a short answer into an error before
/// the crate sees it, and carries the store's own error out beside the crate's.
pub(crate) fn with_reader<S, T, F>(store: &S, f: F) -> Result<T, Error>
where
    S: HashStore + ?Sized,
    F: FnOnce(&Adapter<'_, S>) -> Result<T, tlog_tiles::Error>,
{
    let adapter = Adapter {
        store,
        failure: RefCell::new(None),
    };
    let result = f(&adapter);
    if let Some(e) = adapter.failure.into_inner() {
        return Err(Error::Store(e));
    }
    result.map_err(Error::from)
}

pub(crate) struct Adapter<'a, S: ?Sized> {
    store: &'a S,
    failure: RefCell<Option<StoreError>>,
}

impl<S: HashStore + ?Sized> tlog_tiles::HashReader for Adapter<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let failure = match self.store.read_hashes(indexes) {
            Ok(hashes) if hashes.len() == indexes.len() => return Ok(hashes),
            Ok(hashes) => StoreError::WrongCount {
                want: indexes.len(),
                got: hashes.len(),
            },
            Err(e) => e,
        };
        self.failure.replace(Some(failure));
        // Any error stops the crate's computation; with_reader reports the stored one.
        Err(tlog_tiles::Error::IndexesNotInTree)
    }
}

/// All stored hashes in a `Vec`, in stored-hash index order.
#[derive(Clone, Debug, Default)]
pub struct MemoryHashStore {
    hashes: Vec<Hash>,
    size: u64,
}

impl MemoryHashStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf given its data; returns its index.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, Error> {
        self.append_leaf_hash(merkle::leaf_hash(data))
    }

    /// Appends a leaf given its leaf hash; returns its index.
    pub fn append_leaf_hash(&mut self, leaf_hash: Hash) -> Result<u64, Error> {
        let n = self.size;
        let new = hashes_to_append(n, leaf_hash, &*self)?;
        debug_assert_eq!(self.hashes.len() as u64, stored_hash_count(n));
        self.hashes.extend(new);
        self.size += 1;
        Ok(n)
    }

    /// The root hash of the whole tree.
    pub fn root(&self) -> Result<Hash, Error> {
        merkle::tree_hash(self.size, self)
    }

    /// The stored hashes, for tests that tamper with them.
    pub fn hashes_mut(&mut self) -> &mut [Hash] {
        &mut self.hashes
    }
}

impl HashStore for MemoryHashStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or(StoreError::Missing(i))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hash_layout_matches_go() {
        // From Go's sumdb/tlog doc comment: leaves 0,1 then their parent, leaf 2, leaf 3, then
        // the level-1 node (2,3) and the level-2 node over all four.
        assert_eq!(stored_hash_index(0, 0), 0);
        assert_eq!(stored_hash_index(0, 1), 1);
        assert_eq!(stored_hash_index(1, 0), 2);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(0, 3), 4);
        assert_eq!(stored_hash_index(1, 1), 5);
        assert_eq!(stored_hash_index(2, 0), 6);
        for level in 0..10u8 {
            for n in 0..100 {
                assert_eq!(
                    split_stored_hash_index(stored_hash_index(level, n)),
                    (level, n)
                );
            }
        }
        let mut store = MemoryHashStore::new();
        for i in 0..300u64 {
            assert_eq!(store.hashes.len() as u64, stored_hash_count(i));
            store.append(&i.to_be_bytes()).unwrap();
        }
    }

    /// A store that answers short: must become an error, not the crate's panic.
    struct Short;
    impl HashStore for Short {
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, StoreError> {
            Ok(vec![])
        }
    }

    /// A store whose backend fails.
    struct Down;
    impl HashStore for Down {
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, StoreError> {
            Err(StoreError::Backend("connection refused".into()))
        }
    }

    #[test]
    fn store_failures_are_errors() {
        assert!(matches!(
            merkle::tree_hash(5, &Short),
            Err(Error::Store(StoreError::WrongCount { got: 0, .. }))
        ));
        assert!(matches!(
            merkle::prove_inclusion(1, 5, &Down),
            Err(Error::Store(StoreError::Backend(_)))
        ));
        assert!(matches!(
            merkle::tree_hash(3, &MemoryHashStore::new()),
            Err(Error::Store(StoreError::Missing(_)))
        ));
        assert!(matches!(
            hashes_to_append(1, merkle::leaf_hash(b""), &Down),
            Err(Error::Store(_))
        ));
    }
}
