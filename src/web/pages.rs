//! The panel's pages around the `Nodes → Workspaces → Sessions` tree: the
//! dashboard, nodes, workspaces, search and command records. Everything an
//! agent or a node sent is escaped (askama's default): it is untrusted.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Web;
use super::error::found;
use super::urls;
use crate::protocol::{NodeStatus, NodeSummary, SearchHit, SessionState, SessionSummary, Workspace};

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    /// A token was given and refused.
    pub problem: bool,
    /// The page to go to once logged in.
    pub next: String,
}

pub(super) struct TreeSession {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) state: String,
}

pub(super) struct TreeWorkspace {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) sessions: Vec<TreeSession>,
    pub(super) more: usize,
}

pub(super) struct TreeNode {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) status: String,
    pub(super) heartbeat: String,
    pub(super) warnings: Vec<String>,
    pub(super) workspaces: Vec<TreeWorkspace>,
}

/// What every page shows around its content.
pub(super) struct Shell {
    pub(super) exposed: bool,
    pub(super) crumbs: Vec<(String, String)>,
    /// The state of the session in view, shown after the crumbs.
    pub(super) state: Option<String>,
    pub(super) tree: Vec<TreeNode>,
    pub(super) query: String,
    /// The workspace in view, whose sessions a big fleet's tree lists.
    pub(super) focus: String,
    /// Sessions waiting for an approval, counted in the page title.
    pub(super) waiting: usize,
}

/// Sessions shown under each workspace in the tree; the workspace page has
/// them all.
const TREE_SESSIONS: usize = 10;
/// With more workspaces than this, the tree lists sessions only under the
/// workspace being looked at (the others show a count): pages stay small on
/// a big fleet.
const SMALL_FLEET: usize = 50;

pub(super) fn shell(web: &Web, crumbs: Vec<(String, String)>) -> Shell {
    let nodes = web.core.node_summaries().unwrap_or_default();
    let workspaces = web.core.workspaces().unwrap_or_default();
    let sessions = web.core.sessions().unwrap_or_default();
    let focus = crumbs.iter().find_map(|(_, href)| href.strip_prefix("/workspaces/")).map(str::to_string);
    let small = workspaces.len() <= SMALL_FLEET;
    let mut by_workspace: HashMap<&str, Vec<&SessionSummary>> = HashMap::new();
    for session in &sessions {
        by_workspace.entry(session.workspace_id.as_str()).or_default().push(session);
    }
    let tree = nodes
        .iter()
        .map(|node| TreeNode {
            id: node.id.to_string(),
            name: node.name.clone(),
            status: node.status.as_str().to_string(),
            heartbeat: node.last_heartbeat.map(ago).unwrap_or_else(|| "never".into()),
            warnings: node.warnings.clone(),
            workspaces: workspaces
                .iter()
                .filter(|workspace| workspace.node == node.id)
                .map(|workspace| {
                    let sessions = by_workspace.get(workspace.id.as_str()).map(Vec::as_slice).unwrap_or_default();
                    let shown =
                        if small || focus.as_deref() == Some(workspace.id.as_str()) { TREE_SESSIONS } else { 0 };
                    TreeWorkspace {
                        id: workspace.id.to_string(),
                        name: workspace.name.clone(),
                        sessions: sessions
                            .iter()
                            .take(shown)
                            .map(|session| TreeSession {
                                id: session.id.to_string(),
                                title: session.title.clone(),
                                state: session.state.as_str().to_string(),
                            })
                            .collect(),
                        more: sessions.len().saturating_sub(shown),
                    }
                })
                .collect(),
        })
        .collect();
    Shell {
        exposed: web.panel.exposed,
        crumbs,
        tree,
        query: String::new(),
        state: None,
        focus: focus.unwrap_or_default(),
        waiting: sessions.iter().filter(|session| session.state == SessionState::AwaitingApproval).count(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "tree.html")]
pub(super) struct TreeFragment {
    shell: Shell,
}

#[derive(Deserialize)]
pub(super) struct TreeQuery {
    #[serde(default)]
    focus: String,
}

/// The tree alone, for pages to refresh it in place (statuses, new sessions).
pub(super) async fn get_tree(State(web): State<Arc<Web>>, Query(query): Query<TreeQuery>) -> TreeFragment {
    let crumbs = if query.focus.is_empty() { Vec::new() } else { vec![(String::new(), urls::workspace(&query.focus))] };
    TreeFragment { shell: shell(&web, crumbs) }
}

/// How long ago, roughly: "4 s ago", "3 min ago", "2 h ago", "5 d ago";
/// the panel's lists and `cortex session list` alike.
pub fn ago(at: jiff::Timestamp) -> String {
    let seconds = (jiff::Timestamp::now() - at).get_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86400),
    }
}

