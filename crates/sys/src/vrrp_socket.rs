//! Raw IP protocol 112 sockets that carry VRRP advertisements (RFC 5798 5.1, RFC 3768 5.1).
//!
//! Lifecycle: the node opens one [`VrrpReceiver`] and one [`VrrpSender`] per (interface,
//! family) when an instance on that interface starts, wraps them in tokio's `AsyncFd`, and
//! drops them when the last instance there stops. Both are non-blocking and close-on-exec and
//! are tied to the network namespace of the thread that opened them.
//!
//! Receive: an unbound raw socket pinned to the interface with `SO_BINDTODEVICE`. It joins the
//! VRRP group when asked and otherwise passes on no multicast at all, so a unicast-only
//! instance is not fed packets for a group some other socket joined: IPv4 drops them in the
//! kernel (`IP_MULTICAST_ALL` off); IPv6 raw sockets that are not bound to an address get every
//! packet of the protocol whatever their memberships (`raw_v6_match` checks membership only for
//! bound sockets), so `recv` skips them. IPv4 raw sockets hand over the IP header, which we
//! parse for source, destination and TTL; IPv6 raw sockets hand over the payload only, and the
//! destination and hop limit come from `IPV6_PKTINFO` / `IPV6_HOPLIMIT` control messages.
//!
//! Send: the VRRPv3 checksum covers the IP source and destination (RFC 5798 5.2.8), so the
//! packet must leave with exactly the source the checksum used. IPv4 writes its own header
//! (`IPPROTO_RAW`, which implies `IP_HDRINCL` and can receive nothing); IPv6 passes the source
//! in `IPV6_PKTINFO` and never sets `IPV6_CHECKSUM`, and a drop-everything socket filter keeps
//! the send socket from queueing the protocol-112 packets a raw IPv6 socket would otherwise get.
//! Multicast loopback is off, so an instance never hears itself.

use std::io::{self, IoSlice};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::{
    Domain, InterfaceIndexOrAddress, MsgHdr, Protocol, SockAddr, SockFilter, Socket, Type,
};

use crate::sockopt::{control_messages, push_cmsg, set_int_option, set_option, socket_meminfo};

/// The IP protocol number of VRRP (RFC 5798 5.1.1.4).
pub const IPPROTO_VRRP: i32 = 112;

/// The IPv4 group adverts go to (RFC 5798 5.1.1.2).
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 group adverts go to (RFC 5798 5.1.2.2).
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// DSCP CS6 (network control, RFC 4594 3.2) as a TOS / traffic-class byte, as keepalived sends.
const TOS_NETWORK_CONTROL: u8 = 0xc0;
/// `TC_PRIO_CONTROL`: the highest band of the default qdisc, so adverts are not stuck behind
/// proxied traffic on a busy link.
const TC_PRIO_CONTROL: u32 = 7;
/// The IPv4 header we write: no options.
const IPV4_HEADER_LEN: usize = 20;
/// Enough for an `IPV6_PKTINFO` and an `IPV6_HOPLIMIT` control message.
const RECV_CONTROL_LEN: usize = 128;
/// The receive queue asked for: about 2,000 adverts' worth of kernel memory (an skb of a
/// small packet costs about 1 KiB), 40 ms of a 50,000 packets/s flood. The default (~200 KiB)
/// holds 4 ms of it, so a flood of junk made the kernel drop the real adverts behind it
/// (issue 15). Set with `SO_RCVBUFFORCE` (CAP_NET_ADMIN, which the node has), else
/// `SO_RCVBUF` (capped by `net.core.rmem_max`).
pub const RECEIVE_BUFFER: usize = 2 << 20;
/// How many multicast packets a unicast-only IPv6 receiver skips in one `recv` before it
/// reports `WouldBlock`; the rest are skipped on the next call.
const MAX_SKIPPED: usize = 64;

/// The address family a VRRP socket serves; one socket per family and interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4: sent with an IP header havip writes (`IP_HDRINCL`), group 224.0.0.18.
    V4,
    /// IPv6: the kernel writes the header from `IPV6_PKTINFO` / `IPV6_HOPLIMIT`, group
    /// ff02::12.
    V6,
}

impl Family {
    /// The family of `address`.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn domain(self) -> Domain {
        match self {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        }
    }
}

