//! Mirroring trust collections from a remote notary server into our store.
//!
//! Per GUN: [`crate::collect::collect_gun`] fetches and verifies everything; then the files
//! the target does not have yet are written verbatim, versions preserved, in one
//! `update_many` batch (all or nothing for that GUN). A GUN that fails anywhere is not
//! written at all and is reported. Running again is cheap and safe:
//!
//! - when the source's changefeed names the same latest timestamp the target already has,
//!   the GUN is not fetched again;
//! - files already stored with identical bytes are skipped, so a rerun after an interruption
//!   writes exactly what is missing;
//! - a GUN whose target copy has moved on (the owner published through our server, for
//!   example after rotating the server-held keys) or holds different bytes for a version is
//!   left alone and reported.
//!
//! The source's server-held keys cannot come along: every GUN's report names the roles whose
//! keys must be rotated and the command the owner runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use notary_server::storage::{sha256_hex, MetaStore, MetaUpdate};
use notary_tuf::roles;
use serde::Serialize;

use crate::collect::{collect_gun, CollectError, CollectOptions, Collected};
use crate::progress::Progress;
use crate::remote::{ChangeRecord, RemoteNotary};

/// What to mirror and how.
pub struct MirrorJob {
    /// The source server.
    pub source: Arc<RemoteNotary>,
    /// GUNs to mirror (empty: every GUN the source's changefeed knows).
    pub guns: Vec<String>,
    /// Where to write.
    pub target: Arc<dyn MetaStore>,
    /// URL clients use for our server, for the printed owner commands.
    pub target_url: String,
    /// CA file clients use for our server, for the printed owner commands.
    pub target_ca: Option<String>,
    /// "Now" for expiry checks.
    pub now: DateTime<Utc>,
    /// Copy older versions of every role too.
    pub history: bool,
    /// Ask the source for `snapshot.key` to learn whether it holds the snapshot key.
    pub probe_snapshot_key: bool,
}

/// Outcome of one GUN.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GunStatus {
    /// Files were written.
    Mirrored,
    /// The target already had everything.
    UpToDate,
    /// The target has newer or different data; nothing was written.
    TargetDiverged,
    /// Fetching or verification failed; nothing was written.
    Failed,
}

/// Whether the source held the snapshot key of a GUN.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKey {
    /// The source's `snapshot.key` is the root's snapshot key.
    ServerHeld,
    /// The source does not hold it: the owner signs snapshots.
    ClientHeld,
    /// Not probed or the probe failed.
    Unknown,
}

/// The report of one GUN.
#[derive(Debug, Clone, Serialize)]
pub struct GunReport {
    /// The GUN.
    pub gun: String,
    /// What happened.
    pub status: GunStatus,
    /// Why it failed or diverged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Files written in this run.
    pub files_written: usize,
    /// Files the target already had.
    pub files_present: usize,
    /// Current version per role at the source.
    pub versions: BTreeMap<String, i64>,
    /// Expiry of the mirrored timestamp: our server serves the mirrored data read-only
    /// until then, unless the owner rotates the timestamp key first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_expires: Option<String>,
    /// Number of targets in `targets` and delegations.
    pub target_count: usize,
    /// Whether the source held the snapshot key.
    pub snapshot_key: SnapshotKey,
    /// Roles whose keys stayed with the source and must be rotated.
    pub keys_to_rotate: Vec<String>,
    /// The commands the owner runs against our server.
    pub owner_commands: Vec<String>,
    /// Warnings (what a client would skip, history files not copied).
    pub warnings: Vec<String>,
}

