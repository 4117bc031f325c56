//! GET metadata (current, by checksum, by version), cache headers, DELETE, the
//! changefeed, and storage failures.

mod http_support;

use std::sync::Arc;

use actix_web::test::{self, TestRequest};
use actix_web::web;
use chrono::{DateTime, Utc};
use http_support::*;
use notary_server::storage::{Change, MetaStore, MetaUpdate, StoreError, StoredFile};
use notary_tuf::crypto::MemoryCryptoService;
use notary_tuf::keys::KeyType;
use serde_json::json;

const GUN: &str = "docker.io/library/alpine";

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

async fn stored(store: &dyn MetaStore, role: &str, data: &[u8]) -> StoredFile {
    store
        .get_checksum(GUN, role, &sha256_hex(data))
        .await
        .unwrap()
        .unwrap()
}

#[actix_web::test]
async fn current_metadata_has_current_cache_headers() {
    let (state, store) = memory_state();
    let s = seed(store.as_ref(), GUN, 1).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    for (role, data) in [
        ("root", &s.root),
        ("targets", &s.targets),
        ("snapshot", &s.snapshot),
        ("timestamp", &s.timestamp),
    ] {
        let r = send(
            &app,
            TestRequest::get()
                .uri(&format!("/v2/{GUN}/_trust/tuf/{role}.json"))
                .to_request(),
        )
        .await;
        assert_eq!(r.status, 200, "{role}");
        assert_eq!(&r.body, data, "{role}: bytes as stored");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=300, s-maxage=300, must-revalidate")
        );
        assert_eq!(r.header("pragma"), None);
        let row = stored(store.as_ref(), role, data).await;
        let expected = if role == "timestamp" {
            row.updated_at
        } else {
            row.created_at
        };
        assert_eq!(
            r.header("last-modified"),
            Some(http_date(expected).as_str()),
            "{role}"
        );
    }
}

#[actix_web::test]
async fn current_follows_the_timestamp_not_the_highest_version() {
    let (state, store) = memory_state();
    let s = seed(store.as_ref(), GUN, 1).await;
    // A newer root that no timestamp certifies is not "current".
    store
        .update_many(
            GUN,
            vec![MetaUpdate {
                role: "root".into(),
                version: 2,
                data: b"{\"signed\":{\"version\":2}}".to_vec(),
            }],
        )
        .await
        .unwrap();
    let r = call(
        state,
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/root.json")),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, s.root);
}

#[actix_web::test]
async fn consistent_metadata_by_checksum_and_version() {
    let (state, store) = memory_state();
    let s = seed(store.as_ref(), GUN, 3).await;
    let row = stored(store.as_ref(), "targets", &s.targets).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let sum = sha256_hex(&s.targets);
    for uri in [
        format!("/v2/{GUN}/_trust/tuf/targets.{sum}.json"),
        format!("/v2/{GUN}/_trust/tuf/targets.{}.json", sum.to_uppercase()),
        format!("/v2/{GUN}/_trust/tuf/3.targets.json"),
        format!("/v2/{GUN}/_trust/tuf/003.targets.json"),
    ] {
        let r = send(&app, TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(r.status, 200, "{uri}");
        assert_eq!(r.body, s.targets, "{uri}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=2592000, s-maxage=2592000")
        );
        assert_eq!(
            r.header("last-modified"),
            Some(http_date(row.created_at).as_str())
        );
    }
    for uri in [
        format!("/v2/{GUN}/_trust/tuf/root.{sum}.json"),
        format!("/v2/{GUN}/_trust/tuf/targets.{}.json", "a".repeat(96)),
        format!("/v2/{GUN}/_trust/tuf/targets.{}.json", "b".repeat(128)),
        format!("/v2/{GUN}/_trust/tuf/0.targets.json"),
        format!("/v2/{GUN}/_trust/tuf/2.targets.json"),
        format!("/v2/{GUN}/_trust/tuf/99999999999999999999999.targets.json"),
        format!("/v2/{GUN}/_trust/tuf/targets/none.json"),
        "/v2/other/_trust/tuf/root.json".to_string(),
    ] {
        let r = send(&app, TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(r.status, 404, "{uri}");
        assert_eq!(r.text(), NOT_FOUND_BODY, "{uri}");
        assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
        assert_eq!(
            r.header("cache-control"),
            None,
            "errors carry no cache headers"
        );
        assert_eq!(r.header("last-modified"), None);
    }
}

#[actix_web::test]
async fn max_age_zero_disables_caching() {
    let (mut state, store) = memory_state();
    state.caching.current_max_age = 0;
    state.caching.consistent_max_age = 0;
    let s = seed(store.as_ref(), GUN, 1).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    for uri in [
        format!("/v2/{GUN}/_trust/tuf/root.json"),
        format!("/v2/{GUN}/_trust/tuf/1.root.json"),
        format!("/v2/{GUN}/_trust/tuf/root.{}.json", sha256_hex(&s.root)),
    ] {
        let r = send(&app, TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(r.status, 200, "{uri}");
        assert_eq!(
            r.header("cache-control"),
            Some("max-age=0, no-cache, no-store")
        );
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    }
}

#[actix_web::test]
async fn configured_max_ages_are_used() {
    let (mut state, store) = memory_state();
    state.caching.current_max_age = 7;
    state.caching.consistent_max_age = 31_536_000;
    seed(store.as_ref(), GUN, 1).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/tuf/root.json"))
            .to_request(),
    )
    .await;
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=7, s-maxage=7, must-revalidate")
    );
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/tuf/1.root.json"))
            .to_request(),
    )
    .await;
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, s-maxage=31536000")
    );
}

