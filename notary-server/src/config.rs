//! notary-server configuration: Go's JSON format, unchanged (spec §13).
//!
//! [`Config::load`] reads the file given by `-config`, applies `NOTARY_SERVER_*`
//! environment overrides for the keys in [`KNOWN_KEYS`], resolves relative paths
//! against the file's directory and validates everything up front: a bad setting
//! is refused with one [`ConfigError`] line that names it.
//!
//! Settings read (Go's names; ours marked *):
//! - `server.http_addr` (required), `server.tls_cert_file` + `server.tls_key_file`
//!   (both or neither; TLS on when set), `server.client_ca_file` (require client
//!   certificates), `server.max_request_bytes`* (upload limit, default 100 MiB),
//!   `server.request_timeout_secs`* (time limit per request, body included, default 60,
//!   1..=86400; request headers must arrive within 10 s or this limit, whichever is
//!   shorter; see [`crate::http`] for what a client that is too slow gets),
//!   `server.max_upload_parts`* (parts per update, default 5000) and
//!   `server.max_upload_delegations`* (distinct delegation roles per update, default 2000);
//! - `trust_service.type` `local` | `remote`; for remote: `hostname`, `port`
//!   (string or number), `key_algorithm` `ecdsa` | `rsa` | `ed25519`,
//!   `tls_ca_file`, `tls_client_cert` + `tls_client_key` (both or neither);
//! - `storage.backend` `memory` | `mysql` | `postgres` | `sqlite3`, `storage.db_url` (Go DSN
//!   for MySQL, lib/pq URL or key=value string for PostgreSQL, file path for SQLite);
//! - `caching.max_age.current_metadata` (default 300) and
//!   `caching.max_age.consistent_metadata` (default 2592000), 0..=31536000 seconds;
//! - `repositories.gun_prefixes` (each must end in `/`, be path-clean, not start
//!   with `/` or `..`, have no surrounding whitespace);
//! - `logging.level` (logrus names, default `error`);
//! - `auth.type`: `token` enables token authentication (spec §9) with
//!   `auth.options.realm`, `.service`, `.issuer`, `.rootcertbundle` (all required strings;
//!   the bundle path is relative to the config file) and `.autoredirect` (bool); absent or
//!   `""` means no authentication. Any other value is refused at start: Go runs without
//!   authentication then, so a typo (`Token`, `htpasswd`) would silently open the server;
//! - `transparency_log.enabled`* (default false), `.origin`* (the log's name on its
//!   checkpoints, default `notary-server`), `.interval_ms`* (checkpoint interval, default
//!   1000), `.public`* (serve the log when token auth is on; default false): see
//!   [`crate::tlog`]. Needs SQL storage.

use std::path::{Path, PathBuf};

use notary_common::dsn::{sqlite_path, MysqlDsn, PostgresDsn};
use notary_common::tls::ServerTlsFiles;
use notary_common::ConfigFile;
use notary_tuf::keys::KeyType;
use serde_json::Value;

use crate::http::auth::TokenAuthOptions;

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "NOTARY_SERVER";

/// The scalar settings that `NOTARY_SERVER_<KEY>` variables may override.
pub const KNOWN_KEYS: &[&str] = &[
    "server.http_addr",
    "server.tls_cert_file",
    "server.tls_key_file",
    "server.client_ca_file",
    "server.max_request_bytes",
    "server.request_timeout_secs",
    "server.max_upload_parts",
    "server.max_upload_delegations",
    "trust_service.type",
    "trust_service.hostname",
    "trust_service.port",
    "trust_service.key_algorithm",
    "trust_service.tls_ca_file",
    "trust_service.tls_client_cert",
    "trust_service.tls_client_key",
    "storage.backend",
    "storage.db_url",
    "caching.max_age.current_metadata",
    "caching.max_age.consistent_metadata",
    "repositories.gun_prefixes",
    "logging.level",
    "auth.type",
    "auth.options.realm",
    "auth.options.service",
    "auth.options.issuer",
    "auth.options.rootcertbundle",
    "auth.options.autoredirect",
    "transparency_log.enabled",
    "transparency_log.origin",
    "transparency_log.interval_ms",
    "transparency_log.public",
    "server.trusted_proxies",
    "admin.http_addr",
    "admin.tls_cert_file",
    "admin.tls_key_file",
    "admin.client_ca_file",
    "retention.keep_versions",
    "retention.keep_days",
    "retention.interval_hours",
    "expiry.resign_interval_seconds",
    "expiry.timestamp_margin_hours",
    "expiry.snapshot_margin_days",
    "expiry.resign_batch",
    "expiry.metrics_interval_seconds",
];

/// Default `caching.max_age.current_metadata` (seconds).
pub const DEFAULT_CURRENT_MAX_AGE: u32 = 300;
/// Default `caching.max_age.consistent_metadata` (seconds, 30 days).
pub const DEFAULT_CONSISTENT_MAX_AGE: u32 = 2_592_000;
/// Largest accepted max-age (one year).
pub const MAX_MAX_AGE: u32 = 31_536_000;
/// Default `server.max_request_bytes` (100 MiB, the notary client's own cap).
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 100 * 1024 * 1024;
/// Default `server.max_upload_parts`: a publish has one part per changed role (at most the
/// four base roles plus its delegations), so this leaves room for thousands of delegations
/// while a body of a million tiny parts is refused after the first few thousand.
pub const DEFAULT_MAX_UPLOAD_PARTS: usize = 5_000;
/// Default `server.max_upload_delegations`: repositories have at most hundreds of
/// delegation roles, and each uploaded one costs a signature check and storage reads.
pub const DEFAULT_MAX_UPLOAD_DELEGATIONS: usize = 2_000;
/// Default `server.request_timeout_secs`.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 60;
/// Largest `server.request_timeout_secs` (one day).
pub const MAX_REQUEST_TIMEOUT_SECS: u64 = 86_400;

