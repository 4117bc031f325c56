//! "Expiring soon": every inventory entry expiring within `?within=` days (30 by default;
//! expired ones included), soonest first, with who can fix it and how.

use chrono::{DateTime, Utc};
use maud::html;

use super::{expiry_table, ExpiryView, Nav, Page, PageError, Params, ROOT};
use crate::admin::Admin;

/// Entries shown at most (the JSON route and the CLI give more).
const LIMIT: i64 = 500;

pub(super) async fn page(
    admin: &Admin,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<Page, PageError> {
    let within = params.number("within", 30, 0..=36_500)?;
    let role = params.get("role");
    let prefix = params.get("prefix");
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let entries: Vec<ExpiryView> = admin
        .expiring(
            u32::try_from(within).unwrap_or(30),
            some(role),
            some(prefix),
            LIMIT,
            now,
        )
        .await?
        .into_iter()
        .map(ExpiryView::from)
        .collect();
    let expired = entries.iter().filter(|e| e.expires <= now).count();
    let body = html! {
        h1 { "Expiring within " (within) " days" }
        form.inline method="get" action=(format!("{ROOT}expiring")) {
            label for="within" { "Within (days)" }
            input type="number" id="within" name="within" min="0" max="36500" value=(within);
            label for="role" { "Role" }
            input type="text" id="role" name="role" value=(role) size="14" placeholder="any";
            label for="prefix" { "GUN starts with" }
            input type="text" id="prefix" name="prefix" value=(prefix) size="30" placeholder="any";
            button type="submit" { "Show" }
        }
        p {
            (entries.len()) " entries, " (expired) " already expired"
            @if entries.len() as i64 == LIMIT { " (the first " (LIMIT) " shown)" }
            ". Soonest first."
        }
        @if !entries.is_empty() {
            (expiry_table(&entries, true, now))
        }
    };
    Ok(Page {
        title: format!("Expiring within {within} days"),
        nav: Nav::Expiring,
        body,
    })
}
