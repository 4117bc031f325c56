//! Database locations given on the command line, and raw access to the server and signer
//! tables for the import (rows are copied with every column, ids included).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use notary_common::dsn::{MysqlDsn, PostgresDsn};
use notary_server::storage::schema::{changefeed, tuf_files};
use notary_server::storage::{MetaStore, SqlStore};
use notary_signer::keystore::private_keys;

/// A database: MySQL/MariaDB, PostgreSQL or a SQLite file.
#[derive(Debug, Clone)]
pub enum DbSpec {
    /// MySQL / MariaDB.
    Mysql(MysqlDsn),
    /// PostgreSQL (Harbor's notary databases among them).
    Postgres(PostgresDsn),
    /// A SQLite file.
    Sqlite(PathBuf),
}

impl DbSpec {
    /// Parses `mysql://user:pw@host:port/db`, a go-sql-driver DSN
    /// (`user:pw@tcp(host:port)/db`), `postgres://user:pw@host:port/db?sslmode=...`,
    /// `sqlite:PATH`, or a plain SQLite file path.
    pub fn parse(setting: &str, s: &str) -> Result<DbSpec, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return PostgresDsn::parse(setting, s)
                .map(DbSpec::Postgres)
                .map_err(|e| e.to_string());
        }
        if let Some(path) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(format!("{setting}: empty SQLite path"));
            }
            return Ok(DbSpec::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("mysql://") || s.contains("@tcp(") || s.contains("@unix(") {
            return MysqlDsn::parse(setting, s)
                .map(DbSpec::Mysql)
                .map_err(|e| e.to_string());
        }
        if s.is_empty() {
            return Err(format!("{setting}: empty database location"));
        }
        Ok(DbSpec::Sqlite(PathBuf::from(s)))
    }

    /// Where it is, without credentials.
    pub fn display(&self) -> String {
        match self {
            DbSpec::Mysql(d) => d.redacted(),
            DbSpec::Postgres(d) => format!("postgres://{}", d.redacted()),
            DbSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
        }
    }

    /// The signer crate's view of the same database.
    pub fn signer_backend(&self) -> notary_signer::keystore::Backend {
        match self {
            DbSpec::Mysql(d) => notary_signer::keystore::Backend::Mysql(d.clone()),
            DbSpec::Postgres(d) => notary_signer::keystore::Backend::Postgres(d.clone()),
            DbSpec::Sqlite(p) => notary_signer::keystore::Backend::Sqlite(p.clone()),
        }
    }

    /// Opens it as a server metadata store; `migrate` applies our migrations first (they
    /// leave a Go-created schema as it is).
    pub fn open_store(&self, migrate: bool) -> Result<Arc<SqlStore>, String> {
        let store = match self {
            DbSpec::Mysql(d) => SqlStore::open_mysql(&d.to_diesel_url()),
            DbSpec::Postgres(d) => SqlStore::open_postgres(d),
            DbSpec::Sqlite(p) => SqlStore::open_sqlite(p),
        }
        .map_err(|e| format!("cannot open {}: {e}", self.display()))?;
        if migrate {
            store
                .run_migrations()
                .map_err(|e| format!("cannot migrate {}: {e}", self.display()))?;
        }
        Ok(Arc::new(store))
    }

    /// Opens a store that must already exist (SQLite: the file must be there).
    pub fn open_existing_store(&self) -> Result<Arc<dyn MetaStore>, String> {
        if let DbSpec::Sqlite(p) = self {
            if !p.exists() {
                return Err(format!("SQLite database {} does not exist", p.display()));
            }
        }
        let store: Arc<dyn MetaStore> = self.open_store(false)?;
        Ok(store)
    }

    /// One raw connection.
    pub fn connect(&self) -> Result<RawConnection, String> {
        let err = |e: diesel::ConnectionError| format!("cannot connect to {}: {e}", self.display());
        match self {
            DbSpec::Mysql(d) => {
                let mut c = diesel::MysqlConnection::establish(&d.to_diesel_url()).map_err(err)?;
                // TIMESTAMP columns convert through the session zone: keep it UTC both ways.
                c.batch_execute("SET time_zone = '+00:00'")
                    .map_err(|e| format!("{}: {e}", self.display()))?;
                Ok(RawConnection::Mysql(c))
            }
            DbSpec::Postgres(d) => {
                let mut c = diesel::PgConnection::establish(d.conninfo()).map_err(err)?;
                c.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(|e| format!("{}: {e}", self.display()))?;
                Ok(RawConnection::Pg(c))
            }
            DbSpec::Sqlite(p) => {
                let path = p
                    .to_str()
                    .ok_or_else(|| format!("non-UTF-8 path {}", p.display()))?;
                let mut c = diesel::SqliteConnection::establish(path).map_err(err)?;
                c.batch_execute("PRAGMA busy_timeout = 10000;")
                    .map_err(|e| format!("{}: {e}", self.display()))?;
                Ok(RawConnection::Sqlite(c))
            }
        }
    }
}

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum RawConnection {
    /// MySQL / MariaDB.
    Mysql(diesel::MysqlConnection),
    /// SQLite.
    Sqlite(diesel::SqliteConnection),
    /// PostgreSQL.
    Pg(diesel::PgConnection),
}

