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
//! - [`receive`]: one receive path per interface and family, routed by VRID.
//! - [`instance`]: one task per instance around the pure core; its I/O is [`io::InstanceIo`].
//! - [`monitor`]: the netlink monitor.
//! - [`status`], [`notify`]: what the outside sees, and notify commands.
//!
//! Lifecycle: [`VrrpNode::start`] resolves interfaces and addresses (failing with a clear
//! message when one is missing), opens the shared sockets and starts everything. A reload is
//! [`VrrpNode::prepare`] (everything that can fail: interfaces, addresses, sockets) then
//! [`VrrpNode::apply`]: an instance whose settings did not change sees nothing; one changed in
//! place (same VRID, version, addresses and interface) gets its new settings as an input of
//! its core, taking effect with its next advertisement; one that became another instance, and
//! one that is gone, hand over with priority 0 exactly as on SIGTERM (a replacement starts,
//! as backup, once its predecessor let go); a new one starts as backup. Trackers with the same
//! settings keep their state. [`VrrpNode::shutdown`] releases the VIPs gracefully and waits
//! for every task.

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
use arc_swap::ArcSwap;
use havip_config::vrrp::{NotifySettings, VrrpSettings};
use havip_sys::announce::Announcer;
use havip_sys::netlink::{InterfaceAddress, Link, Netlink, NetlinkMonitor};
use havip_sys::vrrp_socket::{Family, VrrpReceiver, VrrpSender};
use havip_vrrp::{AddressFamily, Instance, Tracking};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::tracking::{self, Feed, Trackers};
use instance::{Control, InstanceParts, InstanceTask, StepDownResult};
use io::{KernelIo, ResolvedVip};
use monitor::Watcher;
use receive::{Gate, Route, Routes};
use status::{EventLog, InstanceStatus, ReceiveCounters, StatusSlot, VrrpView};

/// Messages an instance task may have waiting; packets beyond that are dropped and counted
/// (a task that far behind is better served by fresh adverts than by old ones).
const INBOX_CAPACITY: usize = 1024;

/// The (interface index, IPv4?) of a receive path and send socket.
type PathKey = (u32, bool);

/// One configured instance with its interface and addresses resolved.
#[derive(Debug, Clone)]
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

    fn path_key(&self) -> PathKey {
        (self.link.index, self.family() == Family::V4)
    }

    fn protocol_config(&self) -> havip_vrrp::InstanceConfig {
        let mut config = self.settings.protocol_config(self.primary);
        // havip keeps serving on the VIP until the new master is heard (issue #4 item 5).
        config.graceful_release = true;
        config
    }
}

/// One receive path and send socket, shared by the instances on an interface and family.
struct Path {
    name: String,
    joined_multicast: bool,
    sender: Arc<VrrpSender>,
    routes: Arc<Routes>,
    counters: Arc<ReceiveCounters>,
    stop: CancellationToken,
}

/// A running instance.
struct Running {
    planned: Planned,
    inbox: mpsc::Sender<Control>,
    /// The receive path's screen of this instance's packets.
    gate: Arc<Gate>,
    task: JoinHandle<()>,
    notify: watch::Sender<NotifySettings>,
    notify_worker: JoinHandle<()>,
    status: StatusSlot,
}

/// A config made ready by [`VrrpNode::prepare`]: interfaces resolved, sockets opened. Dropping
/// it unapplied closes what it opened.
pub struct PreparedVrrp {
    planned: Vec<Planned>,
    trackers: Feed,
    paths: Vec<(PathKey, Path, AsyncFd<VrrpReceiver>)>,
    announcers: Vec<(u32, Arc<Announcer>)>,
}

/// What [`VrrpNode::apply`] did to the instances, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VrrpReport {
    /// Instances started (as backup).
    pub added: Vec<String>,
    /// Instances handing over and stopping.
    pub removed: Vec<String>,
    /// Instances whose settings changed in place.
    pub changed: Vec<String>,
    /// Instances that became other ones: handing over, then started anew.
    pub replaced: Vec<String>,
}

