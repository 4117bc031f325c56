//! The HTTP layer: routing, request handling and error mapping.
//!
//! Every request goes through [`dispatch`], which applies spec §1's pipeline:
//! method check (405) and path cleaning (301), route lookup in
//! [`routes::ROUTES`], metrics, the GUN prefix filter, the auth hook, then the
//! handler. Handlers return `Result<HttpResponse, ApiError>`; [`error`] turns the
//! error side into Notary's JSON envelope.
//!
//! Operations (our additions to Go's pipeline):
//! - every request gets an ID ([`request_id`]), echoed as `X-Request-Id`, and one
//!   access-log line at `info` level (`msg` `response completed`, with `method`, `path`,
//!   `status`, `duration_us`, `request_id`, `gun`, `account`, `remote_addr`,
//!   `user_agent`); every other event logged while serving carries the ID as well, through
//!   a `request` span (at `error` level, so that it exists whenever anything is logged);
//! - a matched route must finish within [`AppState::request_timeout`]
//!   (`server.request_timeout_secs`), reading the body included; otherwise the answer is
//!   `408 REQUEST_TIMEOUT` and the connection is closed.
//!
//! Successful metadata, key, changefeed and ping bodies are served as
//! `application/json` (Go sniffed `text/plain`; clients ignore the type). Metadata GETs
//! also carry an `ETag`, answer `If-None-Match` with 304 and are gzipped when the client
//! accepts it ([`conditional`]; additions to Go).

pub mod auth;
pub mod conditional;
pub mod error;
mod handlers;
pub mod health;
pub mod metrics;
pub mod request_id;
pub mod routes;
pub mod token;
pub mod upload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use notary_tuf::crypto::CryptoService;
use notary_tuf::keys::KeyType;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tracing::Instrument as _;

use crate::config::{CachingConfig, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_REQUEST_TIMEOUT_SECS};
use crate::storage::MetaStore;
use auth::Authorizer;
use error::ApiError;
use health::Health;
use metrics::Metrics;
use routes::{OnPrefixMismatch, Resolution, Route};

