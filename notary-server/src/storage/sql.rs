//! SQL [`MetaStore`] for MySQL/MariaDB, PostgreSQL and SQLite (diesel, r2d2).
//!
//! One connection enum (`#[derive(MultiConnection)]`) runs the same queries on
//! every backend. Diesel is blocking, so every call checks a connection out
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
//! server runs in UTC (the usual setup). PostgreSQL sessions are set to UTC as well; Go's
//! `timestamp` (without time zone) columns hold what gorm wrote, UTC on a UTC host.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, HandleError, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression};
use diesel::query_builder::{AstPass, QueryFragment};
use notary_common::dsn::PostgresDsn;

use super::schema::{changefeed, server_key_owners, tuf_files};
use super::{audit_sql, tlog_sql};
use super::{
    check_batch, now_utc, sha256_hex, Change, ChangeQuery, MetaStore, MetaUpdate, StoreError,
    StoredFile, CATEGORY_DELETION, CATEGORY_UPDATE, TIMESTAMP_ROLE,
};
use crate::audit::Audit;
use crate::cache::{CacheOptions, FeedCursor, Invalidation, MetaCache, WeakCache};

/// Server migrations for MySQL/MariaDB; their end state equals Go's schema.
pub(crate) const MYSQL_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../migrations/server/mysql");
/// Server migrations for SQLite (same tables and keys as MySQL).
pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../migrations/server/sqlite");
/// Server migrations for PostgreSQL; their end state equals Go's `migrations/server/postgresql`.
pub(crate) const PG_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../migrations/server/postgres");

/// Applied to every new SQLite connection. busy_timeout makes concurrent
/// writers wait for the lock instead of failing at once; WAL lets readers run
/// alongside a writer.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON;";

/// Upper-case hex of a text column's bytes: `hex(x)` on MySQL and SQLite,
/// `upper(encode(convert_to(x, 'UTF8'), 'hex'))` on PostgreSQL, which has no `hex`.
/// Comparing it compares names byte for byte, where MySQL's `*_general_ci` collation of Go's
/// tables would equate `Alice/app` and `alice/app` (and ignore trailing spaces).
/// (A `define_sql_function!` has one SQL name for all backends, hence this expression.)
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId, diesel::expression::ValidGrouping)]
pub(crate) struct SqlHex<E>(E);

pub(crate) fn sql_hex<E>(e: E) -> SqlHex<E> {
    SqlHex(e)
}

impl<E: Expression<SqlType = diesel::sql_types::Text>> Expression for SqlHex<E> {
    type SqlType = diesel::sql_types::Text;
}

impl<E: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for SqlHex<E> where Self: Expression {}

impl<E: SelectableExpression<QS>, QS> SelectableExpression<QS> for SqlHex<E> where
    Self: AppearsOnTable<QS>
{
}

impl<E: QueryFragment<diesel::mysql::Mysql>> QueryFragment<diesel::mysql::Mysql> for SqlHex<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::mysql::Mysql>) -> QueryResult<()> {
        out.push_sql("hex(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

impl<E: QueryFragment<diesel::sqlite::Sqlite>> QueryFragment<diesel::sqlite::Sqlite> for SqlHex<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql("hex(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

impl<E: QueryFragment<diesel::pg::Pg>> QueryFragment<diesel::pg::Pg> for SqlHex<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql("upper(encode(convert_to(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(", 'UTF8'), 'hex'))");
        Ok(())
    }
}

impl<E> QueryFragment<MultiBackend> for SqlHex<E>
where
    Self: QueryFragment<diesel::mysql::Mysql>
        + QueryFragment<diesel::sqlite::Sqlite>
        + QueryFragment<diesel::pg::Pg>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}

/// The value [`sql_hex`] gives for `name`.
pub(super) fn hex_of(name: &str) -> String {
    hex::encode_upper(name)
}

/// How often a write transaction is retried after a deadlock (MySQL 1213).
/// A retry either succeeds or hits the unique key and reports `OldVersion`.
const DEADLOCK_RETRIES: usize = 3;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Mysql(diesel::MysqlConnection),
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Mysql,
    Sqlite,
    Postgres,
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

/// A pooled connection and what the pool needs to know about it.
pub(crate) struct Pooled {
    conn: AnyConnection,
    /// End of the last job that did not lose the connection.
    last_ok: Instant,
    /// Set when a job found the database unreachable: the pool then drops the connection.
    lost: bool,
}

