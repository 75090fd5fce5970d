//! Serving the admin API's connections with hyper: HTTP/1.1 with keep-alive, a bounded
//! request head, a timeout on reading each request head (which also ends idle keep-alive
//! connections), a cap on concurrent connections, and TLS when configured.
//!
//! Why these bounds: the admin endpoint shares the process with the balancer, so a client
//! that opens many connections and sends nothing (or trickles bytes) must cost a bounded
//! number of descriptors and tasks for a bounded time. Over the cap a connection is answered
//! `503` and closed at once, without a task. Body size and body read time are bounded in
//! [`super::guard`], the same for the control socket.
//!
//! Lifecycle: [`serve_tcp`] (and the control socket's loop) accept until their token is
//! cancelled; each connection runs as its own task with [`serve_connection`], which finishes
//! the request in flight and closes when the token is cancelled.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use havip_config::AdminTls;

/// Admin connections open at once on the TCP endpoint; more are refused.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request head (request line and headers); larger heads get `431`. hyper's
/// smallest read buffer is 8 KiB.
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest request body; larger bodies get `413`.
pub const MAX_BODY: usize = 64 * 1024;
/// Time to send a request head once the connection is ready for one (so also how long an
/// idle keep-alive connection stays), and to send its body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to a connection over the cap (plain HTTP only).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 27\r\nconnection: close\r\n\r\ntoo many admin connections\n";

/// Why TLS for the admin endpoint cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no usable PEM item.
    #[error("{path}: {why}")]
    File {
        /// The certificate or key file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, say).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS acceptor for `[admin] tls_cert` / `tls_key`.
pub fn tls_acceptor(files: &AdminTls) -> Result<TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let file_error = |path: &Path, why: String| TlsError::File {
        path: path.display().to_string(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(&files.cert, "no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error(&files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accept admin connections on `listener` until `stop` is cancelled, at most
/// [`MAX_CONNECTIONS`] at once, each over TLS when `tls` is given.
pub async fn serve_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, most likely: back off instead of spinning.
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "admin connection refused: {MAX_CONNECTIONS} already open");
            if tls.is_none() {
                // Best effort, never waits: the client learns why rather than seeing a reset.
                let _ = stream.try_write(BUSY);
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, stop, tls) = (app.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(stream, app, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(REQUEST_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(stream)) => serve_connection(stream, app, stop).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "admin TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serve one connection (TCP, TLS or Unix) until the client closes it, a timeout ends it,
/// or `stop` is cancelled (the request in flight is answered first).
pub async fn serve_connection<S>(stream: S, app: Router, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "admin connection ended");
            }
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
        }
    }
}
