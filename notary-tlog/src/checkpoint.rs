//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the log's signed tree head.
//!
//! The body is three lines, each ending in `\n`: the origin (the log's unique name, by
//! convention a schema-less URL), the tree size in decimal, and the root hash in standard base64;
//! optional extension lines may follow. It is published as a signed note (see [`crate::note`])
//! whose signature key name is the origin.

use crate::error::Error;
use crate::merkle::{self, Hash};
use crate::note::{self, NoteKey, NoteSigner};

/// A tree head: origin, size and root hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    /// Extension lines as found when parsing, each ending in `\n`; this log writes none.
    extension: String,
}

impl Checkpoint {
    /// `origin` must be non-empty and one line; it must also be a valid note key name to be
    /// signed, since the log signs with a key named after its origin.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, Error> {
        if origin.is_empty() || origin.contains('\n') {
            return Err(Error::MalformedCheckpoint(format!("bad origin {origin:?}")));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extension: String::new(),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> Hash {
        self.root
    }

    pub fn extension(&self) -> &str {
        &self.extension
    }

    /// The checkpoint body, the text that gets signed.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.origin, self.size, self.root, self.extension
        )
    }

    /// Parses a checkpoint body (not a signed note: see [`open`](Self::open)). Strict about
    /// the size (no sign, no leading zeros) and the hash (32 bytes of padded base64).
    pub fn parse(text: &[u8]) -> Result<Self, Error> {
        let cp = tlog_tiles::Checkpoint::from_bytes(text)
            .map_err(|e| Error::MalformedCheckpoint(e.to_string()))?;
        Ok(Self {
            origin: cp.origin().to_owned(),
            size: cp.size(),
            root: *cp.hash(),
            extension: cp.extension().to_owned(),
        })
    }

    /// Signs the checkpoint as a note with `key`, whose name must be the origin (so a log's
    /// key can never vouch for another log's tree), via `signer`.
    pub async fn sign(&self, key: &NoteKey, signer: &dyn NoteSigner) -> Result<String, Error> {
        self.check_key(key)?;
        note::sign_note(&self.to_text(), key, signer).await
    }

    /// Verifies a signed checkpoint note against `key` (whose name is the expected origin) and
    /// returns the checkpoint.
    pub fn open(signed: &[u8], key: &NoteKey) -> Result<Self, Error> {
        let text = note::open_note(signed, key)?;
        let cp = Self::parse(text.as_bytes())?;
        cp.check_key(key)?;
        Ok(cp)
    }

    /// Checks that `self` (newer) extends `old` by the consistency `proof`: same origin, and
    /// `old`'s tree a prefix of this one. A rolled-back, truncated or rewritten log fails here.
    pub fn verify_extends(&self, old: &Checkpoint, proof: &[Hash]) -> Result<(), Error> {
        if old.origin != self.origin {
            return Err(Error::InvalidInput(format!(
                "checkpoints of different logs: {:?} and {:?}",
                old.origin, self.origin
            )));
        }
        merkle::verify_consistency(proof, old.size, old.root, self.size, self.root)
    }

    fn check_key(&self, key: &NoteKey) -> Result<(), Error> {
        if key.name() == self.origin {
            Ok(())
        } else {
            Err(Error::Verification(format!(
                "key {:?} is not the key of origin {:?}",
                key.name(),
                self.origin
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_strict() {
        let h = merkle::leaf_hash(b"x");
        let text = Checkpoint::new("example.com/log", 12, h).unwrap().to_text();
        assert_eq!(Checkpoint::parse(text.as_bytes()).unwrap().size(), 12);
        for bad in [
            text.replace("\n12\n", "\n012\n"),
            text.replace("\n12\n", "\n+12\n"),
            text.replace("\n12\n", "\n-1\n"),
            text.trim_end().to_owned(),
            format!("{}\n", text),
            text.replace(&h.to_string(), "AAAA"),
            text.replace("example.com/log\n", ""),
        ] {
            assert!(
                Checkpoint::parse(bad.as_bytes()).is_err(),
                "accepted {bad:?}"
            );
        }
        let with_ext = format!("{text}extra line\n");
        assert_eq!(
            Checkpoint::parse(with_ext.as_bytes()).unwrap().extension(),
            "extra line\n"
        );
        assert!(Checkpoint::new("", 0, h).is_err());
        assert!(Checkpoint::new("a\nb", 0, h).is_err());
    }
}
