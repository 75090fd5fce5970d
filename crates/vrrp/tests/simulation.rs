//! Several routers on a simulated network with a virtual clock (see `sim/mod.rs`). Every timing
//! is asserted to the RFC formula, to the nanosecond: packets take 1 ms, so a backup's
//! Master_Down_Timer runs from the moment the master's last advertisement *arrived*.
//!
//! The randomized test at the end runs many seeded schedules of crashes, restarts, partitions,
//! heals and priority changes; `VRRP_SIM_SEED=n` replays one seed, `VRRP_SIM_SEEDS=n` sets how
//! many are run.

mod sim;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use havip_vrrp::timers::{self, master_down_interval};
use havip_vrrp::{AdvertInterval, InstanceConfig, Reason, State, Timestamp, Tracking, Version};
use sim::{Rng, Sim};

const DELAY: Duration = Duration::from_millis(1);

fn at(nanos: u64) -> Timestamp {
    Timestamp::from_nanos(nanos)
}

fn secs(seconds: u64) -> Timestamp {
    Timestamp::from_nanos(seconds * 1_000_000_000)
}

fn address(router: usize) -> IpAddr {
    IpAddr::from([192, 0, 2, u8::try_from(router + 1).expect("few routers")])
}

fn router(index: usize, priority: u8, version: Version, interval_cs: u16) -> InstanceConfig {
    let mut config = InstanceConfig::new(
        51,
        address(index),
        vec!["192.0.2.100".parse().expect("VIP")],
    );
    config.version = version;
    config.priority = priority;
    config.advert_interval = AdvertInterval::from_centiseconds(interval_cs).expect("non-zero");
    config
}

fn v2_routers(priorities: &[u8]) -> Vec<InstanceConfig> {
    priorities
        .iter()
        .enumerate()
        .map(|(index, priority)| router(index, *priority, Version::V2, 100))
        .collect()
}

fn mdi(version: Version, priority: u8, interval_cs: u16) -> Duration {
    master_down_interval(
        version,
        priority,
        AdvertInterval::from_centiseconds(interval_cs).expect("non-zero"),
    )
}

/// Three v2 routers, priorities 100/90/80 (DESIGN.md's measurement setup), converged by 10 s.
fn converged_three() -> Sim {
    let mut sim = Sim::new(v2_routers(&[100, 90, 80]), DELAY);
    sim.start_all();
    sim.run_until(secs(10));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    sim
}

#[test]
fn startup_elects_the_highest_priority_after_its_master_down_interval() {
    let sim = converged_three();
    // All start as backups; the highest priority has the shortest skew:
    // 3 s + (256 − 100) / 256 s = 3.609375 s.
    assert_eq!(sim.became_master_at(0), Some(at(3_609_375_000)));
    for backup in [1, 2] {
        let states: Vec<State> = sim.transitions_of(backup).iter().map(|t| t.to).collect();
        assert_eq!(states, [State::Backup], "r{backup} never claimed");
    }
    assert_eq!(sim.holders(), [0]);
    assert!(sim.overlaps.is_empty());
}

#[test]
fn a_crashed_master_is_replaced_by_the_highest_backup_after_exactly_master_down_interval() {
    let mut sim = converged_three();
    sim.crash(0);
    sim.run_until(secs(20));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    let took_over = sim.became_master_at(1).expect("r1 took over");
    let last = sim.last_accepted_before(1, took_over).expect("heard r0");
    assert_eq!(last.from, address(0));
    assert_eq!(took_over, last.at + mdi(Version::V2, 90, 100));
    // r0 advertised at 3.609375 s + k s; its last advert (9.609375 s) arrived at 9.610375 s;
    // + 3.6484375 s (the 3648 ms DESIGN.md measured with keepalived).
    assert_eq!(took_over, at(13_258_812_500));
    assert_eq!(
        sim.transitions_of(1).last().map(|t| t.reason),
        Some(Reason::MasterDown)
    );
    // r2's own timer (+3.6875 s) was reset by r1's first advert 1 ms after the takeover.
    let r2 = sim.transitions_of(2);
    assert!(!r2.is_empty(), "r2 started");
    assert!(r2.iter().all(|t| t.to != State::Master));
}

