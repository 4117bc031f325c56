//! Role-level rules as notary-server applies them (server.md §6.3 V2–V4, spec §7.5, §9),
//! each with a passing and a failing case, on repositories built by `TestRepo`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use notary_tuf::keys::{KeyType, PrivateKey, PublicKey, SignatureMethod};
use notary_tuf::metadata::{
    self, DelegationRole, FileMeta, Signature, SignedFile, Snapshot, Timestamp,
};
use notary_tuf::test_support::{self, swizzle, CertOptions, TestRepo};
use notary_tuf::verify::{self, RepoBuilder};
use notary_tuf::{canonical, certs, MemoryCryptoService, TufError};

const GUN: &str = "example.com/app";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

fn repo() -> TestRepo {
    TestRepo::new_at(GUN, now())
}

fn builder() -> RepoBuilder {
    RepoBuilder::new(GUN, now())
}

fn load_root(bytes: &[u8]) -> Result<(), TufError> {
    builder().load("root", bytes, 1, false)
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/keys")
            .join(name),
    )
    .unwrap()
}

/// Replace the root key with one whose certificate bundle is `ders` (signed by `private`).
fn set_root_cert(r: &mut TestRepo, ders: &[Vec<u8>], private: PrivateKey) -> PublicKey {
    let public = test_support::x509_key(ders);
    r.set_role_key("root", public.clone());
    r.root.common.version = 1;
    r.root_signers = vec![(public.clone(), private)];
    public
}

fn leaf_opts(cn: &str) -> CertOptions {
    CertOptions::leaf(cn, now())
}

fn integrity_fail() -> TufError {
    TufError::RootValidationFail("failed to validate integrity of roots".into())
}

fn no_leaf() -> TufError {
    TufError::RootValidationFail("unable to retrieve valid leaf certificates".into())
}

// ---------------------------------------------------------------------------------------
// Root

#[test]
fn complete_repository_loads() {
    let r = repo();
    let f = r.build();
    let mut b = builder();
    b.load("root", &f.root, 1, false).unwrap();
    b.load("targets", &f.targets["targets"], 1, false).unwrap();
    b.load("snapshot", &f.snapshot, 1, false).unwrap();
    b.load("timestamp", &f.timestamp, 1, false).unwrap();
    assert!(b.is_loaded("timestamp"));
    assert_eq!(b.loaded_version("root"), 1);
    assert_eq!(b.loaded_version("targets/none"), 1);
    assert_eq!(
        b.load("root", &f.root, 1, false),
        Err(TufError::BuilderInput(
            "root has already been loaded".into()
        ))
    );
}

#[test]
fn root_structure_rules() {
    let r = repo();
    load_root(&r.root_file()).unwrap();

    let mut bad = r.clone();
    bad.root.common.type_ = "Targets".into();
    assert_eq!(
        load_root(&bad.root_file()),
        Err(TufError::InvalidMetadata {
            role: "root".into(),
            msg: "expected type Root, not Targets".into()
        })
    );
    let mut bad = r.clone();
    bad.root.common.version = 0;
    assert!(
        matches!(load_root(&bad.root_file()), Err(TufError::InvalidMetadata { msg, .. }) if msg == "version cannot be less than 1")
    );
    let mut bad = r.clone();
    bad.root.roles.remove("timestamp");
    assert!(
        matches!(load_root(&bad.root_file()), Err(TufError::InvalidMetadata { msg, .. }) if msg == "missing timestamp role specification")
    );
    let mut bad = r.clone();
    bad.root.roles.get_mut("snapshot").unwrap().threshold = 0;
    assert!(
        matches!(load_root(&bad.root_file()), Err(TufError::InvalidMetadata { msg, .. }) if msg.starts_with("invalid threshold specified for snapshot"))
    );
    let mut bad = r.clone();
    bad.root
        .roles
        .get_mut("targets")
        .unwrap()
        .keyids
        .push("ab".repeat(32));
    assert!(
        matches!(load_root(&bad.root_file()), Err(TufError::InvalidMetadata { msg, .. }) if msg.contains("without corresponding key"))
    );
}

#[test]
fn root_certificate_cn_must_match_gun() {
    let r = repo();
    load_root(&r.root_file()).unwrap();
    let err = RepoBuilder::new("example.com/other", now()).load("root", &r.root_file(), 1, false);
    assert_eq!(err, Err(no_leaf()));
}

#[test]
fn root_certificate_wildcard_cn_matches_prefix() {
    let mut r = repo();
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    set_root_cert(
        &mut r,
        &[test_support::self_signed_cert(
            &k,
            &leaf_opts("example.com/*"),
        )],
        k,
    );
    load_root(&r.root_file()).unwrap();
    assert_eq!(
        RepoBuilder::new("other.com/app", now()).load("root", &r.root_file(), 1, false),
        Err(no_leaf())
    );
}

/// A root whose only certificate is valid from `nb` to `na`.
fn repo_with_cert(nb: DateTime<Utc>, na: DateTime<Utc>) -> TestRepo {
    let mut r = repo();
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let opts = CertOptions {
        common_name: GUN.into(),
        not_before: nb,
        not_after: na,
        is_ca: false,
    };
    set_root_cert(&mut r, &[test_support::self_signed_cert(&k, &opts)], k);
    r
}

