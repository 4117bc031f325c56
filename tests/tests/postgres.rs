//! PostgreSQL end to end (issue 20), on the test cluster of `tests/harness/start-postgres.sh`:
//! - the stock `notary` CLI suite passes against our pair (its database connections over
//!   TLS, `sslmode=verify-full`) and against both mixed pairs (our server on the Go signer,
//!   the Go server on ours);
//! - Harbor's layout: the Go server and signer on PostgreSQL with Harbor's database names
//!   (`notaryserver`, `notarysigner`), filled by `docker push` with content trust, are
//!   verified and copied by `notary-migrate import` into fresh PostgreSQL databases, which our
//!   pair then serves: `docker trust inspect` is unchanged, `docker pull` resolves through
//!   ours, and a signed `docker push` goes on with the keys the Go signer made.
//!
//! (Go's data served by ours and back on PostgreSQL: `dropin.rs`.) Ports 24521-24525 /
//! 28021-28025, registry 25521.

use std::path::{Path, PathBuf};
use std::process::Command;

use notary_e2e::dct::{self, signed_tags, DockerCli, DockerEnv};
use notary_e2e::migrate::{migrate_bin, run_migrate};
use notary_e2e::{
    go_bin, harness_dir, our_bin, require, run_client_suite, PeerStack, StackSpec,
    CLI_SUITE_CHECKS, CLI_SUITE_QUIRKS,
};
use serde_json::Value;

fn pg_stack(
    server_bin: PathBuf,
    signer_bin: PathBuf,
    ports: (u16, u16),
    db_prefix: &str,
    env: &[(&str, &str)],
) -> PeerStack {
    let mut all = vec![("DB_BACKEND".to_owned(), "postgres".to_owned())];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    PeerStack::start(&StackSpec {
        server_bin,
        signer_bin,
        server_port: ports.0,
        signer_port: ports.1,
        db_prefix: db_prefix.into(),
        reset_db: true,
        env: all,
    })
}

#[test]
fn our_pair_on_postgres_over_tls_passes_the_suite_including_quirks() {
    if require(&[&our_bin("notary-server"), &our_bin("notary-signer")]) {
        return;
    }
    let s = pg_stack(
        our_bin("notary-server"),
        our_bin("notary-signer"),
        (24521, 28021),
        "e2e_pg_rs_rs",
        &[("PG_SSLMODE", "verify-full")],
    );
    let config = std::fs::read_to_string(s.workdir.path().join("server-config.json")).unwrap();
    assert!(config.contains("sslmode=verify-full"), "{config}");
    let run = run_client_suite(&s.url, &s.ca, &[("RUN_QUIRKS", "1")]);
    run.assert_counts((CLI_SUITE_CHECKS + CLI_SUITE_QUIRKS, 0), &s.logs());
    // Both services' sessions really are encrypted.
    let tls_sessions = psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND datname IN ('e2e_pg_rs_rs_server', 'e2e_pg_rs_rs_signer')",
    );
    assert!(
        tls_sessions.trim().parse::<u32>().unwrap() >= 2,
        "TLS sessions: {tls_sessions}"
    );
}

/// A mixed pair on PostgreSQL passes the main suite (the Go half fails only the quirks).
fn mixed_pair_passes(server_bin: PathBuf, signer_bin: PathBuf, ports: (u16, u16), prefix: &str) {
    let s = pg_stack(server_bin, signer_bin, ports, prefix, &[]);
    let run = run_client_suite(&s.url, &s.ca, &[]);
    run.assert_counts((CLI_SUITE_CHECKS, 0), &s.logs());
}

#[test]
fn our_server_on_the_go_signer_on_postgres_passes_the_suite() {
    if require(&[&our_bin("notary-server")]) {
        return;
    }
    mixed_pair_passes(
        our_bin("notary-server"),
        go_bin("notary-signer"),
        (24522, 28022),
        "e2e_pg_rs_gosig",
    );
}

#[test]
fn go_server_on_our_signer_on_postgres_passes_the_suite() {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    mixed_pair_passes(
        go_bin("notary-server"),
        our_bin("notary-signer"),
        (24523, 28023),
        "e2e_pg_gosrv_rssig",
    );
}

/// Runs SQL as the cluster's superuser (`pg-psql.sh`); returns the unaligned output.
fn psql(db: &str, sql: &str) -> String {
    let out = Command::new(harness_dir().join("pg-psql.sh"))
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ])
        .output()
        .expect("run pg-psql.sh");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Harbor's notary database URL for `db`, as its notary configs spelled them.
