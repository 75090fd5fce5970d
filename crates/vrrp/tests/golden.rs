//! Golden vectors: advertisements keepalived 2.2.7 (Debian) actually sent, captured by
//! `scripts/capture-keepalived-golden.sh` into `tests/golden/`. Each one must decode to exactly
//! the fields of the keepalived instance that sent it (written out here by hand from the
//! instance configuration, not from the bytes), pass the checksum, and re-encode to the
//! identical bytes. And a havip instance configured as keepalived's peer must accept every one
//! of them through all receive checks, and take over Skew_Time after the priority-0 one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use havip_vrrp::packet::{
    decode, encode, AddressList, Advertisement, Authentication, ChecksumContext, DecodeError,
    Password, V3Ipv4Checksum, Version, MULTICAST_GROUP_V4, MULTICAST_GROUP_V6,
};
use havip_vrrp::{
    Action, AdvertInterval, DropReason, Input, Instance, InstanceConfig, ReceivedPacket, State,
    TimerKind, Timestamp,
};

/// One captured packet: IP metadata plus the VRRP payload.
struct Golden {
    source: IpAddr,
    destination: IpAddr,
    ttl: u8,
    payload: Vec<u8>,
}

fn load(name: &str) -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let field = |key: &str| -> String {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .unwrap_or_else(|| panic!("{name}: no `{key}` line"))
            .trim()
            .to_owned()
    };
    let payload_hex = field("payload");
    let payload = (0..payload_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&payload_hex[i..i + 2], 16).expect("hex payload"))
        .collect();
    Golden {
        source: field("source").parse().expect("source address"),
        destination: field("destination").parse().expect("destination address"),
        ttl: field("ttl").parse().expect("ttl"),
        payload,
    }
}

