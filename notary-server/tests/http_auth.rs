//! Token authentication through the HTTP pipeline (spec §9): challenges, the 401
//! envelope, scope rules per route, the prefix filter before auth, public routes,
//! autoredirect, and the request ID header.
//!
//! The expected challenge headers and bodies were captured from Go notary-server 0.7.0
//! with `auth.type = "token"`.

mod http_support;

use std::sync::Arc;

use actix_web::test::{self, TestRequest};
use actix_web::web;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http_support::*;
use notary_server::http::auth::TokenAuth;
use notary_server::http::token::TokenVerifier;
use notary_server::http::AppState;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

const REALM: &str = "https://127.0.0.1:24468/auth";
const SERVICE: &str = "notary-svc";
const ISSUER: &str = "test-issuer";

/// A token root and a signing leaf under it.
struct Issuer {
    bundle: String,
    leaf_b64: String,
    key: EcdsaKeyPair,
}

impl Issuer {
    fn new() -> Issuer {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "token root");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "signer");
        let leaf = leaf.signed_by(&leaf_key, &root).unwrap();
        Issuer {
            bundle: root.pem(),
            leaf_b64: STANDARD.encode(leaf.der()),
            key: EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &leaf_key.serialize_der(),
                &SystemRandom::new(),
            )
            .unwrap(),
        }
    }

    fn auth(&self, autoredirect: bool) -> TokenAuth {
        let verifier = TokenVerifier::new(ISSUER, SERVICE, self.bundle.as_bytes()).unwrap();
        TokenAuth::new(REALM, SERVICE, autoredirect, verifier)
    }

    /// A token with these claims over the defaults (good issuer, audience, times).
    fn token_with(&self, access: Value, overrides: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut claims = json!({"iss": ISSUER, "sub": "alice", "aud": SERVICE,
            "exp": now + 300, "nbf": now - 5, "iat": now, "access": access});
        for (k, v) in overrides.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.leaf_b64]});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn token(&self, gun: &str, actions: &[&str]) -> String {
        self.token_with(
            json!([{"type": "repository", "name": gun, "actions": actions}]),
            json!({}),
        )
    }
}

fn state_with(auth: TokenAuth) -> AppState {
    let (mut state, _) = memory_state();
    state.authorizer = Some(Arc::new(auth));
    state
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

fn challenge(scope: &str, error: Option<&str>) -> String {
    let mut c = format!("Bearer realm=\"{REALM}\",service=\"{SERVICE}\",scope=\"{scope}\"");
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    c
}

fn unauthorized_body(detail: &str) -> String {
    format!(
        "{{\"errors\":[{{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":{detail}}}]}}\n"
    )
}

fn assert_challenge(r: &Reply, scope: &str, error: Option<&str>) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(scope, error).as_str())
    );
    assert_eq!(r.header("content-type"), Some(ERROR_TYPE));
}

#[actix_web::test]
async fn anonymous_requests_get_go_identical_challenges() {
    let issuer = Issuer::new();
    let app = test::init_service(notary_server::build_app(web::Data::new(state_with(
        issuer.auth(false),
    ))))
    .await;

    let r = send(&app, TestRequest::get().uri("/v2/").to_request()).await;
    assert_challenge(&r, "registry:catalog:*", None);
    assert_eq!(
        r.text(),
        unauthorized_body(r#"[{"Type":"registry","Class":"","Name":"catalog","Action":"*"}]"#)
    );

    let r = send(
        &app,
        TestRequest::post().uri("/v2/a/b/_trust/tuf/").to_request(),
    )
    .await;
    assert_challenge(&r, "repository:a/b:push,pull", None);
    assert_eq!(
        r.text(),
        unauthorized_body(
            r#"[{"Type":"repository","Class":"","Name":"a/b","Action":"push"},{"Type":"repository","Class":"","Name":"a/b","Action":"pull"}]"#
        )
    );

    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/a/b/_trust/tuf/root.json")
            .to_request(),
    )
    .await;
    assert_challenge(&r, "repository:a/b:pull", None);
    assert_eq!(
        r.text(),
        unauthorized_body(r#"[{"Type":"repository","Class":"","Name":"a/b","Action":"pull"}]"#)
    );

    // The catch-all demands catalog access, so unknown paths are 401, not 404.
    let r = send(&app, TestRequest::get().uri("/nothing").to_request()).await;
    assert_challenge(&r, "registry:catalog:*", None);

    // Basic credentials are not a bearer token: still no error parameter.
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/a/_trust/tuf/root.json")
            .insert_header(("Authorization", "Basic YWxpY2U6c2VjcmV0"))
            .to_request(),
    )
    .await;
    assert_challenge(&r, "repository:a:pull", None);
    // Two spaces make three parts: treated as no token at all, like Go.
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/a/_trust/tuf/root.json")
            .insert_header((
                "Authorization",
                format!("Bearer  {}", issuer.token("a", &["pull"])),
            ))
            .to_request(),
    )
    .await;
    assert_challenge(&r, "repository:a:pull", None);
}

