//! The gRPC server: `proto.KeyManagement`, `proto.Signer` and `grpc.health.v1.Health` over
//! (mutual) TLS.
//!
//! TLS is terminated here rather than by tonic so that every failed handshake (no client
//! certificate, a certificate from another CA, an old protocol version) is logged with the
//! peer address and the reason; the client itself only sees a cancelled call. Handshakes run
//! in their own tasks, so a slow or silent client cannot hold up others.

mod health;
mod key_management;
mod signer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use notary_proto::key_management_server::KeyManagementServer;
use notary_proto::signer_server::SignerServer;
use notary_proto::{Algorithm, KeyId, KeyInfo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::Status;
use tonic_health::pb::health_server::HealthServer;

pub use health::{HealthService, SERVING_NAMES};
pub use key_management::KeyManagementService;
pub use signer::SignerService;

use crate::keystore::KeyService;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn key_info(key_id: &str, key_type: &str) -> KeyInfo {
    KeyInfo {
        key_id: Some(KeyId {
            id: key_id.to_string(),
        }),
        algorithm: Some(Algorithm {
            algorithm: key_type.to_string(),
        }),
    }
}

/// The key ID of a request, or INVALID_ARGUMENT if it is missing or empty.
pub(crate) fn require_key_id(key_id: Option<KeyId>) -> Result<String, Status> {
    match key_id {
        Some(KeyId { id }) if !id.is_empty() => Ok(id),
        _ => Err(Status::invalid_argument("key ID is required")),
    }
}

/// A running signer gRPC server.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, finishes in-flight calls and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), tonic::transport::Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.wait().await
    }

    /// Waits until the server ends (after [`RunningServer::shutdown`], or on a fatal error).
    pub async fn wait(&mut self) -> Result<(), tonic::transport::Error> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

/// Starts serving `keys` on `listener` with the rustls configuration `tls` (which decides
/// whether client certificates are required). Returns once the server task is running.
pub fn start(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    keys: Arc<KeyService>,
) -> std::io::Result<RunningServer> {
    let local_addr = listener.local_addr()?;
    let (conn_tx, conn_rx) = mpsc::channel::<Result<TlsStream<TcpStream>, std::io::Error>>(64);
    tokio::spawn(accept_loop(listener, TlsAcceptor::from(tls), conn_tx));

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .add_service(HealthServer::new(HealthService))
        .add_service(KeyManagementServer::new(KeyManagementService::new(
            keys.clone(),
        )))
        .add_service(SignerServer::new(SignerService::new(keys)));
    let incoming = tokio_stream::wrappers::ReceiverStream::new(conn_rx);
    let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = shutdown_rx.await;
    }));
    Ok(RunningServer {
        local_addr,
        shutdown: Some(shutdown_tx),
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    conns: mpsc::Sender<Result<TlsStream<TcpStream>, std::io::Error>>,
) {
    loop {
        let accepted = tokio::select! {
            // The server dropped the receiver: it has shut down.
            _ = conns.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Typically EMFILE; back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let conns = conns.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    tracing::debug!(%peer, "TLS connection established");
                    let _ = conns.send(Ok(tls)).await;
                }
                // A bare TCP probe (port check, load balancer) closes before saying anything.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    tracing::debug!(%peer, "connection closed before the TLS handshake")
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "TLS handshake failed; connection rejected")
                }
                Err(_) => tracing::warn!(%peer, "TLS handshake timed out; connection dropped"),
            }
        });
    }
}