/// A connection that worked this recently is handed out without a ping: under load the
/// ping is one more round trip per store call. A connection that failed is never reused.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        let conn = match self.backend {
            Backend::Mysql => diesel::MysqlConnection::establish(&self.url)
                .map(AnyConnection::Mysql)
                .map_err(r2d2::Error::ConnectionError)?,
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&self.url)
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(r2d2::Error::QueryError)?;
                AnyConnection::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = diesel::PgConnection::establish(&self.url)
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(r2d2::Error::QueryError)?;
                AnyConnection::Pg(conn)
            }
        };
        Ok(Pooled {
            conn,
            last_ok: Instant::now(),
            lost: false,
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), r2d2::Error> {
        if conn.last_ok.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        conn.conn.ping().map_err(r2d2::Error::QueryError)?;
        conn.last_ok = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.lost || conn.conn.is_broken()
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
    /// Two connections per core, 4..16 (each also gets a database thread, see `Workers`):
    /// enough to overlap round trips with work, while more threads than that only added
    /// memory (malloc arenas, connection buffers) under the publish benchmark. 5 s wait.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let max_size = u32::try_from(cores.saturating_mul(2).clamp(4, 16)).unwrap_or(4);
        PoolOptions {
            max_size,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// [`MetaStore`] on MySQL/MariaDB or SQLite, with an in-process [`MetaCache`] of current
/// metadata (see [`crate::cache`] for what is cached and how fresh it is).
#[derive(Clone)]
pub struct SqlStore {
    pool: Pool<Manager>,
    backend: Backend,
    workers: Arc<Workers>,
    cache: Option<Arc<MetaCache>>,
    cursor: Arc<Mutex<FeedCursor>>,
    /// Whether each update also writes its transparency-log leaves ([`crate::tlog`]).
    tlog: bool,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The manager holds the URL with its password: leave it out.
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .field("cache", &self.cache.as_ref().map(|c| c.stats()))
            .finish()
    }
}

impl SqlStore {
    /// The pool's connections: (open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

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

    /// Opens a pool on a PostgreSQL database (a [`PostgresDsn`] as Go's `db_url` gives it).
    pub fn open_postgres(dsn: &PostgresDsn) -> Result<Self, StoreError> {
        Self::open_postgres_with(dsn, PoolOptions::default())
    }

    /// [`SqlStore::open_postgres`] with explicit pool settings.
    pub fn open_postgres_with(dsn: &PostgresDsn, options: PoolOptions) -> Result<Self, StoreError> {
        Self::open(Backend::Postgres, dsn.conninfo().to_owned(), options)
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
        let workers = Arc::new(Workers::start(
            options.max_size as usize,
            options.connection_timeout,
        )?);
        let store = SqlStore {
            pool,
            backend,
            workers,
            cache: None,
            cursor: Arc::default(),
            tlog: false,
        };
        Ok(store.with_cache(CacheOptions::from_env()))
    }

    /// Replaces the cache with one built from `opts` (none if disabled). With a non-zero
    /// `poll_interval` a background thread follows the changefeed; it ends once the store
    /// and all its clones are dropped.
    pub fn with_cache(mut self, opts: CacheOptions) -> Self {
        self.cursor = Arc::default();
        if !opts.enabled {
            self.cache = None;
            return self;
        }
        let interval = opts.poll_interval;
        // Every query compares names byte for byte, on MySQL too: no case folding.
        let cache = Arc::new(MetaCache::new(opts, false));
        if !interval.is_zero() {
            let weak: WeakCache = Arc::downgrade(&cache);
            let (pool, cursor) = (self.pool.clone(), self.cursor.clone());
            let spawned = std::thread::Builder::new()
                .name("notary-cache-sync".into())
                .spawn(move || follow_changefeed(weak, pool, cursor, interval));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the cache sync thread; cache disabled");
                self.cache = None;
                return self;
            }
        }
        self.cache = Some(cache);
        self
    }

    /// Makes every update also write its transparency-log leaves, in the same transaction.
    pub fn with_transparency_log(mut self, on: bool) -> Self {
        self.tlog = on;
        self
    }

    /// Whether updates write transparency-log leaves.
    pub fn transparency_log(&self) -> bool {
        self.tlog
    }

    /// Reads new changefeed rows now and invalidates their GUNs (what the background
    /// thread does every poll interval). Blocking.
    pub fn sync_cache(&self) -> Result<(), StoreError> {
        match &self.cache {
            Some(cache) => sync_blocking(&self.pool, cache, &self.cursor),
            None => Ok(()),
        }
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
        let result = match &mut conn.conn {
            AnyConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS).map(drop),
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
            AnyConnection::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(drop),
        };
        result.map_err(|e| StoreError::Other(format!("migrations failed: {e}")))
    }

    /// Runs `job` with a pooled connection on one of the store's database threads.
    pub(super) async fn run<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        let timeout = self.workers.timeout;
        let task: Task = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Waiting in the queue counts against the connection timeout, as waiting
                // for a pooled connection did.
                let left = timeout
                    .checked_sub(queued.elapsed())
                    .filter(|d| !d.is_zero());
                let Some(left) = left else {
                    return Err(StoreError::Unavailable(
                        "timed out waiting for a database connection".into(),
                    ));
                };
                let mut conn = pool
                    .get_timeout(left)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let result = job(&mut conn.conn);
                match &result {
                    Err(StoreError::Unavailable(_)) => conn.lost = true,
                    _ => conn.last_ok = Instant::now(),
                }
                result
            }));
            // The caller may have gone away (request cancelled); nothing to do then.
            let _ = tx.send(outcome);
        });
        self.workers.submit(task)?;
        match rx.await {
            Ok(Ok(result)) => result,
            // Surface bugs in the job as the panic they are.
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(StoreError::Other("database thread went away".into())),
        }
    }
}