pub(super) fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{count} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A page that says what went wrong and where to go back to.
#[derive(Template, WebTemplate)]
#[template(path = "problem.html")]
pub(super) struct ProblemPage {
    pub shell: Shell,
    pub title: String,
    pub message: String,
    pub back: String,
}

pub(super) fn problem(web: &Web, status: StatusCode, title: &str, message: String, back: &str) -> Response {
    let page = ProblemPage { shell: shell(web, Vec::new()), title: title.into(), message, back: back.into() };
    (status, page).into_response()
}

pub(super) fn not_found(web: &Web, what: String) -> Response {
    problem(web, StatusCode::NOT_FOUND, "Not found", what, "/")
}

/// The node's name, or its id when Core has forgotten it.
pub(super) fn node_name(nodes: &[NodeSummary], id: &str) -> String {
    nodes.iter().find(|node| node.id == *id).map_or_else(|| id.to_string(), |node| node.name.clone())
}

/// Crumbs `node / workspace` for pages below a workspace.
pub(super) fn workspace_crumbs(web: &Web, workspace_id: &str) -> Vec<(String, String)> {
    let workspaces = web.core.workspaces().unwrap_or_default();
    let Some(workspace) = workspaces.iter().find(|workspace| workspace.id.as_str() == workspace_id) else {
        return Vec::new();
    };
    let nodes = web.core.node_summaries().unwrap_or_default();
    vec![
        (node_name(&nodes, &workspace.node), urls::node(&workspace.node)),
        (workspace.name.clone(), urls::workspace(&workspace.id)),
    ]
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub(super) struct DashboardPage {
    shell: Shell,
    nodes_online: usize,
    nodes_total: usize,
    sessions_total: usize,
    running: usize,
    attention: Vec<(SessionSummary, String)>,
    recent: Vec<SessionSummary>,
    states_svg: Option<String>,
    spend_svg: Option<String>,
}

pub(super) async fn get_dashboard(State(web): State<Arc<Web>>) -> Response {
    let nodes = found!(&web, web.core.node_summaries());
    let sessions = found!(&web, web.core.sessions());
    let failed = web.core.failed_checks().unwrap_or_default();
    let offline: Vec<&str> =
        nodes.iter().filter(|node| node.status != NodeStatus::Online).map(|node| node.id.as_str()).collect();
    let attention = sessions
        .iter()
        .filter_map(|session| {
            let why = match session.state {
                SessionState::AwaitingApproval => "waits for your approval".to_string(),
                SessionState::Failed | SessionState::Interrupted => {
                    session.state_reason.clone().unwrap_or_else(|| session.state.as_str().to_string())
                }
                _ if !session.state.is_final() && offline.contains(&session.node.as_str()) => {
                    format!("its node `{}` is not online", node_name(&nodes, &session.node))
                }
                _ if failed.contains_key(&session.id) => {
                    format!("check failed: {}", failed[&session.id].join(", "))
                }
                _ => return None,
            };
            Some((session.clone(), why))
        })
        .take(50)
        .collect();
    DashboardPage {
        shell: shell(&web, Vec::new()),
        nodes_online: nodes.iter().filter(|node| node.status == NodeStatus::Online).count(),
        nodes_total: nodes.len(),
        sessions_total: sessions.len(),
        running: sessions.iter().filter(|session| session.state.is_busy()).count(),
        attention,
        states_svg: super::usage::states_chart(&sessions),
        spend_svg: super::usage::spend_chart(&web),
        recent: sessions.into_iter().take(20).collect(),
    }
    .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "nodes.html")]
pub(super) struct NodesPage {
    shell: Shell,
    nodes: Vec<NodeSummary>,
    enrolled: Option<(String, String, String)>,
}

impl NodesPage {
    /// The page, with a fresh enrollment `(token, expires, core url)` shown once.
    pub(super) fn new(web: &Web, enrolled: Option<(String, String, String)>) -> NodesPage {
        NodesPage {
            shell: shell(web, vec![("nodes".into(), "/nodes".into())]),
            nodes: web.core.node_summaries().unwrap_or_default(),
            enrolled,
        }
    }
}

