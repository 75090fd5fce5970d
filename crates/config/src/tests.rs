use std::time::Duration;

use super::*;
use crate::service::{
    defaults, Algorithm, CheckKind, HealthSpec, HttpCheck, Limits, PassiveSpec, Timeouts,
};

fn parse_ok(text: &str) -> Config {
    match parse(Path::new("havip.toml"), text) {
        Ok(c) => c,
        Err(problems) => panic!(
            "expected a valid config, got:\n{}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn problems(text: &str) -> Vec<String> {
    match parse(Path::new("havip.toml"), text) {
        Ok(_) => panic!("expected problems"),
        Err(list) => list.iter().map(|p| p.to_string()).collect(),
    }
}

const MINIMAL: &str = r#"
[[service]]
name = "kube-apiserver"
listen = "0.0.0.0:8443"

[[service.backend]]
address = "10.0.0.1:6443"
"#;

#[test]
fn minimal_config_gets_kube_apiserver_defaults() {
    // Every default is also held against the value docs/config.md documents
    // (tests/docs.rs); these pin the ones a kube-apiserver behind the balancer needs.
    let c = parse_ok(MINIMAL);
    assert_eq!(c.global, Global::default());
    assert_eq!(c.log, LogSettings::default());
    assert_eq!(c.admin, None);
    assert_eq!(
        c.control.socket.as_deref(),
        Some(Path::new(DEFAULT_CONTROL_SOCKET))
    );
    assert_eq!((c.control.mode, c.control.group.as_ref()), (0o660, None));
    let s = &c.services[0];
    assert_eq!(s.name, "kube-apiserver");
    assert_eq!(s.listen, vec!["0.0.0.0:8443".parse().unwrap()]);
    assert_eq!(s.balance, Algorithm::RoundRobin);
    assert_eq!(s.retries, defaults::RETRIES);
    assert_eq!(s.timeouts, Timeouts::default());
    assert_eq!(s.timeouts.tunnel, Some(Duration::from_secs(3600)));
    assert_eq!(s.health.check, Some(default_check()));
    assert_eq!(s.health.rise, 2);
    assert_eq!(s.health.fall, 3);
    assert_eq!(s.backends[0].name, "10.0.0.1:6443");
    assert_eq!(s.backends[0].weight, 100);
}

#[test]
fn full_config_reads_every_key() {
    let c = parse_ok(
        r#"
[global]
max_conns = 20000
grace = "45s"
workers = 2
copy = "buffered"
buffer_size = 32768

[log]
format = "json"
level = "havip=debug,info"
connections = false

[admin]
listen = "127.0.0.1:9000"
auth = ["admin:secret"]

[[service]]
name = "api"
listen = ["0.0.0.0:8443", "[::]:8443"]
balance = "least_conn"
retries = 2
slow_start = "60s"
slow_start_at_boot = true
close_on_down = true

[service.timeouts]
connect = "1s"
queue = "1m"
client_idle = "2h"
server_idle = "90m"
tunnel = "off"

[service.limits]
max_conns = 3000
max_queue = 256
backlog = 1024

[service.health]
check = "http"
path = "/livez"
host = "api.example"
expect_status = [200, "300-399"]
interval = "5s"
fast_interval = "250ms"
down_interval = "10s"
timeout = "2s"
rise = 3
fall = 4
port = 6443

[service.passive]
max_fails = 5
fail_timeout = "30s"

[[service.backend]]
name = "m1"
address = "10.0.0.1:6443"
weight = 50
max_conns = 250
backup = false

[[service.backend]]
name = "m2"
address = "[fd00::2]:6443"
backup = true
"#,
    );
    assert_eq!(c.global.max_conns, Some(20000));
    assert_eq!(c.global.grace, Duration::from_secs(45));
    assert_eq!(c.global.workers, 2);
    assert_eq!(
        c.global.copy_mode,
        CopyMode::Buffered { buffer_size: 32768 }
    );
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "havip=debug,info");
    assert!(!c.log.connections);
    let admin = c.admin.unwrap();
    assert_eq!(admin.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(admin.auth, ["admin:secret"]);
    let s = &c.services[0];
    assert_eq!(s.listen.len(), 2);
    assert_eq!(s.balance, Algorithm::LeastConn);
    assert_eq!(s.retries, 2);
    assert_eq!(s.slow_start, Some(Duration::from_secs(60)));
    assert!(s.slow_start_at_boot && s.close_on_down);
    assert_eq!(
        s.timeouts,
        Timeouts {
            connect: Duration::from_secs(1),
            queue: Duration::from_secs(60),
            client_idle: Duration::from_secs(7200),
            server_idle: Duration::from_secs(5400),
            tunnel: None,
        }
    );
    assert_eq!(
        s.limits,
        Limits {
            max_conns: Some(3000),
            max_queue: 256,
            backlog: 1024
        }
    );
    assert_eq!(
        s.health,
        HealthSpec {
            check: Some(CheckKind::Http(HttpCheck {
                path: "/livez".into(),
                host: Some("api.example".into()),
                expect_status: vec![(200, 200), (300, 399)],
                tls: None,
            })),
            interval: Duration::from_secs(5),
            fast_interval: Duration::from_millis(250),
            down_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            rise: 3,
            fall: 4,
            port: Some(6443),
        }
    );
    assert_eq!(
        s.passive,
        PassiveSpec {
            max_fails: 5,
            fail_timeout: Duration::from_secs(30)
        }
    );
    assert_eq!(s.backends.len(), 2);
    assert_eq!(s.backends[0].name, "m1");
    assert_eq!(s.backends[0].weight, 50);
    assert_eq!(s.backends[0].max_conns, Some(250));
    assert!(s.backends[1].backup);
    assert_eq!(s.backends[1].addr, "[fd00::2]:6443".parse().unwrap());
}

#[test]
fn every_problem_is_reported_with_line_and_key() {
    let got = problems(
        r#"[global]
grace = 30
[[service]]
name = "api"
listen = "0.0.0.0:8443"
balanse = "least_conn"
[service.timeouts]
connect = "3 s"
[[service.backend]]
address = "10.0.0.1"
[[service.backend]]
address = "10.0.0.2:6443"
weigth = 5
"#,
    );
    assert_eq!(
        got,
        vec![
            "havip.toml:2:9: global.grace: durations are strings with a unit, like \"5s\" or \"500ms\"",
            "havip.toml:8:11: service[0].timeouts.connect: \"3 s\": write the unit right after the number, like \"3s\"",
            "havip.toml:10:11: service[0].backend[0].address: \"10.0.0.1\" is not an address; write IP:port, [IPv6]:port or *:port (hostnames are not resolved)",
            "havip.toml:13:1: service[0].backend[1].weigth: unknown key; did you mean `weight`?",
            "havip.toml:6:1: service[0].balanse: unknown key; did you mean `balance`?",
        ]
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let got = problems("[[service]]\nname = \"api\nlisten = 1\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("havip.toml:2:"), "{}", got[0]);
}

#[test]
fn missing_pieces_are_reported() {
    let got = problems("[[service]]\nlisten = \"0.0.0.0:1\"\n");
    assert!(
        got.iter().any(|p| p.contains("service[0].name: missing")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|p| p.contains("service[0].backend: missing")),
        "{got:?}"
    );
    let got = problems("[global]\nworkers = 1\n");
    assert!(
        got.iter()
            .any(|p| p.contains("define at least one [[service]]")),
        "{got:?}"
    );
}

#[test]
fn wrong_types_and_ranges() {
    let got = problems(
        r#"[[service]]
name = "api"
listen = ["0.0.0.0:8443", 7]
retries = "3"
[service.health]
rise = 0
expect_status = [200, "2xx", 99]
check = "grpc"
[[service.backend]]
address = "10.0.0.1:6443"
weight = -1
backup = "yes"
"#,
    );
    let expect = [
        "service[0].listen[1]: expected a string, found integer",
        "service[0].retries: expected an integer, found string",
        "service[0].health.check: \"grpc\" is not a check",
        "service[0].health.expect_status: expected a status code",
        "service[0].health.rise: 0 is out of range (1..=100)",
        "service[0].backend[0].weight: -1 is out of range (0..=10000)",
        "service[0].backend[0].backup: expected true or false, found string",
    ];
    for e in expect {
        assert!(
            got.iter().any(|p| p.contains(e)),
            "missing {e:?} in {got:#?}"
        );
    }
    // "2xx" and 99 are each reported.
    assert_eq!(
        got.iter()
            .filter(|p| p.contains("expected a status code"))
            .count(),
        2
    );
}

#[test]
fn duplicates_and_overlaps() {
    let got = problems(
        r#"[[service]]
name = "a"
listen = ["0.0.0.0:8443"]
[[service.backend]]
address = "10.0.0.1:6443"
[[service.backend]]
address = "10.0.0.1:6443"
[[service]]
name = "a"
listen = ["10.0.0.9:8443"]
[[service.backend]]
address = "10.0.0.1:6443"
"#,
    );
    assert!(
        got.iter()
            .any(|p| p.contains("10.0.0.1:6443 is listed twice")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|p| p.contains("backend name \"10.0.0.1:6443\" is used twice")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|p| p.contains("a service named \"a\" is already defined")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|p| p.contains("10.0.0.9:8443 overlaps 0.0.0.0:8443")),
        "{got:#?}"
    );
}

#[test]
fn tls_settings_are_checked() {
    let got = problems(
        r#"[[service]]
name = "a"
listen = "127.0.0.1:1"
[service.health]
check = "tcp"
path = "/readyz"
[[service.backend]]
address = "10.0.0.1:6443"
[[service]]
name = "b"
listen = "127.0.0.1:2"
[service.health.tls]
verify = true
ca_file = "/nonexistent/ca.crt"
client_cert = "/nonexistent/client.crt"
[[service.backend]]
address = "10.0.0.1:6443"
"#,
    );
    assert!(
        got.iter()
            .any(|p| p
                .contains("service[0].health.path: only applies to check = \"http\" or \"https\"")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|p| p.contains("service[1].health.tls.ca_file: cannot read /nonexistent/ca.crt")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|p| p.contains("service[1].health.tls.client_key: missing")),
        "{got:#?}"
    );
}

#[test]
fn star_listen_means_all_ipv4() {
    let c = parse_ok(&MINIMAL.replace("0.0.0.0:8443", "*:9443"));
    assert_eq!(c.services[0].listen, vec!["0.0.0.0:9443".parse().unwrap()]);
}

#[test]
fn examples_in_the_repository_are_valid() {
    fn toml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("examples/ exists") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                toml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    toml_files(&dir, &mut files);
    for path in &files {
        if let Err(e) = read_file(path).and_then(|r| {
            r.into_result().map_err(|problems| ConfigError::Invalid {
                path: path.clone(),
                problems,
            })
        }) {
            match e {
                ConfigError::Invalid { problems, .. } => panic!(
                    "{}",
                    problems
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                other => panic!("{other}"),
            }
        }
    }
    // kube-apiserver.toml and the three seed translations in examples/seeds/.
    assert!(
        files.len() >= 4,
        "example configs missing in {}: {files:?}",
        dir.display()
    );
}

const VRRP_FULL: &str = r#"
[[service]]
name = "kube-apiserver"
listen = "0.0.0.0:8443"
[[service.backend]]
address = "10.0.0.1:6443"

[[tracker]]
name = "apiserver"
kind = "service"
service = "kube-apiserver"
min_healthy = 2
weight = -30
rise = 2
fall = 3

[[tracker]]
name = "chk"
kind = "script"
command = "/etc/keepalived/check_apiserver.sh 'a b'"
interval = "3s"
user = "nobody"

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
version = 2
priority = 101
advert_interval = "1s"
preempt = false
virtual_addresses = ["192.168.1.100/24", { address = "192.168.2.100", interface = "eth1", label = "eth1:vip" }]
source = "192.168.1.11"
unicast_peers = ["192.168.1.12", "192.168.1.13"]
auth_pass = "K8SHA_KA_AUTH"
track = ["apiserver", { tracker = "chk", weight = -5 }]

[vrrp.announce]
burst_count = 3
second_burst_delay = "0s"

[vrrp.notify]
command = ["/usr/local/bin/notify", "--from-havip"]
master = "/etc/keepalived/master.sh"
timeout = "5s"
"#;

#[test]
fn vrrp_instance_and_trackers_are_read() {
    let c = parse_ok(VRRP_FULL);
    assert_eq!(c.vrrp.len(), 1);
    let v = &c.vrrp[0];
    assert_eq!(v.name, "VI_1");
    assert_eq!(v.vrid, 51);
    assert_eq!(v.version, havip_vrrp::Version::V2);
    assert_eq!(v.priority, 101);
    assert!(!v.preempt);
    assert!(v.accept);
    assert_eq!(v.virtual_addresses.len(), 2);
    assert_eq!(v.virtual_addresses[0].prefix_len, 24);
    assert_eq!(v.virtual_addresses[1].prefix_len, 32);
    assert_eq!(v.virtual_addresses[1].interface.as_deref(), Some("eth1"));
    assert_eq!(v.unicast_peers.len(), 2);
    assert_eq!(
        v.authentication,
        havip_vrrp::Authentication::SimplePassword(havip_vrrp::Password::from_bytes(*b"K8SHA_KA"))
    );
    assert_eq!(v.announce.burst_count, 3);
    assert_eq!(v.announce.second_burst_delay, None);
    assert_eq!(
        v.notify.command,
        Some(vrrp::CommandSpec::Argv(vec![
            "/usr/local/bin/notify".into(),
            "--from-havip".into()
        ]))
    );
    assert_eq!(v.track[1].weight, Some(-5));
    assert_eq!(c.trackers.len(), 2);
    assert_eq!(c.trackers[0].weight, -30);
    assert_eq!(
        c.trackers[1].kind,
        vrrp::TrackerKind::Script {
            command: vrrp::CommandSpec::Argv(vec![
                "/etc/keepalived/check_apiserver.sh".into(),
                "a b".into()
            ]),
            timeout: Duration::from_secs(3),
            user: Some("nobody".into()),
            timeout_is_failure: false,
        }
    );
}

#[test]
fn a_vrrp_only_node_needs_no_service() {
    let c = parse_ok(
        r#"
[[vrrp]]
name = "v6"
interface = "eth0"
vrid = 7
advert_interval = "100ms"
virtual_addresses = ["fd00::100/64"]
"#,
    );
    assert!(c.services.is_empty());
    assert_eq!(c.vrrp[0].family(), havip_vrrp::AddressFamily::Ipv6);
    assert_eq!(c.vrrp[0].advert_interval.centiseconds(), 10);
}

#[test]
fn vrrp_mistakes_are_reported_with_their_keys() {
    let list = problems(
        r#"
[[tracker]]
name = "t"
kind = "interface"
interface = "eth1"
service = "x"

[[vrrp]]
name = "a"
interface = "eth0/1"
vrid = 300
advert_interval = "1500ms"
version = 2
virtual_addresses = ["10.0.0.1/33", "fd00::1"]
auth_pass = "x"
track = ["nope"]
prempt = true

[[vrrp]]
name = "b"
interface = "eth0"
vrid = 9
version = 3
auth_pass = "secret"
virtual_addresses = ["10.0.0.5"]
unicast_peers = ["10.0.0.6", "nonsense"]
"#,
    );
    let text = list.join("\n");
    for expected in [
        "tracker[0].service: does not apply to kind = \"interface\"",
        "vrrp[0].interface: \"eth0/1\" is not an interface name",
        "vrrp[0].vrid: 300 is out of range",
        "vrrp[0].advert_interval: VRRPv2 carries whole seconds",
        "vrrp[0].virtual_addresses[0]: prefix length \"33\"",
        "vrrp[0].track[0]: no [[tracker]] is named \"nope\" (defined: t)",
        "vrrp[0].prempt: unknown key; did you mean `preempt`?",
        "vrrp[1].auth_pass: authentication exists only in VRRPv2",
        "vrrp[1].unicast_peers: \"nonsense\" is not an IP address",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Every problem names the file and a line.
    assert!(list.iter().all(|l| l.starts_with("havip.toml:")), "{text}");
}

#[test]
fn mixed_families_and_duplicate_vrids_are_refused() {
    let text = problems(
        r#"
[[vrrp]]
name = "a"
interface = "eth0"
vrid = 9
virtual_addresses = ["10.0.0.5", "fd00::5"]

[[vrrp]]
name = "b"
interface = "eth0"
vrid = 10
virtual_addresses = ["10.0.0.6"]

[[vrrp]]
name = "c"
interface = "eth0"
vrid = 10
virtual_addresses = ["10.0.0.7"]
"#,
    )
    .join("\n");
    assert!(
        text.contains(
            "vrrp[0].virtual_addresses[1]: fd00::5 is IPv6 but the first address is IPv4"
        ),
        "{text}"
    );
    assert!(text.contains("VRID 10 is already used on eth0"), "{text}");
}

#[test]
fn tracker_service_must_exist() {
    let text = problems(
        r#"
[[tracker]]
name = "t"
kind = "listener"
service = "missing"

[[vrrp]]
name = "a"
interface = "eth0"
vrid = 9
virtual_addresses = ["10.0.0.5"]
track = ["t"]
"#,
    )
    .join("\n");
    assert!(
        text.contains("no [[service]] is named \"missing\""),
        "{text}"
    );
    // Reported where the name is written (line 5: the text starts with a newline).
    assert!(
        text.contains("havip.toml:5:11: tracker[0].service: no [[service]]"),
        "{text}"
    );
}

#[test]
fn command_lines_split_like_a_shell_without_expansion() {
    use vrrp::split_words;
    assert_eq!(
        split_words(r#"/bin/x a 'b c' "d \"e\"" f\ g"#).unwrap(),
        vec!["/bin/x", "a", "b c", "d \"e\"", "f g"]
    );
    assert!(split_words("/bin/x 'open").is_err());
    assert!(split_words("/bin/x \\").is_err());
    assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
    // POSIX: inside double quotes a backslash escapes only $ ` " \ and newline.
    assert_eq!(
        split_words(r#"/bin/x "C:\x" "a\$b" 'c\d' e\f"#).unwrap(),
        vec!["/bin/x", r"C:\x", "a$b", r"c\d", "ef"]
    );
    assert_eq!(
        split_words("/bin/x a # a comment").unwrap(),
        vec!["/bin/x", "a"]
    );
}

#[test]
fn a_backslash_in_double_quotes_reaches_the_command() {
    // Before shlex the reader dropped it: "C:\x" became C:x.
    let text = VRRP_FULL.replace(
        r#"command = ["/usr/local/bin/notify", "--from-havip"]"#,
        r#"command = '/usr/local/bin/notify "C:\x" "\$HOME"'"#,
    );
    assert_ne!(
        text, VRRP_FULL,
        "the notify line to replace is in VRRP_FULL"
    );
    let c = parse_ok(&text);
    assert_eq!(
        c.vrrp[0].notify.command,
        Some(vrrp::CommandSpec::Argv(vec![
            "/usr/local/bin/notify".into(),
            r"C:\x".into(),
            "$HOME".into()
        ]))
    );
}

#[test]
fn admin_auth_needs_user_colon_password() {
    let text = format!("{MINIMAL}\n[admin]\nauth = [\"nopassword\", \":x\"]\n");
    let list = problems(&text);
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list[0].ends_with("admin.auth: expected \"user:password\" (as HAProxy's stats auth)"));
}

#[test]
fn admin_passwords_may_be_hashes_and_tls_needs_both_files() {
    let sha512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let yescrypt = "$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.";
    let text = format!(
        "{MINIMAL}\n[admin]\nauth = [\"a:{sha512}\", \"b:{yescrypt}\", \"c:plain\"]\ntls_cert = \"/etc/havip/admin.crt\"\ntls_key = \"/etc/havip/admin.key\"\n"
    );
    let admin = parse_ok(&text).admin.unwrap();
    assert_eq!(admin.auth.len(), 3);
    assert!(is_password_hash(&admin.auth[0][2..]) && !is_password_hash("plain"));
    assert_eq!(
        admin.tls.unwrap().key,
        Path::new("/etc/havip/admin.key").to_path_buf()
    );
    let list = problems(&format!(
        "{MINIMAL}\n[admin]\nauth = [\"a:$1$old$md5\", \"b:$6$only\"]\ntls_cert = \"/x\"\n"
    ));
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(list[0].contains("known schemes"), "{list:?}");
    assert!(list[1].contains("not a complete hash"), "{list:?}");
    assert!(list[2].ends_with("give both tls_cert and tls_key, or neither"));
}

#[test]
fn the_control_socket_can_move_or_go() {
    let moved = parse_ok(&format!(
        "{MINIMAL}\n[control]\nsocket = \"/var/run/lb.sock\"\nmode = \"0600\"\ngroup = \"havip\"\n"
    ));
    assert_eq!(
        moved.control.socket.as_deref(),
        Some(Path::new("/var/run/lb.sock"))
    );
    assert_eq!(moved.control.mode, 0o600);
    assert_eq!(moved.control.group.as_deref(), Some("havip"));
    let off = parse_ok(&format!("{MINIMAL}\n[control]\nsocket = \"\"\n"));
    assert_eq!(off.control.socket, None);
    let list = problems(&format!(
        "{MINIMAL}\n[control]\nsocket = \"rel.sock\"\nmode = \"rw\"\n"
    ));
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list[0].contains("control.socket: expected an absolute path"));
    assert!(list[1].contains("control.mode: expected octal"));
}

#[test]
fn misspelt_values_get_a_suggestion() {
    let list = problems(
        r#"[global]
copy = "bufferd"
[log]
format = "jsno"
[[service]]
name = "api"
listen = "0.0.0.0:8443"
balance = "lesat_conn"
[service.health]
check = "htps"
[[service.backend]]
address = "10.0.0.1:6443"
[[tracker]]
name = "t"
kind = "scirpt"
[[tracker]]
name = "u"
kind = "script"
command = "/bin/true"
timeout_counts_as = "failrue"
"#,
    );
    assert_eq!(
        list,
        [
            "havip.toml:2:8: global.copy: \"bufferd\" is not a copy mode; did you mean \"buffered\"?",
            "havip.toml:4:10: log.format: \"jsno\" is not a log format; did you mean \"json\"?",
            "havip.toml:8:11: service[0].balance: \"lesat_conn\" is not a balance algorithm; did you mean \"least_conn\"?",
            "havip.toml:10:9: service[0].health.check: \"htps\" is not a check; did you mean \"https\"?",
            "havip.toml:15:8: tracker[0].kind: \"scirpt\" is not a tracker kind; did you mean \"script\"?",
            "havip.toml:20:21: tracker[1].timeout_counts_as: \"failrue\": did you mean \"failure\"?",
        ]
    );
}

#[test]
fn an_empty_status_list_is_reported_where_it_is_written() {
    let list = problems(
        "[[service]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n[service.health]\nexpect_status = []\n[[service.backend]]\naddress = \"10.0.0.1:1\"\n",
    );
    assert_eq!(
        list,
        ["havip.toml:5:17: service[0].health.expect_status: must list at least one status"]
    );
}

#[test]
fn startup_limit_defaults_to_the_trackers_first_result_time() {
    use crate::vrrp::StartupLimit;
    let text = format!(
        r#"{MINIMAL}
[service.health]
interval = "2s"
timeout = "1s"

[[tracker]]
name = "api"
kind = "service"
service = "kube-apiserver"
interval = "500ms"

[[tracker]]
name = "script"
kind = "script"
command = "/bin/true"
timeout = "3s"
interval = "2s"

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
virtual_addresses = ["10.0.0.100/24"]
track = ["api"]

[[vrrp]]
name = "VI_2"
interface = "eth0"
vrid = 52
virtual_addresses = ["10.0.0.101/24"]
track = ["api", "script"]

[[vrrp]]
name = "VI_3"
interface = "eth0"
vrid = 53
virtual_addresses = ["10.0.0.102/24"]

[[vrrp]]
name = "VI_4"
interface = "eth0"
vrid = 54
virtual_addresses = ["10.0.0.103/24"]
track = ["api"]
startup_limit = "off"

[[vrrp]]
name = "VI_5"
interface = "eth0"
vrid = 55
virtual_addresses = ["10.0.0.104/24"]
startup_limit = "10s"
"#
    );
    let config = parse_ok(&text);
    let limits: Vec<StartupLimit> = config.vrrp.iter().map(|v| v.startup_limit).collect();
    let secs = |s: f64| StartupLimit::After(Duration::from_secs_f64(s));
    assert_eq!(
        limits,
        [
            secs(3.5), // 2 s interval + 1 s timeout + 0.5 s tracker interval
            secs(5.0), // the script: 3 s timeout + 2 s interval
            StartupLimit::Off,
            StartupLimit::Off,
            secs(10.0),
        ]
    );
    let bad = text.replace("startup_limit = \"10s\"", "startup_limit = \"soon\"");
    let found = problems(&bad);
    assert!(
        found
            .iter()
            .any(|p| p.contains("vrrp[4].startup_limit") || p.contains("startup_limit")),
        "{found:?}"
    );
}