#[test]
fn priority_zero_hands_over_after_skew_time() {
    let mut sim = converged_three();
    sim.shutdown(0);
    assert!(
        sim.holders().is_empty(),
        "the stopping master released the address"
    );
    sim.run_until(secs(20));
    assert_eq!(sim.masters(), [1]);
    // Priority 0 sent at 10 s, arrives 10.001 s; skew of 90 is 166/256 s = 0.6484375 s.
    assert_eq!(sim.became_master_at(1), Some(at(10_649_437_500)));
    assert_eq!(
        sim.transitions_of(1).last().map(|t| t.reason),
        Some(Reason::MasterReleased)
    );
    // r2's skew (0.6875 s) is longer: r1's advert reached it first.
    let r2 = sim.transitions_of(2);
    assert!(!r2.is_empty(), "r2 started");
    assert!(r2.iter().all(|t| t.to != State::Master));
}

/// [`converged_three`] with graceful release on every router.
fn converged_three_graceful() -> Sim {
    let mut configs = v2_routers(&[100, 90, 80]);
    for config in &mut configs {
        config.graceful_release = true;
    }
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_until(secs(10));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    sim
}

#[test]
fn a_graceful_shutdown_leaves_no_moment_without_a_holder() {
    let mut sim = converged_three_graceful();
    sim.shutdown(0);
    assert_eq!(sim.holders(), [0], "the stopping master keeps the address");
    sim.run_until(secs(20));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    // The takeover itself is timed exactly as without graceful release ...
    assert_eq!(sim.became_master_at(1), Some(at(10_649_437_500)));
    // ... but the address never lacked a holder: r0 let go when r1's first advert (sent on
    // its takeover) reached it one network delay later.
    assert_eq!(
        sim.longest_time_without_holder(secs(10), secs(20)),
        Duration::ZERO,
        "{}",
        sim.report()
    );
    assert_eq!(sim.holders(), [1]);
    assert!(!sim.is_up(0), "r0 ended once its release was complete");
    assert_eq!(
        sim.overlaps,
        [(at(10_649_437_500), 1, 0)],
        "both held it for one network delay only"
    );
}

#[test]
fn a_graceful_shutdown_with_nobody_to_take_over_releases_at_the_bound() {
    let mut sim = converged_three_graceful();
    sim.crash(1);
    sim.crash(2);
    sim.shutdown(0);
    let bound = mdi(Version::V2, 1, 100);
    sim.run_until(secs(10) + (bound - Duration::from_nanos(1)));
    assert_eq!(sim.holders(), [0], "still serving until the bound");
    sim.run_until(secs(10) + bound);
    assert!(sim.holders().is_empty());
    assert!(!sim.is_up(0));
}

#[test]
fn a_drill_hands_over_and_a_restore_with_preemption_takes_the_vip_back() {
    let mut sim = converged_three_graceful();
    sim.step_down(0);
    assert_eq!(sim.state(0), Some(State::Fault));
    sim.run_until(secs(15));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    assert_eq!(
        sim.longest_time_without_holder(secs(10), secs(15)),
        Duration::ZERO
    );
    assert_eq!(sim.holders(), [1]);
    // Tracking changes while stepped down do not bring r0 back.
    sim.track(
        0,
        Tracking {
            priority: 100,
            fault: false,
        },
    );
    sim.run_until(secs(20));
    assert_eq!(sim.state(0), Some(State::Fault));
    sim.restore(0);
    assert_eq!(sim.state(0), Some(State::Backup));
    sim.run_until(secs(30));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    // Back as a backup at 20 s, r0 discards r1's lower adverts and preempts after its
    // Master_Down_Interval.
    assert_eq!(
        sim.became_master_at(0),
        Some(secs(20) + mdi(Version::V2, 100, 100))
    );
}

#[test]
fn a_shutdown_during_a_step_down_ends_at_the_step_downs_hand_over_bound() {
    let mut sim = converged_three_graceful();
    sim.crash(1);
    sim.crash(2);
    sim.step_down(0);
    sim.run_until(secs(10) + Duration::from_millis(10));
    sim.shutdown(0);
    assert!(sim.is_up(0), "still handing over");
    let bound = mdi(Version::V2, 1, 100);
    sim.run_until(secs(10) + bound);
    assert!(
        !sim.is_up(0),
        "ended at the bound of the step-down's release"
    );
    assert!(sim.holders().is_empty());
}

