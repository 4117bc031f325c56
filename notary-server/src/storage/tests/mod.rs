//! Storage tests: one conformance suite run against every backend, plus
//! backend-specific tests (schema adoption, outages).
//!
//! MySQL tests need `NOTARY_TEST_MYSQL_URL` (server URL without a database,
//! e.g. `mysql://notary_test:notary_test_pw@127.0.0.1:3306`); each creates a
//! database named `notary_srv_test_<random>` and drops it when done. Without
//! the variable they print a skip message and return.
//!
//! PostgreSQL tests likewise need `NOTARY_TEST_POSTGRES_URL` (server URL without a database,
//! e.g. `postgres://notary_test:notary_test_pw@127.0.0.1:5433?sslmode=disable`), and create
//! `notary_srv_test_<random>` databases. `NOTARY_TEST_REQUIRE_POSTGRES=1` (set by
//! `scripts/test.sh`) turns a missing variable into a failure instead of a skip.

mod admin;
mod cache;
mod conformance;
mod console;
mod expiry;
mod fixtures;
mod mysql;
mod postgres;
mod proxy;
mod sqlite;
mod tlog;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::{Connection, MysqlConnection, PgConnection};
use notary_common::dsn::PostgresDsn;

use super::{MemoryStore, MetaStore, PoolOptions, SqlStore};

/// Name of the variable holding the MySQL server URL for tests.
const MYSQL_URL_VAR: &str = "NOTARY_TEST_MYSQL_URL";

/// A random value without pulling in a RNG crate: std's hasher keys are
/// randomly seeded per `RandomState`.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// A SQLite store in a temporary directory, migrated.
pub(super) struct SqliteDb {
    store: Arc<SqlStore>,
    _dir: tempfile::TempDir,
}

impl SqliteDb {
    pub(super) fn new() -> Self {
        Self::with_options(PoolOptions::default())
    }

    pub(super) fn with_options(options: PoolOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqlStore::open_sqlite_with(&dir.path().join("server.db"), options)
            .expect("open sqlite");
        store.run_migrations().expect("sqlite migrations");
        SqliteDb {
            store: Arc::new(store),
            _dir: dir,
        }
    }

    pub(super) fn store(&self) -> Arc<dyn MetaStore> {
        self.store.clone()
    }
}

/// A randomly named MySQL database, dropped on `Drop`.
pub(super) struct MysqlDb {
    server_url: String,
    name: String,
    store: Option<Arc<SqlStore>>,
}

impl MysqlDb {
    /// The server URL from the environment with any database path removed;
    /// `None` (after printing why) when MySQL tests are not configured.
    pub(super) fn server_url() -> Option<String> {
        let Ok(url) = std::env::var(MYSQL_URL_VAR) else {
            eprintln!("skipping MySQL test: {MYSQL_URL_VAR} is not set");
            return None;
        };
        let rest = url
            .strip_prefix("mysql://")
            .unwrap_or_else(|| panic!("{MYSQL_URL_VAR} must start with mysql://"));
        let authority = rest.split('/').next().unwrap_or_default();
        Some(format!("mysql://{authority}"))
    }

    /// An empty database (no tables); `None` when MySQL is not configured.
    pub(super) fn create_empty() -> Option<Self> {
        let server_url = Self::server_url()?;
        let name = format!("notary_srv_test_{:016x}", random_u64());
        let mut admin = MysqlConnection::establish(&server_url).expect("connect to MySQL");
        admin
            .batch_execute(&format!("CREATE DATABASE `{name}`"))
            .expect("create test database");
        Some(MysqlDb {
            server_url,
            name,
            store: None,
        })
    }

    /// A database migrated by [`SqlStore::run_migrations`], with a store on it.
    pub(super) fn create() -> Option<Self> {
        let mut db = Self::create_empty()?;
        let store = SqlStore::open_mysql(&db.url()).expect("open mysql");
        store.run_migrations().expect("mysql migrations");
        db.store = Some(Arc::new(store));
        Some(db)
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn server_url_str(&self) -> &str {
        &self.server_url
    }

    /// URL of this database.
    pub(super) fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }

    /// A direct connection to this database, for setup and inspection.
    pub(super) fn connect(&self) -> MysqlConnection {
        MysqlConnection::establish(&self.url()).expect("connect to test database")
    }

