//! Docker Content Trust harness: a private Docker engine and registry started by the
//! repository's scripts in `tests/harness/dct/`, and a runner for `dct-suite.sh`, which drives
//! the stock Docker CLI (`DOCKER_CONTENT_TRUST=1`) against a notary server.
//!
//! The engine is only ever started through `start-dockerd.sh`, whose flags keep dockerd from
//! touching host networking (no bridge, no iptables, no forwarding, no userland proxy, no TCP
//! listener). Everything it writes lives in a short temporary directory under `/tmp` (unix
//! socket paths are limited to 107 bytes) and is stopped by `stop.sh` when the [`DockerEnv`]
//! is dropped.
//!
//! # Testing
//! Needs root, Debian's `docker.io` (dockerd) and `docker-registry`, the 28.x Docker client
//! (`/usr/local/bin/docker`, or `$DOCKER`), `curl` and `jq`; `scripts/test.sh` installs them.
//! Missing prerequisites fail the test unless `NOTARY_E2E=skip`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{check_prerequisites, harness_dir, parse_summary, SuiteRun};

/// The lowest Docker client major version the suite is known to work with (it needs
/// `docker trust` and the 28.x prompts of `docker trust signer remove`).
pub const MIN_DOCKER_CLIENT_MAJOR: u32 = 28;

/// A non-loopback registry host used only as the first part of GUNs in the suite's TLS
/// checks. The Docker CLI skips notary certificate verification when the registry part of
/// an image name is loopback, so these checks need a non-loopback name; this TEST-NET
/// address is never contacted (only notary is).
pub const SECURE_REGISTRY_HOST: &str = "192.0.2.1:5000";

/// `tests/harness/dct/` of this checkout.
pub fn dct_dir() -> PathBuf {
    harness_dir().join("dct")
}

/// The Docker client to use: `$DOCKER`, else `/usr/local/bin/docker` (the 28.x client;
/// Debian's `docker.io` puts a 20.10 client in `/usr/bin`), else `docker` on `PATH`.
pub fn docker_cli() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let local = Path::new("/usr/local/bin/docker");
    if local.is_file() {
        return local.to_path_buf();
    }
    which("docker").unwrap_or_else(|| PathBuf::from("docker"))
}

/// Major version of a Docker client version string such as `28.2.2` or `20.10.24+dfsg1`.
pub fn docker_client_major(version: &str) -> Option<u32> {
    version.trim().split('.').next()?.parse().ok()
}

