//! At-rest encryption of private keys, byte-compatible with the Go signer.
//!
//! Go encrypts with go-jose: JWE compact serialization, key management
//! `PBES2-HS256+A128KW` with 8192 PBKDF2 iterations and a 12-byte salt, content encryption
//! `A256GCM` (spec signer-and-tuf §3.3):
//!
//! ```text
//! B64U(header) . B64U(AES-KW(KEK, CEK)) . B64U(iv) . B64U(ciphertext) . B64U(tag)
//! header = {"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":8192,"p2s":"<B64U(salt)>"}
//! KEK    = PBKDF2-HMAC-SHA256(passphrase, "PBES2-HS256+A128KW" || 0x00 || salt, p2c, 16)
//! ```
//!
//! The GCM additional data is the ASCII of the first segment. Decryption reads `p2c` and
//! `p2s` from the header, so other iteration counts are accepted (within a sane bound).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_kw::KekAes128;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use base64::Engine as _;
use rand::RngCore;
use serde::Deserialize;
use sha2::Sha256;

/// Key management algorithm Go writes (also stored in the `keywrap_alg` column).
pub const KEYWRAP_ALG: &str = "PBES2-HS256+A128KW";
/// Content encryption algorithm Go writes (also stored in the `encryption_alg` column).
pub const ENCRYPTION_ALG: &str = "A256GCM";
/// PBKDF2 iteration count go-jose uses by default and Go Notary keeps.
pub const P2C: u32 = 8192;
/// Upper bound on `p2c` when decrypting, so a corrupt row cannot stall the process.
const MAX_P2C: u32 = 10_000_000;

/// Why a JWE could not be produced or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JweError {
    /// Not five dot-separated base64url segments, or a bad header.
    #[error("malformed JWE: {0}")]
    Malformed(String),
    /// An algorithm other than PBES2-HS256+A128KW / A256GCM.
    #[error("unsupported JWE algorithm: {0}")]
    Unsupported(String),
    /// Key unwrap or GCM authentication failed: wrong passphrase or tampered data.
    #[error("decryption failed (wrong passphrase or corrupted data)")]
    Decrypt,
    /// The cipher refused to encrypt (does not happen with valid sizes).
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    p2c: u32,
    p2s: String,
}

fn derive_kek(passphrase: &[u8], salt: &[u8], iterations: u32) -> [u8; 16] {
    // RFC 7518 §4.8.1.1: the PBKDF2 salt is the algorithm name, a zero byte, then p2s.
    let mut full_salt = Vec::with_capacity(KEYWRAP_ALG.len() + 1 + salt.len());
    full_salt.extend_from_slice(KEYWRAP_ALG.as_bytes());
    full_salt.push(0);
    full_salt.extend_from_slice(salt);
    let mut kek = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase, &full_salt, iterations, &mut kek);
    kek
}

/// Encrypts `plaintext` under `passphrase` exactly as the Go signer does.
pub fn encrypt(plaintext: &[u8], passphrase: &[u8]) -> Result<String, JweError> {
    let mut rng = rand::rngs::OsRng;
    let mut salt = [0u8; 12];
    let mut cek = [0u8; 32];
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut cek);
    rng.fill_bytes(&mut iv);

    // Go marshals the header with sorted keys and no spaces; these are those bytes.
    let header = format!(
        r#"{{"alg":"{KEYWRAP_ALG}","enc":"{ENCRYPTION_ALG}","p2c":{P2C},"p2s":"{}"}}"#,
        B64U.encode(salt)
    );
    let header_b64 = B64U.encode(header.as_bytes());

    let kek = KekAes128::from(derive_kek(passphrase, &salt, P2C));
    let wrapped = kek
        .wrap_vec(&cek)
        .map_err(|e| JweError::Encrypt(e.to_string()))?;
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|e| JweError::Encrypt(e.to_string()))?;
    let sealed = cipher
        .encrypt(
            &Nonce::from(iv),
            Payload {
                msg: plaintext,
                aad: header_b64.as_bytes(),
            },
        )
        .map_err(|e| JweError::Encrypt(e.to_string()))?;
    // aes-gcm appends the 16-byte tag; JWE carries it as its own segment.
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    Ok(format!(
        "{header_b64}.{}.{}.{}.{}",
        B64U.encode(wrapped),
        B64U.encode(iv),
        B64U.encode(ciphertext),
        B64U.encode(tag)
    ))
}

