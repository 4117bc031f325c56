//! The notary-signer binary: flags, startup errors, serving, and the maintenance commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use notary_signer::keystore::{KeyStore, Passphrases};
use notary_tuf::keys::KeyType;
use serde_json::json;

use crate::support::{Pki, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_notary-signer");

/// A signer command with a clean NOTARY_SIGNER_* environment.
pub(crate) fn signer(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("NOTARY_SIGNER_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Writes a Go-format signer config next to the PKI files (relative paths on purpose).
pub(crate) fn write_config(pki: &Pki, port: u16, storage: serde_json::Value) -> PathBuf {
    let path = pki.path("signer-config.json");
    let cfg = json!({
        "server": {
            "grpc_addr": format!("127.0.0.1:{port}"),
            "tls_cert_file": "server.crt",
            "tls_key_file": "server.key",
            "client_ca_file": "root-ca.crt"
        },
        "logging": {"level": "info"},
        "storage": storage
    });
    std::fs::write(&path, cfg.to_string()).unwrap();
    path
}

fn sqlite_storage(db: &Path, alias: &str) -> serde_json::Value {
    json!({"backend": "sqlite3", "db_url": db.to_str().unwrap(), "default_alias": alias})
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn help_lists_every_flag_and_version_prints() {
    let (ok, out, _) = run(&mut signer(&["--help"]));
    assert!(ok);
    for flag in [
        "--config",
        "--logf",
        "--debug",
        "--version",
        "migrate",
        "rotate-alias",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}:\n{out}");
    }
    let (ok, out, _) = run(&mut signer(&["-version"]));
    assert!(ok);
    assert_eq!(
        out.trim(),
        format!("notary-signer {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn startup_errors_name_the_problem() {
    let pki = Pki::new();
    let db = pki.path("keys.db");
    let cfg = |storage| write_config(&pki, free_port(), storage);

    // No config file at all.
    let (ok, _, err) = run(&mut signer(&[]));
    assert!(!ok);
    assert!(err.contains("-config"), "{err}");

    // Missing passphrase for the default alias: the variable is named.
    let path = cfg(sqlite_storage(&db, "myalias"));
    let (ok, _, err) = run(&mut signer(&["-config", path.to_str().unwrap()]));
    assert!(!ok);
    assert!(err.contains("NOTARY_SIGNER_MYALIAS"), "{err}");

    // No default alias.
    let path = cfg(json!({"backend": "sqlite3", "db_url": db.to_str().unwrap()}));
    let (ok, _, err) = run(&mut signer(&["-config", path.to_str().unwrap()]));
    assert!(!ok);
    assert!(
        err.contains("must provide a default alias for the key DB"),
        "{err}"
    );

    // Unreadable certificate: file and setting are named.
    let path = cfg(sqlite_storage(&db, "a"));
    let mut text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    text["server"]["tls_cert_file"] = json!("nope.crt");
    std::fs::write(&path, text.to_string()).unwrap();
    let (ok, _, err) =
        run(signer(&["-config", path.to_str().unwrap()]).env("NOTARY_SIGNER_A", "pw"));
    assert!(!ok);
    assert!(
        err.contains("server.tls_cert_file") && err.contains("nope.crt"),
        "{err}"
    );

    // Unreachable database: backend and host named, password not shown.
    let dead = free_port();
    let path = cfg(json!({
        "backend": "mysql",
        "db_url": format!("signer:hunter2secret@tcp(127.0.0.1:{dead})/notarysigner?parseTime=True"),
        "default_alias": "a"
    }));
    let (ok, _, err) =
        run(signer(&["-config", path.to_str().unwrap()]).env("NOTARY_SIGNER_A", "pw"));
    assert!(!ok);
    assert!(
        err.contains("mysql") && err.contains(&format!("127.0.0.1:{dead}")),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");

    // Bad log level, Go's message.
    let path = cfg(sqlite_storage(&db, "a"));
    let (ok, _, err) = run(signer(&["-config", path.to_str().unwrap()])
        .env("NOTARY_SIGNER_A", "pw")
        .env("NOTARY_SIGNER_LOGGING_LEVEL", "2"));
    assert!(!ok);
    assert!(err.contains(r#"not a valid logrus Level: "2""#), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_go_flags_and_stops_on_sigterm() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let pki = Pki::new();
    let port = free_port();
    // The db_url comes from the environment override, relative to the config directory.
    let path = write_config(
        &pki,
        port,
        json!({"backend": "sqlite3", "db_url": "ignored.db", "default_alias": "alias1"}),
    );
    let mut child = signer(&["-config", path.to_str().unwrap(), "-logf", "logfmt"])
        .env("NOTARY_SIGNER_ALIAS1", "pw")
        .env("NOTARY_SIGNER_STORAGE_DB_URL", "from-env.db")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "signer did not start: {:?}",
        child.wait_with_output().unwrap()
    );
    assert!(pki.path("from-env.db").exists());
    assert!(!pki.path("ignored.db").exists());

    let channel = crate::support::channel_to_port(&pki, port).await;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "grpc.health.v1.Health.KeyManagement".into(),
        })
        .await
        .unwrap();

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // logfmt lines, as -logf asked.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("level=info msg=\"notary-signer serving gRPC\""),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_rotate_alias_commands() {
    let pki = Pki::new();
    let db = TestDb::sqlite();
    let TestDb::Sqlite { path: db_path, .. } = &db else {
        unreachable!()
    };
    let path = write_config(&pki, free_port(), sqlite_storage(db_path, "old"));
    let config = path.to_str().unwrap();

    let (ok, out, err) = run(&mut signer(&["-config", config, "migrate"]));
    assert!(ok, "{err}");
    assert!(out.contains("applied"), "{out}");
    let (ok, out, _) = run(&mut signer(&["migrate", "-config", config]));
    assert!(ok);
    assert!(out.contains("up to date"), "{out}");

    let old = db.store("old", Passphrases::fixed([("old", "old pw")]));
    let key = old
        .create_key("g", "timestamp", &KeyType::Ecdsa)
        .await
        .unwrap();

    // The new passphrase is required.
    let (ok, _, err) = run(signer(&[
        "-config",
        config,
        "rotate-alias",
        "-from",
        "old",
        "-to",
        "new",
    ])
    .env("NOTARY_SIGNER_OLD", "old pw"));
    assert!(!ok);
    assert!(err.contains("NOTARY_SIGNER_NEW"), "{err}");

    let (ok, out, err) = run(signer(&[
        "-config",
        config,
        "rotate-alias",
        "--from",
        "old",
        "--to",
        "new",
    ])
    .env("NOTARY_SIGNER_OLD", "old pw")
    .env("NOTARY_SIGNER_NEW", "new pw"));
    assert!(ok, "{err}");
    assert!(out.contains("re-encrypted 1 key(s)"), "{out}");

    let new = db.store("new", Passphrases::fixed([("new", "new pw")]));
    assert_eq!(new.get_key(&key.key_id()).await.unwrap().public, key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_serve_without_client_ca_unless_insecure_is_explicit() {
    let pki = Pki::new();
    let port = free_port();
    let path = write_config(&pki, port, sqlite_storage(&pki.path("keys.db"), "a"));
    let mut text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    text["server"]
        .as_object_mut()
        .unwrap()
        .remove("client_ca_file");
    std::fs::write(&path, text.to_string()).unwrap();
    let config = path.to_str().unwrap();

    // Go would serve every client here; we stop with one line naming the setting.
    let (ok, _, err) = run(signer(&["-config", config]).env("NOTARY_SIGNER_A", "pw"));
    assert!(!ok, "started without a client CA");
    assert!(
        err.contains("server.client_ca_file") && err.contains("server.insecure_no_client_auth"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // The explicit opt-out starts it, with an error-level warning.
    let mut child = signer(&["-config", config, "-logf", "logfmt"])
        .env("NOTARY_SIGNER_A", "pw")
        .env("NOTARY_SIGNER_SERVER_INSECURE_NO_CLIENT_AUTH", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .ok();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(up, "signer did not start with the opt-out: {log}");
    assert!(
        log.contains("level=error") && log.contains("INSECURE"),
        "{log}"
    );
}
