//! Issue 4: our notary-server passes the stock `notary` CLI suite with our signer and with
//! the Go signer, on MariaDB and on SQLite; the quirks group (Go behaviour we fix) passes too.
//! The Go pair is the control: it passes every main check and fails exactly the quirks.

use notary_e2e::{
    go_bin, our_bin, require, run_client_suite, PeerStack, SqliteStack, StackSpec,
    CLI_SUITE_CHECKS, CLI_SUITE_QUIRKS,
};

fn stack(signer_ours: bool, server_port: u16, signer_port: u16, db: &str) -> PeerStack {
    let signer = if signer_ours {
        our_bin("notary-signer")
    } else {
        go_bin("notary-signer")
    };
    stack_of(
        our_bin("notary-server"),
        signer,
        server_port,
        signer_port,
        db,
    )
}

fn stack_of(
    server_bin: std::path::PathBuf,
    signer_bin: std::path::PathBuf,
    server_port: u16,
    signer_port: u16,
    db: &str,
) -> PeerStack {
    PeerStack::start(&StackSpec {
        server_bin,
        signer_bin,
        server_port,
        signer_port,
        db_prefix: db.to_string(),
        reset_db: true,
        env: vec![],
    })
}

#[test]
fn our_server_and_signer_on_mariadb_pass_the_suite_including_quirks() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let s = stack(true, 24441, 27941, "e2e_rs_rs");
    let run = run_client_suite(&s.url, &s.ca, &[("RUN_QUIRKS", "1")]);
    run.assert_counts((CLI_SUITE_CHECKS + CLI_SUITE_QUIRKS, 0), &s.logs());
}

#[test]
fn our_server_on_the_go_signer_passes_the_suite() {
    if require(&[&our_bin("notary-server")]) {
        return;
    }
    let s = stack(false, 24442, 27942, "e2e_rs_gosig");
    let run = run_client_suite(&s.url, &s.ca, &[]);
    run.assert_counts((CLI_SUITE_CHECKS, 0), &s.logs());
}

#[test]
fn our_server_and_signer_on_sqlite_pass_the_suite_without_mariadb() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let s = SqliteStack::start(24443, 27943);
    let run = run_client_suite(&s.url, &s.ca, &[("RUN_QUIRKS", "1")]);
    run.assert_counts((CLI_SUITE_CHECKS + CLI_SUITE_QUIRKS, 0), &s.logs());
}

#[test]
fn the_go_reference_pair_passes_the_suite_and_fails_exactly_the_quirks_control() {
    if require(&[]) {
        return;
    }
    let s = stack_of(
        go_bin("notary-server"),
        go_bin("notary-signer"),
        24444,
        27944,
        "e2e_go_go",
    );
    let run = run_client_suite(&s.url, &s.ca, &[("RUN_QUIRKS", "1")]);
    run.assert_counts((CLI_SUITE_CHECKS, CLI_SUITE_QUIRKS), &s.logs());
    let failed: Vec<&str> = run
        .output
        .lines()
        .filter(|l| l.starts_with("not ok"))
        .collect();
    assert!(
        failed.iter().all(|l| l.contains("quirk")),
        "the Go pair failed a main check:\n{}",
        failed.join("\n")
    );
}
