//! Our notary-signer under load, over mutual-TLS gRPC exactly as notary-server talks to it,
//! with its keys in MariaDB (a key's first signature records `last_used`, later ones once a minute).
//!
//! - `sustains_1000_signs_per_second_for_a_minute` (ignored: it takes a minute):
//!   `cargo test -p notary-e2e --test signer_load -- --ignored --nocapture`
//!   Closed-loop load from 32 concurrent callers over 8 keys; every sign must succeed and
//!   every 10-second window must average at least 1,000 signatures per second.
//! - `sign_load_smoke` (CI): the same load for 5 seconds, no error allowed, signatures
//!   verified against the keys' public parts.
//! - `passphrase_alias_rotation_without_downtime` (CI): see that test's doc.
//!
//! Ports 27986-27989, databases `e2e_fault_signer_*`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notary_e2e::faults::{port_open, shared_sql, wait_until, Service, SharedDb};
use notary_e2e::{make_pki, our_bin, require};
use notary_proto::key_management_client::KeyManagementClient;
use notary_proto::signer_client::SignerClient;
use notary_proto::{CreateKeyRequest, KeyId, SignatureRequest};
use notary_tuf::keys::{KeyType, PublicKey, SignatureMethod};
use notary_tuf::metadata::Signature;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const KEYS: usize = 8;
const CONCURRENCY: usize = 32;
/// Roughly the size of a timestamp's canonical `signed` part.
const MESSAGE: &[u8] = &[b'm'; 400];

/// One of our signer processes on MariaDB, with its own config and port.
struct Signer {
    service: Service,
    port: u16,
}

/// Test PKI for the signer and its client (`certs/make-pki.sh`).
fn certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    make_pki(&certs);
    certs
}

impl Signer {
    /// Starts a signer on `port` whose default alias is `alias`; `passphrases` are the
    /// (alias, passphrase) pairs in its environment.
    fn start(
        dir: &Path,
        db: &SharedDb,
        port: u16,
        alias: &str,
        passphrases: &[(&str, &str)],
    ) -> Signer {
        let config = dir.join(format!("signer-{port}.json"));
        std::fs::write(
            &config,
            format!(
                r#"{{"server":{{"grpc_addr":"127.0.0.1:{port}","tls_cert_file":"certs/notary-signer.crt","tls_key_file":"certs/notary-signer.key","client_ca_file":"certs/root-ca.crt"}},
"logging":{{"level":"warn"}},"storage":{{"backend":"mysql","db_url":"{}","default_alias":"{alias}"}}}}"#,
                db.go_dsn()
            ),
        )
        .unwrap();
        assert!(!port_open(port), "port {port} is already in use");
        let env: Vec<(String, String)> = passphrases
            .iter()
            .map(|(a, p)| (format!("NOTARY_SIGNER_{}", a.to_uppercase()), p.to_string()))
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut service = Service::new(
            &format!("notary-signer-{port}"),
            &our_bin("notary-signer"),
            &["-config", config.to_str().unwrap()],
            &env,
            dir,
        );
        service.start();
        let up = wait_until(Duration::from_secs(60), || port_open(port));
        assert!(
            up,
            "signer on {port} did not come up\n{}",
            service.log_tail(30)
        );
        Signer { service, port }
    }

    async fn channel(&self, certs: &Path) -> Channel {
        let read = |f: &str| std::fs::read(certs.join(f)).unwrap();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read("root-ca.crt")))
            .identity(Identity::from_pem(
                read("notary-server-client.crt"),
                read("notary-server-client.key"),
            ))
            .domain_name("notary-signer");
        Channel::from_shared(format!("https://127.0.0.1:{}", self.port))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .expect("connect to the signer")
    }
}

/// Creates `KEYS` timestamp keys for distinct GUNs; returns (key ID, public key).
async fn create_keys(channel: &Channel, tag: &str) -> Vec<(String, PublicKey)> {
    let mut km = KeyManagementClient::new(channel.clone());
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let reply = km
            .create_key(CreateKeyRequest {
                algorithm: "ecdsa".into(),
                gun: format!("example.com/signer-load/{tag}/{i}"),
                role: "timestamp".into(),
            })
            .await
            .expect("CreateKey")
            .into_inner();
        let id = reply.key_info.unwrap().key_id.unwrap().id;
        keys.push((id, PublicKey::new(KeyType::Ecdsa, reply.public_key)));
    }
    keys
}

/// What a load run saw.
#[derive(Default)]
struct Outcome {
    /// Completion times (since start) of successful signatures.
    done: Vec<Duration>,
    /// Failures: (time since start, message).
    errors: Vec<(Duration, String)>,
}

