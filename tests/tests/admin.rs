//! The admin side (issue 15) end to end, on MariaDB with the stock `notary` CLI:
//! - the admin listener refuses a client without a certificate, the public listener serves
//!   no admin route, and the audit trail names the client certificate's subject;
//! - deleting a GUN through the admin API removes its metadata (with Go's changefeed
//!   `deletion` record) and its server-held keys in the signer, ours and Go's;
//! - `notary-server admin prune --keep-versions 2` leaves every GUN verifiable by a fresh
//!   `notary list`, lets a client with an old cache update, and the Go server then serves
//!   the pruned database.
//!
//! - on SQLite (no MariaDB), `notary-server admin delete-gun` does the same from the command
//!   line, and the audit trail names the operator.
//!
//! Ports 24531-24536 / 28031-28036, admin 24541-24546; databases `e2e_adm_*`.

use std::path::{Path, PathBuf};
use std::process::Command;

use notary_e2e::{
    go_bin, our_bin, random_suffix, require, NotaryCli, PeerStack, SqliteStack, StackSpec,
};
use serde_json::Value;

fn stack(signer: PathBuf, ports: (u16, u16), admin: u16, prefix: &str) -> PeerStack {
    PeerStack::start(&StackSpec {
        server_bin: our_bin("notary-server"),
        signer_bin: signer,
        server_port: ports.0,
        signer_port: ports.1,
        db_prefix: prefix.into(),
        reset_db: true,
        env: vec![("ADMIN_PORT".into(), admin.to_string())],
    })
}

/// curl against the admin listener (client certificate of the test PKI unless `anonymous`);
/// returns (HTTP status, body); status 0 when no HTTP answer came at all.
fn admin(stack: &PeerStack, port: u16, method: &str, path: &str, anonymous: bool) -> (u16, String) {
    let certs = stack.workdir.path().join("certs");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "60",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ])
    .arg("--cacert")
    .arg(&stack.ca);
    if !anonymous {
        cmd.arg("--cert")
            .arg(certs.join("notary-server-client.crt"))
            .arg("--key")
            .arg(certs.join("notary-server-client.key"));
    }
    let out = cmd
        .arg(format!(
            "https://127.0.0.1:{port}/_notary_server/admin/{path}"
        ))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

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

/// Rows of `sql` on MariaDB as OS root.
fn mariadb(db: &str, sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(["-uroot", "-N", "-B", db, "-e", sql])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn payload(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("payload {name} {}\n", random_suffix())).unwrap();
    path
}

