//! Signature and role verification, following Go Notary's `tuf/signed`, `trustpinning` and
//! `tuf.RepoBuilder` (spec signer-and-tuf §6.2, §7.4–§7.5, §9; server.md §6.3 V2–V4).
//!
//! No wall clock is read here: every check that depends on time takes `now`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::certs::{self, CertInfo};
use crate::error::TufError;
use crate::keys::{KeyType, PublicKey, SignatureMethod};
use crate::metadata::{
    self, BaseRole, FileMeta, Root, Signature, SignedCommon, SignedFile, Snapshot, Targets,
    Timestamp,
};
use crate::roles;

/// Why a single signature did not verify (never fatal on its own; see
/// [`verify_signatures`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// The method is not one Notary knows.
    #[error("signing method is not supported: {0}")]
    UnsupportedMethod(String),
    /// The key type cannot be used with this method.
    #[error("key type is not valid for signature")]
    InvalidKeyType,
    /// The key is too small or malformed for the method.
    #[error("key length is not supported: {0}")]
    InvalidKeyLength(String),
    /// The signature is wrong.
    #[error("signature was invalid")]
    Invalid,
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// The SPKI DER of a key for a method family: bare keys are SPKI already, `*-x509` keys use
/// the first PEM block's certificate (Go `pem.Decode` then `x509.ParseCertificate`).
fn spki_for(key: &PublicKey, bare: KeyType, x509: KeyType) -> Result<Vec<u8>, SigError> {
    if key.key_type == bare {
        Ok(key.public.clone())
    } else if key.key_type == x509 {
        let blocks = certs::pem_blocks(&key.public).map_err(|_| SigError::Invalid)?;
        let (_, der) = blocks.first().ok_or(SigError::Invalid)?;
        certs::spki_der(der).map_err(|_| SigError::Invalid)
    } else {
        Err(SigError::InvalidKeyType)
    }
}

fn verify_ecdsa(spki_der: &[u8], sig: &[u8], msg: &[u8]) -> Result<(), SigError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| SigError::Invalid)?;
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY {
        return Err(SigError::Invalid);
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default();
    let point = spki.subject_public_key.data.as_ref();
    match curve.as_str() {
        OID_P256 => {
            if sig.len() != 64 {
                return Err(SigError::Invalid);
            }
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(msg, sig)
            .map_err(|_| SigError::Invalid)
        }
        OID_P384 => {
            // Go always hashes with SHA-256; ring offers P-384/SHA-256 only in ASN.1 form.
            if sig.len() != 96 {
                return Err(SigError::Invalid);
            }
            let der = raw_to_asn1_sig(&sig[..48], &sig[48..]).ok_or(SigError::Invalid)?;
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA256_ASN1, point)
                .verify(msg, &der)
                .map_err(|_| SigError::Invalid)
        }
        _ => Err(SigError::Invalid),
    }
}

fn raw_to_asn1_sig(r: &[u8], s: &[u8]) -> Option<Vec<u8>> {
    use sec1::der::asn1::{SequenceOf, UintRef};
    use sec1::der::Encode as _;
    let mut seq: SequenceOf<UintRef<'_>, 2> = SequenceOf::new();
    seq.add(UintRef::new(r).ok()?).ok()?;
    seq.add(UintRef::new(s).ok()?).ok()?;
    seq.to_der().ok()
}

fn verify_rsa(spki_der: &[u8], sig: &[u8], msg: &[u8], pss: bool) -> Result<(), SigError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| SigError::Invalid)?;
    let bits = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa.key_size(),
        _ => return Err(SigError::Invalid),
    };
    if bits < 2048 {
        return Err(SigError::InvalidKeyLength(
            "RSA key must be at least 2048 bits.".into(),
        ));
    }
    if sig.len() < 256 {
        return Err(SigError::Invalid);
    }
    let alg: &dyn ring::signature::VerificationAlgorithm = if pss {
        &ring::signature::RSA_PSS_2048_8192_SHA256
    } else {
        &ring::signature::RSA_PKCS1_2048_8192_SHA256
    };
    ring::signature::UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
        .verify(msg, sig)
        .map_err(|_| SigError::Invalid)
}

/// Verifies one signature over `msg` with `key` (Go `VerifySignature` and the verifiers of
/// spec §7.4).
pub fn verify_signature(msg: &[u8], sig: &Signature, key: &PublicKey) -> Result<(), SigError> {
    match &sig.method {
        SignatureMethod::Ecdsa => {
            let spki = spki_for(key, KeyType::Ecdsa, KeyType::EcdsaX509)?;
            verify_ecdsa(&spki, &sig.sig, msg)
        }
        SignatureMethod::Eddsa => {
            if key.key_type != KeyType::Ed25519 {
                return Err(SigError::InvalidKeyType);
            }
            if sig.sig.len() != 64 {
                return Err(SigError::Invalid);
            }
            let pk: [u8; 32] = key.public.as_slice().try_into().map_err(|_| {
                SigError::InvalidKeyLength("ed25519 public key must be 32 bytes.".into())
            })?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|_| SigError::Invalid)?;
            let s =
                ed25519_dalek::Signature::from_slice(&sig.sig).map_err(|_| SigError::Invalid)?;
            // Go's ed25519.Verify is the cofactorless, non-strict check.
            use ed25519_dalek::Verifier as _;
            vk.verify(msg, &s).map_err(|_| SigError::Invalid)
        }
        SignatureMethod::RsaPss | SignatureMethod::RsaPkcs1v15 => {
            let spki = spki_for(key, KeyType::Rsa, KeyType::RsaX509)?;
            verify_rsa(&spki, &sig.sig, msg, sig.method == SignatureMethod::RsaPss)
        }
        SignatureMethod::PyCryptoPss => {
            if key.key_type != KeyType::Rsa {
                return Err(SigError::InvalidKeyType);
            }
            let blocks = certs::pem_blocks(&key.public).map_err(|_| SigError::Invalid)?;
            let (_, der) = blocks.first().ok_or(SigError::Invalid)?;
            verify_rsa(der, &sig.sig, msg, true)
        }
        SignatureMethod::Other(m) => Err(SigError::UnsupportedMethod(m.clone())),
    }
}

