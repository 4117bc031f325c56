//! notary-server binary: flags, config, logging, then [`notary_server::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use notary_common::logging::{self, LogFormat};
use notary_server::config::Config;

/// Notary server: stores TUF metadata and signs timestamps.
///
/// Flags may be written Go-style with one dash (`-config server.json`).
#[derive(Debug, Parser)]
#[command(name = "notary-server", version)]
struct Args {
    /// Path to the JSON configuration file (Go's format).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Log format: json, logfmt or text.
    #[arg(long, value_name = "FORMAT", default_value = "json")]
    logf: String,
    /// Log at debug level, whatever logging.level says (Go also served pprof on
    /// localhost:8080; this server does not).
    #[arg(long)]
    debug: bool,
    /// Apply pending MySQL migrations before serving (SQLite always migrates).
    #[arg(long)]
    migrate: bool,
    /// Append transparency-log leaves for every stored file that has none (a database
    /// filled before the log was on, by Go or by us), integrate them, and exit; the next
    /// running server publishes the checkpoint.
    #[arg(long)]
    log_backfill: bool,
}

fn main() -> ExitCode {
    let args = Args::parse_from(notary_common::flags::go_style_args(std::env::args_os()));
    let mut config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("notary-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    config.migrate = args.migrate;
    config.log_backfill = args.log_backfill;
    let format: LogFormat = match args.logf.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("notary-server: -logf: {e}");
            return ExitCode::FAILURE;
        }
    };
    let level = if args.debug {
        "debug"
    } else {
        config.log_level.as_str()
    };
    // The level was validated with the config.
    let level = logging::parse_level(level).unwrap_or(tracing::level_filters::LevelFilter::ERROR);
    let log = match logging::init(level, format) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("notary-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        spawn_level_signals(log);
        notary_server::run(config).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("notary-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGUSR1 raises and SIGUSR2 lowers the log level, as in Go.
fn spawn_level_signals(log: logging::LogHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        for (kind, up) in [
            (SignalKind::user_defined1(), true),
            (SignalKind::user_defined2(), false),
        ] {
            let log = log.clone();
            if let Ok(mut sig) = signal(kind) {
                actix_web::rt::spawn(async move {
                    while sig.recv().await.is_some() {
                        let level = if up { log.raise() } else { log.lower() };
                        tracing::warn!(%level, "log level changed");
                    }
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = log;
}
