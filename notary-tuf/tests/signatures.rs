//! Signature methods (spec §7.4) and `verify_signatures` threshold rules (spec §6.2).

use std::path::Path;

use chrono::{TimeZone as _, Utc};
use notary_tuf::keys::{KeyType, PrivateKey, PublicKey, SignatureMethod};
use notary_tuf::metadata::{BaseRole, Signature, SignedFile};
use notary_tuf::test_support::{self, swizzle, CertOptions};
use notary_tuf::verify::{verify_signature, verify_signatures, SigError};
use notary_tuf::{certs, TufError};
use serde_json::json;

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/keys")
            .join(name),
    )
    .unwrap()
}

fn sig(method: SignatureMethod, key: &PublicKey, bytes: Vec<u8>) -> Signature {
    Signature {
        keyid: key.key_id(),
        method,
        sig: bytes,
    }
}

const MSG: &[u8] = b"{\"_type\":\"Targets\",\"version\":1}";

#[test]
fn ecdsa_raw_signatures() {
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let pk = k.public_key();
    let good = sig(SignatureMethod::Ecdsa, &pk, k.sign(MSG).unwrap());
    verify_signature(MSG, &good, &pk).unwrap();
    assert_eq!(
        verify_signature(b"other", &good, &pk),
        Err(SigError::Invalid)
    );
    // ASN.1/DER form or a truncated signature is not accepted: Notary uses raw r||s.
    let mut short = good.clone();
    short.sig.pop();
    assert_eq!(verify_signature(MSG, &short, &pk), Err(SigError::Invalid));
    // A different key of the same type does not verify.
    let other = PrivateKey::generate(&KeyType::Ecdsa).unwrap().public_key();
    assert_eq!(verify_signature(MSG, &good, &other), Err(SigError::Invalid));
    // ecdsa method with an ed25519 key is a key-type error.
    let ed = PrivateKey::generate(&KeyType::Ed25519)
        .unwrap()
        .public_key();
    assert_eq!(
        verify_signature(MSG, &good, &ed),
        Err(SigError::InvalidKeyType)
    );
}

#[test]
fn ecdsa_with_certificate_key() {
    let now = Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap();
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let cert = test_support::self_signed_cert(&k, &CertOptions::leaf("example.com/x", now));
    let pk = test_support::x509_key(&[cert]);
    assert_eq!(pk.key_type, KeyType::EcdsaX509);
    let good = sig(SignatureMethod::Ecdsa, &pk, k.sign(MSG).unwrap());
    verify_signature(MSG, &good, &pk).unwrap();
    assert_eq!(verify_signature(b"x", &good, &pk), Err(SigError::Invalid));
    // Declared as rsa-x509, the same PEM is the wrong key type for ecdsa.
    let wrong = PublicKey::new(KeyType::RsaX509, pk.public.clone());
    assert_eq!(
        verify_signature(MSG, &good, &wrong),
        Err(SigError::InvalidKeyType)
    );
    // Garbage instead of a certificate.
    let garbage = PublicKey::new(KeyType::EcdsaX509, b"not pem".to_vec());
    assert_eq!(
        verify_signature(MSG, &good, &garbage),
        Err(SigError::Invalid)
    );
}

#[test]
fn ecdsa_p384_over_sha256() {
    let pk = PublicKey::new(KeyType::Ecdsa, key_file("p384.spki.der"));
    let msg = key_file("msg.txt");
    let raw = hex::decode(String::from_utf8(key_file("p384.sig.hex")).unwrap().trim()).unwrap();
    assert_eq!(raw.len(), 96);
    let good = sig(SignatureMethod::Ecdsa, &pk, raw);
    verify_signature(&msg, &good, &pk).unwrap();
    assert_eq!(
        verify_signature(b"another message", &good, &pk),
        Err(SigError::Invalid)
    );
}