impl Outcome {
    /// Signatures per second in each `window` of the run (full windows only).
    fn rates(&self, window: Duration, total: Duration) -> Vec<f64> {
        let n = (total.as_secs_f64() / window.as_secs_f64()).floor() as usize;
        let mut counts = vec![0usize; n];
        for t in &self.done {
            let i = (t.as_secs_f64() / window.as_secs_f64()) as usize;
            if i < n {
                counts[i] += 1;
            }
        }
        counts
            .into_iter()
            .map(|c| c as f64 / window.as_secs_f64())
            .collect()
    }
}

/// Signs from `CONCURRENCY` callers until `stop` is set (or `limit` elapses), spreading the
/// keys; the channel in `target` can be swapped while running. One signature in a hundred
/// is verified.
async fn drive(
    target: Arc<Mutex<Channel>>,
    keys: Vec<(String, PublicKey)>,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> Outcome {
    let start = Instant::now();
    let keys = Arc::new(keys);
    let mut tasks = Vec::new();
    for caller in 0..CONCURRENCY {
        let (target, keys, stop) = (target.clone(), keys.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut n = caller;
            while !stop.load(Ordering::SeqCst) && start.elapsed() < limit {
                let (id, public) = &keys[n % keys.len()];
                let channel = target.lock().unwrap().clone();
                let reply = SignerClient::new(channel)
                    .sign(SignatureRequest {
                        key_id: Some(KeyId { id: id.clone() }),
                        content: MESSAGE.to_vec(),
                    })
                    .await;
                match reply {
                    Ok(sig) => {
                        if n % 100 == 0 {
                            let sig = Signature {
                                keyid: id.clone(),
                                method: SignatureMethod::Ecdsa,
                                sig: sig.into_inner().content,
                            };
                            if let Err(e) =
                                notary_tuf::verify::verify_signature(MESSAGE, &sig, public)
                            {
                                out.errors
                                    .push((start.elapsed(), format!("bad signature: {e}")));
                            }
                        }
                        out.done.push(start.elapsed());
                    }
                    Err(status) => out.errors.push((start.elapsed(), status.to_string())),
                }
                n += CONCURRENCY;
            }
            out
        }));
    }
    let mut all = Outcome::default();
    for t in tasks {
        let o = t.await.expect("caller task");
        all.done.extend(o.done);
        all.errors.extend(o.errors);
    }
    all.done.sort();
    all
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the sign load against a fresh signer for `seconds`; returns the outcome.
fn steady_load(port: u16, seconds: u64) -> (Outcome, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let db = SharedDb::create("e2e_fault_signer");
    let signer = Signer::start(
        dir.path(),
        &db,
        port,
        "loadalias",
        &[("loadalias", "load-pw")],
    );
    let rt = runtime();
    let (outcome, elapsed) = rt.block_on(async {
        let channel = signer.channel(&certs).await;
        let keys = create_keys(&channel, "steady").await;
        let target = Arc::new(Mutex::new(channel));
        let limit = Duration::from_secs(seconds);
        let started = Instant::now();
        let o = drive(target, keys, Arc::new(AtomicBool::new(false)), limit).await;
        (o, started.elapsed().min(limit))
    });
    let n = outcome.done.len() as f64;
    eprintln!(
        "signer load: {} signatures in {:.1} s ({:.0}/s), {} errors",
        outcome.done.len(),
        elapsed.as_secs_f64(),
        n / elapsed.as_secs_f64(),
        outcome.errors.len()
    );
    assert!(
        outcome.errors.is_empty(),
        "{} errors, first: {:?}\n{}",
        outcome.errors.len(),
        outcome.errors.first(),
        signer.service.log_tail(20)
    );
    (outcome, elapsed)
}

#[test]
fn sign_load_smoke() {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    let (outcome, _) = steady_load(27986, 5);
    assert!(
        outcome.done.len() >= KEYS,
        "too few signatures to mean anything"
    );
}

#[test]
#[ignore = "takes a minute: cargo test -p notary-e2e --test signer_load -- --ignored --nocapture"]
fn sustains_1000_signs_per_second_for_a_minute() {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    let (outcome, elapsed) = steady_load(27987, 60);
    let rates = outcome.rates(Duration::from_secs(10), elapsed);
    eprintln!("signatures per second, per 10-second window: {rates:.0?}");
    assert_eq!(rates.len(), 6, "the run did not last a minute");
    for (i, r) in rates.iter().enumerate() {
        assert!(*r >= 1000.0, "window {i}: {r:.0} signatures/s (< 1000)");
    }
}

