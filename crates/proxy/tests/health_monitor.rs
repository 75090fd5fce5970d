//! The monitor task end to end against real loopback TCP servers: rise/fall timing when a
//! server goes away and comes back, probation at start, the spread of first checks, passive
//! failures with and without active checks, and stopping by abort.
//!
//! Active-check tests run on the real clock with short intervals and bounded waits; the
//! passive-only ones do no I/O and run on tokio's paused clock, so their timing is exact.

mod support;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use havip_config::service::{CheckKind, HealthSpec, PassiveSpec};
use havip_proxy::backend::CheckOutcome;
use havip_test_support::servers::{Reply, Server};
use support::{backend, no_passive, spawn_monitor, wait_until, MS};
use tokio::net::TcpListener;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_millis(100);
const FAST: Duration = Duration::from_millis(50);
const DOWN: Duration = Duration::from_millis(100);

fn tcp_spec(rise: u32, fall: u32) -> HealthSpec {
    HealthSpec {
        check: Some(CheckKind::Tcp),
        interval: INTERVAL,
        fast_interval: FAST,
        down_interval: DOWN,
        timeout: 200 * MS,
        rise,
        fall,
        port: None,
    }
}

async fn free_addr() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

/// Server stops: down after exactly `fall` failed checks, at the pace of the first
/// interval and then `fast_interval`. Server returns: up after exactly `rise` passes, at
/// `down_interval` then `fast_interval`.
#[tokio::test]
async fn tcp_fall_and_rise_follow_the_counts_and_intervals() {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), Reply::Close);
    let addr = server.addr;
    let (b, inbox) = backend(addr);
    let monitor = spawn_monitor(&b, inbox, tcp_spec(2, 3), no_passive(), 0, 1);

    wait_until(2000 * MS, || b.stats.checks_passed.load(Relaxed) >= 2)
        .await
        .expect("two passing checks within 2 s");
    assert!(b.is_up());
    assert_eq!(b.stats.checks_failed.load(Relaxed), 0);
    let (outcome, took) = b.last_check();
    assert_eq!(outcome, CheckOutcome::Passed);
    assert!(took < 200 * MS, "loopback connect took {took:?}");

    drop(server);
    let took = wait_until(2000 * MS, || !b.is_up())
        .await
        .expect("marked down within 2 s");
    // The next check after the down transition is at least 0.9 x DOWN away; 2 ms polling
    // reads the count long before.
    assert_eq!(b.stats.checks_failed.load(Relaxed), 3, "fall = 3");
    assert_eq!(b.stats.went_down.load(Relaxed), 1);
    assert_eq!(b.last_check().0, CheckOutcome::Failed);
    // Two fast intervals at least separate the 1st and 3rd failures; at most one jittered
    // interval plus two fast ones (+ scheduling slack) pass in all.
    assert!(took >= FAST.mul_f64(0.9) * 2, "down after {took:?}");
    assert!(
        took < INTERVAL.mul_f64(1.1) + FAST.mul_f64(1.1) * 2 + 300 * MS,
        "down after {took:?}"
    );

    let passed_before = b.stats.checks_passed.load(Relaxed);
    let server = Server::start(addr, Reply::Close);
    let took = wait_until(2000 * MS, || b.is_up())
        .await
        .expect("marked up within 2 s");
    assert_eq!(
        b.stats.checks_passed.load(Relaxed) - passed_before,
        2,
        "rise = 2"
    );
    assert!(took >= FAST.mul_f64(0.9), "up after {took:?}");
    assert!(
        took < DOWN.mul_f64(1.1) + FAST.mul_f64(1.1) + 300 * MS,
        "up after {took:?}"
    );
    assert!(
        b.up_for(Instant::now()) < 300 * MS,
        "up_since was set when it came up"
    );

    monitor.abort();
    drop(server);
}

/// A backend starts up on probation: the very first failed check marks it down.
#[tokio::test]
async fn first_failed_check_marks_a_new_backend_down() {
    let (b, inbox) = backend(free_addr().await);
    assert!(b.is_up(), "backends start up");
    let monitor = spawn_monitor(&b, inbox, tcp_spec(2, 3), no_passive(), 0, 1);
    let took = wait_until(2000 * MS, || !b.is_up())
        .await
        .expect("down within 2 s");
    assert_eq!(b.stats.checks_failed.load(Relaxed), 1);
    assert!(
        took < INTERVAL + 300 * MS,
        "first check is within the first interval: {took:?}"
    );
    monitor.abort();
}

/// Four backends of one service check first in four different quarters of the interval.
#[tokio::test]
async fn first_checks_are_spread_over_the_first_interval() {
    const N: usize = 4;
    let interval = 400 * MS;
    let spec = HealthSpec {
        interval,
        ..tcp_spec(2, 3)
    };
    let mut servers = Vec::new();
    let mut monitors = Vec::new();
    let start = Instant::now();
    for i in 0..N {
        let server = Server::start("127.0.0.1:0".parse().expect("addr"), Reply::Close);
        let (b, inbox) = backend(server.addr);
        monitors.push(spawn_monitor(&b, inbox, spec.clone(), no_passive(), i, N));
        servers.push((server, b));
    }
    let mut first = [None; N];
    let all = wait_until(2000 * MS, || {
        for (i, (server, _)) in servers.iter().enumerate() {
            if first[i].is_none() && server.accepted() > 0 {
                first[i] = Some(start.elapsed());
            }
        }
        first.iter().all(Option::is_some)
    })
    .await;
    assert!(all.is_some(), "every backend checked within 2 s: {first:?}");
    let slice = interval / N as u32;
    for (i, at) in first.iter().enumerate() {
        let at = at.expect("checked");
        // A check never fires before its slot (exact); it may run a little late (slack).
        assert!(
            at >= slice * i as u32,
            "backend {i} first checked at {at:?}"
        );
        assert!(
            at < slice * (i as u32 + 1) + 60 * MS,
            "backend {i} first checked at {at:?}"
        );
    }
    for m in monitors {
        m.abort();
    }
    drop(servers);
}

