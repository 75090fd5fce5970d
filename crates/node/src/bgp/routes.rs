//! The kernel edge of the announcements: the host routes in the table the routing daemon
//! imports, and the local routes that make each VIP this node's own.
//!
//! - [`Routes`] is what an announcement task does to its table; [`KernelRoutes`] does it over
//!   rtnetlink, tests substitute a recorder.
//! - [`LocalVips`] holds the local ("AnyIP") routes `local VIP dev lo table local`: the kernel
//!   accepts connections to the VIP while it is on no interface, so the balancer's listeners
//!   serve it, FRR's zebra sees no connected route for it (which would shadow the imported
//!   one), and no ARP is answered for it on a segment where `arp_ignore` is set (see
//!   `super::arp`). They are added at start and removed when the guard drops, after the
//!   balancer has drained.
//!
//! Every route havip installs carries [`PROTOCOL`], so its own are told from anyone else's
//! (`ip route show table 100 proto 200`) and those a killed havip left behind are found.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use havip_sys::netlink::{Netlink, RouteKind, RouteRequest};

/// `rtm_protocol` of havip's routes: 200, unassigned in the kernel's list (`rtnetlink.h`) and
/// iproute2's `rt_protos`; `echo "200 havip" > /etc/iproute2/rt_protos.d/havip.conf` names it.
pub const PROTOCOL: u8 = 200;
/// The kernel's `local` table.
const LOCAL_TABLE: u32 = 255;

/// What an announcement does to its table.
pub trait Routes: Send + 'static {
    /// Put the host route of `vip` in the table; `Ok(false)` when it was there already.
    fn add(&mut self, vip: IpAddr) -> io::Result<bool>;
    /// Take it out; `Ok(false)` when it was not there.
    fn remove(&mut self, vip: IpAddr) -> io::Result<bool>;
    /// The VIPs whose host route (of havip's protocol) is in the table now.
    fn present(&mut self) -> io::Result<Vec<IpAddr>>;
}

/// [`Routes`] over rtnetlink: `VIP/32 dev lo table TABLE proto 200`.
#[derive(Debug, Clone)]
pub struct KernelRoutes {
    /// The shared request socket.
    pub netlink: Arc<Netlink>,
    /// The table.
    pub table: u32,
    /// The loopback interface's index, the routes' output interface.
    pub lo: u32,
}

fn host_route(table: u32, vip: IpAddr, kind: RouteKind, lo: u32) -> RouteRequest {
    RouteRequest {
        table,
        destination: vip,
        prefix_len: if vip.is_ipv4() { 32 } else { 128 },
        kind,
        protocol: PROTOCOL,
        interface: Some(lo),
    }
}

impl Routes for KernelRoutes {
    fn add(&mut self, vip: IpAddr) -> io::Result<bool> {
        self.netlink
            .add_route(&host_route(self.table, vip, RouteKind::Unicast, self.lo))
    }

    fn remove(&mut self, vip: IpAddr) -> io::Result<bool> {
        self.netlink
            .remove_route(&host_route(self.table, vip, RouteKind::Unicast, self.lo))
    }

    fn present(&mut self) -> io::Result<Vec<IpAddr>> {
        Ok(self
            .netlink
            .routes(self.table)?
            .into_iter()
            .filter(|r| r.protocol == PROTOCOL && r.kind == RouteKind::Unicast)
            .filter(|r| r.prefix_len == if r.destination.is_ipv4() { 32 } else { 128 })
            .map(|r| r.destination)
            .collect())
    }
}

/// Remove havip's routes left in `table` by an earlier run that was killed (nothing else
/// takes them out: FRR would keep announcing a VIP nobody serves). Returns how many.
pub fn remove_stale(routes: &mut KernelRoutes) -> io::Result<usize> {
    let stale = routes.present()?;
    for vip in &stale {
        routes.remove(*vip)?;
    }
    Ok(stale.len())
}

/// The local routes of the VIPs, removed when dropped.
#[derive(Debug)]
pub struct LocalVips {
    netlink: Arc<Netlink>,
    lo: u32,
    vips: Vec<IpAddr>,
}

impl LocalVips {
    /// Make each of `vips` local to this node, beside any local route the kernel keeps for an
    /// address (VRRP may hold the same VIP on a segment's interface and let it go again).
    pub fn add(netlink: Arc<Netlink>, lo: u32, vips: &[IpAddr]) -> io::Result<LocalVips> {
        let mut held = LocalVips {
            netlink,
            lo,
            vips: Vec::new(),
        };
        for vip in vips {
            held.netlink
                .append_route(&host_route(LOCAL_TABLE, *vip, RouteKind::Local, lo))?;
            held.vips.push(*vip);
        }
        Ok(held)
    }
}

impl Drop for LocalVips {
    fn drop(&mut self) {
        for vip in &self.vips {
            let route = host_route(LOCAL_TABLE, *vip, RouteKind::Local, self.lo);
            if let Err(error) = self.netlink.remove_route(&route) {
                tracing::warn!(%vip, %error, "cannot remove the VIP's local route");
            }
        }
    }
}
