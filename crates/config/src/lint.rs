//! Traps seen in the field: settings that are valid but will not do what their author
//! thinks. `havip check` prints them as warnings (and fails with `--strict`), for a havip
//! config and, through the importer, for keepalived / HAProxy / nginx files.
//!
//! The checks run on [`Facts`]: the few values they need, each with the place it was
//! written (a TOML key, or a line of a foreign file). [`facts`] gathers them from a havip
//! config as the reader typed it and the places it recorded; the importer gathers them from
//! what it imported, so a warning about an imported value names the keepalived or haproxy
//! line it came from. Traps that exist only in a foreign format (keepalived's `state MASTER` with `nopreempt`, HAProxy's SSLv3 hello
//! check) and the checks across several nodes are reported by the importer itself.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use havip_vrrp::Version;

use crate::address::in_subnet;
use crate::bgp::BgpSettings;
use crate::duration::fmt_duration;
use crate::place::{At, Place, Places};
use crate::service::{defaults, CheckKind, ServiceSpec};
use crate::vrrp::VrrpSettings;
use crate::Config;

/// One warning, printed as `file:line:col: key: warning: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the setting was written.
    pub place: Place,
    /// What it will do, and what to write instead.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.place, self.message)
    }
}

/// What the checks of one service need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    /// The service's name.
    pub name: String,
    /// Where the service is defined.
    pub place: Place,
    /// Ports it listens on and ports of its backends.
    pub ports: Vec<u16>,
    /// The client idle timeout, when written.
    pub client_idle: Option<At<Duration>>,
    /// The server idle timeout, when written.
    pub server_idle: Option<At<Duration>>,
    /// None: the default (1h); `Some(None)`: "off".
    pub tunnel: Option<At<Option<Duration>>>,
    /// The check kind when it is an HTTP(S) check, with its path.
    pub http_path: Option<At<String>>,
}

/// What the checks of one VRRP instance need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpFacts {
    /// The instance's name.
    pub name: String,
    /// Where the instance is defined.
    pub place: Place,
    /// The interface it runs on.
    pub interface: Option<At<String>>,
    /// The virtual router id.
    pub vrid: Option<At<u8>>,
    /// The VRRP version, 2 or 3.
    pub version: u8,
    /// The advert interval, when written.
    pub advert: Option<At<Duration>>,
    /// The password as written (before VRRPv2 cuts it to 8 bytes).
    pub auth_pass: Option<At<String>>,
    /// The unicast peer list, when written (possibly empty).
    pub unicast_peers: Option<At<Vec<IpAddr>>>,
    /// This node's source address, when written.
    pub source: Option<At<IpAddr>>,
    /// Address, prefix length, and the interface it goes on when not the instance's.
    pub vips: Vec<At<(IpAddr, u8, Option<String>)>>,
}

/// What the checks of one `[[bgp]]` announcement need (havip configs only: nothing is
/// imported into one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpFacts {
    /// The announcement's name.
    pub name: String,
    /// Where it is defined.
    pub place: Place,
    /// Whether it follows any tracker.
    pub tracks: bool,
    /// The shutdown delay, when written.
    pub shutdown_delay: Option<At<Duration>>,
    /// The VIPs on which no service listens (neither on the VIP nor on the wildcard address).
    pub unserved: Vec<At<IpAddr>>,
    /// IPv6 VIPs announced through FRR, whose `ip import-table` takes IPv4 only (8.4).
    pub frr_v6: Vec<At<IpAddr>>,
}

/// What the checks of one config need: from a havip config ([`facts`]) or an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// One per service.
    pub services: Vec<ServiceFacts>,
    /// One per VRRP instance.
    pub vrrp: Vec<VrrpFacts>,
    /// One per BGP announcement.
    pub bgp: Vec<BgpFacts>,
}

/// The addresses of this machine's interfaces, when they can be known. The config crate only
/// reads files: the node implements this over netlink (`havip_node::load::LocalInterfaces`).
pub trait Interfaces {
    /// Addresses with prefix lengths, primary first; None when unknown (no such interface
    /// here, or no way to ask).
    fn addresses(&self, interface: &str) -> Option<Vec<(IpAddr, u8)>>;
}

/// Knows nothing: for imports made away from the node.
pub struct NoInterfaces;

impl Interfaces for NoInterfaces {
    fn addresses(&self, _: &str) -> Option<Vec<(IpAddr, u8)>> {
        None
    }
}