impl GunReport {
    fn new(gun: &str) -> GunReport {
        GunReport {
            gun: gun.to_string(),
            status: GunStatus::Failed,
            error: None,
            files_written: 0,
            files_present: 0,
            versions: BTreeMap::new(),
            timestamp_expires: None,
            target_count: 0,
            snapshot_key: SnapshotKey::Unknown,
            keys_to_rotate: Vec::new(),
            owner_commands: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The report of a mirror run.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    /// The source URL.
    pub source: String,
    /// Whether the source's changefeed answered.
    pub changefeed: bool,
    /// One entry per GUN, in input order.
    pub guns: Vec<GunReport>,
}

impl MirrorReport {
    /// True when no GUN failed or diverged.
    pub fn all_ok(&self) -> bool {
        self.guns
            .iter()
            .all(|g| matches!(g.status, GunStatus::Mirrored | GunStatus::UpToDate))
    }

    /// A human-readable per-GUN summary.
    pub fn summary(&self) -> String {
        let mut s = format!("mirror from {}\n", self.source);
        for g in &self.guns {
            s.push_str(&format!(
                "\n{}: {}",
                g.gun,
                serde_json::to_value(&g.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ));
            if let Some(e) = &g.error {
                s.push_str(&format!(" ({e})"));
            }
            s.push('\n');
            if g.status == GunStatus::Failed {
                continue;
            }
            let versions: Vec<String> = g
                .versions
                .iter()
                .map(|(r, v)| format!("{r} v{v}"))
                .collect();
            s.push_str(&format!(
                "  files written {}, already present {}; {} target(s); {}\n",
                g.files_written,
                g.files_present,
                g.target_count,
                versions.join(", ")
            ));
            if let Some(exp) = &g.timestamp_expires {
                s.push_str(&format!(
                    "  served read-only (mirrored timestamp) until {exp}\n"
                ));
            }
            if !g.keys_to_rotate.is_empty() {
                s.push_str(&format!(
                    "  keys held by the source, to rotate: {}\n",
                    g.keys_to_rotate.join(", ")
                ));
                for c in &g.owner_commands {
                    s.push_str(&format!("    owner runs: {c}\n"));
                }
            }
            for w in &g.warnings {
                s.push_str(&format!("  warning: {w}\n"));
            }
        }
        let count = |st: GunStatus| self.guns.iter().filter(|g| g.status == st).count();
        s.push_str(&format!(
            "\n{} GUN(s): {} mirrored, {} up to date, {} diverged, {} failed\n",
            self.guns.len(),
            count(GunStatus::Mirrored),
            count(GunStatus::UpToDate),
            count(GunStatus::TargetDiverged),
            count(GunStatus::Failed)
        ));
        s
    }
}

/// Runs a mirror job. Errors only when the source cannot be used at all (unreachable,
/// TLS failure, no GUNs); per-GUN failures are in the report.
pub async fn mirror(job: &MirrorJob) -> anyhow::Result<MirrorReport> {
    job.source
        .ping()
        .await
        .map_err(|e| anyhow::anyhow!("source {} is not usable: {e}", job.source.base()))?;
    // The changefeed tells which GUNs exist and their latest timestamp.
    let feed = match job.source.full_changefeed().await {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "note: the source's changefeed is not available ({e}); continuing without it"
            );
            None
        }
    };
    let latest = feed.as_deref().map(latest_per_gun).unwrap_or_default();
    let guns: Vec<String> = if job.guns.is_empty() {
        let Some(_) = &feed else {
            anyhow::bail!("no GUNs given and the source has no usable changefeed to list them");
        };
        latest
            .iter()
            .filter(|(_, r)| r.category != "deletion")
            .map(|(g, _)| g.clone())
            .collect()
    } else {
        job.guns.clone()
    };
    if guns.is_empty() {
        anyhow::bail!("no GUNs to mirror");
    }

    let mut progress = Progress::new("mirror", guns.len());
    let mut reports = Vec::new();
    for gun in &guns {
        progress.step(gun);
        let report = mirror_gun(job, gun, latest.get(gun)).await;
        reports.push(report);
    }
    progress.finish();
    Ok(MirrorReport {
        source: job.source.base().to_string(),
        changefeed: feed.is_some(),
        guns: reports,
    })
}

/// The newest changefeed record of every GUN.
fn latest_per_gun(records: &[ChangeRecord]) -> BTreeMap<String, ChangeRecord> {
    let mut out = BTreeMap::new();
    for r in records {
        out.insert(r.gun.clone(), r.clone());
    }
    out
}

async fn mirror_gun(job: &MirrorJob, gun: &str, feed: Option<&ChangeRecord>) -> GunReport {
    let mut report = GunReport::new(gun);
    if let Err(msg) = check_gun(gun) {
        report.error = Some(msg);
        return report;
    }
    // Fast path: the target's latest timestamp is the one the changefeed names.
    if let Some(rec) = feed.filter(|r| r.category == "update") {
        if let Ok(Some(ts)) = job.target.get_latest(gun, roles::TIMESTAMP).await {
            if ts.sha256 == rec.sha256 {
                report.status = GunStatus::UpToDate;
                report.versions.insert(roles::TIMESTAMP.into(), ts.version);
                fill_from_target(job, gun, &mut report).await;
                return report;
            }
        }
    }
    let options = CollectOptions {
        history: job.history,
        allow_expired: false,
    };
    let collected = match collect_gun(job.source.as_ref(), gun, job.now, options).await {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(match e {
                CollectError::UnknownGun => format!("GUN {gun} is unknown to the source"),
                other => other.to_string(),
            });
            return report;
        }
    };
    describe(&collected, &mut report);
    if let Err(e) = write(job, &collected, &mut report).await {
        report.error = Some(e);
        if report.status != GunStatus::TargetDiverged {
            report.status = GunStatus::Failed;
        }
        return report;
    }
    rotation_advice(job, &collected, &mut report).await;
    report
}

