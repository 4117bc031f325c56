//! Scale: loading many GUNs quickly, and the figures that must not degrade with the
//! number of GUNs; plus the cross-replica staleness measurement.
//!
//! The loader writes valid, signed repositories straight through the server's storage
//! layer ([`notary_server::storage::SqlStore::update_many`], the same call an accepted
//! publish ends in), many at once. All loaded GUNs live under `<prefix>/` and share one
//! root whose x509 certificate has the wildcard CN `<prefix>/*` (Notary's rule for
//! wildcard roots), and the same targets/snapshot/timestamp keys, so only three signatures
//! are made per GUN; each GUN's targets names the GUN itself, so every file, hash and
//! changefeed row is distinct, as in a real deployment. The timestamp key is not in the
//! signer, so the server cannot re-sign these timestamps (they are valid for 14 days).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use notary_server::storage::{MetaStore, MetaUpdate, SqlStore};
use notary_tuf::roles;
use notary_tuf::test_support::TestRepo;

use crate::client::{TrustClient, Verify};
use crate::harness::{drive, publish_phase, record, Outcome};
use crate::report::{Report, Unit};

/// Signed files of one GUN, ready to write.
fn repo_files(template: &TestRepo, root: &[u8], gun: &str) -> Vec<MetaUpdate> {
    let mut repo = template.clone();
    repo.add_target(roles::TARGETS, gun, gun.as_bytes());
    let targets = repo.targets_file(roles::TARGETS);
    let mut all = BTreeMap::new();
    all.insert(roles::TARGETS.to_string(), targets.clone());
    let snapshot = repo.snapshot_file(root, &all);
    let timestamp = repo.timestamp_file(&snapshot);
    let file = |role: &str, data: Vec<u8>| MetaUpdate {
        role: role.to_string(),
        version: 1,
        data,
    };
    vec![
        file(roles::ROOT, root.to_vec()),
        file(roles::TARGETS, targets),
        file(roles::SNAPSHOT, snapshot),
        file(roles::TIMESTAMP, timestamp),
    ]
}

/// The GUN with index `i` under `prefix`.
pub fn gun_name(prefix: &str, i: u64) -> String {
    format!("{prefix}/{i}")
}

