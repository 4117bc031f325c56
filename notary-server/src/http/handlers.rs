//! Route handlers: parse the request, call storage or domain, shape the response.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
use serde::Serialize;
use serde_json::json;

use crate::audit::{Action, Actor, Audit};
use crate::domain::{self, Ctx};
use crate::http::error::{go_html_escape, ApiError};
use crate::http::routes::{CachePolicy, Endpoint, Route};
use crate::http::{conditional, upload, AppState};
use crate::storage::{self, StoredFile};

const JSON: &str = "application/json";

/// Runs the handler of a matched route (after prefix filter and auth).
pub(super) async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    route: &Route,
) -> Result<HttpResponse, ApiError> {
    let p = &route.params;
    let gun = p.gun.as_deref().unwrap_or_default();
    let role = p.role.as_deref().unwrap_or_default();
    match route.spec.endpoint {
        Endpoint::Ping => Ok(json_ok(b"{}".to_vec())),
        Endpoint::Update => update(req, payload, state, gun).await,
        Endpoint::GetByChecksum => {
            // Stored checksums are lower-case hex; matching either case is what
            // Go's MySQL backend does.
            let checksum = p
                .checksum
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase();
            // Cached rows are served without copying them (see crate::cache).
            if let Some(hit) = state
                .store
                .cache()
                .and_then(|c| c.by_checksum(gun, role, &checksum))
            {
                return metadata(req, state, gun, hit, false, route.spec.cache).await;
            }
            let file = state
                .store
                .get_checksum(gun, role, &checksum)
                .await
                .map_err(ApiError::from_store_read)?;
            metadata(req, state, gun, stored(file)?, false, route.spec.cache).await
        }
        Endpoint::GetByVersion => {
            // Digits only by the route grammar; too large for i64 means "not stored".
            let Ok(version) = p.version.as_deref().unwrap_or_default().parse::<i64>() else {
                return Err(ApiError::not_found());
            };
            if let Some(hit) = state
                .store
                .cache()
                .and_then(|c| c.by_version(gun, role, version))
            {
                return metadata(req, state, gun, hit, false, route.spec.cache).await;
            }
            let file = state
                .store
                .get_version(gun, role, version)
                .await
                .map_err(ApiError::from_store_read)?;
            metadata(req, state, gun, stored(file)?, false, route.spec.cache).await
        }
        Endpoint::GetCurrent => {
            let server_managed = matches!(role, "timestamp" | "snapshot");
            // Fast path: everything cached and known not to need regeneration. Otherwise
            // the domain/storage path below answers (and fills the cache).
            if let Some(cache) = state.store.cache() {
                let hit = if server_managed {
                    cache.current(gun, role, Utc::now())
                } else {
                    cache.current_role(gun, role)
                };
                if let Some(hit) = hit {
                    return metadata(req, state, gun, hit, role == "timestamp", route.spec.cache)
                        .await;
                }
            }
            let file = if server_managed {
                domain::current_timestamp_or_snapshot(&ctx(state, req), gun, role).await?
            } else {
                storage::get_current(state.store.as_ref(), gun, role)
                    .await
                    .map_err(ApiError::from_store_read)?
            };
            metadata(
                req,
                state,
                gun,
                stored(file)?,
                role == "timestamp",
                route.spec.cache,
            )
            .await
        }
        Endpoint::GetKey => {
            let key = domain::get_or_create_key(&ctx(state, req), gun, role).await?;
            Ok(json_ok(key.server_key_json()))
        }
        Endpoint::RotateKey => {
            let key = domain::rotate_key(&ctx(state, req), gun, role).await?;
            Ok(json_ok(key.server_key_json()))
        }
        Endpoint::Delete => {
            // Go's public delete, kept for compatibility; now with an audit row.
            let actor = Actor::of_request(req, &state.trusted_proxies);
            let removed = state
                .store
                .delete_as(gun, &Audit::new(Action::Delete, &actor))
                .await
                .map_err(ApiError::from_store_read)?;
            tracing::info!(%gun, removed, "deleted repository");
            Ok(HttpResponse::Ok().finish())
        }
        Endpoint::Changefeed => changefeed(req, state, p.gun.as_deref()).await,
        Endpoint::Health => Ok(health(state)),
        Endpoint::Metrics => Ok(HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ))
            .body(state.metrics.render())),
        Endpoint::NotFound => Err(ApiError::route_not_found()),
    }
}

