//! Benchmarks notary servers (ours, the Go reference, any URL) side by side, as real clients
//! would use them. `scripts/bench.sh` starts everything and runs `compare`.
//!
//! ```text
//! notary-bench smoke   --url https://127.0.0.1:4443 --ca root-ca.crt [--server-snapshot]
//! notary-bench compare --ca root-ca.crt --target ours=https://127.0.0.1:24471 \
//!     --target go=https://127.0.0.1:24472 [--pids ours=SERVER_PID:SIGNER_PID ...] \
//!     [--nginx https://127.0.0.1:24473 --nginx-root DIR] [--seconds 8] ...
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use notary_bench::bigrepo::{self, BigOptions};
use notary_bench::client::TrustClient;
use notary_bench::harness::{self, Options, PidSource, Server};
use notary_bench::report::Report;

#[derive(Parser)]
#[command(about = "Benchmarks notary servers side by side")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates a repository, publishes, delegates, and pulls with full verification.
    Smoke {
        /// Server URL.
        #[arg(long)]
        url: String,
        /// CA certificate (PEM) of the server.
        #[arg(long)]
        ca: PathBuf,
        /// Server-managed snapshot (docker style).
        #[arg(long)]
        server_snapshot: bool,
    },
    /// Runs every benchmark against each target and prints the table with ratios.
    Compare {
        /// CA certificate (PEM) trusted for every target and nginx.
        #[arg(long)]
        ca: PathBuf,
        /// `name=url`; the names `ours` and `go` give the ratio column.
        #[arg(long = "target", required = true)]
        servers: Vec<String>,
        /// `name=server:signer`, each a PID or a PID file (re-read at each use), for peak
        /// RSS and CPU.
        #[arg(long)]
        pids: Vec<String>,
        /// nginx URL serving `--nginx-root` over TLS (baseline for GETs).
        #[arg(long, requires = "nginx_root")]
        nginx: Option<String>,
        /// Document root of that nginx; the benchmark writes the served files there.
        #[arg(long)]
        nginx_root: Option<PathBuf>,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// wrk connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// wrk threads.
        #[arg(long, default_value_t = 2)]
        wrk_threads: usize,
        /// Concurrent pullers.
        #[arg(long, default_value_t = 16)]
        pullers: usize,
        /// Concurrent publishers.
        #[arg(long, default_value_t = 16)]
        publishers: usize,
        /// Targets in the main repository.
        #[arg(long = "targets", default_value_t = 100)]
        n_targets: usize,
        /// Repositories for the pull benchmark.
        #[arg(long, default_value_t = 16)]
        pull_guns: usize,
        /// Server-managed snapshots (docker style) instead of client-signed ones.
        #[arg(long)]
        server_snapshot: bool,
        /// Big repositories: tags per repository, comma-separated (e.g. 100,10000,100000);
        /// empty for none.
        #[arg(long, value_delimiter = ',')]
        big: Vec<usize>,
        /// Only the big-repository figures (skips the main benchmark).
        #[arg(long, requires = "big")]
        big_only: bool,
        /// Publishes of one more tag per big repository.
        #[arg(long, default_value_t = 10)]
        big_publishes: usize,
        /// The database server's PID or PID file, for its CPU per publish.
        #[arg(long)]
        db_pid: Option<String>,
        /// nginx's master PID, for its workers' CPU per request.
        #[arg(long)]
        nginx_pid: Option<u32>,
        /// The stock `notary` CLI, for the bytes a pull of a big repository moves.
        #[arg(long)]
        notary_cli: Option<PathBuf>,
    },
    /// Only the publish load: one publisher per new GUN, for `--seconds`.
    Publish {
        /// Server URL.
        #[arg(long)]
        url: String,
        /// CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// Concurrent publishers, each on its own GUN.
        #[arg(long, default_value_t = 16)]
        publishers: usize,
        /// Seconds to publish for.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// Server-managed snapshots (docker style).
        #[arg(long)]
        server_snapshot: bool,
    },
    /// Loads GUNs `<prefix>/<from>` .. `<prefix>/<to - 1>` straight into a server database.
    Load {
        /// Server database, `mysql://user:password@host:port/database`.
        #[arg(long)]
        db: String,
        /// GUN prefix.
        #[arg(long, default_value = "bench/scale")]
        prefix: String,
        /// First index.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// One past the last index.
        #[arg(long)]
        to: u64,
        /// Concurrent writes.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
    },
    /// Figures at 1,000 GUNs, then after loading up to `--guns` GUNs, side by side.
    Scale {
        /// Server URL (its database is `--db`).
        #[arg(long)]
        url: String,
        /// CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// The server's database, `mysql://...`.
        #[arg(long)]
        db: String,
        /// GUNs at the large scale.
        #[arg(long, default_value_t = 100_000)]
        guns: u64,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
    },
    /// How long another server process on the same database serves the old timestamp
    /// after a publish was accepted (the cache's cross-replica staleness).
    Staleness {
        /// The replica that accepts the publishes.
        #[arg(long)]
        writer: String,
        /// Another server process on the same database.
        #[arg(long)]
        reader: String,
        /// CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// Publishes to measure.
        #[arg(long, default_value_t = 40)]
        rounds: usize,
    },
}