/// A configuration problem; the message is the one line printed at startup.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<notary_common::ConfigError> for ConfigError {
    fn from(e: notary_common::ConfigError) -> Self {
        ConfigError(e.to_string())
    }
}

fn bad(key: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("config setting {key}: {reason}"))
}

/// A positive count setting, `default` when absent.
fn positive_count(file: &ConfigFile, key: &str, default: usize) -> Result<usize, ConfigError> {
    match file.get_i64(key)? {
        None => Ok(default),
        Some(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(n) => Err(bad(key, format!("must be positive, got {n}"))),
    }
}

/// The validated server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address as configured (Go form `:4443` allowed).
    pub http_addr: String,
    /// HTTPS settings; `None` = plain HTTP.
    pub tls: Option<ServerTlsFiles>,
    /// Largest accepted request body.
    pub max_request_bytes: u64,
    /// Time limit for one request, in seconds.
    pub request_timeout_secs: u64,
    /// Most parts in one update.
    pub max_upload_parts: usize,
    /// Most distinct delegation roles in one update.
    pub max_upload_delegations: usize,
    /// Signing service.
    pub trust: TrustService,
    /// Metadata storage.
    pub storage: StorageConfig,
    /// Cache-Control max-ages.
    pub caching: CachingConfig,
    /// Accepted GUN prefixes (empty = all).
    pub gun_prefixes: Vec<String>,
    /// logrus level name.
    pub log_level: String,
    /// Token authentication; `None` when `auth.type` is not `token`.
    pub auth: Option<TokenAuthOptions>,
    /// Apply pending MySQL migrations at start (the `-migrate` flag, not a file
    /// setting; SQLite always migrates).
    pub migrate: bool,
    /// The transparency log, when `transparency_log.enabled`.
    pub transparency_log: Option<TransparencyLogConfig>,
    /// `-log-backfill`: append log leaves for every stored file that has none, integrate
    /// them, and exit.
    pub log_backfill: bool,
    /// `server.trusted_proxies`: peers whose `X-Forwarded-For` names the client in the
    /// audit trail.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The admin listener (`admin.*`), when `admin.http_addr` is set.
    pub admin: Option<AdminConfig>,
    /// Scheduled pruning (`retention.*`), when `retention.interval_hours` is set.
    pub retention: Option<RetentionConfig>,
    /// Expiry watch (`expiry.*`): background re-signing and the expiry metrics.
    pub expiry: ExpiryConfig,
}

/// `expiry.*`. Both tasks run with SQL storage only; an interval of 0 turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryConfig {
    /// How server-held roles are re-signed ahead of expiry; `None` when
    /// `expiry.resign_interval_seconds` is 0.
    pub resign: Option<crate::expiry::resign::ResignSettings>,
    /// Refresh of the expiry gauges; `None` when `expiry.metrics_interval_seconds` is 0.
    pub metrics_interval: Option<std::time::Duration>,
}

/// A timestamp lives 14 days: a margin of that or more would re-sign it on every pass.
const MAX_TIMESTAMP_MARGIN_HOURS: i64 = 14 * 24 - 1;
/// A server-managed snapshot lives three years.
const MAX_SNAPSHOT_MARGIN_DAYS: i64 = 3 * 365 - 1;

fn expiry(file: &ConfigFile) -> Result<ExpiryConfig, ConfigError> {
    use crate::expiry::resign::ResignSettings;
    let ranged = |key: &str, default: i64, lo: i64, hi: i64| -> Result<i64, ConfigError> {
        match file.get_i64(key)? {
            None => Ok(default),
            Some(n) if (lo..=hi).contains(&n) => Ok(n),
            Some(n) => Err(bad(key, format!("must be between {lo} and {hi}, got {n}"))),
        }
    };
    let defaults = ResignSettings::default();
    let interval = ranged(
        "expiry.resign_interval_seconds",
        i64::try_from(defaults.interval.as_secs()).unwrap_or(3600),
        0,
        7 * 24 * 3600,
    )?;
    let timestamp_margin = ranged(
        "expiry.timestamp_margin_hours",
        defaults.timestamp_margin.num_hours(),
        1,
        MAX_TIMESTAMP_MARGIN_HOURS,
    )?;
    let snapshot_margin = ranged(
        "expiry.snapshot_margin_days",
        defaults.snapshot_margin.num_days(),
        1,
        MAX_SNAPSHOT_MARGIN_DAYS,
    )?;
    let batch = ranged("expiry.resign_batch", defaults.batch, 1, 100_000)?;
    let metrics = ranged("expiry.metrics_interval_seconds", 60, 0, 24 * 3600)?;
    let seconds = |n: i64| std::time::Duration::from_secs(u64::try_from(n).unwrap_or(0));
    Ok(ExpiryConfig {
        resign: (interval > 0).then(|| ResignSettings {
            interval: seconds(interval),
            timestamp_margin: chrono::Duration::hours(timestamp_margin),
            snapshot_margin: chrono::Duration::days(snapshot_margin),
            batch,
        }),
        metrics_interval: (metrics > 0).then(|| seconds(metrics)),
    })
}

/// `admin.*`: the admin API and console listener. Always HTTPS with client certificates.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Listen address (`host:port`; Go form `:port` allowed).
    pub http_addr: String,
    /// Certificate, key (default: the public listener's) and the client CA (required).
    pub tls: ServerTlsFiles,
}

