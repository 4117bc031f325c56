//! Fault injection against real processes: our notary-server and notary-signer (release
//! binaries), MariaDB, and a client that publishes like the stock ones
//! (`notary_bench::client::TrustClient`, real keys and signatures).
//!
//! - `kill -9` of the server during ~1,000 concurrent publishes: after a restart every
//!   acknowledged publish is there and every GUN verifies, with our client and with the
//!   stock `notary` CLI.
//! - A (private) MariaDB stopped and restarted under load: 503 `UNAVAILABLE` while it is
//!   down, recovery without restarting the server. A publish caught by the shutdown can be
//!   committed although its answer is a 503 (the reply to COMMIT is lost), so the load's
//!   publishers re-read their GUN after any failed publish, as the stock client does.
//! - The signer stopped: unexpired metadata is still served, signing writes get 503, and
//!   the server recovers when the signer is back.
//! - Racing publishers on one GUN: exactly one winner per version, no torn state.
//!
//! Ports 24481-24489 (server) and 27981-27989 (signer); databases `e2e_fault_*`. Needs what
//! every e2e test needs (see the crate docs) plus `mariadb-install-db`/`mariadbd` for the
//! private MariaDB, which listens on 127.0.0.1:3307.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notary_bench::client::{Reply, Repo, TrustClient, Verify};
use notary_e2e::faults::{wait_until, OwnStack, PrivateMariaDb, ServerDb, SharedDb};
use notary_e2e::{our_bin, random_suffix, require, NotaryCli};
use notary_tuf::metadata::check_hashes;
use notary_tuf::SignedFile;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn prerequisites() -> bool {
    require(&[&our_bin("notary-server"), &our_bin("notary-signer")])
}

fn client(stack: &OwnStack) -> TrustClient {
    TrustClient::new(&stack.url, &stack.ca_pem()).expect("client")
}

/// The `targets` version a stored targets file carries.
fn targets_version(bytes: &[u8]) -> i64 {
    SignedFile::parse(bytes)
        .expect("targets parses")
        .common
        .version
}

/// The `code` of a Notary error envelope, if the body is one.
fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["errors"][0]["code"].as_str().map(str::to_owned)
}

/// Per GUN: the targets files the server acknowledged (version → bytes), and the version
/// of a publish whose outcome is unknown (in flight when the server died).
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<i64, Vec<u8>>,
    in_doubt: Option<i64>,
}

