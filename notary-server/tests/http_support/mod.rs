//! Shared helpers for the `http_*` integration tests: an app on the memory store
//! and the in-memory signer, seeded metadata, and response accessors.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use base64::Engine as _;
use notary_server::http::AppState;
use notary_server::storage::{MemoryStore, MetaStore, MetaUpdate};
use notary_tuf::crypto::{CryptoService, MemoryCryptoService};
use notary_tuf::keys::KeyType;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The envelope of `METADATA_NOT_FOUND` from a storage miss.
pub const NOT_FOUND_BODY: &str = "{\"errors\":[{\"code\":\"METADATA_NOT_FOUND\",\"message\":\"You have requested metadata that does not exist.\",\"detail\":{}}]}\n";
/// The envelope of `METADATA_NOT_FOUND` from the router (no detail).
pub const ROUTE_NOT_FOUND_BODY: &str = "{\"errors\":[{\"code\":\"METADATA_NOT_FOUND\",\"message\":\"You have requested metadata that does not exist.\"}]}\n";
/// Content-Type of error envelopes.
pub const ERROR_TYPE: &str = "application/json; charset=utf-8";

/// State on a fresh memory store and memory signer.
pub fn memory_state() -> (AppState, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let crypto: Arc<dyn CryptoService> = Arc::new(MemoryCryptoService::new());
    let state = AppState::new(store.clone(), crypto, KeyType::Ed25519);
    (state, store)
}

/// A finished response: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The `code` of an error envelope.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Sends one request to an app built from `state`.
pub async fn call(state: AppState, req: TestRequest) -> Reply {
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    send(&app, req.to_request()).await
}

/// Sends one request (`TestRequest::to_request()`) to an initialised app.
pub async fn send<S, R, B>(app: &S, req: R) -> Reply
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let resp = test::call_service(app, req).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = test::read_body(resp).await.to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn meta_entry(data: &[u8]) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "hashes": {
            "sha256": b64.encode(Sha256::digest(data)),
            "sha512": b64.encode(sha2::Sha512::digest(data)),
        },
        "length": data.len(),
    })
}

/// One consistent, unexpired version of a repository's metadata (unsigned: the
/// storage and read paths do not verify signatures).
pub struct Seeded {
    pub root: Vec<u8>,
    pub targets: Vec<u8>,
    pub snapshot: Vec<u8>,
    pub timestamp: Vec<u8>,
}

/// Writes root, targets, snapshot and timestamp at `version` for `gun`.
pub async fn seed(store: &dyn MetaStore, gun: &str, version: i64) -> Seeded {
    let expires = "2099-01-01T00:00:00Z";
    let root = serde_json::to_vec(&json!({
        "signed": {"_type": "Root", "consistent_snapshot": false, "expires": expires,
                   "keys": {}, "roles": {}, "version": version},
        "signatures": []
    }))
    .unwrap();
    let targets = serde_json::to_vec(&json!({
        "signed": {"_type": "Targets", "delegations": {"keys": {}, "roles": []},
                   "expires": expires, "targets": {}, "version": version},
        "signatures": []
    }))
    .unwrap();
    let snapshot = serde_json::to_vec(&json!({
        "signed": {"_type": "Snapshot", "expires": expires, "version": version,
                   "meta": {"root": meta_entry(&root), "targets": meta_entry(&targets)}},
        "signatures": []
    }))
    .unwrap();
    let timestamp = serde_json::to_vec(&json!({
        "signed": {"_type": "Timestamp", "expires": expires, "version": version,
                   "meta": {"snapshot": meta_entry(&snapshot)}},
        "signatures": []
    }))
    .unwrap();
    let updates = [
        ("root", &root),
        ("targets", &targets),
        ("snapshot", &snapshot),
        ("timestamp", &timestamp),
    ]
    .into_iter()
    .map(|(role, data)| MetaUpdate {
        role: role.into(),
        version,
        data: data.clone(),
    })
    .collect();
    store.update_many(gun, updates).await.unwrap();
    Seeded {
        root,
        targets,
        snapshot,
        timestamp,
    }
}

/// A `multipart/form-data` body with the given (Content-Disposition, data) parts.
pub fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (cd, data) in parts {
        b.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: {cd}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

/// A `POST /v2/<gun>/_trust/tuf/` whose multipart body carries each (role, bytes) pair as a
/// `files` part named after the role, as the notary client sends it.
pub fn upload_request(gun: &str, boundary: &str, parts: &[(&str, &[u8])]) -> TestRequest {
    let dispositions: Vec<String> = parts
        .iter()
        .map(|(role, _)| format!("form-data; name=\"files\"; filename=\"{role}\""))
        .collect();
    let with_cd: Vec<(&str, &[u8])> = dispositions
        .iter()
        .zip(parts)
        .map(|(cd, (_, data))| (cd.as_str(), *data))
        .collect();
    TestRequest::post()
        .uri(&format!("/v2/{gun}/_trust/tuf/"))
        .insert_header((
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .set_payload(multipart(boundary, &with_cd))
}
