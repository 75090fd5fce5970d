//! Active health checks: one attempt against one backend, bounded by the check timeout.
//!
//! A [`Probe`] is prepared once per service from its [`HealthSpec`] (for HTTPS this builds
//! the rustls configuration, see [`super::tls`]) and shared by the monitors of all its
//! backends; each monitor calls [`Probe::check`] with its backend's address. Kinds:
//! - TCP: the connect succeeds.
//! - HTTP(S): `GET path HTTP/1.1` with `Host`, `User-Agent: havip-health-check` and
//!   `Connection: close`; the response headers are read until they parse and the status is
//!   compared with `expect_status`. Nothing after the headers is read.
//!
//! Failures are typed ([`CheckError`]) and their `Display` is what the transition log shows,
//! with a hint where the usual cause is known (a 401 from an apiserver with anonymous auth
//! off, a CA that does not match).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::tls::{client_config, TlsConfigError};
use havip_config::service::{CheckKind, HealthSpec, HttpCheck, TlsCheck};

/// Response headers beyond this size are refused: a health endpoint has no reason to send
/// more, and the buffer stays bounded.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Header lines parsed at most (the apiserver sends fewer than 10).
const MAX_HEADERS: usize = 64;

/// Statuses that pass when `expect_status` is empty: 2xx and 3xx, as HAProxy's `httpchk`.
const DEFAULT_EXPECT: (u16, u16) = (200, 399);

/// The `User-Agent` of every check request, so backend logs can tell checks from clients.
const USER_AGENT: &str = "havip-health-check";

/// Why a [`Probe`] could not be prepared from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ProbeConfigError {
    /// The TLS files of an HTTPS check cannot be read or used.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    /// The path would not make a valid request line; carries the configured path.
    #[error("health check path {0:?} must start with '/' and contain no whitespace or control characters")]
    Path(String),
    /// The `Host` value would not make a valid header; carries the configured host.
    #[error(
        "health check host {0:?} must be non-empty and contain no whitespace or control characters"
    )]
    Host(String),
    /// An `expect_status` range that is reversed or outside the HTTP status codes.
    #[error("health check expect_status range {lo}-{hi} is not within 100-599 with low <= high")]
    ExpectStatus {
        /// The lowest status of the range.
        lo: u16,
        /// The highest status of the range.
        hi: u16,
    },
    /// The `sni` value is neither a DNS name nor an IP address; carries the configured value.
    #[error("health check sni {0:?} is not a valid DNS name or IP address")]
    Sni(String),
}

/// What the check was doing when it failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The TCP connect to the check address.
    Connect,
    /// The TLS handshake of an HTTPS check.
    TlsHandshake,
    /// Writing the HTTP request.
    Request,
    /// Reading the response headers.
    Response,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "while connecting",
            Stage::TlsHandshake => "in the TLS handshake",
            Stage::Request => "while sending the request",
            Stage::Response => "while waiting for the response",
        })
    }
}

/// Why one check failed. The `Display` text is what the transition log shows.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The backend refused the TCP connect (nothing listens on the check port).
    #[error("connection refused")]
    Refused,
    /// The check timeout ran out.
    #[error("timed out after {after:?} {stage}")]
    Timeout {
        /// The configured check timeout.
        after: Duration,
        /// How far the check got.
        stage: Stage,
    },
    /// Connect failed other than by refusal (unreachable, reset, …).
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// TLS failed: the handshake (certificate, alert) or a record later on.
    #[error("{}: {source}{hint}", tls_prefix(*.stage))]
    Tls {
        /// Where it failed.
        stage: Stage,
        /// What rustls reported.
        source: rustls::Error,
        /// A likely cause, with a leading space, or empty.
        hint: &'static str,
    },
    /// Reading or writing the connection failed after it was established.
    #[error("I/O error {stage}: {source}")]
    Io {
        /// Where it failed.
        stage: Stage,
        /// What the socket reported.
        source: io::Error,
    },
    /// The response status is not in `expect_status`.
    #[error("HTTP status {code}{hint}")]
    Status {
        /// The status code the backend answered with.
        code: u16,
        /// A likely cause, with a leading space, or empty.
        hint: &'static str,
    },
    /// The answer was not an HTTP/1.x response.
    #[error("bad HTTP response: {0}")]
    Protocol(ProtocolError),
}

