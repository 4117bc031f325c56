//! `compose/`: both variants, MariaDB (`docker-compose.yml`) and PostgreSQL
//! (`docker-compose.postgres.yml`), validate with `docker-compose config`, and each compose
//! file, the Dockerfiles, its sample configs, the dev certificates and its database init SQL
//! agree with each other. Images cannot be pulled here, so nothing is built or started.
//!
//! Needs `docker-compose` (Debian package; it brings the `python3-yaml` used to turn its
//! normalised output into JSON) and `openssl`. Missing tools fail the test unless
//! `NOTARY_E2E=skip`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use notary_e2e::workspace_root;
use serde_json::Value;

/// Where the config files live inside the containers; relative paths in them resolve here.
const CONFIG_DIR: &str = "/etc/notary";

fn compose_dir() -> PathBuf {
    workspace_root().join("compose")
}

/// One database variant of the compose stack. The Dockerfiles are shared.
struct Variant {
    /// Compose file in `compose/`.
    compose_file: &'static str,
    /// The database service, which is also the host name in both `db_url`s.
    db_service: &'static str,
    /// Its image, up to and including the `:`.
    db_image: &'static str,
    /// `storage.backend` of both sample configs.
    backend: &'static str,
    /// Sample configs in `compose/`, mounted under the same names in `/etc/notary/`.
    server_config: &'static str,
    signer_config: &'static str,
    /// Client library the runtime stage must install, and its build-stage `-dev` package.
    runtime_lib: &'static str,
    build_lib: &'static str,
}

const MARIADB: Variant = Variant {
    compose_file: "docker-compose.yml",
    db_service: "mysql",
    db_image: "mariadb:",
    backend: "mysql",
    server_config: "server-config.json",
    signer_config: "signer-config.json",
    runtime_lib: "libmariadb3",
    build_lib: "default-libmysqlclient-dev",
};

const POSTGRES: Variant = Variant {
    compose_file: "docker-compose.postgres.yml",
    db_service: "postgresql",
    db_image: "postgres:",
    backend: "postgres",
    server_config: "server-config.postgres.json",
    signer_config: "signer-config.postgres.json",
    runtime_lib: "libpq5",
    build_lib: "libpq-dev",
};

fn have(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// False when all tools are there; true (skip) or a panic otherwise, like `notary_e2e::require`.
fn missing_tools() -> bool {
    let mut missing = Vec::new();
    if !have("docker-compose", &["version"]) {
        missing.push("docker-compose (apt-get install docker-compose)");
    }
    if !have("python3", &["-c", "import yaml"]) {
        missing.push("python3-yaml (a docker-compose dependency)");
    }
    if !have("openssl", &["version"]) {
        missing.push("openssl");
    }
    if missing.is_empty() {
        return false;
    }
    let reason = missing.join(", ");
    if std::env::var("NOTARY_E2E").as_deref() == Ok("skip") {
        eprintln!("skipping compose test (NOTARY_E2E=skip): missing {reason}");
        true
    } else {
        panic!("compose test prerequisites missing: {reason}");
    }
}

/// `docker-compose config` (which validates the file and prints it normalised, with
/// absolute host paths), converted to JSON with the YAML library docker-compose itself uses.
fn compose_config(variant: &Variant) -> Value {
    let file = compose_dir().join(variant.compose_file);
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(&file)
        .arg("config")
        .output()
        .expect("run docker-compose config");
    assert!(
        out.status.success(),
        "docker-compose config rejected {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    py.stdin
        .take()
        .expect("stdin")
        .write_all(&out.stdout)
        .expect("write compose config");
    let conv = py.wait_with_output().expect("python3 output");
    assert!(
        conv.status.success(),
        "YAML to JSON failed: {}",
        String::from_utf8_lossy(&conv.stderr)
    );
    serde_json::from_slice(&conv.stdout).expect("compose config as JSON")
}

fn service<'a>(config: &'a Value, name: &str) -> &'a Value {
    config["services"]
        .get(name)
        .unwrap_or_else(|| panic!("compose file has no service {name}: {config}"))
}

