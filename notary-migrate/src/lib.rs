//! notary-migrate: move trust collections from any Notary v1 server to ours, import a Go
//! notary's databases, and inventory DCT trust data for leaving Docker Content Trust.
//!
//! Subcommands (see `notary-migrate <cmd> --help` and `docs/migration.md`):
//!
//! - `mirror`: fetch GUNs over a server's public API, verify everything as a client would,
//!   store the bytes verbatim with their versions ([`mirror`]);
//! - `import`: verify every row of Go notary-server / notary-signer databases and adopt them
//!   in place or copy them into fresh MySQL or SQLite databases ([`import`]);
//! - `inventory`: every signed tag, digest, size, signing role, signer key IDs, certificate
//!   subjects and role expiry, as JSON and CSV ([`inventory`]);
//! - `verify`: whether trust data vouches for image references, and through which role;
//! - `rotate-keys`: the owner's replacement of the server-held keys a mirrored GUN still
//!   names, signed with their root key ([`rotate`]);
//! - `rescue`: the owner's repair of an expired (or expiring) root certificate, root or
//!   targets, which the stock clients cannot publish ([`rescue`]).
//!
//! Exit status: 0 when everything succeeded; 1 when the run could not start or nothing was
//! done (unreachable source, bad TLS, unusable database, bad arguments); 2 when the run
//! finished but some GUNs, rows or references were not good (all listed in the report).
//!
//! # Testing
//! `cargo test -p notary-migrate` runs the unit tests. The end-to-end tests are in
//! `tests/tests/migrate.rs` (crate notary-e2e): a Go notary pair on MariaDB filled by the
//! notary and docker CLIs is mirrored, imported and inventoried, and the stock clients then
//! work through our server.

pub mod collect;
pub mod db;
pub mod import;
pub mod inventory;
pub mod mirror;
pub mod progress;
pub mod remote;
pub mod rescue;
pub mod rotate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::collect::{MetaSource, StoreSource};
use crate::db::DbSpec;
use crate::remote::{Credentials, RemoteNotary};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "notary-migrate",
    version,
    about = "Migrate Notary v1 trust data to this notary"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A remote notary server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Server URL, e.g. https://notary.example.com:4443.
    #[arg(long = "server", short = 's')]
    pub url: String,
    /// CA certificate(s) that sign the server's certificate (default: web PKI roots).
    #[arg(long = "tlscacert")]
    pub ca: Option<PathBuf>,
    /// User name for token authentication.
    #[arg(long)]
    pub username: Option<String>,
    /// Environment variable holding the password for token authentication.
    #[arg(long, default_value = "NOTARY_AUTH_PASSWORD")]
    pub password_env: String,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

