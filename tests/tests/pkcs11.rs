//! Issue 18: the stock `notary` CLI suite against our server and against the Go server, each
//! on our notary-signer keeping its keys in a SoftHSM2 token (`start-pair.sh` with
//! `SIGNER_PKCS11=1`: a fresh token per stack, the signer's database on MariaDB). After the
//! suite, every key the signer made is an object in the token and none is in the database.
//! The DCT push/pull on the token is in `dct.rs`.

use std::process::Command;

use notary_e2e::faults::shared_sql;
use notary_e2e::{
    go_bin, our_bin, require, run_client_suite, PeerStack, StackSpec, CLI_SUITE_CHECKS,
    CLI_SUITE_QUIRKS,
};

fn pkcs11_stack(
    server_bin: std::path::PathBuf,
    server_port: u16,
    signer_port: u16,
    db: &str,
) -> PeerStack {
    PeerStack::start(&StackSpec {
        server_bin,
        signer_bin: our_bin("notary-signer"),
        server_port,
        signer_port,
        db_prefix: db.to_string(),
        reset_db: true,
        env: vec![("SIGNER_PKCS11".into(), "1".into())],
    })
}

/// Private-key objects in the stack's token, as OpenSC's pkcs11-tool lists them.
fn token_private_keys(stack: &PeerStack) -> usize {
    let out = Command::new("pkcs11-tool")
        .env(
            "SOFTHSM2_CONF",
            stack.workdir.path().join("softhsm/softhsm2.conf"),
        )
        .args(["--module", "/usr/lib/softhsm/libsofthsm2.so"])
        .args(["--token-label", "notary", "--login", "--pin", "1234"])
        .args(["--list-objects", "--type", "privkey"])
        .output()
        .expect("run pkcs11-tool (tests/harness/install.sh installs opensc)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .matches("Private Key Object")
        .count()
}

/// Checks that the suite's keys live in the token, listed in pkcs11_keys, none in private_keys.
fn keys_are_in_the_token(stack: &PeerStack, db: &str) {
    let in_token = token_private_keys(stack);
    let listed: usize = shared_sql(&format!(
        "SELECT COUNT(*) FROM `{db}_signer`.pkcs11_keys WHERE deleted_at IS NULL"
    ))
    .trim()
    .parse()
    .unwrap();
    let in_database: usize =
        shared_sql(&format!("SELECT COUNT(*) FROM `{db}_signer`.private_keys"))
            .trim()
            .parse()
            .unwrap();
    // One timestamp key per GUN at least; the suite publishes dozens of GUNs.
    assert!(in_token >= 20, "only {in_token} keys in the token");
    assert_eq!(
        listed, in_token,
        "every token key is listed, and only those"
    );
    assert_eq!(in_database, 0, "no key material in the database");
}

#[test]
fn our_server_on_our_pkcs11_signer_passes_the_suite_including_quirks() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let db = "e2e_rs_p11";
    let stack = pkcs11_stack(our_bin("notary-server"), 24446, 27946, db);
    let run = run_client_suite(&stack.url, &stack.ca, &[("RUN_QUIRKS", "1")]);
    run.assert_counts((CLI_SUITE_CHECKS + CLI_SUITE_QUIRKS, 0), &stack.logs());
    keys_are_in_the_token(&stack, db);
}

#[test]
fn the_go_server_on_our_pkcs11_signer_passes_the_suite() {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    let db = "e2e_go_p11";
    let stack = pkcs11_stack(go_bin("notary-server"), 24447, 27947, db);
    let run = run_client_suite(&stack.url, &stack.ca, &[]);
    run.assert_counts((CLI_SUITE_CHECKS, 0), &stack.logs());
    keys_are_in_the_token(&stack, db);
}
