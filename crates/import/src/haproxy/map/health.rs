//! A backend's health checks as the service's `[service.health]`: the kind of check (HAProxy
//! checks only servers marked `check`), its HTTP request and TLS, intervals, rise and fall,
//! and the timeout HAProxy would give it. havip has one set of check settings per service:
//! the first checked server's apply, and servers that differ are reported.

use std::time::Duration;

use havip_config::place::Place;

use super::global::Globals;
use super::section::{CheckOpt, Settings};
use super::server::ServerParams;
use super::service::Server;
use super::ProxySection;
use crate::model::{Check, Health, Service, Sourced};
use crate::Report;

/// HAProxy's check interval when `inter` is not written.
const DEFAULT_INTER: Duration = Duration::from_secs(2);

/// Fill `service.health` from the backend's settings and servers.
pub fn health(
    service: &mut Service,
    backend: &ProxySection,
    servers: &[Server],
    globals: &Globals,
    report: &mut Report,
) {
    let settings = &backend.settings;
    let checked: Vec<&Server> = servers.iter().filter(|(_, p)| p.checked()).collect();
    let Some((first_server, first)) = checked.first().map(|(s, p)| (s, p)) else {
        unchecked(&mut service.health, backend, report);
        return;
    };
    for (server, params) in servers {
        if !params.checked() {
            report.skip(
                &server.from,
                "no `check` on this server while others have one: havip checks every backend of a service",
            );
        }
    }
    let check_place = first
        .check
        .as_ref()
        .map_or_else(|| first_server.from.clone(), |c| c.place.clone());
    let health = &mut service.health;
    check_kind(health, settings, first, &check_place, globals, report);
    let inter = intervals(health, first, &check_place);
    health.timeout = Some(timeout(health, settings, &inter, report));
    health.interval = Some(inter);
    health.port = first
        .port
        .clone()
        .or_else(|| settings.check_connect_port.clone());
    report_differences(&checked, &first_server.from, first, report);
}

/// No server has `check`: HAProxy runs no check at all.
fn unchecked(health: &mut Health, backend: &ProxySection, report: &mut Report) {
    health.check = Some(Sourced::noted(
        Check::None,
        &backend.head,
        "no server has `check`: HAProxy never checks them",
    ));
    if let Some(check) = &backend.settings.check {
        report.skip(
            &check.place,
            "no server has `check`, so no check runs (as in HAProxy)",
        );
    }
}

/// `check`: the kind the backend's `option` selects, with what comes with it.
fn check_kind(
    health: &mut Health,
    settings: &Settings,
    first: &ServerParams,
    check_place: &Place,
    globals: &Globals,
    report: &mut Report,
) {
    let ssl = first.check_ssl.as_ref().is_some_and(|c| c.value)
        || settings.check_connect_ssl.as_ref().is_some_and(|c| c.value);
    let Some(option) = &settings.check else {
        health.check = Some(Sourced::noted(
            Check::Tcp,
            check_place,
            "HAProxy's default check connects only",
        ));
        if ssl {
            report.skip(
                &check_place.with_key("check-ssl"),
                "without option httpchk this is a TLS handshake check; havip has none, so it is a TCP connect check (add check = \"https\" for /readyz)",
            );
        }
        return;
    };
    let place = &option.place;
    match option.value {
        CheckOpt::Tcp => {
            health.check = Some(Sourced::new(Check::Tcp, place));
            if ssl {
                report.skip(
                    &place.with_key("tcp-check connect ssl"),
                    "TLS handshake checks are not available; a TCP connect check is used",
                );
            }
        }
        CheckOpt::SslHello => {
            health.check = Some(Sourced::noted(
                Check::Tcp,
                place,
                "was option ssl-hello-chk",
            ));
            report.warn(
                &place.with_key("option ssl-hello-chk"),
                "SSLv3 hello check: modern TLS servers refuse SSLv3, and havip has no such check; imported as a TCP connect check (use check = \"https\" with path = \"/readyz\" for apiservers)",
            );
        }
        CheckOpt::Other(name) => {
            health.check = Some(Sourced::noted(
                Check::Tcp,
                place,
                format!("was option {name}"),
            ));
            report.skip(
                &place.with_key(format!("option {name}")),
                "protocol checks are not supported; imported as a TCP connect check",
            );
        }
        CheckOpt::Http => {
            let kind = if ssl { Check::Https } else { Check::Http };
            health.check = Some(Sourced::new(kind, place));
            http_request(health, settings, place, report);
            if ssl {
                tls(health, first, place, globals);
            }
        }
    }
}

/// The request of an HTTP check: path, method, Host and the statuses that pass.
fn http_request(health: &mut Health, settings: &Settings, place: &Place, report: &mut Report) {
    let path = settings
        .http_path
        .clone()
        .unwrap_or_else(|| Sourced::noted("/".to_string(), place, "HAProxy's default URI"));
    if path.value.contains('?') || !path.value.starts_with('/') {
        report.skip(
            &path.place.with_key("option httpchk"),
            format!("URI {:?} is sent as is", path.value),
        );
    }
    health.path = Some(path);
    if let Some(method) = &settings.http_method {
        if !matches!(method.value.as_str(), "GET" | "HEAD" | "OPTIONS") {
            report.skip(
                &method.place.with_key("option httpchk"),
                format!("method {}: havip's checks send GET", method.value),
            );
        }
    }
    health.host = settings.http_host.clone();
    health.expect_status =
        Some(settings.http_expect.clone().unwrap_or_else(|| {
            Sourced::noted(vec![(200, 399)], place, "HAProxy accepts 2xx and 3xx")
        }));
}

