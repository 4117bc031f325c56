//! A small Docker-registry token issuer for the token-auth end-to-end tests.
//!
//! It serves `GET <realm>?service=..&scope=..&account=..` over HTTPS on loopback, as the
//! token servers in front of Docker registries do: the caller may authenticate with HTTP
//! Basic, each `scope` (`type:name:actions`, repeatable) is granted only the actions the
//! caller's policy allows, and the answer is
//! `{"token":..,"access_token":..,"expires_in":..,"issued_at":..}` with an ES256 JWT
//! whose header carries an `x5c` chain (signing leaf, then intermediate) issued by its own
//! test root CA. Point `auth.options.rootcertbundle` at [`TokenIssuer::root_bundle`].
//!
//! Policies: every configured user has a password and a set of allowed actions (`*`
//! allows everything, including the `*` action); callers without Basic credentials get
//! the anonymous policy, or a `401` with a Basic challenge when there is none. Wrong
//! credentials always get `401`. Every request is recorded ([`TokenIssuer::requests`]).
//!
//! One thread accepts connections (plain blocking I/O through rustls) and answers one
//! request per connection (`Connection: close`). Stopped on drop.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

/// A user the issuer knows.
#[derive(Debug, Clone)]
pub struct User {
    /// Basic auth user name; also the token's `sub` when no `account` is asked for.
    pub name: String,
    /// Basic auth password.
    pub password: String,
    /// Actions this user may be granted (`*` = all).
    pub allowed: Vec<String>,
}

impl User {
    /// A user allowed `allowed` (e.g. `&["pull"]`, `&["push", "pull"]`, `&["*"]`).
    pub fn new(name: &str, password: &str, allowed: &[&str]) -> User {
        User {
            name: name.into(),
            password: password.into(),
            allowed: allowed.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// How to run a [`TokenIssuer`].
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// Loopback port of the HTTPS listener.
    pub port: u16,
    /// TLS certificate chain (PEM) the issuer presents; its CA must be trusted by clients.
    pub tls_cert: PathBuf,
    /// TLS private key (PEM).
    pub tls_key: PathBuf,
    /// `iss` of issued tokens.
    pub issuer: String,
    /// The only `service` (token `aud`) served.
    pub service: String,
    /// Known users.
    pub users: Vec<User>,
    /// Actions granted to callers without credentials; `None` refuses them with 401.
    pub anonymous: Option<Vec<String>>,
    /// Token lifetime.
    pub ttl: Duration,
}

/// One token request as the issuer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The Basic auth user, if credentials were sent and accepted.
    pub user: Option<String>,
    /// The `account` parameter.
    pub account: Option<String>,
    /// The `scope` parameters.
    pub scopes: Vec<String>,
    /// HTTP status answered.
    pub status: u16,
    /// The `access` claim issued (empty unless 200).
    pub granted: Value,
}

/// The signing identity: a root CA (the bundle), an intermediate and the signing leaf.
struct Signing {
    root_pem: String,
    chain_b64: Vec<String>,
    key: EcdsaKeyPair,
}

struct Shared {
    config: IssuerConfig,
    signing: Signing,
    requests: Mutex<Vec<TokenRequest>>,
}

/// A running issuer; stopped when dropped.
pub struct TokenIssuer {
    shared: Arc<Shared>,
    /// `https://127.0.0.1:<port>/auth`.
    pub realm: String,
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

impl Signing {
    fn new() -> Signing {
        let root = CertifiedIssuer::self_signed(
            ca_params("e2e token root"),
            KeyPair::generate().expect("key"),
        )
        .expect("root certificate");
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("e2e token intermediate"),
            KeyPair::generate().expect("key"),
            &root,
        )
        .expect("intermediate certificate");
        let leaf_key = KeyPair::generate().expect("key");
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.distinguished_name
            .push(DnType::CommonName, "e2e token signer");
        let leaf = leaf
            .signed_by(&leaf_key, &intermediate)
            .expect("leaf certificate");
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &leaf_key.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("P-256 key");
        Signing {
            root_pem: root.pem(),
            chain_b64: vec![
                STANDARD.encode(leaf.der()),
                STANDARD.encode(intermediate.der()),
            ],
            key,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": self.chain_b64});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

impl TokenIssuer {
    /// Generates the signing PKI, binds `127.0.0.1:<port>` and starts serving.
    pub fn start(config: IssuerConfig) -> TokenIssuer {
        let tls = tls_config(&config.tls_cert, &config.tls_key);
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .unwrap_or_else(|e| panic!("token issuer cannot bind port {}: {e}", config.port));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let dir = tempfile::Builder::new()
            .prefix("token-issuer-")
            .tempdir()
            .expect("tempdir");
        let realm = format!("https://127.0.0.1:{}/auth", config.port);
        let shared = Arc::new(Shared {
            config,
            signing: Signing::new(),
            requests: Mutex::new(Vec::new()),
        });
        std::fs::write(dir.path().join("token-root.pem"), &shared.signing.root_pem)
            .expect("write bundle");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(listener, tls, shared, stop))
        };
        TokenIssuer {
            shared,
            realm,
            dir,
            stop,
            thread: Some(thread),
        }
    }

    /// PEM file with the issuer's root CA: the server's `auth.options.rootcertbundle`.
    pub fn root_bundle(&self) -> PathBuf {
        self.dir.path().join("token-root.pem")
    }

