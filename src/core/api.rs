//! Core's HTTP API under `/api/v1/`: routes, bearer authentication, JSON
//! errors for everything (also what axum answers by itself), and the
//! server. The WebSocket link to nodes is `link.rs`, event streams
//! `follow.rs`, commands `commands.rs`. `web::router()` is mounted beside
//! these routes by the caller, so this module knows no HTML.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{Error, Result};
use crate::index::Index;
use crate::protocol::{
    Command, CommandKind, CommandOutcome, ErrorCode, Health, IndexReset, NodeDetail, NodeEvent, NodeId,
    PROTOCOL_VERSION, SessionDetail, SessionState, Workspace,
};

use super::failure::ApiFailure;
use super::follow::{EVENTS_PAGE_MAX, event_stream};
use super::state::{CoreState, lock, write_private};

/// The API routes, with bearer-token authentication (all but health and the
/// node link, which authenticates in its hello).
pub fn api_router(state: Arc<CoreState>) -> Router {
    let protected = Router::new()
        .route("/api/v1/commands", post(post_command))
        .route("/api/v1/sessions", get(get_sessions))
        .route("/api/v1/sessions/{id}", get(get_session))
        .route("/api/v1/sessions/{id}/events", get(get_session_events))
        .route("/api/v1/sessions/{id}/diff", get(get_session_diff))
        .route("/api/v1/search", get(get_search))
        .route("/api/v1/usage", get(get_usage))
        .route("/api/v1/nodes", get(get_nodes))
        .route("/api/v1/nodes/enroll", post(post_enroll))
        .route("/api/v1/nodes/{id}", get(get_node))
        .route("/api/v1/nodes/{id}/revoke", post(post_revoke))
        .route("/api/v1/workspaces", get(get_workspaces))
        .route("/api/v1/index/rebuild", post(post_rebuild))
        .route("/api/v1/terminals/{id}", get(get_terminal))
        .route("/api/v1/terminals/{id}/ws", get(get_terminal_socket))
        .merge(super::tools::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/api/v1/health", get(get_health))
        .route("/api/v1/nodes/connect", get(super::link::connect))
        .merge(protected)
        .merge(super::mcp::routes(state.clone()))
        .with_state(state)
        .layer(middleware::from_fn(errors_as_json))
}

/// The largest request body the API reads (axum's own limit too).
pub(super) const MAX_BODY: u64 = 2 * 1024 * 1024;

/// Every API error is JSON with a `code` and a `message`, also the ones
/// axum answers by itself (a body too large, a body that is not JSON). A
/// body announced larger than [`MAX_BODY`] is refused before it is read.
pub(super) async fn errors_as_json(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY) {
        let message = format!("a request body is at most {MAX_BODY} bytes");
        return ApiFailure::new(ErrorCode::TooLarge, message).into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
            ErrorCode::Malformed
        }
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        _ => ErrorCode::Internal,
    };
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    ApiFailure::new(code, message).into_response()
}

pub(super) async fn get_terminal(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    match state.terminal(&id) {
        Some(terminal) => Json(terminal).into_response(),
        None => ApiFailure::not_found(format!("no terminal `{id}` (open one with `cortex term`)")).into_response(),
    }
}

/// A terminal's WebSocket (see `core::terminals` for the messages).
pub(super) async fn get_terminal_socket(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    if state.terminal(&id).is_none() {
        return ApiFailure::not_found(format!("no terminal `{id}`")).into_response();
    }
    upgrade.on_upgrade(move |socket| super::terminals::bridge(state, id, socket))
}

/// A running Core: its URL, and a way to stop it.
pub struct Server {
    pub url: String,
    pub state: Arc<CoreState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = self.task.await;
    }
}

/// Binds and serves Core with `extra` routes (the web panel) mounted beside
/// the API. Writes `core.url` in the data dir so local CLIs find it.
pub async fn serve(state: Arc<CoreState>, extra: Router) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(state.config.bind)
        .await
        .map_err(|source| {
            let bind = state.config.bind;
            let context = match source.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "cannot listen on {bind}: another program (another `cortex up`?) has it; pick another address with --bind {}:{}",
                    bind.ip(),
                    bind.port().wrapping_add(1).max(1024)
                ),
                _ => format!("cannot listen on {bind}"),
            };
            Error::Io { context, source }
        })?;
    let address = listener
        .local_addr()
        .map_err(|source| Error::Io { context: "cannot read the bound address".into(), source })?;
    let url = format!("http://{address}");
    let _ = state.bound.set(address);
    let _ = state.ingest.set(super::ingest::start(&state));
    if let Some(telemetry) = super::telemetry::TelemetryConfig::load(&state.config.data_dir)? {
        super::telemetry::start(&state, telemetry)?;
    }
    write_private(&state.config.data_dir.join("core.url"), &format!("{url}\n"))?;
    tokio::spawn(state.clone().monitor());
    let app = api_router(state.clone()).merge(extra);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(super::listen::serve(listener, app, stopped));
    Ok(Server { url, state, shutdown: Some(shutdown), task })
}

