//! Fetching one GUN's trust data and verifying it the way a notary client does.
//!
//! [`collect_gun`] reads from any [`MetaSource`] (a remote server, or a store for the
//! inventory of our own database):
//!
//! 1. the current root (`root.json`), then every older root by version from 1 upward, and
//!    checks the whole chain: each root must satisfy its own root role and the previous
//!    root's (Go `trustpinning.ValidateRoot`, TOFU on the first one);
//! 2. the current timestamp, the snapshot it names by checksum, `targets` and every
//!    delegation the snapshot lists, by checksum, loaded into a
//!    [`notary_tuf::verify::RepoBuilder`] (signatures, thresholds, hashes, versions, expiry);
//! 3. optionally the older versions of every other role, by version, each checked against
//!    the keys some root (or some version of its parent) lists for it.
//!
//! Delegations a client would skip (expired, no longer delegated by their parent, failing
//! their threshold) are kept because the snapshot lists them, with a warning, exactly as
//! the source serves them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use notary_tuf::metadata::{check_hashes, tuf_type_for_role, BaseRole, Root};
use notary_tuf::roles;
use notary_tuf::verify::{validate_root, verify_signatures, RepoBuilder};
use notary_tuf::SignedFile;

/// Where metadata comes from.
#[async_trait::async_trait]
pub trait MetaSource: Send + Sync {
    /// The current `root` or `timestamp` (`None`: the GUN has no trust data).
    async fn current(&self, gun: &str, role: &str) -> Result<Option<Vec<u8>>, String>;
    /// A file by the hex SHA-256 of its bytes.
    async fn by_hash(&self, gun: &str, role: &str, sha256: &str)
        -> Result<Option<Vec<u8>>, String>;
    /// A file by version.
    async fn by_version(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<Vec<u8>>, String>;
}

#[async_trait::async_trait]
impl MetaSource for crate::remote::RemoteNotary {
    async fn current(&self, gun: &str, role: &str) -> Result<Option<Vec<u8>>, String> {
        self.metadata(gun, role).await.map_err(|e| e.to_string())
    }
    async fn by_hash(
        &self,
        gun: &str,
        role: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        self.metadata(gun, &format!("{role}.{sha256}"))
            .await
            .map_err(|e| e.to_string())
    }
    async fn by_version(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<Vec<u8>>, String> {
        self.metadata(gun, &format!("{version}.{role}"))
            .await
            .map_err(|e| e.to_string())
    }
}

/// A [`notary_server::storage::MetaStore`] as a source ("current" as the server resolves it).
pub struct StoreSource(pub std::sync::Arc<dyn notary_server::storage::MetaStore>);

#[async_trait::async_trait]
impl MetaSource for StoreSource {
    async fn current(&self, gun: &str, role: &str) -> Result<Option<Vec<u8>>, String> {
        notary_server::storage::get_current(self.0.as_ref(), gun, role)
            .await
            .map(|f| f.map(|f| f.data))
            .map_err(|e| e.to_string())
    }
    async fn by_hash(
        &self,
        gun: &str,
        role: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        self.0
            .get_checksum(gun, role, sha256)
            .await
            .map(|f| f.map(|f| f.data))
            .map_err(|e| e.to_string())
    }
    async fn by_version(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<Vec<u8>>, String> {
        self.0
            .get_version(gun, role, version)
            .await
            .map(|f| f.map(|f| f.data))
            .map_err(|e| e.to_string())
    }
}

/// Why a GUN could not be collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// The source has no trust data for the GUN (`root.json` is 404).
    #[error("the source has no trust data for this GUN (root.json not found)")]
    UnknownGun,
    /// The source failed (network, HTTP status, database).
    #[error("source error: {0}")]
    Source(String),
    /// A file the chain needs is not served.
    #[error("{0} is missing on the source")]
    Missing(String),
    /// Metadata failed verification.
    #[error("{role} failed verification: {reason}")]
    Invalid {
        /// The role (and version, when relevant).
        role: String,
        /// Why.
        reason: String,
    },
}

fn invalid(role: impl Into<String>, e: impl std::fmt::Display) -> CollectError {
    CollectError::Invalid {
        role: role.into(),
        reason: e.to_string(),
    }
}

/// Options of [`collect_gun`].
#[derive(Debug, Clone, Copy)]
pub struct CollectOptions {
    /// Also fetch older versions of the timestamp, snapshot, targets and delegations.
    pub history: bool,
    /// Accept an expired current root/timestamp/snapshot/targets (as stored data).
    pub allow_expired: bool,
}

/// One file with its role.
#[derive(Debug, Clone)]
pub struct RoleFile {
    /// Role name.
    pub role: String,
    /// The file.
    pub file: SignedFile,
}

/// A GUN's verified trust data.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The GUN.
    pub gun: String,
    /// Every root version found, ascending; the last is the current one.
    pub roots: Vec<SignedFile>,
    /// The current timestamp.
    pub timestamp: SignedFile,
    /// The current snapshot.
    pub snapshot: SignedFile,
    /// The current `targets` and delegation files the snapshot lists (by role).
    pub targets: BTreeMap<String, SignedFile>,
    /// Older versions of non-root roles (only with [`CollectOptions::history`]).
    pub history: Vec<RoleFile>,
    /// The client-style view of the current files.
    pub builder: RepoBuilder,
    /// Things a client would warn about, and history files left out.
    pub warnings: Vec<String>,
}

impl Collected {
    /// Every file to store, in a write order the store accepts: roots ascending, then per
    /// role (targets, delegations by depth, snapshot, timestamp) ascending versions.
    pub fn all_files(&self) -> Vec<RoleFile> {
        let mut out: Vec<RoleFile> = self
            .roots
            .iter()
            .map(|f| RoleFile {
                role: roles::ROOT.into(),
                file: f.clone(),
            })
            .collect();
        let mut by_role: BTreeMap<String, BTreeMap<i64, SignedFile>> = BTreeMap::new();
        for h in &self.history {
            by_role
                .entry(h.role.clone())
                .or_default()
                .insert(h.file.common.version, h.file.clone());
        }
        for (role, f) in &self.targets {
            by_role
                .entry(role.clone())
                .or_default()
                .insert(f.common.version, f.clone());
        }
        by_role
            .entry(roles::SNAPSHOT.into())
            .or_default()
            .insert(self.snapshot.common.version, self.snapshot.clone());
        by_role
            .entry(roles::TIMESTAMP.into())
            .or_default()
            .insert(self.timestamp.common.version, self.timestamp.clone());
        let mut names: Vec<String> = by_role
            .keys()
            .filter(|r| *r != roles::SNAPSHOT && *r != roles::TIMESTAMP)
            .cloned()
            .collect();
        roles::sort_roles(&mut names);
        names.push(roles::SNAPSHOT.into());
        names.push(roles::TIMESTAMP.into());
        for name in names {
            if let Some(versions) = by_role.remove(&name) {
                out.extend(versions.into_values().map(|file| RoleFile {
                    role: name.clone(),
                    file,
                }));
            }
        }
        out
    }

