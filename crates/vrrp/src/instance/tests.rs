//! Unit tests of single transitions, on a virtual clock. Multi-router behaviour is tested by
//! the simulation in `tests/simulation.rs`.

use super::*;
use crate::config::AnnouncementConfig;
use crate::packet::{
    encode, Authentication, Password, V3Ipv4Checksum, MULTICAST_GROUP_V4, MULTICAST_GROUP_V6,
};

const MS: u64 = 1_000_000;

fn ms(millis: u64) -> Timestamp {
    Timestamp::from_nanos(millis * MS)
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

fn centiseconds(value: u16) -> AdvertInterval {
    AdvertInterval::from_centiseconds(value).expect("non-zero")
}

/// VRRPv2, VRID 51, 192.0.2.1, one virtual address, 1 s, no second announcement burst.
fn v2_config(priority: u8) -> InstanceConfig {
    let mut config = InstanceConfig::new(51, ip("192.0.2.1"), vec![ip("192.0.2.100")]);
    config.version = Version::V2;
    config.priority = priority;
    config.announcements = AnnouncementConfig {
        burst_count: 1,
        second_burst_delay: None,
        lower_priority_burst_count: 1,
        ..AnnouncementConfig::default()
    };
    config
}

fn v3_config(priority: u8, interval_cs: u16) -> InstanceConfig {
    let mut config = v2_config(priority);
    config.version = Version::V3;
    config.advert_interval = centiseconds(interval_cs);
    config
}

fn instance(config: InstanceConfig) -> Instance {
    Instance::new(config).expect("valid config")
}

/// An advertisement as a peer at `source` with `priority` would send it for `config`'s VRID.
fn peer_advert(config: &InstanceConfig, source: &str, priority: u8) -> (IpAddr, Vec<u8>) {
    peer_advert_with(config, source, priority, |_| {})
}

fn peer_advert_with(
    config: &InstanceConfig,
    source: &str,
    priority: u8,
    change: impl FnOnce(&mut Advertisement),
) -> (IpAddr, Vec<u8>) {
    let source = ip(source);
    let mut advert = Advertisement {
        version: config.version,
        vrid: config.vrid,
        priority,
        interval: config.advert_interval,
        addresses: AddressList::from_ip_addrs(&config.virtual_addresses).expect("addresses"),
        authentication: config.authentication,
    };
    change(&mut advert);
    let context = ChecksumContext {
        source,
        destination: destination_for(config),
        v3_ipv4_checksum: config.v3_ipv4_checksum,
    };
    (source, encode(&advert, &context).expect("encodes"))
}

fn destination_for(config: &InstanceConfig) -> IpAddr {
    if config.is_unicast() {
        config.primary_address
    } else {
        config.family().multicast_group()
    }
}

fn receive(
    instance: &mut Instance,
    now: Timestamp,
    (source, payload): &(IpAddr, Vec<u8>),
) -> Vec<Action> {
    let destination = destination_for(instance.config());
    instance.handle(
        now,
        Input::Packet(ReceivedPacket {
            source: *source,
            destination,
            ttl: 255,
            payload,
        }),
    )
}

fn state_changes(actions: &[Action]) -> Vec<(State, State, Reason)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::StateChanged { from, to, reason } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect()
}

fn sent(actions: &[Action]) -> Vec<&OutgoingAdvertisement> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SendAdvertisement(advert) => Some(advert),
            _ => None,
        })
        .collect()
}

fn announcements(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|action| matches!(action, Action::Announce { .. }))
        .count()
}

fn started(config: InstanceConfig) -> (Instance, Vec<Action>) {
    let mut instance = instance(config);
    let actions = instance.handle(ms(0), Input::Startup);
    (instance, actions)
}

/// A backup, started at 0, that became master when its Master_Down_Timer fired.
fn master(config: InstanceConfig) -> (Instance, Timestamp) {
    let (mut instance, _) = started(config);
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("master down armed");
    instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(instance.state(), State::Master);
    (instance, deadline)
}

// --- startup -----------------------------------------------------------------------------------

#[test]
fn a_non_owner_starts_as_backup_for_exactly_master_down_interval() {
    let (instance, actions) = started(v2_config(90));
    assert_eq!(instance.state(), State::Backup);
    assert_eq!(
        state_changes(&actions),
        [(State::Initialize, State::Backup, Reason::Startup)]
    );
    // 3 × 1 s + (256 − 90) / 256 s
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(Timestamp::from_nanos(3_648_437_500))
    );
    assert!(sent(&actions).is_empty(), "a backup does not advertise");
}

#[test]
fn the_owner_starts_as_master_at_once_in_rfc_order() {
    let mut config = v2_config(255);
    config.accept_mode = false;
    config.announcements = AnnouncementConfig::default();
    let (instance, actions) = started(config);
    assert_eq!(instance.state(), State::Master);
    assert_eq!(
        actions[0],
        Action::StateChanged {
            from: State::Initialize,
            to: State::Master,
            reason: Reason::StartupAsOwner
        }
    );
    let Action::SendAdvertisement(advert) = &actions[1] else {
        panic!("second action must be the advertisement: {actions:?}");
    };
    assert_eq!(advert.advertisement.priority, 255);
    assert_eq!(advert.destination, IpAddr::V4(MULTICAST_GROUP_V4));
    assert_eq!(advert.source, ip("192.0.2.1"));
    assert_eq!(advert.ttl, 255);
    assert_eq!(
        actions[2],
        Action::AddAddresses {
            addresses: vec![ip("192.0.2.100")],
            // RFC 5798 6.4.3: the owner accepts whatever Accept_Mode says
            accept_mode: true
        }
    );
    // keepalived defaults: 5 rounds at once, a second burst 5 s later
    assert_eq!(announcements(&actions), 5);
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceRepeat),
        Some(ms(5000))
    );
    assert_eq!(instance.timer_deadline(TimerKind::Advert), Some(ms(1000)));
    assert_eq!(instance.counters().became_master, 1);
}

#[test]
fn a_fault_at_startup_goes_to_fault_without_advertising() {
    let mut instance = instance(v2_config(100));
    instance.handle(ms(0), Input::InterfaceDown);
    assert_eq!(instance.state(), State::Initialize);
    let actions = instance.handle(ms(1), Input::Startup);
    assert_eq!(instance.state(), State::Fault);
    assert!(sent(&actions).is_empty());
    let actions = instance.handle(ms(2), Input::InterfaceUp);
    assert_eq!(
        state_changes(&actions),
        [(State::Fault, State::Backup, Reason::FaultCleared)]
    );
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(ms(2) + instance.master_down_interval())
    );
}

// --- backup ------------------------------------------------------------------------------------

#[test]
fn master_down_fires_exactly_at_its_deadline_and_early_or_stale_firings_are_ignored() {
    let (mut instance, _) = started(v2_config(90));
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    let early = Timestamp::from_nanos(deadline.as_nanos() - 1);
    assert!(instance
        .handle(early, Input::TimerFired(TimerKind::MasterDown))
        .is_empty());
    assert_eq!(instance.state(), State::Backup);
    assert_eq!(instance.counters().stale_timer_firings, 1);
    // A timer that is not armed at all.
    assert!(instance
        .handle(deadline, Input::TimerFired(TimerKind::Advert))
        .is_empty());
    assert_eq!(instance.counters().stale_timer_firings, 2);

    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Master, Reason::MasterDown)]
    );
    assert_eq!(sent(&actions).len(), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::Advert),
        Some(deadline + Duration::from_secs(1))
    );
    // Firing again (a duplicate) is stale: the timer is no longer armed.
    assert!(instance
        .handle(deadline, Input::TimerFired(TimerKind::MasterDown))
        .is_empty());
}

#[test]
fn an_advert_from_a_higher_priority_master_resets_master_down() {
    let config = v2_config(90);
    let (mut instance, _) = started(config.clone());
    receive(
        &mut instance,
        ms(500),
        &peer_advert(&config, "192.0.2.2", 100),
    );
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(ms(500) + Duration::from_nanos(3_648_437_500))
    );
    assert_eq!(instance.master_address(), Some(ip("192.0.2.2")));
    assert_eq!(instance.counters().adverts_received, 1);
}

