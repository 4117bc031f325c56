//! SQL key store on MySQL/MariaDB or PostgreSQL (the Go signer's `private_keys` table), or
//! SQLite.
//!
//! diesel is synchronous; every operation runs on tokio's blocking pool and checks a
//! connection out of an r2d2 pool there (checking out can block too). CPU-heavy work
//! (key generation, PBKDF2) happens in the same blocking closure.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveDateTime, Timelike};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sql_query;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use notary_common::dsn::{MysqlDsn, PostgresDsn};
use notary_tuf::keys::{KeyType, PrivateKey, PublicKey};

use super::jwe::{ENCRYPTION_ALG, KEYWRAP_ALG};
use super::{open, seal, KeyStore, KeyStoreError, Passphrases, StoredKey};

/// MySQL migrations; the end state equals Go's schema.
pub const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/signer/mysql");
/// SQLite migrations.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/signer/sqlite");
/// PostgreSQL migrations; the end state equals Go's `migrations/signer/postgresql`.
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/signer/postgres");

diesel::table! {
    /// Go's `private_keys` table (spec signer-and-tuf §3.1).
    private_keys (id) {
        id -> Integer,
        created_at -> Nullable<Timestamp>,
        updated_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        key_id -> Text,
        encryption_alg -> Text,
        keywrap_alg -> Text,
        algorithm -> Text,
        passphrase_alias -> Text,
        public -> Binary,
        private -> Binary,
        gun -> Text,
        role -> Text,
        last_used -> Nullable<Timestamp>,
    }
}

/// A connection to either backend; queries are written once for both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// MySQL / MariaDB.
    Mysql(diesel::MysqlConnection),
    /// SQLite.
    Sqlite(diesel::SqliteConnection),
    /// PostgreSQL.
    Pg(diesel::PgConnection),
}

/// Which database to use.
#[derive(Debug, Clone)]
pub enum Backend {
    /// MySQL / MariaDB.
    Mysql(MysqlDsn),
    /// A SQLite file.
    Sqlite(PathBuf),
    /// PostgreSQL (Go's lib/pq `db_url`).
    Postgres(PostgresDsn),
}

impl Backend {
    /// `mysql` or `sqlite3` (the config names).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Mysql(_) => "mysql",
            Backend::Sqlite(_) => "sqlite3",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Where the database is, without credentials.
    pub fn target(&self) -> String {
        match self {
            Backend::Mysql(dsn) => dsn.redacted(),
            Backend::Sqlite(path) => path.display().to_string(),
            Backend::Postgres(dsn) => dsn.redacted().to_owned(),
        }
    }

    /// Opens one connection and prepares the session.
    pub fn connect(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match self {
            Backend::Mysql(dsn) => {
                let mut conn = diesel::MysqlConnection::establish(&dsn.to_diesel_url())?;
                // TIMESTAMP columns convert through the session zone; pin it so that what we
                // write and read is UTC whatever the server's default.
                sql_query("SET time_zone = '+00:00'")
                    .execute(&mut conn)
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Mysql(conn))
            }
            Backend::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::ConnectionError::InvalidConnectionUrl(
                        "SQLite path is not valid UTF-8".into(),
                    )
                })?;
                let mut conn = diesel::SqliteConnection::establish(path)?;
                // Several pooled connections share the file: wait for locks instead of failing.
                conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
            Backend::Postgres(dsn) => {
                let mut conn = diesel::PgConnection::establish(dsn.conninfo())?;
                // `timestamp` columns take what is written as is; keep it UTC, like MySQL's.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Pg(conn))
            }
        }
    }

    /// Runs the pending migrations of this backend on `conn`; returns their names.
    pub fn run_migrations(&self, conn: &mut DbConnection) -> Result<Vec<String>, KeyStoreError> {
        let applied = match conn {
            DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
            DbConnection::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS),
        }
        .map_err(|e| KeyStoreError::Database(format!("migration failed: {e}")))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    }

    fn connect_error(&self, e: impl std::fmt::Display) -> KeyStoreError {
        KeyStoreError::Database(format!(
            "cannot connect to {} database {}: {e}",
            self.name(),
            self.target()
        ))
    }
}

/// r2d2 manager that knows which backend to open (the derived `establish` would guess from
/// the URL and, on a MySQL failure, try SQLite with the same string).
#[derive(Debug)]
pub(crate) struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.backend
            .connect()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// What is stored about a key, without the private material. Deleted keys included.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = private_keys)]
