//! The gRPC server in process, over real mutual TLS, with a SQLite key store.

use std::sync::Arc;

use notary_proto::key_management_client::KeyManagementClient;
use notary_proto::signer_client::SignerClient;
use notary_proto::{CreateKeyRequest, KeyId, SignatureRequest};
use notary_signer::grpc::RunningServer;
use notary_signer::keystore::{KeyService, Passphrases};
use notary_tuf::keys::PublicKey;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::{connect, start_server, verify, ClientId, Pki, TestDb};

struct Harness {
    pki: Pki,
    db: TestDb,
    server: RunningServer,
    channel: Channel,
}

impl Harness {
    async fn new() -> Self {
        Self::with_passphrase("pass one").await
    }

    async fn with_passphrase(pass: &str) -> Self {
        let pki = Pki::new();
        let db = TestDb::sqlite();
        let store = db.store("alias1", Passphrases::fixed([("alias1", pass)]));
        let server = start_server(&pki, true, Arc::new(KeyService::new(Arc::new(store)))).await;
        let channel = connect(&server, &pki, ClientId::Trusted).await.unwrap();
        Self {
            pki,
            db,
            server,
            channel,
        }
    }

    fn km(&self) -> KeyManagementClient<Channel> {
        KeyManagementClient::new(self.channel.clone())
    }

    fn signer(&self) -> SignerClient<Channel> {
        SignerClient::new(self.channel.clone())
    }

    fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    async fn create(&self, gun: &str, role: &str, alg: &str) -> Result<PublicKey, tonic::Status> {
        crate::support::create_key(&self.channel, gun, role, alg).await
    }

    async fn sign(
        &self,
        key_id: &str,
        content: &[u8],
    ) -> Result<notary_proto::Signature, tonic::Status> {
        crate::support::sign(&self.channel, key_id, content).await
    }