#[test]
fn a_v3_backup_adopts_the_masters_interval() {
    // RFC 5798 6.4.2: ours is 1 s, the master's 0.1 s.
    let config = v3_config(100, 100);
    let (mut instance, _) = started(config.clone());
    let advert = peer_advert_with(&config, "192.0.2.2", 200, |a| a.interval = centiseconds(10));
    let actions = receive(&mut instance, ms(100), &advert);
    assert_eq!(instance.master_adver_interval(), centiseconds(10));
    // 3 × 100 ms + (256 − 100) × 10 cs / 256 = 300 ms + 60.9375 ms
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(ms(100) + Duration::from_nanos(360_937_500))
    );
    assert!(matches!(
        actions.as_slice(),
        [Action::Warning(Warning::AdvertIntervalDiffers { .. })]
    ));
}

#[test]
fn priority_zero_makes_the_backup_take_over_after_skew_time() {
    let config = v2_config(90);
    let (mut instance, _) = started(config.clone());
    receive(
        &mut instance,
        ms(100),
        &peer_advert(&config, "192.0.2.2", 100),
    );
    receive(
        &mut instance,
        ms(700),
        &peer_advert(&config, "192.0.2.2", 0),
    );
    let deadline = ms(700) + Duration::from_nanos(648_437_500);
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(deadline)
    );
    assert_eq!(instance.counters().priority_zero_received, 1);
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Master, Reason::MasterReleased)]
    );
}

#[test]
fn a_preempting_backup_discards_a_lower_priority_master_and_takes_over() {
    let config = v2_config(100);
    let (mut instance, _) = started(config.clone());
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    let actions = receive(
        &mut instance,
        ms(1000),
        &peer_advert(&config, "192.0.2.2", 90),
    );
    assert!(actions.is_empty(), "RFC 5798 6.4.2: discard, {actions:?}");
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(deadline)
    );
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(
        state_changes(&actions),
        [(
            State::Backup,
            State::Master,
            Reason::Preempted {
                master: ip("192.0.2.2"),
                master_priority: 90
            }
        )]
    );
}

#[test]
fn a_nopreempt_backup_follows_a_lower_priority_master() {
    let mut config = v2_config(100);
    config.preempt = false;
    let (mut instance, _) = started(config.clone());
    receive(
        &mut instance,
        ms(1000),
        &peer_advert(&config, "192.0.2.2", 90),
    );
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(ms(1000) + instance.master_down_interval())
    );
    assert_eq!(instance.master_address(), Some(ip("192.0.2.2")));
}

#[test]
fn an_owner_preempts_even_with_preempt_off() {
    let mut config = v2_config(255);
    config.preempt = false;
    let mut owner = instance(config.clone());
    owner.handle(ms(0), Input::Startup);
    assert_eq!(owner.state(), State::Master);
    // Another owner with a higher address wins the tie-break; ours goes to backup ...
    receive(&mut owner, ms(10), &peer_advert(&config, "192.0.2.9", 255));
    assert_eq!(owner.state(), State::Backup);
    // ... where a lower priority is discarded although preempt is off: it does not reset
    // the Master_Down_Timer.
    let before = owner.timer_deadline(TimerKind::MasterDown);
    assert!(before.is_some());
    receive(&mut owner, ms(20), &peer_advert(&config, "192.0.2.2", 100));
    assert_eq!(owner.timer_deadline(TimerKind::MasterDown), before);
}

#[test]
fn preempt_delay_postpones_preemption_of_a_live_lower_master() {
    let mut config = v2_config(100);
    config.preempt_delay = Duration::from_secs(10);
    let (mut instance, _) = started(config.clone());
    let mdi = instance.master_down_interval();
    let first_deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    // A lower master advertises every second.
    let lower = peer_advert(&config, "192.0.2.2", 90);
    let mut now = ms(0);
    let mut preempt_deadline = None;
    while now <= first_deadline {
        receive(&mut instance, now, &lower);
        now = now + Duration::from_secs(1);
    }
    // Master_Down fires at its usual time; instead of taking over, the delay starts.
    let at_fire = instance.handle(first_deadline, Input::TimerFired(TimerKind::MasterDown));
    assert!(state_changes(&at_fire).is_empty());
    if let Some(deadline) = instance.timer_deadline(TimerKind::PreemptDelay) {
        preempt_deadline = Some(deadline);
    }
    assert_eq!(
        preempt_deadline,
        Some(first_deadline + Duration::from_secs(10))
    );
    // The last lower advert was at 3 s: liveness deadline 3 s + Master_Down_Interval.
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(ms(3000) + mdi)
    );
    // The lower master keeps advertising through the delay; we keep waiting.
    while now < first_deadline + Duration::from_secs(10) {
        receive(&mut instance, now, &lower);
        assert_eq!(
            instance.timer_deadline(TimerKind::MasterDown),
            Some(now + mdi)
        );
        now = now + Duration::from_secs(1);
    }
    let deadline = preempt_deadline.expect("armed");
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::PreemptDelay));
    assert_eq!(
        state_changes(&actions),
        [(
            State::Backup,
            State::Master,
            Reason::Preempted {
                master: ip("192.0.2.2"),
                master_priority: 90
            }
        )]
    );
}

#[test]
fn preempt_delay_does_not_delay_taking_over_from_a_silent_master() {
    let mut config = v2_config(100);
    config.preempt_delay = Duration::from_secs(10);
    let (mut instance, _) = started(config.clone());
    let mdi = instance.master_down_interval();
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    receive(
        &mut instance,
        ms(3000),
        &peer_advert(&config, "192.0.2.2", 90),
    );
    instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    let liveness = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("liveness deadline");
    assert_eq!(liveness, ms(3000) + mdi);
    // The lower master falls silent: taken over at the liveness deadline, long before the delay.
    instance.handle(liveness, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(instance.state(), State::Master);
    assert!(instance.timer_deadline(TimerKind::PreemptDelay).is_none());
}

#[test]
fn a_higher_priority_advert_cancels_a_running_preempt_delay() {
    let mut config = v2_config(100);
    config.preempt_delay = Duration::from_secs(10);
    let (mut instance, _) = started(config.clone());
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    receive(
        &mut instance,
        ms(3000),
        &peer_advert(&config, "192.0.2.2", 90),
    );
    instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert!(instance.timer_deadline(TimerKind::PreemptDelay).is_some());
    receive(
        &mut instance,
        ms(4000),
        &peer_advert(&config, "192.0.2.3", 110),
    );
    assert!(instance.timer_deadline(TimerKind::PreemptDelay).is_none());
    assert_eq!(instance.timer_deadline(TimerKind::PreemptDelay), None);
}

// --- master ------------------------------------------------------------------------------------

#[test]
fn a_master_steps_down_to_a_higher_priority() {
    let config = v3_config(100, 100);
    let (mut instance, became) = master(config.clone());
    let now = became + Duration::from_millis(10);
    let advert = peer_advert_with(&config, "192.0.2.2", 150, |a| a.interval = centiseconds(50));
    let actions = receive(&mut instance, now, &advert);
    assert_eq!(
        state_changes(&actions),
        [(
            State::Master,
            State::Backup,
            Reason::HigherPriority {
                source: ip("192.0.2.2"),
                priority: 150
            }
        )]
    );
    assert!(instance.timer_deadline(TimerKind::Advert).is_none());
    assert!(actions.contains(&Action::RemoveAddresses {
        addresses: vec![ip("192.0.2.100")]
    }));
    assert!(
        sent(&actions).is_empty(),
        "no priority 0 when stepping down"
    );
    // RFC 5798 6.4.3: adopt the interval: 3 × 0.5 s + (256 − 100) × 50 / 256 cs
    assert_eq!(instance.master_adver_interval(), centiseconds(50));
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(now + Duration::from_nanos(1_804_687_500))
    );
}