pub struct KeyRecord {
    /// Row ID.
    pub id: i32,
    /// Insert time (UTC).
    pub created_at: Option<NaiveDateTime>,
    /// Last update time (UTC).
    pub updated_at: Option<NaiveDateTime>,
    /// Soft-delete time (UTC).
    pub deleted_at: Option<NaiveDateTime>,
    /// TUF key ID.
    pub key_id: String,
    /// Always `A256GCM`.
    pub encryption_alg: String,
    /// Always `PBES2-HS256+A128KW`.
    pub keywrap_alg: String,
    /// Key type.
    pub algorithm: String,
    /// Alias whose passphrase encrypted the key.
    pub passphrase_alias: String,
    /// GUN given at creation.
    pub gun: String,
    /// Role given at creation.
    pub role: String,
    /// Last signing time (UTC); `None` while the key is pending.
    pub last_used: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = private_keys)]
struct NewKeyRow<'a> {
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    key_id: &'a str,
    encryption_alg: &'a str,
    keywrap_alg: &'a str,
    algorithm: &'a str,
    passphrase_alias: &'a str,
    public: &'a [u8],
    private: &'a [u8],
    gun: &'a str,
    role: &'a str,
}

/// Current UTC time at second precision (what MySQL TIMESTAMP keeps).
fn now() -> NaiveDateTime {
    let t = chrono::Utc::now().naive_utc();
    t.with_nanosecond(0).unwrap_or(t)
}

fn db_err(e: diesel::result::Error) -> KeyStoreError {
    KeyStoreError::Database(e.to_string())
}

/// The SQL [`KeyStore`].
pub struct SqlKeyStore {
    pool: Pool<Manager>,
    backend: Backend,
    default_alias: String,
    passphrases: Passphrases,
    // Serialises this process's CreateKey calls so that concurrent requests for the same
    // (gun, role) get the same pending key instead of each generating one.
    create_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SqlKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlKeyStore")
            .field("backend", &self.backend.name())
            .field("target", &self.backend.target())
            .field("default_alias", &self.default_alias)
            .finish()
    }
}