fn delete_removes_metadata_and_signer_keys(signer: PathBuf, n: u16, prefix: &str) {
    let ports = (24530 + n, 28030 + n);
    let admin_port = 24540 + n;
    let s = stack(signer, ports, admin_port, prefix);

    // The admin listener wants a client certificate; the public one has no admin routes.
    let (code, _) = admin(&s, admin_port, "GET", "stats", true);
    assert_eq!(code, 0, "a client without a certificate got an HTTP answer");
    let (code, _) = get(&format!("{}/_notary_server/admin/stats", s.url), &s.ca);
    assert_eq!(code, 404, "the public listener serves an admin route");
    let (code, body) = admin(&s, admin_port, "GET", "stats", false);
    assert_eq!(code, 200, "{body}");

    let gun = format!("example.com/admin/{}", random_suffix());
    let keep = format!("{gun}-kept");
    let owner = NotaryCli::new(&s.url, &s.ca);
    let dir = owner.trust_dir.path().to_path_buf();
    for g in [&gun, &keep] {
        owner.ok(&["init", g]);
        owner.ok(&["key", "rotate", g, "snapshot", "-r"]);
        let f = payload(&dir, "v1");
        owner.ok(&["add", "-p", g, "v1", f.to_str().unwrap()]);
    }

    // Dry run: what would go, nothing changed.
    let (code, body) = admin(
        &s,
        admin_port,
        "DELETE",
        &format!("gun/{gun}?dry_run=true"),
        false,
    );
    assert_eq!(code, 200, "{body}");
    let dry = json(&body);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["rows"].as_i64().unwrap() >= 4, "{dry}");
    let keys: Vec<(String, String)> = dry["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let roles: Vec<&str> = keys.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        roles.contains(&"timestamp") && roles.contains(&"snapshot"),
        "{dry}"
    );
    let signer_db = format!("{prefix}_signer");
    let live = |ids: &[(String, String)]| {
        let list: Vec<String> = ids.iter().map(|(k, _)| format!("'{k}'")).collect();
        mariadb(
            &signer_db,
            &format!(
                "SELECT COUNT(*) FROM private_keys WHERE deleted_at IS NULL AND key_id IN ({})",
                list.join(",")
            ),
        )
    };
    assert_eq!(
        live(&keys),
        keys.len().to_string(),
        "keys before the delete"
    );
    let reader = NotaryCli::new(&s.url, &s.ca);
    assert!(reader.ok(&["list", &gun]).contains("v1"));

    // The delete: metadata, changefeed record, signer keys.
    let (code, body) = admin(&s, admin_port, "DELETE", &format!("gun/{gun}"), false);
    assert_eq!(code, 200, "{body}\n{}", s.logs());
    let report = json(&body);
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["deleted"] == true),
        "{report}\n{}",
        s.logs()
    );
    assert_eq!(live(&keys), "0", "the signer still holds the GUN's keys");
    let (code, _) = get(
        &format!("{}/v2/{gun}/_trust/tuf/timestamp.json", s.url),
        &s.ca,
    );
    assert_eq!(code, 404);
    let (_, feed) = get(
        &format!(
            "{}/v2/{gun}/_trust/changefeed?change_id=-1&records=-1",
            s.url
        ),
        &s.ca,
    );
    let feed = json(&feed);
    let last = feed["records"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["Category"], "deletion", "{feed}");
    // The other GUN is untouched.
    assert!(NotaryCli::new(&s.url, &s.ca)
        .ok(&["list", &keep])
        .contains("v1"));

    // The audit trail: anonymous publishes, then the admin's delete and key deletions.
    let (code, body) = admin(
        &s,
        admin_port,
        "GET",
        &format!("audit?gun={gun}&limit=1000"),
        false,
    );
    assert_eq!(code, 200, "{body}");
    let entries = json(&body)["entries"].as_array().unwrap().clone();
    let action_of = |e: &Value| e["action"].as_str().unwrap().to_owned();
    assert!(entries
        .iter()
        .any(|e| action_of(e) == "update" && e["actor"] == "anonymous" && e["role"] == "targets"));
    assert!(entries
        .iter()
        .any(|e| action_of(e) == "key-rotate" && e["role"] == "snapshot"));
    let deleted = entries
        .iter()
        .find(|e| action_of(e) == "admin-delete")
        .unwrap_or_else(|| panic!("no admin-delete entry: {entries:?}"));
    assert_eq!(deleted["actor_kind"], "client-certificate");
    assert!(
        deleted["actor"]
            .as_str()
            .unwrap()
            .contains("CN=notary-server"),
        "{deleted}"
    );
    assert_eq!(deleted["peer"], "127.0.0.1");
    assert_eq!(
        entries
            .iter()
            .filter(|e| action_of(e) == "key-delete")
            .count(),
        keys.len()
    );

    // The name is free again: a new repository with new keys.
    let again = NotaryCli::new(&s.url, &s.ca);
    again.ok(&["init", &gun]);
    let f = payload(&dir, "v2");
    again.ok(&["add", "-p", &gun, "again", f.to_str().unwrap()]);
    assert!(NotaryCli::new(&s.url, &s.ca)
        .ok(&["list", &gun])
        .contains("again"));
}

#[test]
fn admin_delete_removes_metadata_and_keys_in_our_signer() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    delete_removes_metadata_and_signer_keys(our_bin("notary-signer"), 1, "e2e_adm_rs");
}

#[test]
fn admin_delete_removes_metadata_and_keys_in_the_go_signer() {
    if require(&[&our_bin("notary-server")]) {
        return;
    }
    delete_removes_metadata_and_signer_keys(go_bin("notary-signer"), 2, "e2e_adm_gosig");
}

