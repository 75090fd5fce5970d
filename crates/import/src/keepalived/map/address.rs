//! The addresses of a `vrrp_instance`: `virtual_ipaddress` entries and `unicast_peer`s.

use std::net::IpAddr;

use havip_config::address::parse_prefix;

use crate::model::{Sourced, Vip, Vrrp};
use crate::syntax::Directive;
use crate::Report;

/// One `virtual_ipaddress` entry: `ADDRESS[/PREFIX] [dev IF] [label L] ...`.
pub fn vip(entry: &Directive, report: &mut Report) -> Option<Sourced<Vip>> {
    let text = entry.name();
    if text.contains('-') && !text.contains(':') {
        report.skip(
            &entry.place(),
            "address ranges are not supported; list each address",
        );
        return None;
    }
    let Some((address, prefix)) = parse_prefix(text) else {
        report.error(
            &entry.place_as("virtual_ipaddress"),
            format!("{text:?} is not an address"),
        );
        return None;
    };
    let mut vip = Vip {
        address,
        prefix,
        interface: None,
        label: None,
    };
    let mut i = 0;
    while let Some(word) = entry.arg(i) {
        let place = entry.args[i].place_as(word);
        match word {
            "dev" => vip.interface = entry.arg(i + 1).map(str::to_string),
            "label" => vip.label = entry.arg(i + 1).map(str::to_string),
            "brd" | "broadcast" | "scope" | "peer" | "preferred_lft" | "track_group" => {
                if word != "scope" || entry.arg(i + 1) != Some("global") {
                    report.skip(&place, "not supported for virtual addresses");
                }
            }
            "use_vmac" => {
                report.skip(&place, "virtual MAC interfaces are not supported");
                i += 1;
                continue;
            }
            _ => {
                report.skip(&place, "not supported for virtual addresses");
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Some(Sourced::new(vip, &entry.place_as("virtual_ipaddress")))
}

/// `virtual_ipaddress { ... }` or `virtual_ipaddress_excluded { ... }`.
pub fn virtual_addresses(block: &Directive, instance: &mut Vrrp, report: &mut Report) {
    let excluded = block.name() == "virtual_ipaddress_excluded";
    for entry in block.children() {
        if let Some(mut vip) = vip(entry, report) {
            if instance
                .virtual_addresses
                .iter()
                .any(|a| a.value.address == vip.value.address)
            {
                report.skip(
                    &entry.place(),
                    "listed twice: keepalived ignores the second (it logs a duplicate VIP)",
                );
                continue;
            }
            if excluded {
                vip.note = Some(
                    "was virtual_ipaddress_excluded: havip lists every address in its adverts"
                        .into(),
                );
            }
            instance.virtual_addresses.push(vip);
        }
    }
}

/// `unicast_peer { ADDRESS [min_ttl N] [max_ttl N] ... }`.
pub fn unicast_peers(block: &Directive, instance: &mut Vrrp, report: &mut Report) {
    let mut peers = Vec::new();
    let mut ttl_check = false;
    for peer in block.children() {
        match peer.name().parse::<IpAddr>() {
            Ok(ip) if peers.contains(&ip) => report.skip(
                &peer.place_as("unicast_peer"),
                "listed twice: keepalived ignores the second (it logs a duplicate unicast_peer)",
            ),
            Ok(ip) => peers.push(ip),
            Err(_) => report.error(
                &peer.place_as("unicast_peer"),
                format!("{:?} is not an address", peer.name()),
            ),
        }
        if peer
            .args
            .iter()
            .any(|a| a.text == "min_ttl" || a.text == "max_ttl")
        {
            ttl_check = true;
            report.skip(
                &peer.place_as("min_ttl/max_ttl"),
                "TTL ranges are not supported: havip requires TTL 255 unless accept_any_unicast_ttl = true",
            );
        }
    }
    if ttl_check {
        instance.check_unicast_source = Some(Sourced::noted(
            true,
            &block.place(),
            "keepalived: min_ttl/max_ttl turn on check_unicast_src",
        ));
    }
    instance.unicast_peers = Some(Sourced::new(peers, &block.place()));
}
