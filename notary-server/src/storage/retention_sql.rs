//! Retention and storage statistics over Go's `tuf_files` table, plus the server-held keys
//! of a GUN (`server_key_owners`) for a delete that cleans up.
//!
//! Pruning removes superseded versions, never what a client may still need:
//! - every root version (clients walk the root chain from whatever root they hold);
//! - the current timestamp, the snapshot it names, and every file that snapshot names;
//! - the newest version of every role (a publish racing the prune builds on it);
//! - and, by policy, the last N versions of each role and/or those newer than D days.
//!
//! Only rows are deleted, in Go's own table, so a Go notary-server keeps serving the pruned
//! database: it reads the current chain, which is kept whole. The changefeed is left as Go
//! writes it.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;

use super::schema::{server_key_owners, tuf_files};
use super::sql::{hex_of, map_error, sql_hex, AnyConnection, SqlStore};
use super::{get_current, referenced_roles, MetaStore, StoreError, SNAPSHOT_ROLE, TIMESTAMP_ROLE};
use crate::audit::{Action, Actor, Audit};

/// What to keep besides what clients need. At least one of the two must be set; a row goes
/// only when it is outside both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrunePolicy {
    /// Keep the newest N versions of each role (N >= 1).
    pub keep_versions: Option<u32>,
    /// Keep versions stored within the last D days.
    pub keep_days: Option<u32>,
}

impl PrunePolicy {
    /// Refuses a policy that keeps nothing by itself or keeps zero versions; the message
    /// names the command-line options.
    pub fn check(&self) -> Result<(), String> {
        self.check_named("--keep-versions", "--keep-days")
    }

    /// [`PrunePolicy::check`] naming the two settings as the caller's front end spells them
    /// (config keys, query parameters).
    pub fn check_named(&self, versions: &str, days: &str) -> Result<(), String> {
        match (self.keep_versions, self.keep_days) {
            (None, None) => Err(format!("give {versions} N, {days} D, or both")),
            (Some(0), _) => Err(format!("{versions} must be at least 1")),
            _ => Ok(()),
        }
    }
}

/// Rows and bytes removed (or that would be, on a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// GUNs looked at.
    pub guns: u64,
    /// GUNs that lost rows.
    pub guns_pruned: u64,
    /// Rows removed.
    pub rows: u64,
    /// Bytes of metadata removed.
    pub bytes: u64,
    /// Rows and bytes per role.
    pub per_role: BTreeMap<String, RoleCount>,
    /// Nothing was deleted.
    pub dry_run: bool,
}

/// Rows and bytes of one role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoleCount {
    /// Rows.
    pub rows: u64,
    /// Bytes of `data`.
    pub bytes: u64,
}

impl PruneReport {
    fn add(&mut self, role: &str, bytes: u64) {
        self.rows += 1;
        self.bytes += bytes;
        let entry = self.per_role.entry(role.to_owned()).or_default();
        entry.rows += 1;
        entry.bytes += bytes;
    }

    fn merge(&mut self, other: &PruneReport) {
        self.guns += other.guns;
        self.guns_pruned += other.guns_pruned;
        self.rows += other.rows;
        self.bytes += other.bytes;
        for (role, c) in &other.per_role {
            let entry = self.per_role.entry(role.clone()).or_default();
            entry.rows += c.rows;
            entry.bytes += c.bytes;
        }
    }
}

/// Storage use of one role (over the whole server or one GUN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleStats {
    /// Role name (delegations by their full name).
    pub role: String,
    /// Rows stored.
    pub rows: i64,
    /// Bytes of metadata stored.
    pub bytes: i64,
    /// GUNs with this role.
    pub guns: i64,
    /// Highest version stored.
    pub max_version: i64,
}

/// `admin stats`: per role, and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    /// Whose: a GUN, or `None` for the whole server.
    pub gun: Option<String>,
    /// GUNs stored.
    pub guns: i64,
    /// Rows stored.
    pub rows: i64,
    /// Bytes stored.
    pub bytes: i64,
    /// Per role.
    pub roles: Vec<RoleStats>,
}

#[derive(QueryableByName)]
struct RoleStatsRow {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = BigInt)]
    n_rows: i64,
    #[diesel(sql_type = BigInt)]
    n_bytes: i64,
    #[diesel(sql_type = BigInt)]
    n_guns: i64,
    #[diesel(sql_type = BigInt)]
    max_version: i64,
}