#[test]
fn equal_priority_is_broken_by_the_higher_primary_address() {
    let config = v2_config(100);
    let (mut instance, became) = master(config.clone());
    // 192.0.2.0 < 192.0.2.1: we stay master and answer at once.
    let actions = receive(
        &mut instance,
        became,
        &peer_advert(&config, "192.0.2.0", 100),
    );
    assert_eq!(instance.state(), State::Master);
    assert_eq!(sent(&actions).len(), 1);
    // 192.0.2.2 > 192.0.2.1: we step down.
    let actions = receive(
        &mut instance,
        became,
        &peer_advert(&config, "192.0.2.2", 100),
    );
    assert_eq!(
        state_changes(&actions),
        [(
            State::Master,
            State::Backup,
            Reason::EqualPriorityHigherAddress {
                source: ip("192.0.2.2")
            }
        )]
    );
}

#[test]
fn the_tie_break_compares_addresses_as_unsigned_integers() {
    // 10.0.0.1 > 9.255.255.255 numerically but not as text; 128.0.0.0 is "negative" as i32.
    assert!(address_greater(ip("10.0.0.1"), ip("9.255.255.255")));
    assert!(address_greater(ip("128.0.0.0"), ip("127.255.255.255")));
    assert!(address_greater(ip("fe80::2"), ip("fe80::1")));
    assert!(address_greater(ip("ff00::"), ip("7fff::")));
    assert!(!address_greater(ip("fe80::1"), ip("fe80::1")));
    assert!(!address_greater(ip("fe80::1"), ip("192.0.2.1")));
}

#[test]
fn a_master_answers_a_lower_priority_at_once_but_at_most_once_per_interval() {
    let config = v2_config(100);
    let (mut instance, became) = master(config.clone());
    let lower = peer_advert(&config, "192.0.2.2", 90);
    let actions = receive(&mut instance, became + Duration::from_millis(5), &lower);
    assert_eq!(instance.state(), State::Master);
    let adverts = sent(&actions);
    assert_eq!(adverts.len(), 1);
    assert_eq!(adverts[0].advertisement.priority, 100);
    assert_eq!(announcements(&actions), 1, "lower_priority_burst_count");
    // Within the same interval: no second answer.
    let actions = receive(&mut instance, became + Duration::from_millis(500), &lower);
    assert!(sent(&actions).is_empty());
    // One interval after the first answer: answered again.
    let actions = receive(&mut instance, became + Duration::from_millis(1005), &lower);
    assert_eq!(sent(&actions).len(), 1);
}

#[test]
fn a_master_answers_priority_zero_and_resets_its_advert_timer() {
    let config = v2_config(100);
    let (mut instance, became) = master(config.clone());
    let now = became + Duration::from_millis(300);
    let actions = receive(&mut instance, now, &peer_advert(&config, "192.0.2.2", 0));
    assert_eq!(sent(&actions).len(), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::Advert),
        Some(now + Duration::from_secs(1))
    );
}

#[test]
fn the_advert_timer_sends_the_current_priority_every_interval() {
    let config = v2_config(100);
    let (mut instance, became) = master(config);
    let first = became + Duration::from_secs(1);
    // A tracker lowers the priority: the next advert carries it (RFC: "takes effect with the
    // next advertisement"); nothing is sent on the change itself.
    let actions = instance.handle(
        became + Duration::from_millis(200),
        Input::TrackingChanged(Tracking {
            priority: 85,
            fault: false,
        }),
    );
    assert!(actions.is_empty());
    let actions = instance.handle(first, Input::TimerFired(TimerKind::Advert));
    assert_eq!(sent(&actions)[0].advertisement.priority, 85);
    assert_eq!(
        instance.timer_deadline(TimerKind::Advert),
        Some(first + Duration::from_secs(1))
    );
}

#[test]
fn shutdown_releases_the_addresses_and_sends_priority_zero() {
    let (mut instance, became) = master(v2_config(100));
    let actions = instance.handle(became, Input::Shutdown);
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Initialize, Reason::Shutdown)]
    );
    let remove = actions
        .iter()
        .position(|a| matches!(a, Action::RemoveAddresses { .. }))
        .expect("addresses removed");
    let zero = actions
        .iter()
        .position(|a| matches!(a, Action::SendAdvertisement(s) if s.advertisement.priority == 0))
        .expect("priority 0 sent");
    assert!(remove < zero);
    assert_eq!(instance.counters().priority_zero_sent, 1);
    assert_eq!(instance.next_timer(), None, "every timer cancelled");
    // A second shutdown does nothing.
    assert!(instance.handle(became, Input::Shutdown).is_empty());
}

#[test]
fn shutdown_of_a_backup_cancels_master_down() {
    let (mut instance, _) = started(v2_config(100));
    assert!(instance.timer_deadline(TimerKind::MasterDown).is_some());
    let actions = instance.handle(ms(10), Input::Shutdown);
    assert_eq!(
        actions,
        [Action::StateChanged {
            from: State::Backup,
            to: State::Initialize,
            reason: Reason::Shutdown
        }]
    );
    assert_eq!(instance.timer_deadline(TimerKind::MasterDown), None);
}

// --- fault and tracking ------------------------------------------------------------------------

#[test]
fn a_failing_weight_zero_tracker_takes_a_master_to_fault_with_priority_zero() {
    let (mut instance, became) = master(v2_config(100));
    let actions = instance.handle(
        became,
        Input::TrackingChanged(Tracking {
            priority: 100,
            fault: true,
        }),
    );
    let cause = FaultCause {
        interface_down: false,
        tracker_failed: true,
        stepped_down: false,
    };
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Fault, Reason::Fault(cause))]
    );
    assert_eq!(sent(&actions)[0].advertisement.priority, 0);
    assert_eq!(instance.fault_cause(), Some(cause));
    // Adverts are counted but ignored in Fault.
    let config = instance.config().clone();
    let actions = receive(
        &mut instance,
        became,
        &peer_advert(&config, "192.0.2.2", 50),
    );
    assert!(actions.is_empty());
    // Recovery starts over as a backup.
    let actions = instance.handle(became, Input::TrackingChanged(Tracking::untracked(100)));
    assert_eq!(
        state_changes(&actions),
        [(State::Fault, State::Backup, Reason::FaultCleared)]
    );
}

#[test]
fn interface_down_takes_a_master_to_fault_without_sending() {
    let (mut instance, became) = master(v2_config(100));
    let actions = instance.handle(became, Input::InterfaceDown);
    assert_eq!(instance.state(), State::Fault);
    assert!(
        sent(&actions).is_empty(),
        "nothing can be sent on a down link"
    );
    assert!(actions.contains(&Action::RemoveAddresses {
        addresses: vec![ip("192.0.2.100")]
    }));
}

#[test]
fn tracking_clamps_priorities_and_never_changes_the_owner() {
    let mut backup = instance(v2_config(100));
    backup.handle(ms(0), Input::TrackingChanged(Tracking::untracked(255)));
    assert_eq!(backup.priority(), 254);
    backup.handle(ms(0), Input::TrackingChanged(Tracking::untracked(0)));
    assert_eq!(backup.priority(), 1);
    let mut owner = instance(v2_config(255));
    owner.handle(ms(0), Input::TrackingChanged(Tracking::untracked(50)));
    assert_eq!(owner.priority(), 255);
}

#[test]
fn a_backup_uses_its_new_priority_from_the_next_reset() {
    let config = v2_config(100);
    let (mut instance, _) = started(config.clone());
    instance.handle(ms(10), Input::TrackingChanged(Tracking::untracked(200)));
    receive(
        &mut instance,
        ms(20),
        &peer_advert(&config, "192.0.2.2", 220),
    );
    // 3 s + 56/256 s
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(ms(20) + Duration::from_nanos(3_218_750_000))
    );
}

// --- announcements -----------------------------------------------------------------------------

