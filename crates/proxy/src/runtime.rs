//! The proxy as a whole: start every service, change them in place on a reload, and stop
//! gracefully.
//!
//! Lifecycle: [`Proxy::start`] prepares and applies the first config. A reload is the same two
//! steps on the running proxy: [`Proxy::prepare`] does everything that can fail (bind the new
//! listen addresses, prepare the health checks) and changes nothing, so a config that cannot
//! be applied whole is rejected whole (dropping the [`Prepared`] closes what it bound); then
//! [`Proxy::apply`], which cannot fail, makes the difference:
//!
//! - a listen address that stays keeps its socket; its accept loop hands new clients to the
//!   new generation of its service (no moment without a listener); new addresses were bound
//!   by `prepare`, before anything old is closed; addresses that go stop accepting last;
//! - a backend that stays (same name and address) keeps its `Backend` object: health,
//!   counters, slow start and runtime weight carry over; its settings are swapped;
//! - a backend that goes gets no new connections; its open ones continue until they end or
//!   the grace period passes; a backend that comes is health-checked and in service after
//!   `rise` passing checks (at once without checks);
//! - balance, timeouts, limits and check settings apply to new connections and the next
//!   checks; open connections are not cut;
//! - a service that goes stops accepting; its connections get the grace period.
//!
//! [`Proxy::shutdown`] stops accepting, waits for open connections to finish up to a grace
//! period, then cuts the rest.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::{Backend, HealthInbox};
use crate::health::{Checks, Monitor, Probe};
use crate::listener::{accept_loop, bind, set_backlog, ConnLimits, Target};
use crate::service::{DataPath, Service, ServiceStats};
use havip_config::service::{BackendSpec, ServiceSpec};

/// Everything the proxy needs to run.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The services to run, each with its listeners and backends.
    pub services: Vec<ServiceSpec>,
    /// Client connections across all services; `None` for no limit beyond descriptors.
    pub max_conns: Option<u32>,
    /// How established connections move their bytes.
    pub data_path: DataPath,
}

/// Why a config cannot be started or applied; nothing changed when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound (address in use, permission, no such address family).
    #[error("service {service:?}: cannot listen on {addr}: {source}")]
    Bind {
        /// The service whose listener failed.
        service: String,
        /// The address it asked for.
        addr: SocketAddr,
        /// What bind(2) or listen(2) said.
        source: std::io::Error,
    },
    /// The health check cannot be prepared: a bad path, host, status range or TLS file.
    #[error("service {service:?}: health check: {source}")]
    HealthCheck {
        /// The service whose check is misconfigured.
        service: String,
        /// What is wrong with the check.
        source: Box<crate::health::ProbeConfigError>,
    },
}

/// The running services, current generations in config order: what metrics, status, runtime
/// commands and trackers read. A reload swaps the whole list at once.
#[derive(Debug, Default)]
pub struct ServiceTable(ArcSwap<Vec<Arc<Service>>>);

impl ServiceTable {
    /// The services now.
    pub fn load(&self) -> Arc<Vec<Arc<Service>>> {
        self.0.load_full()
    }

    /// The current generation of the service called `name`.
    pub fn find(&self, name: &str) -> Option<Arc<Service>> {
        self.0.load().iter().find(|s| s.spec.name == name).cloned()
    }
}

/// A config made ready to apply by [`Proxy::prepare`]: the new addresses bound and the health
/// checks prepared. Dropping it unapplied closes the sockets it bound.
#[derive(Debug)]
pub struct Prepared {
    config: ProxyConfig,
    probes: Vec<Option<Arc<Probe>>>,
    bound: HashMap<SocketAddr, TcpListener>,
}

/// What [`Proxy::apply`] changed, for the log and the reload's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Services that did not exist before.
    pub services_added: Vec<String>,
    /// Services that are gone.
    pub services_removed: Vec<String>,
    /// Services that exist in both, with any setting or backend changed.
    pub services_changed: Vec<String>,
    /// `service/backend` of backends that came.
    pub backends_added: Vec<String>,
    /// `service/backend` of backends that went (drained).
    pub backends_removed: Vec<String>,
    /// Addresses newly listened on.
    pub listeners_added: Vec<SocketAddr>,
    /// Addresses no longer listened on.
    pub listeners_removed: Vec<SocketAddr>,
}

