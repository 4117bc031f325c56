//! Docker Content Trust end to end: the stock Docker CLI (28.x, `DOCKER_CONTENT_TRUST=1`)
//! pushes, signs, pulls, delegates and revokes through a private dockerd and registry against
//! a notary-server + notary-signer pair on MariaDB (`tests/harness/dct/dct-suite.sh`).
//!
//! The acceptance tests run our pair (MariaDB and SQLite) and the mixed pairs; the control runs
//! the Go reference pair through the same harness, so a failure that shows up in both is the
//! harness's, not our server's. The suite
//! covers the loopback registry (`localhost:<port>`, where the CLI does not verify the notary
//! certificate) and a non-loopback registry name whose checks run with and without the CA.
//!
//! Needs root, docker.io, docker-registry, the 28.x Docker client, MariaDB, the Go `notary`
//! package and our release binaries; see `notary_e2e::dct`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use notary_e2e::dct::{self, DockerEnv, SECURE_REGISTRY_HOST};
use notary_e2e::{go_bin, our_bin, PeerStack, SqliteStack, StackSpec};

/// Checks `dct-suite.sh` runs when nothing is skipped; every one must pass against both pairs.
const SUITE_CHECKS: u32 = 41;

/// One engine at a time: each test starts its own, and two dockerds plus two notary pairs
/// would only compete for the machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one still gets a fresh engine.
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the pair and an engine, runs the whole suite once and checks that all
/// [`SUITE_CHECKS`] checks ran and passed.
fn suite_passes(spec: StackSpec, registry_port: u16) {
    let stack = PeerStack::start(&spec);
    suite_passes_on(spec.server_port, &stack.ca, &|| stack.logs(), registry_port);
}

/// [`suite_passes`] on a MariaDB pair: server 2445n, signer 2795n, registry 2545n.
fn pair_passes(server_bin: PathBuf, signer_bin: PathBuf, n: u16, db_prefix: &str) {
    pair_passes_with(server_bin, signer_bin, n, db_prefix, Vec::new());
}

/// [`pair_passes`] with extra `start-pair.sh` settings.
fn pair_passes_with(
    server_bin: PathBuf,
    signer_bin: PathBuf,
    n: u16,
    db_prefix: &str,
    env: Vec<(String, String)>,
) {
    suite_passes(
        StackSpec {
            server_bin,
            signer_bin,
            server_port: 24450 + n,
            signer_port: 27950 + n,
            db_prefix: db_prefix.into(),
            reset_db: true,
            env,
        },
        25450 + n,
    );
}

/// Runs the suite against the server on `server_port` (any stack) and checks the result.
fn suite_passes_on(
    server_port: u16,
    ca: &Path,
    stack_logs: &dyn Fn() -> String,
    registry_port: u16,
) {
    let docker = DockerEnv::start(registry_port);
    // The server certificate (certs/make-pki.sh) names localhost; the README's setup uses it.
    let url = format!("https://localhost:{server_port}");
    let run = docker.run_dct_suite(&url, ca, &[]);
    eprintln!("{}", run.output);

    let context = || {
        format!(
            "failures:\n{}\n\nfull output:\n{}\n{}\n{}",
            run.failures(),
            run.output,
            stack_logs(),
            docker.logs()
        )
    };
    assert_eq!(
        run.failed,
        0,
        "DCT suite against {url} failed\n{}",
        context()
    );
    assert_eq!(
        run.passed,
        SUITE_CHECKS,
        "DCT suite did not run all its checks\n{}",
        context()
    );
    let ok_lines = run
        .output
        .lines()
        .filter(|l| l.starts_with("ok - "))
        .count();
    assert_eq!(
        ok_lines,
        run.passed as usize,
        "summary does not match the ok lines\n{}",
        context()
    );
    assert!(
        !run.output.lines().any(|l| l.starts_with("# skip")),
        "the suite skipped checks\n{}",
        context()
    );
    // The TLS checks are the only ones where the CLI verifies the notary certificate.
    for check in [
        "the CLI verifies notary's certificate",
        "with no CA for localhost:",
        "with an unrelated CA for localhost:",
    ] {
        assert!(
            run.output
                .lines()
                .any(|l| l.starts_with("ok - ") && l.contains(check)),
            "TLS check {check:?} (registry {SECURE_REGISTRY_HOST}) did not pass\n{}",
            context()
        );
    }
    let gun_prefix = format!("{}/suite/app-", docker.registry());
    assert!(
        run.output.contains(&gun_prefix),
        "the suite did not use the loopback registry {}\n{}",
        docker.registry(),
        context()
    );
}

#[test]
fn dct_suite_passes_against_our_server_and_signer_on_mariadb() {
    let server = our_bin("notary-server");
    let signer = our_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let _one_at_a_time = serial();
    pair_passes(server, signer, 1, "e2e_dct_rs");
}

#[test]
fn dct_suite_passes_against_the_go_reference_pair_control() {
    let server = go_bin("notary-server");
    let signer = go_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let _one_at_a_time = serial();
    pair_passes(server, signer, 2, "e2e_dct_go");
}

#[test]
fn dct_suite_passes_against_our_server_on_the_go_signer() {
    let server = our_bin("notary-server");
    let signer = go_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let _one_at_a_time = serial();
    pair_passes(server, signer, 3, "e2e_dct_rs_gosig");
}

#[test]
fn dct_suite_passes_against_the_go_server_on_our_signer() {
    let server = go_bin("notary-server");
    let signer = our_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let _one_at_a_time = serial();
    pair_passes(server, signer, 4, "e2e_dct_go_rssig");
}

/// Issue 18: push, sign, pull, delegate and revoke with the signer's keys in a SoftHSM2 token.
#[test]
fn dct_suite_passes_against_our_server_on_our_pkcs11_signer() {
    let server = our_bin("notary-server");
    let signer = our_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let _one_at_a_time = serial();
    pair_passes_with(
        server,
        signer,
        6,
        "e2e_dct_rs_p11",
        vec![("SIGNER_PKCS11".into(), "1".into())],
    );
}

#[test]
fn dct_suite_passes_against_our_server_and_signer_on_sqlite() {
    let server = our_bin("notary-server");
    let signer = our_bin("notary-signer");
    if dct::require_docker(&[&server, &signer]) {
        return;
    }
    let _one_at_a_time = serial();
    let stack = SqliteStack::start(24455, 27955);
    suite_passes_on(24455, &stack.ca, &|| stack.logs(), 25455);
}