fn check_gun(gun: &str) -> Result<(), String> {
    if gun.is_empty() || gun.contains('*') || gun.starts_with('/') || gun.contains("..") {
        return Err(format!("{gun:?} is not a valid GUN"));
    }
    if gun.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{gun:?} is not a valid GUN"));
    }
    Ok(())
}

fn describe(c: &Collected, report: &mut GunReport) {
    report.versions.insert(
        roles::ROOT.into(),
        c.roots.last().map(|r| r.common.version).unwrap_or(0),
    );
    report
        .versions
        .insert(roles::TIMESTAMP.into(), c.timestamp.common.version);
    report
        .versions
        .insert(roles::SNAPSHOT.into(), c.snapshot.common.version);
    for (role, f) in &c.targets {
        report.versions.insert(role.clone(), f.common.version);
    }
    report.timestamp_expires = Some(notary_tuf::metadata::format_expires(
        &c.timestamp.common.expires,
    ));
    report.target_count = c
        .targets
        .values()
        .filter_map(|f| f.targets().ok())
        .map(|t| t.targets.len())
        .sum();
    report.warnings.extend(c.warnings.iter().cloned());
}

/// Writes what the target lacks, or explains why nothing can be written.
async fn write(job: &MirrorJob, c: &Collected, report: &mut GunReport) -> Result<(), String> {
    let gun = &c.gun;
    let files = c.all_files();
    // Newest stored version per role, and whether the target moved past the source.
    let mut stored_max: BTreeMap<String, i64> = BTreeMap::new();
    for f in &files {
        if stored_max.contains_key(&f.role) {
            continue;
        }
        let latest = job
            .target
            .get_latest(gun, &f.role)
            .await
            .map_err(|e| format!("target store: {e}"))?;
        stored_max.insert(f.role.clone(), latest.map(|l| l.version).unwrap_or(0));
    }
    let source_ts = c.timestamp.common.version;
    if stored_max.get(roles::TIMESTAMP).copied().unwrap_or(0) > source_ts {
        report.status = GunStatus::TargetDiverged;
        return Err(format!(
            "the target's timestamp (version {}) is newer than the source's ({source_ts}): \
             the GUN was updated on the target since it was mirrored; left as is",
            stored_max[roles::TIMESTAMP]
        ));
    }
    let mut batch = Vec::new();
    for f in files {
        let max = stored_max.get(&f.role).copied().unwrap_or(0);
        let v = f.file.common.version;
        if v > max {
            batch.push(MetaUpdate {
                role: f.role,
                version: v,
                data: f.file.raw,
            });
            continue;
        }
        match job
            .target
            .get_version(gun, &f.role, v)
            .await
            .map_err(|e| format!("target store: {e}"))?
        {
            Some(stored) if stored.sha256 == sha256_hex(&f.file.raw) => report.files_present += 1,
            Some(_) => {
                report.status = GunStatus::TargetDiverged;
                return Err(format!(
                    "the target holds different bytes for {} version {v}; left as is",
                    f.role
                ));
            }
            None => report.warnings.push(format!(
                "{} version {v} cannot be added below the target's newer version {max}",
                f.role
            )),
        }
    }
    if batch.is_empty() {
        report.status = GunStatus::UpToDate;
        return Ok(());
    }
    let n = batch.len();
    job.target
        .update_many(gun, batch)
        .await
        .map_err(|e| format!("writing to the target failed (nothing written): {e}"))?;
    report.files_written = n;
    report.status = GunStatus::Mirrored;
    Ok(())
}

/// Fills versions and expiry of an up-to-date GUN from the target (no source fetch).
async fn fill_from_target(job: &MirrorJob, gun: &str, report: &mut GunReport) {
    let source = crate::collect::StoreSource(job.target.clone());
    let options = CollectOptions {
        history: false,
        allow_expired: true,
    };
    if let Ok(c) = collect_gun(&source, gun, job.now, options).await {
        describe(&c, report);
        report.warnings.clear();
        rotation_advice(job, &c, report).await;
    }
}

