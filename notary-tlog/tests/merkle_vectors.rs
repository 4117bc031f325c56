//! RFC 6962 test vectors, an independent cross-check, and the failures a log auditor relies on.
//!
//! The vectors are the reference data of Certificate Transparency's C++ implementation
//! (google/certificate-transparency, merkle_tree_test.cc), as carried on in
//! github.com/transparency-dev/merkle (testonly/constants.go, testonly/reference_test.go,
//! proof/verify_test.go; Apache-2.0). Only the data is re-typed here, as hex strings.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use notary_tlog::store::stored_hash_index;
use notary_tlog::{
    leaf_hash, prove_consistency, prove_inclusion, tree_hash, verify_consistency, verify_inclusion,
    Checkpoint, Error, Hash, HashStore, MemoryHashStore, EMPTY_ROOT,
};
use sha2::Sha256;

/// The 8 leaves of the reference data.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees of the first 1..=8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Node hashes of the 8-leaf tree by level: leaf hashes, then each level up.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// (leaf index, tree size, audit path).
const INCLUSION: [(u64, u64, &[&str]); 7] = [
    (0, 1, &[]),
    (
        0,
        2,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        1,
        2,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn h(s: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).unwrap();
    Hash(out)
}

fn hs(ss: &[&str]) -> Vec<Hash> {
    ss.iter().map(|s| h(s)).collect()
}

fn leaf(i: usize) -> Vec<u8> {
    hex::decode(LEAVES[i]).unwrap()
}

fn reference_store() -> MemoryHashStore {
    let mut store = MemoryHashStore::new();
    for i in 0..LEAVES.len() {
        store.append(&leaf(i)).unwrap();
    }
    store
}

fn store_of(leaves: &[Vec<u8>]) -> MemoryHashStore {
    let mut store = MemoryHashStore::new();
    for l in leaves {
        store.append(l).unwrap();
    }
    store
}

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(
        EMPTY_ROOT,
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(tree_hash(0, &MemoryHashStore::new()).unwrap(), EMPTY_ROOT);
}

#[test]
fn roots_of_the_first_n_leaves() {
    let store = reference_store();
    for (n, root) in ROOTS.iter().enumerate() {
        let size = n as u64 + 1;
        assert_eq!(tree_hash(size, &store).unwrap(), h(root), "size {size}");
        // Built only up to that size, too: the store of a smaller log gives the same root.
        let small = store_of(&(0..=n).map(leaf).collect::<Vec<_>>());
        assert_eq!(small.root().unwrap(), h(root));
    }
}

#[test]
fn stored_node_hashes_match_the_reference_tree() {
    let store = reference_store();
    for (level, nodes) in NODES.iter().enumerate() {
        for (n, node) in nodes.iter().enumerate() {
            let index = stored_hash_index(level as u8, n as u64);
            assert_eq!(
                store.read_hashes(&[index]).unwrap(),
                vec![h(node)],
                "level {level} node {n}"
            );
        }
    }
    assert_eq!(leaf_hash(&leaf(0)), h(NODES[0][0]));
}

#[test]
fn inclusion_proofs() {
    let store = reference_store();
    for (index, size, path) in INCLUSION {
        let want = hs(path);
        assert_eq!(
            prove_inclusion(index, size, &store).unwrap(),
            want,
            "leaf {index} in {size}"
        );
        let root = h(ROOTS[size as usize - 1]);
        let lh = leaf_hash(&leaf(index as usize));
        verify_inclusion(&want, index, size, lh, root).unwrap();
    }
}

#[test]
fn corrupted_inclusion_proofs_fail() {
    // The mutations of transparency-dev/merkle's corruptInclusionProof.
    let some_hash = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, path) in INCLUSION {
        let proof = hs(path);
        let root = h(ROOTS[size as usize - 1]);
        let lh = leaf_hash(&leaf(index as usize));
        let mut cases: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (index.wrapping_sub(1), size, root, lh, proof.clone()),
            (index + 1, size, root, lh, proof.clone()),
            (index ^ 2, size, root, lh, proof.clone()),
            (index, size * 2, root, lh, proof.clone()),
            (index, size / 2, root, lh, proof.clone()),
            (index, size, root, leaf_hash(b"WrongLeaf"), proof.clone()),
            (index, size, EMPTY_ROOT, lh, proof.clone()),
            (index, size, some_hash, lh, proof.clone()),
            (index, size, root, lh, [proof.clone(), vec![root]].concat()),
            (index, size, root, lh, [vec![root], proof.clone()].concat()),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i].0[0] ^= 8;
            cases.push((index, size, root, lh, p));
        }
        if !proof.is_empty() {
            cases.push((index, size, root, lh, proof[..proof.len() - 1].to_vec()));
        }
        if proof.len() > 1 {
            let p = [vec![proof[0], some_hash], proof[1..].to_vec()].concat();
            cases.push((index, size, root, lh, p));
        }
        for (i, (idx, sz, rt, l, p)) in cases.into_iter().enumerate() {
            assert!(
                verify_inclusion(&p, idx, sz, l, rt).is_err(),
                "case {i} of leaf {index} in {size} verified"
            );
        }
    }
}

