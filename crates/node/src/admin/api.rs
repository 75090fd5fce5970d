//! The admin API's routes and handlers. Every answer is JSON but `/metrics` (Prometheus
//! text), `/healthz` (a word) and `/` (the stats page); every refusal is
//! `{"error": "why"}` with a status that says which kind (400 bad value, 403 not allowed,
//! 404 no such service, backend or instance, 409 not possible now).
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /` | the stats page |
//! | `GET /metrics` | Prometheus text |
//! | `GET /api/status` | services, backends, VRRP instances, havip itself |
//! | `GET /api/events?after=N` | events numbered above N |
//! | `GET /healthz` | `ok`, or 503 `draining` |
//! | `GET /api/backends/{service}/{backend}` | one backend, as in `/api/status` |
//! | `POST /api/backends/{service}/{backend}` | `{"state", "weight" (N or "N%"), "wait", "timeout_ms"}`: set, optionally wait for the drain |
//! | `POST /api/vrrp/{instance}/step-down`, `/restore` | the failover drill's commands |
//! | `POST /api/reload` | re-read the config file: 200 applied (what changed), 422 refused (every problem), 409 not applied (why) |
//! | `POST /api/upgrade` | binary upgrade: 200 with the new PID once it took over, 409 with why not |

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use havip_proxy::backend::{AdminState as BackendAdmin, Backend, MAX_WEIGHT};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{guard, page, status, Access, AdminState};
use crate::metrics;
use crate::vrrp::instance::StepDownResult;

/// What every handler gets: the node's state and who is asking.
#[derive(Debug, Clone)]
pub struct Api {
    /// The node's state.
    pub state: Arc<AdminState>,
    /// The TCP endpoint or the control socket.
    pub access: Access,
}

/// The API's router for one transport. A caller may merge more routes into it (for
/// example `POST /api/reload`); they pass the same [`guard`] only if added before
/// [`router`]'s layer, so merge with [`routes`] instead when they need it.
pub fn router(state: Arc<AdminState>, access: Access) -> Router {
    routes(Router::new(), state, access)
}

/// `extra`'s routes and the API's, behind the [`guard`] for `access`. `extra` gets the same
/// checks (credentials, commands on, JSON, same origin) as the API's own commands.
pub fn routes(extra: Router<Api>, state: Arc<AdminState>, access: Access) -> Router {
    let api = Api { state, access };
    extra
        .route("/", get(page::stats_page))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/api/status", get(status_json))
        .route("/api/events", get(events))
        .route(
            "/api/backends/{service}/{backend}",
            get(backend_json).post(backend_command),
        )
        .route("/api/vrrp/{instance}/{action}", post(vrrp_command))
        .route("/api/reload", post(reload))
        .route("/api/upgrade", post(upgrade))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            guard::guard,
        ))
        .with_state(api)
}

/// A refusal: `{"error": message}` with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status: which kind of refusal.
    pub status: StatusCode,
    /// Why, for the operator.
    pub message: String,
}

impl ApiError {
    /// A refusal with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// A refusal as a response: `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not found; try /, /metrics, /api/status, /api/events or /healthz",
    )
}

async fn metrics_text(State(api): State<Api>) -> Response {
    let state = &api.state;
    let mut body = metrics::render(
        &state.services(),
        state.vrrp.as_deref(),
        state.started.elapsed().as_secs_f64(),
        state.started_unix_ms as f64 / 1000.0,
    );
    metrics::render_config(&mut body, &state.node.config.load(), &state.node.reloads);
    if let Some(bgp) = &state.node.bgp {
        crate::bgp::metrics::render(&mut body, bgp);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthz(State(api): State<Api>) -> Response {
    if api.state.draining.load(Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn status_json(State(api): State<Api>) -> Json<Value> {
    Json(status::status(&api.state, api.access))
}

async fn events(
    State(api): State<Api>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    // `?after=N`: only events newer than N, so a poller sees each event once.
    let after = query
        .get("after")
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Json(Value::Array(
        api.state
            .node
            .events
            .since(after)
            .iter()
            .map(crate::vrrp::status::Event::to_json)
            .collect(),
    ))
}

/// `POST /api/reload`: re-read the config file and apply the difference in place
/// (`crate::run::reload`).
async fn reload(State(api): State<Api>) -> Response {
    use crate::run::ReloadOutcome;
    let Some(requests) = &api.state.node.reload else {
        return error(
            StatusCode::CONFLICT,
            "this node runs a built-in config: nothing to reload",
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if requests.send(reply).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "havip is stopping");
    }
    let outcome = match tokio::time::timeout(crate::run::RELOAD_TIMEOUT, answer).await {
        Ok(Ok(outcome)) => outcome,
        _ => return error(StatusCode::SERVICE_UNAVAILABLE, "no answer from the node"),
    };
    let (status, body) = match outcome {
        ReloadOutcome::Applied {
            changes,
            kept,
            checksum,
        } => (
            StatusCode::OK,
            json!({"result": "applied", "changes": changes, "needs_restart": kept, "checksum": checksum}),
        ),
        ReloadOutcome::Rejected { problems } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"result": "rejected", "problems": problems}),
        ),
        ReloadOutcome::Failed { error } => (
            StatusCode::CONFLICT,
            json!({"result": "failed", "error": error}),
        ),
    };
    (status, Json(body)).into_response()
}

/// `POST /api/upgrade`: start the new binary and hand over (`crate::upgrade`); answers once
/// it took over (this process then drains and exits) or failed (this process runs on).
async fn upgrade(State(api): State<Api>) -> Response {
    use crate::run::UpgradeOutcome;
    let Some(requests) = &api.state.node.upgrade else {
        return error(
            StatusCode::CONFLICT,
            "this node was not started by `havip run`",
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if requests.send(reply).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "havip is stopping");
    }
    let limit = crate::upgrade::HANDOVER_TIMEOUT + Duration::from_secs(5);
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(UpgradeOutcome::TookOver { pid })) => (
            StatusCode::OK,
            Json(json!({"result": "took_over", "pid": pid})),
        )
            .into_response(),
        Ok(Ok(UpgradeOutcome::Failed { error })) => (
            StatusCode::CONFLICT,
            Json(json!({"result": "failed", "error": error})),
        )
            .into_response(),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "no answer from the node"),
    }
}