async fn rotation_advice(job: &MirrorJob, c: &Collected, report: &mut GunReport) {
    report.keys_to_rotate = vec![roles::TIMESTAMP.to_string()];
    report.snapshot_key = if job.probe_snapshot_key {
        probe_snapshot_key(job, c).await
    } else {
        SnapshotKey::Unknown
    };
    if report.snapshot_key != SnapshotKey::ClientHeld {
        report.keys_to_rotate.push(roles::SNAPSHOT.to_string());
    }
    report.owner_commands = owner_commands(
        &c.gun,
        &job.target_url,
        job.target_ca.as_deref(),
        report.snapshot_key,
    );
}

/// Whether the source holds the snapshot key: its `snapshot.key` is one the root lists.
/// (A Go server answers with a new key when it holds none, so any other key means the
/// owner holds the snapshot key.)
async fn probe_snapshot_key(job: &MirrorJob, c: &Collected) -> SnapshotKey {
    let Ok(role) = c.root().build_base_role(roles::SNAPSHOT) else {
        return SnapshotKey::Unknown;
    };
    match job.source.get_key(&c.gun, roles::SNAPSHOT).await {
        Ok(key) if role.keys.contains_key(&key.key_id()) => SnapshotKey::ServerHeld,
        Ok(_) => SnapshotKey::ClientHeld,
        Err(_) => SnapshotKey::Unknown,
    }
}

/// The owner's commands, run against our server, to replace the keys the source kept.
///
/// With an owner-held snapshot key the stock CLI's `notary key rotate <gun> timestamp -r`
/// does it. When the source also held the snapshot key, every root the stock CLI could
/// publish would still name one key our signer does not hold (each `key rotate -r` changes
/// one role), so our server could sign neither the snapshot nor the timestamp for it; the
/// `rotate-keys` command of this tool replaces both in one root version, signed with the
/// owner's root key from their trust directory.
pub fn owner_commands(
    gun: &str,
    target_url: &str,
    target_ca: Option<&str>,
    snapshot: SnapshotKey,
) -> Vec<String> {
    let ca = target_ca
        .map(|c| format!(" --tlscacert {}", shell_quote(c)))
        .unwrap_or_default();
    let gun_q = shell_quote(gun);
    match snapshot {
        SnapshotKey::ClientHeld => vec![format!(
            "notary -s {target_url}{ca} key rotate {gun_q} timestamp -r"
        )],
        SnapshotKey::ServerHeld | SnapshotKey::Unknown => vec![format!(
            "notary-migrate rotate-keys --server {target_url}{ca} --trust-dir ~/.notary \
             {gun_q} --roles timestamp,snapshot   # docker users: --trust-dir ~/.docker/trust"
        )],
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+=~".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_depend_on_who_holds_the_snapshot_key() {
        let client = owner_commands(
            "example.com/a",
            "https://n:4443",
            None,
            SnapshotKey::ClientHeld,
        );
        assert_eq!(
            client,
            vec!["notary -s https://n:4443 key rotate example.com/a timestamp -r".to_string()]
        );
        let server = owner_commands(
            "localhost:5000/app",
            "https://n:4443",
            Some("/ca dir/ca.crt"),
            SnapshotKey::ServerHeld,
        );
        assert_eq!(server.len(), 1);
        assert!(server[0].starts_with(
            "notary-migrate rotate-keys --server https://n:4443 --tlscacert '/ca dir/ca.crt' \
             --trust-dir ~/.notary localhost:5000/app --roles timestamp,snapshot"
        ));
    }

    #[test]
    fn bad_guns_are_refused() {
        for bad in ["", "a*b", "/abs", "a/../b", "a b"] {
            assert!(check_gun(bad).is_err(), "{bad:?}");
        }
        assert!(check_gun("localhost:5000/x/y").is_ok());
    }

    #[test]
    fn the_latest_record_per_gun_wins() {
        let rec = |id: &str, gun: &str, cat: &str| ChangeRecord {
            id: id.into(),
            created_at: String::new(),
            gun: gun.into(),
            version: 1,
            sha256: id.into(),
            category: cat.into(),
        };
        let latest = latest_per_gun(&[
            rec("1", "a", "update"),
            rec("2", "b", "update"),
            rec("3", "a", "deletion"),
        ]);
        assert_eq!(latest["a"].category, "deletion");
        assert_eq!(latest["b"].id, "2");
    }
}
