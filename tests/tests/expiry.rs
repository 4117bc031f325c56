//! Expiry watch and rescue (issue 14) end to end, with the stock `notary` and `docker` CLIs.
//! Every step of `docs/expiry.md` runs here against our server.
//!
//! The clients read the real clock, and stock clients cannot be given another one (Go reads
//! the time without libc), so the repositories are made to expire soon instead: the test
//! signs them itself with lifetimes of seconds (root certificate, root and targets), uploads
//! them, and imports their keys into the owner's `notary` trust directory, as an owner
//! restoring keys from a backup would. Once the lifetimes pass, the repositories are what
//! operators meet after three or ten years.
//!
//! - `notary_runbook_on_mariadb` / `notary_runbook_on_sqlite`: expired targets (root fine)
//!   and expired root certificate + root + targets. Readers fail, the server keeps serving
//!   (200, never 500), the admin API and metrics name the problem and the fix (MariaDB), the
//!   owner runs the runbook's commands, and fresh and cached readers work again.
//! - `docker_user_with_an_expired_cached_root_pulls_again`: a `docker pull` that worked,
//!   fails once the root it cached expired, and works again after the owner's root rotation.
//!
//! - `background_tasks_run_on_mariadb`: the re-signing task takes its lease in MariaDB and the
//!   metrics task counts the GUNs (what a pass re-signs is tested on every database by the
//!   unit tests of `notary-server/src/expiry/resign.rs`, with a shifted clock).
//!
//! Ports 24561-24566 / 28061-28066, admin 24571-24572, registry 25561; databases `e2e_exp_*`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use notary_bench::client::TrustClient;
use notary_e2e::dct::{self, DockerCli, DockerEnv};
use notary_e2e::migrate::run_migrate;
use notary_e2e::{our_bin, random_suffix, require, NotaryCli, PeerStack, SqliteStack, StackSpec};
use notary_tuf::keys::{KeyType, PrivateKey, PublicKey};
use notary_tuf::metadata::FileMeta;
use notary_tuf::test_support::{self_signed_cert, x509_key, CertOptions, TestRepo};
use serde_json::Value;

/// How long the made-to-expire parts live: enough to upload and read once.
const LIFETIME: chrono::Duration = chrono::Duration::seconds(25);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// PEM of a private key the way `notary key import` takes it (SEC1 "EC PRIVATE KEY", as
/// openssl writes it).
fn pem(key: &PrivateKey) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.to_go_private_bytes());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// A repository about to expire, as uploaded: what the owner needs to repair it.
struct Doomed {
    gun: String,
    root_key: PrivateKey,
    targets_key: PrivateKey,
    /// The owner's snapshot key, when the owner signs the snapshot.
    snapshot_key: Option<PrivateKey>,
    /// When its short-lived parts expire.
    expires: chrono::DateTime<Utc>,
}

/// What runs out after [`LIFETIME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doom {
    /// Targets only.
    Targets,
    /// Root metadata and targets (the root certificate stays valid).
    Root,
    /// The root certificate, root metadata and targets.
    RootCertificate,
}

