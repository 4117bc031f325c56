//! SQL [`MetaStore`] for MySQL/MariaDB and SQLite (diesel, r2d2).
//!
//! One connection enum (`#[derive(MultiConnection)]`) runs the same queries on
//! both backends. Diesel is blocking, so every call checks a connection out
//! and runs its queries inside `spawn_blocking`; checking out can block too
//! (pool exhausted, database down), which is why it happens in there as well.
//!
//! Errors: a pool timeout or a lost/refused connection becomes
//! [`StoreError::Unavailable`]; r2d2 pings each connection on checkout and
//! replaces dead ones, so the store recovers by itself once the database is
//! back. A unique-key violation on write becomes [`StoreError::OldVersion`].
//!
//! Times: diesel sets the MySQL session time zone to UTC, so `TIMESTAMP`
//! values are stored and read as true UTC. Go notary writes UTC wall-clock
//! values in the server's session zone, so the two agree whenever the MySQL
//! server runs in UTC (the usual setup).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, HandleError, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::schema::{changefeed, tuf_files};
use super::{
    check_batch, now_utc, sha256_hex, Change, ChangeQuery, MetaStore, MetaUpdate, StoreError,
    StoredFile, CATEGORY_DELETION, CATEGORY_UPDATE, TIMESTAMP_ROLE,
};

/// Server migrations for MySQL/MariaDB; their end state equals Go's schema.
pub(crate) const MYSQL_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../migrations/server/mysql");
/// Server migrations for SQLite (same tables and keys as MySQL).
pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../migrations/server/sqlite");

/// Applied to every new SQLite connection. busy_timeout makes concurrent
/// writers wait for the lock instead of failing at once; WAL lets readers run
/// alongside a writer.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON;";

/// How often a write transaction is retried after a deadlock (MySQL 1213).
/// A retry either succeeds or hits the unique key and reports `OldVersion`.
const DEADLOCK_RETRIES: usize = 3;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Mysql(diesel::MysqlConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Mysql,
    Sqlite,
}

/// r2d2 manager that opens exactly one backend. diesel's own
/// `ConnectionManager<AnyConnection>` tries every backend in turn, so with
/// MySQL down it would fall through to SQLite and create a file named after
/// the MySQL URL.
#[derive(Debug)]
struct Manager {
    backend: Backend,
    url: String,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match self.backend {
            Backend::Mysql => diesel::MysqlConnection::establish(&self.url)
                .map(AnyConnection::Mysql)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&self.url)
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// Sends r2d2's background connection errors to the log.
#[derive(Debug)]
struct LogErrors;

impl HandleError<r2d2::Error> for LogErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// Pool settings for [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long a request waits for a connection before failing with
    /// [`StoreError::Unavailable`]; also bounds how long opening waits.
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    /// Four connections per core (2..16 cores → 8..16; at least 4), 5 s wait.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let max_size = u32::try_from(cores.saturating_mul(4).clamp(4, 16)).unwrap_or(8);
        PoolOptions {
            max_size,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// [`MetaStore`] on MySQL/MariaDB or SQLite.
#[derive(Clone)]
pub struct SqlStore {
    pool: Pool<Manager>,
    backend: Backend,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The manager holds the URL with its password: leave it out.
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl SqlStore {
    /// Opens a pool on `url` (`mysql://user:pass@host:port/database`) with
    /// default [`PoolOptions`]. Fails with `Unavailable` if no connection can
    /// be made within the connection timeout.
    pub fn open_mysql(url: &str) -> Result<Self, StoreError> {
        Self::open_mysql_with(url, PoolOptions::default())
    }

    /// [`SqlStore::open_mysql`] with explicit pool settings.
    pub fn open_mysql_with(url: &str, options: PoolOptions) -> Result<Self, StoreError> {
        if !url.starts_with("mysql://") {
            return Err(StoreError::Other(
                "MySQL URL must have the form mysql://user:password@host:port/database".into(),
            ));
        }
        Self::open(Backend::Mysql, url.to_owned(), options)
    }

    /// Opens (creating if needed) the SQLite database file at `path`.
    /// Each pooled connection opens the file anew, so `:memory:` does not work.
    pub fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open_sqlite_with(path, PoolOptions::default())
    }

    /// [`SqlStore::open_sqlite`] with explicit pool settings.
    pub fn open_sqlite_with(path: &Path, options: PoolOptions) -> Result<Self, StoreError> {
        let url = path
            .to_str()
            .ok_or_else(|| StoreError::Other(format!("non-UTF-8 SQLite path {path:?}")))?;
        Self::open(Backend::Sqlite, url.to_owned(), options)
    }

    fn open(backend: Backend, url: String, options: PoolOptions) -> Result<Self, StoreError> {
        let pool = Pool::builder()
            .max_size(options.max_size)
            // Open one connection up front (to fail fast on a bad URL), the
            // rest on demand.
            .min_idle(Some(1))
            .connection_timeout(options.connection_timeout)
            .error_handler(Box::new(LogErrors))
            .build(Manager { backend, url })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(SqlStore { pool, backend })
    }

    /// Applies pending migrations from `migrations/server/<backend>`.
    ///
    /// Safe on a database created by Go notary: every statement is
    /// `CREATE TABLE IF NOT EXISTS` / `INSERT IGNORE`, so Go's tables and rows
    /// stay as they are; diesel only adds its `__diesel_schema_migrations`
    /// table. Blocking: call it at startup, not from a request handler.
    pub fn run_migrations(&self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = match &mut *conn {
            AnyConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS).map(drop),
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
        };
        result.map_err(|e| StoreError::Other(format!("migrations failed: {e}")))
    }

    /// Runs `job` with a pooled connection on the blocking thread pool.
    async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            job(&mut conn)
        });
        match task.await {
            Ok(result) => result,
            // Surface bugs in the job as the panic they are.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Other(format!("database task failed: {e}"))),
        }
    }
}

