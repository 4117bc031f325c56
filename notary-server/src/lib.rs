//! notary-server: a wire-compatible reimplementation of Notary v1's TUF server.
//!
//! - [`storage`]: the `MetaStore` contract with MySQL/SQLite and memory backends;
//! - [`domain`]: update validation, snapshot/timestamp generation, server keys;
//! - [`signer_client`]: the `CryptoService` over gRPC to notary-signer;
//! - [`config`]: Go's JSON configuration;
//! - [`http`]: routes, handlers and the error envelope.
//!
//! [`run`] starts the service from a [`config::Config`]; [`build_app`] assembles
//! the actix application from an [`http::AppState`], which is what the
//! integration tests drive with `actix_web::test::init_service`.
//!
//! # Operations
//! - HTTPS with TLS 1.2 and 1.3 only (`notary_common::tls`).
//! - Token authentication when `auth.type` is `token` ([`http::auth`]).
//! - Time limits: request headers within 10 s (or `server.request_timeout_secs` if
//!   shorter), else actix answers `408` and closes; the whole request within
//!   `server.request_timeout_secs`, else `408 REQUEST_TIMEOUT` and the connection closes.
//! - SIGTERM or SIGINT: stop accepting connections, let requests in flight finish (for up
//!   to `server.request_timeout_secs`), then exit with status 0.
//! - JSON access log and request IDs ([`http`]), Prometheus metrics at `/metrics`
//!   ([`http::metrics`]), health at `/_notary_server/health` ([`http::health`]).
//!
//! # Testing
//! `cargo test -p notary-server`. The HTTP tests (`tests/http_*.rs`) run on the
//! memory store and the in-memory signer; the SQL storage tests read
//! `NOTARY_TEST_MYSQL_URL` and skip without it.

pub mod admin;
pub mod audit;
pub mod cache;
pub mod config;
pub mod domain;
pub mod expiry;
pub mod http;
pub mod signer_client;
pub mod storage;
pub mod tlog;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use futures_util::FutureExt as _;
use notary_tuf::crypto::{CryptoService, MemoryCryptoService};

use config::{Config, StorageConfig, TrustService};
use http::metrics::{InstrumentedCrypto, Metrics, PoolUse};
use http::AppState;
use signer_client::RemoteCryptoService;
use storage::{MemoryStore, MetaStore, SqlStore};

/// The actix application: every request goes to [`http::dispatch`].
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .default_service(web::to(http::dispatch))
}

/// Opens the configured store; `migrate` applies pending SQL migrations first
/// (always done for SQLite, whose file belongs to this server).
pub fn open_store(storage: &StorageConfig, migrate: bool) -> anyhow::Result<Arc<dyn MetaStore>> {
    Ok(open_store_and_pool(storage, migrate)?.0)
}

/// [`open_store`], also returning the SQL store (for the pool gauge) when there is one.
fn open_store_and_pool(
    storage: &StorageConfig,
    migrate: bool,
) -> anyhow::Result<(Arc<dyn MetaStore>, Option<SqlStore>)> {
    Ok(match storage {
        StorageConfig::Memory => (Arc::new(MemoryStore::new()), None),
        StorageConfig::Mysql { url, redacted } => {
            let store = SqlStore::open_mysql(url)
                .with_context(|| format!("cannot open MySQL database {redacted}"))?;
            if migrate {
                store
                    .run_migrations()
                    .context("cannot migrate the MySQL database")?;
            }
            (Arc::new(store.clone()), Some(store))
        }
        StorageConfig::Postgres(dsn) => {
            let store = SqlStore::open_postgres(dsn)
                .with_context(|| format!("cannot open PostgreSQL database {}", dsn.redacted()))?;
            if migrate {
                store
                    .run_migrations()
                    .context("cannot migrate the PostgreSQL database")?;
            }
            (Arc::new(store.clone()), Some(store))
        }
        StorageConfig::Sqlite { path } => {
            let store = SqlStore::open_sqlite(path)
                .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
            store
                .run_migrations()
                .context("cannot migrate the SQLite database")?;
            (Arc::new(store.clone()), Some(store))
        }
    })
}

