//! The read-only operator console: server-rendered HTML on the admin listener, so behind the
//! same client-certificate requirement as the JSON routes. GET only; no JavaScript at all
//! (forms submit as plain GETs, and the Content-Security-Policy forbids scripts); every
//! string from the database or the URL is escaped by maud.
//!
//! | page | shows |
//! |---|---|
//! | `console/[?q=<prefix>][&after=<gun>]` | GUNs by name, 50 a page (keyset paging), with the soonest expiry of each; `q` matches the start of the GUN |
//! | `console/gun/<gun>` | one GUN ([`Admin::gun_report`]): roles, delegations, expiries with who can fix them, server-held keys, last changes |
//! | `console/expiring[?within=<days>][&role=][&prefix=]` | what expires within so many days (30 by default), soonest first |
//! | `console/changes[?before=<id>][&gun=]` | the changefeed, newest first, 50 a page |
//!
//! Expiries are coloured by CSS class: `expired` (red), `soon` (under 30 days, amber),
//! `ok` (green); the text says the same for a reader without colour.

mod changes;
mod expiring;
mod gun;
mod guns;

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use percent_encoding::{AsciiSet, CONTROLS};

use super::Admin;
use crate::storage::StoreError;

/// Where the console lives (under the admin prefix).
pub const ROOT: &str = "/_notary_server/admin/console/";

/// Rows per page of the GUN list and the changefeed.
const PAGE: usize = 50;

/// Under this many days an expiry is shown as `soon`.
const SOON_DAYS: i64 = 30;

/// No scripts, no plugins, no framing, no foreign form targets: the pages need none of them,
/// and a string that slipped past escaping could still do nothing.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = "\
body{font:14px/1.45 'DejaVu Sans',system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}\
header{background:#24292f;color:#fff;padding:.5em 1em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}\
header a{color:#fff}header a[aria-current]{font-weight:bold;text-decoration:underline}\
header form{margin-left:auto}\
main{padding:.5em 1em}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.4em}\
table{border-collapse:collapse;margin:.4em 0}\
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.num{text-align:right}\
code{font:12px 'DejaVu Sans Mono',monospace;overflow-wrap:anywhere}h1 code{font-size:.9em}\
time{white-space:nowrap}\
.expired{background:#f8d7da;color:#842029}.soon{background:#fff3cd;color:#664d03}\
.ok{background:#d1e7dd;color:#0f5132}\
.muted{color:#57606a}.pager a{margin-right:1.2em}\
form.inline{display:flex;gap:.5em;align-items:center;flex-wrap:wrap;margin:.5em 0}\
footer{padding:1em;color:#57606a;font-size:12px}";

/// Characters escaped in a GUN placed in a URL path; `/` stays readable (the admin router
/// decodes the whole path before matching).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// Whether an admin route (the path after the admin prefix) belongs to the console.
pub(crate) fn is_console(rest: &str) -> bool {
    rest == "console" || rest.starts_with("console/")
}

/// Which nav entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nav {
    Guns,
    Gun,
    Expiring,
    Changes,
    None,
}

/// A rendered page body and its title.
struct Page {
    title: String,
    nav: Nav,
    body: Markup,
}

/// Why a page could not be shown.
#[derive(Debug)]
enum PageError {
    BadRequest(String),
    NotFound(String),
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

/// Query parameters, the last value of each name winning.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The trimmed value, "" when absent.
    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }

    /// A whole number in `range`, `default` when absent or empty.
    fn number(
        &self,
        name: &str,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, PageError> {
        let v = self.get(name);
        if v.is_empty() {
            return Ok(default);
        }
        v.parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                PageError::BadRequest(format!(
                    "{name}={v:?}: give a whole number from {} to {}",
                    range.start(),
                    range.end()
                ))
            })
    }
}

/// Answers a console request: `rest` is the decoded path after the admin prefix (starting
/// with `console`), `query` the raw query string.
pub(crate) async fn respond(
    admin: &Admin,
    rest: &str,
    query: &str,
    now: DateTime<Utc>,
) -> HttpResponse {
    let started = Instant::now();
    let sub = rest.strip_prefix("console").unwrap_or(rest);
    let params = Params::parse(query);
    let page = match sub {
        // The pages link relative to ROOT; send the bare name there.
        "" => {
            let mut to = ROOT.to_owned();
            if !query.is_empty() {
                to.push('?');
                to.push_str(query);
            }
            return redirect(StatusCode::PERMANENT_REDIRECT, &to);
        }
        "/" => guns::page(admin, &params, now).await,
        "/expiring" | "/expiring/" => expiring::page(admin, &params, now).await,
        "/changes" | "/changes/" => changes::page(admin, &params).await,
        // The nav bar's "open a GUN" form.
        "/gun" | "/gun/" => {
            let gun = params.get("gun");
            let to = if gun.is_empty() {
                ROOT.to_owned()
            } else {
                gun_href(gun)
            };
            return redirect(StatusCode::SEE_OTHER, &to);
        }
        s => match s.strip_prefix("/gun/") {
            Some(name) => gun::page(admin, name, now).await,
            None => Err(PageError::NotFound(format!(
                "no console page at {}{}",
                super::http::PREFIX,
                rest
            ))),
        },
    };
    let (status, page) = match page {
        Ok(page) => (StatusCode::OK, page),
        Err(e) => error_page(e),
    };
    html_response(status, layout(&page, now, started))
}

fn error_page(e: PageError) -> (StatusCode, Page) {
    let (status, title, why) = match e {
        PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad request", why),
        PageError::NotFound(why) => (StatusCode::NOT_FOUND, "Not found", why),
        PageError::Store(e) => {
            tracing::error!(error = %e, "console: storage read failed");
            // The reader holds the admin certificate: the cause helps more than it tells.
            let status = match e {
                StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, "Storage error", e.to_string())
        }
    };
    let body = html! {
        h1 { (title) }
        p { (why) }
        p { a href=(ROOT) { "Back to the GUN list" } }
    };
    (
        status,
        Page {
            title: title.to_owned(),
            nav: Nav::None,
            body,
        },
    )
}

fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(markup.into_string())
}

fn redirect(status: StatusCode, to: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The shared frame: nav bar, the page, a footer with the render time.
fn layout(page: &Page, now: DateTime<Utc>, started: Instant) -> Markup {
    let entry = |nav: Nav, href: String, label: &str| {
        html! {
            @if page.nav == nav {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " · notary console" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    strong { "Notary console" }
                    nav {
                        (entry(Nav::Guns, ROOT.to_owned(), "GUNs"))
                        " "
                        (entry(Nav::Expiring, format!("{ROOT}expiring"), "Expiring soon"))
                        " "
                        (entry(Nav::Changes, format!("{ROOT}changes"), "Changes"))
                    }
                    form method="get" action=(format!("{ROOT}gun")) {
                        label for="open-gun" { "GUN page: " }
                        input type="text" id="open-gun" name="gun" size="30"
                            placeholder="docker.io/library/app" required;
                        " "
                        @if page.nav == Nav::Gun {
                            button type="submit" aria-current="page" { "Open" }
                        } @else {
                            button type="submit" { "Open" }
                        }
                    }
                }
                main { (page.body) }
                footer {
                    "Read-only. Rendered at " (now.format("%Y-%m-%d %H:%M:%S UTC"))
                    " in " (format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0)) " ms."
                }
            }
        }
    }
}

