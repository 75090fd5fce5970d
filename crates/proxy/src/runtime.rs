//! The proxy as a whole: start every service (listeners first, so a bad address fails the
//! start before anything runs), and stop gracefully.
//!
//! Lifecycle: [`Proxy::start`] binds all listeners, builds the services, spawns their health
//! monitors and accept loops. [`Proxy::shutdown`] stops accepting, waits for open
//! connections to finish up to a grace period, then cuts the rest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::HealthInbox;
use crate::health::{Monitor, Probe};
use crate::listener::{accept_loop, bind, ConnLimits};
use crate::service::{DataPath, Service};
use havip_config::service::ServiceSpec;

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

/// Why [`Proxy::start`] could not start; nothing runs when it fails.
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
        source: crate::health::ProbeConfigError,
    },
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    services: Vec<Arc<Service>>,
    listening: Vec<(String, SocketAddr)>,
    stop: CancellationToken,
    connections: TaskTracker,
    accept_loops: Vec<JoinHandle<()>>,
    monitors: Vec<JoinHandle<()>>,
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
        let epoch = Instant::now();
        // Bind everything first: nothing runs unless every address could be taken.
        let mut bound = Vec::new();
        for spec in &config.services {
            let mut listeners = Vec::new();
            for &addr in &spec.listen {
                let listener =
                    bind(addr, spec.limits.backlog).map_err(|source| StartError::Bind {
                        service: spec.name.clone(),
                        addr,
                        source,
                    })?;
                listeners.push(listener);
            }
            // Reads and validates the TLS files of HTTPS checks before anything runs.
            let probe = crate::health::Probe::new(&spec.health).map_err(|source| {
                StartError::HealthCheck {
                    service: spec.name.clone(),
                    source,
                }
            })?;
            bound.push((spec.clone(), listeners, probe.map(Arc::new)));
        }

        let global = config
            .max_conns
            .map(|limit| Arc::new(Semaphore::new(limit as usize)));
        let stop = CancellationToken::new();
        let connections = TaskTracker::new();
        let mut proxy = Proxy {
            services: Vec::new(),
            listening: Vec::new(),
            stop: stop.clone(),
            connections: connections.clone(),
            accept_loops: Vec::new(),
            monitors: Vec::new(),
        };
        for (spec, listeners, probe) in bound {
            let (service, inboxes) = Service::new(spec, config.data_path, epoch);
            let service = Arc::new(service);
            proxy
                .monitors
                .extend(spawn_monitors(&service, inboxes, probe));
            let limits = ConnLimits {
                global: global.clone(),
                service: service
                    .spec
                    .limits
                    .max_conns
                    .map(|limit| Arc::new(Semaphore::new(limit as usize))),
            };
            for listener in listeners {
                if let Ok(addr) = listener.local_addr() {
                    proxy.listening.push((service.spec.name.clone(), addr));
                    tracing::info!(service = %service.spec.name, %addr, "listening");
                }
                proxy.accept_loops.push(tokio::spawn(accept_loop(
                    listener,
                    service.clone(),
                    limits.clone(),
                    stop.clone(),
                    connections.clone(),
                )));
            }
            proxy.services.push(service);
        }
        Ok(proxy)
    }

    /// The running services, in configuration order, for metrics, status and runtime commands.
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// (service name, bound address) of every listener, with ports resolved when 0 was asked.
    pub fn listening(&self) -> &[(String, SocketAddr)] {
        &self.listening
    }

    /// Stop accepting, let open connections finish for up to `grace`, then cut the rest.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        self.stop.cancel();
        for handle in self.accept_loops.drain(..) {
            // The loops end at once on `stop`; their listeners close as they return.
            let _ = handle.await;
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
                for service in &self.services {
                    service.cut_connections();
                }
                self.connections.wait().await;
                left
            }
        };
        for monitor in self.monitors.drain(..) {
            monitor.abort();
        }
        ShutdownReport { open_at_stop, cut }
    }
}

/// One health monitor per backend of `service`, sharing the service's prepared check.
fn spawn_monitors(
    service: &Arc<Service>,
    inboxes: Vec<HealthInbox>,
    probe: Option<Arc<Probe>>,
) -> Vec<JoinHandle<()>> {
    let name: Arc<str> = Arc::from(service.spec.name.as_str());
    let spec = Arc::new(service.spec.health.clone());
    let count = service.backends.len();
    service
        .backends
        .iter()
        .zip(inboxes)
        .enumerate()
        .map(|(index, (backend, inbox))| {
            Monitor {
                service: name.clone(),
                backend: backend.clone(),
                inbox,
                spec: spec.clone(),
                passive: service.spec.passive,
                probe: probe.clone(),
                index,
                count,
            }
            .spawn()
        })
        .collect()
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        for service in &self.services {
            service.cut_connections();
        }
        for monitor in &self.monitors {
            monitor.abort();
        }
    }
}
