//! Key store behaviour, run against SQLite and (with NOTARY_TEST_MYSQL_URL and
//! NOTARY_TEST_POSTGRES_URL) MySQL and PostgreSQL.

use std::sync::Arc;

use notary_signer::keystore::{
    KeyService, KeyStore, KeyStoreError, Passphrases, ServiceError, SqlKeyStore,
};
use notary_tuf::keys::KeyType;

use crate::support::{data, unhex, verify, TestDb, GO_ALIAS, GO_PASSPHRASE};

fn pw() -> Passphrases {
    Passphrases::fixed([("alias1", "pass one"), ("alias2", "pass two")])
}

fn service(store: SqlKeyStore) -> (Arc<SqlKeyStore>, KeyService) {
    let store = Arc::new(store);
    (store.clone(), KeyService::new(store))
}

/// Instantiates each scenario for SQLite, MySQL and PostgreSQL.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&crate::support::TestDb::sqlite()).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::support::TestDb::mysql(stringify!($name)) else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::support::TestDb::postgres(stringify!($name)) else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

store_tests!(
    create_get_sign_round_trip,
    pending_key_is_reused_until_it_signs,
    soft_delete_hides_the_key_but_keeps_the_row,
    wrong_or_missing_passphrase_makes_the_key_unusable,
    reencrypt_moves_keys_to_the_new_alias,
    migrations_are_idempotent,
    unsupported_algorithm_is_rejected,
);

async fn create_get_sign_round_trip(db: &TestDb) {
    let (store, keys) = service(db.store("alias1", pw()));
    for (alg, role) in [("ecdsa", "timestamp"), ("ed25519", "snapshot")] {
        let public = keys
            .create_key("docker.io/library/x", role, alg)
            .await
            .unwrap();
        assert_eq!(public.key_type.as_str(), alg);
        let id = public.key_id();

        let rec = store.key_record(&id).await.unwrap().expect("row stored");
        assert_eq!(rec.algorithm, alg);
        assert_eq!(rec.encryption_alg, "A256GCM");
        assert_eq!(rec.keywrap_alg, "PBES2-HS256+A128KW");
        assert_eq!(rec.passphrase_alias, "alias1");
        assert_eq!(rec.gun, "docker.io/library/x");
        assert_eq!(rec.role, role);
        assert!(rec.created_at.is_some());
        assert_eq!(rec.created_at, rec.updated_at);
        assert_eq!(rec.last_used, None);
        assert_eq!(rec.deleted_at, None);

        // Creation alone does not cache; the first lookup does.
        assert!(!keys.is_cached(&id));
        let got = keys.get_key(&id).await.unwrap();
        assert!(keys.is_cached(&id));
        assert_eq!(got.role, role);
        assert_eq!(got.public.clone(), public);
        // GetKey does not mark the key active.
        assert_eq!(
            store.key_record(&id).await.unwrap().unwrap().last_used,
            None
        );

        let (_, sig) = keys.sign(&id, b"{\"signed\":1}").await.unwrap();
        verify(&public, b"{\"signed\":1}", &sig);
        let rec = store.key_record(&id).await.unwrap().unwrap();
        assert!(rec.last_used.is_some());
        assert!(rec.updated_at >= rec.created_at);
    }
}

async fn pending_key_is_reused_until_it_signs(db: &TestDb) {
    let (store, keys) = service(db.store("alias1", pw()));
    let gun = "example.com/app";
    let first = keys.create_key(gun, "timestamp", "ecdsa").await.unwrap();
    let again = keys.create_key(gun, "timestamp", "ecdsa").await.unwrap();
    assert_eq!(first, again, "pending key is returned again");

    // Different role, GUN or algorithm: different keys.
    let snap = keys.create_key(gun, "snapshot", "ecdsa").await.unwrap();
    let other_gun = keys
        .create_key("example.com/other", "timestamp", "ecdsa")
        .await
        .unwrap();
    let ed = keys.create_key(gun, "timestamp", "ed25519").await.unwrap();
    for k in [&snap, &other_gun, &ed] {
        assert_ne!(k.key_id(), first.key_id());
    }

    // A store that did not create the key (another process) sees the same pending key.
    let other_process = db.store("alias1", pw());
    assert_eq!(
        other_process
            .create_key(gun, "timestamp", &KeyType::Ecdsa)
            .await
            .unwrap(),
        first
    );

    // Signing makes it active; the next CreateKey generates a new pending key.
    keys.sign(&first.key_id(), b"x").await.unwrap();
    let next = keys.create_key(gun, "timestamp", "ecdsa").await.unwrap();
    assert_ne!(next.key_id(), first.key_id());
    assert_eq!(
        keys.create_key(gun, "timestamp", "ecdsa").await.unwrap(),
        next
    );
    // The snapshot key is still pending and still returned.
    assert_eq!(
        keys.create_key(gun, "snapshot", "ecdsa").await.unwrap(),
        snap
    );
    assert!(store
        .key_record(&first.key_id())
        .await
        .unwrap()
        .unwrap()
        .last_used
        .is_some());
}

