//! The client side of the admin API, for `havip status`, `havip backend` and tests: one
//! HTTP/1.1 request over the control socket, or over TCP (optionally TLS) to an admin
//! endpoint, with a JSON body and basic credentials when given.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

pub use axum::http::Method;

/// Where the API is.
#[derive(Debug, Clone)]
pub enum Target {
    /// The control socket at this path.
    Socket(PathBuf),
    /// An admin endpoint: `host:port`, over TLS when `tls` is set.
    Admin {
        /// `host:port` (a name or an address).
        authority: String,
        /// Verify the endpoint's certificate against this PEM bundle (`None`: plain HTTP).
        tls: Option<ClientTls>,
    },
}

/// TLS to an admin endpoint.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM CA certificates to trust; `None`: the system bundle.
    pub ca_file: Option<PathBuf>,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting failed (no daemon, no permission on the socket, refused...).
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// The socket path or endpoint.
        target: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// TLS could not be set up or the handshake failed.
    #[error("TLS to {target}: {why}")]
    Tls {
        /// The endpoint.
        target: String,
        /// What went wrong.
        why: String,
    },
    /// The HTTP exchange failed.
    #[error("{target}: {source}")]
    Http {
        /// The socket path or endpoint.
        target: String,
        /// hyper's error.
        source: hyper::Error,
    },
    /// The request could not be built (a bad path).
    #[error("bad request: {0}")]
    Request(String),
}

/// An answer: the HTTP status and the body, parsed as JSON when it is JSON.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body as JSON, or `Value::String` of the text when it is not JSON.
    pub body: Value,
}

impl Answer {
    /// The `error` field of a refusal, or the body as text.
    pub fn error_text(&self) -> String {
        match &self.body["error"] {
            Value::String(text) => text.clone(),
            _ => match &self.body {
                Value::String(text) => text.trim().to_string(),
                other => other.to_string(),
            },
        }
    }
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Socket(path) => path.display().to_string(),
            Target::Admin { authority, tls } => {
                format!(
                    "{}://{authority}",
                    if tls.is_some() { "https" } else { "http" }
                )
            }
        }
    }
}

/// Send one request: `method path` with `body` as JSON, `auth` as `user:password`.
pub async fn request(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<&Value>,
    auth: Option<&str>,
) -> Result<Answer, ClientError> {
    let name = target.describe();
    let connect_error = |source| ClientError::Connect {
        target: name.clone(),
        source,
    };
    match target {
        Target::Socket(socket) => {
            let stream = UnixStream::connect(socket).await.map_err(connect_error)?;
            exchange(stream, &name, "localhost", method, path, body, auth).await
        }
        Target::Admin { authority, tls } => {
            let stream = TcpStream::connect(authority.as_str())
                .await
                .map_err(connect_error)?;
            let _ = stream.set_nodelay(true);
            match tls {
                None => exchange(stream, &name, authority, method, path, body, auth).await,
                Some(tls) => {
                    let stream = tls_connect(stream, authority, tls).await.map_err(|why| {
                        ClientError::Tls {
                            target: name.clone(),
                            why,
                        }
                    })?;
                    exchange(stream, &name, authority, method, path, body, auth).await
                }
            }
        }
    }
}

async fn tls_connect(
    stream: TcpStream,
    authority: &str,
    tls: &ClientTls,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    let bundle = tls
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?
    {
        let cert = cert.map_err(|e| format!("{}: {e}", bundle.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", bundle.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, stream)
        .await
        .map_err(|e| e.to_string())
}

async fn exchange<S>(
    stream: S,
    name: &str,
    host: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    auth: Option<&str>,
) -> Result<Answer, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |source| ClientError::Http {
        target: name.to_string(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    let driver = tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host);
    if let Some(pair) = auth {
        builder = builder.header(
            header::AUTHORIZATION,
            format!("Basic {}", crate::admin::auth::base64(pair.as_bytes())),
        );
    }
    let payload = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(json.to_string())
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(Full::new(payload))
        .map_err(|e| ClientError::Request(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(http_error)?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(http_error)?
        .to_bytes();
    driver.abort();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok(Answer { status, body })
}

/// `/api/backends/{service}/{backend}` with both names percent-encoded (a backend named after
/// its address may hold `:`, `[` and `]`).
pub fn backend_path(service: &str, backend: &str) -> String {
    format!("/api/backends/{}/{}", encode(service), encode(backend))
}

fn encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_paths_encode_addresses() {
        assert_eq!(
            backend_path("kube-apiserver", "[::1]:6443"),
            "/api/backends/kube-apiserver/%5B%3A%3A1%5D%3A6443"
        );
        assert_eq!(backend_path("api", "master2"), "/api/backends/api/master2");
    }
}