#[test]
fn eddsa_signatures() {
    let k = PrivateKey::generate(&KeyType::Ed25519).unwrap();
    let pk = k.public_key();
    let good = sig(SignatureMethod::Eddsa, &pk, k.sign(MSG).unwrap());
    verify_signature(MSG, &good, &pk).unwrap();
    assert_eq!(verify_signature(b"x", &good, &pk), Err(SigError::Invalid));
    let mut bad = good.clone();
    bad.sig[0] ^= 1;
    assert_eq!(verify_signature(MSG, &bad, &pk), Err(SigError::Invalid));
    let short_key = PublicKey::new(KeyType::Ed25519, vec![1; 31]);
    assert!(matches!(
        verify_signature(MSG, &good, &short_key),
        Err(SigError::InvalidKeyLength(_))
    ));
    let ecdsa = PrivateKey::generate(&KeyType::Ecdsa).unwrap().public_key();
    assert_eq!(
        verify_signature(MSG, &good, &ecdsa),
        Err(SigError::InvalidKeyType)
    );
}

fn rsa_sign(pkcs1: &[u8], pss: bool, msg: &[u8]) -> Vec<u8> {
    let kp = ring::signature::RsaKeyPair::from_der(pkcs1).unwrap();
    let mut out = vec![0; kp.public().modulus_len()];
    let alg: &dyn ring::signature::RsaEncoding = if pss {
        &ring::signature::RSA_PSS_SHA256
    } else {
        &ring::signature::RSA_PKCS1_SHA256
    };
    kp.sign(alg, &ring::rand::SystemRandom::new(), msg, &mut out)
        .unwrap();
    out
}

#[test]
fn rsapss_and_pkcs1v15_with_bare_and_certificate_keys() {
    let pkcs1 = key_file("rsa2048.pkcs1.der");
    let bare = PublicKey::new(KeyType::Rsa, key_file("rsa2048.spki.der"));
    let cert_der = certs::pem_certificates(&key_file("rsa2048.crt.pem")).unwrap();
    let x509 = PublicKey::new(KeyType::RsaX509, certs::go_pem_encode_certs(&cert_der));
    let pss = rsa_sign(&pkcs1, true, MSG);
    let pkcs1 = rsa_sign(&pkcs1, false, MSG);
    for key in [&bare, &x509] {
        verify_signature(MSG, &sig(SignatureMethod::RsaPss, key, pss.clone()), key).unwrap();
        verify_signature(
            MSG,
            &sig(SignatureMethod::RsaPkcs1v15, key, pkcs1.clone()),
            key,
        )
        .unwrap();
        // Each method only accepts its own padding.
        assert_eq!(
            verify_signature(MSG, &sig(SignatureMethod::RsaPss, key, pkcs1.clone()), key),
            Err(SigError::Invalid)
        );
        assert_eq!(
            verify_signature(
                MSG,
                &sig(SignatureMethod::RsaPkcs1v15, key, pss.clone()),
                key
            ),
            Err(SigError::Invalid)
        );
        assert_eq!(
            verify_signature(b"x", &sig(SignatureMethod::RsaPss, key, pss.clone()), key),
            Err(SigError::Invalid)
        );
    }
    // rsapss with an ecdsa key is a key-type error.
    let ec = PrivateKey::generate(&KeyType::Ecdsa).unwrap().public_key();
    assert_eq!(
        verify_signature(MSG, &sig(SignatureMethod::RsaPss, &ec, pss.clone()), &ec),
        Err(SigError::InvalidKeyType)
    );
    // A short signature is rejected before any math.
    assert_eq!(
        verify_signature(
            MSG,
            &sig(SignatureMethod::RsaPss, &bare, pss[..255].to_vec()),
            &bare
        ),
        Err(SigError::Invalid)
    );
}