fn tls_prefix(stage: Stage) -> String {
    match stage {
        Stage::TlsHandshake => "TLS handshake failed".to_owned(),
        other => format!("TLS error {other}"),
    }
}

/// The backend answered, but not with parseable HTTP/1.x response headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The backend closed the connection before the headers were complete.
    #[error("connection closed after {received} bytes, before the response headers ended")]
    Closed {
        /// Bytes of response received before the close.
        received: usize,
    },
    /// The headers do not parse; carries the parser's complaint.
    #[error("{0}")]
    Malformed(httparse::Error),
    /// The headers did not end within [`MAX_RESPONSE_HEAD`] bytes.
    #[error("response headers larger than {MAX_RESPONSE_HEAD} bytes")]
    TooLarge,
}

/// A prepared active check of one service; see the module docs.
#[derive(Debug)]
pub struct Probe {
    timeout: Duration,
    port: Option<u16>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Tcp,
    Http(HttpProbe),
}

#[derive(Debug)]
struct HttpProbe {
    path: String,
    host: Option<String>,
    expect: Vec<(u16, u16)>,
    tls: Option<TlsProbe>,
}

struct TlsProbe {
    connector: TlsConnector,
    /// Name to send and verify; `None` verifies the backend's IP and sends no SNI.
    sni: Option<ServerName<'static>>,
    has_ca_file: bool,
    has_client_cert: bool,
}

impl std::fmt::Debug for TlsProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsProbe")
            .field("sni", &self.sni)
            .field("has_ca_file", &self.has_ca_file)
            .field("has_client_cert", &self.has_client_cert)
            .finish_non_exhaustive()
    }
}

/// A failure inside the HTTP exchange, before it is given its TLS context.
enum ExchangeError {
    Io(Stage, io::Error),
    Protocol(ProtocolError),
}

impl Probe {
    /// Prepare the check described by `spec`; `Ok(None)` when active checks are off. Reads
    /// and validates the TLS files, so it also serves config validation.
    pub fn new(spec: &HealthSpec) -> Result<Option<Probe>, ProbeConfigError> {
        let kind = match &spec.check {
            None => return Ok(None),
            Some(CheckKind::Tcp) => Kind::Tcp,
            Some(CheckKind::Http(http)) => Kind::Http(HttpProbe::new(http)?),
        };
        Ok(Some(Probe {
            timeout: spec.timeout,
            port: spec.port,
            kind,
        }))
    }

    /// The address checked for a backend whose traffic goes to `backend`.
    pub fn target(&self, backend: SocketAddr) -> SocketAddr {
        SocketAddr::new(backend.ip(), self.port.unwrap_or(backend.port()))
    }

    /// Run one check of the backend whose traffic address is `backend` (the check port
    /// replaces its port when configured). The whole attempt is bounded by the timeout.
    pub async fn check(&self, backend: SocketAddr) -> Result<(), CheckError> {
        let target = self.target(backend);
        let mut stage = Stage::Connect;
        // `attempt` records how far it got, so a timeout can say where it was stuck.
        let result = tokio::time::timeout(self.timeout, self.attempt(target, &mut stage)).await;
        match result {
            Ok(result) => result,
            Err(_elapsed) => Err(CheckError::Timeout {
                after: self.timeout,
                stage,
            }),
        }
    }

    async fn attempt(&self, target: SocketAddr, stage: &mut Stage) -> Result<(), CheckError> {
        *stage = Stage::Connect;
        let tcp = TcpStream::connect(target).await.map_err(|error| {
            if error.kind() == io::ErrorKind::ConnectionRefused {
                CheckError::Refused
            } else {
                CheckError::Connect(error)
            }
        })?;
        let http = match &self.kind {
            Kind::Tcp => return Ok(()),
            Kind::Http(http) => http,
        };
        // The request is one small write; do not let Nagle hold it.
        let _ = tcp.set_nodelay(true);
        let code = match &http.tls {
            None => http
                .exchange(tcp, target, stage)
                .await
                .map_err(plain_error)?,
            Some(tls) => {
                *stage = Stage::TlsHandshake;
                let stream = tls
                    .connector
                    .connect(tls.server_name(target.ip()), tcp)
                    .await
                    .map_err(|error| tls.error(Stage::TlsHandshake, error))?;
                http.exchange(stream, target, stage)
                    .await
                    .map_err(|error| match error {
                        ExchangeError::Io(stage, error) => tls.error(stage, error),
                        ExchangeError::Protocol(protocol) => CheckError::Protocol(protocol),
                    })?
            }
        };
        if http.expects(code) {
            Ok(())
        } else {
            Err(CheckError::Status {
                code,
                hint: http.status_hint(code),
            })
        }
    }
}