/// The backend `service`/`name`, or the 404 that says which part is unknown.
fn find_backend(state: &AdminState, service: &str, name: &str) -> Result<Arc<Backend>, ApiError> {
    let Some(found) = state.service(service) else {
        let services = state.services();
        let known: Vec<&str> = services.iter().map(|s| s.spec.name.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no service {service:?}; services: {}", known.join(", ")),
        ));
    };
    let backend = found
        .backends
        .iter()
        .find(|b| b.spec().name == name)
        .cloned();
    backend.ok_or_else(|| {
        let known: Vec<String> = found.backends.iter().map(|b| b.name()).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "service {service:?} has no backend {name:?}; backends: {}",
                known.join(", ")
            ),
        )
    })
}

async fn backend_json(
    State(api): State<Api>,
    Path((service, name)): Path<(String, String)>,
) -> Response {
    match find_backend(&api.state, &service, &name) {
        Ok(backend) => Json(status::backend_json(&backend)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `POST /api/backends/{service}/{backend}`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendCommand {
    /// `ready`, `drain` or `maint`.
    state: Option<String>,
    /// The runtime weight: a number 0 to [`MAX_WEIGHT`], or `"N%"` of the configured weight
    /// (HAProxy's `set weight ... 50%`).
    weight: Option<Value>,
    /// Answer only once the backend has no connection left.
    #[serde(default)]
    wait: bool,
    /// Longest wait; none: until drained (at most [`LONGEST_WAIT`]).
    timeout_ms: Option<u64>,
}

/// The longest a `wait` may last.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);
/// How often a waiting drain looks at the backend's connections.
const DRAIN_POLL: Duration = Duration::from_millis(20);

async fn backend_command(
    State(api): State<Api>,
    Path((service, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let backend = match find_backend(&api.state, &service, &name) {
        Ok(backend) => backend,
        Err(refusal) => return refusal.into_response(),
    };
    let command: BackendCommand = match serde_json::from_slice(&body) {
        Ok(command) => command,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"state\": \"ready|drain|maint\"}} and/or {{\"weight\": N or \"N%\"}}: {why}"
                ),
            )
        }
    };
    let new_state = match command.state.as_deref().map(str::parse::<BackendAdmin>) {
        None => None,
        Some(Ok(state)) => Some(state),
        Some(Err(why)) => return error(StatusCode::BAD_REQUEST, why),
    };
    let weight = match command
        .weight
        .as_ref()
        .map(|w| parse_weight(w, backend.spec().weight))
    {
        None => None,
        Some(Ok(weight)) => Some(weight),
        Some(Err(why)) => return error(StatusCode::BAD_REQUEST, why),
    };
    if new_state.is_none() && weight.is_none() && !command.wait {
        return error(
            StatusCode::BAD_REQUEST,
            "nothing to do: give \"state\", \"weight\" or \"wait\"",
        );
    }
    let previous_state = backend.admin_state();
    let previous_weight = backend.weight();
    // Judged before anything is applied: a refused command changes nothing.
    let takes_clients = new_state.unwrap_or(previous_state) == BackendAdmin::Ready
        && weight.unwrap_or(previous_weight) > 0;
    if command.wait && takes_clients {
        return error(
            StatusCode::CONFLICT,
            "wait needs the backend in drain or maint (or weight 0): it would never empty",
        );
    }
    if let Some(state) = new_state {
        backend.set_admin_state(state, Instant::now());
    }
    if let Some(weight) = weight {
        backend.set_weight(weight);
    }
    tracing::info!(
        service = %service,
        backend = %name,
        state = backend.admin_state().as_str(),
        previous_state = previous_state.as_str(),
        weight = backend.weight(),
        previous_weight,
        via = if api.access == Access::Local { "control socket" } else { "admin endpoint" },
        "backend set"
    );
    let mut answer = json!({
        "service": service,
        "backend": name,
        "state": backend.admin_state().as_str(),
        "previous_state": previous_state.as_str(),
        "weight": backend.weight(),
        "previous_weight": previous_weight,
        "active": backend.stats.active.load(Relaxed),
    });
    if command.wait {
        let limit = command
            .timeout_ms
            .map_or(LONGEST_WAIT, Duration::from_millis)
            .min(LONGEST_WAIT);
        answer["wait"] = wait_for_drain(&backend, limit).await;
    }
    Json(answer).into_response()
}

/// A runtime weight from the API: a number 0 to [`MAX_WEIGHT`], or `"N%"` of `configured`
/// (HAProxy's relative `set weight`; 100% is the configured weight, so it hands the weight
/// back to the config).
fn parse_weight(value: &Value, configured: u32) -> Result<u32, String> {
    let out_of_range = |shown: &str| {
        format!("weight {shown} is out of range: 0 to {MAX_WEIGHT}, or a percentage of the configured {configured}")
    };
    if let Some(n) = value.as_i64() {
        return u32::try_from(n)
            .ok()
            .filter(|w| *w <= MAX_WEIGHT)
            .ok_or_else(|| out_of_range(&n.to_string()));
    }
    let Some(text) = value.as_str() else {
        return Err(format!("weight {value}: expected a number or \"N%\""));
    };
    let Some(percent) = text.strip_suffix('%') else {
        return Err(format!("weight {text:?}: expected a number or \"N%\""));
    };
    let percent: u64 = percent
        .trim()
        .parse()
        .map_err(|_| format!("weight {text:?}: expected a number or \"N%\""))?;
    let weight = u64::from(configured) * percent / 100;
    u32::try_from(weight)
        .ok()
        .filter(|w| *w <= MAX_WEIGHT)
        .ok_or_else(|| out_of_range(text))
}

/// Wait until `backend` has no connection (at most `limit`): how many there were, how long
/// it took, whether it emptied.
async fn wait_for_drain(backend: &Backend, limit: Duration) -> Value {
    let started = Instant::now();
    let open_at_start = backend.stats.active.load(Relaxed);
    let mut ticker = tokio::time::interval(DRAIN_POLL);
    let drained = loop {
        ticker.tick().await;
        if backend.stats.active.load(Relaxed) == 0 {
            break true;
        }
        if started.elapsed() >= limit {
            break false;
        }
    };
    json!({
        "open_at_start": open_at_start,
        "still_open": backend.stats.active.load(Relaxed),
        "waited_ms": started.elapsed().as_millis() as u64,
        "drained": drained,
    })
}

/// `POST /api/vrrp/{instance}/step-down` and `.../restore`, for the failover drill.
async fn vrrp_command(
    State(api): State<Api>,
    Path((instance, action)): Path<(String, String)>,
) -> Response {
    let Some(commands) = &api.state.vrrp_commands else {
        return error(StatusCode::NOT_FOUND, "this node runs no VRRP instance");
    };
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            format!("no VRRP instance {instance:?}"),
        )
    };
    match action.as_str() {
        "step-down" => match commands.step_down(&instance).await {
            None => unknown(),
            Some(StepDownResult::NotMaster) => (
                StatusCode::CONFLICT,
                Json(json!({"result": "not_master", "error": "not master: nothing to hand over"})),
            )
                .into_response(),
            Some(StepDownResult::HandedOver { new_master, waited }) => Json(json!({
                "result": "handed_over",
                "new_master": new_master.to_string(),
                "waited_ms": waited.as_millis() as u64,
            }))
            .into_response(),
            Some(StepDownResult::NobodyTookOver { waited }) => Json(json!({
                "result": "nobody_took_over",
                "waited_ms": waited.as_millis() as u64,
            }))
            .into_response(),
        },
        "restore" => match commands.restore(&instance).await {
            None => unknown(),
            Some(()) => Json(json!({"result": "restored"})).into_response(),
        },
        _ => error(
            StatusCode::NOT_FOUND,
            format!("POST /api/vrrp/{instance}/step-down or /restore"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_numbers_or_percentages_of_the_configured_one() {
        assert_eq!(parse_weight(&json!(50), 100), Ok(50));
        assert_eq!(parse_weight(&json!(0), 100), Ok(0));
        assert_eq!(parse_weight(&json!("50%"), 200), Ok(100));
        assert_eq!(parse_weight(&json!("100%"), 7), Ok(7));
        assert_eq!(parse_weight(&json!("250%"), 100), Ok(250));
        assert!(parse_weight(&json!(-1), 100)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_weight(&json!(10_001), 100)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_weight(&json!("20000%"), 100)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_weight(&json!("heavy"), 100)
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_weight(&json!(true), 100)
            .unwrap_err()
            .contains("expected a number"));
    }
}
