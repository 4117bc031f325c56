//! `notary-log`: verify a Notary server's transparency log with a pinned verifier key.
//!
//! Exit statuses: 0 verified; 1 a verification failed (FAIL, FORK, TAMPERED, MALFORMED, root
//! mismatch; for `verify-inclusion` any role that could not be verified, network included);
//! 2 `monitor` found files MISSING and nothing worse; 3 something could not be checked (usage,
//! network, 5xx).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use notary_log::http::HttpSource;
use notary_log::inclusion::check_views;
use notary_log::ConsistencyError;
use notary_log::{
    monitor, parse_key_arg, verify_consistency, verify_gun, InclusionOptions, MonitorOptions,
};
use notary_tlog::Checkpoint;

#[derive(Parser)]
#[command(
    name = "notary-log",
    version,
    about = "Verify a Notary server's transparency log against a pinned verifier key",
    after_help = "Exit status: 0 verified; 1 a verification failed (FAIL, FORK, TAMPERED, MALFORMED, root mismatch; for verify-inclusion any role not verified, network errors included); 2 monitor found files MISSING and nothing worse; 3 something could not be checked (usage, network, 5xx)."
)]
struct Cli {
    /// Server base URL, e.g. https://localhost:4443
    #[arg(long, global = true)]
    server: Option<String>,
    /// PEM CA bundle to trust for the server instead of the system roots
    #[arg(long, global = true)]
    tlscacert: Option<PathBuf>,
    /// The pinned log verifier key: a file holding the vkey line, or the vkey itself
    /// (<name>+<hex key ID>+<base64 key>). Required by every subcommand but `key`.
    #[arg(long, global = true)]
    key: Option<String>,
    /// Timeout of each HTTP request, in seconds
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that each current metadata file of GUN is in the signed log
    VerifyInclusion {
        gun: String,
        /// Role to check (repeatable); default: timestamp, snapshot, root, targets and every
        /// targets/... role in the current snapshot
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A checkpoint kept from before: every checkpoint shown must extend it, and the largest
        /// is saved back when everything verified
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Check that the server's current log extends a checkpoint saved earlier
    VerifyConsistency {
        /// A signed checkpoint note saved earlier (by --save or monitor --state)
        old_checkpoint: PathBuf,
        /// Write the newly verified checkpoint here
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Read the whole log, recompute its root, and check every logged file is still served
    Monitor {
        /// Checkpoint of the previous run: checked for consistency first, replaced when
        /// everything verified
        #[arg(long)]
        state: Option<PathBuf>,
        /// Do not fetch the logged files (only check the log itself)
        #[arg(long)]
        no_fetch: bool,
        /// Files fetched at once
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Print the server's verifier key (UNVERIFIED: for comparing with a key obtained out of band)
    Key,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Usage errors exit 3 like other setup errors: clap's usual 2 is `monitor`'s MISSING.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let server = cli
        .server
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--server is required"))?;
    let source = HttpSource::new(
        server,
        cli.tlscacert.as_deref(),
        Duration::from_secs(cli.timeout),
    )?;
    if let Command::Key = cli.command {
        let key = source.unverified_key().await?;
        println!("UNVERIFIED key as served by {server} (compare it out of band before pinning it; it is never used for verification):");
        println!("{}", key.trim());
        return Ok(ExitCode::SUCCESS);
    }
    let key_arg = cli
        .key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--key (the pinned verifier key) is required"))?;
    let key = parse_key_arg(key_arg).map_err(anyhow::Error::msg)?;

    match cli.command {
        Command::Key => unreachable!("handled above"),
        Command::VerifyInclusion { gun, roles, state } => {
            let saved = match &state {
                Some(path) if path.exists() => {
                    let note = read(path)?;
                    Some(Checkpoint::open(&note, &key).map_err(|e| {
                        anyhow::anyhow!(
                            "state {} does not verify with the pinned key: {e}",
                            path.display()
                        )
                    })?)
                }
                _ => None,
            };
            let outcomes =
                verify_gun(&source, &key, &gun, &roles, &InclusionOptions::default()).await;
            for outcome in &outcomes {
                println!("{outcome}");
            }
            let mut ok = outcomes.iter().all(|o| o.is_ok());
            match check_views(&source, &key, &outcomes, saved.as_ref()).await {
                Ok(None) => {}
                Ok(Some((largest, note))) => {
                    println!(
                        "ok: the checkpoints shown are consistent{} (largest: {} entries)",
                        if saved.is_some() {
                            " with each other and the saved state"
                        } else {
                            " with each other"
                        },
                        largest.size()
                    );
                    if let (Some(path), true) = (&state, ok) {
                        write_atomically(path, note.as_bytes())?;
                        println!("state saved: checkpoint of {} entries", largest.size());
                    }
                }
                Err(e) => {
                    ok = false;
                    println!("{}: {e}", if e.is_fork() { "FORK" } else { "FAIL" });
                }
            }
            Ok(exit(if ok { 0 } else { 1 }))
        }
        Command::VerifyConsistency {
            old_checkpoint,
            save,
        } => {
            let old = read(&old_checkpoint)?;
            match verify_consistency(&source, &key, &old).await {
                Ok(verified) => {
                    println!("{}", verified.summary());
                    if let Some(path) = save {
                        write_atomically(&path, &verified.new_note)?;
                        println!(
                            "saved the checkpoint of {} entries to {}",
                            verified.new.size(),
                            path.display()
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if e.is_fork() => {
                    println!("FORK: {e}");
                    Ok(exit(1))
                }
                Err(e @ ConsistencyError::Fetch(_)) => {
                    println!("ERROR: {e}");
                    Ok(exit(3))
                }
                Err(e) => {
                    println!("FAIL: {e}");
                    Ok(exit(1))
                }
            }
        }
        Command::Monitor {
            state,
            no_fetch,
            concurrency,
        } => {
            let old = match &state {
                Some(path) if path.exists() => Some(read(path)?),
                _ => None,
            };
            let options = MonitorOptions {
                fetch_files: !no_fetch,
                concurrency,
            };
            let report = match monitor(&source, &key, old.as_deref(), &options).await {
                Ok(report) => report,
                Err(e) => {
                    let code = e.exit_code();
                    println!("{}: {e}", if code == 3 { "ERROR" } else { "FAIL" });
                    return Ok(exit(code));
                }
            };
            for line in report.lines() {
                println!("{line}");
            }
            println!("{}", report.summary());
            if let Some(path) = &state {
                if report.all_verified() {
                    write_atomically(path, &report.note)?;
                    println!("state saved: checkpoint of {} entries", report.entries());
                } else {
                    println!("state not saved: not everything verified");
                }
            }
            Ok(exit(report.exit_code()))
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// Writes through a temporary file in the same directory and renames it over `path`, so a crash
/// never leaves a half-written state.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
