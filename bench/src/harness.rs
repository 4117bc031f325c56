//! The server benchmark: sets up repositories on a notary server through
//! [`TrustClient`], then measures GETs (wrk and our client), the docker pull sequence,
//! publishes (sequential, many GUNs in parallel, one GUN in parallel), changefeed paging and
//! peak RSS, recording every figure in a [`Report`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tokio::sync::Mutex;

use crate::client::{Repo, TrustClient, Verify};
use crate::report::{Report, Unit};
use crate::{wrk, Latencies};

/// One server under test.
#[derive(Debug, Clone)]
pub struct Server {
    /// Column name: `ours`, `go`, ...
    pub name: String,
    /// Client for its URL.
    pub client: TrustClient,
    /// notary-server process, for RSS and CPU.
    pub server_pid: Option<PidSource>,
    /// notary-signer process, for RSS and CPU.
    pub signer_pid: Option<PidSource>,
}

impl Server {
    /// The server's PID now.
    pub fn server_pid(&self) -> Option<u32> {
        self.server_pid.as_ref().and_then(PidSource::get)
    }

    /// The signer's PID now.
    pub fn signer_pid(&self) -> Option<u32> {
        self.signer_pid.as_ref().and_then(PidSource::get)
    }
}

/// A process to measure: a PID, or a PID file read at each use (`scripts/bench.sh`
/// restarts a crashed Go server under a new PID and rewrites its PID file).
#[derive(Debug, Clone, PartialEq)]
pub enum PidSource {
    /// A fixed PID.
    Pid(u32),
    /// A file holding the PID.
    File(PathBuf),
}

impl PidSource {
    /// A number is a PID, anything else a PID file's path.
    pub fn parse(text: &str) -> PidSource {
        text.parse()
            .map(PidSource::Pid)
            .unwrap_or_else(|_| PidSource::File(PathBuf::from(text)))
    }

    /// The PID (for a file, what it holds now).
    pub fn get(&self) -> Option<u32> {
        match self {
            PidSource::Pid(pid) => Some(*pid),
            PidSource::File(path) => std::fs::read_to_string(path).ok()?.trim().parse().ok(),
        }
    }
}

/// Benchmark parameters.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of each measured phase.
    pub phase: Duration,
    /// wrk connections (and our client's concurrency for GET latencies is a quarter of it).
    pub wrk_connections: usize,
    /// wrk threads.
    pub wrk_threads: usize,
    /// Concurrent pullers.
    pub pullers: usize,
    /// Concurrent publishers on distinct GUNs, and on the shared GUN.
    pub publishers: usize,
    /// Targets in the main repository's `targets` role.
    pub targets: usize,
    /// Extra repositories the pullers pick from.
    pub pull_guns: usize,
    /// GUN prefix for this run (unique per run).
    pub prefix: String,
    /// Use a server-managed snapshot (docker style) instead of a client-signed one.
    pub server_snapshot: bool,
    /// nginx baseline: its URL and the document root it serves.
    pub nginx: Option<(TrustClient, PathBuf)>,
    /// The database server both stacks share, for its CPU per publish.
    pub db_pid: Option<PidSource>,
}

/// What an operation in a load loop ended with.
#[derive(Debug)]
pub enum Outcome {
    /// Success: its latency is recorded.
    Ok,
    /// An expected refusal (lost version race).
    Rejected,
    /// A failure.
    Err(String),
}

/// Runs `op` from one task per state until `phase` has elapsed; each call gets the task's
/// state and hands it back.
pub async fn drive<S, F, Fut>(states: Vec<S>, phase: Duration, op: F) -> (Latencies, Duration)
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (S, Outcome)> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for state in states {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut state = state;
            while start.elapsed() < phase {
                let t = Instant::now();
                let (s, outcome) = op(state).await;
                state = s;
                match outcome {
                    Outcome::Ok => lat.ok(t.elapsed()),
                    Outcome::Rejected => lat.rejected(),
                    Outcome::Err(e) => lat.err_msg(e),
                }
            }
            lat
        }));
    }
    let mut all = Latencies::default();
    for t in tasks {
        all.merge(t.await.expect("benchmark task panicked"));
    }
    (all, start.elapsed())
}

