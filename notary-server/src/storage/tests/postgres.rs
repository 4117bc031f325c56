//! PostgreSQL-only checks: adoption of a Go-created database, schema identity with Go's
//! `migrations/server/postgresql`, TLS to the database, outages.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Bool, Text};
use diesel::{sql_query, PgConnection, QueryableByName, RunQueryDsl};
use notary_common::dsn::PostgresDsn;

use super::fixtures::{update, Repo};
use super::proxy::Proxy;
use super::PgDb;
use crate::storage::{
    get_current, sha256_hex, MetaStore, PoolOptions, SqlStore, StoreError, CATEGORY_UPDATE,
};

/// Go notary's server schema for PostgreSQL: its migrations 0001 and 0002 as Go's
/// `migrate` tool runs them, the changefeed backfill included.
const GO_SERVER_DDL: &str = r#"
CREATE TABLE "tuf_files" (
  "id" serial PRIMARY KEY,
  "created_at" timestamp NULL DEFAULT NULL,
  "updated_at" timestamp NULL DEFAULT NULL,
  "deleted_at" timestamp NULL DEFAULT NULL,
  "gun" varchar(255) NOT NULL,
  "role" varchar(255) NOT NULL,
  "version" integer NOT NULL,
  "data" bytea NOT NULL,
  "sha256" char(64) DEFAULT NULL,
  UNIQUE ("gun","role","version")
);
CREATE INDEX tuf_files_sha256_idx ON tuf_files(sha256);
CREATE TABLE "change_category" (
    "category" VARCHAR(20) PRIMARY KEY
);
INSERT INTO "change_category" VALUES ('update'), ('deletion');
CREATE TABLE "changefeed" (
    "id" serial PRIMARY KEY,
    "created_at" timestamp DEFAULT CURRENT_TIMESTAMP,
    "gun" varchar(255) NOT NULL,
    "version" integer NOT NULL,
    "sha256" CHAR(64) DEFAULT NULL,
    "category" VARCHAR(20) NOT NULL DEFAULT 'update' REFERENCES "change_category"
);
CREATE INDEX "idx_changefeed_gun" ON "changefeed" ("gun");
"#;

const GO_TABLES: &str = "'tuf_files', 'change_category', 'changefeed'";

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    row: String,
}

/// Columns (type, length, nullability, default), indexes and constraints of Go's tables.
fn schema(conn: &mut PgConnection) -> Vec<Row> {
    sql_query(format!(
        "SELECT concat_ws('|', 'col', table_name, column_name, data_type, \
                coalesce(character_maximum_length::text, ''), is_nullable, \
                coalesce(column_default, '')) AS row \
           FROM information_schema.columns \
          WHERE table_schema = 'public' AND table_name IN ({GO_TABLES}) \
         UNION ALL SELECT concat_ws('|', 'idx', tablename, indexname, indexdef) FROM pg_indexes \
          WHERE schemaname = 'public' AND tablename IN ({GO_TABLES}) \
         UNION ALL SELECT concat_ws('|', 'con', conrelid::regclass::text, conname, \
                pg_get_constraintdef(oid)) FROM pg_constraint \
          WHERE conrelid::regclass::text IN ({GO_TABLES}) \
         ORDER BY 1"
    ))
    .load(conn)
    .unwrap()
}

