//! Importing a Go notary's databases: verify every row, then adopt the databases in place
//! or copy them into fresh ones (MySQL→MySQL, MySQL→SQLite, SQLite→MySQL, SQLite→SQLite).
//!
//! Server rows (`tuf_files`) are checked one by one:
//! - the `sha256` column is the SHA-256 of `data`; `data` is a signed envelope whose
//!   `_type` fits the role and whose `version` is the row's;
//! - roots, in version order, form a chain: each satisfies its own root role and the
//!   previous valid root's (certificates, thresholds);
//! - `targets`, `snapshot` and `timestamp` rows are signed by the role's keys in one of the
//!   GUN's valid roots; delegations by the keys some valid version of their parent gives
//!   them;
//! - the hashes every snapshot records resolve to valid rows, every timestamp's snapshot
//!   hash resolves to a valid snapshot, and the current state (latest timestamp → snapshot
//!   → roles) loads the way a client loads it.
//!
//! A row that fails a row check is *invalid*: it is listed with the reason and not copied
//! (unless `keep_invalid`). Broken references are *findings*: listed, rows still copied.
//! Soft-deleted rows and the changefeed are copied as they are. Signer rows
//! (`private_keys`) are checked against their key ID and, when the passphrase of their
//! alias is available, decrypted; keys can be re-encrypted under a new alias.
//!
//! Copies keep row ids (changefeed cursors stay valid). A target that already holds some
//! of the same rows (an interrupted run) is completed; one holding anything else is refused
//! before anything is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use notary_server::storage::sha256_hex;
use notary_signer::keystore::{jwe, KeyStore as _, Passphrases, SqlKeyStore};
use notary_tuf::metadata::{check_hashes, tuf_type_for_role, BaseRole, Root, Targets};
use notary_tuf::verify::{validate_root, verify_signatures, RepoBuilder};
use notary_tuf::{roles, KeyType, PrivateKey, PublicKey, SignedFile};
use serde::Serialize;

use crate::db::{ChangeRow, DbSpec, KeyRow, TufRow};

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportJob {
    /// The Go notary-server database.
    pub server_source: Option<DbSpec>,
    /// The Go notary-signer database.
    pub signer_source: Option<DbSpec>,
    /// Copy the server database here (None: adopt in place).
    pub server_target: Option<DbSpec>,
    /// Copy the signer database here (None: adopt in place).
    pub signer_target: Option<DbSpec>,
    /// Re-encrypt every key under this alias (passphrase from `NOTARY_SIGNER_<ALIAS>`).
    pub new_alias: Option<String>,
    /// Copy invalid rows too (still reported).
    pub keep_invalid: bool,
    /// Only verify and report; write nothing.
    pub dry_run: bool,
    /// "Now" for certificate checks.
    pub now: DateTime<Utc>,
}

/// A problem with one row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RowProblem {
    /// Table.
    pub table: String,
    /// Row id.
    pub id: i32,
    /// GUN.
    pub gun: String,
    /// Role (server rows) or key ID (signer rows).
    pub role: String,
    /// Version (server rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// Why.
    pub reason: String,
}

/// Summary per GUN.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GunSummary {
    /// Rows of the GUN.
    pub rows: usize,
    /// Invalid rows.
    pub invalid: usize,
    /// Current version per role (from the latest timestamp), when it loads.
    pub current: BTreeMap<String, i64>,
    /// Whether the current state loads like a client loads it.
    pub serves: bool,
}

/// The import report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportReport {
    /// Mode: `copy`, `adopt` or `dry-run`.
    pub mode: String,
    /// Server rows read.
    pub server_rows: usize,
    /// Server rows written (copy).
    pub server_rows_written: usize,
    /// Server rows already present in the target (resumed copy).
    pub server_rows_present: usize,
    /// Soft-deleted server rows (copied, not verified).
    pub soft_deleted_rows: usize,
    /// Changefeed rows copied.
    pub changefeed_rows_written: usize,
    /// Signer rows read.
    pub key_rows: usize,
    /// Signer rows written.
    pub key_rows_written: usize,
    /// Keys re-encrypted under the new alias.
    pub keys_reencrypted: usize,
    /// Keys whose passphrase was not available, so only their key ID was checked.
    pub keys_not_decrypted: Vec<String>,
    /// Rows that failed verification.
    pub invalid: Vec<RowProblem>,
    /// Broken references and other findings (rows were still imported).
    pub findings: Vec<String>,
    /// Per GUN.
    pub guns: BTreeMap<String, GunSummary>,
}

