//! The VRRP instances' netlink monitor: link up/down and address removals go to the
//! instances they concern. (The `interface` trackers have a monitor of their own,
//! `crate::tracking::links`.)

use std::sync::Arc;

use arc_swap::ArcSwap;
use havip_sys::netlink::{NetEvent, NetlinkMonitor};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::instance::Control;

/// An instance's inbox and the interface it runs on.
pub struct Watcher {
    /// The instance's interface.
    pub ifindex: u32,
    /// Its inbox.
    pub inbox: mpsc::Sender<Control>,
}

/// Read netlink events until `stop`: tell each instance about its link and about removed
/// addresses.
pub async fn monitor_loop(
    mut fd: AsyncFd<NetlinkMonitor>,
    watchers: Arc<ArcSwap<Vec<Watcher>>>,
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
            let watchers = watchers.load_full();
            for watcher in watchers.iter() {
                if let Some(message) = message_for(watcher.ifindex, &event) {
                    let _ = watcher.inbox.send(message).await;
                }
            }
        }
    }
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