#[test]
fn root_certificate_validity_window() {
    let cases = [
        (now() - Duration::days(10), now() + Duration::days(10), true),
        (
            now() + Duration::hours(12),
            now() + Duration::days(10),
            true,
        ), // up to a day early is fine
        (now() + Duration::days(2), now() + Duration::days(10), false), // not yet valid
        (now() - Duration::days(10), now() - Duration::days(1), false), // expired
    ];
    for (nb, na, ok) in cases {
        let res = load_root(&repo_with_cert(nb, na).root_file());
        if ok {
            res.unwrap();
        } else {
            assert_eq!(res, Err(no_leaf()), "{nb} .. {na}");
        }
    }
}

#[test]
fn root_certificate_must_not_use_sha1() {
    let mut r = repo();
    // The SHA-1 certificate (CN example.com/sha1) is the only root key: no valid leaf.
    let cert = certs::pem_certificates(&key_file("sha1.crt.pem")).unwrap();
    let signer = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    set_root_cert(&mut r, &cert, signer);
    assert_eq!(
        RepoBuilder::new("example.com/sha1", now()).load("root", &r.root_file(), 1, false),
        Err(no_leaf())
    );
}

/// A root whose only root key is an RSA certificate, signed with rsapss by that key.
fn rsa_root(cert_file: &str, key_file_name: &str) -> Vec<u8> {
    let mut r = TestRepo::new_at("example.com/rsa", now());
    let cert = certs::pem_certificates(&key_file(cert_file)).unwrap();
    let public = PublicKey::new(KeyType::RsaX509, certs::go_pem_encode_certs(&cert));
    r.set_role_key("root", public.clone());
    r.root.common.version = 1;
    let msg = canonical::to_canonical_bytes(&r.root.to_signed_value()).unwrap();
    let kp = ring::signature::RsaKeyPair::from_der(&key_file(key_file_name));
    let sig = match kp {
        Ok(kp) => {
            let mut out = vec![0; kp.public().modulus_len()];
            kp.sign(
                &ring::signature::RSA_PSS_SHA256,
                &ring::rand::SystemRandom::new(),
                &msg,
                &mut out,
            )
            .unwrap();
            out
        }
        // ring refuses to sign with keys below 2048 bits; the certificate check fails first.
        Err(_) => vec![0; 128],
    };
    metadata::envelope_bytes(
        &msg,
        &[Signature {
            keyid: public.key_id(),
            method: SignatureMethod::RsaPss,
            sig,
        }],
    )
}

#[test]
fn rsa_root_certificates_need_2048_bits() {
    let b = || RepoBuilder::new("example.com/rsa", now());
    b().load(
        "root",
        &rsa_root("rsa2048.crt.pem", "rsa2048.pkcs1.der"),
        1,
        false,
    )
    .unwrap();
    assert_eq!(
        b().load(
            "root",
            &rsa_root("rsa1024.crt.pem", "rsa1024.pkcs1.der"),
            1,
            false
        ),
        Err(no_leaf())
    );
}