impl AdminConfig {
    /// The address to bind (`:port` means every interface).
    pub fn bind_addr(&self) -> String {
        if self.http_addr.starts_with(':') {
            format!("0.0.0.0{}", self.http_addr)
        } else {
            self.http_addr.clone()
        }
    }
}

/// `retention.*`: prune on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// What to keep.
    pub policy: crate::storage::PrunePolicy,
    /// Time between runs.
    pub interval: std::time::Duration,
}

fn admin(file: &ConfigFile, storage: &StorageConfig) -> Result<Option<AdminConfig>, ConfigError> {
    let Some(http_addr) = file.get_str("admin.http_addr")?.filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if matches!(storage, StorageConfig::Memory) {
        return Err(bad(
            "admin.http_addr",
            "the admin API needs mysql, postgres or sqlite3 storage",
        ));
    }
    let path = |key: &str, fallback: &str| -> Result<Option<(PathBuf, String)>, ConfigError> {
        Ok(match file.get_path(key)? {
            Some(p) => Some((p, key.to_owned())),
            None => file.get_path(fallback)?.map(|p| (p, fallback.to_owned())),
        })
    };
    let cert = path("admin.tls_cert_file", "server.tls_cert_file")?;
    let key = path("admin.tls_key_file", "server.tls_key_file")?;
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err(bad(
            "admin.tls_cert_file",
            "the admin listener is HTTPS only: set admin.tls_cert_file and admin.tls_key_file \
             (or the server's)",
        ));
    };
    let client_ca = file.get_path("admin.client_ca_file")?.ok_or_else(|| {
        bad(
            "admin.client_ca_file",
            "the admin listener requires client certificates: set the CA that issues them",
        )
    })?;
    Ok(Some(AdminConfig {
        http_addr,
        tls: ServerTlsFiles {
            cert,
            key,
            client_ca: Some((client_ca, "admin.client_ca_file".to_owned())),
        },
    }))
}

fn trusted_proxies(file: &ConfigFile) -> Result<Vec<std::net::IpAddr>, ConfigError> {
    file.get_str_list("server.trusted_proxies")?
        .unwrap_or_default()
        .iter()
        .map(|a| {
            a.parse().map_err(|_| {
                bad(
                    "server.trusted_proxies",
                    format!("{a:?} is not an IP address"),
                )
            })
        })
        .collect()
}

fn retention(
    file: &ConfigFile,
    storage: &StorageConfig,
) -> Result<Option<RetentionConfig>, ConfigError> {
    let count = |key: &str| -> Result<Option<u32>, ConfigError> {
        match file.get_i64(key)? {
            None => Ok(None),
            Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Ok(Some(n as u32)),
            Some(n) => Err(bad(key, format!("must be a positive number, got {n}"))),
        }
    };
    let keep_versions = count("retention.keep_versions")?;
    let keep_days = count("retention.keep_days")?;
    let Some(hours) = count("retention.interval_hours")? else {
        return Ok(None);
    };
    if matches!(storage, StorageConfig::Memory) {
        return Err(bad(
            "retention.interval_hours",
            "retention needs mysql, postgres or sqlite3 storage",
        ));
    }
    let policy = crate::storage::PrunePolicy {
        keep_versions,
        keep_days,
    };
    policy
        .check_named("retention.keep_versions", "retention.keep_days")
        .map_err(|e| bad("retention.keep_versions", e))?;
    Ok(Some(RetentionConfig {
        policy,
        interval: std::time::Duration::from_secs(u64::from(hours) * 3600),
    }))
}

/// `transparency_log.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLogConfig {
    /// Origin line of the checkpoints.
    pub origin: String,
    /// Checkpoint interval.
    pub interval: std::time::Duration,
    /// Serve the log API when token auth is on.
    pub public: bool,
}

fn transparency_log(
    file: &ConfigFile,
    storage: &StorageConfig,
) -> Result<Option<TransparencyLogConfig>, ConfigError> {
    if !file.get_bool("transparency_log.enabled")?.unwrap_or(false) {
        return Ok(None);
    }
    if matches!(storage, StorageConfig::Memory) {
        return Err(bad(
            "transparency_log.enabled",
            "needs mysql, postgres or sqlite3 storage: the log lives in the database",
        ));
    }
    let origin = file
        .get_str("transparency_log.origin")?
        .unwrap_or_else(|| "notary-server".to_string());
    // The origin doubles as the note key name: no spaces, no '+' (C2SP signed-note).
    if origin.is_empty()
        || origin.contains('+')
        || origin.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(
            "transparency_log.origin",
            format!("{origin:?} must be non-empty, without spaces or '+'"),
        ));
    }
    let interval_ms = match file.get_i64("transparency_log.interval_ms")? {
        None => 1000,
        Some(n) if (10..=3_600_000).contains(&n) => n as u64,
        Some(n) => {
            return Err(bad(
                "transparency_log.interval_ms",
                format!("must be between 10 and 3600000, got {n}"),
            ))
        }
    };
    Ok(Some(TransparencyLogConfig {
        origin,
        interval: std::time::Duration::from_millis(interval_ms),
        public: file.get_bool("transparency_log.public")?.unwrap_or(false),
    }))
}

/// `trust_service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustService {
    /// In-process Ed25519 signer; keys are lost on restart.
    Local,
    /// notary-signer over gRPC.
    Remote(RemoteSignerConfig),
}

impl TrustService {
    /// The algorithm of newly created server keys (local is always Ed25519).
    pub fn key_type(&self) -> KeyType {
        match self {
            TrustService::Local => KeyType::Ed25519,
            TrustService::Remote(r) => r.key_algorithm.clone(),
        }
    }
}