/// Signs and uploads `gun` with a server-managed snapshot and timestamp (the server's keys),
/// where `doom` runs out after [`LIFETIME`]. `targets` are (name, length, sha256) entries.
/// With `owner_snapshot` the owner signs the snapshot (`notary init`'s default), which then
/// expires with targets. A second update follows the first (targets version 2), as any
/// repository in use has had: the server then holds the root as validated.
fn upload_doomed(
    client: &TrustClient,
    rt: &tokio::runtime::Runtime,
    gun: &str,
    doom: Doom,
    owner_snapshot: bool,
    targets: &[(&str, i64, Vec<u8>)],
) -> Doomed {
    let now = Utc::now();
    let expires = now + LIFETIME;
    let mut repo = TestRepo::new_at(gun, now);
    if doom != Doom::Targets {
        repo.root.common.expires = expires;
    }
    if doom == Doom::RootCertificate {
        let key = PrivateKey::generate(&KeyType::Ecdsa).unwrap();
        let cert = self_signed_cert(
            &key,
            &CertOptions {
                not_after: expires,
                ..CertOptions::leaf(gun, now)
            },
        );
        let public = x509_key(&[cert]);
        repo.set_role_key("root", public.clone());
        repo.root_signers = vec![(public, key)];
    }
    let server_key =
        |role: &str| -> PublicKey { rt.block_on(client.server_key(gun, role)).unwrap() };
    if owner_snapshot {
        repo.snapshot_common.expires = expires;
    } else {
        repo.set_role_key("snapshot", server_key("snapshot"));
    }
    repo.set_role_key("timestamp", server_key("timestamp"));
    repo.root.common.version = 1;
    let t = repo.targets.get_mut("targets").unwrap();
    t.common.expires = expires;
    for (name, length, sha256) in targets {
        t.targets.insert(
            (*name).to_owned(),
            FileMeta {
                length: *length,
                hashes: [("sha256".to_owned(), sha256.clone())].into(),
                custom: None,
            },
        );
    }
    let root = repo.root_file();
    let upload = |repo: &TestRepo, with_root: bool| {
        let targets = repo.targets_file("targets");
        let mut parts = vec![("targets".to_owned(), targets.clone())];
        if with_root {
            parts.push(("root".to_owned(), root.clone()));
        }
        if owner_snapshot {
            let files = [("targets".to_owned(), targets)].into();
            parts.push(("snapshot".to_owned(), repo.snapshot_file(&root, &files)));
        }
        let reply = rt.block_on(client.post_update(gun, &parts)).unwrap();
        assert_eq!(
            reply.status,
            200,
            "upload of {gun}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    };
    upload(&repo, true);
    repo.bump_targets("targets");
    repo.snapshot_common.version += 1;
    upload(&repo, false);
    Doomed {
        gun: gun.to_owned(),
        root_key: repo.root_signers[0].1.clone(),
        targets_key: repo.targets_key.clone(),
        snapshot_key: owner_snapshot.then(|| repo.snapshot_key.clone()),
        expires,
    }
}

/// The owner restores the repository's keys into a trust directory.
fn import_keys(owner: &NotaryCli, doomed: &Doomed) {
    let dir = owner.trust_dir.path();
    let root = dir.join("restore-root.pem");
    let targets = dir.join("restore-targets.pem");
    std::fs::write(&root, pem(&doomed.root_key)).unwrap();
    std::fs::write(&targets, pem(&doomed.targets_key)).unwrap();
    owner.ok(&["key", "import", root.to_str().unwrap(), "-r", "root"]);
    owner.ok(&[
        "key",
        "import",
        targets.to_str().unwrap(),
        "-r",
        "targets",
        "-g",
        &doomed.gun,
    ]);
    if let Some(key) = &doomed.snapshot_key {
        let snapshot = dir.join("restore-snapshot.pem");
        std::fs::write(&snapshot, pem(key)).unwrap();
        owner.ok(&[
            "key",
            "import",
            snapshot.to_str().unwrap(),
            "-r",
            "snapshot",
            "-g",
            &doomed.gun,
        ]);
    }
}

/// Passphrases `NotaryCli` gives the stock CLI (the rescue reads the same key files).
const PASSPHRASES: [(&str, &str); 3] = [
    ("NOTARY_ROOT_PASSPHRASE", "e2e-root-passphrase"),
    ("NOTARY_TARGETS_PASSPHRASE", "e2e-targets-passphrase"),
    ("NOTARY_SNAPSHOT_PASSPHRASE", "e2e-snapshot-passphrase"),
];

/// Runbook step 1: `notary-migrate rescue` with the owner's trust directory; returns its JSON.
fn rescue(url: &str, ca: &Path, owner: &NotaryCli, gun: &str) -> Value {
    let run = run_migrate(
        &[
            "rescue",
            "-s",
            url,
            "--tlscacert",
            ca.to_str().unwrap(),
            "-d",
            owner.trust_dir.path().to_str().unwrap(),
            gun,
        ],
        &PASSPHRASES,
    );
    assert_eq!(run.code, 0, "rescue {gun}: {}", run.text());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.text()))
}