#[test]
fn a_returning_higher_priority_router_preempts_after_its_master_down_interval() {
    let mut sim = converged_three();
    sim.crash(0);
    sim.run_until(secs(20));
    sim.start(0);
    sim.run_until(secs(30));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    // It discards r1's lower priority, so its startup Master_Down_Timer runs out.
    let preempted = at(20_000_000_000 + 3_609_375_000);
    assert_eq!(sim.became_master_at(0), Some(preempted));
    assert_eq!(
        sim.transitions_of(0).last().map(|t| t.reason),
        Some(Reason::Preempted {
            master: address(1),
            master_priority: 90
        })
    );
    // r1 steps down when r0's first advert arrives.
    assert_eq!(sim.left_master_at(1), Some(preempted + DELAY));
}

#[test]
fn preempt_delay_postpones_the_takeover_by_exactly_the_delay() {
    let mut configs = v2_routers(&[100, 90, 80]);
    configs[0].preempt_delay = Duration::from_secs(5);
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_until(secs(10));
    // Nobody to preempt at startup: no delay.
    assert_eq!(sim.became_master_at(0), Some(at(3_609_375_000)));
    sim.crash(0);
    sim.run_until(secs(20));
    sim.start(0);
    sim.run_until(secs(40));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    let preempted = at(20_000_000_000 + 3_609_375_000 + 5_000_000_000);
    assert_eq!(sim.became_master_at(0), Some(preempted));
    assert_eq!(sim.left_master_at(1), Some(preempted + DELAY));
}

#[test]
fn nopreempt_keeps_the_incumbent_even_when_a_higher_priority_returns() {
    // The nginx seed: MASTER priority 100 and BACKUP priority 90, both nopreempt, advert_int 2.
    let mut configs = vec![
        router(0, 100, Version::V2, 200),
        router(1, 90, Version::V2, 200),
    ];
    for config in &mut configs {
        config.preempt = false;
    }
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_until(secs(20));
    // First election: both wait; the higher priority has the shorter skew.
    assert_eq!(sim.became_master_at(0), Some(at(6_609_375_000)));
    sim.crash(0);
    sim.run_until(secs(40));
    assert_eq!(sim.masters(), [1]);
    sim.start(0);
    sim.run_until(secs(200));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    let states: Vec<State> = sim
        .transitions_of(0)
        .iter()
        .filter(|t| t.at >= secs(40))
        .map(|t| t.to)
        .collect();
    assert_eq!(states, [State::Backup], "the returning router never claims");
}

#[test]
fn equal_priorities_are_broken_by_the_higher_address() {
    let mut sim = Sim::new(v2_routers(&[100, 100]), DELAY);
    sim.start_all();
    sim.run_until(secs(10));
    // Both time out together and claim; each hears the other 1 ms later.
    assert_eq!(sim.became_master_at(0), Some(at(3_609_375_000)));
    assert_eq!(sim.became_master_at(1), Some(at(3_609_375_000)));
    assert_eq!(sim.masters(), [1], "192.0.2.2 > 192.0.2.1");
    assert_eq!(sim.left_master_at(0), Some(at(3_610_375_000)));
    assert_eq!(
        sim.transitions_of(0).last().map(|t| t.reason),
        Some(Reason::EqualPriorityHigherAddress { source: address(1) })
    );
}

#[test]
fn a_healed_partition_converges_by_the_lower_masters_next_advert() {
    let mut sim = converged_three();
    sim.partition(&[&[0], &[1, 2]]);
    sim.run_until(secs(15));
    // r1 took over on its side.
    assert_eq!(sim.masters(), [0, 1]);
    assert_eq!(sim.became_master_at(1), Some(at(13_258_812_500)));
    sim.heal();
    sim.run_until(secs(20));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    // r1 advertises at 15.2588125 s, before r0's 15.609375 s. r0 answers at once (15.2598125 s)
    // and r1 steps down when the answer arrives, 2 ms after its own advert.
    assert_eq!(sim.left_master_at(1), Some(at(15_260_812_500)));
    assert_eq!(sim.holders(), [0]);
}