/// A volume entry as (source, target): short syntax `src:dst[:mode]` (docker-compose 1.x
/// output) or long syntax `{source, target}` (Compose v2 output).
fn mounts(svc: &Value) -> Vec<(String, String)> {
    let list = svc["volumes"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|v| match v {
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                assert!(parts.len() >= 2, "volume entry {s:?} has no target");
                (parts[0].to_owned(), parts[1].to_owned())
            }
            Value::Object(o) => (
                o["source"].as_str().unwrap_or_default().to_owned(),
                o["target"].as_str().unwrap_or_default().to_owned(),
            ),
            other => panic!("unexpected volume entry {other}"),
        })
        .collect()
}

/// Maps a path inside the service's container to the host path it is mounted from
/// (longest matching bind mount), or `None` when no bind mount covers it.
fn host_path(svc: &Value, container_path: &Path) -> Option<PathBuf> {
    mounts(svc)
        .into_iter()
        .filter(|(src, _)| src.starts_with('/'))
        .filter_map(|(src, dst)| {
            let rest = container_path.strip_prefix(&dst).ok()?;
            // join("") would add a trailing slash, which breaks reading a mounted file.
            let host = if rest.as_os_str().is_empty() {
                PathBuf::from(&src)
            } else {
                Path::new(&src).join(rest)
            };
            Some((dst.len(), host))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, p)| p)
}

/// The sample config of `svc`: its mounted host file (must be `compose/<file>`) and JSON.
fn sample_config(config: &Value, svc_name: &str, file: &str) -> Value {
    let svc = service(config, svc_name);
    let in_container = Path::new(CONFIG_DIR).join(file);
    let host = host_path(svc, &in_container)
        .unwrap_or_else(|| panic!("{svc_name} does not mount {}", in_container.display()));
    assert_eq!(
        host,
        compose_dir().join(file),
        "{svc_name} mounts its config from elsewhere"
    );
    let command: Vec<&str> = svc["command"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        command
            .windows(2)
            .any(|w| w[0] == "-config" && Path::new(w[1]) == in_container),
        "{svc_name} command {command:?} does not use {}",
        in_container.display()
    );
    let text = std::fs::read_to_string(&host).expect("read sample config");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_str()
}

