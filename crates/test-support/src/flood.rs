//! A hostile-VRRP flood generator (issue 15 item 2): malformed and spoofed IPv4 VRRP adverts
//! sent from a lab namespace at a fixed rate, through a raw socket with `IP_HDRINCL` so that
//! the TTL, the source and every other header field are the test's. Each packet starts as a
//! valid advert built with [`havip_vrrp::packet::encode`] and is then given one [`Defect`];
//! every defect names the receive check that must drop it, so a test can hold the node's
//! per-reason counters to what was sent.
//!
//! Lifecycle: build the packets with [`Spoof::new`], start [`Lab::start_flood`] (a thread
//! inside the sending namespace, bounded in time and in packets), then [`Flood::finish`]
//! returns how many of each were sent. Only lab namespaces are ever the destination.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use havip_vrrp::packet::{
    encode, AddressList, Advertisement, Authentication, ChecksumContext, Password, V3Ipv4Checksum,
    Version,
};
use havip_vrrp::AdvertInterval;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::lab::Lab;

/// The VRRP multicast group (RFC 5798 5.1.1.2).
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IP protocol number of VRRP.
const PROTO_VRRP: u8 = 112;
/// At most this many packets per flood, whatever the rate and duration asked (a bound on
/// the traffic a mistake could send).
pub const MAX_PACKETS: u64 = 2_000_000;

/// What is wrong with a spoofed advert, and the receive check that must catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// Cut to 6 bytes, shorter than the VRRP header.
    Truncated,
    /// One bit of the checksum flipped.
    BadChecksum,
    /// TTL 64: not proof that the sender is on the link (RFC 5798 5.1.1.3).
    Ttl,
    /// The other VRRP version than the instance's, otherwise valid.
    Version,
    /// A VRID no instance on the node has.
    UnknownVrid,
    /// VRRPv2 with the wrong password.
    Password,
    /// Unicast, from a source that is not a configured peer, priority 254.
    UnknownUnicastSource,
    /// Another address list, priority 254 (VRRPv2 drops it: RFC 3768 7.1).
    AddressList,
    /// Priority 255 (the owner's) from a router that owns nothing: with a foreign address
    /// list and no password over multicast, from an unknown source over unicast.
    OwnerPriority,
}

impl Defect {
    /// Every defect.
    pub const ALL: [Defect; 9] = [
        Defect::Truncated,
        Defect::BadChecksum,
        Defect::Ttl,
        Defect::Version,
        Defect::UnknownVrid,
        Defect::Password,
        Defect::UnknownUnicastSource,
        Defect::AddressList,
        Defect::OwnerPriority,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Defect::Truncated => "truncated",
            Defect::BadChecksum => "bad checksum",
            Defect::Ttl => "TTL 64",
            Defect::Version => "wrong version",
            Defect::UnknownVrid => "wrong VRID",
            Defect::Password => "wrong password",
            Defect::UnknownUnicastSource => "unknown unicast source, priority 254",
            Defect::AddressList => "address-list mismatch, priority 254",
            Defect::OwnerPriority => "priority 255 from a non-owner",
        }
    }
}

/// The virtual router a flood aims at, as its real members advertise it.
#[derive(Debug, Clone)]
pub struct Target {
    /// VRRP version of the instance.
    pub version: Version,
    /// Its VRID.
    pub vrid: u8,
    /// Its advertisement interval.
    pub interval: AdvertInterval,
    /// Its virtual addresses.
    pub addresses: Vec<Ipv4Addr>,
    /// Its VRRPv2 password (`auth_pass`), if any.
    pub password: Option<String>,
    /// The unicast peer address the packets are sent to; None: the multicast group.
    pub unicast_to: Option<Ipv4Addr>,
    /// The source for defects that need a source the node accepts (in unicast mode: one of
    /// its peers, spoofed).
    pub trusted_source: Ipv4Addr,
    /// The source for defects from a stranger (the sending namespace's own address).
    pub stranger: Ipv4Addr,
}

/// One spoofed packet, ready to send.
#[derive(Debug, Clone)]
pub struct Spoof {
    /// What is wrong with it.
    pub defect: Defect,
    /// The VRID it targets (its own, wrong one, for [`Defect::UnknownVrid`]).
    pub vrid: u8,
    /// Where it goes.
    pub destination: Ipv4Addr,
    /// The whole IPv4 datagram, header included.
    pub datagram: Vec<u8>,
}