type Task = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads, one per pooled connection, that run the blocking diesel calls.
///
/// Tokio's blocking pool would start a thread per concurrent call (hundreds under load),
/// each soon with its own malloc arena: that showed as several MiB of extra peak RSS under
/// 16 concurrent publishers. More threads than connections cannot do more work anyway.
struct Workers {
    queue: Mutex<std::sync::mpsc::Sender<Task>>,
    timeout: Duration,
}

impl Workers {
    fn start(threads: usize, timeout: Duration) -> Result<Workers, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("notary-db-{i}"))
                .spawn(move || loop {
                    // Ends when the store (the only sender) is dropped.
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok(task) => task(),
                        Err(_) => return,
                    }
                })
                .map_err(|e| StoreError::Other(format!("cannot start database thread: {e}")))?;
        }
        Ok(Workers {
            queue: Mutex::new(tx),
            timeout,
        })
    }

    fn submit(&self, task: Task) -> Result<(), StoreError> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(task)
            .map_err(|_| StoreError::Other("database threads are gone".into()))
    }
}

/// Runs the same diesel query on whichever backend `conn` is. Going through the concrete
/// connection (rather than the `MultiConnection` enum) lets diesel's prepared-statement
/// cache work: with MySQL that is one round trip per lookup instead of prepare, execute
/// and close.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            AnyConnection::Mysql($c) => $body,
            AnyConnection::Sqlite($c) => $body,
            AnyConnection::Pg($c) => $body,
        }
    };
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
        // PostgreSQL's CHAR(64) pads the empty checksum of a deletion with spaces (Go on
        // PostgreSQL serves those spaces); a checksum never contains any.
        sha256: sha256.map(|s| s.trim_end().to_owned()).unwrap_or_default(),
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
#[diesel(table_name = server_key_owners)]
struct NewKeyOwner<'a> {
    key_id: &'a str,
    gun: &'a str,
    role: &'a str,
    created_at: NaiveDateTime,
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
    const PATTERNS: [&str; 17] = [
        "gone away",
        "lost connection",
        "can't connect",
        "connection refused",
        "connection reset",
        "broken pipe",
        "connection was killed",
        "shutdown in progress",
        // MariaDB Galera 1047 (08S01): this node has left the primary component and refuses
        // queries until it rejoins; another node, or this one later, can serve them.
        "wsrep has not yet prepared node",
        // SQLite: busy_timeout expired under write contention.
        "database is locked",
        // PostgreSQL (libpq): server gone, restarted or unreachable.
        "server closed the connection",
        "terminating connection",
        "no connection to the server",
        "could not connect to server",
        "connection to server at",
        "the database system is shutting down",
        "the database system is starting up",
    ];
    let message = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| message.contains(p))
}

pub(super) fn map_error(e: DieselError) -> StoreError {
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
/// version (MySQL 1062 and PostgreSQL 23505 are mapped by diesel; 1022 only shows in
/// the text).
fn map_write_error(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::OldVersion,
        // The text-protocol path reports errors without a kind: 1062 is
        // "Duplicate entry '..' for key '..'", 1022 "Can't write; duplicate key".
        DieselError::DatabaseError(_, info)
            if {
                let m = info.message().to_ascii_lowercase();
                m.contains("duplicate key") || m.contains("duplicate entry")
            } =>
        {
            StoreError::OldVersion
        }
        _ => map_error(e),
    }
}

/// True if `gun` has a live row of some role at or above the lowest version the batch
/// writes for it (`min_per_role`). One query for all roles, asking only for those rows:
/// through the unique key (gun, role, version) it reads them alone, usually none.
/// (`MAX(version)` per role read every version of the role to check its `deleted_at`,
/// so each publish got slower with the GUN's history.) GUN and role match byte for byte.
fn newer_version_stored(
    conn: &mut AnyConnection,
    gun: &str,
    min_per_role: &std::collections::HashMap<&str, i64>,
) -> Result<bool, StoreError> {
    let mut any_newer: Option<BoolFilter<'_>> = None;
    for (role, min) in min_per_role {
        let one: BoolFilter<'_> = Box::new(
            tuf_files::role
                .eq(*role)
                .and(sql_hex(tuf_files::role).eq(hex_of(role)))
                .and(tuf_files::version.ge(clamp_i32(*min))),
        );
        any_newer = Some(match any_newer {
            None => one,
            Some(any) => Box::new(any.or(one)),
        });
    }
    let Some(any_newer) = any_newer else {
        return Ok(false);
    };
    let found: Vec<i32> = tuf_files::table
        .filter(tuf_files::gun.eq(gun))
        .filter(sql_hex(tuf_files::gun).eq(hex_of(gun)))
        .filter(tuf_files::deleted_at.is_null())
        .filter(any_newer)
        .select(tuf_files::id)
        .limit(1)
        .load(conn)
        .map_err(map_error)?;
    Ok(!found.is_empty())
}

