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
