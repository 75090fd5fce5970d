//! The `[[vrrp]]` instances and the `[[tracker]]`s that move their priority: read from the
//! TOML tree into typed settings and checked as a whole (names unique, trackers and services
//! referenced exist, the protocol settings pass `havip_vrrp::InstanceConfig::validate`).
//!
//! Every setting corresponds to a keepalived one; `docs/config.md` lists the pairs. What is
//! only known on the running machine (the interface's index, MAC and primary address) is
//! resolved when the node starts, not here, so `havip check` works on any machine.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use havip_vrrp::{AddressFamily, AdvertInterval, AnnouncementConfig, Authentication, Version};

use crate::reader::{At, Problems, Span, TableReader};
use crate::{keys, valid_name};

/// Default time a notify command may run before it is killed.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// keepalived's default `vrrp_script` interval.
pub const DEFAULT_TRACKER_INTERVAL: Duration = Duration::from_secs(1);

/// One VRRP instance (keepalived `vrrp_instance`).
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpSettings {
    pub name: String,
    /// The interface adverts are sent and received on (keepalived `interface`).
    pub interface: String,
    pub vrid: u8,
    pub version: Version,
    /// Configured priority; 255 makes this node the address owner.
    pub priority: u8,
    pub advert_interval: AdvertInterval,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept: bool,
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Source of our adverts and tie-breaker; `None`: the interface's primary address (IPv6:
    /// its link-local address), looked up at start.
    pub source: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub check_unicast_source: bool,
    pub accept_any_unicast_ttl: bool,
    pub authentication: Authentication,
    pub v3_checksum_as_v2: bool,
    pub announce: AnnouncementConfig,
    pub notify: NotifySettings,
    pub track: Vec<TrackRef>,
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
        config
    }
}

/// A virtual address with its prefix, and where it goes (keepalived `virtual_ipaddress`
/// entries: `192.0.2.10/24 dev eth1 label eth1:vip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// Another interface than the instance's; `None`: the instance's.
    pub interface: Option<String>,
    /// IPv4 address label (must start with the interface name, a kernel rule).
    pub label: Option<String>,
}

/// A command to run: an argument vector, or a line for `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    Argv(Vec<String>),
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
    pub master: Option<CommandSpec>,
    pub backup: Option<CommandSpec>,
    pub fault: Option<CommandSpec>,
    pub stop: Option<CommandSpec>,
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
    pub tracker: String,
    pub weight: Option<i32>,
}

