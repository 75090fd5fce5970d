//! The BGP announce mode (issue #16): every healthy node announces its VIPs as host routes,
//! and the routers spread flows over the nodes with ECMP. havip speaks no BGP: it keeps the
//! host routes in a kernel table of their own, which the node's routing daemon (FRR's zebra
//! with `ip import-table`, or BIRD's `kernel` protocol) imports and announces to its peers.
//!
//! ```text
//!   node's trackers ── values ──> announcement task "api" ──> table 100: 10.88.88.70/32 dev lo
//!                              └> announcement task "ingress"        │
//!                                                                    └─ zebra imports, bgpd
//!   local table: local 10.88.88.70 dev lo  (the VIP is this node's; no interface holds it)
//! ```
//!
//! Lifecycle: [`BgpNode::start`] sweeps the routes an earlier, killed run left in the
//! tables, makes every VIP local (so the balancer accepts connections to it), quiets ARP for
//! VIPs inside a segment's subnet ([`arp`]), and spawns one [`announce`] task per
//! `[[bgp]]`. On SIGTERM, [`BgpNode::withdraw`] takes every route out and keeps accepting for
//! the longest `shutdown_delay`, while the withdrawal reaches the routers and new flows go to
//! the other nodes; the proxy then drains, and dropping the node removes the local routes.

pub mod announce;
pub mod arp;
pub mod daemon;
pub mod decide;
pub mod metrics;
pub mod routes;
pub mod status;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use havip_config::bgp::BgpSettings;
use havip_sys::netlink::{Link, Netlink};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::tracking::Trackers;
use crate::vrrp::status::EventLog;
use announce::Announcement;
use routes::{KernelRoutes, LocalVips};
use status::{AnnouncementStatus, BgpView};

/// The running announcements of a node.
pub struct BgpNode {
    view: Arc<BgpView>,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
    shutdown_delay: Duration,
    _local: LocalVips,
}

impl BgpNode {
    /// Prepare the kernel and start one task per announcement, following `trackers` and
    /// writing changes to `events`.
    pub fn start(
        settings: &[BgpSettings],
        trackers: &Trackers,
        events: Arc<EventLog>,
    ) -> anyhow::Result<BgpNode> {
        let netlink = Arc::new(Netlink::open().context("BGP: cannot open a netlink socket")?);
        let lo = netlink
            .link_by_name("lo")
            .context("BGP: cannot read the loopback interface")?
            .ok_or_else(|| anyhow!("BGP: this node has no loopback interface"))?
            .index;
        let mut vips: Vec<IpAddr> = Vec::new();
        for announcement in settings {
            for vip in &announcement.virtual_addresses {
                if !vips.contains(vip) {
                    vips.push(*vip);
                }
            }
        }
        quiet_arp(&netlink, &vips)?;
        let local = LocalVips::add(netlink.clone(), lo, &vips)
            .context("BGP: cannot make the VIPs local (local VIP dev lo table local)")?;
        let stop = CancellationToken::new();
        let mut view = BgpView::default();
        let mut tasks = Vec::new();
        for announcement in settings {
            let mut routes = KernelRoutes {
                netlink: netlink.clone(),
                table: announcement.table,
                lo,
            };
            let stale = routes::remove_stale(&mut routes).with_context(|| {
                format!(
                    "BGP {:?}: cannot clear table {}",
                    announcement.name, announcement.table
                )
            })?;
            if stale > 0 {
                tracing::warn!(announcement = %announcement.name, table = announcement.table, stale, "removed routes an earlier run left");
            }
            let slot = Arc::new(Mutex::new(AnnouncementStatus::initial(announcement)));
            view.announcements.push(slot.clone());
            let task = Announcement {
                settings: announcement.clone(),
                trackers: trackers.settings().to_vec(),
                routes,
                slot,
                events: events.clone(),
            };
            tasks.push(tokio::spawn(task.run(trackers.subscribe(), stop.clone())));
        }
        Ok(BgpNode {
            view: Arc::new(view),
            tasks,
            stop,
            shutdown_delay: settings
                .iter()
                .map(|s| s.shutdown_delay)
                .max()
                .unwrap_or_default(),
            _local: local,
        })
    }

    /// The status of every announcement, for the admin endpoint.
    pub fn view(&self) -> Arc<BgpView> {
        self.view.clone()
    }

    /// Withdraw every route, then keep accepting for the longest `shutdown_delay` while
    /// the routers move new flows to the other nodes. The VIPs stay local until the node is
    /// dropped, after the proxy drained.
    pub async fn withdraw(&mut self) {
        // Read before the tasks withdraw: a node that announced nothing has nobody to wait for.
        let announced = self.view.snapshot().iter().any(|s| s.announced);
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            if let Err(error) = task.await {
                tracing::error!(%error, "BGP announcement task failed");
            }
        }
        if announced && !self.shutdown_delay.is_zero() {
            tracing::info!(
                delay_ms = self.shutdown_delay.as_millis() as u64,
                "routes withdrawn; accepting while the routers converge"
            );
            tokio::time::sleep(self.shutdown_delay).await;
        }
    }
}

/// Set `arp_ignore`/`arp_announce` on the interfaces whose subnet holds a VIP ([`arp`]).
fn quiet_arp(netlink: &Netlink, vips: &[IpAddr]) -> anyhow::Result<()> {
    let addresses = netlink
        .addresses(None)
        .context("BGP: cannot read the addresses")?;
    let mut links: Vec<Link> = Vec::new();
    for address in &addresses {
        if links.iter().any(|l| l.index == address.ifindex) {
            continue;
        }
        if let Some(link) = netlink
            .link_by_index(address.ifindex)
            .context("BGP: cannot read the links")?
        {
            links.push(link);
        }
    }
    for interface in arp::interfaces_to_quiet(vips, &links, &addresses) {
        let changed = arp::quiet(Path::new("/proc/sys/net/ipv4/conf"), &interface)
            .with_context(|| format!("BGP: cannot stop {interface} answering ARP for the VIPs"))?;
        for setting in changed {
            tracing::info!(%setting, "a VIP lies in this interface's subnet: ARP quieted");
        }
    }
    Ok(())
}