/// How to reach notary-signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSignerConfig {
    /// Host name; also the TLS server name.
    pub hostname: String,
    /// gRPC port.
    pub port: u16,
    /// Algorithm for new keys.
    pub key_algorithm: KeyType,
    /// CA bundle for the signer's certificate (system roots when absent).
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// `storage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// Process memory (tests, demos).
    Memory,
    /// MySQL/MariaDB; `url` is the diesel URL made from the Go DSN.
    Mysql {
        /// diesel connection URL (contains the password: never log it).
        url: String,
        /// The DSN without password, for logs.
        redacted: String,
    },
    /// SQLite database file.
    Sqlite {
        /// Database file.
        path: PathBuf,
    },
    /// PostgreSQL; the `db_url` as Go's lib/pq takes it.
    Postgres(PostgresDsn),
}

/// `caching.max_age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachingConfig {
    /// Seconds for current metadata (`{role}.json`).
    pub current_max_age: u32,
    /// Seconds for consistent metadata (by checksum or version).
    pub consistent_max_age: u32,
}

impl Default for CachingConfig {
    fn default() -> Self {
        CachingConfig {
            current_max_age: DEFAULT_CURRENT_MAX_AGE,
            consistent_max_age: DEFAULT_CONSISTENT_MAX_AGE,
        }
    }
}

impl Config {
    /// Reads and validates the config file, with `NOTARY_SERVER_*` overrides from
    /// the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = ConfigFile::load(path, ENV_PREFIX, KNOWN_KEYS)?;
        Config::from_file(&file)
    }

    /// Validates an already loaded file (tests build one with
    /// [`ConfigFile::from_value`]).
    pub fn from_file(file: &ConfigFile) -> Result<Config, ConfigError> {
        let log_level = file
            .get_str("logging.level")?
            .unwrap_or_else(|| "error".to_owned());
        notary_common::logging::parse_level(&log_level).map_err(|e| bad("logging.level", e))?;
        let gun_prefixes = gun_prefixes(file)?;
        let trust = trust_service(file)?;
        let storage = storage(file)?;
        let caching = CachingConfig {
            current_max_age: max_age(
                file,
                "caching.max_age.current_metadata",
                DEFAULT_CURRENT_MAX_AGE,
            )?,
            consistent_max_age: max_age(
                file,
                "caching.max_age.consistent_metadata",
                DEFAULT_CONSISTENT_MAX_AGE,
            )?,
        };
        let http_addr = file.require_str("server.http_addr")?;
        let tls = server_tls(file)?;
        let max_request_bytes = match file.get_i64("server.max_request_bytes")? {
            None => DEFAULT_MAX_REQUEST_BYTES,
            Some(n) if n > 0 => n as u64,
            Some(n) => {
                return Err(bad(
                    "server.max_request_bytes",
                    format!("must be positive, got {n}"),
                ))
            }
        };
        let request_timeout_secs = match file.get_i64("server.request_timeout_secs")? {
            None => DEFAULT_REQUEST_TIMEOUT_SECS,
            Some(n) if (1..=MAX_REQUEST_TIMEOUT_SECS as i64).contains(&n) => n as u64,
            Some(n) => {
                return Err(bad(
                    "server.request_timeout_secs",
                    format!("must be between 1 and {MAX_REQUEST_TIMEOUT_SECS}, got {n}"),
                ))
            }
        };
        let max_upload_parts =
            positive_count(file, "server.max_upload_parts", DEFAULT_MAX_UPLOAD_PARTS)?;
        let max_upload_delegations = positive_count(
            file,
            "server.max_upload_delegations",
            DEFAULT_MAX_UPLOAD_DELEGATIONS,
        )?;
        let auth = token_auth(file)?;
        let transparency_log = transparency_log(file, &storage)?;
        let trusted_proxies = trusted_proxies(file)?;
        let admin = admin(file, &storage)?;
        let retention = retention(file, &storage)?;
        let expiry = expiry(file)?;
        Ok(Config {
            http_addr,
            tls,
            max_request_bytes,
            request_timeout_secs,
            max_upload_parts,
            max_upload_delegations,
            trust,
            storage,
            caching,
            gun_prefixes,
            log_level,
            auth,
            migrate: false,
            transparency_log,
            log_backfill: false,
            trusted_proxies,
            admin,
            retention,
            expiry,
        })
    }

    /// The address to bind: Go's `:port` means every interface.
    pub fn bind_addr(&self) -> String {
        if self.http_addr.starts_with(':') {
            format!("0.0.0.0{}", self.http_addr)
        } else {
            self.http_addr.clone()
        }
    }
}

/// `auth`: `type` = `token` enables authentication, absent or `""` disables it; its options
/// are checked like Go's `checkOptions` (the bundle itself is read at startup).
fn token_auth(file: &ConfigFile) -> Result<Option<TokenAuthOptions>, ConfigError> {
    match file.get_str("auth.type")?.as_deref() {
        None | Some("") => return Ok(None),
        Some("token") => {}
        // Go treats every other value as "no auth"; a misspelt type must not open the server.
        Some(other) => {
            return Err(bad(
                "auth.type",
                format!("unsupported value {other:?} (use \"token\", or leave it unset for no authentication)"),
            ))
        }
    }
    if let Some(v) = file.get("auth.options") {
        if !v.is_object() {
            return Err(bad("auth.options", "must be an object"));
        }
    }
    let option = |name: &str| {
        let key = format!("auth.options.{name}");
        match file.get(&key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(bad(
                &key,
                format!("token auth requires a valid option string: {name:?}"),
            )),
        }
    };
    let realm = option("realm")?;
    let issuer = option("issuer")?;
    let service = option("service")?;
    let bundle = option("rootcertbundle")?;
    let autoredirect = file
        .get_bool("auth.options.autoredirect")
        .map_err(|_| {
            bad(
                "auth.options.autoredirect",
                "token auth requires a valid option bool: autoredirect",
            )
        })?
        .unwrap_or(false);
    Ok(Some(TokenAuthOptions {
        realm,
        service,
        issuer,
        root_cert_bundle: file.resolve(&bundle),
        autoredirect,
    }))
}