fn ctx<'a>(state: &'a AppState, req: &HttpRequest) -> Ctx<'a> {
    Ctx {
        store: state.store.as_ref(),
        crypto: state.crypto.as_ref(),
        key_type: state.key_type.clone(),
        now: Utc::now(),
        actor: Actor::of_request(req, &state.trusted_proxies),
    }
}

fn json_ok(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON)))
        .body(body)
}

/// POST `/v2/{gun}/_trust/tuf/`: spec §6.
async fn update(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    gun: &str,
) -> Result<HttpResponse, ApiError> {
    let boundary = upload::multipart_boundary(req)?;
    let body = upload::read_body(req, payload, state.max_request_bytes).await?;
    // Splitting the parts decodes each one as JSON: work proportional to the body (up to
    // `max_request_bytes`), kept off the actix worker like the validation in
    // `apply_update`. The body is in memory, so the future never waits on I/O.
    // The request span goes along so the parser's log lines keep the request ID.
    let (runtime, span) = (tokio::runtime::Handle::current(), tracing::Span::current());
    let limits = state.upload_limits;
    let parts = match tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        runtime.block_on(upload::parse_parts(&boundary, body, limits))
    })
    .await
    {
        Ok(parts) => parts?,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => return Err(ApiError::unknown()),
    };
    domain::apply_update(&ctx(state, req), gun, parts).await?;
    Ok(HttpResponse::Ok().finish())
}

/// A looked-up file for [`metadata`]: none is 404 (spec §5.1).
fn stored(file: Option<StoredFile>) -> Result<Arc<StoredFile>, ApiError> {
    file.map(Arc::new).ok_or_else(ApiError::not_found)
}

/// A metadata answer (spec §3), with conditional GETs and gzip ([`conditional`]).
/// `Last-Modified` is `updated_at` for the raw current timestamp and `created_at`
/// otherwise. Cached files are served without copying them (see `crate::cache`).
async fn metadata(
    req: &HttpRequest,
    state: &AppState,
    gun: &str,
    file: Arc<StoredFile>,
    use_updated_at: bool,
    policy: CachePolicy,
) -> Result<HttpResponse, ApiError> {
    if file.data.is_empty() {
        return Err(ApiError::not_found());
    }
    let modified = if use_updated_at {
        file.updated_at
    } else {
        file.created_at
    };
    Ok(conditional::respond(req, state, gun, file, modified, policy).await)
}

/// Cache-Control, Pragma and Last-Modified for a 200 metadata response.
pub(crate) fn cache_headers(
    policy: CachePolicy,
    state: &AppState,
    modified: DateTime<Utc>,
) -> Vec<(header::HeaderName, String)> {
    let (max_age, must_revalidate) = match policy {
        CachePolicy::None => return Vec::new(),
        CachePolicy::Current => (state.caching.current_max_age, true),
        CachePolicy::Consistent => (state.caching.consistent_max_age, false),
    };
    let last_modified = (header::LAST_MODIFIED, http_date(modified));
    if max_age == 0 {
        return vec![
            (
                header::CACHE_CONTROL,
                "max-age=0, no-cache, no-store".into(),
            ),
            (header::PRAGMA, "no-cache".into()),
            last_modified,
        ];
    }
    let mut cache_control = format!("public, max-age={max_age}, s-maxage={max_age}");
    if must_revalidate {
        cache_control.push_str(", must-revalidate");
    }
    vec![(header::CACHE_CONTROL, cache_control), last_modified]
}

/// RFC 1123 date with `GMT`, as HTTP requires (Go wrote `UTC` here). Formatted by hand:
/// chrono's strftime parses its pattern on every call, a visible cost per GET.
pub(crate) fn http_date(t: DateTime<Utc>) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday().num_days_from_monday() as usize],
        t.day(),
        MONTHS[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `GET /_notary_server/health`: `{}` or 503 with the failing checks.
fn health(state: &AppState) -> HttpResponse {
    let failures = state.health.failures();
    let body = serde_json::to_vec(&failures).unwrap_or_else(|_| b"{}".to_vec());
    let status = if failures.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        ))
        .body(body)
}

