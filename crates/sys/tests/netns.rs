//! The network edge against a real kernel: two hosts of a namespace lab on one bridge, the
//! sockets under test opened inside them (a thread enters a namespace with `enter_netns`, so
//! everything runs in this process), and tcpdump + tshark as an independent judge of the bytes
//! on the wire.
//!
//! Needs root and `ip netns` (the guard skips loudly outside CI and fails under CI=true);
//! the wire checks also need tcpdump and tshark. The lab removes every namespace, also when a
//! test panics.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use havip_sys::announce::Announcer;
use havip_sys::netlink::{errno, InterfaceAddress, Link, NetEvent, Netlink, NetlinkMonitor};
use havip_sys::vrrp_socket::{Family, ReceivedDatagram, VrrpReceiver, VrrpSender};
use havip_test_support::capture::{ethertype, icmpv6_type, ip_protocol, Capture};
use havip_test_support::guard::may_run_part;
use havip_test_support::lab::{HostSpec, Lab, LabSpec};
use havip_test_support::{require, test_name, wait_for_every, Need};
use havip_vrrp::packet;
use havip_vrrp::{
    AddressList, AdvertInterval, Advertisement, Authentication, ChecksumContext, Password,
    V3Ipv4Checksum, Version,
};

const A_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const B_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const VIP_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const A_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
const B_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xb);
const A_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa);
const B_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xb);
const VIP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// How often the waits below look again (kernel events, read without a subprocess).
const STEP: Duration = Duration::from_millis(2);

fn poll<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    wait_for_every(STEP, timeout, f)
}

/// Hosts A and B of a lab, with interface `va` in A and `vb` in B, both up on the bridge:
/// A has 10.99.0.1/24, fe80::a and 2001:db8::a/64; B has 10.99.0.2/24, fe80::b and
/// 2001:db8::b/64. The kernel generates no link-local addresses of its own (addrgenmode
/// none); ours are added without DAD so they are usable at once, while DAD stays on for
/// anything else.
struct Pair {
    lab: Lab,
    a: String,
    b: String,
    va: Link,
    vb: Link,
}

impl Pair {
    fn create(tag: &str) -> Pair {
        let host =
            |name: &str, interface: &str, v4: Ipv4Addr, ll: Ipv6Addr, v6: Ipv6Addr| HostSpec {
                name: name.to_string(),
                interface: interface.to_string(),
                v4: vec![(v4, 24)],
                v6: vec![(ll, 64), (v6, 64)],
                kernel_link_local: false,
                dad: true,
            };
        let spec = LabSpec {
            nodes: vec![
                host("a", "va", A_V4, A_LL, A_V6),
                host("b", "vb", B_V4, B_LL, B_V6),
            ],
            client: None,
            ..LabSpec::new(tag, 0)
        };
        let lab = Lab::with(spec).unwrap_or_else(|e| panic!("lab: {e}"));
        let (a, b) = (lab.nodes[0].clone(), lab.nodes[1].clone());
        let va = lab.in_ns(&a, || wait_for_link("va")).expect("va comes up");
        let vb = lab.in_ns(&b, || wait_for_link("vb")).expect("vb comes up");
        Pair { lab, a, b, va, vb }
    }

    /// Runs `f` on a thread inside namespace `ns`; sockets it opens stay in that namespace.
    fn in_ns<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        self.lab.in_ns(ns, f)
    }

    /// `ip args` inside namespace `ns`; panics when it fails.
    fn ip(&self, ns: &str, args: &[&str]) {
        let mut argv = vec!["ip"];
        argv.extend_from_slice(args);
        self.lab.ns(ns, &argv);
    }
}

/// The link, once it is up with carrier (veth carrier follows the peer within milliseconds).
fn wait_for_link(name: &str) -> Option<Link> {
    let netlink = Netlink::open().expect("netlink");
    poll(Duration::from_secs(5), || {
        netlink
            .link_by_name(name)
            .expect("link query")
            .filter(|link| link.up)
    })
}

fn advert(version: Version, addresses: AddressList) -> Advertisement {
    Advertisement {
        version,
        vrid: 51,
        priority: 100,
        interval: match version {
            Version::V2 => AdvertInterval::from_seconds(1),
            Version::V3 => AdvertInterval::from_centiseconds(10),
        }
        .expect("interval"),
        addresses,
        authentication: match version {
            Version::V2 => {
                Authentication::SimplePassword(Password::from_keepalived_auth_pass("secret"))
            }
            Version::V3 => Authentication::None,
        },
    }
}

