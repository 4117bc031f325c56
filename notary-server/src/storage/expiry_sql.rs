//! The expiry inventory's table (`expiry_inventory`, ours; see [`crate::expiry`]).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::expiry_inventory;
use super::sql::{map_error, run_own_ddl, AnyConnection, SqlStore};
use super::{get_current, referenced_roles, StoreError, SNAPSHOT_ROLE, TIMESTAMP_ROLE};
use crate::expiry::{ExpiryEntry, Kind};

/// Stored times are clamped to this range: MySQL `DATETIME` starts at year 1000 and Go writes
/// year 1 for a missing `expires`.
fn storable(t: DateTime<Utc>) -> NaiveDateTime {
    let floor = DateTime::UNIX_EPOCH.naive_utc();
    let ceiling =
        NaiveDateTime::parse_from_str("9999-12-31 23:59:59", "%Y-%m-%d %H:%M:%S").unwrap_or(floor);
    t.naive_utc().clamp(floor, ceiling)
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = expiry_inventory, treat_none_as_null = true)]
struct NewRow<'a> {
    gun: &'a str,
    role: &'a str,
    kind: &'a str,
    key_id: &'a str,
    subject: &'a str,
    expires: Option<NaiveDateTime>,
    version: i32,
}

/// One inventory row, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryRow {
    /// GUN.
    pub gun: String,
    /// Role.
    pub role: String,
    /// `metadata` or `certificate`.
    pub kind: Kind,
    /// Certificate key ID ("" for metadata).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_id: String,
    /// Certificate subject CN ("" for metadata).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// The file's version.
    pub version: i64,
}

/// The two rows of each written role: (role, metadata entry, earliest certificate entry).
pub(crate) type RoleRows = (String, ExpiryEntry, Option<ExpiryEntry>);

/// The inventory rows of written files (role, bytes); unparsable files give none.
pub(crate) fn rows_of<'a>(files: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<RoleRows> {
    files
        .filter_map(|(role, data)| {
            crate::expiry::role_rows(role, data).map(|(m, c)| (role.to_owned(), m, c))
        })
        .collect()
}

fn new_rows<'a>(gun: &'a str, rows: &'a [RoleRows]) -> Vec<NewRow<'a>> {
    let mut out = Vec::with_capacity(rows.len() * 2);
    for (role, metadata, cert) in rows {
        out.push(NewRow {
            gun,
            role,
            kind: Kind::Metadata.as_str(),
            key_id: "",
            subject: "",
            expires: Some(storable(metadata.expires)),
            version: i32::try_from(metadata.version).unwrap_or(i32::MAX),
        });
        out.push(NewRow {
            gun,
            role,
            kind: Kind::Certificate.as_str(),
            key_id: cert.as_ref().map_or("", |c| c.key_id.as_str()),
            subject: cert.as_ref().map_or("", |c| c.subject.as_str()),
            expires: cert.as_ref().map(|c| storable(c.expires)),
            version: i32::try_from(metadata.version).unwrap_or(i32::MAX),
        });
    }
    out
}

/// Upserts the rows of each written role (inside the caller's transaction). An upsert on the
/// unique key (gun, role, kind) locks only that key, so concurrent publishes do not wait on
/// each other as they did with delete-and-insert (gap locks).
pub(crate) fn upsert_rows(
    conn: &mut AnyConnection,
    gun: &str,
    rows: &[RoleRows],
) -> QueryResult<()> {
    use expiry_inventory::dsl as e;
    for row in new_rows(gun, rows) {
        match conn {
            AnyConnection::Mysql(c) => diesel::insert_into(e::expiry_inventory)
                .values(&row)
                .on_conflict(diesel::dsl::DuplicatedKeys)
                .do_update()
                .set(&row)
                .execute(c)?,
            AnyConnection::Sqlite(c) => diesel::insert_into(e::expiry_inventory)
                .values(&row)
                .on_conflict((e::gun, e::role, e::kind))
                .do_update()
                .set(&row)
                .execute(c)?,
            AnyConnection::Pg(c) => diesel::insert_into(e::expiry_inventory)
                .values(&row)
                .on_conflict((e::gun, e::role, e::kind))
                .do_update()
                .set(&row)
                .execute(c)?,
        };
    }
    Ok(())
}