/// Ports where a kube-apiserver (6443) or the RKE2 supervisor (9345) answers.
const APISERVER_PORTS: &[u16] = &[6443, 9345];
/// Shorter idle timeouts cut quiet watches.
const MIN_IDLE: Duration = Duration::from_secs(300);

/// Run every check.
pub fn lint(facts: &Facts, interfaces: &dyn Interfaces) -> Vec<Warning> {
    let mut out = Vec::new();
    for s in &facts.services {
        lint_service(s, &mut out);
    }
    for v in &facts.vrrp {
        lint_vrrp(v, interfaces, &mut out);
    }
    for b in &facts.bgp {
        lint_bgp(b, &mut out);
    }
    out
}

fn lint_bgp(b: &BgpFacts, out: &mut Vec<Warning>) {
    if !b.tracks {
        warn(
            out,
            &b.place,
            "no `track`: the VIP stays announced as long as havip runs, also while the balancer has no backend to send clients to; track a `service` tracker".into(),
        );
    }
    if let Some(d) = b.shutdown_delay.as_ref().filter(|d| d.value.is_zero()) {
        warn(
            out,
            &d.place,
            "shutdown delay of 0: SIGTERM stops accepting as the withdrawal leaves, and clients the routers still send here before they converge are refused".into(),
        );
    }
    for vip in &b.frr_v6 {
        warn(
            out,
            &vip.place,
            format!(
                "{} is IPv6: FRR's `ip import-table` imports IPv4 routes only (FRR 8.4, Debian 12), so FRR will not announce it; use daemon = \"bird\" for IPv6 VIPs, or an FRR that imports IPv6 tables",
                vip.value
            ),
        );
    }
    for vip in &b.unserved {
        warn(
            out,
            &vip.place,
            format!(
                "no [[service]] listens on {} (nor on the wildcard address): the routers send clients here and they are refused",
                vip.value
            ),
        );
    }
}

fn warn(out: &mut Vec<Warning>, place: &Place, message: String) {
    let w = Warning {
        place: place.clone(),
        message,
    };
    if !out.contains(&w) {
        out.push(w);
    }
}

fn lint_service(s: &ServiceFacts, out: &mut Vec<Warning>) {
    let api: Vec<u16> = s
        .ports
        .iter()
        .copied()
        .filter(|p| APISERVER_PORTS.contains(p))
        .collect();
    if let Some(&port) = api.first() {
        // With the tunnel timeout on, it governs established connections; off, the client
        // and server idle timeouts do.
        let shortest: Option<(Duration, &Place)> = match &s.tunnel {
            Some(At {
                value: Some(t),
                place,
            }) => Some((*t, place)),
            None => None,
            Some(At { value: None, .. }) => {
                let mut candidates: Vec<(Duration, &Place)> = Vec::new();
                for t in [&s.client_idle, &s.server_idle].into_iter().flatten() {
                    candidates.push((t.value, &t.place));
                }
                candidates.into_iter().min_by_key(|(d, _)| *d)
            }
        };
        if let Some((d, place)) = shortest {
            if d < MIN_IDLE {
                warn(
                    out,
                    place,
                    format!(
                        "idle timeout of {} in front of an apiserver port ({port}): watches and `kubectl logs -f` that stay quiet longer are cut; use at least {} (havip's default is {})",
                        fmt_duration(d),
                        fmt_duration(MIN_IDLE),
                        fmt_duration(defaults::TUNNEL)
                    ),
                );
            }
        }
    }
    if let Some(p) = &s.http_path {
        let path = p.value.split('?').next().unwrap_or("");
        if path == "/healthz" || path.starts_with("/healthz/") {
            warn(
                out,
                &p.place,
                "HTTP check on /healthz, which is deprecated: /readyz is the load-balancer signal (it fails during --shutdown-delay-duration, so the balancer stops sending in time)".into(),
            );
        }
    }
}

