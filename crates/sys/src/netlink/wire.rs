//! The rtnetlink wire format, as pure functions: building the few requests havip sends and
//! decoding the messages it reads (netlink(7), rtnetlink(7); constants from the kernel's uapi
//! headers `linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`,
//! `linux/nexthop.h`).
//!
//! Netlink is host byte order, every message and attribute is padded to 4 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{InterfaceAddress, Link, NetEvent, Nexthop, Route, RouteHop, RouteKind, RouteRequest};

pub(super) const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;

pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;

const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
/// On a dump message: the dump was inconsistent because the data changed meanwhile.
pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;
/// On NLMSG_ERROR: the request was not echoed back in full (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// On NLMSG_ERROR: extended-ack attributes follow (`NETLINK_EXT_ACK`).
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

pub(super) const RTM_NEWLINK: u16 = 16;
pub(super) const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
pub(super) const RTM_NEWADDR: u16 = 20;
pub(super) const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
pub(super) const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
pub(super) const RTM_NEWNEXTHOP: u16 = 104;
const RTM_GETNEXTHOP: u16 = 106;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_FLAGS: u16 = 8;

const IFA_F_SECONDARY: u32 = 0x01;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_TENTATIVE: u32 = 0x40;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_NH_ID: u16 = 30;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
/// `NEXTHOP_GRP_TYPE_RES`: a resilient group (Linux 5.13), as opposed to 0, hash-threshold.
const NEXTHOP_GRP_TYPE_RES: u16 = 1;

/// `rtm_type` values (`RTN_*`).
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;
const RTN_BLACKHOLE: u8 = 6;
const RTN_UNREACHABLE: u8 = 7;

/// `RT_TABLE_UNSPEC` in `rtm_table`: the table id is in `RTA_TABLE` (ids above 255).
const RT_TABLE_UNSPEC: u8 = 0;
/// `RT_SCOPE_LINK`: a route with no gateway, to a destination on the link.
const RT_SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_HOST`: a local route (the destination is this host).
const RT_SCOPE_HOST: u8 = 254;

const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;

/// Attribute types carry two flag bits (nested, network byte order) above the type.
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000);
/// `RT_SCOPE_UNIVERSE`: global scope, what keepalived and `ip addr add` use for VIPs.
const RT_SCOPE_UNIVERSE: u8 = 0;

const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// A request under construction: header, fixed part, attributes.
struct Request {
    buf: Vec<u8>,
}

impl Request {
    fn new(kind: u16, flags: u16, seq: u32) -> Request {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        // Port id 0: the kernel fills in the sender's.
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Request { buf }
    }

    fn fixed(mut self, bytes: &[u8]) -> Request {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Request {
        let len = (NLA_HDRLEN + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg`.
fn ifinfomsg(index: u32) -> [u8; 16] {
    let mut msg = [0u8; 16];
    msg[0] = AF_UNSPEC;
    msg[4..8].copy_from_slice(&index.to_ne_bytes());
    msg
}

/// `struct ifaddrmsg`.
fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, scope: u8, index: u32) -> [u8; 8] {
    let mut msg = [family, prefix_len, flags, scope, 0, 0, 0, 0];
    msg[4..8].copy_from_slice(&index.to_ne_bytes());
    msg
}

fn c_string(name: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0);
    bytes
}

fn address_bytes(address: &IpAddr) -> (u8, Vec<u8>) {
    match address {
        IpAddr::V4(v4) => (AF_INET, v4.octets().to_vec()),
        IpAddr::V6(v6) => (AF_INET6, v6.octets().to_vec()),
    }
}

/// RTM_GETLINK for one interface by name.
pub(super) fn get_link_by_name(seq: u32, name: &str) -> Vec<u8> {
    Request::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .fixed(&ifinfomsg(0))
        .attr(IFLA_IFNAME, &c_string(name))
        .finish()
}

/// RTM_GETLINK for one interface by index.
pub(super) fn get_link_by_index(seq: u32, index: u32) -> Vec<u8> {
    Request::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq)
        .fixed(&ifinfomsg(index))
        .finish()
}

/// RTM_GETADDR dump of every address of both families.
pub(super) fn dump_addresses(seq: u32) -> Vec<u8> {
    Request::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq)
        .fixed(&ifaddrmsg(AF_UNSPEC, 0, 0, 0, 0))
        .finish()
}