#[test]
fn kill_9_during_concurrent_publishes_loses_no_acknowledged_publish() {
    if prerequisites() {
        return;
    }
    const GUNS: usize = 50;
    const PUBLISHES: usize = 20;
    const IN_FLIGHT: usize = 32;
    let db = SharedDb::create("e2e_fault_kill");
    let mut stack = OwnStack::start(24481, 27981, ServerDb::Mysql(db.go_dsn()));
    let rt = runtime();
    let trust = client(&stack);
    let prefix = format!("example.com/fault/kill/{}", random_suffix());

    // 50 repositories, a fifth of them with a server-managed snapshot.
    let repos: Vec<Repo> = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..GUNS {
            let (c, gun) = (trust.clone(), format!("{prefix}/{i}"));
            tasks.push(tokio::spawn(
                async move { c.init_repo(&gun, i % 5 == 0).await },
            ));
        }
        let mut repos = Vec::new();
        for t in tasks {
            repos.push(t.await.unwrap().expect("init"));
        }
        repos
    });
    let server_pid = stack.server.pid().expect("server pid");

    // 50 x 20 publishes, at most 32 in flight; kill -9 once a third have been acknowledged.
    let acked_total = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..GUNS).map(|_| Arc::default()).collect();
    let killer = {
        let (acked_total, killed) = (acked_total.clone(), killed.clone());
        std::thread::spawn(move || {
            let reached = wait_until(Duration::from_secs(600), || {
                acked_total.load(Ordering::SeqCst) >= GUNS * PUBLISHES / 3
            });
            notary_e2e::faults::signal(server_pid, "-KILL");
            killed.store(true, Ordering::SeqCst);
            reached
        })
    };
    let finals: Vec<Repo> = rt.block_on(async {
        let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = Vec::new();
        for (i, mut repo) in repos.clone().into_iter().enumerate() {
            let (c, permits, ledger, acked_total) = (
                trust.clone(),
                permits.clone(),
                ledgers[i].clone(),
                acked_total.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for n in 0..PUBLISHES {
                    let _permit = permits.acquire().await.unwrap();
                    let next = repo.tuf.targets["targets"].common.version + 1;
                    let target = (
                        format!("file-{n}"),
                        format!("{} {n}", repo.gun).into_bytes(),
                    );
                    match c.publish(&mut repo, &[target]).await {
                        Ok(200) => {
                            let bytes = repo.published["targets"].clone();
                            assert_eq!(targets_version(&bytes), next);
                            ledger.lock().unwrap().acked.insert(next, bytes);
                            acked_total.fetch_add(1, Ordering::SeqCst);
                        }
                        // The connection died with the server: the outcome is unknown.
                        Err(_) => {
                            ledger.lock().unwrap().in_doubt = Some(next);
                            break;
                        }
                        Ok(status) => panic!("{}: publish {n} got HTTP {status}", repo.gun),
                    }
                }
                repo
            }));
        }
        let mut finals = Vec::new();
        for t in tasks {
            finals.push(t.await.expect("publisher task"));
        }
        finals
    });
    assert!(killer.join().unwrap(), "never reached the kill point");
    assert!(killed.load(Ordering::SeqCst));
    // Every publisher task has finished: the ledgers are no longer shared.
    let ledgers: Vec<Ledger> = ledgers
        .into_iter()
        .map(|l| Arc::try_unwrap(l).ok().unwrap().into_inner().unwrap())
        .collect();
    let acked: usize = ledgers.iter().map(|l| l.acked.len()).sum();
    let in_doubt = ledgers.iter().filter(|l| l.in_doubt.is_some()).count();
    eprintln!("killed the server after {acked} acknowledged publishes; {in_doubt} in doubt");
    assert!(acked < GUNS * PUBLISHES, "the kill came too late to matter");

    // Restart on the same database (the signer kept running). `kill9` only reaps here: the
    // process is already dead.
    stack.server.kill9();
    stack.start_server();

    let committed_in_doubt = rt.block_on(async {
        let mut committed = 0;
        for (i, repo) in repos.iter().enumerate() {
            let ledger = &ledgers[i];
            let files = trust
                .pull_with(&repo.gun, Verify::Full)
                .await
                .unwrap_or_else(|e| panic!("{} does not verify after restart: {e:#}", repo.gun));
            let current = targets_version(&files["targets"]);
            let last_acked = ledger.acked.keys().last().copied().unwrap_or(1);
            assert!(
                current == last_acked || Some(current) == ledger.in_doubt,
                "{}: current targets v{current}, last acknowledged v{last_acked}, in doubt {:?}",
                repo.gun,
                ledger.in_doubt
            );
            if Some(current) == ledger.in_doubt {
                committed += 1;
            }
            // Every acknowledged version is stored byte for byte.
            for (version, bytes) in &ledger.acked {
                let r = trust
                    .get_file(&repo.gun, &format!("{version}.targets.json"))
                    .await
                    .unwrap();
                assert_eq!(r.status, 200, "{}: targets v{version} lost", repo.gun);
                assert_eq!(&r.body, bytes, "{}: targets v{version} differs", repo.gun);
            }
        }
        committed
    });
    eprintln!("{committed_in_doubt} of the {in_doubt} publishes in doubt had committed");

    // A fresh stock client verifies every GUN and lists every acknowledged target.
    for (i, repo) in repos.iter().enumerate() {
        let ledger = &ledgers[i];
        let cli = NotaryCli::new(&stack.url, &stack.ca);
        let (ok, listing) = cli.run(&["list", &repo.gun]);
        let acked_targets = ledger.acked.len();
        if acked_targets == 0 {
            // Only the empty initial targets: the CLI says there is nothing to list.
            continue;
        }
        assert!(ok, "notary list {} failed:\n{listing}", repo.gun);
        for n in 0..acked_targets {
            assert!(
                listing.contains(&format!("file-{n}")),
                "{}: file-{n} missing from:\n{listing}",
                repo.gun
            );
        }
    }

    // The restarted server keeps accepting publishes on every GUN. A client whose last
    // publish was in doubt first catches up with the versions the server has.
    rt.block_on(async {
        for mut repo in finals {
            let files = trust.pull_with(&repo.gun, Verify::Hashes).await.unwrap();
            repo.tuf.targets.get_mut("targets").unwrap().common.version =
                targets_version(&files["targets"]);
            if !repo.server_snapshot {
                repo.tuf.snapshot_common.version = SignedFile::parse(&files["snapshot"])
                    .unwrap()
                    .common
                    .version;
            }
            let status = trust
                .publish(&mut repo, &[("after-restart".into(), b"x".to_vec())])
                .await
                .unwrap();
            assert_eq!(status, 200, "{}: publish after restart", repo.gun);
        }
    });
}