    /// The current root (typed).
    pub fn root(&self) -> &Root {
        &self
            .builder
            .root()
            .expect("collect_gun always loads the root")
            .typed
    }
}

fn parse(role: &str, bytes: &[u8]) -> Result<SignedFile, CollectError> {
    SignedFile::parse(bytes).map_err(|e| invalid(role, e))
}

/// Fetches and verifies one GUN (see the module docs).
pub async fn collect_gun(
    source: &dyn MetaSource,
    gun: &str,
    now: DateTime<Utc>,
    options: CollectOptions,
) -> Result<Collected, CollectError> {
    let src = |e: String| CollectError::Source(e);
    let mut warnings = Vec::new();

    // 1. Roots: the current one, then the whole chain from version 1.
    let current_root = source
        .current(gun, roles::ROOT)
        .await
        .map_err(src)?
        .ok_or(CollectError::UnknownGun)?;
    let current_root = parse("root", &current_root)?;
    let current_version = current_root.common.version;
    if current_version < 1 {
        return Err(invalid("root", "version must be at least 1"));
    }
    let mut roots = Vec::new();
    for v in 1..current_version {
        match source.by_version(gun, roles::ROOT, v).await.map_err(src)? {
            Some(bytes) => {
                let f = parse(&format!("root version {v}"), &bytes)?;
                if f.common.version != v {
                    return Err(invalid(
                        format!("root version {v}"),
                        format!("file says version {}", f.common.version),
                    ));
                }
                roots.push(f);
            }
            None => warnings.push(format!("root version {v} is not served by the source")),
        }
    }
    roots.push(current_root);
    let mut prev: Option<Root> = None;
    let last = roots.len() - 1;
    for (i, f) in roots.iter().enumerate() {
        let label = format!("root version {}", f.common.version);
        // Superseded roots may carry certificates that have expired since; judge them at a
        // moment their certificates were valid. The current one must be valid now.
        let at = if i == last {
            now
        } else {
            historical_time(f, now)
        };
        let root = validate_root(prev.as_ref(), f, gun, at).map_err(|e| invalid(&label, e))?;
        prev = Some(root);
    }

    // 2. The current files, as a client loads them.
    let mut builder = RepoBuilder::new(gun, now);
    let root_bytes = roots.last().expect("at least the current root").raw.clone();
    builder
        .load(roles::ROOT, &root_bytes, 1, options.allow_expired)
        .map_err(|e| invalid("root", e))?;
    let ts_bytes = source
        .current(gun, roles::TIMESTAMP)
        .await
        .map_err(src)?
        .ok_or_else(|| CollectError::Missing("timestamp.json".into()))?;
    builder
        .load(roles::TIMESTAMP, &ts_bytes, 1, options.allow_expired)
        .map_err(|e| invalid("timestamp", e))?;
    let timestamp = builder.timestamp().expect("loaded").file.clone();
    let snap_sha = builder
        .timestamp()
        .and_then(|t| t.typed.snapshot_meta())
        .and_then(|m| m.sha256_hex())
        .ok_or_else(|| invalid("timestamp", "no sha256 for the snapshot"))?;
    let snap_bytes = source
        .by_hash(gun, roles::SNAPSHOT, &snap_sha)
        .await
        .map_err(src)?
        .ok_or_else(|| CollectError::Missing(format!("snapshot.{snap_sha}.json")))?;
    builder
        .load(roles::SNAPSHOT, &snap_bytes, 1, options.allow_expired)
        .map_err(|e| invalid("snapshot", e))?;
    let snapshot = builder.snapshot().expect("loaded").file.clone();
    let snap_meta = builder.snapshot().expect("loaded").typed.meta.clone();

    let mut targets = BTreeMap::new();
    let mut names: Vec<String> = snap_meta
        .keys()
        .filter(|r| *r == roles::TARGETS || roles::is_delegation(r))
        .cloned()
        .collect();
    roles::sort_roles(&mut names);
    if !names.iter().any(|n| n == roles::TARGETS) {
        return Err(invalid("snapshot", "lists no targets"));
    }
    for name in names {
        let meta = &snap_meta[&name];
        let sha = meta
            .sha256_hex()
            .ok_or_else(|| invalid("snapshot", format!("no sha256 for {name}")))?;
        let bytes = source
            .by_hash(gun, &name, &sha)
            .await
            .map_err(src)?
            .ok_or_else(|| CollectError::Missing(format!("{name}.{sha}.json")))?;
        // The bytes must be what the snapshot certifies, whatever a client then makes of them.
        check_hashes(&bytes, &name, &meta.hashes).map_err(|e| invalid(&name, e))?;
        let file = parse(&name, &bytes)?;
        if name == roles::TARGETS {
            builder
                .load(roles::TARGETS, &bytes, 1, options.allow_expired)
                .map_err(|e| invalid("targets", e))?;
        } else if let Err(e) = builder.load(&name, &bytes, 1, false) {
            // A client skips such a delegation with a warning; the source serves it, so do we.
            warnings.push(format!("{name}: a client would skip it: {e}"));
        }
        targets.insert(name, file);
    }

    let mut collected = Collected {
        gun: gun.to_string(),
        roots,
        timestamp,
        snapshot,
        targets,
        history: Vec::new(),
        builder,
        warnings,
    };
    if options.history {
        collect_history(source, &mut collected).await?;
    }
    Ok(collected)
}

/// Older versions of every non-root role; each is kept only if the keys of some root
/// (base roles) or of some version of its parent (delegations) verify it.
async fn collect_history(source: &dyn MetaSource, c: &mut Collected) -> Result<(), CollectError> {
    let src = |e: String| CollectError::Source(e);
    let gun = c.gun.clone();
    let typed_roots: Vec<Root> = c.roots.iter().filter_map(|f| f.root().ok()).collect();
    let mut files: BTreeMap<String, BTreeMap<i64, SignedFile>> = BTreeMap::new();
    for (role, f) in &c.targets {
        files
            .entry(role.clone())
            .or_default()
            .insert(f.common.version, f.clone());
    }

    // Base roles first (their keys come from the roots), snapshots before delegations so
    // that delegations which no longer exist are found in older snapshots.
    for role in [roles::TIMESTAMP, roles::SNAPSHOT, roles::TARGETS] {
        let current = match role {
            roles::TIMESTAMP => c.timestamp.common.version,
            roles::SNAPSHOT => c.snapshot.common.version,
            _ => c.targets[roles::TARGETS].common.version,
        };
        let candidates: Vec<BaseRole> = typed_roots
            .iter()
            .filter_map(|r| r.build_base_role(role).ok())
            .collect();
        for v in 1..current {
            let Some(bytes) = source.by_version(&gun, role, v).await.map_err(src)? else {
                continue;
            };
            match check_history_file(role, v, &bytes, &candidates) {
                Ok(f) => {
                    files
                        .entry(role.to_string())
                        .or_default()
                        .insert(v, f.clone());
                    c.history.push(RoleFile {
                        role: role.to_string(),
                        file: f,
                    });
                }
                Err(e) => c
                    .warnings
                    .push(format!("{role} version {v} not copied: {e}")),
            }
        }
    }

    // Delegation names: current snapshot plus every older one.
    let mut names: BTreeSet<String> = BTreeSet::new();
    let snapshots = c
        .history
        .iter()
        .filter(|h| h.role == roles::SNAPSHOT)
        .map(|h| &h.file)
        .chain(std::iter::once(&c.snapshot));
    for s in snapshots {
        if let Ok(snap) = s.snapshot() {
            names.extend(
                snap.meta
                    .keys()
                    .filter(|k| roles::is_delegation(k))
                    .cloned(),
            );
        }
    }
    let mut names: Vec<String> = names.into_iter().collect();
    roles::sort_roles(&mut names);
    for name in names {
        let parent = roles::path_dir(&name).to_string();
        let candidates: Vec<BaseRole> = files
            .get(&parent)
            .map(|versions| {
                versions
                    .values()
                    .filter_map(|f| f.targets().ok())
                    .filter_map(|t| t.build_delegation_role(&name).ok().map(|(r, _)| r))
                    .collect()
            })
            .unwrap_or_default();
        let current = c.targets.get(&name).map(|f| f.common.version);
        let mut v = 1;
        loop {
            if Some(v) == current {
                v += 1;
                continue;
            }
            if current.is_some_and(|cur| v > cur) || v > MAX_VERSION_PROBE {
                break;
            }
            let Some(bytes) = source.by_version(&gun, &name, v).await.map_err(src)? else {
                if current.is_none() {
                    break;
                }
                v += 1;
                continue;
            };
            match check_history_file(&name, v, &bytes, &candidates) {
                Ok(f) => {
                    files.entry(name.clone()).or_default().insert(v, f.clone());
                    c.history.push(RoleFile {
                        role: name.clone(),
                        file: f,
                    });
                }
                Err(e) => c
                    .warnings
                    .push(format!("{name} version {v} not copied: {e}")),
            }
            v += 1;
        }
    }
    Ok(())
}

/// Upper bound when probing versions of a delegation the current snapshot no longer lists
/// (its last version is unknown), so a misbehaving source cannot keep us probing forever.
const MAX_VERSION_PROBE: i64 = 100_000;

fn check_history_file(
    role: &str,
    version: i64,
    bytes: &[u8],
    candidates: &[BaseRole],
) -> Result<SignedFile, String> {
    let f = SignedFile::parse(bytes).map_err(|e| e.to_string())?;
    let want_type = tuf_type_for_role(role).unwrap_or("Targets");
    if f.common.type_ != want_type {
        return Err(format!("_type is {:?}, not {want_type}", f.common.type_));
    }
    if f.common.version != version {
        return Err(format!("file says version {}", f.common.version));
    }
    if candidates.is_empty() {
        return Err("no known keys for the role".into());
    }
    if candidates.iter().any(|r| verify_signatures(&f, r).is_ok()) {
        Ok(f)
    } else {
        Err("signatures do not meet the threshold of any known key set for the role".into())
    }
}

/// `now`, or, when none of a root's certificates is valid any more, the last second at which
/// the latest-expiring one still was.
pub fn historical_time(root_file: &SignedFile, now: DateTime<Utc>) -> DateTime<Utc> {
    let Ok(root) = root_file.root() else {
        return now;
    };
    let Ok(role) = root.build_base_role(roles::ROOT) else {
        return now;
    };
    let mut latest: Option<DateTime<Utc>> = None;
    for key in role.keys.values() {
        let Ok(ders) = notary_tuf::certs::pem_certificates(&key.public) else {
            continue;
        };
        let Some(info) = ders
            .first()
            .and_then(|d| notary_tuf::certs::cert_info(d).ok())
        else {
            continue;
        };
        if info.not_before <= now && now <= info.not_after {
            return now;
        }
        latest = Some(latest.map_or(info.not_after, |l| l.max(info.not_after)));
    }
    match latest {
        Some(t) if t < now => t - chrono::Duration::seconds(1),
        _ => now,
    }
}

/// Key IDs whose signatures on `file` verify for `role` (empty when none or on error).
pub fn valid_signers(file: &SignedFile, role: &BaseRole) -> BTreeSet<String> {
    verify_signatures(file, role).unwrap_or_default()
}
