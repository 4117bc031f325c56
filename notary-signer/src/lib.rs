//! notary-signer: holds Notary's online keys (timestamp, server-managed snapshot) encrypted
//! at rest and signs with them for notary-server over mutual-TLS gRPC.
//!
//! Wire-compatible with the Go `notary-signer` 0.7: the same gRPC services and status codes
//! ([`grpc`]), the same `private_keys` table and JWE encryption ([`keystore`]), and the same
//! JSON configuration, environment overrides and flags ([`config`], [`run`]). A Go signer and
//! this one can share a database.
//!
//! Command line (single-dash Go spellings are accepted too):
//!
//! ```text
//! notary-signer --config signer.json [--logf json|logfmt|text] [--debug]
//! notary-signer --config signer.json migrate
//! notary-signer --config signer.json rotate-alias --from OLD --to NEW
//! notary-signer --config signer.json pkcs11-import [--dry-run]
//! ```
//!
//! With a `pkcs11` section in the config, keys are created and used inside that PKCS#11
//! token ([`keystore::pkcs11`]).
//!
//! # Testing
//!
//! `cargo test -p notary-signer` runs everything against SQLite and an in-process gRPC
//! server with real mutual TLS. Set `NOTARY_TEST_MYSQL_URL`
//! (e.g. `mysql://notary_test:notary_test_pw@127.0.0.1:3306`) to also run the store tests
//! against MySQL/MariaDB, one random database per test; without it they print a skip notice.

pub mod config;
pub mod error;
pub mod grpc;
pub mod keystore;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use notary_common::logging::{self, LogFormat, LogHandle};
use tracing::level_filters::LevelFilter;

pub use config::{SignerConfig, StorageConfig};
pub use error::SetupError;
pub use keystore::{
    KeyService, KeyStore, MemoryKeyStore, Passphrases, Pkcs11KeyStore, SqlKeyStore,
};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "notary-signer",
    version,
    about = "Notary signer: keeps online TUF keys encrypted at rest and signs over mutual-TLS gRPC",
    after_help = "Go-style single-dash flags (-config FILE, -logf json, -debug, -version) are accepted.\n\
                  Every config setting can be overridden by NOTARY_SIGNER_<SETTING> (e.g. NOTARY_SIGNER_STORAGE_DB_URL);\n\
                  the passphrase of alias A is read from NOTARY_SIGNER_<A upper-cased>."
)]
pub struct Cli {
    /// Path to the JSON configuration file (Go notary-signer format).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Log format: json (default), logfmt or text.
    #[arg(long, value_name = "FORMAT", default_value = "json", global = true)]
    pub logf: String,

    /// Log at debug level and keep the process dumpable (no PR_SET_DUMPABLE hardening).
    #[arg(long, global = true)]
    pub debug: bool,