fn lint_vrrp(v: &VrrpFacts, interfaces: &dyn Interfaces, out: &mut Vec<Warning>) {
    if let Some(id) = v.vrid.as_ref().filter(|id| id.value == 51) {
        warn(
            out,
            &id.place,
            "VRID 51 is everyone's default (keepalived's sample config): two clusters that copied the same guide collide on one segment; pick a VRID unique on this network".into(),
        );
    }
    if let Some(p) = &v.auth_pass {
        if v.version == 2 && p.value.len() > 8 {
            warn(
                out,
                &p.place,
                format!(
                    "the password is {} bytes but VRRPv2 carries 8: only the first 8 are used (keepalived truncates it too), so nodes whose passwords differ later still accept each other",
                    p.value.len()
                ),
            );
        }
    }
    if let Some(peers) = v.unicast_peers.as_ref().filter(|p| p.value.is_empty()) {
        warn(
            out,
            &peers.place,
            "unicast peer list with no peers: the instance uses multicast (keepalived before 2.2.4 did so silently); list the peers, or remove it to use multicast on purpose".into(),
        );
    }
    if let Some(a) = &v.advert {
        if v.version == 2 && a.value < Duration::from_secs(1) {
            warn(
                out,
                &a.place,
                format!(
                    "advert interval {} with VRRPv2, which carries whole seconds: use version 3 for sub-second adverts",
                    fmt_duration(a.value)
                ),
            );
        }
    }
    let iface = v.interface.as_ref().map(|i| i.value.as_str());
    for vip in &v.vips {
        let on = vip.value.2.as_deref().or(iface);
        let local = on.and_then(|i| interfaces.addresses(i).map(|addrs| (i, addrs)));
        lint_vip_is_a_node_address(v, vip, local.as_ref(), out);
        lint_vip_subnet(v, vip, local.as_ref(), out);
    }
}

type Vip = At<(IpAddr, u8, Option<String>)>;

/// A VIP that is a node's own address: this node's source, a peer, or the primary address of
/// the interface here.
fn lint_vip_is_a_node_address(
    v: &VrrpFacts,
    vip: &Vip,
    local: Option<&(&str, Vec<(IpAddr, u8)>)>,
    out: &mut Vec<Warning>,
) {
    let addr = &vip.value.0;
    if let Some(src) = v.source.as_ref().filter(|s| s.value == *addr) {
        warn(
            out,
            &vip.place,
            format!(
                "VIP {addr} is this node's own source address ({}:{}): the node that owns it cannot release it, and failover breaks",
                src.place.file, src.place.line
            ),
        );
    }
    if v.unicast_peers
        .as_ref()
        .is_some_and(|p| p.value.contains(addr))
    {
        warn(
            out,
            &vip.place,
            format!("VIP {addr} is also a unicast peer, another node's own address"),
        );
    }
    if let Some((on, addrs)) = local {
        let primary = addrs.iter().find(|(a, _)| a.is_ipv4() == addr.is_ipv4());
        if primary.is_some_and(|(a, _)| a == addr) {
            warn(
                out,
                &vip.place,
                format!(
                    "VIP {addr} is the primary address of {on} on this machine: a node address cannot float"
                ),
            );
        }
    }
}

/// A VIP outside the interface's subnet: hosts on the segment do not ARP for it. With a
/// prefix it is compared with the source address; otherwise with the interface here.
fn lint_vip_subnet(
    v: &VrrpFacts,
    vip: &Vip,
    local: Option<&(&str, Vec<(IpAddr, u8)>)>,
    out: &mut Vec<Warning>,
) {
    let (addr, prefix, _) = &vip.value;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if let Some(src) = &v.source {
        if *prefix < max
            && src.value.is_ipv4() == addr.is_ipv4()
            && !in_subnet(src.value, *addr, *prefix)
        {
            warn(
                out,
                &vip.place,
                format!(
                    "VIP {addr}/{prefix} and the source address {} are in different subnets: check the prefix length and the interface",
                    src.value
                ),
            );
            return;
        }
    }
    let Some((on, addrs)) = local else {
        return;
    };
    let same_family: Vec<&(IpAddr, u8)> = addrs
        .iter()
        .filter(|(a, _)| a.is_ipv4() == addr.is_ipv4())
        .filter(|(a, _)| !(a.is_ipv6() && is_link_local(a)))
        .filter(|(a, _)| a != addr)
        .collect();
    if !same_family.is_empty()
        && !same_family
            .iter()
            .any(|(net, len)| *len < max && in_subnet(*addr, *net, *len))
    {
        let list: Vec<String> = same_family
            .iter()
            .map(|(a, l)| format!("{a}/{l}"))
            .collect();
        warn(
            out,
            &vip.place,
            format!(
                "VIP {addr} is in none of the subnets of {on} on this machine ({}): hosts on that segment will not reach it",
                list.join(", ")
            ),
        );
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(v4) => v4.is_link_local(),
    }
}

// ---------------------------------------------------------------------------------------
// Facts from a havip config