/// Most signature verifications [`verify_signatures`] tries per key ID of the role.
///
/// Real Notary and Docker clients write one signature per key, so a key with more than one
/// signature in a file is already unusual; four leaves room for odd but honest files (a
/// stale signature kept next to a fresh one) while bounding the work at four verifications
/// per role key however many signatures a file carries.
pub const MAX_ATTEMPTS_PER_KEY: usize = 4;

/// Go `VerifySignatures`: re-canonicalizes the generic `signed` value, then requires at
/// least `threshold` distinct key IDs of `role` with a valid signature. A signature whose
/// `keyid` names a role key whose content hashes to a different ID aborts with
/// [`TufError::InvalidKeyId`]. Returns the IDs that verified.
///
/// # Bounded work
/// Go verifies every signature naming a role key, so a file carrying thousands of garbage
/// signatures for one real key costs thousands of verifications. Here, walking the
/// signatures in order, one naming a role key is skipped when
/// 1. its key ID already has a valid signature (the result cannot change),
/// 2. the same (key ID, method, bytes) was already tried (verification is deterministic),
/// 3. its key ID has used up [`MAX_ATTEMPTS_PER_KEY`] verifications.
///
/// So at most `role keys × MAX_ATTEMPTS_PER_KEY` signatures are verified. Rules 1 and 2
/// never change the outcome. Rule 3 is where we differ from Go: a valid signature that
/// follows four distinct failed ones for the same key does not count. Clients write one
/// signature per key, which is always the first and only attempt for that key, so nothing
/// a real client produces is refused. The key-ID check still looks at every signature (once
/// per distinct key ID), so it rejects exactly what Go rejects.
pub fn verify_signatures(file: &SignedFile, role: &BaseRole) -> Result<BTreeSet<String>, TufError> {
    if file.signatures.is_empty() {
        return Err(TufError::NoSignatures);
    }
    if role.threshold < 1 {
        return Err(TufError::RoleThreshold(String::new()));
    }
    let msg = file.canonical_signed()?;
    let valid = valid_key_ids(&file.signatures, role, |sig, key| {
        verify_signature(&msg, sig, key).is_ok()
    })?;
    if (valid.len() as i64) < role.threshold {
        return Err(TufError::RoleThreshold(format!(
            "valid signatures did not meet threshold for {}",
            role.name
        )));
    }
    Ok(valid)
}

/// The key IDs of `role` with a valid signature among `sigs`, calling `verify` only for the
/// signatures the rules of [`verify_signatures`] select (a separate function so tests can
/// count the calls).
fn valid_key_ids(
    sigs: &[Signature],
    role: &BaseRole,
    mut verify: impl FnMut(&Signature, &PublicKey) -> bool,
) -> Result<BTreeSet<String>, TufError> {
    let mut valid = BTreeSet::new();
    // Per key ID: the signatures verified so far (at most MAX_ATTEMPTS_PER_KEY). Its
    // presence also records that the key ID was checked against the key's content.
    let mut tried: BTreeMap<&str, Vec<&Signature>> = BTreeMap::new();
    for sig in sigs {
        let Some(key) = role.keys.get(&sig.keyid) else {
            continue;
        };
        let attempts = match tried.entry(sig.keyid.as_str()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                // Hashing the key once per ID, not once per signature.
                if key.key_id() != sig.keyid {
                    return Err(TufError::InvalidKeyId);
                }
                e.insert(Vec::new())
            }
        };
        if valid.contains(&sig.keyid)
            || attempts.len() >= MAX_ATTEMPTS_PER_KEY
            || attempts
                .iter()
                .any(|t| t.method == sig.method && t.sig == sig.sig)
        {
            continue;
        }
        attempts.push(sig);
        if verify(sig, key) {
            valid.insert(sig.keyid.clone());
        }
    }
    Ok(valid)
}

/// Go `VerifyExpiry`: expired when `expires` is before `now`.
pub fn verify_expiry(
    common: &SignedCommon,
    role: &str,
    now: DateTime<Utc>,
) -> Result<(), TufError> {
    if common.is_expired(now) {
        return Err(TufError::Expired {
            role: role.to_string(),
            expired: metadata::go_expiry_display(&common.expires),
        });
    }
    Ok(())
}

