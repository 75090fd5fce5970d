//! Property tests: the codec round-trips every valid advertisement, rejects every single
//! corrupted byte, and never panics on arbitrary bytes; the state machine never panics and
//! keeps its invariants under arbitrary input sequences.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use havip_vrrp::packet::{
    decode, encode, AddressList, Advertisement, Authentication, ChecksumContext, Password,
    V3Ipv4Checksum, Version,
};
use havip_vrrp::{
    Action, AdvertInterval, Input, Instance, InstanceConfig, ReceivedPacket, State, TimerKind,
    Timestamp, Tracking,
};
use proptest::prelude::*;

fn checksum_form() -> impl Strategy<Value = V3Ipv4Checksum> {
    prop_oneof![
        Just(V3Ipv4Checksum::PseudoHeader),
        Just(V3Ipv4Checksum::MessageOnly)
    ]
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn v4_context() -> impl Strategy<Value = ChecksumContext> {
    (ipv4(), ipv4(), checksum_form()).prop_map(|(source, destination, form)| ChecksumContext {
        source: IpAddr::V4(source),
        destination: IpAddr::V4(destination),
        v3_ipv4_checksum: form,
    })
}

fn v6_context() -> impl Strategy<Value = ChecksumContext> {
    (ipv6(), ipv6(), checksum_form()).prop_map(|(source, destination, form)| ChecksumContext {
        source: IpAddr::V6(source),
        destination: IpAddr::V6(destination),
        v3_ipv4_checksum: form,
    })
}

fn any_context() -> impl Strategy<Value = ChecksumContext> {
    prop_oneof![
        v4_context(),
        v6_context(),
        // mixed families must be refused, not crash
        (ipv4(), ipv6(), checksum_form()).prop_map(|(s, d, form)| ChecksumContext {
            source: IpAddr::V4(s),
            destination: IpAddr::V6(d),
            v3_ipv4_checksum: form,
        }),
    ]
}

/// A valid advertisement with a context it can be sent in.
fn valid_advertisement() -> impl Strategy<Value = (Advertisement, ChecksumContext)> {
    let v2 = (
        any::<u8>(),
        any::<u8>(),
        1u8..=255,
        prop::collection::vec(ipv4(), 1..=20),
        prop::option::of(any::<[u8; 8]>()),
        v4_context(),
    )
        .prop_map(|(vrid, priority, seconds, addresses, password, context)| {
            let advert = Advertisement {
                version: Version::V2,
                vrid,
                priority,
                interval: AdvertInterval::from_seconds(seconds).expect("non-zero"),
                addresses: AddressList::V4(addresses),
                authentication: password.map_or(Authentication::None, |bytes| {
                    Authentication::SimplePassword(Password::from_bytes(bytes))
                }),
            };
            (advert, context)
        });
    let v3_v4 = (
        any::<u8>(),
        any::<u8>(),
        1u16..=4095,
        prop::collection::vec(ipv4(), 1..=20),
        v4_context(),
    )
        .prop_map(|(vrid, priority, centiseconds, addresses, context)| {
            let advert = Advertisement {
                version: Version::V3,
                vrid,
                priority,
                interval: AdvertInterval::from_centiseconds(centiseconds).expect("non-zero"),
                addresses: AddressList::V4(addresses),
                authentication: Authentication::None,
            };
            (advert, context)
        });
    let v3_v6 = (
        any::<u8>(),
        any::<u8>(),
        1u16..=4095,
        prop::collection::vec(ipv6(), 1..=8),
        v6_context(),
    )
        .prop_map(|(vrid, priority, centiseconds, addresses, context)| {
            let advert = Advertisement {
                version: Version::V3,
                vrid,
                priority,
                interval: AdvertInterval::from_centiseconds(centiseconds).expect("non-zero"),
                addresses: AddressList::V6(addresses),
                authentication: Authentication::None,
            };
            (advert, context)
        });
    prop_oneof![v2, v3_v4, v3_v6]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_inverts_encode((advert, context) in valid_advertisement()) {
        let bytes = encode(&advert, &context).expect("valid advertisements encode");
        prop_assert_eq!(bytes.len(), advert.encoded_len());
        prop_assert_eq!(decode(&bytes, &context), Ok(advert));
    }

    #[test]
    fn every_single_corrupted_byte_is_rejected(
        (advert, context) in valid_advertisement(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = encode(&advert, &context).expect("encodes");
        let index = position.index(bytes.len());
        bytes[index] ^= flip;
        // The one's-complement sum changes by k or 256·k (0 < k < 256), never by a multiple of
        // 0xffff, so the checksum (or an earlier check) catches every single-byte change; the
        // v2 auth data is summed too, even with auth type 0 where its value is ignored.
        prop_assert!(decode(&bytes, &context).is_err(), "byte {} ^ {:#04x} accepted", index, flip);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_re_encodes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        context in any_context(),
    ) {
        if let Ok(advert) = decode(&bytes, &context) {
            // Reserved bits and ignored auth data aside, what decodes is a valid advertisement.
            let again = encode(&advert, &context).expect("a decoded advertisement encodes");
            prop_assert_eq!(decode(&again, &context), Ok(advert));
        }
    }

    #[test]
    fn headers_that_almost_parse_never_panic(
        version_type in prop_oneof![Just(0x21u8), Just(0x31u8), any::<u8>()],
        count in any::<u8>(),
        rest in prop::collection::vec(any::<u8>(), 0..300),
        context in any_context(),
    ) {
        let mut bytes = vec![version_type, 1, 100, count];
        bytes.extend(rest);
        let _ = decode(&bytes, &context);
    }
}

// --- the state machine under arbitrary inputs --------------------------------------------------

/// One step of an arbitrary input sequence. Packets are either garbage or valid adverts from a
/// peer with a random priority, so both the drop paths and the transitions are exercised.
#[derive(Debug, Clone)]
enum Step {
    Startup,
    Shutdown,
    Garbage(Vec<u8>, u8),
    PeerAdvert {
        peer: u8,
        priority: u8,
        interval_cs: u16,
    },
    Timer(usize),
    Tracking(u8, bool),
    InterfaceUp,
    InterfaceDown,
    OperatorStepDown,
    Restore,
    /// Someone else removes the virtual address from the interface.
    AddressRemoved,
    /// Safe boot: the trackers have reported.
    TrackersReady,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Startup),
        1 => Just(Step::Shutdown),
        2 => (prop::collection::vec(any::<u8>(), 0..64), any::<u8>()).prop_map(|(b, t)| Step::Garbage(b, t)),
        6 => (2u8..=4, any::<u8>(), prop_oneof![Just(10u16), Just(100u16), 1u16..=4095])
            .prop_map(|(peer, priority, interval_cs)| Step::PeerAdvert { peer, priority, interval_cs }),
        8 => (0..TimerKind::ALL.len()).prop_map(Step::Timer),
        1 => (any::<u8>(), prop::bool::weighted(0.2)).prop_map(|(p, f)| Step::Tracking(p, f)),
        1 => Just(Step::InterfaceUp),
        1 => Just(Step::InterfaceDown),
        1 => Just(Step::OperatorStepDown),
        1 => Just(Step::Restore),
        1 => Just(Step::AddressRemoved),
        1 => Just(Step::TrackersReady),
    ]
}

