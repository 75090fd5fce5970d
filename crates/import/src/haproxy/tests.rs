use std::sync::Arc;
use std::time::Duration;

use super::lex::tokenize;
use super::*;
use crate::model::{Check, Draft, OrOff};
use crate::Report;

fn file() -> Arc<str> {
    Arc::from("haproxy.cfg")
}

fn words(line: &str) -> Vec<String> {
    tokenize(line)
        .unwrap()
        .into_iter()
        .map(|w| w.text)
        .collect()
}

fn import(text: &str) -> (Draft, Report) {
    let mut report = Report::default();
    let cfg = parse(&file(), text, &mut report);
    let out = map(&cfg, &mut report);
    (out, report)
}

fn lines(report: &Report) -> Vec<String> {
    report.sorted().iter().map(|n| n.to_string()).collect()
}

#[test]
fn lexer_follows_haproxy_quoting() {
    assert_eq!(
        words("  bind *:443   ssl # comment"),
        ["bind", "*:443", "ssl"]
    );
    assert_eq!(
        words(r"stats realm HAProxy\ Statistics"),
        ["stats", "realm", "HAProxy Statistics"]
    );
    assert_eq!(
        words(r#"option httpchk "GET /readyz" x"#),
        ["option", "httpchk", "GET /readyz", "x"]
    );
    assert_eq!(words("a 'b c' d"), ["a", "b c", "d"]);
    assert_eq!(words(r#"x "a\"b""#), ["x", "a\"b"]);
    assert_eq!(words(r"x a\x41"), ["x", "aA"]);
    assert_eq!(words("x a#b"), ["x", "a"]);
    assert_eq!(words("# only a comment"), Vec::<String>::new());
    assert_eq!(tokenize("x \"open").unwrap_err().column, 3);
    assert_eq!(tokenize("x 'open").unwrap_err().column, 3);
}

#[test]
fn syntax_errors_name_file_and_line() {
    let (_, report) = import("global\n  maxconn \"4000\n");
    assert_eq!(
        lines(&report),
        ["haproxy.cfg:2:11: (syntax): error: unterminated double quote"]
    );
    let (_, report) = import("maxconn 10\n");
    assert!(lines(&report)[0]
        .starts_with("haproxy.cfg:1:1: maxconn: error: directive outside any section"));
    let (_, report) = import("global\n.if defined(X)\nmaxconn 1\n");
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains(".if: error: not closed")));
}

#[test]
fn frontend_and_backend_become_one_service() {
    let (c, report) = import(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 10m\n  timeout server 10m\n  retries 2\n  option redispatch\n\
         frontend api\n  bind 10.0.0.10:6443\n  bind :::6443\n  default_backend masters\n\
         backend masters\n  balance leastconn\n  server m1 10.0.0.1:6443 check weight 10 maxconn 50\n  server m2 10.0.0.2:6443 check backup\n",
    );
    assert!(!report.has_errors(), "{:?}", lines(&report));
    let s = &c.services[0];
    assert_eq!(s.name.value, "api");
    let listen: Vec<&str> = s.listen.iter().map(|l| l.value.as_str()).collect();
    assert_eq!(listen, ["10.0.0.10:6443", "[::]:6443", "*:6443"]);
    assert_eq!(s.balance.as_ref().unwrap().value, "least_conn");
    assert_eq!(s.retries.as_ref().unwrap().value, 2);
    assert_eq!(
        s.timeouts.connect.as_ref().unwrap().value,
        Duration::from_secs(5)
    );
    assert_eq!(
        s.timeouts.client_idle.as_ref().unwrap().value,
        Duration::from_secs(600)
    );
    assert_eq!(s.timeouts.tunnel.as_ref().unwrap().value, OrOff::Off);
    assert_eq!(s.backends.len(), 2);
    assert_eq!(s.backends[0].weight.as_ref().unwrap().value, 10);
    assert_eq!(s.backends[0].max_conns.as_ref().unwrap().value, 50);
    assert!(s.backends[1].backup.as_ref().unwrap().value);
    assert_eq!(s.health.check.as_ref().unwrap().value, Check::Tcp);
    // HAProxy's check defaults are written out.
    assert_eq!(
        s.health.interval.as_ref().unwrap().value,
        Duration::from_secs(2)
    );
    assert_eq!(s.health.rise.as_ref().unwrap().value, 2);
    assert_eq!(s.health.fall.as_ref().unwrap().value, 3);
    // Every value names its line.
    assert_eq!(s.balance.as_ref().unwrap().place.line, 13);
}

#[test]
fn listen_section_with_https_readyz_check() {
    let (c, report) = import(
        "listen api\n  bind *:8443\n  mode tcp\n  option httpchk GET /readyz HTTP/1.1\\r\\nHost:\\ kubernetes\n  http-check expect status 200\n\
         default-server inter 3s fastinter 1s downinter 5s rise 3 fall 2 check-ssl verify none\n  server a 10.0.0.1:6443 check\n  server b 10.0.0.2:6443 check port 6444\n",
    );
    let s = &c.services[0];
    let h = &s.health;
    assert_eq!(h.check.as_ref().unwrap().value, Check::Https);
    assert_eq!(h.path.as_ref().unwrap().value, "/readyz");
    assert_eq!(h.host.as_ref().unwrap().value, "kubernetes");
    assert_eq!(h.expect_status.as_ref().unwrap().value, vec![(200, 200)]);
    assert_eq!(h.interval.as_ref().unwrap().value, Duration::from_secs(3));
    assert_eq!(
        h.fast_interval.as_ref().unwrap().value,
        Duration::from_secs(1)
    );
    assert_eq!(
        h.down_interval.as_ref().unwrap().value,
        Duration::from_secs(5)
    );
    assert!(!h.tls.verify.as_ref().unwrap().value);
    // Per-server check settings that differ are reported: havip has one set per service.
    assert!(
        lines(&report)
            .iter()
            .any(|l| l.contains("haproxy.cfg:8:3: server b port: not carried over")),
        "{:?}",
        lines(&report)
    );
}

#[test]
fn http_only_lines_in_tcp_sections_are_reported_as_ignored() {
    let (_, report) = import(
        "defaults\n  mode http\n  option httplog\n  timeout http-request 10s\n\
         frontend f\n  mode tcp\n  bind *:80\n  http-request deny\n  default_backend b\nbackend b\n  mode tcp\n  server s 10.0.0.1:80\n",
    );
    let l = lines(&report);
    assert!(l.contains(&"haproxy.cfg:3:3: option httplog: not carried over: applies to HTTP mode only; the TCP sections that inherit it ignore it, as HAProxy does".to_string()), "{l:?}");
    assert!(l.contains(&"haproxy.cfg:8:3: http-request: not carried over: applies to HTTP mode only; ignored in a TCP section, as HAProxy does".to_string()), "{l:?}");
}

#[test]
fn an_http_mode_proxy_is_imported_as_tcp_with_a_warning() {
    let (c, report) = import(
        "defaults\n  mode http\nfrontend f\n  bind *:80\n  default_backend b\nbackend b\n  server s 10.0.0.1:80\n",
    );
    assert_eq!(c.services.len(), 1);
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("haproxy.cfg:2:8: mode http: warning: frontend f is in HTTP mode")));
}

