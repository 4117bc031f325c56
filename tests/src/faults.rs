//! Process control for the fault tests: our server and signer started directly (so each
//! can be killed, stopped or restarted on its own, by PID), and a private MariaDB instance
//! that a test may stop and restart without touching the machine's shared one.
//!
//! Everything binds to 127.0.0.1 and is stopped by the PID this module recorded, on drop
//! at the latest.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{make_pki, our_bin};

/// Sends `signal` (e.g. `-KILL`, `-TERM`, `-STOP`, `-CONT`) to exactly one PID.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Polls `ready` every 100 ms until it holds or `deadline` passes; false on timeout.
pub fn wait_until(deadline: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ready()
}

/// True if something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// One long-running process with its command line kept, so it can be restarted as it was.
pub struct Service {
    /// Name for messages and the log file (`<name>.log` in the work directory).
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// A service that is not started yet; `dir` is its working and log directory.
    pub fn new(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> Self {
        Service {
            name: name.to_string(),
            program: program.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir: dir.to_path_buf(),
            child: None,
        }
    }

    /// Starts the process (appending to its log). Panics if it is already running.
    pub fn start(&mut self) {
        assert!(!self.running(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open log");
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// PID of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "-KILL");
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to 30 s for a clean exit (SIGKILL after that).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                signal(c.id(), "-TERM");
                let start = Instant::now();
                while matches!(c.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(30)
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.name))
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} (last {} lines)\n{}\n",
            self.name,
            n.min(lines.len()),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Where [`OwnStack`]'s server keeps its metadata.
pub enum ServerDb {
    /// A MySQL/MariaDB database given as a Go DSN
    /// (`user:pass@tcp(127.0.0.1:3306)/db?parseTime=True`); the server runs with `-migrate`.
    Mysql(String),
    /// `server.db` in the work directory.
    Sqlite,
}

/// Our notary-server and notary-signer, started directly from the release binaries with
/// the test PKI of `certs/make-pki.sh` and mutual TLS between them. The signer keeps its keys in SQLite
/// (`signer.db` in the work directory), so it can be restarted with its keys.
pub struct OwnStack {
    /// Work directory: certs, configs, databases, logs.
    pub workdir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// Root CA of the server certificate (PEM file).
    pub ca: PathBuf,
    /// The server process.
    pub server: Service,
    /// The signer process.
    pub signer: Service,
    /// The signer's gRPC port.
    pub signer_port: u16,
}

/// Passphrase alias of [`OwnStack`]'s signer, and the passphrase.
pub const SIGNER_ALIAS: (&str, &str) = ("faultalias", "fault-signer-passphrase");

impl OwnStack {
    /// Writes certificates and configs, starts the signer and then the server, and waits
    /// until the server's health endpoint answers.
    pub fn start(server_port: u16, signer_port: u16, db: ServerDb) -> OwnStack {
        let workdir = tempfile::Builder::new()
            .prefix("notary-fault-")
            .tempdir()
            .expect("tempdir");
        let dir = workdir.path().to_path_buf();
        make_pki(&dir.join("certs"));
        let (alias, passphrase) = SIGNER_ALIAS;
        std::fs::write(
            dir.join("signer-config.json"),
            format!(
                r#"{{"server":{{"grpc_addr":"127.0.0.1:{signer_port}","tls_cert_file":"certs/notary-signer.crt","tls_key_file":"certs/notary-signer.key","client_ca_file":"certs/root-ca.crt"}},
"logging":{{"level":"info"}},"storage":{{"backend":"sqlite3","db_url":"signer.db","default_alias":"{alias}"}}}}"#
            ),
        )
        .unwrap();
        let storage = match &db {
            ServerDb::Mysql(dsn) => format!(r#"{{"backend":"mysql","db_url":"{dsn}"}}"#),
            ServerDb::Sqlite => r#"{"backend":"sqlite3","db_url":"server.db"}"#.to_string(),
        };
        std::fs::write(
            dir.join("server-config.json"),
            format!(
                r#"{{"server":{{"http_addr":"127.0.0.1:{server_port}","tls_cert_file":"certs/notary-server.crt","tls_key_file":"certs/notary-server.key"}},
"trust_service":{{"type":"remote","hostname":"127.0.0.1","port":"{signer_port}","key_algorithm":"ecdsa","tls_ca_file":"certs/root-ca.crt","tls_client_cert":"certs/notary-server-client.crt","tls_client_key":"certs/notary-server-client.key"}},
"logging":{{"level":"info"}},"storage":{storage}}}"#
            ),
        )
        .unwrap();
        let alias_env = format!("NOTARY_SIGNER_{}", alias.to_uppercase());
        let signer = Service::new(
            "notary-signer",
            &our_bin("notary-signer"),
            &["-config", "signer-config.json"],
            &[(alias_env.as_str(), passphrase)],
            &dir,
        );
        let mut server_args = vec!["-config", "server-config.json"];
        if matches!(db, ServerDb::Mysql(_)) {
            server_args.push("-migrate");
        }
        let server = Service::new(
            "notary-server",
            &our_bin("notary-server"),
            &server_args,
            &[],
            &dir,
        );
        let mut stack = OwnStack {
            url: format!("https://127.0.0.1:{server_port}"),
            ca: dir.join("certs/root-ca.crt"),
            server,
            signer,
            signer_port,
            workdir,
        };
        stack.start_signer();
        stack.start_server();
        stack
    }

