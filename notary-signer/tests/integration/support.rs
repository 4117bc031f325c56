//! Shared test helpers: test PKI, databases, in-process servers and clients.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use notary_common::dsn::{MysqlDsn, PostgresDsn};
use notary_common::tls::ServerTlsFiles;
use notary_proto::key_management_client::KeyManagementClient;
use notary_proto::signer_client::SignerClient;
use notary_proto::{CreateKeyRequest, KeyId, SignatureRequest};
use notary_signer::grpc::RunningServer;
use notary_signer::keystore::{Backend, KeyService, Passphrases, SqlKeyStore};
use notary_tuf::keys::{KeyType, PublicKey};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// The passphrase the Go reference signer used for the vectors in tests/data.
pub const GO_PASSPHRASE: &str = "notary-signer-test-passphrase";
/// The alias the Go reference signer used.
pub const GO_ALIAS: &str = "passwordalias1";

/// `tests/data/<name>` as text, trimmed.
pub fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Decodes upper- or lower-case hex.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.to_ascii_lowercase()).unwrap()
}

/// A throw-away PKI: a CA with server and client certificates, plus a second CA with its
/// own client certificate (which the server must reject).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub client: (String, String),
    pub foreign_client: (String, String),
}

fn ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    (rcgen::Issuer::new(params, key), cert.pem())
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    names: &[&str],
    eku: rcgen::ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages = vec![eku];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, ca_pem) = ca("test root");
        let (server_cert, server_key) = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            &issuer,
            &["notary-server"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        let (other, _) = ca("other root");
        let foreign_client = leaf(
            &other,
            &["intruder"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        std::fs::write(dir.path().join("root-ca.crt"), &ca_pem).unwrap();
        std::fs::write(dir.path().join("server.crt"), server_cert).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key).unwrap();
        Self {
            dir,
            ca_pem,
            client,
            foreign_client,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Server TLS files; `mutual` adds the client CA.
    pub fn server_files(&self, mutual: bool) -> ServerTlsFiles {
        ServerTlsFiles {
            cert: (self.path("server.crt"), "server.tls_cert_file".into()),
            key: (self.path("server.key"), "server.tls_key_file".into()),
            client_ca: mutual.then(|| (self.path("root-ca.crt"), "server.client_ca_file".into())),
        }
    }
}

/// Which client identity to present.
pub enum ClientId {
    Trusted,
    Foreign,
    None,
}

/// Starts the signer gRPC server on 127.0.0.1:0.
pub async fn start_server(pki: &Pki, mutual: bool, keys: Arc<KeyService>) -> RunningServer {
    let tls = notary_common::tls::server_config(&pki.server_files(mutual), &[b"h2"]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    notary_signer::grpc::start(listener, Arc::new(tls), keys).unwrap()
}

/// Connects a client. Errors are returned: with TLS 1.3 a rejected client certificate may
/// only show up on the first call.
pub async fn connect(
    server: &RunningServer,
    pki: &Pki,
    id: ClientId,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    match id {
        ClientId::Trusted => tls = tls.identity(Identity::from_pem(&pki.client.0, &pki.client.1)),
        ClientId::Foreign => {
            tls = tls.identity(Identity::from_pem(
                &pki.foreign_client.0,
                &pki.foreign_client.1,
            ))
        }
        ClientId::None => {}
    }
    Channel::from_shared(format!("https://{}", server.local_addr()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// A channel to a signer process on 127.0.0.1:`port`, with the trusted client identity.
pub async fn channel_to_port(pki: &Pki, port: u16) -> Channel {
    Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&pki.ca_pem))
                .identity(Identity::from_pem(&pki.client.0, &pki.client.1))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// CreateKey; checks that the answer's key ID matches its public key.
pub async fn create_key(
    channel: &Channel,
    gun: &str,
    role: &str,
    alg: &str,
) -> Result<PublicKey, tonic::Status> {
    let resp = KeyManagementClient::new(channel.clone())
        .create_key(CreateKeyRequest {
            algorithm: alg.into(),
            gun: gun.into(),
            role: role.into(),
        })
        .await?
        .into_inner();
    let info = resp.key_info.expect("keyInfo is always set");
    let key_type = info
        .algorithm
        .expect("keyInfo.algorithm is always set")
        .algorithm;
    let public = PublicKey::new(KeyType::parse(&key_type), resp.public_key);
    assert_eq!(info.key_id.unwrap().id, public.key_id());
    Ok(public)
}

/// Sign.
pub async fn sign(
    channel: &Channel,
    key_id: &str,
    content: &[u8],
) -> Result<notary_proto::Signature, tonic::Status> {
    SignerClient::new(channel.clone())
        .sign(SignatureRequest {
            key_id: Some(KeyId { id: key_id.into() }),
            content: content.to_vec(),
        })
        .await
        .map(|r| r.into_inner())
}

/// A database for one test: a SQLite file in a temp dir, or a random MySQL database that is
/// dropped when the value is dropped.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Mysql {
        admin_url: String,
        name: String,
    },
    /// `base` is `postgres://user:pw@host:port`, `query` the URL's parameters.
    Postgres {
        base: String,
        query: String,
        name: String,
    },
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signer.db");
        TestDb::Sqlite { _dir: dir, path }
    }

    /// `None` (after printing a notice) when NOTARY_TEST_MYSQL_URL is unset.
    pub fn mysql(test: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var("NOTARY_TEST_MYSQL_URL") else {
            eprintln!("skipping MySQL variant of {test}: NOTARY_TEST_MYSQL_URL is not set");
            return None;
        };
        let admin_url = admin_url.trim_end_matches('/').to_string();
        let name = format!("signer_test_{:016x}", rand::random::<u64>());
        let mut conn = diesel::MysqlConnection::establish(&admin_url).unwrap();
        conn.batch_execute(&format!("CREATE DATABASE `{name}`"))
            .unwrap();
        Some(TestDb::Mysql { admin_url, name })
    }

    /// `None` (after printing a notice) when NOTARY_TEST_POSTGRES_URL is unset; a failure
    /// instead when NOTARY_TEST_REQUIRE_POSTGRES=1.
    pub fn postgres(test: &str) -> Option<Self> {
        let Ok(url) = std::env::var("NOTARY_TEST_POSTGRES_URL") else {
            if std::env::var("NOTARY_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("NOTARY_TEST_POSTGRES_URL is not set but NOTARY_TEST_REQUIRE_POSTGRES=1");
            }
            eprintln!("skipping PostgreSQL variant of {test}: NOTARY_TEST_POSTGRES_URL is not set");
            return None;
        };
        let (head, query) = url.split_once('?').unwrap_or((&url, ""));
        let base = head.trim_end_matches('/').to_string();
        let name = format!("signer_test_{:016x}", rand::random::<u64>());
        let db = TestDb::Postgres {
            base,
            query: query.to_string(),
            name,
        };
        let mut conn = diesel::PgConnection::establish(&db.pg_url("postgres")).unwrap();
        let TestDb::Postgres { name, .. } = &db else {
            unreachable!()
        };
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Some(db)
    }

    /// URL of database `db` on the PostgreSQL test server.
    fn pg_url(&self, db: &str) -> String {
        let TestDb::Postgres { base, query, .. } = self else {
            panic!("PostgreSQL only")
        };
        if query.is_empty() {
            format!("{base}/{db}")
        } else {
            format!("{base}/{db}?{query}")
        }
    }

    /// A direct connection to the PostgreSQL test database.
    pub fn pg_connect(&self) -> diesel::PgConnection {
        let TestDb::Postgres { name, .. } = self else {
            panic!("PostgreSQL only")
        };
        diesel::PgConnection::establish(&self.pg_url(name)).unwrap()
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Postgres { name, .. } => Backend::Postgres(
                PostgresDsn::parse("NOTARY_TEST_POSTGRES_URL", &self.pg_url(name)).unwrap(),
            ),
            TestDb::Sqlite { path, .. } => Backend::Sqlite(path.clone()),
            TestDb::Mysql { admin_url, name } => Backend::Mysql(
                MysqlDsn::parse("NOTARY_TEST_MYSQL_URL", &format!("{admin_url}/{name}")).unwrap(),
            ),
        }
    }

    /// Opens a migrated store with the given default alias and passphrases.
    pub fn store(&self, alias: &str, passphrases: Passphrases) -> SqlKeyStore {
        SqlKeyStore::open(self.backend(), alias, passphrases, true).unwrap()
    }

    /// Runs raw SQL on the test database (MySQL only).
    pub fn mysql_exec(&self, sql: &str) {
        let TestDb::Mysql { admin_url, name } = self else {
            panic!("MySQL only")
        };
        let mut conn = diesel::MysqlConnection::establish(&format!("{admin_url}/{name}")).unwrap();
        conn.batch_execute(sql).unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Mysql { admin_url, name } = self {
            if let Ok(mut conn) = diesel::MysqlConnection::establish(admin_url) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
        if let TestDb::Postgres { name, .. } = &*self {
            if let Ok(mut conn) = diesel::PgConnection::establish(&self.pg_url("postgres")) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// Verifies a signature the way a TUF client does.
pub fn verify(public: &notary_tuf::keys::PublicKey, msg: &[u8], sig: &[u8]) {
    use notary_tuf::keys::KeyType;
    match public.key_type {
        KeyType::Ecdsa => {
            use p256::ecdsa::signature::Verifier;
            use p256::pkcs8::DecodePublicKey;
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&public.public).unwrap();
            assert_eq!(sig.len(), 64, "ecdsa signatures are raw r||s");
            let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
            vk.verify(msg, &sig).expect("ecdsa signature verifies");
        }
        KeyType::Ed25519 => {
            use ed25519_dalek::Verifier;
            let bytes: [u8; 32] = public.public.as_slice().try_into().unwrap();
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(sig).unwrap();
            vk.verify(msg, &sig).expect("ed25519 signature verifies");
        }
        ref other => panic!("unexpected key type {other}"),
    }
}