/// Records throughput, p50 and p99 of a phase under `row`, and prints a progress line.
pub fn record(report: &mut Report, server: &str, row: &str, mut lat: Latencies, wall: Duration) {
    let rate = lat.count() as f64 / wall.as_secs_f64();
    let p50 = lat.quantile(0.5).as_secs_f64() * 1e3;
    let p99 = lat.quantile(0.99).as_secs_f64() * 1e3;
    report.add(&format!("{row} throughput"), Unit::PerSec, server, rate);
    report.add(&format!("{row} p50"), Unit::Ms, server, p50);
    report.add(&format!("{row} p99"), Unit::Ms, server, p99);
    let mut line = format!(
        "  [{server}] {row}: {} ok, {rate:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
        lat.count()
    );
    if lat.rejections() > 0 {
        line.push_str(&format!(", {} lost version races", lat.rejections()));
    }
    if lat.errors() > 0 {
        line.push_str(&format!(
            ", {} ERRORS (first: {})",
            lat.errors(),
            lat.first_error().unwrap_or("?")
        ));
        report.add(
            &format!("{row} errors"),
            Unit::Count,
            server,
            lat.errors() as f64,
        );
    }
    eprintln!("{line}");
}

/// Repositories created for one server.
struct Fixture {
    main: Repo,
    pull_guns: Vec<String>,
    publish: Vec<Repo>,
    shared: Repo,
}

const DELEGATION: &str = "targets/releases";

fn target(i: usize, tag: &str) -> (String, Vec<u8>) {
    (
        format!("app/{tag}/{i}"),
        format!("content of {tag} {i}").into_bytes(),
    )
}

async fn setup(client: &TrustClient, opts: &Options) -> Result<Fixture> {
    let snap = opts.server_snapshot;
    let p = &opts.prefix;
    let mut main = client.init_repo(&format!("{p}/main"), snap).await?;
    let many: Vec<_> = (0..opts.targets).map(|i| target(i, "main")).collect();
    expect_200(
        client.publish(&mut main, &many).await?,
        "publish main targets",
    )?;
    expect_200(
        client
            .add_delegation(&mut main, DELEGATION, &["app/"])
            .await?,
        "add delegation",
    )?;
    let some: Vec<_> = (0..10).map(|i| target(i, "rel")).collect();
    expect_200(
        client.publish_role(&mut main, DELEGATION, &some).await?,
        "publish into delegation",
    )?;

    // Other repositories, created a few at a time like independent clients would.
    let make = |kind: &'static str, n: usize| {
        let client = client.clone();
        let p = p.clone();
        async move {
            let mut set = tokio::task::JoinSet::new();
            let mut out = Vec::new();
            for i in 0..n {
                let client = client.clone();
                let gun = format!("{p}/{kind}/{i}");
                set.spawn(async move {
                    let mut repo = client.init_repo(&gun, snap).await?;
                    let t: Vec<_> = (0..5).map(|j| target(j, kind)).collect();
                    expect_200(client.publish(&mut repo, &t).await?, "publish")?;
                    anyhow::Ok((i, repo))
                });
                if set.len() >= 8 {
                    out.push(set.join_next().await.expect("task")??);
                }
            }
            while let Some(r) = set.join_next().await {
                out.push(r??);
            }
            out.sort_by_key(|(i, _)| *i);
            anyhow::Ok(out.into_iter().map(|(_, r)| r).collect::<Vec<Repo>>())
        }
    };
    let pull_guns = make("pull", opts.pull_guns)
        .await?
        .into_iter()
        .map(|r| r.gun)
        .collect();
    let publish = make("publish", opts.publishers + 1).await?;
    let shared = client.init_repo(&format!("{p}/shared"), snap).await?;
    Ok(Fixture {
        main,
        pull_guns,
        publish,
        shared,
    })
}