impl ServerArgs {
    fn connect(&self) -> Result<RemoteNotary, String> {
        let credentials = match &self.username {
            Some(u) => Some(Credentials {
                username: u.clone(),
                password: std::env::var(&self.password_env).map_err(|_| {
                    format!("--username needs the password in ${}", self.password_env)
                })?,
            }),
            None => None,
        };
        RemoteNotary::new(
            &self.url,
            self.ca.as_deref(),
            credentials,
            Duration::from_secs(self.timeout),
        )
        .map_err(|e| e.to_string())
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mirror GUNs from a notary server's public API into our database.
    Mirror {
        /// The source server.
        #[command(flatten)]
        source: ServerArgs,
        /// A GUN to mirror (repeatable).
        #[arg(long = "gun")]
        guns: Vec<String>,
        /// A file with one GUN per line (# comments allowed).
        #[arg(long)]
        gun_file: Option<PathBuf>,
        /// Mirror every GUN the source's changefeed lists.
        #[arg(long)]
        all: bool,
        /// Target database of our notary-server (mysql://..., go DSN, postgres://..., or SQLite
        /// path).
        #[arg(long)]
        target_db: String,
        /// URL clients use for our server (for the printed owner commands).
        #[arg(long, default_value = "https://<our-notary>")]
        target_url: String,
        /// CA file clients use for our server (for the printed owner commands).
        #[arg(long)]
        target_ca: Option<String>,
        /// Copy only the current version of non-root roles (roots always come in full).
        #[arg(long)]
        no_history: bool,
        /// Do not ask the source for snapshot.key (a Go server creates a key when it holds
        /// none); the snapshot key is then reported as possibly server-held.
        #[arg(long)]
        no_snapshot_probe: bool,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Verify and import a Go notary's server and signer databases.
    Import {
        /// Go notary-server database (mysql://..., go DSN, postgres://..., or SQLite path).
        #[arg(long)]
        server_db: Option<String>,
        /// Go notary-signer database.
        #[arg(long)]
        signer_db: Option<String>,
        /// Copy the server database into this fresh database (default: adopt in place).
        #[arg(long)]
        target_server_db: Option<String>,
        /// Copy the signer database into this fresh database (default: adopt in place).
        #[arg(long)]
        target_signer_db: Option<String>,
        /// Re-encrypt every key under this passphrase alias (passphrase from
        /// NOTARY_SIGNER_<ALIAS>; the old aliases' passphrases must be set too).
        #[arg(long)]
        new_alias: Option<String>,
        /// Copy rows that fail verification too (they are reported either way).
        #[arg(long)]
        keep_invalid: bool,
        /// Verify and report only.
        #[arg(long)]
        dry_run: bool,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Export every signed tag of every GUN (or of a prefix) as JSON and CSV.
    Inventory {
        #[command(flatten)]
        from: SourceArgs,
        /// Only GUNs starting with this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// These GUNs only (repeatable; default: every GUN the changefeed lists).
        #[arg(long = "gun")]
        guns: Vec<String>,
        /// JSON output file ("-" for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
        /// CSV output file, one row per signed tag and role.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// CSV output file, one row per role (versions, expiry, keys).
        #[arg(long)]
        roles_csv: Option<PathBuf>,
    },
    /// Say whether DCT trust data vouches for image references (repo:tag or repo@sha256:..).
    Verify {
        #[command(flatten)]
        from: SourceArgs,
        /// Image references.
        #[arg(required = true)]
        references: Vec<String>,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Owner command: replace the source-held timestamp/snapshot keys of a mirrored GUN with
    /// keys our server holds, in one root signed with your root key.
    RotateKeys {
        /// Our server.
        #[command(flatten)]
        server: ServerArgs,
        /// Trust directory holding the root key (notary -d, or ~/.docker/trust).
        #[arg(long, short = 'd')]
        trust_dir: PathBuf,
        /// Roles to rotate.
        #[arg(long, value_delimiter = ',', default_value = "timestamp,snapshot")]
        roles: Vec<String>,
        /// The GUN.
        gun: String,
    },
    /// Re-sign an expired (or soon expiring) root certificate, root or targets with the
    /// owner's keys, which the stock clients cannot publish (passphrases from
    /// NOTARY_{ROOT,TARGETS,SNAPSHOT}_PASSPHRASE or Docker's DOCKER_CONTENT_TRUST_*).
    Rescue {
        /// The server holding the GUN.
        #[command(flatten)]
        server: ServerArgs,
        /// Trust directory holding the owner's keys (notary -d, or ~/.docker/trust).
        #[arg(long, short = 'd')]
        trust_dir: PathBuf,
        /// Also re-sign what expires within this many days.
        #[arg(long, default_value_t = 30)]
        within_days: u32,
        /// Report what would be re-signed; upload nothing.
        #[arg(long)]
        dry_run: bool,
        /// The GUN.
        gun: String,
    },
}

/// Where inventory/verify read from: a server or our database.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Server URL (public API).
    #[arg(long = "server", short = 's', conflicts_with = "db")]
    pub url: Option<String>,
    /// CA for --server.
    #[arg(long = "tlscacert")]
    pub ca: Option<PathBuf>,
    /// User name for token authentication.
    #[arg(long)]
    pub username: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, default_value = "NOTARY_AUTH_PASSWORD")]
    pub password_env: String,
    /// Our server's database instead of a server.
    #[arg(long)]
    pub db: Option<String>,
}

/// The time expiry and certificate checks are judged at.
fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Entry point of the binary.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("notary-migrate: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(execute(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("notary-migrate: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn write_out(path: &Path, text: &str) -> anyhow::Result<()> {
    if path == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

fn read_gun_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Runs one subcommand; `Ok(false)` means "finished, but something was not good".
pub async fn execute(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Mirror {
            source,
            mut guns,
            gun_file,
            all,
            target_db,
            target_url,
            target_ca,
            no_history,
            no_snapshot_probe,
            report,
        } => {
            if let Some(f) = gun_file {
                guns.extend(read_gun_file(&f)?);
            }
            if guns.is_empty() && !all {
                anyhow::bail!("give --gun, --gun-file or --all");
            }
            let remote = source.connect().map_err(anyhow::Error::msg)?;
            let spec = DbSpec::parse("--target-db", &target_db).map_err(anyhow::Error::msg)?;
            // Reach the source before touching the target at all.
            remote
                .ping()
                .await
                .map_err(|e| anyhow::anyhow!("source {} is not usable: {e}", remote.base()))?;
            let store = tokio::task::spawn_blocking(move || spec.open_store(true))
                .await?
                .map_err(anyhow::Error::msg)?;
            // What the mirror stores goes into the target's transparency log too: each file
            // gets its leaf in the same transaction; a server with the log on integrates them
            // (one without keeps them pending until it turns the log on).
            let store = Arc::new(
                notary_server::storage::SqlStore::clone(&store).with_transparency_log(true),
            );
            let job = mirror::MirrorJob {
                source: Arc::new(remote),
                guns,
                target: store,
                target_url,
                target_ca,
                now: now(),
                history: !no_history,
                probe_snapshot_key: !no_snapshot_probe,
            };
            let result = mirror::mirror(&job).await?;
            print!("{}", result.summary());
            if let Some(p) = report {
                write_out(&p, &serde_json::to_string_pretty(&result)?)?;
            }
            Ok(result.all_ok())
        }
        Command::Import {
            server_db,
            signer_db,
            target_server_db,
            target_signer_db,
            new_alias,
            keep_invalid,
            dry_run,
            report,
        } => {
            let parse = |name: &str, v: Option<String>| {
                v.map(|s| DbSpec::parse(name, &s))
                    .transpose()
                    .map_err(anyhow::Error::msg)
            };
            let job = import::ImportJob {
                server_source: parse("--server-db", server_db)?,
                signer_source: parse("--signer-db", signer_db)?,
                server_target: parse("--target-server-db", target_server_db)?,
                signer_target: parse("--target-signer-db", target_signer_db)?,
                new_alias,
                keep_invalid,
                dry_run,
                now: now(),
            };
            let result = import::import(job).await?;
            print!("{}", result.summary());
            if let Some(p) = report {
                write_out(&p, &serde_json::to_string_pretty(&result)?)?;
            }
            Ok(result.invalid.is_empty() && result.guns.values().all(|g| g.serves))
        }
        Command::Inventory {
            from,
            prefix,
            guns,
            json,
            csv,
            roles_csv,
        } => {
            if json.is_none() && csv.is_none() && roles_csv.is_none() {
                anyhow::bail!("give --json, --csv and/or --roles-csv");
            }
            let (source, name) = open_source(&from).await?;
            let mut guns = if guns.is_empty() {
                list_guns(&from, source.as_ref()).await?
            } else {
                guns
            };
            if let Some(p) = &prefix {
                guns.retain(|g| g.starts_with(p.as_str()));
            }
            let inv = inventory::inventory(
                source.as_ref().as_source(),
                &name,
                &guns,
                prefix.as_deref(),
                now(),
            )
            .await;
            if let Some(p) = json {
                write_out(&p, &(serde_json::to_string_pretty(&inv)? + "\n"))?;
            }
            if let Some(p) = csv {
                write_out(&p, &inventory::to_csv(&inv))?;
            }
            if let Some(p) = roles_csv {
                write_out(&p, &inventory::roles_csv(&inv))?;
            }
            let failed = inv.guns.iter().filter(|g| g.error.is_some()).count();
            eprintln!(
                "inventory: {} GUN(s), {} signed target entries, {failed} unreadable",
                inv.guns.len(),
                inv.guns.iter().map(|g| g.targets.len()).sum::<usize>()
            );
            Ok(failed == 0)
        }
        Command::Verify {
            from,
            references,
            json,
        } => {
            let refs = references
                .iter()
                .map(|r| inventory::parse_image_ref(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let (source, _) = open_source(&from).await?;
            let verdicts = inventory::verify_refs(source.as_ref().as_source(), &refs, now()).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&verdicts)?);
            } else {
                for v in &verdicts {
                    println!(
                        "{} {}: {}",
                        if v.vouched { "VOUCHED" } else { "NOT VOUCHED" },
                        v.reference,
                        v.reason
                    );
                }
            }
            Ok(verdicts.iter().all(|v| v.vouched))
        }
        Command::RotateKeys {
            server,
            trust_dir,
            roles,
            gun,
        } => {
            let remote = server.connect().map_err(anyhow::Error::msg)?;
            let passphrase = [
                "NOTARY_ROOT_PASSPHRASE",
                "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
            ]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "set NOTARY_ROOT_PASSPHRASE (or DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE) \
                         to the root key's passphrase"
                )
            })?;
            let done = rotate::rotate_keys(&remote, &gun, &roles, &trust_dir, &passphrase, now())
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "{gun}: published root version {}; the server now signs with {}",
                done.root_version,
                done.new_keys
                    .iter()
                    .map(|(r, k)| format!("{r} key {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(true)
        }
        Command::Rescue {
            server,
            trust_dir,
            within_days,
            dry_run,
            gun,
        } => {
            let remote = server.connect().map_err(anyhow::Error::msg)?;
            let done = rescue::rescue(
                &remote,
                &gun,
                &trust_dir,
                &rescue::Passphrases::from_env(),
                chrono::Duration::days(i64::from(within_days)),
                dry_run,
                now(),
            )
            .await
            .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&done)?);
            if !done.changed() {
                eprintln!("{gun}: nothing expires within {within_days} days; nothing to do");
            } else if dry_run {
                eprintln!("{gun}: dry run, nothing uploaded");
            } else {
                eprintln!(
                    "{gun}: repaired; expired delegations: `notary witness {gun} <role>` then \
                     `notary publish {gun}`"
                );
            }
            Ok(true)
        }
    }
}