impl ApplyReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == ApplyReport::default()
    }
}

/// One service as the proxy keeps it across reloads.
#[derive(Debug)]
struct Entry {
    current: Arc<Service>,
    stats: Arc<ServiceStats>,
    /// The checks every monitor of the service follows.
    checks: watch::Sender<Arc<Checks>>,
    /// Monitor task per backend, keyed by the backend's identity.
    monitors: HashMap<(String, SocketAddr), JoinHandle<()>>,
    /// The service's `max_conns` semaphore of the current generation.
    limit: Option<Arc<Semaphore>>,
    /// Every generation that may still have connections, to cut them at shutdown.
    generations: Vec<Weak<Service>>,
}

/// One listening socket and its accept loop.
#[derive(Debug)]
struct Listening {
    addr: SocketAddr,
    service: String,
    socket: Arc<TcpListener>,
    target: Arc<ArcSwap<Target>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    table: Arc<ServiceTable>,
    entries: HashMap<String, Entry>,
    listeners: Vec<Listening>,
    /// `[global] max_conns` and its semaphore.
    global: (Option<u32>, Option<Arc<Semaphore>>),
    epoch: Instant,
    started: bool,
    stop: CancellationToken,
    connections: TaskTracker,
    /// Timers that end removed services and backends after their grace period.
    retiring: Vec<JoinHandle<()>>,
    /// Backends a predecessor process knew as down (a binary upgrade): they start down and
    /// come up after `rise` passing checks, instead of starting up on probation.
    known_down: HashSet<BackendKey>,
}

/// A backend by identity: (service name, backend name, address).
pub type BackendKey = (String, String, SocketAddr);

/// What a predecessor process hands the proxy at a binary upgrade.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Its listening sockets, by configured address: adopted instead of bound.
    pub sockets: HashMap<SocketAddr, TcpListener>,
    /// The backends it knew as down.
    pub down: HashSet<BackendKey>,
}

/// What a graceful shutdown found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when accepting stopped.
    pub open_at_stop: usize,
    /// Connections still open when the grace period ended, and therefore cut.
    pub cut: usize,
}