#[test]
fn announcements_follow_burst_spacing_second_burst_and_refresh() {
    let mut config = v2_config(255);
    config.announcements = AnnouncementConfig {
        burst_count: 3,
        burst_spacing: Duration::from_millis(100),
        second_burst_delay: Some(Duration::from_secs(5)),
        refresh_interval: Some(Duration::from_secs(60)),
        refresh_count: 2,
        lower_priority_burst_count: 1,
    };
    let (mut instance, actions) = started(config);
    assert_eq!(announcements(&actions), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceBurst),
        Some(ms(100))
    );
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceRepeat),
        Some(ms(5000))
    );
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceRefresh),
        Some(ms(60_000))
    );

    let actions = instance.handle(ms(100), Input::TimerFired(TimerKind::AnnounceBurst));
    assert_eq!(announcements(&actions), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceBurst),
        Some(ms(200))
    );
    let actions = instance.handle(ms(200), Input::TimerFired(TimerKind::AnnounceBurst));
    assert_eq!(announcements(&actions), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceBurst),
        None,
        "burst of 3 done"
    );

    let actions = instance.handle(ms(5000), Input::TimerFired(TimerKind::AnnounceRepeat));
    assert_eq!(announcements(&actions), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceBurst),
        Some(ms(5100))
    );

    let actions = instance.handle(ms(60_000), Input::TimerFired(TimerKind::AnnounceRefresh));
    assert_eq!(announcements(&actions), 1);
    assert_eq!(
        instance.timer_deadline(TimerKind::AnnounceRefresh),
        Some(ms(120_000))
    );
    assert_eq!(instance.counters().announcement_rounds, 5);

    // Leaving master stops every announcement timer.
    let timers = [
        TimerKind::AnnounceBurst,
        TimerKind::AnnounceRefresh,
        TimerKind::Advert,
    ];
    for timer in timers {
        assert!(instance.timer_deadline(timer).is_some(), "{timer:?} armed");
    }
    instance.handle(ms(60_001), Input::Shutdown);
    for timer in timers {
        assert_eq!(instance.timer_deadline(timer), None, "{timer:?}");
    }
}

// --- unicast -----------------------------------------------------------------------------------

#[test]
fn unicast_sends_one_advert_per_peer_each_with_its_own_checksum() {
    let mut config = v3_config(255, 100);
    config.unicast_peers = vec![ip("192.0.2.2"), ip("192.0.2.3")];
    let (_, actions) = started(config.clone());
    let adverts = sent(&actions);
    assert_eq!(adverts.len(), 2);
    for (advert, peer) in adverts.iter().zip(["192.0.2.2", "192.0.2.3"]) {
        assert_eq!(advert.destination, ip(peer));
        let context = ChecksumContext {
            source: advert.source,
            destination: advert.destination,
            v3_ipv4_checksum: config.v3_ipv4_checksum,
        };
        assert_eq!(
            packet::decode(&advert.payload, &context).as_ref(),
            Ok(&advert.advertisement)
        );
    }
    assert_ne!(adverts[0].payload, adverts[1].payload);
}

#[test]
fn unicast_drops_sources_that_are_not_peers() {
    let mut config = v3_config(100, 100);
    config.unicast_peers = vec![ip("192.0.2.2")];
    let (mut instance, _) = started(config.clone());
    receive(
        &mut instance,
        ms(1),
        &peer_advert(&config, "192.0.2.2", 100),
    );
    receive(
        &mut instance,
        ms(2),
        &peer_advert(&config, "192.0.2.9", 100),
    );
    assert_eq!(instance.counters().adverts_received, 1);
    assert_eq!(
        instance
            .counters()
            .dropped(DropReason::UnknownUnicastSource),
        1
    );
    // With the check off, any source is heard.
    config.check_unicast_source = false;
    let (mut open, _) = started(config.clone());
    receive(&mut open, ms(2), &peer_advert(&config, "192.0.2.9", 100));
    assert_eq!(open.counters().adverts_received, 1);
}

// --- receive checks ----------------------------------------------------------------------------

/// Delivers `payload` from `source` with `ttl` and returns the single drop reason counted.
fn dropped_for(
    instance: &mut Instance,
    source: &str,
    destination: IpAddr,
    ttl: u8,
    payload: &[u8],
) -> Option<DropReason> {
    let before = instance.counters().clone();
    instance.handle(
        ms(1),
        Input::Packet(ReceivedPacket {
            source: ip(source),
            destination,
            ttl,
            payload,
        }),
    );
    let after = instance.counters();
    let grown: Vec<DropReason> = DropReason::ALL
        .iter()
        .copied()
        .filter(|reason| after.dropped(*reason) > before.dropped(*reason))
        .collect();
    assert!(grown.len() <= 1, "one packet, one reason: {grown:?}");
    if grown.is_empty() {
        assert_eq!(after.adverts_received, before.adverts_received + 1);
    } else {
        assert_eq!(after.adverts_received, before.adverts_received);
    }
    grown.first().copied()
}

#[test]
fn every_receive_check_drops_with_its_own_counter() {
    let mut config = v2_config(100);
    config.authentication =
        Authentication::SimplePassword(Password::from_keepalived_auth_pass("secret"));
    let (mut instance, _) = started(config.clone());
    let group = IpAddr::V4(MULTICAST_GROUP_V4);
    let good = peer_advert(&config, "192.0.2.2", 100).1;
    assert_eq!(
        dropped_for(&mut instance, "192.0.2.2", group, 255, &good),
        None
    );

    let check = |instance: &mut Instance, source: &str, ttl: u8, payload: &[u8]| {
        dropped_for(instance, source, group, ttl, payload)
    };
    assert_eq!(
        check(&mut instance, "192.0.2.2", 254, &good),
        Some(DropReason::IpTtl)
    );
    assert_eq!(
        dropped_for(
            &mut instance,
            "fe80::2",
            IpAddr::V6(MULTICAST_GROUP_V6),
            255,
            &good
        ),
        Some(DropReason::AddressFamily)
    );
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.1",
            255,
            &peer_advert(&config, "192.0.2.1", 100).1
        ),
        Some(DropReason::OwnAdvertisement)
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &good[..5]),
        Some(DropReason::PacketLength)
    );
    let mut bad_checksum = good.clone();
    bad_checksum[7] ^= 0xff;
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &bad_checksum),
        Some(DropReason::Checksum)
    );
    let mut v3 = config.clone();
    v3.version = Version::V3;
    v3.authentication = Authentication::None;
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.2",
            255,
            &peer_advert(&v3, "192.0.2.2", 100).1
        ),
        Some(DropReason::Version)
    );
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.2",
            255,
            &peer_advert_with(&config, "192.0.2.2", 100, |a| a.vrid = 52).1
        ),
        Some(DropReason::VrId)
    );
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.2",
            255,
            &peer_advert_with(&config, "192.0.2.2", 100, |a| {
                a.authentication = Authentication::None
            })
            .1
        ),
        Some(DropReason::AuthTypeMismatch)
    );
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.2",
            255,
            &peer_advert_with(&config, "192.0.2.2", 100, |a| {
                a.authentication =
                    Authentication::SimplePassword(Password::from_keepalived_auth_pass("guess"))
            })
            .1
        ),
        Some(DropReason::AuthFailure)
    );
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.2",
            255,
            &peer_advert_with(&config, "192.0.2.2", 100, |a| {
                a.interval = centiseconds(200)
            })
            .1
        ),
        Some(DropReason::IntervalMismatch)
    );
    assert_eq!(
        check(
            &mut instance,
            "192.0.2.2",
            255,
            &peer_advert_with(&config, "192.0.2.2", 100, |a| {
                a.addresses = AddressList::V4(vec!["192.0.2.200".parse().expect("address")])
            })
            .1
        ),
        Some(DropReason::AddressList)
    );

    // Field values the decoder refuses, with a valid checksum: build them by hand.
    let with_header = |byte0: u8, count: u8, auth: u8, seconds: u8| {
        let mut bytes = vec![byte0, 51, 100, count, auth, seconds, 0, 0];
        for _ in 0..count {
            bytes.extend_from_slice(&[192, 0, 2, 100]);
        }
        bytes.extend_from_slice(b"secret\0\0");
        let context = ChecksumContext {
            source: ip("192.0.2.2"),
            destination: group,
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
        };
        let sum = packet::checksum(&bytes, false, &context);
        bytes[6..8].copy_from_slice(&sum.to_be_bytes());
        bytes
    };
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x21, 1, 1, 1)),
        None
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x22, 1, 1, 1)),
        Some(DropReason::PacketType)
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x51, 1, 1, 1)),
        Some(DropReason::Version)
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x21, 0, 1, 1)),
        Some(DropReason::AddressCountZero)
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x21, 1, 1, 0)),
        Some(DropReason::IntervalZero)
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x21, 1, 2, 1)),
        Some(DropReason::AuthTypeUnsupported)
    );
    assert_eq!(
        check(&mut instance, "192.0.2.2", 255, &with_header(0x21, 1, 7, 1)),
        Some(DropReason::AuthTypeInvalid)
    );

    // Every reason that a v2 multicast instance can see was counted exactly once.
    for reason in DropReason::ALL {
        let expected = match reason {
            DropReason::UnknownUnicastSource | DropReason::ChecksumForm => 0,
            DropReason::Version => 2,
            _ => 1,
        };
        assert_eq!(
            instance.counters().dropped(reason),
            expected,
            "{}",
            reason.name()
        );
    }
}

