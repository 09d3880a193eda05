//! The registries over HTTP: `/api/v1/tools` (dependencies: MCP servers by
//! command or URL, with scope and secret references) and `/api/v1/plugins`
//! (Agent Plugins packages, checked here again whatever the client
//! checked). Core holds what is wanted; nodes will report what is there.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::failure::ApiFailure;
use super::state::{CoreState, lock};
use crate::protocol::{
    CallPlace, CoreFrame, Dependency, EVERY_WORKSPACE, ErrorCode, NodeId, OfferedTool, PROTOCOL_VERSION, PluginPackage,
    Scope, SessionId, SessionSummary, SessionTool, ToolCallRecord, ToolPhase, ToolPlacement, ToolPolicy, ToolState,
    ToolStatus,
};

/// The most calls a tool's history shows.
pub const CALLS_SHOWN: usize = 100;

pub(super) fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/api/v1/tools", get(get_tools).post(post_tool))
        .route("/api/v1/tools/status", get(get_statuses))
        .route("/api/v1/tools/{name}", get(get_tool).delete(delete_tool))
        .route("/api/v1/tools/{name}/policy", axum::routing::put(put_policy))
        .route("/api/v1/plugins", get(get_plugins).post(post_plugin))
        .route("/api/v1/plugins/{name}", get(get_plugin).delete(delete_plugin))
        .route("/api/v1/plugins/{name}/enable", axum::routing::post(post_enable))
        .route("/api/v1/plugins/{name}/disable", axum::routing::post(post_disable))
        .route("/api/v1/tools/trust", axum::routing::post(post_trust))
        .route("/api/v1/tools/{name}/nodes", get(get_placements))
        .route("/api/v1/tools/{name}/calls", get(get_calls))
        .route("/api/v1/sessions/{id}/tools", get(get_session_tools))
}

