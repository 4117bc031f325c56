//! Running the `notary-migrate` binary from the end-to-end tests.

use std::path::PathBuf;
use std::process::Command;

use crate::workspace_root;

/// The `notary-migrate` binary: `NOTARY_MIGRATE_BIN`, else the release build, else debug.
pub fn migrate_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NOTARY_MIGRATE_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let release = target.join("release/notary-migrate");
    if release.exists() {
        release
    } else {
        target.join("debug/notary-migrate")
    }
}

/// What a `notary-migrate` run printed.
pub struct Run {
    /// Exit code (-1 when killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Everything, for failure messages.
    pub fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `notary-migrate ARGS` (5 minutes at most) with extra environment.
pub fn run_migrate(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new("timeout")
        .arg("300")
        .arg(migrate_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run notary-migrate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