/// One `tuf_files` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = tuf_files)]
pub struct TufRow {
    /// Row id.
    pub id: i32,
    /// Insert time.
    pub created_at: Option<NaiveDateTime>,
    /// Update time.
    pub updated_at: Option<NaiveDateTime>,
    /// Soft-delete time (never set by notary).
    pub deleted_at: Option<NaiveDateTime>,
    /// GUN.
    pub gun: String,
    /// Role.
    pub role: String,
    /// Version.
    pub version: i32,
    /// File bytes.
    pub data: Vec<u8>,
    /// Hex SHA-256 of `data` as stored.
    pub sha256: Option<String>,
}

/// One `changefeed` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = changefeed)]
pub struct ChangeRow {
    /// Cursor id.
    pub id: i32,
    /// Time.
    pub created_at: Option<NaiveDateTime>,
    /// GUN.
    pub gun: String,
    /// Timestamp version (0 for deletions).
    pub version: i32,
    /// Timestamp hash ("" for deletions).
    pub sha256: Option<String>,
    /// `update` / `deletion`.
    pub category: String,
}

/// One `private_keys` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = private_keys)]
pub struct KeyRow {
    /// Row id.
    pub id: i32,
    /// Insert time.
    pub created_at: Option<NaiveDateTime>,
    /// Update time.
    pub updated_at: Option<NaiveDateTime>,
    /// Soft-delete time.
    pub deleted_at: Option<NaiveDateTime>,
    /// TUF key ID.
    pub key_id: String,
    /// `A256GCM`.
    pub encryption_alg: String,
    /// `PBES2-HS256+A128KW`.
    pub keywrap_alg: String,
    /// Key type.
    pub algorithm: String,
    /// Passphrase alias.
    pub passphrase_alias: String,
    /// Public key bytes.
    pub public: Vec<u8>,
    /// JWE of the private key.
    pub private: Vec<u8>,
    /// GUN.
    pub gun: String,
    /// Role.
    pub role: String,
    /// Last signing time.
    pub last_used: Option<NaiveDateTime>,
}

/// (id, gun, role, version, sha256) of a stored file.
pub type RowKey = (i32, String, String, i32, Option<String>);

fn q(e: diesel::result::Error) -> String {
    e.to_string()
}

impl RawConnection {
    /// Every `tuf_files` row, by id.
    pub fn tuf_rows(&mut self) -> Result<Vec<TufRow>, String> {
        tuf_files::table
            .order(tuf_files::id.asc())
            .load(self)
            .map_err(q)
    }

    /// Every changefeed row, by id.
    pub fn change_rows(&mut self) -> Result<Vec<ChangeRow>, String> {
        changefeed::table
            .order(changefeed::id.asc())
            .load(self)
            .map_err(q)
    }