impl Spoof {
    /// The packet with `defect` against `target`.
    pub fn new(target: &Target, defect: Defect) -> Spoof {
        let destination = target.unicast_to.unwrap_or(VRRP_GROUP);
        let mut advert = valid_advert(target);
        let mut source = target.trusted_source;
        let mut ttl = 255;
        let mut cut = None;
        let mut flip_checksum = false;
        match defect {
            Defect::Truncated => cut = Some(6),
            Defect::BadChecksum => flip_checksum = true,
            Defect::Ttl => ttl = 64,
            Defect::Version => match target.version {
                Version::V2 => advert.version = Version::V3,
                Version::V3 => {
                    advert.version = Version::V2;
                    advert.interval = AdvertInterval::ONE_SECOND;
                    advert.authentication = Authentication::None;
                }
            },
            Defect::UnknownVrid => advert.vrid = target.vrid.wrapping_add(100).max(1),
            Defect::Password => advert.authentication = wrong_password(),
            Defect::UnknownUnicastSource => {
                source = target.stranger;
                advert.priority = 254;
            }
            Defect::AddressList => {
                advert.priority = 254;
                advert.addresses = AddressList::V4(vec![Ipv4Addr::new(192, 0, 2, 66)]);
            }
            Defect::OwnerPriority => {
                source = target.stranger;
                advert.priority = 255;
                advert.addresses = AddressList::V4(vec![Ipv4Addr::new(192, 0, 2, 66)]);
                if advert.version == Version::V2 {
                    advert.authentication = wrong_password();
                }
            }
        }
        if advert.version == Version::V3 {
            advert.authentication = Authentication::None;
        }
        let context = ChecksumContext {
            source: IpAddr::V4(source),
            destination: IpAddr::V4(destination),
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
        };
        let mut payload = encode(&advert, &context).expect("a valid advert encodes");
        if flip_checksum {
            payload[7] ^= 0x01;
        }
        if let Some(len) = cut {
            payload.truncate(len);
        }
        Spoof {
            defect,
            vrid: advert.vrid,
            destination,
            datagram: ipv4_datagram(source, destination, ttl, &payload),
        }
    }
}

fn valid_advert(target: &Target) -> Advertisement {
    let authentication = match &target.password {
        Some(password) => {
            Authentication::SimplePassword(Password::from_keepalived_auth_pass(password))
        }
        None => Authentication::None,
    };
    Advertisement {
        version: target.version,
        vrid: target.vrid,
        priority: 200,
        interval: target.interval,
        addresses: AddressList::V4(target.addresses.clone()),
        authentication,
    }
}

fn wrong_password() -> Authentication {
    Authentication::SimplePassword(Password::from_keepalived_auth_pass("guessed!"))
}

/// An IPv4 header (RFC 791, no options) followed by `payload`.
fn ipv4_datagram(source: Ipv4Addr, destination: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small packet");
    let mut header = [0u8; 20];
    header[0] = 0x45; // version 4, 5 words
    header[1] = 0xc0; // DSCP CS6, as VRRP senders use
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[8] = ttl;
    header[9] = PROTO_VRRP;
    header[12..16].copy_from_slice(&source.octets());
    header[16..20].copy_from_slice(&destination.octets());
    let checksum = internet_checksum(&header);
    header[10..12].copy_from_slice(&checksum.to_be_bytes());
    let mut datagram = header.to_vec();
    datagram.extend_from_slice(payload);
    datagram
}

fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// How a flood went.
#[derive(Debug, Clone, Default)]
pub struct FloodReport {
    /// Packets sent, per defect and VRID, in the order of the spoofs given.
    pub sent: Vec<(Defect, u8, Ipv4Addr, u64)>,
    /// Sends the kernel refused (e.g. ENOBUFS: its queue was full); not counted in `sent`.
    pub send_errors: u64,
    /// From the first packet to the last.
    pub elapsed: Duration,
}

impl FloodReport {
    /// All packets sent.
    pub fn total(&self) -> u64 {
        self.sent.iter().map(|(_, _, _, n)| n).sum()
    }

