//! Keeping the segment quiet about an announced VIP. Linux answers ARP for any local
//! address on any interface (`arp_ignore = 0`), a local route included: a node announcing a
//! VIP that lies in the subnet of one of its interfaces (the VIP also held by VRRP on that
//! segment) would answer for it there, and hosts would send to whichever node answered last.
//! On such interfaces havip sets, at start:
//!
//! - `net.ipv4.conf.<if>.arp_ignore = 1`: answer only for addresses on the interface itself
//!   (the VRRP master still answers: it holds the VIP there);
//! - `net.ipv4.conf.<if>.arp_announce = 2`: never use the VIP as the sender of our own ARP
//!   requests there, which would teach the segment the same wrong owner.
//!
//! The LVS direct-routing setting, applied to those interfaces only; a VIP outside every
//! subnet of the node (the usual routed case) changes nothing. IPv6 needs nothing: the
//! kernel answers neighbour solicitations only for addresses on the receiving interface.

use std::net::IpAddr;
use std::path::Path;

use havip_config::address::in_subnet;
use havip_sys::netlink::{InterfaceAddress, Link};

/// The interfaces (by name) on which `vips` need quieting: not `lo`, with an IPv4 subnet
/// that holds one of them. Pure, for tests.
pub fn interfaces_to_quiet(
    vips: &[IpAddr],
    links: &[Link],
    addresses: &[InterfaceAddress],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for address in addresses {
        let IpAddr::V4(_) = address.address else {
            continue;
        };
        let Some(link) = links.iter().find(|l| l.index == address.ifindex) else {
            continue;
        };
        let holds = vips.iter().any(|vip| {
            vip.is_ipv4()
                && *vip != address.address
                && address.prefix_len < 32
                && in_subnet(*vip, address.address, address.prefix_len)
        });
        if link.name != "lo" && holds && !out.contains(&link.name) {
            out.push(link.name.clone());
        }
    }
    out
}

/// Raise `arp_ignore` to 1 and `arp_announce` to 2 on `interface` where they are lower
/// (taking `conf/all` into account, as the kernel does: the higher of the two applies).
/// Under `root` (`/proc/sys/net/ipv4/conf` on a live system).
pub fn quiet(root: &Path, interface: &str) -> std::io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for (key, wanted) in [("arp_ignore", 1), ("arp_announce", 2)] {
        let read = |scope: &str| -> std::io::Result<i64> {
            let text = std::fs::read_to_string(root.join(scope).join(key))?;
            Ok(text.trim().parse().unwrap_or(0))
        };
        let effective = read("all")?.max(read(interface)?);
        if effective < wanted {
            std::fs::write(root.join(interface).join(key), format!("{wanted}\n"))?;
            changed.push(format!("net.ipv4.conf.{interface}.{key}={wanted}"));
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            up: true,
            mac: None,
            mtu: 1500,
        }
    }

    fn address(ifindex: u32, text: &str, prefix_len: u8) -> InterfaceAddress {
        InterfaceAddress {
            ifindex,
            address: text.parse().unwrap(),
            prefix_len,
            label: None,
            secondary: false,
            tentative: false,
        }
    }

    #[test]
    fn only_interfaces_whose_subnet_holds_a_vip() {
        let links = [link(1, "lo"), link(2, "eth0"), link(3, "eth1")];
        let addresses = [
            address(1, "127.0.0.1", 8),
            address(2, "10.77.0.11", 24),
            address(2, "fd77::11", 64),
            address(3, "192.168.5.11", 24),
        ];
        let routed: Vec<IpAddr> = vec!["10.99.0.100".parse().unwrap()];
        assert!(interfaces_to_quiet(&routed, &links, &addresses).is_empty());
        let on_segment: Vec<IpAddr> = vec![
            "10.77.0.200".parse().unwrap(),
            "fd77::200".parse().unwrap(),
            "127.0.0.5".parse().unwrap(),
        ];
        assert_eq!(
            interfaces_to_quiet(&on_segment, &links, &addresses),
            vec!["eth0".to_string()]
        );
    }

    #[test]
    fn settings_are_raised_not_lowered() {
        let root = std::env::temp_dir().join(format!("havip-arp-{}", std::process::id()));
        for (scope, ignore, announce) in [("all", "0", "0"), ("eth0", "0", "1"), ("eth1", "2", "0")]
        {
            std::fs::create_dir_all(root.join(scope)).unwrap();
            std::fs::write(root.join(scope).join("arp_ignore"), ignore).unwrap();
            std::fs::write(root.join(scope).join("arp_announce"), announce).unwrap();
        }
        assert_eq!(
            quiet(&root, "eth0").unwrap(),
            vec![
                "net.ipv4.conf.eth0.arp_ignore=1".to_string(),
                "net.ipv4.conf.eth0.arp_announce=2".to_string()
            ]
        );
        assert_eq!(quiet(&root, "eth0").unwrap(), Vec::<String>::new(), "done");
        assert_eq!(
            quiet(&root, "eth1").unwrap(),
            vec!["net.ipv4.conf.eth1.arp_announce=2".to_string()]
        );
        assert_eq!(
            std::fs::read_to_string(root.join("eth1/arp_ignore")).unwrap(),
            "2",
            "a stricter setting stays"
        );
        std::fs::write(root.join("all/arp_ignore"), "1").unwrap();
        std::fs::write(root.join("all/arp_announce"), "2").unwrap();
        std::fs::create_dir_all(root.join("eth2")).unwrap();
        std::fs::write(root.join("eth2/arp_ignore"), "0").unwrap();
        std::fs::write(root.join("eth2/arp_announce"), "0").unwrap();
        assert!(
            quiet(&root, "eth2").unwrap().is_empty(),
            "conf/all covers it"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
