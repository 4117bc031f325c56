//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the log served as static, cacheable files.
//!
//! - A hash tile `tile/<L>/<N>[.p/<W>]` holds `W` (1..=256, 256 when there is no `.p/`) hashes
//!   of tree level `8·L`, those at positions `256·N .. 256·N+W`, concatenated (32 bytes each).
//! - An entry bundle `tile/entries/<N>[.p/<W>]` holds leaves `256·N .. 256·N+W`, each as a
//!   big-endian `u16` length followed by the leaf bytes.
//! - `<N>` is written in 3-digit groups, all but the last prefixed with `x`:
//!   1234067 is `x001/x234/067`.
//!
//! `tlog_tiles` formats Go sumdb's paths, which carry the tile height (`tile/8/0/...`,
//! `tile/8/data/...`), not C2SP's, and panics on some out-of-range ones; the paths are formatted
//! and parsed here, and the crate does the tile arithmetic (which hashes a tile holds, which
//! tiles a new tree size needs).

use crate::error::Error;
use crate::merkle::HASH_SIZE;
use crate::store::{with_reader, HashStore};

/// Tree levels per tile, fixed by C2SP.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u16 = 1 << TILE_HEIGHT;
/// Highest tile level that can hold anything in a tree of at most 2^64 leaves (`8·7 = 56`
/// levels up; level 8 would start at 2^64). C2SP's path grammar allows up to 63.
pub const MAX_TILE_LEVEL: u8 = 7;
/// [`HashTile::for_growth`] takes sizes below 2^56: `tlog_tiles` walks the levels until the size
/// shifted by `8·L` is zero, and would shift a `u64` by 64 past that. 7·10^16 leaves is plenty.
pub const MAX_TILED_SIZE: u64 = 1 << 56;

/// A hash tile coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashTile {
    level: u8,
    index: u64,
    width: u16,
}

/// An entry bundle coordinate (same `N` and `W` as the level-0 hash tile over its leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryBundle {
    index: u64,
    width: u16,
}

