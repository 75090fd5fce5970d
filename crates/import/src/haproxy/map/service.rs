//! One havip service from a frontend (or listen section) and its backend: listeners,
//! balancing, retries, timeouts, limits, backends, and the per-server settings that are per
//! service in havip.

use super::global::Globals;
use super::section::Settings;
use super::server::{ServerLine, ServerParams};
use super::{health, ProxySection};
use crate::model::{Backend, OrOff, Service, Sourced};
use crate::text::sanitize_name;
use crate::Report;

/// A backend's server with its parameters over `default-server`.
pub type Server = (ServerLine, ServerParams);

/// The service of `frontend` and `backend` (the same section for a listen section); None
/// when no server is usable (reported).
pub fn service(
    frontend: &ProxySection,
    backend: &ProxySection,
    globals: &Globals,
    report: &mut Report,
) -> Option<Service> {
    let name = sanitize_name(&frontend.name);
    let mut service = Service::new(Sourced::new(name, &frontend.head), frontend.head.clone());
    if !std::ptr::eq(frontend, backend) {
        service.also_from.push(backend.head.clone());
    }
    service.listen = frontend.binds.clone();
    warn_http_mode(frontend, backend, report);
    let settings = &backend.settings;
    service.balance = settings
        .balance
        .as_ref()
        .and_then(|b| balance(b, settings, report));
    service.retries = settings.retries.as_ref().map(|r| {
        if settings.redispatch.as_ref().is_some_and(|v| v.value) {
            r.clone()
        } else {
            r.clone()
                .with_note("havip retries on another backend (like option redispatch)")
        }
    });
    timeouts(&mut service, frontend, backend, report);
    service.limits.max_conns = frontend.settings.maxconn.clone();
    service.limits.backlog = frontend.settings.backlog.clone();

    let servers: Vec<Server> = backend
        .servers
        .iter()
        .filter(|s| s.address.is_some())
        .map(|s| (s.clone(), s.params.over(&settings.default_server)))
        .collect();
    backends(&mut service, &servers, report);
    if service.backends.is_empty() {
        report.skip(
            &backend.head,
            "no usable server: the service is not imported",
        );
        return None;
    }
    per_server_settings(&mut service, &servers);
    health::health(&mut service, backend, &servers, globals, report);
    Some(service)
}

/// HTTP mode is imported as TCP: said once per section that asks for it.
fn warn_http_mode(frontend: &ProxySection, backend: &ProxySection, report: &mut Report) {
    for proxy in [frontend, backend] {
        if let Some(mode) = proxy.settings.mode.as_ref().filter(|m| m.value == "http") {
            report.warn(
                &mode.place.with_key("mode http"),
                format!(
                    "{} is in HTTP mode; havip balances TCP, so it is imported as TCP and its HTTP processing is lost",
                    proxy.head.key
                ),
            );
        }
    }
}

/// `balance ALGORITHM[(ARG)]` as havip's `balance`.
fn balance(
    written: &Sourced<String>,
    settings: &Settings,
    report: &mut Report,
) -> Option<Sourced<&'static str>> {
    let algorithm = written
        .value
        .split_whitespace()
        .next()
        .unwrap_or("")
        .split('(')
        .next()
        .unwrap_or("");
    let place = &written.place;
    match algorithm {
        "roundrobin" => Some(Sourced::new("round_robin", place)),
        "static-rr" => Some(Sourced::noted(
            "round_robin",
            place,
            "static-rr: havip's weights change only by config or admin command",
        )),
        "leastconn" => Some(Sourced::new("least_conn", place)),
        "source" => {
            if let Some(hash) = &settings.hash_type {
                if !hash.value.contains("consistent") {
                    report.skip(
                        &hash.place.with_key("hash-type"),
                        "havip's source hash is always consistent (a backend leaving moves only its clients)",
                    );
                }
            }
            Some(Sourced::new("source_hash", place))
        }
        "random" => {
            let draws = algorithm_arg(&written.value).unwrap_or(2);
            if draws != 2 {
                report.skip(
                    &place.with_key("balance"),
                    format!("random({draws}): havip draws two backends and picks the less loaded"),
                );
            }
            Some(Sourced::new("random_two", place))
        }
        "first" => {
            report.skip(
                &place.with_key("balance first"),
                "filling servers in order is not supported; imported as round_robin",
            );
            Some(Sourced::noted(
                "round_robin",
                place,
                "balance first is not supported",
            ))
        }
        "uri" | "url_param" | "hdr" | "rdp-cookie" | "hash" => {
            report.skip(
                &place.with_key(format!("balance {algorithm}")),
                "hashing on request content needs HTTP; imported as round_robin",
            );
            Some(Sourced::noted(
                "round_robin",
                place,
                "content hashing is not supported",
            ))
        }
        _ => {
            report.skip(
                &place.with_key("balance"),
                format!("{algorithm:?} is not supported"),
            );
            None
        }
    }
}

