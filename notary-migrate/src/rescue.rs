//! The owner's repair of a repository whose root (metadata or certificate) or targets has
//! expired, or is about to.
//!
//! The stock clients cannot do it: every `notary publish`, `witness` or `key rotate` first
//! updates from the server, and the Go client's update fails on an expired root or base
//! targets (`tufClient.downloadTargets`, `bootstrapClient`), so the repair never leaves the
//! machine. This command signs what the client cannot, with the owner's own keys from their
//! trust directory (`notary -d`, or `~/.docker/trust`), and uploads one update:
//!
//! - **root**, when its `expires` or a root certificate's `notAfter` is within the window:
//!   version + 1, expiring in ten years, listing for each root key the owner holds a new
//!   self-signed certificate (CN = GUN, ten years, as the CLI makes them) for the *same* key
//!   (other root keys stay listed), and signed under both the old and the new certificates. Every reader's cached root, expired or not, accepts it as a
//!   rotation; the key file in the trust directory keeps working, as it is named after the
//!   bare public key.
//! - **targets**, when its `expires` is within the window: version + 1, three years.
//! - **snapshot**, when the owner signs it (its key is in the trust directory): re-made over
//!   the new files. Otherwise the server makes it.
//!
//! Expired delegations are left to the stock `notary witness` (the client only warns about
//! them), which works again once the base roles are repaired.
//!
//! Before signing, the server's current root must carry a signature of the owner's root key
//! (and an owner-signed snapshot the owner's snapshot signature), so a server cannot get
//! other keys or files endorsed; and no role may be older than the version the owner's
//! client cached (`tuf/<gun>/metadata/` of the trust directory), so a server cannot get an
//! old version re-signed with a fresh expiry. After uploading, the served chain is checked
//! as a client with no cache would check it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike as _, Duration, Timelike as _, Utc};
use notary_tuf::metadata::{format_expires, sign_metadata, to_sign, BaseRole, FileMeta};
use notary_tuf::verify::{
    validate_root, verify_signatures, RepoBuilder, ROOT_EXPIRY_DAYS, SNAPSHOT_EXPIRY_DAYS,
    TARGETS_EXPIRY_DAYS,
};
use notary_tuf::{roles, KeyType, PrivateKey, PublicKey, SignedFile};
use serde::Serialize;
use serde_json::Value;

use crate::remote::RemoteNotary;
use crate::rotate::{find_root_keys, read_key_file};

/// Passphrases of the owner's keys, as the CLIs take them from the environment.
#[derive(Debug, Clone, Default)]
pub struct Passphrases {
    /// Root key.
    pub root: String,
    /// Targets key.
    pub targets: String,
    /// Snapshot key (when the owner holds it).
    pub snapshot: String,
}

impl Passphrases {
    /// `NOTARY_{ROOT,TARGETS,SNAPSHOT}_PASSPHRASE`, else Docker's
    /// `DOCKER_CONTENT_TRUST_{ROOT,REPOSITORY}_PASSPHRASE`.
    pub fn from_env() -> Passphrases {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
                .unwrap_or_default()
        };
        Passphrases {
            root: first(&[
                "NOTARY_ROOT_PASSPHRASE",
                "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
            ]),
            targets: first(&[
                "NOTARY_TARGETS_PASSPHRASE",
                "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            ]),
            snapshot: first(&[
                "NOTARY_SNAPSHOT_PASSPHRASE",
                "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
            ]),
        }
    }
}

/// What a rescue did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rescued {
    /// The GUN.
    pub gun: String,
    /// New root version, when root was re-certified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_version: Option<i64>,
    /// New targets version, when targets was re-signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets_version: Option<i64>,
    /// New snapshot version, when the owner's snapshot was re-signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_version: Option<i64>,
    /// Nothing was uploaded.
    pub dry_run: bool,
}

impl Rescued {
    /// Whether anything needed (or got) re-signing.
    pub fn changed(&self) -> bool {
        self.root_version.is_some()
            || self.targets_version.is_some()
            || self.snapshot_version.is_some()
    }
}

/// A self-signed certificate for `key` as the notary CLI makes root certificates: CN = GUN,
/// valid from now for ten years, code signing. rcgen does the X.509 work.
fn root_certificate(key: &PrivateKey, gun: &str, now: DateTime<Utc>) -> Result<Vec<u8>, String> {
    let at = |t: DateTime<Utc>| {
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
            + std::time::Duration::from_secs(u64::from(t.num_seconds_from_midnight()))
    };
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, gun);
    params.not_before = at(now);
    params.not_after = at(now + Duration::days(ROOT_EXPIRY_DAYS));
    let serial: [u8; 16] = rand::random();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let pair = rcgen::KeyPair::try_from(der.as_slice())
        .map_err(|e| format!("root key not usable for a certificate: {e}"))?;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| format!("making the certificate: {e}"))?;
    Ok(cert.der().to_vec())
}