#[test]
fn a_v3_ipv4_packet_in_the_other_checksum_form_has_its_own_reason() {
    let config = v3_config(100, 100);
    let (mut instance, _) = started(config.clone());
    let mut other = config.clone();
    other.v3_ipv4_checksum = V3Ipv4Checksum::MessageOnly;
    let actions = receive(&mut instance, ms(1), &peer_advert(&other, "192.0.2.2", 100));
    assert_eq!(instance.counters().dropped(DropReason::ChecksumForm), 1);
    assert!(matches!(
        actions.as_slice(),
        [Action::Warning(Warning::Dropped {
            reason: DropReason::ChecksumForm,
            detail: Some(_),
            ..
        })]
    ));
}

#[test]
fn address_list_mismatch_drops_only_in_v2_and_not_from_the_owner() {
    let other_list = |a: &mut Advertisement| {
        a.addresses = AddressList::V4(vec!["192.0.2.200".parse().expect("address")])
    };
    // v2 from the owner: accepted, logged.
    let config = v2_config(100);
    let (mut instance, _) = started(config.clone());
    let actions = receive(
        &mut instance,
        ms(1),
        &peer_advert_with(&config, "192.0.2.2", 255, other_list),
    );
    assert_eq!(instance.counters().adverts_received, 1);
    assert_eq!(instance.counters().address_list_mismatches, 1);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Warning(Warning::AddressListMismatch { dropped: false, .. })
    )));
    // v3: accepted, logged (RFC 5798 7.1 has no drop).
    let config = v3_config(100, 100);
    let (mut instance, _) = started(config.clone());
    receive(
        &mut instance,
        ms(1),
        &peer_advert_with(&config, "192.0.2.2", 100, other_list),
    );
    assert_eq!(instance.counters().adverts_received, 1);
    assert_eq!(instance.counters().dropped(DropReason::AddressList), 0);
    // The order of the addresses does not matter.
    let mut two = v3_config(100, 100);
    two.virtual_addresses = vec![ip("192.0.2.100"), ip("192.0.2.101")];
    let (mut instance, _) = started(two.clone());
    receive(
        &mut instance,
        ms(1),
        &peer_advert_with(&two, "192.0.2.2", 100, |a| {
            a.addresses = AddressList::V4(vec![
                "192.0.2.101".parse().expect("a"),
                "192.0.2.100".parse().expect("a"),
            ])
        }),
    );
    assert_eq!(instance.counters().address_list_mismatches, 0);
}

#[test]
fn warnings_are_rate_limited_per_kind_but_every_drop_is_counted() {
    let config = v2_config(100);
    let (mut instance, _) = started(config.clone());
    let good = peer_advert(&config, "192.0.2.2", 100).1;
    let send = |instance: &mut Instance, now: Timestamp, ttl: u8| {
        instance.handle(
            now,
            Input::Packet(ReceivedPacket {
                source: ip("192.0.2.2"),
                destination: IpAddr::V4(MULTICAST_GROUP_V4),
                ttl,
                payload: &good,
            }),
        )
    };
    let warnings = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Warning(_)))
            .count()
    };
    assert_eq!(warnings(&send(&mut instance, ms(0), 64)), 1);
    assert_eq!(warnings(&send(&mut instance, ms(1000), 64)), 0);
    assert_eq!(warnings(&send(&mut instance, ms(1000), 255)), 0);
    assert_eq!(warnings(&send(&mut instance, ms(59_999), 64)), 0);
    assert_eq!(warnings(&send(&mut instance, ms(60_000), 64)), 1);
    assert_eq!(instance.counters().dropped(DropReason::IpTtl), 4);
}

#[test]
fn accept_any_unicast_ttl_relaxes_only_unicast() {
    let mut config = v3_config(100, 100);
    config.accept_any_unicast_ttl = true;
    let (mut multicast, _) = started(config.clone());
    let payload = peer_advert(&config, "192.0.2.2", 100).1;
    let group = IpAddr::V4(MULTICAST_GROUP_V4);
    assert_eq!(
        dropped_for(&mut multicast, "192.0.2.2", group, 64, &payload),
        Some(DropReason::IpTtl)
    );
    config.unicast_peers = vec![ip("192.0.2.2")];
    let (mut unicast, _) = started(config.clone());
    let payload = peer_advert(&config, "192.0.2.2", 100).1;
    assert_eq!(
        dropped_for(&mut unicast, "192.0.2.2", ip("192.0.2.1"), 64, &payload),
        None
    );
}

#[test]
fn an_owner_reports_other_routers_advertising_its_vrid() {
    let config = v2_config(255);
    let (mut owner, _) = started(config.clone());
    let actions = receive(&mut owner, ms(1), &peer_advert(&config, "192.0.2.2", 100));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Warning(Warning::OwnerConflict { priority: 100, .. })
    )));
    assert_eq!(owner.state(), State::Master);
}

#[test]
fn a_lower_master_heard_longer_ago_than_master_down_interval_is_not_reported_as_preempted() {
    let config = v2_config(100);
    let (mut instance, _) = started(config.clone());
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    // A lower master is heard once at 0.5 s and discarded ...
    receive(
        &mut instance,
        ms(500),
        &peer_advert(&config, "192.0.2.2", 90),
    );
    // ... our priority rises, shrinking Master_Down_Interval to 3 s + 2/256 s ...
    instance.handle(ms(600), Input::TrackingChanged(Tracking::untracked(254)));
    // ... so when the timer armed at startup fires (3.609375 s), that advert is older than one
    // Master_Down_Interval: nobody is being preempted, the master is simply down.
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Master, Reason::MasterDown)]
    );
}

#[test]
fn drop_warnings_say_what_arrived_and_what_was_expected() {
    let config = v2_config(100);
    let (mut instance, _) = started(config.clone());
    let payload = peer_advert_with(&config, "192.0.2.2", 100, |a| a.vrid = 9).1;
    let actions = instance.handle(
        ms(1),
        Input::Packet(ReceivedPacket {
            source: ip("192.0.2.2"),
            destination: IpAddr::V4(MULTICAST_GROUP_V4),
            ttl: 255,
            payload: &payload,
        }),
    );
    let [Action::Warning(Warning::Dropped {
        source,
        reason,
        detail: Some(detail),
    })] = actions.as_slice()
    else {
        panic!("one drop warning expected: {actions:?}");
    };
    assert_eq!(*source, ip("192.0.2.2"));
    assert_eq!(*reason, DropReason::VrId);
    assert_eq!(
        *detail,
        DropDetail::Vrid {
            received: 9,
            configured: 51
        }
    );
    assert_eq!(detail.to_string(), "VRID 9 instead of 51");
    assert_eq!(DropDetail::Ttl(64).to_string(), "TTL 64 instead of 255");
}