fn answer<T: serde::Serialize>(result: super::Result<T>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_tools(State(state): State<Arc<CoreState>>) -> Response {
    answer(state.tools())
}

async fn get_tool(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match state.tools() {
        Ok(tools) => match tools.into_iter().find(|tool| tool.name == name) {
            Some(tool) => Json(tool).into_response(),
            None => ApiFailure::not_found(format!("no tool `{name}` (see `cortex tool list`)")).into_response(),
        },
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn post_tool(State(state): State<Arc<CoreState>>, Json(mut tool): Json<Dependency>) -> Response {
    // Only plugins bring plugin tools.
    tool.plugin = None;
    tool.enabled_in = None;
    if let Err(message) = tool.check() {
        return ApiFailure::new(ErrorCode::BadInput, message).into_response();
    }
    // The registry's lock is let go before the nodes are told.
    let added = lock(&state.registry).add_dependency(tool);
    match added {
        Ok(Ok(tool)) => {
            state.push_tools();
            (axum::http::StatusCode::CREATED, Json(tool)).into_response()
        }
        Ok(Err(refused)) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn delete_tool(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    let removed = lock(&state.registry).remove_dependency(&name);
    match removed {
        Ok(Ok(true)) => {
            state.push_tools();
            Json(serde_json::json!({"removed": name})).into_response()
        }
        Ok(Ok(false)) => ApiFailure::not_found(format!("no tool `{name}`")).into_response(),
        Ok(Err(refused)) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

/// `PUT /api/v1/tools/{name}/policy`: the rule for one tool of a server.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    /// The tool's own name, or `*` for every tool without a rule.
    tool: String,
    /// Only there (`node:NAME`, `workspace:NAME`, `session:ID`); everywhere
    /// the tool's scope reaches when absent.
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(flatten)]
    rule: ToolPolicy,
}

async fn put_policy(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    Json(body): Json<PolicyBody>,
) -> Response {
    let valid = !body.tool.is_empty() && body.tool.len() <= 128 && !body.tool.chars().any(char::is_control);
    if !valid {
        return ApiFailure::new(ErrorCode::BadInput, "`tool` is a tool's name or `*`").into_response();
    }
    if body.scope == Some(Scope::All) {
        return ApiFailure::new(ErrorCode::BadInput, "leave `scope` out for a rule everywhere").into_response();
    }
    let set = lock(&state.registry).set_policy(&name, &body.tool, body.rule, body.scope);
    match set {
        Ok(Some(tool)) => {
            state.push_tools();
            Json(tool).into_response()
        }
        Ok(None) => ApiFailure::not_found(format!("no tool `{name}` (see `cortex tool list`)")).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_plugins(State(state): State<Arc<CoreState>>) -> Response {
    answer(state.plugins())
}

async fn get_plugin(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match state.plugins() {
        Ok(plugins) => match plugins.into_iter().find(|plugin| plugin.name == name) {
            Some(plugin) => Json(plugin).into_response(),
            None => ApiFailure::not_found(format!("no plugin `{name}` (see `cortex plugin list`)")).into_response(),
        },
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn post_plugin(State(state): State<Arc<CoreState>>, Json(package): Json<PluginPackage>) -> Response {
    let plugin = match package.check() {
        Ok(plugin) => plugin,
        Err(message) => return ApiFailure::new(ErrorCode::BadInput, message).into_response(),
    };
    let added = lock(&state.registry).add_plugin(plugin, &package);
    match added {
        Ok(Ok(plugin)) => {
            state.push_tools();
            (axum::http::StatusCode::CREATED, Json(plugin)).into_response()
        }
        Ok(Err(refused)) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn delete_plugin(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    let removed = lock(&state.registry).remove_plugin(&name);
    match removed {
        Ok(true) => {
            state.push_tools();
            Json(serde_json::json!({"removed": name})).into_response()
        }
        Ok(false) => ApiFailure::not_found(format!("no plugin `{name}`")).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

/// `POST /api/v1/plugins/{name}/enable` and `/disable`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceBody {
    /// A workspace's name, or `*` for every workspace.
    workspace: String,
}

async fn post_enable(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    Json(body): Json<WorkspaceBody>,
) -> Response {
    set_enabled(&state, &name, &body.workspace, true)
}

async fn post_disable(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    Json(body): Json<WorkspaceBody>,
) -> Response {
    set_enabled(&state, &name, &body.workspace, false)
}

fn set_enabled(state: &Arc<CoreState>, name: &str, workspace: &str, on: bool) -> Response {
    if let Err(message) = crate::protocol::check_workspace_name(workspace) {
        return ApiFailure::new(ErrorCode::BadInput, message).into_response();
    }
    let set = lock(&state.registry).set_plugin_enabled(name, workspace, on);
    match set {
        Ok(Some(Ok(plugin))) => {
            state.push_tools();
            Json(plugin).into_response()
        }
        Ok(Some(Err(refused))) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Ok(None) => ApiFailure::not_found(format!("no plugin `{name}` (see `cortex plugin list`)")).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

/// `POST /api/v1/tools/trust`: `{"workspace": NAME}` trusts the
/// `.cortex/tools.toml` its node reported waiting, exactly as reported.
async fn post_trust(State(state): State<Arc<CoreState>>, Json(body): Json<WorkspaceBody>) -> Response {
    let name = format!("project:{}", body.workspace);
    // Only the node the workspace is bound to speaks for its file.
    let holder = state.workspaces().ok().and_then(|workspaces| {
        workspaces.into_iter().find(|workspace| workspace.name == body.workspace).map(|workspace| workspace.node)
    });
    let waiting = state.tool_statuses().into_iter().find_map(|status| {
        let from_holder = holder.as_deref() == Some(status.node.as_str());
        (from_holder && status.state.name == name && status.state.phase == ToolPhase::Blocked)
            .then_some(status.state.digest?)
    });
    let Some(digest) = waiting else {
        let message = format!(
            "workspace `{}` has no .cortex/tools.toml waiting for trust (see `cortex tool status`)",
            body.workspace
        );
        return ApiFailure::not_found(message).into_response();
    };
    let trusted = lock(&state.registry).trust_tools(&body.workspace, &digest);
    match trusted {
        Ok(()) => {
            state.push_tools();
            Json(serde_json::json!({"workspace": body.workspace, "digest": digest})).into_response()
        }
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_placements(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match state.tool_placements(&name) {
        Ok(Some(placements)) => Json(placements).into_response(),
        Ok(None) => ApiFailure::not_found(format!("no tool `{name}` (see `cortex tool list`)")).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_calls(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    answer(state.tool_calls(&name))
}

async fn get_session_tools(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    match state.session_tools(&id) {
        Ok(Some((_, tools))) => Json(tools).into_response(),
        Ok(None) => ApiFailure::not_found(format!("no session `{id}`")).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_statuses(State(state): State<Arc<CoreState>>) -> Response {
    Json(state.tool_statuses()).into_response()
}

impl CoreState {
    /// The dependencies `node` should run: those for every node, for it by
    /// name, and for the workspaces bound to it. (Session scopes are the
    /// gateway's, per session.)
    pub(crate) fn tools_for(&self, node: &NodeId) -> Vec<Dependency> {
        let name = lock(&self.registry)
            .nodes()
            .ok()
            .and_then(|nodes| nodes.into_iter().find(|record| record.id == *node).map(|record| record.name));
        let workspaces: Vec<String> = self
            .workspaces()
            .unwrap_or_default()
            .into_iter()
            .filter(|workspace| workspace.node == node.as_str())
            .map(|workspace| workspace.name)
            .collect();
        self.tools()
            .unwrap_or_default()
            .into_iter()
            .filter(|tool| match &tool.scope {
                Scope::All => true,
                Scope::Node(wanted) => name.as_deref() == Some(wanted.as_str()) || node.as_str() == wanted,
                Scope::Workspace(wanted) => workspaces.contains(wanted),
                Scope::Session(_) => false,
            })
            // A plugin's server goes where its plugin is enabled: every node
            // in scope (`*`), or those holding a workspace it is enabled in.
            .filter(|tool| match &tool.enabled_in {
                None => true,
                Some(list) => list.iter().any(|name| name == EVERY_WORKSPACE || workspaces.contains(name)),
            })
            .collect()
    }

    /// What `node` is to run: its dependencies, and the project tools files
    /// people trusted.
    pub(crate) fn tools_frame(&self, node: &NodeId) -> CoreFrame {
        let trusted = lock(&self.registry).trusted_tools().unwrap_or_default();
        CoreFrame::Tools { v: PROTOCOL_VERSION, tools: self.tools_for(node), trusted }
    }

    /// Sends every connected node its dependencies again.
    pub(crate) fn push_tools(&self) {
        let links: Vec<(NodeId, tokio::sync::mpsc::Sender<CoreFrame>)> =
            lock(&self.links).iter().map(|(id, link)| (id.clone(), link.tx.clone())).collect();
        for (node, tx) in links {
            let frame = self.tools_frame(&node);
            if tx.try_send(frame).is_err() {
                tracing::warn!(%node, "a node's link is full; it gets its tools on its next connection");
            }
        }
    }

    /// The session that started `id` through Cortex's native tools, and
    /// those `id` started, each with its title and state.
    pub fn lineage(
        &self,
        id: &SessionId,
    ) -> (Option<crate::protocol::SessionSummary>, Vec<crate::protocol::SessionSummary>) {
        let (parent, children) = {
            let registry = lock(&self.registry);
            let parent = registry.parent_of(id.as_str()).ok().flatten().map(|(parent, _)| parent);
            (parent, registry.children_of(id.as_str()).unwrap_or_default())
        };
        let index = lock(&self.index);
        let find = |id: &str| index.resolve_session(id).ok();
        (parent.as_deref().and_then(find), children.iter().filter_map(|child| find(child)).collect())
    }

    /// Every node's last report, by tool then node.
    pub fn tool_statuses(&self) -> Vec<ToolStatus> {
        let names: std::collections::HashMap<String, String> = lock(&self.registry)
            .nodes()
            .unwrap_or_default()
            .into_iter()
            .map(|record| (record.id.to_string(), record.name))
            .collect();
        let mut statuses: Vec<ToolStatus> = lock(&self.tool_states)
            .iter()
            .flat_map(|(node, states)| {
                let node_name = names.get(node.as_str()).cloned().unwrap_or_else(|| node.to_string());
                states.iter().map(move |state| ToolStatus {
                    node: node.to_string(),
                    node_name: node_name.clone(),
                    state: state.clone(),
                })
            })
            .collect();
        statuses.sort_by(|a, b| (&a.state.name, &a.node_name).cmp(&(&b.state.name, &b.node_name)));
        statuses
    }

    /// Where `name` is wanted and what each node reports of it: every node
    /// it is wanted on or reported by, by name. `None`: no such tool.
    pub fn tool_placements(&self, name: &str) -> super::Result<Option<Vec<ToolPlacement>>> {
        Ok(self.all_placements()?.remove(name))
    }

    /// [`CoreState::tool_placements`] of every registry tool, by name: each
    /// node's wanted set is worked out once.
    pub fn all_placements(&self) -> super::Result<std::collections::BTreeMap<String, Vec<ToolPlacement>>> {
        let mut placements: std::collections::BTreeMap<String, Vec<ToolPlacement>> =
            self.tools()?.into_iter().map(|tool| (tool.name, Vec::new())).collect();
        let mut nodes = lock(&self.registry).nodes()?;
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        for record in nodes {
            let wanted = self.tools_for(&record.id);
            for (name, placed) in &mut placements {
                let is_wanted = wanted.iter().any(|tool| tool.name == *name);
                let state = self.reported(&record.id, name);
                if is_wanted || state.is_some() {
                    let (node, node_name) = (record.id.to_string(), record.name.clone());
                    placed.push(ToolPlacement { node, node_name, wanted: is_wanted, state });
                }
            }
        }
        Ok(placements)
    }

    /// What `node` last reported of `name`.
    fn reported(&self, node: &NodeId, name: &str) -> Option<ToolState> {
        lock(&self.tool_states).get(node)?.iter().find(|state| state.name == name).cloned()
    }

    /// The last calls to `name`'s tools through any gateway, newest first.
    pub fn tool_calls(&self, name: &str) -> super::Result<Vec<ToolCallRecord>> {
        Ok(lock(&self.index).tool_calls(name, CALLS_SHOWN)?)
    }

    /// Each registry tool as session `id` sees it: in its scope or not, and
    /// as its node reports it. `None`: no such session.
    pub fn session_tools(&self, id: &str) -> super::Result<Option<(SessionSummary, Vec<SessionTool>)>> {
        let Some((session, _)) = self.session(id)? else { return Ok(None) };
        let node = lock(&self.registry)
            .nodes()?
            .into_iter()
            .find(|node| node.id.as_str() == session.node || node.name == session.node);
        let (node_id, node_name) = match &node {
            Some(node) => (Some(node.id.clone()), node.name.clone()),
            None => (None, session.node.clone()),
        };
        let workspace = self
            .workspaces()?
            .into_iter()
            .find(|workspace| workspace.id == session.workspace_id)
            .map(|workspace| workspace.name);
        let place = CallPlace {
            session: session.id.as_str(),
            workspace: workspace.as_deref(),
            node_name: Some(&node_name),
            node_id: node_id.as_ref().map(NodeId::as_str),
        };
        let tools = self
            .tools()?
            .into_iter()
            .map(|tool| {
                let state = node_id.as_ref().and_then(|node| self.reported(node, &tool.name));
                session_tool(&tool, tool.unavailable_at(&place), state.as_ref(), &node_name, &place)
            })
            .collect();
        Ok(Some((session, tools)))
    }
}

/// One registry tool for a session: out of scope, or as its node reports it.
fn session_tool(
    tool: &Dependency,
    out_of_scope: Option<String>,
    state: Option<&ToolState>,
    node: &str,
    place: &CallPlace<'_>,
) -> SessionTool {
    let (available, why) = match (out_of_scope, state) {
        (Some(why), _) => (false, why),
        (None, None) => (false, format!("node {node} has not reported it: it is offline or still starting it")),
        (None, Some(state)) => {
            let reason = state.reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default();
            match state.phase {
                ToolPhase::Running => (true, format!("running on {node}")),
                ToolPhase::Configured => {
                    (true, format!("stopped on {node} until a session needs it; it starts on first use"))
                }
                phase => (false, format!("{} on {node}{reason}", phase.as_str())),
            }
        }
    };
    let tools = state
        .map(|state| {
            state
                .tools
                .iter()
                .map(|info| {
                    let rule = tool.policy_at(&info.name, place);
                    OfferedTool {
                        name: info.name.clone(),
                        schema_hash: info.schema_hash.clone(),
                        policy: rule.policy,
                        risk: rule.risk,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    SessionTool { name: tool.name.clone(), scope: tool.scope.clone(), available, why, tools }
}
