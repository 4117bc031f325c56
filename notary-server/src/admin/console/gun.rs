//! One GUN's page: [`Admin::gun_report`] shown readably.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::{expiry_cell, expiry_table, href, when, ExpiryView, Nav, Page, PageError};
use crate::admin::Admin;

/// The parts of [`Admin::gun_report`]'s JSON the page shows.
#[derive(Debug, Deserialize)]
struct Report {
    roles: BTreeMap<String, RoleInfo>,
    delegations: Vec<Delegation>,
    expiries: Vec<ExpiryView>,
    server_keys: Vec<ServerKey>,
    stats: Stats,
    last_changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct RoleInfo {
    version: i64,
    sha256: String,
    stored_at: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
    /// Root only: the keys and threshold of each base role.
    #[serde(default)]
    roles: BTreeMap<String, KeySet>,
    /// Targets and delegations: how many targets.
    #[serde(default)]
    targets: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct KeySet {
    keyids: Vec<String>,
    threshold: i64,
}

#[derive(Debug, Deserialize)]
struct Delegation {
    role: String,
    parent: String,
    #[serde(default)]
    paths: Vec<String>,
    threshold: i64,
    keyids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ServerKey {
    key_id: String,
    role: String,
}

#[derive(Debug, Deserialize)]
struct Stats {
    rows: i64,
    bytes: i64,
}

#[derive(Debug, Deserialize)]
struct Change {
    id: i64,
    at: DateTime<Utc>,
    version: i64,
    category: String,
}

/// Roles in the order a reader expects: root, targets, delegations, snapshot, timestamp.
fn rank(role: &str) -> (u8, &str) {
    let r = match role {
        "root" => 0,
        "targets" => 1,
        "snapshot" => 3,
        "timestamp" => 4,
        _ => 2,
    };
    (r, role)
}

fn key_list(ids: &[String], server_held: &BTreeSet<&str>) -> Markup {
    html! {
        @for id in ids {
            code { (id) }
            @if server_held.contains(id.as_str()) { " " span.muted { "(server-held)" } }
            br;
        }
    }
}

pub(super) async fn page(admin: &Admin, gun: &str, now: DateTime<Utc>) -> Result<Page, PageError> {
    if gun.is_empty() {
        return Err(PageError::NotFound("name a GUN: console/gun/<gun>".into()));
    }
    let value = admin.gun_report(gun, now).await?;
    let report: Report = serde_json::from_value(value).map_err(|e| {
        PageError::Store(crate::storage::StoreError::Other(format!(
            "console: unexpected gun report: {e}"
        )))
    })?;
    if report.roles.is_empty() && report.stats.rows == 0 && report.last_changes.is_empty() {
        return Err(PageError::NotFound(format!(
            "no GUN named {gun:?} is stored"
        )));
    }
    let root_roles = report.roles.get("root").map(|r| &r.roles);
    let delegated: BTreeMap<&str, &Delegation> = report
        .delegations
        .iter()
        .map(|d| (d.role.as_str(), d))
        .collect();
    let server_held: BTreeSet<&str> = report
        .server_keys
        .iter()
        .map(|k| k.key_id.as_str())
        .collect();
    let mut roles: Vec<(&String, &RoleInfo)> = report.roles.iter().collect();
    roles.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)));
    let body = html! {
        h1 { "GUN " code { (gun) } }
        p {
            (report.stats.rows) " metadata rows, " (report.stats.bytes) " bytes stored. "
            a href=(href("changes", &[("gun", gun)])) { "All changes of this GUN" }
        }
        @if report.roles.is_empty() {
            p.expired { "No current metadata is stored for this GUN (deleted, or never published)." }
        } @else {
            h2 { "Roles" }
            table.roles {
                thead {
                    tr {
                        th { "Role" } th { "Version" } th { "Expires" } th { "Keys (threshold)" }
                        th { "sha256" } th { "Stored" }
                    }
                }
                tbody {
                    @for (name, info) in &roles {
                        tr {
                            td {
                                (name)
                                @if let Some(n) = info.targets {
                                    br; span.muted { (n) @if n == 1 { " target" } @else { " targets" } }
                                }
                            }
                            td.num { (info.version) }
                            @match info.expires {
                                Some(t) => (expiry_cell(t, now)),
                                None => td.muted { "no expiry" },
                            }
                            td {
                                @if let Some(set) = root_roles.and_then(|r| r.get(name.as_str())) {
                                    (key_list(&set.keyids, &server_held))
                                    span.muted { "threshold " (set.threshold) }
                                } @else if let Some(d) = delegated.get(name.as_str()) {
                                    (key_list(&d.keyids, &server_held))
                                    span.muted { "threshold " (d.threshold) }
                                }
                            }
                            td { code { (info.sha256) } }
                            td { (when(info.stored_at)) }
                        }
                    }
                }
            }
        }
        h2 { "Delegations" }
        @if report.delegations.is_empty() {
            p.muted { "None." }
        } @else {
            table.delegations {
                thead { tr { th { "Role" } th { "Delegated by" } th { "Paths" } th { "Threshold" } th { "Keys" } } }
                tbody {
                    @for d in &report.delegations {
                        tr {
                            td { (d.role) }
                            td { (d.parent) }
                            td {
                                @if d.paths.is_empty() { span.muted { "none" } }
                                @for p in &d.paths {
                                    @if p.is_empty() { span.muted { "\"\" (all paths)" } } @else { code { (p) } }
                                    br;
                                }
                            }
                            td.num { (d.threshold) }
                            td { (key_list(&d.keyids, &server_held)) }
                        }
                    }
                }
            }
        }
        h2 { "Expiries" }
        @if report.expiries.is_empty() {
            p.muted {
                "Nothing in the expiry inventory for this GUN (run "
                code { "notary-server admin expiry-backfill" } " on a database written before it)."
            }
        } @else {
            (expiry_table(&report.expiries, false, now))
        }
        h2 { "Server-held keys" }
        @if report.server_keys.is_empty() {
            p.muted { "None recorded." }
        } @else {
            table.keys {
                thead { tr { th { "Key ID" } th { "Role" } } }
                tbody {
                    @for k in &report.server_keys {
                        tr { td { code { (k.key_id) } } td { (k.role) } }
                    }
                }
            }
        }
        h2 { "Last changes" }
        @if report.last_changes.is_empty() {
            p.muted { "None." }
        } @else {
            table.changes {
                thead { tr { th { "ID" } th { "When" } th { "Change" } th { "Version" } } }
                tbody {
                    @for c in &report.last_changes {
                        tr {
                            td.num { (c.id) }
                            td { (when(c.at)) }
                            td { (c.category) }
                            td.num { (c.version) }
                        }
                    }
                }
            }
        }
    };
    Ok(Page {
        title: format!("GUN {gun}"),
        nav: Nav::Gun,
        body,
    })
}
