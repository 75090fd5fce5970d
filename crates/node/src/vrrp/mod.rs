//! The VRRP side of a node: the configured instances on the wire.
//!
//! ```text
//!   interface eth0 / IPv4 ── receive path ──(VRID)──> instance task "VI_1" ──> InstanceIo:
//!                                          └────────> instance task "VI_2"     sender, netlink,
//!   netlink monitor ── link up/down, address removed ─> (every instance)        announcer
//!                  └── link states ──> interface trackers                      notify worker
//!   trackers ── priority / fault ──> (the instances that track them)
//! ```
//!
//! - [`receive`]: one receive path per interface and family, demultiplexed by VRID.
//! - [`instance`]: one task per instance around the pure core; its I/O is [`io::InstanceIo`].
//! - [`monitor`]: the netlink monitor.
//! - [`status`], [`notify`]: what the outside sees, and notify commands.
//!
//! [`VrrpNode::start`] resolves interfaces and addresses (failing with a clear message when
//! one is missing), opens the shared sockets and starts everything; [`VrrpNode::shutdown`]
//! releases the VIPs gracefully and waits for every task.

pub mod instance;
pub mod io;
pub mod monitor;
pub mod notify;
pub mod receive;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use havip_config::vrrp::{TrackerSettings, VrrpSettings};
use havip_proxy::service::Service;
use havip_sys::announce::Announcer;
use havip_sys::netlink::{InterfaceAddress, Link, Netlink, NetlinkMonitor};
use havip_sys::vrrp_socket::{Family, VrrpReceiver, VrrpSender};
use havip_vrrp::{AddressFamily, Instance, Tracking};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::tracking;
use instance::{Control, InstanceParts, InstanceTask, StepDownResult};
use io::{KernelIo, ResolvedVip};
use monitor::{LinkStates, Watcher};
use status::{EventLog, InstanceStatus, ReceiveCounters, VrrpView};

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

/// One configured instance with its interface and addresses resolved.
struct Planned {
    settings: VrrpSettings,
    link: Link,
    primary: IpAddr,
    vips: Vec<ResolvedVip>,
}

impl Planned {
    fn family(&self) -> Family {
        match self.settings.family() {
            AddressFamily::Ipv4 => Family::V4,
            AddressFamily::Ipv6 => Family::V6,
        }
    }

    /// The key of the shared sockets this instance uses.
    fn socket_key(&self) -> (u32, bool) {
        (self.link.index, self.family() == Family::V4)
    }
}

