//! The PKCS#11 key store, through the signer binary, on a fresh SoftHSM2 token per test.
//!
//! Each test runs its own signer process: a PKCS#11 module is process-global (one
//! `C_Initialize`, one `SOFTHSM2_CONF`), so separate processes keep the tests' tokens apart.
//! The token's objects are checked with OpenSC's `pkcs11-tool`, not with our code.
//!
//! Needs `softhsm2` and `opensc` (tests/harness/install.sh). Without them the tests print a
//! skip notice, unless NOTARY_TEST_REQUIRE_SOFTHSM=1 (set by scripts/test.sh) makes that a
//! failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use notary_proto::key_management_client::KeyManagementClient;
use notary_proto::KeyId;
use notary_signer::keystore::{KeyStore, Passphrases};
use notary_tuf::keys::{KeyType, PublicKey};
use serde_json::json;
use tonic::transport::Channel;
use tonic::Code;

use crate::cli::{free_port, run, signer, write_config};
use crate::support::{channel_to_port, create_key, sign, verify, Pki, TestDb};

const PIN: &str = "1234";

fn module() -> String {
    std::env::var("NOTARY_TEST_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into())
}

/// A fresh SoftHSM2 token (label `notary`, user PIN 1234) in a directory of its own.
struct Hsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Hsm {
    fn new(test: &str) -> Option<Self> {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/harness/softhsm-token.sh");
        let present = Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok()
            && Command::new("pkcs11-tool").arg("--help").output().is_ok()
            && Path::new(&module()).exists();
        if !present {
            assert!(
                std::env::var("NOTARY_TEST_REQUIRE_SOFTHSM").is_err(),
                "softhsm2 / opensc are not installed (tests/harness/install.sh installs them)"
            );
            eprintln!("skipping {test}: softhsm2 or opensc is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(&script)
            .arg(dir.path().join("softhsm"))
            .args(["notary", PIN])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let conf = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        Some(Self { dir, conf })
    }

    /// `pkcs11-tool --list-objects`, logged in.
    fn objects(&self) -> String {
        let out = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", &module(), "--token-label", "notary", "--login"])
            .args(["--pin", PIN, "--list-objects"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The private-key objects: (ID hex, Access line).
    fn private_keys(&self) -> Vec<(String, String)> {
        let text = self.objects();
        let mut keys = Vec::new();
        for block in text.split("Private Key Object").skip(1) {
            let block = block.split("Public Key Object").next().unwrap();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            keys.push((field("ID:"), field("Access:")));
        }
        keys
    }

    fn token_dir(&self) -> PathBuf {
        let tokens = self.dir.path().join("softhsm/tokens");
        let entry = std::fs::read_dir(&tokens).unwrap().next().unwrap().unwrap();
        entry.path()
    }
}

/// A signer process on the token, SQLite for the key list.
struct SignerProcess {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for SignerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SignerProcess {
    async fn channel(&self, pki: &Pki) -> Channel {
        channel_to_port(pki, self.port).await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The signer config: SQLite storage, and the token section (`pkcs11` overrides merged in).
fn pkcs11_config(pki: &Pki, db: &Path, port: u16, pkcs11: serde_json::Value) -> PathBuf {
    let path = write_config(
        pki,
        port,
        json!({"backend": "sqlite3", "db_url": db.to_str().unwrap(), "default_alias": "alias1"}),
    );
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut section = json!({"module": module(), "token_label": "notary"});
    for (k, v) in pkcs11.as_object().unwrap() {
        section[k] = v.clone();
    }
    cfg["pkcs11"] = section;
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn signer_on_token(hsm: &Hsm, config: &Path, pin: Option<&str>) -> Command {
    let mut cmd = signer(&["-config", config.to_str().unwrap(), "-logf", "logfmt"]);
    cmd.env("SOFTHSM2_CONF", &hsm.conf);
    if let Some(pin) = pin {
        cmd.env("NOTARY_SIGNER_PKCS11_PIN", pin);
    }
    cmd
}

/// Starts a signer on the token and waits until it listens.
async fn start(pki: &Pki, hsm: &Hsm, db: &Path, pkcs11: serde_json::Value) -> SignerProcess {
    let port = free_port();
    let config = pkcs11_config(pki, db, port, pkcs11);
    let log = hsm.dir.path().join(format!("signer-{port}.log"));
    let child = signer_on_token(hsm, &config, Some(PIN))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut process = SignerProcess { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            process.child.try_wait().unwrap().is_none(),
            "signer exited: {}",
            process.log()
        );
        assert!(
            Instant::now() < deadline,
            "signer did not listen: {}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process
}

fn count(db: &Path, sql: &str) -> i64 {
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    diesel::select(diesel::dsl::sql::<BigInt>(&format!("({sql})")))
        .get_result(&mut conn)
        .unwrap()
}

async fn key_info(channel: &Channel, key_id: &str) -> Result<(PublicKey, String), tonic::Status> {
    let resp = KeyManagementClient::new(channel.clone())
        .get_key_info(KeyId { id: key_id.into() })
        .await?
        .into_inner();
    let alg = resp.key_info.unwrap().algorithm.unwrap().algorithm;
    Ok((
        PublicKey::new(KeyType::parse(&alg), resp.public_key),
        resp.role,
    ))
}

async fn sign_and_verify(channel: &Channel, key: &PublicKey, msg: &[u8]) {
    let signature = sign(channel, &key.key_id(), msg).await.unwrap();
    verify(key, msg, &signature.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_used_and_destroyed_inside_the_token() {
    let Some(hsm) = Hsm::new("keys_are_made_used_and_destroyed_inside_the_token") else {
        return;
    };
    let pki = Pki::new();
    let db = hsm.dir.path().join("keys.db");
    let process = start(&pki, &hsm, &db, json!({})).await;
    let channel = process.channel(&pki).await;

    let mut made = Vec::new();
    for (alg, role) in [("ecdsa", "timestamp"), ("ed25519", "snapshot")] {
        let key = create_key(&channel, "example.com/hsm", role, alg)
            .await
            .unwrap();
        // Pending-key reuse: no signature yet, so the same key comes back.
        let again = create_key(&channel, "example.com/hsm", role, alg)
            .await
            .unwrap();
        assert_eq!(again, key, "{alg}: a pending key is handed out again");
        let (public, got_role) = key_info(&channel, &key.key_id()).await.unwrap();
        assert_eq!((public, got_role.as_str()), (key.clone(), role));
        sign_and_verify(&channel, &key, b"{\"signed\":\"content\"}").await;
        // Used now: the next CreateKey makes a new key.
        let next = create_key(&channel, "example.com/hsm", role, alg)
            .await
            .unwrap();
        assert_ne!(next, key, "{alg}: a used key is not pending");
        made.push(key);
        made.push(next);
    }

    // The private keys are in the token, sensitive and never extractable, under their TUF
    // key IDs; the database holds no key material.
    let objects = hsm.private_keys();
    assert_eq!(objects.len(), 4, "{}", hsm.objects());
    for key in &made {
        let (_, access) = objects
            .iter()
            .find(|(id, _)| *id == key.key_id())
            .unwrap_or_else(|| panic!("no object for {}: {}", key.key_id(), hsm.objects()));
        assert!(
            access.contains("always sensitive") && access.contains("never extractable"),
            "{access}"
        );
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM private_keys"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pkcs11_keys WHERE deleted_at IS NULL"
        ),
        4
    );

    // DeleteKey destroys the objects and soft-deletes the row.
    let gone = &made[0];
    KeyManagementClient::new(channel.clone())
        .delete_key(KeyId { id: gone.key_id() })
        .await
        .unwrap();
    assert_eq!(
        key_info(&channel, &gone.key_id()).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        sign(&channel, &gone.key_id(), b"x")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert!(!hsm.objects().contains(&gone.key_id()), "{}", hsm.objects());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM pkcs11_keys"), 4);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM pkcs11_keys WHERE deleted_at IS NOT NULL"
        ),
        1
    );

    // A new process finds the keys again by their object IDs.
    drop(channel);
    drop(process);
    let process = start(&pki, &hsm, &db, json!({})).await;
    let channel = process.channel(&pki).await;
    for key in &made[1..] {
        assert_eq!(key_info(&channel, &key.key_id()).await.unwrap().0, *key);
        sign_and_verify(&channel, key, b"after restart").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_errors_name_the_setting_in_one_line() {
    let Some(hsm) = Hsm::new("startup_errors_name_the_setting_in_one_line") else {
        return;
    };
    let pki = Pki::new();
    let db = hsm.dir.path().join("keys.db");
    let cases: Vec<(serde_json::Value, Option<&str>, &[&str])> = vec![
        (
            json!({"module": "/nonexistent/libpkcs11.so"}),
            Some(PIN),
            &["pkcs11.module", "/nonexistent/libpkcs11.so"],
        ),
        (
            json!({"token_label": "nosuch"}),
            Some(PIN),
            &[
                "pkcs11.token_label",
                // logfmt escapes the quotes around labels.
                r#"labelled \"nosuch\""#,
                r#"tokens present: \"notary\""#,
            ],
        ),
        (
            json!({}),
            None,
            &["pkcs11.pin_alias", "NOTARY_SIGNER_PKCS11_PIN"],
        ),
        (
            json!({}),
            Some("9999"),
            &[
                "pkcs11.pin_alias",
                "CKR_PIN_INCORRECT",
                "NOTARY_SIGNER_PKCS11_PIN",
            ],
        ),
        (
            json!({"pin_alias": "hsm_pin"}),
            Some(PIN),
            &["pkcs11.pin_alias", "NOTARY_SIGNER_HSM_PIN"],
        ),
    ];
    for (section, pin, wanted) in cases {
        let config = pkcs11_config(&pki, &db, free_port(), section.clone());
        let (ok, _, err) =
            run(signer_on_token(&hsm, &config, pin).env("NOTARY_SIGNER_ALIAS1", "pw"));
        assert!(!ok, "{section}: started");
        assert_eq!(err.trim().lines().count(), 1, "{section}: one line:\n{err}");
        for w in wanted {
            assert!(err.contains(w), "{section}: {w:?} missing from: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signing_under_load_has_no_errors() {
    let Some(hsm) = Hsm::new("concurrent_signing_under_load_has_no_errors") else {
        return;
    };
    let pki = Pki::new();
    let db = hsm.dir.path().join("keys.db");
    // Fewer sessions than callers: the pool must queue, not fail.
    let process = start(&pki, &hsm, &db, json!({"max_sessions": 3})).await;
    let channel = process.channel(&pki).await;
    let mut keys = Vec::new();
    for (i, alg) in ["ecdsa", "ed25519", "ecdsa", "ed25519"].iter().enumerate() {
        keys.push(
            create_key(&channel, &format!("load/{i}"), "timestamp", alg)
                .await
                .unwrap(),
        );
    }
    let keys = Arc::new(keys);
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let (channel, keys, ok) = (channel.clone(), keys.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..40usize {
                let key = &keys[(t + i) % keys.len()];
                let msg = format!("task {t} message {i}");
                let signature = sign(&channel, &key.key_id(), msg.as_bytes()).await.unwrap();
                verify(key, msg.as_bytes(), &signature.content);
                ok.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), 16 * 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_removed_under_load_gives_unavailable_then_recovers() {
    let Some(hsm) = Hsm::new("a_token_removed_under_load_gives_unavailable_then_recovers") else {
        return;
    };
    let pki = Pki::new();
    let db = hsm.dir.path().join("keys.db");
    // Two sessions for four callers: calls queue for sessions when the token goes.
    let process = start(&pki, &hsm, &db, json!({"max_sessions": 2})).await;
    let pid = process.child.id();
    let channel = process.channel(&pki).await;
    let key = create_key(&channel, "example.com/removed", "timestamp", "ecdsa")
        .await
        .unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ok, unavailable) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for t in 0..4usize {
        let (channel, key, stop) = (channel.clone(), key.clone(), stop.clone());
        let (ok, unavailable) = (ok.clone(), unavailable.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Signing and key creation both hit the token.
                let result = if i.is_multiple_of(5) {
                    create_key(
                        &channel,
                        &format!("example.com/load/{t}/{i}"),
                        "timestamp",
                        "ecdsa",
                    )
                    .await
                    .map(|_| ())
                } else {
                    sign(&channel, &key.key_id(), b"under load").await.map(|s| {
                        verify(&key, b"under load", &s.content);
                    })
                };
                match result {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(s) if s.code() == Code::Unavailable => {
                        unavailable.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(s) => panic!("only UNAVAILABLE may fail while the token is away: {s:?}"),
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let wait_for = |what: &'static str, counter: Arc<AtomicUsize>, above: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        while counter.load(Ordering::Relaxed) <= above {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    wait_for("signatures before the removal", ok.clone(), 50).await;

    // Take the token away (as a pulled device would be), then give it back.
    let token_dir = hsm.token_dir();
    let parked = hsm.dir.path().join("parked-token");
    std::fs::rename(&token_dir, &parked).unwrap();
    wait_for(
        "UNAVAILABLE while the token is away",
        unavailable.clone(),
        0,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::rename(&parked, &token_dir).unwrap();
    let ok_at_return = ok.load(Ordering::Relaxed);
    wait_for(
        "signatures after the token came back",
        ok.clone(),
        ok_at_return + 50,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    // The same process recovered: no restart.
    assert_eq!(process.child.id(), pid);
    let log = process.log();
    assert!(log.contains("PKCS#11 token lost"), "{log}");
    assert!(log.contains("PKCS#11 token reconnected"), "{log}");
    sign_and_verify(&channel, &key, b"after recovery").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_moves_database_keys_into_the_token() {
    let Some(hsm) = Hsm::new("import_moves_database_keys_into_the_token") else {
        return;
    };
    let pki = Pki::new();
    let db = TestDb::sqlite();
    let TestDb::Sqlite { path: db_path, .. } = &db else {
        unreachable!()
    };
    // Keys made the old way: encrypted in private_keys.
    let store = db.store("alias1", Passphrases::fixed([("alias1", "pw")]));
    let active = store
        .create_key("example.com/old", "timestamp", &KeyType::Ecdsa)
        .await
        .unwrap();
    store.mark_active(&active.key_id()).await.unwrap();
    let pending = store
        .create_key("example.com/old", "snapshot", &KeyType::Ed25519)
        .await
        .unwrap();
    let deleted = store
        .create_key("example.com/gone", "timestamp", &KeyType::Ecdsa)
        .await
        .unwrap();
    store.delete_key(&deleted.key_id()).await.unwrap();
    drop(store);

    let config = pkcs11_config(&pki, db_path, free_port(), json!({}));
    let import = |dry_run: bool| {
        let mut cmd = signer_on_token(&hsm, &config, Some(PIN));
        cmd.arg("pkcs11-import").env("NOTARY_SIGNER_ALIAS1", "pw");
        if dry_run {
            cmd.arg("--dry-run");
        }
        run(&mut cmd)
    };
    let live_in_db = "SELECT COUNT(*) FROM private_keys WHERE deleted_at IS NULL";

    let (ok, out, err) = import(true);
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("would import key ").count(), 2, "{out}");
    assert!(out.contains("would import 2 key(s); 0 failed"), "{out}");
    assert!(hsm.private_keys().is_empty(), "a dry run creates nothing");
    assert_eq!(count(db_path, live_in_db), 2);

    let (ok, out, err) = import(false);
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 2 key(s); 0 failed"), "{out}");
    // The old rows stay, soft-deleted, for rollback; the deleted key was left alone.
    assert_eq!(count(db_path, live_in_db), 0);
    assert_eq!(count(db_path, "SELECT COUNT(*) FROM private_keys"), 3);
    assert_eq!(
        count(
            db_path,
            "SELECT COUNT(*) FROM pkcs11_keys WHERE imported AND deleted_at IS NULL"
        ),
        2
    );
    assert_eq!(
        count(
            db_path,
            "SELECT COUNT(*) FROM pkcs11_keys WHERE last_used IS NULL"
        ),
        1,
        "the pending key stays pending"
    );
    let objects = hsm.private_keys();
    assert_eq!(objects.len(), 2, "{}", hsm.objects());
    for (id, access) in &objects {
        assert!(
            [active.key_id(), pending.key_id()].contains(id),
            "unexpected object {id}"
        );
        let flags: Vec<&str> = access.split(", ").collect();
        assert!(flags.contains(&"sensitive"), "{access}");
        assert!(!flags.contains(&"extractable"), "{access}");
    }

    // Repeating is harmless.
    let (ok, out, _) = import(false);
    assert!(ok && out.contains("imported 0 key(s); 0 failed"), "{out}");

    // The signer now signs with the token's copies, without any passphrase.
    let process = start(&pki, &hsm, db_path, json!({})).await;
    let channel = process.channel(&pki).await;
    for key in [&active, &pending] {
        assert_eq!(key_info(&channel, &key.key_id()).await.unwrap().0, *key);
        sign_and_verify(&channel, key, b"signed by the imported key").await;
    }
    assert_eq!(
        key_info(&channel, &deleted.key_id())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}
