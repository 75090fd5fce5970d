//! `http-check` and `tcp-check` lines: what havip's checks can carry of them (the request's
//! method, path and Host, the expected status, TLS and the port of the connect).

use super::section::Settings;
use crate::haproxy::Line;
use crate::model::Sourced;
use crate::Report;

/// `http-check ACTION ...`.
pub fn http_check(line: &Line, settings: &mut Settings, report: &mut Report) {
    let Some(action) = line.arg(1) else {
        report.error(&line.place(0, "http-check"), "missing the action");
        return;
    };
    let directive = format!("http-check {action}");
    match action {
        "send" => send(line, &directive, settings, report),
        "expect" => expect(line, &directive, settings, report),
        "connect" => connect(line, &directive, true, settings, report),
        "disable-on-404" => report.skip(
            &line.place(0, directive),
            "a 404 marks the backend down like any other unexpected status",
        ),
        _ => report.skip(&line.place(0, directive), "not supported by the importer"),
    }
}

/// `tcp-check ACTION ...`: only `connect` means something to a connect check.
pub fn tcp_check(line: &Line, settings: &mut Settings, report: &mut Report) {
    let action = line.arg(1).unwrap_or("");
    let directive = format!("tcp-check {action}");
    match action {
        "connect" => connect(line, &directive, false, settings, report),
        "comment" => {}
        _ => report.skip(
            &line.place(0, directive),
            "scripted TCP checks (send/expect) are not supported; havip's tcp check connects only",
        ),
    }
}

/// `http-check send meth M uri U ver V hdr NAME VALUE body B`.
fn send(line: &Line, directive: &str, settings: &mut Settings, report: &mut Report) {
    let mut i = 2;
    while let Some(key) = line.arg(i) {
        let value = line.arg(i + 1);
        let place = line.place(i, directive);
        match (key, value) {
            ("meth", Some(m)) => settings.http_method = Some(Sourced::new(m.into(), &place)),
            ("uri", Some(u)) => settings.http_path = Some(Sourced::new(u.into(), &place)),
            ("ver", Some(_)) => {}
            ("hdr", Some(name)) => {
                if name.eq_ignore_ascii_case("host") {
                    if let Some(v) = line.arg(i + 2) {
                        settings.http_host = Some(Sourced::new(v.into(), &place));
                    }
                } else {
                    report.skip(&place, format!("header {name:?}: havip sends only Host"));
                }
                i += 1;
            }
            ("body", Some(_)) | ("body-lf", Some(_)) => {
                report.skip(&place, "havip's checks send no body")
            }
            _ => report.skip(&place, format!("{key:?} is not supported by the importer")),
        }
        i += 2;
    }
}

/// Options of `http-check expect` that come before the matcher, each with a value.
const EXPECT_OPTIONS: &[&str] = &[
    "min-recv",
    "ok-status",
    "error-status",
    "tout-status",
    "on-success",
    "on-error",
    "status-code",
    "comment",
];

/// `http-check expect [!] status LIST`: the only matcher havip has.
fn expect(line: &Line, directive: &str, settings: &mut Settings, report: &mut Report) {
    let mut i = 2;
    let mut negate = false;
    if line.arg(i) == Some("!") {
        negate = true;
        i += 1;
    }
    while line.arg(i).is_some_and(|w| EXPECT_OPTIONS.contains(&w)) {
        i += 2;
    }
    match (negate, line.arg(i), line.arg(i + 1)) {
        (false, Some("status"), Some(list)) => match parse_status_list(list) {
            Some(ranges) => {
                settings.http_expect = Some(Sourced::new(ranges, &line.place(i + 1, directive)))
            }
            None => report.skip(
                &line.place(i + 1, directive),
                format!("status {list:?}: not a list of codes or ranges"),
            ),
        },
        _ => report.skip(
            &line.place(0, directive),
            "havip's HTTP checks match the status code only (expect_status)",
        ),
    }
}

/// Options of `http-check connect` havip cannot carry, and whether each takes a value.
const CONNECT_SKIPPED: &[(&str, bool)] = &[
    ("sni", true),
    ("alpn", true),
    ("proto", true),
    ("addr", true),
    ("comment", true),
    ("via-socks4", false),
    ("send-proxy", false),
];

/// `http-check connect` / `tcp-check connect [ssl] [port N] ...`; `http` knows the options
/// of http-check's form.
fn connect(line: &Line, directive: &str, http: bool, settings: &mut Settings, report: &mut Report) {
    let mut i = 2;
    while let Some(word) = line.arg(i) {
        match word {
            "ssl" => {
                settings.check_connect_ssl = Some(Sourced::new(true, &line.place(i, directive)))
            }
            "port" => {
                if let Some(p) = line.arg(i + 1).and_then(|p| p.parse::<u16>().ok()) {
                    settings.check_connect_port =
                        Some(Sourced::new(p, &line.place(i + 1, directive)));
                }
                i += 1;
            }
            "default" | "linger" if http => {}
            _ => {
                report.skip(&line.place(i, directive), format!("{word}: not supported"));
                let takes_value = CONNECT_SKIPPED.iter().any(|&(w, v)| w == word && v);
                if http && takes_value {
                    i += 1;
                }
            }
        }
        i += 1;
    }
}

/// `200`, `200,204,300-399` into inclusive ranges.
pub fn parse_status_list(text: &str) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse().ok()?;
                (n, n)
            }
        };
        if !(100..=599).contains(&lo) || !(lo..=599).contains(&hi) {
            return None;
        }
        out.push((lo, hi));
    }
    (!out.is_empty()).then_some(out)
}
