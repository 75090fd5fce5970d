//! An `upstream` block as a service's backends, balancing and passive checks.

use std::time::Duration;

use super::server::backend_address;
use crate::model::{Backend, Service, Sourced};
use crate::syntax::{Directive, Word};
use crate::text::parse_time;
use crate::Report;

/// The passive-check settings of the first server (havip has one pair per service).
struct Passive {
    max_fails: Sourced<u32>,
    fail_timeout: Sourced<Duration>,
    /// The server they came from, for messages.
    server: String,
}

/// Fill `service` from the upstream block `upstream`.
pub fn upstream(upstream: &Directive, service: &mut Service, report: &mut Report) {
    let Some(children) = &upstream.block else {
        report.error(&upstream.place(), "expected a block");
        return;
    };
    let mut passive: Option<Passive> = None;
    for directive in children {
        let place = directive.place();
        match directive.name() {
            "server" => server(directive, service, &mut passive, report),
            "hash" => hash(directive, service, report),
            "least_conn" => service.balance = Some(Sourced::new("least_conn", &place)),
            "random" => random(directive, service, report),
            "least_time" => {
                service.balance = Some(Sourced::noted(
                    "least_conn",
                    &place,
                    "least_time is not supported",
                ));
                report.skip(
                    &place,
                    "response times are not tracked; imported as least_conn",
                );
            }
            "zone" | "state" => {}
            "keepalive" | "keepalive_timeout" | "keepalive_requests" | "keepalive_time" => {
                report.skip(&place, "connection reuse applies to HTTP only")
            }
            "resolver" | "resolver_timeout" => report.skip(
                &place,
                "havip does not resolve names; backends are IP addresses",
            ),
            _ => report.skip(&place, "not supported by the importer"),
        }
    }
    if let Some(passive) = passive {
        service.passive.max_fails = Some(passive.max_fails);
        service.passive.fail_timeout = Some(passive.fail_timeout);
    }
}

/// `server ADDRESS [weight=N] [max_conns=N] [max_fails=N] [fail_timeout=T] [backup] [down]`.
fn server(
    directive: &Directive,
    service: &mut Service,
    passive: &mut Option<Passive>,
    report: &mut Report,
) {
    let Some(address) = directive.arg(0) else {
        report.error(&directive.place(), "missing the address");
        return;
    };
    let backend_address = match backend_address(address) {
        Ok(a) => a,
        Err(msg) => {
            report.skip(
                &directive.arg_place(0),
                format!("{address:?}: {msg}; not imported"),
            );
            return;
        }
    };
    let from = directive.place_as(format!("server {address}"));
    let mut backend = Backend::new(
        Sourced::new(backend_address, &directive.arg_place(0)),
        from.clone(),
    );
    let mut this = Passive {
        max_fails: Sourced::noted(1u32, &from, "nginx's default max_fails"),
        fail_timeout: Sourced::noted(
            Duration::from_secs(10),
            &from,
            "nginx's default fail_timeout",
        ),
        server: address.to_string(),
    };
    for arg in directive.args.iter().skip(1) {
        server_param(arg, &mut backend, &mut this, service, report);
    }
    match passive {
        None => *passive = Some(this),
        Some(first) => {
            if (first.max_fails.value, first.fail_timeout.value)
                != (this.max_fails.value, this.fail_timeout.value)
            {
                report.skip(
                    &directive.place(),
                    format!(
                        "max_fails/fail_timeout are per service in havip; those of {} apply",
                        first.server
                    ),
                );
            }
        }
    }
    service.backends.push(backend);
}

/// One `key=value` (or flag) of an upstream server.
fn server_param(
    arg: &Word,
    backend: &mut Backend,
    passive: &mut Passive,
    service: &mut Service,
    report: &mut Report,
) {
    let (key, value) = arg.text.split_once('=').unwrap_or((arg.text.as_str(), ""));
    let place = arg.place_as(format!("server {key}"));
    let bad = |report: &mut Report| {
        report.error(&arg.place_as("server"), format!("{key}={value:?}"));
    };
    match key {
        "weight" => match value.parse::<u32>() {
            Ok(n) => backend.weight = Some(Sourced::new(n, &place)),
            Err(_) => bad(report),
        },
        "max_conns" => match value.parse::<u32>() {
            Ok(0) => {}
            Ok(n) => backend.max_conns = Some(Sourced::new(n, &place)),
            Err(_) => bad(report),
        },
        "max_fails" => match value.parse::<u32>() {
            Ok(n) => passive.max_fails = Sourced::new(n, &place),
            Err(_) => bad(report),
        },
        "fail_timeout" => match parse_time(value, "s", true) {
            Some(t) => passive.fail_timeout = Sourced::new(t, &place),
            None => bad(report),
        },
        "backup" => backend.backup = Some(Sourced::new(true, &place)),
        "down" => backend.weight = Some(Sourced::noted(0, &place, "down: drained")),
        "resolve" | "service" | "route" => report.skip(
            &arg.place_as("server"),
            format!("{key}: havip does not resolve names"),
        ),
        "slow_start" => match parse_time(value, "s", true) {
            Some(t) => {
                if service.slow_start.is_none() {
                    service.slow_start = Some(Sourced::new(t, &place));
                }
            }
            None => bad(report),
        },
        _ => report.skip(&arg.place_as("server"), format!("{key}: not supported")),
    }
}

/// `hash KEY [consistent]`: only the client address is a key havip hashes on.
fn hash(directive: &Directive, service: &mut Service, report: &mut Report) {
    let key = directive.arg(0).unwrap_or("");
    let consistent = directive.arg(1) == Some("consistent");
    if key == "$remote_addr" || key == "$binary_remote_addr" {
        let place = directive.arg_place(0);
        service.balance = Some(if consistent {
            Sourced::new("source_hash", &place)
        } else {
            Sourced::noted(
                "source_hash",
                &place,
                "havip's source hash is always consistent",
            )
        });
    } else {
        report.skip(
            &directive.place(),
            format!("hashing on {key}: havip hashes the client address only; round robin is used"),
        );
    }
}

/// `random [two [METHOD]]`.
fn random(directive: &Directive, service: &mut Service, report: &mut Report) {
    let place = directive.place();
    if directive.arg(0) == Some("two") {
        service.balance = Some(Sourced::new("random_two", &place));
        if let Some(method) = directive.arg(1).filter(|m| *m != "least_conn") {
            report.skip(
                &directive.arg_place(1),
                format!("{method}: havip compares connections (least_conn)"),
            );
        }
    } else {
        service.balance = Some(Sourced::noted(
            "random_two",
            &place,
            "random: havip draws two and takes the less loaded",
        ));
    }
}
