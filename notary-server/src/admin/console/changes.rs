//! The changefeed, newest first, 50 a page: `?before=<id>` pages back, `?gun=` keeps one GUN
//! (exact name).

use maud::html;

use super::{gun_href, href, when, Nav, Page, PageError, Params, PAGE};
use crate::admin::Admin;
use crate::storage::MetaStore as _;

pub(super) async fn page(admin: &Admin, params: &Params) -> Result<Page, PageError> {
    let before = params.number("before", 0, 1..=i64::from(i32::MAX))?;
    let gun = params.get("gun");
    // A negative count walks backwards from the cursor (-1: from the newest); one more than
    // a page says whether older records exist.
    let mut records = admin
        .store()
        .get_changes(
            if before > 0 { before } else { -1 },
            -(PAGE as i64 + 1),
            (!gun.is_empty()).then_some(gun),
        )
        .await?;
    records.reverse();
    let older = records.len() > PAGE;
    records.truncate(PAGE);
    let older = records
        .last()
        .filter(|_| older)
        .map(|c| href("changes", &[("gun", gun), ("before", &c.id.to_string())]));
    let body = html! {
        h1 {
            "Changes"
            @if !gun.is_empty() { " of " a href=(gun_href(gun)) { (gun) } }
        }
        p.muted {
            "Newest first. One record per new timestamp version (update) or deleted GUN \
             (deletion), as the public changefeed serves them."
            @if !gun.is_empty() { " " a href=(href("changes", &[])) { "All GUNs" } }
        }
        @if records.is_empty() {
            p { "No changes." }
        } @else {
            table.changes {
                thead {
                    tr { th { "ID" } th { "When" } th { "GUN" } th { "Change" } th { "Version" } th { "Timestamp sha256" } }
                }
                tbody {
                    @for c in &records {
                        tr {
                            td.num { (c.id) }
                            td { (when(c.created_at)) }
                            td { a href=(gun_href(&c.gun)) { (c.gun) } }
                            td { (c.category) }
                            td.num { (c.version) }
                            td { code { (c.sha256) } }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if before > 0 { a href=(href("changes", &[("gun", gun)])) { "« newest" } }
            @if let Some(older) = older { a href=(older) rel="next" { "older »" } }
        }
    };
    Ok(Page {
        title: "Changes".to_owned(),
        nav: Nav::Changes,
        body,
    })
}