/// `notary-server admin ...` with `workdir/server-config.json`.
fn admin_cli_in(workdir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(our_bin("notary-server"))
        .arg("-config")
        .arg(workdir.join("server-config.json"))
        .arg("admin")
        .args(args)
        .output()
        .expect("notary-server admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Two GUNs (client- and server-managed snapshot) published to by one owner.
struct Pruned {
    owner: NotaryCli,
    guns: [String; 2],
    files: Vec<(String, String, PathBuf)>,
}

impl Pruned {
    fn publish(&mut self, n: usize) {
        let dir = self.owner.trust_dir.path().to_path_buf();
        for (i, gun) in self.guns.iter().enumerate() {
            let f = payload(&dir, &format!("g{i}-t{n}"));
            let name = format!("t{n}");
            self.owner
                .ok(&["add", "-p", gun, &name, f.to_str().unwrap()]);
            self.files.push((gun.clone(), name, f));
        }
    }

    /// A fresh client lists targets t1..=up_to of every GUN and verifies every file.
    fn check(&self, url: &str, ca: &Path, who: &str, up_to: usize) {
        let fresh = NotaryCli::new(url, ca);
        for gun in &self.guns {
            let listing = fresh.ok(&["list", gun]);
            for n in 1..=up_to {
                assert!(
                    listing.contains(&format!("t{n}")),
                    "{who}: {gun} lacks t{n}:\n{listing}"
                );
            }
        }
        for (gun, name, file) in &self.files {
            let (ok, out) = fresh.run(&["verify", gun, name, "-i", file.to_str().unwrap(), "-q"]);
            assert!(ok, "{who}: verify {gun} {name}: {out}");
        }
    }
}

/// Publishes seven times (a reader caches the second), prunes with `notary-server admin
/// prune --keep-versions 2` (dry run first), and checks fresh and stale clients, publishing
/// on, and the audit row.
fn prune_scenario(url: &str, ca: &Path, workdir: &Path) -> Pruned {
    let base = format!("example.com/prune/{}", random_suffix());
    let mut p = Pruned {
        owner: NotaryCli::new(url, ca),
        guns: [format!("{base}/client"), format!("{base}/server")],
        files: Vec::new(),
    };
    for gun in &p.guns {
        p.owner.ok(&["init", gun]);
    }
    p.owner.ok(&["key", "rotate", &p.guns[1], "snapshot", "-r"]);
    p.publish(1);
    p.publish(2);
    let stale = NotaryCli::new(url, ca);
    for gun in &p.guns {
        assert!(stale.ok(&["list", gun]).contains("t2"));
    }
    for n in 3..=7 {
        p.publish(n);
    }

    let (ok, before, err) = admin_cli_in(workdir, &["stats"]);
    assert!(ok, "{err}");
    let before = json(&before);
    let (ok, dry, err) = admin_cli_in(workdir, &["prune", "--keep-versions", "2", "--dry-run"]);
    assert!(ok, "{err}");
    let dry = json(&dry);
    assert!(dry["rows"].as_u64().unwrap() > 0, "{dry}");
    let (_, unchanged, _) = admin_cli_in(workdir, &["stats"]);
    assert_eq!(json(&unchanged), before, "the dry run changed something");
    let (ok, pruned, err) = admin_cli_in(workdir, &["prune", "--keep-versions", "2"]);
    assert!(ok, "{err}");
    let pruned = json(&pruned);
    assert_eq!(pruned["rows"], dry["rows"], "{pruned}");
    assert!(pruned["per_role"].get("root").is_none(), "{pruned}");
    let (_, after, _) = admin_cli_in(workdir, &["stats"]);
    let after = json(&after);
    assert_eq!(
        after["rows"].as_u64().unwrap(),
        before["rows"].as_u64().unwrap() - pruned["rows"].as_u64().unwrap()
    );

    p.check(url, ca, "fresh client after the prune", 7);
    // The old cache updates to the current state.
    for gun in &p.guns {
        let listing = stale.ok(&["list", gun]);
        assert!(listing.contains("t7"), "stale client on {gun}:\n{listing}");
    }
    // Publishing goes on.
    p.publish(8);

    // The audit trail has the CLI's prune, by the OS user.
    let (ok, lines, err) = admin_cli_in(workdir, &["audit-export", "--gun", &p.guns[0]]);
    assert!(ok, "{err}");
    let prune: Vec<Value> = lines
        .lines()
        .map(json)
        .filter(|e| e["action"] == "prune")
        .collect();
    assert_eq!(prune.len(), 1, "{lines}");
    assert_eq!(prune[0]["actor_kind"], "operator");
    p
}

#[test]
fn prune_keeps_every_gun_verifiable_and_the_go_server_serves_the_result() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let s = stack(
        our_bin("notary-signer"),
        (24533, 28033),
        24543,
        "e2e_adm_prune",
    );
    let mut p = prune_scenario(&s.url, &s.ca, s.workdir.path());

    // Drop-in after a prune: the Go pair serves the pruned databases and accepts a publish.
    s.stop();
    s.start_in_place(&StackSpec {
        server_bin: go_bin("notary-server"),
        signer_bin: go_bin("notary-signer"),
        server_port: 24533,
        signer_port: 28033,
        db_prefix: "e2e_adm_prune".into(),
        reset_db: false,
        env: vec![],
    });
    p.check(&s.url, &s.ca, "the Go server on the pruned database", 8);
    p.publish(9);
    p.check(&s.url, &s.ca, "the Go server after its publish", 9);
}

#[test]
fn prune_keeps_every_gun_verifiable_on_sqlite() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let s = SqliteStack::start(24534, 28034);
    let p = prune_scenario(&s.url, &s.ca, s.workdir.path());
    p.check(&s.url, &s.ca, "after publishing on", 8);
}

