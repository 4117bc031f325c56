//! The GUN list: names in order, 50 a page after `?after=`, prefix search `?q=`, and the
//! soonest expiry of each.

use chrono::{DateTime, Utc};
use maud::html;

use super::{expiry_cell, gun_href, href, Nav, Page, PageError, Params, PAGE, ROOT};
use crate::admin::Admin;

pub(super) async fn page(
    admin: &Admin,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Page, PageError> {
    let q = params.get("q");
    let after = params.get("after");
    // One more than a page says whether a next page exists.
    let mut rows = admin
        .store()
        .console_guns(after, q, PAGE as i64 + 1)
        .await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|r| href("", &[("q", q), ("after", &r.gun)]));
    let body = html! {
        h1 { "GUNs" }
        form.inline method="get" action=(ROOT) role="search" {
            label for="q" { "GUN starts with" }
            input type="search" id="q" name="q" value=(q) size="40" placeholder="docker.io/library/";
            button type="submit" { "Search" }
            @if !q.is_empty() { a href=(ROOT) { "show all" } }
        }
        p.muted {
            "The search matches the beginning of the GUN (a prefix; case-sensitive on SQLite and \
             PostgreSQL, case-insensitive on MySQL). Soonest expiry: the earliest of the GUN's \
             metadata and certificate expiries in the expiry inventory."
        }
        @if rows.is_empty() {
            p {
                @if q.is_empty() { "No GUN is stored" } @else { "No GUN starts with " code { (q) } }
                @if !after.is_empty() { " after " code { (after) } }
                "."
            }
        } @else {
            table.guns {
                thead { tr { th { "GUN" } th { "Soonest expiry" } th { "Of" } } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a href=(gun_href(&r.gun)) { (r.gun) } }
                            @match &r.soonest {
                                Some(s) => {
                                    (expiry_cell(s.expires, now))
                                    td { (s.role) " " span.muted { (s.kind.as_str()) } }
                                }
                                None => td.muted colspan="2" {
                                    "not in the expiry inventory (run "
                                    code { "notary-server admin expiry-backfill" } ")"
                                },
                            }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if !after.is_empty() { a href=(href("", &[("q", q)])) { "« first page" } }
            @if let Some(next) = next { a href=(next) rel="next" { "next page »" } }
        }
    };
    Ok(Page {
        title: if q.is_empty() {
            "GUNs".to_owned()
        } else {
            format!("GUNs starting with {q}")
        },
        nav: Nav::Guns,
        body,
    })
}