fn context(source: IpAddr, destination: IpAddr) -> ChecksumContext {
    ChecksumContext {
        source,
        destination,
        v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
    }
}

/// One advert to send and what must arrive.
struct Case {
    name: &'static str,
    advert: Advertisement,
    source: IpAddr,
    destination: IpAddr,
    bytes: Vec<u8>,
}

impl Case {
    fn new(name: &'static str, advert: Advertisement, source: IpAddr, destination: IpAddr) -> Case {
        let bytes = packet::encode(&advert, &context(source, destination)).expect("encode");
        Case {
            name,
            advert,
            source,
            destination,
            bytes,
        }
    }
}

/// Reads until `count` datagrams arrived or two seconds passed.
fn receive(receiver: &VrrpReceiver, count: usize) -> Vec<(ReceivedDatagram, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    poll(Duration::from_secs(2), || {
        loop {
            match receiver.recv(&mut buf) {
                Ok(datagram) => {
                    let payload = buf[datagram.payload.clone()].to_vec();
                    got.push((datagram, payload));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        (got.len() >= count).then_some(())
    });
    got
}

fn assert_nothing_queued(receiver: &VrrpReceiver, what: &str) {
    let mut buf = [0u8; 2048];
    match receiver.recv(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("{what}: expected nothing, got {other:?}"),
    }
}

/// A send-only socket must not queue what arrives for its protocol.
fn assert_send_socket_empty(fd: &impl std::os::fd::AsFd, what: &str) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    match socket2::SockRef::from(fd).recv(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("{what}: send socket has queued data: {other:?}"),
    }
}

#[test]
fn vrrp_adverts_cross_the_link_with_exact_ip_facts() {
    require!(Need::Root, Need::Netns);
    let pair = Pair::create("vrrp");
    let vb = pair.vb.clone();
    let wire = may_run_part(test_name!(), "wire check", &[Need::Tcpdump, Need::Tshark]);
    let capture = wire.then(|| {
        pair.lab
            .start_capture(&pair.b, "vb", "ip proto 112 or ip6 proto 112")
    });

    let (cases_v4, cases_v6) = cases();
    let Sockets {
        a_rx4,
        a_rx6,
        a_tx4,
        a_tx6,
        b_rx4,
        b_rx6,
        b_tx4,
        b_tx6,
        b_unicast4,
        b_unicast6,
    } = Sockets::open(&pair);
    assert_eq!(b_rx4.ifindex(), vb.index);

    // A sends; B must see each advert exactly as sent, with the IP facts the codec needs.
    for (cases, sender, receiver) in [
        (&cases_v4[..], &a_tx4, &b_rx4),
        (&cases_v6[..], &a_tx6, &b_rx6),
    ] {
        for case in cases {
            sender
                .send(case.source, case.destination, 255, &case.bytes)
                .unwrap_or_else(|e| panic!("{}: send: {e}", case.name));
        }
        let got = receive(receiver, cases.len());
        assert_eq!(got.len(), cases.len(), "all adverts arrive");
        for (case, (datagram, payload)) in cases.iter().zip(&got) {
            assert_eq!(datagram.source, case.source, "{}: source", case.name);
            assert_eq!(
                datagram.destination, case.destination,
                "{}: destination",
                case.name
            );
            assert_eq!(datagram.ttl, 255, "{}: TTL", case.name);
            assert_eq!(payload, &case.bytes, "{}: payload", case.name);
            let decoded = packet::decode(payload, &context(datagram.source, datagram.destination))
                .unwrap_or_else(|e| panic!("{}: decode: {e}", case.name));
            assert_eq!(decoded, case.advert, "{}: decoded", case.name);
        }
    }
    for (receiver, unicast) in [
        (&b_unicast4, IpAddr::V4(B_V4)),
        (&b_unicast6, IpAddr::V6(B_V6)),
    ] {
        let got = receive(receiver, 1);
        let destinations: Vec<IpAddr> = got.iter().map(|(d, _)| d.destination).collect();
        assert_eq!(destinations, vec![unicast], "unicast-only receiver");
        assert_nothing_queued(receiver, "unicast-only receiver");
    }
    // Multicast loopback is off: A's own receivers did not hear A.
    assert_nothing_queued(&a_rx4, "A hears its own IPv4 adverts");
    assert_nothing_queued(&a_rx6, "A hears its own IPv6 adverts");

    // A TTL below 255 is reported as it arrived (the instance drops it, RFC 5798 7.1).
    let low = &cases_v4[1];
    a_tx4
        .send(low.source, low.destination, 1, &low.bytes)
        .expect("send TTL 1");
    let got = receive(&b_rx4, 1);
    assert_eq!(got.first().map(|(d, _)| d.ttl), Some(1));

    // A buffer too small for the packet: InvalidData, and the packet is consumed.
    a_tx6
        .send(
            cases_v6[0].source,
            cases_v6[0].destination,
            255,
            &cases_v6[0].bytes,
        )
        .expect("send");
    let mut tiny = [0u8; 8];
    let error = poll(Duration::from_secs(2), || match b_rx6.recv(&mut tiny) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        other => Some(other.expect_err("truncated packet is an error")),
    })
    .expect("the packet arrives");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert_nothing_queued(&b_rx6, "truncated packet consumed");

    // B answers; A's receivers hear it, while A's send sockets queue nothing.
    let back_v4 = Case::new(
        "back v4",
        advert(Version::V3, AddressList::V4(vec![VIP_V4])),
        B_V4.into(),
        GROUP_V4.into(),
    );
    let back_v6 = Case::new(
        "back v6",
        advert(Version::V3, AddressList::V6(vec![VIP_V6])),
        B_LL.into(),
        GROUP_V6.into(),
    );
    b_tx4
        .send(back_v4.source, back_v4.destination, 255, &back_v4.bytes)
        .expect("B sends v4");
    b_tx6
        .send(back_v6.source, back_v6.destination, 255, &back_v6.bytes)
        .expect("B sends v6");
    assert_eq!(receive(&a_rx4, 1).len(), 1, "A hears B over IPv4");
    assert_eq!(receive(&a_rx6, 1).len(), 1, "A hears B over IPv6");
    assert_send_socket_empty(&a_tx4, "A's IPv4 sender");
    assert_send_socket_empty(&a_tx6, "A's IPv6 sender");

    // Wrong family is refused before anything is sent.
    let error = a_tx4
        .send(A_LL.into(), GROUP_V6.into(), 255, &cases_v6[0].bytes)
        .expect_err("family mismatch");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);

    if let Some(capture) = capture {
        judge_on_the_wire(capture);
    }
}