#[test]
fn balance_algorithms() {
    for (algo, hash, expect) in [
        ("roundrobin", "", "round_robin"),
        ("static-rr", "", "round_robin"),
        ("leastconn", "", "least_conn"),
        ("source", "hash-type consistent", "source_hash"),
        ("random", "", "random_two"),
        ("random(2)", "", "random_two"),
        ("first", "", "round_robin"),
    ] {
        let (c, _) = import(&format!(
            "listen l\n  bind *:1\n  balance {algo}\n  {hash}\n  server s 10.0.0.1:1\n"
        ));
        assert_eq!(
            c.services[0].balance.as_ref().unwrap().value,
            expect,
            "{algo}"
        );
    }
    let (_, report) = import("listen l\n  bind *:1\n  balance first\n  server s 10.0.0.1:1\n");
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("balance first: not carried over")));
}

#[test]
fn the_stats_listener_becomes_the_admin_endpoint() {
    let (c, report) = import(
        "listen stats\n  bind *:1080\n  mode http\n  stats enable\n  stats auth admin:secret\n  stats uri /admin?stats\n",
    );
    let a = c.admin.unwrap();
    assert_eq!(a.listen.value, "*:1080");
    assert_eq!(a.auth[0].value, "admin:secret");
    assert!(c.services.is_empty());
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("stats uri: not carried over: no HTML page at /admin?stats")));
    // Without auth the endpoint is open: warned.
    let (_, report) = import("listen stats\n  bind *:1080\n  stats enable\n");
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("warning: the admin endpoint on *:1080 has no authentication")));
}