impl SqlKeyStore {
    /// Connects (failing fast with an error naming the backend and the host), optionally
    /// runs the migrations, and builds the pool. Blocking: call it before serving or from
    /// `spawn_blocking`.
    pub fn open(
        backend: Backend,
        default_alias: &str,
        passphrases: Passphrases,
        migrate: bool,
    ) -> Result<Self, KeyStoreError> {
        let mut first = backend.connect().map_err(|e| backend.connect_error(e))?;
        if migrate {
            let applied = backend.run_migrations(&mut first)?;
            for name in applied {
                tracing::info!(migration = %name, backend = backend.name(), "applied migration");
            }
        }
        drop(first);
        let pool = Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build_unchecked(Manager {
                backend: backend.clone(),
            });
        Ok(Self {
            pool,
            backend,
            default_alias: default_alias.to_string(),
            passphrases,
            create_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs the pending migrations on `backend`; returns the names applied. Blocking.
    pub fn migrate(backend: &Backend) -> Result<Vec<String>, KeyStoreError> {
        let mut conn = backend.connect().map_err(|e| backend.connect_error(e))?;
        backend.run_migrations(&mut conn)
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The row for a key ID, deleted or not, without private material (inspection, tests).
    pub async fn key_record(&self, key_id: &str) -> Result<Option<KeyRecord>, KeyStoreError> {
        let key_id = key_id.to_string();
        self.with_conn(move |conn| {
            private_keys::table
                .filter(private_keys::key_id.eq(&key_id))
                .select(KeyRecord::as_select())
                .first(conn)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub(crate) async fn with_conn<T, F>(&self, f: F) -> Result<T, KeyStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, KeyStoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn: PooledConnection<Manager> =
                pool.get().map_err(|e| backend.connect_error(e))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| KeyStoreError::Database(format!("database task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl KeyStore for SqlKeyStore {
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, KeyStoreError> {
        let _serialised = self.create_lock.lock().await;
        let (gun, role, key_type) = (gun.to_string(), role.to_string(), key_type.clone());
        let alias = self.default_alias.clone();
        let passphrases = self.passphrases.clone();
        self.with_conn(move |conn| {
            use private_keys::dsl as k;
            let pending: Option<(String, Vec<u8>)> = k::private_keys
                .select((k::algorithm, k::public))
                .filter(k::deleted_at.is_null())
                .filter(k::gun.eq(&gun))
                .filter(k::role.eq(&role))
                .filter(k::algorithm.eq(key_type.as_str()))
                .filter(k::last_used.is_null())
                .order((k::key_id.asc(), k::id.asc()))
                .first(conn)
                .optional()
                .map_err(db_err)?;
            if let Some((algorithm, public)) = pending {
                return Ok(PublicKey::new(KeyType::parse(&algorithm), public));
            }
            let private = PrivateKey::generate(&key_type).map_err(|e| match e {
                notary_tuf::keys::KeyError::UnsupportedKeyType(t) => {
                    KeyStoreError::UnsupportedKeyType(t)
                }
                other => KeyStoreError::Crypto(other.to_string()),
            })?;
            let public = private.public_key();
            let key_id = public.key_id();
            let sealed = seal(&private, &alias, &passphrases)?;
            let at = now();
            diesel::insert_into(k::private_keys)
                .values(NewKeyRow {
                    created_at: at,
                    updated_at: at,
                    key_id: &key_id,
                    encryption_alg: ENCRYPTION_ALG,
                    keywrap_alg: KEYWRAP_ALG,
                    algorithm: key_type.as_str(),
                    passphrase_alias: &alias,
                    public: &public.public,
                    private: sealed.as_bytes(),
                    gun: &gun,
                    role: &role,
                })
                .execute(conn)
                .map_err(db_err)?;
            Ok(public)
        })
        .await
    }

    async fn get_key(&self, key_id: &str) -> Result<StoredKey, KeyStoreError> {
        let key_id = key_id.to_string();
        let passphrases = self.passphrases.clone();
        self.with_conn(move |conn| {
            use private_keys::dsl as k;
            let row: Option<(String, String, Vec<u8>, String, String)> = k::private_keys
                .select((
                    k::algorithm,
                    k::passphrase_alias,
                    k::private,
                    k::gun,
                    k::role,
                ))
                .filter(k::key_id.eq(&key_id))
                .filter(k::deleted_at.is_null())
                .first(conn)
                .optional()
                .map_err(db_err)?;
            let (algorithm, alias, private, gun, role) =
                row.ok_or_else(|| KeyStoreError::NotFound(key_id.clone()))?;
            let private = open(&key_id, &algorithm, &alias, &private, &passphrases)?;
            Ok(StoredKey::software(private, role, gun))
        })
        .await
    }

    async fn mark_active(&self, key_id: &str) -> Result<(), KeyStoreError> {
        let key_id = key_id.to_string();
        self.with_conn(move |conn| {
            use private_keys::dsl as k;
            let at = now();
            diesel::update(
                k::private_keys
                    .filter(k::key_id.eq(&key_id))
                    .filter(k::deleted_at.is_null()),
            )
            .set((k::last_used.eq(at), k::updated_at.eq(at)))
            .execute(conn)
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), KeyStoreError> {
        let key_id = key_id.to_string();
        self.with_conn(move |conn| {
            use private_keys::dsl as k;
            diesel::update(
                k::private_keys
                    .filter(k::key_id.eq(&key_id))
                    .filter(k::deleted_at.is_null()),
            )
            .set(k::deleted_at.eq(now()))
            .execute(conn)
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn reencrypt_alias(&self, from: &str, to: &str) -> Result<usize, KeyStoreError> {
        let (from, to) = (from.to_string(), to.to_string());
        let passphrases = self.passphrases.clone();
        // Fail before touching anything if the new passphrase is missing.
        passphrases.get(&to)?;
        if from == to {
            return Ok(0);
        }
        self.with_conn(move |conn| {
            use private_keys::dsl as k;
            let rows: Vec<(i32, String, String, Vec<u8>)> = k::private_keys
                .select((k::id, k::key_id, k::algorithm, k::private))
                .filter(k::passphrase_alias.eq(&from))
                .order(k::id.asc())
                .load(conn)
                .map_err(db_err)?;
            let mut done = 0;
            for (id, key_id, algorithm, private) in rows {
                let key = open(&key_id, &algorithm, &from, &private, &passphrases)?;
                let sealed = seal(&key, &to, &passphrases)?;
                // The alias condition makes a concurrent rotation of the same row harmless.
                done += diesel::update(
                    k::private_keys
                        .filter(k::id.eq(id))
                        .filter(k::passphrase_alias.eq(&from)),
                )
                .set((
                    k::private.eq(sealed.as_bytes()),
                    k::passphrase_alias.eq(&to),
                    k::updated_at.eq(now()),
                ))
                .execute(conn)
                .map_err(db_err)?;
                tracing::info!(key_id, from = %from, to = %to, "re-encrypted key");
            }
            Ok(done)
        })
        .await
    }

    async fn check_health(&self) -> Result<(), KeyStoreError> {
        self.with_conn(|conn| {
            sql_query("SELECT 1").execute(conn).map_err(db_err)?;
            Ok(())
        })
        .await
    }
}
