//! `proto.KeyManagement`: CreateKey, DeleteKey, GetKeyInfo.

use std::sync::Arc;

use notary_proto::key_management_server::KeyManagement;
use notary_proto::{CreateKeyRequest, GetKeyInfoResponse, KeyId, PublicKey, Void};
use tonic::{Request, Response, Status};

use super::{key_info, require_key_id};
use crate::keystore::{KeyService, KeyStoreError, ServiceError};

/// The KeyManagement service over a [`KeyService`].
#[derive(Debug, Clone)]
pub struct KeyManagementService {
    keys: Arc<KeyService>,
}

impl KeyManagementService {
    /// Serves `keys`.
    pub fn new(keys: Arc<KeyService>) -> Self {
        Self { keys }
    }
}

/// Logs a failed lookup at a level that fits the cause; clients only ever see NOT_FOUND.
pub(crate) fn log_lookup_failure(rpc: &str, key_id: &str, err: &KeyStoreError) {
    match err {
        KeyStoreError::NotFound(_) => tracing::debug!(rpc, key_id, "key not found"),
        KeyStoreError::MissingPassphrase { .. } | KeyStoreError::Undecryptable { .. } => {
            tracing::error!(rpc, key_id, error = %err, "stored key is unusable; answering NOT_FOUND")
        }
        other => {
            tracing::error!(rpc, key_id, error = %other, "key lookup failed; answering NOT_FOUND")
        }
    }
}

#[tonic::async_trait]
impl KeyManagement for KeyManagementService {
    async fn create_key(
        &self,
        request: Request<CreateKeyRequest>,
    ) -> Result<Response<PublicKey>, Status> {
        let req = request.into_inner();
        match self
            .keys
            .create_key(&req.gun, &req.role, &req.algorithm)
            .await
        {
            Ok(public) => {
                let key_id = public.key_id();
                tracing::info!(key_id, gun = %req.gun, role = %req.role, algorithm = %req.algorithm, "CreateKey");
                Ok(Response::new(PublicKey {
                    key_info: Some(key_info(&key_id, public.key_type.as_str())),
                    public_key: public.public,
                }))
            }
            // Go returns a plain error here, which gRPC sends as UNKNOWN.
            Err(e @ ServiceError::UnsupportedAlgorithm(_)) => {
                tracing::info!(gun = %req.gun, role = %req.role, error = %e, "CreateKey rejected");
                Err(Status::unknown(e.to_string()))
            }
            // A valid algorithm that the key device cannot do (e.g. a token without EdDSA).
            Err(ServiceError::Store(e @ KeyStoreError::UnsupportedKeyType(_))) => {
                tracing::error!(gun = %req.gun, role = %req.role, error = %e, "CreateKey rejected");
                Err(Status::failed_precondition(e.to_string()))
            }
            Err(ServiceError::Store(KeyStoreError::Unavailable(reason))) => {
                tracing::error!(gun = %req.gun, role = %req.role, %reason, "CreateKey failed: key device unavailable");
                Err(Status::unavailable(format!(
                    "key device unavailable: {reason}"
                )))
            }
            Err(e) => {
                tracing::error!(gun = %req.gun, role = %req.role, error = %e, "CreateKey failed");
                Err(Status::internal("Key creation failed"))
            }
        }
    }

    async fn delete_key(&self, request: Request<KeyId>) -> Result<Response<Void>, Status> {
        let key_id = require_key_id(Some(request.into_inner()))?;
        match self.keys.delete_key(&key_id).await {
            Ok(()) => {
                tracing::info!(key_id, "DeleteKey");
                Ok(Response::new(Void {}))
            }
            Err(KeyStoreError::Unavailable(reason)) => {
                tracing::error!(key_id, %reason, "DeleteKey failed: key device unavailable");
                Err(Status::unavailable(format!(
                    "Key deletion for KeyID {key_id} failed: key device unavailable: {reason}"
                )))
            }
            Err(e) => {
                tracing::error!(key_id, error = %e, "DeleteKey failed");
                Err(Status::internal(format!(
                    "Key deletion for KeyID {key_id} failed"
                )))
            }
        }
    }

    async fn get_key_info(
        &self,
        request: Request<KeyId>,
    ) -> Result<Response<GetKeyInfoResponse>, Status> {
        let key_id = require_key_id(Some(request.into_inner()))?;
        match self.keys.get_key(&key_id).await {
            Ok(key) => {
                let public = key.public.clone();
                tracing::debug!(key_id, "GetKeyInfo");
                Ok(Response::new(GetKeyInfoResponse {
                    key_info: Some(key_info(&key_id, public.key_type.as_str())),
                    public_key: public.public,
                    role: key.role.clone(),
                }))
            }
            Err(KeyStoreError::Unavailable(reason)) => {
                tracing::error!(key_id, %reason, "GetKeyInfo failed: key device unavailable");
                Err(Status::unavailable(format!(
                    "key {key_id} is in a device that is unavailable: {reason}"
                )))
            }
            Err(e) => {
                log_lookup_failure("GetKeyInfo", &key_id, &e);
                Err(Status::not_found(format!("key {key_id} not found")))
            }
        }
    }
}
