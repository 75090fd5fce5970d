//! Routes and nexthop objects against a real kernel, in a namespace of a lab: the host routes
//! of announced VIPs in a table of their own, the local ("AnyIP") route that makes the kernel
//! accept connections to a VIP held on no interface, and the nexthop groups a routing daemon
//! installs ECMP routes with, read back as `ip route` / `ip nexthop` show them.
//!
//! Needs root and `ip netns` (the guard skips loudly outside CI and fails under CI=true).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use havip_sys::netlink::{Netlink, RouteKind, RouteRequest};
use havip_test_support::lab::{Lab, LabSpec};
use havip_test_support::{require, Need};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const PROTOCOL: u8 = 200;

fn lab(tag: &str) -> Lab {
    let mut spec = LabSpec::new(tag, 1);
    spec.client = None;
    Lab::with(spec).expect("lab")
}

fn host_route(table: u32, destination: IpAddr, kind: RouteKind, lo: u32) -> RouteRequest {
    RouteRequest {
        table,
        destination,
        prefix_len: if destination.is_ipv4() { 32 } else { 128 },
        kind,
        protocol: PROTOCOL,
        interface: Some(lo),
    }
}

#[test]
fn host_routes_in_a_table_of_their_own_are_added_read_back_and_removed() {
    require!(Need::Root, Need::Netns);
    let lab = lab("rt");
    let ns = lab.nodes[0].clone();
    lab.in_ns(&ns, || {
        let netlink = Netlink::open().expect("netlink");
        let lo = netlink.link_by_name("lo").unwrap().expect("lo").index;
        assert!(
            netlink.routes(100).unwrap().is_empty(),
            "a table nobody made is empty"
        );
        for destination in [IpAddr::V4(VIP), IpAddr::V6(VIP6)] {
            let route = host_route(100, destination, RouteKind::Unicast, lo);
            assert!(netlink.add_route(&route).unwrap(), "added");
            assert!(!netlink.add_route(&route).unwrap(), "already there");
        }
        // A route of another table is not read with table 100.
        let other = host_route(101, IpAddr::V4(VIP), RouteKind::Unicast, lo);
        assert!(netlink.add_route(&other).unwrap());
        let routes = netlink.routes(100).unwrap();
        assert_eq!(routes.len(), 2, "{routes:#?}");
        for route in &routes {
            assert_eq!(route.table, 100);
            assert_eq!(route.protocol, PROTOCOL);
            assert_eq!(route.kind, RouteKind::Unicast);
            assert_eq!(route.interface, Some(lo));
        }
        assert!(routes
            .iter()
            .any(|r| r.destination == IpAddr::V4(VIP) && r.prefix_len == 32));
        assert!(routes
            .iter()
            .any(|r| r.destination == IpAddr::V6(VIP6) && r.prefix_len == 128));
        // Tables above 255 are carried in RTA_TABLE.
        let high = host_route(70_000, IpAddr::V4(VIP), RouteKind::Unicast, lo);
        assert!(netlink.add_route(&high).unwrap());
        assert_eq!(netlink.routes(70_000).unwrap().len(), 1);

        let route = host_route(100, IpAddr::V4(VIP), RouteKind::Unicast, lo);
        assert!(netlink.remove_route(&route).unwrap(), "removed");
        assert!(!netlink.remove_route(&route).unwrap(), "already gone");
        assert_eq!(netlink.routes(100).unwrap().len(), 1);
        assert_eq!(netlink.routes(101).unwrap().len(), 1);
    });
    // What ip(8) shows agrees.
    let shown = lab.ns(&ns, &["ip", "-6", "route", "show", "table", "100"]);
    assert!(shown.contains("2001:db8::100 dev lo proto 200"), "{shown}");
}

#[test]
fn a_local_route_makes_the_kernel_accept_connections_to_a_vip_on_no_interface() {
    require!(Need::Root, Need::Netns);
    let lab = lab("ay");
    let ns = lab.nodes[0].clone();
    lab.in_ns(&ns, || {
        let netlink = Netlink::open().expect("netlink");
        let lo = netlink.link_by_name("lo").unwrap().expect("lo").index;
        let target = SocketAddr::new(IpAddr::V4(VIP), 18080);
        assert!(TcpListener::bind(target).is_err(), "not local yet");
        let local = host_route(255, IpAddr::V4(VIP), RouteKind::Local, lo);
        assert!(netlink.add_route(&local).unwrap());
        let listener = TcpListener::bind(target).expect("bind on the VIP");
        let stream = TcpStream::connect_timeout(&target, Duration::from_secs(1)).expect("connect");
        let (accepted, peer) = listener.accept().expect("accept");
        assert_eq!(accepted.local_addr().unwrap(), target);
        assert_eq!(peer, stream.local_addr().unwrap());
        // The address is on no interface: only the local route makes it ours.
        let addresses = netlink.addresses(None).unwrap();
        assert!(!addresses.iter().any(|a| a.address == IpAddr::V4(VIP)));
        let routes = netlink.routes(255).unwrap();
        assert!(routes
            .iter()
            .any(|r| r.destination == IpAddr::V4(VIP) && r.kind == RouteKind::Local));
        assert!(netlink.remove_route(&local).unwrap());
    });
}

