//! Listening sockets and the accept loop of a service.
//!
//! Listeners are bound before anything else starts, so a port conflict fails the start with
//! the address in the error. They may bind to an address this host does not hold yet
//! (`IP_FREEBIND`): a VRRP backup listens on the VIP before it owns it, without the
//! `net.ipv4.ip_nonlocal_bind` sysctl the HAProxy guides ask for.
//!
//! Connection limits are taken *before* accept: at the limit the loop stops accepting and new
//! clients wait in the kernel's backlog instead of being accepted and dropped.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::Service;

/// Bind a TCP listener with an explicit accept backlog.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `[::]:6443` and `0.0.0.0:6443` can then both be listed, as with HAProxy.
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY and the keepalive settings from the listener
    // (Linux copies them when it clones the listening socket), which saves five setsockopt
    // calls on every accepted connection.
    socket.set_tcp_nodelay(true)?;
    crate::service::set_keepalive(&socket2::SockRef::from(&socket))?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// Connection limits a client must get through before it is accepted.
#[derive(Debug, Clone, Default)]
pub struct ConnLimits {
    /// One permit per client connection of the whole process (`[global] max_conns`); `None`
    /// for no limit.
    pub global: Option<Arc<Semaphore>>,
    /// One permit per client connection of this service (its `max_conns`); `None` for no limit.
    pub service: Option<Arc<Semaphore>>,
}

impl ConnLimits {
    /// The permits if every limit has room now; `None` (holding nothing) otherwise.
    fn try_acquire(&self) -> Option<Vec<OwnedSemaphorePermit>> {
        let mut permits = Vec::new();
        for limit in [&self.global, &self.service].into_iter().flatten() {
            permits.push(limit.clone().try_acquire_owned().ok()?);
        }
        Some(permits)
    }

    async fn acquire(&self) -> Vec<OwnedSemaphorePermit> {
        let mut permits = Vec::new();
        for limit in [&self.global, &self.service].into_iter().flatten() {
            // The semaphores are never closed, so acquiring cannot fail.
            if let Ok(permit) = limit.clone().acquire_owned().await {
                permits.push(permit);
            }
        }
        permits
    }
}

/// Accept clients until `stop` is cancelled, handing each to the service on its own task.
pub async fn accept_loop(
    listener: TcpListener,
    service: Arc<Service>,
    limits: ConnLimits,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    service.stats.listeners_running.fetch_add(1, Relaxed);
    // One wait on `stop` around the whole loop: registering a fresh waiter for every accepted
    // client would cost a lock on the token per connection.
    tokio::select! {
        _ = accept_forever(&listener, &service, &limits, &tracker) => {}
        _ = stop.cancelled() => {}
    }
    service.stats.listeners_running.fetch_sub(1, Relaxed);
}

/// Marks a listener stalled while alive; the mark goes when the guard drops, also when the
/// accept loop is cancelled in the middle of a stall.
struct Stalled<'a>(&'a AtomicU32);

impl<'a> Stalled<'a> {
    fn new(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Relaxed);
        Stalled(counter)
    }
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

async fn accept_forever(
    listener: &TcpListener,
    service: &Arc<Service>,
    limits: &ConnLimits,
    tracker: &TaskTracker,
) {
    let stalled = &service.stats.listeners_stalled;
    loop {
        let permits = match limits.try_acquire() {
            Some(permits) => permits,
            None => {
                let _stalled = Stalled::new(stalled);
                limits.acquire().await
            }
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                tracker.spawn(service.clone().serve(stream, peer, Instant::now(), permits));
            }
            Err(error) => {
                // Out of descriptors or memory: back off instead of spinning on the same
                // error; the client stays in the backlog.
                tracing::warn!(service = %service.spec.name, %error, "accept failed");
                let _stalled = Stalled::new(stalled);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