/// The running VRRP instances of this node.
pub struct VrrpNode {
    netlink: Arc<Mutex<Netlink>>,
    instances: Vec<Running>,
    paths: Arc<Mutex<BTreeMap<PathKey, Path>>>,
    announcers: HashMap<u32, Arc<Announcer>>,
    watchers: Arc<ArcSwap<Vec<Watcher>>>,
    /// Where the trackers' verdicts go, by instance name (forwarded to the inboxes).
    verdicts: mpsc::Sender<(String, tracking::Verdict)>,
    /// The task that turns the current trackers' values into verdicts; a reload replaces it.
    follower: Option<JoinHandle<()>>,
    /// Instance inboxes by name, for the trackers' verdicts.
    inboxes: Arc<ArcSwap<HashMap<String, mpsc::Sender<Control>>>>,
    events: Arc<EventLog>,
    view: Arc<VrrpView>,
    background: CancellationToken,
    /// Tasks of instances a reload stopped, still handing over.
    retiring: Vec<JoinHandle<()>>,
    /// What [`VrrpNode::start_later`] prepared, for [`VrrpNode::finish_start`].
    pending: Option<PreparedVrrp>,
    /// The states a predecessor process handed over (a binary upgrade), used once by the
    /// instances they name.
    resume: Vec<Resumed>,
}

/// The state of one instance as a predecessor process on this node left it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resumed {
    /// The instance's name.
    pub name: String,
    /// Its virtual router ID.
    pub vrid: u8,
    /// Its interface.
    pub interface: String,
    /// Whether it was master (holding the addresses).
    pub master: bool,
}

impl VrrpNode {
    /// Open the sockets, resolve interfaces and addresses, and start every instance,
    /// following the node's `trackers` for their priorities and writing state changes to
    /// `events`.
    pub async fn start(
        settings: &[VrrpSettings],
        trackers: &Trackers,
        events: Arc<EventLog>,
    ) -> anyhow::Result<VrrpNode> {
        VrrpNode::start_resuming(settings, trackers, events, Vec::new()).await
    }

    /// [`VrrpNode::start`] in a process that takes over from a predecessor (a binary
    /// upgrade): an instance named in `resume` with the same VRID and interface resumes its
    /// state (a master stays master, keeping its addresses, with no announcement burst);
    /// the others start afresh.
    pub async fn start_resuming(
        settings: &[VrrpSettings],
        trackers: &Trackers,
        events: Arc<EventLog>,
        resume: Vec<Resumed>,
    ) -> anyhow::Result<VrrpNode> {
        let mut node = VrrpNode::start_later(settings, trackers, events)?;
        node.resume = resume;
        node.finish_start().await;
        node.resume.clear();
        Ok(node)
    }

    /// What this node's instances would hand to a successor now.
    pub fn states(&self) -> Vec<Resumed> {
        self.instances
            .iter()
            .map(|running| Resumed {
                name: running.planned.settings.name.clone(),
                vrid: running.planned.settings.vrid,
                interface: running.planned.link.name.clone(),
                master: running
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .state
                    == havip_vrrp::State::Master,
            })
            .collect()
    }

    fn take_resume(&mut self, p: &Planned) -> Option<bool> {
        let at = self.resume.iter().position(|r| {
            r.name == p.settings.name && r.vrid == p.settings.vrid && r.interface == p.link.name
        })?;
        Some(self.resume.swap_remove(at).master)
    }

    /// The fallible half of [`VrrpNode::start`]: everything is opened and resolved, nothing
    /// runs until [`VrrpNode::finish_start`] (a reload that adds the first instances).
    pub fn start_later(
        settings: &[VrrpSettings],
        trackers: &Trackers,
        events: Arc<EventLog>,
    ) -> anyhow::Result<VrrpNode> {
        let mut node = VrrpNode::empty(events)?;
        node.pending = Some(node.prepare(settings, trackers)?);
        Ok(node)
    }

    /// Start what [`VrrpNode::start_later`] prepared.
    pub async fn finish_start(&mut self) -> VrrpReport {
        match self.pending.take() {
            Some(prepared) => self.apply(prepared).await,
            None => VrrpReport::default(),
        }
    }

    fn empty(events: Arc<EventLog>) -> anyhow::Result<VrrpNode> {
        let netlink = Netlink::open().context("VRRP: cannot open a netlink socket")?;
        let netlink = Arc::new(Mutex::new(netlink));
        let background = CancellationToken::new();
        let watchers = Arc::new(ArcSwap::from_pointee(Vec::new()));
        spawn_monitor(&watchers, &background)?;
        let inboxes = Arc::new(ArcSwap::from_pointee(HashMap::new()));
        let verdicts = spawn_verdicts(&inboxes);
        let view = Arc::new(VrrpView {
            events: events.clone(),
            ..VrrpView::default()
        });
        Ok(VrrpNode {
            netlink,
            instances: Vec::new(),
            paths: Arc::default(),
            announcers: HashMap::new(),
            watchers,
            verdicts,
            follower: None,
            inboxes,
            events,
            view,
            background,
            retiring: Vec::new(),
            pending: None,
            resume: Vec::new(),
        })
    }

