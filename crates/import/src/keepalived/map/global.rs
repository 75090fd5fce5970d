//! `global_defs`: the defaults every instance starts from (VRRP version, announcements,
//! script user, unicast source checks), and why the other global settings are not needed.

use std::time::Duration;

use super::value::{number, seconds};
use crate::model::{Announce, Sourced};
use crate::syntax::Directive;
use crate::Report;

/// What `global_defs` gives every instance.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// `script_user`.
    pub script_user: Option<Sourced<String>>,
    /// `vrrp_version`.
    pub version: Option<Sourced<u8>>,
    /// `vrrp_check_unicast_src`.
    pub check_unicast_src: Option<Sourced<bool>>,
    /// `vrrp_garp_*`.
    pub announce: Announce,
    /// `vrrp_gna_interval`: the NA spacing of IPv6 instances.
    pub gna_interval: Option<Sourced<Duration>>,
}

/// A gratuitous ARP setting (the name without its `vrrp_garp_` or `garp_` prefix) onto
/// `announce`; false when `name` is not one.
pub fn garp_setting(
    directive: &Directive,
    name: &str,
    announce: &mut Announce,
    gna: &mut Option<Sourced<Duration>>,
    report: &mut Report,
) -> bool {
    let place = directive.arg_place(0);
    let duration =
        |report: &mut Report| seconds(directive, 0, report).map(|d| Sourced::new(d, &place));
    let count =
        |report: &mut Report| number::<u32>(directive, 0, report).map(|c| Sourced::new(c, &place));
    match name {
        "master_delay" => set(&mut announce.second_burst_delay, duration(report)),
        "master_repeat" => set(&mut announce.burst_count, count(report)),
        "master_refresh" => set(&mut announce.refresh_interval, duration(report)),
        "master_refresh_repeat" => set(&mut announce.refresh_count, count(report)),
        "lower_prio_repeat" => set(&mut announce.lower_priority_burst_count, count(report)),
        "interval" => set(&mut announce.burst_spacing, duration(report)),
        "gna_interval" => set(gna, duration(report)),
        "lower_prio_delay" => report.skip(
            &directive.place(),
            "no separate delay after a lower-priority advert; second_burst_delay applies",
        ),
        "extra_if" => report.skip(
            &directive.place(),
            "periodic announcements on other interfaces: use refresh_interval",
        ),
        _ => return false,
    }
    true
}

/// Set `target` when a (valid) value was given.
fn set<T>(target: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *target = value;
    }
}