#[test]
fn admin_cli_deletes_a_gun_and_its_keys_on_sqlite() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let s = SqliteStack::start(24536, 28036);
    let gun = format!("example.com/sqlite-admin/{}", random_suffix());
    let owner = NotaryCli::new(&s.url, &s.ca);
    owner.ok(&["init", &gun]);
    owner.ok(&["key", "rotate", &gun, "snapshot", "-r"]);
    let f = payload(owner.trust_dir.path(), "v1");
    owner.ok(&["add", "-p", &gun, "v1", f.to_str().unwrap()]);

    let dir = s.workdir.path();
    let (ok, dry, err) = admin_cli_in(dir, &["delete-gun", &gun, "--dry-run"]);
    assert!(ok, "{err}");
    let dry = json(&dry);
    let keys: Vec<String> = dry["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2, "{dry}");
    // The signer's SQLite file, read with Python's sqlite3 module.
    let live = || {
        let list: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import sqlite3; c = sqlite3.connect({:?}); print(c.execute(\"SELECT COUNT(*) FROM private_keys WHERE deleted_at IS NULL AND key_id IN ({})\").fetchone()[0])",
                dir.join("signer.db").display().to_string(),
                list.join(",")
            ))
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(live(), "2");
    let (ok, report, err) = admin_cli_in(dir, &["delete-gun", &gun]);
    assert!(ok, "{err}\n{report}");
    let report = json(&report);
    assert!(report["rows"].as_i64().unwrap() >= 4, "{report}");
    assert_eq!(live(), "0", "the signer still holds the keys");
    let (code, _) = get(
        &format!("{}/v2/{gun}/_trust/tuf/timestamp.json", s.url),
        &s.ca,
    );
    assert_eq!(code, 404);
    let (ok, lines, err) = admin_cli_in(dir, &["audit-export", "--gun", &gun]);
    assert!(ok, "{err}");
    let entries: Vec<Value> = lines.lines().map(json).collect();
    let delete = entries
        .iter()
        .find(|e| e["action"] == "admin-delete")
        .unwrap_or_else(|| panic!("{lines}"));
    assert_eq!(delete["actor_kind"], "operator");
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "key-delete")
            .count(),
        2
    );
    assert!(entries
        .iter()
        .any(|e| e["action"] == "update" && e["actor"] == "anonymous"));
}