/// `repositories.gun_prefixes`, validated like Go's `getRequiredGunPrefixes`.
fn gun_prefixes(file: &ConfigFile) -> Result<Vec<String>, ConfigError> {
    let prefixes = file
        .get_str_list("repositories.gun_prefixes")?
        .unwrap_or_default();
    for prefix in &prefixes {
        if !valid_gun_prefix(prefix) {
            return Err(ConfigError(format!("invalid GUN prefix {prefix}")));
        }
    }
    Ok(prefixes)
}

/// A prefix must end in `/`, be path-clean, not start with `/` or `..`, and have no
/// surrounding whitespace (spec §2.4).
pub fn valid_gun_prefix(prefix: &str) -> bool {
    let cleaned = go_path_clean(prefix.trim());
    format!("{cleaned}/") == prefix && !cleaned.starts_with('/') && !cleaned.starts_with("..")
}

/// Go's `path.Clean`.
fn go_path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn trust_service(file: &ConfigFile) -> Result<TrustService, ConfigError> {
    match file.get_str("trust_service.type")?.as_deref() {
        Some("local") => Ok(TrustService::Local),
        Some("remote") => {
            let algo = file
                .get_str("trust_service.key_algorithm")?
                .unwrap_or_default();
            let key_algorithm = match algo.as_str() {
                "ecdsa" => KeyType::Ecdsa,
                "rsa" => KeyType::Rsa,
                "ed25519" => KeyType::Ed25519,
                other => {
                    let reason = format!("invalid key algorithm configured: {other:?}");
                    return Err(bad("trust_service.key_algorithm", reason));
                }
            };
            let hostname = file.require_str("trust_service.hostname")?;
            let port_str = file.require_str("trust_service.port")?;
            let port = port_str
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    bad(
                        "trust_service.port",
                        format!("not a port number: {port_str:?}"),
                    )
                })?;
            let tls_ca_file = file.get_path("trust_service.tls_ca_file")?;
            let cert = file.get_path("trust_service.tls_client_cert")?;
            let key = file.get_path("trust_service.tls_client_key")?;
            let client_identity = match (cert, key) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    return Err(ConfigError(
                        "config settings trust_service.tls_client_cert and trust_service.tls_client_key: either pass both client key and cert, or neither".into(),
                    ))
                }
            };
            Ok(TrustService::Remote(RemoteSignerConfig {
                hostname,
                port,
                key_algorithm,
                tls_ca_file,
                client_identity,
            }))
        }
        other => Err(bad(
            "trust_service.type",
            format!(
                "must specify either a \"local\" or \"remote\" type for trust_service, got {:?}",
                other.unwrap_or("")
            ),
        )),
    }
}

fn storage(file: &ConfigFile) -> Result<StorageConfig, ConfigError> {
    let backend = file.get_str("storage.backend")?.unwrap_or_default();
    match backend.as_str() {
        "memory" => Ok(StorageConfig::Memory),
        "mysql" => {
            let dsn = file.get_str("storage.db_url")?.ok_or_else(|| {
                bad(
                    "storage.db_url",
                    "must provide a non-empty database source for mysql",
                )
            })?;
            let parsed =
                MysqlDsn::parse("storage.db_url", &dsn).map_err(|e| ConfigError(e.to_string()))?;
            Ok(StorageConfig::Mysql {
                url: parsed.to_diesel_url(),
                redacted: parsed.redacted(),
            })
        }
        "sqlite3" => {
            let db = file.get_str("storage.db_url")?.ok_or_else(|| {
                bad(
                    "storage.db_url",
                    "must provide a non-empty database source for sqlite3",
                )
            })?;
            Ok(StorageConfig::Sqlite {
                path: sqlite_path(file.dir(), &db),
            })
        }
        "postgres" => {
            let dsn = file.get_str("storage.db_url")?.ok_or_else(|| {
                bad(
                    "storage.db_url",
                    "must provide a non-empty database source for postgres",
                )
            })?;
            PostgresDsn::parse("storage.db_url", &dsn)
                .map(StorageConfig::Postgres)
                .map_err(|e| ConfigError(e.to_string()))
        }
        "rethinkdb" | "couchdb" => Err(bad(
            "storage.backend",
            format!(
                "{backend} is not supported by this server (use mysql, postgres, sqlite3 or memory)"
            ),
        )),
        other => Err(bad(
            "storage.backend",
            format!("{other:?} is not a supported storage backend"),
        )),
    }
}

fn max_age(file: &ConfigFile, key: &str, default: u32) -> Result<u32, ConfigError> {
    let Some(text) = file.get_str(key)? else {
        return Ok(default);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_MAX_AGE)
        .ok_or_else(|| {
            bad(
                key,
                format!("must specify a cache-control max-age between 0 and {MAX_MAX_AGE}, got {text:?}"),
            )
        })
}

