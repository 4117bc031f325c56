//! Token authentication end to end: our notary-server (MariaDB) + notary-signer behind
//! `auth.type = "token"`, with a registry-style token issuer (`notary_e2e::token_issuer`)
//! signing ES256 JWTs with an `x5c` chain, driven by the stock `notary` CLI and the
//! Docker CLI.
//!
//! - The notary CLI follows the server's Bearer challenge: publishing with `NOTARY_AUTH`
//!   credentials of a push user works, anonymous listing works with the anonymous pull
//!   grant, a pull-only user cannot publish (`insufficient_scope`), and deleting a
//!   repository needs a `*` grant.
//! - The same flow against the Go reference server (control) shows the issuer behaves
//!   like a token server the Go code accepts.
//! - The Docker CLI, after `docker login` to the (auth-less) registry, sends those
//!   credentials to the issuer for a push scope, signs a push, and pulls anonymously.
//!
//! Also checked on our server: TLS below 1.2 is refused, health and metrics need no
//! token, the access log names the token's account, and the signer and pool metrics are
//! exported.
//!
//! Needs root (Docker part), MariaDB, the Go `notary` package, curl, openssl and our
//! release binaries; see `notary_e2e::check_prerequisites`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use notary_e2e::dct::{self, DockerEnv};
use notary_e2e::token_issuer::{IssuerConfig, TokenIssuer, User};
use notary_e2e::{go_bin, make_pki, our_bin, random_suffix};
use serde_json::{json, Value};

const SERVICE: &str = "notary-e2e";
const ISSUER: &str = "e2e-token-issuer";

fn users() -> Vec<User> {
    vec![
        User::new("alice", "alice-pw", &["push", "pull"]),
        User::new("reader", "reader-pw", &["pull"]),
        User::new("admin", "admin-pw", &["*"]),
    ]
}

/// A child process we started, killed (by its handle) on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mysql://user:pass@host:port` of the test account.
fn mysql_url() -> String {
    std::env::var("NOTARY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://notary_test:notary_test_pw@127.0.0.1:3306".into())
}

/// (user, password, host, port) of [`mysql_url`].
fn mysql_parts() -> (String, String, String, String) {
    let url = mysql_url();
    let rest = url.trim_start_matches("mysql://").trim_end_matches('/');
    let (creds, addr) = rest
        .split_once('@')
        .expect("user@host in NOTARY_TEST_MYSQL_URL");
    let (user, pass) = creds.split_once(':').unwrap_or((creds, ""));
    let (host, port) = addr.split_once(':').unwrap_or((addr, "3306"));
    (user.into(), pass.into(), host.into(), port.into())
}

fn mariadb(sql: &str) {
    let (user, pass, host, port) = mysql_parts();
    let out = Command::new("mariadb")
        .args([
            "-u",
            &user,
            &format!("-p{pass}"),
            "-h",
            &host,
            "-P",
            &port,
            "-e",
            sql,
        ])
        .output()
        .expect("run mariadb");
    assert!(out.status.success(), "mariadb {sql}: {out:?}");
}

/// A server (ours or Go's) with token auth, its issuer and, for ours, a signer and a
/// MariaDB database. Everything stops on drop.
struct AuthStack {
    dir: tempfile::TempDir,
    issuer: TokenIssuer,
    url: String,
    ca: PathBuf,
    procs: Vec<Proc>,
    db: Option<String>,
}

impl Drop for AuthStack {
    fn drop(&mut self) {
        self.procs.clear();
        if let Some(db) = &self.db {
            mariadb(&format!("DROP DATABASE IF EXISTS `{db}`"));
        }
    }
}

fn gen_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    make_pki(&certs);
    certs
}

fn start_issuer(port: u16, certs: &Path) -> TokenIssuer {
    TokenIssuer::start(IssuerConfig {
        port,
        // Same CA as the notary server, so clients that trust the server trust the issuer.
        tls_cert: certs.join("notary-server.crt"),
        tls_key: certs.join("notary-server.key"),
        issuer: ISSUER.into(),
        service: SERVICE.into(),
        users: users(),
        anonymous: Some(vec!["pull".into()]),
        ttl: Duration::from_secs(300),
    })
}

