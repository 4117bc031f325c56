//! Support for the end-to-end tests: locating our release binaries and the repository's test
//! harness (`tests/harness/`), starting a server/signer pair through
//! `tests/harness/start-pair.sh` (with any mix of Go and Rust binaries), and running the
//! stock-client conformance suites.
//!
//! # Testing
//! These tests need root, MariaDB, the Debian `notary` package and our release binaries
//! (`cargo build --release -p notary-server -p notary-signer`). `tests/harness/install.sh`
//! and `tests/harness/start-mariadb.sh` provide the first three; `scripts/test.sh` does
//! everything. When something is missing, a test fails with a message saying what, unless
//! `NOTARY_E2E=skip` is set (for quick local `cargo test` runs); CI never sets it.

pub mod dct;
pub mod faults;
pub mod migrate;
pub mod token_issuer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace")
        .to_path_buf()
}

/// The repository's test harness scripts (`tests/harness/`).
pub fn harness_dir() -> PathBuf {
    workspace_root().join("tests/harness")
}

/// Writes the test PKI into `dir` with `certs/make-pki.sh` (root CA, server, signer and
/// server-to-signer client certificates; existing valid files are kept).
pub fn make_pki(dir: &Path) {
    let out = Command::new(workspace_root().join("certs/make-pki.sh"))
        .arg(dir)
        .output()
        .expect("run certs/make-pki.sh");
    assert!(out.status.success(), "certs/make-pki.sh failed: {out:?}");
}

/// Path of one of our release binaries (`notary-server` / `notary-signer`), overridable with
/// `NOTARY_SERVER_BIN_RS` / `NOTARY_SIGNER_BIN_RS`.
pub fn our_bin(name: &str) -> PathBuf {
    let var = format!("{}_BIN_RS", name.to_uppercase().replace('-', "_"));
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("release").join(name)
}

/// The Go reference binary from the Debian package.
pub fn go_bin(name: &str) -> PathBuf {
    PathBuf::from("/usr/bin").join(name)
}

/// Returns `Some(reason)` when the e2e prerequisites are missing. With `NOTARY_E2E=skip`
/// the caller skips; otherwise it panics with the reason, so CI can never pass silently.
pub fn check_prerequisites(bins: &[&Path]) -> Option<String> {
    let mut missing = Vec::new();
    for b in bins {
        if !b.exists() {
            missing.push(format!("{} (build it: cargo build --release)", b.display()));
        }
    }
    for tool in ["notary", "mariadb", "curl", "jq", "openssl"] {
        if which(tool).is_none() {
            missing.push(format!(
                "{tool} (run tests/harness/install.sh, or scripts/test.sh)"
            ));
        }
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!("missing: {}", missing.join(", ")))
    }
}

