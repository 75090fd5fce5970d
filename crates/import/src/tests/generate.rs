//! Configs in each source format, written from random choices: the directives the
//! importer maps, with values either within what havip accepts (`sane`) or anywhere,
//! edge values included. The sane ones must import without an error; all of them must import
//! as a valid config or with an error that says why.

use proptest::prelude::*;

/// A value from `sane` or, when not `sane`, also from `wild`.
fn pick(sane: bool, good: &[&'static str], wild: &[&'static str]) -> BoxedStrategy<String> {
    let mut all: Vec<&'static str> = good.to_vec();
    if !sane {
        all.extend_from_slice(wild);
    }
    prop::sample::select(all).prop_map(str::to_string).boxed()
}

/// An optional line (`None` half the time).
fn maybe(line: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop::option::of(line)
        .prop_map(Option::unwrap_or_default)
        .boxed()
}

fn ms(sane: bool) -> BoxedStrategy<String> {
    pick(
        sane,
        &["100ms", "500", "1s", "2s", "5s", "30s", "1m", "10m", "1h"],
        &["0", "0ms", "1ms", "99999999999", "1y", "x", "-1"],
    )
}

fn count(sane: bool) -> BoxedStrategy<String> {
    pick(
        sane,
        &["1", "2", "3", "5", "10"],
        &["0", "101", "1000", "4294967295", "4294967296", "-1", "x"],
    )
}

/// Distinct frontend ports for `n` services.
fn ports(n: usize) -> Vec<u16> {
    (0..n).map(|i| 6443 + i as u16 * 10).collect()
}

/// A haproxy.cfg with up to three services (frontend + backend, or listen).
pub fn haproxy(sane: bool) -> impl Strategy<Value = String> {
    let global = (maybe(
        count(sane)
            .prop_map(|n| format!("  maxconn {n}00\n"))
            .boxed(),
    ),)
        .prop_map(|(maxconn,)| format!("global\n{maxconn}"));
    let defaults = (
        pick(sane, &["tcp"], &["http"]),
        ms(sane),
        ms(sane),
        ms(sane),
        maybe(pick(sane, &["0", "1", "3"], &["101", "x"]).prop_map(|n| format!("  retries {n}\n")).boxed()),
        maybe(Just("  option redispatch\n".to_string()).boxed()),
    )
        .prop_map(|(mode, connect, client, server, retries, redispatch)| {
            format!(
                "defaults\n  mode {mode}\n  timeout connect {connect}\n  timeout client {client}\n  timeout server {server}\n{retries}{redispatch}"
            )
        });
    let services = prop::collection::vec(haproxy_service(sane), 1..=3);
    (global, defaults, services).prop_map(|(global, defaults, services)| {
        let mut text = format!("{global}{defaults}");
        for (i, (service, port)) in services.iter().zip(ports(services.len())).enumerate() {
            text.push_str(
                &service
                    .replace("NAME", &format!("svc{i}"))
                    .replace("PORT", &port.to_string()),
            );
        }
        text
    })
}

/// One service's sections, with `NAME` and `PORT` to fill in.
fn haproxy_service(sane: bool) -> impl Strategy<Value = String> {
    let check = prop::sample::select(vec![
        "",
        "  option tcp-check\n",
        "  option httpchk GET /readyz\n  http-check expect status 200\n",
        "  option httpchk GET /healthz HTTP/1.1\\r\\nHost:\\ api\n",
        "  option ssl-hello-chk\n",
    ]);
    let balance = pick(
        sane,
        &[
            "roundrobin",
            "leastconn",
            "source",
            "random",
            "static-rr",
            "first",
        ],
        &["uri", "hdr(host)", "random(3)", "nonsense"],
    );
    let servers = prop::collection::vec(haproxy_server(sane), 1..=3);
    (
        any::<bool>(),
        check,
        balance,
        servers,
        maybe(count(sane).prop_map(|n| format!("  maxconn {n}0\n")).boxed()),
        maybe(ms(sane).prop_map(|t| format!("  timeout tunnel {t}\n")).boxed()),
        maybe(ms(sane).prop_map(|t| format!("  timeout check {t}\n")).boxed()),
    )
        .prop_map(|(listen, check, balance, servers, maxconn, tunnel, check_timeout)| {
            let servers: String = servers
                .iter()
                .enumerate()
                .map(|(i, s)| s.replace("SERVER", &format!("s{i}")).replace("ADDR", &format!("10.0.0.{}", i + 1)))
                .collect();
            let backend_lines = format!("  balance {balance}\n{check}{tunnel}{check_timeout}{servers}");
            if listen {
                format!("listen NAME\n  bind *:PORT\n{maxconn}{backend_lines}")
            } else {
                format!(
                    "frontend NAME\n  bind *:PORT\n{maxconn}  default_backend NAME-be\nbackend NAME-be\n{backend_lines}"
                )
            }
        })
}

