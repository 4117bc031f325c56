//! Issue 3: the Go notary-server on our notary-signer (MariaDB, mutual TLS) passes the stock
//! `notary` CLI suite, and signer keys move between the Go signer and ours in both directions.

use notary_e2e::{
    go_bin, our_bin, random_suffix, require, run_client_suite, NotaryCli, PeerStack, StackSpec,
    CLI_SUITE_CHECKS,
};

fn spec(
    server: &str,
    signer_ours: bool,
    server_port: u16,
    signer_port: u16,
    db: &str,
) -> StackSpec {
    StackSpec {
        server_bin: if server == "go" {
            go_bin("notary-server")
        } else {
            our_bin("notary-server")
        },
        signer_bin: if signer_ours {
            our_bin("notary-signer")
        } else {
            go_bin("notary-signer")
        },
        server_port,
        signer_port,
        db_prefix: db.to_string(),
        reset_db: true,
        env: vec![],
    }
}

#[test]
fn go_server_on_our_signer_passes_the_notary_client_suite() {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    let stack = PeerStack::start(&spec("go", true, 24431, 27891, "e2e_gosrv_rssig"));
    let run = run_client_suite(&stack.url, &stack.ca, &[]);
    assert_eq!(
        (run.passed, run.failed),
        (CLI_SUITE_CHECKS, 0),
        "suite failures:\n{}\n{}",
        run.failures(),
        stack.logs()
    );
}

/// Publishes once on `first`'s signer, then swaps the signer binary on the same databases and
/// publishes again: the Go server asks the new signer to sign with the key the old one made.
fn key_handover(first_is_ours: bool, ports: (u16, u16), db: &str) {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    let mut s = spec("go", first_is_ours, ports.0, ports.1, db);
    let stack = PeerStack::start(&s);
    let gun = format!("example.com/e2e/handover/{}", random_suffix());
    let owner = NotaryCli::new(&stack.url, &stack.ca);
    let file = owner.trust_dir.path().join("payload.txt");
    std::fs::write(&file, b"handover payload\n").unwrap();
    owner.ok(&["init", &gun]);
    owner.ok(&["add", &gun, "v1", file.to_str().unwrap()]);
    owner.ok(&["publish", &gun]);

    // Same databases, same passphrase, the other signer implementation.
    stack.stop();
    s.signer_bin = if first_is_ours {
        go_bin("notary-signer")
    } else {
        our_bin("notary-signer")
    };
    s.reset_db = false;
    stack.start_in_place(&s);

    // A new publish makes the server sign a fresh timestamp with the timestamp key that the
    // first signer created and encrypted.
    owner.ok(&["add", &gun, "v2", file.to_str().unwrap()]);
    let (ok, out) = owner.run(&["publish", &gun]);
    assert!(
        ok,
        "publish through the second signer failed:\n{out}\n{}",
        stack.logs()
    );
    let reader = NotaryCli::new(&stack.url, &stack.ca);
    let listing = reader.ok(&["list", &gun]);
    assert!(
        listing.contains("v1") && listing.contains("v2"),
        "list: {listing}"
    );
    let (ok, out) = reader.run(&["verify", &gun, "v2", "-i", file.to_str().unwrap(), "-q"]);
    assert!(ok, "verify failed: {out}");
}

#[test]
fn keys_created_by_the_go_signer_sign_through_ours() {
    key_handover(false, (24432, 27892), "e2e_handover_go2rs");
}

#[test]
fn keys_created_by_our_signer_sign_through_the_go_signer() {
    key_handover(true, (24433, 27893), "e2e_handover_rs2go");
}