/// One response seen by [`Load`].
#[derive(Debug, Clone)]
struct Entry {
    /// Phase when the request was sent and when its answer arrived.
    phases: (usize, usize),
    /// `read` (the load's `timestamp.json`), `sync` (a publisher reading its GUN's current
    /// files after a publish without a 200) or `write`.
    what: &'static str,
    /// Index of the GUN among the load's repositories.
    gun: usize,
    /// For writes, the `targets` version sent.
    version: Option<i64>,
    /// HTTP status; 0 when no answer came (transport error).
    status: u16,
    /// The Notary error code, or the transport error.
    code: Option<String>,
    /// Milliseconds since the load started, at send and at answer.
    millis: (u128, u128),
}

impl Entry {
    /// GETs: the load's reads and the publishers' syncs.
    fn is_read(&self) -> bool {
        self.what != "write"
    }
}

/// Sends one load task's requests and records every answer in the shared log.
struct Recorder {
    phase: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Entry>>>,
    epoch: Instant,
    gun: usize,
}

impl Recorder {
    /// Awaits `request` and records the answer (a transport error as status 0).
    async fn send<E: std::fmt::Display>(
        &self,
        what: &'static str,
        version: Option<i64>,
        request: impl std::future::Future<Output = Result<Reply, E>>,
    ) -> Option<Reply> {
        let (p0, t0) = (
            self.phase.load(Ordering::SeqCst),
            self.epoch.elapsed().as_millis(),
        );
        let outcome = request.await;
        let (status, code) = match &outcome {
            Ok(r) => (r.status, error_code(&r.body)),
            Err(e) => (0, Some(format!("{e:#}"))),
        };
        self.log.lock().unwrap().push(Entry {
            phases: (p0, self.phase.load(Ordering::SeqCst)),
            what,
            gun: self.gun,
            version,
            status,
            code,
            millis: (t0, self.epoch.elapsed().as_millis()),
        });
        outcome.ok()
    }

    /// A recorded `sync` GET of one of `gun`'s files: the body if the answer was 200.
    async fn get_ok(&self, c: &TrustClient, gun: &str, file: &str) -> Option<Vec<u8>> {
        let reply = self.send("sync", None, c.get_file(gun, file)).await?;
        (reply.status == 200).then_some(reply.body)
    }
}

/// Why [`current_files`] has no answer.
enum SyncError {
    /// A request got no 200 (it is in the log): try again later.
    Unreachable,
    /// The files the server returned do not fit together.
    Broken(String),
}