/// One packet as received: the IP facts the VRRP receive checks need (RFC 5798 7.1) and where
/// the VRRP message lies in the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedDatagram {
    /// IP source address. An IPv6 link-local source loses its scope; it is on this interface.
    pub source: IpAddr,
    /// IP destination: the VRRP group, or one of our addresses in unicast mode.
    pub destination: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as it arrived.
    pub ttl: u8,
    /// The IP payload (the VRRP message), as a range into the buffer passed to `recv`.
    pub payload: Range<usize>,
}

/// The receive path of one (interface, family). See the module documentation.
#[derive(Debug)]
pub struct VrrpReceiver {
    socket: Socket,
    ifindex: u32,
    family: Family,
    joined: bool,
}

impl VrrpReceiver {
    /// Opens the receive socket on interface `ifindex` / `ifname`; with `join_multicast` it
    /// joins 224.0.0.18 or ff02::12 there, without it it receives unicast only.
    pub fn open(
        ifindex: u32,
        ifname: &str,
        family: Family,
        join_multicast: bool,
    ) -> io::Result<Self> {
        let socket = Socket::new(
            family.domain(),
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(IPPROTO_VRRP)),
        )?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        let buffer = libc::c_int::try_from(RECEIVE_BUFFER).unwrap_or(libc::c_int::MAX);
        if set_int_option(
            socket.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            buffer,
        )
        .is_err()
        {
            socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
        }
        match family {
            Family::V4 => {
                // Without this a raw socket also gets multicast for groups it never joined
                // (the default IP_MULTICAST_ALL is 1).
                socket.set_multicast_all_v4(false)?;
                if join_multicast {
                    socket
                        .join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
                }
            }
            Family::V6 => {
                socket.set_recv_hoplimit_v6(true)?;
                set_int_option(
                    socket.as_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_RECVPKTINFO,
                    1,
                )?;
                if join_multicast {
                    socket.join_multicast_v6(&GROUP_V6, ifindex)?;
                }
            }
        }
        Ok(VrrpReceiver {
            socket,
            ifindex,
            family,
            joined: join_multicast,
        })
    }

    /// Packets the kernel dropped because this socket's receive queue was full, since it was
    /// opened (`SO_MEMINFO`'s `SK_MEMINFO_DROPS`): a flood that outruns the reader.
    pub fn kernel_drops(&self) -> io::Result<u64> {
        let info = socket_meminfo(self.socket.as_fd())?;
        let index = usize::try_from(libc::SK_MEMINFO_DROPS).unwrap_or(usize::MAX);
        Ok(info.get(index).copied().map_or(0, u64::from))
    }

    /// The receive queue's size in bytes as the kernel set it (it doubles what was asked).
    pub fn receive_buffer(&self) -> io::Result<usize> {
        self.socket.recv_buffer_size()
    }

    /// Reads one packet into `buf`. `WouldBlock` when none is queued; `InvalidData` when the
    /// packet is truncated by a short `buf` or its IP header or metadata is malformed (the
    /// packet is consumed either way, so the caller counts it and reads on).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<ReceivedDatagram> {
        for _ in 0..MAX_SKIPPED {
            let datagram = self.recv_one(buf)?;
            if self.joined || !datagram.destination.is_multicast() {
                return Ok(datagram);
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn recv_one(&self, buf: &mut [u8]) -> io::Result<ReceivedDatagram> {
        // SAFETY: sockaddr_in6 is plain data; all zeroes is a valid (unspecified) value.
        let mut name: libc::sockaddr_in6 = unsafe { mem::zeroed() };
        let mut control = [0u8; RECV_CONTROL_LEN];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data (integers and pointers); all zeroes is valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        // SAFETY: every pointer in `msg` refers to a live local or to `buf`, with the lengths
        // set above; the kernel writes at most those lengths. The socket is non-blocking.
        let received = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut msg, 0) };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = received as usize;
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(invalid_data(format!(
                "packet truncated to the {}-byte receive buffer",
                buf.len()
            )));
        }
        match self.family {
            Family::V4 => {
                let header = parse_ipv4_header(buf.get(..received).unwrap_or_default())
                    .map_err(|e| invalid_data(e.to_string()))?;
                Ok(ReceivedDatagram {
                    source: IpAddr::V4(header.source),
                    destination: IpAddr::V4(header.destination),
                    ttl: header.ttl,
                    payload: header.payload,
                })
            }
            Family::V6 => {
                if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                    return Err(invalid_data("control messages truncated".into()));
                }
                if name.sin6_family != libc::AF_INET6 as libc::sa_family_t {
                    return Err(invalid_data("no IPv6 source address".into()));
                }
                let control_len = (msg.msg_controllen as usize).min(control.len());
                let meta = parse_ipv6_control(&control[..control_len])?;
                Ok(ReceivedDatagram {
                    source: IpAddr::V6(Ipv6Addr::from(name.sin6_addr.s6_addr)),
                    destination: IpAddr::V6(meta.destination),
                    ttl: meta.hop_limit,
                    payload: 0..received,
                })
            }
        }
    }

    /// The interface this receiver listens on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The family this receiver listens to.
    pub fn family(&self) -> Family {
        self.family
    }
}