/// Columns read for a [`StoredFile`].
const FILE_COLUMNS: (
    tuf_files::role,
    tuf_files::version,
    tuf_files::data,
    tuf_files::sha256,
    tuf_files::created_at,
    tuf_files::updated_at,
) = (
    tuf_files::role,
    tuf_files::version,
    tuf_files::data,
    tuf_files::sha256,
    tuf_files::created_at,
    tuf_files::updated_at,
);

type FileRow = (
    String,
    i32,
    Vec<u8>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

fn file_from_row(row: FileRow) -> StoredFile {
    let (role, version, data, sha256, created_at, updated_at) = row;
    // Go's rows always carry sha256 (its migration backfilled it); recompute
    // rather than fail if one does not.
    let sha256 = sha256.map_or_else(|| sha256_hex(&data), |s| s.to_ascii_lowercase());
    let created_at = created_at.map_or(DateTime::UNIX_EPOCH, |t| t.and_utc());
    let updated_at = updated_at.map_or(created_at, |t| t.and_utc());
    StoredFile {
        role,
        version: i64::from(version),
        data,
        sha256,
        created_at,
        updated_at,
    }
}

type ChangeRow = (
    i32,
    Option<NaiveDateTime>,
    String,
    i32,
    Option<String>,
    String,
);

fn change_from_row(row: ChangeRow) -> Change {
    let (id, created_at, gun, version, sha256, category) = row;
    Change {
        id: i64::from(id),
        created_at: created_at.map_or(DateTime::UNIX_EPOCH, |t| t.and_utc()),
        gun,
        version: i64::from(version),
        sha256: sha256.unwrap_or_default(),
        category,
    }
}

#[derive(Insertable)]
#[diesel(table_name = tuf_files)]
struct NewFile<'a> {
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    gun: &'a str,
    role: &'a str,
    version: i32,
    data: &'a [u8],
    sha256: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = changefeed)]
struct NewChange<'a> {
    created_at: NaiveDateTime,
    gun: &'a str,
    version: i32,
    sha256: &'a str,
    category: &'a str,
}

