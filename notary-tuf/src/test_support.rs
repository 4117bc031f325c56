//! Test helpers (feature `test-support`): a repository builder that produces valid,
//! Notary-shaped signed metadata for a GUN, certificate helpers, and a "swizzler" that
//! breaks files in named ways (after Go's `tuf/testutils`).
//!
//! Everything here signs with real keys; nothing is hard-coded. Tests that need a fixed
//! clock use [`TestRepo::new_at`].

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, Duration, Timelike as _, Utc};
use serde_json::Value;

use crate::canonical;
use crate::certs;
use crate::crypto::MemoryCryptoService;
use crate::keys::{KeyType, PrivateKey, PublicKey, SignatureMethod};
use crate::metadata::{
    self, DelegationRole, Delegations, FileMeta, Root, RootRole, Signature, SignedCommon,
    SignedFile, Snapshot, Targets, Timestamp,
};
use crate::roles;
use crate::verify::{
    ROOT_EXPIRY_DAYS, SNAPSHOT_EXPIRY_DAYS, TARGETS_EXPIRY_DAYS, TIMESTAMP_EXPIRY_DAYS,
};

/// Options for a test certificate.
#[derive(Debug, Clone)]
pub struct CertOptions {
    /// Subject CN.
    pub common_name: String,
    /// Start of validity (second precision).
    pub not_before: DateTime<Utc>,
    /// End of validity (second precision).
    pub not_after: DateTime<Utc>,
    /// basicConstraints CA.
    pub is_ca: bool,
}

impl CertOptions {
    /// A Notary-style leaf: CN, valid from `now` for ten years.
    pub fn leaf(common_name: &str, now: DateTime<Utc>) -> CertOptions {
        CertOptions {
            common_name: common_name.to_string(),
            not_before: now,
            not_after: now + Duration::days(ROOT_EXPIRY_DAYS),
            is_ca: false,
        }
    }
}

fn cert_params(opts: &CertOptions) -> rcgen::CertificateParams {
    let to_offset = |t: DateTime<Utc>| {
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
            + std::time::Duration::from_secs(u64::from(t.num_seconds_from_midnight()))
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, opts.common_name.as_str());
    params.not_before = to_offset(opts.not_before);
    params.not_after = to_offset(opts.not_after);
    let serial: [u8; 16] = rand::random();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    if opts.is_ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    } else {
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    }
    params
}

fn rcgen_key(key: &PrivateKey) -> rcgen::KeyPair {
    let der = key.to_pkcs8_der().expect("test keys encode");
    rcgen::KeyPair::try_from(der.as_slice()).expect("rcgen accepts PKCS#8 keys")
}

/// A self-signed certificate (DER) for an ECDSA key, like the Notary client makes.
pub fn self_signed_cert(key: &PrivateKey, opts: &CertOptions) -> Vec<u8> {
    let kp = rcgen_key(key);
    cert_params(opts)
        .self_signed(&kp)
        .expect("certificate signs")
        .der()
        .to_vec()
}

/// A certificate (DER) for `key` issued by `issuer_key` under the issuer options (its
/// subject name).
pub fn issued_cert(
    key: &PrivateKey,
    opts: &CertOptions,
    issuer_key: &PrivateKey,
    issuer: &CertOptions,
) -> Vec<u8> {
    let kp = rcgen_key(key);
    let ikp = rcgen_key(issuer_key);
    let issuer = rcgen::Issuer::new(cert_params(issuer), ikp);
    cert_params(opts)
        .signed_by(&kp, &issuer)
        .expect("certificate signs")
        .der()
        .to_vec()
}

/// An `ecdsa-x509` key whose public part is the Go PEM encoding of `ders` (leaf first).
pub fn x509_key(ders: &[Vec<u8>]) -> PublicKey {
    PublicKey::new(KeyType::EcdsaX509, certs::go_pem_encode_certs(ders))
}

