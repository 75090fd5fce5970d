//! A running service and the life of one client connection through it.
//!
//! A connection goes: accepted → (queued while every available backend is at its limit) →
//! connect to the picked backend, retrying on another after a failed connect → forward bytes
//! until the end → one log line with its timings, bytes and why it ended (like HAProxy's
//! `option tcplog`).
//!
//! [`Service`] is the shared, read-mostly state of one *generation* of a service: its spec,
//! backends and balancer, fixed for its lifetime. A reload that changes the service starts a
//! new generation with the same [`ServiceStats`] and the same `Backend` objects for the
//! backends it keeps; the listeners hand new clients to the new generation while open
//! connections finish on the one they started on. The only lock is the balancer's, held for
//! one pick; the backend's active count is updated under it so `max_conns` is never exceeded.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{Backend, BackendStats, HealthInbox};
use crate::balance::{slow_start_weight, Balancer, Candidate, Pick, Tried};
use crate::forward::{forward, IdleLimits, Meter, Settings, Transfer};
use havip_config::copy_mode::CopyMode;
use havip_config::service::ServiceSpec;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

/// Counters of one service, shared by its generations; monotonic except `active` and
/// `queued`.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// Client connections open now (queued, connecting or forwarding).
    pub active: AtomicU32,
    /// Client connections accepted since start.
    pub total: AtomicU64,
    /// Clients waiting for a backend slot now.
    pub queued: AtomicU32,
    /// Bytes from clients to the service's backends, counted as they are written.
    pub bytes_to_backend: AtomicU64,
    /// Bytes from the service's backends to clients, counted as they are written.
    pub bytes_from_backend: AtomicU64,
    /// Of the bytes both ways, those moved zero-copy with splice(2).
    pub bytes_spliced: AtomicU64,
    /// Clients closed after waiting `timeouts.queue` in the queue.
    pub queue_timeouts: AtomicU64,
    /// Clients closed because the queue was full.
    pub queue_full: AtomicU64,
    /// Clients closed because no backend was available.
    pub no_backend: AtomicU64,
    /// Clients closed because every connect attempt failed.
    pub connect_failed: AtomicU64,
    /// Connect attempts that were retried (on another backend where possible).
    pub retries: AtomicU64,
    /// Listeners whose accept loop runs (bound and not stopped).
    pub listeners_running: AtomicU32,
    /// Of those, listeners that cannot take a client now: waiting for a connection slot
    /// (`max_conns` reached) or backing off after an accept error.
    pub listeners_stalled: AtomicU32,
}

impl ServiceStats {
    /// Whether every listener of a service with `listeners` addresses is accepting clients:
    /// what the `listener` tracker reports to VRRP.
    pub fn all_listeners_accepting(&self, listeners: usize) -> bool {
        self.listeners_running
            .load(std::sync::atomic::Ordering::Relaxed) as usize
            == listeners
            && self
                .listeners_stalled
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0
    }
}

/// Process-wide settings every service's connections share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPath {
    /// Buffered copies or splice(2) (`[global] copy_mode`).
    pub copy_mode: CopyMode,
    /// Log one line per closed connection.
    pub log_connections: bool,
}

/// One generation of a service as it runs: spec, backends, balancer and counters.
#[derive(Debug)]
pub struct Service {
    /// The configuration of this generation; a reload that changes it starts a new one.
    pub spec: ServiceSpec,
    /// The backends, in the order of `spec.backends` (a backend's index is its position).
    pub backends: Vec<Arc<Backend>>,
    /// The service's counters, read by metrics, status and the listener tracker; shared with
    /// the service's other generations.
    pub stats: Arc<ServiceStats>,
    selector: Mutex<Selector>,
    /// Woken when a backend slot frees, for queued clients.
    slot_freed: Notify,
    /// Set, and `cut_signal` woken, when shutdown's grace period is over.
    cutting: AtomicBool,
    /// Wakes connections that have no backend yet when the service is cut.
    cut_signal: Notify,
    forwarding: Settings,
    log_connections: bool,
}

#[derive(Debug)]
struct Selector {
    balancer: Balancer,
    /// Reused for every pick so a pick allocates nothing.
    candidates: Vec<Candidate>,
}

/// TCP keepalive on both sides: finds peers that vanished without a FIN (power loss, a
/// partition) on long-lived watches, in about 60 s + 6 × 10 s.
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const KEEPALIVE_PROBES: u32 = 6;

/// Why a client got no backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No backend was up with a weight above 0 (backups included).
    NoBackend,
    /// Every backend was full and `max_queue` clients were already waiting.
    QueueFull,
    /// The client waited `timeouts.queue` in the queue without a backend slot freeing.
    QueueTimeout,
    /// Every connect attempt failed, retries included.
    ConnectFailed,
}