#[actix_web::test]
async fn bad_tokens_get_invalid_token() {
    let issuer = Issuer::new();
    let other = Issuer::new();
    let app = test::init_service(notary_server::build_app(web::Data::new(state_with(
        issuer.auth(false),
    ))))
    .await;
    let expired = issuer.token_with(
        json!([{"type": "repository", "name": "a", "actions": ["pull"]}]),
        json!({"exp": 1_000_000_000}),
    );
    let wrong_aud = issuer.token_with(
        json!([{"type": "repository", "name": "a", "actions": ["pull"]}]),
        json!({"aud": "someone-else"}),
    );
    let wrong_iss = issuer.token_with(
        json!([{"type": "repository", "name": "a", "actions": ["pull"]}]),
        json!({"iss": "someone-else"}),
    );
    for token in [
        "abc".to_owned(),
        "a.b.c".to_owned(),
        expired,
        wrong_aud,
        wrong_iss,
        other.token("a", &["pull"]),
    ] {
        let r = send(
            &app,
            TestRequest::get()
                .uri("/v2/a/_trust/tuf/root.json")
                .insert_header(bearer(&token))
                .to_request(),
        )
        .await;
        assert_challenge(&r, "repository:a:pull", Some("invalid_token"));
        assert_eq!(
            r.text(),
            unauthorized_body(r#"[{"Type":"repository","Class":"","Name":"a","Action":"pull"}]"#)
        );
    }
    // Go's DELETE example: a malformed token on an admin route.
    let r = send(
        &app,
        TestRequest::delete()
            .uri("/v2/a/_trust/tuf/")
            .insert_header(bearer("a.b.c"))
            .to_request(),
    )
    .await;
    assert_challenge(&r, "repository:a:*", Some("invalid_token"));
}

#[actix_web::test]
async fn pull_only_token_reads_but_cannot_publish() {
    let issuer = Issuer::new();
    let (mut state, store) = memory_state();
    state.authorizer = Some(Arc::new(issuer.auth(false)));
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    let gun = "docker.io/library/app";
    let seeded = seed(store.as_ref(), gun, 1).await;
    let pull = issuer.token(gun, &["pull"]);

    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{gun}/_trust/tuf/root.json"))
            .insert_header(bearer(&pull))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, seeded.root);

    let r = send(
        &app,
        TestRequest::post()
            .uri(&format!("/v2/{gun}/_trust/tuf/"))
            .insert_header(bearer(&pull))
            .to_request(),
    )
    .await;
    assert_challenge(
        &r,
        &format!("repository:{gun}:push,pull"),
        Some("insufficient_scope"),
    );

    // Key GET needs push and pull.
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{gun}/_trust/tuf/timestamp.key"))
            .insert_header(bearer(&pull))
            .to_request(),
    )
    .await;
    assert_challenge(
        &r,
        &format!("repository:{gun}:push,pull"),
        Some("insufficient_scope"),
    );

    // A token for another repository grants nothing here.
    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{gun}/_trust/tuf/root.json"))
            .insert_header(bearer(&issuer.token("docker.io/library/other", &["*"])))
            .to_request(),
    )
    .await;
    assert_challenge(
        &r,
        &format!("repository:{gun}:pull"),
        Some("insufficient_scope"),
    );
}