/// Signs `signed` with each (listed public key, private key) pair and returns envelope bytes.
pub fn sign_envelope(signed: &Value, signers: &[(&PublicKey, &PrivateKey)]) -> Vec<u8> {
    let msg = canonical::to_canonical_bytes(signed).expect("test metadata canonicalizes");
    let sigs: Vec<Signature> = signers
        .iter()
        .map(|(public, private)| Signature {
            keyid: public.key_id(),
            method: private.signature_method(),
            sig: private.sign(&msg).expect("signing works"),
        })
        .collect();
    metadata::envelope_bytes(&msg, &sigs)
}

/// One consistent set of signed files (snapshot hashes match the root and targets bytes,
/// timestamp hash matches the snapshot bytes).
#[derive(Debug, Clone)]
pub struct RepoFiles {
    /// root.json
    pub root: Vec<u8>,
    /// targets.json and every delegation, by role name.
    pub targets: BTreeMap<String, Vec<u8>>,
    /// snapshot.json
    pub snapshot: Vec<u8>,
    /// timestamp.json
    pub timestamp: Vec<u8>,
}

impl RepoFiles {
    /// The bytes of any role.
    pub fn get(&self, role: &str) -> Option<&[u8]> {
        match role {
            roles::ROOT => Some(&self.root),
            roles::SNAPSHOT => Some(&self.snapshot),
            roles::TIMESTAMP => Some(&self.timestamp),
            other => self.targets.get(other).map(Vec::as_slice),
        }
    }
}

/// A GUN's repository as a client would build it: an `ecdsa-x509` root certificate
/// (CN = GUN, code signing, ten years), an `ecdsa` targets key, `ecdsa` snapshot and
/// timestamp keys, version-1 metadata. All fields are public so tests can bend them.
#[derive(Debug, Clone)]
pub struct TestRepo {
    /// The GUN.
    pub gun: String,
    /// The clock used for expiries and certificates.
    pub now: DateTime<Utc>,
    /// Keys that sign root: (listed x509 key, private key). Rotation appends here.
    pub root_signers: Vec<(PublicKey, PrivateKey)>,
    /// Targets key.
    pub targets_key: PrivateKey,
    /// Snapshot key (server-held when the snapshot is server-managed).
    pub snapshot_key: PrivateKey,
    /// Timestamp key (always server-held).
    pub timestamp_key: PrivateKey,
    /// Root content.
    pub root: Root,
    /// Targets and delegation content by role.
    pub targets: BTreeMap<String, Targets>,
    /// Private keys signing each delegation role.
    pub delegation_keys: BTreeMap<String, Vec<PrivateKey>>,
    /// Snapshot version and expiry.
    pub snapshot_common: SignedCommon,
    /// Timestamp version and expiry.
    pub timestamp_common: SignedCommon,
}

impl TestRepo {
    /// A fresh repository for `gun` at the current time.
    pub fn new(gun: &str) -> TestRepo {
        TestRepo::new_at(gun, Utc::now())
    }

