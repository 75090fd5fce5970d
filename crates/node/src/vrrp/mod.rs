//! The VRRP side of a node: the configured instances on the wire.
//!
//! ```text
//!   interface eth0 / IPv4 ── VrrpReceiver ── receive task ──(VRID)──> instance task "VI_1" ──> VrrpSender
//!                                                          └────────> instance task "VI_2"      Netlink (VIPs)
//!   netlink monitor task ── link up/down, address removed ───────────> (every instance)         Announcer (GARP/NA)
//!                                                                                               notify worker
//! ```
//!
//! One receive path per interface and family, demultiplexed by VRID so that several
//! instances on one interface each see a packet once (issue #4 item 1). Each instance task
//! owns its protocol state (`havip_vrrp::Instance`, see [`instance`]); the tasks share the
//! sockets, which are only ever written to. Start resolves interfaces and addresses and
//! fails with a clear message when one is missing; [`VrrpNode::shutdown`] releases the VIPs
//! gracefully.

pub mod command;
pub mod instance;
pub mod notify;
pub mod status;
pub mod tracking;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use havip_sys::announce::Announcer;
use havip_sys::netlink::{InterfaceAddress, Link, NetEvent, Netlink, NetlinkMonitor};
use havip_sys::vrrp_socket::{Family, VrrpReceiver, VrrpSender};
use havip_vrrp::{AddressFamily, Instance, Tracking};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use havip_config::vrrp::{TrackerSettings, VrrpSettings};
use havip_proxy::service::Service;
use instance::{Control, InstanceTask, OwnedPacket, ResolvedVip, StepDownResult};
use status::{InstanceStatus, ReceiveCounters, VrrpView};

/// Messages an instance task may have waiting; packets beyond that are dropped and counted
/// (a task that far behind is better served by fresh adverts than by old ones).
const INBOX_CAPACITY: usize = 1024;

/// The running VRRP instances of this node.
pub struct VrrpNode {
    controls: Vec<(String, mpsc::Sender<Control>)>,
    tasks: Vec<JoinHandle<()>>,
    notify_workers: Vec<JoinHandle<()>>,
    background: CancellationToken,
    view: Arc<VrrpView>,
}