async fn soft_delete_hides_the_key_but_keeps_the_row(db: &TestDb) {
    let (store, keys) = service(db.store("alias1", pw()));
    let key = keys.create_key("g", "timestamp", "ed25519").await.unwrap();
    let id = key.key_id();
    keys.get_key(&id).await.unwrap();
    assert!(keys.is_cached(&id));

    keys.delete_key(&id).await.unwrap();
    assert!(!keys.is_cached(&id));
    assert!(matches!(
        keys.get_key(&id).await,
        Err(KeyStoreError::NotFound(_))
    ));
    assert!(matches!(
        keys.sign(&id, b"x").await,
        Err(ServiceError::Store(KeyStoreError::NotFound(_)))
    ));
    let rec = store.key_record(&id).await.unwrap().expect("row kept");
    assert!(rec.deleted_at.is_some());

    // A deleted pending key is not handed out again.
    let fresh = keys.create_key("g", "timestamp", "ed25519").await.unwrap();
    assert_ne!(fresh.key_id(), id);

    // Deleting again, or deleting an unknown ID, is fine; deleted_at stays as it was.
    keys.delete_key(&id).await.unwrap();
    keys.delete_key(&"ab".repeat(32)).await.unwrap();
    assert_eq!(
        store.key_record(&id).await.unwrap().unwrap().deleted_at,
        rec.deleted_at
    );
}

async fn wrong_or_missing_passphrase_makes_the_key_unusable(db: &TestDb) {
    let writer = db.store("alias1", pw());
    let key = writer
        .create_key("g", "timestamp", &KeyType::Ecdsa)
        .await
        .unwrap();
    let id = key.key_id();

    let wrong = db.store("alias1", Passphrases::fixed([("alias1", "not it")]));
    match wrong.get_key(&id).await {
        Err(KeyStoreError::Undecryptable { key_id, alias, .. }) => {
            assert_eq!(key_id, id);
            assert_eq!(alias, "alias1");
        }
        other => panic!("expected Undecryptable, got {other:?}"),
    }

    let missing = db.store("alias2", Passphrases::fixed([("alias2", "x")]));
    match missing.get_key(&id).await {
        Err(KeyStoreError::MissingPassphrase { env_var, .. }) => {
            assert_eq!(env_var, "NOTARY_SIGNER_ALIAS1")
        }
        other => panic!("expected MissingPassphrase, got {other:?}"),
    }

    // The right passphrase still works: nothing was damaged.
    assert_eq!(writer.get_key(&id).await.unwrap().public.clone(), key);
}

async fn reencrypt_moves_keys_to_the_new_alias(db: &TestDb) {
    let (store, keys) = service(db.store("alias1", pw()));
    let a = keys.create_key("g", "timestamp", "ecdsa").await.unwrap();
    let b = keys.create_key("g", "snapshot", "ed25519").await.unwrap();
    keys.delete_key(&b.key_id()).await.unwrap();

    // Missing passphrase for the target: refused before anything changes.
    assert!(matches!(
        store.reencrypt_alias("alias1", "alias3").await,
        Err(KeyStoreError::MissingPassphrase { .. })
    ));
    assert_eq!(
        store
            .key_record(&a.key_id())
            .await
            .unwrap()
            .unwrap()
            .passphrase_alias,
        "alias1"
    );

    assert_eq!(store.reencrypt_alias("alias1", "alias2").await.unwrap(), 2);
    for id in [a.key_id(), b.key_id()] {
        assert_eq!(
            store
                .key_record(&id)
                .await
                .unwrap()
                .unwrap()
                .passphrase_alias,
            "alias2"
        );
    }
    // Only the new passphrase is needed now.
    let only_new = db.store("alias2", Passphrases::fixed([("alias2", "pass two")]));
    let got = only_new.get_key(&a.key_id()).await.unwrap();
    assert_eq!(got.public.clone(), a);
    // Deleted keys stay deleted.
    assert!(matches!(
        only_new.get_key(&b.key_id()).await,
        Err(KeyStoreError::NotFound(_))
    ));
    // Nothing left under the old alias.
    assert_eq!(store.reencrypt_alias("alias1", "alias2").await.unwrap(), 0);
}

