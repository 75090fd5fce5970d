//! Announcing that the virtual addresses moved: gratuitous ARP for IPv4 (an RFC 5227 2.3 ARP
//! Announcement, RFC 826 format) and unsolicited Neighbor Advertisements for IPv6 (RFC 4861
//! 4.4 and 7.2.6). RFC 5798 6.4.1 / 6.4.2: a new master sends them for each virtual address so
//! hosts and switches update their caches at once instead of after minutes.
//!
//! Lifecycle: the node opens one [`Announcer`] per interface with the interface's MAC address
//! and keeps it while an instance runs there. The sockets are opened on first use per family,
//! so an IPv4-only node never needs IPv6 and vice versa. They only send: the packet socket is
//! bound to protocol 0, which receives nothing, and the ICMPv6 socket blocks every type with
//! `ICMP6_FILTER`, so neither queues traffic nobody reads.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::sockopt::set_option;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const BROADCAST: [u8; 6] = [0xff; 6];

const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// RFC 4861 4.6.1: Target Link-Layer Address option.
const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// RFC 4861 7.2.6: unsolicited advertisements go to the all-nodes group.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// `ICMP6_FILTER` (netinet/icmp6.h): a per-type block mask at level IPPROTO_ICMPV6.
const ICMP6_FILTER: libc::c_int = 1;

/// An Ethernet frame carrying a gratuitous ARP for `address` from `mac`: broadcast, an ARP
/// request (opcode 1, as keepalived sends, which every stack accepts) whose sender and target
/// IP are both `address` and whose target hardware address is zero (RFC 5227 2.3: built like a
/// probe, 2.1.1: target hardware address "SHOULD be set to all zeroes").
pub fn gratuitous_arp_frame(mac: [u8; 6], address: Ipv4Addr) -> [u8; 42] {
    let mut frame = [0u8; 42];
    frame[0..6].copy_from_slice(&BROADCAST);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    // RFC 826 packet format.
    frame[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    frame[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    frame[18] = 6; // hardware address length
    frame[19] = 4; // protocol address length
    frame[20..22].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    frame[22..28].copy_from_slice(&mac); // sender hardware address
    frame[28..32].copy_from_slice(&address.octets()); // sender protocol address
                                                      // [32..38]: target hardware address, zero.
    frame[38..42].copy_from_slice(&address.octets()); // target protocol address
    frame
}

/// An unsolicited Neighbor Advertisement for `target` (RFC 4861 4.4): ICMPv6 type 136 code 0,
/// Router flag as given (RFC 5798 6.4.2: set when the virtual router is a router), Solicited
/// clear and Override set (RFC 4861 7.2.6), and a Target Link-Layer Address option with `mac`.
/// The checksum is left 0: the kernel fills it in on ICMPv6 raw sockets (RFC 3542 3.1).
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut message = Vec::with_capacity(32);
    message.push(ICMPV6_NEIGHBOR_ADVERTISEMENT);
    message.push(0); // code
    message.extend_from_slice(&[0, 0]); // checksum
    let flags = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    message.extend_from_slice(&[flags, 0, 0, 0]);
    message.extend_from_slice(&target.octets());
    message.push(ND_OPT_TARGET_LINKADDR);
    message.push(1); // option length in units of 8 bytes
    message.extend_from_slice(&mac);
    message
}

/// Sends gratuitous ARPs and unsolicited NAs on one interface.
#[derive(Debug)]
pub struct Announcer {
    ifindex: u32,
    ifname: String,
    mac: [u8; 6],
    arp: OnceLock<OwnedFd>,
    icmpv6: OnceLock<Socket>,
}

impl Announcer {
    /// An announcer for interface `ifindex` / `ifname` whose MAC address is `mac`. Opens no
    /// socket yet.
    pub fn open(ifindex: u32, ifname: &str, mac: [u8; 6]) -> io::Result<Self> {
        if ifindex == 0 || ifindex > i32::MAX as u32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface index {ifindex} is invalid"),
            ));
        }
        Ok(Announcer {
            ifindex,
            ifname: ifname.to_owned(),
            mac,
            arp: OnceLock::new(),
            icmpv6: OnceLock::new(),
        })
    }

    /// Broadcasts one gratuitous ARP for `address`.
    pub fn gratuitous_arp(&self, address: Ipv4Addr) -> io::Result<()> {
        let fd = match self.arp.get() {
            Some(fd) => fd,
            None => {
                let fd = open_packet_socket(self.ifindex)?;
                // A concurrent first use may have won; its socket is as good as ours.
                self.arp.get_or_init(|| fd)
            }
        };
        let frame = gratuitous_arp_frame(self.mac, address);
        let to = link_address(self.ifindex, ETH_P_ARP, Some(BROADCAST));
        // SAFETY: `frame` is a live buffer of the given length, `to` a valid sockaddr_ll of
        // the given size; the kernel only reads both.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends one unsolicited NA for `address` to ff02::1 with hop limit 255 (RFC 4861 7.1.2
    /// requires 255 on receipt). The kernel picks the interface's link-local address as the
    /// source (RFC 4861 4.4: "an IP address assigned to the interface").
    pub fn unsolicited_na(&self, address: Ipv6Addr, router: bool) -> io::Result<()> {
        let socket = match self.icmpv6.get() {
            Some(socket) => socket,
            None => {
                let socket = open_icmpv6_socket(self.ifindex, &self.ifname)?;
                self.icmpv6.get_or_init(|| socket)
            }
        };
        let message = unsolicited_na(self.mac, address, router);
        let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
        socket.send_to(&message, &to)?;
        Ok(())
    }

    /// The interface this announcer sends on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

fn link_address(ifindex: u32, protocol: u16, destination: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
    let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
    address.sll_family = libc::AF_PACKET as libc::c_ushort;
    address.sll_protocol = protocol.to_be();
    address.sll_ifindex = ifindex as libc::c_int;
    if let Some(destination) = destination {
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&destination);
    }
    address
}

