//! A proxy in front of real servers on loopback, for the proxy's integration tests (the
//! servers are `havip_test_support`'s). Every server and proxy lives on 127.0.0.1 with an
//! OS-chosen port and is stopped when its handle drops, also when a test panics.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use havip_config::copy_mode::CopyMode;
use havip_config::service::{HealthSpec, ServiceSpec};
use havip_proxy::service::DataPath;
use havip_proxy::{Proxy, ProxyConfig};
pub use havip_test_support::servers::{Reply, Server};
use havip_test_support::wait_for_async;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait in these tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A backend that greets each client with its name and a newline, then echoes until EOF,
/// then closes its side; stopping it closes every connection, like a crashed process.
pub fn echo_server(name: &str) -> Server {
    Server::start(
        "127.0.0.1:0".parse().expect("addr"),
        Reply::GreetThenEcho(name.to_string()),
    )
}

/// [`echo_server`] again on the address of one that was stopped.
pub fn echo_server_at(name: &str, addr: SocketAddr) -> Server {
    Server::start(addr, Reply::GreetThenEcho(name.to_string()))
}

/// A proxy in front of `backends`, on 127.0.0.1 with an OS-chosen port.
pub struct TestProxy {
    pub proxy: Option<Proxy>,
    pub addr: SocketAddr,
}

impl TestProxy {
    pub async fn start(spec: ServiceSpec, copy_mode: CopyMode) -> TestProxy {
        Self::start_with(spec, copy_mode, None).await
    }

    pub async fn start_with(
        spec: ServiceSpec,
        copy_mode: CopyMode,
        max_conns: Option<u32>,
    ) -> TestProxy {
        let config = ProxyConfig {
            services: vec![spec],
            max_conns,
            data_path: DataPath {
                copy_mode,
                log_connections: true,
            },
        };
        let proxy = Proxy::start(config).await.expect("proxy starts");
        let addr = proxy.listening()[0].1;
        TestProxy {
            proxy: Some(proxy),
            addr,
        }
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("running")
    }
}

/// A service spec on an ephemeral loopback port with no active health checks (tests that
/// want them set `health.check`).
pub fn spec(backends: &[SocketAddr]) -> ServiceSpec {
    let mut spec = ServiceSpec::new("test", vec!["127.0.0.1:0".parse().expect("addr")], backends);
    spec.health = HealthSpec {
        check: None,
        ..HealthSpec::default()
    };
    spec
}

pub const MODES: [CopyMode; 2] = [
    CopyMode::Splice { pipe_size: None },
    CopyMode::Buffered {
        buffer_size: 16 * 1024,
    },
];

/// Connect through the proxy and read the greeting: which backend answered.
pub async fn which_backend(proxy: SocketAddr) -> std::io::Result<(TcpStream, String)> {
    let mut stream = tokio::time::timeout(LIMIT, TcpStream::connect(proxy))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = read_line(&mut stream).await?;
    Ok((stream, line))
}

pub async fn read_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut byte))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if byte[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(byte[0]);
    }
}

/// Wait until `cond` holds (looking every 10 ms); panics with `what` after [`LIMIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let held = wait_for_async(Duration::from_millis(10), LIMIT, || cond().then_some(())).await;
    assert!(held.is_some(), "timed out waiting for {what}");
}

/// Send `payload` on `stream`, close the sending side, and return everything read back until
/// the peer closes (the echo backends send it all back, after their greeting if not read yet).
pub async fn send_and_read_back(stream: TcpStream, payload: Vec<u8>) -> Vec<u8> {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&payload).await.expect("write");
        wr.shutdown().await.expect("shutdown");
    });
    let mut back = Vec::new();
    tokio::time::timeout(LIMIT, rd.read_to_end(&mut back))
        .await
        .expect("closed within LIMIT")
        .expect("read");
    writer.await.expect("writer");
    back
}
