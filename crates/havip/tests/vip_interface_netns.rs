//! A VIP on another interface than the VRRP one, with an address label (issue 15 item 6), as
//! operators run it: adverts on a heartbeat network, the VIP on the service network. Two havip
//! nodes advertise on the lab's bridge (eth0); each also has an `eth1` on a second bridge
//! that the client shares, and the VIP goes there, labelled `eth1:vip` (keepalived's
//! `virtual_ipaddress { 10.88.0.200/24 dev eth1 label eth1:vip }`). After a crash of the
//! master the client finds the VIP on the other node, which takes announcements on eth1 (the
//! VIP's interface), not on eth0. Needs root and `ip netns`.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use havip_test_support::lab::Lab;
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 200);
const BACKEND_PORT: u16 = 9000;

/// The service network: a second bridge `br1` in the switch namespace, with an `eth1` in
/// both nodes (10.88.0.11, .12) and in the client (10.88.0.100). Deleted with the lab's
/// namespaces.
fn add_service_network(lab: &Lab) {
    let sw = lab.switch.clone();
    lab.ns(&sw, &["ip", "link", "add", "br1", "type", "bridge"]);
    lab.ns(&sw, &["ip", "link", "set", "br1", "up"]);
    let hosts = [
        (lab.nodes[0].clone(), 11),
        (lab.nodes[1].clone(), 12),
        (lab.client.clone(), 100),
    ];
    for (n, (ns, host)) in hosts.iter().enumerate() {
        let port = format!("q{n}");
        lab.ns(
            &sw,
            &[
                "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth1", "netns", ns,
            ],
        );
        lab.ns(&sw, &["ip", "link", "set", &port, "master", "br1", "up"]);
        lab.ns(
            ns,
            &[
                "ip",
                "addr",
                "add",
                &format!("10.88.0.{host}/24"),
                "dev",
                "eth1",
            ],
        );
        lab.ns(ns, &["ip", "link", "set", "eth1", "up"]);
    }
}

fn config(priority: u8) -> String {
    let text = NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .service(
            Service::new("api", SocketAddr::new(IpAddr::V4(VIP), 80))
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        )
        .vrrp(
            Vrrp::new("VI_1", 42)
                .priority(priority)
                .advert_interval("100ms")
                .vip(format!("{VIP}/24")),
        )
        .to_toml();
    // The builder writes plain strings; this VIP is a table with its interface and label.
    let plain = format!("virtual_addresses = [\"{VIP}/24\"]");
    assert!(text.contains(&plain), "{text}");
    text.replace(
        &plain,
        &format!(
            "virtual_addresses = [{{ address = \"{VIP}/24\", interface = \"eth1\", label = \"eth1:vip\" }}]"
        ),
    )
}

/// Node `i`'s IPv4 addresses on `dev`, as `ip -o -4 addr` lists them.
fn addresses(lab: &Lab, i: usize, dev: &str) -> String {
    lab.ns(
        &lab.nodes[i].clone(),
        &["ip", "-o", "-4", "addr", "show", "dev", dev],
    )
}

#[test]
fn a_vip_on_another_interface_with_a_label_moves_and_is_announced_there() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("vif", 2);
    add_service_network(&lab);
    let mut pids = Vec::new();
    for (i, priority) in [100, 90].into_iter().enumerate() {
        lab.start_name_server(i, BACKEND_PORT);
        let path = lab.write(&format!("node{i}.toml"), &config(priority));
        pids.push(lab.spawn(
            &lab.nodes[i].clone(),
            HAVIP,
            &["run", "--config", &path.display().to_string()],
            &format!("node{i}.log"),
            &[],
        ));
    }
    let on_eth1 = |i: usize| addresses(&lab, i, "eth1").contains(&format!("{VIP}/24"));
    let held = wait_for(Duration::from_secs(5), || on_eth1(0).then_some(()));
    assert!(
        held.is_some(),
        "node0 adds the VIP to eth1\n{}",
        lab.all_logs()
    );
    let eth1 = addresses(&lab, 0, "eth1");
    assert!(eth1.contains("eth1:vip"), "with its label: {eth1}");
    assert!(
        !addresses(&lab, 0, "eth0").contains(&VIP.to_string()),
        "not on eth0"
    );
    assert!(!on_eth1(1), "node1 is backup");

    let target = SocketAddr::new(IpAddr::V4(VIP), 80);
    let prober = lab.start_prober(target, Duration::from_millis(2), Duration::from_secs(6));
    let reached = wait_for(Duration::from_secs(2), || {
        prober.first_answer_from("node0", Instant::now() - Duration::from_secs(2))
    });
    assert!(
        reached.is_some(),
        "the client reaches node0 over eth1\n{}",
        lab.all_logs()
    );

    // A crash: kill -9, both links down.
    lab.signal(pids[0], "KILL");
    for dev in ["eth0", "eth1"] {
        lab.ns(&lab.nodes[0].clone(), &["ip", "link", "set", dev, "down"]);
    }
    let crashed = Instant::now();
    let taken = wait_for(Duration::from_secs(3), || on_eth1(1).then_some(()));
    assert!(
        taken.is_some(),
        "node1 adds the VIP to eth1\n{}",
        lab.all_logs()
    );
    assert!(
        addresses(&lab, 1, "eth1").contains("eth1:vip"),
        "with its label"
    );
    // The client only follows if node1 announced the VIP on eth1 (gratuitous ARP there).
    let followed = wait_for(Duration::from_secs(3), || {
        prober.first_answer_from("node1", crashed)
    });
    assert!(
        followed.is_some(),
        "the client follows the VIP to node1\n{}",
        lab.all_logs()
    );

    // A clean stop removes the labelled address again.
    lab.signal(pids[1], "TERM");
    assert_eq!(
        lab.wait(pids[1], Duration::from_secs(5)),
        Some(Some(0)),
        "{}",
        lab.all_logs()
    );
    assert!(
        !on_eth1(1),
        "the VIP is gone from eth1: {}",
        addresses(&lab, 1, "eth1")
    );
}
