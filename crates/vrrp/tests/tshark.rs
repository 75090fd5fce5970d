//! Wireshark's VRRP dissector as an independent judge of what we encode: the test writes a pcap
//! (link type RAW) of IPv4 / IPv6 packets with TTL 255 around advertisements from our encoder,
//! runs `tshark -V`, and requires every field to decode as intended and the checksum to be
//! reported good. VRRPv3-over-IPv4 message-only checksums are judged with tshark's preference
//! `vrrp.v3_checksum_as_in_v2`.
//!
//! Needs tshark (CI installs it): the guard skips loudly outside CI and fails under CI=true.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use havip_test_support::capture::tshark;
use havip_test_support::scratch::Scratch;
use havip_test_support::{require, Need};

use havip_vrrp::packet::{
    encode, AddressList, Advertisement, Authentication, ChecksumContext, Password, V3Ipv4Checksum,
    Version, IP_PROTOCOL, MULTICAST_GROUP_V4, MULTICAST_GROUP_V6,
};
use havip_vrrp::AdvertInterval;

/// pcap LINKTYPE_RAW: each record starts with an IPv4 or IPv6 header.
const LINKTYPE_RAW: u32 = 101;

struct Case {
    advert: Advertisement,
    context: ChecksumContext,
}

fn interval(centiseconds: u16) -> AdvertInterval {
    AdvertInterval::from_centiseconds(centiseconds).expect("non-zero")
}

fn v4(text: &str) -> Ipv4Addr {
    text.parse().expect("IPv4 address")
}

fn v6(text: &str) -> Ipv6Addr {
    text.parse().expect("IPv6 address")
}

fn ipv4_context(destination: IpAddr, form: V3Ipv4Checksum) -> ChecksumContext {
    ChecksumContext {
        source: IpAddr::V4(v4("192.0.2.1")),
        destination,
        v3_ipv4_checksum: form,
    }
}

fn cases_with_default_checksum() -> Vec<Case> {
    let multicast_v4 = IpAddr::V4(MULTICAST_GROUP_V4);
    vec![
        Case {
            advert: Advertisement {
                version: Version::V2,
                vrid: 51,
                priority: 100,
                interval: interval(100),
                addresses: AddressList::V4(vec![v4("192.0.2.100"), v4("192.0.2.101")]),
                authentication: Authentication::None,
            },
            context: ipv4_context(multicast_v4, V3Ipv4Checksum::PseudoHeader),
        },
        Case {
            advert: Advertisement {
                version: Version::V2,
                vrid: 52,
                priority: 0,
                interval: interval(300),
                addresses: AddressList::V4(vec![v4("10.88.88.70")]),
                authentication: Authentication::SimplePassword(
                    Password::from_keepalived_auth_pass("K8SHA_KA_AUTH"),
                ),
            },
            context: ipv4_context(multicast_v4, V3Ipv4Checksum::PseudoHeader),
        },
        Case {
            advert: Advertisement {
                version: Version::V3,
                vrid: 53,
                priority: 255,
                interval: interval(10),
                addresses: AddressList::V4(vec![v4("192.0.2.103")]),
                authentication: Authentication::None,
            },
            context: ipv4_context(multicast_v4, V3Ipv4Checksum::PseudoHeader),
        },
        Case {
            advert: Advertisement {
                version: Version::V3,
                vrid: 54,
                priority: 1,
                interval: interval(4095),
                addresses: AddressList::V4(vec![v4("192.0.2.104")]),
                authentication: Authentication::None,
            },
            // unicast: the pseudo-header carries the peer
            context: ipv4_context(IpAddr::V4(v4("192.0.2.2")), V3Ipv4Checksum::PseudoHeader),
        },
        Case {
            advert: Advertisement {
                version: Version::V3,
                vrid: 56,
                priority: 100,
                interval: interval(100),
                addresses: AddressList::V6(vec![v6("fe80::56"), v6("2001:db8::56")]),
                authentication: Authentication::None,
            },
            context: ChecksumContext {
                source: IpAddr::V6(v6("fe80::1")),
                destination: IpAddr::V6(MULTICAST_GROUP_V6),
                v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
            },
        },
        Case {
            advert: Advertisement {
                version: Version::V3,
                vrid: 57,
                priority: 254,
                interval: interval(200),
                addresses: AddressList::V6(vec![v6("2001:db8::57")]),
                authentication: Authentication::None,
            },
            context: ChecksumContext {
                source: IpAddr::V6(v6("2001:db8::1")),
                destination: IpAddr::V6(v6("2001:db8::2")),
                v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
            },
        },
    ]
}