/// The sockets the instances share: one sender and one receiver per (interface, family),
/// one announcer per interface that carries a VIP.
struct Sockets {
    senders: HashMap<(u32, bool), Arc<VrrpSender>>,
    /// Interface name, whether to join the multicast group, and the instances it serves.
    receivers: BTreeMap<(u32, bool), (String, bool, Vec<usize>)>,
    announcers: Arc<Vec<(u32, Announcer)>>,
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
        let (planned, links) = plan(settings, &netlink)?;
        let sockets = Sockets::open(&planned, &links)?;
        let netlink = Arc::new(Mutex::new(netlink));
        let background = CancellationToken::new();
        let mut view = VrrpView::default();
        let (controls, inboxes): (Vec<_>, Vec<_>) = planned
            .iter()
            .map(|instance_plan| {
                let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
                ((instance_plan.settings.name.clone(), tx), rx)
            })
            .unzip();
        view.receivers = spawn_receivers(&planned, &sockets, &controls, &background)?;
        let links = spawn_monitor(&planned, &controls, &background)?;
        let events = Arc::new(EventLog::default());
        let mut tasks = Vec::new();
        let mut notify_workers = Vec::new();
        for (instance_plan, inbox) in planned.into_iter().zip(inboxes) {
            let io = KernelIo {
                ifindex: instance_plan.link.index,
                sender: sockets
                    .senders
                    .get(&instance_plan.socket_key())
                    .cloned()
                    .ok_or_else(|| {
                        anyhow!("internal: no sender for {}", instance_plan.link.name)
                    })?,
                announcers: sockets.announcers.clone(),
                netlink: netlink.clone(),
            };
            let (task, worker, slot) = start_instance(instance_plan, io, &events, inbox)?;
            tasks.push(task);
            notify_workers.push(worker);
            view.instances.push(slot);
        }
        view.events = events;
        let board = Arc::new(tracking::TrackerBoard::new(trackers, settings));
        view.trackers = Some(board.clone());
        spawn_trackers(
            trackers,
            settings,
            services,
            &controls,
            (links, board),
            &background,
        );
        Ok(VrrpNode {
            controls,
            tasks,
            notify_workers,
            background,
            view: Arc::new(view),
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

/// Resolve each instance's interface, source address and virtual addresses; also returns
/// every link involved, by name.
fn plan(
    settings: &[VrrpSettings],
    netlink: &Netlink,
) -> anyhow::Result<(Vec<Planned>, BTreeMap<String, Link>)> {
    let mut links: BTreeMap<String, Link> = BTreeMap::new();
    let mut link_of = |name: &str| -> anyhow::Result<Link> {
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
    let mut planned = Vec::new();
    for instance in settings {
        let link = link_of(&instance.interface)?;
        let primary = match instance.source {
            Some(source) => source,
            None => primary_address(&addresses, &link, instance)?,
        };
        let mut vips = Vec::new();
        for vip in &instance.virtual_addresses {
            let vip_link = match &vip.interface {
                Some(name) => link_of(name)?,
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
        if !instance.accept {
            tracing::warn!(instance = %instance.name, "accept = false: havip adds the virtual addresses anyway; enforce RFC 5798 Accept_Mode off with a firewall rule");
        }
        planned.push(Planned {
            settings: instance.clone(),
            link,
            primary,
            vips,
        });
    }
    Ok((planned, links))
}

impl Sockets {
    fn open(planned: &[Planned], links: &BTreeMap<String, Link>) -> anyhow::Result<Sockets> {
        let mut senders: HashMap<(u32, bool), Arc<VrrpSender>> = HashMap::new();
        let mut receivers: BTreeMap<(u32, bool), (String, bool, Vec<usize>)> = BTreeMap::new();
        let mut announcers: Vec<(u32, Announcer)> = Vec::new();
        for (index, instance_plan) in planned.iter().enumerate() {
            let key = instance_plan.socket_key();
            if let std::collections::hash_map::Entry::Vacant(slot) = senders.entry(key) {
                let sender = VrrpSender::open(
                    instance_plan.link.index,
                    &instance_plan.link.name,
                    instance_plan.family(),
                )
                .with_context(|| {
                    format!(
                        "VRRP: cannot open a send socket on {}",
                        instance_plan.link.name
                    )
                })?;
                slot.insert(Arc::new(sender));
            }
            let entry = receivers
                .entry(key)
                .or_insert_with(|| (instance_plan.link.name.clone(), false, Vec::new()));
            entry.1 |= instance_plan.settings.unicast_peers.is_empty();
            entry.2.push(index);
            for vip in &instance_plan.vips {
                if announcers
                    .iter()
                    .any(|(announced, _)| *announced == vip.ifindex)
                {
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
        Ok(Sockets {
            senders,
            receivers,
            announcers: Arc::new(announcers),
        })
    }
}

/// One receive path per (interface, family), routing by VRID to the instances' inboxes.
fn spawn_receivers(
    planned: &[Planned],
    sockets: &Sockets,
    controls: &[(String, mpsc::Sender<Control>)],
    stop: &CancellationToken,
) -> anyhow::Result<Vec<Arc<ReceiveCounters>>> {
    let mut all = Vec::new();
    for ((ifindex, v4), (name, join_multicast, members)) in &sockets.receivers {
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
        all.push(counters.clone());
        let fd = register(receiver)
            .with_context(|| format!("VRRP: cannot register the receive socket of {name}"))?;
        tokio::spawn(receive::receive_loop(fd, routes, counters, stop.clone()));
    }
    Ok(all)
}

/// The netlink monitor; returns the link states it publishes for the trackers.
fn spawn_monitor(
    planned: &[Planned],
    controls: &[(String, mpsc::Sender<Control>)],
    stop: &CancellationToken,
) -> anyhow::Result<watch::Receiver<LinkStates>> {
    let monitor = NetlinkMonitor::open().context("VRRP: cannot watch links and addresses")?;
    let monitor = register(monitor).context("VRRP: cannot register the netlink monitor")?;
    let watchers = planned
        .iter()
        .zip(controls)
        .map(|(instance_plan, (_, inbox))| Watcher {
            ifindex: instance_plan.link.index,
            inbox: inbox.clone(),
        })
        .collect();
    let (links_tx, links_rx) = watch::channel(LinkStates::default());
    tokio::spawn(monitor::monitor_loop(
        monitor,
        watchers,
        links_tx,
        stop.clone(),
    ));
    Ok(links_rx)
}

/// The task and notify worker of one instance, and its status slot.
fn start_instance(
    instance_plan: Planned,
    io: KernelIo,
    events: &Arc<EventLog>,
    inbox: mpsc::Receiver<Control>,
) -> anyhow::Result<(JoinHandle<()>, JoinHandle<()>, status::StatusSlot)> {
    let mut config = instance_plan
        .settings
        .protocol_config(instance_plan.primary);
    // havip keeps serving on the VIP until the new master is heard (issue #4 item 5).
    config.graceful_release = true;
    let instance = Instance::new(config)
        .map_err(|e| anyhow!("VRRP instance {}: {e}", instance_plan.settings.name))?;
    let vip_names = instance_plan
        .vips
        .iter()
        .map(|v| format!("{}/{}", v.address, v.prefix_len))
        .collect();
    let slot = Arc::new(Mutex::new(InstanceStatus::initial(
        &instance_plan.settings,
        &instance_plan.link.name,
        instance_plan.primary,
        vip_names,
        instance.master_down_interval(),
    )));
    let (notify_tx, notify_rx) = mpsc::unbounded_channel();
    let worker = tokio::spawn(notify::worker(
        instance_plan.settings.notify.clone(),
        notify_rx,
        slot.clone(),
    ));
    tracing::info!(
        instance = %instance_plan.settings.name,
        interface = %instance_plan.link.name,
        vrid = instance_plan.settings.vrid,
        version = instance_plan.settings.version.number(),
        priority = instance_plan.settings.priority,
        source = %instance_plan.primary,
        mode = if instance_plan.settings.unicast_peers.is_empty() { "multicast" } else { "unicast" },
        "VRRP instance starting"
    );
    let task = InstanceTask::new(InstanceParts {
        name: instance_plan.settings.name.clone(),
        interface: instance_plan.link.name.clone(),
        instance,
        vips: instance_plan.vips,
        link_up: instance_plan.link.up,
        io,
        status: slot.clone(),
        events: events.clone(),
        notify: notify_tx,
    });
    Ok((tokio::spawn(task.run(inbox)), worker, slot))
}

/// The trackers; their verdicts go to the inboxes of the instances that track them.
fn spawn_trackers(
    trackers: &[TrackerSettings],
    settings: &[VrrpSettings],
    services: &[Arc<Service>],
    controls: &[(String, mpsc::Sender<Control>)],
    (links, board): (watch::Receiver<LinkStates>, Arc<tracking::TrackerBoard>),
    stop: &CancellationToken,
) {
    let (tracking_tx, mut tracking_rx) = mpsc::channel::<(usize, Tracking)>(64);
    tracking::spawn(
        tracking::Inputs {
            trackers: trackers.to_vec(),
            instances: settings.to_vec(),
            services: services.to_vec(),
            links,
            board,
        },
        tracking_tx,
        stop.clone(),
    );
    let inboxes: Vec<mpsc::Sender<Control>> = controls.iter().map(|(_, tx)| tx.clone()).collect();
    tokio::spawn(async move {
        while let Some((index, tracking)) = tracking_rx.recv().await {
            if let Some(tx) = inboxes.get(index) {
                let _ = tx.send(Control::Tracking(tracking)).await;
            }
        }
    });
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
fn register<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
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
    let ours = |address: &IpAddr| {
        settings
            .virtual_addresses
            .iter()
            .any(|vip| vip.address == *address)
    };
    let candidates = addresses
        .iter()
        .filter(|a| a.ifindex == link.index && !ours(&a.address));
    let found = match settings.family() {
        AddressFamily::Ipv4 => candidates
            .filter(|a| a.address.is_ipv4() && !a.secondary)
            .map(|a| a.address)
            .next(),
        AddressFamily::Ipv6 => candidates
            .filter_map(|candidate| match candidate.address {
                IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(candidate.address),
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
