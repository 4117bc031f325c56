//! The migration kit end to end (`notary-migrate`, see docs/migration.md).
//!
//! Source: the Go reference pair on MariaDB, filled by the stock notary CLI (a delegation, a
//! rotated root, an owner-held and a server-held snapshot key) or by `docker push` with
//! content trust. Target: our pair. Checked:
//! - bad input (unreachable source, wrong CA, unknown GUN, metadata failing verification)
//!   fails clearly and writes nothing;
//! - the mirror serves every GUN to a fresh notary client with the same targets; a rerun
//!   writes nothing; the owner runs the printed rotation commands against our server and can
//!   publish again;
//! - the Go databases imported into SQLite (keys re-encrypted under a new alias) serve the
//!   same GUNs through our binaries, SQLite imports back into MySQL, and a hand-edited row is
//!   reported and not imported;
//! - the inventory matches `notary list` / `docker trust inspect`, and `verify` says which
//!   role vouches for a reference;
//! - (Docker test) after mirroring and the owner's rotation, `docker pull` and a new signed
//!   push work through our server.
//!
//! Needs what the other e2e tests need plus the `notary-migrate` binary (release, or debug
//! when no release build exists; `NOTARY_MIGRATE_BIN` overrides). Ports 24501-24519 /
//! 28001-28019, databases `e2e_mig_*`, registry 25501.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use notary_e2e::dct::{self, signed_tags, DockerCli, DockerEnv};
use notary_e2e::migrate::{migrate_bin, run_migrate};
use notary_e2e::{go_bin, our_bin, PeerStack, SqliteStack, SqliteStores, StackSpec};
use serde_json::Value;

/// One test at a time: each starts two notary pairs (and maybe dockerd) on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const OWNER_ENV: [(&str, &str); 4] = [
    ("NOTARY_ROOT_PASSPHRASE", "mig-root-pw"),
    ("NOTARY_TARGETS_PASSPHRASE", "mig-targets-pw"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "mig-snapshot-pw"),
    ("NOTARY_DELEGATION_PASSPHRASE", "mig-delegation-pw"),
];

/// Runs the stock notary CLI with a trust dir, a server and optional stdin.
fn notary(dir: &Path, url: &str, ca: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("timeout")
        .arg("120")
        .arg("notary")
        .arg("-s")
        .arg(url)
        .arg("--tlscacert")
        .arg(ca)
        .arg("-d")
        .arg(dir)
        .args(args)
        .envs(OWNER_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run notary");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("notary output");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn notary_ok(dir: &Path, url: &str, ca: &Path, args: &[&str]) -> String {
    let (ok, text) = notary(dir, url, ca, args, "");
    assert!(ok, "notary {} failed:\n{text}", args.join(" "));
    text
}

/// `notary list` through a fresh client: name → (digest, size, role).
fn fresh_list(url: &str, ca: &Path, gun: &str) -> BTreeMap<String, (String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let text = notary_ok(dir.path(), url, ca, &["list", gun]);
    parse_list(&text)
}

fn parse_list(text: &str) -> BTreeMap<String, (String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with("NAME") && !l.starts_with("----"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[1].len() == 64)
                .then(|| (f[0].to_string(), (f[1].into(), f[2].into(), f[3].into())))
        })
        .collect()
}

/// HTTP status of a GET (certificate checked against `ca`).
fn http_status(url: &str, ca: &Path) -> u16 {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn http_body(url: &str, ca: &Path) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SQL as the stack's server DB user (it owns the `e2e_mig_*_server` databases).
fn server_sql(db: &str, sql: &str) -> String {
    let out = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            "-unotary_server",
            "-pnotary_server_pw",
            "-N",
            "-B",
            db,
            "-e",
            sql,
        ])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "SQL failed: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn go_dsn(db: &str, user: &str) -> String {
    format!("{user}:{user}_pw@tcp(127.0.0.1:3306)/{db}")
}

fn stack(go: bool, server_port: u16, signer_port: u16, prefix: &str) -> PeerStack {
    let (server_bin, signer_bin) = if go {
        (go_bin("notary-server"), go_bin("notary-signer"))
    } else {
        (our_bin("notary-server"), our_bin("notary-signer"))
    };
    PeerStack::start(&StackSpec {
        server_bin,
        signer_bin,
        server_port,
        signer_port,
        db_prefix: prefix.into(),
        reset_db: true,
        env: Vec::new(),
    })
}