fn auth_section(issuer: &TokenIssuer) -> Value {
    json!({"type": "token", "options": {
        "realm": issuer.realm, "service": SERVICE, "issuer": ISSUER,
        "rootcertbundle": issuer.root_bundle()}})
}

impl AuthStack {
    /// Our signer (SQLite) and server (MariaDB, `-migrate`), HTTPS on `server_port`.
    fn ours(server_port: u16, signer_port: u16, issuer_port: u16) -> AuthStack {
        let dir = tempfile::Builder::new()
            .prefix("e2e-auth-")
            .tempdir()
            .unwrap();
        let certs = gen_certs(dir.path());
        let issuer = start_issuer(issuer_port, &certs);
        let db = format!("e2e_auth_{}", random_suffix());
        mariadb(&format!("CREATE DATABASE `{db}`"));
        let (user, pass, host, port) = mysql_parts();
        let mut stack = AuthStack {
            url: format!("https://localhost:{server_port}"),
            ca: certs.join("root-ca.crt"),
            issuer,
            procs: Vec::new(),
            db: Some(db.clone()),
            dir,
        };
        let signer_config = json!({
            "server": {"grpc_addr": format!("127.0.0.1:{signer_port}"),
                "tls_cert_file": "certs/notary-signer.crt", "tls_key_file": "certs/notary-signer.key",
                "client_ca_file": "certs/root-ca.crt"},
            "logging": {"level": "info"},
            "storage": {"backend": "sqlite3", "db_url": "signer.db", "default_alias": "authalias"}
        });
        stack.spawn(
            our_bin("notary-signer"),
            "signer",
            &signer_config,
            &[("NOTARY_SIGNER_AUTHALIAS", "e2e-auth-passphrase")],
            &[],
        );
        stack.wait_for("signer port", || {
            std::net::TcpStream::connect(("127.0.0.1", signer_port)).is_ok()
        });
        let server_config = json!({
            "server": {"http_addr": format!("127.0.0.1:{server_port}"),
                "tls_cert_file": "certs/notary-server.crt", "tls_key_file": "certs/notary-server.key"},
            "trust_service": {"type": "remote", "hostname": "127.0.0.1", "port": signer_port.to_string(),
                "key_algorithm": "ecdsa", "tls_ca_file": "certs/root-ca.crt",
                "tls_client_cert": "certs/notary-server-client.crt",
                "tls_client_key": "certs/notary-server-client.key"},
            "storage": {"backend": "mysql",
                "db_url": format!("{user}:{pass}@tcp({host}:{port})/{db}?parseTime=True")},
            "logging": {"level": "info"},
            "auth": auth_section(&stack.issuer),
            // The admin listener, to read the audit trail (client certificate of the test PKI).
            "admin": {"http_addr": format!("127.0.0.1:{}", server_port + 1000),
                "client_ca_file": "certs/root-ca.crt"}
        });
        stack.spawn(
            our_bin("notary-server"),
            "server",
            &server_config,
            &[],
            &["-migrate", "-logf", "json"],
        );
        stack.wait_healthy();
        stack
    }

    /// Go's notary-server (memory store, local trust service) with the same auth.
    fn go(server_port: u16, issuer_port: u16) -> AuthStack {
        let dir = tempfile::Builder::new()
            .prefix("e2e-auth-go-")
            .tempdir()
            .unwrap();
        let certs = gen_certs(dir.path());
        let issuer = start_issuer(issuer_port, &certs);
        let mut stack = AuthStack {
            url: format!("https://localhost:{server_port}"),
            ca: certs.join("root-ca.crt"),
            issuer,
            procs: Vec::new(),
            db: None,
            dir,
        };
        let config = json!({
            "server": {"http_addr": format!("127.0.0.1:{server_port}"),
                "tls_cert_file": certs.join("notary-server.crt"),
                "tls_key_file": certs.join("notary-server.key")},
            "trust_service": {"type": "local"},
            "storage": {"backend": "memory"},
            "logging": {"level": "info"},
            "auth": auth_section(&stack.issuer)
        });
        stack.spawn(go_bin("notary-server"), "server", &config, &[], &[]);
        stack.wait_healthy();
        stack
    }

