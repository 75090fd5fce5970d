//! Shared helpers of the `health_*` integration tests: building backends and monitors,
//! waiting for a condition with a deadline, a TCP server that can be stopped and started
//! again on the same port. The real `openssl` and `nginx` binaries are in
//! `havip_test_support::external`.
//!
//! Each test binary uses a different subset, hence the allowance for unused items.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use havip_config::service::{BackendSpec, HealthSpec, PassiveSpec};
use havip_proxy::backend::{Backend, HealthInbox};
use havip_proxy::health::{Monitor, Probe};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const MS: Duration = Duration::from_millis(1);

/// A backend of service "test" at `addr`, started up as a service would create it.
pub fn backend(addr: SocketAddr) -> (Arc<Backend>, HealthInbox) {
    let (backend, inbox) = Backend::new(BackendSpec::new(addr), Instant::now(), false);
    (Arc::new(backend), inbox)
}

/// Spawn the monitor of `backend` as backend `index` of `count`.
pub fn spawn_monitor(
    backend: &Arc<Backend>,
    inbox: HealthInbox,
    spec: HealthSpec,
    passive: PassiveSpec,
    index: usize,
    count: usize,
) -> JoinHandle<()> {
    let probe = Probe::new(&spec).expect("valid health spec").map(Arc::new);
    Monitor {
        service: "test".into(),
        backend: backend.clone(),
        inbox,
        spec: Arc::new(spec),
        passive,
        probe,
        index,
        count,
    }
    .spawn()
}

/// Passive health off.
pub fn no_passive() -> PassiveSpec {
    PassiveSpec {
        max_fails: 0,
        fail_timeout: Duration::from_secs(10),
    }
}

/// Polls `cond` every 2 ms until it holds (returns the time it took) or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(2 * MS).await;
    }
}

/// A TCP server on `addr` that accepts and immediately closes every connection, counting
/// them; stopping it (abort + await) closes the listening socket.
pub struct TcpServer {
    pub addr: SocketAddr,
    pub accepts: Arc<std::sync::atomic::AtomicU64>,
    task: JoinHandle<()>,
}

impl TcpServer {
    pub async fn start(addr: SocketAddr) -> TcpServer {
        let listener = TcpListener::bind(addr).await.expect("bind test server");
        let addr = listener.local_addr().expect("local addr");
        let accepts = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = accepts.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                drop(conn);
            }
        });
        TcpServer {
            addr,
            accepts,
            task,
        }
    }

    pub fn accepted(&self) -> u64 {
        self.accepts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Close the listening socket and wait until it is closed.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