/// The expiry inventory: a Go-filled database is backfilled, then every publish keeps it;
/// `expiring` names who can repair what, and `gun/<gun>` shows the whole GUN.
#[test]
fn expiring_lists_a_go_filled_repository_after_backfill() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let spec = |go: bool, reset_db: bool| StackSpec {
        server_bin: if go {
            go_bin("notary-server")
        } else {
            our_bin("notary-server")
        },
        signer_bin: if go {
            go_bin("notary-signer")
        } else {
            our_bin("notary-signer")
        },
        server_port: 24535,
        signer_port: 28035,
        db_prefix: "e2e_adm_expiry".into(),
        reset_db,
        env: vec![("ADMIN_PORT".into(), "24545".into())],
    };
    let s = PeerStack::start(&spec(true, true));
    let gun = format!("example.com/expiry/{}", random_suffix());
    let owner = NotaryCli::new(&s.url, &s.ca);
    let f = payload(owner.trust_dir.path(), "v1");
    owner.ok(&["init", &gun]);
    owner.ok(&["add", "-p", &gun, "v1", f.to_str().unwrap()]);
    s.stop();
    s.start_in_place(&spec(false, false));

    let expiring = |within: u32| {
        let (code, body) = admin(
            &s,
            24545,
            "GET",
            &format!("expiring?within={within}&prefix={gun}"),
            false,
        );
        assert_eq!(code, 200, "{body}");
        json(&body)["entries"].as_array().unwrap().clone()
    };
    assert!(expiring(4000).is_empty(), "Go wrote no inventory");
    let dir = s.workdir.path();
    let (ok, out, err) = admin_cli_in(dir, &["expiry-backfill"]);
    assert!(ok, "{err}");
    assert!(json(&out)["guns"].as_u64().unwrap() >= 1, "{out}");

    // The timestamp (14 days, server's) comes first; the root certificate (10 years) is there.
    let soon = expiring(30);
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert_eq!(
        (&soon[0]["role"], &soon[0]["kind"], &soon[0]["who_can_fix"]),
        (
            &json("\"timestamp\""),
            &json("\"metadata\""),
            &json("\"server\"")
        )
    );
    let all = expiring(4000);
    let root_cert = all
        .iter()
        .find(|e| e["role"] == "root" && e["kind"] == "certificate")
        .unwrap_or_else(|| panic!("no root certificate in {all:?}"));
    assert_eq!(root_cert["subject"], gun.as_str());
    assert_eq!(root_cert["who_can_fix"], "owner");
    assert!(root_cert["command"]
        .as_str()
        .unwrap()
        .starts_with("notary-migrate rescue -s https://<this-server> -d ~/.notary --within-days"));
    assert!(root_cert["days_left"].as_i64().unwrap() > 3000);
    let roles: Vec<&str> = all.iter().map(|e| e["role"].as_str().unwrap()).collect();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        assert!(roles.contains(&role), "{role} missing: {all:?}");
    }

    // A publish through ours keeps the inventory: the new timestamp version is listed.
    let f = payload(owner.trust_dir.path(), "v2");
    owner.ok(&["add", "-p", &gun, "v2", f.to_str().unwrap()]);
    let soon = expiring(30);
    assert_eq!(soon[0]["version"], 2, "{soon:?}");

    let (code, body) = admin(&s, 24545, "GET", &format!("gun/{gun}"), false);
    assert_eq!(code, 200, "{body}");
    let report = json(&body);
    assert_eq!(report["roles"]["targets"]["version"], 3, "{report}");
    assert_eq!(report["roles"]["targets"]["targets"], 2);
    assert_eq!(
        report["roles"]["root"]["roles"]["timestamp"]["threshold"],
        1
    );
    assert_eq!(report["server_keys"][0]["role"], "timestamp");
    assert!(report["last_changes"].as_array().unwrap().len() >= 2);
    let (code, _) = admin(&s, 24545, "GET", "expiring", false);
    assert_eq!(code, 400, "within is required");
}