fn run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("bench/{}-{ms}", std::process::id())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Smoke {
            url,
            ca,
            server_snapshot,
        } => {
            let client = TrustClient::new(&url, &std::fs::read(&ca).context("reading --ca")?)?;
            let gun = format!("{}/smoke", run_id());
            let mut repo = client.init_repo(&gun, server_snapshot).await?;
            let t = vec![("hello".to_string(), b"hello world".to_vec())];
            expect(client.publish(&mut repo, &t).await?, "publish")?;
            expect(
                client
                    .add_delegation(&mut repo, "targets/releases", &[""])
                    .await?,
                "add delegation",
            )?;
            expect(
                client
                    .publish_role(&mut repo, "targets/releases", &t)
                    .await?,
                "publish into delegation",
            )?;
            client.pull(&gun).await?;
            println!("smoke: {gun} created, published, delegated and verified on {url}");
            Ok(())
        }
        Cmd::Compare {
            ca,
            servers: targets,
            pids,
            nginx,
            nginx_root,
            seconds,
            connections,
            wrk_threads,
            pullers,
            publishers,
            n_targets,
            pull_guns,
            server_snapshot,
            big,
            big_only,
            big_publishes,
            db_pid,
            nginx_pid,
            notary_cli,
        } => {
            let ca_path = ca.clone();
            let ca = std::fs::read(&ca).context("reading --ca")?;
            let mut servers = Vec::new();
            for t in &targets {
                let (name, url) = t
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--target wants name=url, got {t}"))?;
                let (mut server_pid, mut signer_pid) = (None, None);
                for p in &pids {
                    if let Some(rest) = p.strip_prefix(&format!("{name}=")) {
                        let (a, b) = rest
                            .split_once(':')
                            .ok_or_else(|| anyhow!("--pids wants name=server:signer"))?;
                        server_pid = Some(PidSource::parse(a));
                        signer_pid = Some(PidSource::parse(b));
                    }
                }
                servers.push(Server {
                    name: name.to_string(),
                    client: TrustClient::new(url, &ca)?,
                    server_pid,
                    signer_pid,
                });
            }
            let nginx = match (nginx, nginx_root) {
                (Some(url), Some(root)) => Some((TrustClient::new(&url, &ca)?, root)),
                _ => None,
            };
            let base = run_id();
            let mut report = Report::default();
            let mut names: Vec<&str> = Vec::new();
            let mut failures: Vec<String> = Vec::new();
            for (i, server) in servers.iter().enumerate() {
                let opts = Options {
                    phase: Duration::from_secs(seconds),
                    wrk_connections: connections,
                    wrk_threads,
                    pullers,
                    publishers,
                    targets: n_targets,
                    pull_guns,
                    prefix: format!("{base}/{}", server.name),
                    server_snapshot,
                    // nginx mirrors the first server's bytes.
                    nginx: if i == 0 { nginx.clone() } else { None },
                    db_pid: db_pid.as_deref().map(PidSource::parse),
                };
                // A server that fails mid-run (the Go server can crash under concurrent
                // publishes) keeps the figures measured so far; the failure is reported
                // under the table instead of losing the whole run.
                if big_only {
                    names.push(&server.name);
                    continue;
                }
                if let Err(e) = harness::bench_server(server, &opts, &mut report).await {
                    eprintln!("benchmarking {} stopped: {e:#}", server.name);
                    failures.push(format!("{}: {e:#}", server.name));
                }
                names.push(&server.name);
            }
            if !big.is_empty() {
                let opts = BigOptions {
                    sizes: big.clone(),
                    publishes: big_publishes,
                    phase: Duration::from_secs(seconds),
                    wrk_threads,
                    wrk_connections: connections,
                    prefix: format!("{base}/big"),
                    nginx: nginx.clone().map(|(c, root)| (c, root, nginx_pid)),
                    notary_cli: notary_cli.map(|cli| (cli, ca_path.clone())),
                };
                bigrepo::bench_big(&servers, &opts, &mut report).await?;
            }
            if nginx.is_some() {
                names.push("nginx");
            }
            println!(
                "\n# notary-bench: {seconds}s phases, wrk {wrk_threads} threads x {connections} connections, \
                 {pullers} pullers, {publishers} publishers, {n_targets} targets, {} snapshot\n",
                if server_snapshot { "server-managed" } else { "client-signed" }
            );
            print!("{}", report.render(&names));
            for failure in &failures {
                println!("\nSTOPPED EARLY, later rows missing: {failure}");
            }
            Ok(())
        }
        Cmd::Publish {
            url,
            ca,
            publishers,
            seconds,
            server_snapshot,
        } => {
            let client = TrustClient::new(&url, &std::fs::read(&ca).context("reading --ca")?)?;
            let base = run_id();
            let mut repos = Vec::new();
            for i in 0..publishers {
                repos.push(
                    client
                        .init_repo(&format!("{base}/publish/{i}"), server_snapshot)
                        .await?,
                );
            }
            let (lat, wall) =
                harness::publish_phase(&client, repos, Duration::from_secs(seconds)).await;
            let mut report = Report::default();
            harness::record(
                &mut report,
                "ours",
                &format!("publish c{publishers}"),
                lat,
                wall,
            );
            Ok(())
        }
        Cmd::Load {
            db,
            prefix,
            from,
            to,
            parallel,
        } => {
            let took = notary_bench::scale::load(&db, &prefix, from, to, parallel).await?;
            println!(
                "loaded {} GUNs under {prefix}/ in {:.1}s ({:.0}/s)",
                to - from,
                took.as_secs_f64(),
                (to - from) as f64 / took.as_secs_f64()
            );
            Ok(())
        }
        Cmd::Scale {
            url,
            ca,
            db,
            guns,
            seconds,
        } => {
            let ca = std::fs::read(&ca).context("reading --ca")?;
            scale(&url, &ca, &db, guns, seconds).await
        }
        Cmd::Staleness {
            writer,
            reader,
            ca,
            rounds,
        } => {
            let ca = std::fs::read(&ca).context("reading --ca")?;
            let w = TrustClient::new(&writer, &ca)?;
            let r = TrustClient::new(&reader, &ca)?;
            let gun = format!("{}/staleness", run_id());
            let delays = notary_bench::scale::staleness(&w, &r, &gun, rounds).await?;
            let mut lat = notary_bench::Latencies::default();
            for d in &delays {
                lat.ok(*d);
            }
            let max = delays.iter().max().copied().unwrap_or_default();
            println!(
                "staleness across replicas over {} publishes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                delays.len(),
                lat.quantile(0.5).as_secs_f64() * 1e3,
                lat.quantile(0.99).as_secs_f64() * 1e3,
                max.as_secs_f64() * 1e3
            );
            Ok(())
        }
    }
}