/// Every row of Go's tables as text, so "unchanged" compares exactly.
fn dump(conn: &mut PgConnection) -> Vec<Row> {
    sql_query(
        "SELECT concat_ws('|', 'tuf', id, coalesce(created_at::text, 'null'), \
                coalesce(updated_at::text, 'null'), coalesce(deleted_at::text, 'null'), gun, role, \
                version, encode(data, 'hex'), coalesce(sha256, 'null')) AS row FROM tuf_files \
         UNION ALL SELECT concat_ws('|', 'cat', category) FROM change_category \
         UNION ALL SELECT concat_ws('|', 'feed', id, coalesce(created_at::text, 'null'), gun, \
                version, coalesce(sha256, 'null'), category) FROM changefeed \
         ORDER BY 1",
    )
    .load(conn)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_database_is_adopted_unchanged() {
    let Some(db) = PgDb::create_empty() else {
        return;
    };
    let mut conn = db.connect();
    conn.batch_execute(GO_SERVER_DDL).unwrap();
    // A repository as Go notary would have left it.
    let repo = Repo::new(1, "go");
    for (role, data) in [
        ("root", &repo.root),
        ("targets", &repo.targets),
        ("snapshot", &repo.snapshot),
        ("timestamp", &repo.timestamp),
    ] {
        sql_query(
            "INSERT INTO tuf_files (created_at, updated_at, gun, role, version, data, sha256) \
             VALUES ('2025-03-04 05:06:07', '2025-03-04 05:06:07', 'docker.io/go/app', $1, 1, $2, \
                     encode(sha256($2), 'hex'))",
        )
        .bind::<Text, _>(role)
        .bind::<diesel::sql_types::Binary, _>(data.as_slice())
        .execute(&mut conn)
        .unwrap();
    }
    conn.batch_execute(
        "INSERT INTO changefeed (created_at, gun, version, sha256) \
         SELECT created_at, gun, version, sha256 FROM tuf_files WHERE role = 'timestamp'",
    )
    .unwrap();
    let schema_before = schema(&mut conn);
    let rows_before = dump(&mut conn);
    assert!(schema_before.len() > 15, "{schema_before:?}");

    let store = SqlStore::open_postgres(&db.dsn()).unwrap();
    store.run_migrations().unwrap();
    store.run_migrations().unwrap();
    assert_eq!(schema(&mut conn), schema_before);
    assert_eq!(dump(&mut conn), rows_before);

    let store: Arc<dyn MetaStore> = Arc::new(store);
    let gun = "docker.io/go/app";
    let ts = get_current(&*store, gun, "timestamp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ts.data, repo.timestamp);
    assert_eq!(ts.sha256, sha256_hex(&repo.timestamp));
    assert_eq!(ts.created_at.to_rfc3339(), "2025-03-04T05:06:07+00:00");
    let changes = store.get_changes(0, 10, None).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].version, changes[0].category.as_str()),
        (1, CATEGORY_UPDATE)
    );
    // The store keeps writing into Go's tables under Go's rules: a replay is an old version
    // (the unique key's 23505 included), a new version is accepted.
    assert_eq!(
        store.update_many(gun, repo.updates()).await,
        Err(StoreError::OldVersion)
    );
    store
        .update_many(gun, Repo::new(2, "rust").updates())
        .await
        .unwrap();
    assert_eq!(store.get_changes(0, 10, None).await.unwrap().len(), 2);
    assert_eq!(schema(&mut conn), schema_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_schema_equals_go_schema() {
    let Some(ours) = PgDb::create() else { return };
    let Some(go) = PgDb::create_empty() else {
        return;
    };
    let mut go_conn = go.connect();
    go_conn.batch_execute(GO_SERVER_DDL).unwrap();
    let mut our_conn = ours.connect();
    assert_eq!(schema(&mut our_conn), schema(&mut go_conn));
    assert_eq!(dump(&mut our_conn), dump(&mut go_conn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_violation_is_an_old_version() {
    let Some(db) = PgDb::create() else { return };
    let store = db.sql_store();
    let gun = "example.com/race";
    store
        .update_many(gun, vec![update("root", 1, b"one")])
        .await
        .unwrap();
    // Past the pre-write check (a deleted_at row is invisible to it), the unique key
    // (gun, role, version) itself answers with SQLSTATE 23505.
    db.connect()
        .batch_execute("UPDATE tuf_files SET deleted_at = now()")
        .unwrap();
    assert_eq!(
        store
            .update_many(gun, vec![update("root", 1, b"two")])
            .await,
        Err(StoreError::OldVersion)
    );
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// The session's TLS state as the server sees it.
fn session_uses_tls(url: &str) -> bool {
    use diesel::Connection;
    let mut conn = PgConnection::establish(url).unwrap();
    let rows: Vec<Ssl> = sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .load(&mut conn)
        .unwrap();
    rows[0].ssl
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_database() {
    let Some(db) = PgDb::create() else { return };
    // Go's lib/pq default: no sslmode means require. The test cluster has TLS on.
    let dsn = PostgresDsn::parse("db_url", &db.url_with_query("")).unwrap();
    assert_eq!(dsn.ssl_mode(), "require");
    assert!(session_uses_tls(dsn.conninfo()));
    let store = SqlStore::open_postgres(&dsn).unwrap();
    store.check_health().await.unwrap();
    assert!(!session_uses_tls(&db.url_with_query("sslmode=disable")));

    let Ok(ca) = std::env::var("NOTARY_TEST_POSTGRES_CA") else {
        eprintln!("skipping verify-full: NOTARY_TEST_POSTGRES_CA is not set");
        return;
    };
    let verified = db.url_with_query(&format!("sslmode=verify-full&sslrootcert={ca}"));
    let store = SqlStore::open_postgres(&PostgresDsn::parse("db_url", &verified).unwrap()).unwrap();
    store.check_health().await.unwrap();
    assert!(session_uses_tls(&verified));
    // A CA that did not sign the server's certificate is refused.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&other_ca, cert.cert.pem()).unwrap();
    let wrong = db.url_with_query(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca.display()
    ));
    let err = SqlStore::open_postgres_with(
        &PostgresDsn::parse("db_url", &wrong).unwrap(),
        PoolOptions {
            max_size: 1,
            connection_timeout: Duration::from_secs(2),
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dsn = PostgresDsn::parse(
        "db_url",
        &format!("postgres://u:p@127.0.0.1:{port}/db?sslmode=disable"),
    )
    .unwrap();
    let err = SqlStore::open_postgres_with(
        &dsn,
        PoolOptions {
            max_size: 1,
            connection_timeout: Duration::from_millis(500),
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_unavailable_then_recovers() {
    let Some(db) = PgDb::create() else { return };
    let url = url::Url::parse(&db.url()).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(target).await;
    let mut through = url.clone();
    let addr = proxy.addr();
    through.set_port(Some(addr.port())).unwrap();
    let store = SqlStore::open_postgres_with(
        &PostgresDsn::parse("db_url", through.as_str()).unwrap(),
        PoolOptions {
            max_size: 2,
            connection_timeout: Duration::from_secs(2),
        },
    )
    .unwrap();
    super::proxy::outage_then_recovery(&store, &proxy).await;
}