/// Everything handlers need, shared by all workers.
pub struct AppState {
    /// Metadata storage.
    pub store: Arc<dyn MetaStore>,
    /// Signing service for server-managed keys.
    pub crypto: Arc<dyn CryptoService>,
    /// Algorithm of newly created server keys.
    pub key_type: KeyType,
    /// Cache-Control max-ages.
    pub caching: CachingConfig,
    /// Accepted GUN prefixes; empty accepts every GUN.
    pub gun_prefixes: Vec<String>,
    /// Largest accepted update body.
    pub max_request_bytes: u64,
    /// Time limit for serving one matched request, body included.
    pub request_timeout: Duration,
    /// Parts and delegations per update.
    pub upload_limits: upload::UploadLimits,
    /// Token auth hook; `None` allows everything.
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// Health checks and their latest results.
    pub health: Health,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The transparency log's read API, when the log is on (and public).
    pub tlog: Option<Arc<crate::tlog::TransparencyLog>>,
    /// Proxies whose `X-Forwarded-For` names the client in the audit trail.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AppState {
    /// State with Go's defaults: default cache ages, no prefixes, no auth, no
    /// health checks, [`DEFAULT_MAX_REQUEST_BYTES`], [`DEFAULT_REQUEST_TIMEOUT_SECS`].
    pub fn new(
        store: Arc<dyn MetaStore>,
        crypto: Arc<dyn CryptoService>,
        key_type: KeyType,
    ) -> Self {
        AppState {
            store,
            crypto,
            key_type,
            caching: CachingConfig::default(),
            gun_prefixes: Vec::new(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            upload_limits: upload::UploadLimits::default(),
            authorizer: None,
            health: Health::new(),
            metrics: Metrics::new(),
            tlog: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Bytes percent-encoded in a redirect `Location`: everything but what Go's
/// `url.URL.String()` leaves as is in a path (letters, digits, `-_.~` and `$&+,/:;=@`;
/// gorilla/mux builds its clean-path redirect with it). In particular `\` becomes `%5C`:
/// left raw, `/\evil.com` is what browsers read as `//evil.com`, another host.
const LOCATION: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

/// The single actix handler: assigns the request ID, routes by the table, runs the
/// pipeline under the time limit and writes the access-log line.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let id = request_id::for_request(&req);
    req.extensions_mut()
        .insert(crate::audit::RequestId(id.clone()));
    let span = tracing::error_span!("request", request_id = %id);
    let (mut response, gun) = route_and_serve(&req, payload, &state, started)
        .instrument(span.clone())
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(request_id::X_REQUEST_ID, value);
    }
    // The line's fields cost allocations; skip them when the level is off (benchmarks and
    // busy deployments log at warn or error).
    if tracing::enabled!(target: "notary_server::access", tracing::Level::INFO) {
        span.in_scope(|| access_log(&req, &response, &id, gun.as_deref(), started));
    }
    response
}

/// Routing and the pipeline; returns the response and the route's GUN (for the log).
async fn route_and_serve(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    started: Instant,
) -> (HttpResponse, Option<String>) {
    // Go matches the URL-decoded path.
    let path = percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    if let Some(log) = &state.tlog {
        if path.starts_with(crate::tlog::http::PREFIX) {
            return (crate::tlog::http::serve(req, log).await, None);
        }
    }
    let route = match routes::resolve(req.method().as_str(), &path) {
        Resolution::MethodNotAllowed => return (HttpResponse::MethodNotAllowed().finish(), None),
        Resolution::Redirect(clean) => {
            let mut location = utf8_percent_encode(&clean, LOCATION).to_string();
            if let Some(q) = req.uri().query() {
                location.push('?');
                location.push_str(q);
            }
            let response = HttpResponse::MovedPermanently()
                .insert_header((header::LOCATION, location))
                .finish();
            return (response, None);
        }
        Resolution::Matched(route) => route,
    };
    let limit = state.request_timeout;
    let response = match tokio::time::timeout(limit, serve(req, payload, state, &route)).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => err.error_response(),
        Err(_elapsed) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            ApiError::RequestTimeout {
                limit_secs: limit.as_secs(),
            }
            .error_response()
        }
    };
    if let Some(operation) = route.spec.operation {
        state.metrics.observe(
            operation,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    (response, route.params.gun)
}

/// One `info` line per request, Go's `response completed`.
fn access_log(
    req: &HttpRequest,
    response: &HttpResponse,
    id: &str,
    gun: Option<&str>,
    started: Instant,
) {
    // Borrowed, not copied: the formatter writes the values straight into the line.
    let extensions = req.extensions();
    let account = extensions
        .get::<auth::AuthenticatedAccount>()
        .map_or("", |a| a.0.as_str());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    let remote_addr = PeerAddr(req.peer_addr());
    tracing::info!(
        target: "notary_server::access",
        method = %req.method(),
        path = %req.uri().path(),
        status = response.status().as_u16(),
        duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        request_id = %id,
        gun = gun.unwrap_or_default(),
        account = account,
        remote_addr = %remote_addr,
        user_agent = &*user_agent,
        "response completed"
    );
}

/// The peer's address for the access log, empty when unknown.
struct PeerAddr(Option<std::net::SocketAddr>);

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => Ok(()),
        }
    }
}

async fn serve(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    route: &Route,
) -> Result<HttpResponse, ApiError> {
    // Prefix filter first: it answers without consulting auth (spec §2.4).
    if let Some(gun) = &route.params.gun {
        check_gun_prefix(&state.gun_prefixes, gun, route.spec.on_prefix_mismatch)?;
    }
    if let Some(authorizer) = &state.authorizer {
        let required = auth::required_access(route);
        if !required.is_empty() {
            authorizer.authorize(req, &required)?;
        }
    }
    handlers::handle(req, payload, state, route).await
}

/// Spec §2.4: a GUN must start with one of the configured prefixes.
fn check_gun_prefix(
    prefixes: &[String],
    gun: &str,
    on_mismatch: OnPrefixMismatch,
) -> Result<(), ApiError> {
    if prefixes.is_empty() || prefixes.iter().any(|p| gun.starts_with(p.as_str())) {
        return Ok(());
    }
    match on_mismatch {
        OnPrefixMismatch::NotApplicable => Ok(()),
        OnPrefixMismatch::NotFound => Err(ApiError::route_not_found()),
        // Go formats the list with `%v`: `[p1 p2]`.
        OnPrefixMismatch::InvalidGun => Err(ApiError::InvalidGun(format!(
            "Require GUNs with prefix: [{}]",
            prefixes.join(" ")
        ))),
    }
}