/// The statistics query for this backend (each has its own 64-bit cast and placeholder).
fn stats_sql(conn: &AnyConnection, by_gun: bool) -> String {
    let (big, param) = match conn {
        AnyConnection::Mysql(_) => ("SIGNED", "?"),
        AnyConnection::Sqlite(_) => ("INTEGER", "?"),
        AnyConnection::Pg(_) => ("BIGINT", "$1"),
    };
    let filter = if by_gun {
        format!("WHERE gun = {param} ")
    } else {
        String::new()
    };
    format!(
        "SELECT role, CAST(COUNT(*) AS {big}) AS n_rows, \
                CAST(COALESCE(SUM(LENGTH(data)), 0) AS {big}) AS n_bytes, \
                CAST(COUNT(DISTINCT gun) AS {big}) AS n_guns, \
                CAST(MAX(version) AS {big}) AS max_version \
           FROM tuf_files {filter}GROUP BY role ORDER BY role"
    )
}

/// A stored row as retention sees it.
struct RowInfo {
    id: i32,
    role: String,
    version: i32,
    sha256: String,
    created_at: Option<NaiveDateTime>,
    bytes: i64,
}

/// `LENGTH(data)` as a 64-bit integer on this backend (bytes of a BLOB / bytea; the result
/// types of `LENGTH` differ between the three, hence the cast).
fn data_length(conn: &AnyConnection) -> diesel::expression::SqlLiteral<BigInt> {
    let big = match conn {
        AnyConnection::Mysql(_) => "SIGNED",
        AnyConnection::Sqlite(_) => "INTEGER",
        AnyConnection::Pg(_) => "BIGINT",
    };
    diesel::dsl::sql::<BigInt>(&format!("CAST(LENGTH(data) AS {big})"))
}

/// Which of `rows` go under `policy`, given the hashes the current chain names (`keep`).
fn doomed<'a>(
    rows: &'a [RowInfo],
    keep: &HashSet<String>,
    policy: &PrunePolicy,
    now: DateTime<Utc>,
) -> Vec<&'a RowInfo> {
    let cutoff = policy
        .keep_days
        .map(|d| now.naive_utc() - chrono::Duration::days(i64::from(d)));
    let mut by_role: BTreeMap<&str, Vec<&RowInfo>> = BTreeMap::new();
    for r in rows {
        by_role.entry(&r.role).or_default().push(r);
    }
    let mut out = Vec::new();
    for (role, mut versions) in by_role {
        if role == "root" {
            continue;
        }
        versions.sort_by_key(|r| std::cmp::Reverse(r.version));
        for (rank, r) in versions.iter().enumerate() {
            // The newest version of every role stays, whatever the policy says.
            if rank == 0 || keep.contains(&r.sha256) {
                continue;
            }
            let recent_by_count = policy
                .keep_versions
                .is_some_and(|n| rank < usize::try_from(n).unwrap_or(usize::MAX));
            let recent_by_age = match (cutoff, r.created_at) {
                (Some(cutoff), Some(at)) => at > cutoff,
                // No time recorded: cannot prove it is old.
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !recent_by_count && !recent_by_age {
                out.push(*r);
            }
        }
    }
    out
}

impl SqlStore {
    /// GUNs stored, in byte order, after `after`, at most `limit`.
    pub async fn list_guns(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        let after = after.to_owned();
        self.run(move |conn| {
            tuf_files::table
                .select(tuf_files::gun)
                .filter(tuf_files::gun.gt(after))
                .distinct()
                .order(tuf_files::gun.asc())
                .limit(limit)
                .load(conn)
                .map_err(map_error)
        })
        .await
    }