fn workspace_members() -> Vec<String> {
    let manifest =
        std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members line");
    let list = line
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .expect("members = [...]")
        .0;
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn compose_file_validates_and_builds_both_services_from_this_workspace() {
    if missing_tools() {
        return;
    }
    builds_both_services_from_this_workspace(&MARIADB);
}

#[test]
fn postgres_compose_file_validates_and_builds_both_services_from_this_workspace() {
    if missing_tools() {
        return;
    }
    builds_both_services_from_this_workspace(&POSTGRES);
}

fn builds_both_services_from_this_workspace(variant: &Variant) {
    let db = variant.db_service;
    let config = compose_config(variant);
    let names: BTreeSet<&str> = config["services"]
        .as_object()
        .expect("services")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([db, "notary-server", "notary-signer"]),
        "services of {}",
        variant.compose_file
    );
    assert!(
        service(&config, db)["image"]
            .as_str()
            .is_some_and(|i| i.starts_with(variant.db_image)),
        "{db} must use the {} image",
        variant.db_image
    );
    // Both services wait until the database answers its health check.
    assert!(
        service(&config, db).get("healthcheck").is_some(),
        "{db} has no healthcheck"
    );
    for svc in ["notary-server", "notary-signer"] {
        assert_eq!(
            service(&config, svc)["depends_on"][db]["condition"].as_str(),
            Some("service_healthy"),
            "{svc} must wait for a healthy {db}"
        );
    }

    let members = workspace_members();
    assert!(
        members.iter().any(|m| m == "notary-server"),
        "members: {members:?}"
    );
    for (svc_name, bin) in [
        ("notary-server", "notary-server"),
        ("notary-signer", "notary-signer"),
    ] {
        let build = &service(&config, svc_name)["build"];
        let context = PathBuf::from(build["context"].as_str().expect("build context"));
        assert_eq!(
            context.canonicalize().expect("context exists"),
            workspace_root().canonicalize().unwrap(),
            "{svc_name} builds from the repository root"
        );
        let dockerfile = context.join(build["dockerfile"].as_str().expect("dockerfile"));
        let text = std::fs::read_to_string(&dockerfile)
            .unwrap_or_else(|e| panic!("{}: {e}", dockerfile.display()));
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(
            froms.len(),
            2,
            "{}: builder and runtime stages",
            dockerfile.display()
        );
        assert!(froms[0].starts_with("FROM rust:"), "{}", froms[0]);
        assert_eq!(froms[1].trim(), "FROM debian:bookworm-slim");
        let (build_stage, run_stage) = text
            .split_once(froms[1])
            .expect("runtime stage follows the build stage");
        assert!(
            build_stage.contains(variant.build_lib),
            "{}: the build stage does not install {}",
            dockerfile.display(),
            variant.build_lib
        );
        for pkg in [variant.runtime_lib, "ca-certificates"] {
            assert!(
                run_stage.contains(pkg),
                "{}: the runtime stage does not install {pkg}",
                dockerfile.display()
            );
        }
        assert!(
            text.contains(&format!("cargo build --release --locked -p {bin}")),
            "{} does not build {bin}",
            dockerfile.display()
        );
        // cargo refuses a workspace with a member missing, and migrations are embedded.
        for dir in members.iter().map(String::as_str).chain(["migrations"]) {
            assert!(
                text.lines()
                    .any(|l| l.trim() == format!("COPY {dir} {dir}")),
                "{} does not copy {dir}/ into the build stage",
                dockerfile.display()
            );
        }
    }

    // The server is the only published service, and only on loopback.
    let ports = service(&config, "notary-server")["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!ports.is_empty(), "notary-server publishes no port");
    for p in &ports {
        let ip = match p {
            Value::String(s) => s.split(':').next().unwrap_or_default().to_owned(),
            Value::Object(o) => o
                .get("host_ip")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            other => panic!("unexpected port entry {other}"),
        };
        assert_eq!(ip, "127.0.0.1", "published port {p} is not loopback-only");
    }
    for svc in ["notary-signer", db] {
        assert!(
            service(&config, svc).get("ports").is_none(),
            "{svc} must not publish ports"
        );
    }

    let init = host_path(
        service(&config, db),
        Path::new("/docker-entrypoint-initdb.d"),
    )
    .unwrap_or_else(|| panic!("{db} mounts no init directory"));
    let sql: Vec<_> = std::fs::read_dir(&init)
        .expect("init dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .collect();
    assert!(!sql.is_empty(), "{} has no .sql file", init.display());
}

#[test]
fn sample_configs_parse_and_reference_mounted_files() {
    if missing_tools() {
        return;
    }
    configs_reference_mounted_files(&MARIADB);
}

#[test]
fn postgres_sample_configs_parse_and_reference_mounted_files() {
    if missing_tools() {
        return;
    }
    configs_reference_mounted_files(&POSTGRES);
}

fn configs_reference_mounted_files(variant: &Variant) {
    let config = compose_config(variant);
    let file_keys = [
        "server.tls_cert_file",
        "server.tls_key_file",
        "server.client_ca_file",
        "trust_service.tls_ca_file",
        "trust_service.tls_client_cert",
        "trust_service.tls_client_key",
    ];
    for (svc_name, file) in [
        ("notary-server", variant.server_config),
        ("notary-signer", variant.signer_config),
    ] {
        let json = sample_config(&config, svc_name, file);
        let svc = service(&config, svc_name);
        let mut seen = 0;
        for key in file_keys {
            let Some(rel) = str_at(&json, key) else {
                continue;
            };
            seen += 1;
            let in_container = Path::new(CONFIG_DIR).join(rel);
            let host = host_path(svc, &in_container).unwrap_or_else(|| {
                panic!(
                    "{file} {key} = {rel}: {} is not mounted",
                    in_container.display()
                )
            });
            assert!(
                host.is_file(),
                "{file} {key} = {rel}: {} (mounted from {}) does not exist",
                in_container.display(),
                host.display()
            );
        }
        assert!(seen >= 3, "{file} names only {seen} TLS files");
    }
}

/// `user:password@tcp(host:port)/database?params` (Go MySQL DSN).
fn parse_dsn(dsn: &str) -> (String, String, String, String) {
    let (auth, rest) = dsn.split_once("@tcp(").expect("user:pw@tcp(...)");
    let (user, pw) = auth.split_once(':').expect("user:password");
    let (addr, rest) = rest.split_once(")/").expect("tcp(host:port)/db");
    let host = addr.split_once(':').map_or(addr, |(h, _)| h);
    let db = rest.split('?').next().unwrap_or_default();
    (user.into(), pw.into(), host.into(), db.into())
}

/// A `postgres://user:password@host:port/database?params` `db_url` (lib/pq URL form).
struct PgUrl {
    user: String,
    password: String,
    host: String,
    port: u16,
    database: String,
    ssl_mode: Option<String>,
    /// The other query parameters.
    params: Vec<(String, String)>,
}

fn parse_pg_url(db_url: &str) -> PgUrl {
    let url = url::Url::parse(db_url).unwrap_or_else(|e| panic!("{db_url:?}: {e}"));
    assert!(
        matches!(url.scheme(), "postgres" | "postgresql"),
        "{db_url:?} is not a postgres:// URL"
    );
    let mut ssl_mode = None;
    let mut params = Vec::new();
    for (k, v) in url.query_pairs() {
        if k == "sslmode" {
            ssl_mode = Some(v.into_owned());
        } else {
            params.push((k.into_owned(), v.into_owned()));
        }
    }
    PgUrl {
        user: url.username().to_owned(),
        password: url.password().unwrap_or_default().to_owned(),
        host: url.host_str().unwrap_or_default().to_owned(),
        port: url.port().unwrap_or(5432),
        database: url.path().trim_start_matches('/').to_owned(),
        ssl_mode,
        params,
    }
}

/// The database service's init directory (name, for messages) and its `.sql` files in name
/// order, whitespace collapsed.
fn init_sql(config: &Value, variant: &Variant) -> (String, String) {
    let dir = host_path(
        service(config, variant.db_service),
        Path::new("/docker-entrypoint-initdb.d"),
    )
    .expect("init directory mounted");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let sql: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read sql"))
        .collect();
    let name = dir
        .file_name()
        .map(|n| format!("{}/", n.to_string_lossy()))
        .unwrap_or_default();
    (name, sql.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn databases_users_certificates_and_ports_agree() {
    if missing_tools() {
        return;
    }
    databases_certificates_and_ports_agree(&MARIADB);
}

#[test]
fn postgres_databases_roles_certificates_and_ports_agree() {
    if missing_tools() {
        return;
    }
    databases_certificates_and_ports_agree(&POSTGRES);
}

fn databases_certificates_and_ports_agree(variant: &Variant) {
    let config = compose_config(variant);
    let server = sample_config(&config, "notary-server", variant.server_config);
    let signer = sample_config(&config, "notary-signer", variant.signer_config);
    let (init, sql) = init_sql(&config, variant);

    let mut dbs = BTreeSet::new();
    let mut users = BTreeSet::new();
    for (name, svc, json) in [
        ("server", "notary-server", &server),
        ("signer", "notary-signer", &signer),
    ] {
        assert_eq!(
            str_at(json, "storage.backend"),
            Some(variant.backend),
            "{name} storage"
        );
        let db_url = str_at(json, "storage.db_url").expect("db_url");
        let (user, db, statements) = if variant.backend == "mysql" {
            let (user, pw, host, db) = parse_dsn(db_url);
            assert_eq!(
                host, variant.db_service,
                "{name} db host must be the compose service"
            );
            let statements = vec![
                format!("CREATE DATABASE IF NOT EXISTS `{db}`"),
                format!("CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{pw}'"),
                format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'%'"),
            ];
            (user, db, statements)
        } else {
            let PgUrl {
                user,
                password: pw,
                host,
                port,
                database: db,
                ssl_mode,
                params,
            } = parse_pg_url(db_url);
            assert_eq!(
                host, variant.db_service,
                "{name} db host must be the compose service"
            );
            assert_eq!(port, 5432, "{name} db port");
            assert!(!pw.is_empty(), "{name} db_url has no password");
            // Without sslmode our binaries (like Go's lib/pq) demand TLS, which the image
            // does not serve until it is configured: the sample must say what it uses.
            let ssl_mode = ssl_mode.unwrap_or_else(|| panic!("{name} db_url names no sslmode"));
            assert!(
                [
                    "disable",
                    "allow",
                    "prefer",
                    "require",
                    "verify-ca",
                    "verify-full"
                ]
                .contains(&ssl_mode.as_str()),
                "{name} sslmode {ssl_mode:?}"
            );
            // TLS files named in the URL are read inside the container: absolute and mounted.
            for (key, path) in &params {
                if !["sslrootcert", "sslcert", "sslkey"].contains(&key.as_str()) {
                    continue;
                }
                assert!(
                    path.starts_with('/'),
                    "{name} {key}={path} must be absolute"
                );
                let host = host_path(service(&config, svc), Path::new(path))
                    .unwrap_or_else(|| panic!("{name} {key}={path} is not mounted"));
                assert!(
                    host.is_file(),
                    "{name} {key}={path}: {} missing",
                    host.display()
                );
            }
            let statements = vec![
                format!("CREATE ROLE {user} LOGIN PASSWORD '{pw}';"),
                format!("CREATE DATABASE {db} OWNER {user}"),
                format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC;"),
            ];
            (user, db, statements)
        };
        for stmt in statements {
            assert!(sql.contains(&stmt), "{init} lacks {stmt:?} for the {name}");
        }
        dbs.insert(db);
        users.insert(user);
    }
    assert_eq!(
        dbs.len(),
        2,
        "server and signer must use separate databases"
    );
    assert_eq!(users.len(), 2, "server and signer must use separate users");

    // The server reaches the signer by its compose service name, which the signer
    // certificate must name, on the port the signer listens on.
    assert_eq!(str_at(&server, "trust_service.type"), Some("remote"));
    let hostname = str_at(&server, "trust_service.hostname").expect("hostname");
    service(&config, hostname);
    let grpc_port = str_at(&signer, "server.grpc_addr")
        .and_then(|a| a.rsplit_once(':'))
        .map(|(_, p)| p)
        .expect("grpc_addr with port");
    assert_eq!(str_at(&server, "trust_service.port"), Some(grpc_port));
    let cert_names = |svc: &str, cfg: &Value| {
        let rel = str_at(cfg, "server.tls_cert_file").expect("tls_cert_file");
        let host =
            host_path(service(&config, svc), &Path::new(CONFIG_DIR).join(rel)).expect("mounted");
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&host)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "{}: not a certificate",
            host.display()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let signer_sans = cert_names("notary-signer", &signer);
    assert!(
        signer_sans.contains(&format!("DNS:{hostname}")),
        "signer certificate does not name {hostname}: {signer_sans}"
    );
    let server_sans = cert_names("notary-server", &server);
    assert!(
        server_sans.contains("DNS:localhost"),
        "server certificate does not name localhost (the published address): {server_sans}"
    );

    // The signer's default alias needs its passphrase in the environment.
    let alias = str_at(&signer, "storage.default_alias").expect("default_alias");
    let var = format!("NOTARY_SIGNER_{}", alias.to_uppercase());
    let env = &service(&config, "notary-signer")["environment"];
    assert!(
        env.get(&var)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty()),
        "notary-signer has no {var} in its environment: {env}"
    );
    // The server creates its tables at start.
    let command = service(&config, "notary-server")["command"].to_string();
    assert!(
        command.contains("\"-migrate\""),
        "notary-server command {command} lacks -migrate"
    );
}

/// The PostgreSQL variant is the MariaDB one with another database: same images, ports,
/// certificates and signer environment, and sample configs that differ only in `storage`.
#[test]
fn postgres_variant_differs_from_mariadb_only_in_the_database() {
    if missing_tools() {
        return;
    }
    let maria = compose_config(&MARIADB);
    let pg = compose_config(&POSTGRES);
    for svc in ["notary-server", "notary-signer"] {
        for key in [
            "build",
            "image",
            "ports",
            "environment",
            "restart",
            "networks",
        ] {
            assert_eq!(
                service(&maria, svc).get(key),
                service(&pg, svc).get(key),
                "{svc} {key} differs between {} and {}",
                MARIADB.compose_file,
                POSTGRES.compose_file
            );
        }
        let certs = |c: &Value| host_path(service(c, svc), &Path::new(CONFIG_DIR).join("certs"));
        assert_eq!(certs(&maria), certs(&pg), "{svc} certificate mount");
    }
    for (svc, a, b) in [
        (
            "notary-server",
            MARIADB.server_config,
            POSTGRES.server_config,
        ),
        (
            "notary-signer",
            MARIADB.signer_config,
            POSTGRES.signer_config,
        ),
    ] {
        let mut a = sample_config(&maria, svc, a);
        let mut b = sample_config(&pg, svc, b);
        let (sa, sb) = (a["storage"].take(), b["storage"].take());
        assert_eq!(a, b, "{svc}: the sample configs differ outside storage");
        let keys = |s: &Value| -> BTreeSet<String> {
            s.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&sa), keys(&sb), "{svc}: storage keys differ");
        assert_eq!(
            sa.get("default_alias"),
            sb.get("default_alias"),
            "{svc}: default_alias differs (the compose files share the passphrase variable)"
        );
    }
}
