//! `grpc.health.v1.Health` with the Go signer's fixed status map.
//!
//! Go sets the statuses once at startup and never changes them (its periodic database check
//! does not feed gRPC health), so this service answers from a constant table: `SERVING` for
//! `""`, `grpc.health.v1.Health.KeyManagement` and `grpc.health.v1.Health.Signer`, and
//! NOT_FOUND `unknown service` (Go's message) for anything else.

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The service names answered with `SERVING`.
pub const SERVING_NAMES: [&str; 3] = [
    "",
    notary_proto::health_names::KEY_MANAGEMENT,
    notary_proto::health_names::SIGNER,
];

/// The health service.
#[derive(Debug, Clone, Default)]
pub struct HealthService;

fn status_of(service: &str) -> Option<ServingStatus> {
    SERVING_NAMES
        .contains(&service)
        .then_some(ServingStatus::Serving)
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        match status_of(&request.get_ref().service) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status as i32,
            })),
            None => Err(Status::not_found("unknown service")),
        }
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // As in Go: an unknown service is reported as SERVICE_UNKNOWN on the stream. The
        // status never changes, so the stream sends one message and stays open.
        let status = status_of(&request.get_ref().service).unwrap_or(ServingStatus::ServiceUnknown);
        let first = tokio_stream::once(Ok(HealthCheckResponse {
            status: status as i32,
        }));
        Ok(Response::new(Box::pin(
            first.chain(tokio_stream::pending()),
        )))
    }
}