    /// Starts the signer and waits for its port.
    pub fn start_signer(&mut self) {
        assert!(
            !port_open(self.signer_port),
            "port {} is already in use",
            self.signer_port
        );
        self.signer.start();
        let port = self.signer_port;
        let up = wait_until(Duration::from_secs(60), || port_open(port));
        assert!(up, "signer did not come up\n{}", self.logs());
    }

    /// Starts the server and waits until `/_notary_server/health` answers 200.
    pub fn start_server(&mut self) {
        self.server.start();
        let (url, ca) = (self.url.clone(), self.ca.clone());
        let mut exited = false;
        let up = wait_until(Duration::from_secs(60), || {
            if !self.server.running() {
                exited = true;
                return true;
            }
            curl_ok(&format!("{url}/_notary_server/health"), &ca)
        });
        assert!(
            up && !exited,
            "server did not become healthy\n{}",
            self.logs()
        );
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}{}", self.server.log_tail(40), self.signer.log_tail(20))
    }

    /// The root CA certificate (PEM bytes).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).expect("read CA")
    }

    /// Path of a file in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.workdir.path().join(name)
    }
}

fn curl_ok(url: &str, ca: &Path) -> bool {
    Command::new("curl")
        .args(["-fsS", "--max-time", "2", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A MariaDB server of our own: its own data directory, port and socket, so it can be
/// stopped and restarted without affecting the machine's shared instance. Root logs in
/// without a password over the socket (`--auth-root-authentication-method=normal`).
pub struct PrivateMariaDb {
    /// Data directory, socket, pid file and log live here.
    pub dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    server: Service,
}

impl PrivateMariaDb {
    /// Initialises a data directory and starts `mariadbd` on 127.0.0.1:`port`.
    pub fn start(port: u16) -> PrivateMariaDb {
        assert!(
            !port_open(port),
            "127.0.0.1:{port} is already in use: another private MariaDB?"
        );
        let dir = tempfile::Builder::new()
            .prefix("notary-mariadb-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        let install = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--user=root")
            .arg("--skip-test-db")
            .output()
            .expect("run mariadb-install-db");
        assert!(
            install.status.success(),
            "mariadb-install-db failed:\n{}{}",
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr)
        );
        let args = [
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--port={port}"),
            format!("--socket={}", dir.path().join("sock").display()),
            "--bind-address=127.0.0.1".to_string(),
            format!("--pid-file={}", dir.path().join("mariadbd.pid").display()),
            "--user=root".to_string(),
            "--skip-name-resolve".to_string(),
            "--innodb-buffer-pool-size=32M".to_string(),
            "--max-connections=200".to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Service::new(
            "mariadbd",
            Path::new("/usr/sbin/mariadbd"),
            &args,
            &[],
            dir.path(),
        );
        let mut db = PrivateMariaDb { dir, port, server };
        db.resume();
        db
    }

    /// Starts `mariadbd` (again) on the same data directory and waits until it answers.
    pub fn resume(&mut self) {
        self.server.start();
        let ok = wait_until(Duration::from_secs(60), || self.try_sql("SELECT 1").is_ok());
        assert!(
            ok,
            "private mariadbd did not come up\n{}",
            self.server.log_tail(30)
        );
    }

    /// Stops `mariadbd` cleanly (SIGTERM by PID) and waits for it to exit.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// `kill -9` of `mariadbd` (a crash).
    pub fn kill9(&mut self) {
        self.server.kill9();
    }

    /// PID of `mariadbd`.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// The last `n` lines of `mariadbd`'s log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        self.server.log_tail(n)
    }

    /// Runs SQL as root over the socket. Returns the tab-separated rows, or the client's
    /// error output.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["-uroot", "--connect-timeout=2", "-N", "-B", "-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs SQL as root over the socket; panics on failure. Returns the tab-separated rows.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {sql}\n{e}"))
    }

    /// Creates `db` and a user with all rights on it; returns the Go DSN for our server.
    pub fn create_database(&self, db: &str, user: &str, password: &str) -> String {
        self.sql(&format!(
            "CREATE DATABASE `{db}`; \
             CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
             GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'127.0.0.1'; FLUSH PRIVILEGES;"
        ));
        format!(
            "{user}:{password}@tcp(127.0.0.1:{})/{db}?parseTime=True",
            self.port
        )
    }
}

/// Runs SQL on the machine's shared MariaDB as the test account
/// (`NOTARY_TEST_MYSQL_URL`-style credentials `notary_test`/`notary_test_pw`); panics on
/// failure.
pub fn shared_sql(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            "-P3306",
            "-unotary_test",
            "-pnotary_test_pw",
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .output()
        .expect("run mariadb");
    assert!(
        out.status.success(),
        "SQL failed: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database on the shared MariaDB, dropped on drop.
pub struct SharedDb {
    /// Database name.
    pub name: String,
}

impl SharedDb {
    /// Creates `<prefix>_<random>`.
    pub fn create(prefix: &str) -> SharedDb {
        let name = format!("{prefix}_{}", crate::random_suffix());
        shared_sql(&format!("CREATE DATABASE `{name}`"));
        SharedDb { name }
    }

    /// Go DSN for our server with the test account.
    pub fn go_dsn(&self) -> String {
        format!(
            "notary_test:notary_test_pw@tcp(127.0.0.1:3306)/{}?parseTime=True",
            self.name
        )
    }
}

impl Drop for SharedDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                "-P3306",
                "-unotary_test",
                "-pnotary_test_pw",
                "-e",
                &format!("DROP DATABASE IF EXISTS `{}`", self.name),
            ])
            .output();
    }
}