#[test]
fn a_healed_partition_converges_within_one_advert_interval_whatever_the_phase() {
    // VRRPv3 with a slow higher-priority master (3 s) and a faster lower one (1 s): without the
    // immediate answer, the lower master would wait up to 3 s for the higher one's next advert.
    // With it, the lower master steps down within one of *its* intervals (plus the two packet
    // delays of its advert and the answer), whatever the phase of the heal.
    for step in 0..20u64 {
        let configs = vec![
            router(0, 100, Version::V3, 300),
            router(1, 90, Version::V3, 100),
        ];
        let mut sim = Sim::new(configs, DELAY);
        sim.start_all();
        sim.run_until(secs(20));
        assert_eq!(sim.masters(), [0]);
        sim.partition(&[&[0], &[1]]);
        sim.run_until(secs(40));
        assert_eq!(sim.masters(), [0, 1], "r1 took over on its side");
        let heal = secs(40) + Duration::from_millis(150 * step);
        sim.run_until(heal);
        sim.heal();
        sim.run_until(secs(50));
        assert_eq!(sim.masters(), [0], "step {step}\n{}", sim.report());
        let left = sim.left_master_at(1).expect("r1 stepped down");
        assert!(
            left <= heal + Duration::from_secs(1) + DELAY * 2,
            "step {step}: stepped down at {left}, healed at {heal}"
        );
        assert_eq!(sim.holders(), [0]);
    }
}

#[test]
fn a_tracker_weight_hands_over_and_back() {
    let mut sim = Sim::new(v2_routers(&[100, 90]), DELAY);
    sim.start_all();
    sim.run_until(at(10_300_000_000));
    // The rke2 seed's check fails: weight −15 takes r0 from 100 to 85.
    sim.track(0, Tracking::untracked(85));
    sim.run_until(secs(20));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    // r0 advertises 85 from 10.609375 s; r1 discards it, and its timer from r0's last 100
    // (9.609375 s, arrived 9.610375 s) runs out 3.6484375 s later.
    let took_over = at(13_258_812_500);
    assert_eq!(sim.became_master_at(1), Some(took_over));
    assert_eq!(
        sim.transitions_of(1).last().map(|t| t.reason),
        Some(Reason::Preempted {
            master: address(0),
            master_priority: 85
        })
    );
    assert_eq!(sim.left_master_at(0), Some(took_over + DELAY));

    // The check recovers at 20 s. r0's running timer was armed at 19.2598125 s with its
    // priority then (85): 3 s + 171/256 s = 3.66796875 s.
    sim.track(0, Tracking::untracked(100));
    sim.run_until(secs(30));
    assert_eq!(sim.masters(), [0]);
    assert_eq!(
        sim.became_master_at(0),
        Some(at(19_259_812_500 + 3_667_968_750))
    );
}

#[test]
fn a_v3_backup_times_out_on_the_masters_interval() {
    // r0 advertises every 0.1 s, r1 is configured with 1 s: r1 adopts 0.1 s (RFC 5798 6.4.2).
    let configs = vec![
        router(0, 100, Version::V3, 10),
        router(1, 90, Version::V3, 100),
    ];
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_until(secs(5));
    assert_eq!(sim.became_master_at(0), Some(at(360_937_500)));
    let adopted = sim
        .instance(1)
        .map(|i| i.master_adver_interval().centiseconds());
    assert_eq!(adopted, Some(10));
    sim.crash(0);
    sim.run_until(secs(10));
    // Last advert 4.9609375 s, arrived 4.9619375 s; 3 × 0.1 s + 166 × 10 / 256 cs.
    assert_eq!(
        sim.became_master_at(1),
        Some(at(4_961_937_500 + 364_843_750))
    );
}

#[test]
fn v3_fast_failover_matches_the_design_numbers() {
    // DESIGN.md: v3, 0.1 s, 100/90/80: RFC says 365 ms after the last advert.
    let configs: Vec<InstanceConfig> = [100, 90, 80]
        .iter()
        .enumerate()
        .map(|(i, p)| router(i, *p, Version::V3, 10))
        .collect();
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_until(secs(3));
    sim.crash(0);
    sim.run_until(secs(5));
    let took_over = sim.became_master_at(1).expect("r1 took over");
    let last = sim.last_accepted_before(1, took_over).expect("heard r0");
    assert_eq!(took_over - last.at, Duration::from_nanos(364_843_750));
    assert_eq!(sim.masters(), [1]);
}

