//! What the lints (`havip_config::lint`) need from an imported config, each value placed at
//! its source line, so that a warning names the haproxy or keepalived line it is about.

use havip_config::lint::{Facts, ServiceFacts, VrrpFacts};

use crate::model::{Check, Draft, OrOff, Service, Vrrp};

/// The lints' view of `draft`.
pub fn facts(draft: &Draft) -> Facts {
    let mut facts = Facts::default();
    facts
        .services
        .extend(draft.services.iter().map(service_facts));
    facts.vrrp.extend(draft.vrrp.iter().map(vrrp_facts));
    facts
}

fn service_facts(service: &Service) -> ServiceFacts {
    let mut ports = service.listen_ports();
    ports.extend(service.backends.iter().filter_map(|b| b.port()));
    let http = matches!(
        service.health.check.as_ref().map(|c| c.value),
        Some(Check::Http | Check::Https)
    );
    let timeouts = &service.timeouts;
    ServiceFacts {
        name: service.name.value.clone(),
        place: service.from.clone(),
        ports,
        client_idle: timeouts.client_idle.as_ref().map(|v| v.at(|d| *d)),
        server_idle: timeouts.server_idle.as_ref().map(|v| v.at(|d| *d)),
        tunnel: timeouts.tunnel.as_ref().map(|v| {
            v.at(|t| match t {
                OrOff::Off => None,
                OrOff::On(d) => Some(*d),
            })
        }),
        http_path: service
            .health
            .path
            .as_ref()
            .filter(|_| http)
            .map(|v| v.at(String::clone)),
    }
}

fn vrrp_facts(instance: &Vrrp) -> VrrpFacts {
    VrrpFacts {
        name: instance.name.value.clone(),
        place: instance.from.clone(),
        interface: instance.interface.as_ref().map(|x| x.at(String::clone)),
        vrid: instance.vrid.as_ref().map(|x| x.at(|n| *n)),
        version: instance.version.as_ref().map_or(3, |x| x.value),
        advert: instance.advert_interval.as_ref().map(|x| x.at(|d| *d)),
        auth_pass: instance.auth_pass.as_ref().map(|x| x.at(String::clone)),
        unicast_peers: instance.unicast_peers.as_ref().map(|x| x.at(Vec::clone)),
        source: instance.source.as_ref().map(|x| x.at(|a| *a)),
        vips: instance
            .virtual_addresses
            .iter()
            .map(|a| a.at(|vip| (vip.address, vip.prefix, vip.interface.clone())))
            .collect(),
    }
}
