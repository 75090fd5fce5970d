//! Least privilege: which Linux capabilities a config needs, each tied to the setting that
//! needs it, checked against what this process holds.
//!
//! havip runs as an unprivileged user (the unit's `User=havip`, a container's non-root user)
//! holding only what its config asks for:
//!
//! | the config has | needs | because |
//! | --- | --- | --- |
//! | a `[[vrrp]]` instance | `CAP_NET_RAW` | adverts are sent and received on a raw IP socket (protocol 112), gratuitous ARP / NA on a packet socket |
//! | a `[[vrrp]]` instance | `CAP_NET_ADMIN` | the VIPs are added and removed over rtnetlink |
//! | a listener on a port below `net.ipv4.ip_unprivileged_port_start` (1024) | `CAP_NET_BIND_SERVICE` | binding a privileged port |
//! | a command with `user =` | `CAP_SETUID`, `CAP_SETGID` | switching the command to that user and its groups |
//!
//! A balancer on ports from 1024 up needs none. `havip run` checks once, before anything
//! starts, and refuses with one line per missing capability naming the setting; `havip check`
//! prints the same lines as warnings. Capabilities are per thread: the check reads the main
//! thread's effective set before the runtime's threads exist, and those threads inherit it.

use std::fmt;
use std::sync::Arc;

use caps::{CapSet, Capability, CapsHashSet};
use havip_config::lint::Warning;
use havip_config::place::{Place, Places};
use havip_config::vrrp::TrackerKind;
use havip_config::Config;

use crate::load::Loaded;

/// One capability the config needs, and the first setting that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The capability.
    pub capability: Capability,
    /// The first setting that needs it.
    pub place: Place,
    /// What havip does with it for that setting.
    pub why: String,
    /// Other settings that need it too (their keys).
    pub also: Vec<String>,
}

impl Need {
    /// The line `havip run` refuses with and `havip check` warns with, without the place.
    fn message(&self) -> String {
        let also = if self.also.is_empty() {
            String::new()
        } else {
            format!(" (also {})", self.also.join(", "))
        };
        format!(
            "needs {} to {}{also}, and this process does not have it; {}",
            self.capability,
            self.why,
            grant_hint(self.capability)
        )
    }
}

/// How to give havip a capability, in the ways it is deployed.
fn grant_hint(capability: Capability) -> String {
    let short = capability.to_string();
    let short = short.trim_start_matches("CAP_");
    format!(
        "grant it (systemd: AmbientCapabilities={capability}; a container: --cap-add {short}) \
         or run as root"
    )
}

/// `havip run` refuses to start: capabilities are missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingCapabilities {
    /// One line per missing capability: place, capability, setting and how to grant it.
    pub lines: Vec<String>,
}

impl fmt::Display for MissingCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "missing capabilities for this config (running as uid {}):",
            nix::unistd::geteuid()
        )?;
        f.write_str(&self.lines.join("\n"))
    }
}

impl std::error::Error for MissingCapabilities {}

/// The lowest port an unprivileged process may bind in this network namespace
/// (`net.ipv4.ip_unprivileged_port_start`, for IPv4 and IPv6 alike; 1024 unless changed).
pub fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

/// Collects needs, one entry per capability (the first setting; later ones in `also`).
struct Needs<'a> {
    places: &'a Places,
    file: Arc<str>,
    list: Vec<Need>,
}

impl Needs<'_> {
    fn add(&mut self, capability: Capability, key: &str, why: impl Into<String>) {
        if let Some(need) = self.list.iter_mut().find(|n| n.capability == capability) {
            need.also.push(key.to_string());
            return;
        }
        let place = self.place(key);
        self.list.push(Need {
            capability,
            place,
            why: why.into(),
            also: Vec::new(),
        });
    }

    /// Where `key` was written; else its nearest written parent, under `key`.
    fn place(&self, key: &str) -> Place {
        let mut parent = key;
        loop {
            if let Some(place) = self.places.get(parent) {
                return place.with_key(key);
            }
            match parent.rfind(['.', '[']) {
                Some(cut) => parent = &parent[..cut],
                None => return Place::new(&self.file, 1, 1, key),
            }
        }
    }
}