impl Refusal {
    /// A short, stable name for the connection log's `end` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoBackend => "no_backend",
            Refusal::QueueFull => "queue_full",
            Refusal::QueueTimeout => "queue_timeout",
            Refusal::ConnectFailed => "connect_failed",
        }
    }
}

/// A backend connection slot: counted in the backend's `active` until dropped.
struct Slot<'a> {
    service: &'a Service,
    index: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.service.backends[self.index]
            .stats
            .active
            .fetch_sub(1, Relaxed);
        if self.service.stats.queued.load(Relaxed) > 0 {
            self.service.slot_freed.notify_one();
        }
    }
}

/// Timings of getting a client to a backend, in milliseconds (what the log shows), kept
/// small because every open connection carries them to its log line.
#[derive(Debug, Default, Clone, Copy)]
struct Timings {
    queued_ms: u32,
    connecting_ms: u32,
    attempts: u32,
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Adds a connection's bytes to its service's and its backend's counters.
struct ConnMeter<'a> {
    service: &'a ServiceStats,
    backend: &'a BackendStats,
}

impl Meter for ConnMeter<'_> {
    fn to_server(&self, bytes: u64) {
        self.service.bytes_to_backend.fetch_add(bytes, Relaxed);
        self.backend.bytes_to_backend.fetch_add(bytes, Relaxed);
    }
    fn to_client(&self, bytes: u64) {
        self.service.bytes_from_backend.fetch_add(bytes, Relaxed);
        self.backend.bytes_from_backend.fetch_add(bytes, Relaxed);
    }
    fn spliced(&self, bytes: u64) {
        self.service.bytes_spliced.fetch_add(bytes, Relaxed);
    }
}

impl Service {
    /// A generation of `spec` over `backends` (one per `spec.backends` entry, in order),
    /// counting into `stats`.
    pub fn new(
        spec: ServiceSpec,
        backends: Vec<Arc<Backend>>,
        stats: Arc<ServiceStats>,
        data_path: DataPath,
    ) -> Self {
        let keys: Vec<(&str, u32)> = spec
            .backends
            .iter()
            .map(|b| (b.name.as_str(), b.weight))
            .collect();
        let selector = Selector {
            balancer: Balancer::new(spec.balance, &keys),
            candidates: Vec::with_capacity(backends.len()),
        };
        Service {
            backends,
            stats,
            selector: Mutex::new(selector),
            slot_freed: Notify::new(),
            cutting: AtomicBool::new(false),
            cut_signal: Notify::new(),
            forwarding: Settings {
                copy_mode: data_path.copy_mode,
                limits: IdleLimits {
                    client: spec.timeouts.client_idle,
                    server: spec.timeouts.server_idle,
                    tunnel: spec.timeouts.tunnel,
                },
            },
            log_connections: data_path.log_connections,
            spec,
        }
    }

    /// A first generation of `spec` with new backends, returning each backend's health inbox
    /// (in backend order) for its monitor. `epoch` is the process start, for slow start at
    /// boot.
    pub fn first(
        spec: ServiceSpec,
        data_path: DataPath,
        epoch: Instant,
    ) -> (Self, Vec<HealthInbox>) {
        let ramp_at_boot = spec.slow_start.is_some() && spec.slow_start_at_boot;
        let mut backends = Vec::with_capacity(spec.backends.len());
        let mut inboxes = Vec::with_capacity(spec.backends.len());
        for backend_spec in &spec.backends {
            let (backend, inbox) = Backend::new(backend_spec.clone(), epoch, ramp_at_boot);
            backends.push(Arc::new(backend));
            inboxes.push(inbox);
        }
        let service = Service::new(spec, backends, Arc::default(), data_path);
        (service, inboxes)
    }

    /// The process-wide settings this generation was built with.
    pub fn forwarding_settings(&self) -> DataPath {
        DataPath {
            copy_mode: self.forwarding.copy_mode,
            log_connections: self.log_connections,
        }
    }

    /// Wake this generation's connections that wait for a backend: after a reload, a queued
    /// client looks again (a backend may have been added).
    pub fn wake_queue(&self) {
        self.slot_freed.notify_waiters();
    }

    /// Close every open connection of the service now (shutdown grace over): the ones still
    /// waiting for a backend and the ones forwarding.
    pub fn cut_connections(&self) {
        self.cutting.store(true, Relaxed);
        self.cut_signal.notify_waiters();
        for backend in &self.backends {
            backend.interrupt_connections();
        }
    }