pub(super) async fn require_token(State(state): State<Arc<CoreState>>, request: Request, next: Next) -> Response {
    let presented = super::auth::bearer(request.headers());
    let valid = presented.is_some_and(|token| super::auth::tokens_match(token, &state.admin_token));
    if !valid {
        let path = state.config.data_dir.join("admin.token");
        return ApiFailure::new(
            ErrorCode::Unauthorized,
            format!(
                "missing or wrong bearer token: use the admin token in `{}` on Core's machine, or set CORTEX_TOKEN elsewhere",
                path.display()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

pub(super) async fn get_health() -> Json<Health> {
    Json(Health {
        service: "cortex-core".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
    })
}

pub(super) async fn post_command(State(state): State<Arc<CoreState>>, body: axum::body::Bytes) -> Response {
    let command: Command = match serde_json::from_slice(&body) {
        Ok(command) => command,
        Err(error) => {
            return ApiFailure::bad_request(format!("malformed command envelope: {error}")).into_response();
        }
    };
    match state.execute(command).await {
        Ok(outcome @ CommandOutcome::Ok { .. }) => (StatusCode::OK, Json(outcome)).into_response(),
        Ok(outcome @ CommandOutcome::Error { code, .. }) => {
            let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(outcome)).into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct SessionsQuery {
    state: Option<String>,
}

pub(super) async fn get_sessions(State(state): State<Arc<CoreState>>, Query(query): Query<SessionsQuery>) -> Response {
    let filter = match query.state.as_deref().map(str::parse::<SessionState>) {
        Some(Err(error)) => return ApiFailure::bad_request(error).into_response(),
        Some(Ok(filter)) => Some(filter),
        None => None,
    };
    match lock(&state.index).sessions(filter) {
        Ok(sessions) => Json(sessions).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

pub(super) fn resolve(state: &CoreState, id: &str) -> Result<crate::protocol::SessionSummary, ApiFailure> {
    lock(&state.index).resolve_session(id).map_err(|error| match error {
        crate::index::Error::UnknownSession(_) | crate::index::Error::AmbiguousSession { .. } => {
            ApiFailure::not_found(error.to_string())
        }
        other => ApiFailure::internal(other),
    })
}

pub(super) async fn get_session(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    let session = match resolve(&state, &id) {
        Ok(session) => session,
        Err(failure) => return failure.into_response(),
    };
    match lock(&state.index).turns(&session.id) {
        Ok(turns) => Json(SessionDetail { session, turns }).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    turn: Option<u32>,
}

/// Core never reads a workspace: the owning node computes the diff.
pub(super) async fn get_session_diff(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let session = match resolve(&state, &id) {
        Ok(session) => session,
        Err(failure) => return failure.into_response(),
    };
    let command = Command {
        v: PROTOCOL_VERSION,
        id: format!("diff_{}", ulid::Ulid::new().to_string().to_lowercase()),
        target: None,
        kind: CommandKind::ReadDiff { session_id: session.id, turn: query.turn, files: false, context: None },
    };
    match state.execute(command).await {
        Ok(outcome @ CommandOutcome::Ok { .. }) => match outcome.into_reply::<crate::protocol::reply::DiffRead>() {
            Ok(diff) => {
                let patch = diff.patch.unwrap_or_default();
                ([(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")], patch).into_response()
            }
            Err(error) => ApiFailure::new(error.code, error.message).into_response(),
        },
        Ok(CommandOutcome::Error { code, message }) => ApiFailure::new(code, message).into_response(),
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

pub(super) async fn get_search(State(state): State<Arc<CoreState>>, Query(query): Query<SearchQuery>) -> Response {
    match state.search(&query.q, query.limit.unwrap_or(50)) {
        Ok(hits) => Json(hits).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct UsageQuery {
    by: Option<String>,
    since: Option<String>,
}

/// `GET /api/v1/usage?by=session|workspace|node|day&since=RFC3339`.
pub(super) async fn get_usage(State(state): State<Arc<CoreState>>, Query(query): Query<UsageQuery>) -> Response {
    let by = match query.by.as_deref().map(crate::protocol::UsageBy::parse) {
        None => crate::protocol::UsageBy::default(),
        Some(Some(by)) => by,
        Some(None) => {
            let message = "`by` is one of session, workspace, node, day";
            return ApiFailure::new(crate::protocol::ErrorCode::BadInput, message).into_response();
        }
    };
    if let Some(since) = &query.since
        && since.parse::<jiff::Timestamp>().is_err()
    {
        let message = format!("`since` is an RFC 3339 time (2026-12-01T00:00:00Z), not `{since}`");
        return ApiFailure::new(crate::protocol::ErrorCode::BadInput, message).into_response();
    }
    match state.usage(by, query.since.as_deref()) {
        Ok(report) => Json(report).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

pub(super) async fn get_nodes(State(state): State<Arc<CoreState>>) -> Response {
    match state.node_summaries() {
        Ok(nodes) => Json(nodes).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

pub(super) async fn get_node(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    let node = match state.find_node(&id) {
        Ok(Some(node)) => node,
        Ok(None) => {
            return ApiFailure::not_found(format!("no node `{id}` (`cortex node list` shows them)")).into_response();
        }
        Err(error) => return ApiFailure::internal(error).into_response(),
    };
    let events = lock(&state.registry).node_events(node.id.as_str(), 20).unwrap_or_default();
    let workspaces: Vec<Workspace> = lock(&state.index)
        .workspaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|workspace| workspace.node == node.id.as_str())
        .collect();
    let events = events.into_iter().map(|(at, kind, detail)| NodeEvent { at, kind, detail }).collect();
    Json(NodeDetail { node, workspaces, events }).into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct EnrollBody {
    name: Option<String>,
}

pub(super) async fn post_enroll(State(state): State<Arc<CoreState>>, body: Option<Json<EnrollBody>>) -> Response {
    let name = body.and_then(|Json(body)| body.name);
    if let Some(name) = &name
        && let Err(problem) = crate::protocol::check_name("node name", name)
    {
        return ApiFailure::bad_request(problem).into_response();
    }
    match state.enroll(name.as_deref()) {
        Ok(enrollment) => Json(enrollment).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

pub(super) async fn post_revoke(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    match state.revoke_node(&id).await {
        Ok(node) => Json(node).into_response(),
        Err(failure) => failure.into_response(),
    }
}

pub(super) async fn get_workspaces(State(state): State<Arc<CoreState>>) -> Response {
    match lock(&state.index).workspaces() {
        Ok(workspaces) => Json(workspaces).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

/// Throws the index away and drops every node link: each node reconnects,
/// learns that Core has nothing, and sends everything again from its refs.
pub(super) async fn post_rebuild(State(state): State<Arc<CoreState>>) -> Response {
    let path = super::Core::index_path(&state.config.data_dir);
    let fresh = {
        let mut index = lock(&state.index);
        match Index::reset(&path) {
            Ok(fresh) => {
                *index = fresh;
                Ok(())
            }
            Err(error) => Err(error),
        }
    };
    if let Err(error) = fresh {
        return ApiFailure::internal(error).into_response();
    }
    let nodes: Vec<NodeId> = lock(&state.links)
        .drain()
        .map(|(id, link)| {
            link.kick.notify_one();
            id
        })
        .collect();
    Json(IndexReset { reset: true, nodes_resending: nodes.len() }).into_response()
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    after: Option<u64>,
    /// At most this many events (default and ceiling [`EVENTS_PAGE_MAX`]);
    /// ask again with `after` set to the last seq for the next page.
    limit: Option<usize>,
}

/// JSON history, or (with `Accept: text/event-stream`) history then live
/// events as SSE, each with its seq as the SSE id so a reconnect resumes
/// from `Last-Event-ID` with no gap and no duplicate.
pub(super) async fn get_session_events(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let session = match resolve(&state, &id) {
        Ok(session) => session,
        Err(failure) => return failure.into_response(),
    };
    let last_event_id =
        headers.get("last-event-id").and_then(|value| value.to_str().ok()).and_then(|value| value.parse().ok());
    let after = last_event_id.or(query.after).unwrap_or(0);
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if !wants_stream {
        let limit = query.limit.unwrap_or(EVENTS_PAGE_MAX).clamp(1, EVENTS_PAGE_MAX);
        return match lock(&state.index).events_page(&session.id, after, limit) {
            Ok(events) => Json(events).into_response(),
            Err(error) => ApiFailure::internal(error).into_response(),
        };
    }
    Sse::new(event_stream(state, session.id, after)).keep_alive(KeepAlive::default()).into_response()
}