impl AsFd for VrrpReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for VrrpReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The send path of one (interface, family). See the module documentation.
#[derive(Debug)]
pub struct VrrpSender {
    socket: Socket,
    ifindex: u32,
    family: Family,
}

impl VrrpSender {
    /// Opens the send socket for interface `ifindex` / `ifname`.
    pub fn open(ifindex: u32, ifname: &str, family: Family) -> io::Result<Self> {
        let socket = match family {
            Family::V4 => {
                // IPPROTO_RAW: send-only (raw(7): receiving all protocols this way is not
                // possible) and IP_HDRINCL implied; set it anyway so the intent is explicit.
                let socket = Socket::new(
                    Domain::IPV4,
                    Type::RAW.nonblocking().cloexec(),
                    Some(Protocol::from(libc::IPPROTO_RAW)),
                )?;
                socket.set_header_included_v4(true)?;
                let mreqn = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr { s_addr: 0 },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as libc::c_int,
                };
                set_option(
                    socket.as_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MULTICAST_IF,
                    &mreqn,
                )?;
                socket.set_multicast_loop_v4(false)?;
                socket
            }
            Family::V6 => {
                let socket = Socket::new(
                    Domain::IPV6,
                    Type::RAW.nonblocking().cloexec(),
                    Some(Protocol::from(IPPROTO_VRRP)),
                )?;
                // A protocol-112 raw socket receives every VRRP packet; this one only sends, so
                // a one-instruction classic BPF program ("ret #0") drops them all before they
                // are queued.
                socket.attach_filter(&[SockFilter::new(
                    (libc::BPF_RET | libc::BPF_K) as u16,
                    0,
                    0,
                    0,
                )])?;
                socket.set_multicast_if_v6(ifindex)?;
                socket.set_multicast_loop_v6(false)?;
                // RFC 5798 5.1.2.3: hop limit 255. The per-packet IPV6_HOPLIMIT cmsg decides;
                // these are the fallbacks.
                socket.set_multicast_hops_v6(255)?;
                socket.set_unicast_hops_v6(255)?;
                socket.set_tclass_v6(u32::from(TOS_NETWORK_CONTROL))?;
                socket
            }
        };
        socket.bind_device(Some(ifname.as_bytes()))?;
        socket.set_priority(TC_PRIO_CONTROL)?;
        Ok(VrrpSender {
            socket,
            ifindex,
            family,
        })
    }

    /// Sends `payload` (a VRRP message, checksum included) from `source` to `destination` with
    /// TTL / hop limit `ttl`. `source` must be an address of this host, of the socket's family.
    pub fn send(
        &self,
        source: IpAddr,
        destination: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let sent = match (self.family, source, destination) {
            (Family::V4, IpAddr::V4(source), IpAddr::V4(destination)) => {
                let header = ipv4_header(source, destination, ttl, payload.len())
                    .ok_or_else(|| invalid_input("VRRP message too long for IPv4"))?;
                let to = SockAddr::from(SocketAddrV4::new(destination, 0));
                let bufs = [IoSlice::new(&header), IoSlice::new(payload)];
                let sent = self
                    .socket
                    .sendmsg(&MsgHdr::new().with_addr(&to).with_buffers(&bufs), 0)?;
                sent.checked_sub(IPV4_HEADER_LEN)
            }
            (Family::V6, IpAddr::V6(source), IpAddr::V6(destination)) => {
                let control = ipv6_send_control(source, self.ifindex, ttl);
                let scope = if needs_scope(destination) {
                    self.ifindex
                } else {
                    0
                };
                let to = SockAddr::from(SocketAddrV6::new(destination, 0, 0, scope));
                let bufs = [IoSlice::new(payload)];
                let msg = MsgHdr::new()
                    .with_addr(&to)
                    .with_buffers(&bufs)
                    .with_control(&control);
                Some(self.socket.sendmsg(&msg, 0)?)
            }
            _ => {
                return Err(invalid_input(
                    "source and destination must be of the sender's family",
                ))
            }
        };
        if sent == Some(payload.len()) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "raw socket sent a partial packet",
            ))
        }
    }

    /// The interface this sender sends on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

