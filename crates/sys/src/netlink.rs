//! rtnetlink (rtnetlink(7)): reading links and addresses, adding and removing the virtual
//! addresses, adding, removing and reading routes of one table (the host routes of VIPs
//! announced by a routing daemon), reading nexthop objects, and watching links and
//! addresses change.
//!
//! Lifecycle: the node opens one [`Netlink`] for requests and one [`NetlinkMonitor`] at start
//! (in the network namespace it serves) and keeps both for its lifetime.
//!
//! - [`Netlink`] is a blocking request/response socket. A request is one kernel round trip of
//!   microseconds, so async code may call it directly; a receive timeout bounds the worst case
//!   instead of hanging a runtime thread. Requests are serialised by a mutex, so one socket can
//!   be shared.
//! - [`NetlinkMonitor`] is a non-blocking socket subscribed to link and address notifications,
//!   meant for `AsyncFd`. When the kernel drops notifications because the socket buffer is
//!   full, it reports [`NetEvent::Overrun`] and the caller re-reads the state it follows.
//!
//! The wire format is hand-rolled in `wire` (a few hundred lines for the message kinds havip
//! needs: links, addresses, routes, nexthops) rather than pulling in a netlink crate family.

mod wire;

/// Decode every message of a datagram the way the request and monitor paths do, for the
/// fuzz targets (see `crate::fuzzing`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_datagram(datagram: &[u8]) {
    for message in wire::messages(datagram).flatten() {
        let _ = wire::parse_link(message.payload);
        let _ = wire::parse_link_index(message.payload);
        let _ = wire::parse_address(message.payload);
        let _ = wire::parse_route(message.payload);
        let _ = wire::parse_nexthop(message.payload);
        let _ = wire::parse_error(&message);
        let _ = wire::parse_done(&message);
        let _ = wire::event(&message);
    }
}

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use crate::sockopt::{set_int_option, set_option};

/// A network interface as rtnetlink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index (`ifi_index`), the key every address and route refers to.
    pub index: u32,
    /// The interface name (`IFLA_IFNAME`), at most 15 bytes.
    pub name: String,
    /// Administratively up and operationally running, i.e. with carrier (`IFF_UP` and
    /// `IFF_RUNNING`).
    pub up: bool,
    /// The hardware address when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// The link MTU in bytes (`IFLA_MTU`).
    pub mtu: u32,
}

/// An address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The index of the interface the address is on (`ifa_index`).
    pub ifindex: u32,
    /// The interface's own address (`IFA_LOCAL`, or `IFA_ADDRESS` where that is the only one,
    /// as for most IPv6 addresses).
    pub address: IpAddr,
    /// The prefix length in bits (`ifa_prefixlen`).
    pub prefix_len: u8,
    /// IPv4 only: the label the kernel reports, which is the interface name unless one was
    /// given when the address was added. IPv6 addresses have none.
    pub label: Option<String>,
    /// IPv4 only: a secondary address (another address of the same subnet came first).
    pub secondary: bool,
    /// IPv6 duplicate address detection has not finished; the address cannot be bound yet.
    pub tentative: bool,
}

/// A change seen by [`NetlinkMonitor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link appeared or changed (flags, carrier, name, MTU, address).
    Link(Link),
    /// A link was deleted.
    LinkRemoved {
        /// The index the deleted link had.
        index: u32,
    },
    /// An address was added, or an existing one changed (e.g. it stopped being tentative).
    AddressAdded(InterfaceAddress),
    /// An address was deleted, by havip or by anyone else.
    AddressRemoved(InterfaceAddress),
    /// Notifications were lost (ENOBUFS): re-read links and addresses.
    Overrun,
}

/// What a route does with the packets it matches (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Forward them (`RTN_UNICAST`), the ordinary route.
    Unicast,
    /// Deliver them to this host (`RTN_LOCAL`): in the `local` table, a route of this kind
    /// makes the kernel accept packets to its destination without the address being on any
    /// interface ("AnyIP").
    Local,
    /// Drop them silently (`RTN_BLACKHOLE`).
    Blackhole,
    /// Drop them with an ICMP unreachable (`RTN_UNREACHABLE`).
    Unreachable,
    /// Another `RTN_*` type, by number.
    Other(u8),
}