// --- graceful release, step-down, addresses removed by others --------------------------------

/// A v3 master at 0.1 s that keeps its addresses until the new master is heard.
fn graceful_master() -> (Instance, Timestamp) {
    let mut config = v3_config(100, 10);
    config.graceful_release = true;
    master(config)
}

fn removes(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|action| matches!(action, Action::RemoveAddresses { .. }))
        .count()
}

fn handover_outcomes(actions: &[Action]) -> Vec<HandoverOutcome> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::HandoverFinished(outcome) => Some(*outcome),
            _ => None,
        })
        .collect()
}

#[test]
fn the_hand_over_bound_is_the_slowest_backups_master_down_interval() {
    let (instance, _) = graceful_master();
    // 3 × 100 ms + (256 − 1) × 10 cs / 256 = 300 ms + 99.609375 ms
    assert_eq!(instance.handover_bound(), Duration::from_nanos(399_609_375));
}

#[test]
fn a_graceful_shutdown_keeps_the_addresses_until_a_new_master_is_heard() {
    let (mut instance, became) = graceful_master();
    let config = instance.config().clone();
    let stop = became + Duration::from_millis(50);
    let actions = instance.handle(stop, Input::Shutdown);
    // RFC 5798 6.4.3: priority 0 goes out and the state is Initialize ...
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Initialize, Reason::Shutdown)]
    );
    assert_eq!(sent(&actions)[0].advertisement.priority, 0);
    // ... but the addresses stay while the hand-over runs.
    assert_eq!(removes(&actions), 0);
    assert!(instance.holds_addresses());
    let handover = instance.handover().expect("hand-over running");
    assert_eq!(handover.started, stop);
    assert_eq!(handover.deadline, stop + instance.handover_bound());
    assert_eq!(
        instance.next_timer(),
        Some((TimerKind::Handover, handover.deadline))
    );
    // The new master's first advert completes it.
    let heard = stop + Duration::from_millis(62);
    let actions = receive(&mut instance, heard, &peer_advert(&config, "192.0.2.2", 90));
    assert_eq!(removes(&actions), 1);
    assert_eq!(
        handover_outcomes(&actions),
        [HandoverOutcome::HandedOver {
            new_master: ip("192.0.2.2"),
            waited: Duration::from_millis(62)
        }]
    );
    assert!(!instance.holds_addresses());
    assert_eq!(instance.next_timer(), None);
    assert_eq!(instance.counters().handovers_completed, 1);
}

#[test]
fn a_graceful_release_nobody_answers_ends_at_the_bound() {
    let (mut instance, became) = graceful_master();
    instance.handle(became, Input::Shutdown);
    let deadline = instance.handover().expect("running").deadline;
    let early = Timestamp::from_nanos(deadline.as_nanos() - 1);
    assert!(instance
        .handle(early, Input::TimerFired(TimerKind::Handover))
        .is_empty());
    assert!(instance.holds_addresses());
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::Handover));
    assert_eq!(removes(&actions), 1);
    assert_eq!(
        handover_outcomes(&actions),
        [HandoverOutcome::NobodyTookOver {
            waited: instance.handover_bound()
        }]
    );
    assert!(!instance.holds_addresses());
    assert_eq!(instance.counters().handovers_timed_out, 1);
}

#[test]
fn only_a_fully_checked_advert_ends_a_hand_over() {
    let mut config = v2_config(100);
    config.graceful_release = true;
    config.authentication =
        Authentication::SimplePassword(Password::from_keepalived_auth_pass("secret"));
    let (mut instance, became) = master(config.clone());
    instance.handle(became, Input::Shutdown);
    let now = became + Duration::from_millis(10);
    let good = peer_advert(&config, "192.0.2.2", 90);
    // Wrong TTL: not from the link.
    let destination = destination_for(&config);
    let actions = instance.handle(
        now,
        Input::Packet(ReceivedPacket {
            source: good.0,
            destination,
            ttl: 64,
            payload: &good.1,
        }),
    );
    assert!(handover_outcomes(&actions).is_empty());
    // Wrong password.
    let intruder = peer_advert_with(&config, "192.0.2.2", 90, |a| {
        a.authentication =
            Authentication::SimplePassword(Password::from_keepalived_auth_pass("guess"))
    });
    assert!(handover_outcomes(&receive(&mut instance, now, &intruder)).is_empty());
    // Another VRID.
    let other = peer_advert_with(&config, "192.0.2.2", 90, |a| a.vrid = 52);
    assert!(handover_outcomes(&receive(&mut instance, now, &other)).is_empty());
    // A peer that is itself stepping down is not a new master.
    let zero = peer_advert(&config, "192.0.2.3", 0);
    assert!(handover_outcomes(&receive(&mut instance, now, &zero)).is_empty());
    assert!(instance.holds_addresses(), "still handing over");
    // The real thing.
    let actions = receive(&mut instance, now, &good);
    assert_eq!(handover_outcomes(&actions).len(), 1);
}

#[test]
fn in_unicast_mode_a_hand_over_waits_for_a_configured_peer() {
    let mut config = v3_config(100, 10);
    config.graceful_release = true;
    config.unicast_peers = vec![ip("192.0.2.2")];
    let (mut instance, became) = master(config.clone());
    instance.handle(became, Input::Shutdown);
    let stranger = peer_advert(&config, "192.0.2.7", 200);
    let actions = receive(&mut instance, became, &stranger);
    assert!(handover_outcomes(&actions).is_empty());
    assert_eq!(
        instance
            .counters()
            .dropped(DropReason::UnknownUnicastSource),
        1
    );
    let peer = peer_advert(&config, "192.0.2.2", 90);
    assert_eq!(
        handover_outcomes(&receive(&mut instance, became, &peer)).len(),
        1
    );
}

#[test]
fn a_step_down_hands_over_and_stays_out_of_the_election_until_restored() {
    let (mut instance, became) = graceful_master();
    let config = instance.config().clone();
    let actions = instance.handle(became, Input::StepDown);
    let cause = FaultCause {
        interface_down: false,
        tracker_failed: false,
        stepped_down: true,
    };
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Fault, Reason::Fault(cause))]
    );
    assert_eq!(sent(&actions)[0].advertisement.priority, 0);
    assert_eq!(removes(&actions), 0);
    let actions = receive(
        &mut instance,
        became,
        &peer_advert(&config, "192.0.2.2", 90),
    );
    assert_eq!(removes(&actions), 1);
    // Healthy trackers do not end a step-down.
    let actions = instance.handle(
        became,
        Input::TrackingChanged(Tracking {
            priority: 120,
            fault: false,
        }),
    );
    assert!(state_changes(&actions).is_empty());
    assert_eq!(instance.fault_cause(), Some(cause));
    // Restore: back as a backup with the trackers' priority, timer armed.
    let later = became + Duration::from_secs(3);
    let actions = instance.handle(later, Input::Restore);
    assert_eq!(
        state_changes(&actions),
        [(State::Fault, State::Backup, Reason::FaultCleared)]
    );
    assert_eq!(instance.priority(), 120);
    assert_eq!(
        instance.timer_deadline(TimerKind::MasterDown),
        Some(later + instance.master_down_interval())
    );
    // A second restore does nothing.
    assert!(instance.handle(later, Input::Restore).is_empty());
}

#[test]
fn a_step_down_of_a_backup_changes_nothing() {
    let (mut instance, _) = started(v3_config(100, 10));
    assert!(instance.handle(ms(5), Input::StepDown).is_empty());
    assert_eq!(instance.state(), State::Backup);
    assert_eq!(instance.fault_cause(), None);
}