/// The capabilities `config` needs, each with the first setting that needs it. `port_start`
/// is [`unprivileged_port_start`]; `file` names the config where a key has no recorded place.
pub fn needs(config: &Config, places: &Places, file: &str, port_start: u16) -> Vec<Need> {
    let mut needs = Needs {
        places,
        file: file.into(),
        list: Vec::new(),
    };
    for (index, service) in config.services.iter().enumerate() {
        if let Some(low) = service
            .listen
            .iter()
            .map(|a| a.port())
            .filter(|&p| p < port_start)
            .min()
        {
            needs.add(
                Capability::CAP_NET_BIND_SERVICE,
                &format!("service[{index}].listen"),
                format!("listen on port {low} (below {port_start}, net.ipv4.ip_unprivileged_port_start)"),
            );
        }
    }
    if let Some(admin) = config
        .admin
        .as_ref()
        .filter(|a| a.listen.port() < port_start)
    {
        needs.add(
            Capability::CAP_NET_BIND_SERVICE,
            "admin.listen",
            format!(
                "listen on port {} (below {port_start})",
                admin.listen.port()
            ),
        );
    }
    for index in 0..config.vrrp.len() {
        let key = format!("vrrp[{index}]");
        needs.add(
            Capability::CAP_NET_RAW,
            &key,
            "send and receive VRRP adverts on a raw IP socket and announce the VIPs (ARP / NA)",
        );
        needs.add(
            Capability::CAP_NET_ADMIN,
            &key,
            "add and remove the virtual addresses (rtnetlink)",
        );
    }
    let notify_users = config
        .vrrp
        .iter()
        .enumerate()
        .filter_map(|(index, instance)| {
            instance
                .notify
                .user
                .as_ref()
                .map(|_| format!("vrrp[{index}].notify.user"))
        });
    let script_users = config
        .trackers
        .iter()
        .enumerate()
        .filter(|(_, tracker)| matches!(&tracker.kind, TrackerKind::Script { user: Some(_), .. }))
        .map(|(index, _)| format!("tracker[{index}].user"));
    for key in notify_users.chain(script_users).collect::<Vec<_>>() {
        needs.add(Capability::CAP_SETUID, &key, "run the command as that user");
        needs.add(
            Capability::CAP_SETGID,
            &key,
            "give the command that user's groups",
        );
    }
    needs.list
}

/// This thread's effective capabilities (the main thread's, when called before the runtime
/// starts). Unreadable: none, so every need is reported rather than assumed.
pub fn effective() -> CapsHashSet {
    caps::read(None, CapSet::Effective).unwrap_or_default()
}

/// The needs `held` does not cover.
pub fn missing(needs: Vec<Need>, held: &CapsHashSet) -> Vec<Need> {
    needs
        .into_iter()
        .filter(|need| !held.contains(&need.capability))
        .collect()
}

fn missing_for(loaded: &Loaded, file: &str) -> Vec<Need> {
    let needs = needs(
        &loaded.config,
        &loaded.places,
        file,
        unprivileged_port_start(),
    );
    missing(needs, &effective())
}

/// `havip run`: refuse to start when this process lacks a capability the config at `file`
/// needs; the error names each capability and the setting that needs it.
pub fn require(loaded: &Loaded, file: &str) -> Result<(), MissingCapabilities> {
    let missing = missing_for(loaded, file);
    if missing.is_empty() {
        return Ok(());
    }
    Err(MissingCapabilities {
        lines: missing
            .iter()
            .map(|need| format!("{}: {}", need.place, need.message()))
            .collect(),
    })
}