/// Creates `server_key_owners` (our table, with the DDL of its migration). A server started
/// on a Go database without `-migrate`, as Go's own server is started, creates it on first
/// use instead of failing every key request; Go's tables are not touched.
fn create_key_owners(conn: &mut AnyConnection) -> Result<(), StoreError> {
    const MYSQL: &str = include_str!(
        "../../../migrations/server/mysql/2026-12-04-000001_create_server_key_owners/up.sql"
    );
    const SQLITE: &str = include_str!(
        "../../../migrations/server/sqlite/2026-12-04-000001_create_server_key_owners/up.sql"
    );
    const PG: &str = include_str!(
        "../../../migrations/server/postgres/2026-12-04-000001_create_server_key_owners/up.sql"
    );
    run_own_ddl(conn, [MYSQL, SQLITE, PG], "table server_key_owners")
}

/// Runs one of our own migrations' DDL (idempotent: `CREATE TABLE IF NOT EXISTS`, `INSERT
/// IGNORE`) for this backend, so that tables of ours exist on a database the server was
/// started on without `-migrate`, as Go's is. `ddl` is the MySQL, SQLite and PostgreSQL
/// text; `what` names the tables in the error.
pub(super) fn run_own_ddl(
    conn: &mut AnyConnection,
    ddl: [&str; 3],
    what: &str,
) -> Result<(), StoreError> {
    let [mysql, sqlite, pg] = ddl;
    let result = match conn {
        AnyConnection::Mysql(c) => c.batch_execute(mysql),
        AnyConnection::Sqlite(c) => c.batch_execute(sqlite),
        AnyConnection::Pg(c) => c.batch_execute(pg),
    };
    result.map_err(|e| {
        StoreError::Other(format!(
            "cannot create {what} (run notary-server -migrate): {e}"
        ))
    })
}

/// Whether a query failed because its table does not exist (MySQL 1146, SQLite,
/// PostgreSQL 42P01 `relation "..." does not exist`).
fn is_missing_table(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(_, info) => {
            let m = info.message().to_ascii_lowercase();
            m.contains("doesn't exist")
                || m.contains("no such table")
                || (m.contains("relation") && m.contains("does not exist"))
        }
        _ => false,
    }
}

/// MySQL only: whether rows exist (deleted ones too) under a GUN that Go's
/// case-insensitive unique key (gun, role, version) equates with `gun` but that is not
/// byte-equal to it. Writing `gun` would then collide with, or interleave into, that other
/// repository's versions, so the write is refused instead. Two first publishes racing each
/// other both write timestamp version 1 and collide on the unique key: one loses with
/// `OldVersion`, and its retry is refused here.
fn case_variant_stored(conn: &mut AnyConnection, gun: &str) -> Result<bool, StoreError> {
    let AnyConnection::Mysql(c) = conn else {
        // SQLite's keys compare exactly: variants are separate repositories.
        return Ok(false);
    };
    // Asking directly for a row whose bytes differ would read every row of this GUN's
    // history on each publish (they all match `gun = ?` and fail the byte test), the
    // O(history) cost the pre-write version check was rid of. Two LIMIT 1 reads instead:
    // a GUN that has rows of its own is an existing repository (its variants were refused
    // when they tried to start); one without is new, and any row matching it under the
    // collation then belongs to a variant.
    let own: Vec<i32> = tuf_files::table
        .filter(tuf_files::gun.eq(gun))
        .filter(sql_hex(tuf_files::gun).eq(hex_of(gun)))
        .select(tuf_files::id)
        .limit(1)
        .load(c)
        .map_err(map_error)?;
    if !own.is_empty() {
        return Ok(false);
    }
    // The byte test keeps this a variant check even when this GUN's own first rows were
    // committed by a concurrent publish between the two reads (they match the collation but
    // not the bytes test); it reads only those few rows.
    let any: Vec<i32> = tuf_files::table
        .filter(tuf_files::gun.eq(gun))
        .filter(sql_hex(tuf_files::gun).ne(hex_of(gun)))
        .select(tuf_files::id)
        .limit(1)
        .load(c)
        .map_err(map_error)?;
    Ok(!any.is_empty())
}

/// A boolean condition on `tuf_files`, built at run time.
type BoolFilter<'a> = Box<
    dyn BoxableExpression<
            tuf_files::table,
            <AnyConnection as Connection>::Backend,
            SqlType = diesel::sql_types::Bool,
        > + 'a,
>;

/// Clamps a 64-bit id or version into the INT columns' range.
fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

