//! The `[[vrrp]]` instances and the `[[tracker]]`s that move their priority, as typed
//! settings. They are read (submodules `instance`, `addresses`, `tracker`, `command`) and
//! checked as a whole: names unique, trackers and services referenced exist, the protocol
//! settings pass `havip_vrrp::InstanceConfig::validate`.
//!
//! Every setting corresponds to a keepalived one; `docs/config.md` lists the pairs. What is
//! only known on the running machine (the interface's index, MAC and primary address) is
//! resolved when the node starts, not here, so `havip check` works on any machine.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use havip_vrrp::{AddressFamily, AdvertInterval, AnnouncementConfig, Authentication, Version};

use crate::reader::{Record, TableReader, Written};
use crate::service::ServiceSpec;

mod addresses;
mod command;
mod instance;
mod tracker;

pub use command::split_words;
pub(crate) use instance::read_vrrp_instances;
pub(crate) use tracker::read_trackers;

/// Default time a notify command may run before it is killed.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// keepalived's default `vrrp_script` interval.
pub const DEFAULT_TRACKER_INTERVAL: Duration = Duration::from_secs(1);

/// One VRRP instance (keepalived `vrrp_instance`).
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpSettings {
    /// Names logs, metrics and notify arguments.
    pub name: String,
    /// The interface adverts are sent and received on (keepalived `interface`).
    pub interface: String,
    /// The virtual router id, the same on every node of the VIP.
    pub vrid: u8,
    /// VRRPv2 (RFC 3768) or v3 (RFC 5798).
    pub version: Version,
    /// Configured priority; 255 makes this node the address owner.
    pub priority: u8,
    /// Time between adverts.
    pub advert_interval: AdvertInterval,
    /// A higher priority takes over from a live master.
    pub preempt: bool,
    /// How long a lower-priority master must be seen before preempting it.
    pub preempt_delay: Duration,
    /// RFC 5798 Accept_Mode: the master accepts packets to the VIP.
    pub accept: bool,
    /// The floating addresses.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Source of our adverts and tie-breaker; `None`: the interface's primary address (IPv6:
    /// its link-local address), looked up at start.
    pub source: Option<IpAddr>,
    /// Send adverts to these instead of multicast; empty: multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// With peers, drop adverts from other sources.
    pub check_unicast_source: bool,
    /// With peers, accept any TTL / hop limit.
    pub accept_any_unicast_ttl: bool,
    /// VRRPv2 simple password, or none.
    pub authentication: Authentication,
    /// v3 over IPv4: checksum without the pseudo-header.
    pub v3_checksum_as_v2: bool,
    /// Gratuitous ARP / unsolicited NA of a new master.
    pub announce: AnnouncementConfig,
    /// Commands run on state changes.
    pub notify: NotifySettings,
    /// The trackers that move the priority.
    pub track: Vec<TrackRef>,
    /// Safe boot: how long a starting instance may wait for its trackers' first results
    /// before it may become master. The reader resolves `Auto` (see [`StartupLimit`]).
    pub startup_limit: StartupLimit,
}

/// `startup_limit` of a `[[vrrp]]`: how long safe boot may hold a starting instance back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupLimit {
    /// The longest time any tracker it follows takes to its first result: a `service`
    /// tracker's check `timeout` + `interval`, a script's `timeout` + `interval`, any other
    /// tracker's `interval`. No trackers: no wait. The reader turns this into one of the
    /// others.
    Auto,
    /// No wait (RFC 5798 startup).
    Off,
    /// At most this long.
    After(Duration),
}

impl StartupLimit {
    /// The limit the protocol uses; `None`: no wait.
    pub fn duration(self) -> Option<Duration> {
        match self {
            StartupLimit::After(limit) if !limit.is_zero() => Some(limit),
            _ => None,
        }
    }
}

impl VrrpSettings {
    /// The address family of the instance (all its virtual addresses share it).
    pub fn family(&self) -> AddressFamily {
        self.virtual_addresses
            .first()
            .map_or(AddressFamily::Ipv4, |v| AddressFamily::of(&v.address))
    }

    /// The protocol configuration for `havip_vrrp`, with `primary` as this router's address.
    pub fn protocol_config(&self, primary: IpAddr) -> havip_vrrp::InstanceConfig {
        let mut config = havip_vrrp::InstanceConfig::new(
            self.vrid,
            primary,
            self.virtual_addresses.iter().map(|v| v.address).collect(),
        );
        config.version = self.version;
        config.priority = self.priority;
        config.advert_interval = self.advert_interval;
        config.preempt = self.preempt;
        config.preempt_delay = self.preempt_delay;
        config.accept_mode = self.accept;
        config.unicast_peers = self.unicast_peers.clone();
        config.check_unicast_source = self.check_unicast_source;
        config.accept_any_unicast_ttl = self.accept_any_unicast_ttl;
        config.authentication = self.authentication;
        config.v3_ipv4_checksum = if self.v3_checksum_as_v2 {
            havip_vrrp::V3Ipv4Checksum::MessageOnly
        } else {
            havip_vrrp::V3Ipv4Checksum::PseudoHeader
        };
        config.announcements = self.announce.clone();
        config.startup_limit = self.startup_limit.duration();
        config
    }

    /// `Auto` made concrete from the trackers this instance follows and the services they
    /// watch (see [`StartupLimit::Auto`]).
    pub fn resolve_startup_limit(
        &mut self,
        trackers: &[TrackerSettings],
        services: &[ServiceSpec],
    ) {
        if self.startup_limit != StartupLimit::Auto {
            return;
        }
        let longest = self
            .track
            .iter()
            .filter_map(|reference| trackers.iter().find(|t| t.name == reference.tracker))
            .map(|tracker| first_result_within(tracker, services))
            .max();
        self.startup_limit = longest.map_or(StartupLimit::Off, StartupLimit::After);
    }
}