/// `havip check`: the same findings as [`require`], as warnings (the process that checks is
/// not always the one that runs).
pub fn warnings(loaded: &Loaded, file: &str) -> Vec<Warning> {
    missing_for(loaded, file)
        .into_iter()
        .map(|need| Warning {
            message: need.message(),
            place: need.place,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn loaded(text: &str) -> Loaded {
        crate::load::load_text(Path::new("havip.toml"), text).unwrap()
    }

    const BALANCER: &str = r#"[[service]]
name = "api"
listen = ["0.0.0.0:8443", "[::]:8443"]
[[service.backend]]
address = "10.0.0.1:6443"
"#;

    const VRRP: &str = r#"
[[tracker]]
name = "probe"
kind = "script"
command = "/bin/true"
user = "nobody"

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 52
virtual_addresses = ["10.0.0.100/24"]
track = ["probe"]

[vrrp.notify]
master = "/bin/true"
user = "nobody"

[[vrrp]]
name = "VI_2"
interface = "eth0"
vrid = 53
virtual_addresses = ["10.0.0.101/24"]
"#;

    fn summary(needs: &[Need]) -> Vec<String> {
        needs
            .iter()
            .map(|n| format!("{} {} {:?}", n.capability, n.place, n.also))
            .collect()
    }

    #[test]
    fn a_balancer_on_high_ports_needs_nothing() {
        let l = loaded(BALANCER);
        assert!(needs(&l.config, &l.places, "havip.toml", 1024).is_empty());
    }

    #[test]
    fn low_ports_need_bind_service_unless_the_namespace_allows_them() {
        let text = BALANCER.replace("0.0.0.0:8443", "0.0.0.0:443")
            + "[admin]\nlisten = \"127.0.0.1:80\"\n";
        let l = loaded(&text);
        let got = needs(&l.config, &l.places, "havip.toml", 1024);
        assert_eq!(
            summary(&got),
            ["CAP_NET_BIND_SERVICE havip.toml:3:10: service[0].listen [\"admin.listen\"]"]
        );
        assert!(got[0].why.contains("port 443"), "{:?}", got[0]);
        // net.ipv4.ip_unprivileged_port_start = 0 (as some container runtimes set it).
        assert!(needs(&l.config, &l.places, "havip.toml", 0).is_empty());
    }

    #[test]
    fn vrrp_needs_raw_and_admin_and_users_need_setuid_and_setgid() {
        let l = loaded(&format!("{BALANCER}{VRRP}"));
        let got = needs(&l.config, &l.places, "havip.toml", 1024);
        assert_eq!(
            summary(&got),
            [
                "CAP_NET_RAW havip.toml:13:1: vrrp[0] [\"vrrp[1]\"]",
                "CAP_NET_ADMIN havip.toml:13:1: vrrp[0] [\"vrrp[1]\"]",
                "CAP_SETUID havip.toml:22:8: vrrp[0].notify.user [\"tracker[0].user\"]",
                "CAP_SETGID havip.toml:22:8: vrrp[0].notify.user [\"tracker[0].user\"]",
            ]
        );
    }

    #[test]
    fn only_what_is_not_held_is_missing_and_the_message_says_how_to_grant_it() {
        let l = loaded(&format!("{BALANCER}{VRRP}"));
        let all = needs(&l.config, &l.places, "havip.toml", 1024);
        let held: CapsHashSet = [
            Capability::CAP_NET_ADMIN,
            Capability::CAP_SETUID,
            Capability::CAP_SETGID,
        ]
        .into_iter()
        .collect();
        let missing = missing(all, &held);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].capability, Capability::CAP_NET_RAW);
        let message = missing[0].message();
        assert!(
            message.starts_with("needs CAP_NET_RAW to send and receive VRRP adverts"),
            "{message}"
        );
        assert!(message.contains("(also vrrp[1])"), "{message}");
        assert!(
            message.contains("AmbientCapabilities=CAP_NET_RAW; a container: --cap-add NET_RAW"),
            "{message}"
        );
    }
}
