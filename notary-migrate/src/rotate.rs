//! The owner's side of a migration: replacing the server-held keys a mirrored GUN still
//! names (the source's timestamp and, for Docker-made repositories, snapshot keys) with keys
//! our signer holds, in a single new root version signed with the owner's root key.
//!
//! The stock `notary key rotate <gun> <role> -r` changes one role per root version. When the
//! source held both the timestamp and the snapshot key, each such root still names one key
//! our server cannot use, so neither order can be published. This command asks our server
//! for new keys (`POST {role}.key`), writes root version + 1 naming them, signs it with the
//! root key(s) found in the owner's trust directory (`notary -d` or `~/.docker/trust`), and
//! uploads only the root: the server then signs a new snapshot and timestamp with the keys
//! it holds. The owner's root key never leaves the machine this runs on.
//!
//! Before signing anything it checks that the server's current root is one the owner's root
//! key already signed, so a server cannot get other keys endorsed.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use notary_tuf::metadata::{format_expires, sign_metadata};
use notary_tuf::verify::{validate_root, verify_signatures, RepoBuilder, ROOT_EXPIRY_DAYS};
use notary_tuf::{roles, KeyType, PrivateKey, PublicKey, SignedFile};
use pkcs8::der::Decode as _;
use serde_json::Value;

use crate::remote::RemoteNotary;

/// The result of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Version of the root that was published.
    pub root_version: i64,
    /// New key ID per rotated role.
    pub new_keys: Vec<(String, String)>,
}

/// Reads an encrypted (or plain) PKCS#8 key file as the notary and docker CLIs write it:
/// PEM `ENCRYPTED PRIVATE KEY` with `role:`/`gun:` headers, PBES2 (PBKDF2 + AES-256-CBC).
pub fn read_key_file(path: &Path, passphrase: &str) -> Result<PrivateKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (label, der) = pem_with_headers(&text)
        .ok_or_else(|| format!("{} is not a PEM key file", path.display()))?;
    let plain = match label.as_str() {
        "ENCRYPTED PRIVATE KEY" => {
            let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            info.decrypt(passphrase.as_bytes())
                .map_err(|_| format!("{}: wrong passphrase (or damaged file)", path.display()))?
                .as_bytes()
                .to_vec()
        }
        "PRIVATE KEY" => der,
        other => return Err(format!("{}: unsupported PEM block {other}", path.display())),
    };
    let (oid, private) =
        pkcs8_parts(&plain).map_err(|e| format!("{}: not PKCS#8: {e}", path.display()))?;
    // notary writes ECDSA keys as PKCS#8 around SEC1; the CLIs make no other root keys.
    const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    if oid != EC_PUBLIC_KEY {
        return Err(format!(
            "{}: only ECDSA root keys are supported (algorithm {oid})",
            path.display()
        ));
    }
    PrivateKey::from_go_private_bytes(&KeyType::Ecdsa, &private)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The algorithm OID and private key bytes of a PKCS#8 `PrivateKeyInfo`. Notary marks its
/// keys version 1 (v2) without the public key v2 requires, which the `pkcs8` crate refuses,
/// so the three fields are read directly and anything after them is ignored, as Go does.
fn pkcs8_parts(der: &[u8]) -> Result<(String, Vec<u8>), pkcs8::der::Error> {
    use pkcs8::der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
    use pkcs8::der::{Reader as _, SliceReader};
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|r| {
        let _version = AnyRef::decode(r)?;
        let (oid, private) = (
            r.sequence(|alg| {
                let oid = ObjectIdentifier::decode(alg)?;
                let rest = alg.remaining_len();
                alg.read_slice(rest)?;
                Ok(oid)
            })?,
            OctetStringRef::decode(r)?.as_bytes().to_vec(),
        );
        let rest = r.remaining_len();
        r.read_slice(rest)?;
        Ok((oid.to_string(), private))
    })
}

/// The label and DER of the first PEM block, skipping RFC 1421 style `key: value` headers.
fn pem_with_headers(text: &str) -> Option<(String, Vec<u8>)> {
    use base64::Engine as _;
    let mut lines = text.lines();
    let label = lines.by_ref().find_map(|l| {
        l.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
            .map(str::to_string)
    })?;
    let mut b64 = String::new();
    for l in lines {
        let l = l.trim();
        if l.starts_with("-----END ") {
            let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            return Some((label, der));
        }
        if l.is_empty() || l.contains(':') {
            continue;
        }
        b64.push_str(l);
    }
    None
}

