//! Drop-in replacement (server issue): databases filled by the Go notary-server and
//! notary-signer are served by ours without any conversion, ours keep writing to them, and
//! the Go pair then reads everything ours wrote and keeps working.
//!
//! Phase 1 (Go pair, MariaDB): repositories with several publishes, a delegation whose key
//! signs `targets/releases`, a server-managed snapshot (`key rotate snapshot -r`) and a
//! rotated root. Phase 2 (our pair on the same databases): fresh clients list and verify
//! every GUN; the owners publish more, rotate a root and a timestamp key, and create a new
//! GUN. Phase 3 (Go pair again): fresh clients list and verify everything, and every GUN
//! accepts a publish.
//!
//! The same round trip runs on MariaDB and on PostgreSQL (the Go pair with its `postgres`
//! backend, as Harbor ran it).
//!
//! Ports 24485/27985 (MariaDB) and 24486/27986 (PostgreSQL); databases
//! `e2e_dropin_server`/`_signer` and `e2e_dropin_pg_server`/`_signer`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use notary_e2e::{go_bin, our_bin, random_suffix, require, NotaryCli, PeerStack, StackSpec};

/// Passphrases the e2e `NotaryCli` gives the CLI (repeated here for the one command that
/// needs stdin).
const CLI_ENV: [(&str, &str); 4] = [
    ("NOTARY_ROOT_PASSPHRASE", "e2e-root-passphrase"),
    ("NOTARY_TARGETS_PASSPHRASE", "e2e-targets-passphrase"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "e2e-snapshot-passphrase"),
    ("NOTARY_DELEGATION_PASSPHRASE", "e2e-delegation-passphrase"),
];

/// Where a round trip runs: ports, database names and `start-pair.sh` settings.
struct Db {
    server_port: u16,
    signer_port: u16,
    db_prefix: &'static str,
    env: Vec<(String, String)>,
}

fn mariadb() -> Db {
    Db {
        server_port: 24485,
        signer_port: 27985,
        db_prefix: "e2e_dropin",
        env: vec![],
    }
}

fn postgres() -> Db {
    Db {
        server_port: 24486,
        signer_port: 27986,
        db_prefix: "e2e_dropin_pg",
        env: vec![("DB_BACKEND".into(), "postgres".into())],
    }
}

fn spec(db: &Db, go: bool, reset_db: bool) -> StackSpec {
    let bin = |name: &str| if go { go_bin(name) } else { our_bin(name) };
    StackSpec {
        server_bin: bin("notary-server"),
        signer_bin: bin("notary-signer"),
        server_port: db.server_port,
        signer_port: db.signer_port,
        db_prefix: db.db_prefix.into(),
        reset_db,
        env: db.env.clone(),
    }
}

/// `notary key rotate GUN root`, which asks for confirmation on stdin.
fn rotate_root(cli: &NotaryCli, url: &str, ca: &Path, gun: &str) {
    let mut child = Command::new("timeout")
        .arg("120")
        .arg("notary")
        .args(["-s", url, "--tlscacert"])
        .arg(ca)
        .arg("-d")
        .arg(cli.trust_dir.path())
        .args(["key", "rotate", gun, "root"])
        .envs(CLI_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run notary");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"yes\n");
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "key rotate {gun} root failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the repositories must contain: per GUN, target name → file with its content.
#[derive(Default)]
struct Expected {
    targets: BTreeMap<String, BTreeMap<String, PathBuf>>,
}

impl Expected {
    fn add(&mut self, gun: &str, name: &str, file: &Path) {
        self.targets
            .entry(gun.to_string())
            .or_default()
            .insert(name.to_string(), file.to_path_buf());
    }

    /// A fresh client (no cached trust) lists every GUN with exactly its targets, and
    /// verifies each target's content.
    fn check(&self, stack: &PeerStack, phase: &str) {
        for (gun, targets) in &self.targets {
            let reader = NotaryCli::new(&stack.url, &stack.ca);
            let (ok, listing) = reader.run(&["list", gun]);
            assert!(
                ok,
                "{phase}: notary list {gun}:\n{listing}\n{}",
                stack.logs()
            );
            let listed: Vec<&str> = listing
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| targets.contains_key(*n))
                .collect();
            assert_eq!(
                listed.len(),
                targets.len(),
                "{phase}: {gun} should list {:?}:\n{listing}",
                targets.keys().collect::<Vec<_>>()
            );
            for (name, file) in targets {
                let (ok, out) =
                    reader.run(&["verify", gun, name, "-i", file.to_str().unwrap(), "-q"]);
                assert!(ok, "{phase}: verify {gun} {name}: {out}");
            }
        }
    }
}

/// Writes a payload file with distinct content.
fn payload(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("payload {name} {}\n", random_suffix())).unwrap();
    path
}

#[test]
fn go_databases_are_served_by_our_pair_and_back() {
    round_trip(&mariadb());
}

#[test]
fn go_postgres_databases_are_served_by_our_pair_and_back() {
    round_trip(&postgres());
}