impl AsFd for VrrpSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for VrrpSender {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Whether an IPv6 destination is only meaningful with an interface (link-local unicast, or
/// interface- / link-local multicast such as ff02::12).
fn needs_scope(address: Ipv6Addr) -> bool {
    address.is_unicast_link_local()
        || (address.is_multicast() && matches!(address.segments()[0] & 0x000f, 1 | 2))
}

/// The 20-byte IPv4 header of a VRRP packet (RFC 791 3.1): no options, TOS 0xc0 (CS6, as
/// keepalived), identification 0 (the kernel picks one for `IP_HDRINCL` packets), no fragment
/// flags, protocol 112 and the header checksum filled in (the kernel recomputes it anyway).
/// `None` when the packet would exceed 65535 bytes.
pub(crate) fn ipv4_header(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    ttl: u8,
    payload_len: usize,
) -> Option<[u8; IPV4_HEADER_LEN]> {
    let total = u16::try_from(IPV4_HEADER_LEN + payload_len).ok()?;
    let mut header = [0u8; IPV4_HEADER_LEN];
    header[0] = 0x45; // version 4, IHL 5 words
    header[1] = TOS_NETWORK_CONTROL;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    // [4..8]: identification 0, flags and fragment offset 0.
    header[8] = ttl;
    header[9] = IPPROTO_VRRP as u8;
    header[12..16].copy_from_slice(&source.octets());
    header[16..20].copy_from_slice(&destination.octets());
    let checksum = internet_checksum(&header);
    header[10..12].copy_from_slice(&checksum.to_be_bytes());
    Some(header)
}

/// RFC 1071 checksum.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What the IPv4 header of a received packet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ipv4Facts {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    pub ttl: u8,
    pub payload: Range<usize>,
}

/// Why a received IPv4 header is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    TooShort(usize),
    NotIpv4(u8),
    HeaderLength(usize),
    TotalLength { total: usize, header: usize },
    Truncated { total: usize, received: usize },
    Protocol(u8),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort(len) => {
                write!(f, "{len} bytes is shorter than an IPv4 header")
            }
            HeaderError::NotIpv4(version) => write!(f, "IP version {version} on an IPv4 socket"),
            HeaderError::HeaderLength(len) => write!(f, "IPv4 header length {len} is invalid"),
            HeaderError::TotalLength { total, header } => {
                write!(
                    f,
                    "IPv4 total length {total} is below the header length {header}"
                )
            }
            HeaderError::Truncated { total, received } => {
                write!(
                    f,
                    "IPv4 total length {total} but only {received} bytes received"
                )
            }
            HeaderError::Protocol(protocol) => write!(f, "IP protocol {protocol} is not VRRP"),
        }
    }
}

