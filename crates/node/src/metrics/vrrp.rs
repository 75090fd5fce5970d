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
        let mut family = Family::new(
            out,
            name,
            "gauge",
            "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT), 0 for the others.",
        );
        for instance in instances {
            for state in [
                State::Initialize,
                State::Backup,
                State::Master,
                State::Fault,
            ] {
                let value = u8::from(instance.state == state);
                family.sample(
                    name,
                    &[("instance", &instance.name), ("state", state_name(state))],
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
            |instance| u64::from(instance.effective_priority),
        ),
        (
            "havip_vrrp_configured_priority",
            "gauge",
            "Priority as configured.",
            |instance| u64::from(instance.configured_priority),
        ),
        (
            "havip_vrrp_holding_addresses",
            "gauge",
            "1 while the virtual addresses are on this node's interface.",
            |instance| u64::from(instance.holding_addresses),
        ),
        (
            "havip_vrrp_adverts_sent_total",
            "counter",
            "Advertisements sent (one per peer in unicast mode).",
            |instance| instance.counters.adverts_sent,
        ),
        (
            "havip_vrrp_adverts_received_total",
            "counter",
            "Advertisements that passed every receive check.",
            |instance| instance.counters.adverts_received,
        ),
        (
            "havip_vrrp_priority_zero_received_total",
            "counter",
            "Priority-0 advertisements received (a master stopping).",
            |instance| instance.counters.priority_zero_received,
        ),
        (
            "havip_vrrp_master_changes_total",
            "counter",
            "Times the master this node follows (or is) changed.",
            |instance| instance.master_changes,
        ),
        (
            "havip_vrrp_send_errors_total",
            "counter",
            "Advertisements the kernel refused to send.",
            |instance| instance.send_errors,
        ),
        (
            "havip_vrrp_address_errors_total",
            "counter",
            "Virtual address adds or removes that failed.",
            |instance| instance.address_errors,
        ),
        (
            "havip_vrrp_addresses_restored_total",
            "counter",
            "Virtual addresses removed by someone else while master and added back.",
            |instance| instance.addresses_restored,
        ),
        (
            "havip_vrrp_notify_failures_total",
            "counter",
            "Notify commands that failed or timed out.",
            |instance| instance.notify_failures,
        ),
    ];
    for (name, kind, help, get) in simple {
        let mut family = Family::new(out, name, kind, help);
        for instance in instances {
            family.sample(name, &[("instance", &instance.name)], get(instance));
        }
    }
}

fn transitions_and_master(out: &mut String, instances: &[InstanceStatus]) {
    {
        let name = "havip_vrrp_transitions_total";
        let mut family = Family::new(
            out,
            name,
            "counter",
            "State transitions, by old and new state.",
        );
        for instance in instances {
            for ((from, to), count) in &instance.transitions {
                family.sample(
                    name,
                    &[("instance", &instance.name), ("from", from), ("to", to)],
                    count,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_master";
        let mut family = Family::new(
            out,
            name,
            "gauge",
            "1 with the address of the current master as a label (this node's own when master).",
        );
        for instance in instances {
            if let Some(master) = instance.master {
                let master = master.to_string();
                family.sample(
                    name,
                    &[("instance", &instance.name), ("address", &master)],
                    1,
                );
            }
        }
    }
}

fn drops(out: &mut String, view: &VrrpView, instances: &[InstanceStatus]) {
    {
        let name = "havip_vrrp_adverts_dropped_total";
        let mut family = Family::new(
            out,
            name,
            "counter",
            "Advertisements dropped by an instance, by reason (RFC 5798 7.1 receive checks).",
        );
        for instance in instances {
            for (reason, count) in instance.counters.drops() {
                family.sample(
                    name,
                    &[("instance", &instance.name), ("reason", reason.name())],
                    count,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_receive_dropped_total";
        let mut family = Family::new(
            out,
            name,
            "counter",
            "Packets dropped by an interface's receive path before any instance, by reason.",
        );
        for receiver in view.receive_totals() {
            for (reason, count) in receiver.drops {
                family.sample(
                    name,
                    &[
                        ("interface", &receiver.interface),
                        ("family", receiver.family),
                        ("reason", reason),
                    ],
                    count,
                );
            }
        }
    }
    {
        let name = "havip_vrrp_receive_packets_total";
        let mut family = Family::new(out, name, "counter", "VRRP packets read from an interface.");
        for receiver in view.receive_totals() {
            family.sample(
                name,
                &[
                    ("interface", &receiver.interface),
                    ("family", receiver.family),
                ],
                receiver.received,
            );
        }
    }
}