/// Aborting the handle stops the checks (the documented way to end a monitor).
#[tokio::test]
async fn abort_stops_the_checks() {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), Reply::Close);
    let (b, inbox) = backend(server.addr);
    let monitor = spawn_monitor(&b, inbox, tcp_spec(2, 3), no_passive(), 0, 1);
    wait_until(2000 * MS, || server.accepted() >= 1)
        .await
        .expect("checked within 2 s");
    monitor.abort();
    assert!(monitor.await.is_err_and(|e| e.is_cancelled()));
    let seen = server.accepted();
    // Time passing is the point: three intervals in which no check may come.
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(server.accepted(), seen, "no checks after abort");
    drop(server);
}

/// With active checks, connect failures mark the backend down at once, and it needs
/// `rise` passing checks to come back (the server is fine all along).
#[tokio::test]
async fn passive_down_with_active_checks_comes_back_after_rise_passes() {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), Reply::Close);
    let (b, inbox) = backend(server.addr);
    let passive = PassiveSpec {
        max_fails: 2,
        fail_timeout: Duration::from_secs(10),
    };
    let monitor = spawn_monitor(&b, inbox, tcp_spec(3, 3), passive, 0, 1);
    wait_until(2000 * MS, || b.stats.checks_passed.load(Relaxed) >= 1)
        .await
        .expect("first check within 2 s");

    b.report_connect_failure(Instant::now());
    b.report_connect_failure(Instant::now());
    wait_until(500 * MS, || !b.is_up())
        .await
        .expect("passive failures mark it down at once");
    let passed_before = b.stats.checks_passed.load(Relaxed);
    assert_eq!(b.stats.went_down.load(Relaxed), 1);

    wait_until(2000 * MS, || b.is_up())
        .await
        .expect("back up within 2 s");
    assert_eq!(
        b.stats.checks_passed.load(Relaxed) - passed_before,
        3,
        "rise = 3"
    );
    monitor.abort();
    drop(server);
}

fn passive_only() -> HealthSpec {
    HealthSpec {
        check: None,
        ..HealthSpec::default()
    }
}

/// Without active checks (nginx behaviour): `max_fails` failures within `fail_timeout` mark
/// the backend down for exactly `fail_timeout`. Paused clock: timings are exact.
#[tokio::test(start_paused = true)]
async fn passive_only_backend_returns_after_fail_timeout() {
    let (b, inbox) = backend("127.0.0.1:9".parse().expect("addr"));
    let passive = PassiveSpec {
        max_fails: 2,
        fail_timeout: Duration::from_secs(10),
    };
    let monitor = spawn_monitor(&b, inbox, passive_only(), passive, 0, 1);

    // Paused clock: each sleep lets exactly that much virtual time pass (the monitor takes
    // the report meanwhile); the timings below are the point.
    b.report_connect_failure(Instant::now());
    tokio::time::sleep(MS).await;
    assert!(b.is_up(), "one failure of two");
    b.report_connect_failure(Instant::now());
    tokio::time::sleep(MS).await;
    assert!(!b.is_up(), "two failures within 10 s");
    let down_at = Instant::now();

    tokio::time::sleep_until(down_at + Duration::from_secs(10) - 5 * MS).await;
    assert!(!b.is_up(), "still down just before fail_timeout");
    tokio::time::sleep(10 * MS).await;
    assert!(b.is_up(), "up again after fail_timeout");
    assert_eq!(b.stats.went_down.load(Relaxed), 1);
    assert_eq!(
        b.stats.checks_passed.load(Relaxed),
        0,
        "no active checks ran"
    );
    assert_eq!(
        b.stats.checks_failed.load(Relaxed),
        0,
        "no active checks ran"
    );
    monitor.abort();
}

/// Failures further apart than `fail_timeout` never add up.
#[tokio::test(start_paused = true)]
async fn passive_failures_outside_the_window_do_not_add_up() {
    let (b, inbox) = backend("127.0.0.1:9".parse().expect("addr"));
    let passive = PassiveSpec {
        max_fails: 2,
        fail_timeout: Duration::from_secs(10),
    };
    let monitor = spawn_monitor(&b, inbox, passive_only(), passive, 0, 1);
    // Paused clock: the sleeps are the virtual time between failures.
    for _ in 0..5 {
        b.report_connect_failure(Instant::now());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(b.is_up());
    }
    b.report_connect_failure(Instant::now());
    tokio::time::sleep(Duration::from_secs(9)).await;
    b.report_connect_failure(Instant::now());
    tokio::time::sleep(MS).await;
    assert!(!b.is_up(), "two failures 9 s apart are within the window");
    monitor.abort();
}

/// `max_fails = 0` turns passive health off.
#[tokio::test(start_paused = true)]
async fn passive_disabled_ignores_failures() {
    let (b, inbox) = backend("127.0.0.1:9".parse().expect("addr"));
    let monitor = spawn_monitor(&b, inbox, passive_only(), no_passive(), 0, 1);
    for _ in 0..50 {
        b.report_connect_failure(Instant::now());
    }
    // Paused clock: a second in which nothing may happen.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(b.is_up());
    monitor.abort();
}