fn haproxy_server(sane: bool) -> impl Strategy<Value = String> {
    let options = prop::collection::vec(
        prop_oneof![
            Just("check".to_string()),
            ms(sane).prop_map(|t| format!("inter {t}")),
            ms(sane).prop_map(|t| format!("fastinter {t}")),
            count(sane).prop_map(|n| format!("rise {n}")),
            count(sane).prop_map(|n| format!("fall {n}")),
            pick(sane, &["1", "10", "100", "256"], &["0", "10001", "x"])
                .prop_map(|n| format!("weight {n}")),
            count(sane).prop_map(|n| format!("maxconn {n}00")),
            count(sane).prop_map(|n| format!("maxqueue {n}")),
            Just("backup".to_string()),
            Just("check-ssl verify none".to_string()),
            pick(sane, &["6444", "443"], &["0", "70000"]).prop_map(|p| format!("port {p}")),
            ms(sane).prop_map(|t| format!("slowstart {t}")),
            Just("on-marked-down shutdown-sessions".to_string()),
        ],
        0..5,
    );
    (options, pick(sane, &["6443", "443"], &["0", "", "x"])).prop_map(|(options, port)| {
        let address = if port.is_empty() {
            "ADDR".to_string()
        } else {
            format!("ADDR:{port}")
        };
        format!("  server SERVER {address} {}\n", options.join(" "))
    })
}

/// An nginx stream config with up to three servers.
pub fn nginx(sane: bool) -> impl Strategy<Value = String> {
    let server = (
        any::<bool>(),
        prop::collection::vec(nginx_upstream_server(sane), 1..=3),
        pick(
            sane,
            &[
                "",
                "least_conn;",
                "hash $remote_addr consistent;",
                "random two;",
            ],
            &["hash $request_uri;", "least_time connect;"],
        ),
        maybe(
            ms_nginx(sane)
                .prop_map(|t| format!("proxy_timeout {t};"))
                .boxed(),
        ),
        maybe(
            ms_nginx(sane)
                .prop_map(|t| format!("proxy_connect_timeout {t};"))
                .boxed(),
        ),
        maybe(
            pick(sane, &["1", "2", "3"], &["0", "x"])
                .prop_map(|n| format!("proxy_next_upstream_tries {n};"))
                .boxed(),
        ),
        maybe(
            pick(sane, &["128", "511"], &["0", "70000"])
                .prop_map(|n| format!(" backlog={n}"))
                .boxed(),
        ),
    );
    (
        prop::collection::vec(server, 1..=3),
        maybe(ms_nginx(sane).prop_map(|t| format!("  proxy_timeout {t};\n")).boxed()),
    )
        .prop_map(|(servers, timeout)| {
            let mut text = format!("stream {{\n{timeout}");
            for (i, ((to_upstream, upstream_servers, balance, proxy_timeout, connect, tries, backlog), port)) in
                servers.iter().zip(ports(servers.len())).enumerate()
            {
                let pass = if *to_upstream {
                    let list: String = upstream_servers
                        .iter()
                        .enumerate()
                        .map(|(j, s)| s.replace("ADDR", &format!("10.0.{i}.{}", j + 1)))
                        .collect();
                    text.push_str(&format!("  upstream up{i} {{\n    {balance}\n{list}  }}\n"));
                    format!("up{i}")
                } else {
                    format!("10.0.{i}.1:6443")
                };
                text.push_str(&format!(
                    "  server {{\n    listen {port}{backlog};\n    proxy_pass {pass};\n    {proxy_timeout}\n    {connect}\n    {tries}\n  }}\n"
                ));
            }
            text.push_str("}\n");
            text
        })
}

fn ms_nginx(sane: bool) -> BoxedStrategy<String> {
    pick(
        sane,
        &["1s", "10s", "30", "10m", "1h30m"],
        &["0", "0s", "x", "99999999999d"],
    )
}

fn nginx_upstream_server(sane: bool) -> impl Strategy<Value = String> {
    let options = prop::collection::vec(
        prop_oneof![
            pick(sane, &["1", "5", "100"], &["0", "20000", "x"])
                .prop_map(|n| format!("weight={n}")),
            pick(sane, &["1", "3"], &["0", "1001", "x"]).prop_map(|n| format!("max_fails={n}")),
            ms_nginx(sane).prop_map(|t| format!("fail_timeout={t}")),
            pick(sane, &["10", "100"], &["0", "x"]).prop_map(|n| format!("max_conns={n}")),
            Just("backup".to_string()),
            Just("down".to_string()),
        ],
        0..4,
    );
    options.prop_map(|options| format!("    server ADDR:6443 {};\n", options.join(" ")))
}