/// Decrypts a JWE written by [`encrypt`] or by the Go signer.
pub fn decrypt(jwe: &str, passphrase: &[u8]) -> Result<Vec<u8>, JweError> {
    let parts: Vec<&str> = jwe.trim().split('.').collect();
    let [header_b64, wrapped, iv, ciphertext, tag] = parts[..] else {
        return Err(JweError::Malformed(format!(
            "expected 5 segments, found {}",
            parts.len()
        )));
    };
    let decode = |what: &str, s: &str| {
        B64U.decode(s)
            .map_err(|e| JweError::Malformed(format!("{what}: {e}")))
    };
    let header: Header = serde_json::from_slice(&decode("header", header_b64)?)
        .map_err(|e| JweError::Malformed(format!("header: {e}")))?;
    if header.alg != KEYWRAP_ALG {
        return Err(JweError::Unsupported(header.alg));
    }
    if header.enc != ENCRYPTION_ALG {
        return Err(JweError::Unsupported(header.enc));
    }
    if header.p2c == 0 || header.p2c > MAX_P2C {
        return Err(JweError::Malformed(format!(
            "p2c {} out of range",
            header.p2c
        )));
    }
    let salt = decode("p2s", &header.p2s)?;
    let wrapped = decode("encrypted key", wrapped)?;
    let iv = decode("iv", iv)?;
    let iv: [u8; 12] = iv
        .as_slice()
        .try_into()
        .map_err(|_| JweError::Malformed(format!("iv has {} bytes", iv.len())))?;
    let mut sealed = decode("ciphertext", ciphertext)?;
    let tag = decode("tag", tag)?;
    if tag.len() != 16 {
        return Err(JweError::Malformed(format!("tag has {} bytes", tag.len())));
    }
    sealed.extend_from_slice(&tag);

    let kek = KekAes128::from(derive_kek(passphrase, &salt, header.p2c));
    let cek = kek.unwrap_vec(&wrapped).map_err(|_| JweError::Decrypt)?;
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| JweError::Decrypt)?;
    cipher
        .decrypt(
            &Nonce::from(iv),
            Payload {
                msg: &sealed,
                aad: header_b64.as_bytes(),
            },
        )
        .map_err(|_| JweError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let jwe = encrypt(b"secret key bytes", b"pw").unwrap();
        assert_eq!(decrypt(&jwe, b"pw").unwrap(), b"secret key bytes");
        assert_eq!(decrypt(&jwe, b"other"), Err(JweError::Decrypt));
    }

    #[test]
    fn header_bytes_are_gos() {
        let jwe = encrypt(b"x", b"pw").unwrap();
        let header = B64U.decode(jwe.split('.').next().unwrap()).unwrap();
        let header = String::from_utf8(header).unwrap();
        let prefix = r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":8192,"p2s":""#;
        assert!(header.starts_with(prefix), "{header}");
        // 12 salt bytes are 16 base64url characters, then the closing `"}`.
        assert_eq!(header.len(), prefix.len() + 16 + 2);
        assert!(header.ends_with("\"}"));
        let segments: Vec<&str> = jwe.split('.').collect();
        assert_eq!(B64U.decode(segments[1]).unwrap().len(), 40);
        assert_eq!(B64U.decode(segments[2]).unwrap().len(), 12);
        assert_eq!(B64U.decode(segments[4]).unwrap().len(), 16);
    }

    #[test]
    fn salt_and_iv_are_fresh_each_time() {
        let a = encrypt(b"x", b"pw").unwrap();
        let b = encrypt(b"x", b"pw").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn tampering_is_detected() {
        let jwe = encrypt(b"payload", b"pw").unwrap();
        let mut parts: Vec<String> = jwe.split('.').map(str::to_string).collect();
        let mut ct = B64U.decode(&parts[3]).unwrap();
        ct[0] ^= 1;
        parts[3] = B64U.encode(ct);
        assert_eq!(decrypt(&parts.join("."), b"pw"), Err(JweError::Decrypt));
    }

    #[test]
    fn header_parameters_are_read_from_the_header() {
        // Build a JWE with p2c = 1000 by hand and check decrypt honours it.
        let salt = [7u8; 12];
        let header = format!(
            r#"{{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":1000,"p2s":"{}"}}"#,
            B64U.encode(salt)
        );
        let header_b64 = B64U.encode(&header);
        let cek = [9u8; 32];
        let kek = KekAes128::from(derive_kek(b"pw", &salt, 1000));
        let wrapped = kek.wrap_vec(&cek).unwrap();
        let iv = [1u8; 12];
        let sealed = Aes256Gcm::new_from_slice(&cek)
            .unwrap()
            .encrypt(
                &Nonce::from(iv),
                Payload {
                    msg: b"hello",
                    aad: header_b64.as_bytes(),
                },
            )
            .unwrap();
        let (ct, tag) = sealed.split_at(sealed.len() - 16);
        let jwe = format!(
            "{header_b64}.{}.{}.{}.{}",
            B64U.encode(wrapped),
            B64U.encode(iv),
            B64U.encode(ct),
            B64U.encode(tag)
        );
        assert_eq!(decrypt(&jwe, b"pw").unwrap(), b"hello");
    }

    #[test]
    fn malformed_inputs() {
        assert!(matches!(
            decrypt("a.b.c", b"pw"),
            Err(JweError::Malformed(_))
        ));
        let other_alg = B64U.encode(r#"{"alg":"dir","enc":"A256GCM","p2c":1,"p2s":""}"#);
        assert!(matches!(
            decrypt(&format!("{other_alg}.a.a.a.a"), b"pw"),
            Err(JweError::Unsupported(_))
        ));
    }
}