    pub(super) fn store(&self) -> Arc<dyn MetaStore> {
        self.store
            .clone()
            .expect("database was created with a store")
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        // Close our pool before dropping the database under it.
        self.store.take();
        match MysqlConnection::establish(&self.server_url) {
            Ok(mut admin) => {
                if let Err(e) =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS `{}`", self.name))
                {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }
}

/// Name of the variable holding the PostgreSQL server URL for tests.
const POSTGRES_URL_VAR: &str = "NOTARY_TEST_POSTGRES_URL";

/// A randomly named PostgreSQL database, dropped on `Drop`.
pub(super) struct PgDb {
    /// `postgres://user:pw@host:port` without path or query.
    base: String,
    /// The query string (`sslmode=...`), possibly empty.
    query: String,
    name: String,
    store: Option<Arc<SqlStore>>,
}

impl PgDb {
    /// `(base, query)` of the server URL; `None` (after printing why) when PostgreSQL tests
    /// are not configured. Panics instead when `NOTARY_TEST_REQUIRE_POSTGRES=1`.
    fn server() -> Option<(String, String)> {
        let Ok(url) = std::env::var(POSTGRES_URL_VAR) else {
            if std::env::var("NOTARY_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("{POSTGRES_URL_VAR} is not set but NOTARY_TEST_REQUIRE_POSTGRES=1");
            }
            eprintln!("skipping PostgreSQL test: {POSTGRES_URL_VAR} is not set");
            return None;
        };
        let (head, query) = url.split_once('?').unwrap_or((&url, ""));
        let rest = head
            .strip_prefix("postgres://")
            .unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} must start with postgres://"));
        let authority = rest.split('/').next().unwrap_or_default();
        Some((format!("postgres://{authority}"), query.to_owned()))
    }

    fn url_of(base: &str, db: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{base}/{db}")
        } else {
            format!("{base}/{db}?{query}")
        }
    }

    /// An empty database (no tables); `None` when PostgreSQL is not configured.
    pub(super) fn create_empty() -> Option<Self> {
        let (base, query) = Self::server()?;
        let name = format!("notary_srv_test_{:016x}", random_u64());
        let mut admin = PgConnection::establish(&Self::url_of(&base, "postgres", &query))
            .expect("connect to PostgreSQL");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        Some(PgDb {
            base,
            query,
            name,
            store: None,
        })
    }

    /// A database migrated by [`SqlStore::run_migrations`], with a store on it.
    pub(super) fn create() -> Option<Self> {
        let mut db = Self::create_empty()?;
        let store = SqlStore::open_postgres(&db.dsn()).expect("open postgres");
        store.run_migrations().expect("postgres migrations");
        db.store = Some(Arc::new(store));
        Some(db)
    }

    /// URL of this database, as a config's `db_url` would give it.
    pub(super) fn url(&self) -> String {
        Self::url_of(&self.base, &self.name, &self.query)
    }

    pub(super) fn dsn(&self) -> PostgresDsn {
        PostgresDsn::parse("NOTARY_TEST_POSTGRES_URL", &self.url()).expect("test URL parses")
    }

    /// `self.url()` with other query parameters (e.g. TLS settings).
    pub(super) fn url_with_query(&self, query: &str) -> String {
        Self::url_of(&self.base, &self.name, query)
    }

    /// A direct connection to this database, for setup and inspection.
    pub(super) fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url()).expect("connect to test database")
    }

    pub(super) fn store(&self) -> Arc<dyn MetaStore> {
        self.store
            .clone()
            .expect("database was created with a store")
    }

    pub(super) fn sql_store(&self) -> Arc<SqlStore> {
        self.store
            .clone()
            .expect("database was created with a store")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        self.store.take();
        match PgConnection::establish(&Self::url_of(&self.base, "postgres", &self.query)) {
            Ok(mut admin) => {
                // FORCE: a pool's idle connections may still be closing.
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                if let Err(e) = admin.batch_execute(&sql) {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }
}

/// Runs each named body of `conformance` against memory, SQLite, MySQL and PostgreSQL.
macro_rules! conformance_suite {
    ($($name:ident),* $(,)?) => {
        mod memory_conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    conformance::$name(Arc::new(MemoryStore::new())).await;
                }
            )*
        }
        mod sqlite_conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = SqliteDb::new();
                    conformance::$name(db.store()).await;
                }
            )*
        }
        mod mysql_conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = MysqlDb::create() else { return };
                    conformance::$name(db.store()).await;
                }
            )*
        }
        mod postgres_conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = PgDb::create() else { return };
                    conformance::$name(db.store()).await;
                }
            )*
        }
    };
}

conformance_suite!(
    get_put_round_trip,
    lookups_miss_cleanly,
    old_versions_are_rejected,
    failing_batch_writes_nothing,
    timestamp_writes_feed_the_changefeed,
    changefeed_paging,
    changefeed_gun_filter,
    delete_removes_exactly_the_gun,
    current_follows_the_timestamp_chain,
    current_with_a_broken_chain,
    concurrent_updates_one_wins,
    many_concurrent_requests,
    health_check_passes,
    key_records_are_exact_and_first_wins,
    gun_and_role_match_exactly,
);
