//! Big repositories (issue 19): for each size, one GUN per server holding that many image
//! tags, written the way `docker trust` writes them (sha256 only, about 100 bytes a tag).
//!
//! - `GET targets.json` under wrk: throughput, bytes per second and the serving process's
//!   CPU per request, for every server and for nginx serving the same bytes;
//! - publishing one more tag: the update's latency (the POST alone, not the client's
//!   signing) and the server's peak RSS while it takes them;
//! - the bytes a pull moves: the stock `notary` CLI (the client library `docker pull`
//!   uses under content trust, with Go's `Accept-Encoding: gzip`) looks up one tag with a
//!   fresh trust directory, then again with a warm one, through a relay that counts the
//!   bytes on the wire.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

use crate::client::TrustClient;
use crate::harness::{cpu_ms, peak_rss_mib, reset_peak_rss, rss_mib, Server};
use crate::report::{Report, Unit};
use crate::{wrk, Latencies};

/// Parameters of the big-repository phase.
#[derive(Debug, Clone)]
pub struct BigOptions {
    /// Tags per repository, one run each.
    pub sizes: Vec<usize>,
    /// Publishes of one more tag, per size and server.
    pub publishes: usize,
    /// Length of each wrk phase.
    pub phase: Duration,
    /// wrk threads and connections.
    pub wrk_threads: usize,
    /// wrk connections.
    pub wrk_connections: usize,
    /// GUN prefix for this run.
    pub prefix: String,
    /// nginx: its URL, document root and master PID (its workers' CPU is counted).
    pub nginx: Option<(TrustClient, PathBuf, Option<u32>)>,
    /// The stock `notary` CLI and the CA file, for the bytes a pull moves.
    pub notary_cli: Option<(PathBuf, PathBuf)>,
}

/// Runs every size on every server, recording rows `big N: ...`.
pub async fn bench_big(servers: &[Server], opts: &BigOptions, report: &mut Report) -> Result<()> {
    for &n in &opts.sizes {
        for (i, server) in servers.iter().enumerate() {
            // One failing server (the Go server can crash) keeps the others' figures.
            if let Err(e) = one(server, n, i == 0, opts, report).await {
                eprintln!("  [{}] big {n}: stopped: {e:#}", server.name);
                report.add(&format!("big {n}: errors"), Unit::Count, &server.name, 1.0);
            }
        }
    }
    Ok(())
}

fn tag(i: usize) -> String {
    format!("v{i}")
}