fn harbor_url(user: &str, db: &str) -> String {
    format!("postgres://{user}:{user}_pw@127.0.0.1:5433/{db}?sslmode=disable")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn harbor_postgres_databases_are_imported_and_served_by_ours() {
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
    // Harbor's names: databases notaryserver / notarysigner, one role for each service.
    let harbor_env: [(&str, &str); 6] = [
        ("SERVER_DB", "notaryserver"),
        ("SIGNER_DB", "notarysigner"),
        ("SERVER_DB_USER", "server"),
        ("SERVER_DB_PASS", "server_pw"),
        ("SIGNER_DB_USER", "signer"),
        ("SIGNER_DB_PASS", "signer_pw"),
    ];
    let go = pg_stack(
        go_bin("notary-server"),
        go_bin("notary-signer"),
        (24524, 28024),
        "unused",
        &harbor_env,
    );
    let docker = DockerEnv::start(25521);
    let (gu, ou) = ("https://localhost:24524", "https://localhost:24525");
    let config = tempfile::Builder::new()
        .prefix("pg-docker-")
        .tempdir_in("/tmp")
        .unwrap();
    let cli = DockerCli {
        env: &docker,
        config: config.path().to_path_buf(),
    };
    cli.trust_notary_ca(24524, &go.ca);
    let run = notary_e2e::random_suffix();
    let reg = docker.registry();
    let app = format!("{reg}/harbor-{run}/app");
    let other = format!("{reg}/harbor-{run}/other");

    // --- Harbor's notary, filled the way Harbor users did: signed docker pushes, a signer.
    let (img1, _) = cli.push_signed_repositories(gu, &app, &other, &format!("pg-{run}"));
    let source: Vec<(String, Value)> = [&app, &other]
        .iter()
        .map(|g| (g.to_string(), cli.inspect(gu, g)))
        .collect();
    assert_eq!(signed_tags(&source[0].1).len(), 2, "{:?}", source[0].1);
    go.stop();

    let pass_env = [(
        "NOTARY_SIGNER_PASSWORDALIAS1",
        "notary-signer-test-passphrase",
    )];
    let (server_src, signer_src) = (
        harbor_url("server", "notaryserver"),
        harbor_url("signer", "notarysigner"),
    );
    let work = tempfile::tempdir().unwrap();

    // --- verify only
    let dry = work.path().join("dry.json");
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &server_src,
            "--signer-db",
            &signer_src,
            "--dry-run",
            "--report",
            dry.to_str().unwrap(),
        ],
        &pass_env,
    );
    assert_eq!(r.code, 0, "dry run: {}", r.text());
    let report = read_json(&dry);
    assert_eq!(report["invalid"].as_array().unwrap().len(), 0, "{report}");
    for gun in [&app, &other] {
        assert_eq!(report["guns"][gun.as_str()]["serves"], true, "{report}");
    }

    // --- copy into fresh PostgreSQL databases (Harbor's database stays as it was)
    for (db, owner) in [
        ("e2e_pg_harbor_copy_server", "server"),
        ("e2e_pg_harbor_copy_signer", "signer"),
    ] {
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
        psql("postgres", &format!("CREATE DATABASE {db} OWNER {owner}"));
    }
    let copied = work.path().join("copy.json");
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &server_src,
            "--signer-db",
            &signer_src,
            "--target-server-db",
            &harbor_url("server", "e2e_pg_harbor_copy_server"),
            "--target-signer-db",
            &harbor_url("signer", "e2e_pg_harbor_copy_signer"),
            "--report",
            copied.to_str().unwrap(),
        ],
        &pass_env,
    );
    assert_eq!(r.code, 0, "copy: {}", r.text());
    let report = read_json(&copied);
    let files: u64 = psql("notaryserver", "SELECT count(*) FROM tuf_files")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(report["server_rows_written"], files, "{report}");
    assert_eq!(
        psql(
            "e2e_pg_harbor_copy_signer",
            "SELECT count(*) FROM private_keys"
        ),
        psql("notarysigner", "SELECT count(*) FROM private_keys"),
    );

    // --- our pair on the copy
    let mut copy_env = harbor_env.to_vec();
    copy_env[0].1 = "e2e_pg_harbor_copy_server";
    copy_env[1].1 = "e2e_pg_harbor_copy_signer";
    let mut all = vec![("DB_BACKEND".to_owned(), "postgres".to_owned())];
    all.extend(copy_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let ours = PeerStack::start(&StackSpec {
        server_bin: our_bin("notary-server"),
        signer_bin: our_bin("notary-signer"),
        server_port: 24525,
        signer_port: 28025,
        db_prefix: "unused".into(),
        reset_db: false,
        env: all,
    });
    cli.trust_notary_ca(24525, &ours.ca);
    for (gun, inspect) in &source {
        assert_eq!(
            &cli.inspect(ou, gun),
            inspect,
            "docker trust inspect of {gun} through ours\n{}",
            ours.logs()
        );
    }
    let d1 = signed_tags(&source[0].1)["1"].clone();
    let _ = Command::new(docker.docker())
        .args(["rmi", "-f", &img1, &format!("{app}:1")])
        .envs(docker.env())
        .output();
    let out = cli.ok(ou, &["pull", &format!("{app}:1")]);
    assert!(
        out.contains(&format!("{app}:1@sha256:{d1}")),
        "pull through ours: {out}"
    );
    // Publishing goes on: the snapshot and timestamp keys the Go signer made sign through
    // ours, and new rows get ids past the copied ones.
    let img3 = cli.image(&format!("pg-three:{run}"));
    cli.ok(ou, &["tag", &img3, &format!("{app}:3")]);
    let out = cli.ok(ou, &["push", &format!("{app}:3")]);
    assert!(
        out.contains("Successfully signed"),
        "signed push through ours: {out}\n{}",
        ours.logs()
    );
    assert_eq!(signed_tags(&cli.inspect(ou, &app)).len(), 3);
    cli.ok(ou, &["tag", &img3, &format!("{other}:2")]);
    let out = cli.ok(ou, &["push", &format!("{other}:2")]);
    assert!(out.contains("Successfully signed"), "{out}");
    ours.stop();

    // --- and Harbor's own database, adopted in place, is still Go-readable and verified.
    let r = run_migrate(
        &[
            "import",
            "--server-db",
            &server_src,
            "--signer-db",
            &signer_src,
        ],
        &pass_env,
    );
    assert_eq!(r.code, 0, "adopt: {}", r.text());
    assert!(r.stdout.starts_with("import (adopt)"), "{}", r.text());
}