/// Returns `Some(reason)` when anything the DCT tests need is missing: the general e2e
/// prerequisites ([`check_prerequisites`] for `bins`) plus root, dockerd, a registry
/// binary, a recent enough Docker client and the `tests/harness/dct` scripts.
pub fn check_docker_prerequisites(bins: &[&Path]) -> Option<String> {
    let mut missing = Vec::new();
    if let Some(reason) = check_prerequisites(bins) {
        missing.push(reason);
    }
    let uid = Command::new("id").arg("-u").output().ok();
    if uid.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()) != Some("0".into()) {
        missing.push("root (dockerd needs it)".to_owned());
    }
    if which("dockerd").is_none() {
        missing.push("dockerd (apt-get install docker.io; run scripts/test.sh)".to_owned());
    }
    if which("docker-registry").is_none() && which("registry").is_none() {
        missing.push("docker-registry (apt-get install docker-registry)".to_owned());
    }
    for tool in ["curl", "jq", "timeout"] {
        if which(tool).is_none() {
            missing.push(tool.to_owned());
        }
    }
    let docker = docker_cli();
    let version = Command::new(&docker)
        .args(["version", "--format", "{{.Client.Version}}"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    match docker_client_major(&version) {
        Some(major) if major >= MIN_DOCKER_CLIENT_MAJOR => {}
        _ => missing.push(format!(
            "a Docker client >= {MIN_DOCKER_CLIENT_MAJOR}.x (found {:?} at {}; install it at \
             /usr/local/bin/docker or set DOCKER=)",
            version,
            docker.display()
        )),
    }
    if !dct_dir().join("dct-suite.sh").exists() {
        missing.push(format!("{}/dct-suite.sh", dct_dir().display()));
    }
    if missing.is_empty() {
        None
    } else {
        Some(missing.join("; "))
    }
}

/// Skip (return true, only with `NOTARY_E2E=skip`) or panic when
/// [`check_docker_prerequisites`] finds something missing; false when all is there.
pub fn require_docker(bins: &[&Path]) -> bool {
    match check_docker_prerequisites(bins) {
        None => false,
        Some(reason) => {
            if std::env::var("NOTARY_E2E").as_deref() == Ok("skip") {
                eprintln!("skipping DCT test (NOTARY_E2E=skip): missing {reason}");
                true
            } else {
                panic!("DCT prerequisites missing: {reason}");
            }
        }
    }
}

/// A private Docker engine plus a plain-HTTP registry on 127.0.0.1, both started by the
/// harness scripts in one work directory and stopped (by PID) on drop.
pub struct DockerEnv {
    /// `None` once the directory was deliberately leaked because something would not stop.
    workdir: Option<tempfile::TempDir>,
    path: PathBuf,
    registry_port: u16,
    docker: PathBuf,
    docker_host: String,
}

impl DockerEnv {
    /// Starts an engine and a registry on `127.0.0.1:<registry_port>` in a new short
    /// work directory under `/tmp`. Panics (after stopping what did start) on failure.
    pub fn start(registry_port: u16) -> DockerEnv {
        let workdir = tempfile::Builder::new()
            .prefix("dct-")
            .tempdir_in("/tmp")
            .expect("tempdir in /tmp");
        let mut env = DockerEnv {
            path: workdir.path().to_path_buf(),
            workdir: Some(workdir),
            registry_port,
            docker: docker_cli(),
            docker_host: String::new(),
        };
        env.ensure_running();
        env
    }

    /// (Re)runs the start scripts; they only report when everything is already up, so
    /// this is cheap and restarts whatever died.
    pub fn ensure_running(&mut self) {
        let out = self.script("start-dockerd.sh", &[]);
        self.docker_host = out
            .lines()
            .rev()
            .find(|l| l.starts_with("unix://"))
            .unwrap_or_else(|| panic!("start-dockerd.sh printed no DOCKER_HOST:\n{out}"))
            .to_owned();
        self.script("start-registry.sh", &[&self.registry_port.to_string()]);
    }

    fn script(&self, name: &str, args: &[&str]) -> String {
        let out = Command::new(dct_dir().join(name))
            .arg(&self.path)
            .args(args)
            .env("DOCKER", &self.docker)
            .output()
            .unwrap_or_else(|e| panic!("run {name}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            panic!(
                "{name} failed ({}):\n{stdout}\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
        }
        stdout
    }

    /// The work directory (sockets, engine data, registry storage, logs).
    pub fn workdir(&self) -> &Path {
        &self.path
    }

    /// `DOCKER_HOST` of the private engine (`unix://<workdir>/docker.sock`).
    pub fn docker_host(&self) -> &str {
        &self.docker_host
    }

    /// The Docker client binary in use.
    pub fn docker(&self) -> &Path {
        &self.docker
    }

    /// The registry as image names spell it: `localhost:<port>`. The engine treats it as
    /// insecure (plain HTTP) because it resolves to loopback.
    pub fn registry(&self) -> String {
        format!("localhost:{}", self.registry_port)
    }

    /// Environment for Docker commands against this engine: `DOCKER_HOST` and `DOCKER`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DOCKER_HOST".to_owned(), self.docker_host.clone()),
            ("DOCKER".to_owned(), self.docker.display().to_string()),
        ]
    }

    /// Runs `dct-suite.sh NOTARY_URL CA REGISTRY` against this engine and registry and
    /// parses its `N passed, M failed` line. `SUITE_SECURE_HOST` is set to
    /// [`SECURE_REGISTRY_HOST`] so the TLS checks (with and without the CA) always run;
    /// `extra_env` is applied last and can override anything.
    pub fn run_dct_suite(
        &self,
        notary_url: &str,
        ca: &Path,
        extra_env: &[(&str, &str)],
    ) -> SuiteRun {
        let mut cmd = Command::new(dct_dir().join("dct-suite.sh"));
        cmd.arg(notary_url)
            .arg(ca)
            .arg(self.registry())
            .envs(self.env())
            .env("SUITE_SECURE_HOST", SECURE_REGISTRY_HOST)
            // Ours to decide: a caller's shell must not turn these on or off.
            .env_remove("SUITE_REPO")
            .env_remove("SUITE_KEEP");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run dct-suite.sh");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let (passed, failed) = parse_summary(&output)
            .unwrap_or_else(|| panic!("dct-suite.sh printed no summary line:\n{output}"));
        SuiteRun {
            passed,
            failed,
            output,
        }
    }

    /// The last lines of the engine and registry logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["dockerd.log", "registry/registry.log"] {
            if let Ok(text) = std::fs::read_to_string(self.path.join(name)) {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(30);
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

    /// Stops the engine and the registry by their recorded PIDs. Returns false when
    /// something would not stop or the engine's data directory is still mounted.
    pub fn stop(&self) -> bool {
        let stopped = Command::new(dct_dir().join("stop.sh"))
            .arg(&self.path)
            .env("DOCKER", &self.docker)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let still_mounted = Command::new("mountpoint")
            .arg("-q")
            .arg(self.path.join("data"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        stopped && !still_mounted
    }
}

impl Drop for DockerEnv {
    fn drop(&mut self) {
        if !self.stop() {
            // Deleting the tree under a live engine or a leftover mount could remove far
            // more than our files: leave it for a human.
            if let Some(dir) = self.workdir.take() {
                let kept = dir.keep();
                eprintln!(
                    "DockerEnv: {} did not stop cleanly; kept {} (stop with {}/stop.sh)",
                    self.docker_host,
                    kept.display(),
                    dct_dir().display()
                );
            }
        }
    }
}

/// docker CLI helper with a fixed DOCKER_CONFIG and engine.
pub struct DockerCli<'a> {
    /// The engine and registry.
    pub env: &'a DockerEnv,
    /// `DOCKER_CONFIG`: trust keys, and the notary CAs under `tls/<host:port>/ca.crt`.
    pub config: PathBuf,
}

impl DockerCli<'_> {
    /// Runs docker with DCT against `notary_url`; returns (success, stdout, everything).
    pub fn run(&self, notary_url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = Command::new("timeout")
            .arg("240")
            .arg(self.env.docker())
            .args(args)
            .envs(self.env.env())
            .env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_CONTENT_TRUST", "1")
            .env("DOCKER_CONTENT_TRUST_SERVER", notary_url)
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "mig-docker-root")
            .env(
                "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
                "mig-docker-repo",
            )
            .current_dir(&self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = format!(
            "$ docker {}\n{stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), stdout, all)
    }

    /// [`DockerCli::run`] that must succeed; returns everything it printed.
    pub fn ok(&self, notary_url: &str, args: &[&str]) -> String {
        let (ok, _, text) = self.run(notary_url, args, "");
        assert!(ok, "{text}\n{}", self.env.logs());
        text
    }

    /// `docker trust inspect GUN` as JSON.
    pub fn inspect(&self, notary_url: &str, gun: &str) -> serde_json::Value {
        let (ok, stdout, text) = self.run(notary_url, &["trust", "inspect", gun], "");
        assert!(ok, "{text}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("inspect JSON: {e}\n{text}"))
    }

    /// Trusts `ca` for the notary server at `localhost:<port>` (the CLI reads notary CAs
    /// per host:port from `$DOCKER_CONFIG/tls/`).
    pub fn trust_notary_ca(&self, port: u16, ca: &Path) {
        let dir = self.config.join(format!("tls/localhost:{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(ca, dir.join("ca.crt")).unwrap();
    }

    /// Fills the notary at `notary_url` the way DCT users did: signed pushes of `app:1` and
    /// `other:1`, then a signer `alice` added to `app`, who signs `app:2`. Returns the two
    /// images' IDs (`app:1`'s, then `app:2`'s and `other:1`'s).
    pub fn push_signed_repositories(
        &self,
        notary_url: &str,
        app: &str,
        other: &str,
        prefix: &str,
    ) -> (String, String) {
        let img1 = self.image(&format!("{prefix}-one"));
        let img2 = self.image(&format!("{prefix}-two"));
        for (image, name) in [(&img1, format!("{app}:1")), (&img2, format!("{other}:1"))] {
            self.ok(notary_url, &["tag", image, &name]);
            let out = self.ok(notary_url, &["push", &name]);
            assert!(out.contains("Successfully signed"), "{out}");
        }
        self.ok(notary_url, &["trust", "key", "generate", "alice"]);
        let alice_pub = self.config.join("alice.pub");
        let alice_pub = alice_pub.to_str().unwrap();
        self.ok(
            notary_url,
            &["trust", "signer", "add", "--key", alice_pub, "alice", app],
        );
        self.ok(notary_url, &["tag", &img2, &format!("{app}:2")]);
        self.ok(notary_url, &["trust", "sign", &format!("{app}:2")]);
        (img1, img2)
    }

    /// A fresh local test image (no registry, no network); returns its ID.
    pub fn image(&self, name: &str) -> String {
        let out = Command::new(dct_dir().join("make-test-image.sh"))
            .arg(name)
            .envs(self.env.env())
            .output()
            .unwrap();
        assert!(out.status.success(), "make-test-image: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// Tag to digest of `docker trust inspect` JSON (its first repository).
pub fn signed_tags(inspect: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    inspect[0]["SignedTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["SignedTag"].as_str().unwrap().to_string(),
                t["Digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::docker_client_major;

    #[test]
    fn client_major_version_is_parsed() {
        assert_eq!(docker_client_major("28.2.2\n"), Some(28));
        assert_eq!(docker_client_major("20.10.24+dfsg1"), Some(20));
        assert_eq!(docker_client_major(""), None);
        assert_eq!(docker_client_major("Cannot connect"), None);
    }
}