/// The private key of `key_id` in the trust directory (either CLI layout); an error names a
/// key file that is there but cannot be read (a wrong passphrase, say).
fn find_key(
    trust_dir: &Path,
    gun: &str,
    key_id: &str,
    passphrase: &str,
) -> Result<Option<PrivateKey>, String> {
    let candidates: [PathBuf; 2] = [
        trust_dir.join("private").join(format!("{key_id}.key")),
        trust_dir
            .join("private")
            .join("tuf_keys")
            .join(gun)
            .join(format!("{key_id}.key")),
    ];
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        return Ok(None);
    };
    let key = read_key_file(path, passphrase)?;
    if key.public_key().key_id() != key_id {
        return Err(format!(
            "{} does not hold the private half of key {key_id}",
            path.display()
        ));
    }
    Ok(Some(key))
}

/// The first of `key_ids` whose private key is in the trust directory.
fn find_any_key<'a>(
    trust_dir: &Path,
    gun: &str,
    key_ids: impl Iterator<Item = &'a String>,
    passphrase: &str,
) -> Result<Option<PrivateKey>, String> {
    for id in key_ids {
        if let Some(key) = find_key(trust_dir, gun, id, passphrase)? {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Refuses to re-sign a role older than the owner's client last saw (a server serving an
/// old, properly signed version to get it re-signed with a fresh expiry).
fn check_not_older(trust_dir: &Path, gun: &str, role: &str, served: i64) -> Result<(), String> {
    let cached = trust_dir
        .join("tuf")
        .join(gun)
        .join("metadata")
        .join(format!("{role}.json"));
    let Ok(bytes) = std::fs::read(&cached) else {
        return Ok(());
    };
    let seen = SignedFile::parse(&bytes)
        .map_err(|e| format!("{}: {e}", cached.display()))?
        .common
        .version;
    if served < seen {
        return Err(format!(
            "the server serves {role} version {served}, older than version {seen} your client \
             saw ({}); refusing to re-sign it",
            cached.display()
        ));
    }
    Ok(())
}

/// Signs `signed` with `signers` as version `version`, expiring `expires`.
fn resign(
    mut signed: Value,
    version: i64,
    expires: DateTime<Utc>,
    signers: &[(&PublicKey, &PrivateKey)],
) -> Result<(Vec<u8>, i64), String> {
    let obj = signed.as_object_mut().ok_or("metadata is not an object")?;
    obj.insert("version".into(), Value::from(version));
    obj.insert("expires".into(), Value::String(format_expires(&expires)));
    let msg = to_sign(&signed).map_err(|e| e.to_string())?;
    let mut sigs = Vec::new();
    for (public, private) in signers {
        sigs.push((*public, private.sign(&msg).map_err(|e| e.to_string())?));
    }
    let sigs: Vec<(&PublicKey, Vec<u8>)> = sigs;
    Ok((
        sign_metadata(&signed, &sigs).map_err(|e| e.to_string())?,
        version,
    ))
}

/// In root's signed part, replaces root key `old_id` with `new` (keys and the root role's
/// key IDs); other keys stay.
fn replace_root_key(signed: &mut Value, old_id: &str, new: &PublicKey) -> Result<(), String> {
    let obj = signed.as_object_mut().ok_or("root is not an object")?;
    let keys = obj
        .get_mut("keys")
        .and_then(Value::as_object_mut)
        .ok_or("root has no keys")?;
    keys.remove(old_id);
    keys.insert(new.key_id(), new.to_json_value());
    let ids = obj
        .get_mut("roles")
        .and_then(|r| r.get_mut(roles::ROOT))
        .and_then(|r| r.get_mut("keyids"))
        .and_then(Value::as_array_mut)
        .ok_or("root has no root role")?;
    for id in ids.iter_mut() {
        if id.as_str() == Some(old_id) {
            *id = Value::String(new.key_id());
        }
    }
    Ok(())
}

/// Repairs `gun` on `server`: re-signs what expires before `now + within` (see the module
/// docs). `dry_run` reports without uploading.
pub async fn rescue(
    server: &RemoteNotary,
    gun: &str,
    trust_dir: &Path,
    pass: &Passphrases,
    within: Duration,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Rescued, String> {
    server.ping().await.map_err(|e| e.to_string())?;
    let fetch = |name: String| async move {
        server
            .metadata(gun, &name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} has no {name} for {gun}", server.base()))
    };
    let root_bytes = fetch(roles::ROOT.into()).await?;
    let targets_bytes = fetch(roles::TARGETS.into()).await?;
    let snapshot_bytes = fetch(roles::SNAPSHOT.into()).await?;

    // The current root, checked as the server checks a stored one: signatures and
    // structure, not time (its expiry is what we are here to repair).
    let mut builder = RepoBuilder::new(gun, now);
    builder
        .load_stored_root(&root_bytes, 1)
        .map_err(|e| format!("the server's current root does not verify: {e}"))?;
    let root = builder.root().ok_or("root not loaded")?.typed.clone();
    builder
        .load(roles::TARGETS, &targets_bytes, 1, true)
        .map_err(|e| format!("the server's current targets does not verify: {e}"))?;
    let root_role = root
        .build_base_role(roles::ROOT)
        .map_err(|e| e.to_string())?;
    let root_keys: Vec<PublicKey> = root_role.keys.values().cloned().collect();
    let held = find_root_keys(trust_dir, &root_keys, &pass.root)?;
    let mine = BaseRole {
        name: roles::ROOT.into(),
        keys: held.iter().map(|(k, _)| (k.key_id(), k.clone())).collect(),
        threshold: 1,
    };
    let root_file = SignedFile::parse(&root_bytes).map_err(|e| e.to_string())?;
    verify_signatures(&root_file, &mine).map_err(|_| {
        "the server's current root is not signed by your root key; refusing to re-sign it"
            .to_string()
    })?;

    let horizon = now + within;
    let mut out = Rescued {
        gun: gun.to_owned(),
        dry_run,
        ..Rescued::default()
    };
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();

    // Root: re-certify the owner's root keys when the root or a certificate runs out.
    let cert_expiry = root_keys
        .iter()
        .filter_map(|k| {
            notary_tuf::certs::pem_certificates(&k.public)
                .ok()?
                .iter()
                .filter_map(|der| notary_tuf::certs::cert_info(der).ok())
                .map(|c| c.not_after)
                .min()
        })
        .min();
    let root_due = root.common.expires <= horizon || cert_expiry.is_some_and(|t| t <= horizon);
    check_not_older(trust_dir, gun, roles::ROOT, root.common.version)?;
    let mut new_root_bytes = root_bytes.clone();
    if root_due {
        let mut signed = root_file.signed_value.clone();
        let mut signers: Vec<(PublicKey, &PrivateKey)> = Vec::new();
        for (old_public, private) in &held {
            if private.key_type() != KeyType::Ecdsa {
                return Err(format!(
                    "root key {} is {}: only ECDSA root keys (what the notary and docker CLIs \
                     make) can be re-certified",
                    old_public.key_id(),
                    private.key_type().as_str()
                ));
            }
            let cert = root_certificate(private, gun, now)?;
            let new_public = PublicKey::new(
                KeyType::EcdsaX509,
                notary_tuf::certs::go_pem_encode_certs(&[cert]),
            );
            replace_root_key(&mut signed, &old_public.key_id(), &new_public)?;
            signers.push((old_public.clone(), private));
            signers.push((new_public, private));
        }
        let refs: Vec<(&PublicKey, &PrivateKey)> = signers.iter().map(|(p, k)| (p, *k)).collect();
        let (bytes, version) = resign(
            signed,
            root.common.version + 1,
            now + Duration::days(ROOT_EXPIRY_DAYS),
            &refs,
        )?;
        // Check our own work as the server and every cached reader will.
        let parsed = SignedFile::parse(&bytes).map_err(|e| e.to_string())?;
        validate_root(Some(&root), &parsed, gun, now).map_err(|e| format!("new root: {e}"))?;
        out.root_version = Some(version);
        new_root_bytes = bytes.clone();
        parts.push((roles::ROOT.to_string(), bytes));
    }

    // Targets.
    let targets_file = SignedFile::parse(&targets_bytes).map_err(|e| e.to_string())?;
    let mut new_targets_bytes = targets_bytes.clone();
    check_not_older(trust_dir, gun, roles::TARGETS, targets_file.common.version)?;
    if targets_file.common.expires <= horizon {
        let role = root
            .build_base_role(roles::TARGETS)
            .map_err(|e| e.to_string())?;
        let key =
            find_any_key(trust_dir, gun, role.keys.keys(), &pass.targets)?.ok_or_else(|| {
                format!(
                    "no targets private key for {gun} in {} (looked for {}; passphrase from \
                     NOTARY_TARGETS_PASSPHRASE)",
                    trust_dir.display(),
                    role.keys
                        .keys()
                        .map(|id| format!("private/{id}.key"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let public = key.public_key();
        let (bytes, version) = resign(
            targets_file.signed_value.clone(),
            targets_file.common.version + 1,
            now + Duration::days(TARGETS_EXPIRY_DAYS),
            &[(&public, &key)],
        )?;
        out.targets_version = Some(version);
        new_targets_bytes = bytes.clone();
        parts.push((roles::TARGETS.to_string(), bytes));
    }

    // The snapshot, when the owner signs it.
    let snapshot_role = root
        .build_base_role(roles::SNAPSHOT)
        .map_err(|e| e.to_string())?;
    let owner_snapshot_key =
        find_any_key(trust_dir, gun, snapshot_role.keys.keys(), &pass.snapshot)?;
    let snapshot_file = SignedFile::parse(&snapshot_bytes).map_err(|e| e.to_string())?;
    let snapshot_due = !parts.is_empty() || snapshot_file.common.expires <= horizon;
    if let (Some(key), true) = (owner_snapshot_key, snapshot_due) {
        // Only what the owner's snapshot key signed before is re-signed: the served file
        // must carry its signature, and not be older than the client saw.
        verify_signatures(&snapshot_file, &snapshot_role).map_err(|_| {
            "the server's snapshot is not signed by your snapshot key; refusing to re-sign it"
                .to_string()
        })?;
        check_not_older(
            trust_dir,
            gun,
            roles::SNAPSHOT,
            snapshot_file.common.version,
        )?;
        let snapshot_version = snapshot_file.common.version + 1;
        let mut signed = snapshot_file.signed_value;
        let meta = signed
            .get_mut("meta")
            .and_then(Value::as_object_mut)
            .ok_or("snapshot has no meta")?;
        meta.insert(
            roles::ROOT.into(),
            FileMeta::from_bytes(&new_root_bytes).to_json_value(),
        );
        meta.insert(
            roles::TARGETS.into(),
            FileMeta::from_bytes(&new_targets_bytes).to_json_value(),
        );
        let public = key.public_key();
        let (bytes, version) = resign(
            signed,
            snapshot_version,
            now + Duration::days(SNAPSHOT_EXPIRY_DAYS),
            &[(&public, &key)],
        )?;
        out.snapshot_version = Some(version);
        parts.push((roles::SNAPSHOT.to_string(), bytes));
    }

    if dry_run || parts.is_empty() {
        return Ok(out);
    }
    server
        .publish(gun, &parts)
        .await
        .map_err(|e| format!("uploading the repair: {e}"))?;

    // What the server now serves must verify for a client with no cache, now.
    let mut client = RepoBuilder::new(gun, now);
    let served_root = fetch(roles::ROOT.into()).await?;
    client
        .load(roles::ROOT, &served_root, 1, false)
        .map_err(|e| format!("root after the repair: {e}"))?;
    let ts = fetch(roles::TIMESTAMP.into()).await?;
    client
        .load(roles::TIMESTAMP, &ts, 1, false)
        .map_err(|e| format!("timestamp after the repair: {e}"))?;
    let snap = fetch(roles::SNAPSHOT.into()).await?;
    client
        .load(roles::SNAPSHOT, &snap, 1, false)
        .map_err(|e| format!("snapshot after the repair: {e}"))?;
    let targets = fetch(roles::TARGETS.into()).await?;
    client
        .load(roles::TARGETS, &targets, 1, false)
        .map_err(|e| format!("targets after the repair: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_certificates_are_made_as_the_cli_makes_them() {
        let key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        let now = Utc::now();
        let der = root_certificate(&key, "registry.example.com/app", now).unwrap();
        let info = notary_tuf::certs::cert_info(&der).unwrap();
        assert_eq!(info.common_name, "registry.example.com/app");
        assert!(info.not_after > now + Duration::days(ROOT_EXPIRY_DAYS - 1));
        notary_tuf::certs::validate_certificate(&info, true, now).unwrap();
        // The certificate carries the same key: the CLI's key file still matches it.
        let public = PublicKey::new(
            KeyType::EcdsaX509,
            notary_tuf::certs::go_pem_encode_certs(&[der]),
        );
        assert_eq!(public.certificate_public_key().unwrap(), key.public_key());
        assert_eq!(
            public.canonical_key_id().unwrap(),
            key.public_key().key_id()
        );
    }

    #[test]
    fn resigning_sets_version_and_expiry_and_verifies() {
        let key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        let public = key.public_key();
        let signed = serde_json::json!({
            "_type": "Targets", "version": 4, "expires": "2020-01-01T00:00:00Z",
            "targets": {}, "delegations": {"keys": {}, "roles": []}
        });
        let expires = Utc::now() + Duration::days(TARGETS_EXPIRY_DAYS);
        let (bytes, version) = resign(signed, 5, expires, &[(&public, &key)]).unwrap();
        assert_eq!(version, 5);
        let file = SignedFile::parse(&bytes).unwrap();
        assert_eq!(file.common.version, 5);
        assert!(!file.common.is_expired(Utc::now()));
        let role = BaseRole::new(roles::TARGETS, 1, [public]);
        verify_signatures(&file, &role).unwrap();
    }
}
