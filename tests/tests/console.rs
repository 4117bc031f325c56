//! The operator console (issue 14) in a real browser: our pair on MariaDB with the admin
//! listener, a few GUNs published with the stock `notary` CLI, then
//! `tests/harness/console/check-console.mjs` drives headless Chromium (Playwright, JavaScript
//! disabled) through every console page with the admin client certificate, and checks that a
//! browser without it gets no page. Screenshots land in `<target>/console-screenshots/`.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM_BIN`), Node and npm: `install.sh` puts
//! them there. Without them the test skips, unless `NOTARY_TEST_REQUIRE_CHROMIUM=1` (set by
//! `scripts/test.sh`) makes that a failure.
//!
//! Ports 24751 / 28251, admin 24752; databases `e2e_console_*`.

use std::path::{Path, PathBuf};
use std::process::Command;

use notary_e2e::{
    harness_dir, our_bin, random_suffix, require, workspace_root, NotaryCli, PeerStack, StackSpec,
};

const SERVER_PORT: u16 = 24751;
const SIGNER_PORT: u16 = 28251;
const ADMIN_PORT: u16 = 24752;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether the browser side is there; skips (false) or panics per
/// `NOTARY_TEST_REQUIRE_CHROMIUM`.
fn browser_available() -> bool {
    let node = Command::new("node").arg("--version").output();
    let missing = if !chromium().exists() {
        Some(format!(
            "{} (apt-get install chromium)",
            chromium().display()
        ))
    } else if !node.map(|o| o.status.success()).unwrap_or(false) {
        Some("node (apt-get install nodejs npm)".to_owned())
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var("NOTARY_TEST_REQUIRE_CHROMIUM").as_deref() == Ok("1") => {
            panic!("NOTARY_TEST_REQUIRE_CHROMIUM=1 but {what} is missing: run tests/harness/install.sh")
        }
        Some(what) => {
            eprintln!("skipping the console browser test: {what} is missing");
            false
        }
    }
}

/// `npm ci` in the harness when Playwright is not installed yet (install.sh normally did).
fn playwright(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .expect("run npm ci");
    assert!(
        out.status.success(),
        "npm ci in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("console-screenshots")
}

#[test]
fn console_pages_work_in_headless_chromium_without_javascript() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) || !browser_available() {
        return;
    }
    let harness = harness_dir().join("console");
    playwright(&harness);
    let s = PeerStack::start(&StackSpec {
        server_bin: our_bin("notary-server"),
        signer_bin: our_bin("notary-signer"),
        server_port: SERVER_PORT,
        signer_port: SIGNER_PORT,
        db_prefix: "e2e_console".into(),
        reset_db: true,
        env: vec![("ADMIN_PORT".into(), ADMIN_PORT.to_string())],
    });

    // Three GUNs: two under one prefix (the search finds them), one with a server-managed
    // snapshot and a delegation whose certificate runs out in 20 days.
    let suffix = random_suffix();
    let base = format!("example.com/console-{suffix}");
    let guns = [
        format!("{base}/alpha"),
        format!("{base}/beta"),
        format!("other.example/console-{suffix}/gamma"),
    ];
    let owner = NotaryCli::new(&s.url, &s.ca);
    let dir = owner.trust_dir.path().to_path_buf();
    for (i, gun) in guns.iter().enumerate() {
        owner.ok(&["init", gun]);
        let f = dir.join(format!("payload-{i}"));
        std::fs::write(&f, format!("payload {gun}\n")).unwrap();
        owner.ok(&["add", "-p", gun, "v1", f.to_str().unwrap()]);
    }
    owner.ok(&["key", "rotate", &guns[2], "snapshot", "-r"]);
    let (cert, key) = (dir.join("releases.crt"), dir.join("releases.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "20", "-subj", "/CN=releases"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    owner.ok(&[
        "delegation",
        "add",
        "-p",
        &guns[2],
        "targets/releases",
        cert.to_str().unwrap(),
        "--paths",
        "releases/",
    ]);

    // The one value no client can produce: an expired entry (a timestamp left unrefreshed
    // for weeks), so the red path is seen in the browser too.
    let db = "e2e_console_server";
    let sql = format!(
        "UPDATE expiry_inventory SET expires = UTC_TIMESTAMP() - INTERVAL 2 DAY \
         WHERE gun = '{}' AND role = 'timestamp' AND kind = 'metadata'",
        guns[1]
    );
    let out = Command::new("mariadb")
        .args(["-uroot", db, "-e", &sql])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let certs = s.workdir.path().join("certs");
    let shots = screenshot_dir();
    let config = serde_json::json!({
        "base": format!("https://127.0.0.1:{ADMIN_PORT}"),
        "cert": certs.join("notary-server-client.crt"),
        "key": certs.join("notary-server-client.key"),
        "out": shots,
        "guns": guns,
        "follow": &guns[2],
        "delegation": "targets/releases",
        "delegationPath": "releases/",
        "search": format!("{base}/"),
        "searchHits": [&guns[0], &guns[1]],
        "expired": &guns[1],
    });
    let out = Command::new("timeout")
        .arg("300")
        .arg("node")
        .arg(harness.join("check-console.mjs"))
        .arg(config.to_string())
        .env("CHROMIUM_BIN", chromium())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "check-console.mjs failed ({}):\n{stdout}\n{stderr}\n{}",
        out.status,
        s.logs()
    );
    assert!(!stdout.contains("not ok"), "{stdout}");
    let pictures: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("screenshot: "))
        .collect();
    assert_eq!(pictures.len(), 5, "{stdout}");
    for p in &pictures {
        let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG"), "{p} is no PNG");
        eprintln!("console screenshot: {p}");
    }
    // The admin listener logged the browser's requests under the certificate's subject.
    let log = std::fs::read_to_string(s.workdir.path().join("server.log")).unwrap_or_default();
    assert!(
        log.contains("/_notary_server/admin/console/") && log.contains("CN=notary-server"),
        "{}",
        s.logs()
    );
}
