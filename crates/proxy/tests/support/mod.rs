//! Shared helpers of the `health_*` integration tests: building backends and monitors. The
//! servers they check, the waits and the real `openssl` and `nginx` are in
//! `havip_test_support`.
//!
//! Each test binary uses a different subset, hence the allowance for unused items.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use havip_config::service::{BackendSpec, HealthSpec, PassiveSpec};
use havip_proxy::backend::{Backend, HealthInbox};
use havip_proxy::health::{Checks, Monitor, Probe};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const MS: Duration = Duration::from_millis(1);

/// Until `cond` holds, looking every 2 ms for at most `limit`: Some(how long it took).
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    havip_test_support::wait_for_async(2 * MS, limit, || cond().then(|| start.elapsed())).await
}

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
    // Nothing reloads a test's monitor: its checks never change (the monitor keeps them
    // when the sender is gone).
    let (_, watch) = tokio::sync::watch::channel(Arc::new(Checks {
        spec,
        passive,
        probe,
    }));
    Monitor {
        service: "test".into(),
        backend: backend.clone(),
        inbox,
        checks: watch,
        added: false,
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