/// Ten routers: the election and a chain of master crashes, each replaced by the next highest
/// priority exactly Master_Down_Interval after its last advertisement arrived.
fn ten_router_chain(version: Version, interval_cs: u16, unicast: bool) {
    let priorities = [50u8, 200, 120, 90, 180, 30, 150, 60, 240, 110];
    let mut configs: Vec<InstanceConfig> = priorities
        .iter()
        .enumerate()
        .map(|(i, p)| router(i, *p, version, interval_cs))
        .collect();
    if unicast {
        for (index, config) in configs.iter_mut().enumerate() {
            config.unicast_peers = (0..priorities.len())
                .filter(|other| *other != index)
                .map(address)
                .collect();
        }
    }
    let mut by_priority: Vec<usize> = (0..priorities.len()).collect();
    by_priority.sort_by_key(|r| std::cmp::Reverse(priorities[*r]));

    let interval = Duration::from_millis(u64::from(interval_cs) * 10);
    let settle = interval * 10;
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_for(settle);
    assert_eq!(sim.masters(), [by_priority[0]], "{}", sim.report());
    assert_eq!(
        sim.became_master_at(by_priority[0]),
        Some(Timestamp::ZERO + mdi(version, 240, interval_cs))
    );
    for pair in by_priority.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        sim.crash(old);
        let crashed_at = sim.now();
        sim.run_for(settle);
        assert_eq!(sim.masters(), [new], "{}", sim.report());
        let took_over = sim.became_master_at(new).expect("took over");
        let last = sim
            .last_accepted_before(new, took_over)
            .expect("heard the old master");
        assert_eq!(last.from, address(old));
        assert_eq!(
            took_over,
            last.at + mdi(version, priorities[new], interval_cs)
        );
        // Nobody else claimed in between.
        let claims: Vec<usize> = sim
            .transitions
            .iter()
            .filter(|t| t.at > crashed_at && t.to == State::Master)
            .map(|t| t.router)
            .collect();
        assert_eq!(claims, [new]);
    }
}

#[test]
fn ten_routers_v2_multicast() {
    ten_router_chain(Version::V2, 100, false);
}

#[test]
fn ten_routers_v3_fast_multicast() {
    ten_router_chain(Version::V3, 10, false);
}

#[test]
fn ten_routers_v3_unicast() {
    ten_router_chain(Version::V3, 100, true);
}

// --- randomized ------------------------------------------------------------------------------

/// The invariant after convergence, per set of routers that hear each other: exactly one master
/// among those up and not in fault, and it is the one the RFC says. With preemption: one with
/// the highest effective priority. Without: the best (priority, address) among the masters of
/// the previous check still alive on that side (two incumbents meet when a partition heals),
/// or any one if there were none. And only masters hold the virtual address.
fn check_invariant(
    sim: &Sim,
    preempt: bool,
    incumbents: &BTreeSet<(usize, u32)>,
) -> Result<(), String> {
    let segments: BTreeSet<u32> = (0..sim.len()).map(|r| sim.segment(r)).collect();
    for segment in segments {
        let eligible: Vec<usize> = (0..sim.len())
            .filter(|r| sim.segment(*r) == segment)
            .filter(|r| sim.instance(*r).is_some_and(|i| i.fault_cause().is_none()))
            .collect();
        let masters: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|r| sim.state(*r) == Some(State::Master))
            .collect();
        if eligible.is_empty() {
            continue;
        }
        if masters.len() != 1 {
            return Err(format!(
                "segment {segment}: masters {masters:?} among {eligible:?}"
            ));
        }
        let master = masters[0];
        let priority = |r: usize| sim.instance(r).map_or(0, |i| i.priority());
        if preempt {
            let best = eligible.iter().map(|r| priority(*r)).max().unwrap_or(0);
            if priority(master) != best {
                return Err(format!(
                    "segment {segment}: master r{master} has priority {}, best is {best}",
                    priority(master)
                ));
            }
        } else {
            let expected = eligible
                .iter()
                .copied()
                .filter(|r| incumbents.contains(&(*r, sim.incarnation(*r))))
                .max_by_key(|r| (priority(*r), u32::from_be_bytes(octets(address(*r)))));
            if let Some(expected) = expected {
                if expected != master {
                    return Err(format!(
                        "segment {segment}: master r{master}, but incumbent r{expected} should have stayed"
                    ));
                }
            }
        }
    }
    let holders = sim.holders();
    let masters = sim.masters();
    if holders != masters {
        return Err(format!("holders {holders:?} but masters {masters:?}"));
    }
    Ok(())
}