/// Parses the IPv4 header a raw socket hands over in front of the payload (RFC 791 3.1). The
/// kernel has already verified the header checksum and reassembled fragments; options are
/// skipped by IHL.
pub(crate) fn parse_ipv4_header(packet: &[u8]) -> Result<Ipv4Facts, HeaderError> {
    let fixed = packet
        .first_chunk::<IPV4_HEADER_LEN>()
        .ok_or(HeaderError::TooShort(packet.len()))?;
    let version = fixed[0] >> 4;
    if version != 4 {
        return Err(HeaderError::NotIpv4(version));
    }
    let header_len = usize::from(fixed[0] & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN || header_len > packet.len() {
        return Err(HeaderError::HeaderLength(header_len));
    }
    let total = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if total < header_len {
        return Err(HeaderError::TotalLength {
            total,
            header: header_len,
        });
    }
    if total > packet.len() {
        return Err(HeaderError::Truncated {
            total,
            received: packet.len(),
        });
    }
    if i32::from(fixed[9]) != IPPROTO_VRRP {
        return Err(HeaderError::Protocol(fixed[9]));
    }
    Ok(Ipv4Facts {
        source: Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]),
        destination: Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]),
        ttl: fixed[8],
        payload: header_len..total,
    })
}

/// The control messages of an IPv6 send: `IPV6_PKTINFO` (RFC 3542 6.1) pins the source the
/// checksum was computed with and the outgoing interface; `IPV6_HOPLIMIT` (RFC 3542 6.3) sets
/// the hop limit of this packet.
pub(crate) fn ipv6_send_control(source: Ipv6Addr, ifindex: u32, hop_limit: u8) -> Vec<u8> {
    let mut pktinfo = [0u8; 20];
    pktinfo[..16].copy_from_slice(&source.octets());
    pktinfo[16..].copy_from_slice(&(ifindex as libc::c_int).to_ne_bytes());
    let mut control =
        Vec::with_capacity(crate::sockopt::cmsg_space(20) + crate::sockopt::cmsg_space(4));
    push_cmsg(
        &mut control,
        libc::IPPROTO_IPV6,
        libc::IPV6_PKTINFO,
        &pktinfo,
    );
    push_cmsg(
        &mut control,
        libc::IPPROTO_IPV6,
        libc::IPV6_HOPLIMIT,
        &libc::c_int::from(hop_limit).to_ne_bytes(),
    );
    control
}

/// The receive metadata of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv6Facts {
    pub destination: Ipv6Addr,
    pub hop_limit: u8,
}