/// The changefeed (spec §11.5, §14.9).
async fn changefeed(
    req: &HttpRequest,
    state: &AppState,
    gun: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let (change_id, records) = changefeed_params(req.uri().query().unwrap_or_default())?;
    let changes = state
        .store
        .get_changes(change_id, records, gun)
        .await
        .map_err(ApiError::from_store_read)?;

    #[derive(Serialize)]
    struct Record {
        #[serde(rename = "ID")]
        id: String,
        #[serde(rename = "CreatedAt")]
        created_at: String,
        #[serde(rename = "GUN")]
        gun: String,
        #[serde(rename = "Version")]
        version: i64,
        #[serde(rename = "SHA256")]
        sha256: String,
        #[serde(rename = "Category")]
        category: String,
    }
    #[derive(Serialize)]
    struct Page {
        count: usize,
        records: Vec<Record>,
    }
    let page = Page {
        count: changes.len(),
        records: changes
            .into_iter()
            .map(|c| Record {
                id: c.id.to_string(),
                created_at: c.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                gun: c.gun,
                version: c.version,
                sha256: c.sha256,
                category: c.category,
            })
            .collect(),
    };
    let body = serde_json::to_string(&page).map_err(|e| {
        tracing::error!(error = %e, "cannot encode changefeed");
        ApiError::unknown()
    })?;
    Ok(json_ok(go_html_escape(&body).into_bytes()))
}

/// Most changefeed records one request returns. Go has no cap: `records=2147483647` made
/// the store load and the server encode the whole feed (every publish of every GUN) in one
/// answer. 1000 pages quickly (about 250 KB of JSON) and is ten times Go's default page.
pub const MAX_CHANGEFEED_RECORDS: i64 = 1000;

/// `change_id` (empty = 0, else a 32-bit integer) and `records` (a 32-bit integer; 0 means
/// 100), parsed as Go's `strconv.ParseInt(s, 10, 32)`. Go answers 400 when `records` is
/// absent or empty; we serve the default page instead (a reference quirk we fix).
/// A larger page than [`MAX_CHANGEFEED_RECORDS`] is clamped to it, keeping the sign (the
/// direction), rather than refused: every request Go answers still gets a page, and a
/// reader that pages on with the last record's ID (as the feed is meant to be read) sees
/// every record.
pub(crate) fn changefeed_params(query: &str) -> Result<(i64, i64), ApiError> {
    let first = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let records = match first("records").as_str() {
        "" => 0,
        s => go_parse_int32(s).map_err(|e| {
            ApiError::InvalidParameters(json!(format!("invalid records parameter: {e}")))
        })?,
    };
    let change_id = match first("change_id").as_str() {
        "" => 0,
        s => go_parse_int32(s).map_err(|_| ApiError::InvalidParameters(json!({})))?,
    };
    let records = match records {
        0 => 100,
        n => n.clamp(-MAX_CHANGEFEED_RECORDS, MAX_CHANGEFEED_RECORDS),
    };
    Ok((change_id, records))
}

/// `strconv.ParseInt(s, 10, 32)` with Go's error text.
fn go_parse_int32(s: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    };
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    // Go stops at the first bad character or as soon as the value overflows.
    let mut n: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(syntax());
        }
        n = n * 10 + u64::from(b - b'0');
        if n > u64::from(u32::MAX) {
            return Err(range());
        }
    }
    let limit = 1u64 << 31;
    if (!negative && n >= limit) || (negative && n > limit) {
        return Err(range());
    }
    let n = n as i64;
    Ok(if negative { -n } else { n })
}

