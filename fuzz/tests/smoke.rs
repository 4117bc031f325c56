//! Smoke run of the fuzz targets, so `cargo test --workspace` (CI) exercises them on
//! every change: each target runs over its built-in seeds, its committed corpus
//! (`seed-corpus/fuzz_<target>`) and a fixed number of mutations from a fixed PRNG seed.
//! `NOTARY_FUZZ_SEED=<n>` picks another seed. A failure names the seed, prints the input
//! and saves it under `fuzz/artifacts/fuzz_<target>/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use notary_fuzz::driver::{self, Options};

/// Seed of the mutation phase unless `NOTARY_FUZZ_SEED` is set.
const DEFAULT_SEED: u64 = 0x6e6f_7461_7279;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed_corpus(name: &str) -> PathBuf {
    crate_dir().join("seed-corpus").join(format!("fuzz_{name}"))
}

fn seed() -> u64 {
    match std::env::var("NOTARY_FUZZ_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("NOTARY_FUZZ_SEED {s:?}: {e}")),
        Err(_) => DEFAULT_SEED,
    }
}

/// Runs `name` over seeds + committed corpus + `iterations` mutations and checks that all
/// of them ran.
fn smoke(name: &str, target: fn(&[u8]), iterations: u64) {
    let corpus = committed_corpus(name);
    let committed = driver::expand(std::slice::from_ref(&corpus)).len();
    assert!(
        committed > 0,
        "no committed corpus files in {}",
        corpus.display()
    );
    let seed = seed();
    let opts = Options {
        iterations,
        time_limit: None,
        seed,
        corpus: vec![corpus],
        ..Options::default()
    };
    let report = driver::fuzz(name, target, &opts).unwrap_or_else(|crash| {
        let saved = crash.save(&crate_dir().join("artifacts"), name);
        panic!(
            "fuzz_{name} failed (seed {seed}, input saved: {saved:?}). Replay the saved input \
             with `cargo run -p notary-fuzz --bin fuzz_{name} -- <file>`, or rerun the \
             smoke with `cargo run -p notary-fuzz --bin fuzz_{name} -- --seed {seed} \
             --iterations {iterations} --corpus fuzz/seed-corpus/fuzz_{name}`.\n{crash}"
        )
    });
    assert!(report.seeds > 0, "fuzz_{name}: no built-in seeds");
    assert_eq!(
        report.corpus_files, committed,
        "fuzz_{name}: corpus files run"
    );
    assert_eq!(report.mutations, iterations, "fuzz_{name}: mutations run");
    println!(
        "fuzz_{name}: {} inputs ({} seeds, {} corpus files, {} mutations, seed {seed}) in {:.1} s",
        report.total(),
        report.seeds,
        report.corpus_files,
        report.mutations,
        report.elapsed.as_secs_f64()
    );
}

// Iteration counts: a few seconds each in a debug build (metadata and token verify
// signatures on every input, so they are orders of magnitude slower than the other two).

#[test]
fn smoke_canonical() {
    smoke("canonical", notary_fuzz::canonical, 200_000);
}

#[test]
fn smoke_metadata() {
    smoke("metadata", notary_fuzz::metadata, 1_500);
}

#[test]
fn smoke_multipart() {
    smoke("multipart", notary_fuzz::multipart, 50_000);
}

#[test]
fn smoke_token() {
    smoke("token", notary_fuzz::token, 20_000);
}

/// The token seeds reach both outcomes: the valid chains (plain, with a duplicate, behind a
/// JWK, as a whole token) are accepted; the hostile and broken ones are refused.
#[test]
fn token_seeds_are_accepted_or_refused_as_built() {
    let accepted: Vec<usize> = notary_fuzz::seeds::for_target("token")
        .iter()
        .enumerate()
        .filter(|(_, s)| notary_fuzz::token_accepted(s))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(accepted, [0, 2, 3, 10]);
}

/// The smoke can fail: a panicking target is caught and its input and message reported.
#[test]
fn driver_reports_the_panicking_input() {
    fn no_braces(data: &[u8]) {
        assert!(!data.contains(&b'{'), "found a brace");
    }
    let opts = Options {
        iterations: 10,
        seed: 1,
        ..Options::default()
    };
    let crash = driver::fuzz("canonical", no_braces, &opts).expect_err("seeds contain braces");
    assert!(crash.input.contains(&b'{'));
    assert!(crash.message.contains("found a brace"), "{}", crash.message);
    // Mutated inputs are caught as well: no multipart seed has this dictionary token.
    fn no_lone_surrogate(data: &[u8]) {
        assert!(
            !data.windows(6).any(|w| w == b"\\ud800"),
            "found a lone surrogate"
        );
    }
    driver::replay(
        no_lone_surrogate,
        &notary_fuzz::seeds::for_target("multipart"),
    )
    .expect("the seeds pass");
    let crash = driver::fuzz(
        "multipart",
        no_lone_surrogate,
        &Options {
            iterations: 100_000,
            ..opts
        },
    )
    .expect_err("some mutation inserts the token");
    assert!(
        crash.message.contains("lone surrogate"),
        "{}",
        crash.message
    );
}

/// Hashes of the inputs [`record`] saw (only [`same_seed_same_inputs`] uses it).
static SEEN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn record(data: &[u8]) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    SEEN.lock().unwrap().push(h.finish());
}

/// What makes the printed seed useful: within one build, a seed fixes the inputs.
#[test]
fn same_seed_same_inputs() {
    let run = |seed| {
        SEEN.lock().unwrap().clear();
        let opts = Options {
            iterations: 500,
            seed,
            corpus: vec![committed_corpus("multipart")],
            ..Options::default()
        };
        driver::fuzz("multipart", record, &opts).expect("record never panics");
        std::mem::take(&mut *SEEN.lock().unwrap())
    };
    let first = run(42);
    assert!(first.len() > 500);
    assert_eq!(first, run(42));
    assert_ne!(first, run(43));
}

/// The binaries' command line: a short run with a corpus, then a replay of that corpus.
#[test]
fn binary_runs_and_replays() {
    let bin = env!("CARGO_BIN_EXE_fuzz_canonical");
    let corpus = committed_corpus("canonical");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run fuzz_canonical");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "fuzz_canonical {args:?}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let corpus_arg = corpus.to_str().unwrap();
    let stdout = run(&["--iterations", "200", "--seed", "5", "--corpus", corpus_arg]);
    assert!(stdout.contains("200 mutations"), "{stdout}");
    assert!(stdout.contains("seed 5"), "{stdout}");
    let files = driver::expand(std::slice::from_ref(&corpus)).len();
    let stdout = run(&[corpus_arg]);
    assert!(
        stdout.contains(&format!("replayed {files} input(s)")),
        "{stdout}"
    );
}
