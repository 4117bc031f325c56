//! The sample configs in `compose/` start our binaries: the MariaDB init SQL, both config
//! files and the compose command lines are used as they are; only what Docker's network
//! would provide (listen addresses, the `mysql` and `notary-signer` host names) is overridden
//! through the documented `NOTARY_*` environment variables. Then the stock `notary` CLI's
//! basic flow runs against the result.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use notary_e2e::{our_bin, require, run_client_suite, workspace_root};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, args: &[&str], env: &[(&str, String)], log: &Path) -> Service {
    let log = std::fs::File::create(log).unwrap();
    Service(
        Command::new(our_bin(bin))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}")),
    )
}

fn wait_until(what: &str, logs: &Path, mut ready: impl FnMut() -> bool) {
    for _ in 0..240 {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let text = std::fs::read_to_string(logs).unwrap_or_default();
    panic!("{what} did not come up:\n{text}");
}

#[test]
fn compose_configs_start_our_binaries_and_serve_the_notary_cli() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let root = workspace_root();
    let compose = root.join("compose");
    let init = std::fs::read(compose.join("mysql-init/01-notary-databases.sql")).unwrap();
    let mut mariadb = Command::new("mariadb")
        .arg("-uroot")
        .stdin(Stdio::piped())
        .spawn()
        .expect("mariadb client");
    use std::io::Write;
    mariadb.stdin.take().unwrap().write_all(&init).unwrap();
    assert!(mariadb.wait().unwrap().success(), "mysql-init SQL failed");

    // /etc/notary in the containers: the two configs plus certs/ (mounted from certs/dev).
    let etc = tempfile::tempdir().unwrap();
    for f in ["server-config.json", "signer-config.json"] {
        std::fs::copy(compose.join(f), etc.path().join(f)).unwrap();
    }
    std::os::unix::fs::symlink(root.join("certs/dev"), etc.path().join("certs")).unwrap();
    let compose_yml = std::fs::read_to_string(compose.join("docker-compose.yml")).unwrap();
    let passphrase = compose_yml
        .lines()
        .find_map(|l| l.trim().strip_prefix("NOTARY_SIGNER_PASSWORDALIAS1:"))
        .expect("docker-compose.yml sets NOTARY_SIGNER_PASSWORDALIAS1")
        .trim()
        .trim_matches('"')
        .to_string();

    let (server_port, signer_port) = (24711u16, 27711u16);
    let signer_log = etc.path().join("signer.log");
    let signer_cfg = etc.path().join("signer-config.json");
    let _signer = spawn(
        "notary-signer",
        &["-config", signer_cfg.to_str().unwrap(), "-logf", "json"],
        &[
            ("NOTARY_SIGNER_PASSWORDALIAS1", passphrase),
            (
                "NOTARY_SIGNER_SERVER_GRPC_ADDR",
                format!("127.0.0.1:{signer_port}"),
            ),
            (
                "NOTARY_SIGNER_STORAGE_DB_URL",
                "signer:signer_dev_pw@tcp(127.0.0.1:3306)/notarysigner?parseTime=True".into(),
            ),
        ],
        &signer_log,
    );
    wait_until("notary-signer", &signer_log, || {
        std::net::TcpStream::connect(("127.0.0.1", signer_port)).is_ok()
    });

    let server_log = etc.path().join("server.log");
    let server_cfg = etc.path().join("server-config.json");
    let _server = spawn(
        "notary-server",
        &[
            "-config",
            server_cfg.to_str().unwrap(),
            "-logf",
            "json",
            "-migrate",
        ],
        &[
            (
                "NOTARY_SERVER_SERVER_HTTP_ADDR",
                format!("127.0.0.1:{server_port}"),
            ),
            ("NOTARY_SERVER_TRUST_SERVICE_HOSTNAME", "localhost".into()),
            ("NOTARY_SERVER_TRUST_SERVICE_PORT", signer_port.to_string()),
            (
                "NOTARY_SERVER_STORAGE_DB_URL",
                "server:server_dev_pw@tcp(127.0.0.1:3306)/notaryserver?parseTime=True".into(),
            ),
        ],
        &server_log,
    );
    let url = format!("https://127.0.0.1:{server_port}");
    let ca = root.join("certs/dev/root-ca.crt");
    wait_until("notary-server", &server_log, || {
        Command::new("curl")
            .args(["-fsS", "--max-time", "2", "--cacert"])
            .arg(&ca)
            .arg(format!("{url}/_notary_server/health"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });

    let run = run_client_suite(&url, &ca, &[("ONLY", "http basic servsnap")]);
    assert!(
        run.failed == 0 && run.passed > 40,
        "{} passed, {} failed:\n{}\n{}\n{}",
        run.passed,
        run.failed,
        run.failures(),
        std::fs::read_to_string(&server_log).unwrap_or_default(),
        std::fs::read_to_string(&signer_log).unwrap_or_default()
    );
}