impl Proxy {
    /// Start every service. Must run inside a tokio runtime.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, StartError> {
        Proxy::start_with(config, Inherited::default()).await
    }

    /// Start every service with what a predecessor handed over (a binary upgrade): its
    /// listening sockets are taken for their addresses instead of binding them, and the
    /// backends it knew as down start down.
    pub async fn start_with(
        config: ProxyConfig,
        inherited: Inherited,
    ) -> Result<Proxy, StartError> {
        let mut proxy = Proxy {
            table: Arc::default(),
            entries: HashMap::new(),
            listeners: Vec::new(),
            global: (None, None),
            epoch: Instant::now(),
            started: false,
            stop: CancellationToken::new(),
            connections: TaskTracker::new(),
            retiring: Vec::new(),
            known_down: inherited.down,
        };
        let prepared = proxy.prepare_with(config, inherited.sockets)?;
        proxy.apply(prepared, Duration::ZERO);
        proxy.started = true;
        proxy.known_down.clear();
        Ok(proxy)
    }

    /// Everything of `config` that can fail, changing nothing that runs.
    pub fn prepare(&self, config: ProxyConfig) -> Result<Prepared, StartError> {
        self.prepare_with(config, HashMap::new())
    }

    fn prepare_with(
        &self,
        config: ProxyConfig,
        mut inherited: HashMap<SocketAddr, TcpListener>,
    ) -> Result<Prepared, StartError> {
        let mut probes = Vec::new();
        let mut bound = HashMap::new();
        for spec in &config.services {
            // Reads and validates the TLS files of HTTPS checks before anything changes.
            let probe = Probe::new(&spec.health).map_err(|source| StartError::HealthCheck {
                service: spec.name.clone(),
                source: Box::new(source),
            })?;
            probes.push(probe.map(Arc::new));
            for &addr in &spec.listen {
                if self.listeners.iter().any(|l| l.addr == addr) {
                    continue;
                }
                let socket = match inherited.remove(&addr) {
                    Some(socket) => socket,
                    None => bind(addr, spec.limits.backlog).map_err(|source| StartError::Bind {
                        service: spec.name.clone(),
                        addr,
                        source,
                    })?,
                };
                bound.insert(addr, socket);
            }
        }
        Ok(Prepared {
            config,
            probes,
            bound,
        })
    }

    /// Make the running proxy what `prepared` says (see the module docs). Removed services
    /// and backends keep their open connections for up to `grace`.
    pub fn apply(&mut self, prepared: Prepared, grace: Duration) -> ApplyReport {
        let Prepared {
            config,
            probes,
            mut bound,
        } = prepared;
        let mut report = ApplyReport::default();
        let global = self.global_limit(config.max_conns);
        let mut table = Vec::new();
        let mut targets: HashMap<SocketAddr, Arc<Target>> = HashMap::new();
        for (spec, probe) in config.services.into_iter().zip(probes) {
            let name = spec.name.clone();
            let listen = spec.listen.clone();
            let backlog = spec.limits.backlog;
            let service = self.apply_service(spec, probe, config.data_path, grace, &mut report);
            let entry = &self.entries[&name];
            let target = Arc::new(Target {
                service: service.clone(),
                limits: ConnLimits {
                    global: global.clone(),
                    service: entry.limit.clone(),
                },
            });
            for addr in listen {
                targets.insert(addr, target.clone());
                self.listen_on(addr, &name, backlog, &target, &mut bound, &mut report);
            }
            table.push(service);
        }
        // Addresses no service lists any more stop accepting last.
        self.retiring.retain(|timer| !timer.is_finished());
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.listeners)
            .into_iter()
            .partition(|l| targets.contains_key(&l.addr));
        self.listeners = keep;
        for listening in gone {
            tracing::info!(service = %listening.service, addr = %listening.addr, "no longer listening");
            listening.stop.cancel();
            report.listeners_removed.push(listening.addr);
        }
        self.remove_services(&table, grace, &mut report);
        self.table.0.store(Arc::new(table));
        report
    }

    /// The semaphore of `[global] max_conns`, new when the limit changed (connections that
    /// hold a permit of the old one keep it until they close).
    fn global_limit(&mut self, max_conns: Option<u32>) -> Option<Arc<Semaphore>> {
        if self.global.0 != max_conns || (self.global.1.is_none() && max_conns.is_some()) {
            self.global = (
                max_conns,
                max_conns.map(|limit| Arc::new(Semaphore::new(limit as usize))),
            );
        }
        self.global.1.clone()
    }

    /// The generation of `spec` that new clients go to: the running one when nothing changed,
    /// else a new one over kept and new backends.
    fn apply_service(
        &mut self,
        spec: ServiceSpec,
        probe: Option<Arc<Probe>>,
        data_path: DataPath,
        grace: Duration,
        report: &mut ApplyReport,
    ) -> Arc<Service> {
        let checks = Arc::new(Checks {
            spec: spec.health.clone(),
            passive: spec.passive,
            probe,
        });
        let name = spec.name.clone();
        if !self.entries.contains_key(&name) {
            let (checks_tx, _) = watch::channel(checks);
            let stats = Arc::<ServiceStats>::default();
            self.entries.insert(
                name.clone(),
                Entry {
                    current: Arc::new(Service::new(
                        spec.clone(),
                        Vec::new(),
                        stats.clone(),
                        data_path,
                    )),
                    stats,
                    checks: checks_tx,
                    monitors: HashMap::new(),
                    limit: None,
                    generations: Vec::new(),
                },
            );
            if self.started {
                report.services_added.push(name.clone());
            }
            return self.new_generation(&name, spec, data_path, true, grace, report);
        }
        let entry = &self.entries[&name];
        let same_checks =
            entry.current.spec.health == spec.health && entry.current.spec.passive == spec.passive;
        if !same_checks {
            entry.checks.send_replace(checks);
        }
        if entry.current.spec == spec && entry.current.forwarding_settings() == data_path {
            return entry.current.clone();
        }
        report.services_changed.push(name.clone());
        self.new_generation(&name, spec, data_path, false, grace, report)
    }

    /// A new generation of service `name`: backends kept by identity (reconfigured), new ones
    /// created with their monitors, gone ones drained.
    fn new_generation(
        &mut self,
        name: &str,
        spec: ServiceSpec,
        data_path: DataPath,
        first: bool,
        grace: Duration,
        report: &mut ApplyReport,
    ) -> Arc<Service> {
        let epoch = self.epoch;
        let started = self.started;
        let known_down = &self.known_down;
        let Some(entry) = self.entries.get_mut(name) else {
            unreachable!("apply_service created the entry");
        };
        let old: Vec<Arc<Backend>> = if first {
            Vec::new()
        } else {
            entry.current.backends.clone()
        };
        let count = spec.backends.len();
        let mut backends = Vec::with_capacity(count);
        for (index, backend_spec) in spec.backends.iter().enumerate() {
            let key = (backend_spec.name.clone(), backend_spec.addr);
            match old.iter().find(|b| b.name() == key.0 && b.addr() == key.1) {
                Some(kept) => {
                    kept.reconfigure(backend_spec.clone());
                    backends.push(kept.clone());
                }
                None => {
                    let down_before =
                        known_down.contains(&(name.to_string(), key.0.clone(), key.1));
                    let arrives_down = started || down_before;
                    let backend = new_backend(
                        backend_spec,
                        &spec,
                        epoch,
                        arrives_down,
                        entry,
                        index,
                        count,
                    );
                    if started {
                        report
                            .backends_added
                            .push(format!("{name}/{}", backend_spec.name));
                    }
                    backends.push(backend);
                }
            }
        }
        for gone in old
            .iter()
            .filter(|b| !backends.iter().any(|n| Arc::ptr_eq(n, b)))
        {
            report
                .backends_removed
                .push(format!("{name}/{}", gone.name()));
            if let Some(monitor) = entry.monitors.remove(&(gone.name(), gone.addr())) {
                monitor.abort();
            }
            gone.remove();
            let gone = gone.clone();
            self.retiring.push(tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                gone.retire();
            }));
        }
        if first || entry.current.spec.limits.max_conns != spec.limits.max_conns {
            entry.limit = spec
                .limits
                .max_conns
                .map(|limit| Arc::new(Semaphore::new(limit as usize)));
        }
        let service = Arc::new(Service::new(spec, backends, entry.stats.clone(), data_path));
        entry.current.wake_queue();
        entry.current = service.clone();
        entry.generations.retain(|g| g.strong_count() > 0);
        entry.generations.push(Arc::downgrade(&service));
        service
    }

    /// Point the listener of `addr` at `target`, starting it from `bound` when it is new.
    fn listen_on(
        &mut self,
        addr: SocketAddr,
        service: &str,
        backlog: u32,
        target: &Arc<Target>,
        bound: &mut HashMap<SocketAddr, TcpListener>,
        report: &mut ApplyReport,
    ) {
        if let Some(listening) = self.listeners.iter_mut().find(|l| l.addr == addr) {
            if listening.target.load().service.spec.limits.backlog != backlog {
                if let Err(error) = set_backlog(&listening.socket, backlog) {
                    tracing::warn!(%addr, %error, "cannot change the listen backlog");
                }
            }
            listening.target.store(target.clone());
            listening.service = service.to_string();
            return;
        }
        let Some(socket) = bound.remove(&addr) else {
            // `prepare` bound every address no listener had.
            tracing::error!(%addr, "internal: no socket prepared for a new listener");
            return;
        };
        let socket = Arc::new(socket);
        let local = socket.local_addr().unwrap_or(addr);
        tracing::info!(%service, addr = %local, "listening");
        let stop = self.stop.child_token();
        let target = Arc::new(ArcSwap::new(target.clone()));
        let task = tokio::spawn(accept_loop(
            socket.clone(),
            target.clone(),
            stop.clone(),
            self.connections.clone(),
        ));
        if self.started {
            report.listeners_added.push(addr);
        }
        self.listeners.push(Listening {
            addr,
            service: service.to_string(),
            socket,
            target,
            stop,
            task,
        });
    }

    /// Services no longer in `table`: their monitors stop; their connections are cut after
    /// `grace`.
    fn remove_services(
        &mut self,
        table: &[Arc<Service>],
        grace: Duration,
        report: &mut ApplyReport,
    ) {
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|name| !table.iter().any(|s| &s.spec.name == *name))
            .cloned()
            .collect();
        for name in gone {
            let Some(entry) = self.entries.remove(&name) else {
                continue;
            };
            tracing::info!(service = %name, "service removed; its connections drain");
            report.services_removed.push(name);
            for (_, monitor) in entry.monitors {
                monitor.abort();
            }
            let generations = entry.generations;
            self.retiring.push(tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                for generation in generations.iter().filter_map(Weak::upgrade) {
                    generation.cut_connections();
                }
            }));
        }
    }

    /// The running services, current generations in configuration order.
    pub fn services(&self) -> Arc<Vec<Arc<Service>>> {
        self.table.load()
    }

    /// The service table itself, for readers that must follow reloads.
    pub fn table(&self) -> Arc<ServiceTable> {
        self.table.clone()
    }

    /// (service name, bound address) of every listener, with ports resolved when 0 was asked.
    pub fn listening(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.service.clone(), l.socket.local_addr().unwrap_or(l.addr)))
            .collect()
    }

    /// The listening sockets by configured address, for a binary upgrade to hand over.
    pub fn sockets(&self) -> Vec<(SocketAddr, Arc<TcpListener>)> {
        self.listeners
            .iter()
            .map(|l| (l.addr, l.socket.clone()))
            .collect()
    }

    /// Stop accepting, let open connections finish for up to `grace`, then cut the rest.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        self.stop.cancel();
        for listening in self.listeners.drain(..) {
            // The loops end at once on `stop`.
            let _ = listening.task.await;
        }
        self.connections.close();
        let open_at_stop = self.connections.len();
        if open_at_stop > 0 {
            tracing::info!(open = open_at_stop, grace = ?grace, "draining connections");
        }
        let cut = match tokio::time::timeout(grace, self.connections.wait()).await {
            Ok(()) => 0,
            Err(_) => {
                let left = self.connections.len();
                tracing::warn!(open = left, "grace period over, closing connections");
                self.cut_everything();
                self.connections.wait().await;
                left
            }
        };
        self.abort_tasks();
        ShutdownReport { open_at_stop, cut }
    }

    fn cut_everything(&self) {
        for entry in self.entries.values() {
            for generation in entry.generations.iter().filter_map(Weak::upgrade) {
                generation.cut_connections();
            }
        }
    }

    fn abort_tasks(&mut self) {
        for entry in self.entries.values_mut() {
            for (_, monitor) in entry.monitors.drain() {
                monitor.abort();
            }
        }
        for timer in self.retiring.drain(..) {
            timer.abort();
        }
    }
}

