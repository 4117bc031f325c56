//! MySQL-only checks: adoption of a Go-created database, schema identity,
//! outages.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Text};
use diesel::{sql_query, MysqlConnection, QueryableByName, RunQueryDsl};

use super::conformance;
use super::fixtures::{update, Repo};
use super::proxy::Proxy;
use super::MysqlDb;
use crate::storage::{
    get_current, sha256_hex, MetaStore, PoolOptions, SqlStore, StoreError, CATEGORY_UPDATE,
};

/// The server tables as the Go reference setup creates them
/// (`tests/harness/start-pair.sh`, the end state of Go's migrations).
const GO_SERVER_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS tuf_files (
    id         INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP NULL DEFAULT NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    deleted_at TIMESTAMP NULL DEFAULT NULL,
    gun        VARCHAR(255) NOT NULL,
    role       VARCHAR(255) NOT NULL,
    version    INT NOT NULL,
    data       LONGBLOB NOT NULL,
    sha256     CHAR(64) DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY gun (gun, role, version),
    KEY sha256 (sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS change_category (
    category VARCHAR(20) NOT NULL,
    PRIMARY KEY (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO change_category (category) VALUES ('update'), ('deletion');

CREATE TABLE IF NOT EXISTS changefeed (
    id         INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    gun        VARCHAR(255) NOT NULL,
    version    INT NOT NULL,
    sha256     CHAR(64) DEFAULT NULL,
    category   VARCHAR(20) NOT NULL DEFAULT 'update',
    PRIMARY KEY (id),
    KEY idx_changefeed_gun (gun),
    CONSTRAINT changefeed_category_fk FOREIGN KEY (category) REFERENCES change_category (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
"#;

const GO_TABLES: [&str; 3] = ["tuf_files", "change_category", "changefeed"];

#[derive(QueryableByName)]
struct CreateTable {
    #[diesel(sql_type = Text, column_name = "Create Table")]
    sql: String,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Dump {
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    n: i32,
}

fn show_create(conn: &mut MysqlConnection, table: &str) -> String {
    let rows: Vec<CreateTable> = sql_query(format!("SHOW CREATE TABLE `{table}`"))
        .load(conn)
        .unwrap();
    rows.into_iter().next().unwrap().sql
}

/// Every row of the Go tables, rendered as text, so "unchanged" can be
/// compared exactly.
fn dump(conn: &mut MysqlConnection) -> Vec<Dump> {
    sql_query(
        "SELECT CONCAT_WS('|', 'tuf', id, IFNULL(created_at, 'null'), IFNULL(updated_at, 'null'), \
                IFNULL(deleted_at, 'null'), gun, role, version, HEX(data), IFNULL(sha256, 'null')) AS `row` \
           FROM tuf_files \
         UNION ALL SELECT CONCAT_WS('|', 'cat', category) FROM change_category \
         UNION ALL SELECT CONCAT_WS('|', 'feed', id, IFNULL(created_at, 'null'), gun, version, \
                IFNULL(sha256, 'null'), category) FROM changefeed \
         ORDER BY 1",
    )
    .load(conn)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_database_is_adopted_unchanged() {
    let Some(db) = MysqlDb::create_empty() else {
        return;
    };
    let mut conn = db.connect();
    conn.batch_execute(GO_SERVER_DDL).unwrap();
    // A repository as Go notary would have left it (sha256 computed by MySQL).
    let repo = Repo::new(1, "go");
    for (role, data) in [
        ("root", &repo.root),
        ("targets", &repo.targets),
        ("snapshot", &repo.snapshot),
        ("timestamp", &repo.timestamp),
    ] {
        sql_query(
            "INSERT INTO tuf_files (created_at, updated_at, gun, role, version, data, sha256) \
             VALUES ('2025-03-04 05:06:07', '2025-03-04 05:06:07', 'docker.io/go/app', ?, 1, ?, SHA2(?, 256))",
        )
        .bind::<Text, _>(role)
        .bind::<diesel::sql_types::Binary, _>(data.as_slice())
        .bind::<diesel::sql_types::Binary, _>(data.as_slice())
        .execute(&mut conn)
        .unwrap();
    }
    conn.batch_execute(
        "INSERT INTO changefeed (created_at, gun, version, sha256) \
         SELECT created_at, gun, version, sha256 FROM tuf_files WHERE role = 'timestamp'",
    )
    .unwrap();
    let schema_before: Vec<String> = GO_TABLES
        .iter()
        .map(|t| show_create(&mut conn, t))
        .collect();
    let rows_before = dump(&mut conn);

    let store = SqlStore::open_mysql(&db.url()).unwrap();
    store.run_migrations().unwrap();
    store.run_migrations().unwrap();

    let schema_after: Vec<String> = GO_TABLES
        .iter()
        .map(|t| show_create(&mut conn, t))
        .collect();
    assert_eq!(schema_after, schema_before);
    assert_eq!(dump(&mut conn), rows_before);
    let diesel_tables: Vec<Count> = sql_query(
        "SELECT COUNT(*) AS n FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(diesel_tables[0].n, 1);

    // Go's rows read back through the store, times as UTC.
    let store: Arc<dyn MetaStore> = Arc::new(store);
    let gun = "docker.io/go/app";
    let ts = get_current(&*store, gun, "timestamp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ts.data, repo.timestamp);
    assert_eq!(ts.sha256, sha256_hex(&repo.timestamp));
    assert_eq!(ts.created_at.to_rfc3339(), "2025-03-04T05:06:07+00:00");
    let targets = get_current(&*store, gun, "targets").await.unwrap().unwrap();
    assert_eq!(targets.data, repo.targets);
    let changes = store.get_changes(0, 10, None).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].version,
            changes[0].sha256.as_str(),
            changes[0].category.as_str()
        ),
        (1, ts.sha256.as_str(), CATEGORY_UPDATE)
    );

    // And the store keeps writing into Go's tables under Go's rules.
    assert_eq!(
        store.update_many(gun, repo.updates()).await,
        Err(StoreError::OldVersion)
    );
    store
        .update_many(gun, Repo::new(2, "rust").updates())
        .await
        .unwrap();
    assert_eq!(store.get_changes(0, 10, None).await.unwrap().len(), 2);
    // Writing moves only the AUTO_INCREMENT counters.
    let without_counter = |sql: &str| {
        sql.split(' ')
            .filter(|word| !word.starts_with("AUTO_INCREMENT="))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (table, before) in GO_TABLES.iter().zip(&schema_after) {
        assert_eq!(
            without_counter(&show_create(&mut conn, table)),
            without_counter(before),
            "table {table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_schema_equals_go_schema() {
    let Some(ours) = MysqlDb::create() else {
        return;
    };
    let Some(go) = MysqlDb::create_empty() else {
        return;
    };
    let mut go_conn = go.connect();
    go_conn.batch_execute(GO_SERVER_DDL).unwrap();
    let mut our_conn = ours.connect();
    for table in GO_TABLES {
        assert_eq!(
            show_create(&mut our_conn, table),
            show_create(&mut go_conn, table),
            "table {table}"
        );
    }
    assert_eq!(dump(&mut our_conn), dump(&mut go_conn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_is_exact_despite_the_collation() {
    let Some(db) = MysqlDb::create() else { return };
    let store = db.store();
    store
        .update_many("example.com/App", vec![update("root", 1, b"root")])
        .await
        .unwrap();
    // Go's general_ci collation would match all of these; token scopes would not.
    for (gun, role) in [
        ("example.com/app", "root"),
        ("EXAMPLE.COM/APP", "root"),
        ("example.com/App ", "root"),
        ("example.com/App", "ROOT"),
    ] {
        assert!(
            store.get_latest(gun, role).await.unwrap().is_none(),
            "{gun:?} {role:?}"
        );
        assert!(store.get_version(gun, role, 1).await.unwrap().is_none());
    }
    // Checksums still match in either case (stock clients send lower case).
    let sha = sha256_hex(b"root").to_uppercase();
    assert!(store
        .get_checksum("example.com/App", "root", &sha)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .get_checksum("EXAMPLE.COM/APP", "root", &sha)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .update_many("example.com/app", vec![update("root", 1, b"other")])
            .await,
        Err(StoreError::GunCaseConflict("example.com/app".into()))
    );
    assert_eq!(store.delete("example.com/APP").await.unwrap(), 0);
    assert_eq!(store.delete("example.com/App").await.unwrap(), 1);
    let changes = store.get_changes(-1, 1, None).await.unwrap();
    assert_eq!(changes[0].gun, "example.com/App");
}

#[tokio::test(flavor = "current_thread")]
async fn tiny_pool_serves_many_requests() {
    let Some(db) = MysqlDb::create() else { return };
    let store = SqlStore::open_mysql_with(
        &db.url(),
        PoolOptions {
            max_size: 2,
            connection_timeout: Duration::from_secs(30),
        },
    )
    .unwrap();
    conformance::many_concurrent_requests(Arc::new(store)).await;
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    // A port nothing listens on (bound, then released).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let options = PoolOptions {
        max_size: 1,
        connection_timeout: Duration::from_millis(500),
    };
    let err = SqlStore::open_mysql_with(&format!("mysql://u:p@127.0.0.1:{port}/db"), options)
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        SqlStore::open_mysql_with("postgres://u:p@127.0.0.1/db", options),
        Err(StoreError::Other(_))
    ));
}

/// Host and port of the test server, for the proxy.
fn server_authority(db: &MysqlDb) -> (String, String) {
    let rest = db.server_url_str().strip_prefix("mysql://").unwrap();
    let (userinfo, hostport) = rest.rsplit_once('@').expect("user in MySQL URL");
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:3306")
    };
    (userinfo.to_owned(), hostport)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_gives_unavailable_then_recovers() {
    let Some(db) = MysqlDb::create() else { return };
    let (userinfo, target) = server_authority(&db);
    let proxy = Proxy::start(target).await;
    let url = format!("mysql://{userinfo}@{}/{}", proxy.addr(), db.name());
    let store = SqlStore::open_mysql_with(
        &url,
        PoolOptions {
            max_size: 2,
            connection_timeout: Duration::from_secs(2),
        },
    )
    .unwrap();
    super::proxy::outage_then_recovery(&store, &proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_prepared_write_paths_store_exact_bytes() {
    let Some(db) = MysqlDb::create() else { return };
    let store = db.store();
    // Every byte value, a non-ASCII GUN and role-like names: the one-query text path
    // writes them as hex literals.
    let gun = "example.com/\u{fc}n\u{ef}code/app";
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    store
        .update_many(gun, vec![update("targets/r\u{e9}l", 1, &all_bytes)])
        .await
        .unwrap();
    let got = store
        .get_latest(gun, "targets/r\u{e9}l")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.data, all_bytes);
    assert_eq!(got.sha256, crate::storage::sha256_hex(&all_bytes));
    // A batch too large for the text path goes through prepared statements.
    let big: Vec<u8> = (0..(5 << 20)).map(|i| (i % 251) as u8).collect();
    store
        .update_many(
            gun,
            vec![update("root", 1, &big), update("timestamp", 1, b"ts")],
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_latest(gun, "root").await.unwrap().unwrap().data,
        big
    );
    let changes = store.get_changes(0, 10, Some(gun)).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].gun, gun);
    // And a replayed version is refused on both paths.
    for data in [&all_bytes, &big] {
        let err = store
            .update_many(gun, vec![update("root", 1, data)])
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::OldVersion);
    }
}

/// Go's unique key (gun, role, version) is case-insensitive: a publish to a GUN whose case
/// variant has rows is refused with a clear error (400 INVALID_GUN at the HTTP layer) and
/// writes nothing, whether or not its versions would collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_variant_of_a_stored_gun_is_refused() {
    let Some(db) = MysqlDb::create() else {
        return;
    };
    let store = db.store();
    store
        .update_many("alice/app", vec![update("root", 1, b"r1")])
        .await
        .unwrap();
    for version in [1, 2] {
        let err = store
            .update_many("Alice/app", vec![update("root", version, b"other")])
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::GunCaseConflict("Alice/app".into()));
        let api = crate::http::error::ApiError::from(crate::domain::UpdateError::from(err));
        assert_eq!(api.status().as_u16(), 400);
        assert_eq!(api.code(), "INVALID_GUN");
        assert!(
            api.detail()
                .unwrap()
                .as_str()
                .unwrap()
                .contains("Alice/app"),
            "{api:?}"
        );
    }
    let mine = store
        .get_latest("alice/app", "root")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((mine.version, mine.data.as_slice()), (1, &b"r1"[..]));
    // The stored name itself still publishes.
    store
        .update_many("alice/app", vec![update("root", 2, b"r2")])
        .await
        .unwrap();
}

/// Our server started on a Go database without `-migrate` (as Go's server is started):
/// the key record table is created on first use, and Go's tables stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_records_work_on_a_go_database_without_migrations() {
    let Some(db) = MysqlDb::create_empty() else {
        return;
    };
    let mut conn = db.connect();
    conn.batch_execute(GO_SERVER_DDL).unwrap();
    let before: Vec<String> = GO_TABLES
        .iter()
        .map(|t| show_create(&mut conn, t))
        .collect();
    let store = SqlStore::open_mysql(&db.url()).unwrap();
    let id = "c".repeat(64);
    assert_eq!(store.key_owner(&id).await.unwrap(), None);
    store.record_key("org/app", "timestamp", &id).await.unwrap();
    assert_eq!(
        store.key_owner(&id).await.unwrap(),
        Some(("org/app".into(), "timestamp".into()))
    );
    let after: Vec<String> = GO_TABLES
        .iter()
        .map(|t| show_create(&mut conn, t))
        .collect();
    assert_eq!(after, before);
    // Migrations run later still apply.
    store.run_migrations().unwrap();
    assert!(store.key_owner(&id).await.unwrap().is_some());
}

/// What MySQL-family servers say when they cannot serve queries now is a 503 (another
/// replica or a retry can succeed), not a 500. The texts are the client's `mysql_error()`:
/// Galera's 1047 on a node outside the primary component (recorded in docs/galera.md), and
/// a connection lost mid-query (2013).
#[test]
fn unreachable_database_errors_are_unavailable() {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use crate::storage::sql::map_error;
    use crate::storage::StoreError;

    let error = |message: &str| {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_string()))
    };
    for message in [
        "WSREP has not yet prepared node for application use",
        "Lost connection to server during query",
        "MySQL server has gone away",
    ] {
        assert!(
            matches!(map_error(error(message)), StoreError::Unavailable(m) if m == message),
            "{message}"
        );
    }
    assert!(matches!(
        map_error(error("Table 'x.tuf_files' doesn't exist")),
        StoreError::Other(_)
    ));
}