/// The console URL of a GUN's page.
fn gun_href(gun: &str) -> String {
    let mut encoded = percent_encoding::utf8_percent_encode(gun, PATH).to_string();
    // A browser resolves `.` and `..` segments (even percent-encoded ones) before sending;
    // such a GUN goes as one segment, its slashes encoded.
    if gun.split('/').any(|s| s == "." || s == "..") {
        encoded = encoded.replace('/', "%2F");
    }
    format!("{ROOT}gun/{encoded}")
}

/// `ROOT` + `page` + the non-empty parameters as a query string.
fn href(page: &str, params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        format!("{ROOT}{page}")
    } else {
        format!("{ROOT}{page}?{query}")
    }
}

/// `expired`, `soon` or `ok`.
fn urgency(expires: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    if expires <= now {
        "expired"
    } else if expires - now < chrono::Duration::days(SOON_DAYS) {
        "soon"
    } else {
        "ok"
    }
}

/// "expired 3 days ago", "12 days left", for the reader without colour.
fn time_left(expires: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    if expires <= now {
        match (now - expires).num_days() {
            0 => "expired today".to_owned(),
            n => format!("expired {n} day{} ago", plural(n)),
        }
    } else {
        match (expires - now).num_days() {
            0 => "expires today".to_owned(),
            n => format!("{n} day{} left", plural(n)),
        }
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A coloured table cell with the expiry and how near it is.
fn expiry_cell(expires: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        td class=(urgency(expires, now)) {
            time datetime=(expires.to_rfc3339()) { (when(expires)) }
            br;
            strong { (time_left(expires, now)) }
        }
    }
}

/// One expiry (of the inventory) as the GUN page and the dashboard show it.
#[derive(Debug, Clone, serde::Deserialize)]
struct ExpiryView {
    gun: String,
    role: String,
    kind: String,
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    subject: String,
    expires: DateTime<Utc>,
    version: i64,
    who_can_fix: String,
    #[serde(default)]
    command: Option<String>,
}

impl From<super::Expiring> for ExpiryView {
    fn from(e: super::Expiring) -> Self {
        ExpiryView {
            gun: e.row.gun,
            role: e.row.role,
            kind: e.row.kind.as_str().to_owned(),
            key_id: e.row.key_id,
            subject: e.row.subject,
            expires: e.row.expires,
            version: e.row.version,
            who_can_fix: e.who_can_fix.to_owned(),
            command: e.command,
        }
    }
}

/// A table of expiries; with `with_gun`, a first column links each GUN.
fn expiry_table(rows: &[ExpiryView], with_gun: bool, now: DateTime<Utc>) -> Markup {
    html! {
        table.expiries {
            thead {
                tr {
                    @if with_gun { th { "GUN" } }
                    th { "Role" } th { "What" } th { "Expires" } th { "Version" }
                    th { "Who can fix it" } th { "Repair" }
                }
            }
            tbody {
                @for e in rows {
                    tr {
                        @if with_gun {
                            td { a href=(gun_href(&e.gun)) { (e.gun) } }
                        }
                        td { (e.role) }
                        td {
                            (e.kind)
                            @if !e.subject.is_empty() {
                                br; span.muted { "CN=" (e.subject) }
                            }
                            @if !e.key_id.is_empty() {
                                br; code title="key ID" { (e.key_id) }
                            }
                        }
                        (expiry_cell(e.expires, now))
                        td.num { (e.version) }
                        td { (e.who_can_fix) }
                        td {
                            @match &e.command {
                                Some(c) => code { (c) },
                                None => span.muted { "the server re-signs it itself" },
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
