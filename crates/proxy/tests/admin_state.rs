//! Administrative state and runtime weight on the real balancer, on loopback: `drain` takes
//! no new connections while open ones keep moving bytes, `maint` also stops the health
//! checks (and they resume when it ends), a runtime weight changes the distribution, and the
//! runtime state carries over to a service started again from the same config.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod loopback_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use havip_config::service::{CheckKind, ServiceSpec};
use havip_proxy::backend::{carry_runtime_state, AdminState};
use loopback_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn servers(n: usize) -> Vec<Server> {
    (0..n).map(|i| echo_server(&format!("b{i}"))).collect()
}

fn named_spec(servers: &[Server]) -> ServiceSpec {
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let mut spec = spec(&addrs);
    for (backend, server) in spec.backends.iter_mut().zip(servers) {
        backend.name = server.name.clone();
    }
    spec
}

async fn count(proxy: SocketAddr, connections: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..connections {
        let (_stream, name) = which_backend(proxy).await.unwrap();
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

async fn echo(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_takes_no_new_connections_and_keeps_the_open_ones_moving() {
    let servers = servers(3);
    let proxy = TestProxy::start(named_spec(&servers), MODES[0]).await;
    let backends = &proxy.proxy().services()[0].backends;
    let (mut held, name) = which_backend(proxy.addr).await.unwrap();
    assert_eq!(name, "b0");
    backends[0].set_admin_state(AdminState::Drain, Instant::now());
    let counts = count(proxy.addr, 30).await;
    assert_eq!(counts.get("b0"), None, "a drained backend got new clients");
    assert_eq!(counts.get("b1"), Some(&15));
    assert_eq!(counts.get("b2"), Some(&15));
    // The held connection still moves bytes both ways, many times over.
    for round in 0..20u8 {
        echo(&mut held, &[round; 4096]).await;
    }
    assert_eq!(backends[0].stats.active.load(Relaxed), 1);
    drop(held);
    eventually("the drained backend's last connection closed", || {
        backends[0].stats.active.load(Relaxed) == 0
    })
    .await;
    backends[0].set_admin_state(AdminState::Ready, Instant::now());
    let counts = count(proxy.addr, 30).await;
    assert_eq!(counts.get("b0"), Some(&10), "ready again: back in rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maint_stops_the_checks_and_ready_resumes_them_at_once() {
    let servers = servers(2);
    let mut spec = named_spec(&servers);
    spec.health.check = Some(CheckKind::Tcp);
    // Long enough that "at once" and "at the next interval" cannot be confused under load.
    let interval = Duration::from_millis(600);
    spec.health.interval = interval;
    spec.health.fast_interval = interval;
    spec.health.down_interval = interval;
    let proxy = TestProxy::start(spec, MODES[0]).await;
    let backends = &proxy.proxy().services()[0].backends;
    let checks = |i: usize| backends[i].stats.checks_passed.load(Relaxed);
    eventually("checks running", || checks(0) >= 2 && checks(1) >= 2).await;

    backends[1].set_admin_state(AdminState::Maint, Instant::now());
    // A check in flight may still finish; after that, none.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let frozen = checks(1);
    let other = checks(0);
    tokio::time::sleep(interval * 3).await;
    assert_eq!(checks(1), frozen, "a backend in maint was checked");
    assert!(
        checks(0) >= other + 2,
        "the other backend's checks stopped too"
    );
    assert!(
        backends[1].is_up(),
        "maint is not down: the last health stays"
    );
    let counts = count(proxy.addr, 10).await;
    assert_eq!(counts.get("b0"), Some(&10));

    let back = Instant::now();
    backends[1].set_admin_state(AdminState::Ready, Instant::now());
    eventually("a check right after maint", || checks(1) > frozen).await;
    assert!(
        back.elapsed() < interval * 3 / 4,
        "the first check after maint waited {:?}",
        back.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_weight_changes_the_distribution() {
    let servers = servers(2);
    let proxy = TestProxy::start(named_spec(&servers), MODES[0]).await;
    let backends = &proxy.proxy().services()[0].backends;
    assert_eq!(count(proxy.addr, 20).await.get("b0"), Some(&10));
    assert_eq!(backends[0].set_weight(300), 100);
    let counts = count(proxy.addr, 40).await;
    assert_eq!((counts["b0"], counts["b1"]), (30, 10));
    backends[0].set_weight(0);
    assert_eq!(count(proxy.addr, 10).await.get("b1"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_state_survives_starting_the_same_config_again() {
    let servers = servers(3);
    let spec = named_spec(&servers);
    let first = TestProxy::start(spec.clone(), MODES[0]).await;
    let old = first.proxy().services()[0].backends.clone();
    old[0].set_admin_state(AdminState::Maint, Instant::now());
    old[2].set_weight(300);
    drop(first);
    let again = TestProxy::start(spec, MODES[0]).await;
    let new = &again.proxy().services()[0].backends;
    carry_runtime_state(&old, new, Instant::now());
    assert_eq!(new[0].admin_state(), AdminState::Maint);
    assert_eq!(new[1].admin_state(), AdminState::Ready);
    assert_eq!((new[1].weight(), new[2].weight()), (100, 300));
    let counts = count(again.addr, 40).await;
    assert_eq!(counts.get("b0"), None);
    assert_eq!((counts["b1"], counts["b2"]), (10, 30));
}
