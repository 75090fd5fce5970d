//! `havip drill` refuses what it must not drill (issue 15 item 6), against two real havip
//! nodes in namespaces: no node is MASTER (both still backup in their first
//! Master_Down_Interval), the admin endpoint wants credentials the drill was not given
//! (HTTP 401), and two nodes claim MASTER (VRRP multicast dropped between them: split brain).
//! Each time the drill exits non-zero with its reason and nothing moves. Needs root,
//! `ip netns`, nftables and curl.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const BACKEND_PORT: u16 = 9000;
const CREDENTIALS: &str = "ops:drill-secret";

fn admin(i: usize) -> String {
    format!("{}:8404", node_v4(i))
}

/// VRRPv2 with 1 s adverts: a 3.6 s first Master_Down_Interval, time enough to drill while
/// both nodes are still backup.
fn config(i: usize, priority: u8) -> NodeConfig {
    NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .admin(admin(i))
        .admin_commands()
        .admin_key("auth", vec![CREDENTIALS.to_string()])
        .service(
            Service::new("api", SocketAddr::new(IpAddr::V4(VIP), 80))
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        )
        .vrrp(
            Vrrp::new("VI_1", 42)
                .version(2)
                .priority(priority)
                .advert_interval("1s")
                .vip(format!("{VIP}/24")),
        )
}

/// The state node `i` reports for VI_1 (with the credentials).
fn state(lab: &Lab, i: usize) -> Option<String> {
    let url = format!("http://{}/api/status", admin(i));
    let (ok, body) = lab.try_ns(
        &lab.client.clone(),
        &["curl", "-sf", "--max-time", "2", "-u", CREDENTIALS, &url],
    );
    if !ok {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["vrrp"][0]["state"].as_str().map(str::to_string)
}

/// Run the drill from the client namespace; (succeeded, output).
fn drill(lab: &Lab, auth: bool) -> (bool, String) {
    let (a0, a1, target) = (admin(0), admin(1), format!("{VIP}:80"));
    let mut args = vec![
        HAVIP, "drill", "--node", &a0, "--node", &a1, "--target", &target, "--hold", "1s",
        "--limit", "5s",
    ];
    if auth {
        args.extend(["--auth", CREDENTIALS]);
    }
    lab.try_ns(&lab.client.clone(), &args)
}

#[test]
fn the_drill_refuses_without_a_master_with_two_masters_and_without_credentials() {
    require!(Need::Root, Need::Netns, Need::Nft, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("drf", 2);
    for (i, priority) in [100, 90].into_iter().enumerate() {
        lab.start_name_server(i, BACKEND_PORT);
        let path = lab.write(&format!("node{i}.toml"), &config(i, priority).to_toml());
        lab.spawn(
            &lab.nodes[i].clone(),
            HAVIP,
            &["run", "--config", &path.display().to_string()],
            &format!("node{i}.log"),
            &[],
        );
    }

    // 1. Both answer BACKUP (in their first Master_Down_Interval): no master to drill.
    let both_backup = wait_for(Duration::from_secs(3), || {
        (state(&lab, 0).as_deref() == Some("BACKUP") && state(&lab, 1).as_deref() == Some("BACKUP"))
            .then_some(())
    });
    assert!(
        both_backup.is_some(),
        "both start as backup\n{}",
        lab.all_logs()
    );
    let (ok, out) = drill(&lab, true);
    assert!(!ok, "{out}");
    assert!(
        out.contains("refusing to drill: no node is MASTER of VI_1"),
        "{out}"
    );

    // 2. Once node 0 is master: without credentials every node answers 401.
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(6));
    let (ok, out) = drill(&lab, false);
    assert!(!ok, "{out}");
    assert!(
        out.contains("HTTP 401: the admin endpoint wants credentials (--auth user:password)"),
        "{out}"
    );
    assert!(
        out.contains("refusing to drill: 0 healthy node(s) of 2"),
        "{out}"
    );
    assert_eq!(state(&lab, 0).as_deref(), Some("MASTER"), "nothing moved");

    // 3. Split brain: VRRP multicast dropped both ways, node 1 takes over too.
    for i in 0..2 {
        lab.drop_vrrp_multicast(i);
    }
    let split = wait_for(Duration::from_secs(6), || {
        (lab.holders(IpAddr::V4(VIP)) == vec![0, 1]).then_some(())
    });
    assert!(split.is_some(), "both hold the VIP\n{}", lab.all_logs());
    let (ok, out) = drill(&lab, true);
    assert!(!ok, "{out}");
    assert!(
        out.contains("refusing to drill: 2 nodes claim MASTER of VI_1 (split brain?)"),
        "{out}"
    );
    assert_eq!(
        lab.holders(IpAddr::V4(VIP)),
        vec![0, 1],
        "a refused drill changes nothing"
    );
    for i in 0..2 {
        assert_eq!(
            state(&lab, i).as_deref(),
            Some("MASTER"),
            "node{i} was not stepped down"
        );
    }
}