impl HashTile {
    pub fn new(level: u8, index: u64, width: u16) -> Result<Self, Error> {
        if level > MAX_TILE_LEVEL {
            return Err(Error::MalformedTile(format!(
                "level {level} above {MAX_TILE_LEVEL}"
            )));
        }
        check_width(width)?;
        Ok(Self {
            level,
            index,
            width,
        })
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn path(&self) -> String {
        format!(
            "tile/{}/{}",
            self.level,
            index_and_width(self.index, self.width)
        )
    }

    pub fn parse(path: &str) -> Result<Self, Error> {
        let rest = path.strip_prefix("tile/").ok_or_else(|| bad_path(path))?;
        let (level, rest) = rest.split_once('/').ok_or_else(|| bad_path(path))?;
        let level = canonical_decimal(level)
            .and_then(|l| u8::try_from(l).ok())
            .ok_or_else(|| bad_path(path))?;
        let (index, width) = parse_index_and_width(rest).ok_or_else(|| bad_path(path))?;
        Self::new(level, index, width)
    }

    /// The hash tiles to (re)publish when the tree grows from `old_size` to `new_size` leaves,
    /// lowest level first: full tiles completed since, then the new partial tile of each level.
    /// One element per tile, so call it per publication, not from 0 on a large log. Sizes must
    /// be below [`MAX_TILED_SIZE`]; a shrinking tree needs no tiles.
    pub fn for_growth(old_size: u64, new_size: u64) -> Result<Vec<Self>, Error> {
        if new_size >= MAX_TILED_SIZE {
            return Err(Error::InvalidInput(format!(
                "tree size {new_size} is beyond tiling"
            )));
        }
        Ok(
            tlog_tiles::Tile::new_tiles(TILE_HEIGHT, old_size, new_size.max(old_size))
                .into_iter()
                .filter_map(|t| {
                    let width = u16::try_from(t.width()).ok()?;
                    Self::new(t.level(), t.level_index(), width).ok()
                })
                .collect(),
        )
    }

    /// The tile's contents, read from `store` for a tree of `tree_size` leaves. Refuses a tile
    /// that reaches past that tree, so a server never serves hashes of a tree it has not
    /// published yet.
    pub fn read<S: HashStore + ?Sized>(&self, tree_size: u64, store: &S) -> Result<Vec<u8>, Error> {
        let shift = u32::from(TILE_HEIGHT) * u32::from(self.level);
        let end = self
            .index
            .checked_mul(u64::from(TILE_WIDTH))
            .and_then(|start| start.checked_add(u64::from(self.width)));
        if end.is_none_or(|end| end > tree_size >> shift) {
            return Err(Error::InvalidInput(format!(
                "tile {} is not in a tree of size {tree_size}",
                self.path()
            )));
        }
        let tile = tlog_tiles::Tile::new(
            TILE_HEIGHT,
            self.level,
            self.index,
            u32::from(self.width),
            false,
        );
        let data = with_reader(store, |r| tile.read_data(r))?;
        debug_assert_eq!(data.len(), usize::from(self.width) * HASH_SIZE);
        Ok(data)
    }
}

impl EntryBundle {
    pub fn new(index: u64, width: u16) -> Result<Self, Error> {
        check_width(width)?;
        Ok(Self { index, width })
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    /// Index of the first leaf in the bundle.
    pub fn first_leaf(&self) -> u64 {
        self.index.saturating_mul(u64::from(TILE_WIDTH))
    }

    pub fn path(&self) -> String {
        format!("tile/entries/{}", index_and_width(self.index, self.width))
    }

    pub fn parse(path: &str) -> Result<Self, Error> {
        let rest = path
            .strip_prefix("tile/entries/")
            .ok_or_else(|| bad_path(path))?;
        let (index, width) = parse_index_and_width(rest).ok_or_else(|| bad_path(path))?;
        Self::new(index, width)
    }

    /// The entry bundles to (re)publish when the tree grows from `old_size` to `new_size`.
    pub fn for_growth(old_size: u64, new_size: u64) -> Result<Vec<Self>, Error> {
        Ok(HashTile::for_growth(old_size, new_size)?
            .into_iter()
            .filter(|t| t.level == 0)
            .map(|t| Self {
                index: t.index,
                width: t.width,
            })
            .collect())
    }

    /// Encodes the bundle body from its entries (at most 256, each at most 65535 bytes).
    pub fn encode(entries: &[&[u8]]) -> Result<Vec<u8>, Error> {
        if entries.is_empty() || entries.len() > usize::from(TILE_WIDTH) {
            return Err(Error::MalformedTile(format!(
                "{} entries in a bundle",
                entries.len()
            )));
        }
        let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
        for entry in entries {
            let len = u16::try_from(entry.len())
                .map_err(|_| Error::MalformedTile(format!("entry of {} bytes", entry.len())))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(entry);
        }
        Ok(out)
    }

    /// Splits a bundle body into its entries; it must hold exactly `self.width()` of them.
    pub fn decode(&self, body: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
        let mut entries = Vec::new();
        let mut rest = body;
        while let [hi, lo, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if tail.len() < len {
                break;
            }
            entries.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        if !rest.is_empty() || entries.len() != usize::from(self.width) {
            return Err(Error::MalformedTile(format!(
                "bundle {} does not hold {} entries",
                self.path(),
                self.width
            )));
        }
        Ok(entries)
    }
}

fn check_width(width: u16) -> Result<(), Error> {
    if (1..=TILE_WIDTH).contains(&width) {
        Ok(())
    } else {
        Err(Error::MalformedTile(format!("width {width}")))
    }
}

fn bad_path(path: &str) -> Error {
    Error::MalformedTile(format!("bad tile path {path:?}"))
}

/// `<N>[.p/<W>]`.
fn index_and_width(index: u64, width: u16) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut n = index / 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    let mut s = groups.join("/");
    if width != TILE_WIDTH {
        s.push_str(&format!(".p/{width}"));
    }
    s
}

fn parse_index_and_width(s: &str) -> Option<(u64, u16)> {
    let (n, width) = match s.split_once(".p/") {
        Some((n, w)) => {
            let w = u16::try_from(canonical_decimal(w)?).ok()?;
            // A full tile has no `.p/`; `.p/0` names nothing.
            (n, (1..TILE_WIDTH).contains(&w).then_some(w)?)
        }
        None => (s, TILE_WIDTH),
    };
    let mut index: u64 = 0;
    let groups: Vec<&str> = n.split('/').collect();
    let last = groups.len() - 1;
    for (i, group) in groups.iter().enumerate() {
        let digits = if i < last {
            group.strip_prefix('x')?
        } else {
            group
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    // One spelling per number: `x000/001` is not 1.
    (index_and_width(index, width) == s).then_some((index, width))
}

/// A decimal number without sign or leading zeros.
fn canonical_decimal(s: &str) -> Option<u64> {
    let v: u64 = s.parse().ok()?;
    (v.to_string() == s).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for (level, index, width, path) in [
            (0, 0, 256, "tile/0/000"),
            (0, 1, 5, "tile/0/001.p/5"),
            (5, 123_456_078, 256, "tile/5/x123/x456/078"),
            (5, 123_456_078, 2, "tile/5/x123/x456/078.p/2"),
            (1, 1_234_067, 256, "tile/1/x001/x234/067"),
            (
                7,
                u64::MAX,
                255,
                "tile/7/x018/x446/x744/x073/x709/x551/615.p/255",
            ),
        ] {
            let t = HashTile::new(level, index, width).unwrap();
            assert_eq!(t.path(), path);
            assert_eq!(HashTile::parse(path).unwrap(), t);
        }
        let e = EntryBundle::new(1_234_067, 8).unwrap();
        assert_eq!(e.path(), "tile/entries/x001/x234/067.p/8");
        assert_eq!(EntryBundle::parse(&e.path()).unwrap(), e);
    }

    #[test]
    fn bad_paths_are_errors_not_panics() {
        for bad in [
            "tile/0/1",
            "tile/0/0001",
            "tile/00/000",
            "tile/8/000",
            "tile/64/000",
            "tile/300/000",
            "tile/-1/000",
            "tile/0/x000/001",
            "tile/0/123/456",
            "tile/0/x123/x456",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/05",
            "tile/0/000.p/",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
            "tile/entries/000",
            "tile/data/000",
            "tile/0/",
            "tile/",
            "",
        ] {
            assert!(HashTile::parse(bad).is_err(), "accepted {bad:?}");
        }
        for bad in ["tile/entries/1", "tile/entries/000.p/0", "tile/0/000"] {
            assert!(EntryBundle::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(HashTile::new(0, 0, 0).is_err());
        assert!(HashTile::new(0, 0, 257).is_err());
        assert!(HashTile::new(8, 0, 1).is_err());
    }

    #[test]
    fn entry_bundles_round_trip() {
        let entries: Vec<&[u8]> = vec![b"", b"a", &[0u8; 300]];
        let body = EntryBundle::encode(&entries).unwrap();
        assert_eq!(&body[..5], &[0, 0, 0, 1, b'a']);
        let b = EntryBundle::new(0, 3).unwrap();
        assert_eq!(b.decode(&body).unwrap(), entries);
        assert!(EntryBundle::new(0, 2).unwrap().decode(&body).is_err());
        assert!(b.decode(&body[..body.len() - 1]).is_err());
        assert!(EntryBundle::encode(&[]).is_err());
        assert!(EntryBundle::encode(&[&[0u8; 65536][..]]).is_err());
    }
}