fn cases_with_message_only_checksum() -> Vec<Case> {
    vec![Case {
        advert: Advertisement {
            version: Version::V3,
            vrid: 58,
            priority: 120,
            interval: interval(100),
            addresses: AddressList::V4(vec![v4("192.0.2.105"), v4("198.51.100.7")]),
            authentication: Authentication::None,
        },
        context: ipv4_context(IpAddr::V4(MULTICAST_GROUP_V4), V3Ipv4Checksum::MessageOnly),
    }]
}

/// An IP packet (TTL / hop limit 255, protocol VRRP) around `payload`.
fn ip_packet(context: &ChecksumContext, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::new();
    match (context.source, context.destination) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            let total = u16::try_from(20 + payload.len()).expect("fits");
            packet.extend_from_slice(&[0x45, 0]);
            packet.extend_from_slice(&total.to_be_bytes());
            packet.extend_from_slice(&[0, 0, 0, 0, 255, IP_PROTOCOL, 0, 0]);
            packet.extend_from_slice(&source.octets());
            packet.extend_from_slice(&destination.octets());
            let mut sum: u32 = packet
                .chunks_exact(2)
                .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            let header_checksum = !u16::try_from(sum).expect("folded");
            packet[10..12].copy_from_slice(&header_checksum.to_be_bytes());
        }
        (IpAddr::V6(source), IpAddr::V6(destination)) => {
            let length = u16::try_from(payload.len()).expect("fits");
            packet.extend_from_slice(&[0x60, 0, 0, 0]);
            packet.extend_from_slice(&length.to_be_bytes());
            packet.extend_from_slice(&[IP_PROTOCOL, 255]);
            packet.extend_from_slice(&source.octets());
            packet.extend_from_slice(&destination.octets());
        }
        _ => panic!("mixed address families"),
    }
    packet.extend_from_slice(payload);
    packet
}

fn write_pcap(path: &Path, packets: &[Vec<u8>]) {
    let mut file = Vec::new();
    // Global header: magic, version 2.4, zone 0, sigfigs 0, snaplen, link type.
    file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    file.extend_from_slice(&0i32.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&65_535u32.to_le_bytes());
    file.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    for (index, packet) in packets.iter().enumerate() {
        let length = u32::try_from(packet.len()).expect("fits");
        let seconds = u32::try_from(index).expect("fits");
        file.extend_from_slice(&seconds.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&length.to_le_bytes());
        file.extend_from_slice(&length.to_le_bytes());
        file.extend_from_slice(packet);
    }
    std::fs::write(path, file).expect("write pcap");
}

/// The lines tshark printed for each frame, trimmed.
fn frames(output: &str) -> Vec<Vec<String>> {
    let mut frames: Vec<Vec<String>> = Vec::new();
    for line in output.lines() {
        if line.starts_with("Frame ") {
            frames.push(Vec::new());
        }
        if let Some(frame) = frames.last_mut() {
            frame.push(line.trim().to_owned());
        }
    }
    frames
}

fn expect_line(frame: &[String], wanted: &str, case: usize) {
    assert!(
        frame.iter().any(|line| line == wanted),
        "frame {case}: tshark did not print `{wanted}`:\n{}",
        frame.join("\n")
    );
}

fn expect_line_ending(frame: &[String], wanted: &str, case: usize) {
    assert!(
        frame.iter().any(|line| line.ends_with(wanted)),
        "frame {case}: tshark printed no line ending in `{wanted}`:\n{}",
        frame.join("\n")
    );
}

