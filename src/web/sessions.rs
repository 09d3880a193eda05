//! `/sessions`: every session, filtered and sorted by what the URL says
//! (state, workspace, node, provider, a failed check, age), so a filtered
//! list can be shared as a link; a plain GET form sets it, no JavaScript.
//! A workspace's and a node's pages show their newest sessions with links
//! into this page, filtered to them ([`scoped`]).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Web;
use super::error::found;
use super::pages::{Shell, ago, node_name, shell};
use crate::protocol::{SessionId, SessionState, SessionSummary};

/// Rows a page shows; the filters narrow the rest.
const PAGE_ROWS: usize = 200;
/// Rows a workspace's or a node's page shows.
const SCOPED_ROWS: usize = 20;

#[derive(Default, Deserialize)]
pub(super) struct SessionFilter {
    #[serde(default)]
    pub(super) state: String,
    #[serde(default)]
    pub(super) workspace: String,
    #[serde(default)]
    pub(super) node: String,
    #[serde(default)]
    pub(super) provider: String,
    /// `1`: only sessions where a check is failing (its latest run failed).
    #[serde(default)]
    pub(super) failed: String,
    /// `1h`, `1d`, `7d`, `30d`: updated within.
    #[serde(default)]
    pub(super) since: String,
    /// `updated` (default), `created`, `title`, `state`.
    #[serde(default)]
    pub(super) sort: String,
}

pub(super) struct Row {
    pub(super) session: SessionSummary,
    pub(super) node: String,
    pub(super) updated: String,
    pub(super) updated_at: String,
    pub(super) failed: Option<String>,
}

/// A workspace's or a node's sessions: the newest rows, and links to
/// `/sessions` filtered to the scope by state and by a failing check.
pub(super) struct Scoped {
    pub(super) rows: Vec<Row>,
    pub(super) total: usize,
    /// `(label, count, link)`, for the states that have sessions.
    pub(super) filters: Vec<(String, usize, String)>,
    /// `/sessions` filtered to the scope.
    pub(super) all: String,
}

/// `sessions` (already the scope's) as a [`Scoped`] list; `scope` is the
/// filter naming it (`workspace=ID`, `node=ID`).
pub(super) fn scoped(web: &Web, mut sessions: Vec<SessionSummary>, scope: &str) -> Scoped {
    let nodes = web.core.node_summaries().unwrap_or_default();
    let failed = web.core.failed_checks().unwrap_or_default();
    sessions.sort_by_key(|session| std::cmp::Reverse(session.updated_at));
    let all = format!("/sessions?{scope}");
    let mut filters: Vec<(String, usize, String)> = SessionState::ALL
        .iter()
        .map(|state| {
            let count = sessions.iter().filter(|session| session.state == *state).count();
            (state.as_str().to_string(), count, format!("{all}&state={}", state.as_str()))
        })
        .filter(|(_, count, _)| *count > 0)
        .collect();
    let failing = sessions.iter().filter(|session| failed.contains_key(&session.id)).count();
    if failing > 0 {
        filters.push(("a check failed".into(), failing, format!("{all}&failed=1")));
    }
    Scoped {
        total: sessions.len(),
        rows: sessions.into_iter().take(SCOPED_ROWS).map(|session| row(session, &nodes, &failed)).collect(),
        filters,
        all,
    }
}

fn row(
    session: SessionSummary,
    nodes: &[crate::protocol::NodeSummary],
    failed: &HashMap<SessionId, Vec<String>>,
) -> Row {
    Row {
        node: node_name(nodes, &session.node),
        updated: ago(session.updated_at),
        updated_at: session.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        failed: failed.get(&session.id).map(|names| names.join(", ")),
        session,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "sessions.html")]
pub(super) struct SessionsPage {
    shell: Shell,
    filter: SessionFilter,
    rows: Vec<Row>,
    /// Sessions the filters matched, before the page's cut.
    matched: usize,
    states: Vec<&'static str>,
    workspaces: Vec<(String, String)>,
    nodes: Vec<(String, String)>,
    providers: Vec<String>,
}

fn within(since: &str) -> Option<i64> {
    match since {
        "1h" => Some(3_600),
        "1d" => Some(86_400),
        "7d" => Some(7 * 86_400),
        "30d" => Some(30 * 86_400),
        _ => None,
    }
}

/// The sessions `filter` keeps, sorted as it asks.
pub(super) fn filtered(
    sessions: Vec<SessionSummary>,
    filter: &SessionFilter,
    failed: &HashMap<SessionId, Vec<String>>,
) -> Vec<SessionSummary> {
    let now = jiff::Timestamp::now();
    let mut kept: Vec<SessionSummary> = sessions
        .into_iter()
        .filter(|session| filter.state.is_empty() || session.state.as_str() == filter.state)
        .filter(|session| filter.workspace.is_empty() || session.workspace_id.as_str() == filter.workspace)
        .filter(|session| filter.node.is_empty() || session.node == filter.node)
        .filter(|session| filter.provider.is_empty() || session.provider == filter.provider)
        .filter(|session| filter.failed.is_empty() || failed.contains_key(&session.id))
        .filter(|session| {
            within(&filter.since).is_none_or(|seconds| (now - session.updated_at).get_seconds() <= seconds)
        })
        .collect();
    match filter.sort.as_str() {
        "created" => kept.sort_by_key(|session| std::cmp::Reverse(session.created_at)),
        "title" => kept.sort_by_key(|session| session.title.to_lowercase()),
        "state" => kept.sort_by(|a, b| a.state.as_str().cmp(b.state.as_str()).then(b.updated_at.cmp(&a.updated_at))),
        _ => kept.sort_by_key(|session| std::cmp::Reverse(session.updated_at)),
    }
    kept
}

pub(super) async fn get_sessions(State(web): State<Arc<Web>>, Query(filter): Query<SessionFilter>) -> Response {
    let sessions = found!(&web, web.core.sessions());
    let nodes = found!(&web, web.core.node_summaries());
    let workspaces = found!(&web, web.core.workspaces());
    let failed = web.core.failed_checks().unwrap_or_default();
    let mut providers: Vec<String> = sessions.iter().map(|session| session.provider.clone()).collect();
    providers.sort();
    providers.dedup();
    let kept = filtered(sessions, &filter, &failed);
    let matched = kept.len();
    let rows = kept.into_iter().take(PAGE_ROWS).map(|session| row(session, &nodes, &failed)).collect();
    SessionsPage {
        shell: shell(&web, vec![("sessions".into(), "/sessions".into())]),
        filter,
        rows,
        matched,
        states: SessionState::ALL.iter().map(|state| state.as_str()).collect(),
        workspaces: workspaces.iter().map(|workspace| (workspace.id.to_string(), workspace.name.clone())).collect(),
        nodes: nodes.iter().map(|node| (node.id.to_string(), node.name.clone())).collect(),
        providers,
    }
    .into_response()
}