fn context(golden: &Golden) -> ChecksumContext {
    ChecksumContext {
        source: golden.source,
        destination: golden.destination,
        // keepalived's default (there is no v3_checksum_as_v2 in 2.2.7).
        v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn v6(text: &str) -> Ipv6Addr {
    text.parse().expect("IPv6 address")
}

fn centiseconds(value: u16) -> AdvertInterval {
    AdvertInterval::from_centiseconds(value).expect("non-zero")
}

/// Checks one golden packet against the advertisement its keepalived instance must have sent.
fn check(name: &str, source: IpAddr, destination: IpAddr, ttl: u8, expected: Advertisement) {
    let golden = load(name);
    assert_eq!(golden.source, source, "{name}: source");
    assert_eq!(golden.destination, destination, "{name}: destination");
    assert_eq!(golden.ttl, ttl, "{name}: TTL / hop limit");
    assert_eq!(
        decode(&golden.payload, &context(&golden)),
        Ok(expected.clone()),
        "{name}: decode"
    );
    assert_eq!(
        encode(&expected, &context(&golden)),
        Ok(golden.payload.clone()),
        "{name}: re-encode"
    );
}

/// Both packets of a case: the periodic advert and the priority-0 one sent on SIGTERM.
fn check_case(name: &str, source: IpAddr, destination: IpAddr, ttl: u8, advert: Advertisement) {
    check(name, source, destination, ttl, advert.clone());
    let shutdown = Advertisement {
        priority: 0,
        ..advert
    };
    check(
        &format!("{name}-shutdown"),
        source,
        destination,
        ttl,
        shutdown,
    );
}

const KEEPALIVED_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PEER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

#[test]
fn v2_ipv4_multicast_without_authentication() {
    check_case(
        "v2-ipv4-multicast",
        KEEPALIVED_V4,
        IpAddr::V4(MULTICAST_GROUP_V4),
        255,
        Advertisement {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval: centiseconds(100),
            addresses: AddressList::V4(vec![v4(192, 0, 2, 100), v4(192, 0, 2, 101)]),
            authentication: Authentication::None,
        },
    );
}

#[test]
fn v2_ipv4_pass_authentication_is_truncated_to_eight_bytes() {
    check_case(
        "v2-ipv4-pass",
        KEEPALIVED_V4,
        IpAddr::V4(MULTICAST_GROUP_V4),
        255,
        Advertisement {
            version: Version::V2,
            vrid: 52,
            priority: 90,
            interval: centiseconds(100),
            addresses: AddressList::V4(vec![v4(192, 0, 2, 102)]),
            // auth_pass K8SHA_KA_AUTH: keepalived sends "K8SHA_KA".
            authentication: Authentication::SimplePassword(Password::from_bytes(*b"K8SHA_KA")),
        },
    );
    assert_eq!(
        Password::from_keepalived_auth_pass("K8SHA_KA_AUTH"),
        Password::from_bytes(*b"K8SHA_KA")
    );
}

#[test]
fn v2_ipv4_unicast_pass_authentication_is_zero_padded() {
    check_case(
        "v2-ipv4-unicast-pass",
        KEEPALIVED_V4,
        PEER_V4,
        255,
        Advertisement {
            version: Version::V2,
            vrid: 60,
            priority: 100,
            interval: centiseconds(100),
            addresses: AddressList::V4(vec![v4(192, 0, 2, 110)]),
            authentication: Authentication::SimplePassword(Password::from_bytes(*b"1111\0\0\0\0")),
        },
    );
}

#[test]
fn v3_ipv4_multicast_uses_the_pseudo_header_checksum() {
    let advert = Advertisement {
        version: Version::V3,
        vrid: 53,
        priority: 150,
        interval: centiseconds(10),
        addresses: AddressList::V4(vec![v4(192, 0, 2, 103)]),
        authentication: Authentication::None,
    };
    check_case(
        "v3-ipv4-multicast",
        KEEPALIVED_V4,
        IpAddr::V4(MULTICAST_GROUP_V4),
        255,
        advert,
    );
    // keepalived 2.2.7 includes the IPv4 pseudo-header: read as message-only, the checksum is
    // recognised as the other form.
    let golden = load("v3-ipv4-multicast");
    let message_only = ChecksumContext {
        v3_ipv4_checksum: V3Ipv4Checksum::MessageOnly,
        ..context(&golden)
    };
    assert!(matches!(
        decode(&golden.payload, &message_only),
        Err(DecodeError::ChecksumOtherForm { .. })
    ));
}

#[test]
fn v3_ipv4_unicast_checksums_over_the_peer_address() {
    check_case(
        "v3-ipv4-unicast",
        KEEPALIVED_V4,
        PEER_V4,
        255,
        Advertisement {
            version: Version::V3,
            vrid: 54,
            priority: 200,
            interval: centiseconds(100),
            addresses: AddressList::V4(vec![v4(192, 0, 2, 104)]),
            authentication: Authentication::None,
        },
    );
    // The pseudo-header holds the unicast destination, not the multicast group (the bug that
    // keepalived fixed in 1.3.6 and still detects as `old_unicast_checksum`).
    let golden = load("v3-ipv4-unicast");
    let as_if_multicast = ChecksumContext {
        destination: IpAddr::V4(MULTICAST_GROUP_V4),
        ..context(&golden)
    };
    assert!(matches!(
        decode(&golden.payload, &as_if_multicast),
        Err(DecodeError::ChecksumMismatch { .. })
    ));
}

#[test]
fn v3_ipv6_multicast_from_the_link_local_address() {
    check_case(
        "v3-ipv6-multicast",
        IpAddr::V6(v6("fe80::1")),
        IpAddr::V6(MULTICAST_GROUP_V6),
        255,
        Advertisement {
            version: Version::V3,
            vrid: 56,
            priority: 100,
            interval: centiseconds(100),
            addresses: AddressList::V6(vec![v6("fe80::56"), v6("2001:db8::56")]),
            authentication: Authentication::None,
        },
    );
}

#[test]
fn v3_ipv6_unicast_is_sent_with_hop_limit_64_by_keepalived() {
    // keepalived 2.2.7 sends IPv6 unicast adverts with the default hop limit (64), not 255;
    // see InstanceConfig::accept_any_unicast_ttl.
    check_case(
        "v3-ipv6-unicast",
        IpAddr::V6(v6("2001:db8::1")),
        IpAddr::V6(v6("2001:db8::2")),
        64,
        Advertisement {
            version: Version::V3,
            vrid: 57,
            priority: 254,
            interval: centiseconds(200),
            addresses: AddressList::V6(vec![v6("2001:db8::57")]),
            authentication: Authentication::None,
        },
    );
}

// --- interoperability: an instance configured like keepalived's peer accepts its packets ------

/// The keepalived instance behind a golden case, as the peer's havip configuration.
struct Peer {
    name: &'static str,
    config: InstanceConfig,
}

fn peers() -> Vec<Peer> {
    let v4_local: IpAddr = "192.0.2.2".parse().expect("address");
    let keepalived_v4: IpAddr = "192.0.2.1".parse().expect("address");
    let peer = |name, vrid, version, interval_cs, primary: IpAddr, addresses: &[&str]| {
        let mut config = InstanceConfig::new(
            vrid,
            primary,
            addresses
                .iter()
                .map(|a| a.parse().expect("address"))
                .collect(),
        );
        config.version = version;
        config.advert_interval = centiseconds(interval_cs);
        config.priority = 50;
        Peer { name, config }
    };
    let mut list = vec![
        peer(
            "v2-ipv4-multicast",
            51,
            Version::V2,
            100,
            v4_local,
            &["192.0.2.100", "192.0.2.101"],
        ),
        peer(
            "v2-ipv4-pass",
            52,
            Version::V2,
            100,
            v4_local,
            &["192.0.2.102"],
        ),
        peer(
            "v2-ipv4-unicast-pass",
            60,
            Version::V2,
            100,
            v4_local,
            &["192.0.2.110"],
        ),
        peer(
            "v3-ipv4-multicast",
            53,
            Version::V3,
            10,
            v4_local,
            &["192.0.2.103"],
        ),
        peer(
            "v3-ipv4-unicast",
            54,
            Version::V3,
            100,
            v4_local,
            &["192.0.2.104"],
        ),
        peer(
            "v3-ipv6-multicast",
            56,
            Version::V3,
            100,
            "fe80::2".parse().expect("address"),
            &["fe80::56", "2001:db8::56"],
        ),
        peer(
            "v3-ipv6-unicast",
            57,
            Version::V3,
            200,
            "2001:db8::2".parse().expect("address"),
            &["2001:db8::57"],
        ),
    ];
    for peer in &mut list {
        match peer.name {
            "v2-ipv4-pass" => {
                peer.config.authentication = Authentication::SimplePassword(
                    Password::from_keepalived_auth_pass("K8SHA_KA_AUTH"),
                )
            }
            "v2-ipv4-unicast-pass" => {
                peer.config.authentication =
                    Authentication::SimplePassword(Password::from_keepalived_auth_pass("1111"));
                peer.config.unicast_peers = vec![keepalived_v4];
            }
            "v3-ipv4-unicast" => peer.config.unicast_peers = vec![keepalived_v4],
            "v3-ipv6-unicast" => {
                peer.config.unicast_peers = vec!["2001:db8::1".parse().expect("address")];
                // keepalived 2.2.7 sends IPv6 unicast with hop limit 64.
                peer.config.accept_any_unicast_ttl = true;
            }
            _ => {}
        }
    }
    list
}

fn deliver(instance: &mut Instance, now: Timestamp, golden: &Golden) -> Vec<Action> {
    instance.handle(
        now,
        Input::Packet(ReceivedPacket {
            source: golden.source,
            destination: golden.destination,
            ttl: golden.ttl,
            payload: &golden.payload,
        }),
    )
}

#[test]
fn a_havip_backup_accepts_every_keepalived_packet_and_follows_its_release() {
    for peer in peers() {
        let name = peer.name;
        let mut instance = Instance::new(peer.config).expect("valid peer config");
        instance.handle(Timestamp::ZERO, Input::Startup);
        assert_eq!(instance.state(), State::Backup, "{name}");

        let advert_at = Timestamp::from_nanos(1_000_000_000);
        let actions = deliver(&mut instance, advert_at, &load(name));
        assert_eq!(
            instance.counters().total_dropped(),
            0,
            "{name}: {actions:?}"
        );
        assert_eq!(instance.counters().adverts_received, 1, "{name}");
        assert_eq!(instance.master_address(), Some(load(name).source), "{name}");

        // The priority-0 advert keepalived sends on SIGTERM: take over after Skew_Time.
        let release_at = Timestamp::from_nanos(1_500_000_000);
        let actions = deliver(
            &mut instance,
            release_at,
            &load(&format!("{name}-shutdown")),
        );
        assert_eq!(
            instance.counters().total_dropped(),
            0,
            "{name}: {actions:?}"
        );
        assert_eq!(instance.counters().priority_zero_received, 1, "{name}");
        let deadline = release_at + instance.skew_time();
        assert_eq!(
            instance.timer_deadline(TimerKind::MasterDown),
            Some(deadline),
            "{name}: {actions:?}"
        );
    }
}

#[test]
fn keepalived_ipv6_unicast_needs_accept_any_unicast_ttl() {
    let mut config = peers()
        .into_iter()
        .find(|peer| peer.name == "v3-ipv6-unicast")
        .expect("case")
        .config;
    config.accept_any_unicast_ttl = false;
    let mut instance = Instance::new(config).expect("valid");
    instance.handle(Timestamp::ZERO, Input::Startup);
    deliver(&mut instance, Timestamp::ZERO, &load("v3-ipv6-unicast"));
    assert_eq!(instance.counters().dropped(DropReason::IpTtl), 1);
    assert_eq!(instance.counters().adverts_received, 0);
}