    fn spawn(
        &mut self,
        bin: PathBuf,
        name: &str,
        config: &Value,
        env: &[(&str, &str)],
        args: &[&str],
    ) {
        let config_path = self.dir.path().join(format!("{name}-config.json"));
        std::fs::write(&config_path, serde_json::to_string_pretty(config).unwrap()).unwrap();
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg("-config")
            .arg(&config_path)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.procs.push(Proc { child, log });
    }

    fn wait_for(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready() {
            for p in &mut self.procs {
                if let Ok(Some(status)) = p.child.try_wait() {
                    panic!(
                        "a service exited ({status}) waiting for {what}:\n{}",
                        self.logs()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_healthy(&mut self) {
        let (url, ca) = (self.url.clone(), self.ca.clone());
        self.wait_for("server health", || {
            curl(
                &ca,
                &["-o", "/dev/null", &format!("{url}/_notary_server/health")],
            )
            .0 == 200
        });
    }

    fn server_log(&self) -> String {
        notary_e2e::settled_log(&self.dir.path().join("server.log"))
    }

    fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- {}\n{}",
                    p.log.display(),
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The stock notary CLI with `trust_dir`, as `auth` (user, password) or anonymous.
    fn notary(
        &self,
        trust_dir: &Path,
        auth: Option<(&str, &str)>,
        args: &[&str],
    ) -> (bool, String) {
        let mut cmd = Command::new("timeout");
        cmd.arg("120")
            .arg("notary")
            .arg("-s")
            .arg(&self.url)
            .arg("--tlscacert")
            .arg(&self.ca)
            .arg("-d")
            .arg(trust_dir)
            .args(args)
            .env("NOTARY_ROOT_PASSPHRASE", "e2e-root-passphrase")
            .env("NOTARY_TARGETS_PASSPHRASE", "e2e-targets-passphrase")
            .env("NOTARY_SNAPSHOT_PASSPHRASE", "e2e-snapshot-passphrase")
            .env("NOTARY_DELEGATION_PASSPHRASE", "e2e-delegation-passphrase")
            .env_remove("NOTARY_AUTH")
            // Anonymous runs must never wait for a username on stdin.
            .stdin(Stdio::null());
        if let Some((user, pass)) = auth {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            cmd.env("NOTARY_AUTH", b64);
        }
        let out = cmd.output().expect("run notary");
        (out.status.success(), text(&out))
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `curl -sS --cacert CA -D - ARGS`: (status, headers, body).
fn curl(ca: &Path, args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-D", "-"])
        .args(args)
        .output()
        .expect("run curl");
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

fn prerequisites(bins: &[&Path]) -> bool {
    notary_e2e::require(bins)
}

/// The notary CLI flow shared by our server and the Go control.
/// `go_reference`: the stack runs the Go server (the control).
fn notary_cli_flow(stack: &AuthStack, go_reference: bool) {
    let gun = format!("example.com/auth/app-{}", random_suffix());
    let alice_dir = tempfile::tempdir().unwrap();
    let target = alice_dir.path().join("target.txt");
    std::fs::write(&target, b"token auth target").unwrap();
    let alice = Some(("alice", "alice-pw"));
    let ctx = || {
        format!(
            "{}\n{}",
            stack.logs(),
            stack
                .server_log()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    // The ping is challenged; clients learn the realm from it.
    let (status, head, _) = curl(&stack.ca, &[&format!("{}/v2/", stack.url)]);
    assert_eq!(status, 401);
    assert_eq!(
        header(&head, "www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"{}\",service=\"{SERVICE}\",scope=\"registry:catalog:*\"",
                stack.issuer.realm
            )
            .as_str()
        )
    );

    // Publish as alice (push, pull).
    let (ok, out) = stack.notary(alice_dir.path(), alice, &["init", &gun]);
    assert!(ok, "init: {out}\n{}", ctx());
    let (ok, out) = stack.notary(
        alice_dir.path(),
        alice,
        &["add", &gun, "v1", target.to_str().unwrap()],
    );
    assert!(ok, "add: {out}");
    let (ok, out) = stack.notary(alice_dir.path(), alice, &["publish", &gun]);
    assert!(ok, "publish: {out}\n{}", ctx());
    let push_scope = format!("repository:{gun}:push,pull");
    assert!(
        stack
            .issuer
            .requests()
            .iter()
            .any(|r| r.user.as_deref() == Some("alice")
                && r.status == 200
                && r.scopes.contains(&push_scope)),
        "alice never asked for {push_scope}: {:?}",
        stack.issuer.requests()
    );

    // Anyone may list with the anonymous pull grant.
    let reader_dir = tempfile::tempdir().unwrap();
    let (ok, out) = stack.notary(reader_dir.path(), None, &["list", &gun]);
    assert!(ok && out.contains("v1"), "anonymous list: {out}\n{}", ctx());
    let pull_scope = format!("repository:{gun}:pull");
    assert!(
        stack
            .issuer
            .requests()
            .iter()
            .any(|r| r.user.is_none() && r.scopes.contains(&pull_scope)),
        "no anonymous pull token: {:?}",
        stack.issuer.requests()
    );

    // A pull-only user cannot publish, even with the repository's keys.
    let (ok, _) = stack.notary(
        alice_dir.path(),
        alice,
        &["add", &gun, "v2", target.to_str().unwrap()],
    );
    assert!(ok);
    let (ok, out) = stack.notary(
        alice_dir.path(),
        Some(("reader", "reader-pw")),
        &["publish", &gun],
    );
    assert!(!ok, "a pull-only user published: {out}");

    // The same refusal, seen on the wire with a token the issuer gave the reader.
    let (status, _, body) = curl(
        &stack.ca,
        &[
            "-u",
            "reader:reader-pw",
            &format!(
                "{}?service={SERVICE}&scope=repository:{gun}:push,pull",
                stack.issuer.realm
            ),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap();
    let (status, head, body) = curl(
        &stack.ca,
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{}/v2/{gun}/_trust/tuf/", stack.url),
        ],
    );
    assert_eq!(status, 401, "{head}{body}");
    let challenge = |scope: &str| {
        format!(
            "Bearer realm=\"{}\",service=\"{SERVICE}\",scope=\"{scope}\",error=\"insufficient_scope\"",
            stack.issuer.realm
        )
    };
    let got = header(&head, "www-authenticate").unwrap_or_default();
    // The Go server lists a scope's actions in map order, so either order comes back
    // from it; ours always says push,pull.
    let pull_push = format!("repository:{gun}:pull,push");
    assert!(
        got == challenge(&push_scope) || (go_reference && got == challenge(&pull_push)),
        "challenge {got:?}, expected {:?}",
        challenge(&push_scope)
    );
    let envelope: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope["errors"][0]["code"], "UNAUTHORIZED");
    // The pull part of that token works.
    let (status, _, _) = curl(
        &stack.ca,
        &[
            "-o",
            "/dev/null",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{}/v2/{gun}/_trust/tuf/root.json", stack.url),
        ],
    );
    assert_eq!(status, 200);

    // Deleting needs `*`: alice cannot, admin can.
    let (ok, out) = stack.notary(alice_dir.path(), alice, &["delete", &gun, "--remote"]);
    assert!(!ok, "alice deleted the repository: {out}");
    let (ok, out) = stack.notary(
        alice_dir.path(),
        Some(("admin", "admin-pw")),
        &["delete", &gun, "--remote"],
    );
    assert!(ok, "admin delete: {out}\n{}", ctx());
    // A fresh client (no cached metadata) finds nothing.
    let fresh = tempfile::tempdir().unwrap();
    let (ok, out) = stack.notary(fresh.path(), None, &["list", &gun]);
    assert!(
        !ok && out.contains("does not have trust data"),
        "the repository survived its deletion: {out}"
    );
}

#[test]
fn notary_cli_follows_token_auth_on_our_server_and_signer() {
    let server = our_bin("notary-server");
    let signer = our_bin("notary-signer");
    if prerequisites(&[&server, &signer]) {
        return;
    }
    let stack = AuthStack::ours(24464, 27964, 24465);
    notary_cli_flow(&stack, false);

    // The audit trail names the token subjects: alice published, admin deleted.
    let certs = stack.dir.path().join("certs");
    let (status, _, body) = curl(
        &stack.ca,
        &[
            "--cert",
            certs.join("notary-server-client.crt").to_str().unwrap(),
            "--key",
            certs.join("notary-server-client.key").to_str().unwrap(),
            "https://localhost:25464/_notary_server/admin/audit?limit=1000",
        ],
    );
    assert_eq!(status, 200, "{body}\n{}", stack.logs());
    let entries: Value = serde_json::from_str(&body).unwrap();
    let entries = entries["entries"].as_array().unwrap();
    let by = |action: &str, actor: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["actor"] == actor && e["actor_kind"] == "token")
    };
    assert!(by("update", "alice"), "no update by alice: {body}");
    assert!(by("delete", "admin"), "no delete by admin: {body}");

    // The access log names the account of accepted tokens.
    let log = stack.server_log();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["msg"] == "response completed"
            && l["method"] == "POST"
            && l["status"] == 200
            && l["account"] == "alice"),
        "no access-log line for alice's publish:\n{log}"
    );
    assert!(
        lines.iter().any(|l| l["msg"] == "response completed"
            && l["method"] == "POST"
            && l["status"] == 401),
        "no access-log line for the refused publish:\n{log}"
    );

    // Health and metrics need no token; metrics show signer calls and the pool.
    let (status, _, body) = curl(
        &stack.ca,
        &[&format!("{}/_notary_server/health", stack.url)],
    );
    assert_eq!((status, body.as_str()), (200, "{}"));
    let (status, _, metrics) = curl(&stack.ca, &[&format!("{}/metrics", stack.url)]);
    assert_eq!(status, 200);
    for needle in [
        "notary_server_signer_call_duration_seconds_count{outcome=\"ok\",rpc=\"Sign\"}",
        "notary_server_signer_call_duration_seconds_count{outcome=\"ok\",rpc=\"CreateKey\"}",
        "notary_server_db_pool_connections{state=\"idle\"}",
        "notary_server_db_pool_connections{state=\"in_use\"}",
        "notary_server_http_requests_total{code=\"401\",operation=\"UpdateTUF\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }

    // TLS 1.2 and 1.3 only.
    let port = stack.url.rsplit(':').next().unwrap().to_owned();
    let s_client = |version: &str| {
        let out = Command::new("timeout")
            .args(["20", "openssl", "s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(version)
            // Let the client offer old versions at all (Debian's default level forbids it).
            .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        (out.status.success(), text(&out))
    };
    let (ok, out) = s_client("-tls1_2");
    assert!(ok && out.contains("TLSv1.2"), "TLS 1.2 refused: {out}");
    for old in ["-tls1_1", "-tls1"] {
        let (ok, out) = s_client(old);
        assert!(!ok, "{old} accepted: {out}");
        assert!(
            // An alert from the server (rustls sends handshake_failure), not a local refusal.
            out.contains("alert protocol version") || out.contains("alert handshake failure"),
            "{old} did not fail on the server's refusal: {out}"
        );
    }
}

#[test]
fn notary_cli_follows_token_auth_on_the_go_reference_control() {
    let server = go_bin("notary-server");
    if prerequisites(&[&server]) {
        return;
    }
    let stack = AuthStack::go(24466, 24467);
    notary_cli_flow(&stack, true);
}

#[test]
fn docker_cli_sends_login_credentials_to_the_issuer_and_signs() {
    let server = our_bin("notary-server");
    let signer = our_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let stack = AuthStack::ours(24468, 27968, 24469);
    let docker = DockerEnv::start(25461);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("docker-config");
    let notary_hostport = stack.url.trim_start_matches("https://");
    let ca_dir = config.join("tls").join(notary_hostport);
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::copy(&stack.ca, ca_dir.join("ca.crt")).unwrap();
    let run = |args: &[&str], dct: bool| -> (bool, String) {
        let mut cmd = Command::new("timeout");
        cmd.arg("180")
            .arg(docker.docker())
            .args(args)
            .envs(docker.env())
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_CONTENT_TRUST_SERVER", &stack.url)
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "e2e-docker-root")
            .env(
                "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
                "e2e-docker-repo",
            )
            .stdin(Stdio::null());
        if dct {
            cmd.env("DOCKER_CONTENT_TRUST", "1");
        } else {
            cmd.env_remove("DOCKER_CONTENT_TRUST");
        }
        let out = cmd.output().expect("run docker");
        (out.status.success(), text(&out))
    };
    let ctx = || format!("{}\n{}", stack.logs(), docker.logs());
    let registry = docker.registry();
    let image = format!("{registry}/auth/app-{}:1", random_suffix());
    let gun = image.trim_end_matches(":1").to_owned();

    let (ok, out) = run(
        &["login", &registry, "-u", "alice", "-p", "alice-pw"],
        false,
    );
    assert!(ok, "docker login: {out}\n{}", ctx());

    let made = Command::new(dct::dct_dir().join("make-test-image.sh"))
        .arg(&image)
        .envs(docker.env())
        .output()
        .expect("make-test-image.sh");
    assert!(made.status.success(), "make-test-image.sh: {}", text(&made));

    // Signed push: the CLI needs push on the GUN and sends alice's registry login.
    let (ok, out) = run(&["push", &image], true);
    assert!(
        ok && out.contains(&format!("Successfully signed {image}")),
        "docker push with DCT: {out}\n{}",
        ctx()
    );
    let push_scope = format!("repository:{gun}:push,pull");
    let alice_push = stack.issuer.requests().into_iter().find(|r| {
        r.user.as_deref() == Some("alice")
            && r.scopes
                .iter()
                .any(|s| s == &push_scope || s == &format!("repository:{gun}:pull,push"))
    });
    let alice_push = alice_push
        .unwrap_or_else(|| panic!("no push token for alice: {:?}", stack.issuer.requests()));
    assert_eq!(alice_push.account.as_deref(), Some("alice"));
    assert_eq!(alice_push.status, 200);

    let (ok, out) = run(&["trust", "inspect", &gun], false);
    assert!(
        ok && out.contains("\"SignedTag\": \"1\""),
        "trust inspect: {out}"
    );

    // Logged out, the CLI is anonymous: pulling with DCT works, adding a signer does not.
    let (ok, out) = run(&["logout", &registry], false);
    assert!(ok, "docker logout: {out}");
    let _ = run(&["rmi", "-f", &image], false);
    let (ok, out) = run(&["pull", &image], true);
    assert!(
        ok && out.contains("Pull (1 of 1)"),
        "anonymous DCT pull: {out}\n{}",
        ctx()
    );
    let keys = work.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (ok, out) = {
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg(docker.docker())
            .args(["trust", "key", "generate", "bob", "--dir"])
            .arg(&keys)
            .env("DOCKER_CONFIG", &config)
            .env(
                "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
                "e2e-docker-repo",
            );
        let o = cmd.output().unwrap();
        (o.status.success(), text(&o))
    };
    assert!(ok, "key generate: {out}");
    let bob_pub = keys.join("bob.pub");
    let (ok, out) = run(
        &[
            "trust",
            "signer",
            "add",
            "--key",
            bob_pub.to_str().unwrap(),
            "bob",
            &gun,
        ],
        false,
    );
    assert!(!ok, "an anonymous client added a signer: {out}");
    // Logged in again, the same command works: only the credentials were missing.
    let (ok, out) = run(
        &["login", &registry, "-u", "alice", "-p", "alice-pw"],
        false,
    );
    assert!(ok, "docker login: {out}");
    let (ok, out) = run(
        &[
            "trust",
            "signer",
            "add",
            "--key",
            bob_pub.to_str().unwrap(),
            "bob",
            &gun,
        ],
        false,
    );
    assert!(ok, "signer add as alice: {out}\n{}", ctx());
    let (ok, out) = run(&["trust", "inspect", &gun], false);
    assert!(
        ok && out.contains("\"Name\": \"bob\""),
        "trust inspect: {out}"
    );
    let _ = run(&["rmi", "-f", &image], false);
}
