//! Drives any notary-signer (ours or Go's) over gRPC with mutual TLS and prints sign latency
//! and key-creation rate.
//!
//! `signer-bench --addr 127.0.0.1:7899 --ca root-ca.crt --cert client.crt --key client.key
//!  [--domain notary-signer] [--concurrency 8] [--seconds 10] [--algorithm ecdsa]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use notary_bench::Latencies;
use notary_proto::key_management_client::KeyManagementClient;
use notary_proto::signer_client::SignerClient;
use notary_proto::{CreateKeyRequest, KeyId, SignatureRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

#[derive(Parser)]
struct Args {
    /// Signer address host:port.
    #[arg(long)]
    addr: String,
    /// CA that signed the signer's certificate.
    #[arg(long)]
    ca: String,
    /// Client certificate (PEM).
    #[arg(long)]
    cert: String,
    /// Client key (PEM).
    #[arg(long)]
    key: String,
    /// TLS server name to verify.
    #[arg(long, default_value = "notary-signer")]
    domain: String,
    /// Concurrent in-flight requests.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Key algorithm (ecdsa | ed25519).
    #[arg(long, default_value = "ecdsa")]
    algorithm: String,
    /// Label printed in front of each line.
    #[arg(long, default_value = "signer")]
    label: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(&args.ca).context("reading --ca")?,
        ))
        .identity(Identity::from_pem(
            std::fs::read(&args.cert).context("reading --cert")?,
            std::fs::read(&args.key).context("reading --key")?,
        ))
        .domain_name(args.domain.clone());
    let channel = Channel::from_shared(format!("https://{}", args.addr))?
        .tls_config(tls)?
        .connect()
        .await
        .context("connecting to the signer")?;
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let phase = Duration::from_secs(args.seconds);

    // Phase 1: key creation, every call for a distinct GUN so no pending key is reused.
    let counter = Arc::new(AtomicU64::new(0));
    let (ch, alg, run_id) = (channel.clone(), args.algorithm.clone(), run.clone());
    let (lat, wall) = drive(args.concurrency, phase, move |_| {
        let mut km = KeyManagementClient::new(ch.clone());
        let counter = counter.clone();
        let run = run_id.clone();
        let alg = alg.clone();
        async move {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            km.create_key(CreateKeyRequest {
                algorithm: alg,
                gun: format!("bench/{run}/{n}"),
                role: "timestamp".into(),
            })
            .await
            .map(|_| ())
        }
    })
    .await;
    println!("{}", report(&args.label, "create-key", lat, wall));

    // Phase 2: signing ~400 bytes (the size of a timestamp's signed part) with one key.
    let mut km = KeyManagementClient::new(channel.clone());
    let key = km
        .create_key(CreateKeyRequest {
            algorithm: args.algorithm.clone(),
            gun: format!("bench/{run}/sign"),
            role: "timestamp".into(),
        })
        .await?
        .into_inner();
    let key_id = key
        .key_info
        .and_then(|k| k.key_id)
        .map(|k| k.id)
        .context("CreateKey returned no key ID")?;
    let content = vec![b'x'; 400];
    let ch = channel.clone();
    let (lat, wall) = drive(args.concurrency, phase, move |_| {
        let mut s = SignerClient::new(ch.clone());
        let req = SignatureRequest {
            key_id: Some(KeyId { id: key_id.clone() }),
            content: content.clone(),
        };
        async move { s.sign(req).await.map(|_| ()) }
    })
    .await;
    println!("{}", report(&args.label, "sign", lat, wall));
    Ok(())
}

fn report(label: &str, phase: &str, mut lat: Latencies, wall: Duration) -> String {
    format!("{label} {}", lat.report(phase, wall))
}

/// Runs `op` from `concurrency` tasks until `phase` has elapsed.
async fn drive<F, Fut>(concurrency: usize, phase: Duration, op: F) -> (Latencies, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::Status>> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let mut reported = false;
            while start.elapsed() < phase {
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => lat.ok(t.elapsed()),
                    Err(e) => {
                        if !reported {
                            eprintln!("error: {e}");
                            reported = true;
                        }
                        lat.err()
                    }
                }
            }
            lat
        }));
    }
    let mut all = Latencies::default();
    for t in tasks {
        all.merge(t.await.expect("bench task"));
    }
    (all, start.elapsed())
}
