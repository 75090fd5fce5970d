//! Listening sockets and the accept loop of a service.
//!
//! Listeners are bound before anything else starts, so a port conflict fails the start with
//! the address in the error. They may bind to an address this host does not hold yet
//! (`IP_FREEBIND`): a VRRP backup listens on the VIP before it owns it, without the
//! `net.ipv4.ip_nonlocal_bind` sysctl the HAProxy guides ask for.
//!
//! Connection limits are taken *before* accept: at the limit the loop stops accepting and new
//! clients wait in the kernel's backlog instead of being accepted and dropped.
//!
//! Lifecycle: a listener's socket lives as long as some config lists its address. A reload
//! that keeps the address swaps the listener's [`Target`] (the new generation of its
//! service) and keeps the socket, so there is no moment without a listener and no client in
//! the backlog is lost; a reload that drops the address stops the loop, which closes it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::{Service, ServiceStats};

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

/// Set a listening socket's accept backlog again (a reload changed `limits.backlog`):
/// listen(2) on a socket that already listens only changes the backlog.
pub fn set_backlog(listener: &TcpListener, backlog: u32) -> io::Result<()> {
    socket2::SockRef::from(listener).listen(i32::try_from(backlog).unwrap_or(i32::MAX))
}

/// What a listener hands its clients to: the current generation of its service and the
/// connection limits that go with it. A reload swaps it; the socket stays.
#[derive(Debug)]
pub struct Target {
    /// The service generation new clients go to.
    pub service: Arc<Service>,
    /// The limits they must get through first.
    pub limits: ConnLimits,
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

/// Accept clients until `stop` is cancelled, handing each to the current generation of the
/// target service on its own task.
pub async fn accept_loop(
    listener: Arc<TcpListener>,
    target: Arc<ArcSwap<Target>>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let mut counted = Running::new(target.load().service.stats.clone());
    // One wait on `stop` around the whole loop: registering a fresh waiter for every accepted
    // client would cost a lock on the token per connection.
    tokio::select! {
        _ = accept_forever(&listener, &target, &mut counted, &tracker) => {}
        _ = stop.cancelled() => {}
    }
}

/// Counts a listener as running on a service's stats while alive, moving the count when a
/// reload gives the address to another service.
struct Running(Arc<ServiceStats>);

impl Running {
    fn new(stats: Arc<ServiceStats>) -> Self {
        stats.listeners_running.fetch_add(1, Relaxed);
        Running(stats)
    }

    fn follow(&mut self, stats: &Arc<ServiceStats>) {
        if !Arc::ptr_eq(&self.0, stats) {
            *self = Running::new(stats.clone());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.listeners_running.fetch_sub(1, Relaxed);
    }
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
    target: &ArcSwap<Target>,
    counted: &mut Running,
    tracker: &TaskTracker,
) {
    loop {
        let current = target.load_full();
        counted.follow(&current.service.stats);
        let stalled = &current.service.stats.listeners_stalled;
        let permits = match current.limits.try_acquire() {
            Some(permits) => permits,
            None => {
                let _stalled = Stalled::new(stalled);
                current.limits.acquire().await
            }
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                // The generation current when the client arrived (a reload may have happened
                // while we waited for a permit or a client).
                let service = target.load().service.clone();
                tracker.spawn(service.serve(stream, peer, Instant::now(), permits));
            }
            Err(error) => {
                // Out of descriptors or memory: back off instead of spinning on the same
                // error; the client stays in the backlog.
                tracing::warn!(service = %current.service.spec.name, %error, "accept failed");
                let _stalled = Stalled::new(stalled);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