/// A named tracker (keepalived `vrrp_script`, `track_interface`, `track_file`, and havip's
/// in-process trackers of the balancer).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerSettings {
    pub name: String,
    /// Failing: 0 puts the instance in Fault; negative is added while failing; positive is
    /// added while healthy (keepalived's rules). For `file`, the multiplier of the number read.
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
    /// How often polled kinds (script, process, file) look.
    pub interval: Duration,
    pub kind: TrackerKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrackerKind {
    /// Run a command; exit 0 is healthy.
    Script {
        command: CommandSpec,
        timeout: Duration,
        user: Option<String>,
        /// A timed-out run counts as a failure; otherwise it changes nothing.
        timeout_is_failure: bool,
    },
    /// A service has enough healthy backends.
    Service {
        service: String,
        min_healthy: MinHealthy,
    },
    /// This node's listeners of a service are accepting.
    Listener { service: String },
    /// An interface is up.
    Interface { interface: String },
    /// A process runs.
    Process(ProcessMatch),
    /// A number in a file, times the weight, is added to the priority.
    File { path: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinHealthy {
    Count(u32),
    Fraction(f64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessMatch {
    Name(String),
    Pidfile(PathBuf),
}

/// Trackers that name a service are checked against `services` (read first).
pub fn read_trackers(
    p: &mut Problems,
    root: &mut TableReader<'_, '_>,
    services: &[havip_proxy::spec::ServiceSpec],
) -> Vec<TrackerSettings> {
    let mut out: Vec<TrackerSettings> = Vec::new();
    for mut t in root.tables(p, "tracker", keys::TRACKER.keys) {
        if let Some(tracker) = read_tracker(p, &mut t, services) {
            if out.iter().any(|o| o.name == tracker.name) {
                p.add(
                    &t.span(),
                    t.key("name"),
                    format!("a tracker named {:?} is already defined", tracker.name),
                );
            }
            out.push(tracker);
        }
        t.finish(p);
    }
    out
}

/// Returns the tracker even when some of its keys had problems (the load fails anyway), so
/// that instances naming it do not report it as undefined too.
fn read_tracker(
    p: &mut Problems,
    t: &mut TableReader<'_, '_>,
    services: &[havip_proxy::spec::ServiceSpec],
) -> Option<TrackerSettings> {
    let name = required_name(p, t, "tracker");
    let kind_at = t.string(p, "kind");
    let weight = t
        .int(p, "weight", -253..=253)
        .map(|w| w.value as i32)
        .unwrap_or_else(|| {
            if kind_at.as_ref().is_some_and(|k| k.value == "file") {
                1
            } else {
                0
            }
        });
    let rise = t.u32(p, "rise", 1..=100).unwrap_or(1);
    let fall = t.u32(p, "fall", 1..=100).unwrap_or(1);
    let interval = min_duration(p, t, "interval", Duration::from_millis(10))
        .unwrap_or(DEFAULT_TRACKER_INTERVAL);
    let Some(kind_at) = kind_at else {
        p.add(
            &t.span(),
            t.key("kind"),
            "missing: one of script, service, listener, interface, process, file",
        );
        return None;
    };
    // Keys that belong to other kinds are reported, not silently ignored.
    let own: &[&str] = match kind_at.value.as_str() {
        "script" => &["command", "shell", "timeout", "user", "timeout_counts_as"],
        "service" => &["service", "min_healthy", "min_healthy_fraction"],
        "listener" => &["service"],
        "interface" => &["interface"],
        "process" => &["process", "pidfile"],
        "file" => &["path"],
        other => {
            p.add(
                &kind_at.span,
                t.key("kind"),
                format!(
                    "{other:?} is not a tracker kind (use script, service, listener, interface, process or file)"
                ),
            );
            return None;
        }
    };
    let all_specific = [
        "command",
        "shell",
        "timeout",
        "user",
        "timeout_counts_as",
        "service",
        "min_healthy",
        "min_healthy_fraction",
        "interface",
        "process",
        "pidfile",
        "path",
    ];
    for key in all_specific.iter().filter(|k| !own.contains(k)) {
        if let Some(span) = t.consume(key) {
            p.add(
                &span,
                t.key(key),
                format!("does not apply to kind = {:?}", kind_at.value),
            );
        }
    }
    let kind = match kind_at.value.as_str() {
        "script" => {
            let command = read_command(p, t, "command", false);
            let timeout = min_duration(p, t, "timeout", Duration::from_millis(10));
            let user = t.string(p, "user").map(|u| u.value);
            let timeout_is_failure = match t.string(p, "timeout_counts_as") {
                None => false,
                Some(At { value, span }) => match value.as_str() {
                    "unknown" => false,
                    "failure" => true,
                    other => {
                        p.add(
                            &span,
                            t.key("timeout_counts_as"),
                            format!("{other:?}: use \"unknown\" or \"failure\""),
                        );
                        false
                    }
                },
            };
            let Some(command) = command else {
                p.add(&t.span(), t.key("command"), "missing: the command to run");
                return None;
            };
            TrackerKind::Script {
                command,
                timeout: timeout.unwrap_or(interval),
                user,
                timeout_is_failure,
            }
        }
        "service" | "listener" => {
            let Some(service) = t.string(p, "service") else {
                p.add(&t.span(), t.key("service"), "missing: the [[service]] name");
                return None;
            };
            if !services.iter().any(|s| s.name == service.value) {
                p.add(
                    &service.span,
                    t.key("service"),
                    format!("no [[service]] is named {:?}", service.value),
                );
            }
            if kind_at.value == "listener" {
                TrackerKind::Listener {
                    service: service.value,
                }
            } else {
                let count = t.u32(p, "min_healthy", 1..=10_000);
                let fraction = read_fraction(p, t, "min_healthy_fraction");
                let min_healthy = match (count, fraction) {
                    (Some(_), Some(_)) => {
                        p.add(
                            &t.span(),
                            t.key("min_healthy"),
                            "give min_healthy or min_healthy_fraction, not both",
                        );
                        MinHealthy::Count(1)
                    }
                    (Some(n), None) => MinHealthy::Count(n),
                    (None, Some(f)) => MinHealthy::Fraction(f),
                    (None, None) => MinHealthy::Count(1),
                };
                TrackerKind::Service {
                    service: service.value,
                    min_healthy,
                }
            }
        }
        "interface" => {
            let Some(interface) = t.string(p, "interface") else {
                p.add(&t.span(), t.key("interface"), "missing: the interface name");
                return None;
            };
            check_interface_name(p, t, "interface", &interface);
            TrackerKind::Interface {
                interface: interface.value,
            }
        }
        "process" => {
            let name = t.string(p, "process");
            let pidfile = t.string(p, "pidfile");
            match (name, pidfile) {
                (Some(n), None) => TrackerKind::Process(ProcessMatch::Name(n.value)),
                (None, Some(f)) => TrackerKind::Process(ProcessMatch::Pidfile(f.value.into())),
                _ => {
                    p.add(
                        &t.span(),
                        t.key("process"),
                        "give exactly one of process (a name) or pidfile",
                    );
                    return None;
                }
            }
        }
        _ => {
            let Some(path) = t.string(p, "path") else {
                p.add(&t.span(), t.key("path"), "missing: the file to read");
                return None;
            };
            TrackerKind::File {
                path: path.value.into(),
            }
        }
    };
    Some(TrackerSettings {
        name,
        weight,
        rise,
        fall,
        interval,
        kind,
    })
}

fn read_fraction(p: &mut Problems, t: &mut TableReader<'_, '_>, key: &str) -> Option<f64> {
    let v = t.raw_value(key)?;
    let value = match v.get_ref() {
        toml::de::DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(f) if f > 0.0 && f <= 1.0 => Some(f),
        _ => {
            p.add(
                &v.span(),
                t.key(key),
                "expected a fraction above 0 and at most 1, like 0.5",
            );
            None
        }
    }
}

pub fn read_vrrp_instances(
    p: &mut Problems,
    root: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Vec<VrrpSettings> {
    let mut out: Vec<VrrpSettings> = Vec::new();
    let mut seen: HashMap<(String, u8, bool), Span> = HashMap::new();
    for mut t in root.tables(p, "vrrp", keys::VRRP.keys) {
        if let Some(instance) = read_instance(p, &mut t, trackers) {
            if out.iter().any(|o| o.name == instance.name) {
                p.add(
                    &t.span(),
                    t.key("name"),
                    format!("an instance named {:?} is already defined", instance.name),
                );
            }
            // RFC 5798 7.3: a VRID names one virtual router per LAN and address family.
            let key = (
                instance.interface.clone(),
                instance.vrid,
                instance.family() == AddressFamily::Ipv4,
            );
            if seen.insert(key, t.span()).is_some() {
                p.add(
                    &t.span(),
                    t.key("vrid"),
                    format!(
                        "VRID {} is already used on {} for this address family",
                        instance.vrid, instance.interface
                    ),
                );
            }
            out.push(instance);
        }
        t.finish(p);
    }
    out
}

fn read_instance(
    p: &mut Problems,
    t: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Option<VrrpSettings> {
    let before = p.list.len();
    let name = required_name(p, t, "vrrp instance");
    let interface = match t.string(p, "interface") {
        Some(at) => {
            check_interface_name(p, t, "interface", &at);
            at.value
        }
        None => {
            p.add(
                &t.span(),
                t.key("interface"),
                "missing: the interface to run VRRP on, e.g. interface = \"eth0\"",
            );
            String::new()
        }
    };
    let vrid = match t.u32(p, "vrid", 1..=255) {
        Some(v) => v as u8,
        None => {
            if !t.has("vrid") {
                p.add(
                    &t.span(),
                    t.key("vrid"),
                    "missing: the virtual router id (1-255), the same on every node of this VIP",
                );
            }
            1
        }
    };
    let version = match t.u32(p, "version", 2..=3) {
        Some(2) => Version::V2,
        _ => Version::V3,
    };
    let priority = t.u32(p, "priority", 1..=255).map_or(100, |v| v as u8);
    let advert_interval = match t.duration(p, "advert_interval") {
        None => AdvertInterval::ONE_SECOND,
        Some(d) => match interval_from_duration(d.value, version) {
            Ok(i) => i,
            Err(message) => {
                p.add(&d.span, t.key("advert_interval"), message);
                AdvertInterval::ONE_SECOND
            }
        },
    };
    let preempt = t.bool(p, "preempt").unwrap_or(true);
    let preempt_delay = t
        .duration(p, "preempt_delay")
        .map_or(Duration::ZERO, |d| d.value);
    if preempt_delay > Duration::from_secs(1000) {
        p.add(
            &t.span(),
            t.key("preempt_delay"),
            "at most 1000s (keepalived's limit)",
        );
    }
    let accept = t.bool(p, "accept").unwrap_or(true);
    let virtual_addresses = read_virtual_addresses(p, t);
    let source = t
        .string(p, "source")
        .and_then(|at| parse_ip(p, &t.key("source"), &at));
    let mut unicast_peers = Vec::new();
    if let Some(list) = t.strings(p, "unicast_peers") {
        for at in &list {
            if let Some(ip) = parse_ip(p, &t.key("unicast_peers"), at) {
                if unicast_peers.contains(&ip) {
                    p.add(
                        &at.span,
                        t.key("unicast_peers"),
                        format!("{ip} is listed twice"),
                    );
                }
                unicast_peers.push(ip);
            }
        }
    }
    let check_unicast_source = t.bool(p, "check_unicast_source").unwrap_or(true);
    let accept_any_unicast_ttl = t.bool(p, "accept_any_unicast_ttl").unwrap_or(false);
    let auth_pass = t.string(p, "auth_pass");
    let authentication = match &auth_pass {
        None => Authentication::None,
        Some(at) if at.value.is_empty() => {
            p.add(&at.span, t.key("auth_pass"), "must not be empty");
            Authentication::None
        }
        Some(at) => {
            if version != Version::V2 {
                p.add(
                    &at.span,
                    t.key("auth_pass"),
                    "authentication exists only in VRRPv2 (RFC 5798 removed it); set version = 2 or remove it",
                );
            }
            Authentication::SimplePassword(havip_vrrp::Password::from_keepalived_auth_pass(
                &at.value,
            ))
        }
    };
    let v3_checksum_as_v2 = t.bool(p, "v3_checksum_as_v2").unwrap_or(false);
    let mut announce = AnnouncementConfig::default();
    if let Some(mut at) = t.table(p, "announce", keys::ANNOUNCE.keys) {
        read_announce(p, &mut at, &mut announce);
        at.finish(p);
    }
    let mut notify = NotifySettings::default();
    if let Some(mut nt) = t.table(p, "notify", keys::NOTIFY.keys) {
        notify = read_notify(p, &mut nt);
        nt.finish(p);
    }
    let track = read_track_refs(p, t, trackers);

    let settings = VrrpSettings {
        name,
        interface,
        vrid,
        version,
        priority,
        advert_interval,
        preempt,
        preempt_delay,
        accept,
        virtual_addresses,
        source,
        unicast_peers,
        check_unicast_source,
        accept_any_unicast_ttl,
        authentication,
        v3_checksum_as_v2,
        announce,
        notify,
        track,
    };
    if p.list.len() != before {
        return None;
    }
    // The protocol's own rules (families, v2 over IPv6, peers) with a stand-in primary address
    // of the right family when the real one is only known at start.
    let primary = settings.source.unwrap_or(match settings.family() {
        AddressFamily::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    if let Err(e) = settings.protocol_config(primary).validate() {
        p.add(&t.span(), t.path_key(), e.to_string());
        return None;
    }
    if let Some(source) = settings.source {
        if AddressFamily::of(&source) != settings.family() {
            p.add(
                &t.span(),
                t.key("source"),
                format!("{source} is not the family of the virtual addresses"),
            );
            return None;
        }
    }
    Some(settings)
}

/// A VRRP interval from a duration: whole seconds for v2 (RFC 3768 5.3.7), centiseconds
/// 1..=4095 for v3 (RFC 5798 5.2.7).
fn interval_from_duration(d: Duration, version: Version) -> Result<AdvertInterval, String> {
    let nanos = d.as_nanos();
    match version {
        Version::V2 => {
            if nanos % 1_000_000_000 != 0 || d.is_zero() || d.as_secs() > 255 {
                return Err("VRRPv2 carries whole seconds from 1s to 255s".into());
            }
            AdvertInterval::from_seconds(d.as_secs() as u8)
                .ok_or_else(|| "must be at least 1s".into())
        }
        Version::V3 => {
            if nanos % 10_000_000 != 0 {
                return Err("VRRPv3 carries centiseconds: use a multiple of 10ms".into());
            }
            let cs = nanos / 10_000_000;
            if cs == 0 || cs > u128::from(AdvertInterval::MAX_V3_CENTISECONDS) {
                return Err("VRRPv3 intervals run from 10ms to 40.95s".into());
            }
            AdvertInterval::from_centiseconds(cs as u16).ok_or_else(|| "must not be 0".into())
        }
    }
}

fn read_virtual_addresses(p: &mut Problems, t: &mut TableReader<'_, '_>) -> Vec<VirtualAddress> {
    let key = t.key("virtual_addresses");
    let Some(items) = t.array(p, "virtual_addresses") else {
        if !t.has("virtual_addresses") {
            p.add(
                &t.span(),
                key,
                "missing: the floating address(es), e.g. virtual_addresses = [\"192.0.2.10/24\"]",
            );
        }
        return Vec::new();
    };
    let mut out: Vec<VirtualAddress> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let parsed = match item.get_ref() {
            toml::de::DeValue::String(s) => {
                parse_cidr(s).map(|(address, prefix_len)| VirtualAddress {
                    address,
                    prefix_len,
                    interface: None,
                    label: None,
                })
            }
            toml::de::DeValue::Table(table) => {
                let mut vt = TableReader::new(
                    item_key.clone(),
                    table,
                    item.span(),
                    keys::VIRTUAL_ADDRESS.keys,
                );
                let address = vt.string(p, "address");
                let interface = vt.string(p, "interface");
                if let Some(at) = &interface {
                    check_interface_name(p, &vt, "interface", at);
                }
                let label = vt.string(p, "label");
                vt.finish(p);
                match address {
                    None => Err("missing: address".to_string()),
                    Some(at) => parse_cidr(&at.value).map(|(address, prefix_len)| VirtualAddress {
                        address,
                        prefix_len,
                        interface: interface.map(|i| i.value),
                        label: label.map(|l| l.value),
                    }),
                }
            }
            other => Err(format!(
                "expected \"ADDRESS/PREFIX\" or a table, found {}",
                other.type_str()
            )),
        };
        match parsed {
            Ok(vip) => {
                if let Some(label) = &vip.label {
                    let device = vip.interface.clone().unwrap_or_default();
                    if vip.address.is_ipv6() {
                        p.add(
                            &item.span(),
                            &item_key,
                            "labels exist for IPv4 addresses only",
                        );
                    } else if label.len() > 15
                        || (!device.is_empty() && !label.starts_with(&device))
                    {
                        p.add(
                            &item.span(),
                            &item_key,
                            "a label must start with the interface name and be at most 15 bytes (a kernel rule)",
                        );
                    }
                }
                if vip.address.is_unspecified()
                    || vip.address.is_multicast()
                    || vip.address.is_loopback()
                {
                    p.add(
                        &item.span(),
                        &item_key,
                        format!("{} cannot be a virtual address", vip.address),
                    );
                }
                if let Some(first) = out.first() {
                    if first.address.is_ipv4() != vip.address.is_ipv4() {
                        let (this, other) = if vip.address.is_ipv4() {
                            ("IPv4", "IPv6")
                        } else {
                            ("IPv6", "IPv4")
                        };
                        p.add(
                            &item.span(),
                            &item_key,
                            format!(
                                "{} is {this} but the first address is {other}: one instance carries one family (RFC 5798 7.3); add a second [[vrrp]] for the other",
                                vip.address
                            ),
                        );
                        continue;
                    }
                }
                if out.iter().any(|o| o.address == vip.address) {
                    p.add(
                        &item.span(),
                        &item_key,
                        format!("{} is listed twice", vip.address),
                    );
                }
                out.push(vip);
            }
            Err(message) => p.add(&item.span(), &item_key, message),
        }
    }
    if out.is_empty() && items.is_empty() {
        p.add(&t.span(), key, "must list at least one address");
    }
    // Labels that leave out the interface are checked against the instance's interface.
    if let Some(interface) = t.peek_string("interface") {
        for vip in &out {
            if let (Some(label), None) = (&vip.label, &vip.interface) {
                if !label.starts_with(&interface) {
                    p.add(
                        &t.span(),
                        t.key("virtual_addresses"),
                        format!(
                            "label {label:?} of {} must start with the interface name {interface:?} (a kernel rule)",
                            vip.address
                        ),
                    );
                }
            }
        }
    }
    out
}

/// `192.0.2.10/24`, `2001:db8::10/64`, or a bare address (/32 or /128, keepalived's default).
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let address: IpAddr = addr.parse().map_err(|_| {
        format!("{text:?} is not an IP address (write 192.0.2.10/24 or 2001:db8::10/64)")
    })?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("prefix length {p:?} is not 0-{max}")),
        },
    };
    Ok((address, prefix_len))
}

fn parse_ip(p: &mut Problems, key: &str, at: &At<String>) -> Option<IpAddr> {
    match at.value.trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            p.add(
                &at.span,
                key,
                format!("{:?} is not an IP address", at.value),
            );
            None
        }
    }
}

fn read_announce(p: &mut Problems, t: &mut TableReader<'_, '_>, a: &mut AnnouncementConfig) {
    let max = havip_vrrp::config::MAX_ANNOUNCEMENT_ROUNDS;
    if let Some(n) = t.u32(p, "burst_count", 0..=max) {
        a.burst_count = n;
    }
    if let Some(d) = t.duration(p, "burst_spacing") {
        a.burst_spacing = d.value;
    }
    if let Some(d) = t.duration(p, "second_burst_delay") {
        a.second_burst_delay = (!d.value.is_zero()).then_some(d.value);
    }
    if let Some(d) = t.duration(p, "refresh_interval") {
        a.refresh_interval = (!d.value.is_zero()).then_some(d.value);
    }
    if let Some(n) = t.u32(p, "refresh_count", 1..=max) {
        a.refresh_count = n;
    }
    if let Some(n) = t.u32(p, "lower_priority_burst_count", 0..=max) {
        a.lower_priority_burst_count = n;
    }
}

fn read_notify(p: &mut Problems, t: &mut TableReader<'_, '_>) -> NotifySettings {
    let shell = t.bool(p, "shell").unwrap_or(false);
    let mut n = NotifySettings {
        command: read_command(p, t, "command", shell),
        master: read_command(p, t, "master", shell),
        backup: read_command(p, t, "backup", shell),
        fault: read_command(p, t, "fault", shell),
        stop: read_command(p, t, "stop", shell),
        ..NotifySettings::default()
    };
    if let Some(d) = min_duration(p, t, "timeout", Duration::from_millis(10)) {
        n.timeout = d;
    }
    n.user = t.string(p, "user").map(|u| u.value);
    n
}

/// A command: a string (split into words, quotes honoured, unless `shell`), or an array.
/// With `shell` unknown yet (trackers), it is read from the table's `shell` key.
fn read_command(
    p: &mut Problems,
    t: &mut TableReader<'_, '_>,
    key: &str,
    shell: bool,
) -> Option<CommandSpec> {
    let shell = shell || (key == "command" && t.peek_bool("shell") == Some(true));
    if key == "command" {
        t.consume("shell");
    }
    let v = t.raw_value(key)?;
    let span = v.span();
    let spec = match v.get_ref() {
        toml::de::DeValue::String(s) if shell => Ok(CommandSpec::Shell(s.to_string())),
        toml::de::DeValue::String(s) => split_words(s).map(CommandSpec::Argv),
        toml::de::DeValue::Array(items) if !shell => {
            let mut argv = Vec::new();
            for item in items {
                match item.get_ref() {
                    toml::de::DeValue::String(s) => argv.push(s.to_string()),
                    _ => {
                        p.add(
                            &item.span(),
                            t.key(key),
                            "expected strings in the argument list",
                        );
                        return None;
                    }
                }
            }
            Ok(CommandSpec::Argv(argv))
        }
        toml::de::DeValue::Array(_) => {
            Err("with shell = true, give one command line as a string".to_string())
        }
        other => Err(format!(
            "expected a command line or an argument array, found {}",
            other.type_str()
        )),
    };
    match spec {
        Ok(CommandSpec::Argv(argv)) if argv.is_empty() || argv[0].is_empty() => {
            p.add(&span, t.key(key), "the command is empty");
            None
        }
        Ok(CommandSpec::Argv(argv)) if !argv[0].starts_with('/') => {
            p.add(
                &span,
                t.key(key),
                format!(
                    "{:?}: give the program's absolute path (no PATH lookup runs as root)",
                    argv[0]
                ),
            );
            None
        }
        Ok(spec) => Some(spec),
        Err(message) => {
            p.add(&span, t.key(key), message);
            None
        }
    }
}

/// Split a command line into words as a shell would for plain words and quotes (no
/// expansion): `'a b'`, `"a b"` and `a\ b` are one word.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => word.push(c),
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a trailing backslash escapes nothing".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn read_track_refs(
    p: &mut Problems,
    t: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Vec<TrackRef> {
    let key = t.key("track");
    let Some(items) = t.array(p, "track") else {
        return Vec::new();
    };
    let mut out: Vec<TrackRef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let reference = match item.get_ref() {
            toml::de::DeValue::String(s) => Some(TrackRef {
                tracker: s.to_string(),
                weight: None,
            }),
            toml::de::DeValue::Table(table) => {
                let mut rt =
                    TableReader::new(item_key.clone(), table, item.span(), keys::TRACK_REF.keys);
                let tracker = rt.string(p, "tracker");
                let weight = rt.int(p, "weight", -253..=253).map(|w| w.value as i32);
                rt.finish(p);
                match tracker {
                    Some(name) => Some(TrackRef {
                        tracker: name.value,
                        weight,
                    }),
                    None => {
                        p.add(
                            &item.span(),
                            &item_key,
                            "missing: tracker (the tracker's name)",
                        );
                        None
                    }
                }
            }
            other => {
                p.add(
                    &item.span(),
                    &item_key,
                    format!(
                        "expected a tracker name or {{ tracker = ..., weight = ... }}, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        };
        let Some(reference) = reference else { continue };
        if !trackers.iter().any(|tr| tr.name == reference.tracker) {
            let known: Vec<&str> = trackers.iter().map(|tr| tr.name.as_str()).collect();
            p.add(
                &item.span(),
                &item_key,
                if known.is_empty() {
                    format!("no [[tracker]] is named {:?}", reference.tracker)
                } else {
                    format!(
                        "no [[tracker]] is named {:?} (defined: {})",
                        reference.tracker,
                        known.join(", ")
                    )
                },
            );
            continue;
        }
        if out.iter().any(|o| o.tracker == reference.tracker) {
            p.add(&item.span(), &item_key, "tracked twice");
            continue;
        }
        out.push(reference);
    }
    out
}

fn required_name(p: &mut Problems, t: &mut TableReader<'_, '_>, what: &str) -> String {
    match t.string(p, "name") {
        Some(At { value, span }) => {
            if !valid_name(&value) {
                p.add(
                    &span,
                    t.key("name"),
                    "use letters, digits, '-', '_' and '.' only (it names metrics and logs)",
                );
            }
            value
        }
        None => {
            p.add(
                &t.span(),
                t.key("name"),
                format!("missing: every {what} needs a name"),
            );
            String::new()
        }
    }
}

/// Linux interface names: 1-15 bytes, no '/', ':' or whitespace.
fn check_interface_name(p: &mut Problems, t: &TableReader<'_, '_>, key: &str, at: &At<String>) {
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

fn min_duration(
    p: &mut Problems,
    t: &mut TableReader<'_, '_>,
    key: &str,
    min: Duration,
) -> Option<Duration> {
    let d = t.duration(p, key)?;
    if d.value < min {
        p.add(&d.span, t.key(key), format!("must be at least {min:?}"));
        return None;
    }
    Some(d.value)
}
