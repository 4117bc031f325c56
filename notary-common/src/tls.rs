//! TLS files and settings for rustls, matching Go Notary's TLS configuration.
//!
//! Go's servers accept TLS 1.2 and 1.3; their TLS 1.2 list is the ECDHE AES-GCM suites (plus
//! CBC suites that rustls does not implement and Go clients do not offer). [`crypto_provider`]
//! selects exactly the GCM suites on top of `ring`. Loading errors name both the file and the
//! config setting that pointed at it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// A problem with a TLS file or with the TLS settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFileError {
    /// The file could not be read.
    #[error("cannot read {setting} file {path}: {source}")]
    Read {
        /// Config setting, e.g. `server.tls_cert_file`.
        setting: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not usable PEM of the expected kind.
    #[error("invalid {setting} file {path}: {reason}")]
    Invalid {
        /// Config setting.
        setting: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The files are individually fine but do not form a usable configuration (for example
    /// the key does not match the certificate).
    #[error("TLS configuration from {settings}: {reason}")]
    Config {
        /// The settings involved.
        settings: String,
        /// Why.
        reason: String,
    },
}

fn read(path: &Path, setting: &str) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, setting: &str, reason: impl Into<String>) -> TlsFileError {
    TlsFileError::Invalid {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads every certificate of a PEM file (a chain, leaf first). Fails if there is none.
pub fn load_certs(
    path: &Path,
    setting: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(path, setting)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, setting, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, setting, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1, unencrypted) of a PEM file.
pub fn load_private_key(
    path: &Path,
    setting: &str,
) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read(path, setting)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(
            path,
            setting,
            "no unencrypted PRIVATE KEY block found (PKCS#8, RSA or EC)",
        ),
        other => invalid(path, setting, format!("bad PEM: {other}")),
    })
}

/// Reads a CA bundle into a root store. Every certificate must parse as a trust anchor.
pub fn load_roots(path: &Path, setting: &str) -> Result<RootCertStore, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, setting)? {
        roots
            .add(cert)
            .map_err(|e| invalid(path, setting, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The `ring` provider restricted to Go Notary's suites: TLS 1.3 AES-GCM and ChaCha20, and
/// TLS 1.2 ECDHE-{ECDSA,RSA} with AES-{128,256}-GCM.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite::*;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        ..ring::default_provider()
    })
}

/// Where a server's TLS material comes from: each file with the setting that named it.
#[derive(Debug, Clone)]
pub struct ServerTlsFiles {
    /// Certificate chain file and its setting (e.g. `server.tls_cert_file`).
    pub cert: (PathBuf, String),
    /// Private key file and its setting.
    pub key: (PathBuf, String),
    /// Client CA file and its setting. When present, client certificates are required and
    /// verified against these CAs only.
    pub client_ca: Option<(PathBuf, String)>,
}

/// Builds a rustls server configuration (TLS 1.2 + 1.3, [`crypto_provider`]) from files.
/// `alpn` lists the protocols to offer, e.g. `[b"h2"]`.
pub fn server_config(files: &ServerTlsFiles, alpn: &[&[u8]]) -> Result<ServerConfig, TlsFileError> {
    let certs = load_certs(&files.cert.0, &files.cert.1)?;
    let key = load_private_key(&files.key.0, &files.key.1)?;
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsFileError::Config {
            settings: "protocol versions".into(),
            reason: e.to_string(),
        })?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some((path, setting)) => {
            let roots = load_roots(path, setting)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(path, setting, format!("cannot verify clients: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsFileError::Config {
            settings: format!("{} and {}", files.cert.1, files.key.1),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::new(ca_params, ca_key);
            let leaf_key = rcgen::KeyPair::generate().unwrap();
            let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .unwrap()
                .signed_by(&leaf_key, &issuer)
                .unwrap();
            let other_key = rcgen::KeyPair::generate().unwrap();
            std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
            std::fs::write(dir.path().join("leaf.crt"), leaf.pem()).unwrap();
            std::fs::write(dir.path().join("leaf.key"), leaf_key.serialize_pem()).unwrap();
            std::fs::write(dir.path().join("other.key"), other_key.serialize_pem()).unwrap();
            std::fs::write(dir.path().join("garbage"), "hello").unwrap();
            Self { dir }
        }
        fn p(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
        fn files(&self, key: &str, ca: Option<&str>) -> ServerTlsFiles {
            ServerTlsFiles {
                cert: (self.p("leaf.crt"), "server.tls_cert_file".into()),
                key: (self.p(key), "server.tls_key_file".into()),
                client_ca: ca.map(|c| (self.p(c), "server.client_ca_file".into())),
            }
        }
    }

    #[test]
    fn loads_certs_keys_and_roots() {
        let pki = Pki::new();
        assert_eq!(load_certs(&pki.p("leaf.crt"), "s").unwrap().len(), 1);
        load_private_key(&pki.p("leaf.key"), "s").unwrap();
        assert_eq!(load_roots(&pki.p("ca.crt"), "s").unwrap().len(), 1);
    }

    #[test]
    fn errors_name_file_and_setting() {
        let pki = Pki::new();
        let err = load_certs(&pki.p("missing.crt"), "server.tls_cert_file").unwrap_err();
        assert!(matches!(err, TlsFileError::Read { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("server.tls_cert_file") && msg.contains("missing.crt"),
            "{msg}"
        );

        let err = load_certs(&pki.p("garbage"), "server.client_ca_file").unwrap_err();
        assert!(matches!(err, TlsFileError::Invalid { .. }));
        assert!(err.to_string().contains("server.client_ca_file"));

        let err = load_private_key(&pki.p("leaf.crt"), "server.tls_key_file").unwrap_err();
        assert!(matches!(err, TlsFileError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("server.tls_key_file"));
    }

    #[test]
    fn server_config_with_and_without_client_auth() {
        let pki = Pki::new();
        let cfg = server_config(&pki.files("leaf.key", Some("ca.crt")), &[b"h2"]).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
        server_config(&pki.files("leaf.key", None), &[]).unwrap();
    }

    #[test]
    fn mismatched_key_is_rejected_naming_both_settings() {
        let pki = Pki::new();
        let err = server_config(&pki.files("other.key", None), &[]).unwrap_err();
        assert!(matches!(err, TlsFileError::Config { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("server.tls_cert_file") && msg.contains("server.tls_key_file"));
    }

    #[test]
    fn provider_has_only_gcm_and_chacha_tls13_suites() {
        let p = crypto_provider();
        assert_eq!(p.cipher_suites.len(), 7);
        assert!(!p
            .cipher_suites
            .contains(&ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256));
    }
}