/// A GUN's current `snapshot` and `targets` files as a client finds them: `timestamp.json`,
/// then the snapshot and the targets by the sha256 that names each, checked against it.
async fn current_files(
    rec: &Recorder,
    c: &TrustClient,
    gun: &str,
) -> Result<(Vec<u8>, Vec<u8>), SyncError> {
    let broken =
        |what: &str, e: &dyn std::fmt::Display| SyncError::Broken(format!("{gun}: {what}: {e}"));
    let timestamp = rec
        .get_ok(c, gun, "timestamp.json")
        .await
        .ok_or(SyncError::Unreachable)?;
    let timestamp = SignedFile::parse(&timestamp)
        .map_err(|e| broken("timestamp", &e))?
        .timestamp()
        .map_err(|e| broken("timestamp", &e))?;
    let meta = timestamp
        .snapshot_meta()
        .ok_or_else(|| broken("timestamp", &"no snapshot"))?;
    let sha = meta
        .sha256_hex()
        .ok_or_else(|| broken("timestamp", &"no snapshot sha256"))?;
    let snapshot = rec
        .get_ok(c, gun, &format!("snapshot.{sha}.json"))
        .await
        .ok_or(SyncError::Unreachable)?;
    check_hashes(&snapshot, "snapshot", &meta.hashes).map_err(|e| broken("snapshot", &e))?;
    let parsed = SignedFile::parse(&snapshot)
        .map_err(|e| broken("snapshot", &e))?
        .snapshot()
        .map_err(|e| broken("snapshot", &e))?;
    let meta = parsed
        .meta
        .get("targets")
        .ok_or_else(|| broken("snapshot", &"no targets"))?;
    let sha = meta
        .sha256_hex()
        .ok_or_else(|| broken("snapshot", &"no targets sha256"))?;
    let targets = rec
        .get_ok(c, gun, &format!("targets.{sha}.json"))
        .await
        .ok_or(SyncError::Unreachable)?;
    check_hashes(&targets, "targets", &meta.hashes).map_err(|e| broken("targets", &e))?;
    Ok((snapshot, targets))
}

/// Whether the server's files are exactly the ones `repo` last published (the snapshot
/// only when the client signs it).
fn holds(repo: &Repo, snapshot: &[u8], targets: &[u8]) -> bool {
    repo.published.get("targets").map(Vec::as_slice) == Some(targets)
        && (repo.server_snapshot
            || repo.published.get("snapshot").map(Vec::as_slice) == Some(snapshot))
}

/// The `targets` version a client state last published.
fn repo_version(repo: &Repo) -> i64 {
    repo.tuf.targets["targets"].common.version
}

/// What a publishing task of [`Load`] ends with.
struct Publisher {
    /// Client state: the last publish the server acknowledged or a sync found applied.
    repo: Repo,
    /// The staged state of the last publish if it got no 200 and no sync has settled it
    /// since: the server holds either this or `repo`.
    in_doubt: Option<Repo>,
    /// Publishes without a 200 that a later sync settled: (found applied, found not applied).
    settled: (usize, usize),
}

/// Load against a few GUNs: each task reads `timestamp.json` and publishes in turn (only
/// one task per GUN publishes, so its client state stays exact), and records every
/// response.
///
/// A publisher behaves like the stock client: after a publish without a 200 (an error
/// status or no answer at all) its outcome is unknown, because the database may have
/// committed it while the answer was lost (MariaDB shutting down between COMMIT and its
/// reply). Before publishing again it reads the GUN's current files ("sync") and adopts
/// the server's state, which must be either its last acknowledged one or the unanswered
/// one; anything else is recorded as an anomaly.
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Entry>>>,
    anomalies: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<Option<Publisher>>>,
}