/// RTM_NEWADDR as `ip addr add ADDRESS/PREFIX dev IF [label LABEL]` sends it, plus
/// `IFA_F_NODAD` for IPv6: a VIP must be usable at once (binds fail while it is tentative),
/// and the previous master still answering for it is exactly what DAD would trip over.
/// `NLM_F_EXCL` makes an existing address an EEXIST error instead of a silent update.
pub(super) fn new_address(
    seq: u32,
    ifindex: u32,
    address: IpAddr,
    prefix_len: u8,
    label: Option<&str>,
) -> Vec<u8> {
    let (family, bytes) = address_bytes(&address);
    let flags = if family == AF_INET6 { IFA_F_NODAD } else { 0 };
    let mut request = Request::new(
        RTM_NEWADDR,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
    )
    .fixed(&ifaddrmsg(
        family,
        prefix_len,
        flags as u8,
        RT_SCOPE_UNIVERSE,
        ifindex,
    ))
    .attr(IFA_LOCAL, &bytes);
    if family == AF_INET {
        // IPv4 keeps local and "address" (the peer on point-to-point links) apart; on a
        // broadcast link both are the address itself, as iproute2 sends them.
        request = request.attr(IFA_ADDRESS, &bytes);
    }
    if let Some(label) = label {
        request = request.attr(IFA_LABEL, &c_string(label));
    }
    if family == AF_INET6 {
        // The 8-bit ifa_flags holds NODAD too; IFA_FLAGS is the full 32-bit set.
        request = request.attr(IFA_FLAGS, &flags.to_ne_bytes());
    }
    request.finish()
}

/// RTM_DELADDR for exactly this address and prefix length. For IPv4, IFA_ADDRESS makes the
/// kernel match the prefix length too (without it any prefix of the address would go).
pub(super) fn del_address(seq: u32, ifindex: u32, address: IpAddr, prefix_len: u8) -> Vec<u8> {
    let (family, bytes) = address_bytes(&address);
    let mut request = Request::new(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq)
        .fixed(&ifaddrmsg(family, prefix_len, 0, 0, ifindex))
        .attr(IFA_LOCAL, &bytes);
    if family == AF_INET {
        request = request.attr(IFA_ADDRESS, &bytes);
    }
    request.finish()
}

/// `struct rtmsg`.
fn rtmsg(family: u8, dst_len: u8, table: u32, protocol: u8, scope: u8, kind: u8) -> [u8; 12] {
    // Tables above 255 do not fit the 8-bit field; RTA_TABLE carries every id anyway.
    let short_table = u8::try_from(table).unwrap_or(RT_TABLE_UNSPEC);
    [
        family,
        dst_len,
        0,
        0,
        short_table,
        protocol,
        scope,
        kind,
        0,
        0,
        0,
        0,
    ]
}

fn route_kind_byte(kind: RouteKind) -> u8 {
    match kind {
        RouteKind::Unicast => RTN_UNICAST,
        RouteKind::Local => RTN_LOCAL,
        RouteKind::Blackhole => RTN_BLACKHOLE,
        RouteKind::Unreachable => RTN_UNREACHABLE,
        RouteKind::Other(byte) => byte,
    }
}

/// The scope `ip route` gives a route of this kind without a gateway: host for local routes,
/// link for a route out of an interface, universe for the rest.
fn route_scope(kind: RouteKind) -> u8 {
    match kind {
        RouteKind::Local => RT_SCOPE_HOST,
        RouteKind::Unicast => RT_SCOPE_LINK,
        _ => RT_SCOPE_UNIVERSE,
    }
}

fn route_request(kind: u16, flags: u16, seq: u32, route: &RouteRequest) -> Vec<u8> {
    let (family, bytes) = address_bytes(&route.destination);
    let mut request = Request::new(kind, flags, seq)
        .fixed(&rtmsg(
            family,
            route.prefix_len,
            route.table,
            route.protocol,
            route_scope(route.kind),
            route_kind_byte(route.kind),
        ))
        .attr(RTA_TABLE, &route.table.to_ne_bytes())
        .attr(RTA_DST, &bytes);
    if let Some(interface) = route.interface {
        request = request.attr(RTA_OIF, &interface.to_ne_bytes());
    }
    request.finish()
}

/// RTM_NEWROUTE as `ip route add [local] DST/LEN dev IF table T proto P` sends it;
/// `NLM_F_EXCL` makes an existing route an EEXIST error.
pub(super) fn new_route(seq: u32, route: &RouteRequest) -> Vec<u8> {
    route_request(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
        route,
    )
}

/// RTM_NEWROUTE as `ip route append` sends it: added beside routes to the same destination
/// (the local route the kernel makes for an address, say), EEXIST only for an identical one.
pub(super) fn append_route(seq: u32, route: &RouteRequest) -> Vec<u8> {
    route_request(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
        seq,
        route,
    )
}

/// RTM_DELROUTE for exactly this route: the kernel matches destination, table, type,
/// protocol and interface (ESRCH when none matches).
pub(super) fn del_route(seq: u32, route: &RouteRequest) -> Vec<u8> {
    route_request(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, route)
}

