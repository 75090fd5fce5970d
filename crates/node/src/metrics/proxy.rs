//! The proxy's metric families: per service and per backend.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use havip_proxy::backend::{AdminState, Backend, CheckOutcome};
use havip_proxy::service::Service;

use super::Family;

type ServiceGetter = fn(&Service) -> u64;
type BackendGetter = fn(&Backend) -> i64;

/// A counter as the signed type the backend table uses (counters never reach 2^63).
fn counter(value: &std::sync::atomic::AtomicU64) -> i64 {
    value.load(Relaxed) as i64
}

/// Every service and backend family, appended to `out`.
pub fn render(out: &mut String, services: &[Arc<Service>]) {
    service_families(out, services);
    backend_families(out, services);
    backend_admin_state(out, services);
    backend_traffic_and_checks(out, services);
}

/// `havip_backend_admin_state{state}`: 1 for the state an operator set (ready, drain,
/// maint), 0 for the others, so `== 1` selects and a missing series never hides a state.
fn backend_admin_state(out: &mut String, services: &[Arc<Service>]) {
    let name = "havip_backend_admin_state";
    let mut family = Family::new(
        out,
        name,
        "gauge",
        "Administrative state an operator set: 1 for the one in effect (ready, drain, maint).",
    );
    for service in services {
        for backend in &service.backends {
            let current = backend.admin_state();
            let backend_name = backend.name();
            for state in AdminState::ALL {
                let labels = [
                    ("service", service.spec.name.as_str()),
                    ("backend", backend_name.as_str()),
                    ("state", state.as_str()),
                ];
                family.sample(name, &labels, u8::from(state == current));
            }
        }
    }
}

fn service_families(out: &mut String, services: &[Arc<Service>]) {
    let service_metrics: [(&str, &str, &str, ServiceGetter); 6] = [
        (
            "havip_service_spliced_bytes_total",
            "counter",
            "Bytes forwarded zero-copy with splice(2), both directions.",
            |service| service.stats.bytes_spliced.load(Relaxed),
        ),
        (
            "havip_service_connections_active",
            "gauge",
            "Client connections open now.",
            |service| u64::from(service.stats.active.load(Relaxed)),
        ),
        (
            "havip_service_connections_total",
            "counter",
            "Client connections accepted.",
            |service| service.stats.total.load(Relaxed),
        ),
        (
            "havip_service_queue_length",
            "gauge",
            "Clients waiting for a backend slot now.",
            |service| u64::from(service.stats.queued.load(Relaxed)),
        ),
        (
            "havip_service_retries_total",
            "counter",
            "Backend connect attempts retried.",
            |service| service.stats.retries.load(Relaxed),
        ),
        (
            "havip_service_backends_up",
            "gauge",
            "Backends currently up.",
            |service| {
                service
                    .backends
                    .iter()
                    .filter(|backend| backend.is_up())
                    .count() as u64
            },
        ),
    ];
    for (name, kind, help, get) in service_metrics {
        let mut family = Family::new(out, name, kind, help);
        for service in services {
            family.sample(name, &[("service", &service.spec.name)], get(service));
        }
    }
    {
        let name = "havip_service_bytes_total";
        let mut family = Family::new(out, name, "counter", "Bytes forwarded, by direction.");
        for service in services {
            let service_name = &service.spec.name;
            family.sample(
                name,
                &[("service", service_name), ("direction", "to_backend")],
                service.stats.bytes_to_backend.load(Relaxed),
            );
            family.sample(
                name,
                &[("service", service_name), ("direction", "from_backend")],
                service.stats.bytes_from_backend.load(Relaxed),
            );
        }
    }
    {
        let name = "havip_service_refused_total";
        let mut family = Family::new(
            out,
            name,
            "counter",
            "Clients closed without a backend, by reason.",
        );
        for service in services {
            let stats = &service.stats;
            for (reason, counter) in [
                ("no_backend", &stats.no_backend),
                ("queue_full", &stats.queue_full),
                ("queue_timeout", &stats.queue_timeouts),
                ("connect_failed", &stats.connect_failed),
            ] {
                family.sample(
                    name,
                    &[("service", &service.spec.name), ("reason", reason)],
                    counter.load(Relaxed),
                );
            }
        }
    }
}