impl Load {
    fn start(
        rt: &tokio::runtime::Runtime,
        trust: &TrustClient,
        repos: &[Repo],
        tasks: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let log: Arc<Mutex<Vec<Entry>>> = Arc::default();
        let anomalies: Arc<Mutex<Vec<String>>> = Arc::default();
        let epoch = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (stop, anomalies, c) = (stop.clone(), anomalies.clone(), trust.clone());
            let gun = t % repos.len();
            let rec = Recorder {
                phase: phase.clone(),
                log: log.clone(),
                epoch,
                gun,
            };
            let mut state = Publisher {
                repo: repos[gun].clone(),
                in_doubt: None,
                settled: (0, 0),
            };
            let publisher = t < repos.len();
            handles.push(rt.spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = state.repo.gun.clone();
                    rec.send("read", None, c.get_file(&name, "timestamp.json"))
                        .await;
                    if publisher {
                        if let Some(staged) = &state.in_doubt {
                            match current_files(&rec, &c, &name).await {
                                // Still unreachable: no publish before the state is known.
                                Err(SyncError::Unreachable) => {}
                                Err(SyncError::Broken(why)) => {
                                    anomalies.lock().unwrap().push(why);
                                    break;
                                }
                                Ok((snapshot, targets)) => {
                                    if holds(staged, &snapshot, &targets) {
                                        state.repo = staged.clone();
                                        state.settled.0 += 1;
                                    } else if holds(&state.repo, &snapshot, &targets) {
                                        state.settled.1 += 1;
                                    } else {
                                        anomalies.lock().unwrap().push(format!(
                                            "{name}: the server holds targets v{}, neither the \
                                             acknowledged v{} nor the unanswered v{}",
                                            targets_version(&targets),
                                            repo_version(&state.repo),
                                            repo_version(staged)
                                        ));
                                        break;
                                    }
                                    state.in_doubt = None;
                                }
                            }
                        }
                        if state.in_doubt.is_none() {
                            let mut staged = state.repo.clone();
                            let parts =
                                staged.stage("targets", &[(format!("load-{n}"), vec![b'x'; 16])]);
                            let version = Some(repo_version(&staged));
                            let reply = rec
                                .send("write", version, c.post_update(&name, &parts))
                                .await;
                            if reply.is_some_and(|r| r.status == 200) {
                                state.repo = staged;
                            } else {
                                state.in_doubt = Some(staged);
                            }
                            n += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                publisher.then_some(state)
            }));
        }
        Load {
            stop,
            phase,
            log,
            anomalies,
            tasks: handles,
        }
    }

    fn set_phase(&self, p: usize) {
        self.phase.store(p, Ordering::SeqCst);
    }

    /// Responses to requests sent and answered within phase `p`.
    fn in_phase(&self, p: usize) -> Vec<Entry> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.phases == (p, p))
            .cloned()
            .collect()
    }

    /// Every response so far, in the order the answers arrived.
    fn entries(&self) -> Vec<Entry> {
        self.log.lock().unwrap().clone()
    }

    /// Stops the load; returns the publishers' final states and the anomalies seen.
    fn finish(self, rt: &tokio::runtime::Runtime) -> (Vec<Publisher>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let publishers = self
            .tasks
            .into_iter()
            .filter_map(|t| rt.block_on(t).expect("load task"))
            .collect();
        let anomalies = std::mem::take(&mut *self.anomalies.lock().unwrap());
        (publishers, anomalies)
    }
}

const UP: usize = 0;
const DOWN: usize = 1;
const BACK: usize = 2;