/// A keepalived.conf with up to two instances, tracking scripts, interfaces and processes.
pub fn keepalived(sane: bool) -> impl Strategy<Value = String> {
    let global = (
        maybe(
            pick(sane, &["2", "3"], &["4"])
                .prop_map(|v| format!("  vrrp_version {v}\n"))
                .boxed(),
        ),
        maybe(
            pick(sane, &["1", "5"], &["0", "-1"])
                .prop_map(|t| format!("  vrrp_garp_master_delay {t}\n"))
                .boxed(),
        ),
        maybe(
            pick(sane, &["1", "5"], &["0", "100000"])
                .prop_map(|n| format!("  vrrp_garp_master_repeat {n}\n"))
                .boxed(),
        ),
        maybe(Just("  script_user nobody\n".to_string()).boxed()),
    )
        .prop_map(|(version, delay, repeat, user)| {
            format!("global_defs {{\n{version}{delay}{repeat}{user}}}\n")
        });
    let script = prop::sample::select(vec![
        "pidof haproxy",
        "killall -0 haproxy",
        "/bin/bash -c 'if [[ $(netstat -nlp | grep 6443) ]]; then exit 0; else exit 1; fi'",
        "curl -k https://localhost:6443/readyz",
        "/etc/keepalived/check.sh",
        "pgrep sshd",
    ]);
    let scripts = (
        script,
        pick(sane, &["1", "2", "5"], &["0", "-1", "x"]),
        pick(sane, &["-20", "0", "10"], &["-300", "300", "x"]),
        count(sane),
        count(sane),
    )
        .prop_map(|(script, interval, weight, rise, fall)| {
            format!("vrrp_script chk {{\n  script \"{script}\"\n  interval {interval}\n  weight {weight}\n  rise {rise}\n  fall {fall}\n}}\n")
        });
    (
        global,
        scripts,
        prop::collection::vec(keepalived_instance(sane), 1..=2),
    )
        .prop_map(|(global, scripts, instances)| {
            let mut text = format!(
                "{global}{scripts}vrrp_track_process proc {{\n  process haproxy\n  weight 5\n}}\n"
            );
            for (i, instance) in instances.iter().enumerate() {
                text.push_str(
                    &instance
                        .replace("NAME", &format!("VI_{i}"))
                        .replace("VRID", &format!("{}", 51 + i))
                        .replace("VIP", &format!("10.0.0.{}", 100 + i)),
                );
            }
            text
        })
}

fn keepalived_instance(sane: bool) -> impl Strategy<Value = String> {
    let options = prop::collection::vec(
        prop_oneof![
            pick(sane, &["MASTER", "BACKUP"], &["BOSS"]).prop_map(|s| format!("state {s}")),
            pick(sane, &["1", "100", "150", "254"], &["0", "256", "x"])
                .prop_map(|p| format!("priority {p}")),
            pick(sane, &["1", "2", "3"], &["0", "0.001", "300", "x"])
                .prop_map(|a| format!("advert_int {a}")),
            pick(sane, &["2", "3"], &["4"]).prop_map(|v| format!("version {v}")),
            Just("nopreempt".to_string()),
            pick(sane, &["0", "10", "300"], &["-1", "x"])
                .prop_map(|d| format!("preempt_delay {d}")),
            pick(sane, &["secret", "k8s-vip"], &["", "0123456789abcdef"]).prop_map(|p| {
                format!("authentication {{\n    auth_type PASS\n    auth_pass \"{p}\"\n  }}")
            }),
            Just("unicast_src_ip SRC\n  unicast_peer {\n    PEER1\n    PEER2\n  }".to_string()),
            Just("track_script {\n    chk\n  }".to_string()),
            Just("track_interface {\n    eth1 weight -10\n  }".to_string()),
            Just("track_process {\n    proc\n  }".to_string()),
            Just("notify_master \"/etc/keepalived/master.sh\"".to_string()),
            Just("garp_master_refresh 60".to_string()),
        ],
        0..6,
    );
    (options, any::<bool>(), pick(sane, &["24", "32"], &["33", "x"]))
        .prop_map(|(options, v6, prefix)| {
            let vip = if v6 { "fd00::1VRID/64".to_string() } else { format!("VIP/{prefix}") };
            let mut text = format!(
                "vrrp_instance NAME {{\n  interface eth0\n  virtual_router_id VRID\n  virtual_ipaddress {{\n    {vip}\n  }}\n"
            );
            let (src, peer1, peer2) = if v6 {
                ("fd00::10", "fd00::11", "fd00::12")
            } else {
                ("192.168.1.10", "192.168.1.11", "192.168.1.12")
            };
            for option in options {
                let option = option
                    .replace("SRC", src)
                    .replace("PEER1", peer1)
                    .replace("PEER2", peer2);
                text.push_str(&format!("  {option}\n"));
            }
            text.push_str("}\n");
            text
        })
}