fn plain_error(error: ExchangeError) -> CheckError {
    match error {
        ExchangeError::Io(stage, source) => CheckError::Io { stage, source },
        ExchangeError::Protocol(protocol) => CheckError::Protocol(protocol),
    }
}

impl HttpProbe {
    fn new(http: &HttpCheck) -> Result<Self, ProbeConfigError> {
        let bad = |c: char| c.is_whitespace() || c.is_control();
        if !http.path.starts_with('/') || http.path.contains(bad) {
            return Err(ProbeConfigError::Path(http.path.clone()));
        }
        if let Some(host) = &http.host {
            if host.is_empty() || host.contains(bad) {
                return Err(ProbeConfigError::Host(host.clone()));
            }
        }
        for &(lo, hi) in &http.expect_status {
            if lo > hi || lo < 100 || hi > 599 {
                return Err(ProbeConfigError::ExpectStatus { lo, hi });
            }
        }
        let tls = match &http.tls {
            None => None,
            Some(tls) => Some(TlsProbe::new(tls)?),
        };
        Ok(HttpProbe {
            path: http.path.clone(),
            host: http.host.clone(),
            expect: if http.expect_status.is_empty() {
                vec![DEFAULT_EXPECT]
            } else {
                http.expect_status.clone()
            },
            tls,
        })
    }

    fn expects(&self, code: u16) -> bool {
        self.expect
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    fn status_hint(&self, code: u16) -> &'static str {
        let client_cert = self.tls.as_ref().is_some_and(|tls| tls.has_client_cert);
        match code {
            401 if client_cert => {
                " (client certificate not accepted: is it signed by the backend's client CA?)"
            }
            401 => " (is anonymous auth disabled? configure a client certificate)",
            403 => " (authenticated but not allowed to GET this path: check RBAC)",
            _ => "",
        }
    }

    /// Send the request and read the response headers; returns the status code.
    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        target: SocketAddr,
        stage: &mut Stage,
    ) -> Result<u16, ExchangeError> {
        *stage = Stage::Request;
        let host = match &self.host {
            Some(host) => host.clone(),
            // SocketAddr's Display brackets IPv6 addresses, as Host requires.
            None => target.to_string(),
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n",
            self.path
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| ExchangeError::Io(Stage::Request, error))?;
        stream
            .flush()
            .await
            .map_err(|error| ExchangeError::Io(Stage::Request, error))?;

        *stage = Stage::Response;
        let mut buf = vec![0u8; MAX_RESPONSE_HEAD];
        let mut len = 0;
        loop {
            if len == buf.len() {
                return Err(ExchangeError::Protocol(ProtocolError::TooLarge));
            }
            let read = stream
                .read(&mut buf[len..])
                .await
                .map_err(|error| ExchangeError::Io(Stage::Response, error))?;
            if read == 0 {
                return Err(ExchangeError::Protocol(ProtocolError::Closed {
                    received: len,
                }));
            }
            len += read;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(_)) => {
                    // A complete parse always has a status code.
                    return response
                        .code
                        .ok_or(ExchangeError::Protocol(ProtocolError::Malformed(
                            httparse::Error::Status,
                        )));
                }
                Ok(httparse::Status::Partial) => continue,
                Err(error) => return Err(ExchangeError::Protocol(ProtocolError::Malformed(error))),
            }
        }
    }
}