fn server_tls(file: &ConfigFile) -> Result<Option<ServerTlsFiles>, ConfigError> {
    let cert = file.get_path("server.tls_cert_file")?;
    let key = file.get_path("server.tls_key_file")?;
    let ca = file.get_path("server.client_ca_file")?;
    match (cert, key) {
        (None, None) if ca.is_none() => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(ServerTlsFiles {
            cert: (cert, "server.tls_cert_file".into()),
            key: (key, "server.tls_key_file".into()),
            client_ca: ca.map(|p| (p, "server.client_ca_file".into())),
        })),
        _ => Err(ConfigError(
            "config settings server.tls_cert_file, server.tls_key_file: either include both a cert and key file, or no TLS information at all to disable TLS".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(v: Value) -> Result<Config, ConfigError> {
        Config::from_file(&ConfigFile::from_value(v, PathBuf::from("/etc/notary")))
    }

    fn minimal() -> Value {
        json!({
            "server": {"http_addr": ":4443"},
            "trust_service": {"type": "local"},
            "storage": {"backend": "memory"}
        })
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        let mut node = &mut base;
        let parts: Vec<&str> = key.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            node = node
                .as_object_mut()
                .unwrap()
                .entry(p.to_string())
                .or_insert_with(|| json!({}));
        }
        node[parts[parts.len() - 1]] = value;
        base
    }

    fn err(v: Value) -> String {
        load(v).unwrap_err().to_string()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load(minimal()).unwrap();
        assert_eq!(c.bind_addr(), "0.0.0.0:4443");
        assert!(c.tls.is_none());
        assert_eq!(c.trust, TrustService::Local);
        assert_eq!(c.trust.key_type(), KeyType::Ed25519);
        assert_eq!(c.storage, StorageConfig::Memory);
        assert_eq!(c.caching, CachingConfig::default());
        assert_eq!(c.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(c.log_level, "error");
        assert!(c.gun_prefixes.is_empty());
        assert!(c.auth.is_none());
        assert_eq!(c.request_timeout_secs, DEFAULT_REQUEST_TIMEOUT_SECS);
        assert_eq!(
            (c.max_upload_parts, c.max_upload_delegations),
            (DEFAULT_MAX_UPLOAD_PARTS, DEFAULT_MAX_UPLOAD_DELEGATIONS)
        );
    }

    #[test]
    fn upload_limits_are_positive_counts() {
        let c = load(with(
            with(minimal(), "server.max_upload_parts", json!(10)),
            "server.max_upload_delegations",
            json!(3),
        ))
        .unwrap();
        assert_eq!((c.max_upload_parts, c.max_upload_delegations), (10, 3));
        for key in ["server.max_upload_parts", "server.max_upload_delegations"] {
            for bad in [json!(0), json!(-1), json!("many")] {
                let e = err(with(minimal(), key, bad));
                assert!(e.contains(key), "{key}: {e}");
            }
        }
    }

    fn token(options: Value) -> Value {
        with(
            minimal(),
            "auth",
            json!({"type": "token", "options": options}),
        )
    }

    fn token_options() -> Value {
        json!({"realm": "https://a/token", "service": "notary", "issuer": "iss",
               "rootcertbundle": "/abs/roots.pem"})
    }

    #[test]
    fn token_auth_options_are_checked_like_go() {
        let c = load(token(token_options())).unwrap();
        let auth = c.auth.unwrap();
        assert_eq!(auth.root_cert_bundle, PathBuf::from("/abs/roots.pem"));
        assert!(!auth.autoredirect);
        for name in ["realm", "service", "issuer", "rootcertbundle"] {
            let mut o = token_options();
            o.as_object_mut().unwrap().remove(name);
            let e = err(token(o));
            assert_eq!(
                e,
                format!("config setting auth.options.{name}: token auth requires a valid option string: \"{name}\"")
            );
            let mut o = token_options();
            o[name] = json!(5);
            assert!(err(token(o)).contains(name));
        }
        let mut o = token_options();
        o["autoredirect"] = json!(true);
        assert!(load(token(o)).unwrap().auth.unwrap().autoredirect);
        let mut o = token_options();
        o["autoredirect"] = json!("maybe");
        assert!(err(token(o)).contains("autoredirect"));
    }

    #[test]
    fn auth_type_other_than_token_is_refused() {
        // Go runs without authentication for any type but "token"; we refuse at start.
        for t in ["htpasswd", "Token", "TOKEN", " token", "token ", "silly"] {
            let v = with(
                minimal(),
                "auth",
                json!({"type": t, "options": token_options()}),
            );
            let e = err(v);
            assert!(e.starts_with("config setting auth.type: "), "{t:?}: {e}");
            assert!(e.contains(&format!("{t:?}")), "{t:?}: {e}");
        }
        // Absent or empty: no authentication, as in Go.
        for v in [
            with(minimal(), "auth", json!({"type": "", "options": {}})),
            with(minimal(), "auth", json!({"options": token_options()})),
            minimal(),
        ] {
            assert!(load(v).unwrap().auth.is_none());
        }
    }

    #[test]
    fn request_timeout_is_bounded() {
        let c = load(with(minimal(), "server.request_timeout_secs", json!(5))).unwrap();
        assert_eq!(c.request_timeout_secs, 5);
        for bad in [json!(0), json!(-1), json!(86_401), json!("soon")] {
            assert!(err(with(minimal(), "server.request_timeout_secs", bad))
                .contains("server.request_timeout_secs"));
        }
    }

    #[test]
    fn go_fixture_config_is_accepted() {
        let c = load(json!({
            "server": {"http_addr": ":4443", "tls_key_file": "./notary-server.key", "tls_cert_file": "./notary-server.crt"},
            "trust_service": {"type": "remote", "hostname": "notarysigner", "port": "7899",
                "tls_ca_file": "./root-ca.crt", "key_algorithm": "ecdsa",
                "tls_client_cert": "./notary-server.crt", "tls_client_key": "./notary-server.key"},
            "logging": {"level": "debug"},
            "storage": {"backend": "mysql", "db_url": "server@tcp(mysql:3306)/notaryserver?parseTime=True"},
            "caching": {"max_age": {"current_metadata": 0, "consistent_metadata": "31536000"}},
            "repositories": {"gun_prefixes": ["docker.io/", "localhost:5000/"]},
            "auth": {"type": "token", "options": {"realm": "https://auth/token", "service": "notary",
                "issuer": "auth-issuer", "rootcertbundle": "certs/token-roots.pem"}}
        }))
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert.0, PathBuf::from("/etc/notary/./notary-server.crt"));
        assert!(tls.client_ca.is_none());
        let TrustService::Remote(r) = c.trust else {
            panic!()
        };
        assert_eq!(r.port, 7899);
        assert_eq!(r.key_algorithm, KeyType::Ecdsa);
        assert_eq!(
            r.tls_ca_file,
            Some(PathBuf::from("/etc/notary/./root-ca.crt"))
        );
        assert!(r.client_identity.is_some());
        assert_eq!(
            c.storage,
            StorageConfig::Mysql {
                url: "mysql://server@mysql:3306/notaryserver".into(),
                redacted: "server@mysql:3306/notaryserver".into()
            }
        );
        assert_eq!(c.caching.current_max_age, 0);
        assert_eq!(c.caching.consistent_max_age, 31_536_000);
        assert_eq!(c.gun_prefixes, ["docker.io/", "localhost:5000/"]);
        let auth = c.auth.unwrap();
        assert_eq!(
            auth,
            TokenAuthOptions {
                realm: "https://auth/token".into(),
                service: "notary".into(),
                issuer: "auth-issuer".into(),
                root_cert_bundle: PathBuf::from("/etc/notary/certs/token-roots.pem"),
                autoredirect: false,
            }
        );
    }

    #[test]
    fn numeric_port_and_sqlite_path() {
        let v = with(
            minimal(),
            "trust_service",
            json!({"type": "remote", "hostname": "s", "port": 7899, "key_algorithm": "ed25519"}),
        );
        let v = with(
            v,
            "storage",
            json!({"backend": "sqlite3", "db_url": "data/server.db"}),
        );
        let c = load(v).unwrap();
        assert!(matches!(c.trust, TrustService::Remote(ref r) if r.port == 7899));
        assert_eq!(
            c.storage,
            StorageConfig::Sqlite {
                path: PathBuf::from("/etc/notary/data/server.db")
            }
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: Vec<(Value, &str)> = vec![
            (
                with(minimal(), "server.http_addr", json!("")),
                "server.http_addr",
            ),
            (
                with(minimal(), "trust_service.type", json!("cloud")),
                "trust_service.type",
            ),
            (
                with(
                    minimal(),
                    "trust_service",
                    json!({"type": "remote", "hostname": "h", "port": "1", "key_algorithm": "dsa"}),
                ),
                "trust_service.key_algorithm",
            ),
            (
                with(
                    minimal(),
                    "trust_service",
                    json!({"type": "remote", "hostname": "h", "port": "x", "key_algorithm": "ecdsa"}),
                ),
                "trust_service.port",
            ),
            (
                with(
                    minimal(),
                    "trust_service",
                    json!({"type": "remote", "hostname": "h", "port": "1", "key_algorithm": "ecdsa", "tls_client_cert": "c"}),
                ),
                "trust_service.tls_client_key",
            ),
            (
                with(minimal(), "storage.backend", json!("postgres")),
                "storage.db_url",
            ),
            (
                with(
                    minimal(),
                    "storage",
                    json!({"backend": "postgres", "db_url": "postgres://u@h/db?sslmode=sometimes"}),
                ),
                "storage.db_url",
            ),
            (
                with(minimal(), "storage.backend", json!("foo")),
                "storage.backend",
            ),
            (
                with(minimal(), "storage.backend", json!("mysql")),
                "storage.db_url",
            ),
            (
                with(
                    minimal(),
                    "storage",
                    json!({"backend": "mysql", "db_url": "u@tcp(h:1/db"}),
                ),
                "storage.db_url",
            ),
            (
                with(minimal(), "caching.max_age.current_metadata", json!(-1)),
                "caching.max_age.current_metadata",
            ),
            (
                with(
                    minimal(),
                    "caching.max_age.consistent_metadata",
                    json!(31_536_001),
                ),
                "caching.max_age.consistent_metadata",
            ),
            (
                with(minimal(), "caching.max_age.current_metadata", json!("1.5")),
                "caching.max_age.current_metadata",
            ),
            (
                with(minimal(), "server.tls_cert_file", json!("a.crt")),
                "server.tls_key_file",
            ),
            (
                with(minimal(), "server.client_ca_file", json!("ca.crt")),
                "server.tls_cert_file",
            ),
            (
                with(minimal(), "logging.level", json!("loud")),
                "logging.level",
            ),
            (
                with(minimal(), "server.max_request_bytes", json!(0)),
                "server.max_request_bytes",
            ),
        ];
        for (v, key) in cases {
            let e = err(v);
            assert!(e.contains(key), "{key}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn gun_prefix_rules() {
        // "./" passes Go's check too (Clean gives ".", which is not "/" or "..").
        for ok in ["docker.io/", "a/b/", "localhost:5000/", "./"] {
            assert!(valid_gun_prefix(ok), "{ok}");
        }
        for bad in [
            "docker.io",
            "/abs/",
            "../x/",
            "a//",
            "a/./",
            " a/",
            "a/ ",
            "/",
            "a/../b/",
        ] {
            assert!(!valid_gun_prefix(bad), "{bad:?}");
        }
        let e = err(with(
            minimal(),
            "repositories.gun_prefixes",
            json!(["ok/", "nope"]),
        ));
        assert_eq!(e, "invalid GUN prefix nope");
    }

    #[test]
    fn environment_overrides_known_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.json");
        std::fs::write(&path, minimal().to_string()).unwrap();
        let env = |name: &str| match name {
            "NOTARY_SERVER_STORAGE_BACKEND" => Some("sqlite3".to_owned()),
            "NOTARY_SERVER_STORAGE_DB_URL" => Some("db/notary.db".to_owned()),
            "NOTARY_SERVER_CACHING_MAX_AGE_CURRENT_METADATA" => Some("60".to_owned()),
            "NOTARY_SERVER_REPOSITORIES_GUN_PREFIXES" => Some("a/ b/".to_owned()),
            _ => None,
        };
        let file = ConfigFile::load_with_env(&path, ENV_PREFIX, KNOWN_KEYS, env).unwrap();
        let c = Config::from_file(&file).unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::Sqlite {
                path: dir.path().join("db/notary.db")
            }
        );
        assert_eq!(c.caching.current_max_age, 60);
        assert_eq!(c.gun_prefixes, ["a/", "b/"]);
    }

    #[test]
    fn go_path_clean_matches_go() {
        for (i, o) in [
            ("", "."),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("../a", "../a"),
            ("a/..", "."),
            ("/..", "/"),
            ("./a/", "a"),
        ] {
            assert_eq!(go_path_clean(i), o, "{i}");
        }
    }
}

#[cfg(test)]
mod admin_config_tests {
    use super::*;
    use serde_json::json;

    fn load(v: Value) -> Result<Config, ConfigError> {
        Config::from_file(&ConfigFile::from_value(v, PathBuf::from("/etc/notary")))
    }

    fn base() -> Value {
        json!({
            "server": {"http_addr": ":4443", "tls_cert_file": "s.crt", "tls_key_file": "s.key"},
            "trust_service": {"type": "local"},
            "storage": {"backend": "sqlite3", "db_url": "server.db"}
        })
    }

    #[test]
    fn admin_listener_needs_a_client_ca_and_sql_storage() {
        let mut v = base();
        v["admin"] = json!({"http_addr": "127.0.0.1:4444", "client_ca_file": "ca.crt"});
        let admin = load(v.clone()).unwrap().admin.unwrap();
        assert_eq!(admin.bind_addr(), "127.0.0.1:4444");
        assert_eq!(admin.tls.cert.0, PathBuf::from("/etc/notary/s.crt"));
        assert_eq!(
            admin.tls.client_ca,
            Some((
                PathBuf::from("/etc/notary/ca.crt"),
                "admin.client_ca_file".into()
            ))
        );
        v["admin"] = json!({"http_addr": "127.0.0.1:4444"});
        assert!(load(v.clone())
            .unwrap_err()
            .0
            .contains("admin.client_ca_file"));
        v["admin"] = json!({"http_addr": "127.0.0.1:4444", "client_ca_file": "ca.crt"});
        v["storage"] = json!({"backend": "memory"});
        assert!(load(v).unwrap_err().0.contains("admin.http_addr"));
        assert!(load(base()).unwrap().admin.is_none());
    }

    #[test]
    fn expiry_settings_default_and_bounds() {
        let c = load(base()).unwrap();
        let r = c.expiry.resign.unwrap();
        assert_eq!(r.interval, std::time::Duration::from_secs(3600));
        assert_eq!(r.timestamp_margin, chrono::Duration::hours(168));
        assert_eq!(
            c.expiry.metrics_interval,
            Some(std::time::Duration::from_secs(60))
        );
        let mut v = base();
        v["expiry"] = json!({"resign_interval_seconds": 0, "metrics_interval_seconds": 0});
        let c = load(v).unwrap();
        assert_eq!((c.expiry.resign, c.expiry.metrics_interval), (None, None));
        let mut v = base();
        v["expiry"] = json!({"timestamp_margin_hours": 336});
        let e = load(v).unwrap_err().to_string();
        assert!(
            e.contains("expiry.timestamp_margin_hours") && e.contains("between 1 and 335"),
            "{e}"
        );
    }

    #[test]
    fn retention_and_trusted_proxies() {
        let mut v = base();
        v["retention"] = json!({"keep_versions": 2, "interval_hours": 24});
        v["server"]["trusted_proxies"] = json!(["10.0.0.1", "::1"]);
        let c = load(v.clone()).unwrap();
        let r = c.retention.unwrap();
        assert_eq!(r.policy.keep_versions, Some(2));
        assert_eq!(r.interval, std::time::Duration::from_secs(86_400));
        assert_eq!(c.trusted_proxies.len(), 2);
        v["retention"] = json!({"interval_hours": 24});
        assert!(load(v.clone()).unwrap_err().0.contains("retention.keep"));
        v["retention"] = json!({"keep_versions": 0, "interval_hours": 24});
        assert!(load(v.clone())
            .unwrap_err()
            .0
            .contains("retention.keep_versions"));
        v["retention"] = json!({"keep_versions": 2});
        assert!(load(v.clone()).unwrap().retention.is_none());
        v["server"]["trusted_proxies"] = json!(["proxy.example"]);
        assert!(load(v).unwrap_err().0.contains("server.trusted_proxies"));
    }
}