/// What stock clients meet without the rescue: the publish stops at the expired role.
fn stock_repair_is_refused(owner: &NotaryCli, gun: &str) {
    owner.ok(&["witness", gun, "targets"]);
    let (ok, out) = owner.run(&["publish", gun]);
    assert!(
        !ok,
        "the stock client cannot publish over expired metadata:\n{out}"
    );
    let out_lc = out.to_lowercase();
    assert!(
        out_lc.contains("expired") || out_lc.contains("valid leaf certificates"),
        "{out}"
    );
    // Drop the staged change: the rescue does the re-signing.
    owner.ok(&["reset", gun, "--all"]);
}

fn wait_past(t: chrono::DateTime<Utc>) {
    let left = (t - Utc::now()).num_milliseconds() + 1500;
    if left > 0 {
        std::thread::sleep(Duration::from_millis(left as u64));
    }
}

/// GET of a public URL: (status, body).
fn get(url: &str, ca: &Path) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// GET on the admin listener with the test PKI's client certificate.
fn admin_get(certs: &Path, port: u16, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--fail-with-body", "--cacert"])
        .arg(certs.join("root-ca.crt"))
        .arg("--cert")
        .arg(certs.join("notary-server-client.crt"))
        .arg("--key")
        .arg(certs.join("notary-server-client.key"))
        .arg(format!(
            "https://127.0.0.1:{port}/_notary_server/admin/{path}"
        ))
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "admin {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("admin {path}: {e}: {body}"))
}