/// The sockets under test: in A and B a joined receiver and a sender per family, and in B
/// a unicast-only receiver per family beside the joined ones.
struct Sockets {
    a_rx4: VrrpReceiver,
    a_rx6: VrrpReceiver,
    a_tx4: VrrpSender,
    a_tx6: VrrpSender,
    b_rx4: VrrpReceiver,
    b_rx6: VrrpReceiver,
    b_tx4: VrrpSender,
    b_tx6: VrrpSender,
    b_unicast4: VrrpReceiver,
    b_unicast6: VrrpReceiver,
}

impl Sockets {
    fn open(pair: &Pair) -> Sockets {
        let (va, vb) = (&pair.va, &pair.vb);
        let (b_rx4, b_rx6, b_tx4, b_tx6) = pair.in_ns(&pair.b, || {
            (
                VrrpReceiver::open(vb.index, &vb.name, Family::V4, true).expect("B receiver v4"),
                VrrpReceiver::open(vb.index, &vb.name, Family::V6, true).expect("B receiver v6"),
                VrrpSender::open(vb.index, &vb.name, Family::V4).expect("B sender v4"),
                VrrpSender::open(vb.index, &vb.name, Family::V6).expect("B sender v6"),
            )
        });
        // Unicast-only receivers next to the joined ones must not get the group's packets.
        let (b_unicast4, b_unicast6) = pair.in_ns(&pair.b, || {
            (
                VrrpReceiver::open(vb.index, &vb.name, Family::V4, false).expect("unicast v4"),
                VrrpReceiver::open(vb.index, &vb.name, Family::V6, false).expect("unicast v6"),
            )
        });
        let (a_rx4, a_rx6, a_tx4, a_tx6) = pair.in_ns(&pair.a, || {
            (
                VrrpReceiver::open(va.index, &va.name, Family::V4, true).expect("A receiver v4"),
                VrrpReceiver::open(va.index, &va.name, Family::V6, true).expect("A receiver v6"),
                VrrpSender::open(va.index, &va.name, Family::V4).expect("A sender v4"),
                VrrpSender::open(va.index, &va.name, Family::V6).expect("A sender v6"),
            )
        });
        Sockets {
            a_rx4,
            a_rx6,
            a_tx4,
            a_tx6,
            b_rx4,
            b_rx6,
            b_tx4,
            b_tx6,
            b_unicast4,
            b_unicast6,
        }
    }
}