    /// Prunes one GUN under `policy` (see the module docs). With `audit`, the removal and
    /// its audit row are one transaction. `dry_run` reports without deleting.
    pub async fn prune_gun(
        &self,
        gun: &str,
        policy: &PrunePolicy,
        dry_run: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        policy.check().map_err(StoreError::Other)?;
        // The current chain, read first: rows written after this are newer versions, which
        // `doomed` never removes.
        let mut keep = HashSet::new();
        if let Some(ts) = get_current(self, gun, TIMESTAMP_ROLE).await? {
            keep.insert(ts.sha256.clone());
            if let Some(snapshot) = get_current(self, gun, SNAPSHOT_ROLE).await? {
                keep.insert(snapshot.sha256.clone());
                for (_, sha) in referenced_roles(&snapshot)? {
                    keep.insert(sha);
                }
            }
        }
        let (g, policy) = (gun.to_owned(), *policy);
        let audit = Audit::new(Action::Prune, actor);
        let report = self
            .run(move |conn| {
                type Row = (i32, String, i32, Option<String>, Option<NaiveDateTime>, i64);
                let length = data_length(conn);
                let rows: Vec<Row> = tuf_files::table
                    .select((
                        tuf_files::id,
                        tuf_files::role,
                        tuf_files::version,
                        tuf_files::sha256,
                        tuf_files::created_at,
                        length,
                    ))
                    .filter(tuf_files::gun.eq(&g))
                    .filter(sql_hex(tuf_files::gun).eq(hex_of(&g)))
                    .filter(tuf_files::deleted_at.is_null())
                    .load(conn)
                    .map_err(map_error)?;
                let rows: Vec<RowInfo> = rows
                    .into_iter()
                    .map(|(id, role, version, sha256, created_at, bytes)| RowInfo {
                        id,
                        role,
                        version,
                        sha256: sha256.unwrap_or_default().trim_end().to_ascii_lowercase(),
                        created_at,
                        bytes,
                    })
                    .collect();
                let gone = doomed(&rows, &keep, &policy, now);
                let mut report = PruneReport {
                    guns: 1,
                    dry_run,
                    ..PruneReport::default()
                };
                for r in &gone {
                    report.add(&r.role, u64::try_from(r.bytes).unwrap_or(0));
                }
                if gone.is_empty() {
                    return Ok(report);
                }
                report.guns_pruned = 1;
                if dry_run {
                    return Ok(report);
                }
                let ids: Vec<i32> = gone.iter().map(|r| r.id).collect();
                let at = now.naive_utc();
                // Per role: how many and which version range (a list of every version would
                // not fit the column for a GUN with a long history).
                let mut ranges: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
                for r in &gone {
                    let e = ranges.entry(&r.role).or_insert((r.version, r.version));
                    e.0 = e.0.min(r.version);
                    e.1 = e.1.max(r.version);
                }
                let roles: serde_json::Map<String, serde_json::Value> = ranges
                    .iter()
                    .map(|(role, (lo, hi))| {
                        let count = report.per_role.get(*role).copied().unwrap_or_default();
                        (
                            (*role).to_owned(),
                            serde_json::json!({
                                "rows": count.rows, "bytes": count.bytes,
                                "versions_from": lo, "versions_to": hi,
                            }),
                        )
                    })
                    .collect();
                let audit = audit.with_detail(serde_json::json!({
                    "rows_removed": report.rows,
                    "bytes_removed": report.bytes,
                    "roles": roles,
                }));
                conn.transaction::<(), diesel::result::Error, _>(|conn| {
                    for chunk in ids.chunks(500) {
                        diesel::delete(
                            tuf_files::table
                                .filter(tuf_files::gun.eq(&g))
                                .filter(tuf_files::id.eq_any(chunk)),
                        )
                        .execute(conn)?;
                    }
                    super::audit_sql::insert_one(conn, &g, None, &audit, at)
                })
                .map_err(map_error)?;
                Ok(report)
            })
            .await?;
        if report.rows > 0 && !dry_run {
            if let Some(cache) = MetaStore::cache(self) {
                cache.invalidate(gun, crate::cache::Invalidation::Update);
            }
        }
        Ok(report)
    }

    /// Prunes every GUN, a page at a time (each GUN in its own transaction, so publishes
    /// are never held up for long).
    pub async fn prune_all(
        &self,
        policy: &PrunePolicy,
        dry_run: bool,
        actor: &Actor,
    ) -> Result<PruneReport, StoreError> {
        policy.check().map_err(StoreError::Other)?;
        let now = super::now_utc();
        let mut total = PruneReport {
            dry_run,
            ..PruneReport::default()
        };
        let mut after = String::new();
        loop {
            let guns = self.list_guns(&after, 500).await?;
            let Some(last) = guns.last() else { break };
            after = last.clone();
            for gun in &guns {
                let report = self.prune_gun(gun, policy, dry_run, actor, now).await?;
                total.merge(&report);
            }
        }
        Ok(total)
    }