async fn scale(url: &str, ca: &[u8], db: &str, guns: u64, seconds: u64) -> Result<()> {
    use notary_bench::scale;
    let client = TrustClient::new(url, ca)?;
    let prefix = format!("{}/scale", run_id());
    let phase = Duration::from_secs(seconds);
    let mut report = Report::default();
    let small = 1000.min(guns);
    let took = scale::load(db, &prefix, 0, small, 32).await?;
    eprintln!("[scale] loaded {small} GUNs in {:.1}s", took.as_secs_f64());
    let small_col = format!("{small}");
    scale::measure(&client, &prefix, small, phase, &small_col, &mut report).await?;
    let took = scale::load(db, &prefix, small, guns, 32).await?;
    eprintln!(
        "[scale] loaded {} more GUNs in {:.1}s ({:.0}/s)",
        guns - small,
        took.as_secs_f64(),
        (guns - small) as f64 / took.as_secs_f64()
    );
    report.add(
        "load rate (GUNs/s)",
        notary_bench::report::Unit::PerSec,
        &format!("{guns}"),
        (guns - small) as f64 / took.as_secs_f64(),
    );
    let big_col = format!("{guns}");
    scale::measure(&client, &prefix, guns, phase, &big_col, &mut report).await?;
    println!("\n# notary-bench scale: ours at {small} vs {guns} GUNs, {seconds}s phases\n");
    print!(
        "{}",
        report.render_ratios(&[&small_col, &big_col], &[(&big_col, &small_col)])
    );
    Ok(())
}

fn expect(status: u16, what: &str) -> Result<()> {
    if status != 200 {
        bail!("{what}: HTTP {status}");
    }
    Ok(())
}