/// Appends [`upsert_rows`] to a MySQL text batch (hex literals, as the rest of the batch).
pub(crate) fn push_mysql_upsert(sql: &mut String, gun: &str, rows: &[RoleRows]) {
    use std::fmt::Write as _;
    if rows.is_empty() {
        return;
    }
    sql.push_str(
        "INSERT INTO expiry_inventory (gun,role,kind,key_id,subject,expires,version) VALUES ",
    );
    for (i, r) in new_rows(gun, rows).iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let expires = r.expires.map_or_else(
            || "NULL".to_owned(),
            |t| format!("'{}'", t.format("%Y-%m-%d %H:%M:%S")),
        );
        let _ = write!(
            sql,
            "(X'{}',X'{}',X'{}',X'{}',X'{}',{expires},{})",
            hex::encode(r.gun),
            hex::encode(r.role),
            hex::encode(r.kind),
            hex::encode(r.key_id),
            hex::encode(r.subject),
            r.version,
        );
    }
    sql.push_str(
        " ON DUPLICATE KEY UPDATE key_id=VALUES(key_id),subject=VALUES(subject),\
         expires=VALUES(expires),version=VALUES(version);",
    );
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    Option<NaiveDateTime>,
    i32,
);

fn row((gun, role, kind, key_id, subject, expires, version): Row) -> InventoryRow {
    InventoryRow {
        gun,
        role,
        kind: Kind::parse(&kind),
        key_id,
        subject,
        // Queries ask for rows with a time only.
        expires: expires.map_or(DateTime::UNIX_EPOCH, |t| t.and_utc()),
        version: i64::from(version),
    }
}

/// `LIKE` pattern matching names that start with `prefix` (with `\` as the escape).
pub(super) fn starts_with(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The role classes of the expiry metrics: the four base roles, and every delegation as one
/// (bounded label values whatever the number of GUNs and delegations).
pub const ROLE_CLASSES: [&str; 5] = ["root", "targets", "delegation", "snapshot", "timestamp"];

/// How many GUNs of one role class and kind are expired or expire within each window, and
/// the soonest expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpirySummary {
    /// `root`, `targets`, `delegation`, `snapshot` or `timestamp`.
    pub role: String,
    /// `metadata` or `certificate`.
    pub kind: String,
    /// GUNs with an entry at or before now.
    pub expired: i64,
    /// GUNs with an entry after now and within 1, 7, 30 and 90 days (cumulative).
    pub within: [i64; 4],
    /// The soonest expiry of any GUN (expired included), if any entry exists.
    pub soonest: Option<DateTime<Utc>>,
}

/// The windows of [`ExpirySummary::within`], in days.
pub const SUMMARY_WINDOWS: [i64; 4] = [1, 7, 30, 90];

#[derive(QueryableByName)]
struct SummaryRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    role_class: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    expired: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    d1: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    d7: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    d30: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    d90: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    soonest: Option<NaiveDateTime>,
}

/// The counting query: one range scan of the `expires` index over the next 90 days (and
/// what has expired), grouped into at most ten rows. The times are ours, not input.
fn summary_sql(now: DateTime<Utc>) -> String {
    let at = |days: i64| {
        format!(
            "'{}'",
            storable(now + chrono::Duration::days(days)).format("%Y-%m-%d %H:%M:%S")
        )
    };
    let count = |lo: Option<String>, hi: String| match lo {
        None => format!("COUNT(DISTINCT CASE WHEN expires <= {hi} THEN gun END)"),
        Some(lo) => {
            format!("COUNT(DISTINCT CASE WHEN expires > {lo} AND expires <= {hi} THEN gun END)")
        }
    };
    format!(
        "SELECT CASE WHEN role IN ('root','targets','snapshot','timestamp') THEN role \
         ELSE 'delegation' END AS role_class, kind, {} AS expired, {} AS d1, {} AS d7, \
         {} AS d30, {} AS d90, MIN(expires) AS soonest FROM expiry_inventory \
         WHERE expires IS NOT NULL AND expires <= {} GROUP BY 1, 2",
        count(None, at(0)),
        count(Some(at(0)), at(1)),
        count(Some(at(0)), at(7)),
        count(Some(at(0)), at(30)),
        count(Some(at(0)), at(90)),
        at(90),
    )
}

