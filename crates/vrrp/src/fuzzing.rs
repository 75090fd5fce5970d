//! The bodies of the cargo-fuzz targets in `fuzz/`, kept here so that the regression test below
//! replays exactly what the fuzzer ran. Compiled for tests and with the `fuzzing` feature only.
//!
//! - [`decode_ipv4`] / [`decode_ipv6`]: the decoder with IPv4 / IPv6 metadata; whatever decodes
//!   must re-encode to an advertisement that decodes the same.
//! - [`instance_receive`]: the whole receive path of an instance (every RFC 7.1 check) and the
//!   state machine behind it, with and without graceful release; the addresses must be held
//!   exactly while [`Instance::holds_addresses`] says so, which is always in Master; and the
//!   instance's [`Screen`](crate::Screen) must reject exactly what the instance drops.
//!
//! A crash found by `scripts/fuzz.sh` becomes a regression test by copying its input file into
//! `crates/vrrp/tests/fuzz_regressions/<target>/`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::packet::{
    decode, encode, AddressList, Advertisement, Authentication, ChecksumContext, Password,
    V3Ipv4Checksum, Version,
};
use crate::{
    Action, AdvertInterval, Input, Instance, InstanceConfig, ReceivedPacket, State, TimerKind,
    Timestamp, Tracking,
};

/// Input: checksum-form byte, source (4 bytes), destination (4 bytes), VRRP payload.
pub fn decode_ipv4(data: &[u8]) {
    let Some((header, payload)) = data.split_first_chunk::<9>() else {
        return;
    };
    let [form, s0, s1, s2, s3, d0, d1, d2, d3] = *header;
    let context = ChecksumContext {
        source: IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
        destination: IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
        v3_ipv4_checksum: if form & 1 == 0 {
            V3Ipv4Checksum::PseudoHeader
        } else {
            V3Ipv4Checksum::MessageOnly
        },
    };
    round_trip_if_valid(payload, &context);
}

/// Input: source (16 bytes), destination (16 bytes), VRRP payload.
pub fn decode_ipv6(data: &[u8]) {
    let Some((source, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let Some((destination, payload)) = rest.split_first_chunk::<16>() else {
        return;
    };
    let context = ChecksumContext {
        source: IpAddr::V6(Ipv6Addr::from(*source)),
        destination: IpAddr::V6(Ipv6Addr::from(*destination)),
        v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
    };
    round_trip_if_valid(payload, &context);
}

fn round_trip_if_valid(payload: &[u8], context: &ChecksumContext) {
    if let Ok(advert) = decode(payload, context) {
        let bytes = encode(&advert, context);
        assert!(
            bytes.is_ok(),
            "a decoded advertisement must encode: {bytes:?}"
        );
        if let Ok(bytes) = bytes {
            assert_eq!(decode(&bytes, context), Ok(advert));
        }
    }
}

/// Input: a config selector byte, then 3-byte records `[op, x, y]`:
///
/// - `op % 4 == 0`: a raw packet with TTL `x` and the next `y` input bytes as payload;
/// - `op % 4 == 1`: a valid advertisement from peer 192.0.2.(2 + x % 3) with priority `y`
///   (encoded here, so the fuzzer reaches the transitions without forging checksums);
/// - `op % 4 == 2`: the earliest armed timer fires at its deadline;
/// - `op % 4 == 3`: tracking changes to priority `x` (fault if `y & 1`), or the link flaps
///   (`y & 2`, down if `y & 4`), or an operator steps down or restores (`y & 8`, restore if
///   `y & 16`), or someone removes the virtual address (`y & 32`).
///
/// Config selector bits: 0x80 owner, 0x40 no preempt, 0x20 preempt delay, 0x10 burst
/// spacing, 0x08 graceful release, 0x01 v3 (else v2, with a password if 0x02). The clock
/// advances `x` milliseconds per record.
pub fn instance_receive(data: &[u8]) {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let config = fuzzed_config(selector);
    let (version, authentication) = (config.version, config.authentication);
    let Ok(mut instance) = Instance::new(config) else {
        return;
    };
    let mut now = Timestamp::ZERO;
    let mut holds = false;
    let before = timers(&instance);
    let actions = instance.handle(now, Input::Startup);
    check_actions(actions, &instance, now, &before, &mut holds);

    while let Some((&[op, x, y], tail)) = rest.split_first_chunk::<3>() {
        rest = tail;
        now = now + Duration::from_millis(u64::from(x));
        let before = timers(&instance);
        let actions = match op % 4 {
            0 => {
                let length = usize::from(y).min(rest.len());
                let (payload, next) = rest.split_at(length);
                rest = next;
                let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
                deliver(&mut instance, now, source, x, payload)
            }
            1 => {
                let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2 + x % 3));
                let payload = peer_advert(version, authentication, source, op, y);
                deliver(&mut instance, now, source, 255, &payload)
            }
            2 => match instance.next_timer() {
                Some((kind, deadline)) => {
                    now = now.max(deadline);
                    instance.handle(now, Input::TimerFired(kind))
                }
                None => Vec::new(),
            },
            _ => other_input(&mut instance, now, x, y, &mut holds),
        };
        check_actions(actions, &instance, now, &before, &mut holds);
    }
}

