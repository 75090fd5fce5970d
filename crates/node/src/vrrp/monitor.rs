//! The node's one netlink monitor: link up/down and address removals go to the instances they
//! concern, and every link change is published as [`LinkStates`] for the `interface`
//! trackers, so that nothing else polls netlink.

use std::collections::BTreeMap;

use arc_swap::ArcSwap;
use havip_sys::netlink::{NetEvent, NetlinkMonitor};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::instance::Control;

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

/// An instance's inbox and the interface it runs on.
pub struct Watcher {
    /// The instance's interface.
    pub ifindex: u32,
    /// Its inbox.
    pub inbox: mpsc::Sender<Control>,
}

/// Read netlink events until `stop`: tell each instance about its link and about removed
/// addresses, and publish link changes on `links`.
pub async fn monitor_loop(
    mut fd: AsyncFd<NetlinkMonitor>,
    watchers: Arc<ArcSwap<Vec<Watcher>>>,
    links: watch::Sender<LinkStates>,
    stop: CancellationToken,
) {
    loop {
        let mut guard = tokio::select! {
            guard = fd.readable_mut() => match guard {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!(%error, "netlink monitor failed; link changes are no longer seen");
                    return;
                }
            },
            () = stop.cancelled() => return,
        };
        let events = match guard.get_inner_mut().read_events() {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "netlink monitor read failed");
                Vec::new()
            }
        };
        guard.clear_ready();
        for event in events {
            publish(&links, &event);
            let watchers = watchers.load_full();
            for watcher in watchers.iter() {
                if let Some(message) = message_for(watcher.ifindex, &event) {
                    let _ = watcher.inbox.send(message).await;
                }
            }
        }
    }
}

fn publish(links: &watch::Sender<LinkStates>, event: &NetEvent) {
    links.send_if_modified(|states| match event {
        NetEvent::Link(link) => {
            states.names.insert(link.index, link.name.clone());
            states.by_name.insert(link.name.clone(), link.up) != Some(link.up)
        }
        NetEvent::LinkRemoved { index } => match states.names.remove(index) {
            Some(name) => states.by_name.insert(name, false) != Some(false),
            None => false,
        },
        NetEvent::Overrun => {
            states.overruns += 1;
            true
        }
        NetEvent::AddressAdded(_) | NetEvent::AddressRemoved(_) => false,
    });
}

/// What an instance on `ifindex` must hear of `event`.
fn message_for(ifindex: u32, event: &NetEvent) -> Option<Control> {
    match event {
        NetEvent::Link(link) if link.index == ifindex => Some(Control::Link { up: link.up }),
        NetEvent::LinkRemoved { index } if *index == ifindex => Some(Control::Link { up: false }),
        NetEvent::AddressRemoved(a) => Some(Control::AddressRemoved {
            ifindex: a.ifindex,
            address: a.address,
        }),
        NetEvent::Overrun => Some(Control::Resync),
        _ => None,
    }
}
