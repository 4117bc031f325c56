//! Issue 17: the transparency log end to end, on MariaDB with the stock `notary` CLI and the
//! `notary-log` verifier: every update of the conformance suite is in the log and verifies
//! under the pinned key; a row changed in the database is reported by `monitor`; a truncated
//! or rewritten log fails `verify-consistency`; the log works with the Go signer too.
//! (Two replicas on one database: `notary-server/src/storage/tests/tlog.rs`.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use notary_e2e::faults::shared_sql;
use notary_e2e::{
    go_bin, our_bin, random_suffix, require, run_client_suite, NotaryCli, PeerStack, StackSpec,
    CLI_SUITE_CHECKS, CLI_SUITE_QUIRKS,
};

fn log_stack(signer: PathBuf, server_port: u16, signer_port: u16, db: &str) -> PeerStack {
    PeerStack::start(&StackSpec {
        server_bin: our_bin("notary-server"),
        signer_bin: signer,
        server_port,
        signer_port,
        db_prefix: db.to_string(),
        reset_db: true,
        env: vec![
            ("TRANSPARENCY_LOG".into(), "1".into()),
            // The monitor must see what the database holds, not a cached copy.
            ("NOTARY_SERVER_CACHE".into(), "off".into()),
        ],
    })
}

fn curl(stack: &PeerStack, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-fsS", "--cacert"])
        .arg(&stack.ca)
        .arg(format!("{}{path}", stack.url))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {path}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs notary-log against the stack with the pinned key; (exit code, output).
fn notary_log(stack: &PeerStack, vkey: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(our_bin("notary-log"))
        .args(["--server", &stack.url, "--tlscacert"])
        .arg(&stack.ca)
        .args(["--key", vkey])
        .args(args)
        .output()
        .expect("run notary-log (cargo build --release -p notary-log)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn sql_u64(sql: &str) -> u64 {
    shared_sql(sql).trim().parse().unwrap_or(0)
}

/// Waits until every leaf is integrated and the checkpoint covers the whole tree.
fn wait_for_checkpoint(db: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = sql_u64(&format!(
            "SELECT COUNT(*) FROM `{db}_server`.tlog_leaves WHERE leaf_index IS NULL"
        ));
        let row = shared_sql(&format!(
            "SELECT tree_size, checkpoint_size FROM `{db}_server`.tlog_state"
        ));
        let sizes: Vec<u64> = row
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if pending == 0 && sizes.len() == 2 && sizes[0] == sizes[1] && sizes[0] >= at_least {
            return sizes[0];
        }
        assert!(
            Instant::now() < deadline,
            "log not integrated: {pending} pending, state {row}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn publish_one(stack: &PeerStack, gun: &str) {
    let owner = NotaryCli::new(&stack.url, &stack.ca);
    let file = owner.trust_dir.path().join("payload.txt");
    std::fs::write(&file, b"transparency payload\n").unwrap();
    owner.ok(&["init", gun]);
    owner.ok(&["add", gun, "v1", file.to_str().unwrap()]);
    owner.ok(&["publish", gun]);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_conformance_suite_is_logged_and_the_log_catches_tampering_and_forks() {
    if require(&[
        &our_bin("notary-server"),
        &our_bin("notary-signer"),
        &our_bin("notary-log"),
    ]) {
        return;
    }
    let db = "e2e_tlog";
    let stack = log_stack(our_bin("notary-signer"), 24448, 27948, db);
    let run = run_client_suite(&stack.url, &stack.ca, &[("RUN_QUIRKS", "1")]);
    run.assert_counts((CLI_SUITE_CHECKS + CLI_SUITE_QUIRKS, 0), &stack.logs());
    let size = wait_for_checkpoint(db, 1);

    // Every stored file has its leaf (deleted GUNs keep theirs: leaves outnumber files).
    let rows = |table: &str| -> HashSet<String> {
        shared_sql(&format!(
            "SELECT HEX(gun), HEX(role), version, LOWER(sha256) FROM `{db}_server`.{table}"
        ))
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let files = rows("tuf_files");
    let leaves = rows("tlog_leaves");
    assert!(files.len() > 100, "the suite stored {} files", files.len());
    let unlogged: Vec<&String> = files.difference(&leaves).collect();
    assert!(unlogged.is_empty(), "files without a leaf: {unlogged:?}");
    assert_eq!(
        size,
        sql_u64(&format!("SELECT COUNT(*) FROM `{db}_server`.tlog_leaves"))
    );

    // Inclusion of the current metadata of live GUNs, under the key pinned now.
    let vkey = curl(&stack, "/_notary_server/log/key").trim().to_string();
    let guns = shared_sql(&format!(
        "SELECT DISTINCT gun FROM `{db}_server`.tuf_files WHERE role = 'timestamp' ORDER BY gun LIMIT 5"
    ));
    for gun in guns.lines() {
        let (code, out) = notary_log(&stack, &vkey, &["verify-inclusion", gun]);
        assert_eq!(code, 0, "verify-inclusion {gun}:\n{out}");
        assert!(
            out.contains("ok timestamp") && out.contains("ok root"),
            "{out}"
        );
    }
    // A key the server does not sign with verifies nothing.
    let foreign = notary_tlog::Ed25519NoteSigner::from_seed([7; 32]);
    let other = notary_tlog::NoteKey::new("localhost/notary-log", foreign.public_key())
        .unwrap()
        .vkey();
    let other = other.as_str();
    let gun = guns.lines().next().unwrap();
    let (code, out) = notary_log(&stack, other, &["verify-inclusion", gun]);
    assert_ne!(code, 0, "a foreign key verified:\n{out}");

    // The monitor walks the whole log: nothing tampered (the suite's deleted GUNs are MISSING).
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("monitor.state");
    let (code, out) = notary_log(
        &stack,
        &vkey,
        &["monitor", "--state", state.to_str().unwrap()],
    );
    assert!(code == 0 || code == 2, "monitor:\n{out}");
    assert!(
        !out.contains("TAMPERED") && out.contains("tree root ok"),
        "{out}"
    );
    let old = write(
        dir.path(),
        "old.checkpoint",
        &curl(&stack, "/_notary_server/log/checkpoint"),
    );

    // A row changed behind the log's back.
    let id = sql_u64(&format!(
        "SELECT MAX(id) FROM `{db}_server`.tuf_files WHERE role = 'targets'"
    ));
    shared_sql(&format!(
        "UPDATE `{db}_server`.tuf_files SET data = CONCAT(data, ' ') WHERE id = {id}"
    ));
    let (code, out) = notary_log(&stack, &vkey, &["monitor"]);
    assert_eq!(code, 1, "monitor after tampering:\n{out}");
    assert!(out.contains("TAMPERED"), "{out}");

    // The log only grew: consistent with the saved checkpoint.
    let gun = format!("example.com/e2e/tlog/{}", random_suffix());
    publish_one(&stack, &gun);
    let grown = wait_for_checkpoint(db, size + 1);
    let (code, out) = notary_log(
        &stack,
        &vkey,
        &["verify-consistency", old.to_str().unwrap()],
    );
    assert_eq!(code, 0, "verify-consistency after growth:\n{out}");

    // Truncated: the server publishes a smaller tree.
    let keep = size / 2;
    let hashes_kept = notary_tlog::store::stored_hash_count(keep);
    shared_sql(&format!(
        "DELETE FROM `{db}_server`.tlog_leaves WHERE leaf_index >= {keep}; \
         DELETE FROM `{db}_server`.tlog_hashes WHERE idx >= {hashes_kept}; \
         UPDATE `{db}_server`.tlog_state SET tree_size = {keep}, checkpoint_size = 0"
    ));
    wait_for_checkpoint(db, keep);
    let (code, out) = notary_log(
        &stack,
        &vkey,
        &["verify-consistency", old.to_str().unwrap()],
    );
    assert_eq!(code, 1, "verify-consistency of a truncated log:\n{out}");

    // Rewritten: regrown past the old size with other leaves.
    shared_sql(&format!(
        "INSERT INTO `{db}_server`.tlog_leaves (gun, role, version, sha256, leaf) \
         SELECT 'rewritten', 'targets', seq, REPEAT('0', 64), CONCAT('rewritten ', seq, '\\n') \
         FROM `{db}_server`.seq_1_to_{}",
        grown - keep + 10
    ));
    wait_for_checkpoint(db, grown + 10);
    let (code, out) = notary_log(
        &stack,
        &vkey,
        &["verify-consistency", old.to_str().unwrap()],
    );
    assert_eq!(code, 1, "verify-consistency of a rewritten log:\n{out}");
    assert!(out.contains("FORK"), "{out}");
    let (code, out) = notary_log(
        &stack,
        &vkey,
        &["monitor", "--state", state.to_str().unwrap()],
    );
    assert_eq!(code, 1, "monitor of a rewritten log:\n{out}");
}

#[test]
fn the_log_works_with_the_go_signer() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-log")]) {
        return;
    }
    let db = "e2e_tlog_gosig";
    let stack = log_stack(go_bin("notary-signer"), 24449, 27949, db);
    let gun = format!("example.com/e2e/tlog-go/{}", random_suffix());
    publish_one(&stack, &gun);
    wait_for_checkpoint(db, 4);
    // The Go signer made and holds the log key.
    assert_eq!(
        sql_u64(&format!(
            "SELECT COUNT(*) FROM `{db}_signer`.private_keys \
             WHERE role = 'transparency-log' AND algorithm = 'ed25519'"
        )),
        1
    );
    let vkey = curl(&stack, "/_notary_server/log/key").trim().to_string();
    let (code, out) = notary_log(&stack, &vkey, &["verify-inclusion", &gun]);
    assert_eq!(
        code, 0,
        "verify-inclusion through the Go signer's key:\n{out}"
    );
    let (code, out) = notary_log(&stack, &vkey, &["monitor"]);
    assert_eq!(code, 0, "monitor:\n{out}");
}

#[test]
fn a_go_filled_database_is_backfilled_into_the_log() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-log")]) {
        return;
    }
    let db = "e2e_tlog_backfill";
    // The Go pair fills the database (it ignores the config's transparency_log section).
    let mut spec = StackSpec {
        server_bin: go_bin("notary-server"),
        signer_bin: go_bin("notary-signer"),
        server_port: 24450 + 40,
        signer_port: 27950 + 40,
        db_prefix: db.to_string(),
        reset_db: true,
        env: vec![
            ("TRANSPARENCY_LOG".into(), "1".into()),
            ("NOTARY_SERVER_CACHE".into(), "off".into()),
        ],
    };
    let stack = PeerStack::start(&spec);
    let guns: Vec<String> = (0..2)
        .map(|i| format!("example.com/e2e/backfill{i}/{}", random_suffix()))
        .collect();
    for gun in &guns {
        publish_one(&stack, gun);
    }
    let files = sql_u64(&format!("SELECT COUNT(*) FROM `{db}_server`.tuf_files"));
    assert!(files >= 8, "the Go server stored {files} files");
    stack.stop();

    // Our server appends the history, publishes a checkpoint and exits.
    let out = Command::new(our_bin("notary-server"))
        .arg("-config")
        .arg(stack.workdir.path().join("server-config.json"))
        .arg("-log-backfill")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&format!("appended {files} leaves; tree size {files}")),
        "{text}"
    );
    // Oldest row first: leaf i is tuf_files row i in id order.
    let order = |sql: &str| {
        shared_sql(sql)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        order(&format!(
            "SELECT HEX(gun), role, version FROM `{db}_server`.tuf_files ORDER BY id"
        )),
        order(&format!(
            "SELECT HEX(gun), role, version FROM `{db}_server`.tlog_leaves ORDER BY leaf_index"
        ))
    );
    // Running it again appends nothing.
    let again = Command::new(our_bin("notary-server"))
        .arg("-config")
        .arg(stack.workdir.path().join("server-config.json"))
        .arg("-log-backfill")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("appended 0 leaves"),
        "{again:?}"
    );

    // Our server on the same database: the Go-written metadata verifies against the log.
    spec.server_bin = our_bin("notary-server");
    spec.reset_db = false;
    stack.start_in_place(&spec);
    wait_for_checkpoint(db, files);
    let vkey = curl(&stack, "/_notary_server/log/key").trim().to_string();
    for gun in &guns {
        let (code, out) = notary_log(&stack, &vkey, &["verify-inclusion", gun]);
        assert_eq!(code, 0, "verify-inclusion {gun}:\n{out}");
    }
    let (code, out) = notary_log(&stack, &vkey, &["monitor"]);
    assert_eq!(code, 0, "monitor:\n{out}");
}
