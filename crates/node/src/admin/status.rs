//! The JSON of `/api/status`: havip itself, the services with their backends and counters,
//! and the VRRP instances (from [`crate::vrrp::status`]). `havip status` and the stats page
//! read it; its fields are documented in `docs/operations.md`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use havip_proxy::backend::{Backend, CheckOutcome};
use havip_proxy::service::Service;
use serde_json::{json, Value};

use super::{Access, AdminState};

/// The whole of `/api/status`.
pub fn status(state: &AdminState, access: Access) -> Value {
    let uptime = state.started.elapsed().as_secs_f64();
    let mut status = services_json(&state.services(), uptime);
    status["draining"] = state.draining.load(Relaxed).into();
    status["havip"] = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "uptime_seconds": uptime,
        "started_unix_ms": state.started_unix_ms,
        "config_loaded_unix_ms": state.config_loaded_unix_ms.load(Relaxed),
        // What this caller may do: the stats page shows its buttons only when true.
        "commands": access == Access::Local || state.network_commands(),
    });
    status["pid"] = std::process::id().into();
    let source = state.node.config.load();
    status["config"] = json!({
        "path": source.path.as_ref().map(|p| p.display().to_string()),
        "checksum": source.checksum,
        "loaded_at_unix": source.loaded_at_unix,
    });
    if let Some(vrrp) = &state.vrrp {
        status["vrrp"] = vrrp.status_json();
    }
    if let Some(bgp) = &state.node.bgp {
        status["bgp"] = bgp.status_json();
    }
    status
}

/// One backend: its address, administrative state, health, last check, weights, counters.
pub fn backend_json(backend: &Backend) -> Value {
    let (outcome, took) = backend.last_check();
    let result = match outcome {
        CheckOutcome::Passed => "passed",
        CheckOutcome::Failed => "failed",
        CheckOutcome::None => "none",
    };
    let stats = &backend.stats;
    json!({
        "name": backend.spec().name,
        "address": backend.spec().addr.to_string(),
        "admin_state": backend.admin_state().as_str(),
        "health": backend.health().as_str(),
        "available": backend.is_available(),
        "weight": backend.weight(),
        "configured_weight": backend.spec().weight,
        "backup": backend.spec().backup,
        "max_conns": backend.spec().max_conns,
        "active": stats.active.load(Relaxed),
        "total": stats.total.load(Relaxed),
        "bytes_to_backend": stats.bytes_to_backend.load(Relaxed),
        "bytes_from_backend": stats.bytes_from_backend.load(Relaxed),
        "connect_errors": stats.connect_errors.load(Relaxed),
        "retries": stats.retries.load(Relaxed),
        "checks_passed": stats.checks_passed.load(Relaxed),
        "checks_failed": stats.checks_failed.load(Relaxed),
        "went_down": stats.went_down.load(Relaxed),
        "last_check": { "result": result, "duration_ms": took.as_secs_f64() * 1000.0 },
    })
}

/// The services, their backends and counters, with the version and uptime.
pub fn services_json(services: &[Arc<Service>], uptime_seconds: f64) -> Value {
    let services: Vec<Value> = services
        .iter()
        .map(|service| {
            let stats = &service.stats;
            let backends: Vec<Value> = service
                .backends
                .iter()
                .map(|backend| backend_json(backend))
                .collect();
            json!({
                "name": service.spec.name,
                "listen": service.spec.listen.iter().map(|address| address.to_string()).collect::<Vec<_>>(),
                "balance": service.spec.balance.as_str(),
                "active": stats.active.load(Relaxed),
                "total": stats.total.load(Relaxed),
                "queued": stats.queued.load(Relaxed),
                "bytes_to_backend": stats.bytes_to_backend.load(Relaxed),
                "bytes_from_backend": stats.bytes_from_backend.load(Relaxed),
                "bytes_spliced": stats.bytes_spliced.load(Relaxed),
                "retries": stats.retries.load(Relaxed),
                "refused": {
                    "no_backend": stats.no_backend.load(Relaxed),
                    "queue_full": stats.queue_full.load(Relaxed),
                    "queue_timeout": stats.queue_timeouts.load(Relaxed),
                    "connect_failed": stats.connect_failed.load(Relaxed),
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
