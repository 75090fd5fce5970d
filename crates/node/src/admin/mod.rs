//! The admin HTTP endpoint: `/metrics` (Prometheus), `/api/status` (JSON) and `/healthz`
//! (havip itself). Off unless `[admin]` is configured; binds 127.0.0.1:8404 by default.
//!
//! Deliberately small: HTTP/1.1 GET only, one request per connection, bounded request size and
//! read time, so a stuck or hostile client cannot hold resources. [`auth`] checks basic
//! authentication; [`status`] builds the services' part of `/api/status`.

pub mod auth;
pub mod status;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use havip_proxy::ServiceTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bgp::status::BgpView;
use crate::metrics;
use crate::run::{
    ConfigSource, ReloadOutcome, ReloadRequest, ReloadStats, UpgradeOutcome, UpgradeRequest,
    RELOAD_TIMEOUT,
};
use crate::vrrp::instance::StepDownResult;
use crate::vrrp::status::{EventLog, VrrpView};
use crate::vrrp::VrrpCommands;

/// What the endpoint reports on. A reload publishes a new one; requests read the current one.
#[derive(Debug)]
pub struct AdminState {
    /// The proxy's running services, for `/metrics` and `/api/status`.
    pub services: Arc<ServiceTable>,
    /// When the node started, for the uptime in `/metrics`.
    pub started: Instant,
    /// Set once shutdown began: `/healthz` then answers 503 so an upstream LB stops sending.
    pub draining: Arc<AtomicBool>,
    /// The VRRP instances, when the config has any.
    pub vrrp: Option<Arc<VrrpView>>,
    /// The BGP announcements' status, when there are any.
    pub bgp: Option<Arc<BgpView>>,
    /// The node's event log (VRRP and BGP), for `/api/events`.
    pub events: Arc<EventLog>,
    /// Runtime commands, when `[admin] commands = true` and there are VRRP instances.
    pub commands: Option<VrrpCommands>,
    /// `[admin] auth`: credentials every request but `/healthz` must carry.
    pub auth: auth::BasicAuth,
    /// Where `POST /api/reload` goes, when `[admin] commands = true`.
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
    /// Where `POST /api/upgrade` goes, when `[admin] commands = true`.
    pub upgrade: Option<mpsc::Sender<UpgradeRequest>>,
    /// The running config: file, checksum, when loaded.
    pub config: ConfigSource,
    /// Reloads by result.
    pub reloads: Arc<ReloadStats>,
}

impl AdminState {
    /// A state with nothing in it, until the node publishes its own.
    pub fn placeholder(started: Instant) -> AdminState {
        AdminState {
            services: Arc::default(),
            started,
            draining: Arc::default(),
            vrrp: None,
            bgp: None,
            events: Arc::default(),
            commands: None,
            auth: auth::BasicAuth::new(&[]),
            reload: None,
            upgrade: None,
            config: ConfigSource {
                path: None,
                checksum: String::new(),
                loaded_at_unix: 0.0,
            },
            reloads: Arc::default(),
        }
    }
}

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Serve admin requests on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ArcSwap<AdminState>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let state = state.load_full();
                tokio::spawn(async move {
                    // Reading the request is bounded by READ_TIMEOUT inside; a step-down
                    // answers after the handover, at most one Master_Down_Interval.
                    let _ = tokio::time::timeout(COMMAND_TIMEOUT, handle(stream, &state)).await;
                });
            }
            Err(error) => {
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, state: &AdminState) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let read_deadline = Instant::now() + READ_TIMEOUT;
    let (method, path, permitted) = loop {
        let read = match tokio::time::timeout_at(read_deadline, stream.read(&mut buf[len..])).await
        {
            Ok(read) => read?,
            Err(_) => return Ok(()),
        };
        if read == 0 {
            return Ok(());
        }
        len += read;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = request.method.unwrap_or("").to_string();
                let path = request.path.unwrap_or("/").to_string();
                let permitted = state.auth.permits(&path, request.headers);
                break (method, path, permitted);
            }
            Ok(httparse::Status::Partial) if len < MAX_REQUEST => continue,
            _ => {
                return respond(&mut stream, 400, "text/plain", b"bad request\n").await;
            }
        }
    };
    if !permitted {
        return auth::unauthorized(&mut stream).await;
    }
    let (status, content_type, body) = if method == "POST" {
        command(&path, state).await
    } else {
        route(&method, &path, state)
    };
    respond(&mut stream, status, content_type, body.as_bytes()).await
}