/// A route to add or remove: `ip route add [local] DESTINATION/PREFIX dev IF table TABLE
/// proto PROTOCOL`, with the scope `ip route` would give it (host for a local route, link for
/// a route out of an interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRequest {
    /// The routing table (`RTA_TABLE`): 254 is `main`, 255 `local`; any id up to 2^32 - 1.
    pub table: u32,
    /// The destination prefix's address.
    pub destination: IpAddr,
    /// The destination prefix's length in bits.
    pub prefix_len: u8,
    /// What the route does.
    pub kind: RouteKind,
    /// `rtm_protocol`: who installed it, so that one owner's routes can be told from
    /// another's (`ip route show proto N`).
    pub protocol: u8,
    /// The output interface (`RTA_OIF`), if any.
    pub interface: Option<u32>,
}

/// One hop of a multipath route (`RTA_MULTIPATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHop {
    /// The output interface.
    pub interface: u32,
    /// The gateway, if the hop has one.
    pub gateway: Option<IpAddr>,
    /// The hop's weight (1 for an equal-cost path).
    pub weight: u16,
}

/// A route as rtnetlink reports it (the parts havip reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The table it is in.
    pub table: u32,
    /// The destination prefix's address (unspecified for a default route).
    pub destination: IpAddr,
    /// The destination prefix's length.
    pub prefix_len: u8,
    /// What it does.
    pub kind: RouteKind,
    /// Who installed it (`rtm_protocol`: 2 kernel, 4 static, 11 zebra, 186 bgp, ...).
    pub protocol: u8,
    /// The output interface, for a single-path route.
    pub interface: Option<u32>,
    /// The gateway, for a single-path route.
    pub gateway: Option<IpAddr>,
    /// The nexthop object it uses (`RTA_NH_ID`, as FRR's zebra installs routes); read it
    /// with [`Netlink::nexthop`].
    pub nexthop_id: Option<u32>,
    /// The hops of a multipath route given inline (`RTA_MULTIPATH`).
    pub multipath: Vec<RouteHop>,
    /// The route's metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
}

/// A nexthop object (`ip nexthop`, Linux 5.3): one gateway and interface, or a group of other
/// nexthop objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nexthop {
    /// Its id.
    pub id: u32,
    /// The gateway of a single nexthop.
    pub gateway: Option<IpAddr>,
    /// The interface of a single nexthop.
    pub interface: Option<u32>,
    /// A blackhole nexthop.
    pub blackhole: bool,
    /// For a group: the member nexthops' ids with their weights.
    pub group: Vec<(u32, u16)>,
    /// A resilient group (flows stay on their member across changes), not hash-threshold.
    pub resilient: bool,
}

/// How long a request waits for the kernel's answer before failing with `TimedOut`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer for one datagram: the kernel sizes dump datagrams to at most 32 KiB, or to
/// the reader's buffer when that is larger, up to this.
const RECV_BUFFER: usize = 64 * 1024;
/// Upper bound on datagrams read for one request (a dump of every address of a host with
/// thousands of interfaces is a few hundred datagrams).
const MAX_DATAGRAMS_PER_REQUEST: usize = 100_000;
/// Upper bound on datagrams one `read_events` call drains; reaching it reports an overrun.
const MAX_DATAGRAMS_PER_READ: usize = 100_000;
/// Socket buffer asked for the monitor, so bursts (an interface flapping with many addresses)
/// fit; the kernel caps it at net.core.rmem_max.
const MONITOR_RCVBUF: libc::c_int = 1 << 20;
/// How often a dump interrupted by concurrent changes is retried.
const DUMP_ATTEMPTS: u32 = 3;
const IFNAMSIZ: usize = 16;

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// A request/response rtnetlink socket.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    state: Mutex<RequestState>,
}

#[derive(Debug)]
struct RequestState {
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a blocking rtnetlink socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let fd = open_socket(0, 0)?;
        // Dumps filtered by the kernel (a route dump of one table, not of every table, on a
        // host with a full routing table). Linux 4.20; older kernels dump everything and the
        // filters below do the same work.
        let _ = set_int_option(fd.as_fd(), SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
        let timeout = libc::timeval {
            tv_sec: REQUEST_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        set_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)?;
        Ok(Netlink {
            fd,
            state: Mutex::new(RequestState {
                seq: 0,
                buf: vec![0; RECV_BUFFER],
            }),
        })
    }

