//! What the monitor logs on a transition, captured from a real run against a loopback TCP
//! server that is first absent and then appears.
//!
//! Its own test binary on purpose: tracing caches per call site whether anyone listens, and
//! a thread-local subscriber (as here) can miss events when tests on other threads hit the
//! same call sites at the same moment. Alone in its binary, nothing else touches them.

mod support;

use std::time::Duration;

use havip_config::service::{CheckKind, HealthSpec};
use havip_test_support::servers::{Reply, Server};
use support::{backend, no_passive, spawn_monitor, wait_until, MS};
use tokio::net::TcpListener;

fn tcp_spec() -> HealthSpec {
    HealthSpec {
        check: Some(CheckKind::Tcp),
        interval: 100 * MS,
        fast_interval: 50 * MS,
        down_interval: 100 * MS,
        timeout: Duration::from_millis(200),
        rise: 2,
        fall: 3,
        port: None,
    }
}

/// Log output captured from the current thread (the test runtime is single-threaded, so the
/// monitor task logs on it too).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Every transition is logged once, down as WARN and up as INFO, with service, backend,
/// from, to and the reason.
#[tokio::test]
async fn transitions_are_logged_with_their_reason() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let (b, inbox) = backend(addr);
    let monitor = spawn_monitor(&b, inbox, tcp_spec(), no_passive(), 0, 1);
    wait_until(2000 * MS, || !b.is_up())
        .await
        .expect("down within 2 s");
    let server = Server::start(addr, Reply::Close);
    wait_until(2000 * MS, || b.is_up())
        .await
        .expect("up within 2 s");
    monitor.abort();
    drop(server);

    let lines = captured.lines();
    assert_eq!(
        lines,
        vec![
            format!(
                " WARN havip_proxy::health::monitor: backend is down service=\"test\" \
                 backend=\"{addr}\" from=\"up\" to=\"down\" \
                 reason=first check failed: connection refused"
            ),
            format!(
                " INFO havip_proxy::health::monitor: backend is up service=\"test\" \
                 backend=\"{addr}\" from=\"down\" to=\"up\" reason=2 consecutive checks passed"
            ),
        ],
        "{lines:#?}"
    );
}