#[test]
fn rsa_keys_below_2048_bits_are_refused() {
    // Both signatures were made by openssl over msg.txt with the same PSS parameters.
    let msg = key_file("msg.txt");
    let ok = PublicKey::new(KeyType::Rsa, key_file("rsa2048.spki.der"));
    verify_signature(
        &msg,
        &sig(SignatureMethod::RsaPss, &ok, key_file("rsa2048.pss.sig")),
        &ok,
    )
    .unwrap();
    let small = PublicKey::new(KeyType::Rsa, key_file("rsa1024.spki.der"));
    assert!(matches!(
        verify_signature(
            &msg,
            &sig(SignatureMethod::RsaPss, &small, key_file("rsa1024.pss.sig")),
            &small
        ),
        Err(SigError::InvalidKeyLength(_))
    ));
    let small_cert = PublicKey::new(KeyType::RsaX509, key_file("rsa1024.crt.pem"));
    assert!(matches!(
        verify_signature(
            &msg,
            &sig(SignatureMethod::RsaPkcs1v15, &small_cert, vec![1; 256]),
            &small_cert
        ),
        Err(SigError::InvalidKeyLength(_))
    ));
}

#[test]
fn pycrypto_pss_uses_pem_public_keys() {
    let pkcs1 = key_file("rsa2048.pkcs1.der");
    let pem_key = PublicKey::new(KeyType::Rsa, key_file("rsa2048.pub.pem"));
    let s = rsa_sign(&pkcs1, true, MSG);
    verify_signature(
        MSG,
        &sig(SignatureMethod::PyCryptoPss, &pem_key, s.clone()),
        &pem_key,
    )
    .unwrap();
    // DER (not PEM) public bytes do not work with the legacy method.
    let der_key = PublicKey::new(KeyType::Rsa, key_file("rsa2048.spki.der"));
    assert_eq!(
        verify_signature(
            MSG,
            &sig(SignatureMethod::PyCryptoPss, &der_key, s.clone()),
            &der_key
        ),
        Err(SigError::Invalid)
    );
    let x509 = PublicKey::new(KeyType::RsaX509, key_file("rsa2048.crt.pem"));
    assert_eq!(
        verify_signature(MSG, &sig(SignatureMethod::PyCryptoPss, &x509, s), &x509),
        Err(SigError::InvalidKeyType)
    );
}

#[test]
fn unknown_methods_never_verify() {
    let k = PrivateKey::generate(&KeyType::Ed25519).unwrap();
    let pk = k.public_key();
    let s = sig(SignatureMethod::parse("ed25519"), &pk, k.sign(MSG).unwrap());
    assert_eq!(
        verify_signature(MSG, &s, &pk),
        Err(SigError::UnsupportedMethod("ed25519".into()))
    );
}

/// A targets-like file signed by the given keys.
fn signed_by(keys: &[&PrivateKey]) -> Vec<u8> {
    let v = json!({"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2031-01-01T00:00:00Z","targets":{},"version":1});
    let publics: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
    let signers: Vec<(&PublicKey, &PrivateKey)> =
        publics.iter().zip(keys.iter().copied()).collect();
    test_support::sign_envelope(&v, &signers)
}

#[test]
fn threshold_counts_distinct_valid_keys() {
    let a = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let b = PrivateKey::generate(&KeyType::Ed25519).unwrap();
    let role = |t| BaseRole::new("targets", t, [a.public_key(), b.public_key()]);
    let both = SignedFile::parse(&signed_by(&[&a, &b])).unwrap();
    assert_eq!(verify_signatures(&both, &role(2)).unwrap().len(), 2);
    let only_a = SignedFile::parse(&signed_by(&[&a])).unwrap();
    verify_signatures(&only_a, &role(1)).unwrap();
    assert_eq!(
        verify_signatures(&only_a, &role(2)),
        Err(TufError::RoleThreshold(
            "valid signatures did not meet threshold for targets".into()
        ))
    );
    // The same key signing twice counts once.
    let dup = SignedFile::parse(&swizzle::duplicate_signatures(&signed_by(&[&a]))).unwrap();
    assert_eq!(dup.signatures.len(), 2);
    assert!(matches!(
        verify_signatures(&dup, &role(2)),
        Err(TufError::RoleThreshold(_))
    ));
    // A signature by a key outside the role is ignored.
    let c = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let with_c = SignedFile::parse(&signed_by(&[&a, &c])).unwrap();
    assert!(matches!(
        verify_signatures(&with_c, &role(2)),
        Err(TufError::RoleThreshold(_))
    ));
    verify_signatures(&with_c, &role(1)).unwrap();
}