    /// Everything of a new VRRP config that can fail: interfaces, addresses, new sockets.
    /// Nothing that runs changes.
    pub fn prepare(
        &self,
        settings: &[VrrpSettings],
        trackers: &Trackers,
    ) -> anyhow::Result<PreparedVrrp> {
        let planned = {
            let netlink = self.netlink.lock().unwrap_or_else(|e| e.into_inner());
            plan(settings, &netlink)?
        };
        for p in &planned {
            Instance::new(p.protocol_config())
                .map_err(|e| anyhow!("VRRP instance {}: {e}", p.settings.name))?;
        }
        let paths = self.open_paths(&planned)?;
        let mut announcers = Vec::new();
        for vip in planned.iter().flat_map(|p| &p.vips) {
            if self.announcers.contains_key(&vip.ifindex)
                || announcers.iter().any(|(i, _)| *i == vip.ifindex)
            {
                continue;
            }
            let mac = planned
                .iter()
                .flat_map(|p| std::iter::once(&p.link))
                .find(|l| l.index == vip.ifindex)
                .and_then(|l| l.mac)
                .or_else(|| self.mac_of(vip.ifindex))
                .unwrap_or([0; 6]);
            let announcer =
                Announcer::open(vip.ifindex, &vip.interface, mac).with_context(|| {
                    format!(
                        "VRRP: cannot open announcement sockets on {}",
                        vip.interface
                    )
                })?;
            announcers.push((vip.ifindex, Arc::new(announcer)));
        }
        Ok(PreparedVrrp {
            planned,
            trackers: trackers.feed(),
            paths,
            announcers,
        })
    }

    fn mac_of(&self, ifindex: u32) -> Option<[u8; 6]> {
        let netlink = self.netlink.lock().unwrap_or_else(|e| e.into_inner());
        netlink
            .link_by_index(ifindex)
            .ok()
            .flatten()
            .and_then(|l| l.mac)
    }

    /// New receive paths for the (interface, family) pairs `planned` needs that do not run
    /// yet, or that must now join the multicast group.
    fn open_paths(
        &self,
        planned: &[Planned],
    ) -> anyhow::Result<Vec<(PathKey, Path, AsyncFd<VrrpReceiver>)>> {
        let mut wanted: BTreeMap<PathKey, (String, Family, bool)> = BTreeMap::new();
        for p in planned {
            let entry = wanted
                .entry(p.path_key())
                .or_insert_with(|| (p.link.name.clone(), p.family(), false));
            entry.2 |= p.settings.unicast_peers.is_empty();
        }
        let running = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let mut opened = Vec::new();
        for (key, (name, family, multicast)) in wanted {
            if let Some(path) = running.get(&key) {
                if path.joined_multicast || !multicast {
                    continue;
                }
            }
            let sender = VrrpSender::open(key.0, &name, family)
                .with_context(|| format!("VRRP: cannot open a send socket on {name}"))?;
            let receiver = VrrpReceiver::open(key.0, &name, family, multicast)
                .with_context(|| format!("VRRP: cannot open a receive socket on {name}"))?;
            let receiver = register(receiver)
                .with_context(|| format!("VRRP: cannot register the receive socket of {name}"))?;
            let counters = Arc::new(ReceiveCounters {
                interface: name.clone(),
                family: if key.1 { "ipv4" } else { "ipv6" },
                ..ReceiveCounters::default()
            });
            let path = Path {
                name,
                joined_multicast: multicast,
                sender: Arc::new(sender),
                routes: Arc::new(ArcSwap::from_pointee(HashMap::new())),
                counters,
                stop: self.background.child_token(),
            };
            opened.push((key, path, receiver));
        }
        Ok(opened)
    }

