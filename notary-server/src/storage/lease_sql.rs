//! Leases of background jobs (`server_leases`, ours): a replica runs a job only while it
//! holds the job's lease, so several replicas on one database do not all run it at once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::server_leases;
use super::sql::{map_error, run_own_ddl, AnyConnection, SqlStore};
use super::StoreError;

impl SqlStore {
    /// Creates `server_leases` if it is missing (its migration's idempotent DDL).
    pub async fn lease_ensure_table(&self) -> Result<(), StoreError> {
        const MYSQL: &str = include_str!(
            "../../../migrations/server/mysql/2026-12-07-000010_create_server_leases/up.sql"
        );
        const SQLITE: &str = include_str!(
            "../../../migrations/server/sqlite/2026-12-07-000010_create_server_leases/up.sql"
        );
        const PG: &str = include_str!(
            "../../../migrations/server/postgres/2026-12-07-000010_create_server_leases/up.sql"
        );
        self.run(|conn| run_own_ddl(conn, [MYSQL, SQLITE, PG], "table server_leases"))
            .await
    }

    /// Takes lease `name` for `holder` until `until` when it is free, expired, or already
    /// `holder`'s (a renewal). Returns whether `holder` now holds it. The update and the
    /// insert are each atomic, so of two replicas racing for a free lease exactly one wins
    /// (MySQL counts matched rows here: diesel sets `CLIENT_FOUND_ROWS`).
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |conn| {
            use server_leases::dsl as l;
            let taken = diesel::update(
                l::server_leases
                    .filter(l::name.eq(&name))
                    .filter(l::holder.eq(&holder).or(l::expires.lt(now.naive_utc()))),
            )
            .set((l::holder.eq(&holder), l::expires.eq(until.naive_utc())))
            .execute(conn)
            .map_err(map_error)?;
            if taken > 0 {
                return Ok(true);
            }
            // Held by another replica (and not expired) when the row exists: the insert
            // then adds nothing, without a duplicate-key error in the database's log.
            let row = (
                l::name.eq(&name),
                l::holder.eq(&holder),
                l::expires.eq(until.naive_utc()),
            );
            let inserted = match conn {
                AnyConnection::Mysql(c) => diesel::insert_or_ignore_into(l::server_leases)
                    .values(row)
                    .execute(c),
                AnyConnection::Sqlite(c) => diesel::insert_into(l::server_leases)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(c),
                AnyConnection::Pg(c) => diesel::insert_into(l::server_leases)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(c),
            }
            .map_err(map_error)?;
            Ok(inserted > 0)
        })
        .await
    }

    /// The holder of lease `name` and until when, if any.
    pub async fn lease_holder(
        &self,
        name: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let name = name.to_owned();
        self.run(move |conn| {
            use server_leases::dsl as l;
            let row: Option<(String, chrono::NaiveDateTime)> = l::server_leases
                .filter(l::name.eq(&name))
                .select((l::holder, l::expires))
                .first(conn)
                .optional()
                .map_err(map_error)?;
            Ok(row.map(|(h, t)| (h, t.and_utc())))
        })
        .await
    }
}
