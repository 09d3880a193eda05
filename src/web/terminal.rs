//! Terminal pages: open a shell on the workspace's node (from a workspace or
//! a session), watch and type into it in xterm.js, reattach after a reload
//! with the recent output, and see the command lines typed so far.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::Form;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::found;
use super::pages::{Shell, not_found, problem, shell, workspace_crumbs};
use super::urls;
use super::{Viewer, Web};
use crate::core::TerminalSummary;
use crate::protocol::{CommandKind, SessionId, Workspace};

/// xterm.js styles its rows from script: the terminal page alone allows
/// inline styles. Scripts stay the panel's own.
const TERMINAL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                            img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                            form-action 'self'";

#[derive(Deserialize)]
pub(super) struct OpenForm {
    #[serde(default)]
    command_id: String,
    #[serde(default)]
    session: String,
}

pub(super) async fn post_terminal(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<OpenForm>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let session_id = web
        .core
        .session(&form.session)
        .ok()
        .flatten()
        .map(|(session, _)| session.id)
        .filter(|_| !form.session.is_empty());
    open(&web, &viewer, &workspace, session_id, None, &form.command_id, "No terminal").await
}

/// Opens a terminal (a shell, or a check's run) and goes to its page.
async fn open(
    web: &Web,
    viewer: &Viewer,
    workspace: &Workspace,
    session_id: Option<SessionId>,
    check: Option<String>,
    command_id: &str,
    failed: &str,
) -> Response {
    let kind = CommandKind::OpenTerminal {
        workspace_id: workspace.id.clone(),
        session_id,
        terminal_id: None,
        cols: 100,
        rows: 30,
        by: Some(viewer.0.clone()),
        check,
    };
    let back = urls::workspace(&workspace.id);
    match web.command_as::<crate::protocol::reply::TerminalOpened>(command_id, None, kind).await {
        Ok(opened) => Redirect::to(&urls::terminal(&opened.terminal_id)).into_response(),
        Err(refused) => {
            let status = refused.status();
            problem(web, status, failed, refused.message, &back)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CheckForm {
    #[serde(default)]
    command_id: String,
    name: String,
}

/// Runs a configured check in the workspace; its output streams on a
/// terminal page, its result and output land in the workspace journal.
pub(super) async fn post_check(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<CheckForm>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    open(&web, &viewer, &workspace, None, Some(form.name), &form.command_id, "Check not run").await
}

#[derive(Template, WebTemplate)]
#[template(path = "terminal.html")]
pub(super) struct TerminalPage {
    shell: Shell,
    terminal: TerminalSummary,
    workspace_name: String,
}

pub(super) async fn get_terminal(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let Some(terminal) = web.core.terminal(&id) else {
        return not_found(&web, format!("No terminal `{id}`: terminals end when Core restarts."));
    };
    let mut crumbs = workspace_crumbs(&web, terminal.workspace_id.as_str());
    let workspace_name = crumbs.last().map(|(name, _)| name.clone()).unwrap_or_default();
    crumbs.push((format!("terminal {id}"), urls::terminal(&id)));
    let mut response = TerminalPage { shell: shell(&web, crumbs), terminal, workspace_name }.into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(TERMINAL_CSP));
    response
}

/// Ends a terminal: its shell gets a hangup.
pub(super) async fn post_close(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let Some(terminal) = web.core.terminal(&id) else {
        return not_found(&web, format!("No terminal `{id}`."));
    };
    let kind = CommandKind::CloseTerminal { workspace_id: terminal.workspace_id.clone(), terminal_id: id.clone() };
    let back = urls::workspace(&terminal.workspace_id);
    match web.command("", None, kind).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(refused) => {
            let status = refused.status();
            problem(&web, status, "Not closed", refused.message, &urls::terminal(&id))
        }
    }
}

/// The terminal's WebSocket; a browser on another site cannot open it.
pub(super) async fn get_terminal_socket(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
    if origin.is_some_and(|origin| origin != format!("http://{host}") && origin != format!("https://{host}")) {
        return (StatusCode::FORBIDDEN, "refused: this terminal belongs to the panel's own pages").into_response();
    }
    if web.core.terminal(&id).is_none() {
        return (StatusCode::NOT_FOUND, format!("no terminal `{id}`")).into_response();
    }
    let core = web.core.clone();
    upgrade.on_upgrade(move |socket| crate::core::terminal_bridge(core, id, socket))
}
