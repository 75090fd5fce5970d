//! Link states for the `interface` trackers: a netlink monitor of the node's links, opened
//! only when some tracker follows an interface, publishing every change as [`LinkStates`] so
//! that no tracker polls netlink.
//!
//! Lifecycle: started by [`super::Trackers::start`], it runs until the trackers stop.

use std::collections::BTreeMap;

use havip_sys::netlink::{NetEvent, NetlinkMonitor};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Link states as the monitor has seen them change, by interface name. A link that has not
/// changed since the node started is absent: its state is what the tracker read at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStates {
    /// Up (IFF_UP with carrier) or not, by interface name; a removed link is down.
    pub by_name: BTreeMap<String, bool>,
    /// Bumped when the kernel dropped notifications: readers must look again themselves.
    pub overruns: u64,
    /// Interface names by index, to name a removed link.
    names: BTreeMap<u32, String>,
}

impl LinkStates {
    /// Apply one netlink event; true when the published state changed.
    pub fn apply(&mut self, event: &NetEvent) -> bool {
        match event {
            NetEvent::Link(link) => {
                self.names.insert(link.index, link.name.clone());
                self.by_name.insert(link.name.clone(), link.up) != Some(link.up)
            }
            NetEvent::LinkRemoved { index } => match self.names.remove(index) {
                Some(name) => self.by_name.insert(name, false) != Some(false),
                None => false,
            },
            NetEvent::Overrun => {
                self.overruns += 1;
                true
            }
            NetEvent::AddressAdded(_) | NetEvent::AddressRemoved(_) => false,
        }
    }
}

/// Open the monitor and publish link changes until `stop`.
pub fn spawn(stop: CancellationToken) -> std::io::Result<watch::Receiver<LinkStates>> {
    let monitor = crate::vrrp::register(NetlinkMonitor::open()?)?;
    let (tx, rx) = watch::channel(LinkStates::default());
    tokio::spawn(monitor_loop(monitor, tx, stop));
    Ok(rx)
}

async fn monitor_loop(
    mut fd: AsyncFd<NetlinkMonitor>,
    links: watch::Sender<LinkStates>,
    stop: CancellationToken,
) {
    loop {
        let mut guard = tokio::select! {
            guard = fd.readable_mut() => match guard {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!(%error, "link monitor failed; interface trackers repeat their last state");
                    return;
                }
            },
            () = stop.cancelled() => return,
        };
        let events = match guard.get_inner_mut().read_events() {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "link monitor read failed");
                Vec::new()
            }
        };
        guard.clear_ready();
        for event in &events {
            links.send_if_modified(|states| states.apply(event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_sys::netlink::Link;

    fn link(index: u32, name: &str, up: bool) -> NetEvent {
        NetEvent::Link(Link {
            index,
            name: name.into(),
            up,
            mac: None,
            mtu: 1500,
        })
    }

    #[test]
    fn changes_are_published_and_repeats_are_not() {
        let mut states = LinkStates::default();
        assert!(states.apply(&link(3, "eth0", true)));
        assert!(!states.apply(&link(3, "eth0", true)), "no change");
        assert!(states.apply(&link(3, "eth0", false)));
        assert!(states.apply(&link(3, "eth0", true)));
        assert!(states.apply(&NetEvent::LinkRemoved { index: 3 }));
        assert_eq!(states.by_name.get("eth0"), Some(&false), "removed is down");
        assert!(
            !states.apply(&NetEvent::LinkRemoved { index: 9 }),
            "unknown"
        );
        assert!(states.apply(&NetEvent::Overrun));
        assert_eq!(states.overruns, 1);
    }
}
