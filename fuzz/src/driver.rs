//! The stand-alone driver behind each target binary when it is not built by `cargo fuzz`,
//! also used in-process by the smoke test (`tests/smoke.rs`).
//!
//! ```text
//! fuzz_<target> [--iterations N] [--seconds S] [--seed N] [--max-len BYTES]
//!               [--corpus DIR]... [--write-seeds DIR] [FILE|DIR]...
//! ```
//!
//! - With FILE/DIR arguments: runs the target once on each file (reproducing a crash, or
//!   replaying a libFuzzer corpus) and exits.
//! - Otherwise: runs the built-in seeds and every file in each `--corpus` DIR once, then N
//!   mutated inputs (default 100000) or for S seconds (whichever ends first, if both are
//!   given), each a corpus entry mutated 1–8 times by a xorshift PRNG (`--seed`, default
//!   from the clock; printed so a run can be repeated).
//! - `--write-seeds DIR` writes the built-in seeds (a starting corpus for libFuzzer) and
//!   exits.
//!
//! A panic in the target stops the run: the input is written to
//! `artifacts/fuzz_<target>/crash-<hash>` (relative to the working directory, as
//! `cargo fuzz` does), its path is printed, and the process exits with status 1.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a [`fuzz`] run is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Mutated inputs to run after the corpus.
    pub iterations: u64,
    /// Stop the mutation phase after this long, even if `iterations` are not done.
    pub time_limit: Option<Duration>,
    /// PRNG seed (0 is treated as 1); the same seed and corpus give the same inputs.
    pub seed: u64,
    /// Mutated inputs are cut to this many bytes.
    pub max_len: usize,
    /// Files, or directories whose files, are added to the built-in seeds.
    pub corpus: Vec<PathBuf>,
}

impl Default for Options {
    /// 100000 iterations, no time limit, a seed from the clock, 8 KiB inputs, no corpus.
    fn default() -> Options {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Options {
            iterations: 100_000,
            time_limit: None,
            seed: clock | 1,
            max_len: 8192,
            corpus: Vec::new(),
        }
    }
}

/// What a [`fuzz`] run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Built-in seeds run.
    pub seeds: usize,
    /// Corpus files run.
    pub corpus_files: usize,
    /// Mutated inputs run.
    pub mutations: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl Report {
    /// Every input run: seeds, corpus files and mutations.
    pub fn total(&self) -> u64 {
        self.seeds as u64 + self.corpus_files as u64 + self.mutations
    }
}

/// An input on which the target panicked.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The input.
    pub input: Vec<u8>,
    /// The panic message.
    pub message: String,
}

impl Crash {
    /// Writes the input to `<dir>/fuzz_<name>/crash-<hash of the input>` and returns that
    /// path.
    pub fn save(&self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.input.hash(&mut h);
        let dir = dir.join(format!("fuzz_{name}"));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("crash-{:016x}", h.finish()));
        std::fs::write(&path, &self.input)?;
        Ok(path)
    }
}

impl fmt::Display for Crash {
    /// The message, then the input as an escaped byte string (so a CI log alone is enough
    /// to reproduce it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (on a {}-byte input: b\"{}\")",
            self.message,
            self.input.len(),
            self.input.escape_ascii()
        )
    }
}

/// Runs `target` on the built-in seeds of `name`, then on every corpus file, then on
/// `opts.iterations` mutated inputs. Stops at the first input that panics.
pub fn fuzz(name: &str, target: fn(&[u8]), opts: &Options) -> Result<Report, Crash> {
    let started = Instant::now();
    let mut corpus = crate::seeds::for_target(name);
    let seeds = corpus.len();
    for f in expand(&opts.corpus) {
        if let Ok(data) = std::fs::read(&f) {
            corpus.push(data);
        }
    }
    let corpus_files = corpus.len() - seeds;
    for input in &corpus {
        run_one(target, input)?;
    }

    let mut rng = Rng::new(opts.seed);
    let mutating = Instant::now();
    let mut mutations = 0u64;
    while mutations < opts.iterations && opts.time_limit.is_none_or(|t| mutating.elapsed() < t) {
        let mut input = corpus[rng.below(corpus.len())].clone();
        for _ in 0..=rng.below(8) {
            mutate(&mut input, &corpus, &mut rng, opts.max_len);
        }
        run_one(target, &input)?;
        mutations += 1;
    }
    Ok(Report {
        seeds,
        corpus_files,
        mutations,
        elapsed: started.elapsed(),
    })
}