    /// A fresh repository for `gun` with `now` as the clock.
    pub fn new_at(gun: &str, now: DateTime<Utc>) -> TestRepo {
        let gen = |kt: &KeyType| PrivateKey::generate(kt).expect("key generation works");
        let root_private = gen(&KeyType::Ecdsa);
        let root_public = x509_key(&[self_signed_cert(
            &root_private,
            &CertOptions::leaf(gun, now),
        )]);
        let targets_key = gen(&KeyType::Ecdsa);
        let snapshot_key = gen(&KeyType::Ecdsa);
        let timestamp_key = gen(&KeyType::Ecdsa);

        let mut keys = BTreeMap::new();
        let mut role_map = BTreeMap::new();
        for (name, key) in [
            (roles::ROOT, root_public.clone()),
            (roles::TARGETS, targets_key.public_key()),
            (roles::SNAPSHOT, snapshot_key.public_key()),
            (roles::TIMESTAMP, timestamp_key.public_key()),
        ] {
            let id = key.key_id();
            keys.insert(id.clone(), key);
            role_map.insert(
                name.to_string(),
                RootRole {
                    keyids: vec![id],
                    threshold: 1,
                },
            );
        }
        let root = Root {
            common: SignedCommon {
                type_: metadata::TYPE_ROOT.into(),
                version: 1,
                expires: now + Duration::days(ROOT_EXPIRY_DAYS),
            },
            keys,
            roles: role_map,
            consistent_snapshot: false,
        };
        let mut targets = BTreeMap::new();
        targets.insert(roles::TARGETS.to_string(), empty_targets(now));
        TestRepo {
            gun: gun.to_string(),
            now,
            root_signers: vec![(root_public, root_private)],
            targets_key,
            snapshot_key,
            timestamp_key,
            root,
            targets,
            delegation_keys: BTreeMap::new(),
            snapshot_common: SignedCommon {
                type_: metadata::TYPE_SNAPSHOT.into(),
                version: 1,
                expires: now + Duration::days(SNAPSHOT_EXPIRY_DAYS),
            },
            timestamp_common: SignedCommon {
                type_: metadata::TYPE_TIMESTAMP.into(),
                version: 1,
                expires: now + Duration::days(TIMESTAMP_EXPIRY_DAYS),
            },
        }
    }

    /// The listed public key of a base role (the first if several).
    pub fn role_key(&self, role: &str) -> PublicKey {
        let id = &self.root.roles[role].keyids[0];
        self.root.keys[id].clone()
    }

    /// A signed root.json.
    pub fn root_file(&self) -> Vec<u8> {
        let signers: Vec<(&PublicKey, &PrivateKey)> =
            self.root_signers.iter().map(|(p, k)| (p, k)).collect();
        sign_envelope(&self.root.to_signed_value(), &signers)
    }

    /// A signed targets or delegation file.
    pub fn targets_file(&self, role: &str) -> Vec<u8> {
        let value = self.targets[role].to_signed_value();
        if role == roles::TARGETS {
            let public = self.targets_key.public_key();
            sign_envelope(&value, &[(&public, &self.targets_key)])
        } else {
            let keys = &self.delegation_keys[role];
            let publics: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
            let signers: Vec<(&PublicKey, &PrivateKey)> = publics.iter().zip(keys).collect();
            sign_envelope(&value, &signers)
        }
    }

    /// Snapshot content describing these exact files.
    pub fn snapshot_value(&self, root: &[u8], targets: &BTreeMap<String, Vec<u8>>) -> Snapshot {
        let mut meta = BTreeMap::new();
        meta.insert(roles::ROOT.to_string(), FileMeta::from_bytes(root));
        for (role, bytes) in targets {
            meta.insert(role.clone(), FileMeta::from_bytes(bytes));
        }
        Snapshot {
            common: self.snapshot_common.clone(),
            meta,
        }
    }

    /// A signed snapshot over the given files.
    pub fn snapshot_file(&self, root: &[u8], targets: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
        let public = self.snapshot_key.public_key();
        sign_envelope(
            &self.snapshot_value(root, targets).to_signed_value(),
            &[(&public, &self.snapshot_key)],
        )
    }

    /// A signed timestamp over the given snapshot bytes.
    pub fn timestamp_file(&self, snapshot: &[u8]) -> Vec<u8> {
        let mut ts = Timestamp::new(0, self.now, FileMeta::from_bytes(snapshot));
        ts.common = self.timestamp_common.clone();
        let public = self.timestamp_key.public_key();
        sign_envelope(&ts.to_signed_value(), &[(&public, &self.timestamp_key)])
    }

    /// Signs everything once, consistently.
    pub fn build(&self) -> RepoFiles {
        let root = self.root_file();
        let targets: BTreeMap<String, Vec<u8>> = self
            .targets
            .keys()
            .map(|r| (r.clone(), self.targets_file(r)))
            .collect();
        let snapshot = self.snapshot_file(&root, &targets);
        let timestamp = self.timestamp_file(&snapshot);
        RepoFiles {
            root,
            targets,
            snapshot,
            timestamp,
        }
    }