/// RTM_GETROUTE dump of one table, both families. With `NETLINK_GET_STRICT_CHK` on the socket
/// (Linux 4.20) the kernel dumps only that table; older kernels dump every table and the
/// caller filters.
pub(super) fn dump_routes(seq: u32, table: u32) -> Vec<u8> {
    Request::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq)
        .fixed(&rtmsg(AF_UNSPEC, 0, table, 0, 0, 0))
        .attr(RTA_TABLE, &table.to_ne_bytes())
        .finish()
}

/// RTM_GETNEXTHOP for the nexthop object `id` (`ip nexthop get id ID`).
pub(super) fn get_nexthop(seq: u32, id: u32) -> Vec<u8> {
    Request::new(RTM_GETNEXTHOP, NLM_F_REQUEST | NLM_F_ACK, seq)
        .fixed(&[AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0])
        .attr(NHA_ID, &id.to_ne_bytes())
        .finish()
}

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// A datagram whose message lengths do not add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// The messages of one received datagram, in order.
pub(super) fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, Malformed>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(header) = rest.first_chunk::<NLMSG_HDRLEN>() else {
            rest = &[];
            return Some(Err(Malformed));
        };
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(payload) = rest.get(NLMSG_HDRLEN..len).filter(|_| len >= NLMSG_HDRLEN) else {
            rest = &[];
            return Some(Err(Malformed));
        };
        let message = Message {
            kind: u16::from_ne_bytes([header[4], header[5]]),
            flags: u16::from_ne_bytes([header[6], header[7]]),
            seq: u32::from_ne_bytes([header[8], header[9], header[10], header[11]]),
            payload,
        };
        rest = rest.get(align4(len)..).unwrap_or_default();
        Some(Ok(message))
    })
}

/// The attributes (type without flag bits, data) in `bytes`. A malformed tail ends the walk.
fn attributes(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let header = rest.first_chunk::<NLA_HDRLEN>()?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        let data = rest.get(NLA_HDRLEN..len).filter(|_| len >= NLA_HDRLEN)?;
        rest = rest.get(align4(len)..).unwrap_or_default();
        Some((kind, data))
    })
}

/// A NUL-terminated string attribute (the terminator is optional on input).
fn string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    bytes
        .get(offset..)?
        .first_chunk::<4>()
        .map(|b| u32::from_ne_bytes(*b))
}

/// Decodes an RTM_NEWLINK payload. `None` for other families (bridge port messages share the
/// link group and would look like duplicate or removed links) or when the name is missing.
pub(super) fn parse_link(payload: &[u8]) -> Option<Link> {
    let fixed = payload.first_chunk::<16>()?;
    if fixed[0] != AF_UNSPEC {
        return None;
    }
    let index = u32_at(fixed, 4)?;
    let flags = u32_at(fixed, 8)?;
    let mut name = None;
    let mut mac = None;
    let mut mtu = 0;
    for (kind, data) in attributes(payload.get(16..)?) {
        match kind {
            IFLA_IFNAME => name = Some(string(data)),
            IFLA_ADDRESS => mac = <[u8; 6]>::try_from(data).ok(),
            IFLA_MTU => mtu = u32_at(data, 0).unwrap_or(0),
            _ => {}
        }
    }
    Some(Link {
        index,
        name: name?,
        // IFF_RUNNING in netlink is the operational state: up and with carrier.
        up: flags & IFF_UP != 0 && flags & IFF_RUNNING != 0,
        mac,
        mtu,
    })
}

/// The interface index of an RTM_DELLINK payload (AF_UNSPEC only, as for [`parse_link`]).
pub(super) fn parse_link_index(payload: &[u8]) -> Option<u32> {
    let fixed = payload.first_chunk::<16>()?;
    (fixed[0] == AF_UNSPEC).then(|| u32_at(fixed, 4)).flatten()
}

