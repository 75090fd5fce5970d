//! Reading `[[service]]` tables: each service, its listeners, timeouts, limits, passive
//! health and backends, and the checks across services (unique names, listeners that cannot
//! both be bound). Active checks are read in [`super::health`].

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{Algorithm, BackendSpec, Limits, PassiveSpec, ServiceSpec, Timeouts};
use crate::address::parse_socket_addr;
use crate::keys;
use crate::reader::{not_one_of, valid_name, Record, TableReader, Written};

/// Every `[[service]]`. A config needs at least one service or VRRP instance.
pub(crate) fn read_services(
    p: &mut Record,
    root: &mut TableReader<'_, '_>,
    has_vrrp: bool,
) -> Vec<ServiceSpec> {
    let tables = root.tables(p, "service", keys::SERVICE.keys);
    if tables.is_empty() && !root.has("service") && !has_vrrp {
        p.add(
            &(0..0),
            "service",
            "nothing to do: define at least one [[service]] to balance or [[vrrp]] instance",
        );
    }
    let mut services = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut listeners: Vec<(SocketAddr, String)> = Vec::new();
    for mut t in tables {
        let service = read_service(p, &mut t);
        let span = t.span();
        if !names.insert(service.name.clone()) {
            p.add(
                &span,
                t.key("name"),
                format!("a service named {:?} is already defined", service.name),
            );
        }
        for addr in &service.listen {
            for (other, owner) in &listeners {
                if listen_conflict(*addr, *other) {
                    p.add(
                        &span,
                        t.key("listen"),
                        format!("{addr} overlaps {other} of service {owner:?}"),
                    );
                }
            }
        }
        listeners.extend(service.listen.iter().map(|a| (*a, service.name.clone())));
        t.finish(p);
        services.push(service);
    }
    services
}

/// Two listeners that cannot both be bound: same port and family, and the same address or
/// either one the wildcard.
fn listen_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Read one service. With problems the spec is partial, but it is still returned so the
/// checks across services (duplicate names, overlapping listeners) report everything.
fn read_service(p: &mut Record, t: &mut TableReader<'_, '_>) -> ServiceSpec {
    let name = t.required_name(p, "service");
    let listen = read_listen(p, t);
    let mut spec = ServiceSpec::new(name, listen, &[]);
    read_options(p, t, &mut spec);
    if let Some(mut tt) = t.table(p, "timeouts", keys::TIMEOUTS.keys) {
        spec.timeouts = read_timeouts(p, &mut tt);
        tt.finish(p);
    }
    if let Some(mut lt) = t.table(p, "limits", keys::LIMITS.keys) {
        spec.limits = read_limits(p, &mut lt);
        lt.finish(p);
    }
    spec.health = super::health::read_health_table(p, t);
    if let Some(mut pt) = t.table(p, "passive", keys::PASSIVE.keys) {
        spec.passive = read_passive(p, &mut pt);
        pt.finish(p);
    }
    spec.backends = read_backends(p, t);
    spec
}

fn read_listen(p: &mut Record, t: &mut TableReader<'_, '_>) -> Vec<SocketAddr> {
    let mut listen = Vec::new();
    match t.strings(p, "listen") {
        Some(list) if !list.is_empty() => {
            for at in &list {
                if let Some(addr) = p.parsed(&t.key("listen"), at, parse_socket_addr) {
                    if listen.contains(&addr) {
                        p.add(&at.span, t.key("listen"), format!("{addr} is listed twice"));
                    }
                    listen.push(addr);
                }
            }
        }
        _ => p.add(
            &t.span(),
            t.key("listen"),
            "missing: give at least one address, e.g. listen = [\"0.0.0.0:8443\"]",
        ),
    }
    listen
}

/// The service's own keys besides its name, listeners and tables.
fn read_options(p: &mut Record, t: &mut TableReader<'_, '_>, spec: &mut ServiceSpec) {
    if let Some(Written { value, span }) = t.string(p, "balance") {
        match parse_algorithm(&value) {
            Some(a) => spec.balance = a,
            None => p.add(
                &span,
                t.key("balance"),
                not_one_of(
                    &value,
                    "a balance algorithm",
                    ALGORITHMS,
                    "use round_robin, least_conn, source_hash or random_two",
                ),
            ),
        }
    }
    if let Some(n) = t.u32(p, "retries", 0..=100) {
        spec.retries = n;
    }
    if let Some(d) = t.duration(p, "slow_start") {
        spec.slow_start = (!d.value.is_zero()).then_some(d.value);
    }
    if let Some(b) = t.bool(p, "slow_start_at_boot") {
        spec.slow_start_at_boot = b;
    }
    if let Some(b) = t.bool(p, "close_on_down") {
        spec.close_on_down = b;
    }
}