fn config(
    version: Version,
    priority: u8,
    preempt: bool,
    delay_ms: u64,
    graceful: bool,
) -> InstanceConfig {
    let mut config = InstanceConfig::new(
        7,
        "192.0.2.1".parse().expect("address"),
        vec!["192.0.2.100".parse().expect("address")],
    );
    config.version = version;
    config.priority = priority;
    config.preempt = preempt;
    config.preempt_delay = Duration::from_millis(delay_ms);
    config.announcements.burst_spacing = Duration::from_millis(10);
    config.announcements.refresh_interval = Some(Duration::from_secs(3));
    config.graceful_release = graceful;
    // Half of the runs boot safely (odd delays), so the wait meets every other input too.
    if delay_ms % 2 == 1 {
        config.startup_limit = Some(Duration::from_millis(2500));
    }
    config
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_state_machine_keeps_its_invariants(
        version in prop_oneof![Just(Version::V2), Just(Version::V3)],
        priority in 1u8..=255,
        preempt in any::<bool>(),
        delay_ms in prop_oneof![Just(0u64), 1u64..3000],
        graceful in any::<bool>(),
        steps in prop::collection::vec((step(), 0u64..2_000_000_000), 1..120),
    ) {
        let config = config(version, priority, preempt, delay_ms, graceful);
        let mut instance = Instance::new(config.clone()).expect("valid");
        let mut now = Timestamp::ZERO;
        let mut holds_addresses = false;
        for (step, advance) in steps {
            // Timers fire at their deadline when one is armed, else the clock moves on.
            now = match (&step, instance.next_timer()) {
                (Step::Timer(_), Some((_, deadline))) if deadline >= now => deadline,
                _ => now + Duration::from_nanos(advance),
            };
            let payload;
            let input = match &step {
                Step::Startup => Input::Startup,
                Step::Shutdown => Input::Shutdown,
                Step::Garbage(bytes, ttl) => Input::Packet(ReceivedPacket {
                    source: "192.0.2.9".parse().expect("address"),
                    destination: "224.0.0.18".parse().expect("address"),
                    ttl: *ttl,
                    payload: bytes,
                }),
                Step::PeerAdvert { peer, priority, interval_cs } => {
                    let interval = match version {
                        Version::V2 => AdvertInterval::ONE_SECOND,
                        Version::V3 => AdvertInterval::from_centiseconds(*interval_cs).expect("non-zero"),
                    };
                    let source = IpAddr::from([192, 0, 2, *peer]);
                    let advert = Advertisement {
                        version,
                        vrid: 7,
                        priority: *priority,
                        interval,
                        addresses: AddressList::V4(vec![Ipv4Addr::new(192, 0, 2, 100)]),
                        authentication: Authentication::None,
                    };
                    let destination: IpAddr = "224.0.0.18".parse().expect("address");
                    payload = encode(&advert, &ChecksumContext {
                        source,
                        destination,
                        v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
                    }).expect("encodes");
                    Input::Packet(ReceivedPacket { source, destination, ttl: 255, payload: &payload })
                }
                Step::Timer(index) => Input::TimerFired(TimerKind::ALL[*index]),
                Step::Tracking(priority, fault) => Input::TrackingChanged(Tracking { priority: *priority, fault: *fault }),
                Step::InterfaceUp => Input::InterfaceUp,
                Step::InterfaceDown => Input::InterfaceDown,
                Step::OperatorStepDown => Input::StepDown,
                Step::Restore => Input::Restore,
                Step::TrackersReady => Input::TrackersReady,
                Step::AddressRemoved => {
                    // Gone from the interface, whoever held it; a holder must put it back.
                    holds_addresses = false;
                    Input::AddressRemoved("192.0.2.100".parse().expect("address"))
                }
            };
            let timers_before: Vec<_> = TimerKind::ALL.iter().map(|k| instance.timer_deadline(*k)).collect();
            let actions = instance.handle(now, input);
            for (kind, before) in TimerKind::ALL.iter().zip(&timers_before) {
                let after = instance.timer_deadline(*kind);
                if let Some(deadline) = after.filter(|_| after != *before) {
                    prop_assert!(deadline >= now, "timer armed in the past");
                }
            }
            for action in &actions {
                match action {
                    Action::AddAddresses { .. } => {
                        prop_assert!(!holds_addresses, "addresses added twice");
                        holds_addresses = true;
                    }
                    Action::RemoveAddresses { .. } => {
                        prop_assert!(holds_addresses, "addresses removed twice");
                        holds_addresses = false;
                    }
                    Action::SendAdvertisement(advert) => {
                        let p = advert.advertisement.priority;
                        prop_assert!(p == 0 || p == instance.priority(), "advertised {}", p);
                        prop_assert_eq!(advert.ttl, 255);
                    }
                    _ => {}
                }
            }
            let state = instance.state();
            prop_assert_eq!(holds_addresses, instance.holds_addresses());
            if graceful {
                // Master always holds; a release in progress holds too, and only then.
                prop_assert!(state != State::Master || holds_addresses);
                prop_assert_eq!(
                    holds_addresses,
                    state == State::Master || instance.handover().is_some()
                );
            } else {
                prop_assert_eq!(holds_addresses, state == State::Master, "addresses follow Master");
                prop_assert_eq!(instance.handover(), None);
            }
            let armed = |kind| instance.timer_deadline(kind).is_some();
            match state {
                State::Master => {
                    prop_assert!(armed(TimerKind::Advert));
                    prop_assert!(!armed(TimerKind::MasterDown) && !armed(TimerKind::PreemptDelay));
                }
                State::Backup => {
                    // A safe-boot wait may hold a fired Master_Down_Timer until it ends.
                    prop_assert!(armed(TimerKind::MasterDown) || instance.awaiting_trackers());
                    prop_assert!(!armed(TimerKind::Advert));
                }
                State::Initialize | State::Fault => {
                    // Nothing runs but a release waiting for the new master, and a safe-boot
                    // wait's limit.
                    for kind in TimerKind::ALL {
                        let allowed = match kind {
                            TimerKind::Handover => instance.handover().is_some(),
                            TimerKind::StartupLimit => instance.awaiting_trackers(),
                            _ => false,
                        };
                        prop_assert_eq!(armed(kind), allowed, "{:?}", kind);
                    }
                }
            }
            prop_assert_eq!(armed(TimerKind::StartupLimit), instance.awaiting_trackers());
            prop_assert_eq!(state == State::Fault && instance.fault_cause().is_none(), false);
        }
    }
}