#[actix_web::test]
async fn admin_routes_need_a_literal_star() {
    let issuer = Issuer::new();
    let app = test::init_service(notary_server::build_app(web::Data::new(state_with(
        issuer.auth(false),
    ))))
    .await;
    let gun = "example.com/app";
    let push_pull = issuer.token(gun, &["push", "pull"]);
    let star = issuer.token(gun, &["*"]);

    let r = send(
        &app,
        TestRequest::get()
            .uri(&format!("/v2/{gun}/_trust/tuf/snapshot.key"))
            .insert_header(bearer(&push_pull))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for req in [
        TestRequest::delete().uri(&format!("/v2/{gun}/_trust/tuf/")),
        TestRequest::post().uri(&format!("/v2/{gun}/_trust/tuf/snapshot.key")),
    ] {
        let r = send(&app, req.insert_header(bearer(&push_pull)).to_request()).await;
        assert_challenge(
            &r,
            &format!("repository:{gun}:*"),
            Some("insufficient_scope"),
        );
    }
    // `*` in the token covers every route.
    for req in [
        TestRequest::get().uri(&format!("/v2/{gun}/_trust/tuf/timestamp.key")),
        TestRequest::post().uri(&format!("/v2/{gun}/_trust/tuf/timestamp.key")),
        TestRequest::delete().uri(&format!("/v2/{gun}/_trust/tuf/")),
    ] {
        let r = send(&app, req.insert_header(bearer(&star)).to_request()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A `*` on the repository is not catalog access.
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/")
            .insert_header(bearer(&star))
            .to_request(),
    )
    .await;
    assert_challenge(&r, "registry:catalog:*", Some("insufficient_scope"));
    let catalog = issuer.token_with(
        json!([{"type": "registry", "name": "catalog", "actions": ["*"]}]),
        json!({}),
    );
    for uri in ["/v2/", "/v2/_trust/changefeed?records=1"] {
        let r = send(
            &app,
            TestRequest::get()
                .uri(uri)
                .insert_header(bearer(&catalog))
                .to_request(),
        )
        .await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
    }
}

#[actix_web::test]
async fn lower_case_bearer_scheme_is_accepted() {
    let issuer = Issuer::new();
    let app = test::init_service(notary_server::build_app(web::Data::new(state_with(
        issuer.auth(false),
    ))))
    .await;
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/g/_trust/tuf/root.json")
            .insert_header((
                "Authorization",
                format!("bEaReR {}", issuer.token("g", &["pull"])),
            ))
            .to_request(),
    )
    .await;
    // Authorised: the store simply has no data.
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), NOT_FOUND_BODY);
}

#[actix_web::test]
async fn health_and_metrics_are_never_authenticated_and_prefixes_come_first() {
    let issuer = Issuer::new();
    let mut state = state_with(issuer.auth(false));
    state.gun_prefixes = vec!["docker.io/".into()];
    let app = test::init_service(notary_server::build_app(web::Data::new(state))).await;
    for uri in ["/_notary_server/health", "/metrics"] {
        let r = send(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(r.status, 200, "{uri}");
        assert_eq!(r.header("www-authenticate"), None);
    }
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/quay.io/a/_trust/tuf/root.json")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), ROUTE_NOT_FOUND_BODY);
    assert_eq!(r.header("www-authenticate"), None);
    let r = send(
        &app,
        TestRequest::post()
            .uri("/v2/quay.io/a/_trust/tuf/")
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "INVALID_GUN");
}

#[actix_web::test]
async fn autoredirect_points_the_realm_at_the_request_host() {
    let issuer = Issuer::new();
    let app = test::init_service(notary_server::build_app(web::Data::new(state_with(
        issuer.auth(true),
    ))))
    .await;
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/")
            .insert_header(("Host", "notary.example.com:4443"))
            .to_request(),
    )
    .await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"https://notary.example.com:4443/auth/token\",service=\"notary-svc\",scope=\"registry:catalog:*\""
        )
    );
}

#[actix_web::test]
async fn every_response_carries_a_request_id() {
    let issuer = Issuer::new();
    let app = test::init_service(notary_server::build_app(web::Data::new(state_with(
        issuer.auth(false),
    ))))
    .await;
    let r = send(
        &app,
        TestRequest::get()
            .uri("/v2/")
            .insert_header(("X-Request-Id", "client-chosen-1"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-request-id"), Some("client-chosen-1"));
    // Generated when absent or unusable; 405 and redirects get one too.
    let a = send(
        &app,
        TestRequest::get()
            .uri("/_notary_server/health")
            .to_request(),
    )
    .await;
    let b = send(
        &app,
        TestRequest::default()
            .method(actix_web::http::Method::PATCH)
            .uri("/v2/")
            .insert_header(("X-Request-Id", "bad id"))
            .to_request(),
    )
    .await;
    assert_eq!(b.status, 405);
    let (a, b) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert_eq!(a.len(), 32);
    assert_eq!(b.len(), 32);
    assert_ne!(a, b);
}