    /// `iss` of the issued tokens.
    pub fn issuer(&self) -> &str {
        &self.shared.config.issuer
    }

    /// The service (`aud`) the tokens are for.
    pub fn service(&self) -> &str {
        &self.shared.config.service
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Signs a token directly, bypassing the HTTP endpoint and its policies.
    pub fn mint(&self, subject: &str, access: Value) -> String {
        self.shared
            .signing
            .sign(&claims(&self.shared.config, subject, access))
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn claims(config: &IssuerConfig, subject: &str, access: Value) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    json!({
        "iss": config.issuer,
        "sub": subject,
        "aud": config.service,
        "exp": now + config.ttl.as_secs(),
        "nbf": now - 1,
        "iat": now,
        "jti": format!("{:x}", now ^ u64::from(rand_u32())),
        "access": access,
    })
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).expect("random");
    u32::from_be_bytes(b)
}

fn tls_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap_or_else(|e| panic!("read {}: {e}", cert.display()))
        .collect::<Result<_, _>>()
        .expect("certificate PEM");
    let key =
        PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("read {}: {e}", key.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS identity");
    Arc::new(config)
}

fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (tls, shared) = (tls.clone(), shared.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve_connection(stream, tls, &shared) {
                        eprintln!("token issuer: connection failed: {e}");
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                eprintln!("token issuer: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn serve_connection(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    shared: &Shared,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let (status, headers, body) = answer(&text, shared);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    tls.write_all(out.as_bytes())?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

/// Answers one request head: (status, extra headers, body).
fn answer(head: &str, shared: &Shared) -> (u16, Vec<(String, String)>, String) {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || path != "/auth" {
        return (404, Vec::new(), "{\"error\":\"not found\"}".into());
    }
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let account = param("account");
    let config = &shared.config;
    let mut record = TokenRequest {
        user: None,
        account: account.clone(),
        scopes: scopes.clone(),
        status: 0,
        granted: json!([]),
    };
    let result = (|| {
        let basic = authorization
            .as_deref()
            .and_then(|a| {
                a.strip_prefix("Basic ")
                    .or_else(|| a.strip_prefix("basic "))
            })
            .map(|b64| {
                let decoded = STANDARD.decode(b64.trim()).unwrap_or_default();
                let text = String::from_utf8_lossy(&decoded).into_owned();
                let (u, p) = text.split_once(':').unwrap_or((&text, ""));
                (u.to_owned(), p.to_owned())
            });
        let challenge = vec![(
            "WWW-Authenticate".to_owned(),
            "Basic realm=\"e2e token issuer\"".to_owned(),
        )];
        let (subject, allowed) = match basic {
            Some((name, password)) => {
                match config
                    .users
                    .iter()
                    .find(|u| u.name == name && u.password == password)
                {
                    Some(u) => {
                        record.user = Some(u.name.clone());
                        (u.name.clone(), u.allowed.clone())
                    }
                    None => return (401, challenge, "{\"error\":\"bad credentials\"}".into()),
                }
            }
            None => match &config.anonymous {
                Some(actions) => (String::new(), actions.clone()),
                None => {
                    return (
                        401,
                        challenge,
                        "{\"error\":\"credentials required\"}".into(),
                    )
                }
            },
        };
        if param("service").as_deref() != Some(config.service.as_str()) {
            return (400, Vec::new(), "{\"error\":\"unknown service\"}".into());
        }
        let subject = account
            .clone()
            .filter(|_| !subject.is_empty())
            .unwrap_or(subject);
        let access = grant(&scopes, &allowed);
        record.granted = access.clone();
        let token = shared.signing.sign(&claims(config, &subject, access));
        let issued_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": config.ttl.as_secs(),
            "issued_at": issued_at,
        });
        (200, Vec::new(), body.to_string())
    })();
    record.status = result.0;
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(record);
    result
}

/// The `access` claim: each requested `type:name:actions` scope with the actions the
/// policy allows (the name may itself contain `:`).
pub fn grant(scopes: &[String], allowed: &[String]) -> Value {
    let all = allowed.iter().any(|a| a == "*");
    let mut access = Vec::new();
    for scope in scopes {
        let parts: Vec<&str> = scope.split(':').collect();
        if parts.len() < 3 {
            continue;
        }
        let resource_type = parts[0];
        let name = parts[1..parts.len() - 1].join(":");
        let actions: BTreeSet<&str> = parts[parts.len() - 1]
            .split(',')
            .filter(|a| all || allowed.iter().any(|x| x == a))
            .collect();
        if !actions.is_empty() {
            access.push(json!({"type": resource_type, "name": name, "actions": actions}));
        }
    }
    Value::Array(access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_allowed_actions_and_keeps_colons_in_names() {
        let scopes = vec![
            "repository:localhost:5000/app:push,pull".to_owned(),
            "registry:catalog:*".to_owned(),
        ];
        assert_eq!(
            grant(&scopes, &["pull".into()]),
            json!([{"type": "repository", "name": "localhost:5000/app", "actions": ["pull"]}])
        );
        assert_eq!(
            grant(&scopes, &["*".into()]),
            json!([
                {"type": "repository", "name": "localhost:5000/app", "actions": ["pull", "push"]},
                {"type": "registry", "name": "catalog", "actions": ["*"]}
            ])
        );
        assert_eq!(grant(&["bad".into()], &["*".into()]), json!([]));
    }
}