impl SqlStore {
    /// The current snapshot and every current file it names, as (role, bytes).
    async fn current_files_below_timestamp(
        &self,
        gun: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut files = Vec::new();
        if let Some(snapshot) = get_current(self, gun, SNAPSHOT_ROLE).await? {
            for (role, _) in referenced_roles(&snapshot)? {
                if let Some(f) = get_current(self, gun, &role).await? {
                    files.push((role, f.data));
                }
            }
            files.push((SNAPSHOT_ROLE.to_owned(), snapshot.data));
        }
        Ok(files)
    }

    /// Creates `expiry_inventory` if it is missing (its migration's idempotent DDL).
    pub async fn expiry_ensure_table(&self) -> Result<(), StoreError> {
        const MYSQL: &str = include_str!(
            "../../../migrations/server/mysql/2026-12-07-000003_create_expiry_inventory/up.sql"
        );
        const SQLITE: &str = include_str!(
            "../../../migrations/server/sqlite/2026-12-07-000003_create_expiry_inventory/up.sql"
        );
        const PG: &str = include_str!(
            "../../../migrations/server/postgres/2026-12-07-000003_create_expiry_inventory/up.sql"
        );
        self.run(|conn| run_own_ddl(conn, [MYSQL, SQLITE, PG], "table expiry_inventory"))
            .await
    }

    /// Records the expiries of freshly accepted files (role, bytes) of `gun`.
    pub async fn expiry_record(
        &self,
        gun: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let gun = gun.to_owned();
        self.run(move |conn| {
            let rows = rows_of(files.iter().map(|(r, d)| (r.as_str(), d.as_slice())));
            conn.transaction(|conn| upsert_rows(conn, &gun, &rows))
                .map_err(map_error)
        })
        .await
    }

    /// Rows expiring before `before`, soonest first: all of them when `role` and `prefix`
    /// are `None`, else of that role / GUNs starting with that prefix. At most `limit`.
    pub async fn expiring(
        &self,
        before: DateTime<Utc>,
        role: Option<String>,
        prefix: Option<String>,
        limit: i64,
    ) -> Result<Vec<InventoryRow>, StoreError> {
        self.run(move |conn| {
            let mut q = expiry_inventory::table
                .select((
                    expiry_inventory::gun,
                    expiry_inventory::role,
                    expiry_inventory::kind,
                    expiry_inventory::key_id,
                    expiry_inventory::subject,
                    expiry_inventory::expires,
                    expiry_inventory::version,
                ))
                .filter(expiry_inventory::expires.lt(storable(before)))
                .into_boxed();
            if let Some(role) = role {
                q = q.filter(expiry_inventory::role.eq(role));
            }
            if let Some(prefix) = prefix {
                q = q.filter(
                    expiry_inventory::gun
                        .like(starts_with(&prefix))
                        .escape('\\'),
                );
            }
            let rows: Vec<Row> = q
                .order((expiry_inventory::expires.asc(), expiry_inventory::id.asc()))
                .limit(limit)
                .load(conn)
                .map_err(map_error)?;
            Ok(rows.into_iter().map(row).collect())
        })
        .await
    }