pub(super) async fn get_nodes(State(web): State<Arc<Web>>) -> NodesPage {
    NodesPage::new(&web, None)
}

#[derive(Template, WebTemplate)]
#[template(path = "node.html")]
pub(super) struct NodePage {
    shell: Shell,
    node: NodeSummary,
    heartbeat: String,
    memory: String,
    resources: Vec<(String, String)>,
    workspaces: Vec<Workspace>,
    scoped: super::sessions::Scoped,
    events: Vec<(String, String, String)>,
    command_id: String,
}

pub(super) async fn get_node(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let node = found!(&web, web.core.find_node(&id));
    let Some(node) = node else {
        return not_found(&web, format!("No node `{id}`: it may have been removed."));
    };
    let mut resources = Vec::new();
    if let Some(now) = &node.resources {
        resources.push(("load (1 min)".to_string(), format!("{:.2}", now.load1)));
        resources.push((
            "memory free".to_string(),
            format!("{} of {}", bytes(now.free_memory_bytes), bytes(now.total_memory_bytes)),
        ));
        for disk in &now.disks {
            resources.push((
                format!("disk free under {}", disk.path),
                format!("{} of {}", bytes(disk.free_bytes), bytes(disk.total_bytes)),
            ));
        }
    }
    let workspaces: Vec<Workspace> =
        found!(&web, web.core.workspaces()).into_iter().filter(|workspace| workspace.node == node.id).collect();
    let sessions = found!(&web, web.core.sessions()).into_iter().filter(|session| session.node == node.id).collect();
    let scoped = super::sessions::scoped(&web, sessions, &format!("node={}", node.id));
    let page = NodePage {
        shell: shell(&web, vec![(node.name.clone(), urls::node(&node.id))]),
        heartbeat: node.last_heartbeat.map(ago).unwrap_or_else(|| "never".into()),
        memory: node.capabilities.as_ref().map(|caps| bytes(caps.memory_bytes)).unwrap_or_default(),
        resources,
        workspaces,
        scoped,
        events: found!(&web, web.core.node_events(node.id.as_str(), 20)),
        command_id: command_id(),
        node,
    };
    page.into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace.html")]
pub(super) struct WorkspacePage {
    shell: Shell,
    workspace: Workspace,
    node_name: String,
    node_online: bool,
    providers: Vec<String>,
    scoped: super::sessions::Scoped,
    terminals: Vec<crate::core::TerminalSummary>,
    /// What people did here outside sessions, newest first.
    journal: Vec<crate::protocol::JournalEntry>,
    /// The checks its `.cortex/config.toml` declares: `(name, command)`.
    checks: Vec<(String, String)>,
    /// The idempotency key the start form carries: a form sent twice starts
    /// one session.
    command_id: String,
}

pub(super) async fn get_workspace(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let nodes = web.core.node_summaries().unwrap_or_default();
    let node = nodes.iter().find(|node| node.id == workspace.node);
    let mut providers: Vec<String> = node
        .and_then(|node| node.capabilities.as_ref())
        .map(|caps| caps.providers.iter().map(|provider| provider.name.clone()).collect())
        .unwrap_or_default();
    if providers.is_empty() {
        providers.push("fake".into());
    }
    let sessions = web
        .core
        .sessions()
        .unwrap_or_default()
        .into_iter()
        .filter(|session| session.workspace_id == workspace.id)
        .collect();
    let scoped = super::sessions::scoped(&web, sessions, &format!("workspace={}", workspace.id));
    WorkspacePage {
        shell: shell(&web, workspace_crumbs(&web, &id)),
        node_name: node_name(&nodes, &workspace.node),
        node_online: node.is_some_and(|node| node.status == NodeStatus::Online),
        providers,
        scoped,
        terminals: web.core.terminals_of(&workspace.id),
        journal: journal(&web, &workspace).await,
        checks: checks(&web, &workspace).await,
        command_id: command_id(),
        workspace,
    }
    .into_response()
}

/// The workspace journal from its node (empty when the node cannot answer).
async fn journal(web: &Web, workspace: &Workspace) -> Vec<crate::protocol::JournalEntry> {
    let kind = crate::protocol::CommandKind::ReadJournal { workspace_id: workspace.id.clone(), limit: 20 };
    web.command_as::<crate::protocol::reply::JournalRead>("", None, kind)
        .await
        .map(|journal| journal.entries)
        .unwrap_or_default()
}

/// The workspace's configured checks, from its node.
async fn checks(web: &Web, workspace: &Workspace) -> Vec<(String, String)> {
    let kind = crate::protocol::CommandKind::ListChecks { workspace_id: workspace.id.clone() };
    let Ok(list) = web.command_as::<crate::protocol::reply::CheckList>("", None, kind).await else {
        return Vec::new();
    };
    list.checks.into_iter().map(|check| (check.name, check.command)).collect()
}

/// A fresh command id for a form: the form's idempotency key.
pub(super) fn command_id() -> String {
    format!("web_{}", ulid::Ulid::new().to_string().to_lowercase())
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "search.html")]
pub(super) struct SearchPage {
    shell: Shell,
    query: String,
    /// Hits grouped by session, sessions in the order of their best hit.
    groups: Vec<HitGroup>,
    problem: Option<String>,
}

