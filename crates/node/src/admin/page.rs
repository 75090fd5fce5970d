//! The stats page at `/` of the admin endpoint, like HAProxy's `stats uri`: one HTML file
//! with its styles and script inline, compiled into the binary (no external assets, so it
//! works on an air-gapped master). It polls `/api/status` (and `/api/events` for VRRP
//! transitions) every two seconds and offers ready / drain / maint buttons when the caller
//! may run commands. Laid out as tables on a laptop and as one card per backend on a phone.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page, as shipped.
pub const STATS_PAGE: &str = include_str!("stats.html");

/// `GET /`: the page. It holds no data itself; the script fetches it.
pub async fn stats_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page runs only its own inline code and talks only to this endpoint.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STATS_PAGE,
    )
        .into_response()
}
