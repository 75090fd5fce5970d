//! One `vrrp_instance` as a `[[vrrp]]` table: each keyword onto the instance (one handler
//! per family), then what keepalived decides from several keywords together (the version,
//! the owner's priority, v2's whole-second adverts, authentication, what `state MASTER`
//! silently turns off), and the traps worth a warning.

use std::net::IpAddr;
use std::time::Duration;

use havip_config::place::Place;

use super::address::{unicast_peers, virtual_addresses};
use super::global::{garp_setting, Globals};
use super::value::{number, script_argv, seconds};
use crate::model::{Announce, Sourced, Vrrp};
use crate::syntax::Directive;
use crate::Report;

/// An instance being read: the table, and what later keywords or the end decide on.
struct Instance<'g> {
    vrrp: Vrrp,
    /// `vrrp_instance NAME`.
    head: Place,
    globals: &'g Globals,
    /// The global announcements with the instance's `garp_*` over them.
    announce: Announce,
    gna: Option<Sourced<Duration>>,
    nopreempt: Option<Place>,
    preempt_delay: Option<Place>,
    auth_type: Option<(String, Place)>,
    advert: Option<(Duration, Place)>,
    version: Option<Sourced<u8>>,
    priority_set: bool,
    /// The user after each notify command.
    notify_users: Vec<(String, Place)>,
}

/// The instance `block` (`vrrp_instance NAME { ... }`); None without a name (reported).
pub fn instance(block: &Directive, globals: &Globals, report: &mut Report) -> Option<Vrrp> {
    let Some(name) = block.arg(0) else {
        report.error(
            &block.place_as("vrrp_instance"),
            "missing the instance's name",
        );
        return None;
    };
    let head = block.place_as(format!("vrrp_instance {name}"));
    let mut instance = Instance {
        vrrp: Vrrp::new(Sourced::new(name.to_string(), &head), head.clone()),
        head,
        globals,
        announce: globals.announce.clone(),
        gna: globals.gna_interval.clone(),
        nopreempt: None,
        preempt_delay: None,
        auth_type: None,
        advert: None,
        version: None,
        priority_set: false,
        notify_users: Vec::new(),
    };
    for directive in block.children() {
        instance.keyword(directive, report);
    }
    Some(instance.finish(block, report))
}

/// Keywords with nothing to carry, and why.
const SKIPPED: &[(&[&str], &str)] = &[
    (&["track_bfd"], "BFD is not supported"),
    (
        &[
            "notify_master_rx_lower_pri",
            "notify_deleted",
            "notify_priority_changes",
        ],
        "havip notifies on MASTER, BACKUP, FAULT and STOP only",
    ),
    (
        &["smtp_alert"],
        "email alerts are not supported; use [vrrp.notify]",
    ),
    (
        &["dont_track_primary"],
        "havip always watches the instance's interface (down means Fault)",
    ),
    (
        &["use_vmac", "vmac_xmit_base", "use_vmac_addr", "use_ipvlan"],
        "virtual MAC interfaces are not supported; announcements use the interface's MAC",
    ),
    (
        &["native_ipv6"],
        "deprecated: the addresses decide the family",
    ),
    (&["strict_mode"], "no strict mode in havip"),
    (
        &["skip_check_adv_addr"],
        "a keepalived optimisation; nothing to carry",
    ),
    (
        &["virtual_routes", "virtual_rules"],
        "routes and rules are not managed by havip; add them from a notify command",
    ),
    (
        &["mcast_dst_ip"],
        "havip uses the standard VRRP multicast groups",
    ),
    (
        &["unicast_ttl"],
        "havip sends with TTL 255, as the RFC requires",
    ),
    (
        &["unicast_fault_no_peer"],
        "no equivalent; an empty peer list is reported by havip check",
    ),
    (
        &["old_unicast_checksum"],
        "old keepalived checksum variant; see v3_checksum_as_v2 for the v3 checksum",
    ),
    (
        &[
            "debug",
            "kernel_rx_buf_size",
            "linkbeat_use_polling",
            "vrf",
            "track_src_ip",
            "down_timer_adverts",
            "lower_prio_no_advert",
            "higher_prio_send_advert",
            "promote_secondaries",
            "lvs_sync_daemon_interface",
            "sync_group_tracking_weight",
        ],
        "no havip equivalent",
    ),
];

