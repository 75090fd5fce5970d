//! A section that only serves HAProxy's statistics page becomes havip's `[admin]` endpoint:
//! its first bind address, and its `stats auth` users.

use super::ProxySection;
use crate::haproxy::Line;
use crate::model::{Admin, Draft, Sourced};
use crate::Report;

/// Map a statistics section onto `out.admin`.
pub fn stats(proxy: &ProxySection, out: &mut Draft, report: &mut Report) {
    if out.admin.is_some() {
        report.skip(
            &proxy.head,
            "a second statistics section: havip has one admin endpoint",
        );
        return;
    }
    let Some(first) = proxy.binds.first() else {
        report.skip(
            &proxy.head,
            "statistics section without a bind line: not imported",
        );
        return;
    };
    for extra in proxy.binds.iter().skip(1) {
        report.skip(
            &extra.place,
            "havip's admin endpoint listens on one address",
        );
    }
    let mut admin = Admin {
        from: proxy.head.clone(),
        listen: first.clone(),
        auth: Vec::new(),
    };
    let mut enabled = false;
    for line in &proxy.stats {
        enabled |= stats_line(line, &mut admin, report);
    }
    if !enabled {
        report.skip(
            &proxy.head,
            "statistics are not enabled in this section: not imported",
        );
        return;
    }
    if admin.auth.is_empty() {
        report.warn(
            &proxy.head,
            format!(
                "the admin endpoint on {} has no authentication (stats auth): anyone who reaches it can read the metrics",
                first.value
            ),
        );
    }
    out.admin = Some(admin);
}

/// One `stats` line; true when it enables the statistics page.
fn stats_line(line: &Line, admin: &mut Admin, report: &mut Report) -> bool {
    let what = line.arg(1).unwrap_or("");
    let directive = format!("stats {what}");
    match what {
        "enable" => return true,
        "auth" => {
            match line.arg(2) {
                Some(user) if user.contains(':') => admin
                    .auth
                    .push(Sourced::new(user.to_string(), &line.place(2, directive))),
                _ => report.error(&line.place(0, directive), "expected user:password"),
            }
            return true;
        }
        "uri" => {
            report.skip(
                &line.place(0, directive),
                format!(
                    "no HTML page at {}: the admin endpoint serves /metrics, /api/status and /healthz",
                    line.arg(2).unwrap_or("/")
                ),
            );
            return true;
        }
        "realm" | "refresh" | "hide-version" | "show-legends" | "show-desc" | "show-node"
        | "show-modules" | "scope" | "admin" | "http-request" => report.skip(
            &line.place(0, directive),
            "HTML statistics page option; no equivalent",
        ),
        _ => report.skip(&line.place(0, directive), "not supported by the importer"),
    }
    false
}