    /// Make the running instances what `prepared` says (see the module docs). Cannot fail.
    pub async fn apply(&mut self, prepared: PreparedVrrp) -> VrrpReport {
        let PreparedVrrp {
            planned,
            trackers,
            paths,
            announcers,
        } = prepared;
        self.start_paths(paths);
        self.announcers.extend(announcers);
        // The trackers first: every instance gets its new settings with the verdict under them
        // (a tracker the reload kept has kept its value, see `Trackers::start_after`).
        let values = trackers.values.borrow().clone();
        let trackings: Vec<Tracking> = planned
            .iter()
            .map(|p| {
                if tracking::any_observed(&p.settings, &trackers.settings, &values) {
                    tracking::instance_tracking(&p.settings, &trackers.settings, &values)
                } else {
                    Tracking::untracked(p.settings.priority)
                }
            })
            .collect();
        let followed: Vec<VrrpSettings> = planned.iter().map(|p| p.settings.clone()).collect();
        let mut report = VrrpReport::default();
        let mut old: Vec<Running> = std::mem::take(&mut self.instances);
        for (p, tracking) in planned.into_iter().zip(trackings) {
            let name = p.settings.name.clone();
            let running = match old.iter().position(|r| r.planned.settings.name == name) {
                None => {
                    report.added.push(name);
                    self.start_instance(p, tracking, None)
                }
                Some(at) => {
                    let previous = old.swap_remove(at);
                    self.update_instance(previous, p, tracking, &mut report)
                }
            };
            self.instances.push(running);
        }
        for gone in old {
            report.removed.push(gone.planned.settings.name.clone());
            let task = self.retire(gone);
            self.retiring.push(task);
        }
        self.publish_routes();
        // Only now, so that every instance has its new settings before a new verdict.
        self.follow(followed, trackers);
        report
    }

    /// Follow `trackers` for `planned`'s instances from now on (replacing the follower of the
    /// previous config).
    fn follow(&mut self, instances: Vec<VrrpSettings>, trackers: Feed) {
        if let Some(previous) = self.follower.take() {
            previous.abort();
        }
        let board = Arc::new(tracking::TrackerBoard::new(&trackers, &instances));
        *self.view.trackers.lock().unwrap_or_else(|e| e.into_inner()) = Some(board);
        self.follower = Some(tokio::spawn(tracking::follow_instances(
            instances,
            trackers.settings,
            trackers.values,
            self.verdicts.clone(),
            Vec::new(),
        )));
    }

    /// The instance that continues `previous` under `p`.
    fn update_instance(
        &mut self,
        previous: Running,
        p: Planned,
        tracking: Tracking,
        report: &mut VrrpReport,
    ) -> Running {
        let name = p.settings.name.clone();
        if previous.planned.settings == p.settings
            && previous.planned.primary == p.primary
            && previous.planned.vips == p.vips
        {
            // Unchanged: nothing at all, not even the tracking (the trackers kept it).
            return previous;
        }
        let config = p.protocol_config();
        let same_router = previous.planned.link.index == p.link.index
            && previous.planned.vips == p.vips
            && previous.planned.protocol_config().is_same_router(&config);
        if same_router {
            report.changed.push(name);
            let _ = previous.notify.send(p.settings.notify.clone());
            previous.gate.replace(&havip_vrrp::Screen::new(&config));
            let _ = previous.inbox.try_send(Control::Reconfigure {
                config: Box::new(config),
                tracking,
            });
            return Running {
                planned: p,
                ..previous
            };
        }
        report.replaced.push(name);
        let predecessor = self.retire(previous);
        self.start_instance(p, tracking, Some(predecessor))
    }

    /// Ask `running` to stop (handing over as on SIGTERM); returns its task, which ends once
    /// it let go. Its route stays until then, so that it hears the new master.
    fn retire(&self, running: Running) -> JoinHandle<()> {
        let (done, _) = oneshot::channel();
        let _ = running.inbox.try_send(Control::Shutdown(done));
        let key = running.planned.path_key();
        let vrid = running.planned.settings.vrid;
        let inbox = running.inbox;
        let paths = self.paths.clone();
        let task = running.task;
        let worker = running.notify_worker;
        tokio::spawn(async move {
            let _ = task.await;
            let _ = worker.await;
            let paths = paths.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(path) = paths.get(&key) {
                let mut routes = (**path.routes.load()).clone();
                if let Some(inboxes) = routes.get_mut(&vrid) {
                    inboxes.retain(|r| !r.inbox.same_channel(&inbox));
                }
                routes.retain(|_, inboxes| !inboxes.is_empty());
                path.routes.store(Arc::new(routes));
            }
        })
    }