    /// Rows, bytes and versions per role, for the whole server or one GUN.
    pub async fn stats(&self, gun: Option<&str>) -> Result<StatsRow, StoreError> {
        let gun = gun.map(str::to_owned);
        self.run(move |conn| {
            let sql = stats_sql(conn, gun.is_some());
            let query = diesel::sql_query(sql);
            let rows: Vec<RoleStatsRow> = match &gun {
                Some(g) => query.bind::<Text, _>(g).load(conn),
                None => query.load(conn),
            }
            .map_err(map_error)?;
            let guns: i64 = match &gun {
                Some(g) => tuf_files::table
                    .filter(tuf_files::gun.eq(g))
                    .select(tuf_files::id)
                    .limit(1)
                    .load::<i32>(conn)
                    .map_err(map_error)?
                    .len() as i64,
                None => tuf_files::table
                    .select(diesel::dsl::count(tuf_files::gun).aggregate_distinct())
                    .first(conn)
                    .map_err(map_error)?,
            };
            let roles: Vec<RoleStats> = rows
                .into_iter()
                .map(|r| RoleStats {
                    role: r.role,
                    rows: r.n_rows,
                    bytes: r.n_bytes,
                    guns: r.n_guns,
                    max_version: r.max_version,
                })
                .collect();
            Ok(StatsRow {
                gun,
                guns,
                rows: roles.iter().map(|r| r.rows).sum(),
                bytes: roles.iter().map(|r| r.bytes).sum(),
                roles,
            })
        })
        .await
    }

    /// The keys this server asked the signer to make for `gun`: (key ID, role).
    pub async fn server_keys_of(&self, gun: &str) -> Result<Vec<(String, String)>, StoreError> {
        let g = gun.to_owned();
        self.run(move |conn| {
            server_key_owners::table
                .filter(server_key_owners::gun.eq(&g))
                .select((server_key_owners::key_id, server_key_owners::role))
                .order(server_key_owners::key_id.asc())
                .load(conn)
                .map_err(map_error)
        })
        .await
    }

    /// Forgets the key records of `gun` (after the signer deleted the keys).
    pub async fn forget_server_keys(
        &self,
        gun: &str,
        key_ids: &[String],
    ) -> Result<u64, StoreError> {
        let (g, ids) = (gun.to_owned(), key_ids.to_vec());
        self.run(move |conn| {
            diesel::delete(
                server_key_owners::table
                    .filter(server_key_owners::gun.eq(&g))
                    .filter(server_key_owners::key_id.eq_any(&ids)),
            )
            .execute(conn)
            .map(|n| n as u64)
            .map_err(map_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i32, role: &str, version: i32, sha: &str, days_old: i64) -> RowInfo {
        RowInfo {
            id,
            role: role.into(),
            version,
            sha256: sha.into(),
            created_at: Some((Utc::now() - chrono::Duration::days(days_old)).naive_utc()),
            bytes: 10,
        }
    }

    #[test]
    fn keeps_roots_current_chain_newest_and_policy() {
        let rows = vec![
            row(1, "root", 1, "r1", 100),
            row(2, "targets", 1, "t1", 100),
            row(3, "targets", 2, "t2", 100),
            row(4, "targets", 3, "t3", 1),
            row(5, "targets/rel", 1, "d1", 100),
            row(6, "targets/rel", 2, "d2", 100),
            row(7, "snapshot", 1, "s1", 100),
            row(8, "snapshot", 2, "s2", 100),
        ];
        // The current snapshot (s1) still names targets v1 and the delegation v1.
        let keep: HashSet<String> = ["s1", "t1", "d1"].iter().map(|s| s.to_string()).collect();
        let ids = |p: PrunePolicy| {
            let mut v: Vec<i32> = doomed(&rows, &keep, &p, Utc::now())
                .iter()
                .map(|r| r.id)
                .collect();
            v.sort();
            v
        };
        // Newest only: targets v2 goes; roots, the chain and each role's newest stay.
        assert_eq!(
            ids(PrunePolicy {
                keep_versions: Some(1),
                keep_days: None
            }),
            vec![3]
        );
        assert_eq!(
            ids(PrunePolicy {
                keep_versions: Some(2),
                keep_days: None
            }),
            Vec::<i32>::new()
        );
        // Age alone: targets v2 is 100 days old, so it goes with 30 days.
        assert_eq!(
            ids(PrunePolicy {
                keep_versions: None,
                keep_days: Some(30)
            }),
            vec![3]
        );
        // Both: a row goes only when outside both.
        assert_eq!(
            ids(PrunePolicy {
                keep_versions: Some(2),
                keep_days: Some(30)
            }),
            Vec::<i32>::new()
        );
        assert!(PrunePolicy::default().check().is_err());
        assert!(PrunePolicy {
            keep_versions: Some(0),
            keep_days: None
        }
        .check()
        .is_err());
    }
}
