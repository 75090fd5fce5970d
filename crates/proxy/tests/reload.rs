//! Live reload of the proxy on loopback (issue #11 item 2): `Proxy::prepare` + `Proxy::apply`
//! while clients connect and long-lived connections move bytes. Each test runs real echo
//! servers and the real proxy in-process.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod loopback_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use havip_config::copy_mode::CopyMode;
use havip_config::service::{Algorithm, BackendSpec, CheckKind, HealthSpec, ServiceSpec};
use havip_proxy::backend::Health;
use havip_proxy::service::DataPath;
use havip_proxy::{Proxy, ProxyConfig, StartError};
use loopback_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A free loopback port (bound and released; the tests bind it again at once).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn config(services: Vec<ServiceSpec>) -> ProxyConfig {
    ProxyConfig {
        services,
        max_conns: None,
        data_path: DataPath {
            copy_mode: CopyMode::default(),
            log_connections: false,
        },
    }
}

fn named(name: &str, addr: SocketAddr) -> BackendSpec {
    let mut spec = BackendSpec::new(addr);
    spec.name = name.to_string();
    spec
}

/// A service called "api" on `listen` over `backends`, without active checks.
fn api(listen: SocketAddr, backends: Vec<BackendSpec>) -> ServiceSpec {
    let mut spec = ServiceSpec::new("api", vec![listen], &[]);
    spec.backends = backends;
    spec.health = HealthSpec {
        check: None,
        ..HealthSpec::default()
    };
    spec
}

async fn reload(proxy: &mut Proxy, services: Vec<ServiceSpec>, grace: Duration) {
    let prepared = proxy.prepare(config(services)).expect("prepares");
    proxy.apply(prepared, grace);
}

/// Connects in a loop until stopped; counts successes (a greeting read) and failures.
struct ConnectLoop {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectLoop {
    fn start(target: SocketAddr) -> ConnectLoop {
        let (ok, failed, stop) = (
            Arc::<AtomicU64>::default(),
            Arc::<AtomicU64>::default(),
            Arc::<AtomicBool>::default(),
        );
        let (o, f, s) = (ok.clone(), failed.clone(), stop.clone());
        let task = tokio::spawn(async move {
            // Bounded: at most 20,000 connects or until stopped.
            for _ in 0..20_000 {
                if s.load(Relaxed) {
                    return;
                }
                match which_backend(target).await {
                    Ok(_) => o.fetch_add(1, Relaxed),
                    Err(_) => f.fetch_add(1, Relaxed),
                };
            }
        });
        ConnectLoop {
            ok,
            failed,
            stop,
            task,
        }
    }

    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Relaxed);
        self.task.await.unwrap();
        (self.ok.load(Relaxed), self.failed.load(Relaxed))
    }
}

/// A long-lived connection that echoes one chunk per call.
struct Chatty {
    stream: TcpStream,
    backend: String,
}

impl Chatty {
    async fn open(target: SocketAddr) -> Chatty {
        let (stream, backend) = which_backend(target).await.expect("connects");
        Chatty { stream, backend }
    }