#[test]
fn server_parameters() {
    let (c, report) = import(
        "backend b\n  default-server maxqueue 10 slowstart 30s on-marked-down shutdown-sessions\n  server x 10.0.0.1:1 disabled send-proxy\n  server y 10.0.0.2:1 resolvers dns\n  server z db.example:1\n\
         frontend f\n  bind *:1\n  default_backend b\n",
    );
    let s = &c.services[0];
    assert_eq!(s.backends.len(), 2);
    assert_eq!(s.backends[0].weight.as_ref().unwrap().value, 0);
    assert_eq!(
        s.slow_start.as_ref().unwrap().value,
        Duration::from_secs(30)
    );
    assert!(s.close_on_down.as_ref().unwrap().value);
    assert_eq!(s.limits.max_queue.as_ref().unwrap().value, 20);
    let l = lines(&report);
    assert!(
        l.iter().any(|l| l.contains(
            "server send-proxy: not carried over: havip does not send the PROXY protocol"
        )),
        "{l:?}"
    );
    assert!(l
        .iter()
        .any(|l| l.contains("server resolvers: not carried over")));
    assert!(l
        .iter()
        .any(|l| l.contains("\"db.example:1\": host names are not resolved")));
}

#[test]
fn global_settings() {
    let (c, report) = import("global\n  maxconn 100\n  nbthread 2\n  daemon\n");
    assert_eq!(c.global.max_conns.unwrap().value, 100);
    assert_eq!(c.global.workers.unwrap().value, 2);
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("daemon: not carried over")));
}

#[test]
fn ssl_hello_check_is_a_warning() {
    let (c, report) =
        import("listen l\n  bind *:6443\n  option ssl-hello-chk\n  server s 10.0.0.1:6443 check\n");
    assert_eq!(
        c.services[0].health.check.as_ref().unwrap().value,
        Check::Tcp
    );
    assert!(lines(&report).iter().any(
        |l| l.starts_with("haproxy.cfg:3:10: option ssl-hello-chk: warning: SSLv3 hello check")
    ));
}

#[test]
fn unused_backends_and_missing_default_backend() {
    let (c, report) = import(
        "frontend f\n  bind *:1\n  default_backend nope\nbackend other\n  server s 10.0.0.1:1\n",
    );
    assert!(c.services.is_empty());
    let l = lines(&report);
    assert!(
        l.iter()
            .any(|l| l.contains("default_backend: error: no backend named \"nope\"")),
        "{l:?}"
    );
    assert!(l
        .iter()
        .any(|l| l.contains("backend other: not carried over: not the default_backend")));
}

#[test]
fn defaults_are_taken_in_order_and_by_name() {
    let (c, _) = import(
        "defaults a\n  timeout connect 1s\ndefaults\n  timeout connect 2s\n\
         listen x from a\n  bind *:1\n  server s 10.0.0.1:1\nlisten y\n  bind *:2\n  server s 10.0.0.1:2\n",
    );
    assert_eq!(
        c.services[0].timeouts.connect.as_ref().unwrap().value,
        Duration::from_secs(1)
    );
    assert_eq!(
        c.services[1].timeouts.connect.as_ref().unwrap().value,
        Duration::from_secs(2)
    );
}

#[test]
fn a_server_without_port_takes_the_frontend_port() {
    let (c, _) = import("listen l\n  bind *:6443\n  server s 10.0.0.1\n");
    assert_eq!(c.services[0].backends[0].address.value, "10.0.0.1:6443");
}

#[test]
fn misspelt_names_get_a_suggestion() {
    let (_, report) = import(
        "defaults base\n  mode tcp\nfrontend f from bsae\n  bind *:1\n  default_backend mastres\nbackend masters\n  server s 10.0.0.1:1\n",
    );
    let l = lines(&report);
    assert!(
        l.contains(&"haproxy.cfg:3:1: frontend: error: no defaults section named \"bsae\"; did you mean \"base\"?".to_string()),
        "{l:?}"
    );
    assert!(
        l.contains(&"haproxy.cfg:5:19: default_backend: error: no backend named \"mastres\"; did you mean \"masters\"?".to_string()),
        "{l:?}"
    );
}
