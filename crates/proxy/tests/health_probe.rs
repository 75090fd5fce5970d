//! Probes against real loopback sockets: what a TCP and an HTTP check send and how each way
//! of failing is reported. Real HTTP(S) servers are covered with nginx in
//! `health_nginx.rs`; here the server side is a raw socket so the test can see the exact
//! request bytes and misbehave on purpose (stay silent, close early, send garbage).

use std::net::SocketAddr;
use std::time::Duration;

use havip_config::service::{CheckKind, HealthSpec, HttpCheck, TlsCheck};
use havip_proxy::health::probe::{CheckError, ProtocolError, Stage};
use havip_proxy::health::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

const TIMEOUT: Duration = Duration::from_millis(300);

fn probe(check: CheckKind) -> Probe {
    let spec = HealthSpec {
        check: Some(check),
        timeout: TIMEOUT,
        ..HealthSpec::default()
    };
    Probe::new(&spec).expect("valid spec").expect("checks on")
}

fn http(path: &str) -> CheckKind {
    CheckKind::Http(HttpCheck {
        path: path.into(),
        host: None,
        expect_status: vec![(200, 299)],
        tls: None,
    })
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

/// An address on which nothing listens (bound once, then released).
async fn closed_port() -> SocketAddr {
    listener().await.1
}

/// Read one request head (until the blank line) from `conn`.
async fn read_head(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).await.expect("read request");
        assert_eq!(n, 1, "client closed before the request ended: {buf:?}");
        buf.push(byte[0]);
    }
    String::from_utf8(buf).expect("request is UTF-8")
}

/// Serve one connection: read the request, send `response`, close; returns the request.
fn serve_once(l: TcpListener, response: &'static [u8]) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let (mut conn, _) = l.accept().await.expect("accept");
        let head = read_head(&mut conn).await;
        conn.write_all(response).await.expect("write response");
        head
    })
}

#[tokio::test]
async fn tcp_check_passes_on_accept_and_reports_refused() {
    let (l, addr) = listener().await;
    let p = probe(CheckKind::Tcp);
    p.check(addr).await.expect("listener accepts");
    drop(l);
    let e = p
        .check(closed_port().await)
        .await
        .expect_err("nothing listens");
    assert!(matches!(e, CheckError::Refused), "{e:?}");
    assert_eq!(e.to_string(), "connection refused");
}

#[tokio::test]
async fn tcp_check_uses_the_check_port() {
    let (_l, addr) = listener().await;
    let spec = HealthSpec {
        check: Some(CheckKind::Tcp),
        timeout: TIMEOUT,
        port: Some(addr.port()),
        ..HealthSpec::default()
    };
    let p = Probe::new(&spec).expect("valid").expect("on");
    // The traffic port is closed; the check port is the listener's.
    let traffic = SocketAddr::new(addr.ip(), closed_port().await.port());
    p.check(traffic).await.expect("checks the check port");
}

#[tokio::test]
async fn http_check_sends_the_documented_request() {
    let (l, addr) = listener().await;
    let server = serve_once(l, b"HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n");
    probe(http("/readyz?verbose"))
        .check(addr)
        .await
        .expect("204 is in 200-299");
    let head = server.await.expect("server task");
    assert_eq!(
        head,
        format!(
            "GET /readyz?verbose HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: havip-health-check\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        )
    );
}

#[tokio::test]
async fn http_check_sends_the_configured_host() {
    let (l, addr) = listener().await;
    let server = serve_once(l, b"HTTP/1.1 200 OK\r\n\r\n");
    let check = CheckKind::Http(HttpCheck {
        path: "/".into(),
        host: Some("kubernetes.default".into()),
        expect_status: vec![],
        tls: None,
    });
    probe(check).check(addr).await.expect("200");
    let head = server.await.expect("server task");
    assert!(head.contains("\r\nHost: kubernetes.default\r\n"), "{head}");
}

#[tokio::test]
async fn http_headers_split_across_reads_are_reassembled() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut conn, _) = l.accept().await.expect("accept");
        read_head(&mut conn).await;
        for part in [
            &b"HTTP/1.1 5"[..],
            b"03 Service Unavailable\r\nA: b",
            b"\r\n\r\n",
        ] {
            conn.write_all(part).await.expect("write");
            conn.flush().await.expect("flush");
            // Time passing is the point: each part arrives in a read of its own.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let e = probe(http("/readyz")).check(addr).await.expect_err("503");
    assert!(matches!(e, CheckError::Status { code: 503, .. }), "{e:?}");
    assert_eq!(e.to_string(), "HTTP status 503");
    server.await.expect("server task");
}