fn backend_families(out: &mut String, services: &[Arc<Service>]) {
    let backend_metrics: [(&str, &str, &str, BackendGetter); 8] = [
        (
            "havip_backend_up",
            "gauge",
            "1 while the backend is up (healthy), else 0.",
            |backend| i64::from(backend.is_up()),
        ),
        (
            "havip_backend_weight",
            "gauge",
            "Weight in effect: the configured one or the runtime one (0 takes no new connections).",
            |backend| i64::from(backend.weight()),
        ),
        (
            "havip_backend_connections_active",
            "gauge",
            "Connections assigned to the backend now.",
            |backend| i64::from(backend.stats.active.load(Relaxed)),
        ),
        (
            "havip_backend_connections_total",
            "counter",
            "Connections established to the backend.",
            |backend| counter(&backend.stats.total),
        ),
        (
            "havip_backend_connect_errors_total",
            "counter",
            "Connect attempts to the backend that failed.",
            |backend| counter(&backend.stats.connect_errors),
        ),
        (
            "havip_backend_retries_total",
            "counter",
            "Failed connects to the backend retried elsewhere.",
            |backend| counter(&backend.stats.retries),
        ),
        (
            "havip_backend_down_transitions_total",
            "counter",
            "Times the backend was marked down.",
            |backend| counter(&backend.stats.went_down),
        ),
        (
            "havip_backend_last_check_success",
            "gauge",
            "1 if the last active check passed, 0 if it failed, -1 before any check.",
            |backend| match backend.last_check().0 {
                CheckOutcome::Passed => 1,
                CheckOutcome::Failed => 0,
                CheckOutcome::None => -1,
            },
        ),
    ];
    for (name, kind, help, get) in backend_metrics {
        let mut family = Family::new(out, name, kind, help);
        for service in services {
            for backend in &service.backends {
                let spec = backend.spec();
                let labels = [
                    ("service", service.spec.name.as_str()),
                    ("backend", spec.name.as_str()),
                ];
                family.sample(name, &labels, get(backend));
            }
        }
    }
}

fn backend_traffic_and_checks(out: &mut String, services: &[Arc<Service>]) {
    {
        let name = "havip_backend_bytes_total";
        let mut family = Family::new(
            out,
            name,
            "counter",
            "Bytes forwarded to and from the backend.",
        );
        for service in services {
            for backend in &service.backends {
                for (direction, bytes) in [
                    ("to_backend", &backend.stats.bytes_to_backend),
                    ("from_backend", &backend.stats.bytes_from_backend),
                ] {
                    family.sample(
                        name,
                        &[
                            ("service", &service.spec.name),
                            ("backend", &backend.spec().name),
                            ("direction", direction),
                        ],
                        bytes.load(Relaxed),
                    );
                }
            }
        }
    }
    {
        let name = "havip_backend_checks_total";
        let mut family = Family::new(out, name, "counter", "Active health checks, by result.");
        for service in services {
            for backend in &service.backends {
                for (result, count) in [
                    ("passed", &backend.stats.checks_passed),
                    ("failed", &backend.stats.checks_failed),
                ] {
                    family.sample(
                        name,
                        &[
                            ("service", &service.spec.name),
                            ("backend", &backend.spec().name),
                            ("result", result),
                        ],
                        count.load(Relaxed),
                    );
                }
            }
        }
    }
    {
        let name = "havip_backend_last_check_duration_seconds";
        let mut family = Family::new(
            out,
            name,
            "gauge",
            "Duration of the last active health check.",
        );
        for service in services {
            for backend in &service.backends {
                let (_, took) = backend.last_check();
                family.sample(
                    name,
                    &[
                        ("service", &service.spec.name),
                        ("backend", &backend.spec().name),
                    ],
                    format!("{:.6}", took.as_secs_f64()),
                );
            }
        }
    }
}
