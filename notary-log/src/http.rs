//! [`LogSource`] over HTTPS with reqwest (rustls).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use notary_tlog::EntryBundle;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::source::{FetchError, LeafQuery, LogSource};

/// Prefix of the log's endpoints on the server's public listener.
pub const LOG_PREFIX: &str = "/_notary_server/log";

/// Largest body read: entry bundles are at most 256 × 64 KiB, metadata files are small.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Bytes escaped in GUN and role path segments; `/` stays, as GUNs and delegation roles use it.
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The server's log and metadata over HTTPS.
pub struct HttpSource {
    base: url::Url,
    client: reqwest::Client,
}

impl HttpSource {
    /// `server` is the base URL (`https://notary.example.com:4443`); `ca` a PEM bundle to trust
    /// instead of the system roots.
    pub fn new(server: &str, ca: Option<&Path>, timeout: Duration) -> anyhow::Result<Self> {
        let base = url::Url::parse(server.trim_end_matches('/'))
            .map_err(|e| anyhow::anyhow!("invalid server URL {server:?}: {e}"))?;
        if base.scheme() != "https" && base.scheme() != "http" {
            anyhow::bail!("server URL {server:?} must start with https://");
        }
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .use_rustls_tls();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca)
                .map_err(|e| anyhow::anyhow!("cannot read CA file {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("CA file {} is not PEM: {e}", ca.display()))?;
            if certs.is_empty() {
                anyhow::bail!("CA file {} holds no certificate", ca.display());
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self {
            base,
            client: builder.build()?,
        })
    }

    /// `GET /_notary_server/log/key`, as text. Unverified by nature: whoever controls the server
    /// controls this answer.
    pub async fn unverified_key(&self) -> Result<String, FetchError> {
        let body = self.get(self.url(&format!("{LOG_PREFIX}/key"))).await?;
        String::from_utf8(body).map_err(|_| FetchError::Body {
            url: format!("{LOG_PREFIX}/key"),
            reason: "is not UTF-8".to_owned(),
        })
    }

    /// The base URL with `path` (already escaped) appended to its path.
    fn url(&self, path: &str) -> url::Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url
    }

    fn metadata_url(&self, gun: &str, file: &str) -> url::Url {
        self.url(&format!(
            "/v2/{}/_trust/tuf/{}",
            utf8_percent_encode(gun, PATH_ESCAPES),
            utf8_percent_encode(file, PATH_ESCAPES)
        ))
    }

    async fn get(&self, url: url::Url) -> Result<Vec<u8>, FetchError> {
        let shown = url.to_string();
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: shown.clone(),
            reason: error_chain(&e),
        };
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound { url: shown });
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(FetchError::Body {
                url: shown,
                reason: format!("larger than {MAX_BODY} bytes"),
            });
        }
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(300)
                .collect();
            return Err(FetchError::Status {
                url: shown,
                status: status.as_u16(),
                body: if text.is_empty() {
                    "(empty body)".to_owned()
                } else {
                    text
                },
            });
        }
        if body.len() > MAX_BODY {
            return Err(FetchError::Body {
                url: shown,
                reason: format!("larger than {MAX_BODY} bytes"),
            });
        }
        Ok(body.to_vec())
    }
}

#[async_trait]
impl LogSource for HttpSource {
    async fn checkpoint(&self) -> Result<Vec<u8>, FetchError> {
        self.get(self.url(&format!("{LOG_PREFIX}/checkpoint")))
            .await
    }

    async fn proof(&self, leaf: &LeafQuery, tree_size: Option<u64>) -> Result<Vec<u8>, FetchError> {
        let mut url = self.url(&format!("{LOG_PREFIX}/proof"));
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("gun", &leaf.gun)
                .append_pair("role", &leaf.role)
                .append_pair("version", &leaf.version.to_string())
                .append_pair("sha256", &leaf.sha256);
            if let Some(n) = tree_size {
                q.append_pair("tree_size", &n.to_string());
            }
        }
        self.get(url).await
    }

    async fn consistency(&self, old: u64, new: Option<u64>) -> Result<Vec<u8>, FetchError> {
        let mut url = self.url(&format!("{LOG_PREFIX}/consistency"));
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("old", &old.to_string());
            if let Some(n) = new {
                q.append_pair("new", &n.to_string());
            }
        }
        self.get(url).await
    }

    async fn entry_bundle(&self, bundle: &EntryBundle) -> Result<Vec<u8>, FetchError> {
        self.get(self.url(&format!("{LOG_PREFIX}/{}", bundle.path())))
            .await
    }

    async fn metadata(&self, gun: &str, role: &str) -> Result<Vec<u8>, FetchError> {
        self.get(self.metadata_url(gun, &format!("{role}.json")))
            .await
    }

    async fn metadata_by_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256_hex: &str,
    ) -> Result<Vec<u8>, FetchError> {
        self.get(self.metadata_url(gun, &format!("{role}.{sha256_hex}.json")))
            .await
    }
}

/// An error and its sources on one line (reqwest keeps the TLS reason in the chain).
fn error_chain(e: &dyn std::error::Error) -> String {
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
    fn urls() {
        let s = HttpSource::new("https://localhost:4443/", None, Duration::from_secs(5)).unwrap();
        assert_eq!(
            s.url(&format!("{LOG_PREFIX}/checkpoint")).as_str(),
            "https://localhost:4443/_notary_server/log/checkpoint"
        );
        assert_eq!(
            s.metadata_url("docker.io/library/my app", "targets/releases.json")
                .as_str(),
            "https://localhost:4443/v2/docker.io/library/my%20app/_trust/tuf/targets/releases.json"
        );
        let bundle = EntryBundle::new(1234, 5).unwrap();
        assert_eq!(
            s.url(&format!("{LOG_PREFIX}/{}", bundle.path())).as_str(),
            "https://localhost:4443/_notary_server/log/tile/entries/x001/234.p/5"
        );
        let prefixed = HttpSource::new("https://h/notary", None, Duration::from_secs(5)).unwrap();
        assert_eq!(prefixed.url("/v2/").as_str(), "https://h/notary/v2/");
        assert!(HttpSource::new("ftp://h", None, Duration::from_secs(5)).is_err());
    }
}
