//! The JSON of `/api/status`: the services with their backends and counters (the VRRP
//! instances come from [`crate::vrrp::status`]).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use havip_proxy::backend::CheckOutcome;
use havip_proxy::service::Service;
use serde_json::{json, Value};

/// `/api/status`: the services, their backends and counters.
pub fn services_json(services: &[Arc<Service>], uptime_seconds: f64) -> Value {
    let services: Vec<Value> = services
        .iter()
        .map(|service| {
            let stats = &service.stats;
            let backends: Vec<Value> = service
                .backends
                .iter()
                .map(|backend| {
                    let (outcome, took) = backend.last_check();
                    let result = match outcome {
                        CheckOutcome::Passed => "passed",
                        CheckOutcome::Failed => "failed",
                        CheckOutcome::None => "none",
                    };
                    let spec = backend.spec();
                    json!({
                        "name": spec.name,
                        "address": spec.addr.to_string(),
                        "health": backend.health().as_str(),
                        "weight": backend.weight(),
                        "configured_weight": spec.weight,
                        "backup": spec.backup,
                        "max_conns": spec.max_conns,
                        "active": backend.stats.active.load(Relaxed),
                        "total": backend.stats.total.load(Relaxed),
                        "bytes_to_backend": backend.stats.bytes_to_backend.load(Relaxed),
                        "bytes_from_backend": backend.stats.bytes_from_backend.load(Relaxed),
                        "connect_errors": backend.stats.connect_errors.load(Relaxed),
                        "retries": backend.stats.retries.load(Relaxed),
                        "last_check": { "result": result, "duration_ms": took.as_secs_f64() * 1000.0 },
                    })
                })
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