impl Instance<'_> {
    fn keyword(&mut self, directive: &Directive, report: &mut Report) {
        let keyword = directive.name();
        if let Some(garp) = keyword.strip_prefix("garp_") {
            if garp_setting(directive, garp, &mut self.announce, &mut self.gna, report) {
                return;
            }
        }
        let place = directive.place();
        let value_place = directive.arg_place(0);
        let vrrp = &mut self.vrrp;
        match keyword {
            "state" => self.state(directive, report),
            "interface" => {
                vrrp.interface = directive
                    .arg(0)
                    .map(|i| Sourced::new(i.to_string(), &value_place))
            }
            "virtual_router_id" => match number::<u16>(directive, 0, report) {
                Some(id @ 1..=255) => vrrp.vrid = Some(Sourced::new(id as u8, &value_place)),
                Some(_) => report.error(&place, "must be 1 to 255"),
                None => {}
            },
            "priority" => match number::<u16>(directive, 0, report) {
                Some(p @ 1..=255) => {
                    vrrp.priority = Some(Sourced::new(p as u8, &value_place));
                    self.priority_set = true;
                }
                Some(_) => report.error(&place, "must be 1 to 255"),
                None => {}
            },
            "advert_int" => {
                if let Some(d) = seconds(directive, 0, report) {
                    self.advert = Some((d, value_place));
                }
            }
            "version" => match number::<u8>(directive, 0, report) {
                // keepalived ignores version 2 once the instance has an IPv6 address.
                Some(2) if vrrp.virtual_addresses.iter().any(|a| a.value.address.is_ipv6()) => report
                    .skip(
                        &place,
                        "keepalived ignores version 2 after an IPv6 address (it logs that it conflicts) and uses 3",
                    ),
                Some(x @ (2 | 3)) => self.version = Some(Sourced::new(x, &value_place)),
                Some(_) => report.error(&place, "must be 2 or 3"),
                None => {}
            },
            "authentication" => self.authentication(directive, report),
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                virtual_addresses(directive, vrrp, report)
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                match directive.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) {
                    Some(ip) => vrrp.source = Some(Sourced::new(ip, &value_place)),
                    None => report.error(&place, "expected an IP address"),
                }
            }
            "unicast_peer" => unicast_peers(directive, vrrp, report),
            "check_unicast_src" => vrrp.check_unicast_source = Some(Sourced::new(true, &place)),
            "nopreempt" | "no_preempt" => {
                vrrp.preempt = Some(Sourced::new(false, &place));
                self.nopreempt = Some(place);
            }
            "preempt" => vrrp.preempt = Some(Sourced::new(true, &place)),
            "preempt_delay" => {
                if let Some(d) = seconds(directive, 0, report) {
                    vrrp.preempt_delay = Some(Sourced::new(d, &value_place));
                    self.preempt_delay = Some(place);
                }
            }
            "accept" => vrrp.accept = Some(Sourced::new(true, &place)),
            "no_accept" => vrrp.accept = Some(Sourced::new(false, &place)),
            // Resolved after the instance, with the definitions they name.
            "track_script" | "track_interface" | "track_file" | "track_process" => {}
            "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                self.notify(directive, report)
            }
            _ => {
                let reason = SKIPPED
                    .iter()
                    .find(|(names, _)| names.contains(&keyword))
                    .map_or("not supported by the importer", |(_, r)| r);
                report.skip(&place, reason);
            }
        }
    }

    /// `state MASTER|BACKUP`: havip has no initial state; MASTER is kept for its traps.
    fn state(&mut self, directive: &Directive, report: &mut Report) {
        match directive.arg(0) {
            Some("MASTER") => {
                self.vrrp.initial_master = Some(directive.place());
                report.skip(
                    &directive.place_as("state MASTER"),
                    "havip has no initial state: every node starts as backup and the highest priority wins the election",
                );
            }
            Some("BACKUP") | Some("EQUAL") => {}
            other => report.error(
                &directive.place(),
                format!("{:?}: expected MASTER or BACKUP", other.unwrap_or("")),
            ),
        }
    }

    /// `authentication { auth_type PASS|AH auth_pass SECRET }`.
    fn authentication(&mut self, block: &Directive, report: &mut Report) {
        for directive in block.children() {
            match directive.name() {
                "auth_type" => {
                    self.auth_type = directive
                        .arg(0)
                        .map(|t| (t.to_string(), directive.arg_place(0)))
                }
                "auth_pass" => {
                    self.vrrp.auth_pass = directive
                        .arg(0)
                        .map(|p| Sourced::new(p.to_string(), &directive.arg_place(0)))
                }
                _ => report.skip(&directive.place(), "not supported by the importer"),
            }
        }
    }

    /// `notify COMMAND [USER]`, `notify_master ...`: keepalived runs the first word (a quoted
    /// command line); havip appends other arguments to `notify`.
    fn notify(&mut self, directive: &Directive, report: &mut Report) {
        let keyword = directive.name();
        let Some(first) = directive.args.first() else {
            report.error(&directive.place(), "missing the command");
            return;
        };
        let Some(argv) = script_argv(std::slice::from_ref(first), report) else {
            return;
        };
        if let Some(user) = directive.arg(1) {
            self.notify_users
                .push((user.to_string(), directive.arg_place(1)));
        }
        let place = directive.arg_place(0);
        let value = if keyword == "notify" {
            report.skip(
                &directive.place(),
                "keepalived appends INSTANCE <name> <state> <priority>; havip appends <instance> <old state> <new state>: adapt the script",
            );
            Sourced::noted(argv, &place, "havip appends <instance> <old> <new>")
        } else {
            Sourced::new(argv, &place)
        };
        let notify = &mut self.vrrp.notify;
        match keyword {
            "notify" => notify.command = Some(value),
            "notify_master" => notify.master = Some(value),
            "notify_backup" => notify.backup = Some(value),
            "notify_fault" => notify.fault = Some(value),
            _ => notify.stop = Some(value),
        }
    }

    /// What keepalived decides from the whole instance.
    fn finish(mut self, block: &Directive, report: &mut Report) -> Vrrp {
        let v6 = self
            .vrrp
            .virtual_addresses
            .first()
            .is_some_and(|a| a.value.address.is_ipv6());
        let version = self.version(v6);
        self.owner_priority(report);
        self.advert_interval(version, report);
        self.check_authentication(version, report);
        self.master_traps(report);
        // keepalived's NA spacing for IPv6 instances.
        if v6 {
            if let Some(gna) = self.gna.take() {
                self.announce.burst_spacing = Some(gna);
            }
        }
        self.vrrp.announce = std::mem::take(&mut self.announce);
        self.notify_user(report);
        let globals = self.globals;
        let vrrp = &mut self.vrrp;
        if globals.check_unicast_src.is_some()
            && vrrp.check_unicast_source.is_none()
            && vrrp.unicast_peers.is_some()
        {
            vrrp.check_unicast_source = globals.check_unicast_src.clone();
        }
        required(vrrp, block, report);
        self.vrrp
    }

    /// The instance's version, else 3 for IPv6, else the global `vrrp_version`, else
    /// keepalived's default 2.
    fn version(&mut self, v6: bool) -> u8 {
        // keepalived: vrrp_version in global_defs is for IPv4 instances only.
        let version = match (self.version.take(), &self.globals.version) {
            (Some(x), _) => x,
            (None, _) if v6 => Sourced::noted(3, &self.head, "keepalived uses VRRPv3 for IPv6"),
            (None, Some(global)) => global.clone(),
            (None, None) => Sourced::noted(2, &self.head, "keepalived's default vrrp_version"),
        };
        let number = version.value;
        self.vrrp.version = Some(version);
        number
    }

    /// keepalived makes a MASTER without a priority the address owner (255).
    fn owner_priority(&mut self, report: &mut Report) {
        if self.priority_set {
            return;
        }
        if let Some(master) = &self.vrrp.initial_master {
            self.vrrp.priority = Some(Sourced::noted(
                255,
                master,
                "keepalived: state MASTER without priority means 255",
            ));
            report.warn(
                &master.with_key("state MASTER"),
                "no priority: keepalived makes this node the address owner (priority 255), which always wins; imported as priority = 255",
            );
        }
    }

    /// VRRPv2 carries whole seconds: keepalived rounds.
    fn advert_interval(&mut self, version: u8, report: &mut Report) {
        let Some((d, place)) = self.advert.take() else {
            return;
        };
        if version == 2 && (d.subsec_nanos() != 0 || d.is_zero()) {
            let rounded = Duration::from_secs(((d.as_millis() + 500) / 1000).max(1) as u64);
            report.warn(
                &place.with_key("advert_int"),
                format!(
                    "VRRPv2 advertises whole seconds: keepalived rounds {}s to {}s; imported as {}s (use version 3 for sub-second adverts)",
                    d.as_secs_f64(),
                    rounded.as_secs(),
                    rounded.as_secs()
                ),
            );
            self.vrrp.advert_interval = Some(Sourced::noted(
                rounded,
                &place,
                "rounded as keepalived does for v2",
            ));
        } else {
            self.vrrp.advert_interval = Some(Sourced::new(d, &place));
        }
    }

    /// `auth_type AH` is refused by havip; v3 has no authentication.
    fn check_authentication(&mut self, version: u8, report: &mut Report) {
        match self.auth_type.take() {
            Some((kind, place)) if kind == "AH" => {
                report.warn(
                    &place.with_key("auth_type AH"),
                    "IPsec AH authentication is not supported by havip (it is refused); not imported",
                );
                self.vrrp.auth_pass = None;
            }
            Some((kind, place)) if kind != "PASS" => {
                report.error(
                    &place.with_key("auth_type"),
                    format!("{kind:?}: expected PASS or AH"),
                );
                self.vrrp.auth_pass = None;
            }
            _ => {}
        }
        if version == 3 {
            if let Some(pass) = self.vrrp.auth_pass.take() {
                report.skip(
                    &pass.place.with_key("auth_pass"),
                    "VRRPv3 has no authentication; keepalived ignores it too",
                );
            }
        }
    }

    /// nopreempt and preempt_delay with state MASTER: keepalived clears them, havip does not.
    fn master_traps(&self, report: &mut Report) {
        let Some(master) = &self.vrrp.initial_master else {
            return;
        };
        if let Some(nopreempt) = &self.nopreempt {
            report.warn(
                &nopreempt.with_key("nopreempt"),
                format!(
                    "with state MASTER ({}:{}) keepalived ignores nopreempt (it logs \"nopreempt will not work with initial state MASTER - clearing\" and this node takes the VIP back); havip honours it: preempt = false",
                    master.file, master.line
                ),
            );
        }
        if let Some(delay) = &self.preempt_delay {
            report.warn(
                &delay.with_key("preempt_delay"),
                format!(
                    "with state MASTER ({}:{}) keepalived ignores preempt_delay; havip honours it",
                    master.file, master.line
                ),
            );
        }
    }

    /// The notify commands' user, else the global script_user.
    fn notify_user(&mut self, report: &mut Report) {
        let notify = &mut self.vrrp.notify;
        if let Some((user, place)) = self.notify_users.first() {
            notify.user = Some(Sourced::new(user.clone(), place));
            if self.notify_users.iter().any(|(other, _)| other != user) {
                report.skip(
                    &place.with_key("notify"),
                    "havip runs every notify command as one user; the first one given applies",
                );
            }
        } else if !notify.is_empty() {
            notify.user = self.globals.script_user.clone();
        }
    }
}

/// What every instance needs: an interface, a VRID, addresses.
fn required(v: &Vrrp, block: &Directive, report: &mut Report) {
    if v.interface.is_none() {
        report.warn(
            &block.place_as("interface"),
            "no interface: havip needs the interface the instance runs on",
        );
    }
    if v.vrid.is_none() {
        report.error(
            &block.place_as("virtual_router_id"),
            "missing: every vrrp_instance needs one",
        );
    }
    if v.virtual_addresses.is_empty() {
        report.warn(
            &block.place_as("virtual_ipaddress"),
            "no virtual address: the instance moves nothing",
        );
    }
}