/// What A sends: VRRP v2 and v3 over IPv4 (multicast and unicast), v3 over IPv6.
fn cases() -> ([Case; 3], [Case; 2]) {
    let vips_v4 = AddressList::V4(vec![VIP_V4]);
    let vips_v6 = AddressList::V6(vec![VIP_V6]);
    let cases_v4 = [
        Case::new(
            "v2 multicast",
            advert(Version::V2, vips_v4.clone()),
            A_V4.into(),
            GROUP_V4.into(),
        ),
        Case::new(
            "v3 multicast",
            advert(Version::V3, vips_v4.clone()),
            A_V4.into(),
            GROUP_V4.into(),
        ),
        Case::new(
            "v3 unicast",
            advert(Version::V3, vips_v4),
            A_V4.into(),
            B_V4.into(),
        ),
    ];
    let cases_v6 = [
        Case::new(
            "v3 IPv6 multicast",
            advert(Version::V3, vips_v6.clone()),
            A_LL.into(),
            GROUP_V6.into(),
        ),
        Case::new(
            "v3 IPv6 unicast",
            advert(Version::V3, vips_v6),
            A_LL.into(),
            B_V6.into(),
        ),
    ];
    (cases_v4, cases_v6)
}

/// An independent decoder agrees on the wire: tshark sees VRRP with good checksums, TTL /
/// hop limit 255 and DSCP CS6 on the adverts A sent.
fn judge_on_the_wire(capture: Capture<'_>) {
    // What crossed vb: A's seven adverts (five cases, the TTL-1 one, the truncated one) and
    // B's two answers.
    let (verbose, rows) = capture.finish_and_decode(
        |frames| frames.iter().filter(|f| ip_protocol(f) == Some(112)).count() >= 9,
        "vrrp && (ip.src == 10.99.0.1 || ipv6.src == fe80::a) && (ip.ttl == 255 || ipv6.hlim == 255)",
        &[
            "vrrp.version",
            "ip.dst",
            "ipv6.dst",
            "ip.ttl",
            "ipv6.hlim",
            "ip.dsfield.dscp",
            "ipv6.tclass.dscp",
            "vrrp.checksum.status",
        ],
    );
    let summary: Vec<String> = rows.iter().map(|row| row.join("|")).collect();
    assert_eq!(
        summary,
        vec![
            "2|224.0.0.18||255||48||1",
            "3|224.0.0.18||255||48||1",
            "3|10.99.0.2||255||48||1",
            "3||ff02::12||255||48|1",
            "3||2001:db8::b||255||48|1",
            "3||ff02::12||255||48|1",
        ],
        "tshark fields (version|IPv4 dst|IPv6 dst|TTL|hop limit|IPv4 DSCP|IPv6 DSCP|checksum status 1=good)\n{verbose}"
    );
    assert_eq!(verbose.matches("[correct]").count(), 6, "{verbose}");
    assert!(!verbose.contains("incorrect"), "{verbose}");
}

/// The events a monitor delivered, checked in order.
struct Watch {
    monitor: NetlinkMonitor,
    seen: Vec<NetEvent>,
    /// Events before this were matched by earlier expectations.
    cursor: usize,
}

impl Watch {
    /// Waits (up to two seconds) for an event after the previously expected one that matches.
    fn expect(&mut self, what: &str, matches: impl Fn(&NetEvent) -> bool) {
        let found = poll(Duration::from_secs(2), || {
            let events = self.monitor.read_events().expect("read events");
            self.seen.extend(events);
            let i = self.seen[self.cursor..].iter().position(&matches)?;
            self.cursor += i + 1;
            Some(())
        });
        assert!(found.is_some(), "no event for {what}; saw {:#?}", self.seen);
    }
}