#[test]
fn threshold_below_one_and_no_signatures_fail() {
    let a = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let file = SignedFile::parse(&signed_by(&[&a])).unwrap();
    assert_eq!(
        verify_signatures(&file, &BaseRole::new("targets", 0, [a.public_key()])),
        Err(TufError::RoleThreshold(String::new()))
    );
    let none = SignedFile::parse(&swizzle::remove_signatures(&signed_by(&[&a]))).unwrap();
    assert_eq!(
        verify_signatures(&none, &BaseRole::new("targets", 1, [a.public_key()])),
        Err(TufError::NoSignatures)
    );
}

#[test]
fn listed_key_id_must_match_key_content() {
    let a = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let b = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let file = SignedFile::parse(&signed_by(&[&a])).unwrap();
    // The role lists key b under a's ID: Go aborts with ErrInvalidKeyID.
    let mut role = BaseRole::new("targets", 1, []);
    role.keys.insert(a.public_key().key_id(), b.public_key());
    assert_eq!(verify_signatures(&file, &role), Err(TufError::InvalidKeyId));
}

#[test]
fn signatures_cover_canonical_form_not_raw_bytes() {
    let a = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let role = BaseRole::new("targets", 1, [a.public_key()]);
    let bytes = signed_by(&[&a]);
    // Extra whitespace changes the bytes but not the canonical form.
    let spaced = swizzle::add_whitespace(&bytes);
    assert_ne!(spaced, bytes);
    verify_signatures(&SignedFile::parse(&spaced).unwrap(), &role).unwrap();
    // Reordered keys inside `signed` still verify.
    let file = SignedFile::parse(&bytes).unwrap();
    let s = String::from_utf8(bytes.clone()).unwrap();
    let sigs = &s[s.find(",\"signatures\"").unwrap()..];
    let reordered = format!(
        "{{\"signed\":{{\"version\":1,\"targets\":{{}},\"expires\":\"2031-01-01T00:00:00Z\",\"delegations\":{{\"roles\":[],\"keys\":{{}}}},\"_type\":\"Targets\"}}{sigs}"
    );
    let re = SignedFile::parse(reordered.as_bytes()).unwrap();
    assert_eq!(
        re.canonical_signed().unwrap(),
        file.canonical_signed().unwrap()
    );
    verify_signatures(&re, &role).unwrap();
    // A changed value with the old signature fails.
    let changed = swizzle::bump_version(&bytes);
    assert!(matches!(
        verify_signatures(&SignedFile::parse(&changed).unwrap(), &role),
        Err(TufError::RoleThreshold(_))
    ));
    // Corrupted signature bytes fail.
    let corrupt = swizzle::corrupt_signature(&bytes);
    assert!(verify_signatures(&SignedFile::parse(&corrupt).unwrap(), &role).is_err());
    // A wrong method fails; method case does not matter.
    let wrong = swizzle::set_signature_method(&bytes, SignatureMethod::Eddsa);
    assert!(verify_signatures(&SignedFile::parse(&wrong).unwrap(), &role).is_err());
    let upper = String::from_utf8(bytes)
        .unwrap()
        .replace("\"method\":\"ecdsa\"", "\"method\":\"ECDSA\"");
    verify_signatures(&SignedFile::parse(upper.as_bytes()).unwrap(), &role).unwrap();
}

#[test]
fn numbers_go_cannot_reencode_make_verification_fail() {
    let a = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let role = BaseRole::new("targets", 1, [a.public_key()]);
    let bytes = signed_by(&[&a]);
    let s = String::from_utf8(bytes).unwrap();
    let big = s.replace("\"targets\":{}", "\"targets\":{},\"x\":9007199254740993");
    assert!(matches!(
        verify_signatures(&SignedFile::parse(big.as_bytes()).unwrap(), &role),
        Err(TufError::Canonical(_))
    ));
    let frac = s.replace("\"targets\":{}", "\"targets\":{},\"x\":1.5");
    assert!(matches!(
        verify_signatures(&SignedFile::parse(frac.as_bytes()).unwrap(), &role),
        Err(TufError::Canonical(_))
    ));
}
