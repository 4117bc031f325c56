//! Keys encrypted by the Go signer (Debian notary-signer 0.7.0, captured from its MariaDB
//! `private_keys` table by running tests/harness/start-pair.sh; see tests/data/README.md).

use notary_signer::keystore::jwe::{self, JweError};
use notary_tuf::keys::{KeyType, PrivateKey};

use crate::support::{data, unhex, verify, GO_PASSPHRASE};

fn open_go_key(name: &str, key_type: KeyType) -> PrivateKey {
    let plaintext = jwe::decrypt(&data(&format!("{name}.jwe")), GO_PASSPHRASE.as_bytes())
        .expect("Go JWE decrypts");
    let key = PrivateKey::from_go_private_bytes(&key_type, &plaintext).unwrap();
    let public = key.public_key();
    assert_eq!(public.public, unhex(&data(&format!("{name}.public.hex"))));
    assert_eq!(public.key_id(), data(&format!("{name}.keyid")));
    key
}

#[test]
fn go_ecdsa_key_decrypts_to_the_stored_public_key() {
    let key = open_go_key("go-ecdsa", KeyType::Ecdsa);
    // Go's plaintext is x509.MarshalECPrivateKey output; re-serialising must give the same
    // shape (121-byte SEC1 DER), so Go can read keys we write.
    let bytes = key.to_go_private_bytes();
    assert_eq!(bytes.len(), 121);
    assert_eq!(&bytes[..7], &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20]);
    let sig = key.sign(b"signed bytes").unwrap();
    verify(&key.public_key(), b"signed bytes", &sig);
}

#[test]
fn go_ed25519_key_decrypts_to_the_stored_public_key() {
    let key = open_go_key("go-ed25519", KeyType::Ed25519);
    assert_eq!(key.to_go_private_bytes().len(), 96);
    let sig = key.sign(b"signed bytes").unwrap();
    verify(&key.public_key(), b"signed bytes", &sig);
}

#[test]
fn go_jwe_with_wrong_passphrase_fails_cleanly() {
    assert_eq!(
        jwe::decrypt(&data("go-ecdsa.jwe"), b"not the passphrase"),
        Err(JweError::Decrypt)
    );
}

#[test]
fn go_header_matches_what_we_write() {
    use base64::Engine as _;
    let b64u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header_of = |jwe: &str| {
        let h = b64u.decode(jwe.split('.').next().unwrap()).unwrap();
        String::from_utf8(h).unwrap()
    };
    let go = header_of(&data("go-ecdsa.jwe"));
    let ours = header_of(&jwe::encrypt(b"x", b"pw").unwrap());
    // Identical apart from the 16-character salt.
    assert_eq!(go.len(), ours.len());
    let prefix = r#"{"alg":"PBES2-HS256+A128KW","enc":"A256GCM","p2c":8192,"p2s":""#;
    assert!(go.starts_with(prefix) && ours.starts_with(prefix), "{go}");
}
