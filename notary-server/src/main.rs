//! notary-server binary: flags, config, logging, then [`notary_server::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use notary_common::logging::{self, LogFormat};
use notary_server::admin::Command;
use notary_server::audit::AuditQuery;
use notary_server::config::Config;
use notary_server::storage::PrunePolicy;

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
    /// Run an admin command against the configured database instead of serving.
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Admin commands (JSON on stdout; the audit trail names the OS user).
    #[command(subcommand)]
    Admin(AdminCmd),
}

#[derive(Debug, Subcommand)]
enum AdminCmd {
    /// Print the audit trail as JSON Lines, oldest first.
    AuditExport {
        /// Only this GUN.
        #[arg(long)]
        gun: Option<String>,
        /// Only this actor (token or certificate subject, `server`, `anonymous`).
        #[arg(long)]
        actor: Option<String>,
        /// From this time on (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Delete a GUN: its metadata, and its server-held keys in the signer.
    DeleteGun {
        /// The GUN.
        gun: String,
        /// List what would go; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove superseded metadata versions (never roots, never the current chain, never a
    /// role's newest version).
    Prune {
        /// Keep the newest N versions of each role.
        #[arg(long)]
        keep_versions: Option<u32>,
        /// Keep versions stored within the last D days.
        #[arg(long)]
        keep_days: Option<u32>,
        /// Only this GUN.
        #[arg(long)]
        gun: Option<String>,
        /// Report rows and bytes; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rows, bytes, GUNs and versions per role, for the server or one GUN.
    Stats {
        /// Only this GUN.
        #[arg(long)]
        gun: Option<String>,
    },
    /// What expires within so many days (expired included), soonest first, with who can
    /// repair it and how.
    Expiring {
        /// Days from now.
        #[arg(long)]
        within: u32,
        /// Only this role.
        #[arg(long)]
        role: Option<String>,
        /// Only GUNs starting with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Rebuild the expiry inventory from every GUN's current metadata (a database written
    /// before the inventory existed, by Go or by us).
    ExpiryBackfill,
}

impl AdminCmd {
    fn into_command(self) -> Command {
        match self {
            AdminCmd::AuditExport {
                gun,
                actor,
                since,
                until,
            } => Command::AuditExport(AuditQuery {
                gun,
                actor,
                since,
                until,
                after_id: 0,
                limit: 1000,
            }),
            AdminCmd::DeleteGun { gun, dry_run } => Command::DeleteGun { gun, dry_run },
            AdminCmd::Prune {
                keep_versions,
                keep_days,
                gun,
                dry_run,
            } => Command::Prune {
                gun,
                policy: PrunePolicy {
                    keep_versions,
                    keep_days,
                },
                dry_run,
            },
            AdminCmd::Stats { gun } => Command::Stats { gun },
            AdminCmd::Expiring {
                within,
                role,
                prefix,
            } => Command::Expiring {
                within_days: within,
                role,
                prefix,
            },
            AdminCmd::ExpiryBackfill => Command::ExpiryBackfill,
        }
    }
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
    let command = args.command.map(|Cmd::Admin(c)| c.into_command());
    let result = actix_web::rt::System::new().block_on(async move {
        match command {
            Some(command) => notary_server::run_admin(config, command).await,
            None => {
                spawn_level_signals(log);
                notary_server::run(config).await
            }
        }
    });
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("notary-server: {e:#}");
            ExitCode::FAILURE
        }
    };
    // The log writer runs on its own thread: what it still buffers goes out now.
    logging::flush();
    code
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