/// What tshark must say about `case`.
fn check_frame(frame: &[String], case: &Case, bytes: &[u8], index: usize) {
    let advert = &case.advert;
    match case.context.source {
        IpAddr::V4(_) => expect_line(frame, "Time to Live: 255", index),
        IpAddr::V6(_) => expect_line(frame, "Hop Limit: 255", index),
    }
    expect_line(frame, "Virtual Router Redundancy Protocol", index);
    expect_line(
        frame,
        &format!(
            "Version {}, Packet type 1 (Advertisement)",
            advert.version.number()
        ),
        index,
    );
    expect_line(frame, &format!("Virtual Rtr ID: {}", advert.vrid), index);
    assert!(
        frame
            .iter()
            .any(|line| line.starts_with(&format!("Priority: {} (", advert.priority))),
        "frame {index}: priority {} not shown:\n{}",
        advert.priority,
        frame.join("\n")
    );
    expect_line(
        frame,
        &format!("Addr Count: {}", advert.addresses.len()),
        index,
    );
    let interval_field = match advert.version {
        Version::V2 => u16::from(advert.interval.whole_seconds().expect("v2 seconds")),
        Version::V3 => advert.interval.centiseconds(),
    };
    expect_line_ending(frame, &format!("Adver Int: {interval_field}"), index);
    let checksum = u16::from_be_bytes([bytes[6], bytes[7]]);
    expect_line(
        frame,
        &format!("Checksum: {checksum:#06x} [correct]"),
        index,
    );
    expect_line(frame, "[Checksum Status: Good]", index);
    for address in advert.addresses.to_ip_addrs() {
        let line = match address {
            IpAddr::V4(a) => format!("IP Address: {a}"),
            IpAddr::V6(a) => format!("IPv6 Address: {a}"),
        };
        expect_line(frame, &line, index);
    }
    if let Authentication::SimplePassword(password) = advert.authentication {
        let text = String::from_utf8_lossy(password.as_bytes())
            .trim_end_matches('\0')
            .to_owned();
        expect_line(frame, &format!("Authentication String: {text}"), index);
    }
}

fn judge(cases: &[Case], preferences: &[&str], dir: &Scratch, name: &str) {
    let encoded: Vec<Vec<u8>> = cases
        .iter()
        .map(|case| encode(&case.advert, &case.context).expect("encodes"))
        .collect();
    let packets: Vec<Vec<u8>> = cases
        .iter()
        .zip(&encoded)
        .map(|(case, bytes)| ip_packet(&case.context, bytes))
        .collect();
    let path = dir.path(name);
    write_pcap(&path, &packets);
    let path_text = path.to_str().expect("utf-8 path");
    let mut arguments = Vec::new();
    for preference in preferences {
        arguments.extend(["-o", preference]);
    }
    arguments.extend(["-V", "-r", path_text]);
    let frames = frames(&tshark(&arguments));
    assert_eq!(frames.len(), cases.len(), "one frame per packet");
    for (index, ((frame, case), bytes)) in frames.iter().zip(cases).zip(&encoded).enumerate() {
        check_frame(frame, case, bytes, index + 1);
    }
}

#[test]
fn tshark_decodes_our_advertisements_with_good_checksums() {
    require!(Need::Tshark);
    let dir = Scratch::new("vrrp-tshark");
    judge(&cases_with_default_checksum(), &[], &dir, "default.pcap");
    judge(
        &cases_with_message_only_checksum(),
        &["vrrp.v3_checksum_as_in_v2:TRUE"],
        &dir,
        "message-only.pcap",
    );
}

#[test]
fn tshark_reports_a_corrupted_checksum_as_bad() {
    // The judge must be able to say no: flip one checksum bit and expect "Bad".
    require!(Need::Tshark);
    let dir = Scratch::new("vrrp-tshark-bad");
    let case = &cases_with_default_checksum()[2];
    let mut bytes = encode(&case.advert, &case.context).expect("encodes");
    bytes[7] ^= 0x01;
    let path = dir.path("bad.pcap");
    write_pcap(&path, &[ip_packet(&case.context, &bytes)]);
    let output = tshark(&["-V", "-r", path.to_str().expect("utf-8 path")]);
    assert!(
        output.contains("[Checksum Status: Bad]"),
        "tshark accepted a corrupted checksum:\n{output}"
    );
}