#[test]
fn a_shutdown_during_a_step_down_keeps_the_step_downs_bound() {
    let (mut instance, became) = graceful_master();
    instance.handle(became, Input::StepDown);
    let deadline = instance.handover().expect("running").deadline;
    let actions = instance.handle(became + Duration::from_millis(10), Input::Shutdown);
    assert_eq!(
        state_changes(&actions),
        [(State::Fault, State::Initialize, Reason::Shutdown)]
    );
    assert_eq!(
        sent(&actions).len(),
        0,
        "priority 0 was already sent by the step-down"
    );
    assert_eq!(instance.handover().map(|h| h.deadline), Some(deadline));
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::Handover));
    assert_eq!(removes(&actions), 1);
    assert!(!instance.holds_addresses());
    assert_eq!(instance.next_timer(), None, "nothing left to wait for");
}

#[test]
fn restored_before_anyone_took_over_it_becomes_master_again_without_a_gap() {
    let (mut instance, became) = graceful_master();
    instance.handle(became, Input::StepDown);
    let restored = became + Duration::from_millis(1);
    instance.handle(restored, Input::Restore);
    assert_eq!(instance.state(), State::Backup);
    assert!(instance.holds_addresses(), "the release is still waiting");
    // Nobody advertises: the backup's own timer runs out first (its Master_Down_Interval is
    // shorter than the bound, which assumes priority 1).
    let deadline = instance
        .timer_deadline(TimerKind::MasterDown)
        .expect("armed");
    assert!(deadline < instance.handover().expect("running").deadline);
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
    assert_eq!(instance.state(), State::Master);
    assert_eq!(
        handover_outcomes(&actions),
        [HandoverOutcome::Resumed {
            waited: deadline.saturating_duration_since(became)
        }]
    );
    assert_eq!(removes(&actions), 0);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::AddAddresses { .. })),
        "the addresses never left"
    );
    assert_eq!(instance.timer_deadline(TimerKind::Handover), None);
}

#[test]
fn the_link_going_down_ends_a_hand_over() {
    let (mut instance, became) = graceful_master();
    instance.handle(became, Input::Shutdown);
    let actions = instance.handle(became + Duration::from_millis(3), Input::InterfaceDown);
    assert_eq!(removes(&actions), 1);
    assert_eq!(
        handover_outcomes(&actions),
        [HandoverOutcome::NobodyTookOver {
            waited: Duration::from_millis(3)
        }]
    );
}

#[test]
fn without_graceful_release_a_step_down_lets_go_at_once() {
    let (mut instance, became) = master(v3_config(100, 10));
    let actions = instance.handle(became, Input::StepDown);
    assert_eq!(removes(&actions), 1);
    assert_eq!(sent(&actions)[0].advertisement.priority, 0);
    assert_eq!(instance.handover(), None);
    assert_eq!(instance.state(), State::Fault);
}

#[test]
fn an_address_removed_by_someone_else_is_put_back_while_held() {
    let (mut instance, became) = graceful_master();
    let vip = ip("192.0.2.100");
    let actions = instance.handle(became, Input::AddressRemoved(vip));
    assert_eq!(
        actions,
        [
            Action::AddAddresses {
                addresses: vec![vip],
                accept_mode: true
            },
            Action::Announce {
                addresses: vec![vip]
            },
            Action::AddressRestored { address: vip }
        ]
    );
    assert_eq!(instance.counters().addresses_restored, 1);
    // Not ours: nothing.
    assert!(instance
        .handle(became, Input::AddressRemoved(ip("192.0.2.7")))
        .is_empty());
    // Still ours during a hand-over.
    instance.handle(became, Input::Shutdown);
    assert_eq!(instance.handle(became, Input::AddressRemoved(vip)).len(), 3);
    // Not held any more: nothing to put back.
    let deadline = instance.handover().expect("running").deadline;
    instance.handle(deadline, Input::TimerFired(TimerKind::Handover));
    assert!(instance
        .handle(deadline, Input::AddressRemoved(vip))
        .is_empty());
    // A backup holds nothing.
    let (mut backup, _) = started(v3_config(100, 10));
    assert!(backup.handle(ms(1), Input::AddressRemoved(vip)).is_empty());
}

// --- reconfigure (a reload) ---------------------------------------------------------------------

#[test]
fn a_reload_of_the_priority_changes_nothing_now_and_the_next_advert_carries_it() {
    let (mut instance, became) = master(v3_config(100, 10));
    let mut new = instance.config().clone();
    new.priority = 80;
    let tracking = Tracking::untracked(80);
    let actions = instance
        .reconfigure(became + Duration::from_millis(20), new, tracking)
        .expect("same instance");
    assert!(actions.is_empty(), "no transition, no advert: {actions:?}");
    assert_eq!(instance.state(), State::Master);
    let (_, deadline) = instance.next_timer().expect("advert timer");
    let actions = instance.handle(deadline, Input::TimerFired(TimerKind::Advert));
    assert_eq!(sent(&actions)[0].advertisement.priority, 80);
}

#[test]
fn a_reload_that_makes_another_instance_is_refused_and_changes_nothing() {
    let (mut instance, became) = master(v3_config(100, 10));
    let before = instance.config().clone();
    for change in [
        (|c: &mut InstanceConfig| c.vrid = 52) as fn(&mut InstanceConfig),
        |c| c.virtual_addresses = vec![ip("192.0.2.101")],
        |c| c.priority = 255,
        |c| c.primary_address = ip("192.0.2.9"),
    ] {
        let mut new = before.clone();
        change(&mut new);
        assert!(!instance.can_reconfigure(&new));
        assert_eq!(
            instance.reconfigure(became, new, Tracking::untracked(100)),
            Err(ConfigError::NotTheSameInstance)
        );
        assert_eq!(instance.config(), &before);
        assert_eq!(instance.state(), State::Master);
    }
    // The order of the addresses does not matter.
    let mut config = v3_config(100, 10);
    config.virtual_addresses = vec![ip("192.0.2.100"), ip("192.0.2.101")];
    let (instance, _) = master(config.clone());
    let mut reordered = config;
    reordered.virtual_addresses.reverse();
    assert!(instance.can_reconfigure(&reordered));
}

#[test]
fn a_reloaded_v3_backup_keeps_the_interval_it_learned_from_its_master() {
    let config = v3_config(90, 10);
    let (mut instance, _) = started(config.clone());
    let advert = peer_advert_with(&config, "192.0.2.2", 100, |a| a.interval = centiseconds(50));
    receive(&mut instance, ms(10), &advert);
    assert_eq!(instance.master_adver_interval(), centiseconds(50));
    let mut new = config.clone();
    new.advert_interval = centiseconds(20);
    instance
        .reconfigure(ms(20), new, Tracking::untracked(90))
        .expect("same instance");
    assert_eq!(instance.master_adver_interval(), centiseconds(50));
    // A master takes its own new interval for its next advert.
    let (mut master_instance, became) = master(v3_config(100, 10));
    let mut new = master_instance.config().clone();
    new.advert_interval = centiseconds(20);
    master_instance
        .reconfigure(became, new, Tracking::untracked(100))
        .expect("same instance");
    let (_, first) = master_instance.next_timer().expect("armed");
    master_instance.handle(first, Input::TimerFired(TimerKind::Advert));
    assert_eq!(
        master_instance.timer_deadline(TimerKind::Advert),
        Some(first + Duration::from_millis(200))
    );
}

#[test]
fn a_reload_with_a_failing_weight_zero_tracker_takes_the_master_to_fault() {
    let (mut instance, became) = master(v3_config(100, 10));
    let new = instance.config().clone();
    let actions = instance
        .reconfigure(
            became,
            new,
            Tracking {
                priority: 100,
                fault: true,
            },
        )
        .expect("same instance");
    assert_eq!(instance.state(), State::Fault);
    assert_eq!(sent(&actions)[0].advertisement.priority, 0);
}

// --- binary upgrade: resume and hand off ----------------------------------------------------

