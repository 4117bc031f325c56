//! `{snapshot|timestamp}.key` GET and POST (spec §7).

mod http_support;

use std::sync::Arc;

use actix_web::test::TestRequest;
use base64::Engine as _;
use http_support::*;
use notary_server::http::AppState;
use notary_server::storage::MemoryStore;
use notary_tuf::crypto::{CryptoError, CryptoService};
use notary_tuf::keys::{KeyType, PublicKey};

const GUN: &str = "docker.io/library/alpine";

#[actix_web::test]
async fn key_routes_return_tuf_public_keys() {
    for (method, role) in [
        ("GET", "timestamp"),
        ("GET", "snapshot"),
        ("POST", "timestamp"),
        ("POST", "snapshot"),
    ] {
        let (state, _) = memory_state();
        let req = if method == "GET" {
            TestRequest::get()
        } else {
            TestRequest::post()
        };
        let r = call(state, req.uri(&format!("/v2/{GUN}/_trust/tuf/{role}.key"))).await;
        assert_eq!(r.status, 200, "{method} {role}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), None);
        let v = r.json();
        assert_eq!(v["keytype"], "ed25519");
        let public = base64::engine::general_purpose::STANDARD
            .decode(v["keyval"]["public"].as_str().unwrap())
            .unwrap();
        assert_eq!(public.len(), 32);
        let key = PublicKey::new(KeyType::Ed25519, public);
        // Go's field order, with a literal null private part.
        assert_eq!(r.body, key.server_key_json());
        assert!(r.text().ends_with(r#","private":null}}"#));
    }
}

/// A signer whose every call fails with the given error.
struct Failing(CryptoError);

#[async_trait::async_trait]
impl CryptoService for Failing {
    async fn create_key(&self, _: &str, _: &str, _: &KeyType) -> Result<PublicKey, CryptoError> {
        Err(self.0.clone())
    }
    async fn get_key(&self, _: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        Err(self.0.clone())
    }
    async fn sign(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(self.0.clone())
    }
}

fn failing(err: CryptoError) -> AppState {
    AppState::new(
        Arc::new(MemoryStore::new()),
        Arc::new(Failing(err)),
        KeyType::Ecdsa,
    )
}

#[actix_web::test]
async fn signer_outages_are_503_and_other_signer_errors_500() {
    for req in [
        TestRequest::get().uri(&format!("/v2/{GUN}/_trust/tuf/timestamp.key")),
        TestRequest::post().uri(&format!("/v2/{GUN}/_trust/tuf/snapshot.key")),
    ] {
        let r = call(
            failing(CryptoError::Unavailable(
                "rpc error: code = Unavailable".into(),
            )),
            req,
        )
        .await;
        assert_eq!(r.status, 503);
        assert_eq!(
            r.text(),
            "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"The service is temporarily unavailable.\"}]}\n"
        );
    }
    let r = call(
        failing(CryptoError::Other("algorithm rsa not supported".into())),
        TestRequest::post().uri(&format!("/v2/{GUN}/_trust/tuf/timestamp.key")),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.text(),
        "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"unknown error\",\"detail\":{}}]}\n"
    );
}