/// A packet(7) socket that sends whole Ethernet frames on `ifindex`. Protocol 0 means the
/// kernel hands it no received frames at all (packet(7)); the frames it sends carry their
/// EtherType in the header and in the destination address.
fn open_packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor we just opened and nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let address = link_address(ifindex, 0, None);
    // SAFETY: `address` is a valid sockaddr_ll and the length is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// An ICMPv6 raw socket on `ifname` for Neighbor Advertisements.
fn open_icmpv6_socket(ifindex: u32, ifname: &str) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::IPV6,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::ICMPV6),
    )?;
    // Block every ICMPv6 type on receive (a set bit blocks, RFC 3542 3.2), so the socket
    // never queues the neighbour discovery traffic it would otherwise see.
    let block_all = [u32::MAX; 8];
    set_option(
        socket.as_fd(),
        libc::IPPROTO_ICMPV6,
        ICMP6_FILTER,
        &block_all,
    )?;
    socket.bind_device(Some(ifname.as_bytes()))?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.set_multicast_loop_v6(false)?;
    // RFC 4861 7.1.2: a receiver drops an NA whose hop limit is not 255.
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x33];

    #[test]
    fn gratuitous_arp_bytes() {
        let frame = gratuitous_arp_frame(MAC, Ipv4Addr::new(192, 0, 2, 100));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
            0x02, 0x00, 0x5e, 0x00, 0x01, 0x33, // source
            0x08, 0x06,                         // EtherType ARP
            0x00, 0x01,                         // hardware type Ethernet
            0x08, 0x00,                         // protocol type IPv4
            6, 4,                               // address lengths
            0x00, 0x01,                         // opcode request
            0x02, 0x00, 0x5e, 0x00, 0x01, 0x33, // sender hardware address
            192, 0, 2, 100,                     // sender IP
            0, 0, 0, 0, 0, 0,                   // target hardware address
            192, 0, 2, 100,                     // target IP
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn unsolicited_na_bytes() {
        let target: Ipv6Addr = "2001:db8::100".parse().expect("address");
        let message = unsolicited_na(MAC, target, true);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            136, 0, 0, 0,             // type NA, code 0, checksum (kernel)
            0xa0, 0, 0, 0,            // R=1 S=0 O=1, reserved
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // target
            2, 1,                     // target link-layer address option, 8 bytes
            0x02, 0x00, 0x5e, 0x00, 0x01, 0x33,
        ];
        assert_eq!(message, expected);
        assert_eq!(unsolicited_na(MAC, target, false)[4], 0x20);
    }
}