#[test]
fn netlink_adds_removes_and_watches() {
    require!(Need::Root, Need::Netns);
    let pair = Pair::create("nl");
    let va = pair.va.clone();
    pair.in_ns(&pair.a, || {
        let netlink = Netlink::open().expect("netlink");
        let monitor = NetlinkMonitor::open().expect("monitor");

        // Links by name and index.
        let link = netlink.link_by_name("va").expect("query").expect("va exists");
        assert!(link.up, "va is up with carrier");
        assert!(link.mac.is_some_and(|mac| mac != [0; 6]), "va has a MAC");
        assert_eq!(link.mtu, 1500);
        assert_eq!(netlink.link_by_index(link.index).expect("query"), Some(link.clone()));
        assert_eq!(netlink.link_by_name("nosuchlink").expect("query"), None);
        assert_eq!(netlink.link_by_index(99_999).expect("query"), None);
        let lo = netlink.link_by_name("lo").expect("query").expect("lo exists");
        assert_eq!(lo.mac, Some([0; 6]));

        // IPv4 with a label, added twice, listed, removed twice.
        let vip4 = IpAddr::V4(VIP_V4);
        assert!(netlink.add_address(va.index, vip4, 24, Some("va:vip")).expect("add"));
        assert!(!netlink.add_address(va.index, vip4, 24, Some("va:vip")).expect("add again"));
        let listed = netlink.addresses(Some(va.index)).expect("addresses");
        let entry = listed.iter().find(|a| a.address == vip4).expect("listed");
        assert_eq!(
            entry,
            &InterfaceAddress {
                ifindex: va.index,
                address: vip4,
                prefix_len: 24,
                label: Some("va:vip".into()),
                // 10.99.0.1/24 came first in this subnet.
                secondary: true,
                tentative: false,
            }
        );
        let primary = listed.iter().find(|a| a.address == IpAddr::V4(A_V4)).expect("primary");
        assert_eq!(primary.label.as_deref(), Some("va"));
        assert!(!primary.secondary);
        let error = netlink
            .add_address(va.index, "10.99.0.101".parse().expect("address"), 24, Some("eth0:x"))
            .expect_err("label of another interface");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = netlink
            .add_address(va.index, IpAddr::V6(VIP_V6), 64, Some("va:x"))
            .expect_err("IPv6 label");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = netlink
            .add_address(va.index, vip4, 33, None)
            .expect_err("prefix too long");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = netlink
            .add_address(99_999, "10.99.0.102".parse().expect("address"), 24, None)
            .expect_err("no such interface");
        assert_eq!(errno(&error), Some(libc::ENODEV), "{error}");

        // IPv6: NODAD means usable at once, while an address added the ordinary way on the same
        // interface is still tentative (so DAD really is on here).
        let vip6 = IpAddr::V6(VIP_V6);
        assert!(netlink.add_address(va.index, vip6, 64, None).expect("add v6"));
        assert!(!netlink.add_address(va.index, vip6, 64, None).expect("add v6 again"));
        pair.ip(&pair.a, &["addr", "add", "2001:db8::200/64", "dev", "va"]);
        let listed = netlink.addresses(None).expect("all addresses");
        let ours = listed.iter().find(|a| a.address == vip6).expect("v6 listed");
        assert_eq!((ours.prefix_len, ours.tentative, ours.label.as_deref()), (64, false, None));
        let ordinary = listed
            .iter()
            .find(|a| a.address == "2001:db8::200".parse::<IpAddr>().expect("address"))
            .expect("ordinary v6 listed");
        assert!(ordinary.tentative, "an address with DAD starts tentative");
        assert!(listed.iter().any(|a| a.ifindex != va.index), "None lists lo too");

        assert!(netlink.remove_address(va.index, vip4, 24).expect("remove"));
        assert!(!netlink.remove_address(va.index, vip4, 24).expect("remove again"));
        assert!(netlink.remove_address(va.index, vip6, 64).expect("remove v6"));
        assert!(!netlink.remove_address(va.index, vip6, 64).expect("remove v6 again"));
        let left = netlink.addresses(Some(va.index)).expect("addresses");
        // Still a real listing (A's own address), only without the two removed ones.
        assert!(left.iter().any(|a| a.address == IpAddr::V4(A_V4)), "{left:#?}");
        assert!(
            left.iter().all(|a| a.address != vip4 && a.address != vip6),
            "{left:#?}"
        );

        // The monitor saw all of that, and sees changes made by others.
        let mut watch = Watch {
            monitor,
            seen: Vec::new(),
            cursor: 0,
        };
        watch.expect("our VIP added", |e| {
            matches!(e, NetEvent::AddressAdded(a) if a.address == vip4 && a.label.as_deref() == Some("va:vip"))
        });
        watch.expect("our v6 VIP removed", |e| {
            matches!(e, NetEvent::AddressRemoved(a) if a.address == vip6)
        });
        pair.ip(&pair.a, &["addr", "add", "10.99.0.55/24", "dev", "va"]);
        pair.ip(&pair.a, &["addr", "del", "10.99.0.55/24", "dev", "va"]);
        watch.expect("ip addr del", |e| {
            matches!(e, NetEvent::AddressRemoved(a) if a.address == IpAddr::V4(Ipv4Addr::new(10, 99, 0, 55)) && a.ifindex == va.index)
        });
        pair.ip(&pair.a, &["link", "set", "dev", "va", "down"]);
        watch.expect("link down", |e| {
            matches!(e, NetEvent::Link(l) if l.index == va.index && !l.up)
        });
        pair.ip(&pair.a, &["link", "set", "dev", "va", "up"]);
        watch.expect("link up", |e| {
            matches!(e, NetEvent::Link(l) if l.index == va.index && l.up && l.name == "va")
        });
        assert!(!watch.seen.contains(&NetEvent::Overrun), "{:#?}", watch.seen);
    });
}

