//! What an instance task does to the world, behind one small trait: send an advertisement,
//! add, remove and announce a virtual address, and look at the link and the addresses after
//! the netlink monitor lost events. [`KernelIo`] does it with the sockets of `havip-sys`; the
//! shell's in-process tests put a recorder in its place and run the whole task on tokio's
//! paused clock.

use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use havip_sys::announce::Announcer;
use havip_sys::netlink::Netlink;
use havip_sys::vrrp_socket::VrrpSender;
use havip_vrrp::OutgoingAdvertisement;

/// A virtual address resolved to the interface it goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVip {
    /// The virtual address the master adds and announces.
    pub address: IpAddr,
    /// Its prefix length in bits on the interface (`/32` or `/128` unless configured).
    pub prefix_len: u8,
    /// The index of the interface it goes on: the instance's, or the one the VIP names.
    pub ifindex: u32,
    /// The interface's name, for logs.
    pub interface: String,
    /// IPv4 label (`eth0:vip`), when configured.
    pub label: Option<String>,
}

/// The I/O of one instance task. Every call is short and does not block for long (a raw
/// socket send, one netlink request), so the task calls them inline.
pub trait InstanceIo: Send + 'static {
    /// Send `advert` exactly as the core built it (source, destination, TTL, checksum).
    fn send(&mut self, advert: &OutgoingAdvertisement) -> io::Result<()>;
    /// Add `vip` to its interface; `Ok(false)` when it was there already.
    fn add_address(&mut self, vip: &ResolvedVip) -> io::Result<bool>;
    /// Remove `vip` from its interface; `Ok(false)` when it was not there.
    fn remove_address(&mut self, vip: &ResolvedVip) -> io::Result<bool>;
    /// One gratuitous ARP (IPv4) or unsolicited Neighbor Advertisement (IPv6) for `vip`.
    fn announce(&mut self, vip: &ResolvedVip) -> io::Result<()>;
    /// Whether the instance's interface is up now; `None` when it is gone.
    fn link_up(&mut self) -> io::Result<Option<bool>>;
    /// For each of `vips`, whether it is on its interface now.
    fn present(&mut self, vips: &[ResolvedVip]) -> io::Result<Vec<bool>>;
}

/// The kernel: a raw VRRP socket, rtnetlink and the announcement sockets, shared by the
/// instances of a node.
pub struct KernelIo {
    /// The instance's interface.
    pub ifindex: u32,
    /// The send socket of the instance's interface and family.
    pub sender: Arc<VrrpSender>,
    /// Announcers by interface index: those of the interfaces the instance's VIPs are on.
    pub announcers: Vec<(u32, Arc<Announcer>)>,
    /// The node's rtnetlink socket.
    pub netlink: Arc<Mutex<Netlink>>,
}

impl KernelIo {
    fn netlink(&self) -> std::sync::MutexGuard<'_, Netlink> {
        // A panic elsewhere while holding the lock leaves the socket usable.
        self.netlink.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl InstanceIo for KernelIo {
    fn send(&mut self, advert: &OutgoingAdvertisement) -> io::Result<()> {
        self.sender.send(
            advert.source,
            advert.destination,
            advert.ttl,
            &advert.payload,
        )
    }

    fn add_address(&mut self, vip: &ResolvedVip) -> io::Result<bool> {
        self.netlink().add_address(
            vip.ifindex,
            vip.address,
            vip.prefix_len,
            vip.label.as_deref(),
        )
    }

    fn remove_address(&mut self, vip: &ResolvedVip) -> io::Result<bool> {
        self.netlink()
            .remove_address(vip.ifindex, vip.address, vip.prefix_len)
    }

    fn announce(&mut self, vip: &ResolvedVip) -> io::Result<()> {
        let Some((_, announcer)) = self.announcers.iter().find(|(i, _)| *i == vip.ifindex) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no announcement socket on {}", vip.interface),
            ));
        };
        match vip.address {
            IpAddr::V4(v4) => announcer.gratuitous_arp(v4),
            // RFC 5798 6.4.2: unsolicited NA with the Router flag set.
            IpAddr::V6(v6) => announcer.unsolicited_na(v6, true),
        }
    }

    fn link_up(&mut self) -> io::Result<Option<bool>> {
        Ok(self.netlink().link_by_index(self.ifindex)?.map(|l| l.up))
    }

    fn present(&mut self, vips: &[ResolvedVip]) -> io::Result<Vec<bool>> {
        let addresses = self.netlink().addresses(None)?;
        Ok(vips
            .iter()
            .map(|vip| {
                addresses
                    .iter()
                    .any(|a| a.ifindex == vip.ifindex && a.address == vip.address)
            })
            .collect())
    }
}