#[test]
fn a_resumed_master_advertises_at_once_keeps_its_addresses_and_announces_nothing() {
    let config = v3_config(100, 100);
    let mut instance = instance(config.clone());
    let actions = instance.handle(ms(0), Input::Resume { was_master: true });
    assert_eq!(
        state_changes(&actions),
        [(State::Initialize, State::Master, Reason::Resumed)]
    );
    let adverts = sent(&actions);
    assert_eq!(adverts.len(), 1, "one advertisement at once");
    assert_eq!(adverts[0].advertisement.priority, 100);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::AddAddresses { .. })));
    assert_eq!(
        announcements(&actions),
        0,
        "nothing moved: no GARP / NA burst"
    );
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::RemoveAddresses { .. })));
    // The next advertisement exactly one interval later, as for any master.
    assert_eq!(instance.timer_deadline(TimerKind::Advert), Some(ms(1000)));
    assert_eq!(instance.timer_deadline(TimerKind::AnnounceBurst), None);
    assert_eq!(instance.timer_deadline(TimerKind::AnnounceRepeat), None);
    // A resume is a start: a second one does nothing.
    assert!(instance
        .handle(ms(10), Input::Resume { was_master: true })
        .is_empty());
}

#[test]
fn a_resumed_master_yields_to_a_higher_priority_as_any_master_does() {
    let config = v3_config(100, 100);
    let mut instance = instance(config.clone());
    instance.handle(ms(0), Input::Resume { was_master: true });
    let higher = peer_advert(&config, "10.0.0.9", 150);
    let actions = receive(&mut instance, ms(50), &higher);
    assert_eq!(instance.state(), State::Backup, "{actions:?}");
}

#[test]
fn a_resumed_backup_or_a_faulty_instance_starts_as_at_startup() {
    let config = v3_config(100, 100);
    let (mut fresh, fresh_actions) = started(config.clone());
    let mut resumed = instance(config.clone());
    let actions = resumed.handle(ms(0), Input::Resume { was_master: false });
    assert_eq!(state_changes(&actions), state_changes(&fresh_actions));
    assert_eq!(
        resumed.timer_deadline(TimerKind::MasterDown),
        fresh.timer_deadline(TimerKind::MasterDown)
    );
    let _ = fresh.handle(ms(1), Input::Shutdown);

    let mut down = instance(config);
    down.handle(ms(0), Input::InterfaceDown);
    let actions = down.handle(ms(0), Input::Resume { was_master: true });
    assert_eq!(down.state(), State::Fault, "{actions:?}");
    assert!(sent(&actions).is_empty());
}

#[test]
fn a_hand_off_stops_silently_leaving_the_addresses() {
    let (mut instance, became) = master(v2_config(100));
    let actions = instance.handle(became, Input::HandOff);
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Initialize, Reason::HandedOff)]
    );
    assert!(
        sent(&actions).is_empty(),
        "no priority 0: the successor is master"
    );
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::RemoveAddresses { .. })));
    assert_eq!(instance.next_timer(), None, "every timer cancelled");
    assert!(!instance.holds_addresses());
    assert!(instance.handle(became, Input::HandOff).is_empty());
}

// --- safe boot: no master before the trackers have spoken --------------------------------------

fn waiting(config: InstanceConfig) -> InstanceConfig {
    InstanceConfig {
        startup_limit: Some(Duration::from_secs(5)),
        ..config
    }
}

fn fire(instance: &mut Instance, kind: TimerKind) -> (Timestamp, Vec<Action>) {
    let at = instance.timer_deadline(kind).expect("armed");
    (at, instance.handle(at, Input::TimerFired(kind)))
}

#[test]
fn a_waiting_backup_does_not_become_master_by_timeout_until_its_trackers_are_ready() {
    let (mut instance, _) = started(waiting(v3_config(100, 100)));
    assert!(instance.awaiting_trackers());
    let (fired, actions) = fire(&mut instance, TimerKind::MasterDown);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(instance.state(), State::Backup);
    let ready = fired + Duration::from_millis(700);
    let actions = instance.handle(ready, Input::TrackersReady);
    assert_eq!(
        actions,
        [Action::StartupWaitEnded(StartupWaitEnd::TrackersReady)]
    );
    // The deferred timer fires again after Skew_Time: (256 - 100) x 100 cs / 256 = 609.375 ms.
    let (again, actions) = fire(&mut instance, TimerKind::MasterDown);
    assert_eq!(again, ready + Duration::from_nanos(609_375_000));
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Master, Reason::MasterDown)]
    );
    assert_eq!(instance.timer_deadline(TimerKind::StartupLimit), None);
    assert!(!instance.awaiting_trackers());
    // Once over, the wait never comes back.
    assert!(instance.handle(ready, Input::TrackersReady).is_empty());
}

#[test]
fn a_waiting_backup_does_not_preempt_until_ready_then_does_under_the_usual_rules() {
    // 100 ms adverts: Master_Down_Interval is 360.9 ms, well inside the 2 s below.
    let config = waiting(v3_config(100, 10));
    let (mut instance, _) = started(config.clone());
    let lower = peer_advert(&config, "192.0.2.9", 50);
    let mut now = ms(0);
    let mut became_master = false;
    // The lower master keeps advertising for 2 s; a preempting backup discards its adverts.
    while now < ms(2000) {
        now = now + Duration::from_millis(100);
        receive(&mut instance, now, &lower);
        if let Some((kind, at)) = instance.next_timer() {
            if at <= now {
                let actions = instance.handle(at, Input::TimerFired(kind));
                became_master |= !state_changes(&actions).is_empty();
            }
        }
    }
    assert!(!became_master, "no preemption while waiting");
    assert_eq!(instance.state(), State::Backup);
    instance.handle(now, Input::TrackersReady);
    // The lower master is still advertising; after Skew_Time the timer fires and we preempt.
    receive(&mut instance, now + Duration::from_millis(30), &lower);
    let (_, actions) = fire(&mut instance, TimerKind::MasterDown);
    let changes = state_changes(&actions);
    assert!(
        matches!(
            changes.as_slice(),
            [(
                State::Backup,
                State::Master,
                Reason::Preempted {
                    master_priority: 50,
                    ..
                }
            )]
        ),
        "{changes:?}"
    );
}

#[test]
fn a_master_heard_during_the_wait_keeps_the_waiting_instance_backup() {
    let config = waiting(v3_config(100, 100));
    let (mut instance, _) = started(config.clone());
    fire(&mut instance, TimerKind::MasterDown);
    // A master of higher priority shows up: the timer is reset, nothing is deferred any more.
    let higher = peer_advert(&config, "192.0.2.9", 200);
    receive(&mut instance, ms(400), &higher);
    let actions = instance.handle(ms(450), Input::TrackersReady);
    assert_eq!(
        actions,
        [Action::StartupWaitEnded(StartupWaitEnd::TrackersReady)]
    );
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn the_startup_limit_ends_the_wait_with_what_is_known() {
    let (mut instance, _) = started(waiting(v3_config(100, 100)));
    fire(&mut instance, TimerKind::MasterDown);
    let (at, actions) = fire(&mut instance, TimerKind::StartupLimit);
    assert_eq!(at, ms(5000));
    assert_eq!(
        actions,
        [Action::StartupWaitEnded(StartupWaitEnd::LimitReached)]
    );
    fire(&mut instance, TimerKind::MasterDown);
    assert_eq!(instance.state(), State::Master);
}

#[test]
fn the_owner_waits_too_then_is_master_at_once() {
    let (mut instance, actions) = started(waiting(v3_config(255, 100)));
    assert_eq!(
        state_changes(&actions),
        [(State::Initialize, State::Backup, Reason::Startup)]
    );
    assert!(sent(&actions).is_empty());
    let actions = instance.handle(ms(300), Input::TrackersReady);
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Master, Reason::StartupAsOwner)]
    );
}

#[test]
fn a_shutdown_during_the_wait_cancels_it() {
    let (mut instance, _) = started(waiting(v3_config(100, 100)));
    instance.handle(ms(10), Input::Shutdown);
    assert_eq!(instance.next_timer(), None);
    assert!(!instance.awaiting_trackers());
}