#[actix_web::test]
async fn nothing_is_current_without_a_timestamp() {
    let (state, store) = memory_state();
    store
        .update_many(
            GUN,
            vec![MetaUpdate {
                role: "root".into(),
                version: 1,
                data: b"{}".to_vec(),
            }],
        )
        .await
        .unwrap();
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    for role in ["root", "timestamp", "snapshot"] {
        let r = send(
            &app,
            TestRequest::get()
                .uri(&format!("/v2/{GUN}/_trust/tuf/{role}.json"))
                .to_request(),
        )
        .await;
        assert_eq!(r.status, 404, "{role}");
        assert_eq!(r.text(), NOT_FOUND_BODY);
    }
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/tuf/1.root.json"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[actix_web::test]
async fn delete_removes_everything_and_records_the_change() {
    let (state, store) = memory_state();
    seed(store.as_ref(), GUN, 1).await;
    seed(store.as_ref(), "docker.io/library/alpine2", 1).await;
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let r = send(
        &app,
        TestRequest::delete()
            .uri(&format!("/v2/{GUN}/_trust/tuf/"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/tuf/1.root.json"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/docker.io/library/alpine2/_trust/tuf/root.json")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200, "a GUN sharing the prefix survives");
    // Deleting again succeeds and records nothing new.
    let r = send(
        &app,
        TestRequest::delete()
            .uri(&format!("/v2/{GUN}/_trust/tuf/"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200);
    let changes = store.get_changes(0, 100, Some(GUN)).await.unwrap();
    let categories: Vec<&str> = changes.iter().map(|c| c.category.as_str()).collect();
    assert_eq!(categories, ["update", "deletion"]);
}

fn record(c: &Change) -> serde_json::Value {
    json!({
        "ID": c.id.to_string(),
        "CreatedAt": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "GUN": c.gun,
        "Version": c.version,
        "SHA256": c.sha256,
        "Category": c.category,
    })
}

#[actix_web::test]
async fn changefeed_lists_changes_in_go_format() {
    let (state, store) = memory_state();
    seed(store.as_ref(), GUN, 1).await;
    seed(store.as_ref(), "other", 1).await;
    seed(store.as_ref(), GUN, 2).await;
    store.delete("other").await.unwrap();
    let all = store.get_changes(0, 100, None).await.unwrap();
    assert_eq!(all.len(), 4);
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;

    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/_trust/changefeed?records=0")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), None);
    let expected = json!({"count": 4, "records": all.iter().map(record).collect::<Vec<_>>()});
    assert_eq!(
        r.text(),
        serde_json::to_string(&expected).unwrap(),
        "exact bytes, Go field order"
    );
    assert_eq!(r.json()["records"][3]["SHA256"], "");
    assert_eq!(r.json()["records"][3]["Version"], 0);

    // GUN filter, paging forwards from a cursor, and the latest N.
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/changefeed?records=10"))
            .to_request(),
    )
    .await;
    let page = r.json();
    let guns: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["GUN"].as_str().unwrap())
        .collect();
    assert_eq!(guns, [GUN, GUN]);
    let first = all[0].id;
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!(
                "/v2/_trust/changefeed?records=2&change_id={first}"
            ))
            .to_request(),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"count": 2, "records": [record(&all[1]), record(&all[2])]})
    );
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/_trust/changefeed?records=-1&change_id=-1")
            .to_request(),
    )
    .await;
    assert_eq!(r.json(), json!({"count": 1, "records": [record(&all[3])]}));

    let last = all[3].id;
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/_trust/changefeed?records=5&change_id={last}"))
            .to_request(),
    )
    .await;
    assert_eq!(r.text(), r#"{"count":0,"records":[]}"#);
}