/// The two runbook cases with the stock CLI against the server at `url`. With `admin`
/// (certs dir, port), also checks what the admin API and metrics say about them.
fn notary_runbook(url: &str, ca: &Path, admin: Option<(&Path, u16)>) {
    let client = TrustClient::new(url, &std::fs::read(ca).unwrap()).unwrap();
    let rt = runtime();
    let suffix = random_suffix();
    let targets_gun = format!("e2e.example.com/expiry/targets-{suffix}");
    let root_gun = format!("e2e.example.com/expiry/root-{suffix}");
    let entry = ("app", 5, vec![7u8; 32]);
    let a = upload_doomed(
        &client,
        &rt,
        &targets_gun,
        Doom::Targets,
        false,
        std::slice::from_ref(&entry),
    );
    let b = upload_doomed(
        &client,
        &rt,
        &root_gun,
        Doom::RootCertificate,
        false,
        std::slice::from_ref(&entry),
    );
    let meta_gun = format!("e2e.example.com/expiry/rootmeta-{suffix}");
    let c = upload_doomed(
        &client,
        &rt,
        &meta_gun,
        Doom::Root,
        false,
        std::slice::from_ref(&entry),
    );
    // `notary init`'s default: the owner signs the snapshot, which expires with targets.
    let snap_gun = format!("e2e.example.com/expiry/ownersnap-{suffix}");
    let d = upload_doomed(&client, &rt, &snap_gun, Doom::Targets, true, &[entry]);

    // Before expiry: a reader with a cache for each (it keeps its root and updates from it).
    let cached = NotaryCli::new(url, ca);
    for gun in [&targets_gun, &root_gun, &meta_gun, &snap_gun] {
        let out = cached.ok(&["list", gun]);
        assert!(out.contains("app"), "{out}");
    }
    wait_past(a.expires.max(b.expires).max(c.expires).max(d.expires));

    // Expired: every reader fails, as an operator's users would report.
    let fresh = NotaryCli::new(url, ca);
    for (reader, gun) in [
        (&fresh, &targets_gun),
        (&cached, &targets_gun),
        (&fresh, &root_gun),
        (&cached, &root_gun),
        (&cached, &meta_gun),
        (&fresh, &snap_gun),
    ] {
        let (ok, out) = reader.run(&["list", gun]);
        assert!(!ok, "list {gun} should fail once expired:\n{out}");
        // Expired metadata, or (root) no valid leaf certificate left.
        let out_lc = out.to_lowercase();
        assert!(
            out_lc.contains("expired") || out_lc.contains("valid leaf certificates"),
            "{out}"
        );
    }
    // The server keeps serving (Go answers 500 for a GUN whose root expired, notary #598).
    for gun in [&targets_gun, &root_gun, &snap_gun] {
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let (status, body) = get(&client.tuf_url(gun, &format!("{role}.json")), ca);
            assert_eq!(status, 200, "{gun} {role}.json: {body}");
        }
    }

    if let Some((certs, port)) = admin {
        let report = admin_get(
            certs,
            port,
            "expiring?within=1&prefix=e2e.example.com/expiry/",
        );
        let entries = report["entries"].as_array().unwrap();
        let find = |gun: &str, role: &str, kind: &str| {
            entries
                .iter()
                .find(|e| e["gun"] == gun && e["role"] == role && e["kind"] == kind)
                .unwrap_or_else(|| panic!("no {gun} {role} {kind} in {report}"))
                .clone()
        };
        let t = find(&targets_gun, "targets", "metadata");
        assert_eq!(t["who_can_fix"], "owner", "{t}");
        assert!(t["days_left"].as_i64().unwrap() <= 0, "{t}");
        assert!(
            t["command"]
                .as_str()
                .unwrap()
                .contains(&format!("notary-migrate rescue -s https://<this-server> -d ~/.notary --within-days 1 {targets_gun}")),
            "{t}"
        );
        let r = find(&root_gun, "root", "certificate");
        assert!(
            r["command"]
                .as_str()
                .unwrap()
                .contains(&format!("--within-days 1 {root_gun}")),
            "{r}"
        );
        // The server's own roles are not listed as expiring: it re-signed them.
        assert!(
            !entries
                .iter()
                .any(|e| e["gun"] == targets_gun.as_str() && e["role"] == "timestamp"),
            "{report}"
        );
    }

    // Runbook, expired targets: the rescue re-signs targets, nothing else.
    let owner_a = NotaryCli::new(url, ca);
    import_keys(&owner_a, &a);
    stock_repair_is_refused(&owner_a, &targets_gun);
    let done = rescue(url, ca, &owner_a, &targets_gun);
    assert_eq!(done["targets_version"], 3, "{done}");
    assert!(done.get("root_version").is_none(), "{done}");

    // Runbook, expired root certificate and root: the rescue re-certifies the same root key
    // and re-signs targets.
    let owner_b = NotaryCli::new(url, ca);
    import_keys(&owner_b, &b);
    stock_repair_is_refused(&owner_b, &root_gun);
    let done = rescue(url, ca, &owner_b, &root_gun);
    assert_eq!(
        (
            done["root_version"].as_i64(),
            done["targets_version"].as_i64()
        ),
        (Some(2), Some(3)),
        "{done}"
    );
    // Nothing left to do: a second run changes nothing.
    let again = rescue(url, ca, &owner_b, &root_gun);
    assert!(
        again.get("root_version").is_none() && again.get("targets_version").is_none(),
        "{again}"
    );

    // Runbook, expired root (its certificate still valid): root re-signed, new certificate.
    let owner_c = NotaryCli::new(url, ca);
    import_keys(&owner_c, &c);
    let done = rescue(url, ca, &owner_c, &meta_gun);
    assert_eq!(done["root_version"], 2, "{done}");

    // Runbook, targets and the owner's snapshot expired: both re-signed.
    let owner_d = NotaryCli::new(url, ca);
    import_keys(&owner_d, &d);
    let done = rescue(url, ca, &owner_d, &snap_gun);
    assert_eq!(
        (
            done["targets_version"].as_i64(),
            done["snapshot_version"].as_i64()
        ),
        (Some(3), Some(3)),
        "{done}"
    );

    // Runbook step 2: the stock CLI works for the owner again.
    let file = owner_a.trust_dir.path().join("next.bin");
    std::fs::write(&file, b"next release").unwrap();
    for (owner, gun) in [
        (&owner_a, &targets_gun),
        (&owner_b, &root_gun),
        (&owner_d, &snap_gun),
    ] {
        owner.ok(&["add", "-p", gun, "next", file.to_str().unwrap()]);
    }

    // Fresh readers are back, and see the owner's new target; so is the reader whose
    // cached root is still valid.
    let fresh = NotaryCli::new(url, ca);
    for (reader, gun) in [
        (&fresh, &targets_gun),
        (&fresh, &root_gun),
        (&fresh, &snap_gun),
        (&cached, &targets_gun),
        (&cached, &snap_gun),
    ] {
        let out = reader.ok(&["list", gun]);
        assert!(out.contains("app") && out.contains("next"), "{out}");
    }
    // A reader whose cached root expired (certificate still valid) updates from it to the
    // repaired root: no cache to remove.
    let out = cached.ok(&["list", &meta_gun]);
    assert!(out.contains("app"), "{out}");
    // A cached root whose certificate expired is refused by the Go client for good (it
    // checks the cached root's certificates against the clock, `trustpinning.ValidateRoot`):
    // that reader removes the GUN's cache (runbook step 3) and trusts the repaired root on
    // first use, as a new reader does.
    let (ok, out) = cached.run(&["list", &root_gun]);
    assert!(!ok && out.contains("valid leaf certificates"), "{out}");
    std::fs::remove_dir_all(cached.trust_dir.path().join("tuf").join(&root_gun)).unwrap();
    let out = cached.ok(&["list", &root_gun]);
    assert!(out.contains("next"), "{out}");
    if let Some((certs, port)) = admin {
        let report = admin_get(
            certs,
            port,
            "expiring?within=1&prefix=e2e.example.com/expiry/",
        );
        assert_eq!(report["entries"], serde_json::json!([]), "{report}");
    }
}