/// Skip (return true) or panic, per [`check_prerequisites`].
pub fn require(bins: &[&Path]) -> bool {
    match check_prerequisites(bins) {
        None => false,
        Some(reason) => {
            if std::env::var("NOTARY_E2E").as_deref() == Ok("skip") {
                eprintln!("skipping e2e test (NOTARY_E2E=skip): {reason}");
                true
            } else {
                panic!("e2e prerequisites {reason}");
            }
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// A server + signer pair started by `tests/harness/start-pair.sh` and stopped on drop.
pub struct PeerStack {
    /// Work directory holding configs, certs, logs and PID files.
    pub workdir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// Root CA that signed the server's certificate.
    pub ca: PathBuf,
}

/// Which binaries and ports a [`PeerStack`] uses.
pub struct StackSpec {
    /// notary-server binary.
    pub server_bin: PathBuf,
    /// notary-signer binary.
    pub signer_bin: PathBuf,
    /// HTTPS port of the server.
    pub server_port: u16,
    /// gRPC port of the signer.
    pub signer_port: u16,
    /// Prefix of the two database names (`<prefix>_server`, `<prefix>_signer`).
    pub db_prefix: String,
    /// Drop and recreate both databases first.
    pub reset_db: bool,
    /// Extra environment for the start script.
    pub env: Vec<(String, String)>,
}

impl PeerStack {
    /// Starts the pair and waits until the start script's health and signer probes pass.
    pub fn start(spec: &StackSpec) -> PeerStack {
        let workdir = tempfile::Builder::new()
            .prefix("notary-e2e-")
            .tempdir()
            .expect("tempdir");
        let stack = PeerStack {
            url: format!("https://127.0.0.1:{}", spec.server_port),
            ca: workdir.path().join("certs/root-ca.crt"),
            workdir,
        };
        stack.start_in_place(spec);
        stack
    }

    /// (Re)starts the pair in this stack's work directory (databases are kept unless
    /// `spec.reset_db`).
    pub fn start_in_place(&self, spec: &StackSpec) {
        let mut cmd = Command::new(harness_dir().join("start-pair.sh"));
        cmd.arg(self.workdir.path())
            .env("NOTARY_SERVER_BIN", &spec.server_bin)
            .env("NOTARY_SIGNER_BIN", &spec.signer_bin)
            .env("SERVER_PORT", spec.server_port.to_string())
            .env("SIGNER_PORT", spec.signer_port.to_string())
            .env("SERVER_DB", format!("{}_server", spec.db_prefix))
            .env("SIGNER_DB", format!("{}_signer", spec.db_prefix))
            .env("RESET_DB", if spec.reset_db { "1" } else { "0" });
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run start-pair.sh");
        if !out.status.success() {
            let logs = self.logs();
            self.stop();
            panic!(
                "start-pair.sh failed ({}):\n{}\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                logs
            );
        }
    }

    /// Stops both processes (by their recorded PIDs).
    pub fn stop(&self) {
        let _ = Command::new(harness_dir().join("stop-pair.sh"))
            .arg(self.workdir.path())
            .output();
    }

    /// The tail of both service logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["server.log", "signer.log"] {
            let p = self.workdir.path().join(name);
            if let Ok(text) = std::fs::read_to_string(&p) {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(40);
                s.push_str(&format!(
                    "--- {name} (last {} lines)\n",
                    lines.len() - start
                ));
                s.push_str(&lines[start..].join("\n"));
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for PeerStack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Result of one run of a conformance suite.
pub struct SuiteRun {
    /// Checks that passed.
    pub passed: u32,
    /// Checks that failed.
    pub failed: u32,
    /// Everything the suite printed.
    pub output: String,
}

impl SuiteRun {
    /// Asserts (passed, failed); on a mismatch the failures and `logs` (the stack's) are
    /// printed.
    pub fn assert_counts(&self, expected: (u32, u32), logs: &str) {
        assert_eq!(
            (self.passed, self.failed),
            expected,
            "{}\n{logs}",
            self.failures()
        );
    }

    /// The `not ok` lines, for assertion messages.
    pub fn failures(&self) -> String {
        self.output
            .lines()
            .filter(|l| l.starts_with("not ok"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Number of checks `tests/harness/notary-cli-suite.sh` runs without `RUN_QUIRKS` (the Go
/// reference pair passes all of them).
pub const CLI_SUITE_CHECKS: u32 = 244;
/// Number of checks in its `quirks` group (Go behaviour we fix; run with `RUN_QUIRKS=1`).
pub const CLI_SUITE_QUIRKS: u32 = 5;

/// Parses the closing `N passed, M failed` line of a suite's output.
pub fn parse_summary(output: &str) -> Option<(u32, u32)> {
    output.lines().rev().find_map(|line| {
        let (p, rest) = line.trim().split_once(" passed, ")?;
        let f = rest.strip_suffix(" failed")?;
        Some((p.parse().ok()?, f.parse().ok()?))
    })
}

/// Runs `tests/harness/notary-cli-suite.sh URL CA` with extra env.
pub fn run_client_suite(url: &str, ca: &Path, env: &[(&str, &str)]) -> SuiteRun {
    let mut cmd = Command::new(harness_dir().join("notary-cli-suite.sh"));
    cmd.arg(url).arg(ca);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run notary-cli-suite.sh");
    suite_result(&out)
}

fn suite_result(out: &Output) -> SuiteRun {
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (passed, failed) = parse_summary(&output)
        .unwrap_or_else(|| panic!("suite printed no summary line:\n{output}"));
    SuiteRun {
        passed,
        failed,
        output,
    }
}

/// The stock `notary` CLI with its own trust directory, pointed at one server.
pub struct NotaryCli {
    /// Trust directory (`-d`).
    pub trust_dir: tempfile::TempDir,
    url: String,
    ca: PathBuf,
}

/// Passphrases for the stock CLI's key files (fixed: test keys only).
const CLI_ENV: [(&str, &str); 4] = [
    ("NOTARY_ROOT_PASSPHRASE", "e2e-root-passphrase"),
    ("NOTARY_TARGETS_PASSPHRASE", "e2e-targets-passphrase"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "e2e-snapshot-passphrase"),
    ("NOTARY_DELEGATION_PASSPHRASE", "e2e-delegation-passphrase"),
];

impl NotaryCli {
    /// A client with a fresh trust directory.
    pub fn new(url: &str, ca: &Path) -> NotaryCli {
        NotaryCli {
            trust_dir: tempfile::Builder::new()
                .prefix("notary-cli-")
                .tempdir()
                .expect("tempdir"),
            url: url.to_string(),
            ca: ca.to_path_buf(),
        }
    }

    /// Points this client (and its trust directory) at another server URL/CA.
    pub fn retarget(&mut self, url: &str, ca: &Path) {
        self.url = url.to_string();
        self.ca = ca.to_path_buf();
    }

    /// Runs `notary -s URL --tlscacert CA -d DIR ARGS...`; returns (success, stdout+stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("timeout")
            .arg("120")
            .arg("notary")
            .arg("-s")
            .arg(&self.url)
            .arg("--tlscacert")
            .arg(&self.ca)
            .arg("-d")
            .arg(self.trust_dir.path())
            .args(args)
            .envs(CLI_ENV)
            .output()
            .expect("run notary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Like [`NotaryCli::run`] but panics with the output on failure; returns stdout+stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "notary {} failed:\n{text}", args.join(" "));
        text
    }
}

/// A random lower-case hex token for unique GUNs.
pub fn random_suffix() -> String {
    let mut buf = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Our server and signer on embedded SQLite stores, started directly (no MariaDB involved),
/// with the test PKI of `certs/make-pki.sh` and mutual TLS between them. Killed on drop.
pub struct SqliteStack {
    /// Work directory: certs, configs, databases, logs.
    pub workdir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// Root CA of the server certificate.
    pub ca: PathBuf,
    children: Vec<std::process::Child>,
}

/// The SQLite files and passphrase a [`SqliteStack`] runs on.
#[derive(Debug, Clone)]
pub struct SqliteStores {
    /// Server database (relative paths are inside the stack's work directory).
    pub server_db: PathBuf,
    /// Signer database.
    pub signer_db: PathBuf,
    /// The signer's `default_alias`.
    pub alias: String,
    /// That alias's passphrase (`NOTARY_SIGNER_<ALIAS>`).
    pub passphrase: String,
}

impl Default for SqliteStores {
    /// Fresh `server.db` and `signer.db` in the work directory.
    fn default() -> Self {
        SqliteStores {
            server_db: "server.db".into(),
            signer_db: "signer.db".into(),
            alias: "sqlitealias".into(),
            passphrase: "sqlite-passphrase".into(),
        }
    }
}

impl SqliteStack {
    /// Starts signer then server on fresh databases and waits for the server's health
    /// endpoint.
    pub fn start(server_port: u16, signer_port: u16) -> SqliteStack {
        Self::start_on(server_port, signer_port, &SqliteStores::default())
    }

    /// [`SqliteStack::start`] on the given (e.g. imported) databases.
    pub fn start_on(server_port: u16, signer_port: u16, stores: &SqliteStores) -> SqliteStack {
        let workdir = tempfile::Builder::new()
            .prefix("notary-sqlite-")
            .tempdir()
            .expect("tempdir");
        let dir = workdir.path();
        make_pki(&dir.join("certs"));
        std::fs::write(
            dir.join("signer-config.json"),
            format!(
                r#"{{"server":{{"grpc_addr":"127.0.0.1:{signer_port}","tls_cert_file":"certs/notary-signer.crt","tls_key_file":"certs/notary-signer.key","client_ca_file":"certs/root-ca.crt"}},
"logging":{{"level":"info"}},"storage":{{"backend":"sqlite3","db_url":"{}","default_alias":"{}"}}}}"#,
                stores.signer_db.display(),
                stores.alias
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("server-config.json"),
            format!(
                r#"{{"server":{{"http_addr":"127.0.0.1:{server_port}","tls_cert_file":"certs/notary-server.crt","tls_key_file":"certs/notary-server.key"}},
"trust_service":{{"type":"remote","hostname":"127.0.0.1","port":"{signer_port}","key_algorithm":"ecdsa","tls_ca_file":"certs/root-ca.crt","tls_client_cert":"certs/notary-server-client.crt","tls_client_key":"certs/notary-server-client.key"}},
"logging":{{"level":"info"}},"storage":{{"backend":"sqlite3","db_url":"{}"}}}}"#,
                stores.server_db.display()
            ),
        )
        .unwrap();
        let mut stack = SqliteStack {
            url: format!("https://127.0.0.1:{server_port}"),
            ca: dir.join("certs/root-ca.crt"),
            children: Vec::new(),
            workdir,
        };
        let alias_var = format!("NOTARY_SIGNER_{}", stores.alias.to_uppercase());
        stack.spawn("notary-signer", &[(&alias_var, &stores.passphrase)]);
        stack.wait_for(|| std::net::TcpStream::connect(("127.0.0.1", signer_port)).is_ok());
        stack.spawn("notary-server", &[]);
        let (url, ca) = (stack.url.clone(), stack.ca.clone());
        stack.wait_for(|| {
            Command::new("curl")
                .args(["-fsS", "--max-time", "2", "--cacert"])
                .arg(&ca)
                .arg(format!("{url}/_notary_server/health"))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        stack
    }

    fn spawn(&mut self, name: &str, env: &[(&str, &str)]) {
        let dir = self.workdir.path();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let config = dir.join(format!(
            "{}-config.json",
            name.trim_start_matches("notary-")
        ));
        let child = Command::new(our_bin(name))
            .arg("-config")
            .arg(config)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        self.children.push(child);
    }

    fn wait_for(&mut self, mut ready: impl FnMut() -> bool) {
        for _ in 0..240 {
            if ready() {
                return;
            }
            for c in &mut self.children {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("a service exited ({status}):\n{}", self.logs());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!("service did not come up:\n{}", self.logs());
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        ["notary-server.log", "notary-signer.log"]
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(self.workdir.path().join(n)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "--- {n}\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for SqliteStack {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A service's log file once it has stopped growing (its size unchanged for 200 ms, at
/// most 3 s): our services hand log lines to a writer thread in batches, up to
/// 50 ms after they were logged.
pub fn settled_log(path: &Path) -> String {
    let size = || std::fs::metadata(path).map_or(0, |m| m.len());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (mut last_size, mut since) = (size(), std::time::Instant::now());
    while std::time::Instant::now() < deadline
        && since.elapsed() < std::time::Duration::from_millis(200)
    {
        std::thread::sleep(std::time::Duration::from_millis(25));
        let now = size();
        if now != last_size {
            (last_size, since) = (now, std::time::Instant::now());
        }
    }
    std::fs::read_to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::parse_summary;

    #[test]
    fn summary_line_is_parsed_from_the_end() {
        let out = "ok - a\nnot ok - b (x)\n# elapsed 3s, 4 skipped\n173 passed, 1 failed\n";
        assert_eq!(parse_summary(out), Some((173, 1)));
        assert_eq!(parse_summary("no summary here"), None);
    }
}