    async fn healthy(&self) -> bool {
        let resp = self
            .health()
            .check(HealthCheckRequest {
                service: "grpc.health.v1.Health.Signer".into(),
            })
            .await;
        matches!(resp, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
    }
}

fn assert_status(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, message: &str) {
    match result {
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert_eq!(s.message(), message);
        }
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_sign_round_trip_for_both_key_types() {
    let h = Harness::new().await;
    let content =
        br#"{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{},"version":1}"#;
    for (alg, method, role) in [
        ("ecdsa", "ecdsa", "timestamp"),
        ("ed25519", "eddsa", "snapshot"),
    ] {
        let public = h
            .create("docker.io/library/busybox", role, alg)
            .await
            .unwrap();
        assert_eq!(public.key_type.as_str(), alg);
        let id = public.key_id();

        let info = h
            .km()
            .get_key_info(KeyId { id: id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.role, role);
        assert_eq!(info.public_key, public.public);
        let ki = info.key_info.unwrap();
        assert_eq!(ki.key_id.unwrap().id, id);
        assert_eq!(ki.algorithm.unwrap().algorithm, alg);

        let sig = h.sign(&id, content).await.unwrap();
        assert_eq!(sig.algorithm.unwrap().algorithm, method);
        let ki = sig.key_info.unwrap();
        assert_eq!(ki.key_id.unwrap().id, id);
        assert_eq!(ki.algorithm.unwrap().algorithm, alg);
        verify(&public, content, &sig.content);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_key_is_reused_and_reset_after_sign() {
    let h = Harness::new().await;
    let a = h.create("g", "timestamp", "ecdsa").await.unwrap();
    assert_eq!(h.create("g", "timestamp", "ecdsa").await.unwrap(), a);
    h.sign(&a.key_id(), b"x").await.unwrap();
    let b = h.create("g", "timestamp", "ecdsa").await.unwrap();
    assert_ne!(a, b);
    assert_eq!(h.create("g", "timestamp", "ecdsa").await.unwrap(), b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_keys_are_not_found_and_delete_is_idempotent() {
    let h = Harness::new().await;
    let id = h
        .create("g", "timestamp", "ed25519")
        .await
        .unwrap()
        .key_id();
    h.sign(&id, b"x").await.unwrap();
    h.km().delete_key(KeyId { id: id.clone() }).await.unwrap();
    assert_status(
        h.km().get_key_info(KeyId { id: id.clone() }).await,
        Code::NotFound,
        &format!("key {id} not found"),
    );
    assert_status(
        h.sign(&id, b"x").await,
        Code::NotFound,
        &format!("signing key not found: {id}"),
    );
    h.km().delete_key(KeyId { id: id.clone() }).await.unwrap();
    h.km()
        .delete_key(KeyId {
            id: "00".repeat(32),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_id_is_not_found() {
    let h = Harness::new().await;
    let id = "ff".repeat(32);
    assert_status(
        h.km().get_key_info(KeyId { id: id.clone() }).await,
        Code::NotFound,
        &format!("key {id} not found"),
    );
    assert_status(
        h.sign(&id, b"x").await,
        Code::NotFound,
        &format!("signing key not found: {id}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_empty_key_id_is_invalid_argument() {
    let h = Harness::new().await;
    let missing = h
        .signer()
        .sign(SignatureRequest {
            key_id: None,
            content: b"x".to_vec(),
        })
        .await;
    assert_status(missing, Code::InvalidArgument, "key ID is required");
    assert_status(
        h.sign("", b"x").await,
        Code::InvalidArgument,
        "key ID is required",
    );
    assert_status(
        h.km().get_key_info(KeyId { id: String::new() }).await,
        Code::InvalidArgument,
        "key ID is required",
    );
    assert_status(
        h.km().delete_key(KeyId { id: String::new() }).await,
        Code::InvalidArgument,
        "key ID is required",
    );
    // The process is still serving (Go would have crashed).
    assert!(h.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_algorithm_is_unknown() {
    let h = Harness::new().await;
    for alg in ["rsa", "", "ECDSA"] {
        assert_status(
            h.create("g", "timestamp", alg).await,
            Code::Unknown,
            &format!("algorithm {alg} not supported for create key"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_go_service_names() {
    let h = Harness::new().await;
    for service in [
        "",
        "grpc.health.v1.Health.KeyManagement",
        "grpc.health.v1.Health.Signer",
    ] {
        let resp = h
            .health()
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            resp.get_ref().status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    for service in ["grpc.health.v1.Health.Overall", "proto.Signer", "nope"] {
        assert_status(
            h.health()
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await,
            Code::NotFound,
            "unknown service",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passphrase_gives_not_found_and_the_server_survives() {
    // A key written under alias1 with the right passphrase...
    let h = Harness::new().await;
    let id = h.create("g", "timestamp", "ecdsa").await.unwrap().key_id();
    h.server.shutdown().await.unwrap();

    // ...served by a signer that has the wrong passphrase for alias1.
    let store =
        h.db.store("alias1", Passphrases::fixed([("alias1", "wrong")]));
    let server = start_server(&h.pki, true, Arc::new(KeyService::new(Arc::new(store)))).await;
    let channel = connect(&server, &h.pki, ClientId::Trusted).await.unwrap();
    let mut km = KeyManagementClient::new(channel.clone());
    assert_status(
        km.get_key_info(KeyId { id: id.clone() }).await,
        Code::NotFound,
        &format!("key {id} not found"),
    );
    assert_status(
        SignerClient::new(channel.clone())
            .sign(SignatureRequest {
                key_id: Some(KeyId { id: id.clone() }),
                content: b"x".to_vec(),
            })
            .await,
        Code::NotFound,
        &format!("signing key not found: {id}"),
    );
    // Still serving: a new GUN gets a fresh key that this signer can use.
    let resp = km
        .create_key(CreateKeyRequest {
            algorithm: "ed25519".into(),
            gun: "other".into(),
            role: "timestamp".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let new_id = resp.key_info.unwrap().key_id.unwrap().id;
    km.get_key_info(KeyId { id: new_id }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_is_rejected_and_server_survives() {
    let h = Harness::new().await;
    let rejected = match connect(&h.server, &h.pki, ClientId::None).await {
        Err(_) => true,
        Ok(ch) => HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(rejected, "a client without certificate was served");
    assert!(h.healthy().await);
    // A new trusted connection also works.
    let ch = connect(&h.server, &h.pki, ClientId::Trusted).await.unwrap();
    HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_another_ca_is_rejected() {
    let h = Harness::new().await;
    let rejected = match connect(&h.server, &h.pki, ClientId::Foreign).await {
        Err(_) => true,
        Ok(ch) => KeyManagementClient::new(ch)
            .create_key(CreateKeyRequest {
                algorithm: "ecdsa".into(),
                gun: "g".into(),
                role: "timestamp".into(),
            })
            .await
            .is_err(),
    };
    assert!(
        rejected,
        "a client certificate from another CA was accepted"
    );
    assert!(h.healthy().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_ca_no_client_certificate_is_needed() {
    let pki = Pki::new();
    let keys = Arc::new(KeyService::new(Arc::new(
        notary_signer::keystore::MemoryKeyStore::new(),
    )));
    let server = start_server(&pki, false, keys).await;
    let ch = connect(&server, &pki, ClientId::None).await.unwrap();
    let mut km = KeyManagementClient::new(ch);
    let req = || CreateKeyRequest {
        algorithm: "ecdsa".into(),
        gun: "g".into(),
        role: "timestamp".into(),
    };
    let a = km.create_key(req()).await.unwrap().into_inner();
    let b = km.create_key(req()).await.unwrap().into_inner();
    // The memory backend does not reuse pending keys.
    assert_ne!(a.public_key, b.public_key);
    server.shutdown().await.unwrap();
}