#[test]
fn notary_runbook_on_mariadb() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let admin_port = 24571;
    let stack = PeerStack::start(&StackSpec {
        server_bin: our_bin("notary-server"),
        signer_bin: our_bin("notary-signer"),
        server_port: 24561,
        signer_port: 28061,
        db_prefix: "e2e_exp_runbook".into(),
        reset_db: true,
        env: vec![
            ("ADMIN_PORT".into(), admin_port.to_string()),
            (
                "SERVER_EXTRA_JSON".into(),
                r#""expiry": {"resign_interval_seconds": 1, "metrics_interval_seconds": 1}"#.into(),
            ),
        ],
    });
    let certs = stack.workdir.path().join("certs");
    notary_runbook(&stack.url, &stack.ca, Some((&certs, admin_port)));

    // The metrics name the state in fixed label sets: nothing expired now, and the
    // repaired roots' certificates are ten years out.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) = get(&format!("{}/metrics", stack.url), &stack.ca);
        assert_eq!(status, 200);
        let ready = text.contains(
            "notary_server_expiry_guns{kind=\"metadata\",role=\"targets\",window=\"expired\"} 0",
        ) && text.contains(
            "notary_server_expiry_soonest_timestamp_seconds{kind=\"certificate\",role=\"root\"}",
        );
        if ready {
            assert!(!text.contains("e2e.example.com"), "no per-GUN labels");
            break;
        }
        assert!(Instant::now() < deadline, "metrics not refreshed:\n{text}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn notary_runbook_on_sqlite() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let stack = SqliteStack::start(24562, 28062);
    notary_runbook(&stack.url, &stack.ca, None);
}

/// Digest and size of the manifest `docker push` reported.
fn pushed_digest(out: &str) -> (Vec<u8>, i64) {
    let line = out
        .lines()
        .find(|l| l.contains("digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest in:\n{out}"));
    let hex_digest = line
        .split("sha256:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let size = line.split("size: ").nth(1).unwrap().trim().parse().unwrap();
    let bytes = (0..hex_digest.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_digest[i..i + 2], 16).unwrap())
        .collect();
    (bytes, size)
}

