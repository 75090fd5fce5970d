//! Prometheus text exposition (format 0.0.4) and the JSON status of the running services,
//! both read straight from the atomic counters the data path keeps: rendering takes no lock
//! the data path uses.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use havip_proxy::backend::{Backend, CheckOutcome};
use havip_proxy::service::Service;
use serde_json::{json, Value};

/// One metric family being written: its header once, then samples.
struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A counter as the signed type the backend table uses (counters never reach 2^63).
fn counter(c: &std::sync::atomic::AtomicU64) -> i64 {
    c.load(Relaxed) as i64
}

/// Label values escape backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

type ServiceGetter = fn(&Service) -> u64;
type BackendGetter = fn(&Backend) -> i64;

pub fn render(services: &[Arc<Service>], uptime_seconds: f64) -> String {
    let mut out = String::with_capacity(4096);
    Family::new(&mut out, "havip_build_info", "gauge", "havip version.").sample(
        "havip_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    Family::new(
        &mut out,
        "havip_uptime_seconds",
        "gauge",
        "Seconds since havip started.",
    )
    .sample("havip_uptime_seconds", &[], format!("{uptime_seconds:.3}"));

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
        let mut f = Family::new(&mut out, name, kind, help);
        for s in services {
            f.sample(name, &[("service", &s.spec.name)], get(s));
        }
    }
    {
        let name = "havip_service_bytes_total";
        let mut f = Family::new(&mut out, name, "counter", "Bytes forwarded, by direction.");
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
            &mut out,
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
        let mut f = Family::new(&mut out, name, kind, help);
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
    {
        let name = "havip_backend_bytes_total";
        let mut f = Family::new(
            &mut out,
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
        let mut f = Family::new(
            &mut out,
            name,
            "counter",
            "Active health checks, by result.",
        );
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
            &mut out,
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
    out
}

/// `/api/status`: the services, their backends and counters.
pub fn status(services: &[Arc<Service>], uptime_seconds: f64) -> Value {
    let services: Vec<Value> = services
        .iter()
        .map(|s| {
            let st = &s.stats;
            let backends: Vec<Value> = s
                .backends
                .iter()
                .map(|b| {
                    let (outcome, took) = b.last_check();
                    let result = match outcome {
                        CheckOutcome::Passed => "passed",
                        CheckOutcome::Failed => "failed",
                        CheckOutcome::None => "none",
                    };
                    json!({
                        "name": b.spec.name,
                        "address": b.spec.addr.to_string(),
                        "health": b.health().as_str(),
                        "weight": b.weight(),
                        "configured_weight": b.spec.weight,
                        "backup": b.spec.backup,
                        "max_conns": b.spec.max_conns,
                        "active": b.stats.active.load(Relaxed),
                        "total": b.stats.total.load(Relaxed),
                        "bytes_to_backend": b.stats.bytes_to_backend.load(Relaxed),
                        "bytes_from_backend": b.stats.bytes_from_backend.load(Relaxed),
                        "connect_errors": b.stats.connect_errors.load(Relaxed),
                        "retries": b.stats.retries.load(Relaxed),
                        "last_check": { "result": result, "duration_ms": took.as_secs_f64() * 1000.0 },
                    })
                })
                .collect();
            json!({
                "name": s.spec.name,
                "listen": s.spec.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "balance": s.spec.balance.as_str(),
                "active": st.active.load(Relaxed),
                "total": st.total.load(Relaxed),
                "queued": st.queued.load(Relaxed),
                "bytes_to_backend": st.bytes_to_backend.load(Relaxed),
                "bytes_from_backend": st.bytes_from_backend.load(Relaxed),
                "bytes_spliced": st.bytes_spliced.load(Relaxed),
                "retries": st.retries.load(Relaxed),
                "refused": {
                    "no_backend": st.no_backend.load(Relaxed),
                    "queue_full": st.queue_full.load(Relaxed),
                    "queue_timeout": st.queue_timeouts.load(Relaxed),
                    "connect_failed": st.connect_failed.load(Relaxed),
                },
                "backends": backends,
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": uptime_seconds,
        "services": services,
    })
}

/// The VRRP instances' metrics, appended to the proxy's.
pub fn render_vrrp(out: &mut String, view: &crate::vrrp::status::VrrpView) {
    use crate::vrrp::status::{state_name, InstanceStatus};
    use havip_vrrp::State;

    let instances = view.snapshot();
    {
        let name = "havip_vrrp_state";
        let mut f = Family::new(
            out,
            name,
            "gauge",
            "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT), 0 for the others.",
        );
        for i in &instances {
            for state in [
                State::Initialize,
                State::Backup,
                State::Master,
                State::Fault,
            ] {
                let value = u8::from(i.state == state);
                f.sample(
                    name,
                    &[("instance", &i.name), ("state", state_name(state))],
                    value,
                );
            }
        }
    }
    type Getter = fn(&InstanceStatus) -> u64;
    let simple: [(&str, &str, &str, Getter); 11] = [
        (
            "havip_vrrp_priority",
            "gauge",
            "Effective priority: configured plus trackers, clamped to 1-254.",
            |i| u64::from(i.effective_priority),
        ),
        (
            "havip_vrrp_configured_priority",
            "gauge",
            "Priority as configured.",
            |i| u64::from(i.configured_priority),
        ),
        (
            "havip_vrrp_holding_addresses",
            "gauge",
            "1 while the virtual addresses are on this node's interface.",
            |i| u64::from(i.holding_addresses),
        ),
        (
            "havip_vrrp_adverts_sent_total",
            "counter",
            "Advertisements sent (one per peer in unicast mode).",
            |i| i.counters.adverts_sent,
        ),
        (
            "havip_vrrp_adverts_received_total",
            "counter",
            "Advertisements that passed every receive check.",
            |i| i.counters.adverts_received,
        ),
        (
            "havip_vrrp_priority_zero_received_total",
            "counter",
            "Priority-0 advertisements received (a master stopping).",
            |i| i.counters.priority_zero_received,
        ),
        (
            "havip_vrrp_master_changes_total",
            "counter",
            "Times the master this node follows (or is) changed.",
            |i| i.master_changes,
        ),
        (
            "havip_vrrp_send_errors_total",
            "counter",
            "Advertisements the kernel refused to send.",
            |i| i.send_errors,
        ),
        (
            "havip_vrrp_address_errors_total",
            "counter",
            "Virtual address adds or removes that failed.",
            |i| i.address_errors,
        ),
        (
            "havip_vrrp_addresses_restored_total",
            "counter",
            "Virtual addresses removed by someone else while master and added back.",
            |i| i.addresses_restored,
        ),
        (
            "havip_vrrp_notify_failures_total",
            "counter",
            "Notify commands that failed or timed out.",
            |i| i.notify_failures,
        ),
    ];
    for (name, kind, help, get) in simple {
        let mut f = Family::new(out, name, kind, help);
        for i in &instances {
            f.sample(name, &[("instance", &i.name)], get(i));
        }
    }
    {
        let name = "havip_vrrp_transitions_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "State transitions, by old and new state.",
        );
        for i in &instances {
            for ((from, to), n) in &i.transitions {
                f.sample(
                    name,
                    &[("instance", &i.name), ("from", from), ("to", to)],
                    n,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_master";
        let mut f = Family::new(
            out,
            name,
            "gauge",
            "1 with the address of the current master as a label (this node's own when master).",
        );
        for i in &instances {
            if let Some(master) = i.master {
                let master = master.to_string();
                f.sample(name, &[("instance", &i.name), ("address", &master)], 1);
            }
        }
    }
    {
        let name = "havip_vrrp_adverts_dropped_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "Advertisements dropped by an instance, by reason (RFC 5798 7.1 receive checks).",
        );
        for i in &instances {
            for (reason, n) in i.counters.drops() {
                f.sample(name, &[("instance", &i.name), ("reason", reason.name())], n);
            }
        }
    }
    {
        let name = "havip_vrrp_receive_dropped_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "Packets dropped by an interface's receive path before any instance, by reason.",
        );
        for r in view.receive_totals() {
            for (reason, n) in r.drops {
                f.sample(
                    name,
                    &[
                        ("interface", &r.interface),
                        ("family", r.family),
                        ("reason", reason),
                    ],
                    n,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_receive_packets_total";
        let mut f = Family::new(out, name, "counter", "VRRP packets read from an interface.");
        for r in view.receive_totals() {
            f.sample(
                name,
                &[("interface", &r.interface), ("family", r.family)],
                r.received,
            );
        }
    }
}