    /// Start an instance for `p`, as backup; with `after`, once that task has ended (a
    /// replaced predecessor handing over).
    fn start_instance(
        &mut self,
        p: Planned,
        tracking: Tracking,
        after: Option<JoinHandle<()>>,
    ) -> Running {
        let key = p.path_key();
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let sender = paths.get(&key).map(|path| path.sender.clone());
        drop(paths);
        let io = KernelIo {
            ifindex: p.link.index,
            sender: sender.unwrap_or_else(|| unreachable_sender(&p)),
            announcers: p
                .vips
                .iter()
                .filter_map(|v| {
                    self.announcers
                        .get(&v.ifindex)
                        .map(|a| (v.ifindex, a.clone()))
                })
                .collect(),
            netlink: self.netlink.clone(),
        };
        #[allow(clippy::expect_used)] // `prepare` built this instance once already
        let instance = Instance::new(p.protocol_config()).expect("validated by prepare");
        let vip_names = p
            .vips
            .iter()
            .map(|v| format!("{}/{}", v.address, v.prefix_len))
            .collect();
        let status = Arc::new(Mutex::new(InstanceStatus::initial(
            &p.settings,
            &p.link.name,
            p.primary,
            vip_names,
            instance.master_down_interval(),
        )));
        let (notify_settings, notify_rx) = watch::channel(p.settings.notify.clone());
        let (notify_tx, notify_inbox) = mpsc::unbounded_channel();
        let notify_worker = tokio::spawn(notify::worker(notify_rx, notify_inbox, status.clone()));
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
        let early_drops = status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .early_drops
            .clone();
        let gate = Arc::new(Gate::new(instance.screen(), early_drops));
        let (inbox, inbox_rx) = mpsc::channel(INBOX_CAPACITY);
        let _ = inbox.try_send(Control::Tracking(tracking));
        let task = InstanceTask::new(InstanceParts {
            name: p.settings.name.clone(),
            interface: p.link.name.clone(),
            instance,
            vips: p.vips.clone(),
            link_up: p.link.up,
            resume: self.take_resume(&p),
            io,
            status: status.clone(),
            events: self.events.clone(),
            notify: notify_tx,
        });
        let task = tokio::spawn(async move {
            if let Some(predecessor) = after {
                let _ = predecessor.await;
            }
            task.run(inbox_rx).await;
        });
        Running {
            planned: p,
            inbox,
            gate,
            task,
            notify: notify_settings,
            notify_worker,
            status,
        }
    }

    /// Start the receive loops of newly opened paths (replacing a path that had to join the
    /// multicast group; its routes move over).
    fn start_paths(&mut self, opened: Vec<(PathKey, Path, AsyncFd<VrrpReceiver>)>) {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        for (key, path, receiver) in opened {
            if let Some(old) = paths.remove(&key) {
                path.routes.store(old.routes.load_full());
                old.stop.cancel();
            }
            tokio::spawn(receive::receive_loop(
                receiver,
                path.routes.clone(),
                path.counters.clone(),
                path.stop.clone(),
            ));
            tracing::debug!(interface = %path.name, "VRRP receive path open");
            paths.insert(key, path);
        }
    }

    /// Routes, watchers, tracker inboxes and the view, from the instances now; paths no
    /// instance uses any more close once no retiring instance needs them.
    fn publish_routes(&mut self) {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        for (key, path) in paths.iter() {
            let mut routes = (**path.routes.load()).clone();
            for inboxes in routes.values_mut() {
                // Keep retiring instances' inboxes (they leave when their task ends).
                inboxes.retain(|r| !r.inbox.is_closed());
            }
            for running in self
                .instances
                .iter()
                .filter(|r| r.planned.path_key() == *key)
            {
                let inboxes = routes.entry(running.planned.settings.vrid).or_default();
                if !inboxes.iter().any(|r| r.inbox.same_channel(&running.inbox)) {
                    inboxes.push(Route {
                        inbox: running.inbox.clone(),
                        gate: running.gate.clone(),
                    });
                }
            }
            routes.retain(|_, inboxes| !inboxes.is_empty());
            path.routes.store(Arc::new(routes));
        }
        let unused: Vec<PathKey> = paths
            .iter()
            .filter(|(_, path)| path.routes.load().is_empty())
            .map(|(key, _)| *key)
            .collect();
        for key in unused {
            if let Some(path) = paths.remove(&key) {
                path.stop.cancel();
            }
        }
        let counters = paths.values().map(|p| p.counters.clone()).collect();
        drop(paths);
        self.watchers.store(Arc::new(
            self.instances
                .iter()
                .map(|r| Watcher {
                    ifindex: r.planned.link.index,
                    inbox: r.inbox.clone(),
                })
                .collect(),
        ));
        self.inboxes.store(Arc::new(
            self.instances
                .iter()
                .map(|r| (r.planned.settings.name.clone(), r.inbox.clone()))
                .collect(),
        ));
        *self
            .view
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            self.instances.iter().map(|r| r.status.clone()).collect();
        *self
            .view
            .receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = counters;
    }