fn update_many_blocking(
    conn: &mut AnyConnection,
    gun: &str,
    updates: Vec<MetaUpdate>,
    tlog: bool,
    audit: Option<&Audit>,
) -> Result<Vec<StoredFile>, StoreError> {
    let min_per_role = check_batch(&updates)?;
    if case_variant_stored(conn, gun)? {
        return Err(StoreError::GunCaseConflict(gun.to_owned()));
    }
    // Step 2 of §11.4 runs outside the transaction: the unique key settles
    // races, and on SQLite a transaction that reads before writing could not
    // wait for the write lock.
    if newer_version_stored(conn, gun, &min_per_role)? {
        return Err(StoreError::OldVersion);
    }
    let now = now_utc();
    let naive = now.naive_utc();
    let hashes: Vec<String> = updates.iter().map(|u| sha256_hex(&u.data)).collect();
    // The expiry inventory of the written roles goes into the same transaction (a second
    // commit per publish halved publish throughput on MariaDB).
    let expiries =
        super::expiry_sql::rows_of(updates.iter().map(|u| (u.role.as_str(), u.data.as_slice())));
    let leaves: Vec<Vec<u8>> = if tlog {
        updates
            .iter()
            .zip(&hashes)
            .map(|(u, sha256)| tlog_sql::leaf_bytes(gun, u, sha256, now))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let batch = match conn {
        AnyConnection::Mysql(mysql) => {
            mysql_batch(gun, &updates, &hashes, &leaves, naive, audit, &expiries)
                .map(|sql| (mysql, sql))
        }
        AnyConnection::Sqlite(_) | AnyConnection::Pg(_) => None,
    };
    if let Some((mysql, sql)) = batch {
        let mut attempt = 0;
        loop {
            match mysql.batch_execute(&sql) {
                Ok(()) => break,
                Err(e) => {
                    // The failed statement leaves the transaction open on this connection.
                    let _ = mysql.batch_execute("ROLLBACK");
                    if is_deadlock(&e) && attempt < DEADLOCK_RETRIES {
                        attempt += 1;
                        continue;
                    }
                    return Err(map_write_error(e));
                }
            }
        }
        return Ok(written(updates, hashes, now));
    }
    let mut attempt = 0;
    loop {
        let result = conn.transaction::<(), DieselError, _>(|conn| {
            for (u, sha256) in updates.iter().zip(&hashes) {
                let version = clamp_i32(u.version);
                diesel::insert_into(tuf_files::table)
                    .values(NewFile {
                        created_at: naive,
                        updated_at: naive,
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
                            created_at: naive,
                            gun,
                            version,
                            sha256,
                            category: CATEGORY_UPDATE,
                        })
                        .execute(conn)?;
                }
            }
            if !leaves.is_empty() {
                tlog_sql::insert_leaves(conn, gun, &updates, &hashes, &leaves, naive)?;
            }
            if let Some(audit) = audit {
                audit_sql::insert_for_files(conn, gun, audit, &updates, &hashes, naive)?;
            }
            super::expiry_sql::upsert_rows(conn, gun, &expiries)?;
            Ok(())
        });
        match result {
            Err(e) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => {
                attempt += 1;
            }
            Err(e) => return Err(map_write_error(e)),
            Ok(()) => break,
        }
    }
    Ok(written(updates, hashes, now))
}

/// What a batch wrote, as a read would return it (for the cache).
fn written(
    updates: Vec<MetaUpdate>,
    hashes: Vec<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<StoredFile> {
    updates
        .into_iter()
        .zip(hashes)
        .map(|(u, sha256)| StoredFile {
            role: u.role,
            version: u.version,
            data: u.data,
            sha256,
            created_at: now,
            updated_at: now,
        })
        .collect()
}

/// Appends the lower-case hex of `bytes` (the file data is most of a batch's text; this
/// avoids an intermediate string per file).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// MySQL 1213 (also without a kind, as the text-protocol path reports it).
fn is_deadlock(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info
            .message()
            .to_ascii_lowercase()
            // MySQL 1213 "Deadlock found", PostgreSQL 40P01 "deadlock detected".
            .contains("deadlock"),
        _ => false,
    }
}

/// Largest batch (file bytes) written as one multi-statement text query; larger ones go
/// through the prepared-statement path (the text form doubles the size, and MariaDB's
/// default `max_allowed_packet` is 16 MiB).
const MAX_TEXT_BATCH: usize = 4 << 20;

