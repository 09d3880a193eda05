//! The web side: the panel, server-rendered with askama (templates in
//! `templates/`) and htmx (vendored in `static/vendor/`). The only module that
//! knows HTML. Mounted beside Core's API by `cortex up` and `cortex core`, so
//! `core` never imports it.
//!
//! Every entity has a stable URL: `/nodes/{id}`, `/workspaces/{id}`,
//! `/sessions/{id}`, `/sessions/{id}/turns/{n}`, `/sessions/{id}/events/{seq}`,
//! `/commands/{id}`, `/workspaces/{id}/file?path=…&lines=3-7`. Every screen works as plain links and forms; htmx adds
//! partial swaps and the live timeline.

mod actions;
mod assets;
mod auth;
mod diff;
mod error;
mod evidence;
mod highlight;
mod inspector;
mod markdown;
mod pages;
mod review;
mod session;
mod sessions;
mod terminal;
mod timeline;
mod tools;
pub(crate) mod urls;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

pub use auth::{DEFAULT_NAME, Panel, Viewer, person_name};
pub use pages::ago;

use crate::core::CoreState;
use crate::protocol::{Command, CommandKind, CommandOutcome, PROTOCOL_VERSION};

/// What the panel's handlers need.
pub(crate) struct Web {
    core: Arc<CoreState>,
    panel: Arc<Panel>,
}

/// Why a command did not succeed: the node's or Core's code and message.
pub(crate) struct Refused {
    code: crate::protocol::ErrorCode,
    message: String,
}

impl Refused {
    /// The page's status: the one mapping of `ErrorCode::http_status`.
    pub(crate) fn status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::from_u16(self.code.http_status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl Web {
    /// Runs a command through Core's command path (idempotency, routing,
    /// record), as the API does. `id` is the form's idempotency key; an
    /// empty one (a read, a form without) gets a fresh id.
    async fn command(&self, id: &str, target: Option<String>, kind: CommandKind) -> Result<serde_json::Value, Refused> {
        let id = id.trim();
        let id = if id.is_empty() || id.len() > 100 { pages::command_id() } else { id.to_string() };
        match self.core.execute(Command { v: PROTOCOL_VERSION, id, target, kind }).await {
            Ok(CommandOutcome::Ok { value }) => Ok(value),
            Ok(CommandOutcome::Error { code, message }) => Err(Refused { code, message }),
            Err(failure) => Err(Refused { code: failure.code(), message: failure.message().to_string() }),
        }
    }
}

impl Web {
    /// [`Web::command`], the answer read as the reply type of its kind (an
    /// answer that is not one is refused as malformed).
    async fn command_as<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        target: Option<String>,
        kind: CommandKind,
    ) -> Result<T, Refused> {
        let value = self.command(id, target, kind).await?;
        crate::protocol::reply::decode(value).map_err(|error| Refused { code: error.code, message: error.message })
    }
}

pub fn router(core: Arc<CoreState>, panel: Arc<Panel>) -> Router {
    let web = Arc::new(Web { core, panel: panel.clone() });
    let pages = Router::new()
        .route("/", get(pages::get_dashboard))
        .route("/nodes", get(pages::get_nodes))
        .route("/nodes/enroll", post(actions::post_enroll))
        .route("/nodes/{id}", get(pages::get_node))
        .route("/nodes/{id}/revoke", post(actions::post_revoke))
        .route("/nodes/{id}/workspaces", post(actions::post_bind))
        .route("/workspaces/{id}", get(pages::get_workspace))
        .route("/workspaces/{id}/sessions", post(actions::post_start))
        .route("/workspaces/{id}/unbind", post(actions::post_unbind))
        .route("/workspaces/{id}/files", get(inspector::get_files))
        .route("/workspaces/{id}/terminals", post(terminal::post_terminal))
        .route("/workspaces/{id}/checks", post(terminal::post_check))
        .route("/terminals/{id}", get(terminal::get_terminal))
        .route("/terminals/{id}/ws", get(terminal::get_terminal_socket))
        .route("/terminals/{id}/close", post(terminal::post_close))
        .route("/workspaces/{id}/file", get(inspector::get_file).post(inspector::post_file))
        .route("/workspaces/{id}/move", post(inspector::post_move))
        .route("/workspaces/{id}/delete", post(inspector::post_delete))
        .route("/sessions", get(sessions::get_sessions))
        .route("/sessions/{id}", get(session::get_session))
        .route("/sessions/{id}/live", get(session::get_live))
        .route("/sessions/{id}/turns", post(actions::post_send))
        .route("/sessions/{id}/interrupt", post(actions::post_interrupt))
        .route("/sessions/{id}/stop", post(actions::post_stop))
        .route("/sessions/{id}/approval", post(actions::post_approval))
        .route("/sessions/{id}/checks", post(actions::post_checks))
        .route("/sessions/{id}/review", post(actions::post_review))
        .route("/sessions/{id}/commit", post(actions::post_commit))
        .route("/sessions/{id}/turns/{turn}", get(session::get_turn))
        .route("/sessions/{id}/turns/{turn}/diff", get(review::get_turn_diff))
        .route("/sessions/{id}/diff", get(review::get_session_diff))
        .route("/sessions/{id}/evidence", get(evidence::get_evidence))
        .route("/sessions/{id}/artifacts/{turn}/{*path}", get(evidence::get_artifact))
        .route("/sessions/{id}/report", get(evidence::get_report))
        .route("/sessions/{id}/events/{seq}", get(session::get_event))
        .route("/commands/{id}", get(pages::get_command))
        .route("/search", get(pages::get_search))
        .route("/usage", get(usage::get_usage))
        .route("/tools", get(tools::get_tools))
        .route("/tools/{name}", get(tools::get_tool))
        .route("/sessions/{id}/tools", get(tools::get_session_tools))
        .route("/panel/tree", get(pages::get_tree))
        .with_state(web.clone())
        .route_layer(middleware::from_fn_with_state(panel.clone(), auth::require_login));
    let links = Router::new().route("/panel/login-links", post(auth::post_login_link)).with_state(web.clone());
    Router::new()
        .route("/login", get(auth::get_login))
        .route("/logout", post(auth::post_logout))
        .with_state(panel)
        .merge(links)
        .route("/static/{*name}", get(assets::get_static))
        .merge(pages)
        .layer(middleware::from_fn_with_state(web, auth::same_origin))
        .layer(middleware::from_fn(auth::security_headers))
}