async fn migrations_are_idempotent(db: &TestDb) {
    let first = db.store("alias1", pw());
    let key = first.create_key("g", "r", &KeyType::Ecdsa).await.unwrap();
    assert!(SqlKeyStore::migrate(&db.backend()).unwrap().is_empty());
    let second = db.store("alias1", pw());
    assert_eq!(second.get_key(&key.key_id()).await.unwrap().role, "r");
    second.check_health().await.unwrap();
}

async fn unsupported_algorithm_is_rejected(db: &TestDb) {
    let (_, keys) = service(db.store("alias1", pw()));
    for alg in ["rsa", "", "ECDSA"] {
        match keys.create_key("g", "timestamp", alg).await {
            Err(e @ ServiceError::UnsupportedAlgorithm(_)) => assert_eq!(
                e.to_string(),
                format!("algorithm {alg} not supported for create key")
            ),
            other => panic!("{alg:?}: {other:?}"),
        }
    }
}

/// The CREATE TABLE of tests/harness/start-pair.sh: a database set up for the Go signer.
const GO_SCHEMA: &str = "CREATE TABLE private_keys (
    id INT NOT NULL AUTO_INCREMENT,
    created_at TIMESTAMP NULL DEFAULT NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    deleted_at TIMESTAMP NULL DEFAULT NULL,
    key_id VARCHAR(255) NOT NULL,
    encryption_alg VARCHAR(255) NOT NULL,
    keywrap_alg VARCHAR(255) NOT NULL,
    algorithm VARCHAR(50) NOT NULL,
    passphrase_alias VARCHAR(50) NOT NULL,
    public BLOB NOT NULL,
    private BLOB NOT NULL,
    gun VARCHAR(255) NOT NULL,
    role VARCHAR(255) NOT NULL,
    last_used DATETIME NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY key_id (key_id),
    UNIQUE KEY key_id_2 (key_id, algorithm)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

fn show_create(db: &TestDb) -> String {
    use diesel::{Connection, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "Create Table")]
        create: String,
    }
    let TestDb::Mysql { admin_url, name } = db else {
        unreachable!()
    };
    let mut conn = diesel::MysqlConnection::establish(&format!("{admin_url}/{name}")).unwrap();
    let rows: Vec<Row> = diesel::sql_query("SHOW CREATE TABLE private_keys")
        .load(&mut conn)
        .unwrap();
    rows[0].create.clone()
}

/// A database the Go signer created and filled is adopted unchanged, and its keys work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_adopts_a_go_signer_database() {
    let Some(db) = TestDb::mysql("mysql_adopts_a_go_signer_database") else {
        return;
    };
    db.mysql_exec(GO_SCHEMA);
    let mut inserts = String::new();
    for (name, alg) in [("go-ecdsa", "ecdsa"), ("go-ed25519", "ed25519")] {
        inserts.push_str(&format!(
            "INSERT INTO private_keys (created_at, updated_at, key_id, encryption_alg, keywrap_alg, \
             algorithm, passphrase_alias, public, private, gun, role) VALUES \
             ('2026-11-22 22:09:03', '2026-11-22 22:09:03', '{}', 'A256GCM', 'PBES2-HS256+A128KW', \
             '{alg}', '{GO_ALIAS}', X'{}', '{}', 'example.com/go', 'timestamp');",
            data(&format!("{name}.keyid")),
            data(&format!("{name}.public.hex")),
            data(&format!("{name}.jwe")),
        ));
    }
    db.mysql_exec(&inserts);
    let before = show_create(&db);

    let store = db.store(GO_ALIAS, Passphrases::fixed([(GO_ALIAS, GO_PASSPHRASE)]));
    assert_eq!(show_create(&db), before, "migrations changed the Go table");

    let (store, keys) = service(store);
    for name in ["go-ecdsa", "go-ed25519"] {
        let id = data(&format!("{name}.keyid"));
        let key = keys.get_key(&id).await.unwrap();
        assert_eq!(key.role, "timestamp");
        assert_eq!(
            key.public.clone().public,
            unhex(&data(&format!("{name}.public.hex")))
        );
        let (_, sig) = keys.sign(&id, b"payload").await.unwrap();
        verify(&key.public.clone(), b"payload", &sig);
        assert!(store
            .key_record(&id)
            .await
            .unwrap()
            .unwrap()
            .last_used
            .is_some());
    }
    // The ed25519 Go key was pending; after signing, a new one is generated.
    let fresh = keys
        .create_key("example.com/go", "timestamp", "ed25519")
        .await
        .unwrap();
    assert_ne!(fresh.key_id(), data("go-ed25519.keyid"));
}