    async fn round_trip(&mut self, n: u8) -> std::io::Result<()> {
        let chunk = vec![n; 4096];
        self.stream.write_all(&chunk).await?;
        let mut back = vec![0u8; chunk.len()];
        tokio::time::timeout(LIMIT, self.stream.read_exact(&mut back))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        assert_eq!(back, chunk, "echoed unchanged");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_keep_the_listening_socket_drop_no_connect_and_cut_no_connection() {
    let (b1, b2) = (echo_server("b1"), echo_server("b2"));
    let listen = free_port();
    let backends = vec![named("b1", b1.addr), named("b2", b2.addr)];
    let mut proxy = Proxy::start(config(vec![api(listen, backends.clone())]))
        .await
        .unwrap();
    let socket = proxy.sockets()[0].1.clone();
    let mut chatty = Chatty::open(listen).await;
    let connects = ConnectLoop::start(listen);
    for round in 0..30u8 {
        // Each reload changes something the running service uses.
        let mut spec = api(listen, backends.clone());
        spec.balance = if round % 2 == 0 {
            Algorithm::LeastConn
        } else {
            Algorithm::RoundRobin
        };
        spec.backends[usize::from(round % 2)].weight = 50 + u32::from(round);
        spec.timeouts.connect = Duration::from_millis(1000 + u64::from(round));
        spec.retries = u32::from(round % 4);
        reload(&mut proxy, vec![spec], Duration::from_secs(5)).await;
        chatty
            .round_trip(round)
            .await
            .expect("the open connection keeps moving bytes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, failed) = connects.finish().await;
    assert_eq!(
        failed, 0,
        "no connect failed across 30 reloads ({ok} succeeded)"
    );
    assert!(ok > 50, "the loop ran: {ok} connects");
    assert!(
        Arc::ptr_eq(&socket, &proxy.sockets()[0].1),
        "the listening socket is the same one"
    );
    let service = proxy.services()[0].clone();
    // The last round (29, odd) set round robin.
    assert_eq!(service.spec.balance, Algorithm::RoundRobin);
    assert!(
        service.stats.total.load(Relaxed) > ok,
        "the counters carried over: {} > {ok}",
        service.stats.total.load(Relaxed)
    );
    chatty.round_trip(99).await.unwrap();
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_backend_drains_new_connections_follow_the_new_config() {
    let (b1, b2) = (echo_server("b1"), echo_server("b2"));
    let listen = free_port();
    let mut proxy = Proxy::start(config(vec![api(listen, vec![named("b1", b1.addr)])]))
        .await
        .unwrap();
    let mut on_b1 = Chatty::open(listen).await;
    assert_eq!(on_b1.backend, "b1");
    // b1 goes, b2 comes: b1's connection keeps going for the grace period.
    reload(
        &mut proxy,
        vec![api(listen, vec![named("b2", b2.addr)])],
        Duration::from_millis(800),
    )
    .await;
    for _ in 0..10 {
        let (_, backend) = which_backend(listen).await.unwrap();
        assert_eq!(backend, "b2", "new connections follow the new config");
    }
    on_b1
        .round_trip(1)
        .await
        .expect("the drained backend's connection still works");
    // After the grace period it is closed.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        on_b1.round_trip(2).await.is_err(),
        "cut once the grace period is over"
    );
    proxy.shutdown(Duration::from_secs(1)).await;
}

fn tcp_checks(spec: &mut ServiceSpec) {
    spec.health = HealthSpec {
        check: Some(CheckKind::Tcp),
        interval: Duration::from_millis(100),
        fast_interval: Duration::from_millis(100),
        down_interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        rise: 3,
        fall: 2,
        port: None,
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_backend_waits_for_rise_checks_and_health_survives_a_reload() {
    let (b1, mut b2, b3) = (echo_server("b1"), echo_server("b2"), echo_server("b3"));
    let listen = free_port();
    let mut spec = api(listen, vec![named("b1", b1.addr), named("b2", b2.addr)]);
    tcp_checks(&mut spec);
    let mut proxy = Proxy::start(config(vec![spec.clone()])).await.unwrap();
    // b2 goes down by checks.
    b2.stop();
    let table = proxy.table();
    eventually("b2 marked down", || {
        table.find("api").unwrap().backends[1].health() == Health::Down
    })
    .await;
    let down_transitions = table.find("api").unwrap().backends[1]
        .stats
        .went_down
        .load(Relaxed);
    // A reload that changes b2's weight and adds b3.
    spec.backends[1].weight = 200;
    spec.backends.push(named("b3", b3.addr));
    reload(&mut proxy, vec![spec.clone()], Duration::from_secs(5)).await;
    let service = table.find("api").unwrap();
    assert_eq!(
        service.backends[1].health(),
        Health::Down,
        "a down backend stays down"
    );
    assert_eq!(service.backends[1].weight(), 200, "its new weight applies");
    assert_eq!(
        service.backends[0].health(),
        Health::Up,
        "an up one stays up"
    );
    assert_eq!(
        service.backends[2].health(),
        Health::Down,
        "an added backend waits for its checks"
    );
    // No connection goes to b3 before three checks passed (~300 ms).
    for _ in 0..5 {
        let (_, backend) = which_backend(listen).await.unwrap();
        assert_eq!(backend, "b1");
    }
    eventually("b3 up after rise checks", || {
        table.find("api").unwrap().backends[2].health() == Health::Up
    })
    .await;
    let mut seen_b3 = false;
    for _ in 0..10 {
        seen_b3 |= which_backend(listen).await.unwrap().1 == "b3";
    }
    assert!(seen_b3, "b3 serves once up");
    // Nothing re-counted: b2 went down once, and stays counted once.
    assert_eq!(
        service.backends[1].stats.went_down.load(Relaxed),
        down_transitions
    );
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_checks_an_added_backend_serves_at_once() {
    let (b1, b2) = (echo_server("b1"), echo_server("b2"));
    let listen = free_port();
    let mut proxy = Proxy::start(config(vec![api(listen, vec![named("b1", b1.addr)])]))
        .await
        .unwrap();
    reload(
        &mut proxy,
        vec![api(
            listen,
            vec![named("b1", b1.addr), named("b2", b2.addr)],
        )],
        Duration::from_secs(1),
    )
    .await;
    let mut backends = std::collections::BTreeSet::new();
    for _ in 0..4 {
        backends.insert(which_backend(listen).await.unwrap().1);
    }
    assert_eq!(
        backends.len(),
        2,
        "round robin over both at once: {backends:?}"
    );
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_cannot_be_bound_changes_nothing() {
    let (b1, b2) = (echo_server("b1"), echo_server("b2"));
    let listen = free_port();
    let proxy = Proxy::start(config(vec![api(listen, vec![named("b1", b1.addr)])]))
        .await
        .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    // A new service on a busy address, and a backend added to the running one.
    let mut other = api(busy, vec![named("b2", b2.addr)]);
    other.name = "other".into();
    let changed = api(listen, vec![named("b1", b1.addr), named("b2", b2.addr)]);
    let error = proxy.prepare(config(vec![changed, other])).unwrap_err();
    assert!(
        matches!(error, StartError::Bind { addr, .. } if addr == busy),
        "{error}"
    );
    // Nothing changed: one service, one backend, still serving.
    assert_eq!(proxy.services().len(), 1);
    assert_eq!(proxy.services()[0].backends.len(), 1);
    assert_eq!(which_backend(listen).await.unwrap().1, "b1");
    proxy.shutdown(Duration::from_secs(1)).await;
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_address_is_bound_before_the_old_one_closes_and_a_removed_service_drains() {
    let b1 = echo_server("b1");
    let (first, second) = (free_port(), free_port());
    let mut proxy = Proxy::start(config(vec![api(first, vec![named("b1", b1.addr)])]))
        .await
        .unwrap();
    let mut open = Chatty::open(first).await;
    let mut moved = api(second, vec![named("b1", b1.addr)]);
    moved.name = "api2".into();
    let prepared = proxy.prepare(config(vec![moved])).unwrap();
    // Prepared, not applied: the new address is already bound, the old one still serves.
    assert!(TcpStream::connect(second).await.is_ok(), "bound by prepare");
    assert_eq!(which_backend(first).await.unwrap().1, "b1");
    proxy.apply(prepared, Duration::from_secs(5));
    assert_eq!(which_backend(second).await.unwrap().1, "b1");
    assert!(
        TcpStream::connect(first).await.is_err(),
        "the old address is closed"
    );
    open.round_trip(7)
        .await
        .expect("the removed service's connection continues");
    proxy.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_upgrade_a_backend_the_predecessor_knew_as_down_starts_down() {
    let (b1, b2) = (echo_server("b1"), echo_server("b2"));
    let listen = free_port();
    let mut spec = api(listen, vec![named("b1", b1.addr), named("b2", b2.addr)]);
    tcp_checks(&mut spec);
    // The predecessor had b2 down; its listening socket comes along.
    let socket = tokio::net::TcpListener::bind(listen).await.unwrap();
    let inherited = havip_proxy::Inherited {
        sockets: [(listen, socket)].into(),
        down: [("api".to_string(), "b2".to_string(), b2.addr)].into(),
    };
    let proxy = Proxy::start_with(config(vec![spec]), inherited)
        .await
        .unwrap();
    let table = proxy.table();
    let service = table.find("api").unwrap();
    assert_eq!(service.backends[0].health(), Health::Up, "b1 starts up");
    assert_eq!(service.backends[1].health(), Health::Down, "b2 starts down");
    for _ in 0..5 {
        let (_, backend) = which_backend(listen).await.unwrap();
        assert_eq!(backend, "b1", "nothing goes to a backend known down");
    }
    // It comes back as any down backend does: after `rise` passing checks.
    eventually("b2 up after rise checks", || {
        table.find("api").unwrap().backends[1].health() == Health::Up
    })
    .await;
    proxy.shutdown(Duration::from_secs(1)).await;
}
