//! Inventory of DCT trust data, for leaving Docker Content Trust: every signed tag with its
//! digest, size, signing role, signer key IDs and certificate subjects, plus every role's
//! expiry; and [`verify_refs`], which says whether trust data vouches for image references.
//!
//! Data is read and verified like a client does ([`crate::collect::collect_gun`], expired
//! files accepted so that the inventory can show them), from a server or from our store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use notary_tuf::metadata::BaseRole;
use notary_tuf::{roles, KeyType, PublicKey, SignedFile};
use serde::Serialize;

use crate::collect::{collect_gun, valid_signers, CollectOptions, Collected, MetaSource};

/// One signed target in one role.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetEntry {
    /// Target name (the tag, for Docker).
    pub tag: String,
    /// Hex SHA-256 of the target (the image manifest digest for Docker), "" if absent.
    pub digest: String,
    /// Length in bytes.
    pub size: i64,
    /// The role whose file lists it (`targets`, `targets/releases`, ...).
    pub role: String,
    /// Key IDs whose signatures on that role's file verify.
    pub signer_key_ids: Vec<String>,
    /// Subjects of the certificates among those keys.
    pub cert_subjects: Vec<String>,
    /// Expiry of that role's file.
    pub role_expires: String,
}

/// One role of a GUN.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleEntry {
    /// Role name.
    pub role: String,
    /// Current version.
    pub version: i64,
    /// Expiry (RFC 3339).
    pub expires: String,
    /// Whether it has expired at inventory time.
    pub expired: bool,
    /// Keys the role trusts.
    pub key_ids: Vec<String>,
    /// Keys whose signatures verify.
    pub signed_by: Vec<String>,
    /// Certificate subjects of the trusted keys.
    pub cert_subjects: Vec<String>,
}

/// The inventory of one GUN.
#[derive(Debug, Clone, Serialize)]
pub struct GunInventory {
    /// The GUN.
    pub gun: String,
    /// Why it could not be read (then `roles` and `targets` are empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every role, base roles first.
    pub roles: Vec<RoleEntry>,
    /// Every signed target, per role.
    pub targets: Vec<TargetEntry>,
    /// What a client would warn about.
    pub warnings: Vec<String>,
}

/// A whole inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// When it was taken.
    pub generated_at: String,
    /// Where from.
    pub source: String,
    /// The GUN prefix, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// One entry per GUN.
    pub guns: Vec<GunInventory>,
}