/// Runs `target` once on each input, in order.
pub fn replay(target: fn(&[u8]), inputs: &[Vec<u8>]) -> Result<(), Crash> {
    inputs.iter().try_for_each(|input| run_one(target, input))
}

/// The files of `paths`: files given directly, plus the files directly inside given
/// directories (sorted, so runs are repeatable).
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(entries) = std::fs::read_dir(p) {
                let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                files.sort();
                out.extend(files.into_iter().filter(|f| f.is_file()));
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Runs the driver for `name` with the process arguments (the binaries' `main`).
pub fn main(name: &str, target: fn(&[u8])) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match Cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fuzz_{name}: {e}");
            std::process::exit(2);
        }
    };
    if let Some(dir) = &cli.write_seeds {
        std::fs::create_dir_all(dir).expect("create seed directory");
        for (i, seed) in crate::seeds::for_target(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write seed");
        }
        println!("fuzz_{name}: wrote seeds to {}", dir.display());
        return;
    }
    if !cli.replay.is_empty() {
        let files = expand(&cli.replay);
        let inputs: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display())))
            .collect();
        if let Err(crash) = replay(target, &inputs) {
            fail(name, &crash);
        }
        println!("fuzz_{name}: replayed {} input(s), no failure", files.len());
        return;
    }
    match fuzz(name, target, &cli.opts) {
        Ok(r) => {
            let secs = r.elapsed.as_secs_f64();
            println!(
                "fuzz_{name}: {} inputs ({} seeds, {} corpus files, {} mutations) in {secs:.1} s \
                 ({:.0}/s), seed {}, no failure",
                r.total(),
                r.seeds,
                r.corpus_files,
                r.mutations,
                r.total() as f64 / secs.max(1e-9),
                cli.opts.seed
            );
        }
        Err(crash) => {
            eprintln!("fuzz_{name}: seed {}", cli.opts.seed);
            fail(name, &crash);
        }
    }
}

fn fail(name: &str, crash: &Crash) -> ! {
    let saved = match crash.save(Path::new("artifacts"), name) {
        Ok(p) => format!("saved to {}", p.display()),
        Err(e) => format!("not saved: {e}"),
    };
    eprintln!(
        "fuzz_{name}: CRASH on a {}-byte input, {saved}",
        crash.input.len()
    );
    std::process::exit(1);
}

/// The command line: the run's options plus the modes that do not fuzz.
struct Cli {
    opts: Options,
    write_seeds: Option<PathBuf>,
    replay: Vec<PathBuf>,
}

impl Cli {
    fn parse(args: &[String]) -> Result<Cli, String> {
        let mut cli = Cli {
            opts: Options::default(),
            write_seeds: None,
            replay: Vec::new(),
        };
        let o = &mut cli.opts;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            let num =
                |s: String, flag: &str| s.parse::<u64>().map_err(|e| format!("{flag} {s:?}: {e}"));
            match a.as_str() {
                "--iterations" => o.iterations = num(value(a)?, a)?,
                "--seconds" => o.time_limit = Some(Duration::from_secs(num(value(a)?, a)?)),
                "--seed" => o.seed = num(value(a)?, a)?.max(1),
                "--max-len" => o.max_len = num(value(a)?, a)? as usize,
                "--corpus" => o.corpus.push(PathBuf::from(value(a)?)),
                "--write-seeds" => cli.write_seeds = Some(PathBuf::from(value(a)?)),
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                path => cli.replay.push(PathBuf::from(path)),
            }
        }
        if o.time_limit.is_some() && !args.iter().any(|a| a == "--iterations") {
            o.iterations = u64::MAX;
        }
        Ok(cli)
    }
}

