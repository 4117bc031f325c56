//! [`CryptoService`] over notary-signer's gRPC API (Go `signer/client/signer_trust.go`),
//! spec server.md §12 and signer-and-tuf.md §1.5.
//!
//! One lazily connected [`Channel`] is shared by the `KeyManagement`, `Signer` and health
//! clients, so every call reuses the same HTTP/2 connection, and the server starts while the
//! signer is down (the first call then fails fast with `Unavailable`).
//!
//! Error mapping: gRPC `NotFound` becomes [`CryptoError::NotFound`]; `Unavailable`,
//! `Cancelled` and `DeadlineExceeded`, and `Unknown` statuses made locally from a transport
//! error (how a connection the signer dropped after refusing our certificate shows up) become
//! [`CryptoError::Unavailable`]; everything else, including `Unknown` statuses the signer
//! sent, becomes [`CryptoError::Other`]. No deadline is set on key and signing calls, like
//! Go.
//!
//! Key lookups: signing asks `GetKeyInfo` for every key before `Sign` (as Go does), so each
//! server signature would cost two round trips. Keys the signer reported as present are
//! remembered for [`KEY_INFO_TTL`] (at most [`KEY_INFO_CAPACITY`] of them); a `Sign` that
//! answers `NotFound` forgets the key at once. Absent keys are never remembered, so a key
//! created on the signer is seen immediately; a key deleted on the signer may still be
//! reported present for up to the TTL, and signing with it then fails with `NotFound`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notary_proto::key_management_client::KeyManagementClient;
use notary_proto::signer_client::SignerClient;
use notary_proto::{CreateKeyRequest, KeyId, SignatureRequest};
use notary_tuf::{CryptoError, CryptoService, HeldKey, KeyType, PublicKey};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How long one health check may take (Go: 10 s).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// The health service names Go's notary-server requires to be `SERVING`, in the order it asks.
pub const HEALTH_SERVICES: [&str; 2] = [
    notary_proto::health_names::KEY_MANAGEMENT,
    notary_proto::health_names::SIGNER,
];

/// How long a key the signer reported as present is remembered.
pub const KEY_INFO_TTL: Duration = Duration::from_secs(30);
/// Most keys remembered at once; the memory is emptied when full.
pub const KEY_INFO_CAPACITY: usize = 10_000;

/// Keys the signer recently reported as present: ID -> (what it said, when asked).
type KeyInfoCache = Mutex<HashMap<String, (HeldKey, Instant)>>;

/// The remote trust service: notary-signer reached over mutual TLS.
#[derive(Debug, Clone)]
pub struct RemoteCryptoService {
    channel: Channel,
    target: String,
    key_info: Arc<KeyInfoCache>,
}