/// Root private keys in `trust_dir` for the root keys `root_keys` lists: the CLIs name key
/// files after the certificate's bare public key ID.
pub fn find_root_keys(
    trust_dir: &Path,
    root_keys: &[PublicKey],
    passphrase: &str,
) -> Result<Vec<(PublicKey, PrivateKey)>, String> {
    let mut found = Vec::new();
    let mut tried = Vec::new();
    for key in root_keys {
        let Ok(canonical) = key.canonical_key_id() else {
            continue;
        };
        for path in candidate_paths(trust_dir, &canonical) {
            if !path.exists() {
                continue;
            }
            tried.push(path.display().to_string());
            let private = read_key_file(&path, passphrase)?;
            let bare = key.certificate_public_key().unwrap_or_else(|_| key.clone());
            if private.public_key() != bare {
                return Err(format!(
                    "{} does not hold the private half of root key {}",
                    path.display(),
                    key.key_id()
                ));
            }
            found.push((key.clone(), private));
            break;
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no root private key for this GUN in {} (looked for {})",
            trust_dir.display(),
            root_keys
                .iter()
                .filter_map(|k| k.canonical_key_id().ok())
                .map(|id| format!("private/{id}.key"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let _ = tried;
    Ok(found)
}

fn candidate_paths(trust_dir: &Path, key_id: &str) -> Vec<PathBuf> {
    vec![
        trust_dir.join("private").join(format!("{key_id}.key")),
        // Layout of notary < 0.6.
        trust_dir
            .join("private")
            .join("root_keys")
            .join(format!("{key_id}.key")),
    ]
}

/// Builds root version + 1 of `current` with `new_keys` replacing each role's keys; keys no
/// role uses any more are dropped; expiry now + 10 years (the client default).
pub fn next_root(
    current: &SignedFile,
    new_keys: &[(String, PublicKey)],
    now: DateTime<Utc>,
) -> Result<Value, String> {
    let mut signed = current.signed_value.clone();
    let obj = signed.as_object_mut().ok_or("root is not an object")?;
    let keys = obj
        .get_mut("keys")
        .and_then(Value::as_object_mut)
        .ok_or("root has no keys")?;
    for (_, k) in new_keys {
        keys.insert(k.key_id(), k.to_json_value());
    }
    let roles_obj = obj
        .get_mut("roles")
        .and_then(Value::as_object_mut)
        .ok_or("root has no roles")?;
    for (role, k) in new_keys {
        let entry = roles_obj
            .get_mut(role)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("root has no {role} role"))?;
        entry.insert(
            "keyids".into(),
            Value::Array(vec![Value::String(k.key_id())]),
        );
    }
    let used: std::collections::BTreeSet<String> = roles_obj
        .values()
        .filter_map(|r| r.get("keyids").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let keys = obj
        .get_mut("keys")
        .and_then(Value::as_object_mut)
        .expect("checked above");
    keys.retain(|id, _| used.contains(id));
    let version = current.common.version + 1;
    obj.insert("version".into(), Value::from(version));
    obj.insert(
        "expires".into(),
        Value::String(format_expires(
            &(now + chrono::Duration::days(ROOT_EXPIRY_DAYS)),
        )),
    );
    Ok(signed)
}

/// Rotates `rotate` (a subset of `timestamp`, `snapshot`) of `gun` on `server`.
pub async fn rotate_keys(
    server: &RemoteNotary,
    gun: &str,
    rotate: &[String],
    trust_dir: &Path,
    passphrase: &str,
    now: DateTime<Utc>,
) -> Result<Rotated, String> {
    for r in rotate {
        if r != roles::TIMESTAMP && r != roles::SNAPSHOT {
            return Err(format!(
                "only timestamp and snapshot keys are server-held, not {r}"
            ));
        }
    }
    if rotate.is_empty() {
        return Err("no roles to rotate".into());
    }
    server.ping().await.map_err(|e| e.to_string())?;
    let bytes = server
        .metadata(gun, roles::ROOT)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} has no trust data for {gun}", server.base()))?;
    let current = SignedFile::parse(&bytes).map_err(|e| format!("current root: {e}"))?;
    // The owner's last trusted root, if the CLI cached one, must lead to the server's.
    let cached = trust_dir
        .join("tuf")
        .join(gun)
        .join("metadata")
        .join("root.json");
    let prev = match std::fs::read(&cached) {
        Ok(b) => {
            let f = SignedFile::parse(&b).map_err(|e| format!("{}: {e}", cached.display()))?;
            Some(f.root().map_err(|e| format!("{}: {e}", cached.display()))?)
        }
        Err(_) => None,
    };
    let root = validate_root(prev.as_ref(), &current, gun, now)
        .map_err(|e| format!("the server's current root does not verify: {e}"))?;
    let root_role = root
        .build_base_role(roles::ROOT)
        .map_err(|e| e.to_string())?;
    let root_keys: Vec<PublicKey> = root_role.keys.values().cloned().collect();
    let held = find_root_keys(trust_dir, &root_keys, passphrase)?;
    // Only endorse what the owner's key already endorsed.
    let mine = notary_tuf::metadata::BaseRole {
        name: roles::ROOT.into(),
        keys: held.iter().map(|(k, _)| (k.key_id(), k.clone())).collect(),
        threshold: 1,
    };
    verify_signatures(&current, &mine).map_err(|_| {
        "the server's current root is not signed by your root key; refusing to re-sign it"
            .to_string()
    })?;

    let mut new_keys = Vec::new();
    for role in rotate {
        let key = server
            .rotate_key(gun, role)
            .await
            .map_err(|e| format!("asking the server for a new {role} key: {e}"))?;
        new_keys.push((role.clone(), key));
    }
    let signed = next_root(&current, &new_keys, now)?;
    let msg = notary_tuf::metadata::to_sign(&signed).map_err(|e| e.to_string())?;
    let mut sigs = Vec::new();
    for (public, private) in &held {
        let sig = private.sign(&msg).map_err(|e| e.to_string())?;
        sigs.push((public, sig));
    }
    let file = sign_metadata(&signed, &sigs).map_err(|e| e.to_string())?;
    // Check our own work as the server and clients will.
    let new_root = SignedFile::parse(&file).map_err(|e| e.to_string())?;
    validate_root(Some(&root), &new_root, gun, now).map_err(|e| format!("new root: {e}"))?;

    server
        .publish(gun, &[(roles::ROOT.to_string(), file.clone())])
        .await
        .map_err(|e| format!("publishing the new root: {e}"))?;

    // The server must now serve a timestamp and snapshot signed with the new keys.
    let mut b = RepoBuilder::new(gun, now);
    b.load(roles::ROOT, &file, 1, false)
        .map_err(|e| e.to_string())?;
    let ts = server
        .metadata(gun, roles::TIMESTAMP)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the server serves no timestamp after the rotation")?;
    b.load(roles::TIMESTAMP, &ts, 1, false)
        .map_err(|e| format!("timestamp after the rotation: {e}"))?;
    let snap_sha = b
        .timestamp()
        .and_then(|t| t.typed.snapshot_meta())
        .and_then(|m| m.sha256_hex())
        .ok_or("timestamp names no snapshot")?;
    let snap = server
        .metadata(gun, &format!("{}.{snap_sha}", roles::SNAPSHOT))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the snapshot the new timestamp names is missing")?;
    b.load(roles::SNAPSHOT, &snap, 1, false)
        .map_err(|e| format!("snapshot after the rotation: {e}"))?;
    Ok(Rotated {
        root_version: new_root.common.version,
        new_keys: new_keys
            .iter()
            .map(|(r, k)| (r.clone(), k.key_id()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_headers_are_skipped() {
        let text = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: root\n\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let (label, der) = pem_with_headers(text).unwrap();
        assert_eq!(label, "ENCRYPTED PRIVATE KEY");
        assert_eq!(der, vec![0, 1, 2]);
        assert!(pem_with_headers("no pem here").is_none());
    }

    #[test]
    fn plain_pkcs8_key_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.to_pkcs8_der().unwrap());
        let path = dir.path().join("k.key");
        std::fs::write(
            &path,
            format!(
                "-----BEGIN PRIVATE KEY-----\nrole: root\n\n{b64}\n-----END PRIVATE KEY-----\n"
            ),
        )
        .unwrap();
        let read = read_key_file(&path, "unused").unwrap();
        assert_eq!(read.public_key(), key.public_key());
    }
}