    /// Every `private_keys` row, by id.
    pub fn key_rows(&mut self) -> Result<Vec<KeyRow>, String> {
        private_keys::table
            .order(private_keys::id.asc())
            .load(self)
            .map_err(q)
    }

    /// (id, gun, role, version, sha256) of every stored file: enough to resume a copy.
    pub fn tuf_ids(&mut self) -> Result<Vec<RowKey>, String> {
        tuf_files::table
            .select((
                tuf_files::id,
                tuf_files::gun,
                tuf_files::role,
                tuf_files::version,
                tuf_files::sha256,
            ))
            .load(self)
            .map_err(q)
    }

    /// Ids of the changefeed rows present.
    pub fn change_ids(&mut self) -> Result<Vec<i32>, String> {
        changefeed::table
            .select(changefeed::id)
            .load(self)
            .map_err(q)
    }

    /// (id, key_id) of the key rows present.
    pub fn key_ids(&mut self) -> Result<Vec<(i32, String)>, String> {
        private_keys::table
            .select((private_keys::id, private_keys::key_id))
            .load(self)
            .map_err(q)
    }

    /// Inserts rows with their ids, in one transaction.
    pub fn insert_all(
        &mut self,
        files: &[TufRow],
        changes: &[ChangeRow],
        keys: &[KeyRow],
    ) -> Result<(), String> {
        // One row per statement: diesel's multi-backend connection has no batch insert.
        self.transaction::<(), diesel::result::Error, _>(|conn| {
            for row in files {
                diesel::insert_into(tuf_files::table)
                    .values(row)
                    .execute(conn)?;
            }
            for row in changes {
                diesel::insert_into(changefeed::table)
                    .values(row)
                    .execute(conn)?;
            }
            for row in keys {
                diesel::insert_into(private_keys::table)
                    .values(row)
                    .execute(conn)?;
            }
            // A serial column's sequence does not move when ids are given: move it past
            // the copied ids, or the next publish would collide with them. (MySQL's
            // AUTO_INCREMENT and SQLite's sqlite_sequence follow explicit ids by themselves.)
            if let RawConnection::Pg(pg) = conn {
                let copied = [
                    ("tuf_files", !files.is_empty()),
                    ("changefeed", !changes.is_empty()),
                    ("private_keys", !keys.is_empty()),
                ];
                let tables = copied.iter().filter(|(_, any)| *any).map(|(t, _)| t);
                for table in tables {
                    pg.batch_execute(&format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                                GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), 1), \
                                (SELECT COUNT(*) > 0 FROM {table}))"
                    ))?;
                }
            }
            Ok(())
        })
        .map_err(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_recognised() {
        assert!(matches!(
            DbSpec::parse("x", "mysql://u:p@127.0.0.1:3306/db"),
            Ok(DbSpec::Mysql(_))
        ));
        assert!(matches!(
            DbSpec::parse("x", "u:p@tcp(127.0.0.1:3306)/db?parseTime=true"),
            Ok(DbSpec::Mysql(_))
        ));
        match DbSpec::parse("x", "sqlite:/tmp/a.db") {
            Ok(DbSpec::Sqlite(p)) => assert_eq!(p, PathBuf::from("/tmp/a.db")),
            other => panic!("{other:?}"),
        }
        match DbSpec::parse("x", "/tmp/b.db") {
            Ok(DbSpec::Sqlite(p)) => assert_eq!(p, PathBuf::from("/tmp/b.db")),
            other => panic!("{other:?}"),
        }
        match DbSpec::parse(
            "x",
            "postgres://server:pw@db:5432/notaryserver?sslmode=disable",
        ) {
            Ok(DbSpec::Postgres(d)) => assert_eq!(d.ssl_mode(), "disable"),
            other => panic!("{other:?}"),
        }
        assert!(DbSpec::parse("x", "postgres://u@h/db?sslmode=bogus").is_err());
        assert!(DbSpec::parse("x", "").is_err());
        assert!(DbSpec::parse("x", "sqlite:").is_err());
    }
}