/// Loads GUNs `from..to` under `prefix` into the server database at `db_url` (a
/// `mysql://` URL), `parallel` writes at a time. Returns how long it took.
pub async fn load(
    db_url: &str,
    prefix: &str,
    from: u64,
    to: u64,
    parallel: usize,
) -> Result<Duration> {
    let started = Instant::now();
    // No cache in the loader: it only writes.
    let store = Arc::new(
        SqlStore::open_mysql(db_url)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_cache(notary_server::cache::CacheOptions {
                enabled: false,
                ..Default::default()
            }),
    );
    let template = Arc::new(TestRepo::new(&format!("{prefix}/*")));
    let root = Arc::new(template.root_file());
    let next = Arc::new(AtomicU64::new(from));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (store, template, root, next, prefix) = (
            store.clone(),
            template.clone(),
            root.clone(),
            next.clone(),
            prefix.to_string(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return anyhow::Ok(());
                }
                let gun = gun_name(&prefix, i);
                let (t, r, g) = (template.clone(), root.clone(), gun.clone());
                let files = tokio::task::spawn_blocking(move || repo_files(&t, &r, &g)).await?;
                store
                    .update_many(&gun, files)
                    .await
                    .map_err(|e| anyhow::anyhow!("writing {gun}: {e}"))?;
                if i > from && (i - from).is_multiple_of(10_000) {
                    eprintln!("  loaded {} GUNs", i - from);
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(started.elapsed())
}

/// GET timestamp.json of uniformly random GUNs among `0..count` under `prefix`, from
/// `conc` tasks for `phase` (after a warm-up of half that).
pub async fn random_timestamp_gets(
    client: &TrustClient,
    prefix: &str,
    count: u64,
    conc: usize,
    phase: Duration,
) -> (crate::Latencies, Duration) {
    let op = move |(c, p, seed): (TrustClient, String, u64)| async move {
        // xorshift: cheap, different per task.
        let mut x = seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let gun = gun_name(&p, x % count);
        let out = match c.get_file(&gun, "timestamp.json").await {
            Ok(r) if r.status == 200 => Outcome::Ok,
            Ok(r) => Outcome::Err(format!("{gun}: HTTP {}", r.status)),
            Err(e) => Outcome::Err(format!("{e:#}")),
        };
        ((c, p, x), out)
    };
    let states = |salt: u64| -> Vec<(TrustClient, String, u64)> {
        (0..conc as u64)
            .map(|i| {
                (
                    client.clone(),
                    prefix.to_string(),
                    0x9E37_79B9_7F4A_7C15 ^ (i + salt),
                )
            })
            .collect()
    };
    drive(states(1), phase / 2, op).await;
    drive(states(1000), phase, op).await
}

/// Figures at one scale, recorded under column `column`.
pub async fn measure(
    client: &TrustClient,
    prefix: &str,
    count: u64,
    phase: Duration,
    column: &str,
    report: &mut Report,
) -> Result<()> {
    // Every loaded repository verifies like a client expects (spot check).
    for i in [0, count / 2, count - 1] {
        client
            .pull_with(&gun_name(prefix, i), Verify::Full)
            .await
            .with_context(|| format!("verifying loaded GUN {i}"))?;
    }
    // The same hot set at every scale (what the database size alone does), then uniform
    // over every GUN (mostly cache misses once they outnumber the cache).
    let hot = 1000.min(count);
    let (lat, wall) = random_timestamp_gets(client, prefix, hot, 16, phase).await;
    record(
        report,
        column,
        &format!("GET timestamp.json of {hot} hot GUNs c16"),
        lat,
        wall,
    );
    let (lat, wall) = random_timestamp_gets(client, prefix, count, 16, phase).await;
    record(
        report,
        column,
        "GET timestamp.json uniform over all GUNs c16",
        lat,
        wall,
    );

    let run = format!("{prefix}-pub-{}", std::process::id());
    let repo = client.init_repo(&format!("{run}/{column}"), false).await?;
    let (lat, wall) = publish_phase(client, vec![repo], phase).await;
    record(report, column, "publish c1", lat, wall);

    let latest = client
        .get_path("/v2/_trust/changefeed?change_id=-1&records=1")
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&latest.body).context("changefeed JSON")?;
    let max_id: i64 = v["records"][0]["ID"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    report.add("changefeed rows", Unit::Count, column, max_id as f64);
    for (label, id) in [("near the start", 100), ("in the middle", max_id / 2)] {
        let path = format!("/v2/_trust/changefeed?change_id={id}&records=100");
        let states = vec![(client.clone(), path); 8];
        let (lat, wall) = drive(
            states,
            phase / 2,
            |(c, p): (TrustClient, String)| async move {
                let out = match c.get_path(&p).await {
                    Ok(r) if r.status == 200 => Outcome::Ok,
                    Ok(r) => Outcome::Err(format!("HTTP {}", r.status)),
                    Err(e) => Outcome::Err(format!("{e:#}")),
                };
                ((c, p), out)
            },
        )
        .await;
        record(
            report,
            column,
            &format!("changefeed page {label} c8"),
            lat,
            wall,
        );
    }
    Ok(())
}

/// Cross-replica staleness: publishes through `writer`, then polls `reader` (another
/// server process on the same database) every millisecond until it serves the new
/// timestamp. Returns the delay per publish, from the writer's 200 to the first fresh read.
pub async fn staleness(
    writer: &TrustClient,
    reader: &TrustClient,
    gun: &str,
    rounds: usize,
) -> Result<Vec<Duration>> {
    let mut repo = writer.init_repo(gun, false).await?;
    // Let the reader cache the repository first, so the measurement sees invalidation.
    let mut delays = Vec::new();
    for i in 0..rounds {
        for _ in 0..3 {
            reader.get_file(gun, "timestamp.json").await?;
        }
        // Publish at a random point of the reader's poll cycle (the loop would otherwise
        // lock onto it): 0..150 ms, from a simple hash of the round.
        let jitter = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        tokio::time::sleep(Duration::from_millis(jitter % 150)).await;
        let status = writer
            .publish(&mut repo, &[(format!("t{i}"), vec![i as u8])])
            .await?;
        anyhow::ensure!(status == 200, "publish {i}: HTTP {status}");
        let done = Instant::now();
        let want = writer.get_file(gun, "timestamp.json").await?.body;
        loop {
            let got = reader.get_file(gun, "timestamp.json").await?;
            if got.body == want {
                delays.push(done.elapsed());
                break;
            }
            anyhow::ensure!(
                done.elapsed() < Duration::from_secs(30),
                "reader never caught up"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    Ok(delays)
}
