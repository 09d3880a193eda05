//! `/tools`: the Tool Registry and the Plugin Registry as Core holds them
//! (what is wanted on the nodes): each tool's server, scope, the secrets
//! it needs and the plugin it came with, against what each node reports;
//! each plugin's servers and skills. `/tools/{name}`: one tool on every
//! node, its tools and rules, and its calls. `/sessions/{id}/tools`: what a
//! session is offered, and why a tool is not.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::Web;
use super::error::found;
use super::pages::{Shell, not_found, shell};
use super::session::session_crumbs;
use super::urls;
use crate::protocol::{Dependency, Plugin, SessionSummary, SessionTool, ToolCallRecord, ToolPlacement, ToolStatus};

/// A registry tool with where it is wanted and what each node reports.
struct ToolRow {
    tool: Dependency,
    placements: Vec<ToolPlacement>,
}

#[derive(Template, WebTemplate)]
#[template(path = "tools.html")]
pub(super) struct ToolsPage {
    shell: Shell,
    rows: Vec<ToolRow>,
    /// Reported by nodes, not in the registry: projects' own tools.
    unlisted: Vec<ToolStatus>,
    plugins: Vec<Plugin>,
}

fn tools_crumbs() -> Vec<(String, String)> {
    vec![("tools".to_string(), "/tools".to_string())]
}

pub(super) async fn get_tools(State(web): State<Arc<Web>>) -> Response {
    let tools = found!(&web, web.core.tools());
    let plugins = found!(&web, web.core.plugins());
    let mut placements = found!(&web, web.core.all_placements());
    let rows: Vec<ToolRow> = tools
        .into_iter()
        .map(|tool| ToolRow { placements: placements.remove(&tool.name).unwrap_or_default(), tool })
        .collect();
    let mut unlisted = web.core.tool_statuses();
    unlisted.retain(|status| !rows.iter().any(|row| row.tool.name == status.state.name));
    ToolsPage { shell: shell(&web, tools_crumbs()), rows, unlisted, plugins }.into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "tool.html")]
pub(super) struct ToolPage {
    shell: Shell,
    name: String,
    /// None: a project's own tool, known from nodes' reports and calls.
    tool: Option<Dependency>,
    placements: Vec<ToolPlacement>,
    calls: Vec<ToolCallRecord>,
    shown: usize,
}

pub(super) async fn get_tool(State(web): State<Arc<Web>>, Path(name): Path<String>) -> Response {
    let tool = found!(&web, web.core.tools()).into_iter().find(|tool| tool.name == name);
    let placements = match &tool {
        Some(_) => found!(&web, web.core.tool_placements(&name)).unwrap_or_default(),
        None => web
            .core
            .tool_statuses()
            .into_iter()
            .filter(|status| status.state.name == name)
            .map(|status| ToolPlacement {
                node: status.node,
                node_name: status.node_name,
                wanted: false,
                state: Some(status.state),
            })
            .collect(),
    };
    let calls = found!(&web, web.core.tool_calls(&name));
    if tool.is_none() && placements.is_empty() && calls.is_empty() {
        return not_found(&web, format!("No tool `{name}`: see the registry's tools."));
    }
    let mut crumbs = tools_crumbs();
    crumbs.push((name.clone(), urls::tool(&name)));
    let shown = crate::core::CALLS_SHOWN;
    ToolPage { shell: shell(&web, crumbs), name, tool, placements, calls, shown }.into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "session_tools.html")]
pub(super) struct SessionToolsPage {
    shell: Shell,
    session: SessionSummary,
    tools: Vec<SessionTool>,
}

pub(super) async fn get_session_tools(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let Some((session, tools)) = found!(&web, web.core.session_tools(&id)) else {
        return not_found(&web, format!("No session `{id}`."));
    };
    let mut crumbs = session_crumbs(&web, &session);
    crumbs.push(("tools".to_string(), urls::session_tools(&session.id)));
    SessionToolsPage { shell: shell(&web, crumbs), session, tools }.into_response()
}

/// A schema hash's first 12 characters (a node's report may be shorter).
pub(super) fn short(hash: &str) -> &str {
    hash.char_indices().nth(12).map_or(hash, |(end, _)| &hash[..end])
}

/// A schema as indented JSON, for reading.
pub(super) fn pretty(schema: &serde_json::Value) -> String {
    serde_json::to_string_pretty(schema).unwrap_or_default()
}
