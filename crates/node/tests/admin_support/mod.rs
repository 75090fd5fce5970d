//! What the admin tests share: a node started in-process from config text (the real reader,
//! the real proxy, the real admin endpoint and control socket) in front of echo backends on
//! loopback, and a raw HTTP/1.1 exchange to see exactly what the endpoint answers.

#![allow(dead_code)] // each test file uses part of it

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use havip_node::control::client::{self, Answer, Method, Target};
use havip_node::run::Running;
use havip_test_support::node_config::{Health, NodeConfig, Service};
use havip_test_support::scratch::Scratch;
use havip_test_support::servers::{Reply, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any one step may take.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running node with service `web` over backends `b0`, `b1`, `b2` (each greets with its
/// name, then echoes).
pub struct Node {
    /// The node; `None` once stopped.
    pub running: Option<Running>,
    /// The admin endpoint.
    pub admin: SocketAddr,
    /// The service's listener.
    pub service: SocketAddr,
    /// The control socket.
    pub socket: PathBuf,
    /// The backends, `b0`..
    pub backends: Vec<Server>,
    /// Holds the config and the socket.
    pub scratch: Scratch,
}

impl Node {
    /// Start a node; `admin` adds keys to `[admin]` (listen is chosen here).
    pub async fn start(
        tag: &str,
        admin: &[(&str, havip_test_support::node_config::Value)],
    ) -> Node {
        Node::start_with(tag, admin, |config| config).await
    }

    /// [`Node::start`] with more changes to the config.
    pub async fn start_with(
        tag: &str,
        admin: &[(&str, havip_test_support::node_config::Value)],
        more: impl FnOnce(NodeConfig) -> NodeConfig,
    ) -> Node {
        let scratch = Scratch::new(tag);
        let backends: Vec<Server> = (0..3)
            .map(|i| {
                Server::start(
                    "127.0.0.1:0".parse().expect("address"),
                    Reply::GreetThenEcho(format!("b{i}")),
                )
            })
            .collect();
        let admin_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let service_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let socket = scratch.path("havip.sock");
        // TCP checks: the echo backends speak no HTTPS (a config file's default check is
        // the apiserver's https /readyz).
        let mut service = Service::new("web", service_addr).health(Health::tcp().interval("1s"));
        for (i, backend) in backends.iter().enumerate() {
            service = service.named_backend(&format!("b{i}"), backend.addr);
        }
        let mut config = NodeConfig::new()
            .grace("1s")
            .log_connections(false)
            .admin(admin_addr)
            .control_socket(socket.display())
            .service(service);
        for (key, value) in admin {
            config = config.admin_key(key, value.clone());
        }
        let text = more(config).to_toml();
        let path = scratch.write("havip.toml", &text);
        let loaded = havip_node::load::load_text(&path, &text)
            .unwrap_or_else(|problems| panic!("config problems: {problems:?}\n{text}"));
        let running = Running::start(&loaded.config).await.expect("node starts");
        Node {
            running: Some(running),
            admin: admin_addr,
            service: service_addr,
            socket,
            backends,
            scratch,
        }
    }

    /// The running node.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// One API request over the control socket.
    pub async fn local(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        client::request(
            &Target::Socket(self.socket.clone()),
            method,
            path,
            body,
            None,
        )
        .await
        .expect("the control socket answers")
    }

    /// One API request to the admin endpoint.
    pub async fn remote(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> Answer {
        let target = Target::Admin {
            authority: self.admin.to_string(),
            tls: None,
        };
        client::request(&target, method, path, body, auth)
            .await
            .expect("the admin endpoint answers")
    }

    /// Stop the node (drains, removes the socket).
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// A connection through the service, and the backend that greeted it.
pub async fn connect(service: SocketAddr) -> (TcpStream, String) {
    let mut stream = tokio::time::timeout(LIMIT, TcpStream::connect(service))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut name = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        tokio::time::timeout(LIMIT, stream.read_exact(&mut byte))
            .await
            .expect("greeting in time")
            .expect("greeting");
        if byte[0] == b'\n' {
            break;
        }
        name.push(byte[0]);
    }
    (stream, String::from_utf8(name).expect("name"))
}

/// Bytes through `stream` and back.
pub async fn echo(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.expect("write");
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(back, payload);
}

/// A raw response: status, header lines (lower-cased names), body.
#[derive(Debug)]
pub struct Raw {
    /// The status code.
    pub status: u16,
    /// `(name, value)`, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Everything after the head.
    pub body: Vec<u8>,
}

impl Raw {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send `request` as is on a new connection and read until the server closes it.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // A server that answers early (413) may close before all of it is written.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut response))
        .await
        .expect("the server closes in time");
    parse(&response)
}

/// Parse one response (head and whatever follows).
pub fn parse(response: &[u8]) -> Raw {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(response)));
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line")[9..12]
        .parse()
        .expect("status code");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: response[end + 4..].to_vec(),
    }
}

/// Whether `path` is a socket file with permission bits `mode`.
pub fn socket_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("socket file")
        .permissions()
        .mode()
        & 0o777
}
