//! Faults and observations with nftables inside a lab node: TCP to a port refused (a backend
//! down, or unreachable from that node only), and VRRP multicast dropped as clouds do, with
//! counters that show what the node tried to send, and a way to prove the counter sees it.

use std::net::IpAddr;
use std::time::Duration;

use havip_sys::vrrp_socket::{Family, VrrpSender};

use crate::lab::{interface_index, Lab};
use crate::wait::wait_for;

/// The hook a rule sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets to this node (the `input` hook).
    Incoming,
    /// Packets this node sends (the `output` hook).
    Outgoing,
}

impl Direction {
    fn hook(self) -> &'static str {
        match self {
            Direction::Incoming => "input",
            Direction::Outgoing => "output",
        }
    }
}

/// The table that drops VRRP multicast (see [`Lab::drop_vrrp_multicast`]).
pub const NO_MULTICAST_TABLE: &str = "nomcast";
const GROUP_V4: &str = "224.0.0.18";

impl Lab {
    /// Refuse TCP to `port` in node `i`'s `direction` with a reset: incoming, the node's own
    /// server on that port is down for everyone; outgoing, the node reaches no server on
    /// that port while its peers still do. Undone by [`Lab::unblock_tcp_port`].
    pub fn block_tcp_port(&self, i: usize, direction: Direction, port: u16) {
        let (table, hook) = (block_table(direction, port), direction.hook());
        let ns = &self.nodes[i];
        self.ns(ns, &["nft", "add", "table", "inet", &table]);
        let chain = format!("{{ type filter hook {hook} priority 0 ; }}");
        self.ns(ns, &["nft", "add", "chain", "inet", &table, hook, &chain]);
        let rule = [
            "tcp",
            "dport",
            &port.to_string(),
            "reject",
            "with",
            "tcp",
            "reset",
        ];
        let mut argv = vec!["nft", "add", "rule", "inet", &table, hook];
        argv.extend(rule);
        self.ns(ns, &argv);
    }

    /// Undo [`Lab::block_tcp_port`].
    pub fn unblock_tcp_port(&self, i: usize, direction: Direction, port: u16) {
        let table = block_table(direction, port);
        self.ns(&self.nodes[i], &["nft", "delete", "table", "inet", &table]);
    }

    /// Drop VRRP multicast (to 224.0.0.18) both ways in node `i`, as clouds do, counting what
    /// the node tries to send there; and count the VRRP it does send (unicast adverts).
    pub fn drop_vrrp_multicast(&self, i: usize) {
        let (ns, table) = (&self.nodes[i], NO_MULTICAST_TABLE);
        self.ns(ns, &["nft", "add", "table", "inet", table]);
        for hook in ["input", "output"] {
            let chain = format!("{{ type filter hook {hook} priority 0 ; }}");
            self.ns(ns, &["nft", "add", "chain", "inet", table, hook, &chain]);
            self.ns(
                ns,
                &[
                    "nft",
                    "add",
                    "rule",
                    "inet",
                    table,
                    hook,
                    "ip",
                    "daddr",
                    GROUP_V4,
                    "counter",
                    "drop",
                    "comment",
                    "\"multicast\"",
                ],
            );
        }
        self.ns(
            ns,
            &[
                "nft", "add", "rule", "inet", table, "output", "ip", "protocol", "112", "counter",
                "comment", "\"vrrp\"",
            ],
        );
    }

    /// The rules of node `i`'s multicast-drop output chain, for failure messages.
    pub fn multicast_rules(&self, i: usize) -> String {
        self.ns(
            &self.nodes[i],
            &["nft", "list", "chain", "inet", NO_MULTICAST_TABLE, "output"],
        )
    }

    /// Packets node `i` tried to send to 224.0.0.18 (all dropped) since
    /// [`Lab::drop_vrrp_multicast`].
    pub fn vrrp_multicast_sent(&self, i: usize) -> u64 {
        counter(&self.multicast_rules(i), "multicast")
    }

    /// VRRP packets node `i` sent elsewhere than 224.0.0.18 (unicast adverts).
    pub fn vrrp_unicast_sent(&self, i: usize) -> u64 {
        counter(&self.multicast_rules(i), "vrrp")
    }

    /// Prove that [`Lab::vrrp_multicast_sent`] would see multicast from node `i`: send one
    /// VRRP packet (VRID 0, which every receiver rejects; dropped anyway) from the node to
    /// 224.0.0.18 on its interface and require the count to go up by exactly one.
    pub fn assert_multicast_counted(&self, i: usize) {
        let before = self.vrrp_multicast_sent(i);
        let (iface, source) = (self.interface(i).to_string(), self.node_addr(i));
        let sent = self.in_ns(&self.nodes[i], move || {
            let sender = VrrpSender::open(interface_index(&iface), &iface, Family::V4)?;
            let mut advert = vec![0x31, 0, 100, 1, 0, 100, 0, 0];
            advert.extend_from_slice(&source.octets());
            sender.send(
                IpAddr::V4(source),
                GROUP_V4.parse().expect("group"),
                255,
                &advert,
            )
        });
        // The output rule drops it, which the kernel reports to the sender as EPERM.
        match sent {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(e) => panic!("node{i}: sending the control multicast failed: {e}"),
        }
        let counted = wait_for(Duration::from_secs(2), || {
            (self.vrrp_multicast_sent(i) == before + 1).then_some(())
        });
        assert!(
            counted.is_some(),
            "node{i}'s multicast counter did not see a multicast packet the node sent: \
             it would not have seen the node's adverts either\n{}",
            self.multicast_rules(i)
        );
    }
}

fn block_table(direction: Direction, port: u16) -> String {
    format!("block_{}_{port}", direction.hook())
}

/// The packet count of the rule with `comment` in an `nft list` output.
fn counter(rules: &str, comment: &str) -> u64 {
    let tag = format!("comment \"{comment}\"");
    let line = rules
        .lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("no rule {tag} in\n{rules}"));
    line.split_once("counter packets ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::counter;

    #[test]
    fn counters_are_read_from_their_own_rule() {
        let rules = "table inet nomcast {\n\tchain output {\n\t\ttype filter hook output \
                     priority filter; policy accept;\n\t\tip daddr 224.0.0.18 counter packets 0 \
                     bytes 0 drop comment \"multicast\"\n\t\tip protocol vrrp counter packets \
                     42 bytes 1680 comment \"vrrp\"\n\t}\n}\n";
        assert_eq!(counter(rules, "multicast"), 0);
        assert_eq!(counter(rules, "vrrp"), 42);
    }
}
