//! The log's read API under [`PREFIX`], in the C2SP tlog-tiles layout plus two conveniences
//! (inclusion and consistency proofs as JSON, so a client needs no tile arithmetic):
//!
//! | path | answer |
//! |---|---|
//! | `checkpoint` | the latest signed checkpoint note (`text/plain`, not cached) |
//! | `key` | the note verifier key (`text/plain`) |
//! | `tile/<L>/<N>[.p/<W>]` | a hash tile (full tiles immutable, cached for a year) |
//! | `tile/entries/<N>[.p/<W>]` | an entry bundle of leaf records |
//! | `proof?gun=&role=&version=&sha256=[&tree_size=]` | inclusion proof in the latest checkpoint or a smaller tree (JSON) |
//! | `consistency?old=[&new=]` | consistency proof between two tree sizes, `new` defaulting to the latest checkpoint's (JSON) |
//!
//! Errors use the Notary error envelope (404 `LOG_NOT_FOUND`, 400 `INVALID_PARAMETERS`, 503
//! `UNAVAILABLE`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _};

use super::{LogError, TransparencyLog};
use crate::http::error::ApiError;

/// Where the log's API lives on the public listener.
pub const PREFIX: &str = "/_notary_server/log/";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const FRESH: &str = "no-cache";

/// Serves one request whose path starts with [`PREFIX`].
pub async fn serve(req: &HttpRequest, log: &TransparencyLog) -> HttpResponse {
    if !matches!(req.method().as_str(), "GET" | "HEAD") {
        return HttpResponse::MethodNotAllowed().finish();
    }
    let rest = req.path().strip_prefix(PREFIX).unwrap_or_default();
    match answer(req, rest, log).await {
        Ok(response) => response,
        Err(e) => ApiError::from(e).error_response(),
    }
}

fn text(body: String, cache: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, cache))
        .body(body)
}

fn binary(body: Vec<u8>, full: bool) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CACHE_CONTROL, if full { IMMUTABLE } else { FRESH }))
        .body(body)
}

fn params(req: &HttpRequest) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn required<'a>(
    params: &'a std::collections::HashMap<String, String>,
    name: &str,
) -> Result<&'a str, LogError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| LogError::BadRequest(format!("query parameter {name} is required")))
}

fn number(value: &str, name: &str) -> Result<i64, LogError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| LogError::BadRequest(format!("{name}={value:?} is not a number")))
}

fn optional(
    params: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<u64>, LogError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Ok(Some(number(v, name)? as u64)),
    }
}

async fn answer(
    req: &HttpRequest,
    rest: &str,
    log: &TransparencyLog,
) -> Result<HttpResponse, LogError> {
    match rest {
        "checkpoint" => Ok(text(log.checkpoint().await?, FRESH)),
        "key" => Ok(text(format!("{}\n", log.verifier_key().await?), FRESH)),
        "proof" => {
            let p = params(req);
            let version = number(required(&p, "version")?, "version")?;
            let sha256 = required(&p, "sha256")?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LogError::BadRequest(format!(
                    "sha256={sha256:?} is not 64 hex digits"
                )));
            }
            let tree_size = optional(&p, "tree_size")?;
            let proof = log
                .inclusion(
                    required(&p, "gun")?,
                    required(&p, "role")?,
                    version,
                    sha256,
                    tree_size,
                )
                .await?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, FRESH))
                .json(proof))
        }
        "consistency" => {
            let p = params(req);
            let old = number(required(&p, "old")?, "old")? as u64;
            let proof = log.consistency(old, optional(&p, "new")?).await?;
            Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, FRESH))
                .json(proof))
        }
        tile if tile.starts_with("tile/entries/") => {
            let body = log.entry_bundle(tile).await?;
            Ok(binary(body, !tile.contains(".p/")))
        }
        tile if tile.starts_with("tile/") => {
            let body = log.hash_tile(tile).await?;
            Ok(binary(body, !tile.contains(".p/")))
        }
        other => Err(LogError::NotFound(format!(
            "{}{other} is not a transparency log resource",
            PREFIX
        ))),
    }
}