/// The instance configuration the selector byte chooses.
fn fuzzed_config(selector: u8) -> InstanceConfig {
    let mut config = InstanceConfig::new(
        51,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        vec![IpAddr::V4(VIRTUAL_ADDRESS)],
    );
    config.priority = if selector & 0x80 != 0 { 255 } else { 100 };
    config.preempt = selector & 0x40 == 0;
    if selector & 0x20 != 0 {
        config.preempt_delay = Duration::from_millis(1500);
    }
    if selector & 0x10 != 0 {
        config.announcements.burst_spacing = Duration::from_millis(20);
    }
    config.graceful_release = selector & 0x08 != 0;
    if selector & 0x04 != 0 {
        config.startup_limit = Some(Duration::from_secs(2));
    }
    if selector & 1 == 0 {
        config.version = Version::V2;
        if selector & 2 != 0 {
            config.authentication =
                Authentication::SimplePassword(Password::from_keepalived_auth_pass("secret"));
        }
    }
    config
}

const VIRTUAL_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));

/// A packet from `source` to the VRRP group. The instance's [`Screen`](crate::Screen) must
/// agree with it: a packet the screen rejects is dropped for that very reason, and one it
/// admits is not dropped at all (the screen runs every check that can drop).
fn deliver(
    instance: &mut Instance,
    now: Timestamp,
    source: IpAddr,
    ttl: u8,
    payload: &[u8],
) -> Vec<Action> {
    let packet = ReceivedPacket {
        source,
        destination: GROUP,
        ttl,
        payload,
    };
    let verdict = instance.screen().admit(&packet);
    let before = instance.counters().clone();
    let actions = instance.handle(now, Input::Packet(packet));
    let after = instance.counters();
    match verdict {
        Err(reason) => {
            assert_eq!(
                after.dropped(reason),
                before.dropped(reason) + 1,
                "{reason:?}"
            );
            assert_eq!(after.total_dropped(), before.total_dropped() + 1);
        }
        Ok(()) => assert_eq!(after.total_dropped(), before.total_dropped(), "admitted"),
    }
    actions
}

/// A valid advertisement from `source` with `priority`; v3 intervals come from `op`.
fn peer_advert(
    version: Version,
    authentication: Authentication,
    source: IpAddr,
    op: u8,
    priority: u8,
) -> Vec<u8> {
    let interval = match version {
        Version::V2 => AdvertInterval::ONE_SECOND,
        Version::V3 => AdvertInterval::from_centiseconds(u16::from(op % 64) + 1)
            .unwrap_or(AdvertInterval::ONE_SECOND),
    };
    let advert = Advertisement {
        version,
        vrid: 51,
        priority,
        interval,
        addresses: AddressList::V4(vec![VIRTUAL_ADDRESS]),
        authentication,
    };
    let context = ChecksumContext {
        source,
        destination: GROUP,
        v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
    };
    encode(&advert, &context).unwrap_or_default()
}

/// `op % 4 == 3`: an address removal, a drill, a link change or tracking, by `y`'s bits.
fn other_input(
    instance: &mut Instance,
    now: Timestamp,
    x: u8,
    y: u8,
    holds: &mut bool,
) -> Vec<Action> {
    if y & 32 != 0 {
        // Someone else removes the address; while held it must come back.
        let was_held = *holds;
        *holds = false;
        let actions = instance.handle(now, Input::AddressRemoved(IpAddr::V4(VIRTUAL_ADDRESS)));
        if !was_held {
            assert!(actions.is_empty(), "ignored while not held: {actions:?}");
        }
        return actions;
    }
    let input = if y & 64 != 0 {
        Input::TrackersReady
    } else if y & 8 != 0 {
        if y & 16 != 0 {
            Input::Restore
        } else {
            Input::StepDown
        }
    } else if y & 2 != 0 {
        if y & 4 != 0 {
            Input::InterfaceDown
        } else {
            Input::InterfaceUp
        }
    } else {
        Input::TrackingChanged(Tracking {
            priority: x,
            fault: y & 1 != 0,
        })
    };
    instance.handle(now, input)
}

/// Every timer's deadline, to see which ones a step armed.
fn timers(instance: &Instance) -> Vec<Option<Timestamp>> {
    TimerKind::ALL
        .iter()
        .map(|kind| instance.timer_deadline(*kind))
        .collect()
}

fn check_actions(
    actions: Vec<Action>,
    instance: &Instance,
    now: Timestamp,
    timers_before: &[Option<Timestamp>],
    holds: &mut bool,
) {
    for action in actions {
        match action {
            Action::AddAddresses { .. } => {
                assert!(!*holds, "addresses added twice");
                *holds = true;
            }
            Action::RemoveAddresses { .. } => {
                assert!(*holds, "addresses removed while not held");
                *holds = false;
            }
            _ => {}
        }
    }
    for (before, after) in timers_before.iter().zip(timers(instance)) {
        if let Some(deadline) = after.filter(|_| after != *before) {
            assert!(deadline >= now, "timer armed in the past");
        }
    }
    assert_eq!(*holds, instance.holds_addresses());
    if instance.state() == State::Master {
        assert!(*holds, "a master holds its addresses");
    }
    if !instance.config().graceful_release {
        assert!(instance.handover().is_none());
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Replays every input saved under `tests/fuzz_regressions/<target>/` through its target.
    #[test]
    fn fuzz_regressions_stay_fixed() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 3] = [
            ("decode_ipv4", super::decode_ipv4),
            ("decode_ipv6", super::decode_ipv6),
            ("instance_receive", super::instance_receive),
        ];
        let mut replayed = 0;
        for (target, run) in targets {
            let directory = root.join(target);
            let entries = std::fs::read_dir(&directory)
                .unwrap_or_else(|error| panic!("{}: {error}", directory.display()));
            for entry in entries {
                let path = entry.expect("directory entry").path();
                let input = std::fs::read(&path).expect("regression input");
                run(&input);
                replayed += 1;
            }
        }
        assert!(
            replayed > 0,
            "no regression inputs found under {}",
            root.display()
        );
    }
}
