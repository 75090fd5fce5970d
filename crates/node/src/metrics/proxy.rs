//! The proxy's metric families: per service and per backend.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use havip_proxy::backend::{Backend, CheckOutcome};
use havip_proxy::service::Service;

use super::Family;

type ServiceGetter = fn(&Service) -> u64;
type BackendGetter = fn(&Backend) -> i64;

/// A counter as the signed type the backend table uses (counters never reach 2^63).
fn counter(c: &std::sync::atomic::AtomicU64) -> i64 {
    c.load(Relaxed) as i64
}

/// Every service and backend family, appended to `out`.
pub fn render(out: &mut String, services: &[Arc<Service>]) {
    service_families(out, services);
    backend_families(out, services);
    backend_traffic_and_checks(out, services);
}

fn service_families(out: &mut String, services: &[Arc<Service>]) {
    let service_metrics: [(&str, &str, &str, ServiceGetter); 6] = [
        (
            "havip_service_spliced_bytes_total",
            "counter",
            "Bytes forwarded zero-copy with splice(2), both directions.",
            |s| s.stats.bytes_spliced.load(Relaxed),
        ),
        (
            "havip_service_connections_active",
            "gauge",
            "Client connections open now.",
            |s| u64::from(s.stats.active.load(Relaxed)),
        ),
        (
            "havip_service_connections_total",
            "counter",
            "Client connections accepted.",
            |s| s.stats.total.load(Relaxed),
        ),
        (
            "havip_service_queue_length",
            "gauge",
            "Clients waiting for a backend slot now.",
            |s| u64::from(s.stats.queued.load(Relaxed)),
        ),
        (
            "havip_service_retries_total",
            "counter",
            "Backend connect attempts retried.",
            |s| s.stats.retries.load(Relaxed),
        ),
        (
            "havip_service_backends_up",
            "gauge",
            "Backends currently up.",
            |s| s.backends.iter().filter(|b| b.is_up()).count() as u64,
        ),
    ];
    for (name, kind, help, get) in service_metrics {
        let mut f = Family::new(out, name, kind, help);
        for s in services {
            f.sample(name, &[("service", &s.spec.name)], get(s));
        }
    }
    {
        let name = "havip_service_bytes_total";
        let mut f = Family::new(out, name, "counter", "Bytes forwarded, by direction.");
        for s in services {
            let n = &s.spec.name;
            f.sample(
                name,
                &[("service", n), ("direction", "to_backend")],
                s.stats.bytes_to_backend.load(Relaxed),
            );
            f.sample(
                name,
                &[("service", n), ("direction", "from_backend")],
                s.stats.bytes_from_backend.load(Relaxed),
            );
        }
    }
    {
        let name = "havip_service_refused_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "Clients closed without a backend, by reason.",
        );
        for s in services {
            let st = &s.stats;
            for (reason, counter) in [
                ("no_backend", &st.no_backend),
                ("queue_full", &st.queue_full),
                ("queue_timeout", &st.queue_timeouts),
                ("connect_failed", &st.connect_failed),
            ] {
                f.sample(
                    name,
                    &[("service", &s.spec.name), ("reason", reason)],
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
            |b| i64::from(b.is_up()),
        ),
        (
            "havip_backend_weight",
            "gauge",
            "Weight in effect (0 drains).",
            |b| i64::from(b.weight()),
        ),
        (
            "havip_backend_connections_active",
            "gauge",
            "Connections assigned to the backend now.",
            |b| i64::from(b.stats.active.load(Relaxed)),
        ),
        (
            "havip_backend_connections_total",
            "counter",
            "Connections established to the backend.",
            |b| counter(&b.stats.total),
        ),
        (
            "havip_backend_connect_errors_total",
            "counter",
            "Connect attempts to the backend that failed.",
            |b| counter(&b.stats.connect_errors),
        ),
        (
            "havip_backend_retries_total",
            "counter",
            "Failed connects to the backend retried elsewhere.",
            |b| counter(&b.stats.retries),
        ),
        (
            "havip_backend_down_transitions_total",
            "counter",
            "Times the backend was marked down.",
            |b| counter(&b.stats.went_down),
        ),
        (
            "havip_backend_last_check_success",
            "gauge",
            "1 if the last active check passed, 0 if it failed, -1 before any check.",
            |b| match b.last_check().0 {
                CheckOutcome::Passed => 1,
                CheckOutcome::Failed => 0,
                CheckOutcome::None => -1,
            },
        ),
    ];
    for (name, kind, help, get) in backend_metrics {
        let mut f = Family::new(out, name, kind, help);
        for s in services {
            for b in &s.backends {
                let labels = [
                    ("service", s.spec.name.as_str()),
                    ("backend", b.spec.name.as_str()),
                ];
                f.sample(name, &labels, get(b));
            }
        }
    }
}

fn backend_traffic_and_checks(out: &mut String, services: &[Arc<Service>]) {
    {
        let name = "havip_backend_bytes_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "Bytes forwarded to and from the backend.",
        );
        for s in services {
            for b in &s.backends {
                for (dir, c) in [
                    ("to_backend", &b.stats.bytes_to_backend),
                    ("from_backend", &b.stats.bytes_from_backend),
                ] {
                    f.sample(
                        name,
                        &[
                            ("service", &s.spec.name),
                            ("backend", &b.spec.name),
                            ("direction", dir),
                        ],
                        c.load(Relaxed),
                    );
                }
            }
        }
    }
    {
        let name = "havip_backend_checks_total";
        let mut f = Family::new(out, name, "counter", "Active health checks, by result.");
        for s in services {
            for b in &s.backends {
                for (result, c) in [
                    ("passed", &b.stats.checks_passed),
                    ("failed", &b.stats.checks_failed),
                ] {
                    f.sample(
                        name,
                        &[
                            ("service", &s.spec.name),
                            ("backend", &b.spec.name),
                            ("result", result),
                        ],
                        c.load(Relaxed),
                    );
                }
            }
        }
    }
    {
        let name = "havip_backend_last_check_duration_seconds";
        let mut f = Family::new(
            out,
            name,
            "gauge",
            "Duration of the last active health check.",
        );
        for s in services {
            for b in &s.backends {
                let (_, took) = b.last_check();
                f.sample(
                    name,
                    &[("service", &s.spec.name), ("backend", &b.spec.name)],
                    format!("{:.6}", took.as_secs_f64()),
                );
            }
        }
    }
}