#[test]
fn consistency_proofs() {
    let store = reference_store();
    for (old, new, path) in CONSISTENCY {
        let want = hs(path);
        assert_eq!(
            prove_consistency(old, new, &store).unwrap(),
            want,
            "{old} -> {new}"
        );
        verify_consistency(
            &want,
            old,
            h(ROOTS[old as usize - 1]),
            new,
            h(ROOTS[new as usize - 1]),
        )
        .unwrap();
    }
}

#[test]
fn every_proof_of_the_reference_tree_verifies_and_swapped_roots_fail() {
    let store = reference_store();
    for size in 1..=8u64 {
        let root = h(ROOTS[size as usize - 1]);
        for index in 0..size {
            let p = prove_inclusion(index, size, &store).unwrap();
            verify_inclusion(&p, index, size, leaf_hash(&leaf(index as usize)), root).unwrap();
        }
        for old in 1..=size {
            let old_root = h(ROOTS[old as usize - 1]);
            let p = prove_consistency(old, size, &store).unwrap();
            verify_consistency(&p, old, old_root, size, root).unwrap();
            if old < size {
                // The proof binds both roots.
                assert!(verify_consistency(&p, old, root, size, old_root).is_err());
                assert!(verify_consistency(&p, old, old_root, size, old_root).is_err());
            }
        }
    }
}

/// ct-merkle is an independent RFC 6962 implementation: roots and proofs must agree byte for
/// byte, for sizes that exercise every shape of unbalanced tree up to a few levels.
#[test]
fn agrees_with_ct_merkle() {
    let mut ours = MemoryHashStore::new();
    let mut theirs = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let flat = |v: &[Hash]| v.iter().flat_map(|h| h.0).collect::<Vec<u8>>();
    for size in 1..=70u64 {
        let data = format!("leaf {size}").into_bytes();
        ours.append(&data).unwrap();
        theirs.push(data);
        let root = ours.root().unwrap();
        assert_eq!(&root.0[..], &theirs.root().as_bytes()[..]);
        for index in 0..size {
            let p = prove_inclusion(index, size, &ours).unwrap();
            assert_eq!(
                flat(&p),
                theirs.prove_inclusion(index as usize).as_bytes(),
                "inclusion {index} in {size}"
            );
        }
        for old in 1..size {
            let p = prove_consistency(old, size, &ours).unwrap();
            assert_eq!(
                flat(&p),
                theirs.prove_consistency((size - old) as usize).as_bytes(),
                "consistency {old} -> {size}"
            );
            verify_consistency(&p, old, tree_hash(old, &ours).unwrap(), size, root).unwrap();
        }
    }
}

fn leaves(tag: &str, n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag} {i}").into_bytes()).collect()
}