/// Longest wait for request headers (actix answers 408 after it).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(10);

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let authorizer: Option<Arc<dyn http::auth::Authorizer>> = match &config.auth {
        None => None,
        Some(options) => {
            let auth = http::auth::TokenAuth::from_options(options)
                .map_err(|e| anyhow::anyhow!("token authentication: {e}"))?;
            tracing::info!(
                realm = %options.realm,
                service = %options.service,
                issuer = %options.issuer,
                "token authentication enabled"
            );
            Some(Arc::new(auth))
        }
    };
    let metrics = Metrics::new();
    let (store, sql) = open_store_and_pool(&config.storage, config.migrate)?;
    // With the log on, every update writes its leaves: swap in a store that does.
    let (store, sql) = match (&config.transparency_log, sql) {
        (Some(_), Some(sql)) => {
            sql.tlog_ensure_tables().await?;
            let sql = sql.with_transparency_log(true);
            (Arc::new(sql.clone()) as Arc<dyn MetaStore>, Some(sql))
        }
        (_, sql) => (store, sql),
    };
    let log_sql = sql.clone();
    let admin_sql = sql.clone();
    if let Some(sql) = &admin_sql {
        // Every change is audited; a Go database started without -migrate gets the table.
        sql.audit_ensure_table().await?;
        sql.expiry_ensure_table().await?;
        sql.lease_ensure_table().await?;
    }
    if let Some(sql) = sql {
        metrics.set_pool_source(Arc::new(move || pool_use(&sql)));
    }
    let mut health = http::health::Health::new();
    if !matches!(config.storage, StorageConfig::Memory) {
        let db = store.clone();
        health.register(
            "DB operational",
            Arc::new(move || {
                let db = db.clone();
                async move { db.check_health().await.map_err(|e| e.to_string()) }.boxed()
            }),
        );
    }
    let crypto: Arc<dyn CryptoService> = match &config.trust {
        TrustService::Local => Arc::new(MemoryCryptoService::new()),
        TrustService::Remote(_) => {
            let signer = remote_signer(&config.trust)?;
            let probe = signer.clone();
            let probe_metrics = metrics.clone();
            health.register(
                "Trust operational",
                Arc::new(move || {
                    let probe = probe.clone();
                    let metrics = probe_metrics.clone();
                    async move {
                        let started = std::time::Instant::now();
                        let result = probe.health().await;
                        metrics.observe_signer(
                            "Check",
                            result.is_ok(),
                            started.elapsed().as_secs_f64(),
                        );
                        result
                    }
                    .boxed()
                }),
            );
            signer
        }
    };
    let crypto: Arc<dyn CryptoService> = Arc::new(InstrumentedCrypto::new(crypto, metrics.clone()));
    let log = match (&config.transparency_log, log_sql) {
        (Some(settings), Some(sql)) => {
            let log = Arc::new(tlog::TransparencyLog::new(
                sql,
                crypto.clone(),
                tlog::LogConfig {
                    origin: settings.origin.clone(),
                    interval: settings.interval,
                },
            ));
            if config.log_backfill {
                // No signer needed: the next running server signs the checkpoint.
                let added = log.backfill().await.context("transparency log backfill")?;
                let size = log
                    .integrate()
                    .await
                    .context("transparency log integration")?;
                tracing::warn!(added, size, "transparency log backfilled");
                println!(
                    "transparency log: appended {added} leaves; tree size {size} \
                     (a running server publishes its checkpoint)"
                );
                return Ok(());
            }
            tracing::info!(origin = %settings.origin, "transparency log enabled");
            Some(log)
        }
        _ if config.log_backfill => {
            anyhow::bail!("-log-backfill needs transparency_log.enabled and SQL storage")
        }
        _ => None,
    };

    let mut state = AppState::new(store, crypto, config.trust.key_type());
    state.caching = config.caching;
    state.gun_prefixes = config.gun_prefixes.clone();
    state.max_request_bytes = config.max_request_bytes;
    state.request_timeout = Duration::from_secs(config.request_timeout_secs);
    state.upload_limits = http::upload::UploadLimits {
        max_parts: config.max_upload_parts,
        max_delegations: config.max_upload_delegations,
    };
    // The log names every repository: with token auth on, serve it only if told to.
    let log_public = config.transparency_log.as_ref().is_some_and(|l| l.public);
    state.tlog = log.clone().filter(|_| authorizer.is_none() || log_public);
    state.authorizer = authorizer;
    state.trusted_proxies = config.trusted_proxies.clone();
    let mut expiry_tasks = Vec::new();
    if let Some(sql) = &admin_sql {
        if let Some(settings) = config.expiry.resign {
            let resigner = expiry::resign::Resigner::new(
                sql.clone(),
                state.crypto.clone(),
                config.trust.key_type(),
                settings,
            )
            .with_metrics(metrics.clone());
            tracing::info!(
                interval_seconds = settings.interval.as_secs(),
                holder = %resigner.holder(),
                "re-signing server-held roles ahead of expiry"
            );
            expiry_tasks.push(resigner.spawn());
        }
        if let Some(every) = config.expiry.metrics_interval {
            expiry_tasks.push(expiry::watch::spawn(sql.clone(), metrics.clone(), every));
        }
    }
    let admin = admin_sql.map(|sql| admin::Admin::new(sql, state.crypto.clone()));
    let retention_task = match (&config.retention, &admin) {
        (Some(r), Some(admin)) => {
            tracing::info!(
                interval_hours = r.interval.as_secs() / 3600,
                "scheduled retention on"
            );
            Some(admin.spawn_retention(r.policy, r.interval))
        }
        _ => None,
    };
    let admin_server = match (&config.admin, admin) {
        (Some(settings), Some(admin)) => Some(admin::http::bind(
            settings,
            admin,
            config.trusted_proxies.clone(),
        )?),
        _ => None,
    };
    let admin_handle = admin_server.as_ref().map(|s| s.handle());
    if let Some(server) = admin_server {
        actix_web::rt::spawn(server);
    }
    state.metrics = metrics;
    state.health = health;
    let checks = state.health.spawn();
    let log_task = log.map(tlog::TransparencyLog::spawn);
    let state = web::Data::new(state);

    let request_timeout = Duration::from_secs(config.request_timeout_secs);
    let server = HttpServer::new({
        let state = state.clone();
        move || build_app(state.clone())
    })
    .client_request_timeout(request_timeout.min(MAX_HEADER_WAIT))
    // Requests in flight at shutdown may use their whole time limit.
    .shutdown_timeout(config.request_timeout_secs)
    .shutdown_signal(shutdown_signal());
    let addr = config.bind_addr();
    let server = match &config.tls {
        None => server
            .bind(&addr)
            .with_context(|| format!("cannot listen on {addr}"))?,
        Some(files) => {
            let tls = notary_common::tls::server_config(files, &[b"http/1.1"])?;
            server
                .bind_rustls_0_23(&addr, tls)
                .with_context(|| format!("cannot listen on {addr}"))?
        }
    };
    tracing::info!(
        addr = %addr,
        tls = config.tls.is_some(),
        "notary-server listening"
    );
    let result = server.run().await;
    if let Some(handle) = admin_handle {
        handle.stop(true).await;
    }
    if let Some(task) = retention_task {
        task.abort();
    }
    checks.abort();
    for task in expiry_tasks {
        task.abort();
    }
    if let Some(task) = log_task {
        task.abort();
    }
    result.context("server failed")?;
    tracing::info!("notary-server stopped");
    Ok(())
}