fn prerequisites() -> bool {
    let (s, g) = (our_bin("notary-server"), go_bin("notary-server"));
    let m = migrate_bin();
    notary_e2e::require(&[
        &s,
        &our_bin("notary-signer"),
        &g,
        &go_bin("notary-signer"),
        &m,
    ])
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn gun_report<'a>(report: &'a Value, gun: &str) -> &'a Value {
    report["guns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gun"] == gun)
        .unwrap_or_else(|| panic!("{gun} not in report {report}"))
}

/// Runs a printed owner command: the stock notary CLI gets the owner's trust dir, our
/// `rotate-keys` gets it in place of the placeholder.
fn run_owner_command(cmd: &str, trust_dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let cmd = cmd.split('#').next().unwrap().trim();
    let mut words: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
    for w in &mut words {
        if w.starts_with("~/") {
            *w = trust_dir.display().to_string();
        }
    }
    let (program, rest) = words.split_first().unwrap();
    let mut c = match program.as_str() {
        "notary" => {
            let mut c = Command::new("notary");
            c.arg("-d").arg(trust_dir);
            c
        }
        "notary-migrate" => Command::new(migrate_bin()),
        other => panic!("unexpected owner command {other}"),
    };
    let out = c
        .args(rest)
        .envs(OWNER_ENV)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{} {}\n{}{}",
            program,
            rest.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn mirror_import_and_inventory_of_a_go_notary_filled_by_the_notary_cli() {
    if prerequisites() {
        return;
    }
    let _one = serial();
    let src = stack(true, 24501, 28001, "e2e_mig_cli_src");
    let dst = stack(false, 24502, 28002, "e2e_mig_cli_dst");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let owner = w.join("owner");
    let (su, sca) = (src.url.as_str(), src.ca.as_path());
    let (du, dca) = (dst.url.as_str(), dst.ca.as_path());
    let run = notary_e2e::random_suffix();
    let ga = format!("example.com/mig-{run}/client-snapshot");
    let gb = format!("example.com/mig-{run}/server-snapshot");
    let gbad = format!("example.com/mig-{run}/tampered");
    let f1 = w.join("f1");
    let f2 = w.join("f2");
    std::fs::write(&f1, "one\n").unwrap();
    std::fs::write(&f2, "two\n").unwrap();
    let (f1s, f2s) = (f1.to_str().unwrap(), f2.to_str().unwrap());

    // --- populate the Go source with the notary CLI
    notary_ok(&owner, su, sca, &["init", "-p", &ga]);
    notary_ok(&owner, su, sca, &["add", "-p", &ga, "v1", f1s]);
    let rel_key = w.join("rel.key");
    let rel_crt = w.join("rel.crt");
    assert!(Command::new("openssl")
        .args([
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out"
        ])
        .arg(&rel_key)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-subj",
            "/CN=releaser",
            "-days",
            "365",
            "-key"
        ])
        .arg(&rel_key)
        .arg("-out")
        .arg(&rel_crt)
        .status()
        .unwrap()
        .success());
    notary_ok(
        &owner,
        su,
        sca,
        &[
            "delegation",
            "add",
            "-p",
            &ga,
            "targets/releases",
            rel_crt.to_str().unwrap(),
            "--all-paths",
        ],
    );
    notary_ok(
        &owner,
        su,
        sca,
        &[
            "key",
            "import",
            rel_key.to_str().unwrap(),
            "-r",
            "targets/releases",
        ],
    );
    notary_ok(
        &owner,
        su,
        sca,
        &["add", "-p", &ga, "rel1", f2s, "--roles", "targets/releases"],
    );

    notary_ok(&owner, su, sca, &["init", "-p", &gb]);
    notary_ok(&owner, su, sca, &["key", "rotate", &gb, "snapshot", "-r"]);
    notary_ok(&owner, su, sca, &["add", "-p", &gb, "b1", f1s]);
    let (ok, text) = notary(&owner, su, sca, &["key", "rotate", &gb, "root"], "yes\n");
    assert!(ok, "root rotation: {text}");
    notary_ok(&owner, su, sca, &["add", "-p", &gb, "b2", f2s]);

    notary_ok(&owner, su, sca, &["init", "-p", &gbad]);
    notary_ok(&owner, su, sca, &["add", "-p", &gbad, "x", f1s]);

    let source_lists: BTreeMap<String, _> = [&ga, &gb]
        .iter()
        .map(|g| (g.to_string(), fresh_list(su, sca, g)))
        .collect();
    assert_eq!(source_lists[&ga].len(), 2, "{source_lists:?}");
    assert_eq!(source_lists[&ga]["rel1"].2, "targets/releases");
    assert_eq!(source_lists[&gb].len(), 2, "{source_lists:?}");

    let target_db = go_dsn("e2e_mig_cli_dst_server", "notary_server");
    let root_on_target =
        |gun: &str| http_status(&format!("{du}/v2/{gun}/_trust/tuf/root.json"), dca);
    let changefeed_on_target = || {
        http_body(
            &format!("{du}/v2/_trust/changefeed?change_id=0&records=100"),
            dca,
        )
    };
    let feed_before = changefeed_on_target();

    // --- bad input changes nothing
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            "https://127.0.0.1:24519",
            "--tlscacert",
            sca.to_str().unwrap(),
            "--gun",
            &ga,
            "--target-db",
            &target_db,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "unreachable source: {}", r.text());
    assert!(
        r.stderr.contains("cannot reach"),
        "unreachable source: {}",
        r.text()
    );

    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            dca.to_str().unwrap(),
            "--gun",
            &ga,
            "--target-db",
            &target_db,
        ],
        &[],
    );
    assert_eq!(r.code, 1, "wrong CA: {}", r.text());
    assert!(
        r.stderr.to_lowercase().contains("certificate") || r.stderr.contains("UnknownIssuer"),
        "wrong CA should be named: {}",
        r.text()
    );

    let unknown = format!("example.com/mig-{run}/never-created");
    let rep = w.join("unknown.json");
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            sca.to_str().unwrap(),
            "--gun",
            &unknown,
            "--target-db",
            &target_db,
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "unknown GUN: {}", r.text());
    let g = gun_report(&read_json(&rep), &unknown).clone();
    assert_eq!(g["status"], "failed");
    assert!(
        g["error"]
            .as_str()
            .unwrap()
            .contains("unknown to the source"),
        "{g}"
    );

    // A hand-edited byte in the source's stored targets: the source serves it as is.
    server_sql(
        "e2e_mig_cli_src_server",
        &format!(
            "UPDATE tuf_files SET data = INSERT(data, LOCATE('\"expires\":\"2', data) + 12, 1, '9') \
             WHERE gun = '{gbad}' AND role = 'targets' ORDER BY version DESC LIMIT 1"
        ),
    );
    let rep = w.join("bad.json");
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            sca.to_str().unwrap(),
            "--gun",
            &gbad,
            "--target-db",
            &target_db,
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "tampered metadata: {}", r.text());
    let g = gun_report(&read_json(&rep), &gbad).clone();
    assert_eq!(g["status"], "failed");
    assert!(g["error"].as_str().unwrap().contains("targets"), "{g}");
    for gun in [&ga, &gb, &gbad, &unknown] {
        assert_eq!(
            root_on_target(gun),
            404,
            "{gun} must not exist on the target"
        );
    }
    assert_eq!(
        changefeed_on_target(),
        feed_before,
        "bad input must not write to the target"
    );

    // --- the mirror
    let gun_file = w.join("guns.txt");
    std::fs::write(&gun_file, format!("# GUNs to move\n{ga}\n\n{gb}\n")).unwrap();
    let rep = w.join("mirror.json");
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            sca.to_str().unwrap(),
            "--gun-file",
            gun_file.to_str().unwrap(),
            "--target-db",
            &target_db,
            "--target-url",
            du,
            "--target-ca",
            dca.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "mirror: {}", r.text());
    let report = read_json(&rep);
    assert_eq!(report["changefeed"], true);
    let (ra, rb) = (
        gun_report(&report, &ga).clone(),
        gun_report(&report, &gb).clone(),
    );
    for g in [&ra, &rb] {
        assert_eq!(g["status"], "mirrored", "{g}");
        assert!(g["files_written"].as_u64().unwrap() > 4, "{g}");
        assert!(g["timestamp_expires"].is_string(), "{g}");
    }
    assert_eq!(
        rb["versions"]["root"], 3,
        "the rotated root chain came along: {rb}"
    );
    assert_eq!(ra["versions"]["targets/releases"], 1, "{ra}");
    assert_eq!(ra["snapshot_key"], "client-held", "{ra}");
    assert_eq!(ra["keys_to_rotate"], serde_json::json!(["timestamp"]));
    assert_eq!(rb["snapshot_key"], "server-held", "{rb}");
    assert_eq!(
        rb["keys_to_rotate"],
        serde_json::json!(["timestamp", "snapshot"])
    );
    assert!(r.stdout.contains("owner runs:"), "{}", r.text());
    // Every root version is served by version, byte for byte.
    for v in 1..=3 {
        let path = format!("/v2/{gb}/_trust/tuf/{v}.root.json");
        assert_eq!(
            http_body(&format!("{su}{path}"), sca),
            http_body(&format!("{du}{path}"), dca),
            "{v}.root.json"
        );
    }
    for gun in [&ga, &gb] {
        assert_eq!(
            fresh_list(du, dca, gun),
            source_lists[gun.as_str()],
            "{gun} through our server"
        );
    }
    // The mirror appended what it stored to the target's transparency log: every file has
    // its leaf (pending until a server with the log on integrates it).
    let unlogged = server_sql(
        "e2e_mig_cli_dst_server",
        &format!(
            "SELECT COUNT(*) FROM tuf_files WHERE gun IN ('{ga}', '{gb}') AND \
             HEX(LOWER(sha256)) NOT IN (SELECT HEX(sha256) FROM tlog_leaves)"
        ),
    );
    assert_eq!(unlogged.trim(), "0", "mirrored files without a log leaf");

    // Idempotent: nothing more to write.
    let rep2 = w.join("mirror2.json");
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            sca.to_str().unwrap(),
            "--gun",
            &ga,
            "--gun",
            &gb,
            "--target-db",
            &target_db,
            "--report",
            rep2.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "rerun: {}", r.text());
    for gun in [&ga, &gb] {
        let g = gun_report(&read_json(&rep2), gun).clone();
        assert_eq!(g["status"], "up-to-date", "{g}");
        assert_eq!(g["files_written"], 0, "{g}");
    }

    // --- inventory and verify (through our server)
    let inv_json = w.join("inv.json");
    let inv_csv = w.join("inv.csv");
    let r = run_migrate(
        &[
            "inventory",
            "-s",
            du,
            "--tlscacert",
            dca.to_str().unwrap(),
            "--prefix",
            &format!("example.com/mig-{run}/"),
            "--json",
            inv_json.to_str().unwrap(),
            "--csv",
            inv_csv.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "inventory: {}", r.text());
    let inv = read_json(&inv_json);
    // GUNs come from our server's changefeed: exactly the two mirrored ones.
    let inv_guns: Vec<&str> = inv["guns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["gun"].as_str().unwrap())
        .collect();
    assert_eq!(inv_guns, vec![ga.as_str(), gb.as_str()], "{inv}");
    for gun in [&ga, &gb] {
        let g = inv["guns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gun"] == gun.as_str())
            .unwrap();
        let mut listed = BTreeMap::new();
        for t in g["targets"].as_array().unwrap() {
            listed.insert(
                t["tag"].as_str().unwrap().to_string(),
                (
                    t["digest"].as_str().unwrap().to_string(),
                    t["size"].to_string(),
                    t["role"].as_str().unwrap().to_string(),
                ),
            );
            assert!(!t["signer_key_ids"].as_array().unwrap().is_empty(), "{t}");
        }
        assert_eq!(listed, source_lists[gun.as_str()], "inventory of {gun}");
        let roles: Vec<&str> = g["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["role"].as_str().unwrap())
            .collect();
        for base in ["root", "targets", "snapshot", "timestamp"] {
            assert!(roles.contains(&base), "{roles:?}");
        }
        let root = g["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["role"] == "root")
            .unwrap();
        assert_eq!(
            root["cert_subjects"],
            serde_json::json!([format!("CN={gun}")])
        );
    }
    let rel = inv["guns"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "targets/releases")
        .cloned();
    assert_eq!(
        rel.map(|t| t["cert_subjects"].clone()),
        Some(serde_json::json!(["CN=releaser"]))
    );
    let csv = std::fs::read_to_string(&inv_csv).unwrap();
    assert!(csv.starts_with("gun,tag,digest,size,role,signer_key_ids,cert_subjects,role_expires\n"));
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");

    let (d_v1, d_rel1) = (&source_lists[&ga]["v1"].0, &source_lists[&ga]["rel1"].0);
    let r = run_migrate(
        &[
            "verify",
            "-s",
            du,
            "--tlscacert",
            dca.to_str().unwrap(),
            "--json",
            &format!("{ga}:v1"),
            &format!("{ga}@sha256:{d_rel1}"),
            &format!("{ga}:v1@sha256:{d_rel1}"),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "one reference is not vouched: {}", r.text());
    let verdicts: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(verdicts[0]["vouched"], true);
    assert_eq!(verdicts[0]["role"], "targets");
    assert_eq!(verdicts[0]["digest"], d_v1.as_str());
    assert_eq!(verdicts[1]["vouched"], true);
    assert_eq!(verdicts[1]["role"], "targets/releases");
    assert_eq!(verdicts[1]["tag"], "rel1");
    assert_eq!(verdicts[2]["vouched"], false, "{}", verdicts[2]);

    // --- until the owner rotates, our server serves the mirror read-only: it never signs
    // with a key it does not hold, so a publish is refused and changes nothing.
    let attempt = w.join("owner-copy");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&owner)
        .arg(&attempt)
        .status()
        .unwrap()
        .success());
    for gun in [&ga, &gb] {
        let (ok, text) = notary(&attempt, du, dca, &["add", "-p", gun, "too-early", f1s], "");
        assert!(!ok, "publish before the rotation must fail: {text}");
        assert_eq!(fresh_list(du, dca, gun), source_lists[gun.as_str()]);
    }

    // --- the owner rotates the keys the source kept, as the report says, then publishes
    for (gun, g) in [(&ga, &ra), (&gb, &rb)] {
        let cmds = g["owner_commands"].as_array().unwrap();
        assert_eq!(cmds.len(), 1, "{g}");
        let (ok, text) = run_owner_command(cmds[0].as_str().unwrap(), &owner, &[]);
        assert!(ok, "owner command for {gun}: {text}");
    }
    let root_b: Value = serde_json::from_str(&http_body(
        &format!("{du}/v2/{gb}/_trust/tuf/root.json"),
        dca,
    ))
    .unwrap();
    assert_eq!(root_b["signed"]["version"], 4);
    for (gun, tag) in [(&ga, "after-a"), (&gb, "after-b")] {
        notary_ok(&owner, du, dca, &["add", "-p", gun, tag, f1s]);
        let listed = fresh_list(du, dca, gun);
        assert!(listed.contains_key(tag), "{gun}: {listed:?}");
        assert_eq!(listed.len(), source_lists[gun.as_str()].len() + 1);
    }
    // A later mirror run leaves the rotated GUNs alone.
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            sca.to_str().unwrap(),
            "--gun",
            &gb,
            "--target-db",
            &target_db,
            "--report",
            rep2.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.text());
    assert_eq!(
        gun_report(&read_json(&rep2), &gb)["status"],
        "target-diverged"
    );
    assert!(fresh_list(du, dca, &gb).contains_key("after-b"));

    // --- database import: the Go databases into SQLite, keys under a new alias
    let server_db = w.join("imported-server.db");
    let signer_db = w.join("imported-signer.db");
    let pass_env = [
        (
            "NOTARY_SIGNER_PASSWORDALIAS1",
            "notary-signer-test-passphrase",
        ),
        ("NOTARY_SIGNER_MIGRATED", "migrated-passphrase"),
    ];
    // Undo the tampering first: this import must be clean.
    server_sql(
        "e2e_mig_cli_src_server",
        &format!("DELETE FROM tuf_files WHERE gun = '{gbad}'"),
    );
    let rep = w.join("import.json");
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &go_dsn("e2e_mig_cli_src_server", "notary_server"),
            "--signer-db",
            &go_dsn("e2e_mig_cli_src_signer", "notary_signer"),
            "--target-server-db",
            server_db.to_str().unwrap(),
            "--target-signer-db",
            signer_db.to_str().unwrap(),
            "--new-alias",
            "migrated",
            "--report",
            rep.to_str().unwrap(),
        ],
        &pass_env,
    );
    assert_eq!(r.code, 0, "import: {}", r.text());
    let imp = read_json(&rep);
    assert_eq!(imp["invalid"], serde_json::json!([]), "{imp}");
    assert_eq!(imp["server_rows_written"], imp["server_rows"], "{imp}");
    assert!(imp["key_rows_written"].as_u64().unwrap() >= 2, "{imp}");
    assert_eq!(imp["keys_reencrypted"], imp["key_rows_written"], "{imp}");
    for gun in [&ga, &gb] {
        assert_eq!(imp["guns"][gun.as_str()]["serves"], true, "{imp}");
    }
    {
        let imported = SqliteStack::start_on(
            24503,
            28003,
            &SqliteStores {
                server_db: server_db.clone(),
                signer_db: signer_db.clone(),
                alias: "migrated".into(),
                passphrase: "migrated-passphrase".into(),
            },
        );
        for gun in [&ga, &gb] {
            assert_eq!(
                fresh_list(&imported.url, &imported.ca, gun),
                source_lists[gun.as_str()],
                "{gun} from the imported SQLite"
            );
            // The source's timestamp key came along: the server answers with the root's key.
            let key: Value = serde_json::from_str(&http_body(
                &format!("{su}/v2/{gun}/_trust/tuf/timestamp.key"),
                sca,
            ))
            .unwrap();
            let key2: Value = serde_json::from_str(&http_body(
                &format!("{}/v2/{gun}/_trust/tuf/timestamp.key", imported.url),
                &imported.ca,
            ))
            .unwrap();
            assert_eq!(key, key2, "{gun}: timestamp key after import");
        }
    }
    // Rerunning the same import completes nothing more and refuses nothing.
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &go_dsn("e2e_mig_cli_src_server", "notary_server"),
            "--target-server-db",
            server_db.to_str().unwrap(),
        ],
        &pass_env,
    );
    assert_eq!(r.code, 0, "import rerun: {}", r.text());
    assert!(r.stdout.contains(" 0 written"), "{}", r.text());

    // Adopting the Go databases in place: verified, our migrations added, Go still serves.
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &go_dsn("e2e_mig_cli_src_server", "notary_server"),
            "--signer-db",
            &go_dsn("e2e_mig_cli_src_signer", "notary_signer"),
        ],
        &pass_env,
    );
    assert_eq!(r.code, 0, "adopt: {}", r.text());
    assert!(r.stdout.starts_with("import (adopt)"), "{}", r.text());
    assert!(
        server_sql(
            "e2e_mig_cli_src_server",
            "SHOW TABLES LIKE '__diesel_schema_migrations'"
        )
        .contains("__diesel"),
        "our migrations were recorded"
    );
    assert_eq!(
        fresh_list(su, sca, &ga),
        source_lists[&ga],
        "the Go server still serves"
    );

    // SQLite back into a fresh MySQL database.
    match std::env::var("NOTARY_TEST_MYSQL_URL") {
        Ok(base) => {
            let db = format!("e2e_mig_back_{run}");
            let admin = |sql: &str| {
                let st = Command::new("mariadb")
                    .args([
                        "-h127.0.0.1",
                        "-unotary_test",
                        "-pnotary_test_pw",
                        "-e",
                        sql,
                    ])
                    .status()
                    .unwrap();
                assert!(st.success(), "{sql}");
            };
            admin(&format!("CREATE DATABASE `{db}`"));
            let url = format!("{}/{db}", base.trim_end_matches('/'));
            let rep = w.join("back.json");
            let r = run_migrate(
                &[
                    "import",
                    "--server-db",
                    server_db.to_str().unwrap(),
                    "--target-server-db",
                    &url,
                    "--report",
                    rep.to_str().unwrap(),
                ],
                &[],
            );
            admin(&format!("DROP DATABASE `{db}`"));
            assert_eq!(r.code, 0, "SQLite to MySQL: {}", r.text());
            assert_eq!(
                read_json(&rep)["server_rows_written"],
                imp["server_rows_written"]
            );
        }
        Err(_) => eprintln!("skipping SQLite-to-MySQL import: NOTARY_TEST_MYSQL_URL is unset"),
    }

    // A hand-edited byte (data and its sha256 column both changed) is reported, not imported.
    server_sql(
        "e2e_mig_cli_src_server",
        &format!(
            "UPDATE tuf_files SET data = INSERT(data, LOCATE('\"expires\":\"2', data) + 12, 1, '9'), \
             sha256 = SHA2(data, 256) WHERE gun = '{ga}' AND role = 'targets' ORDER BY version DESC LIMIT 1"
        ),
    );
    let edited: i64 = server_sql(
        "e2e_mig_cli_src_server",
        &format!("SELECT id FROM tuf_files WHERE gun = '{ga}' AND role = 'targets' ORDER BY version DESC LIMIT 1"),
    )
    .trim()
    .parse()
    .unwrap();
    let corrupt_db = w.join("corrupt.db");
    let rep = w.join("corrupt.json");
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &go_dsn("e2e_mig_cli_src_server", "notary_server"),
            "--target-server-db",
            corrupt_db.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 2, "corrupt row: {}", r.text());
    assert!(r.stdout.contains("INVALID tuf_files"), "{}", r.text());
    let imp = read_json(&rep);
    let bad = imp["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == edited)
        .unwrap_or_else(|| panic!("row {edited} not reported: {imp}"));
    assert_eq!(bad["role"], "targets");
    assert!(
        bad["reason"].as_str().unwrap().contains("signature"),
        "{bad}"
    );
    assert_eq!(imp["guns"][ga.as_str()]["serves"], false);
    let written = imp["server_rows_written"].as_u64().unwrap();
    let invalid = imp["invalid"].as_array().unwrap().len() as u64;
    assert_eq!(
        written + invalid,
        imp["server_rows"].as_u64().unwrap(),
        "{imp}"
    );
    // The edited row is not in the copy: our store's inventory cannot read that GUN.
    let r = run_migrate(
        &[
            "inventory",
            "--db",
            corrupt_db.to_str().unwrap(),
            "--gun",
            &ga,
            "--gun",
            &gb,
            "--json",
            "-",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.text());
    let inv: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(inv["guns"][0]["error"].is_string(), "{inv}");
    assert!(inv["guns"][1]["error"].is_null(), "{inv}");
}

#[test]
fn docker_pushed_repositories_mirror_rotate_then_pull_and_push_through_ours() {
    let m = migrate_bin();
    let bins = [
        our_bin("notary-server"),
        our_bin("notary-signer"),
        go_bin("notary-server"),
        go_bin("notary-signer"),
        m,
    ];
    let refs: Vec<&Path> = bins.iter().map(PathBuf::as_path).collect();
    if dct::require_docker(&refs) {
        return;
    }
    let _one = serial();
    let src = stack(true, 24511, 28011, "e2e_mig_dct_src");
    let dst = stack(false, 24512, 28012, "e2e_mig_dct_dst");
    let docker = DockerEnv::start(25501);
    // The server certificates name localhost; the CLI reads CAs per notary host:port.
    let su = "https://localhost:24511";
    let du = "https://localhost:24512";
    let config = tempfile::Builder::new()
        .prefix("mig-docker-")
        .tempdir_in("/tmp")
        .unwrap();
    let cli = DockerCli {
        env: &docker,
        config: config.path().to_path_buf(),
    };
    cli.trust_notary_ca(24511, &src.ca);
    cli.trust_notary_ca(24512, &dst.ca);
    let run = notary_e2e::random_suffix();
    let reg = docker.registry();
    let app = format!("{reg}/mig-{run}/app");
    let other = format!("{reg}/mig-{run}/other");

    // --- populate the Go source with docker: pushes, a delegation, a co-signed tag
    let (img1, _) = cli.push_signed_repositories(su, &app, &other, &format!("mig-{run}"));
    let source_inspect: BTreeMap<String, Value> = [&app, &other]
        .iter()
        .map(|g| (g.to_string(), cli.inspect(su, g)))
        .collect();
    assert_eq!(
        signed_tags(&source_inspect[&app]).len(),
        2,
        "{:?}",
        source_inspect[&app]
    );

    // --- mirror both into ours
    let target_db = go_dsn("e2e_mig_dct_dst_server", "notary_server");
    let work = tempfile::tempdir().unwrap();
    let rep = work.path().join("mirror.json");
    let r = run_migrate(
        &[
            "mirror",
            "-s",
            su,
            "--tlscacert",
            src.ca.to_str().unwrap(),
            "--gun",
            &app,
            "--gun",
            &other,
            "--target-db",
            &target_db,
            "--target-url",
            du,
            "--target-ca",
            dst.ca.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "mirror: {}", r.text());
    let report = read_json(&rep);
    for gun in [&app, &other] {
        let g = gun_report(&report, gun);
        assert_eq!(g["status"], "mirrored", "{g}");
        assert_eq!(
            g["snapshot_key"], "server-held",
            "docker repositories have server-held snapshots: {g}"
        );
        assert_eq!(
            cli.inspect(du, gun),
            source_inspect[gun.as_str()],
            "docker trust inspect of {gun} through ours"
        );
        assert_eq!(
            fresh_list(&dst.url, &dst.ca, gun),
            fresh_list(&src.url, &src.ca, gun),
            "notary list of {gun} through ours"
        );
    }

    // --- inventory digests equal docker trust inspect's for every tag
    let r = run_migrate(
        &[
            "inventory",
            "-s",
            du,
            "--tlscacert",
            dst.ca.to_str().unwrap(),
            "--gun",
            &app,
            "--gun",
            &other,
            "--json",
            "-",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "inventory: {}", r.text());
    let inv: Value = serde_json::from_str(&r.stdout).unwrap();
    for g in inv["guns"].as_array().unwrap() {
        let gun = g["gun"].as_str().unwrap();
        let expected = signed_tags(&source_inspect[gun]);
        for (tag, digest) in &expected {
            let entries: Vec<&Value> = g["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["tag"] == tag.as_str())
                .collect();
            assert!(
                !entries.is_empty(),
                "{gun}:{tag} missing from the inventory"
            );
            for e in entries {
                assert_eq!(e["digest"], digest.as_str(), "{gun}:{tag} in {}", e["role"]);
            }
        }
    }
    let d1 = signed_tags(&source_inspect[&app])["1"].clone();
    let r = run_migrate(
        &[
            "verify",
            "-s",
            du,
            "--tlscacert",
            dst.ca.to_str().unwrap(),
            &format!("{app}:1"),
            &format!("{app}@sha256:{d1}"),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "verify: {}", r.text());
    assert_eq!(r.stdout.matches("VOUCHED").count(), 2, "{}", r.text());

    // --- the owner runs the printed rotation command (docker trust dir), then pull and push
    for gun in [&app, &other] {
        let cmd = gun_report(&report, gun)["owner_commands"][0]
            .as_str()
            .unwrap()
            .to_string();
        let (ok, text) = run_owner_command(
            &cmd,
            &config.path().join("trust"),
            &[
                ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "mig-docker-root"),
                ("NOTARY_ROOT_PASSPHRASE", ""),
            ],
        );
        assert!(ok, "owner command for {gun}: {text}");
    }
    let _ = Command::new(docker.docker())
        .args(["rmi", "-f", &img1, &format!("{app}:1")])
        .envs(docker.env())
        .output();
    let out = cli.ok(du, &["pull", &format!("{app}:1")]);
    assert!(
        out.contains(&format!("{app}:1@sha256:{d1}")),
        "pull through ours: {out}"
    );
    let img3 = cli.image(&format!("mig-three:{run}"));
    cli.ok(du, &["tag", &img3, &format!("{app}:3")]);
    let out = cli.ok(du, &["push", &format!("{app}:3")]);
    assert!(
        out.contains("Successfully signed"),
        "signed push through ours: {out}"
    );
    let after = signed_tags(&cli.inspect(du, &app));
    assert_eq!(after.len(), 3, "{after:?}");
    let out = cli.ok(du, &["tag", &img3, &format!("{other}:2")]);
    let _ = out;
    let out = cli.ok(du, &["push", &format!("{other}:2")]);
    assert!(out.contains("Successfully signed"), "{out}");
}
