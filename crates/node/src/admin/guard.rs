//! What a request must bring before a handler sees it, as one axum middleware.
//!
//! On both transports: a body of at most [`MAX_BODY`] bytes, sent within
//! [`REQUEST_TIMEOUT`] (read here, so handlers get it whole).
//!
//! From the network ([`Access::Network`]) also:
//! - credentials when `[admin] auth` is set, except for `/healthz` (401 with a `Basic`
//!   challenge otherwise);
//! - for anything but GET and HEAD: `[admin] commands = true` (else 403), a JSON body
//!   (`Content-Type: application/json`, else 415), and no `Origin` of another site (else
//!   403). A cross-site form cannot send `application/json` without a CORS preflight, which
//!   this API never grants, and a browser names the page's origin on every POST: together
//!   they keep a page on another site from driving a logged-in operator's browser into
//!   draining backends.
//!
//! The control socket ([`Access::Local`]) skips those: opening the socket is the permission.
//! The network checks come first, so the body of a request that would be refused is never
//! read.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::api::{error, Api, ApiError};
use super::http::{MAX_BODY, REQUEST_TIMEOUT};
use super::Access;

/// The middleware: checks `request` and reads its body, then calls the handler.
pub async fn guard(State(api): State<Api>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // Credentials and permission first: a stranger's body is never read.
    if api.access == Access::Network {
        if parts.uri.path() != "/healthz" {
            let authorization = parts
                .headers
                .get(header::AUTHORIZATION)
                .map(|value| value.as_bytes());
            if !api.state.auth().permits(authorization).await {
                return unauthorized();
            }
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            if let Err(refusal) = command_allowed(&api, &parts.headers) {
                return refusal.into_response();
            }
        }
    }
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal.into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The whole body, bounded in size and time.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let limited = Limited::new(body, MAX_BODY);
    match tokio::time::timeout(REQUEST_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body took over {REQUEST_TIMEOUT:?}"),
        )),
        Ok(Err(cause)) => {
            if cause
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request bodies are limited to {MAX_BODY} bytes"),
                ))
            } else {
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the request body broke off",
                ))
            }
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// A state-changing request from the network: commands on, JSON, same origin.
fn command_allowed(api: &Api, headers: &HeaderMap) -> Result<(), ApiError> {
    if !api.state.network_commands() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "runtime commands are off on the admin endpoint; set `commands = true` in [admin], or use the control socket",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "commands take a JSON body: send Content-Type: application/json",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !same_origin(origin.to_str().unwrap_or(""), host) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross-site request refused: its Origin is not this endpoint",
            ));
        }
    }
    Ok(())
}

/// Whether `origin` (`http://host:port`, `https://host`) names the `host` the request was
/// sent to. `null` (a sandboxed or file page) is never the same origin.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    authority.eq_ignore_ascii_case(host)
}

fn unauthorized() -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, "authentication required");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"havip\", charset=\"UTF-8\""),
    );
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_the_host_they_were_sent_to() {
        assert!(same_origin("http://127.0.0.1:8404", Some("127.0.0.1:8404")));
        assert!(same_origin(
            "https://LB1.example:8404",
            Some("lb1.example:8404")
        ));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:8404")));
        assert!(!same_origin(
            "http://127.0.0.1:8405",
            Some("127.0.0.1:8404")
        ));
        assert!(!same_origin("null", Some("127.0.0.1:8404")));
        assert!(!same_origin("http://127.0.0.1:8404", None));
    }
}