#[test]
fn routes_by_nexthop_object_and_groups_read_back() {
    require!(Need::Root, Need::Netns);
    let lab = lab("nh");
    let ns = lab.nodes[0].clone();
    let iface = lab.interface(0).to_string();
    for (id, gateway) in [("11", "10.77.0.21"), ("12", "10.77.0.22")] {
        lab.ns(
            &ns,
            &[
                "ip", "nexthop", "add", "id", id, "via", gateway, "dev", &iface,
            ],
        );
    }
    lab.ns(
        &ns,
        &[
            "ip",
            "nexthop",
            "add",
            "id",
            "40",
            "group",
            "11/12,3",
            "type",
            "resilient",
            "buckets",
            "8",
        ],
    );
    lab.ns(&ns, &["ip", "nexthop", "add", "id", "41", "group", "11/12"]);
    lab.ns(
        &ns,
        &[
            "ip",
            "route",
            "add",
            "10.98.0.1/32",
            "nhid",
            "40",
            "table",
            "100",
        ],
    );
    lab.ns(
        &ns,
        &[
            "ip",
            "route",
            "add",
            "10.98.0.2/32",
            "table",
            "100",
            "nexthop",
            "via",
            "10.77.0.21",
            "nexthop",
            "via",
            "10.77.0.22",
            "weight",
            "2",
        ],
    );
    lab.in_ns(&ns, || {
        let netlink = Netlink::open().expect("netlink");
        let eth = netlink.link_by_name(&iface).unwrap().expect("eth0").index;
        let routes = netlink.routes(100).unwrap();
        let by_object = routes
            .iter()
            .find(|r| r.destination == "10.98.0.1".parse::<IpAddr>().unwrap())
            .expect("route by nexthop object");
        assert_eq!(by_object.nexthop_id, Some(40));
        let inline = routes
            .iter()
            .find(|r| r.destination == "10.98.0.2".parse::<IpAddr>().unwrap())
            .expect("multipath route");
        let hops: Vec<_> = inline
            .multipath
            .iter()
            .map(|h| (h.gateway.unwrap().to_string(), h.interface, h.weight))
            .collect();
        assert_eq!(
            hops,
            vec![
                ("10.77.0.21".to_string(), eth, 1),
                ("10.77.0.22".to_string(), eth, 2)
            ]
        );
        let group = netlink.nexthop(40).unwrap().expect("group 40");
        assert!(group.resilient);
        assert_eq!(group.group, vec![(11, 1), (12, 3)]);
        assert!(!netlink.nexthop(41).unwrap().expect("group 41").resilient);
        let member = netlink.nexthop(11).unwrap().expect("nexthop 11");
        assert_eq!(member.gateway, Some("10.77.0.21".parse().unwrap()));
        assert_eq!(member.interface, Some(eth));
        assert_eq!(netlink.nexthop(999).unwrap(), None);
    });
}

#[test]
fn a_local_route_appended_beside_an_address_outlives_it() {
    require!(Need::Root, Need::Netns);
    let lab = lab("ap");
    let ns = lab.nodes[0].clone();
    let iface = lab.interface(0).to_string();
    lab.in_ns(&ns, || {
        let netlink = Netlink::open().expect("netlink");
        let lo = netlink.link_by_name("lo").unwrap().expect("lo").index;
        let eth = netlink.link_by_name(&iface).unwrap().expect("eth0").index;
        let vip = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 200));
        // VRRP holds the VIP on the interface (the kernel adds its own local route) ...
        assert!(netlink.add_address(eth, vip, 24, None).unwrap());
        // ... and the BGP side makes it local on its own, beside it.
        let local = host_route(255, vip, RouteKind::Local, lo);
        assert!(netlink.append_route(&local).unwrap());
        assert!(!netlink.append_route(&local).unwrap(), "identical: EEXIST");
        // VRRP releases it: the VIP stays local.
        assert!(netlink.remove_address(eth, vip, 24).unwrap());
        let listener = TcpListener::bind(SocketAddr::new(vip, 18081));
        assert!(listener.is_ok(), "still local: {listener:?}");
        assert!(netlink.remove_route(&local).unwrap());
        assert!(TcpListener::bind(SocketAddr::new(vip, 18082)).is_err());
    });
}