#[test]
fn netlink_monitor_reports_overrun() {
    require!(Need::Root, Need::Netns);
    let pair = Pair::create("ovr");
    let va = pair.va.clone();
    pair.in_ns(&pair.a, || {
        let netlink = Netlink::open().expect("netlink");
        let mut monitor = NetlinkMonitor::open().expect("monitor");
        // The smallest buffer the kernel allows holds a handful of notifications.
        socket2::SockRef::from(&monitor)
            .set_recv_buffer_size(0)
            .expect("shrink buffer");
        for last in 1..=100u8 {
            let address = IpAddr::V4(Ipv4Addr::new(10, 98, 0, last));
            assert!(netlink
                .add_address(va.index, address, 32, None)
                .expect("add"));
        }
        let events = monitor.read_events().expect("read");
        assert!(events.contains(&NetEvent::Overrun), "{events:#?}");
        assert!(events.len() < 100, "notifications were lost");
        assert!(monitor.read_events().expect("read").is_empty());
    });
}

#[test]
fn announcements_reach_the_peer() {
    require!(Need::Root, Need::Netns, Need::Tcpdump, Need::Tshark);
    let pair = Pair::create("ann");
    let va = pair.va.clone();
    let mac = va.mac.expect("va has a MAC");
    let capture = pair.lab.start_capture(&pair.b, "vb", "arp or icmp6");
    pair.in_ns(&pair.a, || {
        let announcer = Announcer::open(va.index, &va.name, mac).expect("announcer");
        announcer.gratuitous_arp(VIP_V4).expect("gratuitous ARP");
        announcer
            .unsolicited_na(VIP_V6, true)
            .expect("NA as router");
        announcer.unsolicited_na(VIP_V6, false).expect("NA as host");
    });
    let mac_text = mac.map(|b| format!("{b:02x}")).join(":");

    // The gratuitous ARP and the two neighbour advertisements.
    let announced = |f: &Vec<u8>| ethertype(f) == Some(0x0806) || icmpv6_type(f) == Some(136);
    let (verbose, rows) = capture.finish_and_decode(
        |frames| frames.iter().filter(|f| announced(f)).count() >= 3,
        "arp.src.proto_ipv4 == 10.99.0.100 || icmpv6.nd.na.target_address == 2001:db8::100",
        &[
            "eth.dst",
            "arp.opcode",
            "arp.src.hw_mac",
            "arp.src.proto_ipv4",
            "arp.dst.hw_mac",
            "arp.dst.proto_ipv4",
            "ipv6.src",
            "ipv6.dst",
            "ipv6.hlim",
            "icmpv6.type",
            "icmpv6.nd.na.flag.r",
            "icmpv6.nd.na.flag.s",
            "icmpv6.nd.na.flag.o",
            "icmpv6.nd.na.target_address",
            "icmpv6.opt.linkaddr",
            "icmpv6.checksum.status",
        ],
    );
    let summary: Vec<String> = rows.iter().map(|row| row.join("|")).collect();
    let arp = format!(
        "ff:ff:ff:ff:ff:ff|1|{mac_text}|10.99.0.100|00:00:00:00:00:00|10.99.0.100||||||||||"
    );
    let na = |router: &str| {
        format!("33:33:00:00:00:01||||||fe80::a|ff02::1|255|136|{router}|0|1|2001:db8::100|{mac_text}|1")
    };
    assert_eq!(
        summary,
        vec![arp, na("1"), na("0")],
        "tshark fields (eth dst|ARP op|sender MAC|sender IP|target MAC|target IP|IPv6 src|dst|hop limit|type|R|S|O|target|TLLA|checksum 1=good)\n{verbose}"
    );
    assert!(verbose.contains("[Is gratuitous: True]"), "{verbose}");
}