/// `[service.health.tls]` of an HTTPS check, from the first checked server.
fn tls(health: &mut Health, first: &ServerParams, place: &Place, globals: &Globals) {
    let verify = match (&first.verify, &globals.verify_none) {
        (Some(v), _) => Sourced::new(v.value != "none", &v.place),
        (None, Some(global)) => Sourced::new(false, global),
        (None, None) => Sourced::noted(
            true,
            place,
            "HAProxy verifies server certificates by default",
        ),
    };
    let tls = &mut health.tls;
    tls.verify = Some(verify);
    tls.ca_file = first.ca_file.clone();
    if let Some(crt) = &first.crt {
        tls.client_cert = Some(crt.clone());
        tls.client_key = Some(
            crt.clone()
                .with_note("HAProxy's crt holds the certificate and its key"),
        );
    }
    tls.sni = first.check_sni.clone();
}

/// `fast_interval`, `down_interval`, `rise` and `fall`, with HAProxy's defaults written out;
/// returns `interval` (`inter`).
fn intervals(health: &mut Health, first: &ServerParams, place: &Place) -> Sourced<Duration> {
    let inter = first
        .inter
        .clone()
        .unwrap_or_else(|| Sourced::noted(DEFAULT_INTER, place, "HAProxy's default inter"));
    health.fast_interval = Some(first.fastinter.clone().unwrap_or_else(|| {
        inter
            .clone()
            .with_note("HAProxy: fastinter defaults to inter")
    }));
    health.down_interval = Some(first.downinter.clone().unwrap_or_else(|| {
        inter
            .clone()
            .with_note("HAProxy: downinter defaults to inter")
    }));
    health.rise = Some(
        first
            .rise
            .clone()
            .unwrap_or_else(|| Sourced::noted(2, place, "HAProxy's default")),
    );
    health.fall = Some(
        first
            .fall
            .clone()
            .unwrap_or_else(|| Sourced::noted(3, place, "HAProxy's default")),
    );
    inter
}

/// The check's timeout. HAProxy: connect within min(timeout connect, inter); then the
/// response within timeout check if set; without timeout check, inter bounds the whole check.
fn timeout(
    health: &Health,
    settings: &Settings,
    inter: &Sourced<Duration>,
    report: &mut Report,
) -> Sourced<Duration> {
    let connect = settings
        .timeout_connect
        .as_ref()
        .map_or(inter.value, |c| c.value.min(inter.value));
    let is_http = matches!(
        health.check.as_ref().map(|c| c.value),
        Some(Check::Http | Check::Https)
    );
    if let Some(check) = settings.timeout_check.as_ref().filter(|_| !is_http) {
        report.skip(
            &check.place.with_key("timeout check"),
            "a TCP connect check has no response to wait for; min(timeout connect, inter) bounds it",
        );
    }
    match (&settings.timeout_check, is_http) {
        (Some(check), true) => Sourced::noted(
            connect.saturating_add(check.value),
            &check.place,
            "HAProxy: min(timeout connect, inter) to connect + timeout check",
        ),
        (_, false) => Sourced::noted(
            connect,
            settings
                .timeout_connect
                .as_ref()
                .map_or(&inter.place, |c| &c.place),
            "HAProxy: a connect check gets min(timeout connect, inter)",
        ),
        (None, true) => inter
            .clone()
            .with_note("HAProxy: without timeout check, inter bounds the check"),
    }
}

/// Whether two optional values differ (their places aside).
fn differs<T: PartialEq>(a: &Option<Sourced<T>>, b: &Option<Sourced<T>>) -> bool {
    a.as_ref().map(|v| &v.value) != b.as_ref().map(|v| &v.value)
}

/// Check settings of the other checked servers that differ from the first's.
fn report_differences(
    checked: &[&Server],
    first_from: &Place,
    first: &ServerParams,
    report: &mut Report,
) {
    for (server, p) in checked.iter().skip(1) {
        let differences = [
            ("inter", differs(&p.inter, &first.inter)),
            ("fastinter", differs(&p.fastinter, &first.fastinter)),
            ("downinter", differs(&p.downinter, &first.downinter)),
            ("rise", differs(&p.rise, &first.rise)),
            ("fall", differs(&p.fall, &first.fall)),
            ("port", differs(&p.port, &first.port)),
            ("slowstart", differs(&p.slowstart, &first.slowstart)),
            ("check-ssl", differs(&p.check_ssl, &first.check_ssl)),
        ];
        for (what, _) in differences.iter().filter(|(_, d)| *d) {
            report.skip(
                &server.from.with_key(format!("{} {what}", server.from.key)),
                format!(
                    "check settings are per service in havip; those of {} apply",
                    first_from.key
                ),
            );
        }
    }
}