impl RemoteCryptoService {
    /// Prepares a lazily connected, TLS-protected channel to `hostname:port`.
    ///
    /// `hostname` is both the dial target and the name the signer's certificate must carry
    /// (a SAN), as in Go. `ca_pem` is the CA bundle that signed the signer's certificate
    /// (`trust_service.tls_ca_file`); without it only the roots enabled through tonic's
    /// `tls-*-roots` features are trusted, and this build enables none, so in practice
    /// the CA is required. `client_identity` is the
    /// (certificate PEM, key PEM) pair for mutual TLS. Nothing is dialled here; must be called
    /// inside a Tokio runtime because the channel's worker task is spawned now.
    pub fn connect(
        hostname: &str,
        port: u16,
        ca_pem: Option<Vec<u8>>,
        client_identity: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Self, String> {
        if hostname.is_empty() {
            return Err("trust_service.hostname is empty".into());
        }
        // A bare IPv6 literal needs brackets inside a URI authority.
        let host = if hostname.contains(':') && !hostname.starts_with('[') {
            format!("[{hostname}]")
        } else {
            hostname.to_string()
        };
        let target = format!("{host}:{port}");
        let mut tls = ClientTlsConfig::new()
            .domain_name(hostname.trim_start_matches('[').trim_end_matches(']'));
        tls = match ca_pem {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
            // Go falls back to the system roots; this only helps if a tonic `tls-*-roots`
            // feature is enabled (none is, to keep the build lean).
            None => tls.with_enabled_roots(),
        };
        if let Some((cert, key)) = client_identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let endpoint = Endpoint::from_shared(format!("https://{target}"))
            .map_err(|e| format!("invalid signer address {target}: {e}"))?
            .tls_config(tls)
            .map_err(|e| format!("invalid TLS configuration for the signer: {e}"))?;
        Ok(RemoteCryptoService {
            channel: endpoint.connect_lazy(),
            target,
            key_info: Arc::default(),
        })
    }

    /// Wraps an existing channel (e.g. one built by a test with its own settings).
    pub fn from_channel(channel: Channel, target: impl Into<String>) -> Self {
        RemoteCryptoService {
            channel,
            target: target.into(),
            key_info: Arc::default(),
        }
    }

    /// `host:port` this client dials.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Checks that the signer reports `SERVING` for both `grpc.health.v1.Health.KeyManagement`
    /// and `grpc.health.v1.Health.Signer`, each within [`HEALTH_TIMEOUT`]. The error text
    /// names the failing service.
    pub async fn health(&self) -> Result<(), String> {
        let mut client = HealthClient::new(self.channel.clone());
        for service in HEALTH_SERVICES {
            let request = HealthCheckRequest {
                service: service.to_string(),
            };
            let reply = tokio::time::timeout(HEALTH_TIMEOUT, client.check(request))
                .await
                .map_err(|_| format!("health check of {service} timed out"))?
                .map_err(|s| format!("health check of {service} failed: {}", rpc_error(&s)))?;
            let status = reply.into_inner().status;
            if status != ServingStatus::Serving as i32 {
                let name = ServingStatus::try_from(status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("UNKNOWN");
                return Err(format!("{service} is {name}, not SERVING"));
            }
        }
        Ok(())
    }

    fn keys(&self) -> KeyManagementClient<Channel> {
        KeyManagementClient::new(self.channel.clone())
    }

    fn signer(&self) -> SignerClient<Channel> {
        SignerClient::new(self.channel.clone())
    }

    fn key_info(&self) -> std::sync::MutexGuard<'_, HashMap<String, (HeldKey, Instant)>> {
        // Map operations cannot be left half-done by a panic; keep serving.
        self.key_info.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remembered_key(&self, key_id: &str) -> Option<HeldKey> {
        let mut cache = self.key_info();
        match cache.get(key_id) {
            Some((held, at)) if at.elapsed() < KEY_INFO_TTL => Some(held.clone()),
            Some(_) => {
                cache.remove(key_id);
                None
            }
            None => None,
        }
    }

    fn remember_key(&self, key_id: &str, held: &HeldKey) {
        let mut cache = self.key_info();
        if cache.len() >= KEY_INFO_CAPACITY {
            cache.clear();
        }
        cache.insert(key_id.to_string(), (held.clone(), Instant::now()));
    }
}

/// Go's rendering of a gRPC error, which clients may end up displaying.
fn rpc_error(s: &Status) -> String {
    format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
}

/// Maps a gRPC status to the [`CryptoError`] kinds the domain logic distinguishes.
pub fn map_status(s: &Status) -> CryptoError {
    match s.code() {
        Code::NotFound => CryptoError::NotFound(s.message().to_string()),
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => {
            CryptoError::Unavailable(rpc_error(s))
        }
        // A status with a source error was made locally from a broken connection (e.g. the
        // signer dropped it after refusing our certificate), not sent by the signer.
        Code::Unknown if std::error::Error::source(s).is_some() => {
            CryptoError::Unavailable(rpc_error(s))
        }
        _ => CryptoError::Other(rpc_error(s)),
    }
}

#[async_trait::async_trait]
impl CryptoService for RemoteCryptoService {
    async fn create_key(
        &self,
        gun: &str,
        role: &str,
        key_type: &KeyType,
    ) -> Result<PublicKey, CryptoError> {
        let reply = self
            .keys()
            .create_key(CreateKeyRequest {
                algorithm: key_type.as_str().to_string(),
                gun: gun.to_string(),
                role: role.to_string(),
            })
            .await
            .map_err(|s| map_status(&s))?
            .into_inner();
        let algorithm = reply
            .key_info
            .and_then(|i| i.algorithm)
            .map(|a| a.algorithm)
            .ok_or_else(|| CryptoError::Other("signer reply lacks keyInfo.algorithm".into()))?;
        // Like Go, trust only (algorithm, public bytes): the key ID is recomputed from them by
        // `PublicKey::key_id`, and the ID the signer sent is ignored.
        Ok(PublicKey::new(KeyType::parse(&algorithm), reply.public_key))
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<(PublicKey, String)>, CryptoError> {
        Ok(self
            .get_key_info(key_id)
            .await?
            .map(|held| (held.public, held.role)))
    }

    async fn get_key_info(&self, key_id: &str) -> Result<Option<HeldKey>, CryptoError> {
        if let Some(known) = self.remembered_key(key_id) {
            return Ok(Some(known));
        }
        let reply = match self
            .keys()
            .get_key_info(KeyId {
                id: key_id.to_string(),
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(map_status(&s)),
        };
        let algorithm = reply
            .key_info
            .and_then(|i| i.algorithm)
            .map(|a| a.algorithm)
            .ok_or_else(|| CryptoError::Other("signer reply lacks keyInfo.algorithm".into()))?;
        let held = HeldKey {
            public: PublicKey::new(KeyType::parse(&algorithm), reply.public_key),
            role: reply.role,
            // GetKeyInfo carries no GUN (Go's wire format); the server's own record of
            // which GUN it asked the key for decides instead (domain::keys::GunKeyGate).
            gun: None,
        };
        self.remember_key(key_id, &held);
        Ok(Some(held))
    }

    async fn sign(&self, key_id: &str, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let reply = self
            .signer()
            .sign(SignatureRequest {
                key_id: Some(KeyId {
                    id: key_id.to_string(),
                }),
                content: msg.to_vec(),
            })
            .await
            .map_err(|s| {
                if s.code() == Code::NotFound {
                    self.key_info().remove(key_id);
                }
                map_status(&s)
            })?;
        Ok(reply.into_inner().content)
    }

    async fn delete_key(&self, key_id: &str) -> Result<(), CryptoError> {
        self.key_info().remove(key_id);
        self.keys()
            .delete_key(KeyId {
                id: key_id.to_string(),
            })
            .await
            .map_err(|s| map_status(&s))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(
            map_status(&Status::not_found("key abc not found")),
            CryptoError::NotFound("key abc not found".into())
        );
        assert!(matches!(
            map_status(&Status::unavailable("connection refused")),
            CryptoError::Unavailable(m) if m.contains("Unavailable") && m.contains("connection refused")
        ));
        assert!(matches!(
            map_status(&Status::cancelled("x")),
            CryptoError::Unavailable(_)
        ));
        assert!(matches!(
            map_status(&Status::internal("Key creation failed")),
            CryptoError::Other(m) if m.contains("Key creation failed")
        ));
        assert!(matches!(
            map_status(&Status::unknown(
                "algorithm rsa not supported for create key"
            )),
            CryptoError::Other(_)
        ));
        let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let local = Status::from_error(Box::new(broken));
        assert_eq!(local.code(), Code::Unknown);
        assert!(matches!(map_status(&local), CryptoError::Unavailable(_)));
    }

    #[tokio::test]
    async fn connect_is_lazy_and_validates_address() {
        // Port 1 on loopback is not listening: constructing must still succeed.
        let c = RemoteCryptoService::connect("127.0.0.1", 1, None, None).unwrap();
        assert_eq!(c.target(), "127.0.0.1:1");
        let v6 = RemoteCryptoService::connect("::1", 7899, None, None).unwrap();
        assert_eq!(v6.target(), "[::1]:7899");
        assert!(RemoteCryptoService::connect("", 7899, None, None).is_err());
        assert!(RemoteCryptoService::connect("bad host", 7899, None, None).is_err());
    }
}