impl TlsProbe {
    fn new(tls: &TlsCheck) -> Result<Self, ProbeConfigError> {
        let sni = match &tls.sni {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| ProbeConfigError::Sni(name.clone()))?,
            ),
        };
        let config: Arc<rustls::ClientConfig> = client_config(tls)?;
        Ok(TlsProbe {
            connector: TlsConnector::from(config),
            sni,
            has_ca_file: tls.ca_file.is_some(),
            has_client_cert: tls.client_cert.is_some(),
        })
    }

    /// The configured name, or the backend's IP: rustls sends no SNI for an IP address (SNI
    /// carries host names only) and verifies the certificate's IP SANs against it.
    fn server_name(&self, ip: IpAddr) -> ServerName<'static> {
        match &self.sni {
            Some(name) => name.clone(),
            None => ServerName::IpAddress(ip.into()),
        }
    }

    /// Classify an I/O error on the TLS stream: rustls errors (certificate problems, alerts
    /// from the server) become [`CheckError::Tls`] with a hint.
    fn error(&self, stage: Stage, io_error: io::Error) -> CheckError {
        let rustls_error = io_error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        match rustls_error {
            Some(source) => CheckError::Tls {
                stage,
                hint: self.tls_hint(&source),
                source,
            },
            None => CheckError::Io {
                stage,
                source: io_error,
            },
        }
    }

    fn tls_hint(&self, error: &rustls::Error) -> &'static str {
        match error {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                if self.has_ca_file {
                    " (is ca_file the CA that signed the backend's certificate?)"
                } else {
                    " (set ca_file to the CA that signed the backend's certificate)"
                }
            }
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => " (set sni to a name the backend's certificate holds)",
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                " (the backend requires a client certificate: set client_cert and client_key)"
            }
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown,
            ) if self.has_client_cert => " (the backend rejected the client certificate)",
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_config::service::HealthSpec;

    fn http(path: &str) -> HttpCheck {
        HttpCheck {
            path: path.into(),
            host: None,
            expect_status: vec![],
            tls: None,
        }
    }

    fn spec(check: Option<CheckKind>) -> HealthSpec {
        HealthSpec {
            check,
            port: Some(9000),
            ..HealthSpec::default()
        }
    }

    #[test]
    fn no_check_means_no_probe() {
        assert!(matches!(Probe::new(&spec(None)), Ok(None)));
    }

    #[test]
    fn check_port_replaces_the_traffic_port() {
        let probe = Probe::new(&spec(Some(CheckKind::Tcp)))
            .expect("valid")
            .expect("some");
        let backend: SocketAddr = "[2001:db8::1]:6443".parse().expect("addr");
        assert_eq!(
            probe.target(backend),
            "[2001:db8::1]:9000".parse::<SocketAddr>().expect("addr")
        );
    }

    #[test]
    fn bad_paths_and_hosts_are_rejected() {
        for path in ["readyz", "/ready z", "/readyz\r\nX: y", ""] {
            let error = Probe::new(&spec(Some(CheckKind::Http(http(path))))).err();
            assert!(matches!(error, Some(ProbeConfigError::Path(refused)) if refused == path));
        }
        let mut check = http("/readyz");
        check.host = Some("a b".into());
        let error = Probe::new(&spec(Some(CheckKind::Http(check)))).err();
        assert!(matches!(error, Some(ProbeConfigError::Host(_))));
    }

    #[test]
    fn expect_ranges_are_validated_and_default_to_2xx_3xx() {
        let mut check = http("/readyz");
        check.expect_status = vec![(300, 200)];
        let error = Probe::new(&spec(Some(CheckKind::Http(check.clone())))).err();
        assert!(matches!(
            error,
            Some(ProbeConfigError::ExpectStatus { lo: 300, hi: 200 })
        ));

        check.expect_status = vec![];
        let probe = HttpProbe::new(&check).expect("valid");
        assert!(probe.expects(200) && probe.expects(399));
        assert!(!probe.expects(199) && !probe.expects(400));

        check.expect_status = vec![(200, 200), (401, 403)];
        let probe = HttpProbe::new(&check).expect("valid");
        assert!(probe.expects(200) && probe.expects(401) && probe.expects(403));
        assert!(!probe.expects(201) && !probe.expects(404) && !probe.expects(400));
    }

    #[test]
    fn invalid_sni_is_rejected() {
        let mut check = http("/readyz");
        check.tls = Some(TlsCheck {
            verify: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            sni: Some("not a name".into()),
        });
        let error = Probe::new(&spec(Some(CheckKind::Http(check)))).err();
        assert!(matches!(error, Some(ProbeConfigError::Sni(sni)) if sni == "not a name"));
    }

    #[test]
    fn status_texts() {
        let plain = HttpProbe::new(&http("/readyz")).expect("valid");
        let error = CheckError::Status {
            code: 401,
            hint: plain.status_hint(401),
        };
        assert_eq!(
            error.to_string(),
            "HTTP status 401 (is anonymous auth disabled? configure a client certificate)"
        );
        let error = CheckError::Status {
            code: 500,
            hint: plain.status_hint(500),
        };
        assert_eq!(error.to_string(), "HTTP status 500");
    }
}
