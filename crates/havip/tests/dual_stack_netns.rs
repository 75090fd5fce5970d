//! `listen = ["0.0.0.0:p", "[::]:p"]` together (issue 15 item 6): both bind (the IPv6
//! listener is IPv6-only, so it does not take the IPv4 port), both serve, and the wildcard
//! serves the VIP that VRRP adds after the listeners are up. A real havip node in a
//! namespace; the client connects over IPv4 and IPv6. Needs root and `ip netns`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use havip_test_support::lab::{node_v4, node_v6, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::prober::probe_once;
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const PORT: u16 = 8443;
const BACKEND_PORT: u16 = 9000;

#[test]
fn ipv4_and_ipv6_wildcards_on_one_port_both_serve() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("ds", 1);
    lab.start_name_server(0, BACKEND_PORT);
    let listen = vec![format!("0.0.0.0:{PORT}"), format!("[::]:{PORT}")];
    let config = NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .service(
            Service::new("api", "unused")
                .set("listen", listen)
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        )
        .vrrp(
            Vrrp::new("VI_1", 42)
                .priority(100)
                .advert_interval("100ms")
                .vip(format!("{VIP}/24")),
        );
    let path = lab.write("node0.toml", &config.to_toml());
    lab.spawn(
        &lab.nodes[0].clone(),
        HAVIP,
        &["run", "--config", &path.display().to_string()],
        "node0.log",
        &[],
    );
    let targets = [
        SocketAddr::new(IpAddr::V4(node_v4(0)), PORT),
        SocketAddr::new(IpAddr::V6(node_v6(0)), PORT),
        SocketAddr::new(IpAddr::V4(VIP), PORT),
    ];
    for target in targets {
        let answer = lab.in_ns(&lab.client.clone(), || {
            wait_for(Duration::from_secs(6), || {
                probe_once(target, Duration::from_millis(500))
            })
        });
        assert_eq!(
            answer.as_deref(),
            Some("node0"),
            "{target} is served\n{}",
            lab.all_logs()
        );
    }
    // Two listening sockets: one per family, the IPv6 one IPv6-only.
    let listening = lab.ns(
        &lab.nodes[0].clone(),
        &["ss", "-Hltn", &format!("sport = :{PORT}")],
    );
    let lines: Vec<&str> = listening.lines().collect();
    assert_eq!(lines.len(), 2, "{listening}");
    assert!(
        listening.contains(&format!("0.0.0.0:{PORT}")),
        "{listening}"
    );
    assert!(listening.contains(&format!("[::]:{PORT}")), "{listening}");
}