impl VrrpNode {
    /// Open the sockets, resolve interfaces and addresses, and start every instance and the
    /// trackers that move their priorities (reading `services` in-process).
    pub async fn start(
        settings: &[VrrpSettings],
        trackers: &[TrackerSettings],
        services: &[Arc<Service>],
    ) -> anyhow::Result<VrrpNode> {
        let netlink = Netlink::open().context("VRRP: cannot open a netlink socket")?;
        let mut links: BTreeMap<String, Link> = BTreeMap::new();
        let mut link_of = |name: &str, netlink: &Netlink| -> anyhow::Result<Link> {
            if let Some(link) = links.get(name) {
                return Ok(link.clone());
            }
            let link = netlink
                .link_by_name(name)
                .with_context(|| format!("VRRP: cannot look up interface {name}"))?
                .ok_or_else(|| anyhow!("VRRP: interface {name:?} does not exist"))?;
            links.insert(name.to_string(), link.clone());
            Ok(link)
        };
        let addresses = netlink
            .addresses(None)
            .context("VRRP: cannot list interface addresses")?;

        struct Planned {
            settings: VrrpSettings,
            link: Link,
            primary: IpAddr,
            vips: Vec<ResolvedVip>,
        }
        let mut planned = Vec::new();
        for s in settings {
            let link = link_of(&s.interface, &netlink)?;
            let primary = match s.source {
                Some(source) => source,
                None => primary_address(&addresses, &link, s)?,
            };
            let mut vips = Vec::new();
            for vip in &s.virtual_addresses {
                let vip_link = match &vip.interface {
                    Some(name) => link_of(name, &netlink)?,
                    None => link.clone(),
                };
                vips.push(ResolvedVip {
                    address: vip.address,
                    prefix_len: vip.prefix_len,
                    ifindex: vip_link.index,
                    interface: vip_link.name.clone(),
                    label: vip.label.clone(),
                });
            }
            if !s.accept {
                tracing::warn!(instance = %s.name, "accept = false: havip adds the virtual addresses anyway; enforce RFC 5798 Accept_Mode off with a firewall rule");
            }
            planned.push(Planned {
                settings: s.clone(),
                link,
                primary,
                vips,
            });
        }

        // Shared sockets: one sender and one receiver per (interface, family), one announcer
        // per interface that carries a VIP.
        let mut senders: HashMap<(u32, bool), Arc<VrrpSender>> = HashMap::new();
        let mut receivers: BTreeMap<(u32, bool), (String, bool, Vec<usize>)> = BTreeMap::new();
        let mut announcers: Vec<(u32, Announcer)> = Vec::new();
        for (i, p) in planned.iter().enumerate() {
            let v4 = p.settings.family() == AddressFamily::Ipv4;
            let family = if v4 { Family::V4 } else { Family::V6 };
            let key = (p.link.index, v4);
            if let std::collections::hash_map::Entry::Vacant(slot) = senders.entry(key) {
                let sender =
                    VrrpSender::open(p.link.index, &p.link.name, family).with_context(|| {
                        format!("VRRP: cannot open a send socket on {}", p.link.name)
                    })?;
                slot.insert(Arc::new(sender));
            }
            let entry = receivers
                .entry(key)
                .or_insert_with(|| (p.link.name.clone(), false, Vec::new()));
            entry.1 |= p.settings.unicast_peers.is_empty();
            entry.2.push(i);
            for vip in &p.vips {
                if announcers.iter().any(|(index, _)| *index == vip.ifindex) {
                    continue;
                }
                let mac = links
                    .values()
                    .find(|l| l.index == vip.ifindex)
                    .and_then(|l| l.mac)
                    .unwrap_or([0; 6]);
                let announcer =
                    Announcer::open(vip.ifindex, &vip.interface, mac).with_context(|| {
                        format!(
                            "VRRP: cannot open announcement sockets on {}",
                            vip.interface
                        )
                    })?;
                announcers.push((vip.ifindex, announcer));
            }
        }
        let announcers = Arc::new(announcers);
        let netlink = Arc::new(Mutex::new(netlink));

        let background = CancellationToken::new();
        let mut view = VrrpView::default();
        let mut controls = Vec::new();
        let mut inboxes = Vec::new();
        for p in &planned {
            let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
            controls.push((p.settings.name.clone(), tx));
            inboxes.push(rx);
        }

        // Receive paths, demultiplexed by VRID.
        for ((ifindex, v4), (name, join_multicast, members)) in &receivers {
            let family = if *v4 { Family::V4 } else { Family::V6 };
            let receiver = VrrpReceiver::open(*ifindex, name, family, *join_multicast)
                .with_context(|| format!("VRRP: cannot open a receive socket on {name}"))?;
            let routes: HashMap<u8, mpsc::Sender<Control>> = members
                .iter()
                .map(|i| (planned[*i].settings.vrid, controls[*i].1.clone()))
                .collect();
            let counters = Arc::new(ReceiveCounters {
                interface: name.clone(),
                family: if *v4 { "ipv4" } else { "ipv6" },
                ..ReceiveCounters::default()
            });
            view.receivers.push(counters.clone());
            let fd = register(receiver)
                .with_context(|| format!("VRRP: cannot register the receive socket of {name}"))?;
            tokio::spawn(receive_loop(fd, routes, counters, background.clone()));
        }

        // Link and address changes.
        let monitor = NetlinkMonitor::open().context("VRRP: cannot watch links and addresses")?;
        let monitor = register(monitor).context("VRRP: cannot register the netlink monitor")?;
        let watchers: Vec<(u32, mpsc::Sender<Control>)> = planned
            .iter()
            .zip(&controls)
            .map(|(p, (_, tx))| (p.link.index, tx.clone()))
            .collect();
        tokio::spawn(monitor_loop(monitor, watchers, background.clone()));

        // The instances.
        let events = Arc::new(status::EventLog::default());
        let mut tasks = Vec::new();
        let mut notify_workers = Vec::new();
        let mut slots = Vec::new();
        for (p, inbox) in planned.into_iter().zip(inboxes) {
            let config = p.settings.protocol_config(p.primary);
            let instance = Instance::new(config)
                .map_err(|e| anyhow!("VRRP instance {}: {e}", p.settings.name))?;
            let v4 = p.settings.family() == AddressFamily::Ipv4;
            let sender = senders
                .get(&(p.link.index, v4))
                .cloned()
                .ok_or_else(|| anyhow!("internal: no sender for {}", p.link.name))?;
            let slot = Arc::new(Mutex::new(InstanceStatus {
                name: p.settings.name.clone(),
                interface: p.link.name.clone(),
                vrid: p.settings.vrid,
                version: p.settings.version.number(),
                state: havip_vrrp::State::Initialize,
                configured_priority: p.settings.priority,
                effective_priority: p.settings.priority,
                source: p.primary,
                master: None,
                virtual_addresses: p
                    .vips
                    .iter()
                    .map(|v| format!("{}/{}", v.address, v.prefix_len))
                    .collect(),
                holding_addresses: false,
                counters: Default::default(),
                transitions: BTreeMap::new(),
                master_changes: 0,
                send_errors: 0,
                address_errors: 0,
                addresses_restored: 0,
                notify_failures: 0,
                stopping: false,
                last_change_unix_ms: None,
                master_down_interval: instance.master_down_interval(),
            }));
            slots.push(slot.clone());
            let (notify_tx, notify_rx) = mpsc::unbounded_channel();
            notify_workers.push(tokio::spawn(notify::worker(
                p.settings.notify.clone(),
                notify_rx,
                slot.clone(),
            )));
            tracing::info!(
                instance = %p.settings.name,
                interface = %p.link.name,
                vrid = p.settings.vrid,
                version = p.settings.version.number(),
                priority = p.settings.priority,
                source = %p.primary,
                mode = if p.settings.unicast_peers.is_empty() { "multicast" } else { "unicast" },
                "VRRP instance starting"
            );
            let task = InstanceTask {
                ifindex: p.link.index,
                link_up: p.link.up,
                tracked: Tracking::untracked(p.settings.priority),
                stepped_down: false,
                settings: p.settings,
                instance,
                vips: p.vips,
                sender,
                announcers: announcers.clone(),
                netlink: netlink.clone(),
                status: slot,
                events: events.clone(),
                notify: notify_tx,
                base: Instant::now(),
            };
            tasks.push(tokio::spawn(task.run(inbox)));
        }
        view.instances = slots;
        view.events = events;
        let view = Arc::new(view);

        // Trackers: their verdicts go to the instances' inboxes.
        let (tracking_tx, mut tracking_rx) = mpsc::channel::<(usize, Tracking)>(64);
        tracking::spawn(
            trackers.to_vec(),
            settings.to_vec(),
            services.to_vec(),
            tracking_tx,
            background.clone(),
        );
        let inboxes: Vec<mpsc::Sender<Control>> =
            controls.iter().map(|(_, tx)| tx.clone()).collect();
        tokio::spawn(async move {
            while let Some((index, tracking)) = tracking_rx.recv().await {
                if let Some(tx) = inboxes.get(index) {
                    let _ = tx.send(Control::Tracking(tracking)).await;
                }
            }
        });
        Ok(VrrpNode {
            controls,
            tasks,
            notify_workers,
            background,
            view,
        })
    }