/// Passphrase alias rotation with no signing downtime.
///
/// "No downtime" means: at no point does a signing request fail.
/// 1. Signer 1 runs with default alias A (only A's passphrase in its environment) and signs
///    continuously with keys encrypted under A.
/// 2. `notary-signer rotate-alias --from A --to B` (a separate process with both
///    passphrases) re-encrypts every row under B while signer 1 keeps signing: signer 1
///    holds the decrypted keys in its cache, so it never needs to read the rows again.
/// 3. Signer 2 starts with default alias B and only B's passphrase: it loads the
///    re-encrypted rows and signs with the same keys. The load moves to signer 2.
/// 4. Signer 1 is stopped; signing continues on signer 2. Keys that signer 2 creates are
///    encrypted under B.
#[test]
fn passphrase_alias_rotation_without_downtime() {
    if require(&[&our_bin("notary-signer")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let db = SharedDb::create("e2e_fault_signer");
    let (a, b) = (
        ("rotalias1", "first-passphrase"),
        ("rotalias2", "second-passphrase"),
    );
    let mut first = Signer::start(dir.path(), &db, 27988, a.0, &[a]);
    let rt = runtime();
    let (channel, keys) = rt.block_on(async {
        let channel = first.channel(&certs).await;
        let keys = create_keys(&channel, "rotation").await;
        (channel, keys)
    });
    let aliases = |db: &SharedDb| {
        shared_sql(&format!(
            "SELECT passphrase_alias, COUNT(*) FROM `{}`.private_keys GROUP BY passphrase_alias",
            db.name
        ))
    };
    assert_eq!(aliases(&db).trim(), format!("{}\t{KEYS}", a.0));

    let target = Arc::new(Mutex::new(channel));
    let stop = Arc::new(AtomicBool::new(false));
    let load = rt.spawn(drive(
        target.clone(),
        keys.clone(),
        stop.clone(),
        Duration::from_secs(600),
    ));
    std::thread::sleep(Duration::from_secs(2));

    // 2. Re-encrypt under B while signer 1 signs.
    let config = dir.path().join("signer-27988.json");
    let out = std::process::Command::new(our_bin("notary-signer"))
        .args([
            "-config",
            config.to_str().unwrap(),
            "rotate-alias",
            "--from",
            a.0,
            "--to",
            b.0,
        ])
        .env(format!("NOTARY_SIGNER_{}", a.0.to_uppercase()), a.1)
        .env(format!("NOTARY_SIGNER_{}", b.0.to_uppercase()), b.1)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rotate-alias failed: {printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains(&format!("re-encrypted {KEYS} key(s)")),
        "{printed}"
    );
    assert_eq!(aliases(&db).trim(), format!("{}\t{KEYS}", b.0));
    std::thread::sleep(Duration::from_secs(2));

    // 3. Signer 2 with only the new passphrase takes over the load.
    let second = Signer::start(dir.path(), &db, 27989, b.0, &[b]);
    let (channel2, new_keys) = rt.block_on(async {
        let channel = second.channel(&certs).await;
        let new_keys = create_keys(&channel, "after-rotation").await;
        (channel, new_keys)
    });
    *target.lock().unwrap() = channel2.clone();
    std::thread::sleep(Duration::from_secs(2));

    // 4. Signer 1 goes away; signing continues.
    first.service.stop();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let outcome = rt.block_on(load).unwrap();
    eprintln!(
        "alias rotation: {} signatures, {} errors",
        outcome.done.len(),
        outcome.errors.len()
    );
    assert!(
        outcome.errors.is_empty(),
        "signing failed during the rotation: {:?}\n{}{}",
        &outcome.errors[..outcome.errors.len().min(5)],
        first.service.log_tail(20),
        second.service.log_tail(20)
    );
    assert!(!outcome.done.is_empty());

    // Signer 2 signs with the old keys and the new ones (encrypted under B).
    rt.block_on(async {
        let mut all = keys.clone();
        all.extend(new_keys);
        for (id, public) in &all {
            let sig = SignerClient::new(channel2.clone())
                .sign(SignatureRequest {
                    key_id: Some(KeyId { id: id.clone() }),
                    content: MESSAGE.to_vec(),
                })
                .await
                .expect("signer 2 signs")
                .into_inner();
            let sig = Signature {
                keyid: id.clone(),
                method: SignatureMethod::Ecdsa,
                sig: sig.content,
            };
            notary_tuf::verify::verify_signature(MESSAGE, &sig, public).expect("valid signature");
        }
    });
    assert_eq!(aliases(&db).trim(), format!("{}\t{}", b.0, 2 * KEYS));
    drop(second);
}