fn expect_200(status: u16, what: &str) -> Result<()> {
    if status == 200 {
        Ok(())
    } else {
        Err(anyhow!("{what}: HTTP {status}"))
    }
}

/// The current files benchmarked by GET: (row label, file name).
const GET_FILES: [(&str, &str); 4] = [
    ("GET timestamp.json", "timestamp.json"),
    ("GET snapshot.json", "snapshot.json"),
    ("GET targets.json", "targets.json"),
    (
        "GET delegation targets/releases.json",
        "targets/releases.json",
    ),
];

/// Copies the served bytes of the main repository's current files into the nginx document
/// root under the same paths, so nginx serves exactly the same bytes.
pub async fn mirror_for_nginx(client: &TrustClient, gun: &str, root: &Path) -> Result<()> {
    for (_, file) in GET_FILES {
        let body = client.get_file(gun, file).await?;
        if body.status != 200 {
            return Err(anyhow!("GET {file}: HTTP {}", body.status));
        }
        let path = root.join(format!("v2/{gun}/_trust/tuf/{file}"));
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        std::fs::write(&path, &body.body).with_context(|| format!("writing {path:?}"))?;
    }
    Ok(())
}

/// GET benchmarks of one URL path on one server: wrk (if installed) and our client.
async fn bench_get(
    report: &mut Report,
    name: &str,
    client: &TrustClient,
    row: &str,
    url: &str,
    opts: &Options,
    use_wrk: bool,
) -> Result<()> {
    if use_wrk {
        let c = opts.wrk_connections;
        let r = wrk::run_blocking(url, opts.wrk_threads, c, opts.phase).await?;
        eprintln!(
            "  [{name}] {row} wrk c{c}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            r.rps,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.errors
        );
        report.add(
            &format!("{row} wrk c{c} throughput"),
            Unit::PerSec,
            name,
            r.rps,
        );
        report.add(
            &format!("{row} wrk c{c} p99"),
            Unit::Ms,
            name,
            r.p99.as_secs_f64() * 1e3,
        );
        if r.errors > 0 {
            report.add(
                &format!("{row} wrk errors"),
                Unit::Count,
                name,
                r.errors as f64,
            );
        }
    }
    let conc = (opts.wrk_connections / 4).max(1);
    let states = vec![(client.clone(), url.to_string()); conc];
    let (lat, wall) = drive(
        states,
        opts.phase / 2,
        |(c, u): (TrustClient, String)| async move {
            let out = match c.get_url(&u).await {
                Ok(r) if r.status == 200 => Outcome::Ok,
                Ok(r) => Outcome::Err(format!("HTTP {}", r.status)),
                Err(e) => Outcome::Err(format!("{e:#}")),
            };
            ((c, u), out)
        },
    )
    .await;
    record(report, name, &format!("{row} client c{conc}"), lat, wall);
    Ok(())
}

/// Reads `VmHWM` (peak RSS) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// Resident set size of a process now, in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time (user + system) a process has used so far, in milliseconds.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    cpu_ms_of(&format!("/proc/{pid}/stat"))
}

/// [`cpu_ms`] of this benchmark process (the load generator).
pub fn cpu_ms_self() -> Option<f64> {
    cpu_ms_of("/proc/self/stat")
}