fn octets(address: IpAddr) -> [u8; 4] {
    match address {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

fn random_run(seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let preempt = seed % 2 == 0;
    let count = usize::try_from(rng.between(2, 10)).expect("small");
    let version = if rng.chance(50) {
        Version::V2
    } else {
        Version::V3
    };
    let interval_cs: u16 = match version {
        Version::V2 => 100,
        Version::V3 => [10u16, 25, 100][usize::try_from(rng.below(3)).expect("small")],
    };
    let unicast = rng.chance(25);
    let preempt_delay = if preempt && rng.chance(25) {
        Duration::from_millis(rng.between(1, 2000))
    } else {
        Duration::ZERO
    };
    let mut has_owner = false;
    let mut configs = Vec::new();
    for index in 0..count {
        let priority = if preempt && !has_owner && rng.chance(10) {
            has_owner = true;
            255
        } else if rng.chance(25) {
            // a small range makes ties likely
            u8::try_from(rng.between(99, 101)).expect("small")
        } else {
            u8::try_from(rng.between(1, 254)).expect("small")
        };
        let mut config = router(index, priority, version, interval_cs);
        config.preempt = preempt;
        config.preempt_delay = preempt_delay;
        if unicast {
            config.unicast_peers = (0..count).filter(|o| *o != index).map(address).collect();
        }
        configs.push(config);
    }
    let interval = Duration::from_millis(u64::from(interval_cs) * 10);
    // Worst chains (a restart of the best right after a crash, a preempt delay, a partition
    // heal) settle well within three Master_Down_Intervals (each under 4 intervals) + delay.
    let settle = interval * 14 + preempt_delay + Duration::from_millis(50);

    // Graceful release and drills come from their own generator, so that every seed keeps
    // the schedule it had before they existed.
    let mut extra = Rng::new(seed ^ 0x9a11);
    let graceful = extra.chance(50);
    for config in &mut configs {
        config.graceful_release = graceful;
    }
    let mut sim = Sim::new(configs, DELAY).with_jitter(Rng::new(seed ^ 0x5eed), DELAY);
    sim.start_all();
    sim.run_for(settle);
    let describe = |sim: &Sim, error: String| {
        format!(
            "seed {seed} (preempt {preempt}, {count} routers, {version}, {interval_cs} cs, \
             unicast {unicast}, preempt_delay {preempt_delay:?}, graceful {graceful}): \
             {error}\n{}",
            sim.report()
        )
    };
    let mut incumbents: BTreeSet<(usize, u32)> = BTreeSet::new();
    check_invariant(&sim, preempt, &incumbents).map_err(|e| describe(&sim, e))?;

    for _round in 0..12 {
        incumbents = sim
            .masters()
            .into_iter()
            .map(|r| (r, sim.incarnation(r)))
            .collect();
        // Without preemption the expected master depends on history, so one event per round.
        let events = if preempt { rng.between(1, 3) } else { 1 };
        for _ in 0..events {
            let pause = rng.below(u64::try_from((interval * 2).as_nanos()).expect("small"));
            sim.run_for(Duration::from_nanos(pause));
            let up: Vec<usize> = (0..count).filter(|r| sim.is_up(*r)).collect();
            let down: Vec<usize> = (0..count).filter(|r| !sim.is_up(*r)).collect();
            let pick = |rng: &mut Rng, from: &[usize]| {
                from[usize::try_from(rng.below(from.len() as u64)).expect("small")]
            };
            match rng.below(if preempt { 6 } else { 5 }) {
                0 if !up.is_empty() => sim.crash(pick(&mut rng, &up)),
                1 if !down.is_empty() => sim.start(pick(&mut rng, &down)),
                2 if !up.is_empty() => {
                    let router = pick(&mut rng, &up);
                    if rng.chance(50) {
                        sim.shutdown(router);
                    } else {
                        sim.crash(router);
                    }
                }
                3 => {
                    let (left, right): (Vec<usize>, Vec<usize>) =
                        (0..count).partition(|_| rng.chance(50));
                    sim.partition(&[&left, &right]);
                }
                4 => sim.heal(),
                5 if !up.is_empty() => {
                    let router = pick(&mut rng, &up);
                    let tracking = Tracking {
                        priority: u8::try_from(rng.between(1, 254)).expect("small"),
                        fault: rng.chance(20),
                    };
                    sim.track(router, tracking);
                }
                _ => {}
            }
            if extra.chance(10) {
                let router = extra.below(count as u64) as usize;
                if extra.chance(50) {
                    sim.step_down(router);
                } else {
                    sim.restore(router);
                }
            }
        }
        sim.run_for(settle);
        check_invariant(&sim, preempt, &incumbents).map_err(|e| describe(&sim, e))?;
    }
    Ok(())
}

#[test]
fn randomized_schedules_always_converge_to_the_right_master() {
    let seeds: Vec<u64> = match std::env::var("VRRP_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("VRRP_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("VRRP_SIM_SEEDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(200u64);
            (0..count).collect()
        }
    };
    for seed in seeds {
        if let Err(failure) = random_run(seed) {
            panic!("{failure}\nreplay with VRRP_SIM_SEED={seed}");
        }
    }
}

/// Safe boot (issue #14): r1 (90) holds the VIP; r0 (100) reboots with its only backend
/// refusing connections. It must not take the VIP before its trackers have spoken; they lower
/// it to 70, so it stays backup. Once the backend is back, it preempts as usual.
#[test]
fn a_booting_router_whose_health_is_unknown_does_not_take_the_vip() {
    let mut configs: Vec<InstanceConfig> = (0..2)
        .map(|i| router(i, [100, 90][i], Version::V3, 10))
        .collect();
    configs[0].startup_limit = Some(Duration::from_secs(5));
    let mut sim = Sim::new(configs, DELAY);
    sim.start(1);
    sim.run_until(secs(2));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    sim.start(0);
    // Its first check fails 0.7 s after boot (the measurement), well after its
    // Master_Down_Interval of 0.36 s.
    sim.run_until(secs(2) + Duration::from_millis(700));
    assert_eq!(
        sim.masters(),
        [1],
        "no preemption while waiting\n{}",
        sim.report()
    );
    sim.track(
        0,
        Tracking {
            priority: 70,
            fault: false,
        },
    );
    sim.trackers_ready(0);
    sim.run_until(secs(6));
    assert_eq!(sim.masters(), [1], "{}", sim.report());
    assert_eq!(
        sim.transitions_of(1).last().map(|t| t.to),
        Some(State::Master)
    );
    assert_eq!(sim.became_master_at(0), None, "r0 never held the VIP");
    // The backend recovers: priority 100 again, and r0 preempts under the usual rules.
    sim.track(
        0,
        Tracking {
            priority: 100,
            fault: false,
        },
    );
    sim.run_until(secs(8));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
}

/// Power loss: every router boots at once and nobody's trackers report. The VIP still comes
/// up once the limit passes, with one master: the waits end together, and Skew_Time lets the
/// highest priority speak first.
#[test]
fn when_every_router_boots_at_once_the_vip_comes_up_at_the_startup_limit() {
    let limit = Duration::from_secs(3);
    let configs: Vec<InstanceConfig> = (0..3)
        .map(|i| {
            let mut config = router(i, [100, 90, 80][i], Version::V3, 10);
            config.startup_limit = Some(limit);
            config
        })
        .collect();
    let mut sim = Sim::new(configs, DELAY);
    sim.start_all();
    sim.run_until(at(2_999_000_000));
    assert!(sim.masters().is_empty(), "{}", sim.report());
    sim.run_until(secs(5));
    assert_eq!(sim.masters(), [0], "{}", sim.report());
    let up = sim.became_master_at(0).expect("r0 master");
    let interval = AdvertInterval::from_centiseconds(10).expect("non-zero");
    let bound = at(3_000_000_000) + timers::skew_time(Version::V3, 100, interval);
    assert!(up <= bound, "VIP up at {up:?}, bound {bound:?}");
    for other in [1, 2] {
        assert_eq!(
            sim.became_master_at(other),
            None,
            "r{other} never master\n{}",
            sim.report()
        );
    }
}
