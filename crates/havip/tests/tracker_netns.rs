//! The `service` tracker's `min_healthy_fraction` and the rule that backup backends do not
//! count (issue 15 item 6), on a real havip node in a namespace with real backends: four
//! primaries and two backups, each a TCP server its own health check watches. The steps are
//! chosen so that counting the backups would give another verdict (one primary and two
//! backups up: 1 of 4 primaries is below 0.5, while 3 of 6 backends would not be). The effective
//! priority is read from `/api/status`, backends' health from `/metrics`. Needs root,
//! `ip netns` and curl.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use havip_test_support::lab::Lab;
use havip_test_support::node_config::{Health, NodeConfig, Service, Tracker, Vrrp};
use havip_test_support::servers::{Reply, Server};
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const ADMIN: &str = "127.0.0.1:8404";
const PRIMARIES: usize = 4;
const BACKUPS: usize = 2;

fn backend(n: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9100 + n as u16))
}

fn config() -> NodeConfig {
    let mut service = Service::new("api", SocketAddr::new(IpAddr::V4(VIP), 80))
        .health(Health::tcp().interval("100ms").fall(2).rise(1));
    for n in 0..PRIMARIES {
        service = service.named_backend(&format!("p{n}"), backend(n));
    }
    for n in PRIMARIES..PRIMARIES + BACKUPS {
        service = service.backup_backend(&format!("spare{n}"), backend(n));
    }
    NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .admin(ADMIN)
        .service(service)
        .tracker(
            Tracker::service("half", "api")
                .set("min_healthy_fraction", 0.5)
                .weight(-50),
        )
        .vrrp(
            Vrrp::new("VI_1", 42)
                .priority(100)
                .advert_interval("100ms")
                .vip(format!("{VIP}/24"))
                .track(&["half"]),
        )
}

/// (effective priority, backends up) as the node reports them.
fn observe(lab: &Lab) -> Option<(u64, usize)> {
    let ns = lab.nodes[0].clone();
    let url = format!("http://{ADMIN}/api/status");
    let (ok, body) = lab.try_ns(&ns, &["curl", "-sf", "--max-time", "2", &url]);
    let json: serde_json::Value = serde_json::from_str(&body).ok().filter(|_| ok)?;
    let priority = json["vrrp"][0]["priority"].as_u64()?;
    let up = lab
        .scrape(&ns, ADMIN)
        .count("havip_backend_up", &[("service", "api")]) as usize;
    Some((priority, up))
}

/// Wait until the node reports `up` backends up (health checks settled), then return the
/// priority it has once its tracker (looking every 100 ms) has seen that.
fn priority_with(lab: &Lab, up: usize) -> u64 {
    let settled = wait_for(Duration::from_secs(5), || {
        observe(lab).filter(|(_, n)| *n == up)
    });
    assert!(
        settled.is_some(),
        "{up} backends up; now {:?}\n{}",
        observe(lab),
        lab.all_logs()
    );
    std::thread::sleep(Duration::from_millis(400));
    let (priority, now_up) = observe(lab).unwrap();
    assert_eq!(now_up, up, "{}", lab.all_logs());
    priority
}

#[test]
fn min_healthy_fraction_counts_primaries_only() {
    require!(Need::Root, Need::Netns, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("trf", 1);
    let netns = Lab::netns_path(&lab.nodes[0]);
    let mut servers: Vec<Option<Server>> = (0..PRIMARIES + BACKUPS)
        .map(|n| {
            Some(Server::start_in(
                &netns,
                backend(n),
                Reply::Text(format!("b{n}\n")),
            ))
        })
        .collect();
    let path = lab.write("node0.toml", &config().to_toml());
    lab.spawn(
        &lab.nodes[0].clone(),
        HAVIP,
        &["run", "--config", &path.display().to_string()],
        "node0.log",
        &[],
    );
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(5));

    assert_eq!(priority_with(&lab, 6), 100);
    // Two of four primaries up: exactly the fraction (ceil(0.5 x 4) = 2), still healthy.
    servers[0] = None;
    servers[1] = None;
    assert_eq!(priority_with(&lab, 4), 100, "2 of 4 primaries meet 0.5");
    // One of four: below, and the tracker's weight applies although both backups are up
    // (counted, 3 of 6 would meet 0.5).
    servers[2] = None;
    assert_eq!(priority_with(&lab, 3), 50, "backup backends do not count");
    // No primary left: the backups serve the clients, still unhealthy.
    servers[3] = None;
    assert_eq!(priority_with(&lab, 2), 50, "running on backups is degraded");
    let (_, answer) = lab.try_ns(
        &lab.client.clone(),
        &[
            "curl",
            "-s",
            "--max-time",
            "2",
            &format!("telnet://{VIP}:80"),
        ],
    );
    assert!(
        answer.contains("b4") || answer.contains("b5"),
        "a backup answers the clients: {answer}"
    );
    // Two primaries back: healthy again.
    for n in [0, 1] {
        servers[n] = Some(Server::start_in(
            &netns,
            backend(n),
            Reply::Text(format!("b{n}\n")),
        ));
    }
    assert_eq!(priority_with(&lab, 4), 100, "{}", lab.all_logs());
}