/// Issue 13 (6b): `records` was unbounded; pages are now at most 1000 records, larger
/// requests (either direction) are clamped, and paging on from the last ID reads the rest.
#[actix_web::test]
async fn changefeed_pages_are_capped_at_1000() {
    let (state, store) = memory_state();
    for version in 1..=1001 {
        seed(store.as_ref(), GUN, version).await;
    }
    let all = store.get_changes(0, 5000, None).await.unwrap();
    assert_eq!(all.len(), 1001);
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let page = |uri: String| {
        let app = &app;
        async move {
            let r = send(app, TestRequest::get().uri(&uri).to_request()).await;
            assert_eq!(r.status, 200, "{uri}: {}", r.text());
            let ids: Vec<String> = r.json()["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["ID"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(r.json()["count"], ids.len(), "{uri}");
            ids
        }
    };
    let id = |i: usize| all[i].id.to_string();

    let first = page("/v2/_trust/changefeed?records=2147483647".into()).await;
    assert_eq!(first.len(), 1000);
    assert_eq!((first[0].clone(), first[999].clone()), (id(0), id(999)));
    let rest = page(format!(
        "/v2/{GUN}/_trust/changefeed?records=5000&change_id={}",
        first[999]
    ))
    .await;
    assert_eq!(rest, [id(1000)]);

    let latest = page("/v2/_trust/changefeed?records=-2147483648&change_id=-1".into()).await;
    assert_eq!(latest.len(), 1000);
    assert_eq!((latest[0].clone(), latest[999].clone()), (id(1), id(1000)));
}

#[actix_web::test]
async fn changefeed_parameter_errors() {
    let cases = [
        (
            "?records=ten",
            json!("invalid records parameter: strconv.ParseInt: parsing \"ten\": invalid syntax"),
        ),
        ("?records=1&change_id=x", json!({})),
    ];
    for (query, detail) in cases {
        let (state, _) = memory_state();
        let r = call(
            state,
            TestRequest::get().uri(&format!("/v2/_trust/changefeed{query}")),
        )
        .await;
        assert_eq!(r.status, 400, "{query}");
        let expected = json!({"errors": [{
            "code": "INVALID_PARAMETERS",
            "message": "The parameters provided are not valid.",
            "detail": detail,
        }]});
        assert_eq!(
            r.text(),
            format!("{}\n", serde_json::to_string(&expected).unwrap()),
            "{query}"
        );
        assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
    }
}

/// A store whose every call fails with the given error.
struct Broken(StoreError);

#[async_trait::async_trait]
impl MetaStore for Broken {
    async fn record_key(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        Err(self.0.clone())
    }
    async fn key_owner(&self, _: &str) -> Result<Option<(String, String)>, StoreError> {
        Err(self.0.clone())
    }
    async fn get_latest(&self, _: &str, _: &str) -> Result<Option<StoredFile>, StoreError> {
        Err(self.0.clone())
    }
    async fn get_checksum(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Option<StoredFile>, StoreError> {
        Err(self.0.clone())
    }
    async fn get_version(
        &self,
        _: &str,
        _: &str,
        _: i64,
    ) -> Result<Option<StoredFile>, StoreError> {
        Err(self.0.clone())
    }
    async fn update_many(&self, _: &str, _: Vec<MetaUpdate>) -> Result<(), StoreError> {
        Err(self.0.clone())
    }
    async fn delete(&self, _: &str) -> Result<u64, StoreError> {
        Err(self.0.clone())
    }
    async fn get_changes(
        &self,
        _: i64,
        _: i64,
        _: Option<&str>,
    ) -> Result<Vec<Change>, StoreError> {
        Err(self.0.clone())
    }
    async fn check_health(&self) -> Result<(), StoreError> {
        Err(self.0.clone())
    }
}

fn broken_state(err: StoreError) -> notary_server::http::AppState {
    notary_server::http::AppState::new(
        Arc::new(Broken(err)),
        Arc::new(MemoryCryptoService::new()),
        KeyType::Ed25519,
    )
}

fn read_routes() -> Vec<TestRequest> {
    let sum = "0".repeat(64);
    vec![
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/root.json")),
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/timestamp.json")),
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/1.root.json")),
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/root.{sum}.json")),
        TestRequest::delete().uri(&format!("/v2/{GUN}/_trust/tuf/")),
        TestRequest::get().uri("/v2/_trust/changefeed?records=1"),
    ]
}

#[actix_web::test]
async fn unreachable_storage_is_503_with_a_notary_body() {
    for req in read_routes() {
        let r = call(
            broken_state(StoreError::Unavailable(
                "connection refused to db:3306".into(),
            )),
            req,
        )
        .await;
        assert_eq!(r.status, 503);
        assert_eq!(
            r.text(),
            "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"The service is temporarily unavailable.\"}]}\n"
        );
        assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
    }
}

#[actix_web::test]
async fn other_storage_failures_are_500_unknown_without_internals() {
    for req in read_routes() {
        let r = call(
            broken_state(StoreError::Other("secret table exploded".into())),
            req,
        )
        .await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"unknown error\",\"detail\":{}}]}\n"
        );
    }
}

/// Go answers 400 when `records` is missing; we serve the default page (100) instead.
#[actix_web::test]
async fn changefeed_without_records_serves_the_default_page() {
    for query in ["", "?change_id=0", "?records="] {
        let (state, _) = memory_state();
        let r = call(
            state,
            TestRequest::get().uri(&format!("/v2/_trust/changefeed{query}")),
        )
        .await;
        assert_eq!(r.status, 200, "{query}");
        assert_eq!(r.json(), json!({"count": 0, "records": []}), "{query}");
    }
}
