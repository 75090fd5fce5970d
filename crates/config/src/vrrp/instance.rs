//! Reading `[[vrrp]]` tables: each instance's keys, its `announce` and `notify` tables and the
//! trackers it follows, then the checks across instances (names unique, one VRID per
//! interface and family) and the protocol's own rules (`havip_vrrp::InstanceConfig::validate`).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use havip_vrrp::{AddressFamily, AdvertInterval, AnnouncementConfig, Authentication, Version};
use toml::de::DeValue;
use toml::Spanned;

use super::addresses::read_virtual_addresses;
use super::command::read_command;
use super::{
    check_interface_name, NotifySettings, StartupLimit, TrackRef, TrackerSettings, VrrpSettings,
};
use crate::duration::parse_duration;
use crate::keys;
use crate::reader::{Record, TableReader, Written};

/// The shortest time a notify command may run.
const MIN_NOTIFY_TIMEOUT: Duration = Duration::from_millis(10);

/// Instances that track trackers are checked against `trackers` (read first).
pub(crate) fn read_vrrp_instances(
    p: &mut Record,
    root: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Vec<VrrpSettings> {
    let mut out: Vec<VrrpSettings> = Vec::new();
    let mut seen: HashSet<(String, u8, bool)> = HashSet::new();
    for mut t in root.tables(p, "vrrp", keys::VRRP.keys) {
        if let Some(instance) = read_instance(p, &mut t, trackers) {
            if out.iter().any(|o| o.name == instance.name) {
                p.add(
                    &t.span(),
                    t.key("name"),
                    format!("an instance named {:?} is already defined", instance.name),
                );
            }
            // RFC 5798 7.3: a VRID names one virtual router per LAN and address family.
            let key = (
                instance.interface.clone(),
                instance.vrid,
                instance.family() == AddressFamily::Ipv4,
            );
            if !seen.insert(key) {
                p.add(
                    &t.span(),
                    t.key("vrid"),
                    format!(
                        "VRID {} is already used on {} for this address family",
                        instance.vrid, instance.interface
                    ),
                );
            }
            out.push(instance);
        }
        t.finish(p);
    }
    out
}

/// One instance; `None` when any of its keys had a problem (the load fails anyway).
fn read_instance(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Option<VrrpSettings> {
    let before = p.count();
    let name = t.required_name(p, "vrrp instance");
    let interface = read_interface(p, t);
    let vrid = read_vrid(p, t);
    let version = match t.u32(p, "version", 2..=3) {
        Some(2) => Version::V2,
        _ => Version::V3,
    };
    let priority = t
        .u32(p, "priority", 1..=255)
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(100);
    let advert_interval = read_advert_interval(p, t, version);
    let preempt = t.bool(p, "preempt").unwrap_or(true);
    let preempt_delay = read_preempt_delay(p, t);
    let accept = t.bool(p, "accept").unwrap_or(true);
    let virtual_addresses = read_virtual_addresses(p, t);
    let source = t
        .string(p, "source")
        .and_then(|at| p.parsed(&t.key("source"), &at, parse_ip));
    let unicast_peers = read_unicast_peers(p, t);
    let settings = VrrpSettings {
        name,
        interface,
        vrid,
        version,
        priority,
        advert_interval,
        preempt,
        preempt_delay,
        accept,
        virtual_addresses,
        source,
        unicast_peers,
        check_unicast_source: t.bool(p, "check_unicast_source").unwrap_or(true),
        accept_any_unicast_ttl: t.bool(p, "accept_any_unicast_ttl").unwrap_or(false),
        authentication: read_authentication(p, t, version),
        v3_checksum_as_v2: t.bool(p, "v3_checksum_as_v2").unwrap_or(false),
        announce: read_announce(p, t),
        notify: read_notify(p, t),
        track: read_track_refs(p, t, trackers),
        startup_limit: read_startup_limit(p, t),
    };
    if p.count() != before {
        return None;
    }
    check_protocol(p, t, settings)
}

/// The protocol's own rules (families, v2 over IPv6, peers) with a stand-in primary address
/// of the right family when the real one is only known at start.
fn check_protocol(
    p: &mut Record,
    t: &TableReader<'_, '_>,
    settings: VrrpSettings,
) -> Option<VrrpSettings> {
    let primary = settings.source.unwrap_or(match settings.family() {
        AddressFamily::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    if let Err(e) = settings.protocol_config(primary).validate() {
        p.add(&t.span(), t.path_key(), e.to_string());
        return None;
    }
    if let Some(source) = settings.source {
        if AddressFamily::of(&source) != settings.family() {
            p.add(
                &t.span(),
                t.key("source"),
                format!("{source} is not the family of the virtual addresses"),
            );
            return None;
        }
    }
    Some(settings)
}

fn read_interface(p: &mut Record, t: &mut TableReader<'_, '_>) -> String {
    match t.string(p, "interface") {
        Some(at) => {
            check_interface_name(p, t, "interface", &at);
            at.value
        }
        None => {
            p.add(
                &t.span(),
                t.key("interface"),
                "missing: the interface to run VRRP on, e.g. interface = \"eth0\"",
            );
            String::new()
        }
    }
}

fn read_vrid(p: &mut Record, t: &mut TableReader<'_, '_>) -> u8 {
    if let Some(vrid) = t.u32(p, "vrid", 1..=255).and_then(|v| u8::try_from(v).ok()) {
        return vrid;
    }
    if !t.has("vrid") {
        p.add(
            &t.span(),
            t.key("vrid"),
            "missing: the virtual router id (1-255), the same on every node of this VIP",
        );
    }
    1
}

fn read_advert_interval(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    version: Version,
) -> AdvertInterval {
    let Some(d) = t.duration(p, "advert_interval") else {
        return AdvertInterval::ONE_SECOND;
    };
    match interval_from_duration(d.value, version) {
        Ok(interval) => interval,
        Err(message) => {
            p.add(&d.span, t.key("advert_interval"), message);
            AdvertInterval::ONE_SECOND
        }
    }
}

/// A VRRP interval from a duration: whole seconds for v2 (RFC 3768 5.3.7), centiseconds
/// 1..=4095 for v3 (RFC 5798 5.2.7).
fn interval_from_duration(d: Duration, version: Version) -> Result<AdvertInterval, String> {
    let nanos = d.as_nanos();
    match version {
        Version::V2 => {
            let seconds = u8::try_from(d.as_secs())
                .ok()
                .filter(|_| nanos % 1_000_000_000 == 0);
            seconds
                .and_then(AdvertInterval::from_seconds)
                .ok_or_else(|| "VRRPv2 carries whole seconds from 1s to 255s".into())
        }
        Version::V3 => {
            if nanos % 10_000_000 != 0 {
                return Err("VRRPv3 carries centiseconds: use a multiple of 10ms".into());
            }
            u16::try_from(nanos / 10_000_000)
                .ok()
                .filter(|&cs| cs != 0 && cs <= AdvertInterval::MAX_V3_CENTISECONDS)
                .and_then(AdvertInterval::from_centiseconds)
                .ok_or_else(|| "VRRPv3 intervals run from 10ms to 40.95s".into())
        }
    }
}

/// `startup_limit`: `"auto"` (the default), `"off"`, or a duration up to an hour.
fn read_startup_limit(p: &mut Record, t: &mut TableReader<'_, '_>) -> StartupLimit {
    let Some(written) = t.string(p, "startup_limit") else {
        return StartupLimit::Auto;
    };
    match written.value.trim() {
        "auto" => StartupLimit::Auto,
        "off" => StartupLimit::Off,
        text => match parse_duration(text) {
            Ok(limit) if limit <= Duration::from_secs(3600) => StartupLimit::After(limit),
            Ok(_) => {
                p.add(&written.span, t.key("startup_limit"), "at most 1h");
                StartupLimit::Auto
            }
            Err(message) => {
                let message = format!("{message}; or \"auto\" or \"off\"");
                p.add(&written.span, t.key("startup_limit"), message);
                StartupLimit::Auto
            }
        },
    }
}

fn read_preempt_delay(p: &mut Record, t: &mut TableReader<'_, '_>) -> Duration {
    let delay = t
        .duration(p, "preempt_delay")
        .map_or(Duration::ZERO, |d| d.value);
    if delay > Duration::from_secs(1000) {
        p.add(
            &t.span(),
            t.key("preempt_delay"),
            "at most 1000s (keepalived's limit)",
        );
    }
    delay
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))
}

fn read_unicast_peers(p: &mut Record, t: &mut TableReader<'_, '_>) -> Vec<IpAddr> {
    let mut peers = Vec::new();
    let key = t.key("unicast_peers");
    for at in t.strings(p, "unicast_peers").unwrap_or_default() {
        if let Some(ip) = p.parsed(&key, &at, parse_ip) {
            if peers.contains(&ip) {
                p.add(&at.span, &key, format!("{ip} is listed twice"));
            }
            peers.push(ip);
        }
    }
    peers
}

fn read_authentication(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    version: Version,
) -> Authentication {
    let Some(Written { value, span }) = t.string(p, "auth_pass") else {
        return Authentication::None;
    };
    if value.is_empty() {
        p.add(&span, t.key("auth_pass"), "must not be empty");
        return Authentication::None;
    }
    if version != Version::V2 {
        p.add(
            &span,
            t.key("auth_pass"),
            "authentication exists only in VRRPv2 (RFC 5798 removed it); set version = 2 or remove it",
        );
    }
    Authentication::SimplePassword(havip_vrrp::Password::from_keepalived_auth_pass(&value))
}

/// `[vrrp.announce]`, over the protocol's defaults.
fn read_announce(p: &mut Record, t: &mut TableReader<'_, '_>) -> AnnouncementConfig {
    let mut a = AnnouncementConfig::default();
    let Some(mut at) = t.table(p, "announce", keys::ANNOUNCE.keys) else {
        return a;
    };
    let max = havip_vrrp::config::MAX_ANNOUNCEMENT_ROUNDS;
    if let Some(n) = at.u32(p, "burst_count", 0..=max) {
        a.burst_count = n;
    }
    if let Some(d) = at.duration(p, "burst_spacing") {
        a.burst_spacing = d.value;
    }
    if let Some(d) = at.duration(p, "second_burst_delay") {
        a.second_burst_delay = (!d.value.is_zero()).then_some(d.value);
    }
    if let Some(d) = at.duration(p, "refresh_interval") {
        a.refresh_interval = (!d.value.is_zero()).then_some(d.value);
    }
    if let Some(n) = at.u32(p, "refresh_count", 1..=max) {
        a.refresh_count = n;
    }
    if let Some(n) = at.u32(p, "lower_priority_burst_count", 0..=max) {
        a.lower_priority_burst_count = n;
    }
    at.finish(p);
    a
}

/// `[vrrp.notify]`.
fn read_notify(p: &mut Record, t: &mut TableReader<'_, '_>) -> NotifySettings {
    let Some(mut nt) = t.table(p, "notify", keys::NOTIFY.keys) else {
        return NotifySettings::default();
    };
    let shell = nt.bool(p, "shell").unwrap_or(false);
    let mut n = NotifySettings {
        command: read_command(p, &mut nt, "command", shell),
        master: read_command(p, &mut nt, "master", shell),
        backup: read_command(p, &mut nt, "backup", shell),
        fault: read_command(p, &mut nt, "fault", shell),
        stop: read_command(p, &mut nt, "stop", shell),
        ..NotifySettings::default()
    };
    if let Some(d) = nt.duration_at_least(p, "timeout", MIN_NOTIFY_TIMEOUT) {
        n.timeout = d;
    }
    n.user = nt.string(p, "user").map(|u| u.value);
    nt.finish(p);
    n
}

/// `track = ["name", { tracker = "name", weight = -20 }]`: each a defined tracker, once.
fn read_track_refs(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Vec<TrackRef> {
    let key = t.key("track");
    let Some(items) = t.array(p, "track") else {
        return Vec::new();
    };
    let mut out: Vec<TrackRef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        let Some(reference) = read_track_ref(p, item, &item_key) else {
            continue;
        };
        if !trackers.iter().any(|tr| tr.name == reference.tracker) {
            let known: Vec<&str> = trackers.iter().map(|tr| tr.name.as_str()).collect();
            let message = if known.is_empty() {
                format!("no [[tracker]] is named {:?}", reference.tracker)
            } else {
                format!(
                    "no [[tracker]] is named {:?} (defined: {})",
                    reference.tracker,
                    known.join(", ")
                )
            };
            p.add(&item.span(), &item_key, message);
            continue;
        }
        if out.iter().any(|o| o.tracker == reference.tracker) {
            p.add(&item.span(), &item_key, "tracked twice");
            continue;
        }
        out.push(reference);
    }
    out
}

fn read_track_ref(p: &mut Record, item: &Spanned<DeValue<'_>>, item_key: &str) -> Option<TrackRef> {
    match item.get_ref() {
        DeValue::String(s) => Some(TrackRef {
            tracker: s.to_string(),
            weight: None,
        }),
        DeValue::Table(table) => {
            let mut rt = TableReader::new(item_key, table, item.span(), keys::TRACK_REF.keys);
            let tracker = rt.string(p, "tracker");
            let weight = rt
                .int(p, "weight", -253..=253)
                .and_then(|w| i32::try_from(w.value).ok());
            rt.finish(p);
            if tracker.is_none() {
                p.add(
                    &item.span(),
                    item_key,
                    "missing: tracker (the tracker's name)",
                );
            }
            Some(TrackRef {
                tracker: tracker?.value,
                weight,
            })
        }
        other => {
            p.add(
                &item.span(),
                item_key,
                format!(
                    "expected a tracker name or {{ tracker = ..., weight = ... }}, found {}",
                    other.type_str()
                ),
            );
            None
        }
    }
}