/// Global settings with no havip equivalent, and why.
const SKIPPED: &[(&[&str], &str)] = &[
    (
        &["enable_script_security"],
        "havip runs each script as its configured user without a shell unless shell = true; there is no separate security check of script paths",
    ),
    (
        &["router_id"],
        "names the node in keepalived's email alerts; havip has no email alerts",
    ),
    (
        &["vrrp_skip_check_adv_addr"],
        "a keepalived optimisation of its advert checks; nothing to carry",
    ),
    (
        &["vrrp_strict"],
        "no strict mode: havip speaks RFC 5798 with keepalived's extensions (unicast, v2 PASS auth)",
    ),
    (
        &[
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_connect_timeout",
            "smtp_helo_name",
            "smtp_alert",
            "smtp_alert_vrrp",
            "smtp_alert_checker",
            "email_faults",
        ],
        "email alerts are not supported; use [vrrp.notify] commands",
    ),
    (
        &["vrrp_mcast_group4", "vrrp_mcast_group6"],
        "havip uses the standard VRRP multicast groups (224.0.0.18, ff02::12)",
    ),
    (
        &[
            "vrrp_iptables",
            "vrrp_ipsets",
            "nftables",
            "vrrp_nftables",
            "nftables_priority",
            "nftables_counters",
            "nftables_ifindex",
        ],
        "havip does not manage firewall rules",
    ),
    (
        &[
            "dynamic_interfaces",
            "max_auto_priority",
            "vrrp_no_swap",
            "vrrp_rt_priority",
            "vrrp_priority",
            "vrrp_rlimit_rttime",
            "checker_priority",
            "checker_no_swap",
            "vrrp_cpu_affinity",
            "checker_cpu_affinity",
            "vrrp_rx_bufs_policy",
            "vrrp_rx_bufs_multiplier",
            "lvs_id",
            "lvs_flush",
            "lvs_flush_on_stop",
            "lvs_sync_daemon",
            "lvs_timeouts",
            "checker_log_all_failures",
            "vrrp_notify_fifo",
            "notify_fifo",
            "vrrp_notify_fifo_script",
            "notify_fifo_script",
            "vrrp_notify_priority_changes",
            "script_security",
            "process_names",
            "process_name",
            "vrrp_process_name",
            "checker_process_name",
            "bfd_process_name",
            "startup_script",
            "shutdown_script",
            "startup_script_timeout",
            "shutdown_script_timeout",
            "tmp_config_directory",
            "config_save_dir",
            "vrrp_startup_delay",
            "vrrp_lower_prio_no_advert",
            "vrrp_higher_prio_send_advert",
            "vrrp_down_timer_adverts",
            "enable_dbus",
            "dbus_service_name",
            "enable_snmp_vrrp",
            "enable_snmp_keepalived",
            "enable_snmp_rfc",
            "enable_snmp_rfcv2",
            "enable_snmp_rfcv3",
            "enable_traps",
            "snmp_socket",
            "fifo_write_vrrp_states_on_reload",
            "vrrp_netlink_cmd_rcv_bufs",
            "vrrp_netlink_monitor_rcv_bufs",
            "vrrp_netlink_cmd_rcv_bufs_force",
            "vrrp_netlink_monitor_rcv_bufs_force",
            "vrrp_garp_extra_if_vmac",
        ],
        "no havip equivalent",
    ),
];

/// Apply one `global_defs` block onto `globals`.
pub fn global_defs(block: &Directive, globals: &mut Globals, report: &mut Report) {
    for directive in block.children() {
        global_setting(directive, globals, report);
    }
}

fn global_setting(directive: &Directive, globals: &mut Globals, report: &mut Report) {
    let keyword = directive.name();
    if let Some(garp) = keyword.strip_prefix("vrrp_garp_") {
        if garp_setting(
            directive,
            garp,
            &mut globals.announce,
            &mut globals.gna_interval,
            report,
        ) {
            return;
        }
    }
    let place = directive.place();
    match keyword {
        "vrrp_gna_interval" => {
            garp_setting(
                directive,
                "gna_interval",
                &mut globals.announce,
                &mut globals.gna_interval,
                report,
            );
        }
        "script_user" => {
            globals.script_user = directive
                .arg(0)
                .map(|u| Sourced::new(u.to_string(), &directive.arg_place(0)));
            if directive.args.len() > 1 {
                report.skip(&place, "the group is the user's own group in havip");
            }
        }
        "vrrp_version" => {
            if let Some(v) = number::<u8>(directive, 0, report) {
                if v == 2 || v == 3 {
                    globals.version = Some(Sourced::new(v, &directive.arg_place(0)));
                } else {
                    report.error(&place, "must be 2 or 3");
                }
            }
        }
        "vrrp_check_unicast_src" => {
            globals.check_unicast_src = Some(Sourced::new(true, &place));
        }
        "vrrp_min_garp" => {
            if directive
                .arg(0)
                .is_none_or(|b| matches!(b, "on" | "true" | "yes"))
            {
                let announce = &mut globals.announce;
                announce.burst_count = Some(Sourced::noted(1, &place, "vrrp_min_garp"));
                announce.second_burst_delay =
                    Some(Sourced::noted(Duration::ZERO, &place, "vrrp_min_garp"));
            }
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