/// Go's migrations/signer/postgresql/0001, as Go's `migrate` runs it.
const GO_PG_SCHEMA: &str = r#"CREATE TABLE "private_keys" (
  "id" serial PRIMARY KEY,
  "created_at" timestamp NULL DEFAULT NULL,
  "updated_at" timestamp NULL DEFAULT NULL,
  "deleted_at" timestamp NULL DEFAULT NULL,
  "key_id" varchar(255) NOT NULL,
  "encryption_alg" varchar(255) NOT NULL,
  "keywrap_alg" varchar(255) NOT NULL,
  "algorithm" varchar(50) NOT NULL,
  "passphrase_alias" varchar(50) NOT NULL,
  "public" bytea NOT NULL,
  "private" bytea NOT NULL,
  "gun" varchar(255) NOT NULL,
  "role" varchar(255) NOT NULL,
  "last_used" timestamp NULL DEFAULT NULL,
  CONSTRAINT "key_id" UNIQUE ("key_id"),
  CONSTRAINT "key_id_2" UNIQUE ("key_id","algorithm")
);"#;

/// Columns, indexes and constraints of `private_keys`.
fn pg_schema(db: &TestDb) -> Vec<String> {
    use diesel::{QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT concat_ws('|', 'col', column_name, data_type, \
                coalesce(character_maximum_length::text, ''), is_nullable, \
                coalesce(column_default, '')) AS row FROM information_schema.columns \
          WHERE table_schema = 'public' AND table_name = 'private_keys' \
         UNION ALL SELECT concat_ws('|', 'idx', indexname, indexdef) FROM pg_indexes \
          WHERE schemaname = 'public' AND tablename = 'private_keys' \
         UNION ALL SELECT concat_ws('|', 'con', conname, pg_get_constraintdef(oid)) \
           FROM pg_constraint WHERE conrelid = 'private_keys'::regclass ORDER BY 1",
    )
    .load(&mut db.pg_connect())
    .unwrap();
    rows.into_iter().map(|r| r.row).collect()
}

/// A PostgreSQL database the Go signer created and filled is adopted unchanged; its keys
/// sign, and a fresh database of ours has Go's exact table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_adopts_a_go_signer_database() {
    use diesel::connection::SimpleConnection;
    let Some(db) = TestDb::postgres("postgres_adopts_a_go_signer_database") else {
        return;
    };
    let mut conn = db.pg_connect();
    conn.batch_execute(GO_PG_SCHEMA).unwrap();
    for (name, alg) in [("go-ecdsa", "ecdsa"), ("go-ed25519", "ed25519")] {
        conn.batch_execute(&format!(
            "INSERT INTO private_keys (created_at, updated_at, key_id, encryption_alg, keywrap_alg, \
             algorithm, passphrase_alias, public, private, gun, role) VALUES \
             ('2026-11-22 22:09:03', '2026-11-22 22:09:03', '{}', 'A256GCM', 'PBES2-HS256+A128KW', \
             '{alg}', '{GO_ALIAS}', '\\x{}'::bytea, convert_to('{}', 'UTF8'), 'example.com/go', \
             'timestamp');",
            data(&format!("{name}.keyid")),
            data(&format!("{name}.public.hex")),
            data(&format!("{name}.jwe")),
        ))
        .unwrap();
    }
    let before = pg_schema(&db);
    assert!(before.len() > 14, "{before:?}");
    let store = db.store(GO_ALIAS, Passphrases::fixed([(GO_ALIAS, GO_PASSPHRASE)]));
    assert_eq!(pg_schema(&db), before, "migrations changed the Go table");

    let (store, keys) = service(store);
    for name in ["go-ecdsa", "go-ed25519"] {
        let id = data(&format!("{name}.keyid"));
        let key = keys.get_key(&id).await.unwrap();
        assert_eq!(key.role, "timestamp");
        let (_, sig) = keys.sign(&id, b"payload").await.unwrap();
        verify(&key.public.clone(), b"payload", &sig);
        let record = store.key_record(&id).await.unwrap().unwrap();
        assert!(record.last_used.is_some());
        assert_eq!(
            record.created_at.unwrap().to_string(),
            "2026-11-22 22:09:03"
        );
    }

    let Some(fresh) = TestDb::postgres("postgres_adopts_a_go_signer_database") else {
        return;
    };
    drop(fresh.store(GO_ALIAS, Passphrases::fixed([(GO_ALIAS, GO_PASSPHRASE)])));
    assert_eq!(
        pg_schema(&fresh),
        before,
        "our migration differs from Go's table"
    );
}
