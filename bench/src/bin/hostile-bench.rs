//! Worst-case inputs of the security review (issue 13), sent one at a time to a running
//! notary-server whose PID is known, with the server's CPU time and peak RSS for each.
//! `scripts/bench-hostile.sh` starts a fresh server per case and runs this.
//!
//! ```text
//! hostile-bench --url https://127.0.0.1:24481 --ca root-ca.crt --pid 1234 --case x5c
//! ```
//!
//! Cases:
//! - `x5c`: a token whose `x5c` holds a leaf and `--cas` CA certificates that share one
//!   name and key (distinct serials), so every CA looks like the parent of every other.
//!   The server must refuse it (401) after a bounded number of signature checks.
//! - `many-parts`: a ~99 MiB upload of tiny distinct delegation parts.
//! - `zeros`: a ~99 MiB upload whose one part holds an array of zeros inside `signed`.
//! - `redirect`: `GET /%5Cevil.com//`; the `Location` must not leave the server.
//! - `changefeed`: `GET /v2/_trust/changefeed?records=<huge>`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use clap::Parser;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SerialNumber};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Sends one worst-case request and reports the server's CPU and peak RSS")]
struct Cli {
    /// Server URL.
    #[arg(long)]
    url: String,
    /// CA certificate (PEM) of the server.
    #[arg(long)]
    ca: PathBuf,
    /// PID of the notary-server process (CPU time and peak RSS are read from /proc).
    #[arg(long)]
    pid: u32,
    /// x5c | many-parts | zeros | redirect | changefeed
    #[arg(long)]
    case: String,
    /// CA certificates in the hostile x5c chain.
    #[arg(long, default_value_t = 10)]
    cas: u32,
    /// Token issuer and service the server is configured with (x5c case).
    #[arg(long, default_value = "hostile-bench-issuer")]
    issuer: String,
    #[arg(long, default_value = "hostile-bench-service")]
    service: String,
    /// Upload size for the upload cases (the server's default limit is 100 MiB).
    #[arg(long, default_value_t = 99 << 20)]
    body_bytes: usize,
    /// Give up waiting for the answer after this many seconds (the server may still be
    /// busy: the script kills it after each case).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// CPU seconds (user + system, all threads) of a process.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("bad /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // CLK_TCK is 100 on Linux x86_64 and aarch64.
    Ok(ticks as f64 / 100.0)
}

/// Peak resident set (VmHWM) in MiB.
fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kib: f64 = line.split_whitespace().nth(1).context("VmHWM")?.parse()?;
    Ok(kib / 1024.0)
}

/// Resets the peak RSS so the case's own peak is measured (Linux: `5` to clear_refs).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWS whose x5c makes a naive depth-first path search explode.
fn hostile_token(cli: &Cli) -> Result<String> {
    let ca_key = KeyPair::generate()?;
    let mut x5c = Vec::new();
    let mut first_ca = None;
    for serial in 0..cli.cas {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name
            .push(DnType::CommonName, "hostile-bench CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.serial_number = Some(SerialNumber::from(u64::from(serial) + 1));
        let cert = p.self_signed(&ca_key)?;
        x5c.push(STANDARD.encode(cert.der()));
        first_ca.get_or_insert(p);
    }
    let issuer = rcgen::Issuer::new(first_ca.context("--cas must be at least 1")?, &ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    leaf.distinguished_name
        .push(DnType::CommonName, "hostile-bench token signer");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    x5c.insert(0, STANDARD.encode(leaf_cert.der()));

    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": x5c});
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": cli.issuer, "aud": cli.service, "sub": "attacker",
        "iat": now, "nbf": now - 10, "exp": now + 300, "jti": "hostile",
        "access": [{"type": "repository", "name": "hostile/app", "actions": ["pull"]}],
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = leaf_key.serialize_der();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &rng,
    )
    .map_err(|e| anyhow::anyhow!("leaf key: {e}"))?;
    let sig = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|e| anyhow::anyhow!("sign: {e}"))?;
    Ok(format!("{signing_input}.{}", b64url(sig.as_ref())))
}

const BOUNDARY: &str = "hostilebenchboundary";

/// Many tiny parts, each a distinct delegation role holding `{}`.
fn many_parts_body(limit: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(limit + 256);
    let mut i = 0u64;
    loop {
        let part = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets/p{i}\"\r\n\r\n{{}}\r\n"
        );
        if body.len() + part.len() + BOUNDARY.len() + 8 > limit {
            break;
        }
        body.extend_from_slice(part.as_bytes());
        i += 1;
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// One targets part whose `signed` carries an array of zeros filling the body.
fn zeros_body(limit: usize) -> Vec<u8> {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n\
         {{\"signed\":{{\"_type\":\"Targets\",\"expires\":\"2030-01-01T00:00:00Z\",\"version\":1,\"zeros\":[0"
    );
    let tail = format!("]}},\"signatures\":[]}}\r\n--{BOUNDARY}--\r\n");
    let mut body = Vec::with_capacity(limit + 256);
    body.extend_from_slice(head.as_bytes());
    while body.len() + 2 + tail.len() <= limit {
        body.extend_from_slice(b",0");
    }
    body.extend_from_slice(tail.as_bytes());
    body
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cli.ca)?)?;
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(cli.timeout))
        .build()?;
    let url = cli.url.trim_end_matches('/');
    let upload = format!("{url}/v2/hostile/app/_trust/tuf/");
    let multipart = format!("multipart/form-data; boundary={BOUNDARY}");

    let request = match cli.case.as_str() {
        "x5c" => client
            .get(format!("{url}/v2/hostile/app/_trust/tuf/root.json"))
            .bearer_auth(hostile_token(&cli)?),
        "many-parts" => client
            .post(&upload)
            .header("Content-Type", &multipart)
            .body(many_parts_body(cli.body_bytes)),
        "zeros" => client
            .post(&upload)
            .header("Content-Type", &multipart)
            .body(zeros_body(cli.body_bytes)),
        // `/.` would be normalised away by the URL parser; `//` is kept and is just as unclean.
        "redirect" => client.get(format!("{url}/%5Cevil.com//")),
        "changefeed" => client.get(format!(
            "{url}/v2/_trust/changefeed?change_id=0&records=2000000000"
        )),
        other => bail!("unknown case {other}"),
    };

    reset_peak(cli.pid);
    let cpu0 = cpu_seconds(cli.pid)?;
    let start = Instant::now();
    let answer = request.send().await;
    let (outcome, detail) = match answer {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.text().await.unwrap_or_default();
            let code = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_owned));
            let detail = match (location, code) {
                (Some(l), _) => format!("Location: {l}"),
                (None, Some(c)) => c,
                (None, None) => format!("{} body bytes", body.len()),
            };
            (status.to_string(), detail)
        }
        Err(e) if e.is_timeout() => (
            "timeout".to_owned(),
            format!("no answer within {} s", cli.timeout),
        ),
        Err(e) => ("error".to_owned(), e.to_string()),
    };
    let wall = start.elapsed();
    // Let work the answer did not wait for (e.g. after a 408/413) show up in the CPU figure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu_seconds(cli.pid).map(|c| c - cpu0);
    let rss = peak_rss_mib(cli.pid);
    println!(
        "{:<11} {:>8} {:>10.0} {:>14} {:>14}  {}",
        cli.case,
        outcome,
        wall.as_secs_f64() * 1000.0,
        cpu.map(|c| format!("{:.0}", c * 1000.0))
            .unwrap_or_else(|_| "exited".into()),
        rss.map(|r| format!("{r:.1}"))
            .unwrap_or_else(|_| "exited".into()),
        detail
    );
    Ok(())
}