    /// The expiry metrics' figures at `now`: one entry per role class and kind (all ten,
    /// zeros where nothing is recorded).
    pub async fn expiry_summary(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ExpirySummary>, StoreError> {
        self.run(move |conn| {
            let rows: Vec<SummaryRow> = diesel::sql_query(summary_sql(now))
                .load(conn)
                .map_err(map_error)?;
            let mut out = Vec::with_capacity(ROLE_CLASSES.len() * 2);
            for role in ROLE_CLASSES {
                for kind in [Kind::Metadata, Kind::Certificate] {
                    let found = rows
                        .iter()
                        .find(|r| r.role_class == role && r.kind == kind.as_str());
                    let mut entry = ExpirySummary {
                        role: role.to_owned(),
                        kind: kind.as_str().to_owned(),
                        ..ExpirySummary::default()
                    };
                    if let Some(r) = found {
                        entry.expired = r.expired;
                        entry.within = [r.d1, r.d7, r.d30, r.d90];
                        entry.soonest = r.soonest.map(|t| t.and_utc());
                    } else {
                        // Nothing within 90 days: the soonest, walking the (role, expires)
                        // index in order.
                        let mut q = expiry_inventory::table
                            .select(expiry_inventory::expires)
                            .filter(expiry_inventory::kind.eq(kind.as_str()))
                            .filter(expiry_inventory::expires.is_not_null())
                            .into_boxed();
                        q = if role == "delegation" {
                            q.filter(expiry_inventory::role.like("targets/%"))
                        } else {
                            q.filter(expiry_inventory::role.eq(role))
                        };
                        let soonest: Option<Option<NaiveDateTime>> = q
                            .order(expiry_inventory::expires.asc())
                            .first(conn)
                            .optional()
                            .map_err(map_error)?;
                        entry.soonest = soonest.flatten().map(|t| t.and_utc());
                    }
                    out.push(entry);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every inventory row of one GUN, soonest first.
    pub async fn expiry_of(&self, gun: &str) -> Result<Vec<InventoryRow>, StoreError> {
        let gun = gun.to_owned();
        self.run(move |conn| {
            let rows: Vec<Row> = expiry_inventory::table
                .select((
                    expiry_inventory::gun,
                    expiry_inventory::role,
                    expiry_inventory::kind,
                    expiry_inventory::key_id,
                    expiry_inventory::subject,
                    expiry_inventory::expires,
                    expiry_inventory::version,
                ))
                .filter(expiry_inventory::gun.eq(&gun))
                .filter(expiry_inventory::expires.is_not_null())
                .order((expiry_inventory::expires.asc(), expiry_inventory::id.asc()))
                .load(conn)
                .map_err(map_error)?;
            Ok(rows.into_iter().map(row).collect())
        })
        .await
    }

    /// Rebuilds the inventory of every GUN from its current metadata (timestamp, the
    /// snapshot it names, every file that snapshot names): for a database written before the
    /// inventory existed, by Go or by us. Returns how many GUNs were recorded.
    pub async fn expiry_backfill(&self) -> Result<u64, StoreError> {
        let mut after = String::new();
        let mut done = 0;
        loop {
            let guns = self.list_guns(&after, 500).await?;
            let Some(last) = guns.last() else {
                return Ok(done);
            };
            after = last.clone();
            for gun in &guns {
                let mut files = Vec::new();
                let Some(ts) = get_current(self, gun, TIMESTAMP_ROLE).await? else {
                    continue;
                };
                files.push((TIMESTAMP_ROLE.to_owned(), ts.data));
                // A GUN whose chain does not resolve (a broken or partial upload Go accepted)
                // still gets what it has; the others are not held up by it.
                match self.current_files_below_timestamp(gun).await {
                    Ok(more) => files.extend(more),
                    Err(e) => tracing::warn!(%gun, error = %e, "expiry backfill: chain incomplete"),
                }
                self.expiry_record(gun, files).await?;
                done += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::starts_with;

    #[test]
    fn prefix_patterns_escape_wildcards() {
        assert_eq!(starts_with("docker.io/lib"), "docker.io/lib%");
        assert_eq!(starts_with("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