/// The argument of `random(N)`.
fn algorithm_arg(text: &str) -> Option<u32> {
    let open = text.find('(')?;
    let close = text.find(')')?;
    text.get(open + 1..close)?.trim().parse().ok()
}

/// `timeout connect|queue|client|server|tunnel`.
fn timeouts(
    service: &mut Service,
    frontend: &ProxySection,
    backend: &ProxySection,
    report: &mut Report,
) {
    let front = &frontend.settings;
    let back = &backend.settings;
    let timeouts = &mut service.timeouts;
    timeouts.connect = back.timeout_connect.clone();
    timeouts.queue = back.timeout_queue.clone();
    timeouts.client_idle = front.timeout_client.clone();
    timeouts.server_idle = back.timeout_server.clone();
    timeouts.tunnel = match &back.timeout_tunnel {
        Some(t) => Some(t.map(|d| OrOff::On(*d))),
        None if front.timeout_client.is_some() || back.timeout_server.is_some() => {
            Some(Sourced::noted(
                OrOff::Off,
                &backend.head,
                "no timeout tunnel: HAProxy applies timeout client/server to established connections",
            ))
        }
        None => None,
    };
    if front.timeout_client.is_none() {
        report.skip(
            &frontend.head,
            "no timeout client (HAProxy: never); havip's client_idle default (1h) applies",
        );
    }
}

/// Each server with a usable address as a backend.
fn backends(service: &mut Service, servers: &[Server], report: &mut Report) {
    let mut listen_ports = service.listen_ports();
    listen_ports.dedup();
    for (server, params) in servers {
        let Some((ip, port)) = &server.address else {
            continue;
        };
        let port = match (port, listen_ports.as_slice()) {
            (Some(p), _) => *p,
            (None, [only]) => *only,
            (None, _) => {
                report.skip(
                    &server.address_place,
                    "no port: HAProxy uses the port the client connected to; give the backend's port",
                );
                continue;
            }
        };
        let address = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let mut backend = Backend::new(
            Sourced::new(address, &server.address_place),
            server.from.clone(),
        );
        backend.name = Some(server.name.map(|n| sanitize_name(n)));
        backend.weight = params.weight.clone();
        backend.max_conns = params.maxconn.clone();
        backend.backup = params.backup.clone().filter(|b| b.value);
        if let Some(disabled) = params.disabled.as_ref().filter(|d| d.value) {
            backend.weight = Some(Sourced::noted(0, &disabled.place, "disabled: drained"));
        }
        service.backends.push(backend);
    }
}

/// `slowstart`, `on-marked-down shutdown-sessions` and `maxqueue` are per server in HAProxy,
/// per service in havip: the first server's, and the servers' queues added up.
fn per_server_settings(service: &mut Service, servers: &[Server]) {
    service.slow_start = servers.iter().find_map(|(_, p)| p.slowstart.clone());
    service.close_on_down = servers.iter().find_map(|(_, p)| p.shutdown_on_down.clone());
    let queues: Vec<&Sourced<u32>> = servers
        .iter()
        .filter_map(|(_, p)| p.maxqueue.as_ref())
        .collect();
    if let Some(first) = queues.first() {
        let total: u32 = queues
            .iter()
            .map(|q| q.value)
            .fold(0u32, u32::saturating_add);
        service.limits.max_queue = Some(Sourced::noted(
            total,
            &first.place,
            format!(
                "sum of the servers' maxqueue: havip queues per service ({} x {})",
                queues.len(),
                first.value
            ),
        ));
    }
}