    /// Packets per second achieved.
    pub fn rate(&self) -> f64 {
        self.total() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Packets sent with `defect` (to any destination).
    pub fn of(&self, defect: Defect) -> u64 {
        self.sent
            .iter()
            .filter(|(d, _, _, _)| *d == defect)
            .map(|(_, _, _, n)| n)
            .sum()
    }

    /// Packets sent with `defect` whose VRID is `vrid` and that `node` receives (multicast ones,
    /// and unicast ones addressed to it).
    pub fn reaching(&self, defect: Defect, vrid: u8, node: Ipv4Addr) -> u64 {
        self.sent
            .iter()
            .filter(|(d, v, to, _)| {
                *d == defect && *v == vrid && (*to == node || to.is_multicast())
            })
            .map(|(_, _, _, n)| n)
            .sum()
    }
}

/// A flood in progress; see the module documentation.
pub struct Flood {
    handle: Option<JoinHandle<FloodReport>>,
    stop: Arc<AtomicBool>,
}

impl Flood {
    /// Stop early (the flood ends by itself at its duration).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Wait for the flood to end and return what it sent.
    pub fn finish(mut self) -> FloodReport {
        let handle = self.handle.take().expect("finished once");
        handle.join().expect("flood thread")
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Lab {
    /// Send `spoofs` round-robin from namespace `ns` out of `interface` at `rate` packets per
    /// second for `duration` (at most [`MAX_PACKETS`]), on a thread of its own.
    pub fn start_flood(
        &self,
        ns: &str,
        interface: &str,
        spoofs: Vec<Spoof>,
        rate: u64,
        duration: Duration,
    ) -> Flood {
        assert!(!spoofs.is_empty() && rate > 0);
        let path = Lab::netns_path(ns);
        let interface = interface.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            havip_sys::enter_netns(&path).expect("enter namespace");
            let socket = flood_socket(&interface);
            let _ = ready_tx.send(());
            send_paced(&socket, &spoofs, rate, duration, &flag)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("flood socket opened");
        Flood {
            handle: Some(handle),
            stop,
        }
    }
}

fn flood_socket(interface: &str) -> Socket {
    let socket = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO_VRRP))),
    )
    .expect("raw socket (needs root)");
    socket.set_header_included_v4(true).expect("IP_HDRINCL");
    socket
        .bind_device(Some(interface.as_bytes()))
        .expect("SO_BINDTODEVICE");
    socket.set_multicast_loop_v4(false).expect("no loopback");
    socket.set_send_buffer_size(4 << 20).expect("SO_SNDBUF");
    socket
}

/// Send at `rate` per second, in small bursts every 200 µs, until `duration` or `stop`.
fn send_paced(
    socket: &Socket,
    spoofs: &[Spoof],
    rate: u64,
    duration: Duration,
    stop: &AtomicBool,
) -> FloodReport {
    let destinations: Vec<SockAddr> = spoofs
        .iter()
        .map(|s| SockAddr::from(SocketAddr::V4(SocketAddrV4::new(s.destination, 0))))
        .collect();
    let mut counts = vec![0u64; spoofs.len()];
    let limit = (rate.saturating_mul(duration.as_millis() as u64) / 1000).min(MAX_PACKETS);
    let start = Instant::now();
    let (mut sent, mut errors, mut next) = (0u64, 0u64, 0usize);
    while sent + errors < limit && !stop.load(Ordering::Relaxed) {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        let due = (rate as f64 * elapsed.as_secs_f64()) as u64;
        if sent + errors >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..(due - sent - errors).min(limit - sent - errors) {
            match socket.send_to(&spoofs[next].datagram, &destinations[next]) {
                Ok(_) => {
                    counts[next] += 1;
                    sent += 1;
                }
                Err(_) => errors += 1,
            }
            next = (next + 1) % spoofs.len();
        }
    }
    FloodReport {
        sent: spoofs
            .iter()
            .zip(counts)
            .map(|(s, n)| (s.defect, s.vrid, s.destination, n))
            .collect(),
        send_errors: errors,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_vrrp::packet::{decode, peek_vrid};

    fn target(version: Version, unicast: bool) -> Target {
        Target {
            version,
            vrid: 51,
            interval: AdvertInterval::ONE_SECOND,
            addresses: vec![Ipv4Addr::new(10, 77, 0, 200)],
            password: (version == Version::V2).then(|| "s3cret".to_string()),
            unicast_to: unicast.then_some(Ipv4Addr::new(10, 77, 0, 12)),
            trusted_source: Ipv4Addr::new(10, 77, 0, 11),
            stranger: Ipv4Addr::new(10, 77, 0, 13),
        }
    }

    /// Each defect is the one thing wrong: the header says what it should, and the payload
    /// fails (or passes) decoding as the defect means.
    #[test]
    fn each_spoof_has_its_one_defect() {
        for version in [Version::V2, Version::V3] {
            for defect in Defect::ALL {
                let spoof = Spoof::new(&target(version, true), defect);
                let d = &spoof.datagram;
                assert_eq!(
                    internet_checksum(&d[..20]),
                    0,
                    "{defect:?}: header checksum"
                );
                assert_eq!(usize::from(u16::from_be_bytes([d[2], d[3]])), d.len());
                assert_eq!(d[8], if defect == Defect::Ttl { 64 } else { 255 });
                let source = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
                let context = ChecksumContext {
                    source: IpAddr::V4(source),
                    destination: IpAddr::V4(spoof.destination),
                    v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
                };
                let decoded = decode(&d[20..], &context);
                match defect {
                    Defect::Truncated | Defect::BadChecksum => assert!(decoded.is_err()),
                    _ => assert!(decoded.is_ok(), "{defect:?} {version:?}: {decoded:?}"),
                }
                let vrid = peek_vrid(&d[20..]).expect("a VRID");
                assert_eq!(vrid == 51, defect != Defect::UnknownVrid);
            }
        }
    }
}