async fn one(
    server: &Server,
    n: usize,
    mirror: bool,
    opts: &BigOptions,
    report: &mut Report,
) -> Result<()> {
    let name = server.name.as_str();
    let client = &server.client;
    let gun = format!("{}/{name}/big{n}", opts.prefix);
    eprintln!("[{name}] big {n}: publishing {n} tags to {gun}");
    let mut repo = client.init_repo(&gun, false).await?;
    repo.add_docker_tags(notary_tuf::roles::TARGETS, (0..n).map(tag));
    let parts = repo.stage(notary_tuf::roles::TARGETS, &[]);
    let upload: usize = parts.iter().map(|(_, b)| b.len()).sum();
    report.add(
        &format!("big {n}: upload of the first publish (bytes)"),
        Unit::Count,
        name,
        upload as f64,
    );
    // What one publish of the whole file adds to the server's resident memory: RSS before,
    // peak during (the allocator may keep the pages afterwards).
    let server_pid = server.server_pid();
    let rss_before = server_pid.and_then(|pid| {
        reset_peak_rss(pid);
        rss_mib(pid)
    });
    let r = client.post_update(&gun, &parts).await?;
    if r.status != 200 {
        bail!(
            "publishing {n} tags: HTTP {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    if let (Some(before), Some(peak)) = (rss_before, server_pid.and_then(peak_rss_mib)) {
        report.add(
            &format!("big {n}: server RSS growth, first publish"),
            Unit::MiB,
            name,
            peak - before,
        );
    }
    let body = client.get_file(&gun, "targets.json").await?;
    if body.status != 200 {
        bail!("GET targets.json: HTTP {}", body.status);
    }
    let size = body.body.len();
    report.add(
        &format!("big {n}: targets.json size (bytes)"),
        Unit::Count,
        name,
        size as f64,
    );

    // One more tag at a time; only the POST is timed. Before the GET load, whose response
    // buffers would otherwise stay in the peak.
    if let Some(pid) = server.server_pid() {
        reset_peak_rss(pid);
    }
    let mut lat = Latencies::default();
    for k in 0..opts.publishes {
        let parts = repo.stage(
            notary_tuf::roles::TARGETS,
            &[(format!("new/{k}"), format!("image {k}").into_bytes())],
        );
        let started = Instant::now();
        let r = client.post_update(&gun, &parts).await?;
        if r.status != 200 {
            bail!(
                "publishing one more tag: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        lat.ok(started.elapsed());
    }
    let p50 = lat.quantile(0.5).as_secs_f64() * 1e3;
    report.add(
        &format!("big {n}: publish one more tag p50"),
        Unit::Ms,
        name,
        p50,
    );
    let rss = server.server_pid().and_then(peak_rss_mib);
    if let Some(mib) = rss {
        report.add(
            &format!("big {n}: peak RSS server while publishing"),
            Unit::MiB,
            name,
            mib,
        );
    }
    eprintln!(
        "  [{name}] big {n}: publish one more tag p50 {p50:.1} ms over {}, peak RSS {}",
        opts.publishes,
        rss.map_or("-".into(), |m| format!("{m:.1} MiB"))
    );

    if mirror {
        if let Some((nginx, root, master)) = &opts.nginx {
            let path = format!("v2/{gun}/_trust/tuf/targets.json");
            let file = root.join(&path);
            std::fs::create_dir_all(file.parent().expect("has a parent"))?;
            std::fs::write(&file, &body.body).with_context(|| format!("writing {file:?}"))?;
            let url = format!("{}/{path}", nginx.url());
            let pids = master.map(nginx_workers).unwrap_or_default();
            get_phase(report, "nginx", n, size, &url, &pids, opts).await?;
        }
    }
    let url = client.tuf_url(&gun, "targets.json");
    let pids: Vec<u32> = server.server_pid().into_iter().collect();
    if let Some(pid) = server.server_pid() {
        reset_peak_rss(pid);
    }
    get_phase(report, name, n, size, &url, &pids, opts).await?;
    if let Some(mib) = server.server_pid().and_then(peak_rss_mib) {
        report.add(
            &format!("big {n}: peak RSS server under GET load"),
            Unit::MiB,
            name,
            mib,
        );
    }

    if let Some((cli, ca)) = &opts.notary_cli {
        pull_bytes(report, name, n, client.url(), &gun, cli, ca).await?;
    }
    Ok(())
}

/// wrk on one URL, with the CPU the serving processes spent per request.
async fn get_phase(
    report: &mut Report,
    name: &str,
    n: usize,
    size: usize,
    url: &str,
    pids: &[u32],
    opts: &BigOptions,
) -> Result<()> {
    if !wrk::available() {
        return Ok(());
    }
    let before: f64 = pids.iter().filter_map(|p| cpu_ms(*p)).sum();
    let c = opts.wrk_connections;
    let r = wrk::run_blocking(url, opts.wrk_threads, c, opts.phase).await?;
    let after: f64 = pids.iter().filter_map(|p| cpu_ms(*p)).sum();
    let row = format!("big {n}: GET targets.json wrk c{c}");
    report.add(&format!("{row} throughput"), Unit::PerSec, name, r.rps);
    report.add(
        &format!("{row} p99"),
        Unit::Ms,
        name,
        r.p99.as_secs_f64() * 1e3,
    );
    let mbps = r.rps * size as f64 / 1e6;
    report.add(&format!("{row} body bytes"), Unit::MBPerSec, name, mbps);
    let mut cpu = None;
    if !pids.is_empty() && r.requests > 0 {
        let us = (after - before) * 1e3 / r.requests as f64;
        report.add(&format!("{row} server CPU per request"), Unit::Us, name, us);
        cpu = Some(us);
    }
    if r.errors > 0 {
        report.add(&format!("{row} errors"), Unit::Count, name, r.errors as f64);
    }
    eprintln!(
        "  [{name}] big {n}: GET targets.json ({size} bytes) {:.0}/s, {mbps:.0} MB/s, p99 {:.1} ms, CPU {} per request, {} errors",
        r.rps,
        r.p99.as_secs_f64() * 1e3,
        cpu.map_or("-".into(), |us| format!("{us:.0} us")),
        r.errors
    );
    Ok(())
}

/// nginx's worker processes (the children of its master).
fn nginx_workers(master: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The bytes a pull moves with the stock client: `notary lookup` of one tag, with a fresh
/// trust directory (a new machine) and again with the same one (a repeat pull).
async fn pull_bytes(
    report: &mut Report,
    name: &str,
    n: usize,
    server_url: &str,
    gun: &str,
    cli: &Path,
    ca: &Path,
) -> Result<()> {
    let upstream = server_url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("server URL {server_url} is not https"))?
        .trim_end_matches('/')
        .to_string();
    let relay = Relay::start(upstream).await?;
    let trust_dir = std::env::temp_dir().join(format!(
        "notary-bench-pull-{}-{name}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&trust_dir);
    for (row, label) in [("fresh trust dir", "first"), ("warm trust dir", "repeat")] {
        let before = relay.to_client.load(Ordering::SeqCst);
        let out = tokio::process::Command::new(cli)
            .arg("-s")
            .arg(format!("https://{}", relay.addr))
            .arg("-d")
            .arg(&trust_dir)
            .arg("--tlscacert")
            .arg(ca)
            .arg("lookup")
            .arg(gun)
            .arg(tag(n / 2))
            .output()
            .await
            .with_context(|| format!("running {cli:?}"))?;
        if !out.status.success() {
            bail!(
                "notary lookup ({label} pull): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The CLI has exited, so its connections are closed and counted.
        relay.settle().await;
        let bytes = relay.to_client.load(Ordering::SeqCst) - before;
        report.add(
            &format!("big {n}: bytes to the client, notary lookup, {row}"),
            Unit::Count,
            name,
            bytes as f64,
        );
        eprintln!("  [{name}] big {n}: {label} pull moved {bytes} bytes to the client");
    }
    let _ = std::fs::remove_dir_all(&trust_dir);
    Ok(())
}

/// A TCP relay on 127.0.0.1 that counts the bytes it forwards (TLS passes through as is).
struct Relay {
    addr: std::net::SocketAddr,
    to_client: Arc<AtomicU64>,
    open: Arc<AtomicU64>,
}

impl Relay {
    async fn start(upstream: String) -> Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let to_client = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let (counted, opened) = (to_client.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let (counted, opened) = (counted.clone(), opened.clone());
                opened.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        if let Ok((_, down)) = copy_bidirectional(&mut inbound, &mut outbound).await
                        {
                            counted.fetch_add(down, Ordering::SeqCst);
                        }
                    }
                    opened.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Relay {
            addr,
            to_client,
            open,
        })
    }

    /// Waits until every relayed connection has closed (at most 5 s).
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
