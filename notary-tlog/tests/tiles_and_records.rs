//! Tiles read from a hash store, and leaf records end to end.

use chrono::{TimeZone, Utc};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use notary_tlog::tiles::TILE_WIDTH;
use notary_tlog::{
    leaf_hash, prove_inclusion, tree_hash, verify_inclusion, EntryBundle, Hash, HashTile,
    LeafRecord, MemoryHashStore,
};
use sha2::Sha256;

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

fn store(size: u64) -> MemoryHashStore {
    let mut s = MemoryHashStore::new();
    for i in 0..size {
        s.append(&entry(i)).unwrap();
    }
    s
}

fn paths(tiles: &[HashTile]) -> Vec<String> {
    tiles.iter().map(HashTile::path).collect()
}

#[test]
fn tiles_to_publish() {
    assert_eq!(
        paths(&HashTile::for_growth(0, 1000).unwrap()),
        [
            "tile/0/000",
            "tile/0/001",
            "tile/0/002",
            "tile/0/003.p/232",
            "tile/1/000.p/3"
        ]
    );
    assert_eq!(
        paths(&HashTile::for_growth(1000, 1300).unwrap()),
        [
            "tile/0/003",
            "tile/0/004",
            "tile/0/005.p/20",
            "tile/1/000.p/5"
        ]
    );
    assert_eq!(
        EntryBundle::for_growth(1000, 1300)
            .unwrap()
            .iter()
            .map(EntryBundle::path)
            .collect::<Vec<_>>(),
        [
            "tile/entries/003",
            "tile/entries/004",
            "tile/entries/005.p/20"
        ]
    );
    assert!(HashTile::for_growth(5, 5).unwrap().is_empty());
    assert!(HashTile::for_growth(0, 0).unwrap().is_empty());
    assert!(HashTile::for_growth(6, 5).unwrap().is_empty());
    assert_eq!(
        HashTile::for_growth((1 << 56) - 2, (1 << 56) - 1)
            .unwrap()
            .len(),
        1
    );
    assert!(HashTile::for_growth(0, 1 << 56).is_err());
    assert!(EntryBundle::for_growth(0, u64::MAX).is_err());
    // Level 2 first appears at 65536 leaves.
    assert_eq!(
        paths(&HashTile::for_growth(65535, 65536).unwrap()),
        ["tile/0/255", "tile/1/000", "tile/2/000.p/1"]
    );
}

fn split(data: &[u8]) -> Vec<Hash> {
    data.chunks(32)
        .map(|c| Hash(c.try_into().unwrap()))
        .collect()
}

#[test]
fn tile_contents_are_the_tree_levels() {
    let size = 1300;
    let s = store(size);
    let level0: Vec<Hash> = HashTile::for_growth(0, size)
        .unwrap()
        .iter()
        .filter(|t| t.level() == 0)
        .flat_map(|t| split(&t.read(size, &s).unwrap()))
        .collect();
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&entry(i))).collect();
    assert_eq!(level0, leaves);

    // Level-1 hashes are the roots of each full run of 256 leaves, computed independently.
    let level1 = HashTile::new(1, 0, 5).unwrap().read(size, &s).unwrap();
    let level1 = split(&level1);
    for (j, h) in level1.iter().enumerate() {
        let mut t = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        for i in (j as u64 * 256)..((j as u64 + 1) * 256) {
            t.push(entry(i));
        }
        assert_eq!(&h.0[..], &t.root().as_bytes()[..], "level-1 hash {j}");
    }

    // A partial tile of an earlier tree size is a prefix of the later one.
    let early = HashTile::new(0, 5, 3).unwrap().read(size, &s).unwrap();
    let later = HashTile::new(0, 5, 20).unwrap().read(size, &s).unwrap();
    assert_eq!(&later[..early.len()], &early[..]);
}

#[test]
fn tiles_past_the_tree_are_refused() {
    let s = store(1300);
    // Past the published size, even though the store has the hashes.
    assert!(HashTile::new(0, 5, 20).unwrap().read(1299, &s).is_err());
    assert!(HashTile::new(0, 5, 21).unwrap().read(1300, &s).is_err());
    assert!(HashTile::new(1, 0, 6).unwrap().read(1300, &s).is_err());
    assert!(HashTile::new(2, 0, 1).unwrap().read(1300, &s).is_err());
    assert!(HashTile::new(7, u64::MAX, 256)
        .unwrap()
        .read(u64::MAX, &s)
        .is_err());
    // Within the size but past the store: the store's error.
    assert!(matches!(
        HashTile::new(0, 5, 100).unwrap().read(2000, &s),
        Err(notary_tlog::Error::Store(_))
    ));
}

#[test]
fn entry_bundle_matches_its_level0_tile() {
    let s = store(300);
    let bundle = EntryBundle::new(1, 44).unwrap();
    let data: Vec<Vec<u8>> = (bundle.first_leaf()..300).map(entry).collect();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let body = EntryBundle::encode(&refs).unwrap();
    let decoded = bundle.decode(&body).unwrap();
    let tile = split(&HashTile::new(0, 1, 44).unwrap().read(300, &s).unwrap());
    let rehashed: Vec<Hash> = decoded.iter().map(|e| leaf_hash(e)).collect();
    assert_eq!(rehashed, tile);
    assert_eq!(usize::from(TILE_WIDTH), 256);
}

#[test]
fn leaf_records_in_the_log() {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 7, 16, 0, 0).unwrap();
    let files: Vec<(&str, &str, u64, &[u8])> = vec![
        ("docker.io/library/alpine", "root", 1, b"{\"root\":1}"),
        ("docker.io/library/alpine", "targets", 1, b"{\"targets\":1}"),
        (
            "docker.io/library/alpine",
            "snapshot",
            1,
            b"{\"snapshot\":1}",
        ),
        (
            "docker.io/library/alpine",
            "timestamp",
            1,
            b"{\"timestamp\":1}",
        ),
        ("localhost:5000/my app", "targets/releases", 4, b"{}"),
    ];
    let mut log = MemoryHashStore::new();
    let mut records = Vec::new();
    for (i, (gun, role, version, bytes)) in files.iter().enumerate() {
        let r = LeafRecord::for_metadata(
            gun,
            role,
            *version,
            bytes,
            t0 + chrono::Duration::seconds(i as i64),
        );
        // The server stores the line as the entry and appends its leaf hash.
        let line = r.encode().unwrap();
        assert_eq!(log.append(line.as_bytes()).unwrap(), i as u64);
        records.push((r, line));
    }
    let size = log.size();
    let root = log.root().unwrap();
    // A client that fetched, say, the targets file re-derives the record and checks inclusion.
    let (record, line) = &records[1];
    let rebuilt = LeafRecord::for_metadata(
        "docker.io/library/alpine",
        "targets",
        1,
        b"{\"targets\":1}",
        record.time,
    );
    assert_eq!(&rebuilt.encode().unwrap(), line);
    let proof = prove_inclusion(1, size, &log).unwrap();
    verify_inclusion(&proof, 1, size, rebuilt.leaf_hash().unwrap(), root).unwrap();
    // Other bytes: another record, not in the log at that position.
    let other = LeafRecord::for_metadata(
        "docker.io/library/alpine",
        "targets",
        1,
        b"{\"targets\":2}",
        record.time,
    );
    assert!(verify_inclusion(&proof, 1, size, other.leaf_hash().unwrap(), root).is_err());
    assert_eq!(tree_hash(size, &log).unwrap(), root);
    assert_eq!(
        LeafRecord::decode(records[4].1.as_bytes()).unwrap(),
        records[4].0
    );
}