/// Whether a database error message means the server cannot be reached.
/// The MySQL client reports these with no distinct error kind.
fn is_connection_loss(message: &str) -> bool {
    const PATTERNS: [&str; 9] = [
        "gone away",
        "lost connection",
        "can't connect",
        "connection refused",
        "connection reset",
        "broken pipe",
        "connection was killed",
        "shutdown in progress",
        // SQLite: busy_timeout expired under write contention.
        "database is locked",
    ];
    let message = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| message.contains(p))
}

fn map_error(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
            StoreError::Unavailable(info.message().to_owned())
        }
        DieselError::DatabaseError(_, info) if is_connection_loss(info.message()) => {
            StoreError::Unavailable(info.message().to_owned())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Like [`map_error`], but a key collision means a concurrent or replayed
/// version (MySQL 1062 is mapped by diesel; 1022 only shows in the text).
fn map_write_error(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::OldVersion,
        DieselError::DatabaseError(_, info)
            if info
                .message()
                .to_ascii_lowercase()
                .contains("duplicate key") =>
        {
            StoreError::OldVersion
        }
        _ => map_error(e),
    }
}

/// Clamps a 64-bit id or version into the INT columns' range.
fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

fn update_many_blocking(
    conn: &mut AnyConnection,
    gun: &str,
    updates: &[MetaUpdate],
) -> Result<(), StoreError> {
    let min_per_role = check_batch(updates)?;
    // Step 2 of §11.4 runs outside the transaction: the unique key settles
    // races, and on SQLite a transaction that reads before writing could not
    // wait for the write lock.
    for (role, min) in &min_per_role {
        let newer = tuf_files::table
            .filter(tuf_files::gun.eq(gun))
            .filter(tuf_files::role.eq(*role))
            .filter(tuf_files::version.ge(clamp_i32(*min)))
            .filter(tuf_files::deleted_at.is_null())
            .select(tuf_files::id)
            .first::<i32>(conn)
            .optional()
            .map_err(map_error)?;
        if newer.is_some() {
            return Err(StoreError::OldVersion);
        }
    }
    let now = now_utc().naive_utc();
    let hashes: Vec<String> = updates.iter().map(|u| sha256_hex(&u.data)).collect();
    let mut attempt = 0;
    loop {
        let result = conn.transaction::<(), DieselError, _>(|conn| {
            for (u, sha256) in updates.iter().zip(&hashes) {
                let version = clamp_i32(u.version);
                diesel::insert_into(tuf_files::table)
                    .values(NewFile {
                        created_at: now,
                        updated_at: now,
                        gun,
                        role: &u.role,
                        version,
                        data: &u.data,
                        sha256,
                    })
                    .execute(conn)?;
                if u.role == TIMESTAMP_ROLE {
                    diesel::insert_into(changefeed::table)
                        .values(NewChange {
                            created_at: now,
                            gun,
                            version,
                            sha256,
                            category: CATEGORY_UPDATE,
                        })
                        .execute(conn)?;
                }
            }
            Ok(())
        });
        match result {
            Err(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _))
                if attempt < DEADLOCK_RETRIES =>
            {
                attempt += 1;
            }
            other => return other.map_err(map_write_error),
        }
    }
}

#[async_trait::async_trait]
impl MetaStore for SqlStore {
    async fn get_latest(&self, gun: &str, role: &str) -> Result<Option<StoredFile>, StoreError> {
        let (gun, role) = (gun.to_owned(), role.to_owned());
        self.run(move |conn| {
            tuf_files::table
                .filter(tuf_files::gun.eq(&gun))
                .filter(tuf_files::role.eq(&role))
                .filter(tuf_files::deleted_at.is_null())
                .order(tuf_files::version.desc())
                .select(FILE_COLUMNS)
                .first::<FileRow>(conn)
                .optional()
                .map(|row| row.map(file_from_row))
                .map_err(map_error)
        })
        .await
    }