    /// Adds (or replaces) a target in `role` describing `content`.
    pub fn add_target(&mut self, role: &str, name: &str, content: &[u8]) {
        self.targets
            .get_mut(role)
            .expect("role exists")
            .targets
            .insert(name.to_string(), FileMeta::from_bytes(content));
    }

    /// Adds a target with the given metadata (e.g. sha256 only, as `docker trust` writes).
    pub fn add_target_meta(&mut self, role: &str, name: &str, meta: FileMeta) {
        self.targets
            .get_mut(role)
            .expect("role exists")
            .targets
            .insert(name.to_string(), meta);
    }

    /// Adds delegation `name` to `parent` with a fresh `ecdsa` key and the given paths, and
    /// an empty targets file for it; returns the new key.
    pub fn add_delegation(&mut self, parent: &str, name: &str, paths: &[&str]) -> PrivateKey {
        let key = PrivateKey::generate(&KeyType::Ecdsa).expect("key generation works");
        self.add_delegation_with_key(parent, name, paths, key.public_key());
        self.delegation_keys
            .insert(name.to_string(), vec![key.clone()]);
        key
    }

    /// Adds delegation `name` to `parent` listing an existing public key (which may be an
    /// x509 key); the caller supplies signers through [`TestRepo::delegation_keys`].
    pub fn add_delegation_with_key(
        &mut self,
        parent: &str,
        name: &str,
        paths: &[&str],
        key: PublicKey,
    ) {
        let id = key.key_id();
        let p = self.targets.get_mut(parent).expect("parent exists");
        p.delegations.keys.insert(id.clone(), key);
        p.delegations.roles.retain(|d| d.name != name);
        p.delegations.roles.push(DelegationRole {
            name: name.to_string(),
            keyids: vec![id],
            threshold: 1,
            paths: paths.iter().map(|s| s.to_string()).collect(),
        });
        self.targets
            .entry(name.to_string())
            .or_insert_with(|| empty_targets(self.now));
    }

    /// Replaces a base role's key in root with `key` (snapshot/timestamp rotation) and bumps
    /// the root version.
    pub fn set_role_key(&mut self, role: &str, key: PublicKey) {
        let id = key.key_id();
        for old in std::mem::take(&mut self.root.roles.get_mut(role).expect("role").keyids) {
            let still_used = self.root.roles.values().any(|r| r.keyids.contains(&old));
            if !still_used {
                self.root.keys.remove(&old);
            }
        }
        self.root.keys.insert(id.clone(), key);
        self.root.roles.get_mut(role).expect("role").keyids = vec![id];
        self.root.common.version += 1;
    }

    /// Root key rotation: a new certificate key replaces the listed root key; the old key
    /// keeps signing (so the previous root's threshold is met) until removed from
    /// [`TestRepo::root_signers`]. Bumps the root version. Returns the new listed key.
    pub fn rotate_root_key(&mut self) -> PublicKey {
        let private = PrivateKey::generate(&KeyType::Ecdsa).expect("key generation works");
        let public = x509_key(&[self_signed_cert(
            &private,
            &CertOptions::leaf(&self.gun, self.now),
        )]);
        self.set_role_key(roles::ROOT, public.clone());
        self.root_signers.push((public.clone(), private));
        public
    }

    /// Increments the version of a targets role.
    pub fn bump_targets(&mut self, role: &str) {
        self.targets
            .get_mut(role)
            .expect("role exists")
            .common
            .version += 1;
    }

    /// A memory crypto service holding the snapshot and timestamp keys, as the server's
    /// signer would for a repository with a server-managed snapshot.
    pub fn server_crypto(&self) -> MemoryCryptoService {
        let cs = MemoryCryptoService::new();
        cs.add_key(self.snapshot_key.clone(), &self.gun, roles::SNAPSHOT);
        cs.add_key(self.timestamp_key.clone(), &self.gun, roles::TIMESTAMP);
        cs
    }
}