/// The whole MySQL write of [`update_many_blocking`] as one multi-statement query
/// (`BEGIN; INSERT ..; INSERT INTO changefeed ..; COMMIT`): three round trips instead of
/// about twenty (diesel prepares, executes and closes each statement, and wraps BEGIN and
/// COMMIT in multi-statement switches). Every string and byte value is written as a hex
/// literal (`X'..'`) and every number is an integer we format, so nothing needs escaping.
/// Same rows, same order, same transaction as the prepared path.
fn mysql_batch(
    gun: &str,
    updates: &[MetaUpdate],
    hashes: &[String],
    leaves: &[Vec<u8>],
    now: NaiveDateTime,
    audit: Option<&Audit>,
    expiries: &[super::expiry_sql::RoleRows],
) -> Option<String> {
    use std::fmt::Write as _;
    let total: usize = updates.iter().map(|u| u.data.len()).sum();
    if total > MAX_TEXT_BATCH {
        return None;
    }
    let at = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let gun_hex = hex::encode(gun);
    let mut sql = String::with_capacity(2 * total + 400 * (updates.len() + 1));
    sql.push_str(
        "BEGIN;INSERT INTO tuf_files (created_at,updated_at,gun,role,version,data,sha256) VALUES ",
    );
    for (i, (u, sha256)) in updates.iter().zip(hashes).enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "('{at}','{at}',X'{gun_hex}',X'{}',{},X'",
            hex::encode(&u.role),
            clamp_i32(u.version),
        );
        push_hex(&mut sql, &u.data);
        let _ = write!(sql, "',X'{}')", hex::encode(sha256));
    }
    sql.push(';');
    for (u, sha256) in updates.iter().zip(hashes) {
        if u.role == TIMESTAMP_ROLE {
            let _ = write!(
                sql,
                "INSERT INTO changefeed (created_at,gun,version,sha256,category) \
                 VALUES ('{at}',X'{gun_hex}',{},X'{}',X'{}');",
                clamp_i32(u.version),
                hex::encode(sha256),
                hex::encode(CATEGORY_UPDATE),
            );
        }
    }
    if !leaves.is_empty() {
        tlog_sql::push_leaf_inserts(&mut sql, gun, updates, hashes, leaves, &at);
    }
    if let Some(audit) = audit {
        audit_sql::push_mysql_inserts(&mut sql, gun, audit, updates, hashes, &at);
    }
    super::expiry_sql::push_mysql_upsert(&mut sql, gun, expiries);
    sql.push_str("COMMIT");
    Some(sql)
}