fn round_trip(db: &Db) {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let base = format!("example.com/dropin/{}", random_suffix());
    let (plain, deleg, servsnap, rotated) = (
        format!("{base}/plain"),
        format!("{base}/delegated"),
        format!("{base}/server-snapshot"),
        format!("{base}/rotated-root"),
    );
    let mut want = Expected::default();

    // Phase 1: the Go pair fills fresh databases.
    let stack = PeerStack::start(&spec(db, true, true));
    let (url, ca) = (stack.url.clone(), stack.ca.clone());
    let owner = NotaryCli::new(&url, &ca);

    owner.ok(&["init", &plain]);
    for n in 1..=3 {
        let f = payload(dir, &format!("plain-v{n}"));
        owner.ok(&["add", "-p", &plain, &format!("v{n}"), f.to_str().unwrap()]);
        want.add(&plain, &format!("v{n}"), &f);
    }

    let key = dir.join("releases");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let key_pem = format!("{}.key", key.display());
    let cert_pem = format!("{}.crt", key.display());
    openssl(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        &key_pem,
    ]);
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        &key_pem,
        "-subj",
        "/CN=releases",
        "-days",
        "365",
        "-out",
        &cert_pem,
    ]);
    owner.ok(&["init", &deleg]);
    let f = payload(dir, "deleg-base");
    owner.ok(&["add", "-p", &deleg, "base", f.to_str().unwrap()]);
    want.add(&deleg, "base", &f);
    owner.ok(&[
        "delegation",
        "add",
        "-p",
        &deleg,
        "targets/releases",
        &cert_pem,
        "--paths",
        "rel/",
    ]);
    owner.ok(&["key", "import", &key_pem, "-r", "targets/releases"]);
    let f = payload(dir, "deleg-app");
    owner.ok(&[
        "add",
        "-p",
        &deleg,
        "rel/app",
        f.to_str().unwrap(),
        "--roles",
        "targets/releases",
    ]);
    want.add(&deleg, "rel/app", &f);

    owner.ok(&["init", &servsnap]);
    owner.ok(&["key", "rotate", &servsnap, "snapshot", "-r"]);
    let f = payload(dir, "servsnap-v1");
    owner.ok(&["add", "-p", &servsnap, "v1", f.to_str().unwrap()]);
    want.add(&servsnap, "v1", &f);

    owner.ok(&["init", &rotated]);
    let f = payload(dir, "rotated-before");
    owner.ok(&["add", "-p", &rotated, "before", f.to_str().unwrap()]);
    want.add(&rotated, "before", &f);
    rotate_root(&owner, &url, &ca, &rotated);
    let f = payload(dir, "rotated-after");
    owner.ok(&["add", "-p", &rotated, "after", f.to_str().unwrap()]);
    want.add(&rotated, "after", &f);
    want.check(&stack, "Go pair, initial");

    // Phase 2: our pair on the same databases (no reset, no migration step).
    stack.stop();
    stack.start_in_place(&spec(db, false, false));
    want.check(&stack, "our pair reading Go data");
    let f = payload(dir, "plain-v4");
    owner.ok(&["add", "-p", &plain, "v4", f.to_str().unwrap()]);
    want.add(&plain, "v4", &f);
    rotate_root(&owner, &url, &ca, &plain);
    let f = payload(dir, "plain-v5");
    owner.ok(&["add", "-p", &plain, "v5", f.to_str().unwrap()]);
    want.add(&plain, "v5", &f);
    let f = payload(dir, "deleg-app2");
    owner.ok(&[
        "add",
        "-p",
        &deleg,
        "rel/app2",
        f.to_str().unwrap(),
        "--roles",
        "targets/releases",
    ]);
    want.add(&deleg, "rel/app2", &f);
    // The snapshot key the Go signer made signs through ours; then ours makes a new
    // timestamp key that the Go signer will have to use.
    let f = payload(dir, "servsnap-v2");
    owner.ok(&["add", "-p", &servsnap, "v2", f.to_str().unwrap()]);
    want.add(&servsnap, "v2", &f);
    owner.ok(&["key", "rotate", &servsnap, "timestamp", "-r"]);
    let f = payload(dir, "rotated-ours");
    owner.ok(&["add", "-p", &rotated, "ours", f.to_str().unwrap()]);
    want.add(&rotated, "ours", &f);
    let fresh = format!("{base}/made-by-ours");
    owner.ok(&["init", &fresh]);
    owner.ok(&["key", "rotate", &fresh, "snapshot", "-r"]);
    let f = payload(dir, "fresh-v1");
    owner.ok(&["add", "-p", &fresh, "v1", f.to_str().unwrap()]);
    want.add(&fresh, "v1", &f);
    want.check(&stack, "our pair after our writes");

    // Phase 3: the Go pair again reads and extends everything.
    stack.stop();
    stack.start_in_place(&spec(db, true, false));
    want.check(&stack, "Go pair reading our data");
    for (i, gun) in [&plain, &servsnap, &rotated, &fresh]
        .into_iter()
        .enumerate()
    {
        let f = payload(dir, &format!("back-on-go-{i}"));
        let (ok, out) = owner.run(&["add", "-p", gun, "back-on-go", f.to_str().unwrap()]);
        assert!(
            ok,
            "publish to {gun} on the Go pair again:\n{out}\n{}",
            stack.logs()
        );
        want.add(gun, "back-on-go", &f);
    }
    let f = payload(dir, "deleg-go-again");
    owner.ok(&[
        "add",
        "-p",
        &deleg,
        "rel/go-again",
        f.to_str().unwrap(),
        "--roles",
        "targets/releases",
    ]);
    want.add(&deleg, "rel/go-again", &f);
    want.check(&stack, "Go pair after its new writes");
}