#[test]
fn docker_user_with_an_expired_cached_root_pulls_again() {
    let server = our_bin("notary-server");
    let signer = our_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let port = 24563;
    let stack = PeerStack::start(&StackSpec {
        server_bin: server,
        signer_bin: signer,
        server_port: port,
        signer_port: 28063,
        db_prefix: "e2e_exp_docker".into(),
        reset_db: true,
        env: vec![],
    });
    let docker = DockerEnv::start(25561);
    let config = tempfile::tempdir().unwrap();
    let cli = DockerCli {
        env: &docker,
        config: config.path().to_path_buf(),
    };
    cli.trust_notary_ca(port, &stack.ca);
    let notary_url = format!("https://localhost:{port}");
    let repo = format!("{}/expiry/app-{}", docker.registry(), random_suffix());
    let image = cli.image("expiry-app");
    cli.ok(&notary_url, &["tag", &image, &format!("{repo}:1")]);
    let pushed = cli.ok(
        &notary_url,
        &["push", "--disable-content-trust", &format!("{repo}:1")],
    );
    let (digest, size) = pushed_digest(&pushed);

    // The owner signed `1` with a root that expires soon.
    let client = TrustClient::new(&notary_url, &std::fs::read(&stack.ca).unwrap()).unwrap();
    let rt = runtime();
    let doomed = upload_doomed(
        &client,
        &rt,
        &repo,
        Doom::Root,
        false,
        &[("1", size, digest)],
    );

    // The user pulls under content trust while it is valid: the root is cached.
    cli.ok(&notary_url, &["pull", &format!("{repo}:1")]);
    let cached_root = config
        .path()
        .join(format!("trust/tuf/{repo}/metadata/root.json"));
    assert!(cached_root.exists(), "{}", cached_root.display());
    wait_past(doomed.expires);

    let (ok, _, out) = cli.run(&notary_url, &["pull", &format!("{repo}:1")], "");
    assert!(!ok, "pull should fail once the root expired:\n{out}");

    // Runbook: the owner's rescue (root re-certified, targets re-signed).
    let owner = NotaryCli::new(&notary_url, &stack.ca);
    import_keys(&owner, &doomed);
    let done = rescue(&notary_url, &stack.ca, &owner, &repo);
    assert_eq!(done["root_version"], 2, "{done}");

    // The same user, with the expired root still cached, pulls again.
    let out = cli.ok(&notary_url, &["pull", &format!("{repo}:1")]);
    assert!(
        out.contains("Pull (1 of 1)") || out.contains(&repo),
        "{out}"
    );
}

#[test]
fn background_tasks_run_on_mariadb() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let stack = PeerStack::start(&StackSpec {
        server_bin: our_bin("notary-server"),
        signer_bin: our_bin("notary-signer"),
        server_port: 24564,
        signer_port: 28064,
        db_prefix: "e2e_exp_tasks".into(),
        reset_db: true,
        env: vec![(
            "SERVER_EXTRA_JSON".into(),
            r#""expiry": {"resign_interval_seconds": 1, "metrics_interval_seconds": 1}"#.into(),
        )],
    });
    let gun = format!("e2e.example.com/expiry/tasks-{}", random_suffix());
    let owner = NotaryCli::new(&stack.url, &stack.ca);
    owner.ok(&["init", &gun]);
    owner.ok(&["publish", &gun]);
    // The re-signing task takes its lease in the database (a pass a second), and the
    // metrics task refreshes the gauges, which count this GUN.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let holder = Command::new("mariadb")
            .args(["-uroot", "-N", "-e"])
            .arg("SELECT holder FROM e2e_exp_tasks_server.server_leases WHERE name = 'expiry-resign'")
            .output()
            .expect("mariadb");
        let holder = String::from_utf8_lossy(&holder.stdout).trim().to_owned();
        let (status, metrics) = get(&format!("{}/metrics", stack.url), &stack.ca);
        assert_eq!(status, 200);
        let counted = metrics.contains(
            "notary_server_expiry_guns{kind=\"metadata\",role=\"timestamp\",window=\"30d\"} 1",
        );
        if !holder.is_empty() && counted {
            assert!(
                holder.contains('/'),
                "holder names host/pid/random: {holder}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lease holder {holder:?}, metrics:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
