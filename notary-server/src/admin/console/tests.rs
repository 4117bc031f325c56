//! Rendering of every console page on a migrated SQLite store: real TUF metadata where the
//! inventory reads it, paging, search, escaping, errors.

use std::sync::Arc;

use actix_web::http::StatusCode;
use chrono::{Duration, Utc};
use notary_tuf::crypto::MemoryCryptoService;
use notary_tuf::test_support::TestRepo;
use serde_json::json;

use super::*;
use crate::storage::{MetaStore, MetaUpdate, SqlStore};

struct Fixture {
    admin: Admin,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("s.db")).unwrap();
    store.run_migrations().unwrap();
    Fixture {
        admin: Admin::new(store, Arc::new(MemoryCryptoService::new())),
        _dir: dir,
    }
}

/// A minimal (unsigned) file of `role` expiring in `days`: enough for the inventory and the
/// changefeed, which do not verify.
fn file(role: &str, version: i64, days: i64) -> MetaUpdate {
    let expires = (Utc::now() + Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let data = serde_json::to_vec(&json!({
        "signed": {"_type": role, "version": version, "expires": expires},
        "signatures": [],
    }))
    .unwrap();
    MetaUpdate {
        role: role.to_lowercase(),
        version,
        data,
    }
}

/// Publishes a real signed repository: a `targets/releases` delegation (paths `releases/`),
/// the timestamp expired a day ago, the snapshot expiring in 10 days; the server holds the
/// timestamp key.
async fn publish_real(admin: &Admin, gun: &str) -> TestRepo {
    let now = Utc::now();
    let mut repo = TestRepo::new(gun);
    repo.add_delegation("targets", "targets/releases", &["releases/"]);
    repo.add_target("targets/releases", "releases/v1", b"v1");
    repo.timestamp_common.expires = now - Duration::days(1);
    repo.snapshot_common.expires = now + Duration::days(10);
    let files = repo.build();
    let mut updates = vec![MetaUpdate {
        role: "root".into(),
        version: 1,
        data: files.root.clone(),
    }];
    for (role, data) in &files.targets {
        updates.push(MetaUpdate {
            role: role.clone(),
            version: 1,
            data: data.clone(),
        });
    }
    for (role, data) in [
        ("snapshot", &files.snapshot),
        ("timestamp", &files.timestamp),
    ] {
        updates.push(MetaUpdate {
            role: role.into(),
            version: 1,
            data: data.clone(),
        });
    }
    admin.store().update_many(gun, updates).await.unwrap();
    let ts = repo.timestamp_key.public_key().key_id();
    admin
        .store()
        .record_key(gun, "timestamp", &ts)
        .await
        .unwrap();
    repo
}

struct Answer {
    status: StatusCode,
    content_type: String,
    cache_control: String,
    location: String,
    body: String,
}

async fn get(admin: &Admin, path_and_query: &str) -> Answer {
    let (rest, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let resp = respond(admin, rest, query, Utc::now()).await;
    let header = |name: header::HeaderName| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, content_type, cache_control, location) = (
        resp.status(),
        header(header::CONTENT_TYPE),
        header(header::CACHE_CONTROL),
        header(header::LOCATION),
    );
    let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
    Answer {
        status,
        content_type,
        cache_control,
        location,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// An HTML 200 page; returns its body.
async fn page(admin: &Admin, path_and_query: &str) -> String {
    let a = get(admin, path_and_query).await;
    assert_eq!(a.status, StatusCode::OK, "{path_and_query}: {}", a.body);
    assert_eq!(a.content_type, "text/html; charset=utf-8");
    assert_eq!(a.cache_control, "no-store");
    assert!(a.body.starts_with("<!DOCTYPE html>"), "{}", a.body);
    a.body
}

/// The GUN links of a list page, in order.
fn listed(body: &str) -> Vec<String> {
    let marker = format!("<td><a href=\"{ROOT}gun/");
    body.split(&marker)
        .skip(1)
        .map(|s| s.split_once('"').unwrap().0.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gun_list_shows_soonest_expiry_coloured_and_links_each_gun() {
    let f = fixture();
    let store = f.admin.store();
    store
        .update_many(
            "example.com/ok",
            vec![file("Targets", 1, 400), file("Timestamp", 1, 90)],
        )
        .await
        .unwrap();
    store
        .update_many("example.com/soon", vec![file("Targets", 1, 12)])
        .await
        .unwrap();
    store
        .update_many("example.com/gone", vec![file("Timestamp", 1, -3)])
        .await
        .unwrap();
    let body = page(&f.admin, "console/").await;
    assert_eq!(
        listed(&body),
        ["example.com/gone", "example.com/ok", "example.com/soon"]
    );
    // Each row's soonest expiry, in its colour class, in words too.
    let row = |gun: &str| {
        let start = body.find(&format!("gun/{gun}\"")).unwrap();
        body[start..].split("</tr>").next().unwrap().to_owned()
    };
    assert!(row("example.com/gone").contains("class=\"expired\""));
    assert!(row("example.com/gone").contains("expired 3 days ago"));
    assert!(row("example.com/soon").contains("class=\"soon\""));
    assert!(row("example.com/soon").contains("11 days left"));
    let ok = row("example.com/ok");
    assert!(
        ok.contains("class=\"ok\"") && ok.contains("timestamp"),
        "{ok}"
    );
    assert!(ok.contains("89 days left"), "{ok}");
    // The shared nav bar links the other pages; no script anywhere.
    for link in ["console/expiring", "console/changes", "console/gun"] {
        assert!(
            body.contains(&format!("/_notary_server/admin/{link}\"")),
            "{link}"
        );
    }
    assert!(!body.contains("<script"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gun_list_pages_by_name_fifty_at_a_time() {
    let f = fixture();
    let mut names: Vec<String> = (0..120).map(|i| format!("example.com/p/{i:03}")).collect();
    for name in &names {
        f.admin
            .store()
            .update_many(name, vec![file("Targets", 1, 100)])
            .await
            .unwrap();
    }
    names.sort();
    let first = page(&f.admin, "console/").await;
    assert_eq!(listed(&first), names[..50]);
    assert!(!first.contains("first page"));
    let next = format!(
        "{ROOT}?after={}",
        url::form_urlencoded::byte_serialize(names[49].as_bytes()).collect::<String>()
    );
    assert!(
        first.contains(&format!(
            "href=\"{}\" rel=\"next\"",
            next.replace('&', "&amp;")
        )),
        "{first}"
    );
    let second = page(&f.admin, &format!("console/?after={}", names[49])).await;
    assert_eq!(listed(&second), names[50..100]);
    assert!(second.contains("first page"));
    let third = page(&f.admin, &format!("console/?after={}", names[99])).await;
    assert_eq!(listed(&third), names[100..]);
    assert!(!third.contains("next page"), "the last page links no next");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gun_list_search_matches_the_start_of_the_name() {
    let f = fixture();
    for gun in [
        "docker.io/library/alpine",
        "docker.io/library/busybox",
        "docker_io/other",
        "quay.io/docker.io/x",
        "Docker.io/upper",
    ] {
        f.admin
            .store()
            .update_many(gun, vec![file("Targets", 1, 100)])
            .await
            .unwrap();
    }
    let body = page(&f.admin, "console/?q=docker.io%2Flib").await;
    assert_eq!(
        listed(&body),
        ["docker.io/library/alpine", "docker.io/library/busybox"]
    );
    assert!(
        body.contains("value=\"docker.io/lib\""),
        "the box keeps the search"
    );
    // `.` and `_` are no wildcards; SQLite compares case-sensitively.
    assert_eq!(listed(&page(&f.admin, "console/?q=docker.").await).len(), 2);
    assert_eq!(
        listed(&page(&f.admin, "console/?q=docker_").await),
        ["docker_io/other"]
    );
    // Search and paging combine.
    let after = page(
        &f.admin,
        "console/?q=docker.io/&after=docker.io/library/alpine",
    )
    .await;
    assert_eq!(listed(&after), ["docker.io/library/busybox"]);
    let none = page(&f.admin, "console/?q=nothing").await;
    assert!(listed(&none).is_empty());
    assert!(none.contains("No GUN starts with"), "{none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gun_page_shows_roles_delegations_expiries_keys_and_changes() {
    let f = fixture();
    let gun = "example.com/real/app";
    let repo = publish_real(&f.admin, gun).await;
    let body = page(&f.admin, &format!("console/gun/{gun}")).await;
    for role in [
        "root",
        "targets",
        "targets/releases",
        "snapshot",
        "timestamp",
    ] {
        assert!(
            body.contains(&format!("<td>{role}")),
            "{role} missing: {body}"
        );
    }
    // Roles in reading order.
    let at = |s: &str| body.find(&format!("<td>{s}")).unwrap();
    assert!(at("root") < at("targets") && at("targets/releases") < at("snapshot"));
    // Key IDs, with the server-held timestamp key marked; thresholds; the delegation's paths.
    let ts = repo.timestamp_key.public_key().key_id();
    assert!(body.contains(&format!(
        "<code>{ts}</code> <span class=\"muted\">(server-held)"
    )));
    let targets_key = repo.targets_key.public_key().key_id();
    assert!(body.contains(&targets_key));
    assert!(body.contains("threshold 1"));
    assert!(body.contains("<code>releases/</code>"), "{body}");
    // Expiries: the timestamp expired (the server fixes it), the snapshot soon (the owner,
    // with the command), the root certificate far off.
    assert!(body.contains("expired today") || body.contains("expired 1 day ago"));
    assert!(body.contains("class=\"expired\""));
    assert!(body.contains("class=\"soon\""));
    assert!(body.contains("class=\"ok\""));
    assert!(body.contains("the server re-signs it itself"));
    assert!(body.contains(&format!("notary publish {gun}")), "{body}");
    assert!(
        body.contains(&format!("CN={gun}")),
        "root certificate row: {body}"
    );
    // The last change, and a link to the GUN's changes.
    assert!(body.contains("<td>update</td>"));
    assert!(body.contains(&format!(
        "{ROOT}changes?gun={}",
        url::form_urlencoded::byte_serialize(gun.as_bytes()).collect::<String>()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_dashboard_lists_soonest_first_within_the_window() {
    let f = fixture();
    let store = f.admin.store();
    store
        .update_many("example.com/a", vec![file("Timestamp", 1, -2)])
        .await
        .unwrap();
    store
        .update_many("example.com/b", vec![file("Targets", 1, 20)])
        .await
        .unwrap();
    store
        .update_many("example.com/c", vec![file("Targets", 1, 200)])
        .await
        .unwrap();
    let body = page(&f.admin, "console/expiring").await;
    assert!(body.contains("Expiring within 30 days"));
    assert!(body.contains("value=\"30\""), "the form shows the window");
    assert_eq!(
        listed(&body),
        ["example.com/a", "example.com/b"],
        "soonest first"
    );
    assert!(body.contains("2 entries, 1 already expired"), "{body}");
    assert!(body.contains("notary witness example.com/b targets"));
    let wide = page(&f.admin, "console/expiring?within=365").await;
    assert_eq!(listed(&wide).len(), 3);
    let by_role = page(&f.admin, "console/expiring?within=365&role=targets").await;
    assert_eq!(listed(&by_role), ["example.com/b", "example.com/c"]);
    let bad = get(&f.admin, "console/expiring?within=soon").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("within=&quot;soon&quot;"), "{}", bad.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_page_runs_newest_first_and_pages_back() {
    let f = fixture();
    for i in 0..60 {
        f.admin
            .store()
            .update_many(
                &format!("example.com/c/{i:02}"),
                vec![file("Timestamp", 1, 10)],
            )
            .await
            .unwrap();
    }
    let body = page(&f.admin, "console/changes").await;
    let guns = listed(&body);
    assert_eq!(guns.len(), 50);
    assert_eq!(guns[0], "example.com/c/59", "newest first");
    assert_eq!(guns[49], "example.com/c/10");
    let ids: Vec<i64> = body
        .split("<td class=\"num\">")
        .skip(1)
        .step_by(2)
        .map(|s| s.split('<').next().unwrap().parse().unwrap())
        .collect();
    let oldest = ids[49];
    assert!(
        body.contains(&format!("changes?before={oldest}\" rel=\"next\"")),
        "{body}"
    );
    let older = page(&f.admin, &format!("console/changes?before={oldest}")).await;
    let guns = listed(&older);
    assert_eq!(guns.len(), 10);
    assert_eq!(guns[9], "example.com/c/00");
    assert!(!older.contains("older »"));
    assert!(older.contains("« newest"));
    let one = page(&f.admin, "console/changes?gun=example.com/c/07").await;
    assert_eq!(listed(&one), ["example.com/c/07"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_strings_are_escaped_on_every_page() {
    let f = fixture();
    let gun = "example.com/<script>alert(1)</script>\"x'&";
    publish_real(&f.admin, gun).await;
    let escaped = "example.com/&lt;script&gt;alert(1)&lt;/script&gt;&quot;x'&amp;";
    let link = format!("{ROOT}gun/example.com/%3Cscript%3Ealert(1)%3C/script%3E%22x'&amp;");
    for path in [
        "console/".to_owned(),
        "console/?q=example.com/%3Cscr".to_owned(),
        "console/expiring".to_owned(),
        "console/changes".to_owned(),
        format!("console/gun/{gun}"),
    ] {
        let body = page(&f.admin, &path).await;
        assert!(!body.contains("<script"), "{path}: {body}");
        assert!(body.contains(escaped), "{path}: {body}");
        if !path.starts_with("console/gun/") {
            assert!(body.contains(&link), "{path}: {body}");
        }
    }
    // A search for markup comes back as text.
    let body = page(&f.admin, "console/?q=%3Cimg%20src%3Dx%3E").await;
    assert!(!body.contains("<img"), "{body}");
    assert!(body.contains("&lt;img src=x&gt;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pages_are_404_and_bare_names_redirect() {
    let f = fixture();
    for path in [
        "console/nope",
        "console/gun/example.com/none",
        "console/guns/x",
    ] {
        let a = get(&f.admin, path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.content_type, "text/html; charset=utf-8");
        assert_eq!(a.cache_control, "no-store");
    }
    let bare = get(&f.admin, "console?q=a").await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.location, format!("{ROOT}?q=a"));
    let open = get(&f.admin, "console/gun?gun=docker.io%2Fa%3Fb").await;
    assert_eq!(open.status, StatusCode::SEE_OTHER);
    assert_eq!(open.location, format!("{ROOT}gun/docker.io/a%3Fb"));
    assert_eq!(get(&f.admin, "console/gun").await.location, ROOT);
    // A GUN whose chain does not resolve (a timestamp without meta) gets an HTML error page
    // naming the cause.
    f.admin
        .store()
        .update_many("example.com/broken", vec![file("Timestamp", 1, 5)])
        .await
        .unwrap();
    let broken = get(&f.admin, "console/gun/example.com/broken").await;
    assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(broken.content_type, "text/html; charset=utf-8");
    assert!(broken.body.contains("Storage error"), "{}", broken.body);
}

#[test]
fn gun_links_survive_dot_segments() {
    assert_eq!(gun_href("a/b c#d"), format!("{ROOT}gun/a/b%20c%23d"));
    assert_eq!(gun_href("a/../b"), format!("{ROOT}gun/a%2F..%2Fb"));
}

#[test]
fn urgency_and_words_agree() {
    let now = Utc::now();
    assert_eq!(urgency(now - Duration::seconds(1), now), "expired");
    assert_eq!(urgency(now + Duration::days(29), now), "soon");
    assert_eq!(urgency(now + Duration::days(30), now), "ok");
    assert_eq!(time_left(now - Duration::hours(3), now), "expired today");
    assert_eq!(time_left(now - Duration::days(1), now), "expired 1 day ago");
    assert_eq!(time_left(now + Duration::hours(30), now), "1 day left");
}
