//! C2SP signed-note (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is a UTF-8 text ending in `\n`, a blank line, then signature lines
//! `— <key name> base64(key ID (4 bytes, big-endian) || signature)`. The key ID is
//! `SHA-256(key name || "\n" || 0x01 || public key)[:4]`, and a verifier key ("vkey") is written
//! `<name>+<key ID, 8 hex digits>+base64(0x01 || public key)`.
//!
//! Parsing, the key ID and signature verification are `signed_note`'s. Signing is not: the
//! log's key lives in the remote signer service, so signing goes through [`NoteSigner`], an async
//! trait that takes the message bytes and returns a 64-byte Ed25519 signature. Callers that get
//! a signature some other way can use [`attach_signature`].

use async_trait::async_trait;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, Signature, StandardVerifier, VerifierList};

use crate::error::{Error, SignError};

/// The signature-type byte of Ed25519 in key IDs and verifier keys.
pub const ALG_ED25519: u8 = 0x01;

/// Signs note texts with the log's Ed25519 key (pure Ed25519, RFC 8032, over the text bytes).
#[async_trait]
pub trait NoteSigner: Send + Sync {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError>;
}

/// The public side of a note key: its name and Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteKey {
    name: String,
    key: VerifyingKey,
}

impl NoteKey {
    /// `name` must be non-empty, without spaces or `+` (C2SP); for a log it is the origin.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, Error> {
        if !signed_note::is_key_name_valid(name) {
            return Err(Error::InvalidKey(format!("bad key name {name:?}")));
        }
        let key = VerifyingKey::from_bytes(&public_key)
            .map_err(|_| Error::InvalidKey("not an Ed25519 public key".to_owned()))?;
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// Parses a verifier key `<name>+<hex key ID>+<base64(0x01 || public key)>`; the key ID must
    /// match the name and key.
    pub fn from_vkey(vkey: &str) -> Result<Self, Error> {
        // signed_note checks the syntax, the algorithm and the key ID, but keeps the key to
        // itself; take it from the last field once that passed.
        StandardVerifier::new(vkey).map_err(|e| Error::InvalidKey(e.to_string()))?;
        let (name, rest) = vkey.split_once('+').unwrap_or_default();
        let (_, key64) = rest.split_once('+').unwrap_or_default();
        let raw = base64_decode(key64).ok_or_else(|| Error::InvalidKey("base64".to_owned()))?;
        let public_key: [u8; 32] = raw
            .get(1..)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| Error::InvalidKey("key length".to_owned()))?;
        Self::new(name, public_key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// `SHA-256(name || "\n" || 0x01 || public key)[:4]`, big-endian.
    pub fn key_id(&self) -> u32 {
        signed_note::key_id(&self.name, &self.encoded_key())
    }

    /// The verifier key string, what a client is configured with.
    pub fn vkey(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.key)
    }

    fn encoded_key(&self) -> Vec<u8> {
        [&[ALG_ED25519][..], self.key.as_bytes()].concat()
    }
}

/// An in-process Ed25519 signer, for tests and tools; the server signs remotely.
pub struct Ed25519NoteSigner {
    key: SigningKey,
}

impl Ed25519NoteSigner {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses a Go-style note private key `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)`
    /// and returns the signer with its public side.
    pub fn from_private_key_string(skey: &str) -> Result<(Self, NoteKey), Error> {
        let bad = |why: &str| Error::InvalidKey(format!("private key: {why}"));
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("prefix"))?;
        // The key is base64, which may itself hold `+`: split off the first two fields only.
        let (name, rest) = rest.split_once('+').ok_or_else(|| bad("fields"))?;
        let (id, key64) = rest.split_once('+').ok_or_else(|| bad("fields"))?;
        let raw = base64_decode(key64).ok_or_else(|| bad("base64"))?;
        let seed: [u8; 32] = match raw.split_first() {
            Some((&ALG_ED25519, seed)) => seed.try_into().map_err(|_| bad("seed length"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        let signer = Self::from_seed(seed);
        let key = NoteKey::new(name, signer.public_key())?;
        if id.len() != 8 || u32::from_str_radix(id, 16).ok() != Some(key.key_id()) {
            return Err(bad("key ID does not match"));
        }
        Ok((signer, key))
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

#[async_trait]
impl NoteSigner for Ed25519NoteSigner {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        Ok(self.key.sign(message).to_bytes())
    }
}

/// Signs `text` (which must end in `\n`) as a note by `key`, asking `signer` for the signature.
pub async fn sign_note(
    text: &str,
    key: &NoteKey,
    signer: &dyn NoteSigner,
) -> Result<String, Error> {
    // Refuse a malformed text before spending a remote signature on it.
    Note::new(text.as_bytes(), &[]).map_err(|e| Error::MalformedNote(e.to_string()))?;
    let signature = signer.sign(text.as_bytes()).await?;
    attach_signature(text, key, signature)
}

/// Builds the signed note from `text` and a signature made elsewhere. The signature is checked
/// against `key` first: a remote signer answering with another key's signature (a misconfigured
/// key ID) would otherwise publish a note no client can verify.
pub fn attach_signature(text: &str, key: &NoteKey, signature: [u8; 64]) -> Result<String, Error> {
    key.key
        .verify_strict(
            text.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| Error::Verification(format!("signature is not by key {}", key.vkey())))?;
    let sig = Signature::new(key.name.clone(), key.key_id(), signature.to_vec())
        .map_err(|e| Error::MalformedNote(e.to_string()))?;
    let note =
        Note::new(text.as_bytes(), &[sig]).map_err(|e| Error::MalformedNote(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| Error::MalformedNote(e.to_string()))
}

/// Opens a signed note: checks that it carries a valid signature by `key` and returns its text.
/// Signatures by other keys are ignored (C2SP lets witnesses cosign); a signature that claims to
/// be by `key` but does not verify fails the whole note.
pub fn open_note(note: &[u8], key: &NoteKey) -> Result<String, Error> {
    let parsed = Note::from_bytes(note).map_err(|e| Error::MalformedNote(e.to_string()))?;
    let verifier =
        StandardVerifier::new(&key.vkey()).map_err(|e| Error::InvalidKey(e.to_string()))?;
    let known = VerifierList::new(vec![Box::new(verifier)]);
    parsed
        .verify(&known)
        .map_err(|e| Error::Verification(e.to_string()))?;
    String::from_utf8(parsed.text().to_vec()).map_err(|e| Error::MalformedNote(e.to_string()))
}

/// Standard base64 with padding, as in C2SP keys.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_strings_round_trip() {
        let signer = Ed25519NoteSigner::from_seed([7; 32]);
        let key = NoteKey::new("example.com/log", signer.public_key()).unwrap();
        let parsed = NoteKey::from_vkey(&key.vkey()).unwrap();
        assert_eq!(parsed, key);
        assert!(NoteKey::new("has space", signer.public_key()).is_err());
        assert!(NoteKey::new("has+plus", signer.public_key()).is_err());
        assert!(NoteKey::new("", signer.public_key()).is_err());
        // A vkey whose ID does not match its name.
        let other = NoteKey::new("example.com/other", signer.public_key()).unwrap();
        let forged = key.vkey().replace(
            &format!("{:08x}", key.key_id()),
            &format!("{:08x}", other.key_id()),
        );
        assert!(NoteKey::from_vkey(&forged).is_err());
    }
}