/// Runtime commands: `POST /api/vrrp/<instance>/step-down` and `.../restore`, for the
/// failover drill. Off unless `[admin] commands = true`.
async fn command(path: &str, state: &AdminState) -> (u16, &'static str, String) {
    match path.trim_end_matches('/') {
        "/api/reload" => return reload(state).await,
        "/api/upgrade" => return upgrade(state).await,
        _ => {}
    }
    let Some(commands) = &state.commands else {
        return (
            403,
            "text/plain",
            "runtime commands are off; set `commands = true` in [admin]\n".into(),
        );
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["api", "vrrp", instance, action] = parts.as_slice() else {
        return (
            404,
            "text/plain",
            "POST /api/vrrp/<instance>/step-down or /restore\n".into(),
        );
    };
    match *action {
        "step-down" => match commands.step_down(instance).await {
            None => (
                404,
                "text/plain",
                format!("no VRRP instance {instance:?}\n"),
            ),
            Some(StepDownResult::NotMaster) => (
                409,
                "application/json",
                "{\"result\": \"not_master\"}\n".into(),
            ),
            Some(StepDownResult::HandedOver { new_master, waited }) => (
                200,
                "application/json",
                format!(
                    "{}\n",
                    serde_json::json!({
                        "result": "handed_over",
                        "new_master": new_master.to_string(),
                        "waited_ms": waited.as_millis() as u64,
                    })
                ),
            ),
            Some(StepDownResult::NobodyTookOver { waited }) => (
                200,
                "application/json",
                format!(
                    "{}\n",
                    serde_json::json!({
                        "result": "nobody_took_over",
                        "waited_ms": waited.as_millis() as u64,
                    })
                ),
            ),
        },
        "restore" => match commands.restore(instance).await {
            None => (
                404,
                "text/plain",
                format!("no VRRP instance {instance:?}\n"),
            ),
            Some(()) => (
                200,
                "application/json",
                "{\"result\": \"restored\"}\n".into(),
            ),
        },
        _ => (
            404,
            "text/plain",
            "POST /api/vrrp/<instance>/step-down or /restore\n".into(),
        ),
    }
}

/// `POST /api/reload`: re-read the config file and apply it; the answer says what changed, or
/// every problem (422) or why it could not be applied (409).
async fn reload(state: &AdminState) -> (u16, &'static str, String) {
    let Some(requests) = &state.reload else {
        return (
            403,
            "text/plain",
            "runtime commands are off; set `commands = true` in [admin]\n".into(),
        );
    };
    let (reply, answer) = oneshot::channel();
    if requests.send(reply).await.is_err() {
        return (503, "text/plain", "havip is stopping\n".into());
    }
    let outcome = match tokio::time::timeout(RELOAD_TIMEOUT, answer).await {
        Ok(Ok(outcome)) => outcome,
        _ => return (503, "text/plain", "no answer from the node\n".into()),
    };
    let (status, body) = match outcome {
        ReloadOutcome::Applied {
            changes,
            kept,
            checksum,
        } => (
            200,
            serde_json::json!({"result": "applied", "changes": changes, "needs_restart": kept, "checksum": checksum}),
        ),
        ReloadOutcome::Rejected { problems } => (
            422,
            serde_json::json!({"result": "rejected", "problems": problems}),
        ),
        ReloadOutcome::Failed { error } => {
            (409, serde_json::json!({"result": "failed", "error": error}))
        }
    };
    (status, "application/json", format!("{body:#}\n"))
}

/// `POST /api/upgrade`: start the new binary and hand over ([`crate::upgrade`]); answers when
/// it took over (200, with its PID; this process then drains and exits) or failed (409; this
/// process runs on).
async fn upgrade(state: &AdminState) -> (u16, &'static str, String) {
    let Some(requests) = &state.upgrade else {
        return (
            403,
            "text/plain",
            "runtime commands are off; set `commands = true` in [admin]\n".into(),
        );
    };
    let (reply, answer) = oneshot::channel();
    if requests.send(reply).await.is_err() {
        return (503, "text/plain", "havip is stopping\n".into());
    }
    let timeout = crate::upgrade::HANDOVER_TIMEOUT + Duration::from_secs(5);
    let (status, body) = match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(UpgradeOutcome::TookOver { pid })) => {
            (200, serde_json::json!({"result": "took_over", "pid": pid}))
        }
        Ok(Ok(UpgradeOutcome::Failed { error })) => {
            (409, serde_json::json!({"result": "failed", "error": error}))
        }
        _ => return (503, "text/plain", "no answer from the node\n".into()),
    };
    (status, "application/json", format!("{body:#}\n"))
}

/// Pure request routing: (status, content type, body).
pub fn route(method: &str, path: &str, state: &AdminState) -> (u16, &'static str, String) {
    if method != "GET" && method != "HEAD" {
        return (
            405,
            "text/plain",
            "GET, or POST for runtime commands\n".into(),
        );
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let uptime = state.started.elapsed().as_secs_f64();
    match path {
        "/metrics" => {
            let mut body = metrics::render(&state.services.load(), state.vrrp.as_deref(), uptime);
            metrics::render_config(&mut body, &state.config, &state.reloads);
            if let Some(bgp) = &state.bgp {
                crate::bgp::metrics::render(&mut body, bgp);
            }
            (200, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        "/api/status" => {
            let mut status = status::services_json(&state.services.load(), uptime);
            status["config"] = serde_json::json!({
                "path": state.config.path.as_ref().map(|p| p.display().to_string()),
                "checksum": state.config.checksum,
                "loaded_at_unix": state.config.loaded_at_unix,
            });
            status["draining"] = state.draining.load(Relaxed).into();
            status["pid"] = std::process::id().into();
            if let Some(vrrp) = &state.vrrp {
                status["vrrp"] = vrrp.status_json();
            }
            if let Some(bgp) = &state.bgp {
                status["bgp"] = bgp.status_json();
            }
            (200, "application/json", format!("{status:#}\n"))
        }
        "/api/events" => {
            // `?after=N`: only events newer than N, so a poller sees each event once.
            let after = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("after="))
                .and_then(|number| number.parse::<u64>().ok())
                .unwrap_or(0);
            let events = serde_json::Value::Array(
                state
                    .events
                    .since(after)
                    .iter()
                    .map(crate::vrrp::status::Event::to_json)
                    .collect(),
            );
            (200, "application/json", format!("{events:#}\n"))
        }
        "/healthz" => {
            if state.draining.load(Relaxed) {
                (503, "text/plain", "draining\n".into())
            } else {
                (200, "text/plain", "ok\n".into())
            }
        }
        _ => (
            404,
            "text/plain",
            "not found; try /metrics, /api/status, /api/events or /healthz\n".into(),
        ),
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        409 => "Conflict",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