fn cpu_ms_of(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name (which may contain spaces): state is
    // field 3, utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 per
    // second on Linux whatever the kernel's own tick rate).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// Resets `VmHWM` to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); needs the right
/// to write there (root or same user).
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Runs every benchmark against `server`, adding its column to `report`. When `nginx` is
/// given (only for the first server), the GET rows are also run against nginx serving the
/// same bytes.
pub async fn bench_server(server: &Server, opts: &Options, report: &mut Report) -> Result<()> {
    let name = server.name.as_str();
    let client = &server.client;
    let use_wrk = wrk::available();
    eprintln!("[{name}] setting up repositories on {}", client.url());
    let fx = setup(client, opts).await.context("setup")?;
    let gun = fx.main.gun.clone();

    if let Some((nginx, root)) = &opts.nginx {
        mirror_for_nginx(client, &gun, root).await?;
        for (row, file) in GET_FILES {
            let path = format!("/v2/{gun}/_trust/tuf/{file}");
            let url = format!("{}{path}", nginx.url());
            let got = nginx.get_path(&path).await?;
            if got.status != 200 {
                return Err(anyhow!("nginx does not serve {url}: HTTP {}", got.status));
            }
            bench_get(report, "nginx", nginx, row, &url, opts, use_wrk).await?;
        }
    }
    for (row, file) in GET_FILES {
        let url = client.tuf_url(&gun, file);
        let got = client.get_file(&gun, file).await?;
        if got.status != 200 {
            return Err(anyhow!("{url}: HTTP {}", got.status));
        }
        if row.contains("targets.json") {
            report.add(
                "targets.json size",
                Unit::Count,
                name,
                got.body.len() as f64,
            );
        }
        bench_get(report, name, client, row, &url, opts, use_wrk).await?;
    }

    // The docker pull sequence on random repositories.
    let mut guns = fx.pull_guns.clone();
    guns.push(gun.clone());
    let guns = Arc::new(guns);
    let counter = Arc::new(AtomicU64::new(0));
    let states = vec![(client.clone(), guns.clone(), counter.clone()); opts.pullers];
    let (lat, wall) = drive(
        states,
        opts.phase,
        |(c, guns, n): (TrustClient, Arc<Vec<String>>, Arc<AtomicU64>)| async move {
            let i = n.fetch_add(1, Ordering::Relaxed) as usize % guns.len();
            let out = match c.pull_with(&guns[i], Verify::Hashes).await {
                Ok(_) => Outcome::Ok,
                Err(e) => Outcome::Err(format!("{e:#}")),
            };
            ((c, guns, n), out)
        },
    )
    .await;
    record(
        report,
        name,
        &format!("pull sequence c{}", opts.pullers),
        lat,
        wall,
    );

    // Publishes: one at a time (latency), then one publisher per GUN in parallel.
    let mut publish = fx.publish;
    let first = publish.remove(0);
    let (lat, wall) = publish_phase(client, vec![first], opts.phase).await;
    record(report, name, "publish c1", lat, wall);

    let pids: Vec<(&str, u32)> = [
        ("server", server.server_pid()),
        ("signer", server.signer_pid()),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.map(|p| (k, p)))
    .collect();
    for (kind, pid) in &pids {
        if let Some(mib) = peak_rss_mib(*pid) {
            report.add(
                &format!("peak RSS {kind} before publish load"),
                Unit::MiB,
                name,
                mib,
            );
        }
        reset_peak_rss(*pid);
    }
    let n = publish.len();
    // CPU per publish of each process: where a publish's cost goes, and what bounds
    // throughput on a machine whose cores the load generator shares.
    let cpu_before: Vec<Option<f64>> = pids.iter().map(|(_, pid)| cpu_ms(*pid)).collect();
    let client_before = cpu_ms_self();
    let db_pid = opts.db_pid.as_ref().and_then(PidSource::get);
    let db_before = db_pid.and_then(cpu_ms);
    let (lat, wall) = publish_phase(client, publish, opts.phase).await;
    let published = lat.count() as f64;
    record(
        report,
        name,
        &format!("publish distinct GUNs c{n}"),
        lat,
        wall,
    );
    if published > 0.0 {
        let mut rows: Vec<(&str, Option<f64>, Option<f64>)> = pids
            .iter()
            .zip(cpu_before)
            .map(|((kind, pid), before)| (*kind, before, cpu_ms(*pid)))
            .collect();
        rows.push(("load generator", client_before, cpu_ms_self()));
        rows.push(("database", db_before, db_pid.and_then(cpu_ms)));
        for (kind, before, after) in rows {
            if let (Some(b), Some(a)) = (before, after) {
                report.add(
                    &format!("CPU per publish, {kind}"),
                    Unit::Ms,
                    name,
                    (a - b) / published,
                );
            }
        }
    }
    for (kind, pid) in &pids {
        if let Some(mib) = peak_rss_mib(*pid) {
            report.add(
                &format!("peak RSS {kind} under publish load"),
                Unit::MiB,
                name,
                mib,
            );
        }
    }

    // Publishers sharing one GUN: each stages the next version under a lock, so the losers
    // of a race are refused with 400 VERSION.
    let shared = Arc::new(Mutex::new(fx.shared));
    let counter = Arc::new(AtomicU64::new(0));
    let states = vec![(client.clone(), shared, counter); opts.publishers];
    let (lat, wall) = drive(
        states,
        opts.phase,
        |(c, repo, n): (TrustClient, Arc<Mutex<Repo>>, Arc<AtomicU64>)| async move {
            let i = n.fetch_add(1, Ordering::Relaxed) as usize;
            let (gun, parts) = {
                let mut r = repo.lock().await;
                let parts = r.stage(notary_tuf::roles::TARGETS, &[target(i % 10, "shared")]);
                (r.gun.clone(), parts)
            };
            let out = match c.post_update(&gun, &parts).await {
                Ok(r) if r.status == 200 => Outcome::Ok,
                Ok(r)
                    if r.status == 400
                        && String::from_utf8_lossy(&r.body).contains("\"VERSION\"") =>
                {
                    Outcome::Rejected
                }
                Ok(r) => Outcome::Err(format!(
                    "HTTP {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                )),
                Err(e) => Outcome::Err(format!("{e:#}")),
            };
            ((c, repo, n), out)
        },
    )
    .await;
    record(
        report,
        name,
        &format!("publish one GUN c{}", opts.publishers),
        lat,
        wall,
    );

    // Changefeed paging from the middle of the feed.
    let latest = client
        .get_path("/v2/_trust/changefeed?change_id=-1&records=1")
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&latest.body).context("changefeed JSON")?;
    let max_id: i64 = v["records"][0]["ID"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let path = format!("/v2/_trust/changefeed?change_id={}&records=100", max_id / 2);
    let states = vec![(client.clone(), path); 8];
    let (lat, wall) = drive(
        states,
        opts.phase / 2,
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
    record(report, name, "changefeed page of 100 c8", lat, wall);
    report.add("changefeed rows", Unit::Count, name, max_id as f64);

    // Everything written must still verify like a client would.
    client
        .pull(&gun)
        .await
        .context("final full verification of the main repository")?;
    Ok(())
}

/// Publishes one small target per operation, one task per repository.
pub async fn publish_phase(
    client: &TrustClient,
    repos: Vec<Repo>,
    phase: Duration,
) -> (Latencies, Duration) {
    let states: Vec<(TrustClient, Repo, u64)> =
        repos.into_iter().map(|r| (client.clone(), r, 0)).collect();
    drive(states, phase, |(c, mut repo, i)| async move {
        // Ten names, new content each time: the targets file keeps a constant size.
        let (name, _) = target((i % 10) as usize, "pub");
        let content = format!("published {i}").into_bytes();
        let out = match c.publish(&mut repo, &[(name, content)]).await {
            Ok(200) => Outcome::Ok,
            Ok(s) => Outcome::Err(format!("HTTP {s}")),
            Err(e) => Outcome::Err(format!("{e:#}")),
        };
        ((c, repo, i + 1), out)
    })
    .await
}
