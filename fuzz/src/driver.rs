//! The stand-alone driver behind each target binary when it is not built by `cargo fuzz`.
//!
//! ```text
//! fuzz_<target> [--iterations N] [--seconds S] [--seed N] [--max-len BYTES]
//!               [--corpus DIR]... [--write-seeds DIR] [FILE|DIR]...
//! ```
//!
//! - With FILE/DIR arguments: runs the target once on each file (reproducing a crash, or
//!   replaying a libFuzzer corpus) and exits.
//! - Otherwise: starts from the built-in seeds plus every file in each `--corpus` DIR, and
//!   runs N iterations (default 100000) or S seconds (whichever ends first, if both are
//!   given), each on a seed mutated 1–8 times by a xorshift PRNG (`--seed`, default from
//!   the clock; printed so a run can be repeated).
//! - `--write-seeds DIR` writes the built-in seeds (a starting corpus for libFuzzer) and
//!   exits.
//!
//! A panic in the target stops the run: the input is written to
//! `artifacts/<target>/crash-<hash>` (relative to the working directory), its path is
//! printed, and the process exits with status 1.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs the driver for `name` with the process arguments.
pub fn main(name: &str, target: fn(&[u8])) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fuzz_{name}: {e}");
            std::process::exit(2);
        }
    };
    if let Some(dir) = &opts.write_seeds {
        std::fs::create_dir_all(dir).expect("create seed directory");
        for (i, seed) in crate::seeds::for_target(name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write seed");
        }
        println!("fuzz_{name}: wrote seeds to {}", dir.display());
        return;
    }
    if !opts.replay.is_empty() {
        let files = expand(&opts.replay);
        for f in &files {
            let data = std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
            run_one(name, target, &data);
        }
        println!("fuzz_{name}: replayed {} input(s), no failure", files.len());
        return;
    }

    let mut corpus = crate::seeds::for_target(name);
    for f in expand(&opts.corpus) {
        if let Ok(data) = std::fs::read(&f) {
            corpus.push(data);
        }
    }
    let mut rng = Rng::new(opts.seed);
    let started = Instant::now();
    let mut done = 0u64;
    // The seeds themselves first.
    for seed in &corpus {
        run_one(name, target, seed);
        done += 1;
    }
    while done < opts.iterations && opts.seconds.is_none_or(|s| started.elapsed() < s) {
        let mut input = corpus[rng.below(corpus.len())].clone();
        for _ in 0..=rng.below(8) {
            mutate(&mut input, &corpus, &mut rng, opts.max_len);
        }
        run_one(name, target, &input);
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz_{name}: {done} inputs in {secs:.1} s ({:.0}/s), seed {}, no failure",
        done as f64 / secs.max(1e-9),
        opts.seed
    );
}

struct Options {
    iterations: u64,
    seconds: Option<Duration>,
    seed: u64,
    max_len: usize,
    corpus: Vec<PathBuf>,
    write_seeds: Option<PathBuf>,
    replay: Vec<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut o = Options {
            iterations: 100_000,
            seconds: None,
            seed: clock | 1,
            max_len: 8192,
            corpus: Vec::new(),
            write_seeds: None,
            replay: Vec::new(),
        };
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
                "--seconds" => o.seconds = Some(Duration::from_secs(num(value(a)?, a)?)),
                "--seed" => o.seed = num(value(a)?, a)?.max(1),
                "--max-len" => o.max_len = num(value(a)?, a)? as usize,
                "--corpus" => o.corpus.push(PathBuf::from(value(a)?)),
                "--write-seeds" => o.write_seeds = Some(PathBuf::from(value(a)?)),
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                path => o.replay.push(PathBuf::from(path)),
            }
        }
        if o.seconds.is_some() && !args.iter().any(|a| a == "--iterations") {
            o.iterations = u64::MAX;
        }
        Ok(o)
    }
}

/// Files given directly, plus the files inside given directories.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
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

fn run_one(name: &str, target: fn(&[u8]), data: &[u8]) {
    let result = std::panic::catch_unwind(|| target(data));
    if result.is_err() {
        let path = save_crash(name, data);
        eprintln!(
            "fuzz_{name}: CRASH on a {}-byte input, saved to {}",
            data.len(),
            path.display()
        );
        std::process::exit(1);
    }
}

fn save_crash(name: &str, data: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let dir = Path::new("artifacts").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:016x}", h.finish()));
    let _ = std::fs::write(&path, data);
    path
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