    /// Accepted for compatibility with Go's flag set; only meaningful for RethinkDB there.
    #[arg(long, hide = true)]
    pub bootstrap: bool,

    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Re-encrypt every stored key of passphrase alias FROM under alias TO and exit.
    /// Both passphrases come from NOTARY_SIGNER_<ALIAS> environment variables.
    RotateAlias {
        /// Alias the keys are encrypted under now.
        #[arg(long, value_name = "ALIAS")]
        from: String,
        /// Alias to re-encrypt them under.
        #[arg(long, value_name = "ALIAS")]
        to: String,
    },
    /// Move every live key of the database (Go's private_keys table) into the configured
    /// PKCS#11 token; the old rows are soft-deleted, not erased, for rollback. Passphrases
    /// come from NOTARY_SIGNER_<ALIAS>, the PIN from the pkcs11.pin_alias variable.
    Pkcs11Import {
        /// Only report what would move, and check that each key can be decrypted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Entry point of the binary: parses the command line and runs the chosen command.
pub fn run() -> ExitCode {
    let cli = Cli::parse_from(notary_common::flags::go_style_args(std::env::args_os()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("notary-signer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut logging_ready = false;
    let result = runtime.block_on(run_cli(cli, &mut logging_ready));
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line on stderr either way: through the logger once it exists (so JSON log
            // consumers see it), plainly before that.
            if logging_ready {
                tracing::error!("{e}");
            } else {
                eprintln!("notary-signer: {e}");
            }
            ExitCode::FAILURE
        }
    };
    // The log writer runs on its own thread: what it still buffers goes out now.
    logging::flush();
    code
}

async fn run_cli(cli: Cli, logging_ready: &mut bool) -> Result<(), SetupError> {
    let format: LogFormat = cli.logf.parse()?;
    let config_path = cli.config.clone().ok_or_else(|| SetupError::Invalid {
        setting: "-config".into(),
        reason: "a configuration file is required (notary-signer -config FILE)".into(),
    })?;
    let config = SignerConfig::load(&config_path)?;
    let level = if cli.debug {
        LevelFilter::DEBUG
    } else {
        config.log_level
    };
    let log_handle = logging::init(level, format)?;
    *logging_ready = true;
    if cli.bootstrap {
        tracing::warn!("-bootstrap only applies to RethinkDB in Go; ignored");
    }

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, cli.debug, log_handle).await,
        Command::Migrate => {
            let StorageConfig::Sql(backend) = config.storage else {
                println!("storage.backend is memory: nothing to migrate");
                return Ok(());
            };
            let applied = tokio::task::spawn_blocking(move || SqlKeyStore::migrate(&backend))
                .await
                .map_err(|e| SetupError::Serve(e.to_string()))??;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::RotateAlias { from, to } => {
            let StorageConfig::Sql(backend) = config.storage else {
                println!("storage.backend is memory: no stored keys to re-encrypt");
                return Ok(());
            };
            let new_alias = to.clone();
            let store = tokio::task::spawn_blocking(move || {
                SqlKeyStore::open(backend, &new_alias, Passphrases::from_env(), true)
            })
            .await
            .map_err(|e| SetupError::Serve(e.to_string()))??;
            let count = store.reencrypt_alias(&from, &to).await?;
            println!("re-encrypted {count} key(s) from alias {from:?} to alias {to:?}");
            Ok(())
        }
        Command::Pkcs11Import { dry_run } => {
            let store = open_pkcs11_store(&config)
                .await?
                .ok_or_else(|| SetupError::Invalid {
                    setting: "pkcs11.module".into(),
                    reason:
                        "pkcs11-import needs a pkcs11 section (module, token_label, pin_alias) \
                         and mysql or sqlite3 storage"
                            .into(),
                })?;
            let mut out = std::io::stdout();
            let report = store
                .import_database_keys(&Passphrases::from_env(), dry_run, &mut out)
                .await?;
            let verb = if dry_run { "would import" } else { "imported" };
            println!(
                "{verb} {} key(s); {} failed",
                report.imported, report.failed
            );
            if report.failed > 0 {
                return Err(SetupError::Serve(format!(
                    "{} key(s) could not be imported; see the lines above",
                    report.failed
                )));
            }
            Ok(())
        }
    }
}

/// Opens the PKCS#11 store when the config has a `pkcs11` section and SQL storage: the
/// token (PIN from the environment) and the database that lists its keys. Errors name the
/// setting.
pub async fn open_pkcs11_store(
    config: &SignerConfig,
) -> Result<Option<Pkcs11KeyStore>, SetupError> {
    let (Some(settings), StorageConfig::Sql(backend)) = (&config.pkcs11, &config.storage) else {
        return Ok(None);
    };
    let passphrases = Passphrases::from_env();
    let pin_source = Passphrases::env_var(&settings.pin_alias);
    let pin = passphrases
        .get(&settings.pin_alias)
        .map_err(|_| SetupError::Invalid {
            setting: "pkcs11.pin_alias".into(),
            reason: format!(
                "the token's user PIN is missing: set the environment variable {pin_source}"
            ),
        })?;
    let token_config = keystore::TokenConfig {
        module: settings.module.clone(),
        token_label: settings.token_label.clone(),
        slot: settings.slot,
        pin: zeroize::Zeroizing::new(pin),
        pin_source,
        max_sessions: settings.max_sessions,
    };
    let alias = config.default_alias.clone().unwrap_or_default();
    if !alias.is_empty() && passphrases.get(&alias).is_err() {
        tracing::warn!(alias, env_var = %Passphrases::env_var(&alias),
            "no passphrase for the default alias: keys still in the database cannot sign");
    }
    let backend = backend.clone();
    let store = tokio::task::spawn_blocking(move || -> Result<Pkcs11KeyStore, SetupError> {
        let token =
            keystore::pkcs11::Token::open(token_config).map_err(|e| SetupError::Invalid {
                setting: e.setting.into(),
                reason: e.reason,
            })?;
        let db = SqlKeyStore::open(backend, &alias, passphrases, true)?;
        Ok(Pkcs11KeyStore::new(token, db))
    })
    .await
    .map_err(|e| SetupError::Serve(e.to_string()))??;
    Ok(Some(store))
}

/// Builds the key service the configuration describes. For SQL storage this checks the
/// default alias and its passphrase, connects, and runs the migrations.
pub async fn open_key_service(config: &SignerConfig) -> Result<Arc<KeyService>, SetupError> {
    if let Some(store) = open_pkcs11_store(config).await? {
        tracing::info!(token = %store.token().name(), "keys are created and used in the PKCS#11 token");
        match store.database_key_count().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                keys = n,
                "keys are still in the database (private_keys); they sign until moved with \
                 `notary-signer pkcs11-import`"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot count the keys left in the database"),
        }
        return Ok(Arc::new(KeyService::new(Arc::new(store))));
    }
    let store: Arc<dyn KeyStore> = match &config.storage {
        StorageConfig::Memory => Arc::new(MemoryKeyStore::new()),
        StorageConfig::Sql(backend) => {
            let alias = config.require_default_alias()?.to_string();
            let passphrases = Passphrases::from_env();
            // Go only notices a missing passphrase on first use; failing now is kinder.
            if passphrases.get(&alias).is_err() {
                return Err(SetupError::MissingPassphrase {
                    env_var: Passphrases::env_var(&alias),
                    alias,
                });
            }
            let backend = backend.clone();
            let store = tokio::task::spawn_blocking(move || {
                SqlKeyStore::open(backend, &alias, passphrases, true)
            })
            .await
            .map_err(|e| SetupError::Serve(e.to_string()))??;
            Arc::new(store)
        }
    };
    Ok(Arc::new(KeyService::new(store)))
}

async fn serve(config: SignerConfig, debug: bool, log_handle: LogHandle) -> Result<(), SetupError> {
    if !debug {
        harden_process();
    }
    let tls = notary_common::tls::server_config(&config.tls, &[b"h2"])?;
    let keys = open_key_service(&config).await?;
    let addr = config.bind_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| SetupError::Listen {
            addr: config.grpc_addr.clone(),
            source,
        })?;
    let server =
        grpc::start(listener, Arc::new(tls), keys).map_err(|source| SetupError::Listen {
            addr: config.grpc_addr.clone(),
            source,
        })?;
    tracing::info!(addr = %server.local_addr(), mutual_tls = config.tls.client_ca.is_some(), "notary-signer serving gRPC");
    if config.insecure_no_client_auth {
        // Loud on purpose: any client that reaches the port can sign with every key.
        tracing::error!(
            addr = %server.local_addr(),
            "INSECURE: server.insecure_no_client_auth is set and server.client_ca_file is not: \
             client certificates are not checked, so any client can sign with any key"
        );
    }
    spawn_level_signals(log_handle);
    wait_for_termination().await;
    tracing::info!("shutting down");
    // Clients such as notary-server keep connections open; don't wait for them forever.
    match tokio::time::timeout(SHUTDOWN_GRACE, server.shutdown()).await {
        Ok(result) => result.map_err(|e| SetupError::Serve(e.to_string())),
        Err(_) => {
            tracing::warn!("connections still open after the grace period; exiting anyway");
            Ok(())
        }
    }
}

/// How long shutdown waits for in-flight calls.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Go's signer makes itself non-dumpable outside `-debug` so that key material cannot be
/// read from core dumps or by ptrace.
fn harden_process() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!(error = %e, "could not disable core dumps (PR_SET_DUMPABLE)");
    }
}

/// SIGUSR1 raises and SIGUSR2 lowers the log level, as in Go.
fn spawn_level_signals(handle: LogHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut up), Ok(mut down)) = (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::warn!("cannot install SIGUSR1/SIGUSR2 handlers");
        return;
    };
    tokio::spawn(async move {
        loop {
            let level = tokio::select! {
                _ = up.recv() => handle.raise(),
                _ = down.recv() => handle.lower(),
            };
            // Logged at error so that it shows whatever the new level.
            tracing::error!(%level, "log level changed by signal");
        }
    });
}

async fn wait_for_termination() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