    /// Handle one accepted client to the end. `permits` (global and service connection
    /// limits) are held until it closes.
    ///
    /// This future is what an open connection costs in memory, so it is kept lean: settings
    /// are read through `self`, getting a backend runs boxed, and forwarding waits on a single
    /// wake-up signal besides its sockets and timer.
    pub async fn serve(
        self: Arc<Self>,
        client: TcpStream,
        peer: SocketAddr,
        accepted: Instant,
        permits: Vec<OwnedSemaphorePermit>,
    ) {
        let _permits = permits;
        let stats = &self.stats;
        stats.active.fetch_add(1, Relaxed);
        stats.total.fetch_add(1, Relaxed);
        let _active = DecrementOnDrop(&stats.active);
        // TCP_NODELAY and keepalive come from the listener (see `listener::bind`).

        let mut timings = Timings::default();
        // Getting a backend takes milliseconds but needs a lot of state (queue wait, connect,
        // timers); boxing it keeps that out of what every open connection carries.
        let connected = Box::pin(self.connect_unless_cut(peer.ip(), &mut timings)).await;
        let (slot, server) = match connected {
            Some(Ok(ok)) => ok,
            Some(Err(refusal)) => {
                self.log_refusal(peer, refusal, &timings, accepted);
                return;
            }
            None => return, // cut while waiting for a backend
        };
        let backend = &self.backends[slot.index];
        let mut transfer = Transfer::default();
        let end = {
            let meter = ConnMeter {
                service: stats,
                backend: &backend.stats,
            };
            let forwarding = forward(&client, &server, &self.forwarding, &meter, &mut transfer);
            tokio::pin!(forwarding);
            loop {
                let interrupted = backend.interrupted();
                tokio::pin!(interrupted);
                // Registered before the checks, so a wake in between is not lost.
                interrupted.as_mut().enable();
                if self.cutting.load(Relaxed) {
                    break "shutdown";
                }
                if backend.is_retired() {
                    break "backend_removed";
                }
                if self.spec.close_on_down && !backend.is_up() {
                    break "backend_down";
                }
                tokio::select! {
                    end = &mut forwarding => break end.as_str(),
                    // Marked down, or cut: look again why (a backend marked down only ends
                    // connections with close_on_down).
                    _ = interrupted => {}
                }
            }
        };
        if self.log_connections {
            tracing::info!(
                target: "havip::conn",
                client = %peer,
                service = %self.spec.name,
                backend = %backend.spec().name,
                queue_ms = timings.queued_ms,
                connect_ms = timings.connecting_ms,
                attempts = timings.attempts,
                total_ms = accepted.elapsed().as_millis() as u64,
                bytes_to_backend = transfer.to_server,
                bytes_from_backend = transfer.to_client,
                end,
                "connection closed"
            );
        }
        drop(slot);
    }

    /// [`Service::connect_to_backend`], or `None` if the service is cut meanwhile.
    async fn connect_unless_cut(
        &self,
        client: IpAddr,
        timings: &mut Timings,
    ) -> Option<Result<(Slot<'_>, TcpStream), Refusal>> {
        let cut = self.cut_signal.notified();
        tokio::pin!(cut);
        // Registered before the check, so a cut in between still wakes us.
        cut.as_mut().enable();
        if self.cutting.load(Relaxed) {
            return None;
        }
        tokio::select! {
            result = self.connect_to_backend(client, timings) => Some(result),
            _ = cut => None,
        }
    }

    fn log_refusal(
        &self,
        peer: SocketAddr,
        refusal: Refusal,
        timings: &Timings,
        accepted: Instant,
    ) {
        let counter = match refusal {
            Refusal::NoBackend => &self.stats.no_backend,
            Refusal::QueueFull => &self.stats.queue_full,
            Refusal::QueueTimeout => &self.stats.queue_timeouts,
            Refusal::ConnectFailed => &self.stats.connect_failed,
        };
        counter.fetch_add(1, Relaxed);
        if self.log_connections {
            tracing::warn!(
                target: "havip::conn",
                client = %peer,
                service = %self.spec.name,
                backend = "-",
                queue_ms = timings.queued_ms,
                connect_ms = timings.connecting_ms,
                attempts = timings.attempts,
                total_ms = accepted.elapsed().as_millis() as u64,
                bytes_to_backend = 0u64,
                bytes_from_backend = 0u64,
                end = refusal.as_str(),
                "connection refused"
            );
        }
    }