    /// The link called `name`, or `None` when there is none.
    pub fn link_by_name(&self, name: &str) -> io::Result<Option<Link>> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a valid interface name"),
            ));
        }
        self.get_link(|seq| wire::get_link_by_name(seq, name))
    }

    /// The link with index `index`, or `None` when there is none.
    pub fn link_by_index(&self, index: u32) -> io::Result<Option<Link>> {
        if index == 0 || index > i32::MAX as u32 {
            return Ok(None);
        }
        self.get_link(|seq| wire::get_link_by_index(seq, index))
    }

    fn get_link(&self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<Option<Link>> {
        let mut link = None;
        match self.request(build, false, |message| {
            if message.kind == wire::RTM_NEWLINK {
                link = link.take().or_else(|| wire::parse_link(message.payload));
            }
        }) {
            Ok(()) => Ok(link),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every IPv4 and IPv6 address, or those of one interface.
    pub fn addresses(&self, ifindex: Option<u32>) -> io::Result<Vec<InterfaceAddress>> {
        // A dump that raced with a change is flagged and may miss or repeat entries; ask again.
        let mut attempts = 0;
        loop {
            let mut addresses = Vec::new();
            let mut interrupted = false;
            self.request(wire::dump_addresses, true, |message| {
                interrupted |= message.flags & wire::NLM_F_DUMP_INTR != 0;
                if message.kind == wire::RTM_NEWADDR {
                    if let Some(address) = wire::parse_address(message.payload) {
                        if ifindex.is_none_or(|index| index == address.ifindex) {
                            addresses.push(address);
                        }
                    }
                }
            })?;
            attempts += 1;
            if !interrupted {
                return Ok(addresses);
            }
            if attempts == DUMP_ATTEMPTS {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "addresses kept changing during the dump",
                ));
            }
        }
    }

    /// Adds `address/prefix_len` to interface `ifindex` with global scope, as keepalived adds
    /// VIPs. IPv6 addresses are added with `IFA_F_NODAD` so they are usable at once. `label`
    /// (IPv4 only) must start with the interface name and fit in 15 bytes: the `eth0:1` alias
    /// convention that ifconfig-era tools and keepalived configurations rely on. We enforce it
    /// ourselves; neither Linux 6.18 nor Debian 12's iproute2 does (`label foo:1` on `va` is
    /// accepted). `Ok(false)` when the address was already there (EEXIST).
    pub fn add_address(
        &self,
        ifindex: u32,
        address: IpAddr,
        prefix_len: u8,
        label: Option<&str>,
    ) -> io::Result<bool> {
        check_prefix(address, prefix_len)?;
        if let Some(label) = label {
            if address.is_ipv6() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "address labels exist for IPv4 only",
                ));
            }
            let link = self.link_by_index(ifindex)?.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no interface with index {ifindex}"),
                )
            })?;
            if !label.starts_with(&link.name) || label.len() >= IFNAMSIZ || label.contains('\0') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "label {label:?} must start with the interface name {:?} and be at \
                         most {} bytes",
                        link.name,
                        IFNAMSIZ - 1
                    ),
                ));
            }
        }
        match self.request(
            |seq| wire::new_address(seq, ifindex, address, prefix_len, label),
            false,
            |_| {},
        ) {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `address/prefix_len` from interface `ifindex`. `Ok(false)` when it was not
    /// there (EADDRNOTAVAIL).
    pub fn remove_address(
        &self,
        ifindex: u32,
        address: IpAddr,
        prefix_len: u8,
    ) -> io::Result<bool> {
        check_prefix(address, prefix_len)?;
        match self.request(
            |seq| wire::del_address(seq, ifindex, address, prefix_len),
            false,
            |_| {},
        ) {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `route`. `Ok(false)` when it was already there (EEXIST).
    pub fn add_route(&self, route: &RouteRequest) -> io::Result<bool> {
        check_prefix(route.destination, route.prefix_len)?;
        match self.request(|seq| wire::new_route(seq, route), false, |_| {}) {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `route` beside any other route to the same destination (`ip route append`): the
    /// local route the kernel keeps for an address on an interface stays, and each can be
    /// removed without the other. `Ok(false)` when an identical route was there (EEXIST).
    pub fn append_route(&self, route: &RouteRequest) -> io::Result<bool> {
        check_prefix(route.destination, route.prefix_len)?;
        match self.request(|seq| wire::append_route(seq, route), false, |_| {}) {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `route`. `Ok(false)` when there was no such route (ESRCH).
    pub fn remove_route(&self, route: &RouteRequest) -> io::Result<bool> {
        check_prefix(route.destination, route.prefix_len)?;
        match self.request(|seq| wire::del_route(seq, route), false, |_| {}) {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every IPv4 and IPv6 route of `table`, in the kernel's order.
    pub fn routes(&self, table: u32) -> io::Result<Vec<Route>> {
        let mut attempts = 0;
        loop {
            let mut routes = Vec::new();
            let mut interrupted = false;
            self.request(
                |seq| wire::dump_routes(seq, table),
                true,
                |message| {
                    interrupted |= message.flags & wire::NLM_F_DUMP_INTR != 0;
                    if message.kind == wire::RTM_NEWROUTE {
                        if let Some(route) = wire::parse_route(message.payload) {
                            if route.table == table {
                                routes.push(route);
                            }
                        }
                    }
                },
            )?;
            attempts += 1;
            if !interrupted {
                return Ok(routes);
            }
            if attempts == DUMP_ATTEMPTS {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "routes kept changing during the dump",
                ));
            }
        }
    }

    /// The nexthop object `id`, or `None` when there is none (or the kernel has no nexthop
    /// objects: before Linux 5.3).
    pub fn nexthop(&self, id: u32) -> io::Result<Option<Nexthop>> {
        let mut found = None;
        match self.request(
            |seq| wire::get_nexthop(seq, id),
            false,
            |message| {
                if message.kind == wire::RTM_NEWNEXTHOP {
                    found = found
                        .take()
                        .or_else(|| wire::parse_nexthop(message.payload));
                }
            },
        ) {
            Ok(()) => Ok(found),
            Err(e) if matches!(errno(&e), Some(libc::ENOENT) | Some(libc::EOPNOTSUPP)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one request and hands each reply message to `on_message` until the kernel's
    /// acknowledgement (or NLMSG_DONE for a dump). Replies to earlier requests that timed out
    /// carry another sequence number and are skipped.
    fn request(
        &self,
        build: impl FnOnce(u32) -> Vec<u8>,
        dump: bool,
        mut on_message: impl FnMut(&wire::Message<'_>),
    ) -> io::Result<()> {
        // A panic while holding the lock leaves nothing half-done that matters: the next
        // request uses a fresh sequence number.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.seq = state.seq.wrapping_add(1);
        let seq = state.seq;
        send_to_kernel(self.fd.as_fd(), &build(seq))?;
        for _ in 0..MAX_DATAGRAMS_PER_REQUEST {
            let received = match recv_from_kernel(self.fd.as_fd(), &mut state.buf) {
                Ok(Some(received)) => received,
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no answer from rtnetlink",
                    ))
                }
                Err(e) => return Err(e),
            };
            for message in wire::messages(&state.buf[..received]) {
                let message = message.map_err(|_| malformed())?;
                if message.seq != seq {
                    continue;
                }
                match message.kind {
                    wire::NLMSG_ERROR => {
                        let (errno, text) = wire::parse_error(&message).ok_or_else(malformed)?;
                        return match (errno, text) {
                            (0, _) => Ok(()),
                            (errno, None) => Err(io::Error::from_raw_os_error(errno)),
                            (errno, Some(text)) => Err(kernel_error(errno, text)),
                        };
                    }
                    wire::NLMSG_DONE if dump => {
                        return match wire::parse_done(&message) {
                            0 => Ok(()),
                            errno => Err(io::Error::from_raw_os_error(errno)),
                        };
                    }
                    wire::NLMSG_NOOP | wire::NLMSG_OVERRUN | wire::NLMSG_DONE => {}
                    _ => on_message(&message),
                }
            }
        }
        Err(io::Error::other("rtnetlink answer did not end"))
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Netlink {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A non-blocking rtnetlink socket subscribed to link and address notifications.
#[derive(Debug)]
pub struct NetlinkMonitor {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl NetlinkMonitor {
    /// Opens the monitor in the calling thread's network namespace. Read the current state
    /// with [`Netlink`] after opening it, so no change falls between the two.
    pub fn open() -> io::Result<Self> {
        let fd = open_socket(
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
            libc::SOCK_NONBLOCK,
        )?;
        set_int_option(
            fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            MONITOR_RCVBUF,
        )?;
        Ok(NetlinkMonitor {
            fd,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// Drains every notification readable now, in order. An empty vector when there is none.
    /// [`NetEvent::Overrun`] appears where the kernel reported lost notifications.
    pub fn read_events(&mut self) -> io::Result<Vec<NetEvent>> {
        let mut events = Vec::new();
        for _ in 0..MAX_DATAGRAMS_PER_READ {
            let received = match recv_from_kernel(self.fd.as_fd(), &mut self.buf) {
                Ok(Some(received)) => received,
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(events),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    if events.last() != Some(&NetEvent::Overrun) {
                        events.push(NetEvent::Overrun);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // A truncated datagram lost notifications just like an overrun.
                    events.push(NetEvent::Overrun);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Messages the kernel would never send malformed are skipped rather than failing
            // the whole batch; a malformed datagram is treated as lost notifications.
            for message in wire::messages(&self.buf[..received]) {
                match message {
                    Ok(message) => events.extend(wire::event(&message)),
                    Err(wire::Malformed) => {
                        events.push(NetEvent::Overrun);
                        break;
                    }
                }
            }
        }
        // Still readable after that many datagrams: something floods the socket. Whatever is
        // left will be read next time; the caller re-reads the state meanwhile.
        events.push(NetEvent::Overrun);
        Ok(events)
    }
}

impl AsFd for NetlinkMonitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NetlinkMonitor {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn check_prefix(address: IpAddr, prefix_len: u8) -> io::Result<()> {
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("prefix length {prefix_len} is too long for {address}"),
        ));
    }
    Ok(())
}

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed rtnetlink message")
}

/// An error the kernel answered a request with, together with its extended-ack explanation
/// (e.g. "ipv4: Address already assigned"). [`Netlink`] returns it inside an `io::Error` of
/// the errno's kind; [`errno`] gets the number back from either form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    errno: i32,
    message: String,
}

impl KernelError {
    /// The errno the kernel answered with, as a positive number (`libc::EEXIST`, ...), so
    /// callers can tell "already there" from a real failure.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The kernel's extended-ack text (`NLMSGERR_ATTR_MSG`), which says which part was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            io::Error::from_raw_os_error(self.errno),
            self.message
        )
    }
}

impl std::error::Error for KernelError {}

/// The errno behind an error from [`Netlink`], with or without the kernel's explanation.
pub fn errno(error: &io::Error) -> Option<i32> {
    error.raw_os_error().or_else(|| {
        error
            .get_ref()?
            .downcast_ref::<KernelError>()
            .map(KernelError::errno)
    })
}

fn kernel_error(errno: i32, text: String) -> io::Error {
    io::Error::new(
        io::Error::from_raw_os_error(errno).kind(),
        KernelError {
            errno,
            message: text,
        },
    )
}

fn netlink_address(groups: u32) -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain data; all zeroes is valid (it has a private padding field,
    // so it cannot be built with a struct literal).
    let mut address: libc::sockaddr_nl = unsafe { mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    address.nl_groups = groups;
    address
}

/// An rtnetlink socket bound to the kernel-chosen port id and `groups`.
fn open_socket(groups: u32, extra_flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | extra_flags,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor we just opened and nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Errors that explain themselves (extended ack, Linux 4.12) and no echo of the whole
    // request in them (Linux 4.3). Older kernels refuse the options; errors are then terser.
    let _ = set_int_option(fd.as_fd(), SOL_NETLINK, NETLINK_EXT_ACK, 1);
    let _ = set_int_option(fd.as_fd(), SOL_NETLINK, NETLINK_CAP_ACK, 1);
    let address = netlink_address(groups);
    // SAFETY: `address` is a valid sockaddr_nl and the length is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&address as *const libc::sockaddr_nl).cast(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn send_to_kernel(fd: BorrowedFd<'_>, message: &[u8]) -> io::Result<()> {
    let kernel = netlink_address(0);
    // SAFETY: `message` is a live buffer of the given length and `kernel` a valid
    // sockaddr_nl of the given size; the kernel only reads both.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else if sent as usize != message.len() {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short netlink send",
        ))
    } else {
        Ok(())
    }
}

/// Receives one datagram. `Ok(None)` for a datagram from a user-space sender (only the kernel,
/// port id 0, is believed); `InvalidData` for one truncated by the buffer.
fn recv_from_kernel(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut from = netlink_address(0);
    let mut from_len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length; `from` / `from_len` are a valid sockaddr_nl
    // and its size for the kernel to fill.
    let received = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut from as *mut libc::sockaddr_nl).cast(),
            &mut from_len,
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = received as usize;
    if received > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("rtnetlink datagram of {received} bytes truncated"),
        ));
    }
    if from.nl_pid != 0 {
        return Ok(None);
    }
    Ok(Some(received))
}
