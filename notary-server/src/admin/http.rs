//! The admin listener: its own address, HTTPS with client certificates required (a client
//! without one fails the TLS handshake), and none of the public API. The public listener
//! serves none of these routes.
//!
//! | route | answer |
//! |---|---|
//! | `GET /_notary_server/admin/audit?gun=&actor=&since=&until=&after=&limit=` | a page of the audit trail, oldest first: `{"entries": [...], "next": ID}`; `since`/`until` are RFC 3339, `next` goes into `after` |
//! | `DELETE /_notary_server/admin/gun/<gun>[?dry_run=true]` | deletes the GUN and its server-held signer keys; the report lists rows, bytes and keys |
//! | `GET /_notary_server/admin/stats[?gun=]` | rows, bytes, GUNs and highest version per role |
//! | `POST /_notary_server/admin/prune?keep_versions=&keep_days=[&gun=][&dry_run=true]` | prunes superseded versions; the report lists rows and bytes |
//! | `GET /_notary_server/admin/expiring?within=<days>[&role=][&prefix=][&limit=]` | what expires within so many days (expired included), soonest first, with who can repair it and how |
//! | `GET /_notary_server/admin/gun/<gun>` | one GUN: roles (version, sha256, expiry, keys), delegations, expiries, server-held keys, storage, last changes |
//! | `GET /_notary_server/admin/console/...` | the operator console: HTML pages for a browser ([`super::console`]) |
//!
//! The actor of every change made here is the client certificate's subject.

use std::any::Any;
use std::collections::HashMap;

use actix_web::dev::Extensions;
use actix_web::http::header;
use actix_web::{
    web, App, HttpMessage as _, HttpRequest, HttpResponse, HttpServer, ResponseError as _,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{console, Admin};
use crate::audit::{peer_address, Actor, ActorKind, AuditQuery, RequestId};
use crate::config::AdminConfig;
use crate::http::error::ApiError;
use crate::http::request_id;
use crate::storage::PrunePolicy;

/// Where the admin routes live.
pub const PREFIX: &str = "/_notary_server/admin/";

/// The verified client certificate's subject, taken from the TLS connection.
#[derive(Debug, Clone)]
struct ClientSubject(String);

/// Records the client certificate's subject with the connection (actix `on_connect`).
fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(tls) = conn.downcast_ref::<Tls>() else {
        return;
    };
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first());
    if let Some(leaf) = leaf {
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
            ext.insert(ClientSubject(cert.subject().to_string()));
        }
    }
}

/// Binds the admin listener; the returned server runs until the process shuts down.
pub fn bind(
    config: &AdminConfig,
    admin: Admin,
    trusted_proxies: Vec<std::net::IpAddr>,
) -> anyhow::Result<actix_web::dev::Server> {
    use anyhow::Context as _;
    let tls = notary_common::tls::server_config(&config.tls, &[b"http/1.1"])?;
    let state = web::Data::new((admin, trusted_proxies));
    let addr = config.bind_addr();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .default_service(web::to(dispatch))
    })
    .on_connect(on_connect)
    // Answers run to hundreds of KiB: without NODELAY their last segment waited for the
    // client's delayed ACK (a 40 ms p99 in the 100k-GUN `expiring` measurement).
    .tcp_nodelay(true)
    .workers(1)
    .disable_signals()
    .bind_rustls_0_23(&addr, tls)
    .with_context(|| format!("cannot listen on {addr} (admin.http_addr)"))?
    .run();
    tracing::info!(addr = %addr, "admin listener up (client certificates required)");
    Ok(server)
}

async fn dispatch(
    req: HttpRequest,
    state: web::Data<(Admin, Vec<std::net::IpAddr>)>,
) -> HttpResponse {
    let id = request_id::for_request(&req);
    let (admin, proxies) = state.get_ref();
    let subject = req.conn_data::<ClientSubject>().map(|s| s.0.clone());
    let actor = Actor {
        // The handshake required a certificate; a subject is always there.
        name: subject.unwrap_or_else(|| "unknown-client-certificate".into()),
        kind: ActorKind::ClientCertificate,
        peer: peer_address(&req, proxies),
        request_id: Some(id.clone()),
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = match route(&req, admin, &actor).await {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(request_id::X_REQUEST_ID, value);
    }
    tracing::info!(
        target: "notary_server::admin",
        method = %req.method(),
        path = %req.path(),
        status = response.status().as_u16(),
        request_id = %id,
        actor = %actor.name,
        "admin request"
    );
    response
}

fn params(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn invalid(why: impl Into<String>) -> ApiError {
    ApiError::InvalidParameters(Value::String(why.into()))
}

fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(invalid(format!("{name}={other:?}: use true or false"))),
    }
}

