//! Reading `[service.health]`: the active check (HTTPS on `/readyz` unless told otherwise),
//! its timing, and `[service.health.tls]`. The TLS files are only looked for here; the node
//! parses them when it prepares the check.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;
use toml::Spanned;

use super::{default_check, CheckKind, HealthSpec, HttpCheck, TlsCheck};
use crate::keys;
use crate::reader::{not_one_of, Record, Span, TableReader, Written};

/// The shortest interval and timeout of an active check.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// The health settings of the service table `t`: its `[service.health]`, or the default check.
pub(crate) fn read_health_table(p: &mut Record, t: &mut TableReader<'_, '_>) -> HealthSpec {
    match t.table(p, "health", keys::HEALTH.keys) {
        Some(mut ht) => {
            let health = read_health(p, &mut ht);
            ht.finish(p);
            health
        }
        None => HealthSpec {
            check: Some(default_check()),
            ..HealthSpec::default()
        },
    }
}

fn read_health(p: &mut Record, t: &mut TableReader<'_, '_>) -> HealthSpec {
    let mut out = HealthSpec {
        check: read_check(p, t),
        ..HealthSpec::default()
    };
    if let Some(d) = t.duration_at_least(p, "interval", MIN_CHECK_INTERVAL) {
        out.interval = d;
        // Unless set, the down interval follows the interval (as HAProxy's `downinter`).
        out.down_interval = d;
    }
    if let Some(d) = t.duration_at_least(p, "fast_interval", MIN_CHECK_INTERVAL) {
        out.fast_interval = d;
    }
    if let Some(d) = t.duration_at_least(p, "down_interval", MIN_CHECK_INTERVAL) {
        out.down_interval = d;
    }
    if let Some(d) = t.duration_at_least(p, "timeout", MIN_CHECK_INTERVAL) {
        out.timeout = d;
    }
    if let Some(n) = t.u32(p, "rise", 1..=100) {
        out.rise = n;
    }
    if let Some(n) = t.u32(p, "fall", 1..=100) {
        out.fall = n;
    }
    out.port = t
        .u32(p, "port", 1..=65_535)
        .and_then(|n| u16::try_from(n).ok());
    out
}

/// `check` and the keys of its kind; the keys of HTTP(S) checks are errors with the others.
fn read_check(p: &mut Record, t: &mut TableReader<'_, '_>) -> Option<CheckKind> {
    let kind = t.string(p, "check");
    let kind_name = kind.as_ref().map_or("https", |k| k.value.as_str());
    if let "none" | "tcp" = kind_name {
        for key in keys::HTTP_CHECK.iter().chain(&["tls"]) {
            if let Some(span) = t.consume(p, key) {
                p.add(
                    &span,
                    t.key(key),
                    format!("only applies to check = \"http\" or \"https\", not {kind_name:?}"),
                );
            }
        }
        return (kind_name == "tcp").then_some(CheckKind::Tcp);
    }
    if let Some(k) = kind
        .as_ref()
        .filter(|k| !matches!(k.value.as_str(), "http" | "https"))
    {
        p.add(
            &k.span,
            t.key("check"),
            not_one_of(
                &k.value,
                "a check",
                &["https", "http", "tcp", "none"],
                "use \"https\", \"http\", \"tcp\" or \"none\"",
            ),
        );
    }
    // An unknown kind is read as https, so its other keys are still checked.
    Some(CheckKind::Http(read_http(p, t, kind_name != "http")))
}

fn read_http(p: &mut Record, t: &mut TableReader<'_, '_>, tls: bool) -> HttpCheck {
    let mut http = HttpCheck::readyz();
    if let Some(Written { value, span }) = t.string(p, "path") {
        if value.starts_with('/') && !value.contains(char::is_whitespace) {
            http.path = value;
        } else {
            p.add(
                &span,
                t.key("path"),
                "must start with '/' and contain no spaces",
            );
        }
    }
    http.host = t.string(p, "host").map(|h| h.value);
    if let Some(items) = t.array(p, "expect_status") {
        http.expect_status = read_status_set(p, &t.key("expect_status"), &items);
    }
    if tls {
        let mut check = TlsCheck::default();
        if let Some(mut tt) = t.table(p, "tls", keys::TLS.keys) {
            read_tls(p, &mut tt, &mut check);
            tt.finish(p);
        }
        http.tls = Some(check);
    } else if let Some(span) = t.consume(p, "tls") {
        p.add(&span, t.key("tls"), "only applies to check = \"https\"");
    }
    http
}

fn read_tls(p: &mut Record, t: &mut TableReader<'_, '_>, tls: &mut TlsCheck) {
    if let Some(b) = t.bool(p, "verify") {
        tls.verify = b;
    }
    let ca = tls_file(p, t, "ca_file");
    let cert = tls_file(p, t, "client_cert");
    let key = tls_file(p, t, "client_key");
    if let (Some((_, span)), false) = (&ca, tls.verify) {
        p.add(
            span,
            t.key("ca_file"),
            "has no effect while verify = false; set verify = true to check the server certificate",
        );
    }
    match (&cert, &key) {
        (Some(_), None) => p.add(
            &t.span(),
            t.key("client_key"),
            "missing: client_cert needs its client_key",
        ),
        (None, Some((_, span))) => p.add(
            span,
            t.key("client_cert"),
            "missing: client_key needs its client_cert",
        ),
        _ => {}
    }
    tls.ca_file = ca.map(|(path, _)| path);
    tls.client_cert = cert.map(|(path, _)| path);
    tls.client_key = key.map(|(path, _)| path);
    tls.sni = t.string(p, "sni").map(|s| s.value);
}

/// A TLS file's path; one that is not there is a problem here, one that does not parse is
/// the node's when it prepares the check.
fn tls_file(p: &mut Record, t: &mut TableReader<'_, '_>, key: &str) -> Option<(PathBuf, Span)> {
    let at = t.string(p, key)?;
    let path = PathBuf::from(&at.value);
    if let Err(e) = std::fs::metadata(&path) {
        p.add(
            &at.span,
            t.key(key),
            format!("cannot read {}: {e}", path.display()),
        );
    }
    Some((path, at.span))
}

/// `[200, 204, "300-399"]` into inclusive ranges.
fn read_status_set(p: &mut Record, key: &str, items: &[&Spanned<DeValue<'_>>]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for item in items {
        let parsed = match item.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<u16>().ok().map(|n| (n, n)),
            DeValue::String(s) => match s.split_once('-') {
                Some((a, b)) => a.trim().parse().ok().zip(b.trim().parse().ok()),
                None => s.trim().parse().ok().map(|n| (n, n)),
            },
            _ => None,
        };
        match parsed {
            Some((lo, hi)) if (100..=599).contains(&lo) && (lo..=599).contains(&hi) => {
                out.push((lo, hi))
            }
            _ => p.add(
                &item.span(),
                key,
                "expected a status code (100-599) or a range like \"200-299\"",
            ),
        }
    }
    if items.is_empty() {
        p.add_at(key, "must list at least one status");
    }
    out
}