#[tokio::test]
async fn http_protocol_errors_are_typed() {
    let (l, addr) = listener().await;
    let server = serve_once(l, b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
    let e = probe(http("/")).check(addr).await.expect_err("not HTTP");
    assert!(
        matches!(e, CheckError::Protocol(ProtocolError::Malformed(_))),
        "{e:?}"
    );
    server.await.expect("server task");

    let (l, addr) = listener().await;
    let server = serve_once(l, b"HTTP/1.1 200 OK\r\nContent-Le");
    let e = probe(http("/")).check(addr).await.expect_err("cut short");
    assert!(
        matches!(
            e,
            CheckError::Protocol(ProtocolError::Closed { received: 27 })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "bad HTTP response: connection closed after 27 bytes, before the response headers ended"
    );
    server.await.expect("server task");
}

#[tokio::test]
async fn http_headers_beyond_the_limit_are_refused() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut conn, _) = l.accept().await.expect("accept");
        read_head(&mut conn).await;
        conn.write_all(b"HTTP/1.1 200 OK\r\n").await.expect("write");
        let filler = format!("X: {}\r\n", "a".repeat(1000));
        // Write until the client gives up and closes.
        for _ in 0..64 {
            if conn.write_all(filler.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let e = probe(http("/")).check(addr).await.expect_err("too large");
    assert!(
        matches!(e, CheckError::Protocol(ProtocolError::TooLarge)),
        "{e:?}"
    );
    server.await.expect("server task");
}

/// A server that accepts and then says nothing makes the check time out at the stage it
/// was in, after the configured timeout and not much later.
#[tokio::test]
async fn silent_server_times_out_with_the_stage() {
    let (l, addr) = listener().await;
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = l.accept().await {
            held.push(conn);
        }
    });

    let start = Instant::now();
    let e = probe(http("/readyz"))
        .check(addr)
        .await
        .expect_err("silent");
    let took = start.elapsed();
    assert!(
        matches!(
            e,
            CheckError::Timeout {
                after: TIMEOUT,
                stage: Stage::Response
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "timed out after 300ms while waiting for the response"
    );
    assert!(took >= TIMEOUT && took < TIMEOUT * 3, "took {took:?}");

    let https = CheckKind::Http(HttpCheck {
        path: "/readyz".into(),
        host: None,
        expect_status: vec![],
        tls: Some(TlsCheck {
            verify: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            sni: None,
        }),
    });
    let e = probe(https).check(addr).await.expect_err("silent");
    assert!(
        matches!(
            e,
            CheckError::Timeout {
                stage: Stage::TlsHandshake,
                ..
            }
        ),
        "{e:?}"
    );
    holder.abort();
}

/// The whole check stays bounded even when the caller gives it a very short timeout.
#[tokio::test]
async fn check_never_outlives_its_timeout() {
    let (l, addr) = listener().await;
    let spec = HealthSpec {
        check: Some(http("/")),
        timeout: Duration::from_millis(50),
        ..HealthSpec::default()
    };
    let p = Probe::new(&spec).expect("valid").expect("on");
    let r = timeout(Duration::from_secs(2), p.check(addr))
        .await
        .expect("check returned within 2 s");
    assert!(matches!(r, Err(CheckError::Timeout { .. })), "{r:?}");
    drop(l);
}

/// An IPv6 backend gets a bracketed `Host` (`[::1]:port`), as HTTP requires.
#[tokio::test]
async fn http_check_of_an_ipv6_backend_brackets_the_host() {
    let l = match TcpListener::bind("[::1]:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("SKIPPED: no IPv6 loopback on this machine ({e})");
            return;
        }
    };
    let addr = l.local_addr().expect("local addr");
    let server = serve_once(l, b"HTTP/1.1 200 OK\r\n\r\n");
    probe(http("/readyz")).check(addr).await.expect("200");
    let head = server.await.expect("server task");
    assert!(
        head.contains(&format!("\r\nHost: [::1]:{}\r\n", addr.port())),
        "{head}"
    );
}
