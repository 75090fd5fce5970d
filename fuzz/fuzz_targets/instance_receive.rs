//! Fuzzes the whole receive path of an instance (every RFC 7.1 check) and the state machine
//! behind it. Input: a config selector byte, then 3-byte records [op, x, y]:
//!
//! - op % 4 == 0: a raw packet with TTL x and the next y input bytes as payload;
//! - op % 4 == 1: a valid advertisement from peer 192.0.2.(2 + x % 3) with priority y
//!   (encoded here, so the fuzzer reaches the transitions without forging checksums);
//! - op % 4 == 2: the earliest armed timer fires at its deadline;
//! - op % 4 == 3: tracking changes to priority x (fault if y & 1), or the link flaps (y & 2).
//!
//! The clock advances x milliseconds per record. Nothing may panic, and the virtual addresses
//! must be held exactly while the instance is Master.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use havip_vrrp::packet::{
    encode, AddressList, Advertisement, Authentication, ChecksumContext, Password, V3Ipv4Checksum,
    Version,
};
use havip_vrrp::{
    Action, AdvertInterval, Config, Input, Instance, ReceivedPacket, State, Timestamp, Tracking,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let mut config = Config::new(
        51,
        "192.0.2.1".parse().expect("address"),
        vec!["192.0.2.100".parse().expect("address")],
    );
    config.priority = if selector & 0x80 != 0 { 255 } else { 100 };
    config.preempt = selector & 0x40 == 0;
    if selector & 0x20 != 0 {
        config.preempt_delay = Duration::from_millis(1500);
    }
    if selector & 0x10 != 0 {
        config.announcements.burst_spacing = Duration::from_millis(20);
    }
    let password = Password::from_keepalived_auth_pass("secret");
    if selector & 1 == 0 {
        config.version = Version::V2;
        if selector & 2 != 0 {
            config.authentication = Authentication::SimplePassword(password);
        }
    }
    let version = config.version;
    let authentication = config.authentication;
    let Ok(mut instance) = Instance::new(config) else {
        return;
    };
    let destination: IpAddr = "224.0.0.18".parse().expect("address");
    let mut now = Timestamp::ZERO;
    let mut holds = false;
    let mut check = |actions: Vec<Action>, instance: &Instance, now: Timestamp| {
        for action in actions {
            match action {
                Action::AddAddresses { .. } => {
                    assert!(!holds);
                    holds = true;
                }
                Action::RemoveAddresses { .. } => {
                    assert!(holds);
                    holds = false;
                }
                Action::ArmTimer { deadline, .. } => assert!(deadline >= now),
                _ => {}
            }
        }
        assert_eq!(holds, instance.state() == State::Master);
    };
    let actions = instance.handle(now, Input::Startup);
    check(actions, &instance, now);

    while let Some((&[op, x, y], tail)) = rest.split_first_chunk::<3>() {
        rest = tail;
        now = now + Duration::from_millis(u64::from(x));
        let actions = match op % 4 {
            0 => {
                let length = usize::from(y).min(rest.len());
                let (payload, next) = rest.split_at(length);
                rest = next;
                instance.handle(
                    now,
                    Input::Packet(ReceivedPacket {
                        source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
                        destination,
                        ttl: x,
                        payload,
                    }),
                )
            }
            1 => {
                let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2 + x % 3));
                let interval = match version {
                    Version::V2 => AdvertInterval::ONE_SECOND,
                    Version::V3 => AdvertInterval::from_centiseconds(u16::from(op % 64) + 1)
                        .unwrap_or(AdvertInterval::ONE_SECOND),
                };
                let advert = Advertisement {
                    version,
                    vrid: 51,
                    priority: y,
                    interval,
                    addresses: AddressList::V4(vec![Ipv4Addr::new(192, 0, 2, 100)]),
                    authentication,
                };
                let context = ChecksumContext {
                    source,
                    destination,
                    v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
                };
                let payload = encode(&advert, &context).expect("valid advertisement");
                instance.handle(
                    now,
                    Input::Packet(ReceivedPacket {
                        source,
                        destination,
                        ttl: 255,
                        payload: &payload,
                    }),
                )
            }
            2 => match instance.next_timer() {
                Some((kind, deadline)) => {
                    now = now.max(deadline);
                    instance.handle(now, Input::TimerFired(kind))
                }
                None => Vec::new(),
            },
            _ if y & 2 != 0 => {
                let input = if y & 4 != 0 {
                    Input::InterfaceDown
                } else {
                    Input::InterfaceUp
                };
                instance.handle(now, input)
            }
            _ => instance.handle(
                now,
                Input::TrackingChanged(Tracking {
                    priority: x,
                    fault: y & 1 != 0,
                }),
            ),
        };
        check(actions, &instance, now);
    }
});