/// Go's `strconv.Quote` for the strings that reach error messages.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    mod cached {
        //! GETs answered from the SQL store's cache must equal what the uncached path
        //! serves, and must never be stale on the replica that accepted an update.

        use std::time::Duration;

        use actix_web::dev::Service;
        use actix_web::test::{self, TestRequest};
        use notary_tuf::keys::KeyType;
        use notary_tuf::test_support::TestRepo;

        use crate::cache::CacheOptions;
        use crate::http::AppState;
        use crate::storage::{MetaStore, SqlStore};

        const GUN: &str = "example.com/cached/app";

        fn upload(parts: &[(String, Vec<u8>)]) -> TestRequest {
            let mut body = Vec::new();
            for (role, bytes) in parts {
                body.extend_from_slice(
                    format!(
                        "--XX\r\nContent-Disposition: form-data; name=\"files\"; \
                         filename=\"{role}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--XX--\r\n");
            TestRequest::post()
                .uri(&format!("/v2/{GUN}/_trust/tuf/"))
                .insert_header(("Content-Type", "multipart/form-data; boundary=XX"))
                .set_payload(body)
        }

        fn at(path: &str) -> TestRequest {
            TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/{path}"))
        }

        async fn send<S, R, B>(app: &S, req: R) -> (u16, Vec<(String, String)>, Vec<u8>)
        where
            S: Service<R, Response = actix_web::dev::ServiceResponse<B>, Error = actix_web::Error>,
            B: actix_web::body::MessageBody,
        {
            let resp = test::call_service(app, req).await;
            let status = resp.status().as_u16();
            let mut headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter(|(n, _)| n.as_str() != "x-request-id")
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            headers.sort();
            (status, headers, test::read_body(resp).await.to_vec())
        }

        #[actix_web::test]
        async fn cached_answers_match_and_writes_show_at_once() {
            let dir = tempfile::tempdir().unwrap();
            let opts = CacheOptions {
                poll_interval: Duration::ZERO,
                max_staleness: Duration::from_secs(3600),
                ..CacheOptions::default()
            };
            let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
            store.run_migrations().unwrap();
            let store = store.with_cache(opts);
            store.sync_cache().unwrap();
            let store = std::sync::Arc::new(store);

            let mut repo = TestRepo::new(GUN);
            let crypto = std::sync::Arc::new(repo.server_crypto());
            let state = AppState::new(store.clone(), crypto, KeyType::Ecdsa);
            let app = test::init_service(crate::build_app(actix_web::web::Data::new(state))).await;

            let files = repo.build();
            let parts = vec![
                ("root".to_string(), files.root.clone()),
                ("targets".to_string(), files.targets["targets"].clone()),
                ("snapshot".to_string(), files.snapshot.clone()),
            ];
            let resp = test::call_service(&app, upload(&parts).to_request()).await;
            assert_eq!(resp.status(), 200);

            for version in 2..5 {
                // Every path twice: the second answer comes from the cache and must be
                // identical, headers included.
                let mut seen = Vec::new();
                for path in [
                    "timestamp.json",
                    "snapshot.json",
                    "targets.json",
                    "root.json",
                ] {
                    let first = send(&app, at(path).to_request()).await;
                    let hits = store.cache().unwrap().stats().hits;
                    let second = send(&app, at(path).to_request()).await;
                    assert_eq!(first.0, 200, "{path}");
                    assert_eq!(first, second, "{path}");
                    assert!(
                        store.cache().unwrap().stats().hits > hits,
                        "{path} not cached"
                    );
                    seen.push(first.2);
                }
                let ts = notary_tuf::SignedFile::parse(&seen[0]).unwrap();
                assert_eq!(ts.common.version, version - 1);
                let sha = crate::storage::sha256_hex(&seen[2]);
                let by_hash = send(&app, at(&format!("targets.{sha}.json")).to_request()).await;
                assert_eq!(by_hash.2, seen[2]);

                // Publish the next targets: the very next read must show it.
                repo.add_target("targets", &format!("t{version}"), b"content");
                repo.bump_targets("targets");
                repo.snapshot_common.version += 1;
                let targets = repo.targets_file("targets");
                let mut all = std::collections::BTreeMap::new();
                all.insert("targets".to_string(), targets.clone());
                let snapshot = repo.snapshot_file(&files.root, &all);
                let parts = vec![
                    ("targets".to_string(), targets.clone()),
                    ("snapshot".to_string(), snapshot),
                ];
                let resp = test::call_service(&app, upload(&parts).to_request()).await;
                assert_eq!(resp.status(), 200);
                let (_, _, body) = send(&app, at("targets.json").to_request()).await;
                assert_eq!(body, targets, "stale targets after publish {version}");
                let (_, _, body) = send(&app, at("timestamp.json").to_request()).await;
                let ts = notary_tuf::SignedFile::parse(&body).unwrap();
                assert_eq!(ts.common.version, version, "stale timestamp");
            }
        }
    }

    fn detail(e: ApiError) -> serde_json::Value {
        e.detail().unwrap()
    }

    #[test]
    fn records_defaults_to_100_and_zero_means_100() {
        assert_eq!(changefeed_params("records=0").unwrap(), (0, 100));
        assert_eq!(changefeed_params("").unwrap(), (0, 100));
        assert_eq!(changefeed_params("change_id=4&records=").unwrap(), (4, 100));
        assert_eq!(
            changefeed_params("records=-5&change_id=7").unwrap(),
            (7, -5)
        );
        assert_eq!(
            changefeed_params("change_id=-1&records=%2B3").unwrap(),
            (-1, 3)
        );
        // As in Go's query parsing, '+' is a space, which ParseInt refuses.
        assert!(changefeed_params("records=+3").is_err());
        assert_eq!(
            detail(changefeed_params("records=x").unwrap_err()),
            json!("invalid records parameter: strconv.ParseInt: parsing \"x\": invalid syntax")
        );
        assert_eq!(
            detail(changefeed_params("records=2147483648").unwrap_err()),
            json!("invalid records parameter: strconv.ParseInt: parsing \"2147483648\": value out of range")
        );
    }

    /// Issue 13 (6b): `records` was unbounded (up to 2^31-1 rows loaded and encoded in one
    /// answer); it is clamped to 1000 either way round.
    #[test]
    fn records_are_clamped_to_1000() {
        assert_eq!(changefeed_params("records=1000").unwrap(), (0, 1000));
        assert_eq!(changefeed_params("records=1001").unwrap(), (0, 1000));
        assert_eq!(changefeed_params("records=2147483647").unwrap(), (0, 1000));
        assert_eq!(
            changefeed_params("change_id=-1&records=-2147483648").unwrap(),
            (-1, -1000)
        );
        assert_eq!(changefeed_params("records=-999").unwrap(), (0, -999));
    }

    #[test]
    fn bad_change_id_has_empty_object_detail() {
        for q in [
            "records=1&change_id=abc",
            "records=1&change_id=99999999999",
            "records=1&change_id=1.5",
        ] {
            assert_eq!(detail(changefeed_params(q).unwrap_err()), json!({}), "{q}");
        }
        assert_eq!(changefeed_params("records=1&change_id=").unwrap(), (0, 1));
    }

    #[test]
    fn go_int32_parsing() {
        assert_eq!(go_parse_int32("2147483647"), Ok(2147483647));
        assert_eq!(go_parse_int32("-2147483648"), Ok(-2147483648));
        assert!(go_parse_int32("-2147483649")
            .unwrap_err()
            .ends_with("value out of range"));
        assert!(go_parse_int32("99999999999x")
            .unwrap_err()
            .ends_with("value out of range"));
        assert!(go_parse_int32("1x")
            .unwrap_err()
            .ends_with("invalid syntax"));
        assert!(go_parse_int32(" 1")
            .unwrap_err()
            .ends_with("invalid syntax"));
        assert!(go_parse_int32("-").unwrap_err().ends_with("invalid syntax"));
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
    }

    #[test]
    fn http_dates_say_gmt() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T20:58:42Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(http_date(t), "Sun, 22 Nov 2026 20:58:42 GMT");
        // Agrees with chrono's own formatting across the calendar.
        for days in (0..4000).step_by(37) {
            let t = t + chrono::Duration::days(days) + chrono::Duration::seconds(days * 7919);
            assert_eq!(
                http_date(t),
                t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
            );
        }
    }
}
