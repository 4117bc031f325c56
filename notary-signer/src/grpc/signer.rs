//! `proto.Signer`: Sign.

use std::sync::Arc;

use notary_proto::signer_server::Signer;
use notary_proto::{Algorithm, Signature, SignatureRequest};
use notary_tuf::keys::method_for_key_type;
use tonic::{Request, Response, Status};

use super::key_management::log_lookup_failure;
use super::{key_info, require_key_id};
use crate::keystore::{KeyService, KeyStoreError, ServiceError};

/// The Signer service over a [`KeyService`].
#[derive(Debug, Clone)]
pub struct SignerService {
    keys: Arc<KeyService>,
}

impl SignerService {
    /// Serves `keys`.
    pub fn new(keys: Arc<KeyService>) -> Self {
        Self { keys }
    }
}

#[tonic::async_trait]
impl Signer for SignerService {
    async fn sign(
        &self,
        request: Request<SignatureRequest>,
    ) -> Result<Response<Signature>, Status> {
        let req = request.into_inner();
        // Go dereferences a missing keyID and crashes; answer INVALID_ARGUMENT instead.
        let key_id = require_key_id(req.key_id)?;
        match self.keys.sign(&key_id, &req.content).await {
            Ok((key, signature)) => {
                let key_type = key.key_type().clone();
                tracing::info!(key_id, role = %key.role, gun = %key.gun, "Sign");
                Ok(Response::new(Signature {
                    key_info: Some(key_info(&key_id, key_type.as_str())),
                    algorithm: Some(Algorithm {
                        algorithm: method_for_key_type(&key_type).as_str().to_string(),
                    }),
                    content: signature,
                }))
            }
            Err(ServiceError::Store(KeyStoreError::Unavailable(reason))) => {
                tracing::error!(key_id, %reason, "Sign failed: key device unavailable");
                Err(Status::unavailable(format!(
                    "signing key {key_id} is in a device that is unavailable: {reason}"
                )))
            }
            Err(ServiceError::Store(e)) => {
                log_lookup_failure("Sign", &key_id, &e);
                Err(Status::not_found(format!(
                    "signing key not found: {key_id}"
                )))
            }
            Err(e) => {
                tracing::error!(key_id, error = %e, "Sign failed");
                Err(Status::internal(format!(
                    "Signing failed for KeyID {key_id} on hash {}",
                    String::from_utf8_lossy(&req.content)
                )))
            }
        }
    }
}
