//! Arbitrary drafts: every table and key of the model, set or not, with any value (names
//! and paths of any characters, numbers and durations at their extremes). What the emitter
//! writes of them must be TOML with only keys havip's reader knows, each of the type it
//! expects; the values themselves may be refused.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use havip_config::place::Place;
use proptest::prelude::*;

use crate::model::*;

fn place() -> impl Strategy<Value = Place> {
    ("\\PC{0,8}", 0u32..100_000, 0u32..1000, "\\PC{0,10}").prop_map(|(file, line, column, key)| {
        Place::new(&Arc::from(file.as_str()), line, column, key)
    })
}

fn sourced<T: Clone + std::fmt::Debug>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = Sourced<T>> {
    (value, place(), prop::option::of("\\PC{0,20}")).prop_map(|(value, place, note)| Sourced {
        value,
        place,
        note,
    })
}

fn opt<T: Clone + std::fmt::Debug>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<Sourced<T>>> {
    prop::option::of(sourced(value))
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,16}"
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..100_000).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_secs),
        (0u64..1_000_000).prop_map(Duration::from_micros),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>()
}

fn argv() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..4)
}

fn timeouts() -> impl Strategy<Value = Timeouts> {
    let tunnel = prop_oneof![Just(OrOff::Off), duration().prop_map(OrOff::On)];
    (
        opt(duration()),
        opt(duration()),
        opt(duration()),
        opt(duration()),
        opt(tunnel),
    )
        .prop_map(
            |(connect, queue, client_idle, server_idle, tunnel)| Timeouts {
                connect,
                queue,
                client_idle,
                server_idle,
                tunnel,
            },
        )
}

fn limits() -> impl Strategy<Value = Limits> {
    (opt(any::<u32>()), opt(any::<u32>()), opt(any::<u32>())).prop_map(
        |(max_conns, max_queue, backlog)| Limits {
            max_conns,
            max_queue,
            backlog,
        },
    )
}

fn tls() -> impl Strategy<Value = Tls> {
    (
        opt(any::<bool>()),
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
    )
        .prop_map(|(verify, ca_file, client_cert, client_key, sni)| Tls {
            verify,
            ca_file,
            client_cert,
            client_key,
            sni,
        })
}

fn health() -> impl Strategy<Value = Health> {
    let check = prop::sample::select(vec![Check::Https, Check::Http, Check::Tcp, Check::None]);
    let ranges = prop::collection::vec((any::<u16>(), any::<u16>()), 0..3);
    (
        (opt(check), opt(text()), opt(text()), opt(ranges)),
        (
            opt(duration()),
            opt(duration()),
            opt(duration()),
            opt(duration()),
        ),
        (
            opt(any::<u32>()),
            opt(any::<u32>()),
            opt(any::<u16>()),
            tls(),
        ),
    )
        .prop_map(
            |(
                (check, path, host, expect_status),
                (interval, fast_interval, down_interval, timeout),
                (rise, fall, port, tls),
            )| Health {
                check,
                path,
                host,
                expect_status,
                interval,
                fast_interval,
                down_interval,
                timeout,
                rise,
                fall,
                port,
                tls,
            },
        )
}

fn backend() -> impl Strategy<Value = Backend> {
    (
        place(),
        opt(text()),
        sourced(text()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<bool>()),
    )
        .prop_map(|(from, name, address, weight, max_conns, backup)| Backend {
            from,
            name,
            address,
            weight,
            max_conns,
            backup,
        })
}

fn service() -> impl Strategy<Value = Service> {
    let balance = prop::sample::select(vec![
        "round_robin",
        "least_conn",
        "source_hash",
        "random_two",
    ]);
    (
        (
            place(),
            prop::collection::vec(place(), 0..2),
            sourced(text()),
            prop::collection::vec(sourced(text()), 0..3),
        ),
        (
            opt(balance),
            opt(any::<u32>()),
            opt(duration()),
            opt(any::<bool>()),
        ),
        (timeouts(), limits(), health()),
        (
            opt(any::<u32>()),
            opt(duration()),
            prop::collection::vec(backend(), 0..3),
        ),
    )
        .prop_map(
            |(
                (from, also_from, name, listen),
                (balance, retries, slow_start, close_on_down),
                (timeouts, limits, health),
                (max_fails, fail_timeout, backends),
            )| Service {
                from,
                also_from,
                name,
                listen,
                balance,
                retries,
                slow_start,
                close_on_down,
                timeouts,
                limits,
                health,
                passive: Passive {
                    max_fails,
                    fail_timeout,
                },
                backends,
            },
        )
}