/// The facts of a havip config as the reader read it, each placed where the reader saw it.
/// A value left at its default has no place and is not a fact: a default is never a trap.
pub fn facts(config: &Config, places: &Places) -> Facts {
    Facts {
        services: config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| service_facts(s, &format!("service[{i}]"), places))
            .collect(),
        vrrp: config
            .vrrp
            .iter()
            .enumerate()
            .map(|(i, v)| vrrp_facts(v, &format!("vrrp[{i}]"), places))
            .collect(),
        bgp: config
            .bgp
            .iter()
            .enumerate()
            .map(|(i, b)| bgp_facts(config, b, &format!("bgp[{i}]"), places))
            .collect(),
    }
}

fn bgp_facts(config: &Config, b: &BgpSettings, key: &str, places: &Places) -> BgpFacts {
    let served = |vip: &IpAddr| {
        config.services.iter().any(|s| {
            s.listen.iter().any(|listen| {
                listen.ip() == *vip
                    || (listen.ip().is_unspecified() && listen.ip().is_ipv4() == vip.is_ipv4())
            })
        })
    };
    BgpFacts {
        name: b.name.clone(),
        place: table_place(places, key),
        tracks: !b.track.is_empty(),
        shutdown_delay: places.at(&format!("{key}.shutdown_delay"), b.shutdown_delay),
        unserved: b
            .virtual_addresses
            .iter()
            .enumerate()
            .filter(|(_, vip)| !served(vip))
            .filter_map(|(j, vip)| places.at(&format!("{key}.virtual_addresses[{j}]"), *vip))
            .collect(),
        frr_v6: match b.daemon {
            crate::bgp::RoutingDaemon::Frr { .. } => b
                .virtual_addresses
                .iter()
                .enumerate()
                .filter(|(_, vip)| vip.is_ipv6())
                .filter_map(|(j, vip)| places.at(&format!("{key}.virtual_addresses[{j}]"), *vip))
                .collect(),
            crate::bgp::RoutingDaemon::Bird => Vec::new(),
        },
    }
}

/// Where the table at `key` was written; a config built in code has no places, and its
/// facts point at line 0 of no file.
fn table_place(places: &Places, key: &str) -> Place {
    places
        .get(key)
        .cloned()
        .unwrap_or_else(|| Place::new(&Arc::from(""), 0, 0, key))
}

fn service_facts(s: &ServiceSpec, key: &str, places: &Places) -> ServiceFacts {
    let mut ports: Vec<u16> = s.listen.iter().map(|a| a.port()).collect();
    ports.extend(s.backends.iter().map(|b| b.addr.port()));
    let timeout = |name: &str| format!("{key}.timeouts.{name}");
    let http_path = match &s.health.check {
        Some(CheckKind::Http(http)) => places.at(&format!("{key}.health.path"), http.path.clone()),
        _ => None,
    };
    ServiceFacts {
        name: s.name.clone(),
        place: table_place(places, key),
        ports,
        client_idle: places.at(&timeout("client_idle"), s.timeouts.client_idle),
        server_idle: places.at(&timeout("server_idle"), s.timeouts.server_idle),
        tunnel: places.at(&timeout("tunnel"), s.timeouts.tunnel),
        http_path,
    }
}

fn vrrp_facts(v: &VrrpSettings, key: &str, places: &Places) -> VrrpFacts {
    let at = |name: &str| format!("{key}.{name}");
    let vips = v
        .virtual_addresses
        .iter()
        .enumerate()
        .filter_map(|(j, a)| {
            places.at(
                &format!("{key}.virtual_addresses[{j}]"),
                (a.address, a.prefix_len, a.interface.clone()),
            )
        })
        .collect();
    // The settings keep the 8 bytes VRRPv2 carries; the trap is in what was written.
    let auth_pass = places
        .written(&at("auth_pass"))
        .and_then(|text| places.at(&at("auth_pass"), text.to_string()));
    VrrpFacts {
        name: v.name.clone(),
        place: table_place(places, key),
        interface: places.at(&at("interface"), v.interface.clone()),
        vrid: places.at(&at("vrid"), v.vrid),
        version: match v.version {
            Version::V2 => 2,
            Version::V3 => 3,
        },
        advert: places.at(&at("advert_interval"), v.advert_interval.as_duration()),
        auth_pass,
        unicast_peers: places.at(&at("unicast_peers"), v.unicast_peers.clone()),
        source: v.source.and_then(|s| places.at(&at("source"), s)),
        vips,
    }
}

#[cfg(test)]
mod tests;
