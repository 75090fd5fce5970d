//! VRRPv3 over IPv6 unicast between havip nodes (issue 15 item 6): the nodes advertise to
//! each other's global address (fd77::11, ::12) instead of ff02::12, the backup hears the
//! master, and a crash moves the IPv6 VIP within Master_Down_Interval. nftables counts what
//! each node sends to ff02::12 (must be nothing). Needs root, `ip netns`, nftables and curl.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use havip_test_support::lab::{node_v6, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::wait::watch;
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x200);
const BACKEND_PORT: u16 = 9000;
const ADMIN: &str = "127.0.0.1:8404";

fn config(i: usize, priority: u8) -> NodeConfig {
    NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .admin(ADMIN)
        .service(
            Service::new("api", SocketAddr::new(IpAddr::V6(VIP6), 80))
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        )
        .vrrp(
            Vrrp::new("VI_6", 42)
                .priority(priority)
                .advert_interval("100ms")
                .unicast(node_v6(i), &[node_v6(1 - i).to_string()])
                .vip(format!("{VIP6}/64")),
        )
}

/// Count (and let pass) what node `i` sends to the IPv6 VRRP group.
fn count_multicast(lab: &Lab, i: usize) {
    let ns = lab.nodes[i].clone();
    lab.ns(&ns, &["nft", "add", "table", "inet", "mc6"]);
    lab.ns(
        &ns,
        &[
            "nft",
            "add",
            "chain",
            "inet",
            "mc6",
            "out",
            "{ type filter hook output priority 0 ; }",
        ],
    );
    lab.ns(
        &ns,
        &[
            "nft", "add", "rule", "inet", "mc6", "out", "ip6", "daddr", "ff02::12", "counter",
        ],
    );
}

fn multicast_sent(lab: &Lab, i: usize) -> u64 {
    let out = lab.ns(
        &lab.nodes[i].clone(),
        &["nft", "list", "table", "inet", "mc6"],
    );
    out.split("packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {out}"))
}

#[test]
fn ipv6_unicast_between_havip_nodes_fails_over() {
    require!(Need::Root, Need::Netns, Need::Nft, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("u6", 2);
    let mut pids = Vec::new();
    for (i, priority) in [100, 90].into_iter().enumerate() {
        count_multicast(&lab, i);
        lab.start_name_server(i, BACKEND_PORT);
        let path = lab.write(&format!("node{i}.toml"), &config(i, priority).to_toml());
        pids.push(lab.spawn(
            &lab.nodes[i].clone(),
            HAVIP,
            &["run", "--config", &path.display().to_string()],
            &format!("node{i}.log"),
            &[],
        ));
    }
    let vip = IpAddr::V6(VIP6);
    lab.wait_for_sole_holder(vip, 0, &[], Duration::from_secs(5));
    // Stable for eight intervals: node 1 hears node 0's unicast adverts.
    let moved = watch(
        Duration::from_millis(800),
        Duration::from_millis(50),
        || {
            let holders = lab.holders(vip);
            (holders != vec![0]).then_some(holders)
        },
    );
    assert!(moved.is_empty(), "{moved:?}\n{}", lab.all_logs());
    let heard = lab
        .scrape(&lab.nodes[1].clone(), ADMIN)
        .count("havip_vrrp_adverts_received_total", &[("instance", "VI_6")]);
    assert!(
        heard >= 5,
        "node1 accepted node0's unicast adverts: {heard}"
    );
    for i in 0..2 {
        assert_eq!(
            multicast_sent(&lab, i),
            0,
            "node{i} sent nothing to ff02::12"
        );
    }
    lab.signal(pids[0], "KILL");
    lab.set_node_link(0, false);
    let crashed = Instant::now();
    lab.wait_for_sole_holder(vip, 1, &[0], Duration::from_secs(2));
    let took = crashed.elapsed();
    // Master_Down_Interval for priority 90 at 100 ms: 365 ms, plus polling and load.
    assert!(
        took <= Duration::from_millis(365 + 300),
        "took {took:?}\n{}",
        lab.all_logs()
    );
    let served = wait_for(Duration::from_secs(2), || {
        let (ok, out) = lab.try_ns(
            &lab.client.clone(),
            &[
                "curl",
                "-s",
                "--max-time",
                "1",
                &format!("telnet://[{VIP6}]:80"),
            ],
        );
        (ok || out.contains("node1")).then_some(out)
    });
    assert!(
        served.is_some_and(|o| o.contains("node1")),
        "the client reaches node1 over IPv6\n{}",
        lab.all_logs()
    );
}