/// Go `VerifyVersion`: `version` must be at least `min_version`.
pub fn verify_version(common: &SignedCommon, min_version: i64) -> Result<(), TufError> {
    if common.version < min_version {
        return Err(TufError::LowVersion {
            actual: common.version,
            current: min_version,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Root certificates

/// Leaf certificate plus CA certificates of one root key.
#[derive(Debug, Clone)]
struct CertBundle {
    leaf: CertInfo,
    intermediates: Vec<CertInfo>,
}

/// Go `parseAllCerts`: for each key of the root role, a PEM bundle of certificates only,
/// exactly one non-CA certificate and it first. Keyed by the listed key's computed ID.
fn parse_all_certs(root: &Root) -> BTreeMap<String, CertBundle> {
    let mut out = BTreeMap::new();
    let Some(root_role) = root.roles.get(roles::ROOT) else {
        return out;
    };
    for keyid in &root_role.keyids {
        let Some(key) = root.keys.get(keyid) else {
            continue;
        };
        let Ok(blocks) = certs::pem_blocks(&key.public) else {
            continue;
        };
        if blocks.is_empty() || blocks.iter().any(|(label, _)| label != "CERTIFICATE") {
            continue;
        }
        let Ok(parsed) = blocks
            .iter()
            .map(|(_, der)| certs::cert_info(der))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let leaves: Vec<&CertInfo> = parsed.iter().filter(|c| !c.is_ca).collect();
        if leaves.len() != 1 || parsed[0].is_ca {
            continue;
        }
        out.insert(
            key.key_id(),
            CertBundle {
                leaf: parsed[0].clone(),
                intermediates: parsed.iter().filter(|c| c.is_ca).cloned().collect(),
            },
        );
    }
    out
}

/// Go `validRootLeafCerts`: CN matches the GUN and the certificate passes
/// [`certs::validate_certificate`].
fn valid_leaf_bundles(
    all: &BTreeMap<String, CertBundle>,
    gun: &str,
    check_expiry: bool,
    now: DateTime<Utc>,
) -> BTreeMap<String, CertBundle> {
    all.iter()
        .filter(|(_, b)| certs::cn_matches_gun(&b.leaf.common_name, gun))
        .filter(|(_, b)| certs::validate_certificate(&b.leaf, check_expiry, now).is_ok())
        .map(|(id, b)| (id.clone(), b.clone()))
        .collect()
}

/// Go `CertsToKeys`: rebuild each key from leaf + intermediates as Go PEM; the key type
/// follows the leaf's public key algorithm.
fn bundles_to_keys(bundles: &BTreeMap<String, CertBundle>) -> BTreeMap<String, PublicKey> {
    let mut keys = BTreeMap::new();
    for b in bundles.values() {
        let kt = match (b.leaf.is_ec, b.leaf.rsa_bits) {
            (true, _) => KeyType::EcdsaX509,
            (false, Some(_)) => KeyType::RsaX509,
            _ => continue,
        };
        let mut ders = vec![b.leaf.der.as_slice()];
        ders.extend(b.intermediates.iter().map(|c| c.der.as_slice()));
        let key = PublicKey::new(kt, certs::go_pem_encode_certs(&ders));
        keys.insert(key.key_id(), key);
    }
    keys
}

/// Go `trustpinning.ValidateRoot` with the server's empty trust-pinning config (TOFU):
/// structure, at least one valid leaf certificate for `gun`, signatures by the previous
/// root's certificates meeting its threshold (expiry ignored for those), and signatures by
/// the new root's own certificates meeting its threshold.
pub fn validate_root(
    prev_root: Option<&Root>,
    file: &SignedFile,
    gun: &str,
    now: DateTime<Utc>,
) -> Result<Root, TufError> {
    validate_root_at(prev_root, file, gun, now, true).map(|(root, _)| root)
}

/// [`validate_root`], plus the [`stable_window`] of the root's certificates around `now`.
/// Without `check_cert_expiry` the certificates' validity periods are ignored (and there is
/// no window).
fn validate_root_at(
    prev_root: Option<&Root>,
    file: &SignedFile,
    gun: &str,
    now: DateTime<Utc>,
    check_cert_expiry: bool,
) -> Result<(Root, Option<Window>), TufError> {
    let root = file.root()?;
    root.validate_structure()?;
    let root_role = root.build_base_role(roles::ROOT)?;

    let all = parse_all_certs(&root);
    let from_root = valid_leaf_bundles(&all, gun, check_cert_expiry, now);
    if from_root.is_empty() {
        return Err(TufError::RootValidationFail(
            "unable to retrieve valid leaf certificates".into(),
        ));
    }
    // Intermediates that fail the checks (with expiry) are dropped, not fatal.
    let from_root: BTreeMap<String, CertBundle> = from_root
        .into_iter()
        .map(|(id, mut b)| {
            b.intermediates
                .retain(|c| certs::validate_certificate(c, check_cert_expiry, now).is_ok());
            (id, b)
        })
        .collect();

    if let Some(prev) = prev_root {
        let trusted = valid_leaf_bundles(&parse_all_certs(prev), gun, false, now);
        if trusted.is_empty() {
            return Err(TufError::RootValidationFail(
                "could not retrieve trusted certs from previous root role data".into(),
            ));
        }
        let prev_role = prev.roles.get(roles::ROOT).ok_or_else(|| {
            TufError::RootValidationFail("could not retrieve previous root role data".into())
        })?;
        let role = BaseRole {
            name: String::new(),
            keys: bundles_to_keys(&trusted),
            threshold: prev_role.threshold,
        };
        verify_signatures(file, &role).map_err(|_| {
            TufError::RootRotationFail(
                "failed to validate data with current trusted certificates".into(),
            )
        })?;
    }

    let role = BaseRole {
        name: String::new(),
        keys: bundles_to_keys(&from_root),
        threshold: root_role.threshold,
    };
    verify_signatures(file, &role).map_err(|_| {
        TufError::RootValidationFail("failed to validate integrity of roots".into())
    })?;
    let window = check_cert_expiry
        .then(|| stable_window(&all, now))
        .flatten();
    Ok((root, window))
}

/// An open interval of time: (after, before).
type Window = (DateTime<Utc>, DateTime<Utc>);

/// The open interval around `now` inside which no certificate in `all` starts or stops
/// passing the time checks of [`certs::validate_certificate`] (valid from one day before
/// notBefore through notAfter), or None when `now` is exactly on such an edge. Time enters
/// [`validate_root`] (without a previous root) only through those checks, so its outcome
/// is the same for any time inside the interval.
fn stable_window(all: &BTreeMap<String, CertBundle>, now: DateTime<Utc>) -> Option<Window> {
    let (mut after, mut before) = (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC);
    let certs = all
        .values()
        .flat_map(|b| std::iter::once(&b.leaf).chain(&b.intermediates));
    for c in certs {
        let starts = c.not_before.checked_sub_signed(chrono::Duration::days(1));
        for edge in [starts, Some(c.not_after)].into_iter().flatten() {
            match edge.cmp(&now) {
                std::cmp::Ordering::Equal => return None,
                std::cmp::Ordering::Less => after = after.max(edge),
                std::cmp::Ordering::Greater => before = before.min(edge),
            }
        }
    }
    Some((after, before))
}

/// Go `GetDelegationRole` checks on a delegation's keys: certificates (if the key holds one)
/// must pass the SHA-1 / RSA size / window-order checks; expiry is not checked.
fn check_delegation_key_certs(role: &BaseRole, now: DateTime<Utc>) -> Result<(), TufError> {
    for key in role.keys.values() {
        let Ok(ders) = certs::pem_certificates(&key.public) else {
            continue;
        };
        // Go's LoadCertFromPEM takes the first certificate that parses.
        let Some(info) = ders.iter().find_map(|d| certs::cert_info(d).ok()) else {
            continue;
        };
        certs::validate_certificate(&info, false, now).map_err(TufError::Certificate)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Repo builder

/// A loaded role: typed view plus the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// Typed view.
    pub typed: T,
    /// The file (exact bytes inside).
    pub file: SignedFile,
}

/// A root that a [`RepoBuilder`] without a previous root accepted for its GUN, kept so
/// that later builders for the same GUN can load it without checking its certificates and
/// signatures again ([`RepoBuilder::load_trusted_root`]): the server re-validates the
/// stored root on every update, and those checks were about an eighth of its CPU per
/// publish. They depend on the time only through the certificates' validity periods, so
/// the outcome holds while the time stays inside the interval around the original check
/// in which no certificate's validity starts or ends.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    gun: String,
    root: Loaded<Root>,
    window: Window,
}

impl TrustedRoot {
    /// The exact bytes of the root.
    pub fn raw(&self) -> &[u8] {
        &self.root.file.raw
    }

    /// True if loading the root for `gun` at `now` would have the same outcome as the check
    /// this was made from.
    pub fn holds_for(&self, gun: &str, now: DateTime<Utc>) -> bool {
        self.gun == gun && self.window.0 < now && now < self.window.1
    }
}

/// What a [`RepoBuilder`] loads: exact bytes, or a file already decoded from them.
enum Input<'a> {
    Bytes(&'a [u8]),
    Parsed(SignedFile),
}

impl Input<'_> {
    fn raw(&self) -> &[u8] {
        match self {
            Input::Bytes(b) => b,
            Input::Parsed(f) => &f.raw,
        }
    }
}

/// Loads and checks a repository's files in dependency order, like Go's `tuf.RepoBuilder`
/// as notary-server uses it for validating updates.
///
/// Rules per role: root — [`validate_root`], version, expiry; targets — signatures by the
/// root's targets role, structure, version, expiry; delegations — the parent chain from
/// `targets` must be loaded and list each next role, signatures by the parent's keys for
/// the role, structure, version, expiry; snapshot — signatures by the root's snapshot role,
/// structure, version, expiry, and the hashes of every root/targets file loaded so far;
/// timestamp — signatures, structure, version, expiry, snapshot hash.
#[derive(Debug, Clone)]
pub struct RepoBuilder {
    gun: String,
    now: DateTime<Utc>,
    prev_root: Option<Root>,
    root: Option<Loaded<Root>>,
    /// For a root checked without a previous root: its certificates' [`stable_window`].
    root_window: Option<Window>,
    targets: BTreeMap<String, Loaded<Targets>>,
    snapshot: Option<Loaded<Snapshot>>,
    timestamp: Option<Loaded<Timestamp>>,
    /// Files loaded before the file that checksums them (role → exact bytes).
    not_checksummed: BTreeMap<String, Vec<u8>>,
}

impl RepoBuilder {
    /// An empty builder for `gun`, judging expiry against `now`.
    pub fn new(gun: &str, now: DateTime<Utc>) -> RepoBuilder {
        RepoBuilder {
            gun: gun.to_string(),
            now,
            prev_root: None,
            root: None,
            root_window: None,
            targets: BTreeMap::new(),
            snapshot: None,
            timestamp: None,
            not_checksummed: BTreeMap::new(),
        }
    }

    /// Go `BootstrapNewBuilder`: a fresh builder whose root must be signed by this builder's
    /// root (root rotation).
    pub fn bootstrap_new_builder(&self) -> RepoBuilder {
        let mut b = RepoBuilder::new(&self.gun, self.now);
        b.prev_root = self.root.as_ref().map(|r| r.typed.clone());
        b
    }

    /// The GUN this builder checks files for.
    pub fn gun(&self) -> &str {
        &self.gun
    }

    /// The time expiry and certificate validity are judged against.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// True if `role` has been loaded.
    pub fn is_loaded(&self, role: &str) -> bool {
        match role {
            roles::ROOT => self.root.is_some(),
            roles::SNAPSHOT => self.snapshot.is_some(),
            roles::TIMESTAMP => self.timestamp.is_some(),
            other => self.targets.contains_key(other),
        }
    }

    /// Version of a loaded role, or 1 when not loaded (Go `GetLoadedVersion`).
    pub fn loaded_version(&self, role: &str) -> i64 {
        let v = match role {
            roles::ROOT => self.root.as_ref().map(|l| l.typed.common.version),
            roles::SNAPSHOT => self.snapshot.as_ref().map(|l| l.typed.common.version),
            roles::TIMESTAMP => self.timestamp.as_ref().map(|l| l.typed.common.version),
            other => self.targets.get(other).map(|l| l.typed.common.version),
        };
        v.unwrap_or(1)
    }

    /// The loaded root.
    pub fn root(&self) -> Option<&Loaded<Root>> {
        self.root.as_ref()
    }

    /// A loaded targets or delegation role.
    pub fn targets(&self, role: &str) -> Option<&Loaded<Targets>> {
        self.targets.get(role)
    }

    /// All loaded targets and delegation roles.
    pub fn all_targets(&self) -> &BTreeMap<String, Loaded<Targets>> {
        &self.targets
    }

    /// The loaded snapshot.
    pub fn snapshot(&self) -> Option<&Loaded<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// The loaded timestamp.
    pub fn timestamp(&self) -> Option<&Loaded<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// Snapshot entries for the loaded root and every loaded targets/delegation file,
    /// computed over their exact bytes (what a server-generated snapshot must contain).
    pub fn snapshot_meta_updates(&self) -> Vec<(String, FileMeta)> {
        let mut out = Vec::new();
        if let Some(r) = &self.root {
            out.push((roles::ROOT.to_string(), r.file.file_meta()));
        }
        for (name, t) in &self.targets {
            out.push((name.clone(), t.file.file_meta()));
        }
        out
    }

    /// Loads one role's file. `min_version` is the lowest acceptable version;
    /// `allow_expired` skips the expiry check (used for stored files).
    pub fn load(
        &mut self,
        role: &str,
        content: &[u8],
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        self.load_input(role, Input::Bytes(content), min_version, allow_expired)
    }

    /// Loads a root this server accepted earlier (the first root of the builder), checking
    /// its structure and signatures but neither its expiry nor its certificates' validity
    /// periods. A GUN whose root or root certificate has expired must still take its owner's
    /// repair (a new root, signed under this one: Go ignores the previous root's certificate
    /// expiry there too) and have its timestamp re-signed; Go's server checks the stored
    /// root's certificates against the clock and so refuses every update of such a GUN.
    pub fn load_stored_root(&mut self, content: &[u8], min_version: i64) -> Result<(), TufError> {
        if self.is_loaded(roles::ROOT) {
            return Err(TufError::BuilderInput(format!(
                "{} has already been loaded",
                roles::ROOT
            )));
        }
        let file = self.bytes_to_signed(roles::ROOT, Input::Bytes(content))?;
        let (root, _) =
            validate_root_at(self.prev_root.as_ref(), &file, &self.gun, self.now, false)?;
        self.finish_checks(&root.common, roles::ROOT, min_version, true)?;
        self.root = Some(Loaded { typed: root, file });
        self.root_window = None;
        Ok(())
    }

    /// [`RepoBuilder::load`] for a file the caller has already decoded with
    /// [`SignedFile::parse`] from its `raw` bytes, which saves decoding it again.
    pub fn load_parsed(
        &mut self,
        role: &str,
        file: SignedFile,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        self.load_input(role, Input::Parsed(file), min_version, allow_expired)
    }

    /// The loaded root as a [`TrustedRoot`], when this builder checked it without a
    /// previous root and not at the very edge of a certificate's validity.
    pub fn trusted_root(&self) -> Option<TrustedRoot> {
        if self.prev_root.is_some() {
            return None;
        }
        Some(TrustedRoot {
            gun: self.gun.clone(),
            root: self.root.clone()?,
            window: self.root_window?,
        })
    }

    /// Loads the root from `trusted` as [`RepoBuilder::load`] would load its bytes, but
    /// without checking its certificates and signatures again when they were checked for
    /// this GUN, without a previous root, and for a time whose outcome is the same as now.
    /// Otherwise it loads the bytes in full. Version and expiry are checked either way.
    pub fn load_trusted_root(
        &mut self,
        trusted: &TrustedRoot,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        if self.prev_root.is_some() || !trusted.holds_for(&self.gun, self.now) {
            return self.load(roles::ROOT, trusted.raw(), min_version, allow_expired);
        }
        if self.is_loaded(roles::ROOT) {
            return Err(TufError::BuilderInput(format!(
                "{} has already been loaded",
                roles::ROOT
            )));
        }
        self.check_or_remember(roles::ROOT, trusted.raw())?;
        let root = &trusted.root;
        self.finish_checks(&root.typed.common, roles::ROOT, min_version, allow_expired)?;
        self.root = Some(root.clone());
        self.root_window = Some(trusted.window);
        Ok(())
    }

    fn load_input(
        &mut self,
        role: &str,
        content: Input<'_>,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        if !roles::is_valid_role(role) {
            return Err(TufError::BuilderInput(format!("{role} is an invalid role")));
        }
        if self.is_loaded(role) {
            return Err(TufError::BuilderInput(format!(
                "{role} has already been loaded"
            )));
        }
        let prereqs: &[&str] = match role {
            roles::ROOT => &[],
            roles::TARGETS | roles::SNAPSHOT | roles::TIMESTAMP => &[roles::ROOT],
            _ => &[roles::ROOT, roles::TARGETS],
        };
        for p in prereqs {
            if !self.is_loaded(p) {
                return Err(TufError::BuilderInput(format!("{p} must be loaded first")));
            }
        }
        match role {
            roles::ROOT => self.load_root(content, min_version, allow_expired),
            roles::TARGETS => self.load_targets(content, min_version, allow_expired),
            roles::SNAPSHOT => self.load_snapshot(content, min_version, allow_expired),
            roles::TIMESTAMP => self.load_timestamp(content, min_version, allow_expired),
            _ => self.load_delegation(role, content, min_version, allow_expired),
        }
    }

    fn checksums_for(&self, role: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        match role {
            roles::TIMESTAMP => None,
            roles::SNAPSHOT => self.timestamp.as_ref().map(|t| {
                t.typed
                    .meta
                    .get(roles::SNAPSHOT)
                    .map(|m| m.hashes.clone())
                    .unwrap_or_default()
            }),
            other => self.snapshot.as_ref().map(|s| {
                s.typed
                    .meta
                    .get(other)
                    .map(|m| m.hashes.clone())
                    .unwrap_or_default()
            }),
        }
    }

    /// Go `bytesToSigned`: [`RepoBuilder::check_or_remember`], then decode the envelope
    /// (unless the caller did).
    fn bytes_to_signed(&mut self, role: &str, content: Input<'_>) -> Result<SignedFile, TufError> {
        self.check_or_remember(role, content.raw())?;
        match content {
            Input::Bytes(b) => SignedFile::parse(b).map_err(|e| TufError::Json(e.to_string())),
            Input::Parsed(file) => Ok(file),
        }
    }

    /// Checks `content` against a known checksum, or remembers it for the
    /// snapshot/timestamp loaded later.
    fn check_or_remember(&mut self, role: &str, content: &[u8]) -> Result<(), TufError> {
        match self.checksums_for(role) {
            Some(hashes) => metadata::check_hashes(content, role, &hashes)?,
            None if role != roles::TIMESTAMP => {
                self.not_checksummed
                    .insert(role.to_string(), content.to_vec());
            }
            None => {}
        }
        Ok(())
    }

    fn finish_checks(
        &self,
        common: &SignedCommon,
        role: &str,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        verify_version(common, min_version)?;
        if !allow_expired {
            verify_expiry(common, role, self.now)?;
        }
        Ok(())
    }

    fn load_root(
        &mut self,
        content: Input<'_>,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        let file = self.bytes_to_signed(roles::ROOT, content)?;
        let (root, window) =
            validate_root_at(self.prev_root.as_ref(), &file, &self.gun, self.now, true)?;
        self.finish_checks(&root.common, roles::ROOT, min_version, allow_expired)?;
        self.root = Some(Loaded { typed: root, file });
        self.root_window = window;
        Ok(())
    }

    fn base_role(&self, role: &str) -> Result<BaseRole, TufError> {
        self.root
            .as_ref()
            .ok_or_else(|| TufError::NotLoaded(roles::ROOT.into()))?
            .typed
            .build_base_role(role)
    }

    fn load_targets(
        &mut self,
        content: Input<'_>,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        let role = self.base_role(roles::TARGETS)?;
        let file = self.bytes_to_signed(roles::TARGETS, content)?;
        verify_signatures(&file, &role)?;
        let targets = file.targets()?;
        targets.validate_structure(roles::TARGETS)?;
        self.finish_checks(&targets.common, roles::TARGETS, min_version, allow_expired)?;
        self.targets.insert(
            roles::TARGETS.into(),
            Loaded {
                typed: targets,
                file,
            },
        );
        Ok(())
    }

    /// Go `GetDelegationRole`: walk from `targets` through loaded files to the parent,
    /// each listing the next role with usable keys, and return the role's keys.
    pub fn delegation_role(&self, name: &str) -> Result<BaseRole, TufError> {
        if !roles::is_delegation(name) {
            return Err(TufError::InvalidRole {
                role: name.to_string(),
                reason: "invalid delegation name".into(),
            });
        }
        let root = self
            .root
            .as_ref()
            .ok_or_else(|| TufError::NotLoaded(roles::ROOT.into()))?;
        if !root.typed.roles.contains_key(roles::TARGETS)
            || !self.targets.contains_key(roles::TARGETS)
        {
            return Err(TufError::NotLoaded(roles::TARGETS.into()));
        }
        let not_found = || TufError::InvalidRole {
            role: name.to_string(),
            reason: "delegation does not exist".into(),
        };
        let parent = roles::path_dir(name);
        // Each step down must be a role its parent lists with keys that all exist.
        let mut current = roles::TARGETS.to_string();
        while current != parent {
            let next_len = parent[current.len() + 1..]
                .find('/')
                .map_or(parent.len(), |i| current.len() + 1 + i);
            let next = &parent[..next_len];
            let listed = self
                .targets
                .get(&current)
                .is_some_and(|t| t.typed.build_delegation_role(next).is_ok());
            if !listed {
                return Err(not_found());
            }
            current = next.to_string();
        }
        let parent_file = self.targets.get(parent).ok_or_else(not_found)?;
        if !parent_file
            .typed
            .delegations
            .roles
            .iter()
            .any(|d| d.name == name)
        {
            return Err(not_found());
        }
        let (role, _paths) = parent_file.typed.build_delegation_role(name)?;
        check_delegation_key_certs(&role, self.now)?;
        Ok(role)
    }

    fn load_delegation(
        &mut self,
        name: &str,
        content: Input<'_>,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        let role = self.delegation_role(name)?;
        let file = self.bytes_to_signed(name, content)?;
        let targets = file.targets()?;
        targets.validate_structure(name)?;
        verify_version(&targets.common, min_version)?;
        verify_signatures(&file, &role)?;
        if !allow_expired {
            verify_expiry(&targets.common, name, self.now)?;
        }
        self.targets.insert(
            name.to_string(),
            Loaded {
                typed: targets,
                file,
            },
        );
        Ok(())
    }

    fn load_snapshot(
        &mut self,
        content: Input<'_>,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        let role = self.base_role(roles::SNAPSHOT)?;
        let file = self.bytes_to_signed(roles::SNAPSHOT, content)?;
        verify_signatures(&file, &role)?;
        let snapshot = file.snapshot()?;
        snapshot.validate_structure()?;
        self.finish_checks(
            &snapshot.common,
            roles::SNAPSHOT,
            min_version,
            allow_expired,
        )?;
        // Consistency: every file loaded so far must match its snapshot entry.
        let mut good = Vec::new();
        for (name, bytes) in &self.not_checksummed {
            if name == roles::SNAPSHOT || name == roles::TIMESTAMP {
                continue;
            }
            let hashes = snapshot
                .meta
                .get(name)
                .map(|m| m.hashes.clone())
                .unwrap_or_default();
            metadata::check_hashes(bytes, name, &hashes)?;
            good.push(name.clone());
        }
        for name in good {
            self.not_checksummed.remove(&name);
        }
        self.snapshot = Some(Loaded {
            typed: snapshot,
            file,
        });
        Ok(())
    }

    fn load_timestamp(
        &mut self,
        content: Input<'_>,
        min_version: i64,
        allow_expired: bool,
    ) -> Result<(), TufError> {
        let role = self.base_role(roles::TIMESTAMP)?;
        let file = self.bytes_to_signed(roles::TIMESTAMP, content)?;
        verify_signatures(&file, &role)?;
        let timestamp = file.timestamp()?;
        timestamp.validate_structure()?;
        self.finish_checks(
            &timestamp.common,
            roles::TIMESTAMP,
            min_version,
            allow_expired,
        )?;
        if let Some(bytes) = self.not_checksummed.get(roles::SNAPSHOT) {
            let hashes = timestamp
                .meta
                .get(roles::SNAPSHOT)
                .map(|m| m.hashes.clone())
                .unwrap_or_default();
            metadata::check_hashes(bytes, roles::SNAPSHOT, &hashes)?;
            self.not_checksummed.remove(roles::SNAPSHOT);
        }
        self.timestamp = Some(Loaded {
            typed: timestamp,
            file,
        });
        Ok(())
    }
}

/// Expiry the server gives snapshots it signs: 3 years (3 × 365 days).
pub const SNAPSHOT_EXPIRY_DAYS: i64 = 3 * 365;
/// Expiry the server gives timestamps: 14 days.
pub const TIMESTAMP_EXPIRY_DAYS: i64 = 14;
/// Client default for root: 10 years.
pub const ROOT_EXPIRY_DAYS: i64 = 10 * 365;
/// Client default for targets and delegations: 3 years.
pub const TARGETS_EXPIRY_DAYS: i64 = 3 * 365;

/// The snapshot the server generates (spec server.md §6.4): from `prev` (must be
/// structurally valid; not signature-checked) or, without one, a new snapshot that needs
/// `targets` among `updates`; entries in `updates` replace or add, all other entries of
/// `prev` are kept; version + 1; expiry `now` + 3 years.
pub fn next_snapshot(
    prev: Option<&Snapshot>,
    updates: &[(String, FileMeta)],
    now: DateTime<Utc>,
) -> Result<Snapshot, TufError> {
    let mut snap = match prev {
        Some(p) => {
            p.validate_structure()?;
            p.clone()
        }
        None => {
            if !updates.iter().any(|(r, _)| r == roles::TARGETS) {
                return Err(TufError::BuilderInput(format!(
                    "{} must be loaded first",
                    roles::TARGETS
                )));
            }
            Snapshot::new(0, now, BTreeMap::new())
        }
    };
    for (role, meta) in updates {
        snap.meta.insert(role.clone(), meta.clone());
    }
    snap.common.version += 1;
    snap.common.expires = now + chrono::Duration::days(SNAPSHOT_EXPIRY_DAYS);
    Ok(snap)
}

/// The timestamp the server generates: from `prev` (must be structurally valid) or new;
/// `meta.snapshot` describes `snapshot_bytes`; version + 1; expiry `now` + 14 days.
pub fn next_timestamp(
    prev: Option<&Timestamp>,
    snapshot_bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<Timestamp, TufError> {
    let mut ts = match prev {
        Some(p) => {
            p.validate_structure()?;
            p.clone()
        }
        None => Timestamp::new(0, now, FileMeta::default()),
    };
    ts.meta
        .insert(roles::SNAPSHOT.into(), FileMeta::from_bytes(snapshot_bytes));
    ts.common.version += 1;
    ts.common.expires = now + chrono::Duration::days(TIMESTAMP_EXPIRY_DAYS);
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PrivateKey, SignatureMethod};

    const MSG: &[u8] = b"{\"_type\":\"Targets\",\"version\":2}";

    fn key() -> PrivateKey {
        PrivateKey::generate(&KeyType::Ecdsa).unwrap()
    }

    fn good(k: &PrivateKey) -> Signature {
        Signature {
            keyid: k.public_key().key_id(),
            method: SignatureMethod::Ecdsa,
            sig: k.sign(MSG).unwrap(),
        }
    }

    /// `n` distinct, well-formed (64-byte) but wrong signatures claiming `k`'s ID.
    fn bad(k: &PrivateKey, n: usize) -> Vec<Signature> {
        let keyid = k.public_key().key_id();
        (0..n)
            .map(|i| {
                let mut sig = vec![0x5a; 64];
                sig[..8].copy_from_slice(&(i as u64).to_be_bytes());
                Signature {
                    keyid: keyid.clone(),
                    method: SignatureMethod::Ecdsa,
                    sig,
                }
            })
            .collect()
    }

    /// Runs the selection with the real verifier and returns (valid IDs, verifications).
    fn run(sigs: &[Signature], role: &BaseRole) -> (Result<BTreeSet<String>, TufError>, usize) {
        let mut calls = 0;
        let valid = valid_key_ids(sigs, role, |sig, key| {
            calls += 1;
            verify_signature(MSG, sig, key).is_ok()
        });
        (valid, calls)
    }

    #[test]
    fn flood_of_bad_signatures_for_one_key_costs_the_bound() {
        let k = key();
        let role = BaseRole::new("targets", 1, [k.public_key()]);
        let (valid, calls) = run(&bad(&k, 10_000), &role);
        assert_eq!(valid.unwrap(), BTreeSet::new());
        assert_eq!(calls, MAX_ATTEMPTS_PER_KEY);
    }

    #[test]
    fn flood_is_bounded_per_role_key() {
        let (a, b) = (key(), key());
        let role = BaseRole::new("targets", 2, [a.public_key(), b.public_key()]);
        let mut sigs = Vec::new();
        // Interleaved, plus a flood for a key outside the role (never verified).
        for (x, y) in bad(&a, 5_000).into_iter().zip(bad(&b, 5_000)) {
            sigs.push(x);
            sigs.push(y);
        }
        sigs.extend(bad(&key(), 5_000));
        let (valid, calls) = run(&sigs, &role);
        assert!(valid.unwrap().is_empty());
        assert_eq!(calls, 2 * MAX_ATTEMPTS_PER_KEY);
    }

    #[test]
    fn valid_signature_after_a_few_bad_ones_counts() {
        let k = key();
        let id = k.public_key().key_id();
        let role = BaseRole::new("targets", 1, [k.public_key()]);
        let mut sigs = bad(&k, MAX_ATTEMPTS_PER_KEY - 1);
        sigs.push(good(&k));
        let (valid, calls) = run(&sigs, &role);
        assert_eq!(valid.unwrap(), BTreeSet::from([id]));
        assert_eq!(calls, MAX_ATTEMPTS_PER_KEY);
    }

    #[test]
    fn valid_signature_beyond_the_bound_does_not_count() {
        // The one place we differ from Go, which would find the valid signature.
        let k = key();
        let role = BaseRole::new("targets", 1, [k.public_key()]);
        let mut sigs = bad(&k, MAX_ATTEMPTS_PER_KEY);
        sigs.push(good(&k));
        let (valid, calls) = run(&sigs, &role);
        assert!(valid.unwrap().is_empty());
        assert_eq!(calls, MAX_ATTEMPTS_PER_KEY);
    }

    #[test]
    fn proven_key_is_not_verified_again() {
        let k = key();
        let role = BaseRole::new("targets", 1, [k.public_key()]);
        let mut sigs = vec![good(&k)];
        sigs.extend(bad(&k, 10_000));
        let (valid, calls) = run(&sigs, &role);
        assert_eq!(valid.unwrap().len(), 1);
        assert_eq!(calls, 1);
    }

    #[test]
    fn repeated_signatures_are_tried_once() {
        let k = key();
        let role = BaseRole::new("targets", 1, [k.public_key()]);
        let one_bad = bad(&k, 1).remove(0);
        // 10k copies of one bad signature use one attempt, so a valid one still counts.
        let mut sigs = vec![one_bad.clone(); 10_000];
        sigs.push(good(&k));
        let (valid, calls) = run(&sigs, &role);
        assert_eq!(valid.unwrap().len(), 1);
        assert_eq!(calls, 2);
        // The same bytes under another method are a different input.
        let mut other_method = one_bad.clone();
        other_method.method = SignatureMethod::RsaPss;
        let (valid, calls) = run(&[one_bad, other_method], &role);
        assert!(valid.unwrap().is_empty());
        assert_eq!(calls, 2);
    }

    #[test]
    fn key_id_mismatch_is_found_behind_a_flood() {
        let (a, b) = (key(), key());
        let mut role = BaseRole::new("targets", 1, [a.public_key()]);
        // b listed under an ID that is not its own: any signature naming that ID aborts.
        role.keys.insert("f".repeat(64), b.public_key());
        let mut sigs = vec![good(&a)];
        sigs.extend(bad(&a, 10_000));
        let mut wrong = good(&b);
        wrong.keyid = "f".repeat(64);
        sigs.push(wrong);
        let (valid, calls) = run(&sigs, &role);
        assert_eq!(valid, Err(TufError::InvalidKeyId));
        assert_eq!(calls, 1);
    }

    #[test]
    fn verify_signatures_refuses_a_flood_as_threshold_failure() {
        let k = key();
        let role = BaseRole::new("targets", 1, [k.public_key()]);
        let signed = serde_json::json!({
            "_type": "Targets", "expires": "2031-01-01T00:00:00Z", "version": 2
        });
        let canonical = crate::canonical::to_canonical_bytes(&signed).unwrap();
        let mut sigs = bad(&k, 10_000);
        let file = SignedFile::parse(&metadata::envelope_bytes(&canonical, &sigs)).unwrap();
        assert_eq!(
            verify_signatures(&file, &role),
            Err(TufError::RoleThreshold(
                "valid signatures did not meet threshold for targets".into()
            ))
        );
        // Control: the real signature in front of the same flood meets the threshold.
        sigs.insert(
            0,
            Signature {
                sig: k.sign(&canonical).unwrap(),
                ..good(&k)
            },
        );
        let file = SignedFile::parse(&metadata::envelope_bytes(&canonical, &sigs)).unwrap();
        assert_eq!(verify_signatures(&file, &role).unwrap().len(), 1);
    }
}