impl ImportReport {
    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "import ({}): {} server row(s) read, {} written, {} already present, {} soft-deleted; \
             {} changefeed row(s) written; {} key row(s) read, {} written, {} re-encrypted\n",
            self.mode,
            self.server_rows,
            self.server_rows_written,
            self.server_rows_present,
            self.soft_deleted_rows,
            self.changefeed_rows_written,
            self.key_rows,
            self.key_rows_written,
            self.keys_reencrypted
        );
        for (gun, g) in &self.guns {
            let cur: Vec<String> = g.current.iter().map(|(r, v)| format!("{r} v{v}")).collect();
            s.push_str(&format!(
                "  {gun}: {} row(s), {} invalid; {}{}\n",
                g.rows,
                g.invalid,
                if g.serves {
                    "serves "
                } else {
                    "DOES NOT SERVE "
                },
                cur.join(", ")
            ));
        }
        if !self.invalid.is_empty() {
            s.push_str(&format!("{} invalid row(s):\n", self.invalid.len()));
            for p in &self.invalid {
                s.push_str(&format!(
                    "  INVALID {} id {} {} {}{}: {}\n",
                    p.table,
                    p.id,
                    p.gun,
                    p.role,
                    p.version.map(|v| format!(" v{v}")).unwrap_or_default(),
                    p.reason
                ));
            }
        }
        for f in &self.findings {
            s.push_str(&format!("  finding: {f}\n"));
        }
        for k in &self.keys_not_decrypted {
            s.push_str(&format!(
                "  note: key {k} not decrypted (no passphrase for its alias)\n"
            ));
        }
        s
    }
}