/// A backend of `spec` with its monitor: at start as HAProxy starts servers (up, on
/// probation); `arrives_down` (added by a reload, or known down by a predecessor) as a
/// backend that was never seen up (down until checks pass).
fn new_backend(
    backend_spec: &BackendSpec,
    spec: &ServiceSpec,
    epoch: Instant,
    arrives_down: bool,
    entry: &mut Entry,
    index: usize,
    count: usize,
) -> Arc<Backend> {
    let checked = entry.checks.borrow().probe.is_some();
    let (backend, inbox): (Backend, HealthInbox) = if arrives_down {
        Backend::added(backend_spec.clone(), epoch, checked, Instant::now())
    } else {
        let ramp_at_boot = spec.slow_start.is_some() && spec.slow_start_at_boot;
        Backend::new(backend_spec.clone(), epoch, ramp_at_boot)
    };
    let backend = Arc::new(backend);
    let monitor = Monitor {
        service: Arc::from(spec.name.as_str()),
        backend: backend.clone(),
        inbox,
        checks: entry.checks.subscribe(),
        added: arrives_down,
        index,
        count,
    }
    .spawn();
    entry
        .monitors
        .insert((backend_spec.name.clone(), backend_spec.addr), monitor);
    backend
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut_everything();
        self.abort_tasks();
    }
}