    /// Pick a backend (queueing while all are busy) and connect, retrying failed connects on
    /// other backends up to `retries` times.
    async fn connect_to_backend(
        &self,
        client: IpAddr,
        timings: &mut Timings,
    ) -> Result<(Slot<'_>, TcpStream), Refusal> {
        let mut tried = Tried::new();
        let mut connect_started: Option<Instant> = None;
        loop {
            let slot = self.wait_for_slot(client, &tried, timings).await?;
            let backend = &self.backends[slot.index];
            let attempt_start = Instant::now();
            let first_start = *connect_started.get_or_insert(attempt_start);
            timings.attempts += 1;
            let result = connect(backend.addr(), self.spec.timeouts.connect).await;
            timings.connecting_ms = millis(first_start.elapsed());
            match result {
                Ok(stream) => {
                    backend.stats.total.fetch_add(1, Relaxed);
                    return Ok((slot, stream));
                }
                Err(error) => {
                    backend.stats.connect_errors.fetch_add(1, Relaxed);
                    backend.report_connect_failure(Instant::now());
                    tracing::debug!(
                        service = %self.spec.name,
                        backend = %backend.spec().name,
                        %error,
                        "connect failed"
                    );
                    tried.insert(slot.index);
                    drop(slot);
                    if timings.attempts > self.spec.retries {
                        return Err(Refusal::ConnectFailed);
                    }
                    backend.stats.retries.fetch_add(1, Relaxed);
                    self.stats.retries.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Take a connection slot on a backend, waiting in the queue (FIFO, bounded by
    /// `max_queue` and `timeouts.queue`) while every available backend is full.
    async fn wait_for_slot(
        &self,
        client: IpAddr,
        tried: &Tried,
        timings: &mut Timings,
    ) -> Result<Slot<'_>, Refusal> {
        // Newcomers do not overtake clients already queued.
        if self.stats.queued.load(Relaxed) == 0 {
            match self.try_take_slot(client, tried) {
                Pick::Backend(index) => {
                    return Ok(Slot {
                        service: self,
                        index,
                    })
                }
                Pick::NoneAvailable => return Err(Refusal::NoBackend),
                Pick::AllBusy => {}
            }
        }
        let queued = self.stats.queued.fetch_add(1, Relaxed);
        let _in_queue = DecrementOnDrop(&self.stats.queued);
        if queued >= self.spec.limits.max_queue {
            return Err(Refusal::QueueFull);
        }
        let entered = Instant::now();
        let deadline = entered + self.spec.timeouts.queue;
        let result = loop {
            let woken = self.slot_freed.notified();
            tokio::pin!(woken);
            // Register before looking, so a slot freed in between still wakes us.
            woken.as_mut().enable();
            match self.try_take_slot(client, tried) {
                Pick::Backend(index) => {
                    break Ok(Slot {
                        service: self,
                        index,
                    })
                }
                Pick::NoneAvailable => break Err(Refusal::NoBackend),
                Pick::AllBusy => {}
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(Refusal::QueueTimeout);
            }
            // Also look again now and then: a backend coming up or a weight change frees
            // capacity without freeing a slot.
            let recheck = (now + QUEUE_RECHECK).min(deadline);
            let _ = tokio::time::timeout_at(recheck, woken).await;
        };
        timings.queued_ms = timings.queued_ms.saturating_add(millis(entered.elapsed()));
        result
    }

    /// One pick under the balancer lock; on success the backend's active count is already
    /// raised (the caller wraps it in a [`Slot`]).
    fn try_take_slot(&self, client: IpAddr, tried: &Tried) -> Pick {
        let now = Instant::now();
        let mut selector = match self.selector.lock() {
            Ok(guard) => guard,
            // A panic while picking cannot leave the balancer inconsistent in a way that
            // matters (worst case one skewed pick); keep serving.
            Err(poisoned) => poisoned.into_inner(),
        };
        let Selector {
            balancer,
            candidates,
        } = &mut *selector;
        candidates.clear();
        for backend in &self.backends {
            let weight = backend.weight();
            let active = backend.stats.active.load(Relaxed);
            let spec = backend.spec();
            let effective = match self.spec.slow_start {
                Some(ramp) => slow_start_weight(weight, backend.up_for(now), ramp),
                None => weight,
            };
            candidates.push(Candidate {
                available: backend.is_available(),
                full: spec.max_conns.is_some_and(|max| active >= max),
                backup: spec.backup,
                weight: effective,
                active,
            });
        }
        let pick = balancer.pick(candidates, client, tried);
        if let Pick::Backend(index) = pick {
            self.backends[index].stats.active.fetch_add(1, Relaxed);
        }
        pick
    }
}

/// How often a queued client looks again without being woken.
const QUEUE_RECHECK: Duration = Duration::from_millis(200);

struct DecrementOnDrop<'a>(&'a AtomicU32);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Connect to a backend with the same socket options as client sockets: TCP_NODELAY (the
/// proxy forwards what it gets at once; Nagle would delay every small request) and keepalive.
async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    set_keepalive(&socket2::SockRef::from(&socket))?;
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Keepalive probes on a socket (see the constants above).
pub(crate) fn set_keepalive(socket: &socket2::SockRef<'_>) -> std::io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket.set_tcp_keepalive(&keepalive)
}