fn subjects(keys: &[&PublicKey]) -> Vec<String> {
    let mut out = Vec::new();
    for k in keys {
        if !matches!(k.key_type, KeyType::EcdsaX509 | KeyType::RsaX509) {
            continue;
        }
        let Ok(ders) = notary_tuf::certs::pem_certificates(&k.public) else {
            continue;
        };
        if let Some(info) = ders
            .first()
            .and_then(|d| notary_tuf::certs::cert_info(d).ok())
        {
            let s = format!("CN={}", info.common_name);
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn role_entry(
    name: &str,
    file: &SignedFile,
    role: Option<&BaseRole>,
    now: DateTime<Utc>,
) -> RoleEntry {
    let (key_ids, signed_by, cert_subjects) = match role {
        Some(r) => {
            let signed: Vec<String> = valid_signers(file, r).into_iter().collect();
            let keys: Vec<&PublicKey> = r.keys.values().collect();
            (r.keys.keys().cloned().collect(), signed, subjects(&keys))
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    RoleEntry {
        role: name.to_string(),
        version: file.common.version,
        expires: notary_tuf::metadata::format_expires(&file.common.expires),
        expired: file.common.is_expired(now),
        key_ids,
        signed_by,
        cert_subjects,
    }
}

/// The key set a role is verified with: base roles from the root, delegations from the
/// parent (`None` when the delegation is not (or no longer) reachable).
fn role_keys(c: &Collected, role: &str) -> Option<BaseRole> {
    if roles::is_delegation(role) {
        c.builder.delegation_role(role).ok()
    } else {
        c.root().build_base_role(role).ok()
    }
}

/// Builds the inventory of one collected GUN.
pub fn inventory_of(c: &Collected, now: DateTime<Utc>) -> GunInventory {
    let mut role_entries = Vec::new();
    let root_file = c.roots.last().expect("collected GUNs have a root");
    for (name, file) in [
        (roles::ROOT, root_file),
        (roles::TARGETS, &c.targets[roles::TARGETS]),
        (roles::SNAPSHOT, &c.snapshot),
        (roles::TIMESTAMP, &c.timestamp),
    ] {
        role_entries.push(role_entry(name, file, role_keys(c, name).as_ref(), now));
    }
    let mut targets = Vec::new();
    for (name, file) in &c.targets {
        let keys = role_keys(c, name);
        if name != roles::TARGETS {
            role_entries.push(role_entry(name, file, keys.as_ref(), now));
        }
        let Ok(t) = file.targets() else { continue };
        let (signers, subj) = match &keys {
            Some(r) => {
                let ids: Vec<String> = valid_signers(file, r).into_iter().collect();
                let ks: Vec<&PublicKey> = ids.iter().filter_map(|i| r.keys.get(i)).collect();
                (ids.clone(), subjects(&ks))
            }
            None => (Vec::new(), Vec::new()),
        };
        for (tag, meta) in &t.targets {
            targets.push(TargetEntry {
                tag: tag.clone(),
                digest: meta.sha256_hex().unwrap_or_default(),
                size: meta.length,
                role: name.clone(),
                signer_key_ids: signers.clone(),
                cert_subjects: subj.clone(),
                role_expires: notary_tuf::metadata::format_expires(&t.common.expires),
            });
        }
    }
    GunInventory {
        gun: c.gun.clone(),
        error: None,
        roles: role_entries,
        targets,
        warnings: c.warnings.clone(),
    }
}

/// Collects and inventories each GUN; GUNs that cannot be read are listed with the error.
pub async fn inventory(
    source: &dyn MetaSource,
    source_name: &str,
    guns: &[String],
    prefix: Option<&str>,
    now: DateTime<Utc>,
) -> Inventory {
    let mut progress = crate::progress::Progress::new("inventory", guns.len());
    let mut out = Vec::new();
    let options = CollectOptions {
        history: false,
        allow_expired: true,
    };
    for gun in guns {
        progress.step(gun);
        match collect_gun(source, gun, now, options).await {
            Ok(c) => out.push(inventory_of(&c, now)),
            Err(e) => out.push(GunInventory {
                gun: gun.clone(),
                error: Some(e.to_string()),
                roles: Vec::new(),
                targets: Vec::new(),
                warnings: Vec::new(),
            }),
        }
    }
    progress.finish();
    Inventory {
        generated_at: notary_tuf::metadata::format_expires(&now),
        source: source_name.to_string(),
        prefix: prefix.map(str::to_string),
        guns: out,
    }
}

/// CSV with one row per (GUN, tag, role); lists are `;`-separated.
pub fn to_csv(inv: &Inventory) -> String {
    let mut s =
        String::from("gun,tag,digest,size,role,signer_key_ids,cert_subjects,role_expires\n");
    for g in &inv.guns {
        for t in &g.targets {
            let fields = [
                g.gun.clone(),
                t.tag.clone(),
                t.digest.clone(),
                t.size.to_string(),
                t.role.clone(),
                t.signer_key_ids.join(";"),
                t.cert_subjects.join(";"),
                t.role_expires.clone(),
            ];
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            s.push_str(&row.join(","));
            s.push('\n');
        }
    }
    s
}

/// CSV with one row per (GUN, role): versions, expiries and keys.
pub fn roles_csv(inv: &Inventory) -> String {
    let mut s = String::from("gun,role,version,expires,expired,key_ids,signed_by,cert_subjects\n");
    for g in &inv.guns {
        for r in &g.roles {
            let fields = [
                g.gun.clone(),
                r.role.clone(),
                r.version.to_string(),
                r.expires.clone(),
                r.expired.to_string(),
                r.key_ids.join(";"),
                r.signed_by.join(";"),
                r.cert_subjects.join(";"),
            ];
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            s.push_str(&row.join(","));
            s.push('\n');
        }
    }
    s
}

/// RFC 4180 quoting.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The reference as given.
    pub input: String,
    /// The GUN (repository name with registry host, normalised like Docker does).
    pub gun: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The hex SHA-256 digest, if any.
    pub digest: Option<String>,
}

/// Parses `[registry/]repo[:tag][@sha256:<hex>]` the way Docker names repositories: no
/// registry means `docker.io`, and a single-component name lives under `library/`.
pub fn parse_image_ref(input: &str) -> Result<ImageRef, String> {
    let (name_tag, digest) = match input.split_once('@') {
        Some((n, d)) => {
            let hexd = d
                .strip_prefix("sha256:")
                .ok_or_else(|| format!("{input}: only sha256 digests are supported"))?;
            if hexd.len() != 64 || !hexd.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("{input}: the digest must be 64 hex characters"));
            }
            (n, Some(hexd.to_ascii_lowercase()))
        }
        None => (input, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(name_tag[last_slash + i + 1..].to_string()),
        ),
        None => (name_tag, None),
    };
    if name.is_empty() || tag.as_deref() == Some("") {
        return Err(format!("{input}: not an image reference"));
    }
    if tag.is_none() && digest.is_none() {
        return Err(format!("{input}: give a tag or an @sha256: digest"));
    }
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let gun = if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    Ok(ImageRef {
        input: input.to_string(),
        gun,
        tag,
        digest,
    })
}

/// The verdict on one image reference.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefVerdict {
    /// The reference as given.
    pub reference: String,
    /// Its GUN.
    pub gun: String,
    /// Whether DCT trust data vouches for it.
    pub vouched: bool,
    /// The digest trust data gives (for a tag) or that was matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The tag that carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The role that vouches (`targets/releases` or `targets`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Explanation.
    pub reason: String,
}

/// Roles Docker resolves tags through, in order; matches in other roles are ignored.
const DOCKER_ROLES: [&str; 2] = ["targets/releases", roles::TARGETS];

/// Tag → (role, digest) lookups the way `docker pull` resolves them.
fn docker_lookup(c: &Collected, tag: &str) -> Option<(String, String)> {
    for role in DOCKER_ROLES {
        let Some(loaded) = c.builder.targets(role) else {
            continue;
        };
        if let Some(meta) = loaded.typed.targets.get(tag) {
            return Some((role.to_string(), meta.sha256_hex().unwrap_or_default()));
        }
    }
    None
}

/// Judges one reference against a collected GUN.
pub fn judge(c: &Collected, r: &ImageRef) -> RefVerdict {
    let mut v = RefVerdict {
        reference: r.input.clone(),
        gun: r.gun.clone(),
        vouched: false,
        digest: None,
        tag: r.tag.clone(),
        role: None,
        reason: String::new(),
    };
    match (&r.tag, &r.digest) {
        (Some(tag), want) => match docker_lookup(c, tag) {
            None => v.reason = format!("no valid trust data for tag {tag}"),
            Some((role, digest)) => {
                v.digest = Some(digest.clone());
                v.role = Some(role.clone());
                match want {
                    Some(w) if *w != digest => {
                        v.reason = format!(
                            "tag {tag} is signed for sha256:{digest} in {role}, not sha256:{w}"
                        )
                    }
                    _ => {
                        v.vouched = true;
                        v.reason = format!("tag {tag} is signed for sha256:{digest} in {role}");
                    }
                }
            }
        },
        (None, Some(want)) => {
            for role in DOCKER_ROLES {
                let Some(loaded) = c.builder.targets(role) else {
                    continue;
                };
                if let Some((tag, _)) = loaded
                    .typed
                    .targets
                    .iter()
                    .find(|(_, m)| m.sha256_hex().as_deref() == Some(want.as_str()))
                {
                    v.vouched = true;
                    v.tag = Some(tag.clone());
                    v.role = Some(role.to_string());
                    v.digest = Some(want.clone());
                    v.reason = format!("sha256:{want} is signed as tag {tag} in {role}");
                    return v;
                }
            }
            v.reason = format!("no tag in targets/releases or targets is signed for sha256:{want}");
        }
        (None, None) => v.reason = "no tag or digest".into(),
    }
    v
}

/// Verifies image references; each GUN is fetched once.
pub async fn verify_refs(
    source: &dyn MetaSource,
    refs: &[ImageRef],
    now: DateTime<Utc>,
) -> Vec<RefVerdict> {
    let mut cache: BTreeMap<String, Result<Collected, String>> = BTreeMap::new();
    let options = CollectOptions {
        history: false,
        allow_expired: false,
    };
    let mut out = Vec::new();
    for r in refs {
        if !cache.contains_key(&r.gun) {
            let c = collect_gun(source, &r.gun, now, options)
                .await
                .map_err(|e| e.to_string());
            cache.insert(r.gun.clone(), c);
        }
        match &cache[&r.gun] {
            Ok(c) => out.push(judge(c, r)),
            Err(e) => out.push(RefVerdict {
                reference: r.input.clone(),
                gun: r.gun.clone(),
                vouched: false,
                digest: None,
                tag: r.tag.clone(),
                role: None,
                reason: format!("no valid trust data for {}: {e}", r.gun),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed_like_docker_names() {
        let r = parse_image_ref("localhost:5000/app/x:1").unwrap();
        assert_eq!(r.gun, "localhost:5000/app/x");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest, None);
        let d = "a".repeat(64);
        let r = parse_image_ref(&format!("registry.example.com/app@sha256:{d}")).unwrap();
        assert_eq!(r.gun, "registry.example.com/app");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = parse_image_ref(&format!("alpine:3@sha256:{}", d.to_uppercase())).unwrap();
        assert_eq!(r.gun, "docker.io/library/alpine");
        assert_eq!(r.tag.as_deref(), Some("3"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(
            parse_image_ref("user/app:v1").unwrap().gun,
            "docker.io/user/app"
        );
        for bad in ["app", "app:", "app@sha256:abc", "app@md5:00", ":1"] {
            assert!(parse_image_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
