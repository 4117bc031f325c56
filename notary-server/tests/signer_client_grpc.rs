//! `RemoteCryptoService` against the real notary-signer gRPC server, in process, over
//! mutual TLS with a throw-away PKI.

use std::path::PathBuf;
use std::sync::Arc;

use notary_common::tls::ServerTlsFiles;
use notary_server::signer_client::RemoteCryptoService;
use notary_signer::grpc::RunningServer;
use notary_signer::{KeyService, MemoryKeyStore};
use notary_tuf::metadata::Signature;
use notary_tuf::verify::verify_signature;
use notary_tuf::{CryptoError, CryptoService, KeyType};
use tokio::net::TcpListener;

/// A CA, a signer certificate for 127.0.0.1, a client certificate from the same CA and one
/// from an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
    client: (Vec<u8>, Vec<u8>),
    foreign_client: (Vec<u8>, Vec<u8>),
}

fn ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let cert = params.self_signed(&key).unwrap();
    (rcgen::Issuer::new(params, key), cert.pem())
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    name: &str,
    eku: rcgen::ExtendedKeyUsagePurpose,
) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![eku];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, ca_pem) = ca("signer test CA");
        let (cert, key) = leaf(
            &issuer,
            "127.0.0.1",
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(dir.path().join("ca.crt"), &ca_pem).unwrap();
        std::fs::write(dir.path().join("server.crt"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        let client = leaf(
            &issuer,
            "notary-server",
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (other, _) = ca("unrelated CA");
        let foreign_client = leaf(
            &other,
            "intruder",
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        Pki {
            dir,
            ca_pem: ca_pem.into_bytes(),
            client,
            foreign_client,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the signer with client certificates required, on `listener`.
    fn start(&self, listener: TcpListener) -> RunningServer {
        self.start_with(
            listener,
            Arc::new(KeyService::new(Arc::new(MemoryKeyStore::new()))),
        )
    }

    /// [`Pki::start`] over the given keys.
    fn start_with(&self, listener: TcpListener, keys: Arc<KeyService>) -> RunningServer {
        let files = ServerTlsFiles {
            cert: (self.path("server.crt"), "server.tls_cert_file".into()),
            key: (self.path("server.key"), "server.tls_key_file".into()),
            client_ca: Some((self.path("ca.crt"), "server.client_ca_file".into())),
        };
        let tls = notary_common::tls::server_config(&files, &[b"h2"]).unwrap();
        notary_signer::grpc::start(listener, Arc::new(tls), keys).unwrap()
    }

    fn client(&self, port: u16) -> RemoteCryptoService {
        RemoteCryptoService::connect(
            "127.0.0.1",
            port,
            Some(self.ca_pem.clone()),
            Some(self.client.clone()),
        )
        .unwrap()
    }
}

async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_sign_round_trip() {
    let pki = Pki::new();
    let (l, port) = listener().await;
    let server = pki.start(l);
    let client = pki.client(port);

    client.health().await.unwrap();
    for kt in [KeyType::Ecdsa, KeyType::Ed25519] {
        let key = client
            .create_key("docker.io/a", "timestamp", &kt)
            .await
            .unwrap();
        assert_eq!(key.key_type, kt);
        // The ID the client computes is the one the signer stores the key under.
        let (held, role) = client.get_key(&key.key_id()).await.unwrap().unwrap();
        assert_eq!(held, key);
        assert_eq!(role, "timestamp");

        let msg = br#"{"_type":"Timestamp","version":1}"#;
        let sig = client.sign(&key.key_id(), msg).await.unwrap();
        let signature = Signature {
            keyid: key.key_id(),
            method: notary_tuf::keys::method_for_key_type(&kt),
            sig,
        };
        verify_signature(msg, &signature, &key).expect("signature over the full message");
        assert!(verify_signature(b"other", &signature, &key).is_err());
    }

    let unknown = "0".repeat(64);
    assert_eq!(client.get_key(&unknown).await.unwrap(), None);
    assert!(matches!(
        client.sign(&unknown, b"x").await,
        Err(CryptoError::NotFound(_))
    ));
    // Go's signer cannot create RSA keys; neither can ours.
    assert!(matches!(
        client
            .create_key("docker.io/a", "snapshot", &KeyType::Rsa)
            .await,
        Err(CryptoError::Other(_))
    ));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_keys_are_forgotten_when_the_signer_no_longer_has_them() {
    let pki = Pki::new();
    let (l, port) = listener().await;
    let keys = Arc::new(KeyService::new(Arc::new(MemoryKeyStore::new())));
    let server = pki.start_with(l, keys.clone());
    let client = pki.client(port);
    let key = client
        .create_key("docker.io/a", "timestamp", &KeyType::Ecdsa)
        .await
        .unwrap();
    let id = key.key_id();
    assert!(client.get_key(&id).await.unwrap().is_some());
    // Deleted behind the client's back: the lookup is still answered from memory (one RPC
    // saved per signature), but signing tells the truth and the memory is dropped.
    keys.delete_key(&id).await.unwrap();
    assert!(client.get_key(&id).await.unwrap().is_some());
    assert!(matches!(
        client.sign(&id, b"x").await,
        Err(CryptoError::NotFound(_))
    ));
    assert_eq!(client.get_key(&id).await.unwrap(), None);
    // A key created on the signer directly is visible at once.
    let other = keys
        .create_key("docker.io/a", "snapshot", "ecdsa")
        .await
        .unwrap();
    assert!(client.get_key(&other.key_id()).await.unwrap().is_some());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_is_lazy_and_reports_an_absent_signer_as_unavailable() {
    let pki = Pki::new();
    // Nothing listens on this port once the listener is dropped.
    let (l, port) = listener().await;
    drop(l);
    let client = pki.client(port);
    assert!(matches!(
        client.create_key("g", "timestamp", &KeyType::Ecdsa).await,
        Err(CryptoError::Unavailable(_))
    ));
    assert!(matches!(
        client.get_key(&"0".repeat(64)).await,
        Err(CryptoError::Unavailable(_))
    ));
    assert!(client.health().await.is_err());

    // Built before the signer runs; works once it does (the listener is bound first, so
    // no sleep is needed).
    let (l, port) = listener().await;
    let client = pki.client(port);
    let server = pki.start(l);
    client.health().await.unwrap();
    client
        .create_key("g", "snapshot", &KeyType::Ecdsa)
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_client_certificates_are_unavailable() {
    let pki = Pki::new();
    let (l, port) = listener().await;
    let server = pki.start(l);
    for identity in [None, Some(pki.foreign_client.clone())] {
        let client =
            RemoteCryptoService::connect("127.0.0.1", port, Some(pki.ca_pem.clone()), identity)
                .unwrap();
        let r = client.create_key("g", "timestamp", &KeyType::Ecdsa).await;
        assert!(matches!(r, Err(CryptoError::Unavailable(_))), "{r:?}");
        assert!(client.health().await.is_err());
    }
    // A signer certificate from an unknown CA is refused by the client.
    let other_ca = Pki::new();
    let client = RemoteCryptoService::connect(
        "127.0.0.1",
        port,
        Some(other_ca.ca_pem.clone()),
        Some(pki.client.clone()),
    )
    .unwrap();
    let r = client.get_key(&"0".repeat(64)).await;
    assert!(matches!(r, Err(CryptoError::Unavailable(_))), "{r:?}");
    // The good client still works.
    pki.client(port).health().await.unwrap();
    server.shutdown().await.unwrap();
}