    /// What the admin endpoint shows.
    pub fn view(&self) -> Arc<VrrpView> {
        self.view.clone()
    }

    /// A handle for runtime commands (the admin API's drill endpoints).
    pub fn commands(&self) -> VrrpCommands {
        VrrpCommands {
            controls: self.controls.clone(),
        }
    }

    /// Release every instance gracefully (see [`instance`]) and stop the background tasks.
    pub async fn shutdown(self) {
        let mut waits = Vec::new();
        for (_, tx) in &self.controls {
            let (done_tx, done_rx) = oneshot::channel();
            if tx.send(Control::Shutdown(done_tx)).await.is_ok() {
                waits.push(done_rx);
            }
        }
        for wait in waits {
            let _ = wait.await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        self.background.cancel();
        // The tasks are gone, so the notify queues are closed: let the last commands run
        // (each is bounded by its timeout).
        for worker in self.notify_workers {
            let _ = worker.await;
        }
    }
}

/// Runtime commands to the instances, for the admin API.
#[derive(Debug, Clone)]
pub struct VrrpCommands {
    controls: Vec<(String, mpsc::Sender<Control>)>,
}

impl VrrpCommands {
    fn inbox(&self, instance: &str) -> Option<&mpsc::Sender<Control>> {
        self.controls
            .iter()
            .find(|(name, _)| name == instance)
            .map(|(_, tx)| tx)
    }

    /// Ask a master to hand its VIP over (a failover drill). `None`: no such instance.
    pub async fn step_down(&self, instance: &str) -> Option<StepDownResult> {
        let (reply, answer) = oneshot::channel();
        self.inbox(instance)?
            .send(Control::StepDown(reply))
            .await
            .ok()?;
        answer.await.ok()
    }