/// A log that changed an entry an auditor already saw cannot prove it extends the old head.
#[test]
fn rewritten_log_fails_consistency() {
    let honest = store_of(&leaves("entry", 10));
    let old = Checkpoint::new("example.com/log", 6, tree_hash(6, &honest).unwrap()).unwrap();

    let mut rewritten_leaves = leaves("entry", 12);
    rewritten_leaves[4] = b"entry 4, edited".to_vec();
    let rewritten = store_of(&rewritten_leaves);
    let new = Checkpoint::new("example.com/log", 12, rewritten.root().unwrap()).unwrap();

    // Its own proof does not reach the old root...
    let p = prove_consistency(6, 12, &rewritten).unwrap();
    assert!(matches!(
        new.verify_extends(&old, &p),
        Err(Error::InvalidProof)
    ));
    // ...nor does the honest log's proof, since the new root is not the honest one.
    let honest12 = store_of(&leaves("entry", 12));
    let hp = prove_consistency(6, 12, &honest12).unwrap();
    assert!(new.verify_extends(&old, &hp).is_err());
    // The honest growth passes.
    let honest_new = Checkpoint::new("example.com/log", 12, honest12.root().unwrap()).unwrap();
    honest_new.verify_extends(&old, &hp).unwrap();

    // An appended entry rewritten after publication: same sizes, other root.
    let mut late = leaves("entry", 12);
    late[11] = b"entry 11, edited".to_vec();
    let late = store_of(&late);
    let seen = honest_new;
    let forked = Checkpoint::new("example.com/log", 12, late.root().unwrap()).unwrap();
    assert!(forked.verify_extends(&seen, &[]).is_err());
}

/// A log that dropped entries, whether or not it grew again since, fails too.
#[test]
fn truncated_log_fails_consistency() {
    let full = store_of(&leaves("entry", 10));
    let old = Checkpoint::new("example.com/log", 10, full.root().unwrap()).unwrap();

    // Shrunk: no proof goes backwards.
    let truncated = store_of(&leaves("entry", 7));
    let shrunk = Checkpoint::new("example.com/log", 7, truncated.root().unwrap()).unwrap();
    assert!(matches!(
        shrunk.verify_extends(&old, &[]),
        Err(Error::InvalidInput(_))
    ));

    // Truncated to 7 then regrown past 10 with other entries.
    let mut regrown = leaves("entry", 7);
    regrown.extend(leaves("other", 6));
    let regrown = store_of(&regrown);
    let new = Checkpoint::new("example.com/log", 13, regrown.root().unwrap()).unwrap();
    let p = prove_consistency(10, 13, &regrown).unwrap();
    assert!(new.verify_extends(&old, &p).is_err());

    // Another log's checkpoint is not evidence about this one.
    let elsewhere = Checkpoint::new("example.com/other", 10, full.root().unwrap()).unwrap();
    assert!(elsewhere.verify_extends(&old, &[]).is_err());
}

/// A store whose rows were edited serves proofs that fail against the signed root.
#[test]
fn tampered_store_fails_verification() {
    let mut store = store_of(&leaves("entry", 9));
    let root = store.root().unwrap();
    let old_root = tree_hash(5, &store).unwrap();
    // Edit the stored hash of leaf 2 (and nothing above it, as a careless forger would).
    let idx = stored_hash_index(0, 2) as usize;
    store.hashes_mut()[idx] = leaf_hash(b"forged");
    let p = prove_inclusion(2, 9, &store).unwrap();
    assert!(verify_inclusion(&p, 2, 9, leaf_hash(b"forged"), root).is_err());
    // Leaf 3's proof goes through the edited hash.
    let p = prove_inclusion(3, 9, &store).unwrap();
    assert!(verify_inclusion(&p, 3, 9, leaf_hash(b"entry 3"), root).is_err());
    // The level-2 node over leaves 0..4 is stored and was not edited, so a recomputed root
    // hides the edit; the consistency proof from 3 reads the edited leaf and fails.
    assert_eq!(tree_hash(9, &store).unwrap(), root);
    let p = prove_consistency(3, 5, &store).unwrap();
    assert!(verify_consistency(&p, 3, tree_hash(3, &store).unwrap(), 5, old_root).is_err());
}