    /// What the admin endpoint shows.
    pub fn view(&self) -> Arc<VrrpView> {
        self.view.clone()
    }

    /// A handle for runtime commands (the admin API's drill endpoints).
    pub fn commands(&self) -> VrrpCommands {
        VrrpCommands {
            inboxes: self.inboxes.clone(),
        }
    }

    /// Release every instance gracefully (see [`instance`]) and stop the background tasks.
    pub async fn shutdown(self) {
        self.stop_with(Control::Shutdown).await;
    }

    /// Stop every instance without a word on the wire and leave the addresses in place: a
    /// successor process has resumed them (a binary upgrade).
    pub async fn hand_off(self) {
        self.stop_with(Control::HandOff).await;
    }

    async fn stop_with(self, control: fn(oneshot::Sender<()>) -> Control) {
        let mut waits = Vec::new();
        for running in &self.instances {
            let (done_tx, done_rx) = oneshot::channel();
            if running.inbox.send(control(done_tx)).await.is_ok() {
                waits.push(done_rx);
            }
        }
        for wait in waits {
            let _ = wait.await;
        }
        for running in self.instances {
            let _ = running.task.await;
            // The task is gone, so its notify queue is closed: let the last commands run
            // (each is bounded by its timeout).
            let _ = running.notify_worker.await;
        }
        for task in self.retiring {
            let _ = task.await;
        }
        if let Some(follower) = &self.follower {
            follower.abort();
        }
        self.background.cancel();
    }
}

/// A sender for a path `prepare` failed to open: unreachable, because `prepare` opens every
/// path an instance needs and `apply` starts them before any instance.
fn unreachable_sender(p: &Planned) -> Arc<VrrpSender> {
    unreachable!("no send socket for {} (prepare opens it)", p.link.name)
}

/// The netlink monitor of the instances' links and addresses.
fn spawn_monitor(
    watchers: &Arc<ArcSwap<Vec<Watcher>>>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let monitor = NetlinkMonitor::open().context("VRRP: cannot watch links and addresses")?;
    let monitor = register(monitor).context("VRRP: cannot register the netlink monitor")?;
    tokio::spawn(monitor::monitor_loop(
        monitor,
        watchers.clone(),
        stop.clone(),
    ));
    Ok(())
}

/// The trackers' verdicts, by instance name, go to the inbox of the instance of that name
/// (the inboxes change with reloads). Ends when the node is gone.
fn spawn_verdicts(
    inboxes: &Arc<ArcSwap<HashMap<String, mpsc::Sender<Control>>>>,
) -> mpsc::Sender<(String, tracking::Verdict)> {
    let (verdicts, mut incoming) = mpsc::channel::<(String, tracking::Verdict)>(64);
    let inboxes = inboxes.clone();
    tokio::spawn(async move {
        while let Some((name, verdict)) = incoming.recv().await {
            let inbox = inboxes.load().get(&name).cloned();
            let control = match verdict {
                tracking::Verdict::Tracking(tracking) => Control::Tracking(tracking),
                tracking::Verdict::Ready => Control::TrackersReady,
            };
            if let Some(inbox) = inbox {
                let _ = inbox.send(control).await;
            }
        }
    });
    verdicts
}

/// Resolve each instance's interface, source address and virtual addresses.
fn plan(settings: &[VrrpSettings], netlink: &Netlink) -> anyhow::Result<Vec<Planned>> {
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
    for s in settings {
        let link = link_of(&s.interface)?;
        let primary = match s.source {
            Some(source) => source,
            None => primary_address(&addresses, &link, s)?,
        };
        let mut vips = Vec::new();
        for vip in &s.virtual_addresses {
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
    Ok(planned)
}

/// Runtime commands to the instances, for the admin API.
#[derive(Debug, Clone)]
pub struct VrrpCommands {
    inboxes: Arc<ArcSwap<HashMap<String, mpsc::Sender<Control>>>>,
}

impl VrrpCommands {
    fn inbox(&self, instance: &str) -> Option<mpsc::Sender<Control>> {
        self.inboxes.load().get(instance).cloned()
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
pub(crate) fn register<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
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