#[test]
fn mariadb_outage_gives_503_and_the_server_recovers_by_itself() {
    if prerequisites() {
        return;
    }
    const GUNS: usize = 4;
    let mut mariadb = PrivateMariaDb::start(3307);
    let dsn = mariadb.create_database("e2e_fault_db", "notary_fault", "fault_pw");
    let mut stack = OwnStack::start(24482, 27982, ServerDb::Mysql(dsn));
    let rt = runtime();
    let trust = client(&stack);
    let prefix = format!("example.com/fault/db/{}", random_suffix());
    // GUNS repositories for the load (the first with a server-managed snapshot) and one
    // that only the probe below writes to.
    let repos: Vec<Repo> = rt.block_on(async {
        let mut repos = Vec::new();
        for i in 0..=GUNS {
            repos.push(
                trust
                    .init_repo(&format!("{prefix}/{i}"), i == 0)
                    .await
                    .unwrap(),
            );
        }
        repos
    });
    let probe = &repos[GUNS];
    let server_pid = stack.server.pid();
    let load = Load::start(&rt, &trust, &repos[..GUNS], 2 * GUNS);
    let count = |p: usize, what: &str, status: u16| {
        load.in_phase(p)
            .iter()
            .filter(|e| e.what == what && e.status == status)
            .count()
    };
    let saw_up = wait_until(Duration::from_secs(60), || count(UP, "write", 200) >= 8);
    assert!(
        saw_up,
        "no successful traffic before the outage\n{}",
        stack.logs()
    );

    mariadb.stop();
    load.set_phase(DOWN);
    // A publish while the database is down. Load publishers whose last publish failed
    // (the shutdown catches some mid-write) only sync until they can read their GUN, as a
    // real client would, so this one is sure to be attempted. It must be refused with a
    // 503 and not applied (checked at the end).
    let mut probe_staged = probe.clone();
    let probe_parts = probe_staged.stage("targets", &[("down".into(), b"down".to_vec())]);
    let probe_reply = rt
        .block_on(trust.post_update(&probe.gun, &probe_parts))
        .map(|r| (r.status, error_code(&r.body)))
        .map_err(|e| format!("{e:#}"));
    // Reads must be seen failing while the database is down, and the health endpoint
    // (checked every 10 s by the server) must notice.
    let saw_reads_fail = wait_until(Duration::from_secs(120), || count(DOWN, "read", 503) > 0);
    let mut health = 200;
    wait_until(Duration::from_secs(60), || {
        health = rt
            .block_on(trust.get_path("/_notary_server/health"))
            .map_or(0, |r| r.status);
        health != 200
    });
    load.set_phase(BACK);
    mariadb.resume();
    // Recovered: every publisher (after syncing, if its last publish failed) publishes
    // successfully again.
    let recovered = wait_until(Duration::from_secs(120), || {
        let back = load.in_phase(BACK);
        (0..GUNS).all(|g| {
            back.iter()
                .any(|e| e.gun == g && e.what == "write" && e.status == 200)
        })
    });
    // Let the load run on the recovered database for a while before judging it.
    let seen = load.in_phase(BACK).len();
    wait_until(Duration::from_secs(30), || {
        load.in_phase(BACK).len() >= seen + 40
    });
    let (down, back, all) = (load.in_phase(DOWN), load.in_phase(BACK), load.entries());
    let (publishers, anomalies) = load.finish(&rt);
    for (name, entries) in [("down", &down), ("back", &back)] {
        let mut counts: BTreeMap<(&str, u16), usize> = BTreeMap::new();
        for e in entries.iter() {
            *counts.entry((e.what, e.status)).or_default() += 1;
        }
        eprintln!("MariaDB {name}: {counts:?}");
    }
    let settled = publishers
        .iter()
        .fold((0, 0), |a, p| (a.0 + p.settled.0, a.1 + p.settled.1));
    eprintln!(
        "publishes without a 200, settled by a sync: {} applied, {} not applied",
        settled.0, settled.1
    );

    let timeline: String = all.iter().map(|e| format!("{e:?}\n")).collect();
    let guns: Vec<&str> = repos.iter().map(|r| r.gun.as_str()).collect();
    let stored = mariadb
        .try_sql(
            "SELECT gun, role, version, created_at FROM e2e_fault_db.tuf_files \
             WHERE role = 'targets' ORDER BY gun, version",
        )
        .unwrap_or_else(|e| format!("(query failed: {e})"));
    let context = format!(
        "GUNs: {guns:?}\ntimeline:\n{timeline}\n{}\nstored targets:\n{stored}\n{}",
        stack.logs(),
        mariadb.log_tail(20)
    );
    assert!(anomalies.is_empty(), "{anomalies:#?}\n{context}");
    assert_eq!(
        probe_reply,
        Ok((503, Some("UNAVAILABLE".to_string()))),
        "publish while the database was down\n{context}"
    );
    assert!(saw_reads_fail, "no 503 for reads while down\n{context}");
    // Nothing can be written while the database is down, and every failure is a 503 with
    // the Notary envelope. Reads may still succeed from the server's cache, which answers
    // only for a bounded time after its last successful changefeed poll (notary-server's
    // `cache` module): once reads fail, none may succeed until the database is back.
    for e in &down {
        let cached_read = e.is_read() && e.status == 200;
        assert!(
            cached_read || (e.status == 503 && e.code.as_deref() == Some("UNAVAILABLE")),
            "while the database was down: {e:?}\n{context}"
        );
    }
    let first_failed_read = down
        .iter()
        .filter(|e| e.is_read() && e.status == 503)
        .map(|e| e.millis.0)
        .min()
        .unwrap();
    assert!(
        !down
            .iter()
            .any(|e| e.is_read() && e.status == 200 && e.millis.0 > first_failed_read + 1000),
        "reads were served long after the database went away\n{context}"
    );
    assert_ne!(health, 200, "health while the database is down");
    assert!(recovered, "no recovery after MariaDB came back\n{context}");
    for e in &back {
        assert_eq!(e.status, 200, "after recovery: {e:?}\n{context}");
    }
    // Per GUN, acknowledged versions only go up (in the order the answers arrived): no
    // version was acknowledged twice.
    for g in 0..GUNS {
        let acked: Vec<i64> = all
            .iter()
            .filter(|e| e.gun == g && e.what == "write" && e.status == 200)
            .filter_map(|e| e.version)
            .collect();
        assert!(
            acked.windows(2).all(|w| w[0] < w[1]),
            "GUN {g}: acknowledged versions {acked:?}\n{context}"
        );
    }
    assert!(stack.server.running(), "the server died");
    assert_eq!(stack.server.pid(), server_pid, "the server was restarted");

    // Each GUN's server state is exactly its publisher's last acknowledged one, or its
    // last unanswered attempt; the probe's refused publish was not applied.
    rt.block_on(async {
        let last = publishers
            .iter()
            .map(|p| (&p.repo, p.in_doubt.as_ref()))
            .chain([(probe, None)]);
        for (repo, in_doubt) in last {
            let files = trust
                .pull_with(&repo.gun, Verify::Full)
                .await
                .unwrap_or_else(|e| panic!("{} after the outage: {e:#}", repo.gun));
            let (snapshot, targets) = (&files["snapshot"], &files["targets"]);
            assert!(
                holds(repo, snapshot, targets)
                    || in_doubt.is_some_and(|s| holds(s, snapshot, targets)),
                "{}: the server has targets v{}, the client's last acknowledged is v{}, \
                 unanswered {:?}\n{context}",
                repo.gun,
                targets_version(targets),
                repo_version(repo),
                in_doubt.map(repo_version)
            );
        }
    });
    stack.server.stop();
    stack.signer.stop();
    mariadb.stop();
}