fn count(params: &HashMap<String, String>, name: &str) -> Result<Option<u32>, ApiError> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| invalid(format!("{name}={v:?} is not a non-negative number")))
        })
        .transpose()
}

fn time(params: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    params
        .get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| invalid(format!("{name}={v:?} is not an RFC 3339 time: {e}")))
        })
        .transpose()
}

fn json_ok(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(serde_json::to_vec(body).unwrap_or_default())
}

async fn route(req: &HttpRequest, admin: &Admin, actor: &Actor) -> Result<HttpResponse, ApiError> {
    let path = percent_encoding::percent_decode_str(req.path())
        .decode_utf8_lossy()
        .into_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(ApiError::route_not_found());
    };
    let p = params(req);
    let method = req.method().as_str();
    let store_err = ApiError::from_store_read;
    match (method, rest) {
        ("GET", "audit") => {
            let limit = count(&p, "limit")?.map_or(100, i64::from);
            let after = match p.get("after").filter(|v| !v.is_empty()) {
                None => 0,
                Some(v) => v
                    .parse::<i64>()
                    .map_err(|_| invalid(format!("after={v:?} is not a number")))?,
            };
            let query = AuditQuery {
                gun: p.get("gun").filter(|v| !v.is_empty()).cloned(),
                actor: p.get("actor").filter(|v| !v.is_empty()).cloned(),
                since: time(&p, "since")?,
                until: time(&p, "until")?,
                after_id: after,
                limit,
            };
            let entries = admin.audit(query).await.map_err(store_err)?;
            let next = entries.last().map(|e| e.id);
            Ok(json_ok(&json!({ "entries": entries, "next": next })))
        }
        ("GET", "stats") => {
            let gun = p.get("gun").filter(|v| !v.is_empty());
            let stats = admin
                .stats(gun.map(String::as_str))
                .await
                .map_err(store_err)?;
            Ok(json_ok(&stats))
        }
        ("POST", "prune") => {
            let policy = PrunePolicy {
                keep_versions: count(&p, "keep_versions")?,
                keep_days: count(&p, "keep_days")?,
            };
            policy
                .check_named("keep_versions", "keep_days")
                .map_err(invalid)?;
            let gun = p.get("gun").filter(|v| !v.is_empty());
            let report = admin
                .prune(
                    gun.map(String::as_str),
                    &policy,
                    flag(&p, "dry_run")?,
                    actor,
                )
                .await
                .map_err(store_err)?;
            Ok(json_ok(&report))
        }
        ("DELETE", rest) if rest.starts_with("gun/") => {
            let gun = rest.trim_start_matches("gun/").trim_end_matches('/');
            if gun.is_empty() {
                return Err(invalid(
                    "name the GUN: DELETE /_notary_server/admin/gun/<gun>",
                ));
            }
            let report = admin
                .delete_gun(gun, flag(&p, "dry_run")?, actor)
                .await
                .map_err(store_err)?;
            Ok(json_ok(&report))
        }
        ("GET", "expiring") => {
            let within =
                count(&p, "within")?.ok_or_else(|| invalid("within=<days> is required"))?;
            let role = p.get("role").filter(|v| !v.is_empty()).cloned();
            let prefix = p.get("prefix").filter(|v| !v.is_empty()).cloned();
            let limit = count(&p, "limit")?.map_or(1000, i64::from).clamp(1, 10_000);
            let entries = admin
                .expiring(within, role, prefix, limit, Utc::now())
                .await
                .map_err(store_err)?;
            Ok(json_ok(
                &json!({ "within_days": within, "entries": entries }),
            ))
        }
        ("GET", rest) if rest.starts_with("gun/") => {
            let gun = rest.trim_start_matches("gun/").trim_end_matches('/');
            if gun.is_empty() {
                return Err(invalid("name the GUN: GET /_notary_server/admin/gun/<gun>"));
            }
            let report = admin.gun_report(gun, Utc::now()).await.map_err(store_err)?;
            Ok(json_ok(&report))
        }
        ("GET", rest) if console::is_console(rest) => {
            Ok(console::respond(admin, rest, req.query_string(), Utc::now()).await)
        }
        (_, rest) if console::is_console(rest) => Ok(HttpResponse::MethodNotAllowed().finish()),
        (_, "audit" | "stats" | "prune" | "expiring") => {
            Ok(HttpResponse::MethodNotAllowed().finish())
        }
        (_, rest) if rest.starts_with("gun/") => Ok(HttpResponse::MethodNotAllowed().finish()),
        _ => Err(ApiError::route_not_found()),
    }
}