pub(super) struct HitGroup {
    session: String,
    title: String,
    hits: Vec<(SearchHit, Vec<(String, bool)>)>,
}

/// `snippet` cut where it matches a word of `query` (any case): `(text,
/// matched)` pieces the page marks with `<mark>`, escaping each.
fn marked(snippet: &str, query: &str) -> Vec<(String, bool)> {
    let words: Vec<String> = query
        .split_whitespace()
        .map(|word| word.trim_matches('"'))
        .filter(|word| !word.is_empty())
        .map(regex::escape)
        .collect();
    let pattern = (!words.is_empty()).then(|| regex::Regex::new(&format!("(?i){}", words.join("|"))));
    let Some(Ok(pattern)) = pattern else {
        return vec![(snippet.to_string(), false)];
    };
    let mut pieces = Vec::new();
    let mut at = 0;
    for found in pattern.find_iter(snippet) {
        if found.start() > at {
            pieces.push((snippet[at..found.start()].to_string(), false));
        }
        pieces.push((found.as_str().to_string(), true));
        at = found.end();
    }
    if at < snippet.len() {
        pieces.push((snippet[at..].to_string(), false));
    }
    pieces
}

pub(super) async fn get_search(State(web): State<Arc<Web>>, Query(query): Query<SearchQuery>) -> SearchPage {
    let mut shell = shell(&web, vec![("search".into(), "/search".into())]);
    shell.query = query.q.clone();
    let (hits, problem) = if query.q.trim().is_empty() {
        (Vec::new(), None)
    } else {
        match web.core.search(&query.q, 100) {
            Ok(hits) => {
                let titles: HashMap<String, String> = web
                    .core
                    .sessions()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|session| (session.id.to_string(), session.title))
                    .collect();
                let mut groups: Vec<HitGroup> = Vec::new();
                for hit in hits {
                    let session = hit.session_id.to_string();
                    let pieces = marked(&hit.snippet, &query.q);
                    match groups.iter_mut().find(|group| group.session == session) {
                        Some(group) => group.hits.push((hit, pieces)),
                        None => groups.push(HitGroup {
                            title: titles.get(&session).cloned().unwrap_or_default(),
                            session,
                            hits: vec![(hit, pieces)],
                        }),
                    }
                }
                (groups, None)
            }
            Err(error) => (Vec::new(), Some(error.to_string())),
        }
    };
    SearchPage { shell, query: query.q, groups: hits, problem }
}

#[derive(Template, WebTemplate)]
#[template(path = "command.html")]
pub(super) struct CommandPage {
    shell: Shell,
    id: String,
    kind: String,
    node: String,
    created_at: String,
    body: String,
    outcome: String,
}

pub(super) async fn get_command(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let record = found!(&web, web.core.command_record(&id));
    let Some(record) = record else {
        return not_found(&web, format!("No command `{id}` is recorded."));
    };
    let pretty = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| text.to_string())
    };
    let nodes = web.core.node_summaries().unwrap_or_default();
    CommandPage {
        shell: shell(&web, vec![(format!("command {id}"), urls::command(&id))]),
        id,
        kind: record.kind,
        node: record.node_id.map(|node| node_name(&nodes, &node)).unwrap_or_default(),
        created_at: record.created_at,
        body: pretty(&record.body),
        outcome: record
            .outcome
            .map(|outcome| serde_json::to_string_pretty(&outcome).unwrap_or_default())
            .unwrap_or_else(|| "still running".into()),
    }
    .into_response()
}