/// Background loop of the cache: syncs with the changefeed every `interval` until the
/// cache is dropped.
fn follow_changefeed(
    cache: WeakCache,
    pool: Pool<Manager>,
    cursor: Arc<Mutex<FeedCursor>>,
    interval: Duration,
) {
    let mut failing = false;
    loop {
        std::thread::sleep(interval);
        let Some(cache) = cache.upgrade() else { return };
        match sync_blocking(&pool, &cache, &cursor) {
            Ok(()) if failing => {
                tracing::info!("cache sync with the changefeed works again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                // Without a recent sync the cache stops answering by itself; log once.
                if !failing {
                    tracing::warn!(error = %e, "cache sync with the changefeed failed; reads bypass the cache");
                    failing = true;
                }
            }
        }
    }
}

/// Rows read per changefeed query while syncing.
const SYNC_PAGE: i64 = 1000;

/// One sync: invalidates the GUNs of changefeed rows not seen yet, then records the sync's
/// start time, which is what bounds staleness (every commit before it is now seen).
fn sync_blocking(
    pool: &Pool<Manager>,
    cache: &MetaCache,
    cursor: &Mutex<FeedCursor>,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut conn = pool
        .get()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mut cursor = cursor.lock().unwrap_or_else(|e| e.into_inner());
    if !cursor.is_started() {
        let max: Option<i32> = changefeed::table
            .select(diesel::dsl::max(changefeed::id))
            .first(&mut conn.conn)
            .map_err(map_error)?;
        *cursor = FeedCursor::starting_at(max.map_or(0, i64::from));
    }
    loop {
        let q = cursor.query();
        let mut query = changefeed::table
            .select((changefeed::id, changefeed::gun, changefeed::category))
            .order(changefeed::id.asc())
            .limit(SYNC_PAGE)
            .into_boxed();
        let after = clamp_i32(q.after);
        if q.gaps.is_empty() {
            query = query.filter(changefeed::id.gt(after));
        } else {
            let gaps: Vec<i32> = q.gaps.iter().map(|g| clamp_i32(*g)).collect();
            query = query.filter(changefeed::id.gt(after).or(changefeed::id.eq_any(gaps)));
        }
        let rows: Vec<(i32, String, String)> = query.load(&mut conn.conn).map_err(map_error)?;
        let mut ids = Vec::with_capacity(rows.len());
        for (id, gun, category) in &rows {
            let kind = if category == CATEGORY_DELETION {
                Invalidation::Deletion
            } else {
                Invalidation::Update
            };
            cache.invalidate(gun, kind);
            ids.push(i64::from(*id));
        }
        if !cursor.advance(&ids, Instant::now()) {
            tracing::debug!("changefeed gap given up on; clearing the cache");
            cache.clear();
        }
        if (rows.len() as i64) < SYNC_PAGE {
            break;
        }
    }
    cache.mark_synced(started);
    Ok(())
}

impl SqlStore {
    /// `update_many`, plus the audit rows of `audit` in the same transaction.
    async fn update_many_audited(
        &self,
        gun: &str,
        updates: Vec<MetaUpdate>,
        audit: Option<Audit>,
    ) -> Result<(), StoreError> {
        // Reject bad batches before taking a connection.
        check_batch(&updates)?;
        if updates.is_empty() {
            return Ok(());
        }
        let ticket = self.cache.as_deref().map(MetaCache::ticket);
        let g = gun.to_owned();
        let tlog = self.tlog;
        let result = self
            .run(move |conn| update_many_blocking(conn, &g, updates, tlog, audit.as_ref()))
            .await;
        if let (Some(cache), Some(ticket)) = (self.cache.as_deref(), ticket) {
            match &result {
                // Before returning, so the writer's next read sees its own write.
                Ok(written) => cache.after_write(gun, ticket, written),
                // Someone else wrote (or we do not know): forget what we had.
                Err(_) => cache.invalidate(gun, Invalidation::Update),
            }
        }
        result.map(drop)
    }

    /// `record_key`, plus an audit row naming the key, in one transaction.
    async fn record_key_audited(
        &self,
        gun: &str,
        role: &str,
        key_id: &str,
        audit: Option<Audit>,
    ) -> Result<(), StoreError> {
        let (g, r, k) = (gun.to_owned(), role.to_owned(), key_id.to_owned());
        self.run(move |conn| {
            let row = NewKeyOwner {
                key_id: &k,
                gun: &g,
                role: &r,
                created_at: now_utc().naive_utc(),
            };
            // A key keeps its first record (the signer may hand out the same pending key
            // again for the same GUN and role).
            let insert = |conn: &mut AnyConnection| match conn {
                AnyConnection::Pg(c) => diesel::insert_into(server_key_owners::table)
                    .values(&row)
                    .on_conflict_do_nothing()
                    .execute(c),
                AnyConnection::Mysql(c) => diesel::insert_or_ignore_into(server_key_owners::table)
                    .values(&row)
                    .execute(c),
                AnyConnection::Sqlite(c) => diesel::insert_or_ignore_into(server_key_owners::table)
                    .values(&row)
                    .execute(c),
            };
            // Only a new record is a change worth an audit row (a pending key handed out
            // again is not).
            let write = |conn: &mut AnyConnection| {
                conn.transaction::<(), DieselError, _>(|conn| {
                    let inserted = insert(conn)?;
                    if let (1.., Some(audit)) = (inserted, &audit) {
                        let audit = audit
                            .clone()
                            .with_detail(serde_json::json!({ "key_id": k }));
                        audit_sql::insert_one(conn, &g, Some(&r), &audit, row.created_at)?;
                    }
                    Ok(())
                })
            };
            match write(conn) {
                Err(e) if is_missing_table(&e) => {
                    create_key_owners(conn)?;
                    write(conn).map_err(map_error)
                }
                other => other.map_err(map_error),
            }
        })
        .await
    }

    /// `delete`, plus an audit row (with the number of rows removed) in the same
    /// transaction.
    async fn delete_audited(&self, gun: &str, audit: Option<Audit>) -> Result<u64, StoreError> {
        let g = gun.to_owned();
        let result = self
            .run(move |conn| {
                conn.transaction::<u64, DieselError, _>(|conn| {
                    // Exactly this GUN: not one that differs only in letter case.
                    let removed = diesel::delete(
                        tuf_files::table
                            .filter(tuf_files::gun.eq(&g))
                            .filter(sql_hex(tuf_files::gun).eq(hex_of(&g))),
                    )
                    .execute(conn)?;
                    let at = now_utc().naive_utc();
                    if removed > 0 {
                        diesel::insert_into(changefeed::table)
                            .values(NewChange {
                                created_at: at,
                                gun: &g,
                                version: 0,
                                sha256: "",
                                category: CATEGORY_DELETION,
                            })
                            .execute(conn)?;
                    }
                    if let Some(audit) = &audit {
                        let audit = audit.clone().with_detail(serde_json::json!({
                            "rows_removed": removed,
                        }));
                        audit_sql::insert_one(conn, &g, None, &audit, at)?;
                    }
                    Ok(removed as u64)
                })
                .map_err(map_error)
            })
            .await;
        if let Some(cache) = self.cache.as_deref() {
            cache.invalidate(gun, Invalidation::Deletion);
        }
        result
    }
}

#[async_trait::async_trait]
impl MetaStore for SqlStore {
    async fn get_latest(&self, gun: &str, role: &str) -> Result<Option<StoredFile>, StoreError> {
        // Only the latest timestamp is cached: it is the one every client read starts from.
        let cache = self.cache.as_deref().filter(|_| role == TIMESTAMP_ROLE);
        if let Some(hit) = cache.and_then(|c| c.latest_timestamp(gun)) {
            return Ok(Some((*hit).clone()));
        }
        let ticket = cache.map(MetaCache::ticket);
        let (g, r) = (gun.to_owned(), role.to_owned());
        let (gh, rh) = (hex_of(gun), hex_of(role));
        let found = self
            .run(move |conn| {
                // `gun = ?` lets MySQL use the (gun, role, version) key; the hex
                // comparison then drops rows that only match case-insensitively.
                on_backend!(conn, |c| tuf_files::table
                    .filter(tuf_files::gun.eq(&g))
                    .filter(tuf_files::role.eq(&r))
                    .filter(sql_hex(tuf_files::gun).eq(&gh))
                    .filter(sql_hex(tuf_files::role).eq(&rh))
                    .filter(tuf_files::deleted_at.is_null())
                    .order(tuf_files::version.desc())
                    .select(FILE_COLUMNS)
                    .first::<FileRow>(c)
                    .optional())
                .map(|row| row.map(file_from_row))
                .map_err(map_error)
            })
            .await?;
        if let (Some(cache), Some(ticket), Some(file)) = (cache, ticket, &found) {
            cache.put_latest_timestamp(gun, ticket, file);
        }
        Ok(found)
    }

    async fn get_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        let cache = self.cache.as_deref();
        if let Some(hit) = cache.and_then(|c| c.by_checksum(gun, role, sha256_hex)) {
            return Ok(Some((*hit).clone()));
        }
        let ticket = cache.map(MetaCache::ticket);
        let (g, r, sha256) = (gun.to_owned(), role.to_owned(), sha256_hex.to_owned());
        let (gh, rh) = (hex_of(gun), hex_of(role));
        let found = self
            .run(move |conn| {
                on_backend!(conn, |c| tuf_files::table
                    .filter(tuf_files::gun.eq(&g))
                    .filter(tuf_files::role.eq(&r))
                    .filter(sql_hex(tuf_files::gun).eq(&gh))
                    .filter(sql_hex(tuf_files::role).eq(&rh))
                    .filter(tuf_files::sha256.eq(&sha256))
                    .filter(tuf_files::deleted_at.is_null())
                    .order(tuf_files::version.desc())
                    .select(FILE_COLUMNS)
                    .first::<FileRow>(c)
                    .optional())
                .map(|row| row.map(file_from_row))
                .map_err(map_error)
            })
            .await?;
        if let (Some(cache), Some(ticket), Some(file)) = (cache, ticket, &found) {
            // Keyed by the names asked for, which the database matched to this row.
            if file.sha256.eq_ignore_ascii_case(sha256_hex) && file.role.eq_ignore_ascii_case(role)
            {
                cache.put_file(gun, ticket, file);
            }
        }
        Ok(found)
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
        let cache = self.cache.as_deref();
        if let Some(hit) = cache.and_then(|c| c.by_version(gun, role, i64::from(version))) {
            return Ok(Some((*hit).clone()));
        }
        let ticket = cache.map(MetaCache::ticket);
        let (g, r) = (gun.to_owned(), role.to_owned());
        let (gh, rh) = (hex_of(gun), hex_of(role));
        let found = self
            .run(move |conn| {
                on_backend!(conn, |c| tuf_files::table
                    .filter(tuf_files::gun.eq(&g))
                    .filter(tuf_files::role.eq(&r))
                    .filter(sql_hex(tuf_files::gun).eq(&gh))
                    .filter(sql_hex(tuf_files::role).eq(&rh))
                    .filter(tuf_files::version.eq(version))
                    .filter(tuf_files::deleted_at.is_null())
                    .select(FILE_COLUMNS)
                    .first::<FileRow>(c)
                    .optional())
                .map(|row| row.map(file_from_row))
                .map_err(map_error)
            })
            .await?;
        if let (Some(cache), Some(ticket), Some(file)) = (cache, ticket, &found) {
            if file.role.eq_ignore_ascii_case(role) {
                cache.put_file(gun, ticket, file);
            }
        }
        Ok(found)
    }

    async fn update_many(&self, gun: &str, updates: Vec<MetaUpdate>) -> Result<(), StoreError> {
        self.update_many_audited(gun, updates, None).await
    }

    async fn update_many_as(
        &self,
        gun: &str,
        updates: Vec<MetaUpdate>,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.update_many_audited(gun, updates, Some(audit.clone()))
            .await
    }

    async fn delete(&self, gun: &str) -> Result<u64, StoreError> {
        self.delete_audited(gun, None).await
    }

    async fn delete_as(&self, gun: &str, audit: &Audit) -> Result<u64, StoreError> {
        self.delete_audited(gun, Some(audit.clone())).await
    }

    fn cache(&self) -> Option<&MetaCache> {
        self.cache.as_deref()
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
                let exact = hex_of(&gun);
                query = query
                    .filter(changefeed::gun.eq(gun))
                    .filter(sql_hex(changefeed::gun).eq(exact));
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

    async fn record_key(&self, gun: &str, role: &str, key_id: &str) -> Result<(), StoreError> {
        self.record_key_audited(gun, role, key_id, None).await
    }

    async fn record_key_as(
        &self,
        gun: &str,
        role: &str,
        key_id: &str,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.record_key_audited(gun, role, key_id, Some(audit.clone()))
            .await
    }

    async fn key_owner(&self, key_id: &str) -> Result<Option<(String, String)>, StoreError> {
        let k = key_id.to_owned();
        self.run(move |conn| {
            let found = on_backend!(conn, |c| server_key_owners::table
                .filter(server_key_owners::key_id.eq(&k))
                .select((server_key_owners::gun, server_key_owners::role))
                .first::<(String, String)>(c)
                .optional());
            match found {
                // Nothing recorded yet on a database our migrations never ran on.
                Err(e) if is_missing_table(&e) => Ok(None),
                other => other.map_err(map_error),
            }
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