/// How long `tracker` takes to its first result at most.
fn first_result_within(tracker: &TrackerSettings, services: &[ServiceSpec]) -> Duration {
    match &tracker.kind {
        TrackerKind::Service { service, .. } => services
            .iter()
            .find(|s| &s.name == service)
            .filter(|s| s.health.check.is_some())
            .map_or(tracker.interval, |s| {
                // Every backend's first check: spread over one interval, each bounded by the
                // timeout; then the tracker's own first look.
                s.health.interval + s.health.timeout + tracker.interval
            }),
        TrackerKind::Script { timeout, .. } => *timeout + tracker.interval,
        _ => tracker.interval,
    }
}

/// A virtual address with its prefix, and where it goes (keepalived `virtual_ipaddress`
/// entries: `192.0.2.10/24 dev eth1 label eth1:vip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAddress {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length (/32 or /128 when written bare).
    pub prefix_len: u8,
    /// Another interface than the instance's; `None`: the instance's.
    pub interface: Option<String>,
    /// IPv4 address label (must start with the interface name, a kernel rule).
    pub label: Option<String>,
}

/// A command to run: an argument vector, or a line for `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// The program (absolute path) and its arguments.
    Argv(Vec<String>),
    /// A line for `/bin/sh -c`.
    Shell(String),
}

impl CommandSpec {
    /// The program and arguments to execute, with `extra` arguments appended.
    pub fn argv(&self, extra: &[&str]) -> Vec<String> {
        match self {
            CommandSpec::Argv(argv) => argv
                .iter()
                .cloned()
                .chain(extra.iter().map(|s| s.to_string()))
                .collect(),
            CommandSpec::Shell(line) => {
                // `sh -c LINE NAME ARGS...`: the extra arguments become $1, $2... as with
                // keepalived's notify scripts.
                let mut argv = vec!["/bin/sh".into(), "-c".into(), line.clone(), "havip".into()];
                argv.extend(extra.iter().map(|s| s.to_string()));
                argv
            }
        }
    }
}

/// What to run on state changes (keepalived `notify`, `notify_master`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// Run on every transition with `<instance> <old> <new>` appended.
    pub command: Option<CommandSpec>,
    /// Run on becoming master.
    pub master: Option<CommandSpec>,
    /// Run on becoming backup.
    pub backup: Option<CommandSpec>,
    /// Run on entering fault.
    pub fault: Option<CommandSpec>,
    /// Run when the instance stops.
    pub stop: Option<CommandSpec>,
    /// A command still running after this long is killed.
    pub timeout: Duration,
    /// Run as this user (keepalived `script_user`); `None`: as havip runs.
    pub user: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            command: None,
            master: None,
            backup: None,
            fault: None,
            stop: None,
            timeout: DEFAULT_NOTIFY_TIMEOUT,
            user: None,
        }
    }
}

/// An instance's use of a tracker, with an optional weight of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRef {
    /// The tracker's name.
    pub tracker: String,
    /// This instance's weight for it; `None`: the tracker's own.
    pub weight: Option<i32>,
}

/// A named tracker (keepalived `vrrp_script`, `track_interface`, `track_file`, and havip's
/// in-process trackers of the balancer).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSettings {
    /// Referenced from instances' `track`.
    pub name: String,
    /// Failing: 0 puts the instance in Fault; negative is added while failing; positive is
    /// added while healthy (keepalived's rules). For `file`, the multiplier of the number read.
    pub weight: i32,
    /// Good observations in a row to turn healthy.
    pub rise: u32,
    /// Bad observations in a row to turn failing.
    pub fall: u32,
    /// How often polled kinds (script, process, file) look.
    pub interval: Duration,
    /// What it observes.
    pub kind: TrackerKind,
}

/// What a tracker observes.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackerKind {
    /// Run a command; exit 0 is healthy.
    Script {
        /// The command.
        command: CommandSpec,
        /// A run still going after this long is killed.
        timeout: Duration,
        /// Run as this user; `None`: as havip runs.
        user: Option<String>,
        /// A timed-out run counts as a failure; otherwise it changes nothing.
        timeout_is_failure: bool,
    },
    /// A service has enough healthy backends.
    Service {
        /// The `[[service]]`.
        service: String,
        /// How many of its backends must be up.
        min_healthy: MinHealthy,
        /// Whether a backend an operator set to `drain` or `maint` counts as down (by
        /// default its health decides, so draining one master does not move the VIP).
        drain_counts_as_down: bool,
    },
    /// This node's listeners of a service are accepting.
    Listener {
        /// The `[[service]]`.
        service: String,
    },
    /// An interface is up.
    Interface {
        /// The interface's name.
        interface: String,
    },
    /// A process runs.
    Process(ProcessMatch),
    /// A number in a file, times the weight, is added to the priority.
    File {
        /// The file.
        path: PathBuf,
    },
}

/// How many backends a `service` tracker needs up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinHealthy {
    /// At least this many.
    Count(u32),
    /// At least this fraction (above 0, at most 1).
    Fraction(f64),
}

/// How a `process` tracker finds its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessMatch {
    /// A process with this name.
    Name(String),
    /// The PID written in this file.
    Pidfile(PathBuf),
}

/// Linux interface names: 1-15 bytes, no '/', ':' or whitespace.
pub(crate) fn check_interface_name(
    p: &mut Record,
    t: &TableReader<'_, '_>,
    key: &str,
    at: &Written<String>,
) {
    let name = &at.value;
    if name.is_empty()
        || name.len() > 15
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        p.add(
            &at.span,
            t.key(key),
            format!("{name:?} is not an interface name (1-15 characters, no '/', ':' or spaces)"),
        );
    }
}
