//! A TCP forwarder that can simulate a database outage: `cut` closes every
//! open connection and refuses new ones (accepts and drops them), `restore`
//! forwards again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub(super) struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub(super) async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (up, conns) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let target = target.clone();
                    let conn = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().unwrap().push(conn);
                }
            })
        };
        Proxy {
            addr,
            up,
            conns,
            accept,
        }
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(super) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    pub(super) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The outage scenario of every network backend: `store` goes through `proxy`; a cut gives
/// `Unavailable` to reads, writes and the health check, and the store recovers by itself
/// once the proxy forwards again.
pub(super) async fn outage_then_recovery(store: &crate::storage::SqlStore, proxy: &Proxy) {
    use super::fixtures::update;
    use crate::storage::{MetaStore, StoreError};
    let gun = "example.com/outage";
    store
        .update_many(gun, vec![update("root", 1, b"before")])
        .await
        .unwrap();

    proxy.cut();
    let err = store.get_latest(gun, "root").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store
        .update_many(gun, vec![update("root", 2, b"during")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        store.check_health().await,
        Err(StoreError::Unavailable(_))
    ));

    proxy.restore();
    // r2d2 reconnects on its own; allow a few pool timeouts for its backoff.
    let mut recovered = None;
    for _ in 0..5 {
        match store.get_latest(gun, "root").await {
            Ok(file) => {
                recovered = file;
                break;
            }
            Err(StoreError::Unavailable(_)) => continue,
            Err(e) => panic!("unexpected error after restore: {e:?}"),
        }
    }
    assert_eq!(recovered.expect("store recovered").data, b"before");
    store.check_health().await.unwrap();
    store
        .update_many(gun, vec![update("root", 2, b"after")])
        .await
        .unwrap();
}