fn vip() -> impl Strategy<Value = Vip> {
    (
        ip(),
        any::<u8>(),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(address, prefix, interface, label)| Vip {
            address,
            prefix,
            interface,
            label,
        })
}

fn announce() -> impl Strategy<Value = Announce> {
    (
        opt(any::<u32>()),
        opt(duration()),
        opt(duration()),
        opt(duration()),
        opt(any::<u32>()),
        opt(any::<u32>()),
    )
        .prop_map(
            |(
                burst_count,
                burst_spacing,
                second_burst_delay,
                refresh_interval,
                refresh_count,
                lower_priority_burst_count,
            )| Announce {
                burst_count,
                burst_spacing,
                second_burst_delay,
                refresh_interval,
                refresh_count,
                lower_priority_burst_count,
            },
        )
}

fn notify() -> impl Strategy<Value = Notify> {
    (
        opt(argv()),
        opt(argv()),
        opt(argv()),
        opt(argv()),
        opt(argv()),
        opt(text()),
    )
        .prop_map(|(command, master, backup, fault, stop, user)| Notify {
            command,
            master,
            backup,
            fault,
            stop,
            user,
        })
}

fn vrrp() -> impl Strategy<Value = Vrrp> {
    let track = (text(), prop::option::of(any::<i32>()))
        .prop_map(|(tracker, weight)| TrackRef { tracker, weight });
    (
        (place(), sourced(text()), opt(text()), opt(any::<u8>())),
        (
            opt(any::<u8>()),
            opt(any::<u8>()),
            opt(duration()),
            opt(any::<bool>()),
        ),
        (
            opt(duration()),
            opt(any::<bool>()),
            prop::collection::vec(sourced(vip()), 0..3),
            opt(ip()),
        ),
        (
            opt(prop::collection::vec(ip(), 0..3)),
            opt(any::<bool>()),
            opt(text()),
            prop::collection::vec(sourced(track), 0..3),
        ),
        (announce(), notify(), prop::option::of(place())),
    )
        .prop_map(
            |(
                (from, name, interface, vrid),
                (version, priority, advert_interval, preempt),
                (preempt_delay, accept, virtual_addresses, source),
                (unicast_peers, check_unicast_source, auth_pass, track),
                (announce, notify, initial_master),
            )| Vrrp {
                from,
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
                check_unicast_source,
                auth_pass,
                track,
                announce,
                notify,
                initial_master,
            },
        )
}

fn tracker() -> impl Strategy<Value = Tracker> {
    let kind = prop::sample::select(vec![
        TrackerKind::Script,
        TrackerKind::Service,
        TrackerKind::Listener,
        TrackerKind::Interface,
        TrackerKind::Process,
        TrackerKind::File,
    ]);
    (
        (place(), sourced(text()), sourced(kind), opt(any::<i32>())),
        (
            opt(any::<u32>()),
            opt(any::<u32>()),
            opt(duration()),
            opt(argv()),
        ),
        (opt(duration()), opt(text()), opt(text()), opt(any::<u32>())),
        (opt(text()), opt(text()), opt(text())),
    )
        .prop_map(
            |(
                (from, name, kind, weight),
                (rise, fall, interval, command),
                (timeout, user, service, min_healthy),
                (interface, process, path),
            )| Tracker {
                from,
                name,
                kind,
                weight,
                rise,
                fall,
                interval,
                command,
                timeout,
                user,
                service,
                min_healthy,
                interface,
                process,
                path,
            },
        )
}

/// Any draft.
pub fn draft() -> impl Strategy<Value = Draft> {
    let admin = (
        place(),
        sourced(text()),
        prop::collection::vec(sourced(text()), 0..3),
    )
        .prop_map(|(from, listen, auth)| Admin { from, listen, auth });
    (
        prop::collection::vec(text(), 0..3),
        (opt(any::<u32>()), opt(any::<u32>()), opt(any::<bool>())),
        prop::option::of(admin),
        prop::collection::vec(service(), 0..3),
        prop::collection::vec(vrrp(), 0..3),
        prop::collection::vec(tracker(), 0..3),
    )
        .prop_map(
            |(inputs, (max_conns, workers, connections), admin, services, vrrp, trackers)| Draft {
                inputs,
                global: Global { max_conns, workers },
                log: Log { connections },
                admin,
                services,
                vrrp,
                trackers,
            },
        )
}