/// Decodes an RTM_NEWADDR / RTM_DELADDR payload of family IPv4 or IPv6.
pub(super) fn parse_address(payload: &[u8]) -> Option<InterfaceAddress> {
    let fixed = payload.first_chunk::<8>()?;
    let (family, prefix_len, short_flags) = (fixed[0], fixed[1], fixed[2]);
    let ifindex = u32_at(fixed, 4)?;
    let mut local = None;
    let mut peer = None;
    let mut label = None;
    let mut flags = u32::from(short_flags);
    for (kind, data) in attributes(payload.get(8..)?) {
        match kind {
            IFA_LOCAL => local = Some(data),
            IFA_ADDRESS => peer = Some(data),
            IFA_LABEL => label = Some(string(data)),
            IFA_FLAGS => flags = u32_at(data, 0).unwrap_or(flags),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links and the only attribute for most IPv6 addresses.
    let bytes = local.or(peer)?;
    let address = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(InterfaceAddress {
        ifindex,
        address,
        prefix_len,
        label,
        // For IPv6 the same bit means "temporary" (privacy address), not secondary.
        secondary: family == AF_INET && flags & IFA_F_SECONDARY != 0,
        tentative: flags & IFA_F_TENTATIVE != 0,
    })
}

/// An address of `family` from attribute bytes (4 or 16 of them).
fn ip_of(family: u8, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

fn route_kind(byte: u8) -> RouteKind {
    match byte {
        RTN_UNICAST => RouteKind::Unicast,
        RTN_LOCAL => RouteKind::Local,
        RTN_BLACKHOLE => RouteKind::Blackhole,
        RTN_UNREACHABLE => RouteKind::Unreachable,
        other => RouteKind::Other(other),
    }
}

/// The hops of an `RTA_MULTIPATH` attribute: `struct rtnexthop` (length, flags, hops, ifindex)
/// each followed by its own attributes. A malformed tail ends the list.
fn multipath(family: u8, mut bytes: &[u8]) -> Vec<RouteHop> {
    let mut hops = Vec::new();
    while let Some(header) = bytes.first_chunk::<8>() {
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let Some(attrs) = bytes.get(8..len).filter(|_| len >= 8) else {
            break;
        };
        let gateway = attributes(attrs)
            .find(|(kind, _)| *kind == RTA_GATEWAY)
            .and_then(|(_, data)| ip_of(family, data));
        hops.push(RouteHop {
            interface: u32_at(header, 4).unwrap_or(0),
            gateway,
            // rtnh_hops is the weight minus one.
            weight: u16::from(header[3]) + 1,
        });
        bytes = bytes.get(align4(len)..).unwrap_or_default();
    }
    hops
}

/// Decodes an RTM_NEWROUTE / RTM_DELROUTE payload of family IPv4 or IPv6. A default route
/// (no `RTA_DST`) has the unspecified address as its destination.
pub(super) fn parse_route(payload: &[u8]) -> Option<Route> {
    let fixed = payload.first_chunk::<12>()?;
    let family = fixed[0];
    let unspecified = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut route = Route {
        table: u32::from(fixed[4]),
        destination: unspecified,
        prefix_len: fixed[1],
        kind: route_kind(fixed[7]),
        protocol: fixed[5],
        interface: None,
        gateway: None,
        nexthop_id: None,
        multipath: Vec::new(),
        metric: None,
    };
    for (kind, data) in attributes(payload.get(12..)?) {
        match kind {
            RTA_DST => route.destination = ip_of(family, data)?,
            RTA_TABLE => route.table = u32_at(data, 0).unwrap_or(route.table),
            RTA_OIF => route.interface = u32_at(data, 0),
            RTA_GATEWAY => route.gateway = ip_of(family, data),
            RTA_PRIORITY => route.metric = u32_at(data, 0),
            RTA_NH_ID => route.nexthop_id = u32_at(data, 0),
            RTA_MULTIPATH => route.multipath = multipath(family, data),
            _ => {}
        }
    }
    Some(route)
}

/// Decodes an RTM_NEWNEXTHOP payload: a single nexthop (gateway, interface) or a group of
/// other nexthop objects with their weights.
pub(super) fn parse_nexthop(payload: &[u8]) -> Option<Nexthop> {
    let fixed = payload.first_chunk::<8>()?;
    let family = fixed[0];
    let mut nexthop = Nexthop {
        id: 0,
        gateway: None,
        interface: None,
        blackhole: false,
        group: Vec::new(),
        resilient: false,
    };
    let mut id = None;
    for (kind, data) in attributes(payload.get(8..)?) {
        match kind {
            NHA_ID => id = u32_at(data, 0),
            NHA_GATEWAY => nexthop.gateway = ip_of(family, data),
            NHA_OIF => nexthop.interface = u32_at(data, 0),
            NHA_BLACKHOLE => nexthop.blackhole = true,
            NHA_GROUP_TYPE => {
                nexthop.resilient = data.first_chunk::<2>().map(|b| u16::from_ne_bytes(*b))
                    == Some(NEXTHOP_GRP_TYPE_RES)
            }
            NHA_GROUP => {
                // struct nexthop_grp: u32 id, u8 weight (minus one), u8 + u16 reserved.
                nexthop.group = data
                    .chunks_exact(8)
                    .filter_map(|entry| Some((u32_at(entry, 0)?, u16::from(entry[4]) + 1)))
                    .collect();
            }
            _ => {}
        }
    }
    nexthop.id = id?;
    Some(nexthop)
}

/// The errno (0 for an acknowledgement) and the kernel's extended-ack message, if any, of an
/// NLMSG_ERROR message. `None` when too short.
pub(super) fn parse_error(message: &Message<'_>) -> Option<(i32, Option<String>)> {
    let error = i32::from_ne_bytes(*message.payload.first_chunk::<4>()?);
    let text = if message.flags & NLM_F_ACK_TLVS != 0 {
        let echoed_len = if message.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(message.payload, 4)? as usize
        };
        let tlvs = message
            .payload
            .get(4 + align4(echoed_len)..)
            .unwrap_or_default();
        attributes(tlvs)
            .find(|(kind, _)| *kind == NLMSGERR_ATTR_MSG)
            .map(|(_, data)| string(data))
    } else {
        None
    };
    Some((-error, text))
}

/// The errno carried by an NLMSG_DONE of a dump (0 when the dump completed).
pub(super) fn parse_done(message: &Message<'_>) -> i32 {
    message
        .payload
        .first_chunk::<4>()
        .map(|b| -i32::from_ne_bytes(*b))
        .unwrap_or(0)
}

/// A monitor notification as an event; `None` for messages havip does not follow.
pub(super) fn event(message: &Message<'_>) -> Option<NetEvent> {
    match message.kind {
        RTM_NEWLINK => parse_link(message.payload).map(NetEvent::Link),
        RTM_DELLINK => {
            parse_link_index(message.payload).map(|index| NetEvent::LinkRemoved { index })
        }
        RTM_NEWADDR => parse_address(message.payload).map(NetEvent::AddressAdded),
        RTM_DELADDR => parse_address(message.payload).map(NetEvent::AddressRemoved),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne16(v: u16) -> [u8; 2] {
        v.to_ne_bytes()
    }
    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    /// Builds a received message the way the kernel lays it out.
    fn received(kind: u16, flags: u16, seq: u32, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut request = Request::new(kind, flags, seq).fixed(fixed);
        for (kind, data) in attrs {
            request = request.attr(*kind, data);
        }
        request.finish()
    }

    #[test]
    fn new_ipv4_address_request_bytes() {
        let bytes = new_address(
            7,
            3,
            "192.0.2.10".parse().expect("address"),
            24,
            Some("eth0:vip"),
        );
        let mut expected = Vec::new();
        expected.extend(ne32(56)); // length
        expected.extend(ne16(RTM_NEWADDR));
        expected.extend(ne16(0x01 | 0x04 | 0x400 | 0x200)); // REQUEST ACK CREATE EXCL
        expected.extend(ne32(7)); // seq
        expected.extend(ne32(0)); // port id
        expected.extend([2, 24, 0, 0]); // AF_INET, /24, no flags, universe
        expected.extend(ne32(3)); // ifindex
        expected.extend(ne16(8));
        expected.extend(ne16(IFA_LOCAL));
        expected.extend([192, 0, 2, 10]);
        expected.extend(ne16(8));
        expected.extend(ne16(IFA_ADDRESS));
        expected.extend([192, 0, 2, 10]);
        expected.extend(ne16(13)); // 4 + "eth0:vip\0"
        expected.extend(ne16(IFA_LABEL));
        expected.extend(b"eth0:vip\0");
        expected.extend([0, 0, 0]); // padding to 4
        assert_eq!(bytes, expected);
    }

    #[test]
    fn new_ipv6_address_request_has_nodad() {
        let bytes = new_address(9, 4, "2001:db8::10".parse().expect("address"), 64, None);
        let mut expected = Vec::new();
        expected.extend(ne32(52));
        expected.extend(ne16(RTM_NEWADDR));
        expected.extend(ne16(0x01 | 0x04 | 0x400 | 0x200));
        expected.extend(ne32(9));
        expected.extend(ne32(0));
        expected.extend([10, 64, 0x02, 0]); // AF_INET6, /64, IFA_F_NODAD, universe
        expected.extend(ne32(4));
        expected.extend(ne16(20));
        expected.extend(ne16(IFA_LOCAL));
        expected.extend([
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ]);
        expected.extend(ne16(8));
        expected.extend(ne16(IFA_FLAGS));
        expected.extend(ne32(0x02));
        assert_eq!(bytes, expected);
    }

    #[test]
    fn del_and_get_request_bytes() {
        let del = del_address(1, 2, "192.0.2.10".parse().expect("address"), 32);
        assert_eq!(del.len(), 16 + 8 + 8 + 8);
        assert_eq!(&del[4..6], &ne16(RTM_DELADDR));
        assert_eq!(&del[6..8], &ne16(0x05));
        assert_eq!(&del[16..20], &[2, 32, 0, 0]);

        let by_name = get_link_by_name(5, "veth0");
        let mut expected = Vec::new();
        expected.extend(ne32(44));
        expected.extend(ne16(RTM_GETLINK));
        expected.extend(ne16(0x05));
        expected.extend(ne32(5));
        expected.extend(ne32(0));
        expected.extend([0u8; 16]); // ifinfomsg, index 0
        expected.extend(ne16(10));
        expected.extend(ne16(IFLA_IFNAME));
        expected.extend(b"veth0\0\0\0");
        assert_eq!(by_name, expected);

        let by_index = get_link_by_index(6, 42);
        assert_eq!(by_index.len(), 32);
        assert_eq!(&by_index[20..24], &ne32(42));

        let dump = dump_addresses(8);
        assert_eq!(dump.len(), 24);
        assert_eq!(&dump[6..8], &ne16(0x301));
    }

    #[test]
    fn link_messages_decode() {
        let mut fixed = [0u8; 16];
        fixed[4..8].copy_from_slice(&ne32(5));
        fixed[8..12].copy_from_slice(&ne32(0x1 | 0x2 | 0x40 | 0x1000 | 0x10000));
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        let bytes = received(
            RTM_NEWLINK,
            0,
            0,
            &fixed,
            &[
                (IFLA_IFNAME, b"veth-a\0"),
                (IFLA_MTU, &ne32(1500)),
                (IFLA_ADDRESS, &mac),
                (0x8000 | 26, &[1, 2, 3, 4]), // a nested attribute we skip
            ],
        );
        let all: Vec<_> = messages(&bytes).collect();
        assert_eq!(all.len(), 1);
        let message = all[0].expect("well formed");
        let expected = Link {
            index: 5,
            name: "veth-a".into(),
            up: true,
            mac: Some(mac),
            mtu: 1500,
        };
        assert_eq!(event(&message), Some(NetEvent::Link(expected.clone())));

        // Admin up without carrier is not up.
        fixed[8..12].copy_from_slice(&ne32(0x1 | 0x2 | 0x1000));
        let bytes = received(RTM_NEWLINK, 0, 0, &fixed, &[(IFLA_IFNAME, b"veth-a\0")]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(
            parse_link(message.payload),
            Some(Link {
                up: false,
                mac: None,
                mtu: 0,
                ..expected
            })
        );

        let bytes = received(RTM_DELLINK, 0, 0, &fixed, &[]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(event(&message), Some(NetEvent::LinkRemoved { index: 5 }));

        // A bridge port notification (AF_BRIDGE) is not a link event.
        fixed[0] = libc::AF_BRIDGE as u8;
        let bytes = received(RTM_DELLINK, 0, 0, &fixed, &[(IFLA_IFNAME, b"veth-a\0")]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(event(&message), None);
    }

    #[test]
    fn address_messages_decode() {
        let mut fixed = [2u8, 24, 0x80 | 0x01, 0, 0, 0, 0, 0];
        fixed[4..8].copy_from_slice(&ne32(3));
        let bytes = received(
            RTM_NEWADDR,
            0x02,
            0,
            &fixed,
            &[
                (IFA_ADDRESS, &[192, 0, 2, 10]),
                (IFA_LOCAL, &[192, 0, 2, 10]),
                (IFA_LABEL, b"eth0:vip\0"),
                (IFA_FLAGS, &ne32(0x80 | 0x01)),
            ],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(
            event(&message),
            Some(NetEvent::AddressAdded(InterfaceAddress {
                ifindex: 3,
                address: "192.0.2.10".parse().expect("address"),
                prefix_len: 24,
                label: Some("eth0:vip".into()),
                secondary: true,
                tentative: false,
            }))
        );

        // IPv6: IFA_ADDRESS only, flags beyond 8 bits in IFA_FLAGS, bit 0 is "temporary".
        let mut fixed = [10u8, 64, 0x41, 0, 0, 0, 0, 0];
        fixed[4..8].copy_from_slice(&ne32(4));
        let v6: Ipv6Addr = "2001:db8::10".parse().expect("address");
        let bytes = received(
            RTM_DELADDR,
            0,
            0,
            &fixed,
            &[
                (IFA_ADDRESS, &v6.octets()),
                (IFA_FLAGS, &ne32(0x200 | 0x41)),
            ],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(
            event(&message),
            Some(NetEvent::AddressRemoved(InterfaceAddress {
                ifindex: 4,
                address: IpAddr::V6(v6),
                prefix_len: 64,
                label: None,
                secondary: false,
                tentative: true,
            }))
        );

        // Wrong address length, or another family: not an address.
        let bytes = received(RTM_NEWADDR, 0, 0, &fixed, &[(IFA_ADDRESS, &[1, 2, 3, 4])]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(event(&message), None);
    }

    #[test]
    fn errors_with_and_without_extended_ack() {
        // errno 17 (EEXIST), capped echo, extended ack message.
        let mut payload = Vec::new();
        payload.extend((-17i32).to_ne_bytes());
        payload.extend(Request::new(RTM_NEWADDR, 0x05, 3).finish());
        let bytes = received(
            NLMSG_ERROR,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            3,
            &payload,
            &[(NLMSGERR_ATTR_MSG, b"Address already assigned\0")],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(
            parse_error(&message),
            Some((17, Some("Address already assigned".into())))
        );

        // An acknowledgement: error 0, the whole request echoed, no TLVs.
        let mut payload = Vec::new();
        payload.extend(0i32.to_ne_bytes());
        payload.extend(get_link_by_index(4, 1));
        let bytes = received(NLMSG_ERROR, 0, 4, &payload, &[]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(parse_error(&message), Some((0, None)));

        let done = received(NLMSG_DONE, 0x02, 4, &0i32.to_ne_bytes(), &[]);
        let message = messages(&done).next().expect("one").expect("well formed");
        assert_eq!(parse_done(&message), 0);
    }

    #[test]
    fn several_messages_per_datagram_and_malformed_lengths() {
        let mut datagram = received(NLMSG_NOOP, 0, 1, &[1, 2, 3], &[]);
        datagram.extend(received(NLMSG_DONE, 0, 2, &0i32.to_ne_bytes(), &[]));
        let seqs: Vec<_> = messages(&datagram)
            .map(|m| m.expect("well formed").seq)
            .collect();
        assert_eq!(seqs, vec![1, 2]);

        let mut short = datagram.clone();
        short[..4].copy_from_slice(&ne32(8)); // shorter than a header
        assert_eq!(messages(&short).next(), Some(Err(Malformed)));
        let mut long = datagram.clone();
        long[..4].copy_from_slice(&ne32(4096));
        assert_eq!(messages(&long).next(), Some(Err(Malformed)));
        assert_eq!(messages(&datagram[..10]).next(), Some(Err(Malformed)));
        // Every truncation decodes without panicking.
        for len in 0..datagram.len() {
            for message in messages(&datagram[..len]).flatten() {
                let _ = event(&message);
                let _ = parse_error(&message);
                let _ = parse_route(message.payload);
                let _ = parse_nexthop(message.payload);
            }
        }
    }

    #[test]
    fn route_requests_carry_table_type_scope_and_interface() {
        let route = RouteRequest {
            table: 100,
            destination: "10.99.0.100".parse().expect("address"),
            prefix_len: 32,
            kind: RouteKind::Unicast,
            protocol: 200,
            interface: Some(1),
        };
        let bytes = new_route(3, &route);
        let mut expected = Vec::new();
        expected.extend(ne32(52)); // header 16, rtmsg 12, three attributes of 8
        expected.extend(ne16(RTM_NEWROUTE));
        expected.extend(ne16(0x01 | 0x04 | 0x400 | 0x200));
        expected.extend(ne32(3));
        expected.extend(ne32(0));
        // AF_INET, /32, no source, tos 0, table 100, proto 200, scope link, unicast, flags.
        expected.extend([2, 32, 0, 0, 100, 200, 253, 1, 0, 0, 0, 0]);
        expected.extend(ne16(8));
        expected.extend(ne16(RTA_TABLE));
        expected.extend(ne32(100));
        expected.extend(ne16(8));
        expected.extend(ne16(RTA_DST));
        expected.extend([10, 99, 0, 100]);
        expected.extend(ne16(8));
        expected.extend(ne16(RTA_OIF));
        expected.extend(ne32(1));
        assert_eq!(bytes, expected);

        // A local IPv6 route in a table above 255: the 8-bit field says "see RTA_TABLE".
        let local = RouteRequest {
            table: 1000,
            destination: "2001:db8::10".parse().expect("address"),
            prefix_len: 128,
            kind: RouteKind::Local,
            protocol: 200,
            interface: None,
        };
        let bytes = del_route(4, &local);
        assert_eq!(&bytes[4..6], &ne16(RTM_DELROUTE));
        assert_eq!(&bytes[6..8], &ne16(0x05));
        assert_eq!(&bytes[16..24], &[10, 128, 0, 0, 0, 200, 254, 2]);
        assert_eq!(&bytes[32..36], &ne32(1000));
        assert_eq!(bytes.len(), 16 + 12 + 8 + 20);

        let dump = dump_routes(5, 100);
        assert_eq!(&dump[6..8], &ne16(0x301));
        assert_eq!(&dump[16..28], &[0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&dump[32..36], &ne32(100));

        let get = get_nexthop(6, 42);
        assert_eq!(&get[4..6], &ne16(RTM_GETNEXTHOP));
        assert_eq!(&get[28..32], &ne32(42));
    }

    #[test]
    fn routes_decode_with_gateways_multipath_and_nexthop_objects() {
        let fixed = [2u8, 32, 0, 0, 254, 186, 0, 1, 0, 0, 0, 0];
        let mut hops = Vec::new();
        for (ifindex, gateway) in [(3u32, [10u8, 77, 0, 11]), (3, [10, 77, 0, 12])] {
            hops.extend(ne16(16)); // rtnexthop 8 + RTA_GATEWAY 8
            hops.push(0); // flags
            hops.push(1); // hops: weight 2
            hops.extend(ne32(ifindex));
            hops.extend(ne16(8));
            hops.extend(ne16(RTA_GATEWAY));
            hops.extend(gateway);
        }
        let bytes = received(
            RTM_NEWROUTE,
            0,
            0,
            &fixed,
            &[
                (RTA_TABLE, &ne32(254)),
                (RTA_DST, &[10, 99, 0, 100]),
                (RTA_PRIORITY, &ne32(20)),
                (RTA_MULTIPATH, &hops),
            ],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        let route = parse_route(message.payload).expect("a route");
        assert_eq!(route.table, 254);
        assert_eq!(route.destination, "10.99.0.100".parse::<IpAddr>().unwrap());
        assert_eq!((route.prefix_len, route.protocol), (32, 186));
        assert_eq!(route.kind, RouteKind::Unicast);
        assert_eq!(route.metric, Some(20));
        assert_eq!(
            route.multipath,
            vec![
                RouteHop {
                    interface: 3,
                    gateway: Some("10.77.0.11".parse().unwrap()),
                    weight: 2
                },
                RouteHop {
                    interface: 3,
                    gateway: Some("10.77.0.12".parse().unwrap()),
                    weight: 2
                },
            ]
        );

        // A local route (table in rtm_table only) and a route by nexthop object.
        let fixed = [10u8, 128, 0, 0, 255, 200, 254, 2, 0, 0, 0, 0];
        let v6: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let bytes = received(
            RTM_NEWROUTE,
            0,
            0,
            &fixed,
            &[
                (RTA_DST, &v6.octets()),
                (RTA_OIF, &ne32(1)),
                (RTA_NH_ID, &ne32(77)),
            ],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        let route = parse_route(message.payload).expect("a route");
        assert_eq!(
            (route.table, route.kind, route.interface, route.nexthop_id),
            (255, RouteKind::Local, Some(1), Some(77))
        );
        // A default route has no RTA_DST; another family is not a route.
        let bytes = received(
            RTM_NEWROUTE,
            0,
            0,
            &[2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0],
            &[],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        let default = parse_route(message.payload).expect("a route");
        assert_eq!(default.destination, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let bytes = received(RTM_NEWROUTE, 0, 0, &[7; 12], &[]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(parse_route(message.payload), None);
    }

    #[test]
    fn nexthop_objects_decode() {
        let mut group = Vec::new();
        for (id, weight) in [(11u32, 0u8), (12, 4)] {
            group.extend(ne32(id));
            group.extend([weight, 0, 0, 0]);
        }
        let bytes = received(
            RTM_NEWNEXTHOP,
            0,
            0,
            &[0, 0, 11, 0, 0, 0, 0, 0],
            &[
                (NHA_ID, &ne32(40)),
                (NHA_GROUP, &group),
                (NHA_GROUP_TYPE, &ne16(NEXTHOP_GRP_TYPE_RES)),
            ],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(
            parse_nexthop(message.payload),
            Some(Nexthop {
                id: 40,
                gateway: None,
                interface: None,
                blackhole: false,
                group: vec![(11, 1), (12, 5)],
                resilient: true,
            })
        );
        let bytes = received(
            RTM_NEWNEXTHOP,
            0,
            0,
            &[2, 0, 11, 0, 0, 0, 0, 0],
            &[
                (NHA_ID, &ne32(11)),
                (NHA_OIF, &ne32(3)),
                (NHA_GATEWAY, &[10, 77, 0, 11]),
            ],
        );
        let message = messages(&bytes).next().expect("one").expect("well formed");
        let single = parse_nexthop(message.payload).expect("a nexthop");
        assert_eq!(single.gateway, Some("10.77.0.11".parse().unwrap()));
        assert_eq!((single.interface, single.resilient), (Some(3), false));
        // Without NHA_ID it is not a nexthop object.
        let bytes = received(RTM_NEWNEXTHOP, 0, 0, &[2, 0, 0, 0, 0, 0, 0, 0], &[]);
        let message = messages(&bytes).next().expect("one").expect("well formed");
        assert_eq!(parse_nexthop(message.payload), None);
    }
}