/// Runs an import. Errors only when a database cannot be used or the target is not fresh
/// (then nothing was written); invalid rows are in the report.
pub async fn import(job: ImportJob) -> anyhow::Result<ImportReport> {
    let alias = job.new_alias.clone();
    let (mut report, keys_db) = tokio::task::spawn_blocking(move || import_blocking(&job))
        .await
        .map_err(|e| anyhow::anyhow!("import task failed: {e}"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    if let (Some(alias), Some(db)) = (alias, keys_db) {
        report.keys_reencrypted = reencrypt(&db, &alias)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(report)
}

/// Verifies and writes; returns the report and the signer database to re-encrypt.
fn import_blocking(job: &ImportJob) -> Result<(ImportReport, Option<DbSpec>), String> {
    let mut report = ImportReport {
        mode: if job.dry_run {
            "dry-run".into()
        } else if job.server_target.is_some() || job.signer_target.is_some() {
            "copy".into()
        } else {
            "adopt".into()
        },
        ..Default::default()
    };
    if job.server_source.is_none() && job.signer_source.is_none() {
        return Err("give a server database, a signer database, or both".into());
    }
    if job.server_target.is_some() && job.server_source.is_none() {
        return Err("a server target needs a server source".into());
    }
    if job.signer_target.is_some() && job.signer_source.is_none() {
        return Err("a signer target needs a signer source".into());
    }

    // Read and verify everything before writing anything.
    let mut server = None;
    if let Some(src) = &job.server_source {
        let mut conn = src.connect()?;
        let rows = conn
            .tuf_rows()
            .map_err(|e| format!("reading tuf_files from {}: {e}", src.display()))?;
        let changes = conn
            .change_rows()
            .map_err(|e| format!("reading changefeed from {}: {e}", src.display()))?;
        let bad = verify_server_rows(&rows, job.now, &mut report);
        server = Some((rows, changes, bad));
    }
    let mut signer = None;
    if let Some(src) = &job.signer_source {
        let mut conn = src.connect()?;
        let rows = conn
            .key_rows()
            .map_err(|e| format!("reading private_keys from {}: {e}", src.display()))?;
        let bad = verify_key_rows(&rows, &Passphrases::from_env(), &mut report);
        signer = Some((rows, bad));
    }
    if let Some(alias) = &job.new_alias {
        Passphrases::from_env()
            .get(alias)
            .map_err(|e| format!("cannot re-encrypt under alias {alias:?}: {e}"))?;
    }
    if job.dry_run {
        return Ok((report, None));
    }

    // Server database.
    if let Some((rows, changes, bad)) = server {
        match &job.server_target {
            Some(target) => {
                copy_server(target, rows, changes, &bad, job.keep_invalid, &mut report)?;
            }
            None => {
                // Adopting: our migrations only add diesel's bookkeeping table.
                let src = job.server_source.as_ref().expect("checked");
                src.open_store(true)?;
            }
        }
    }
    // Signer database.
    let mut keys_db = None;
    if let Some((rows, bad)) = signer {
        let target = match &job.signer_target {
            Some(target) => {
                copy_keys(target, rows, &bad, job.keep_invalid, &mut report)?;
                target.clone()
            }
            None => {
                let src = job.signer_source.clone().expect("checked");
                SqlKeyStore::migrate(&src.signer_backend())
                    .map_err(|e| format!("cannot migrate {}: {e}", src.display()))?;
                src
            }
        };
        keys_db = Some(target);
    }
    Ok((report, keys_db))
}

/// Ids of invalid rows.
type Invalid = BTreeSet<i32>;

fn problem(row: &TufRow, reason: impl Into<String>) -> RowProblem {
    RowProblem {
        table: "tuf_files".into(),
        id: row.id,
        gun: row.gun.clone(),
        role: row.role.clone(),
        version: Some(row.version),
        reason: reason.into(),
    }
}

/// Verifies every live row; returns the ids of invalid ones (also listed in the report).
pub fn verify_server_rows(
    rows: &[TufRow],
    now: DateTime<Utc>,
    report: &mut ImportReport,
) -> Invalid {
    report.server_rows = rows.len();
    let mut invalid = Invalid::new();
    let mut by_gun: BTreeMap<&str, Vec<&TufRow>> = BTreeMap::new();
    for r in rows {
        if r.deleted_at.is_some() {
            report.soft_deleted_rows += 1;
            continue;
        }
        by_gun.entry(r.gun.as_str()).or_default().push(r);
    }
    for (gun, rows) in by_gun {
        let mut problems = Vec::new();
        let summary = verify_gun(gun, &rows, now, &mut problems, &mut report.findings);
        for p in problems {
            invalid.insert(p.id);
            report.invalid.push(p);
        }
        let mut s = summary;
        s.rows = rows.len();
        s.invalid = rows.iter().filter(|r| invalid.contains(&r.id)).count();
        report.guns.insert(gun.to_string(), s);
    }
    invalid
}

fn verify_gun(
    gun: &str,
    rows: &[&TufRow],
    now: DateTime<Utc>,
    problems: &mut Vec<RowProblem>,
    findings: &mut Vec<String>,
) -> GunSummary {
    // 1. Row checks that need no keys.
    let mut parsed: Vec<(&TufRow, SignedFile)> = Vec::new();
    for r in rows {
        let actual = sha256_hex(&r.data);
        if let Some(col) = &r.sha256 {
            if !col.eq_ignore_ascii_case(&actual) {
                problems.push(problem(
                    r,
                    format!("sha256 column {col} does not match the data (sha256 {actual})"),
                ));
                continue;
            }
        }
        if !roles::is_valid_role(&r.role) {
            problems.push(problem(r, "not a valid role name"));
            continue;
        }
        let f = match SignedFile::parse(&r.data) {
            Ok(f) => f,
            Err(e) => {
                problems.push(problem(r, format!("not signed metadata: {e}")));
                continue;
            }
        };
        let want = tuf_type_for_role(&r.role).unwrap_or("Targets");
        if f.common.type_ != want {
            problems.push(problem(
                r,
                format!("_type is {:?}, not {want}", f.common.type_),
            ));
            continue;
        }
        if f.common.version != i64::from(r.version) {
            problems.push(problem(
                r,
                format!(
                    "file says version {}, the row {}",
                    f.common.version, r.version
                ),
            ));
            continue;
        }
        parsed.push((r, f));
    }

    // 2. Roots as a chain.
    let mut root_rows: Vec<&(&TufRow, SignedFile)> = parsed
        .iter()
        .filter(|(r, _)| r.role == roles::ROOT)
        .collect();
    root_rows.sort_by_key(|(r, _)| r.version);
    let mut valid_roots: Vec<Root> = Vec::new();
    let mut valid: HashMap<i32, &SignedFile> = HashMap::new();
    let newest = root_rows.last().map(|(r, _)| r.id);
    for (r, f) in root_rows {
        let at = if Some(r.id) == newest {
            now
        } else {
            crate::collect::historical_time(f, now)
        };
        match validate_root(valid_roots.last(), f, gun, at) {
            Ok(root) => {
                valid_roots.push(root);
                valid.insert(r.id, f);
            }
            Err(e) => problems.push(problem(r, format!("root does not verify: {e}"))),
        }
    }

    // 3. Base roles signed by some valid root's keys.
    for base in [roles::TARGETS, roles::SNAPSHOT, roles::TIMESTAMP] {
        let keys: Vec<BaseRole> = valid_roots
            .iter()
            .filter_map(|r| r.build_base_role(base).ok())
            .collect();
        for (r, f) in parsed.iter().filter(|(r, _)| r.role == base) {
            if let Err(e) = check_signed(f, &keys, base) {
                problems.push(problem(r, e));
                continue;
            }
            valid.insert(r.id, f);
        }
    }

    // 4. Delegations, parents first, signed by keys some valid parent version gives them.
    let mut names: Vec<String> = parsed
        .iter()
        .filter(|(r, _)| roles::is_delegation(&r.role))
        .map(|(r, _)| r.role.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    roles::sort_roles(&mut names);
    for name in names {
        let parent = roles::path_dir(&name);
        let parents: Vec<Targets> = parsed
            .iter()
            .filter(|(r, _)| r.role == parent && valid.contains_key(&r.id))
            .filter_map(|(_, f)| f.targets().ok())
            .collect();
        let keys: Vec<BaseRole> = parents
            .iter()
            .filter_map(|t| t.build_delegation_role(&name).ok().map(|(r, _)| r))
            .collect();
        for (r, f) in parsed.iter().filter(|(r, _)| r.role == name) {
            if keys.is_empty() {
                problems.push(problem(
                    r,
                    format!("no valid version of {parent} delegates to {name}"),
                ));
                continue;
            }
            if let Err(e) = check_signed(f, &keys, &name) {
                problems.push(problem(r, e));
                continue;
            }
            valid.insert(r.id, f);
        }
    }

    // 5. References: snapshot → roles, timestamp → snapshot.
    let valid_by_hash: HashMap<(&str, String), &SignedFile> = parsed
        .iter()
        .filter(|(r, _)| valid.contains_key(&r.id))
        .map(|(r, f)| ((r.role.as_str(), sha256_hex(&r.data)), f))
        .collect();
    for (r, f) in parsed.iter().filter(|(r, _)| valid.contains_key(&r.id)) {
        let meta = match r.role.as_str() {
            roles::SNAPSHOT => f.snapshot().map(|s| s.meta).unwrap_or_default(),
            roles::TIMESTAMP => f.timestamp().map(|t| t.meta).unwrap_or_default(),
            _ => continue,
        };
        for (role, m) in meta {
            let found = m
                .sha256_hex()
                .and_then(|h| valid_by_hash.get(&(role.as_str(), h)))
                .is_some_and(|file| check_hashes(&file.raw, &role, &m.hashes).is_ok());
            if !found {
                findings.push(format!(
                    "{gun}: {} version {} records hashes for {role} that no valid row has",
                    r.role, r.version
                ));
            }
        }
    }

    // 6. The current state, as a client loads it (expired files accepted: stored data).
    let mut summary = GunSummary::default();
    match load_current(gun, &parsed, &valid, now) {
        Ok(current) => {
            summary.current = current;
            summary.serves = true;
        }
        Err(e) => findings.push(format!("{gun}: the current state does not load: {e}")),
    }
    summary
}

fn check_signed(f: &SignedFile, keys: &[BaseRole], role: &str) -> Result<(), String> {
    if keys.is_empty() {
        return Err(format!("no valid root lists keys for {role}"));
    }
    let mut last = String::new();
    for k in keys {
        match verify_signatures(f, k) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "signatures do not verify with any known {role} keys: {last}"
    ))
}

fn load_current(
    gun: &str,
    parsed: &[(&TufRow, SignedFile)],
    valid: &HashMap<i32, &SignedFile>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, i64>, String> {
    let ts = parsed
        .iter()
        .filter(|(r, _)| r.role == roles::TIMESTAMP)
        .max_by_key(|(r, _)| r.version)
        .ok_or("no timestamp")?;
    if !valid.contains_key(&ts.0.id) {
        return Err(format!(
            "the latest timestamp (version {}) is invalid",
            ts.0.version
        ));
    }
    let by_hash = |role: &str, sha: &str| {
        parsed
            .iter()
            .find(|(r, _)| {
                r.role == role && sha256_hex(&r.data) == sha && valid.contains_key(&r.id)
            })
            .map(|(_, f)| f)
    };
    let snap_sha =
        ts.1.timestamp()
            .ok()
            .and_then(|t| t.snapshot_meta().and_then(|m| m.sha256_hex()))
            .ok_or("timestamp names no snapshot")?;
    let snap =
        by_hash(roles::SNAPSHOT, &snap_sha).ok_or("the snapshot it names is missing or invalid")?;
    let snap_meta = snap.snapshot().map_err(|e| e.to_string())?.meta;
    let root_sha = snap_meta
        .get(roles::ROOT)
        .and_then(|m| m.sha256_hex())
        .ok_or("snapshot names no root")?;
    let root = by_hash(roles::ROOT, &root_sha).ok_or("the root it names is missing or invalid")?;
    let mut b = RepoBuilder::new(gun, now);
    b.load(roles::ROOT, &root.raw, 1, true)
        .map_err(|e| format!("root: {e}"))?;
    b.load(roles::TIMESTAMP, &ts.1.raw, 1, true)
        .map_err(|e| format!("timestamp: {e}"))?;
    b.load(roles::SNAPSHOT, &snap.raw, 1, true)
        .map_err(|e| format!("snapshot: {e}"))?;
    let mut names: Vec<&String> = snap_meta
        .keys()
        .filter(|k| *k == roles::TARGETS || roles::is_delegation(k))
        .collect();
    roles::sort_roles(&mut names);
    let mut current = BTreeMap::new();
    current.insert(roles::ROOT.to_string(), root.common.version);
    current.insert(roles::TIMESTAMP.to_string(), ts.1.common.version);
    current.insert(roles::SNAPSHOT.to_string(), snap.common.version);
    for name in names {
        let sha = snap_meta[name].sha256_hex().unwrap_or_default();
        let f = by_hash(name, &sha).ok_or_else(|| format!("{name} is missing or invalid"))?;
        if name == roles::TARGETS {
            b.load(name, &f.raw, 1, true)
                .map_err(|e| format!("{name}: {e}"))?;
        } else {
            // Clients skip delegations that no longer load; the GUN still serves.
            let _ = b.load(name, &f.raw, 1, true);
        }
        current.insert(name.clone(), f.common.version);
    }
    Ok(current)
}

/// Checks each key row; returns the ids of invalid ones.
pub fn verify_key_rows(
    rows: &[KeyRow],
    passphrases: &Passphrases,
    report: &mut ImportReport,
) -> Invalid {
    report.key_rows = rows.len();
    let mut invalid = Invalid::new();
    for r in rows {
        let mut fail = |reason: String| {
            invalid.insert(r.id);
            report.invalid.push(RowProblem {
                table: "private_keys".into(),
                id: r.id,
                gun: r.gun.clone(),
                role: format!("{} key {}", r.role, r.key_id),
                version: None,
                reason,
            });
        };
        let kt = KeyType::parse(&r.algorithm);
        let public = PublicKey::new(kt.clone(), r.public.clone());
        if public.key_id() != r.key_id {
            fail(format!(
                "key_id does not match the public key (it is {})",
                public.key_id()
            ));
            continue;
        }
        if r.encryption_alg != jwe::ENCRYPTION_ALG || r.keywrap_alg != jwe::KEYWRAP_ALG {
            fail(format!(
                "unexpected encryption {}/{}",
                r.encryption_alg, r.keywrap_alg
            ));
            continue;
        }
        let Ok(pass) = passphrases.get(&r.passphrase_alias) else {
            report.keys_not_decrypted.push(format!(
                "{} (alias {:?}, env {})",
                r.key_id,
                r.passphrase_alias,
                Passphrases::env_var(&r.passphrase_alias)
            ));
            continue;
        };
        let text = String::from_utf8_lossy(&r.private).to_string();
        let opened = jwe::decrypt(&text, pass.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|b| PrivateKey::from_go_private_bytes(&kt, &b).map_err(|e| e.to_string()));
        match opened {
            Ok(k) if k.public_key().key_id() == r.key_id => {}
            Ok(_) => fail("the private key does not belong to the public key".into()),
            Err(e) => fail(format!("cannot decrypt: {e}")),
        }
    }
    invalid
}

fn copy_server(
    target: &DbSpec,
    rows: Vec<TufRow>,
    changes: Vec<ChangeRow>,
    invalid: &Invalid,
    keep_invalid: bool,
    report: &mut ImportReport,
) -> Result<(), String> {
    // Creates the schema (our migrations).
    target.open_store(true)?;
    let mut conn = target.connect()?;
    let present: HashMap<i32, (String, String, i32, Option<String>)> = conn
        .tuf_ids()?
        .into_iter()
        .map(|(id, g, r, v, s)| (id, (g, r, v, s)))
        .collect();
    let present_changes: BTreeSet<i32> = conn.change_ids()?.into_iter().collect();
    let wanted: Vec<TufRow> = rows
        .into_iter()
        .filter(|r| keep_invalid || !invalid.contains(&r.id))
        .collect();
    let wanted_ids: BTreeSet<i32> = wanted.iter().map(|r| r.id).collect();
    // A resumed copy holds a subset of exactly these rows; anything else is refused.
    for (id, (g, r, v, s)) in &present {
        let same = wanted
            .iter()
            .find(|w| w.id == *id)
            .is_some_and(|w| w.gun == *g && w.role == *r && w.version == *v && w.sha256 == *s);
        if !same || !wanted_ids.contains(id) {
            return Err(format!(
                "target {} already holds other data (tuf_files id {id}: {g} {r} v{v}); \
                 import needs a fresh database",
                target.display()
            ));
        }
    }
    let mut files = Vec::new();
    for mut r in wanted {
        if present.contains_key(&r.id) {
            report.server_rows_present += 1;
            continue;
        }
        if r.sha256.is_none() {
            // Go's migration 0003 backfilled this column; lookups by checksum need it.
            r.sha256 = Some(sha256_hex(&r.data));
            report.findings.push(format!(
                "{} {} v{}: sha256 column was empty; filled in",
                r.gun, r.role, r.version
            ));
        }
        files.push(r);
    }
    let new_changes: Vec<ChangeRow> = changes
        .into_iter()
        .filter(|c| !present_changes.contains(&c.id))
        .collect();
    conn.insert_all(&files, &new_changes, &[]).map_err(|e| {
        format!(
            "writing to {} failed (nothing written): {e}",
            target.display()
        )
    })?;
    report.server_rows_written = files.len();
    report.changefeed_rows_written = new_changes.len();
    Ok(())
}

fn copy_keys(
    target: &DbSpec,
    rows: Vec<KeyRow>,
    invalid: &Invalid,
    keep_invalid: bool,
    report: &mut ImportReport,
) -> Result<(), String> {
    SqlKeyStore::migrate(&target.signer_backend())
        .map_err(|e| format!("cannot migrate {}: {e}", target.display()))?;
    let mut conn = target.connect()?;
    let present: HashMap<i32, String> = conn.key_ids()?.into_iter().collect();
    let mut keys = Vec::new();
    for r in rows {
        if !keep_invalid && invalid.contains(&r.id) {
            continue;
        }
        match present.get(&r.id) {
            Some(k) if *k == r.key_id => continue,
            Some(k) => {
                return Err(format!(
                "target {} already holds other keys (id {} is {k}); import needs a fresh database",
                target.display(),
                r.id
            ))
            }
            None => keys.push(r),
        }
    }
    conn.insert_all(&[], &[], &keys).map_err(|e| {
        format!(
            "writing to {} failed (nothing written): {e}",
            target.display()
        )
    })?;
    report.key_rows_written = keys.len();
    Ok(())
}

/// Re-encrypts every key not yet under `alias` (one alias at a time, through the signer's
/// own store, so the rows stay exactly as our signer writes them).
async fn reencrypt(target: &DbSpec, alias: &str) -> Result<usize, String> {
    let (db, to) = (target.clone(), alias.to_string());
    let (aliases, store) = tokio::task::spawn_blocking(move || {
        let mut conn = db.connect()?;
        let aliases: BTreeSet<String> = conn
            .key_rows()?
            .into_iter()
            .map(|r| r.passphrase_alias)
            .filter(|a| *a != to)
            .collect();
        let store = SqlKeyStore::open(db.signer_backend(), &to, Passphrases::from_env(), false)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((aliases, store))
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut total = 0;
    for from in aliases {
        total += store
            .reencrypt_alias(&from, alias)
            .await
            .map_err(|e| format!("re-encrypting keys of alias {from:?}: {e}"))?;
    }
    Ok(total)
}