#[test]
fn signer_outage_keeps_reads_working_and_refuses_signing_writes_with_503() {
    if prerequisites() {
        return;
    }
    let mut stack = OwnStack::start(24483, 27983, ServerDb::Sqlite);
    let rt = runtime();
    let trust = client(&stack);
    let prefix = format!("example.com/fault/signer/{}", random_suffix());
    let mut repos: Vec<Repo> = rt.block_on(async {
        let mut repos = Vec::new();
        for (i, server_snapshot) in [false, true].into_iter().enumerate() {
            let mut repo = trust
                .init_repo(&format!("{prefix}/{i}"), server_snapshot)
                .await
                .unwrap();
            let status = trust
                .publish(&mut repo, &[("before".into(), b"before".to_vec())])
                .await
                .unwrap();
            assert_eq!(status, 200);
            repos.push(repo);
        }
        repos
    });
    let before: Vec<BTreeMap<String, Vec<u8>>> = rt.block_on(async {
        let mut all = Vec::new();
        for repo in &repos {
            all.push(trust.pull_with(&repo.gun, Verify::Full).await.unwrap());
        }
        all
    });

    stack.signer.kill9();
    rt.block_on(async {
        for (repo, files) in repos.iter().zip(&before) {
            // Reads: the full client download still verifies, byte-identical.
            let now = trust.pull_with(&repo.gun, Verify::Full).await.unwrap();
            assert_eq!(
                &now, files,
                "{}: reads changed while the signer is down",
                repo.gun
            );
            // Writes need a new timestamp signature: 503 UNAVAILABLE, nothing stored.
            let mut staged = repo.clone();
            let parts = staged.stage("targets", &[("during".into(), b"during".to_vec())]);
            let r = trust.post_update(&repo.gun, &parts).await.unwrap();
            assert_eq!(
                r.status,
                503,
                "{}: {}",
                repo.gun,
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(error_code(&r.body).as_deref(), Some("UNAVAILABLE"));
            let ts = trust.get_file(&repo.gun, "timestamp.json").await.unwrap();
            assert_eq!(
                ts.body, files["timestamp"],
                "{}: timestamp changed",
                repo.gun
            );
        }
        // Creating a key for a new GUN needs the signer too.
        let r = trust
            .get_file(&format!("{prefix}/new"), "timestamp.key")
            .await
            .unwrap();
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(error_code(&r.body).as_deref(), Some("UNAVAILABLE"));
    });

    // The signer comes back (same key database): the server reconnects by itself.
    let server_pid = stack.server.pid();
    stack.start_signer();
    rt.block_on(async {
        for repo in &mut repos {
            let mut status = 0;
            for _ in 0..100 {
                status = trust
                    .publish(repo, &[("after".into(), b"after".to_vec())])
                    .await
                    .unwrap();
                if status == 200 {
                    break;
                }
                assert_eq!(
                    status, 503,
                    "{}: unexpected status while reconnecting",
                    repo.gun
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            assert_eq!(
                status, 200,
                "{}: no recovery after the signer returned",
                repo.gun
            );
            let files = trust.pull_with(&repo.gun, Verify::Full).await.unwrap();
            let targets = SignedFile::parse(&files["targets"])
                .unwrap()
                .targets()
                .unwrap();
            assert!(
                targets.targets.contains_key("after") && targets.targets.contains_key("before")
            );
        }
    });
    assert_eq!(stack.server.pid(), server_pid, "the server was restarted");
}

#[test]
fn racing_publishers_on_one_gun_have_exactly_one_winner_per_version() {
    if prerequisites() {
        return;
    }
    const RACERS: usize = 8;
    const ROUNDS: usize = 8;
    let db = SharedDb::create("e2e_fault_race");
    let stack = OwnStack::start(24484, 27984, ServerDb::Mysql(db.go_dsn()));
    let rt = runtime();
    let trust = client(&stack);
    for server_snapshot in [false, true] {
        let gun = format!(
            "example.com/fault/race/{}/{server_snapshot}",
            random_suffix()
        );
        let mut base = rt.block_on(trust.init_repo(&gun, server_snapshot)).unwrap();
        for round in 0..ROUNDS {
            // Every racer builds the next version from the same base.
            let outcomes: Vec<(usize, u16, Option<String>, Repo)> = rt.block_on(async {
                let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
                let mut tasks = Vec::new();
                for racer in 0..RACERS {
                    let (c, barrier) = (trust.clone(), barrier.clone());
                    let mut staged = base.clone();
                    let parts = staged.stage(
                        "targets",
                        &[(format!("r{round}-racer{racer}"), vec![racer as u8; 8])],
                    );
                    let gun = gun.clone();
                    tasks.push(tokio::spawn(async move {
                        barrier.wait().await;
                        let r = c.post_update(&gun, &parts).await.unwrap();
                        (racer, r.status, error_code(&r.body), staged)
                    }));
                }
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                out
            });
            let winners: Vec<&(usize, u16, Option<String>, Repo)> =
                outcomes.iter().filter(|o| o.1 == 200).collect();
            assert_eq!(
                winners.len(),
                1,
                "round {round}: {:?}",
                outcomes
                    .iter()
                    .map(|o| (o.0, o.1, o.2.clone()))
                    .collect::<Vec<_>>()
            );
            for (racer, status, code, _) in &outcomes {
                if *status != 200 {
                    assert_eq!(
                        (*status, code.as_deref()),
                        (400, Some("VERSION")),
                        "round {round} racer {racer}"
                    );
                }
            }
            let (winner, _, _, staged) = winners[0];
            base = staged.clone();

            // The server's state is exactly the winner's: its targets file, and a
            // snapshot/timestamp chain that verifies.
            let files = rt
                .block_on(trust.pull_with(&gun, Verify::Full))
                .unwrap_or_else(|e| panic!("round {round}: {e:#}"));
            assert_eq!(files["targets"], base.published["targets"], "round {round}");
            let names: Vec<String> = SignedFile::parse(&files["targets"])
                .unwrap()
                .targets()
                .unwrap()
                .targets
                .keys()
                .filter(|n| n.starts_with(&format!("r{round}-")))
                .cloned()
                .collect();
            assert_eq!(names, vec![format!("r{round}-racer{winner}")]);
            let ts = SignedFile::parse(&files["timestamp"]).unwrap();
            assert_eq!(
                ts.common.version,
                round as i64 + 2,
                "one timestamp per winner"
            );
        }
        // The changefeed has exactly one update per accepted publish.
        let feed = rt
            .block_on(trust.get_path(&format!("/v2/{gun}/_trust/changefeed?records=100")))
            .unwrap();
        let feed: serde_json::Value = serde_json::from_slice(&feed.body).unwrap();
        assert_eq!(feed["count"], ROUNDS + 1, "{feed}");
    }
}
