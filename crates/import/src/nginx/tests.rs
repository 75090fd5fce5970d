use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::model::{Check, Draft, OrOff};
use crate::Report;

fn file() -> Arc<str> {
    Arc::from("nginx.conf")
}

fn import(text: &str) -> (Draft, Report) {
    let mut report = Report::default();
    let directives = match parse(&file(), text) {
        Ok(t) => t,
        Err(e) => {
            report.error(&e.place, e.message);
            Vec::new()
        }
    };
    let tree = Tree {
        directives,
        files: vec![file()],
    };
    let out = map(&tree, &mut report);
    (out, report)
}

fn lines(report: &Report) -> Vec<String> {
    report.sorted().iter().map(|n| n.to_string()).collect()
}

#[test]
fn parses_blocks_quotes_and_comments() {
    let tree = parse(&file(), "a 1 '2 3' \"4;5\"; # c\nb { c d; e { } }\n").unwrap();
    assert_eq!(tree.len(), 2);
    assert_eq!(tree[0].name(), "a");
    let args: Vec<&str> = tree[0].args.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(args, ["1", "2 3", "4;5"]);
    assert_eq!(tree[1].name.place.line, 2);
    let b = tree[1].block.as_ref().unwrap();
    assert_eq!(b[0].args[0].place.column, 7);
    assert_eq!(b[1].block.as_ref().unwrap().len(), 0);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = |t: &str| {
        let e = parse(&file(), t).unwrap_err();
        format!("{}:{}: {}", e.place.line, e.place.column, e.message)
    };
    assert_eq!(
        err("a {\n b;\n"),
        "3:1: unexpected end of file, expecting \"}\""
    );
    assert_eq!(err("a;\n}"), "2:1: unexpected \"}\"");
    assert_eq!(
        err("a b"),
        "1:4: unexpected end of file, expecting \";\" or \"}\" after \"a\""
    );
    assert_eq!(err("x \"abc"), "1:3: unterminated quoted string");
    assert_eq!(err(";"), "1:1: unexpected \";\"");
    assert!(err(&"a {".repeat(100)).contains("nested too deeply"));
}

#[test]
fn the_seed_stream_snippet() {
    let (c, report) = import(include_str!("../../tests/import/seeds/nginx-stream.conf"));
    assert!(!report.has_errors());
    let s = &c.services[0];
    assert_eq!(s.name.value, "k8sapiserver");
    assert_eq!(s.listen[0].value, "*:8443");
    assert_eq!(s.balance.as_ref().unwrap().value, "source_hash");
    assert_eq!(
        s.timeouts.connect.as_ref().unwrap().value,
        Duration::from_secs(1)
    );
    assert_eq!(s.health.check.as_ref().unwrap().value, Check::None);
    assert_eq!(s.passive.max_fails.as_ref().unwrap().value, 3);
    assert_eq!(
        s.passive.fail_timeout.as_ref().unwrap().value,
        Duration::from_secs(30)
    );
    assert_eq!(s.backends.len(), 3);
    assert_eq!(s.backends[2].address.value, "192.168.139.135:6443");
    assert_eq!(
        lines(&report),
        [
            "nginx.conf:10:5: error_log: not carried over: havip logs to stderr (the journal under systemd); see [log]",
            "nginx.conf:11:5: access_log: not carried over: havip logs to stderr (the journal under systemd); see [log]",
        ]
    );
}

#[test]
fn a_whole_nginx_conf_with_http_and_stream() {
    let (c, report) = import(
        "worker_processes 1;\nevents { worker_connections 1024; }\nhttp { server { listen 80; } }\n\
         stream {\n  proxy_timeout 20m;\n  upstream api { least_conn; server 10.0.0.1:6443 weight=5 max_conns=100; server [fd00::2]:6443 backup; server 10.0.0.3:6443 down; }\n\
           server { listen 127.0.0.1:6443 backlog=511; listen [::]:6443; proxy_pass api; proxy_next_upstream_tries 2; }\n\
           server { listen 9000 udp; proxy_pass 10.0.0.9:53; }\n}\n",
    );
    let l = lines(&report);
    assert!(
        l.iter()
            .any(|l| l.contains("nginx.conf:3:1: http: not carried over")),
        "{l:?}"
    );
    assert!(l.iter().any(|l| l.contains("UDP is not supported")));
    assert_eq!(c.services.len(), 1);
    let s = &c.services[0];
    let listen: Vec<&str> = s.listen.iter().map(|l| l.value.as_str()).collect();
    assert_eq!(listen, ["127.0.0.1:6443", "[::]:6443"]);
    assert_eq!(s.limits.backlog.as_ref().unwrap().value, 511);
    assert_eq!(s.balance.as_ref().unwrap().value, "least_conn");
    assert_eq!(s.retries.as_ref().unwrap().value, 1);
    assert_eq!(
        s.timeouts.tunnel.as_ref().unwrap().value,
        OrOff::On(Duration::from_secs(1200))
    );
    assert_eq!(s.backends[0].weight.as_ref().unwrap().value, 5);
    assert_eq!(s.backends[0].max_conns.as_ref().unwrap().value, 100);
    assert_eq!(s.backends[1].address.value, "[fd00::2]:6443");
    assert!(s.backends[1].backup.as_ref().unwrap().value);
    assert_eq!(s.backends[2].weight.as_ref().unwrap().value, 0);
    // nginx's passive defaults are written out.
    assert_eq!(s.passive.max_fails.as_ref().unwrap().value, 1);
}

#[test]
fn random_two_and_hash_on_other_keys() {
    let (c, _) = import("upstream u { random two least_conn; server 10.0.0.1:1; }\nserver { listen 1; proxy_pass u; }\n");
    assert_eq!(c.services[0].balance.as_ref().unwrap().value, "random_two");
    let (c, report) = import("upstream u { hash $request_uri; server 10.0.0.1:1; }\nserver { listen 1; proxy_pass u; }\n");
    assert!(c.services[0].balance.is_none());
    assert!(lines(&report)[0].contains("hashing on $request_uri"));
}

#[test]
fn includes_are_expanded_relative_to_the_main_file() {
    let dir = std::env::temp_dir().join(format!("havip-nginx-inc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("stream")).unwrap();
    std::fs::write(
        dir.join("nginx.conf"),
        "stream {\n    include stream/*.conf;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("stream/api.conf"),
        "upstream a { server 10.0.0.1:6443; }\nserver { listen 8443; proxy_pass a; }\n",
    )
    .unwrap();
    std::fs::write(dir.join("stream/loop.conf"), "include stream/loop.conf;\n").unwrap();
    let main = dir.join("nginx.conf");
    let text = std::fs::read_to_string(&main).unwrap();
    let mut report = Report::default();
    let tree = parse_file(&main, &text, &mut report);
    let c = map(&tree, &mut report);
    assert_eq!(c.services[0].listen[0].value, "*:8443");
    let api = dir.join("stream/api.conf").display().to_string();
    assert!(c.services[0].backends[0].address.place.file.as_ref() == api);
    assert!(lines(&report).iter().any(|l| l.contains("includes itself")));
    std::fs::remove_dir_all(&dir).unwrap();
}
