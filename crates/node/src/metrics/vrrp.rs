//! The VRRP instances' metric families.

use havip_vrrp::State;

use super::Family;
use crate::vrrp::status::{state_name, InstanceStatus, VrrpView};

/// Every VRRP family, appended to `out`.
pub fn render(out: &mut String, view: &VrrpView) {
    let instances = view.snapshot();
    state_family(out, &instances);
    instance_families(out, &instances);
    transitions_and_master(out, &instances);
    drops(out, view, &instances);
}

fn state_family(out: &mut String, instances: &[InstanceStatus]) {
    {
        let name = "havip_vrrp_state";
        let mut f = Family::new(
            out,
            name,
            "gauge",
            "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT), 0 for the others.",
        );
        for i in instances {
            for state in [
                State::Initialize,
                State::Backup,
                State::Master,
                State::Fault,
            ] {
                let value = u8::from(i.state == state);
                f.sample(
                    name,
                    &[("instance", &i.name), ("state", state_name(state))],
                    value,
                );
            }
        }
    }
}

fn instance_families(out: &mut String, instances: &[InstanceStatus]) {
    type Getter = fn(&InstanceStatus) -> u64;
    let simple: [(&str, &str, &str, Getter); 11] = [
        (
            "havip_vrrp_priority",
            "gauge",
            "Effective priority: configured plus trackers, clamped to 1-254.",
            |i| u64::from(i.effective_priority),
        ),
        (
            "havip_vrrp_configured_priority",
            "gauge",
            "Priority as configured.",
            |i| u64::from(i.configured_priority),
        ),
        (
            "havip_vrrp_holding_addresses",
            "gauge",
            "1 while the virtual addresses are on this node's interface.",
            |i| u64::from(i.holding_addresses),
        ),
        (
            "havip_vrrp_adverts_sent_total",
            "counter",
            "Advertisements sent (one per peer in unicast mode).",
            |i| i.counters.adverts_sent,
        ),
        (
            "havip_vrrp_adverts_received_total",
            "counter",
            "Advertisements that passed every receive check.",
            |i| i.counters.adverts_received,
        ),
        (
            "havip_vrrp_priority_zero_received_total",
            "counter",
            "Priority-0 advertisements received (a master stopping).",
            |i| i.counters.priority_zero_received,
        ),
        (
            "havip_vrrp_master_changes_total",
            "counter",
            "Times the master this node follows (or is) changed.",
            |i| i.master_changes,
        ),
        (
            "havip_vrrp_send_errors_total",
            "counter",
            "Advertisements the kernel refused to send.",
            |i| i.send_errors,
        ),
        (
            "havip_vrrp_address_errors_total",
            "counter",
            "Virtual address adds or removes that failed.",
            |i| i.address_errors,
        ),
        (
            "havip_vrrp_addresses_restored_total",
            "counter",
            "Virtual addresses removed by someone else while master and added back.",
            |i| i.addresses_restored,
        ),
        (
            "havip_vrrp_notify_failures_total",
            "counter",
            "Notify commands that failed or timed out.",
            |i| i.notify_failures,
        ),
    ];
    for (name, kind, help, get) in simple {
        let mut f = Family::new(out, name, kind, help);
        for i in instances {
            f.sample(name, &[("instance", &i.name)], get(i));
        }
    }
}

fn transitions_and_master(out: &mut String, instances: &[InstanceStatus]) {
    {
        let name = "havip_vrrp_transitions_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "State transitions, by old and new state.",
        );
        for i in instances {
            for ((from, to), n) in &i.transitions {
                f.sample(
                    name,
                    &[("instance", &i.name), ("from", from), ("to", to)],
                    n,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_master";
        let mut f = Family::new(
            out,
            name,
            "gauge",
            "1 with the address of the current master as a label (this node's own when master).",
        );
        for i in instances {
            if let Some(master) = i.master {
                let master = master.to_string();
                f.sample(name, &[("instance", &i.name), ("address", &master)], 1);
            }
        }
    }
}

fn drops(out: &mut String, view: &VrrpView, instances: &[InstanceStatus]) {
    {
        let name = "havip_vrrp_adverts_dropped_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "Advertisements dropped by an instance, by reason (RFC 5798 7.1 receive checks).",
        );
        for i in instances {
            for (reason, n) in i.counters.drops() {
                f.sample(name, &[("instance", &i.name), ("reason", reason.name())], n);
            }
        }
    }
    {
        let name = "havip_vrrp_receive_dropped_total";
        let mut f = Family::new(
            out,
            name,
            "counter",
            "Packets dropped by an interface's receive path before any instance, by reason.",
        );
        for r in view.receive_totals() {
            for (reason, n) in r.drops {
                f.sample(
                    name,
                    &[
                        ("interface", &r.interface),
                        ("family", r.family),
                        ("reason", reason),
                    ],
                    n,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_receive_packets_total";
        let mut f = Family::new(out, name, "counter", "VRRP packets read from an interface.");
        for r in view.receive_totals() {
            f.sample(
                name,
                &[("interface", &r.interface), ("family", r.family)],
                r.received,
            );
        }
    }
}