/// A source for inventory/verify.
enum Source {
    Remote(RemoteNotary),
    Store(StoreSource),
}

impl Source {
    fn as_source(&self) -> &dyn MetaSource {
        match self {
            Source::Remote(r) => r,
            Source::Store(s) => s,
        }
    }
}

async fn open_source(from: &SourceArgs) -> anyhow::Result<(Box<Source>, String)> {
    match (&from.url, &from.db) {
        (Some(url), None) => {
            let args = ServerArgs {
                url: url.clone(),
                ca: from.ca.clone(),
                username: from.username.clone(),
                password_env: from.password_env.clone(),
                timeout: 30,
            };
            let remote = args.connect().map_err(anyhow::Error::msg)?;
            remote
                .ping()
                .await
                .map_err(|e| anyhow::anyhow!("{url} is not usable: {e}"))?;
            Ok((Box::new(Source::Remote(remote)), url.clone()))
        }
        (None, Some(db)) => {
            let spec = DbSpec::parse("--db", db).map_err(anyhow::Error::msg)?;
            let name = spec.display();
            let store = tokio::task::spawn_blocking(move || spec.open_existing_store())
                .await?
                .map_err(anyhow::Error::msg)?;
            Ok((Box::new(Source::Store(StoreSource(store))), name))
        }
        _ => anyhow::bail!("give either --server or --db"),
    }
}

/// Every GUN with live trust data, from the changefeed (server or database).
async fn list_guns(from: &SourceArgs, source: &Source) -> anyhow::Result<Vec<String>> {
    let mut latest: std::collections::BTreeMap<String, String> = Default::default();
    match source {
        Source::Remote(r) => {
            let feed = r.full_changefeed().await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no changefeed to list GUNs; give --gun",
                    from.url.as_deref().unwrap_or_default()
                )
            })?;
            for rec in feed {
                latest.insert(rec.gun, rec.category);
            }
        }
        Source::Store(s) => {
            let mut cursor = 0;
            loop {
                let page = s.0.get_changes(cursor, 500, None).await?;
                let n = page.len();
                for c in page {
                    cursor = c.id;
                    latest.insert(c.gun, c.category);
                }
                if n < 500 {
                    break;
                }
            }
        }
    }
    Ok(latest
        .into_iter()
        .filter(|(_, cat)| cat != "deletion")
        .map(|(g, _)| g)
        .collect())
}