    async fn get_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        let (gun, role, sha256) = (gun.to_owned(), role.to_owned(), sha256_hex.to_owned());
        self.run(move |conn| {
            tuf_files::table
                .filter(tuf_files::gun.eq(&gun))
                .filter(tuf_files::role.eq(&role))
                .filter(tuf_files::sha256.eq(&sha256))
                .filter(tuf_files::deleted_at.is_null())
                .order(tuf_files::version.desc())
                .select(FILE_COLUMNS)
                .first::<FileRow>(conn)
                .optional()
                .map(|row| row.map(file_from_row))
                .map_err(map_error)
        })
        .await
    }

    async fn get_version(
        &self,
        gun: &str,
        role: &str,
        version: i64,
    ) -> Result<Option<StoredFile>, StoreError> {
        let Ok(version) = i32::try_from(version) else {
            return Ok(None);
        };
        if version <= 0 {
            return Ok(None);
        }
        let (gun, role) = (gun.to_owned(), role.to_owned());
        self.run(move |conn| {
            tuf_files::table
                .filter(tuf_files::gun.eq(&gun))
                .filter(tuf_files::role.eq(&role))
                .filter(tuf_files::version.eq(version))
                .filter(tuf_files::deleted_at.is_null())
                .select(FILE_COLUMNS)
                .first::<FileRow>(conn)
                .optional()
                .map(|row| row.map(file_from_row))
                .map_err(map_error)
        })
        .await
    }

    async fn update_many(&self, gun: &str, updates: Vec<MetaUpdate>) -> Result<(), StoreError> {
        // Reject bad batches before taking a connection.
        check_batch(&updates)?;
        if updates.is_empty() {
            return Ok(());
        }
        let gun = gun.to_owned();
        self.run(move |conn| update_many_blocking(conn, &gun, &updates))
            .await
    }

    async fn delete(&self, gun: &str) -> Result<u64, StoreError> {
        let gun = gun.to_owned();
        self.run(move |conn| {
            conn.transaction::<u64, DieselError, _>(|conn| {
                let removed = diesel::delete(tuf_files::table.filter(tuf_files::gun.eq(&gun)))
                    .execute(conn)?;
                if removed > 0 {
                    diesel::insert_into(changefeed::table)
                        .values(NewChange {
                            created_at: now_utc().naive_utc(),
                            gun: &gun,
                            version: 0,
                            sha256: "",
                            category: CATEGORY_DELETION,
                        })
                        .execute(conn)?;
                }
                Ok(removed as u64)
            })
            .map_err(map_error)
        })
        .await
    }

    async fn get_changes(
        &self,
        change_id: i64,
        records: i64,
        gun: Option<&str>,
    ) -> Result<Vec<Change>, StoreError> {
        let q = ChangeQuery::new(change_id, records);
        let gun = gun.map(str::to_owned);
        self.run(move |conn| {
            let mut query = changefeed::table
                .select((
                    changefeed::id,
                    changefeed::created_at,
                    changefeed::gun,
                    changefeed::version,
                    changefeed::sha256,
                    changefeed::category,
                ))
                .into_boxed();
            if let Some(gun) = gun {
                query = query.filter(changefeed::gun.eq(gun));
            }
            let cursor = clamp_i32(q.change_id);
            if !q.reversed {
                query = query
                    .filter(changefeed::id.gt(cursor))
                    .order(changefeed::id.asc());
            } else {
                if q.change_id > 0 {
                    query = query.filter(changefeed::id.lt(cursor));
                }
                query = query.order(changefeed::id.desc());
            }
            let mut page: Vec<Change> = query
                .limit(q.limit)
                .load::<ChangeRow>(conn)
                .map_err(map_error)?
                .into_iter()
                .map(change_from_row)
                .collect();
            if q.reversed {
                page.reverse();
            }
            Ok(page)
        })
        .await
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            tuf_files::table
                .select(tuf_files::id)
                .limit(1)
                .load::<i32>(conn)
                .map(drop)
                .map_err(map_error)
        })
        .await
    }
}
