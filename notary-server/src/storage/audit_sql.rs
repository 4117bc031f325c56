//! The audit trail's table (`audit_log`, ours; see [`crate::audit`]): rows written inside the
//! transactions of [`super::sql`], and the admin queries over them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::audit_log;
use super::sql::{map_error, run_own_ddl, AnyConnection, SqlStore};
use super::{MetaUpdate, StoreError};
use crate::audit::{Audit, AuditEntry, AuditQuery, MAX_PAGE};

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    at: NaiveDateTime,
    action: &'a str,
    gun: &'a str,
    role: Option<&'a str>,
    version: Option<i32>,
    sha256: Option<&'a str>,
    actor: &'a str,
    actor_kind: &'a str,
    peer: Option<&'a str>,
    request_id: Option<&'a str>,
    detail: Option<String>,
}

fn row<'a>(
    audit: &'a Audit,
    gun: &'a str,
    role: Option<&'a str>,
    version: Option<i32>,
    sha256: Option<&'a str>,
    at: NaiveDateTime,
) -> NewAuditRow<'a> {
    NewAuditRow {
        at,
        action: audit.action.as_str(),
        gun,
        role,
        version,
        sha256,
        actor: &audit.actor.name,
        actor_kind: audit.actor.kind.as_str(),
        peer: audit.actor.peer.as_deref(),
        request_id: audit.actor.request_id.as_deref(),
        detail: audit.detail.as_ref().map(|d| d.to_string()),
    }
}

/// One row per file of an update (the diesel path of `update_many`).
pub(crate) fn insert_for_files(
    conn: &mut AnyConnection,
    gun: &str,
    audit: &Audit,
    updates: &[MetaUpdate],
    hashes: &[String],
    at: NaiveDateTime,
) -> QueryResult<()> {
    for (u, sha256) in updates.iter().zip(hashes) {
        let version = i32::try_from(u.version).unwrap_or(i32::MAX);
        diesel::insert_into(audit_log::table)
            .values(row(
                audit,
                gun,
                Some(&u.role),
                Some(version),
                Some(sha256),
                at,
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// One row about a GUN (and a role, for key actions).
pub(crate) fn insert_one(
    conn: &mut AnyConnection,
    gun: &str,
    role: Option<&str>,
    audit: &Audit,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(row(audit, gun, role, None, None, at))
        .execute(conn)
        .map(drop)
}

/// Appends the rows of an update to a MySQL text batch. Every string goes in as a hex
/// literal, as the rest of the batch does, so nothing needs escaping.
pub(crate) fn push_mysql_inserts(
    sql: &mut String,
    gun: &str,
    audit: &Audit,
    updates: &[MetaUpdate],
    hashes: &[String],
    at: &str,
) {
    use std::fmt::Write as _;
    let text =
        |s: Option<&str>| s.map_or_else(|| "NULL".to_owned(), |s| format!("X'{}'", hex::encode(s)));
    let actor = &audit.actor;
    let fixed = format!(
        "{},{},{},{},{}",
        text(Some(&actor.name)),
        text(Some(actor.kind.as_str())),
        text(actor.peer.as_deref()),
        text(actor.request_id.as_deref()),
        text(audit.detail.as_ref().map(|d| d.to_string()).as_deref()),
    );
    sql.push_str(
        "INSERT INTO audit_log (at,action,gun,role,version,sha256,actor,actor_kind,peer,\
         request_id,detail) VALUES ",
    );
    for (i, (u, sha256)) in updates.iter().zip(hashes).enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "('{at}',{},X'{}',X'{}',{},X'{}',{fixed})",
            text(Some(audit.action.as_str())),
            hex::encode(gun),
            hex::encode(&u.role),
            i32::try_from(u.version).unwrap_or(i32::MAX),
            hex::encode(sha256),
        );
    }
    sql.push(';');
}

type EntryRow = (
    i64,
    Option<NaiveDateTime>,
    String,
    String,
    Option<String>,
    Option<i32>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn entry(row: EntryRow) -> AuditEntry {
    let (id, at, action, gun, role, version, sha256, actor, actor_kind, peer, request_id, detail) =
        row;
    AuditEntry {
        id,
        at: at.map_or(chrono::DateTime::UNIX_EPOCH, |t| t.and_utc()),
        action,
        gun,
        role,
        version: version.map(i64::from),
        // PostgreSQL pads CHAR(64); nothing else is stored there.
        sha256: sha256.map(|s| s.trim_end().to_owned()),
        actor,
        actor_kind,
        peer,
        request_id,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

impl SqlStore {
    /// Creates `audit_log` if it is missing (the idempotent DDL of its migration), so a
    /// server started on a Go database without `-migrate` still keeps its trail.
    pub async fn audit_ensure_table(&self) -> Result<(), StoreError> {
        const MYSQL: &str = include_str!(
            "../../../migrations/server/mysql/2026-12-07-000002_create_audit_log/up.sql"
        );
        const SQLITE: &str = include_str!(
            "../../../migrations/server/sqlite/2026-12-07-000002_create_audit_log/up.sql"
        );
        const PG: &str = include_str!(
            "../../../migrations/server/postgres/2026-12-07-000002_create_audit_log/up.sql"
        );
        self.run(|conn| run_own_ddl(conn, [MYSQL, SQLITE, PG], "table audit_log"))
            .await
    }

    /// Records one action about `gun` on its own (for changes made outside this store's
    /// own transactions, such as keys deleted in the signer).
    pub async fn audit_record(
        &self,
        gun: &str,
        role: Option<&str>,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let (gun, role, audit) = (gun.to_owned(), role.map(str::to_owned), audit.clone());
        self.run(move |conn| {
            insert_one(
                conn,
                &gun,
                role.as_deref(),
                &audit,
                super::now_utc().naive_utc(),
            )
            .map_err(map_error)
        })
        .await
    }

    /// One page of the trail, oldest first, matching `q`.
    pub async fn audit_query(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(move |conn| {
            let mut query = audit_log::table
                .select((
                    audit_log::id,
                    audit_log::at,
                    audit_log::action,
                    audit_log::gun,
                    audit_log::role,
                    audit_log::version,
                    audit_log::sha256,
                    audit_log::actor,
                    audit_log::actor_kind,
                    audit_log::peer,
                    audit_log::request_id,
                    audit_log::detail,
                ))
                .filter(audit_log::id.gt(q.after_id))
                .into_boxed();
            if let Some(gun) = q.gun {
                query = query.filter(audit_log::gun.eq(gun));
            }
            if let Some(actor) = q.actor {
                query = query.filter(audit_log::actor.eq(actor));
            }
            if let Some(since) = q.since {
                query = query.filter(audit_log::at.ge(since.naive_utc()));
            }
            if let Some(until) = q.until {
                query = query.filter(audit_log::at.lt(until.naive_utc()));
            }
            let rows: Vec<EntryRow> = query
                .order(audit_log::id.asc())
                .limit(q.limit.clamp(1, MAX_PAGE))
                .load(conn)
                .map_err(map_error)?;
            Ok(rows.into_iter().map(entry).collect())
        })
        .await
    }
}
