//! Routing, method handling, the catch-all, health, metrics, the GUN prefix
//! filter and the auth hook.

mod http_support;

use std::sync::Arc;

use actix_web::test::{self, TestRequest};
use actix_web::web;
use futures_util::FutureExt as _;
use http_support::*;
use notary_server::http::auth::{AccessRequest, Authorizer};
use notary_server::http::error::ApiError;
use serde_json::json;

#[actix_web::test]
async fn ping_answers_empty_json_object() {
    let (state, _) = memory_state();
    let r = call(state, TestRequest::get().uri("/v2/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{}");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[actix_web::test]
async fn methods_outside_the_registered_set_get_405_with_empty_body() {
    for method in ["PATCH", "OPTIONS", "TRACE"] {
        let (state, _) = memory_state();
        let m = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let r = call(
            state,
            TestRequest::default()
                .method(m)
                .uri("/v2/a/_trust/tuf/root.json"),
        )
        .await;
        assert_eq!(r.status, 405, "{method}");
        assert!(r.body.is_empty(), "{method}");
        assert_eq!(r.header("content-type"), None, "{method}");
    }
}

#[actix_web::test]
async fn unclean_paths_are_redirected() {
    let (state, _) = memory_state();
    let r = call(
        state,
        TestRequest::get().uri("/v2//a/./b/../_trust/tuf/root.json?x=1"),
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/v2/a/_trust/tuf/root.json?x=1"));
}

/// Issue 13 (5): `GET /%5Cevil.com/.` answered `Location: /\evil.com`, which browsers follow
/// as `//evil.com` (an open redirect). The cleaned path is now escaped as Go's
/// `url.URL.String()` escapes a path, so `\` (and every other byte Go escapes) is
/// percent-encoded and the Location stays on this host.
#[actix_web::test]
async fn redirect_location_escapes_like_go() {
    for (uri, location) in [
        ("/%5Cevil.com/.", "/%5Cevil.com"),
        ("/%5C%5Cevil.com/./", "/%5C%5Cevil.com/"),
        ("/v2/..%5C/evil.com/.", "/v2/..%5C/evil.com"),
        // Go escapes all but letters, digits, `-_.~` and `$&+,/:;=@`.
        (
            "/a/%21%27%28%29%2A%5B%5D%5E%7C%22%20/.",
            "/a/%21%27%28%29%2A%5B%5D%5E%7C%22%20",
        ),
        ("/a/$&+,:;=@-_.~/.?q=1", "/a/$&+,:;=@-_.~?q=1"),
        ("/a/%3F%23%25/.", "/a/%3F%23%25"),
        ("/a/caf%C3%A9/.", "/a/caf%C3%A9"),
    ] {
        let (state, _) = memory_state();
        let r = call(state, TestRequest::get().uri(uri)).await;
        assert_eq!(r.status, 301, "{uri}");
        assert_eq!(r.header("location"), Some(location), "{uri}");
    }
}

#[actix_web::test]
async fn catch_all_is_metadata_not_found_without_detail() {
    let cases = [
        TestRequest::get().uri("/"),
        TestRequest::get().uri("/v2"),
        TestRequest::post().uri("/v2/"),
        TestRequest::put().uri("/v2/a/_trust/tuf/"),
        TestRequest::get().uri("/v2/a/_trust/tuf/targets.key"),
        TestRequest::get().uri("/v2/a/_trust/tuf/foo.json"),
        TestRequest::delete().uri("/v2/a/_trust/tuf/root.json"),
        TestRequest::post().uri("/_notary_server/health"),
    ];
    for req in cases {
        let (state, _) = memory_state();
        let r = call(state, req).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), ROUTE_NOT_FOUND_BODY);
        assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
    }
    // HEAD has no route of its own either: the status and headers say 404.
    let (state, _) = memory_state();
    let r = call(
        state,
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/v2/a/_trust/tuf/root.json"),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[actix_web::test]
async fn percent_encoded_paths_are_matched_decoded() {
    let (state, store) = memory_state();
    let seeded = seed(store.as_ref(), "localhost:5000/app", 1).await;
    let r = call(
        state,
        TestRequest::get().uri("/v2/localhost%3A5000%2Fapp/_trust/tuf/root.json"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, seeded.root);
}

#[actix_web::test]
async fn health_is_ok_until_a_check_fails() {
    let (mut state, _) = memory_state();
    state.health.register(
        "DB operational",
        Arc::new(|| async { Err("connection refused".to_string()) }.boxed()),
    );
    state
        .health
        .register("Trust operational", Arc::new(|| async { Ok(()) }.boxed()));
    let health = state.health.clone();
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;

    // Healthy until the first run, as in Go.
    let r = send(
        &app,
        TestRequest::get()
            .uri("/_notary_server/health")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "{}");
    assert_eq!(r.header("content-type"), Some(ERROR_TYPE));

    health.run_once().await;
    let r = send(
        &app,
        TestRequest::get()
            .uri("/_notary_server/health")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), r#"{"DB operational":"connection refused"}"#);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[actix_web::test]
async fn metrics_count_requests_per_operation_and_status() {
    let (state, _) = memory_state();
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    for _ in 0..2 {
        send(
            &app,
            TestRequest::get()
                .uri("/v2/g/_trust/tuf/root.json")
                .to_request(),
        )
        .await;
    }
    send(
        &app,
        TestRequest::get()
            .uri("/v2/_trust/changefeed?records=1")
            .to_request(),
    )
    .await;
    send(&app, TestRequest::get().uri("/v2/").to_request()).await;
    let r = send(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains(r#"notary_server_http_requests_total{code="404",operation="GetRole"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"notary_server_http_requests_total{code="200",operation="Changefeed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"notary_server_http_request_duration_seconds_count{operation="GetRole"} 2"#
        ),
        "{text}"
    );
    // The ping is not instrumented.
    assert!(!text.contains("operation=\"\""), "{text}");
}

#[actix_web::test]
async fn gun_prefix_mismatch_errors_per_route() {
    let prefixed = || {
        let (mut state, _) = memory_state();
        state.gun_prefixes = vec!["docker.io/".into(), "localhost:5000/".into()];
        state
    };
    let r = call(
        prefixed(),
        TestRequest::post().uri("/v2/quay.io/a/_trust/tuf/"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "{\"errors\":[{\"code\":\"INVALID_GUN\",\"message\":\"The server does not support actions on images of this name.\",\"detail\":\"Require GUNs with prefix: [docker.io/ localhost:5000/]\"}]}\n"
    );
    for req in [
        TestRequest::get().uri("/v2/quay.io/a/_trust/tuf/root.json"),
        TestRequest::get().uri("/v2/quay.io/a/_trust/tuf/1.root.json"),
        TestRequest::get().uri("/v2/quay.io/a/_trust/tuf/timestamp.key"),
        TestRequest::post().uri("/v2/quay.io/a/_trust/tuf/timestamp.key"),
        TestRequest::delete().uri("/v2/quay.io/a/_trust/tuf/"),
        TestRequest::get().uri("/v2/quay.io/a/_trust/changefeed?records=1"),
    ] {
        let r = call(prefixed(), req).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.text(), ROUTE_NOT_FOUND_BODY);
    }
    // A matching GUN reaches the handler: a storage miss has detail {}.
    let r = call(
        prefixed(),
        TestRequest::get().uri("/v2/docker.io/a/_trust/tuf/root.json"),
    )
    .await;
    assert_eq!(r.text(), NOT_FOUND_BODY);
    // Routes without a GUN are not filtered.
    let r = call(
        prefixed(),
        TestRequest::get().uri("/v2/_trust/changefeed?records=1"),
    )
    .await;
    assert_eq!(r.status, 200);
}

/// Refuses everything, recording what was asked.
struct DenyAll(std::sync::Mutex<Vec<Vec<AccessRequest>>>);

impl Authorizer for DenyAll {
    fn authorize(
        &self,
        _req: &actix_web::HttpRequest,
        required: &[AccessRequest],
    ) -> Result<(), ApiError> {
        self.0.lock().unwrap().push(required.to_vec());
        Err(ApiError::Unauthorized {
            challenge: "Bearer realm=\"https://auth\",service=\"notary\"".into(),
            detail: json!([{"Type": required[0].resource_type, "Name": required[0].name}]),
        })
    }
}

#[actix_web::test]
async fn auth_hook_runs_after_the_prefix_filter_and_skips_public_routes() {
    let deny = Arc::new(DenyAll(Default::default()));
    let (mut state, _) = memory_state();
    state.gun_prefixes = vec!["docker.io/".into()];
    state.authorizer = Some(deny.clone());
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;

    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/quay.io/a/_trust/tuf/root.json")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 404, "prefix mismatch answers without auth");
    assert!(deny.0.lock().unwrap().is_empty());

    let r = send(
        &app,
        TestRequest::post()
            .uri("/v2/docker.io/a/_trust/tuf/")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"https://auth\",service=\"notary\"")
    );
    assert_eq!(
        r.text(),
        "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":[{\"Type\":\"repository\",\"Name\":\"docker.io/a\"}]}]}\n"
    );
    let asked: Vec<String> = deny.0.lock().unwrap()[0]
        .iter()
        .map(|a| a.action.clone())
        .collect();
    assert_eq!(asked, ["push", "pull"]);

    let r = send(&app, TestRequest::get().uri("/v2/").to_request()).await;
    assert_eq!(r.status, 401, "the ping needs catalog access");
    assert_eq!(deny.0.lock().unwrap()[1][0].name, "catalog");

    for public in ["/_notary_server/health", "/metrics"] {
        let r = send(&app, TestRequest::get().uri(public).to_request()).await;
        assert_eq!(r.status, 200, "{public}");
    }
    assert_eq!(deny.0.lock().unwrap().len(), 2);
}
