//! Publishing through HTTP end to end: multipart upload, validation by the
//! domain layer, server-signed snapshot/timestamp, reads and the changefeed.

mod http_support;

use std::sync::Arc;

use actix_web::test::{self, TestRequest};
use actix_web::web;
use http_support::*;
use notary_server::domain::NO_ROOT_MSG;
use notary_server::http::AppState;
use notary_server::storage::MemoryStore;
use notary_tuf::test_support::TestRepo;
use notary_tuf::KeyType;
use serde_json::json;

const GUN: &str = "localhost:5000/library/app";

fn upload(parts: &[(&str, &[u8])]) -> TestRequest {
    let body = multipart("Bnd7", parts);
    TestRequest::post()
        .uri(&format!("/v2/{GUN}/_trust/tuf/"))
        .insert_header(("content-type", "multipart/form-data; boundary=Bnd7"))
        .set_payload(body)
}

fn disposition(role: &str) -> String {
    format!("form-data; name=\"files\"; filename=\"{role}\"")
}

#[actix_web::test]
async fn publish_then_read_everything_back() {
    let mut repo = TestRepo::new(GUN);
    repo.add_target("targets", "v1", b"hello");
    repo.add_delegation("targets", "targets/releases", &[""]);
    let files = repo.build();
    let store = Arc::new(MemoryStore::new());
    let state = AppState::new(
        store.clone(),
        Arc::new(repo.server_crypto()),
        KeyType::Ecdsa,
    );
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;

    // Root named with ".json", a delegation with a slash; no snapshot or timestamp:
    // the server generates both.
    let root_cd = disposition("root.json");
    let targets_cd = disposition("targets");
    let releases_cd = disposition("targets/releases");
    let r = send(
        &app,
        upload(&[
            (&root_cd, &files.root),
            (&targets_cd, files.get("targets").unwrap()),
            (&releases_cd, files.get("targets/releases").unwrap()),
        ])
        .to_request(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);

    let get = |path: String| {
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/tuf/{path}"))
            .to_request()
    };
    let r = send(&app, get("root.json".into())).await;
    assert_eq!(r.body, files.root);
    let r = send(&app, get("targets/releases.json".into())).await;
    assert_eq!(&r.body[..], files.get("targets/releases").unwrap());
    let sum = sha256_hex(files.get("targets").unwrap());
    let r = send(&app, get(format!("targets.{sum}.json"))).await;
    assert_eq!(&r.body[..], files.get("targets").unwrap());

    let ts = send(&app, get("timestamp.json".into())).await;
    assert_eq!(ts.status, 200);
    assert_eq!(ts.json()["signed"]["version"], 1);
    let snapshot = send(&app, get("snapshot.json".into())).await;
    assert_eq!(snapshot.status, 200);
    assert_eq!(
        snapshot.json()["signed"]["meta"]["targets/releases"]["length"],
        json!(files.get("targets/releases").unwrap().len())
    );
    let r = send(
        &app,
        get(format!("snapshot.{}.json", sha256_hex(&snapshot.body))),
    )
    .await;
    assert_eq!(r.body, snapshot.body);
    let r = send(&app, get("1.timestamp.json".into())).await;
    assert_eq!(r.body, ts.body);

    // The changefeed records the new timestamp.
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{GUN}/_trust/changefeed?records=10"))
            .to_request(),
    )
    .await;
    let feed = r.json();
    assert_eq!(feed["count"], 1);
    assert_eq!(feed["records"][0]["Version"], 1);
    assert_eq!(feed["records"][0]["SHA256"], sha256_hex(&ts.body));
    assert_eq!(feed["records"][0]["Category"], "update");

    // Sending the same root again is an old version.
    let r = send(&app, upload(&[(&root_cd, &files.root)]).to_request()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "{\"errors\":[{\"code\":\"VERSION\",\"message\":\"A newer version of metadata is already available.\",\"detail\":{}}]}\n"
    );
}

#[actix_web::test]
async fn validation_failures_carry_the_serializable_detail() {
    let repo = TestRepo::new(GUN);
    let files = repo.build();
    let state = AppState::new(
        Arc::new(MemoryStore::new()),
        Arc::new(repo.server_crypto()),
        KeyType::Ecdsa,
    );
    let targets_cd = disposition("targets");
    let r = call(
        state,
        upload(&[(&targets_cd, files.get("targets").unwrap())]),
    )
    .await;
    assert_eq!(r.status, 400);
    let expected = json!({"errors": [{
        "code": "INVALID_UPDATE",
        "message": "Update sent by the client is invalid.",
        "detail": {"Name": "ErrValidation", "Error": {"Msg": NO_ROOT_MSG}},
    }]});
    assert_eq!(
        r.text(),
        format!("{}\n", serde_json::to_string(&expected).unwrap())
    );
}