/// The balance algorithms by their names (the aliases HAProxy and nginx use are accepted too).
const ALGORITHMS: &[&str] = &["round_robin", "least_conn", "source_hash", "random_two"];

fn parse_algorithm(text: &str) -> Option<Algorithm> {
    match text {
        "round_robin" | "roundrobin" => Some(Algorithm::RoundRobin),
        "least_conn" | "leastconn" => Some(Algorithm::LeastConn),
        "source_hash" | "source" => Some(Algorithm::SourceHash),
        "random_two" | "random" => Some(Algorithm::RandomTwo),
        _ => None,
    }
}

fn read_timeouts(p: &mut Record, t: &mut TableReader<'_, '_>) -> Timeouts {
    let mut out = Timeouts::default();
    if let Some(d) = t.positive_duration(p, "connect") {
        out.connect = d;
    }
    if let Some(d) = t.duration(p, "queue") {
        out.queue = d.value;
    }
    if let Some(d) = t.positive_duration(p, "client_idle") {
        out.client_idle = d;
    }
    if let Some(d) = t.positive_duration(p, "server_idle") {
        out.server_idle = d;
    }
    match t.duration_or_off(p, "tunnel") {
        Some(None) => out.tunnel = None,
        Some(Some(d)) if d.value.is_zero() => p.add(
            &d.span,
            t.key("tunnel"),
            "must be longer than 0, or \"off\"",
        ),
        Some(Some(d)) => out.tunnel = Some(d.value),
        None => {}
    }
    out
}

fn read_limits(p: &mut Record, t: &mut TableReader<'_, '_>) -> Limits {
    let mut out = Limits {
        max_conns: t.u32(p, "max_conns", 1..=10_000_000),
        ..Limits::default()
    };
    if let Some(n) = t.u32(p, "max_queue", 0..=10_000_000) {
        out.max_queue = n;
    }
    if let Some(n) = t.u32(p, "backlog", 1..=65_535) {
        out.backlog = n;
    }
    out
}

fn read_passive(p: &mut Record, t: &mut TableReader<'_, '_>) -> PassiveSpec {
    let mut out = PassiveSpec::default();
    if let Some(n) = t.u32(p, "max_fails", 0..=1000) {
        out.max_fails = n;
    }
    if let Some(d) = t.positive_duration(p, "fail_timeout") {
        out.fail_timeout = d;
    }
    out
}

/// Every `[[service.backend]]`: at least one, names and addresses unique in the service.
fn read_backends(p: &mut Record, t: &mut TableReader<'_, '_>) -> Vec<BackendSpec> {
    let tables = t.tables(p, "backend", keys::BACKEND.keys);
    if tables.is_empty() {
        p.add(
            &t.span(),
            t.key("backend"),
            "missing: add at least one [[service.backend]] with an address",
        );
    }
    let mut backends: Vec<BackendSpec> = Vec::new();
    for mut bt in tables {
        if let Some(backend) = read_backend(p, &mut bt) {
            if backends.iter().any(|b| b.name == backend.name) {
                p.add(
                    &bt.span(),
                    bt.key("name"),
                    format!(
                        "backend name {:?} is used twice in this service",
                        backend.name
                    ),
                );
            }
            if backends.iter().any(|b| b.addr == backend.addr) {
                p.add(
                    &bt.span(),
                    bt.key("address"),
                    format!("{} is listed twice in this service", backend.addr),
                );
            }
            backends.push(backend);
        }
        bt.finish(p);
    }
    backends
}

fn read_backend(p: &mut Record, t: &mut TableReader<'_, '_>) -> Option<BackendSpec> {
    let before = p.count();
    let addr = match t.string(p, "address") {
        Some(at) => p.parsed(&t.key("address"), &at, parse_socket_addr),
        None => {
            p.add(
                &t.span(),
                t.key("address"),
                "missing: every backend needs an address",
            );
            None
        }
    };
    let addr = addr?;
    let mut b = BackendSpec::new(addr);
    if let Some(Written { value, span }) = t.string(p, "name") {
        if valid_name(&value) {
            b.name = value;
        } else {
            p.add(
                &span,
                t.key("name"),
                "use letters, digits, '-', '_' and '.' only",
            );
        }
    }
    if let Some(w) = t.u32(p, "weight", 0..=10_000) {
        b.weight = w;
    }
    b.max_conns = t.u32(p, "max_conns", 1..=10_000_000);
    if let Some(backup) = t.bool(p, "backup") {
        b.backup = backup;
    }
    (p.count() == before).then_some(b)
}
