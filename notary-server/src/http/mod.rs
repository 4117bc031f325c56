//! The HTTP layer: routing, request handling and error mapping.
//!
//! Every request goes through [`dispatch`], which applies spec §1's pipeline:
//! method check (405) and path cleaning (301), route lookup in
//! [`routes::ROUTES`], metrics, the GUN prefix filter, the auth hook, then the
//! handler. Handlers return `Result<HttpResponse, ApiError>`; [`error`] turns the
//! error side into Notary's JSON envelope.
//!
//! Successful metadata, key, changefeed and ping bodies are served as
//! `application/json` (Go sniffed `text/plain`; clients ignore the type).

pub mod auth;
pub mod error;
mod handlers;
pub mod health;
pub mod metrics;
pub mod routes;
pub mod upload;

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use notary_tuf::crypto::CryptoService;
use notary_tuf::keys::KeyType;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::config::{CachingConfig, DEFAULT_MAX_REQUEST_BYTES};
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
    /// Token auth hook; `None` allows everything.
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// Health checks and their latest results.
    pub health: Health,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

impl AppState {
    /// State with Go's defaults: default cache ages, no prefixes, no auth, no
    /// health checks, [`DEFAULT_MAX_REQUEST_BYTES`].
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
            authorizer: None,
            health: Health::new(),
            metrics: Metrics::new(),
        }
    }
}

/// Path characters re-encoded in a redirect `Location`.
const LOCATION: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The single actix handler: routes by the table and runs the pipeline.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    // Go matches the URL-decoded path.
    let path = percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let route = match routes::resolve(req.method().as_str(), &path) {
        Resolution::MethodNotAllowed => return HttpResponse::MethodNotAllowed().finish(),
        Resolution::Redirect(clean) => {
            let mut location = utf8_percent_encode(&clean, LOCATION).to_string();
            if let Some(q) = req.uri().query() {
                location.push('?');
                location.push_str(q);
            }
            return HttpResponse::MovedPermanently()
                .insert_header((header::LOCATION, location))
                .finish();
        }
        Resolution::Matched(route) => route,
    };
    let started = Instant::now();
    let response = match serve(&req, payload, &state, &route).await {
        Ok(response) => response,
        Err(err) => err.error_response(),
    };
    if let Some(operation) = route.spec.operation {
        state.metrics.observe(
            operation,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    response
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