    /// End a step-down. `None`: no such instance.
    pub async fn restore(&self, instance: &str) -> Option<()> {
        let (reply, answer) = oneshot::channel();
        self.inbox(instance)?
            .send(Control::Restore(reply))
            .await
            .ok()?;
        answer.await.ok()
    }
}

/// Register a socket with tokio's reactor. `AsyncFd::new` is deprecated because a bare fd
/// could be closed while registered; the sys types own their descriptors (`OwnedFd`) and
/// `AsyncFd` deregisters before it drops them, so that cannot happen here, and this crate
/// stays free of `unsafe` (`AsyncFd::register` is an unsafe fn).
#[allow(deprecated)]
fn register<T: std::os::fd::AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    AsyncFd::new(inner)
}

/// The address adverts are sent from when `source` is not configured: for IPv4 the
/// interface's first primary address, for IPv6 its link-local address (RFC 5798 5.1.2.1).
/// Our own virtual addresses never qualify.
fn primary_address(
    addresses: &[InterfaceAddress],
    link: &Link,
    settings: &VrrpSettings,
) -> anyhow::Result<IpAddr> {
    let ours = |a: &IpAddr| settings.virtual_addresses.iter().any(|v| v.address == *a);
    let candidates = addresses
        .iter()
        .filter(|a| a.ifindex == link.index && !ours(&a.address));
    let found = match settings.family() {
        AddressFamily::Ipv4 => candidates
            .filter(|a| a.address.is_ipv4() && !a.secondary)
            .map(|a| a.address)
            .next(),
        AddressFamily::Ipv6 => candidates
            .filter_map(|a| match a.address {
                IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(a.address),
                _ => None,
            })
            .next(),
    };
    match found {
        Some(address) => Ok(address),
        None => bail!(
            "VRRP instance {}: interface {} has no {} address to send adverts from; add one or set `source`",
            settings.name,
            link.name,
            match settings.family() {
                AddressFamily::Ipv4 => "IPv4",
                AddressFamily::Ipv6 => "IPv6 link-local",
            }
        ),
    }
}

/// The receive path of one interface and family: read every packet, hand it to the instance
/// of its VRID, count what no instance can take.
async fn receive_loop(
    fd: AsyncFd<VrrpReceiver>,
    routes: HashMap<u8, mpsc::Sender<Control>>,
    counters: Arc<ReceiveCounters>,
    stop: CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut buf = vec![0u8; 65_536];
    loop {
        let mut guard = tokio::select! {
            guard = fd.readable() => match guard {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!(interface = %counters.interface, %error, "VRRP receive path failed");
                    return;
                }
            },
            () = stop.cancelled() => return,
        };
        // Drain what is queued; a bounded number per wakeup keeps other tasks running.
        for _ in 0..256 {
            match guard.get_inner().recv(&mut buf) {
                Ok(datagram) => {
                    counters.received.fetch_add(1, Relaxed);
                    let payload = buf.get(datagram.payload.clone()).unwrap_or(&[]);
                    let Some(vrid) = havip_vrrp::packet::peek_vrid(payload) else {
                        counters.malformed.fetch_add(1, Relaxed);
                        continue;
                    };
                    let Some(route) = routes.get(&vrid) else {
                        counters.unknown_vrid.fetch_add(1, Relaxed);
                        continue;
                    };
                    let packet = OwnedPacket {
                        source: datagram.source,
                        destination: datagram.destination,
                        ttl: datagram.ttl,
                        payload: payload.to_vec(),
                    };
                    if route.try_send(Control::Packet(packet)).is_err() {
                        counters.inbox_full.fetch_add(1, Relaxed);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    counters.malformed.fetch_add(1, Relaxed);
                }
                Err(error) => {
                    tracing::warn!(interface = %counters.interface, %error, "VRRP receive error");
                    guard.clear_ready();
                    break;
                }
            }
        }
    }
}

/// Link up/down and address removals, to the instances they concern.
async fn monitor_loop(
    fd: AsyncFd<NetlinkMonitor>,
    watchers: Vec<(u32, mpsc::Sender<Control>)>,
    stop: CancellationToken,
) {
    let mut fd = fd;
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
            for (ifindex, tx) in &watchers {
                let message = match &event {
                    NetEvent::Link(link) if link.index == *ifindex => Control::Link { up: link.up },
                    NetEvent::LinkRemoved { index } if index == ifindex => {
                        Control::Link { up: false }
                    }
                    NetEvent::AddressRemoved(a) => Control::AddressRemoved {
                        ifindex: a.ifindex,
                        address: a.address,
                    },
                    NetEvent::Overrun => Control::Resync,
                    _ => continue,
                };
                let _ = tx.send(message).await;
            }
        }
    }
}
