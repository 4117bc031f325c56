//! A client for a notary server's public HTTP API (spec server.md §2): metadata by name,
//! version and checksum, the changefeed, the online-key endpoints and the update POST.
//!
//! TLS trusts either the given CA file alone or, without one, the web PKI roots. Token auth
//! follows the Docker registry scheme the notary and docker CLIs use: on a `401` with a
//! `Bearer` challenge the client asks the challenge's realm for a token (with HTTP Basic
//! credentials when it has them) and retries once; a `Basic` challenge is answered with the
//! credentials directly.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use notary_tuf::PublicKey;
use reqwest::StatusCode;
use serde::Deserialize;

/// User name and password for token (or basic) authentication.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

// Never print the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a request to a notary server failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL or CA file is unusable.
    #[error("{0}")]
    Setup(String),
    /// No HTTP exchange happened: refused, unreachable, TLS failure, timeout.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The error chain.
        reason: String,
    },
    /// Authentication was required and failed.
    #[error("authentication failed for {url}: {reason}")]
    Auth {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The body is not what the endpoint returns.
    #[error("{url} returned an unusable body: {reason}")]
    Body {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One changefeed record (`/v2/_trust/changefeed`, spec §14 item 9).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ChangeRecord {
    /// Cursor (a string of digits).
    #[serde(rename = "ID")]
    pub id: String,
    /// When it was recorded.
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// The GUN.
    #[serde(rename = "GUN")]
    pub gun: String,
    /// Timestamp version (0 for deletions).
    #[serde(rename = "Version")]
    pub version: i64,
    /// Hex SHA-256 of the timestamp ("" for deletions).
    #[serde(rename = "SHA256")]
    pub sha256: String,
    /// `update` or `deletion`.
    #[serde(rename = "Category")]
    pub category: String,
}

#[derive(Deserialize)]
struct ChangePage {
    records: Option<Vec<ChangeRecord>>,
}

/// The access a request needs, for the token scope (spec §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `pull`.
    Pull,
    /// `push,pull`.
    Push,
    /// `*`.
    Admin,
}

/// A notary server's public API.
pub struct RemoteNotary {
    base: String,
    client: reqwest::Client,
    credentials: Option<Credentials>,
    /// Bearer tokens by scope string.
    tokens: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for RemoteNotary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNotary")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Bodies larger than this are refused (the notary client's own limit for unknown sizes).
const MAX_BODY: usize = 100 << 20;

impl RemoteNotary {
    /// A client for `url` (`https://host:port`, or `http://` for tests), trusting only `ca`
    /// when given.
    pub fn new(
        url: &str,
        ca: Option<&Path>,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Result<RemoteNotary, RemoteError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| RemoteError::Setup(format!("invalid server URL {url:?}: {e}")))?;
        if parsed.scheme() != "https" && parsed.scheme() != "http" {
            return Err(RemoteError::Setup(format!(
                "server URL {url:?} must start with https:// (or http://)"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .use_rustls_tls();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| {
                RemoteError::Setup(format!("cannot read CA file {}: {e}", ca.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RemoteError::Setup(format!("CA file {} is not PEM: {e}", ca.display()))
            })?;
            if certs.is_empty() {
                return Err(RemoteError::Setup(format!(
                    "CA file {} holds no certificate",
                    ca.display()
                )));
            }
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| RemoteError::Setup(format!("HTTP client: {}", chain(&e))))?;
        Ok(RemoteNotary {
            base: url.trim_end_matches('/').to_string(),
            client,
            credentials,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The server URL (no trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v2/`: the server is there when it answers 200 or 401 (what clients accept).
    pub async fn ping(&self) -> Result<(), RemoteError> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(reqwest::Method::GET, &url, None).await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::UNAUTHORIZED => Ok(()),
            s => Err(status_error(&url, s, resp).await),
        }
    }

    /// A metadata file by URL name (`root`, `timestamp`, `3.root`, `targets.<sha256>`,
    /// `targets/releases.<sha256>`): `Ok(None)` on 404.
    pub async fn metadata(&self, gun: &str, name: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let url = format!("{}/v2/{gun}/_trust/tuf/{name}.json", self.base);
        self.get_optional(&url, Some((gun, Access::Pull))).await
    }

    /// The changefeed after `change_id` (`records` at most; negative for the newest),
    /// for one GUN or for all. `Ok(None)` when the server has no changefeed (404).
    pub async fn changefeed(
        &self,
        gun: Option<&str>,
        change_id: &str,
        records: i64,
    ) -> Result<Option<Vec<ChangeRecord>>, RemoteError> {
        let url = match gun {
            Some(g) => format!(
                "{}/v2/{g}/_trust/changefeed?change_id={change_id}&records={records}",
                self.base
            ),
            None => format!(
                "{}/v2/_trust/changefeed?change_id={change_id}&records={records}",
                self.base
            ),
        };
        let scope = gun.map(|g| (g, Access::Pull));
        let Some(body) = self.get_optional(&url, scope).await? else {
            return Ok(None);
        };
        let page: ChangePage = serde_json::from_slice(&body).map_err(|e| RemoteError::Body {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some(page.records.unwrap_or_default()))
    }

    /// Every changefeed record, oldest first (pages of 100).
    pub async fn full_changefeed(&self) -> Result<Option<Vec<ChangeRecord>>, RemoteError> {
        let mut all: Vec<ChangeRecord> = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let Some(page) = self.changefeed(None, &cursor, 100).await? else {
                return Ok(if all.is_empty() { None } else { Some(all) });
            };
            let n = page.len();
            if let Some(last) = page.last() {
                cursor = last.id.clone();
            }
            all.extend(page);
            if n < 100 {
                return Ok(Some(all));
            }
        }
    }

    /// `GET {role}.key`: the server's public key for a server-managed role. Note that a Go
    /// server creates a key when it holds none of the root's keys for the role.
    pub async fn get_key(&self, gun: &str, role: &str) -> Result<PublicKey, RemoteError> {
        let url = format!("{}/v2/{gun}/_trust/tuf/{role}.key", self.base);
        let resp = self
            .send(reqwest::Method::GET, &url, Some((gun, Access::Push)))
            .await?;
        parse_key(&url, resp).await
    }

    /// `POST {role}.key`: asks the server for a new key for `role` (rotation).
    pub async fn rotate_key(&self, gun: &str, role: &str) -> Result<PublicKey, RemoteError> {
        let url = format!("{}/v2/{gun}/_trust/tuf/{role}.key", self.base);
        let resp = self
            .send(reqwest::Method::POST, &url, Some((gun, Access::Admin)))
            .await?;
        parse_key(&url, resp).await
    }

    /// `POST /v2/{gun}/_trust/tuf/` with one multipart part per file, exactly as the notary
    /// CLI sends them (field `files`, filename = role).
    pub async fn publish(&self, gun: &str, files: &[(String, Vec<u8>)]) -> Result<(), RemoteError> {
        let url = format!("{}/v2/{gun}/_trust/tuf/", self.base);
        let boundary = format!("notary-migrate-{:032x}", rand::random::<u128>());
        let mut body = Vec::new();
        for (role, data) in files {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let resp = self
            .send_body(
                reqwest::Method::POST,
                &url,
                Some((gun, Access::Push)),
                Some((content_type, body)),
            )
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(&url, resp.status(), resp).await)
        }
    }

    async fn get_optional(
        &self,
        url: &str,
        scope: Option<(&str, Access)>,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let resp = self.send(reqwest::Method::GET, url, scope).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(read_body(url, resp).await?)),
            s => Err(status_error(url, s, resp).await),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        scope: Option<(&str, Access)>,
    ) -> Result<reqwest::Response, RemoteError> {
        self.send_body(method, url, scope, None).await
    }

    /// Sends a request; on a 401 challenge obtains credentials and retries once.
    async fn send_body(
        &self,
        method: reqwest::Method,
        url: &str,
        scope: Option<(&str, Access)>,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<reqwest::Response, RemoteError> {
        let scope_string = scope_string(scope);
        let cached = self
            .tokens
            .lock()
            .expect("token cache")
            .get(&scope_string)
            .cloned();
        let build = |auth: Option<&Authorization>| {
            let mut req = self.client.request(method.clone(), url);
            if let Some((ct, bytes)) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, ct.as_str())
                    .body(bytes.clone());
            }
            match auth {
                Some(Authorization::Bearer(t)) => req.bearer_auth(t),
                Some(Authorization::Basic(c)) => req.basic_auth(&c.username, Some(&c.password)),
                None => req,
            }
        };
        let first_auth = cached.map(Authorization::Bearer);
        let resp = build(first_auth.as_ref())
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some(challenge) = challenge else {
            return Ok(resp);
        };
        let auth = match parse_challenge(&challenge) {
            Some(Challenge::Basic) => match &self.credentials {
                Some(c) => Authorization::Basic(c.clone()),
                None => return Ok(resp),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            }) => {
                // Ask for what the route needs; the challenge's scope says which.
                let want = if scope_string.is_empty() {
                    challenge_scope.unwrap_or_default()
                } else {
                    scope_string.clone()
                };
                let token = self
                    .fetch_token(url, &realm, service.as_deref(), &want)
                    .await?;
                self.tokens
                    .lock()
                    .expect("token cache")
                    .insert(scope_string.clone(), token.clone());
                Authorization::Bearer(token)
            }
            None => return Ok(resp),
        };
        let retry = build(Some(&auth))
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        if retry.status() == StatusCode::UNAUTHORIZED {
            return Err(RemoteError::Auth {
                url: url.to_string(),
                reason: "the server refused the credentials or token".into(),
            });
        }
        Ok(retry)
    }

    async fn fetch_token(
        &self,
        url: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RemoteError> {
        let auth_err = |reason: String| RemoteError::Auth {
            url: url.to_string(),
            reason,
        };
        let mut token_url = url::Url::parse(realm)
            .map_err(|e| auth_err(format!("bad token realm {realm:?}: {e}")))?;
        {
            let mut q = token_url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
            if let Some(c) = &self.credentials {
                q.append_pair("account", &c.username);
            }
        }
        let mut req = self.client.get(token_url.clone());
        if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| auth_err(format!("token service {realm}: {}", chain(&e))))?;
        if !resp.status().is_success() {
            return Err(auth_err(format!(
                "token service {realm} answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        #[derive(Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
        }
        let reply: TokenReply = resp
            .json()
            .await
            .map_err(|e| auth_err(format!("token service reply: {e}")))?;
        reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_err("token service returned no token".into()))
    }
}

enum Authorization {
    Bearer(String),
    Basic(Credentials),
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm="..",service="..",scope=".."`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// Service name.
        service: Option<String>,
        /// Scope the server asked for.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (quoted parameters may contain commas).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params: HashMap<String, String> = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

fn scope_string(scope: Option<(&str, Access)>) -> String {
    match scope {
        None => "registry:catalog:*".to_string(),
        Some((gun, Access::Pull)) => format!("repository:{gun}:pull"),
        Some((gun, Access::Push)) => format!("repository:{gun}:push,pull"),
        Some((gun, Access::Admin)) => format!("repository:{gun}:*"),
    }
}

async fn read_body(url: &str, resp: reqwest::Response) -> Result<Vec<u8>, RemoteError> {
    if resp.content_length().is_some_and(|n| n as usize > MAX_BODY) {
        return Err(RemoteError::Body {
            url: url.to_string(),
            reason: format!("larger than {MAX_BODY} bytes"),
        });
    }
    let bytes = resp.bytes().await.map_err(|e| unreachable(url, &e))?;
    if bytes.len() > MAX_BODY {
        return Err(RemoteError::Body {
            url: url.to_string(),
            reason: format!("larger than {MAX_BODY} bytes"),
        });
    }
    Ok(bytes.to_vec())
}

async fn parse_key(url: &str, resp: reqwest::Response) -> Result<PublicKey, RemoteError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(status_error(url, status, resp).await);
    }
    let body = read_body(url, resp).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| RemoteError::Body {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    PublicKey::from_json_value(&value).map_err(|e| RemoteError::Body {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

async fn status_error(url: &str, status: StatusCode, resp: reqwest::Response) -> RemoteError {
    let body = resp.text().await.unwrap_or_default();
    let mut body: String = body.trim().chars().take(300).collect();
    if body.is_empty() {
        body = "(empty body)".into();
    }
    RemoteError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        body,
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> RemoteError {
    RemoteError::Unreachable {
        url: url.to_string(),
        reason: chain(e),
    }
}

/// An error and its sources on one line (reqwest hides the TLS reason in the chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="notary",scope="repository:a/b:push,pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("notary".into()),
                scope: Some("repository:a/b:push,pull".into()),
            })
        );
        assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Bearer service=\"x\""), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn scopes_follow_the_routes_needs() {
        assert_eq!(scope_string(None), "registry:catalog:*");
        assert_eq!(
            scope_string(Some(("a/b", Access::Pull))),
            "repository:a/b:pull"
        );
        assert_eq!(
            scope_string(Some(("a/b", Access::Push))),
            "repository:a/b:push,pull"
        );
        assert_eq!(
            scope_string(Some(("a/b", Access::Admin))),
            "repository:a/b:*"
        );
    }

    /// A minimal registry-style token flow over plain HTTP: the notary endpoint challenges,
    /// the token endpoint wants Basic credentials, the retried request carries the token.
    #[tokio::test]
    async fn token_auth_fetches_a_token_with_the_credentials_and_retries() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = req.lines().next().unwrap_or_default().to_string();
                let auth = req
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .map(|l| l[14..].trim().to_string())
                    .unwrap_or_default();
                log.lock().unwrap().push(format!("{line} | {auth}"));
                // "alice:secret" in base64.
                let (status, extra, body) = if line.starts_with("GET /token?") {
                    if auth == "Basic YWxpY2U6c2VjcmV0" {
                        ("200 OK", String::new(), r#"{"token":"tok-1"}"#.to_string())
                    } else {
                        ("401 Unauthorized", String::new(), String::new())
                    }
                } else if auth == "Bearer tok-1" {
                    ("200 OK", String::new(), "{}".to_string())
                } else {
                    (
                        "401 Unauthorized",
                        format!(
                            "Www-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"notary\",scope=\"repository:a/b:pull\"\r\n"
                        ),
                        String::new(),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        let creds = Credentials {
            username: "alice".into(),
            password: "secret".into(),
        };
        let remote = RemoteNotary::new(
            &format!("http://{addr}"),
            None,
            Some(creds),
            Duration::from_secs(5),
        )
        .unwrap();
        let body = remote.metadata("a/b", "root").await.unwrap();
        assert_eq!(body.as_deref(), Some(&b"{}"[..]));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[0].starts_with("GET /v2/a/b/_trust/tuf/root.json "),
            "{seen:?}"
        );
        assert!(
            seen[1].starts_with(
                "GET /token?service=notary&scope=repository%3Aa%2Fb%3Apull&account=alice "
            ),
            "{seen:?}"
        );
        assert!(seen[2].ends_with("| Bearer tok-1"), "{seen:?}");

        // Without credentials the token service refuses, and that is an auth error.
        let anonymous = RemoteNotary::new(
            &format!("http://{addr}"),
            None,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(matches!(
            anonymous.metadata("a/b", "root").await,
            Err(RemoteError::Auth { .. })
        ));
    }

    #[test]
    fn a_non_https_url_or_missing_ca_is_a_setup_error() {
        let t = Duration::from_secs(1);
        assert!(matches!(
            RemoteNotary::new("ftp://x", None, None, t),
            Err(RemoteError::Setup(_))
        ));
        assert!(matches!(
            RemoteNotary::new("https://x", Some(Path::new("/nonexistent/ca.pem")), None, t),
            Err(RemoteError::Setup(_))
        ));
    }
}
