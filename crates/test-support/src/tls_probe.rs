//! A blocking HTTPS client for probing through a VIP: one TLS connection per request, any
//! certificate accepted (the lab's backends use a self-signed one; the handshake signatures
//! are still verified), `Connection: close`, every step bounded by a timeout so a probe caught
//! by a failover fails quickly instead of hanging.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// An HTTP response, reduced to what the tests look at.
#[derive(Debug, Clone)]
pub struct Reply {
    /// When the TCP connect completed (the server answered).
    pub connected: Instant,
    /// The status code.
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The client; see the module documentation.
#[derive(Debug, Clone)]
pub struct TlsProbe {
    config: Arc<ClientConfig>,
    /// TCP connect.
    pub connect_timeout: Duration,
    /// Each read and write after the connect (handshake, request, response).
    pub io_timeout: Duration,
}

impl TlsProbe {
    /// A client with these timeouts.
    pub fn new(connect_timeout: Duration, io_timeout: Duration) -> TlsProbe {
        // The health checker's client with verification off: any certificate and name,
        // handshake signatures still verified.
        let mut config = ClientConfig::clone(
            &havip_proxy::health::tls::unverified_client_config().expect("TLS client config"),
        );
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsProbe {
            config: Arc::new(config),
            connect_timeout,
            io_timeout,
        }
    }

    /// `GET path` over a new TLS connection to `target`; Err says which step failed.
    pub fn get(&self, target: SocketAddr, path: &str) -> Result<Reply, String> {
        let mut tcp = TcpStream::connect_timeout(&target, self.connect_timeout)
            .map_err(|e| format!("connect: {e}"))?;
        let connected = Instant::now();
        tcp.set_read_timeout(Some(self.io_timeout))
            .and_then(|()| tcp.set_write_timeout(Some(self.io_timeout)))
            .and_then(|()| tcp.set_nodelay(true))
            .map_err(|e| format!("socket options: {e}"))?;
        let name = ServerName::from(target.ip());
        let mut conn =
            ClientConnection::new(self.config.clone(), name).map_err(|e| format!("tls: {e}"))?;
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let request = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes())
            .map_err(|e| format!("handshake or request: {e}"))?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A peer that closes without close_notify after a complete response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(format!("response: {e}")),
        }
        parse(&raw, connected)
    }
}

fn parse(raw: &[u8], connected: Instant) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("incomplete response: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        connected,
        status,
        headers,
        body: body.to_string(),
    })
}