/// Runs the target on one input; a panic becomes a [`Crash`].
fn run_one(target: fn(&[u8]), data: &[u8]) -> Result<(), Crash> {
    std::panic::catch_unwind(|| target(data)).map_err(|payload| Crash {
        input: data.to_vec(),
        message: payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_owned()),
    })
}

/// xorshift64*: small, fast, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough value in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that matter to JSON, to Notary metadata and to multipart bodies.
const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b",",
    b":",
    b"null",
    b"true",
    b"-0",
    b"1e400",
    b"9007199254740993",
    b"-9223372036854775809",
    b"2147483648",
    b"0.5",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"\xc3\x28",
    b"\xf0\x9f\x98\x80",
    b"\xe2\x80\xa8",
    b"<>&",
    b"\"signed\"",
    b"\"signatures\"",
    b"\"_type\"",
    b"\"version\"",
    b"\"expires\"",
    b"\"keyid\"",
    b"\"sig\"",
    b"\"method\"",
    b"\"keys\"",
    b"\"roles\"",
    b"\"threshold\"",
    b"\"keyids\"",
    b"\"delegations\"",
    b"\"paths\"",
    b"\"meta\"",
    b"\"hashes\"",
    b"\"sha256\"",
    b"\"length\"",
    b"\"Root\"",
    b"\"Targets\"",
    b"\"Snapshot\"",
    b"\"Timestamp\"",
    b"\"ecdsa-x509\"",
    b"\"rsa-x509\"",
    b"\"ed25519\"",
    b"-----BEGIN CERTIFICATE-----\\n",
    b"\"0001-01-01T00:00:00Z\"",
    b"\"9999-12-31T23:59:59.999999999+14:00\"",
    b"\r\n",
    b"--XyZfuzz",
    b"--XyZfuzz--",
    b"\r\n\r\n",
    b"Content-Disposition: form-data; name=\"files\"; filename=\"",
    b"filename=\"targets/",
    b"filename*=",
    b"Content-Type: ",
    b"targets/releases",
    b".json",
];

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng, max_len: usize) {
    let len = input.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
        }
        2 if len > 0 => {
            // Delete a range.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            input.drain(start..end);
        }
        3 if len > 0 => {
            // Duplicate a range somewhere else (nesting, repeated members).
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let chunk = input[start..end].to_vec();
            let at = rng.below(input.len() + 1);
            input.splice(at..at, chunk);
        }
        4 | 5 => {
            let token = DICTIONARY[rng.below(DICTIONARY.len())];
            let at = rng.below(len + 1);
            if rng.below(2) == 0 || len == 0 {
                input.splice(at..at, token.iter().copied());
            } else {
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
        }
        6 => {
            // Splice with another corpus entry.
            let other = &corpus[rng.below(corpus.len())];
            if !other.is_empty() {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
        }
        7 if len > 0 => input.truncate(rng.below(len)),
        8 => {
            // Replace a run of digits with an interesting number.
            if let Some(start) = (0..len)
                .map(|k| (k + rng.below(len.max(1))) % len.max(1))
                .find(|&k| input.get(k).is_some_and(u8::is_ascii_digit))
            {
                let mut end = start;
                while end < input.len() && input[end].is_ascii_digit() {
                    end += 1;
                }
                let numbers: [&[u8]; 6] = [
                    b"0",
                    b"2147483647",
                    b"2147483648",
                    b"9007199254740992",
                    b"18446744073709551616",
                    b"1.5",
                ];
                let n = numbers[rng.below(numbers.len())];
                input.splice(start..end, n.iter().copied());
            }
        }
        _ => {
            // A short fresh random input now and then.
            let n = rng.below(64);
            *input = (0..n).map(|_| rng.next() as u8).collect();
        }
    }
    input.truncate(max_len);
}