fn empty_targets(now: DateTime<Utc>) -> Targets {
    Targets {
        common: SignedCommon {
            type_: metadata::TYPE_TARGETS.into(),
            version: 1,
            expires: now + Duration::days(TARGETS_EXPIRY_DAYS),
        },
        targets: BTreeMap::new(),
        delegations: Delegations::default(),
    }
}

/// Ways to break a signed file without re-signing it (Go `testutils.MetadataSwizzler`).
pub mod swizzle {
    use super::*;

    fn parse(bytes: &[u8]) -> SignedFile {
        SignedFile::parse(bytes).expect("swizzler input is signed metadata")
    }

    /// Rebuilds the envelope from a modified `signed` value and the *old* signatures:
    /// well-formed metadata whose signatures no longer match.
    pub fn modify_signed(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
        let file = parse(bytes);
        let mut v = file.signed_value.clone();
        f(&mut v);
        let canonical = canonical::to_canonical_bytes(&v).expect("canonicalizes");
        metadata::envelope_bytes(&canonical, &file.signatures)
    }

    /// Rebuilds the envelope with modified signatures over the unchanged `signed`.
    pub fn modify_signatures(bytes: &[u8], f: impl FnOnce(&mut Vec<Signature>)) -> Vec<u8> {
        let file = parse(bytes);
        let mut sigs = file.signatures.clone();
        f(&mut sigs);
        let canonical = file.canonical_signed().expect("canonicalizes");
        metadata::envelope_bytes(&canonical, &sigs)
    }

    /// Not JSON any more (truncated).
    pub fn invalid_json(bytes: &[u8]) -> Vec<u8> {
        bytes[..bytes.len() / 2].to_vec()
    }

    /// Same content and still validly signed, but different bytes (new checksum).
    pub fn add_whitespace(bytes: &[u8]) -> Vec<u8> {
        let mut out = b"{\n  ".to_vec();
        out.extend_from_slice(&bytes[1..]);
        out
    }

    /// `_type` replaced.
    pub fn set_type(bytes: &[u8], t: &str) -> Vec<u8> {
        modify_signed(bytes, |v| v["_type"] = Value::String(t.into()))
    }

    /// `version` incremented without re-signing.
    pub fn bump_version(bytes: &[u8]) -> Vec<u8> {
        modify_signed(bytes, |v| {
            let n = v["version"].as_i64().unwrap_or(0);
            v["version"] = Value::from(n + 1);
        })
    }

    /// `expires` replaced without re-signing.
    pub fn set_expires(bytes: &[u8], t: DateTime<Utc>) -> Vec<u8> {
        modify_signed(bytes, |v| {
            v["expires"] = Value::String(metadata::format_expires(&t))
        })
    }

    /// First signature's bytes flipped.
    pub fn corrupt_signature(bytes: &[u8]) -> Vec<u8> {
        modify_signatures(bytes, |s| {
            if let Some(first) = s.first_mut() {
                if let Some(b) = first.sig.get_mut(10) {
                    *b ^= 0x55;
                }
            }
        })
    }

    /// All signatures removed.
    pub fn remove_signatures(bytes: &[u8]) -> Vec<u8> {
        modify_signatures(bytes, Vec::clear)
    }

    /// Every signature duplicated (the same key signing twice).
    pub fn duplicate_signatures(bytes: &[u8]) -> Vec<u8> {
        modify_signatures(bytes, |s| {
            let copy = s.clone();
            s.extend(copy);
        })
    }

    /// Every signature's method replaced.
    pub fn set_signature_method(bytes: &[u8], m: SignatureMethod) -> Vec<u8> {
        modify_signatures(bytes, |s| {
            s.iter_mut().for_each(|sig| sig.method = m.clone())
        })
    }

    /// Every signature's key ID replaced.
    pub fn set_signature_keyid(bytes: &[u8], keyid: &str) -> Vec<u8> {
        modify_signatures(bytes, |s| {
            s.iter_mut().for_each(|sig| sig.keyid = keyid.to_string())
        })
    }
}
