//! The panel's pages: the `Nodes → Workspaces → Sessions` tree beside a
//! dashboard or a session's timeline. Everything an agent wrote is escaped
//! (askama's default): agent output is untrusted.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Web;
use crate::protocol::{Event, EventKind, NodeStatus, SessionState, SessionSummary, TurnSummary};

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    /// A token was given and refused.
    pub problem: bool,
}

pub(super) struct TreeSession {
    id: String,
    title: String,
    state: String,
}

pub(super) struct TreeWorkspace {
    name: String,
    sessions: Vec<TreeSession>,
}

pub(super) struct TreeNode {
    name: String,
    status: String,
    warnings: usize,
    workspaces: Vec<TreeWorkspace>,
}

/// What every page shows around its content.
pub(super) struct Shell {
    exposed: bool,
    crumbs: Vec<(String, String)>,
    tree: Vec<TreeNode>,
}

fn shell(web: &Web, crumbs: Vec<(String, String)>) -> Shell {
    let nodes = web.core.node_summaries().unwrap_or_default();
    let workspaces = web.core.workspaces().unwrap_or_default();
    let sessions = web.core.sessions().unwrap_or_default();
    let tree = nodes
        .iter()
        .map(|node| TreeNode {
            name: node.name.clone(),
            status: node.status.as_str().to_string(),
            warnings: node.warnings.len(),
            workspaces: workspaces
                .iter()
                .filter(|workspace| workspace.node == node.id)
                .map(|workspace| TreeWorkspace {
                    name: workspace.name.clone(),
                    sessions: sessions
                        .iter()
                        .filter(|session| session.workspace_id == workspace.id)
                        .take(20)
                        .map(|session| TreeSession {
                            id: session.id.to_string(),
                            title: session.title.clone(),
                            state: session.state.as_str().to_string(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Shell { exposed: web.panel.exposed, crumbs, tree }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub(super) struct DashboardPage {
    shell: Shell,
    nodes_online: usize,
    nodes_total: usize,
    sessions_total: usize,
    attention: Vec<SessionSummary>,
    recent: Vec<SessionSummary>,
}

pub(super) async fn get_dashboard(State(web): State<Arc<Web>>) -> DashboardPage {
    let nodes = web.core.node_summaries().unwrap_or_default();
    let sessions = web.core.sessions().unwrap_or_default();
    let attention = sessions
        .iter()
        .filter(|session| {
            matches!(session.state, SessionState::AwaitingApproval | SessionState::Failed | SessionState::Interrupted)
        })
        .take(20)
        .cloned()
        .collect();
    DashboardPage {
        shell: shell(&web, Vec::new()),
        nodes_online: nodes.iter().filter(|node| node.status == NodeStatus::Online).count(),
        nodes_total: nodes.len(),
        sessions_total: sessions.len(),
        attention,
        recent: sessions.into_iter().take(20).collect(),
    }
}

/// One block of a session's timeline.
pub(super) struct Block {
    seq: u64,
    kind: &'static str,
    time: String,
    title: String,
    body: String,
}

fn block(event: &Event) -> Block {
    let (title, body) = match &event.kind {
        EventKind::UserMessage { text } => ("you".to_string(), text.clone()),
        EventKind::AssistantMessage { text } => ("agent".to_string(), text.clone()),
        EventKind::Reasoning { text } => ("reasoning".to_string(), text.clone()),
        EventKind::CommandStarted { command, .. } => ("command".to_string(), command.clone()),
        EventKind::CommandOutput { text, .. } => ("output".to_string(), text.clone()),
        EventKind::CommandFinished { exit_code, duration_ms, .. } => {
            let exit = exit_code.map_or("killed".to_string(), |code| format!("exit {code}"));
            ("finished".to_string(), format!("{exit} in {duration_ms} ms"))
        }
        EventKind::FileChanged { path, change } => (format!("file {change:?}").to_lowercase(), path.clone()),
        EventKind::ApprovalRequested { prompt, .. } => ("approval requested".to_string(), prompt.clone()),
        EventKind::ApprovalResolved { decision, by, .. } => {
            (format!("{decision:?}").to_lowercase(), format!("by {by}"))
        }
        EventKind::Lifecycle { from, to, reason } => {
            let from = from.map(|from| format!("{from} → ")).unwrap_or_default();
            (
                "state".to_string(),
                format!("{from}{to}{}", reason.as_ref().map(|reason| format!(" ({reason})")).unwrap_or_default()),
            )
        }
        EventKind::Warning { message } => ("warning".to_string(), message.clone()),
        EventKind::Error { message } => ("error".to_string(), message.clone()),
        EventKind::TurnFinished { outcome } => ("turn".to_string(), outcome.as_str().to_string()),
        EventKind::DiffCaptured { files, insertions, deletions } => {
            ("diff".to_string(), format!("{files} file(s), +{insertions} -{deletions}"))
        }
        EventKind::CheckResult { name, passed, exit_code, .. } => {
            let verdict = if *passed { "passed" } else { "failed" };
            (
                "check".to_string(),
                format!("{name} {verdict} ({})", exit_code.map_or("killed".into(), |code| format!("exit {code}"))),
            )
        }
        EventKind::CommitCreated { commit, message } => ("commit".to_string(), format!("{commit} {message}")),
        EventKind::AssistantDelta { text, .. } => ("agent (streaming)".to_string(), text.clone()),
        EventKind::TokenUsage { usage } => {
            ("tokens".to_string(), format!("{} in, {} out", usage.input_tokens, usage.output_tokens))
        }
    };
    Block { seq: event.seq, kind: event.kind.name(), time: event.at.strftime("%H:%M:%S").to_string(), title, body }
}

#[derive(Template, WebTemplate)]
#[template(path = "session.html")]
pub(super) struct SessionPage {
    shell: Shell,
    session: SessionSummary,
    turns: Vec<TurnSummary>,
    blocks: Vec<Block>,
}

pub(super) async fn get_session(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let Ok(Some((session, turns))) = web.core.session(&id) else {
        return (StatusCode::NOT_FOUND, "no such session").into_response();
    };
    let events = web.core.events(&session.id, 0).unwrap_or_default();
    let blocks =
        events.iter().filter(|event| !matches!(event.kind, EventKind::AssistantDelta { .. })).map(block).collect();
    let crumbs = vec![
        (session.node.clone(), "/".to_string()),
        (session.workspace_path.clone(), "/".to_string()),
        (session.id.to_string(), format!("/sessions/{}", session.id)),
    ];
    SessionPage { shell: shell(&web, crumbs), session, turns, blocks }.into_response()
}