#[test]
fn root_bundle_shape_rules() {
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let leaf = test_support::self_signed_cert(&k, &leaf_opts(GUN));
    let ca_key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let ca_opts = CertOptions {
        is_ca: true,
        ..leaf_opts("intermediate")
    };
    let ca = test_support::self_signed_cert(&ca_key, &ca_opts);
    let issued = test_support::issued_cert(&k, &leaf_opts(GUN), &ca_key, &ca_opts);
    let other_key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let other_leaf = test_support::self_signed_cert(&other_key, &leaf_opts(GUN));

    let try_bundle = |ders: Vec<Vec<u8>>| {
        let mut r = repo();
        set_root_cert(&mut r, &ders, k.clone());
        load_root(&r.root_file())
    };
    try_bundle(vec![leaf.clone()]).unwrap();
    try_bundle(vec![issued.clone(), ca.clone()]).unwrap(); // leaf + intermediate
    assert_eq!(try_bundle(vec![ca.clone(), issued.clone()]), Err(no_leaf())); // CA first
    assert_eq!(try_bundle(vec![leaf.clone(), other_leaf]), Err(no_leaf())); // two leaves
    assert_eq!(try_bundle(vec![ca]), Err(no_leaf())); // no leaf

    // A non-certificate PEM block in the bundle disqualifies the key.
    let mut r = repo();
    let mut pem = certs::go_pem_encode_certs(std::slice::from_ref(&leaf));
    pem.extend_from_slice(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    let public = PublicKey::new(KeyType::EcdsaX509, pem);
    r.set_role_key("root", public.clone());
    r.root_signers = vec![(public, k.clone())];
    assert_eq!(load_root(&r.root_file()), Err(no_leaf()));
}

/// A root whose key is a valid leaf issued by an intermediate that expires at `ca_expiry`.
fn repo_with_intermediate(ca_expiry: DateTime<Utc>) -> TestRepo {
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let ca_key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let ca_opts = CertOptions {
        is_ca: true,
        not_after: ca_expiry,
        not_before: now() - Duration::days(100),
        ..leaf_opts("intermediate")
    };
    let ca = test_support::self_signed_cert(&ca_key, &ca_opts);
    let issued = test_support::issued_cert(&k, &leaf_opts(GUN), &ca_key, &ca_opts);
    let mut r = repo();
    set_root_cert(&mut r, &[issued, ca], k);
    r
}

#[test]
fn expired_intermediates_are_dropped_from_the_rebuilt_key() {
    let r = repo_with_intermediate(now() - Duration::days(1));
    // The leaf is valid, but the key rebuilt without the expired intermediate has another ID.
    assert_eq!(load_root(&r.root_file()), Err(integrity_fail()));
}

#[test]
fn root_pem_must_be_go_encoded() {
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let der = test_support::self_signed_cert(&k, &leaf_opts(GUN));
    let mut r = repo();
    set_root_cert(&mut r, std::slice::from_ref(&der), k.clone());
    load_root(&r.root_file()).unwrap();
    // Same certificate, but without the trailing newline: a different key ID than Go's rebuild.
    let mut pem = certs::go_pem_encode_certs(&[der]);
    pem.pop();
    let public = PublicKey::new(KeyType::EcdsaX509, pem);
    r.set_role_key("root", public.clone());
    r.root_signers = vec![(public, k)];
    assert_eq!(load_root(&r.root_file()), Err(integrity_fail()));
}

#[test]
fn root_must_be_signed_by_its_root_keys() {
    let r = repo();
    load_root(&r.root_file()).unwrap();
    assert_eq!(
        load_root(&swizzle::corrupt_signature(&r.root_file())),
        Err(integrity_fail())
    );
    assert_eq!(
        load_root(&swizzle::remove_signatures(&r.root_file())),
        Err(integrity_fail())
    );
    assert_eq!(
        load_root(&swizzle::bump_version(&r.root_file())),
        Err(integrity_fail())
    );
    let mut t2 = r.clone();
    t2.root.roles.get_mut("root").unwrap().threshold = 2;
    assert_eq!(load_root(&t2.root_file()), Err(integrity_fail()));
}

#[test]
fn root_version_and_expiry() {
    let mut r = repo();
    builder().load("root", &r.root_file(), 1, false).unwrap();
    assert_eq!(
        builder().load("root", &r.root_file(), 2, false),
        Err(TufError::LowVersion {
            actual: 1,
            current: 2
        })
    );
    r.root.common.expires = now() - Duration::seconds(1);
    let expired = r.root_file();
    assert!(
        matches!(builder().load("root", &expired, 1, false), Err(TufError::Expired { role, .. }) if role == "root")
    );
    builder().load("root", &expired, 1, true).unwrap();
}

#[test]
fn root_rotation_requires_previous_root_signatures() {
    let mut r = repo();
    let mut stored = builder();
    stored.load("root", &r.root_file(), 1, true).unwrap();
    r.rotate_root_key();
    let rotated = r.root_file(); // signed by old and new keys
    let mut next = stored.bootstrap_new_builder();
    next.load("root", &rotated, 1, false).unwrap();

    r.root_signers.remove(0); // only the new key signs
    let only_new = r.root_file();
    builder().load("root", &only_new, 1, false).unwrap(); // fine without history
    assert_eq!(
        stored
            .bootstrap_new_builder()
            .load("root", &only_new, 1, false),
        Err(TufError::RootRotationFail(
            "failed to validate data with current trusted certificates".into()
        ))
    );
}

#[test]
fn previous_root_certificates_count_even_when_expired() {
    // The stored root's certificate expired yesterday; a rotation signed by it still counts.
    let mut r = repo();
    let old_key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let opts = CertOptions {
        common_name: GUN.into(),
        not_before: now() - Duration::days(400),
        not_after: now() - Duration::days(1),
        is_ca: false,
    };
    set_root_cert(
        &mut r,
        &[test_support::self_signed_cert(&old_key, &opts)],
        old_key,
    );
    let old_file = SignedFile::parse(&r.root_file()).unwrap();
    let old_root = old_file.root().unwrap();
    // It can no longer validate as a root of its own (its leaf is expired) ...
    assert_eq!(
        verify::validate_root(None, &old_file, GUN, now()),
        Err(no_leaf())
    );
    // ... but as the previous root it authorizes the rotation.
    r.rotate_root_key();
    let new_file = SignedFile::parse(&r.root_file()).unwrap();
    verify::validate_root(Some(&old_root), &new_file, GUN, now()).unwrap();
    r.root_signers.remove(0);
    let new_only = SignedFile::parse(&r.root_file()).unwrap();
    assert!(matches!(
        verify::validate_root(Some(&old_root), &new_only, GUN, now()),
        Err(TufError::RootRotationFail(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Targets

fn with_root(r: &TestRepo) -> RepoBuilder {
    let mut b = builder();
    b.load("root", &r.root_file(), 1, false).unwrap();
    b
}

#[test]
fn targets_signed_by_root_targets_role() {
    let r = repo();
    with_root(&r)
        .load("targets", &r.targets_file("targets"), 1, false)
        .unwrap();
    let mut other = r.clone();
    other.targets_key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    assert_eq!(
        with_root(&r).load("targets", &other.targets_file("targets"), 1, false),
        Err(TufError::RoleThreshold(
            "valid signatures did not meet threshold for targets".into()
        ))
    );
    assert_eq!(
        builder().load("targets", &r.targets_file("targets"), 1, false),
        Err(TufError::BuilderInput("root must be loaded first".into()))
    );
}

#[test]
fn targets_structure_version_and_expiry() {
    let r = repo();
    let load = |r: &TestRepo, min: i64, allow_expired: bool| {
        with_root(r).load("targets", &r.targets_file("targets"), min, allow_expired)
    };
    load(&r, 1, false).unwrap();
    let mut bad = r.clone();
    bad.targets.get_mut("targets").unwrap().common.type_ = "Root".into();
    assert!(
        matches!(load(&bad, 1, false), Err(TufError::InvalidMetadata { msg, .. }) if msg == "expected type Targets, not Root")
    );
    let mut bad = r.clone();
    bad.targets.get_mut("targets").unwrap().common.version = 0;
    assert!(matches!(
        load(&bad, 1, false),
        Err(TufError::InvalidMetadata { .. })
    ));
    assert_eq!(
        load(&r, 2, false),
        Err(TufError::LowVersion {
            actual: 1,
            current: 2
        })
    );
    let mut exp = r.clone();
    exp.targets.get_mut("targets").unwrap().common.expires = now() - Duration::days(1);
    assert!(
        matches!(load(&exp, 1, false), Err(TufError::Expired { role, .. }) if role == "targets")
    );
    load(&exp, 1, true).unwrap();
}

#[test]
fn targets_delegation_entries_must_be_valid_children() {
    let mut r = repo();
    r.add_delegation("targets", "targets/releases", &[""]);
    with_root(&r)
        .load("targets", &r.targets_file("targets"), 1, false)
        .unwrap();

    let invalid = |f: &dyn Fn(&mut DelegationRole)| {
        let mut r2 = r.clone();
        f(&mut r2.targets.get_mut("targets").unwrap().delegations.roles[0]);
        with_root(&r2).load("targets", &r2.targets_file("targets"), 1, false)
    };
    assert!(
        matches!(invalid(&|d| d.name = "targets/Releases".into()), Err(TufError::InvalidMetadata { msg, .. }) if msg == "delegation role targets/Releases invalid")
    );
    assert!(
        matches!(invalid(&|d| d.name = "targets/a/b".into()), Err(TufError::InvalidMetadata { msg, .. }) if msg == "delegation role targets/a/b invalid")
    );
    assert!(matches!(
        invalid(&|d| d.name = "releases".into()),
        Err(TufError::InvalidMetadata { .. })
    ));
    assert!(
        matches!(invalid(&|d| d.threshold = 0), Err(TufError::InvalidMetadata { msg, .. }) if msg.starts_with("invalid threshold specified for targets/releases"))
    );
    assert!(
        matches!(invalid(&|d| d.keyids.push("00".repeat(32))), Err(TufError::InvalidMetadata { msg, .. }) if msg.contains("without corresponding key"))
    );
}

// ---------------------------------------------------------------------------------------
// Delegations

/// Root and targets (and delegations) from one consistent build.
fn with_files(f: &test_support::RepoFiles) -> RepoBuilder {
    let mut b = builder();
    b.load("root", &f.root, 1, false).unwrap();
    for (role, bytes) in &f.targets {
        b.load(role, bytes, 1, false).unwrap();
    }
    b
}

fn with_targets(r: &TestRepo) -> RepoBuilder {
    let mut b = with_root(r);
    b.load("targets", &r.targets_file("targets"), 1, false)
        .unwrap();
    b
}

#[test]
fn delegation_signed_by_parent_listed_keys() {
    let mut r = repo();
    r.add_delegation("targets", "targets/releases", &[""]);
    r.add_target("targets/releases", "v1", b"content");
    with_targets(&r)
        .load(
            "targets/releases",
            &r.targets_file("targets/releases"),
            1,
            false,
        )
        .unwrap();

    let mut other = r.clone();
    other.delegation_keys.insert(
        "targets/releases".into(),
        vec![PrivateKey::generate(&KeyType::Ecdsa).unwrap()],
    );
    assert!(matches!(
        with_targets(&r).load(
            "targets/releases",
            &other.targets_file("targets/releases"),
            1,
            false
        ),
        Err(TufError::RoleThreshold(_))
    ));
}

#[test]
fn delegation_must_be_listed_by_its_parent() {
    let mut r = repo();
    r.add_delegation("targets", "targets/releases", &[""]);
    let file = r.targets_file("targets/releases");
    with_targets(&r)
        .load("targets/releases", &file, 1, false)
        .unwrap();
    // Parent without the delegation.
    let mut unlisted = r.clone();
    unlisted
        .targets
        .get_mut("targets")
        .unwrap()
        .delegations
        .roles
        .clear();
    assert_eq!(
        with_targets(&unlisted).load("targets/releases", &file, 1, false),
        Err(TufError::InvalidRole {
            role: "targets/releases".into(),
            reason: "delegation does not exist".into()
        })
    );
    // Targets not loaded at all.
    assert_eq!(
        with_root(&r).load("targets/releases", &file, 1, false),
        Err(TufError::BuilderInput(
            "targets must be loaded first".into()
        ))
    );
    // Invalid names are refused before anything else.
    assert_eq!(
        with_targets(&r).load("targets/Releases", &file, 1, false),
        Err(TufError::BuilderInput(
            "targets/Releases is an invalid role".into()
        ))
    );
}

#[test]
fn nested_delegation_needs_the_whole_chain_loaded() {
    let mut r = repo();
    r.add_delegation("targets", "targets/a", &[""]);
    r.add_delegation("targets/a", "targets/a/b", &["b/"]);
    let a = r.targets_file("targets/a");
    let ab = r.targets_file("targets/a/b");
    let mut b = with_targets(&r);
    // Without targets/a loaded, targets/a/b does not exist.
    assert!(matches!(
        b.load("targets/a/b", &ab, 1, false),
        Err(TufError::InvalidRole { .. })
    ));
    b.load("targets/a", &a, 1, false).unwrap();
    b.load("targets/a/b", &ab, 1, false).unwrap();
    // A chain link that drops the intermediate role breaks the child.
    let mut broken = r.clone();
    broken
        .targets
        .get_mut("targets")
        .unwrap()
        .delegations
        .roles
        .clear();
    let mut b2 = with_targets(&broken);
    assert!(b2.load("targets/a", &a, 1, false).is_err());
    assert!(matches!(
        b2.load("targets/a/b", &ab, 1, false),
        Err(TufError::InvalidRole { .. })
    ));
}

#[test]
fn delegation_certificates_are_checked_without_expiry() {
    let mut r = repo();
    let k = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let expired = CertOptions {
        common_name: "delegate".into(),
        not_before: now() - Duration::days(30),
        not_after: now() - Duration::days(1),
        is_ca: false,
    };
    let key = test_support::x509_key(&[test_support::self_signed_cert(&k, &expired)]);
    r.add_delegation_with_key("targets", "targets/releases", &[""], key);
    r.delegation_keys.insert("targets/releases".into(), vec![k]);
    // The signature is made with the bare key's ID by targets_file; re-sign with the x509 ID.
    let listed = r.targets["targets"]
        .delegations
        .keys
        .values()
        .next()
        .unwrap()
        .clone();
    let value = r.targets["targets/releases"].to_signed_value();
    let file = test_support::sign_envelope(
        &value,
        &[(&listed, &r.delegation_keys["targets/releases"][0])],
    );
    with_targets(&r)
        .load("targets/releases", &file, 1, false)
        .unwrap();

    // A SHA-1 certificate as delegation key makes the role unusable.
    let mut r2 = repo();
    let sha1 = PublicKey::new(KeyType::EcdsaX509, key_file("sha1.crt.pem"));
    r2.add_delegation_with_key("targets", "targets/releases", &[""], sha1);
    r2.delegation_keys.insert(
        "targets/releases".into(),
        vec![PrivateKey::generate(&KeyType::Ecdsa).unwrap()],
    );
    assert!(matches!(
        with_targets(&r2).load("targets/releases", &r2.targets_file("targets/releases"), 1, false),
        Err(TufError::Certificate(msg)) if msg.contains("SHA-1")
    ));
}

#[test]
fn delegation_structure_and_expiry() {
    let mut r = repo();
    r.add_delegation("targets", "targets/releases", &[""]);
    let mut bad = r.clone();
    bad.targets
        .get_mut("targets/releases")
        .unwrap()
        .common
        .type_ = "Snapshot".into();
    assert!(matches!(
        with_targets(&r).load("targets/releases", &bad.targets_file("targets/releases"), 1, false),
        Err(TufError::InvalidMetadata { role, .. }) if role == "targets/releases"
    ));
    let mut exp = r.clone();
    exp.targets
        .get_mut("targets/releases")
        .unwrap()
        .common
        .expires = now() - Duration::days(1);
    let f = exp.targets_file("targets/releases");
    assert!(matches!(
        with_targets(&r).load("targets/releases", &f, 1, false),
        Err(TufError::Expired { .. })
    ));
    with_targets(&r)
        .load("targets/releases", &f, 1, true)
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Snapshot and timestamp

#[test]
fn snapshot_signed_by_root_snapshot_role() {
    let r = repo();
    let f = r.build();
    with_files(&f)
        .load("snapshot", &f.snapshot, 1, false)
        .unwrap();
    let mut other = r.clone();
    other.snapshot_key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
    let wrong = other.snapshot_file(&f.root, &f.targets);
    assert!(matches!(
        with_files(&f).load("snapshot", &wrong, 1, false),
        Err(TufError::RoleThreshold(_))
    ));
}

/// Load root+targets (+ delegations) from `f` and then a snapshot made from `snap`.
fn load_snapshot_value(
    r: &TestRepo,
    f: &test_support::RepoFiles,
    snap: &Snapshot,
) -> Result<(), TufError> {
    let mut b = builder();
    b.load("root", &f.root, 1, false)?;
    for (role, bytes) in &f.targets {
        b.load(role, bytes, 1, false)?;
    }
    let public = r.snapshot_key.public_key();
    let bytes = test_support::sign_envelope(&snap.to_signed_value(), &[(&public, &r.snapshot_key)]);
    b.load("snapshot", &bytes, 1, false)
}

#[test]
fn snapshot_structure_rules() {
    let r = repo();
    let f = r.build();
    let good = r.snapshot_value(&f.root, &f.targets);
    load_snapshot_value(&r, &f, &good).unwrap();

    let mut s = good.clone();
    s.meta.remove("root");
    assert!(
        matches!(load_snapshot_value(&r, &f, &s), Err(TufError::InvalidMetadata { msg, .. }) if msg == "missing root sha256 checksum information")
    );
    let mut s = good.clone();
    s.meta.get_mut("targets").unwrap().hashes.remove("sha256");
    assert!(
        matches!(load_snapshot_value(&r, &f, &s), Err(TufError::InvalidMetadata { msg, .. }) if msg == "missing targets sha256 checksum information")
    );
    let mut s = good.clone();
    s.meta
        .get_mut("root")
        .unwrap()
        .hashes
        .get_mut("sha512")
        .unwrap()
        .truncate(32);
    assert!(
        matches!(load_snapshot_value(&r, &f, &s), Err(TufError::InvalidMetadata { msg, .. }) if msg == "invalid root checksum information, sha512 checksum invalid")
    );
    let mut s = good.clone();
    s.common.type_ = "Timestamp".into();
    assert!(matches!(
        load_snapshot_value(&r, &f, &s),
        Err(TufError::InvalidMetadata { .. })
    ));
    let mut s = good.clone();
    s.common.expires = now() - Duration::seconds(1);
    assert!(matches!(
        load_snapshot_value(&r, &f, &s),
        Err(TufError::Expired { .. })
    ));
}

#[test]
fn snapshot_must_match_loaded_files() {
    let mut r = repo();
    r.add_delegation("targets", "targets/releases", &[""]);
    let f = r.build();
    let good = r.snapshot_value(&f.root, &f.targets);
    load_snapshot_value(&r, &f, &good).unwrap();

    // Root hash from another file.
    let mut s = good.clone();
    s.meta
        .insert("root".into(), FileMeta::from_bytes(b"something else"));
    assert!(
        matches!(load_snapshot_value(&r, &f, &s), Err(TufError::MismatchedChecksum { name, .. }) if name == "root")
    );
    // sha256 right but sha512 wrong.
    let mut s = good.clone();
    let wrong512 = FileMeta::from_bytes(b"x").hashes["sha512"].clone();
    s.meta
        .get_mut("targets")
        .unwrap()
        .hashes
        .insert("sha512".into(), wrong512);
    assert!(
        matches!(load_snapshot_value(&r, &f, &s), Err(TufError::MismatchedChecksum { alg, .. }) if alg == "sha512")
    );
    // A loaded delegation with no entry.
    let mut s = good.clone();
    s.meta.remove("targets/releases");
    assert_eq!(
        load_snapshot_value(&r, &f, &s),
        Err(TufError::MissingMeta {
            role: "targets/releases".into()
        })
    );
    // Only an unknown algorithm counts as no checksum.
    let mut s = good.clone();
    s.meta.get_mut("targets/releases").unwrap().hashes =
        BTreeMap::from([("md5".to_string(), vec![1; 16])]);
    assert_eq!(
        load_snapshot_value(&r, &f, &s),
        Err(TufError::MissingMeta {
            role: "targets/releases".into()
        })
    );
    // Length is not checked; unknown algorithms next to a known one are ignored.
    let mut s = good.clone();
    s.meta.get_mut("targets").unwrap().length += 7;
    s.meta
        .get_mut("targets")
        .unwrap()
        .hashes
        .insert("md5".into(), vec![0; 3]);
    load_snapshot_value(&r, &f, &s).unwrap();
    // Only sha256 present is enough.
    let mut s = good.clone();
    s.meta.get_mut("root").unwrap().hashes.remove("sha512");
    load_snapshot_value(&r, &f, &s).unwrap();
}

#[test]
fn timestamp_checks_snapshot_hash() {
    let r = repo();
    let f = r.build();
    let mut b = with_files(&f);
    b.load("snapshot", &f.snapshot, 1, false).unwrap();
    b.load("timestamp", &f.timestamp, 1, false).unwrap();

    let mut b = with_files(&f);
    b.load("snapshot", &f.snapshot, 1, false).unwrap();
    let other = r.timestamp_file(b"not the snapshot");
    assert!(
        matches!(b.load("timestamp", &other, 1, false), Err(TufError::MismatchedChecksum { name, .. }) if name == "snapshot")
    );

    let mut bad = r.clone();
    bad.timestamp_common.type_ = "Snapshot".into();
    assert!(matches!(
        with_root(&r).load("timestamp", &bad.timestamp_file(&f.snapshot), 1, false),
        Err(TufError::InvalidMetadata { .. })
    ));
}

#[test]
fn files_loaded_after_snapshot_are_checked_immediately() {
    let r = repo();
    let f = r.build();
    let mut b = builder();
    b.load("root", &f.root, 1, false).unwrap();
    b.load("snapshot", &f.snapshot, 1, false).unwrap();
    let mut b2 = b.clone();
    b.load("targets", &f.targets["targets"], 1, false).unwrap();
    // Same content, other bytes: the snapshot entry no longer matches.
    assert!(matches!(
        b2.load("targets", &swizzle::add_whitespace(&f.targets["targets"]), 1, false),
        Err(TufError::MismatchedChecksum { name, .. }) if name == "targets"
    ));
}

// ---------------------------------------------------------------------------------------
// Generation

#[test]
fn next_snapshot_keeps_previous_entries() {
    let mut r = repo();
    r.add_delegation("targets", "targets/old", &[""]);
    let f = r.build();
    let prev = SignedFile::parse(&f.snapshot).unwrap().snapshot().unwrap();
    let new_targets = FileMeta::from_bytes(b"new targets");
    let next = verify::next_snapshot(
        Some(&prev),
        &[("targets".into(), new_targets.clone())],
        now(),
    )
    .unwrap();
    assert_eq!(next.common.version, prev.common.version + 1);
    assert_eq!(next.common.expires, now() + Duration::days(3 * 365));
    assert_eq!(next.meta["targets"], new_targets);
    assert_eq!(next.meta["targets/old"], prev.meta["targets/old"]);
    assert_eq!(next.meta["root"], prev.meta["root"]);

    // No previous snapshot: a new one needs targets.
    let fresh = verify::next_snapshot(
        None,
        &[
            ("root".into(), new_targets.clone()),
            ("targets".into(), new_targets.clone()),
        ],
        now(),
    )
    .unwrap();
    assert_eq!(fresh.common.version, 1);
    fresh.validate_structure().unwrap();
    assert!(matches!(
        verify::next_snapshot(None, &[("root".into(), new_targets.clone())], now()),
        Err(TufError::BuilderInput(_))
    ));
    // A structurally invalid previous snapshot is refused.
    let mut broken = prev.clone();
    broken.meta.remove("root");
    assert!(matches!(
        verify::next_snapshot(Some(&broken), &[], now()),
        Err(TufError::InvalidMetadata { .. })
    ));
}

#[test]
fn next_timestamp_describes_the_snapshot() {
    let r = repo();
    let f = r.build();
    let prev = SignedFile::parse(&f.timestamp)
        .unwrap()
        .timestamp()
        .unwrap();
    let ts = verify::next_timestamp(Some(&prev), b"snapshot bytes", now()).unwrap();
    assert_eq!(ts.common.version, 2);
    assert_eq!(ts.common.expires, now() + Duration::days(14));
    assert_eq!(
        *ts.snapshot_meta().unwrap(),
        FileMeta::from_bytes(b"snapshot bytes")
    );
    let first = verify::next_timestamp(None, b"s", now()).unwrap();
    assert_eq!(first.common.version, 1);
    first.validate_structure().unwrap();
    let mut broken: Timestamp = prev.clone();
    broken.meta.clear();
    assert!(verify::next_timestamp(Some(&broken), b"s", now()).is_err());
}

#[tokio::test]
async fn server_signing_through_a_crypto_service() {
    let mut r = repo();
    r.add_target("targets", "app", b"v1");
    let f = r.build();
    let mut b = builder();
    b.load("root", &f.root, 1, false).unwrap();
    b.load("targets", &f.targets["targets"], 1, false).unwrap();
    let root = b.root().unwrap().typed.clone();
    let snap = verify::next_snapshot(None, &b.snapshot_meta_updates(), now()).unwrap();
    let cs = r.server_crypto();
    let snap_bytes = metadata::sign_with_service(
        &snap.to_signed_value(),
        &root.build_base_role("snapshot").unwrap(),
        &cs,
        &metadata::AnyGun,
    )
    .await
    .unwrap();
    b.load("snapshot", &snap_bytes, 1, false).unwrap();
    let ts = verify::next_timestamp(None, &snap_bytes, now()).unwrap();
    let ts_bytes = metadata::sign_with_service(
        &ts.to_signed_value(),
        &root.build_base_role("timestamp").unwrap(),
        &cs,
        &metadata::AnyGun,
    )
    .await
    .unwrap();
    b.load("timestamp", &ts_bytes, 1, false).unwrap();
    // Envelope exactly as Go writes it.
    let parsed = SignedFile::parse(&ts_bytes).unwrap();
    assert_eq!(
        metadata::envelope_bytes(&parsed.canonical_signed().unwrap(), &parsed.signatures),
        ts_bytes
    );
    assert!(String::from_utf8(ts_bytes)
        .unwrap()
        .starts_with("{\"signed\":{\"_type\":\"Timestamp\",\"expires\":\"2030-06-15T12:00:00Z\""));

    // A service without the snapshot key cannot sign it.
    let empty = MemoryCryptoService::new();
    let role = root.build_base_role("snapshot").unwrap();
    let err =
        metadata::sign_with_service(&snap.to_signed_value(), &role, &empty, &metadata::AnyGun)
            .await
            .unwrap_err();
    let id = role.keys.keys().next().unwrap();
    assert_eq!(
        err.to_string(),
        format!("signing keys not available: need 1 keys from 1 possible keys ({id})")
    );

    // A key held for another role is refused, not used (Go signs with it).
    let ts_role = root.build_base_role("timestamp").unwrap();
    let ts_id = ts_role.keys.keys().next().unwrap().clone();
    let mislabelled = MemoryCryptoService::new();
    mislabelled.add_key(cs.private_key(&ts_id).unwrap(), &r.gun, "snapshot");
    let err = metadata::sign_with_service(
        &ts.to_signed_value(),
        &ts_role,
        &mislabelled,
        &metadata::AnyGun,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, metadata::SignError::KeyRefused { key_id, .. } if *key_id == ts_id),
        "{err}"
    );

    // The gate refuses the whole signing, naming the key.
    struct Never;
    #[async_trait::async_trait]
    impl metadata::KeyGate for Never {
        async fn admit(
            &self,
            key_id: &str,
            held: &notary_tuf::HeldKey,
            role: &str,
        ) -> Result<(), metadata::SignError> {
            Err(metadata::SignError::KeyRefused {
                key_id: key_id.to_string(),
                reason: format!("not for {role} of {:?}", held.gun),
            })
        }
    }
    let err = metadata::sign_with_service(&ts.to_signed_value(), &ts_role, &cs, &Never)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "signing key {ts_id} refused: not for timestamp of Some({:?})",
            r.gun
        )
    );
}

// ---------------------------------------------------------------------------------------
// Trusted roots and pre-decoded files: the same outcome as loading the bytes

/// The stored root as the server checks it: no previous root, expiry tolerated.
fn trusted(bytes: &[u8], at: DateTime<Utc>) -> verify::TrustedRoot {
    let mut b = RepoBuilder::new(GUN, at);
    b.load("root", bytes, 1, true).unwrap();
    b.trusted_root().expect("checked without a previous root")
}

/// Loading `t` at `at` ends like loading its bytes, for every version/expiry setting.
fn assert_same_as_bytes(t: &verify::TrustedRoot, gun: &str, at: DateTime<Utc>) {
    for (min_version, allow_expired) in [(1, true), (1, false), (2, true)] {
        let mut from_memo = RepoBuilder::new(gun, at);
        let mut from_bytes = RepoBuilder::new(gun, at);
        assert_eq!(
            from_memo.load_trusted_root(t, min_version, allow_expired),
            from_bytes.load("root", t.raw(), min_version, allow_expired),
            "{gun} at {at}, min {min_version}, allow expired {allow_expired}"
        );
        assert_eq!(
            from_memo.root().map(|r| r.file.raw.clone()),
            from_bytes.root().map(|r| r.file.raw.clone())
        );
    }
}

#[test]
fn trusted_root_loads_like_its_bytes_over_time() {
    let (nb, na) = (now() - Duration::days(10), now() + Duration::days(10));
    let mut r = repo_with_cert(nb, na);
    r.root.common.expires = now() + Duration::days(5);
    let t = trusted(&r.root_file(), now());
    assert!(t.holds_for(GUN, now() + Duration::days(9)));
    assert!(!t.holds_for(GUN, na + Duration::seconds(1)));
    assert!(!t.holds_for("example.com/other", now()));
    // Inside the window, after the root itself expired, after the certificate expired,
    // before it was valid, and exactly on its edges.
    for at in [
        now() + Duration::hours(1),
        now() + Duration::days(6),
        na,
        na + Duration::seconds(1),
        nb - Duration::days(1),
        nb - Duration::days(1) - Duration::seconds(1),
    ] {
        assert_same_as_bytes(&t, GUN, at);
    }
    // After expiry of the certificate the memo is not used: the full check refuses.
    let mut late = RepoBuilder::new(GUN, na + Duration::seconds(1));
    assert_eq!(late.load_trusted_root(&t, 1, true), Err(no_leaf()));
    // Another GUN gets the full check (the certificate names this one).
    assert_same_as_bytes(&t, "example.com/other", now());
    assert_eq!(
        RepoBuilder::new("example.com/other", now()).load_trusted_root(&t, 1, true),
        Err(no_leaf())
    );
}

#[test]
fn trusted_root_is_checked_again_when_an_intermediate_expires() {
    let r = repo_with_intermediate(now() + Duration::days(3));
    let t = trusted(&r.root_file(), now());
    assert_same_as_bytes(&t, GUN, now() + Duration::days(2));
    // Once the intermediate has expired the rebuilt key has another ID: refused, as the
    // bytes are.
    let later = now() + Duration::days(4);
    assert!(!t.holds_for(GUN, later));
    assert_eq!(
        RepoBuilder::new(GUN, later).load_trusted_root(&t, 1, true),
        Err(integrity_fail())
    );
}

#[test]
fn no_trusted_root_on_a_certificate_edge_or_after_rotation() {
    let r = repo_with_cert(now() - Duration::days(10), now());
    let mut b = builder();
    b.load("root", &r.root_file(), 1, true).unwrap();
    assert!(
        b.trusted_root().is_none(),
        "now is the certificate's notAfter"
    );

    let r = repo();
    let mut stored = builder();
    stored.load("root", &r.root_file(), 1, true).unwrap();
    let t = stored.trusted_root().unwrap();
    let mut next = stored.bootstrap_new_builder();
    next.load("root", &r.root_file(), 1, false).unwrap();
    assert!(next.trusted_root().is_none());
    // A builder with a previous root checks the memo's bytes in full.
    let mut next = stored.bootstrap_new_builder();
    next.load_trusted_root(&t, 1, false).unwrap();
    assert_eq!(
        next.load_trusted_root(&t, 1, false),
        Err(TufError::BuilderInput(
            "root has already been loaded".into()
        ))
    );
}

#[test]
fn repository_loads_the_same_from_a_trusted_root_and_decoded_files() {
    let r = repo();
    let f = r.build();
    let t = trusted(&f.root, now() - Duration::hours(1));
    let parsed = |b: &[u8]| SignedFile::parse(b).unwrap();

    let mut a = builder();
    a.load_trusted_root(&t, 1, true).unwrap();
    a.load_parsed("targets", parsed(&f.targets["targets"]), 1, false)
        .unwrap();
    a.load_parsed("snapshot", parsed(&f.snapshot), 1, false)
        .unwrap();
    let mut b = builder();
    b.load("root", &f.root, 1, true).unwrap();
    b.load("targets", &f.targets["targets"], 1, false).unwrap();
    b.load("snapshot", &f.snapshot, 1, false).unwrap();
    assert_eq!(a.snapshot_meta_updates(), b.snapshot_meta_updates());

    // A snapshot that does not list the trusted root's bytes is refused either way.
    let mut other = r.clone();
    other.root.common.version = 2;
    other.targets.get_mut("targets").unwrap().common.version = 2;
    let stale = other.build();
    let mut a = builder();
    a.load_trusted_root(&t, 1, true).unwrap();
    a.load_parsed("targets", parsed(&stale.targets["targets"]), 1, false)
        .unwrap();
    let mut b = builder();
    b.load("root", &f.root, 1, true).unwrap();
    b.load("targets", &stale.targets["targets"], 1, false)
        .unwrap();
    let refused = b.load("snapshot", &stale.snapshot, 1, false);
    assert!(refused.is_err());
    assert_eq!(
        a.load_parsed("snapshot", parsed(&stale.snapshot), 1, false),
        refused
    );

    // Checksums from an earlier snapshot apply to decoded files as to bytes.
    let mut a = builder();
    a.load("root", &f.root, 1, false).unwrap();
    a.load("timestamp", &f.timestamp, 1, false).unwrap();
    a.load("snapshot", &f.snapshot, 1, false).unwrap();
    let mut b = a.clone();
    let wrong = &stale.targets["targets"];
    let refused = b.load("targets", wrong, 1, false);
    assert!(refused.is_err());
    assert_eq!(a.load_parsed("targets", parsed(wrong), 1, false), refused);
}