/// The gRPC client of the configured remote signer (`trust_service.type` `remote`).
fn remote_signer(trust: &TrustService) -> anyhow::Result<Arc<RemoteCryptoService>> {
    let TrustService::Remote(remote) = trust else {
        anyhow::bail!("trust_service.type is not remote");
    };
    let read = |path: &std::path::Path, setting: &str| {
        std::fs::read(path)
            .with_context(|| format!("cannot read {setting} file {}", path.display()))
    };
    let ca_pem = match &remote.tls_ca_file {
        Some(path) => Some(read(path, "trust_service.tls_ca_file")?),
        None => {
            tracing::warn!(
                "trust_service.tls_ca_file is not set: the signer's certificate cannot be verified"
            );
            None
        }
    };
    let identity = match &remote.client_identity {
        Some((cert, key)) => Some((
            read(cert, "trust_service.tls_client_cert")?,
            read(key, "trust_service.tls_client_key")?,
        )),
        None => None,
    };
    Ok(Arc::new(
        RemoteCryptoService::connect(&remote.hostname, remote.port, ca_pem, identity)
            .map_err(|e| anyhow::anyhow!("cannot set up the signer client: {e}"))?,
    ))
}

/// `notary-server admin ...`: runs one admin command on the configured database (and
/// signer), printing JSON to stdout.
pub async fn run_admin(config: Config, command: admin::Command) -> anyhow::Result<()> {
    let (_, sql) = open_store_and_pool(&config.storage, config.migrate)?;
    let sql = sql.context("admin commands need mysql, postgres or sqlite3 storage")?;
    sql.audit_ensure_table().await?;
    sql.expiry_ensure_table().await?;
    let crypto: Arc<dyn CryptoService> = match &config.trust {
        TrustService::Local => Arc::new(MemoryCryptoService::new()),
        remote => remote_signer(remote)?,
    };
    let admin = admin::Admin::new(sql, crypto);
    let mut out = std::io::stdout().lock();
    admin::run_command(&admin, command, &mut out).await
}

/// The pool's connections in use and idle (for the pool gauge).
fn pool_use(store: &SqlStore) -> Option<PoolUse> {
    let (connections, idle) = store.pool_state();
    Some(PoolUse {
        in_use: connections.saturating_sub(idle),
        idle,
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_use_reads_the_sql_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_sqlite(&dir.path().join("pool.db")).unwrap();
        // One connection is opened up front and sits idle.
        let idle = pool_use(&store).expect("pool state is readable");
        assert_eq!(idle.in_use, 0);
        assert!(idle.idle >= 1, "{idle:?}");
        store.run_migrations().unwrap();
        assert_eq!(pool_use(&store).unwrap().in_use, 0);
    }
}