/// Finds the destination (`IPV6_PKTINFO`) and hop limit (`IPV6_HOPLIMIT`) in received control
/// messages. Both are requested at open, so a packet without them is refused.
pub(crate) fn parse_ipv6_control(control: &[u8]) -> io::Result<Ipv6Facts> {
    let mut destination = None;
    let mut hop_limit = None;
    for (level, kind, data) in control_messages(control) {
        if level != libc::IPPROTO_IPV6 {
            continue;
        }
        if kind == libc::IPV6_PKTINFO {
            destination = data
                .first_chunk::<16>()
                .map(|octets| Ipv6Addr::from(*octets));
        } else if kind == libc::IPV6_HOPLIMIT {
            hop_limit = data
                .first_chunk::<4>()
                .map(|bytes| libc::c_int::from_ne_bytes(*bytes))
                .and_then(|value| u8::try_from(value).ok());
        }
    }
    match (destination, hop_limit) {
        (Some(destination), Some(hop_limit)) => Ok(Ipv6Facts {
            destination,
            hop_limit,
        }),
        (None, _) => Err(invalid_data("no IPV6_PKTINFO with the packet".into())),
        (_, None) => Err(invalid_data("no IPV6_HOPLIMIT with the packet".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn ipv4_header_bytes() {
        let header = ipv4_header(SRC, GROUP_V4, 255, 20).expect("fits");
        #[rustfmt::skip]
        let expected = [
            0x45, 0xc0, 0x00, 0x28, // version 4, IHL 5; CS6; total length 40
            0x00, 0x00, 0x00, 0x00, // identification 0 (kernel picks), no flags
            0xff, 0x70, 0x18, 0x92, // TTL 255, protocol 112, checksum (worked by hand)
            192, 0, 2, 1,           // source
            224, 0, 0, 18,          // destination
        ];
        assert_eq!(header, expected);
        // A header with a correct checksum sums to zero.
        assert_eq!(internet_checksum(&header), 0);
        assert!(ipv4_header(SRC, GROUP_V4, 255, 65535 - 20).is_some());
        assert!(ipv4_header(SRC, GROUP_V4, 255, 65535 - 19).is_none());
    }

    #[test]
    fn internet_checksum_of_rfc1071_example() {
        // RFC 1071 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum 220d.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        assert_eq!(internet_checksum(&[0x01]), !0x0100);
    }

    #[test]
    fn parse_round_trips_the_built_header() {
        let mut packet = ipv4_header(SRC, GROUP_V4, 254, 4).expect("fits").to_vec();
        packet.extend_from_slice(&[1, 2, 3, 4]);
        let facts = parse_ipv4_header(&packet).expect("valid");
        assert_eq!(
            facts,
            Ipv4Facts {
                source: SRC,
                destination: GROUP_V4,
                ttl: 254,
                payload: 20..24,
            }
        );
    }

    #[test]
    fn parse_skips_options_and_ignores_trailing_bytes() {
        let mut packet = ipv4_header(SRC, GROUP_V4, 255, 4 + 4)
            .expect("fits")
            .to_vec();
        packet[0] = 0x46; // one word of options
        packet.extend_from_slice(&[0x94, 0x04, 0, 0]); // router alert
        packet.extend_from_slice(&[9, 9, 9, 9]);
        packet.extend_from_slice(&[0xee; 3]); // beyond total length
        let facts = parse_ipv4_header(&packet).expect("valid");
        assert_eq!(facts.payload, 24..28);
    }

    #[test]
    fn parse_refuses_malformed_headers() {
        let good = {
            let mut p = ipv4_header(SRC, GROUP_V4, 255, 4).expect("fits").to_vec();
            p.extend_from_slice(&[0; 4]);
            p
        };
        assert_eq!(
            parse_ipv4_header(&good[..19]),
            Err(HeaderError::TooShort(19))
        );
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(parse_ipv4_header(&v6), Err(HeaderError::NotIpv4(6)));
        let mut small_ihl = good.clone();
        small_ihl[0] = 0x44;
        assert_eq!(
            parse_ipv4_header(&small_ihl),
            Err(HeaderError::HeaderLength(16))
        );
        let mut big_ihl = good.clone();
        big_ihl[0] = 0x4f;
        assert_eq!(
            parse_ipv4_header(&big_ihl),
            Err(HeaderError::HeaderLength(60))
        );
        let mut short_total = good.clone();
        short_total[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(matches!(
            parse_ipv4_header(&short_total),
            Err(HeaderError::TotalLength {
                total: 19,
                header: 20
            })
        ));
        let mut long_total = good.clone();
        long_total[2..4].copy_from_slice(&100u16.to_be_bytes());
        assert!(matches!(
            parse_ipv4_header(&long_total),
            Err(HeaderError::Truncated {
                total: 100,
                received: 24
            })
        ));
        let mut tcp = good.clone();
        tcp[9] = 6;
        assert_eq!(parse_ipv4_header(&tcp), Err(HeaderError::Protocol(6)));
        // Every prefix of a valid packet is either refused or parsed within bounds.
        for len in 0..good.len() {
            if let Ok(facts) = parse_ipv4_header(&good[..len]) {
                assert!(facts.payload.end <= len);
            }
        }
    }

    #[test]
    fn ipv6_control_round_trip() {
        let source: Ipv6Addr = "fe80::1".parse().expect("address");
        let control = ipv6_send_control(source, 7, 255);
        // The same layout is what the kernel hands back on receive.
        let facts = parse_ipv6_control(&control).expect("both present");
        assert_eq!(
            facts,
            Ipv6Facts {
                destination: source,
                hop_limit: 255
            }
        );
        let mut only_pktinfo = Vec::new();
        push_cmsg(
            &mut only_pktinfo,
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            &[0; 20],
        );
        assert_eq!(
            parse_ipv6_control(&only_pktinfo).map_err(|e| e.kind()),
            Err(io::ErrorKind::InvalidData)
        );
        assert!(parse_ipv6_control(&[]).is_err());
    }

    #[test]
    fn scope_is_needed_for_link_local_destinations() {
        assert!(needs_scope(GROUP_V6));
        assert!(needs_scope("fe80::2".parse().expect("address")));
        assert!(needs_scope("ff01::1".parse().expect("address")));
        assert!(!needs_scope("2001:db8::2".parse().expect("address")));
        assert!(!needs_scope("ff05::2".parse().expect("address")));
    }
}
