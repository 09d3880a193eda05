//! The Cortex-native tools behind `/mcp`: what an agent (or any MCP
//! client) may do with Cortex itself. `session_start` runs on any
//! workspace of any node through the same commands as the CLI and the
//! panel; a session started by a node's session is its child.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{Value, json};

use super::mcp::Caller;
use super::state::{CoreState, lock};
use crate::protocol::{Command, CommandKind, PROTOCOL_VERSION, SessionState, SessionSummary};

/// How deep delegation may go: a person's session is depth 0.
pub(super) const MAX_DEPTH: u32 = 3;
/// The most text one answer carries.
const MAX_ANSWER: usize = 256 * 1024;

type Answer = Result<String, String>;

/// Cortex's tools, and one `skill.PLUGIN.NAME` per skill of an installed
/// plugin (it answers the skill's `SKILL.md`); a session is offered only
/// the skills of plugins enabled in its workspace.
pub(super) fn tools(state: &CoreState, caller: Option<&Caller>) -> Vec<Tool> {
    let mut tools = session_tools();
    for (plugin, skill, _) in skills_for(state, caller) {
        let description =
            format!("Skill `{}` from plugin `{plugin}`: {} (answers its SKILL.md)", skill.name, skill.description);
        let name = format!("skill.{plugin}.{}", skill.name);
        let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
        tools.push(Tool::new(name, description, Arc::new(schema.as_object().cloned().unwrap_or_default())));
    }
    tools
}

fn session_tools() -> Vec<Tool> {
    let id = json!({"type": "string", "description": "a session id (a unique prefix is enough)"});
    vec![
        tool(
            "sessions_list",
            "List Cortex sessions, newest first: id, title, state, workspace, node, agent, turns, parent.",
            json!({"state": {"type": "string", "description": "only sessions in this state: idle, running, awaiting_approval, …"},
                   "workspace": {"type": "string", "description": "only sessions of the workspace with this name"}}),
            &[],
        ),
        tool(
            "session_start",
            "Start a session on a workspace (by name, on whichever node it is bound to) with a prompt; returns its id at once. The new session is this one's child.",
            json!({"workspace": {"type": "string", "description": "the workspace's name (`cortex workspace list`)"},
                   "prompt": {"type": "string", "description": "what the new session's agent should do"},
                   "provider": {"type": "string", "description": "the agent: codex, claude, codex-acp, gemini, fake (default: this session's own)"},
                   "title": {"type": "string"}}),
            &["workspace", "prompt"],
        ),
        tool(
            "session_wait",
            "Wait until a session's turn is over (or it waits for a person's approval); returns the session.",
            json!({"session_id": id, "timeout_secs": {"type": "integer", "description": "at most this long (default 600, at most 3600)"}}),
            &["session_id"],
        ),
        tool(
            "session_log",
            "A session's events (messages, commands and their output, checks), oldest first.",
            json!({"session_id": id, "after": {"type": "integer", "description": "only events after this seq"},
                   "limit": {"type": "integer", "description": "at most this many (default and most 200)"}}),
            &["session_id"],
        ),
        tool(
            "session_diff",
            "The unified diff of a session's changes: the whole session, or one turn.",
            json!({"session_id": id, "turn": {"type": "integer"}}),
            &["session_id"],
        ),
    ]
}

fn tool(name: &'static str, description: &'static str, properties: Value, required: &[&str]) -> Tool {
    let schema =
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
    Tool::new(name, description, Arc::new(schema.as_object().cloned().unwrap_or_default()))
}

pub(super) async fn call(state: &Arc<CoreState>, caller: &Caller, name: &str, args: JsonObject) -> CallToolResult {
    let answer = match name {
        "sessions_list" => sessions_list(state, &args),
        "session_start" => session_start(state, caller, &args).await,
        "session_wait" => session_wait(state, &args).await,
        "session_log" => session_log(state, &args),
        "session_diff" => session_diff(state, &args).await,
        _ if name.starts_with("skill.") => skill(state, caller, name),
        _ => Err(format!("no Cortex tool `{name}`")),
    };
    match answer {
        Ok(mut text) => {
            if text.len() > MAX_ANSWER {
                let cut = (0..=MAX_ANSWER).rev().find(|cut| text.is_char_boundary(*cut)).unwrap_or(0);
                text.truncate(cut);
                text.push_str("\n… (cut at 256 KiB)");
            }
            CallToolResult::success(vec![ContentBlock::text(text)])
        }
        Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
    }
}

/// The skills `caller` may have: every installed plugin's for the admin,
/// those of plugins enabled in its session's workspace for a node's session.
fn skills_for(state: &CoreState, caller: Option<&Caller>) -> Vec<(String, crate::protocol::Skill, String)> {
    let skills = lock(&state.registry).skills().unwrap_or_default();
    let Some(Caller::Node { session: Some(session), .. }) = caller else { return skills };
    let workspace = state.session(session).ok().flatten().and_then(|(session, _)| {
        let workspaces = state.workspaces().ok()?;
        workspaces.into_iter().find(|workspace| workspace.id == session.workspace_id).map(|workspace| workspace.name)
    });
    let plugins = state.plugins().unwrap_or_default();
    let enabled = |name: &str| {
        plugins
            .iter()
            .find(|plugin| plugin.name == name)
            .is_some_and(|plugin| crate::protocol::enabled_in(&plugin.enabled, workspace.as_deref()))
    };
    skills.into_iter().filter(|(plugin, _, _)| enabled(plugin)).collect()
}

fn skill(state: &CoreState, caller: &Caller, name: &str) -> Answer {
    let skills = skills_for(state, Some(caller));
    let found = skills.into_iter().find(|(plugin, skill, _)| format!("skill.{plugin}.{}", skill.name) == name);
    found.map(|(_, _, text)| text).ok_or_else(|| {
        format!("no skill `{name}` (its plugin may have been removed, or is not enabled in this workspace)")
    })
}

fn text_arg<'a>(args: &'a JsonObject, name: &str) -> Result<Option<&'a str>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("`{name}` is a string")),
    }
}

fn required<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, String> {
    text_arg(args, name)?.filter(|text| !text.trim().is_empty()).ok_or_else(|| format!("`{name}` is required"))
}

fn number_arg(args: &JsonObject, name: &str) -> Result<Option<u64>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| format!("`{name}` is a whole number")),
    }
}

fn session(state: &CoreState, id: &str) -> Result<SessionSummary, String> {
    match state.session(id) {
        Ok(Some((session, _))) => Ok(session),
        Ok(None) => Err(format!("no session `{id}` (`sessions_list` lists them)")),
        Err(error) => Err(error.to_string()),
    }
}

fn described(state: &CoreState, session: &SessionSummary) -> Value {
    let workspace = state.workspaces().ok().and_then(|workspaces| {
        workspaces.into_iter().find(|workspace| workspace.id == session.workspace_id).map(|workspace| workspace.name)
    });
    let parent = lock(&state.registry).parent_of(session.id.as_str()).ok().flatten();
    json!({"id": session.id, "title": session.title, "state": session.state, "state_reason": session.state_reason,
        "workspace": workspace, "node": session.node, "provider": session.provider, "turns": session.turns,
        "parent": parent.map(|(parent, _)| parent)})
}

fn sessions_list(state: &CoreState, args: &JsonObject) -> Answer {
    let wanted_state = text_arg(args, "state")?.map(str::parse::<SessionState>).transpose()?;
    let workspace = text_arg(args, "workspace")?;
    let sessions = state.sessions().map_err(|error| error.to_string())?;
    let listed: Vec<Value> = sessions
        .iter()
        .filter(|session| wanted_state.is_none_or(|wanted| session.state == wanted))
        .map(|session| described(state, session))
        .filter(|session| workspace.is_none_or(|name| session["workspace"] == name))
        .take(200)
        .collect();
    Ok(serde_json::to_string_pretty(&listed).unwrap_or_default())
}

async fn session_start(state: &Arc<CoreState>, caller: &Caller, args: &JsonObject) -> Answer {
    let name = required(args, "workspace")?;
    let prompt = required(args, "prompt")?.to_string();
    let workspaces = state.workspaces().map_err(|error| error.to_string())?;
    let workspace = workspaces.iter().find(|workspace| workspace.name == name || workspace.id.as_str() == name);
    let Some(workspace) = workspace else {
        let names: Vec<&str> = workspaces.iter().map(|workspace| workspace.name.as_str()).collect();
        return Err(format!("no workspace `{name}`; there are: {}", names.join(", ")));
    };
    let (parent, depth) = match caller {
        Caller::Node { node, session: Some(id) } => {
            let parent = session(state, id)?;
            if parent.node != node.as_str() {
                return Err(format!("session {id} is not on the calling node"));
            }
            let above =
                lock(&state.registry).parent_of(parent.id.as_str()).ok().flatten().map_or(0, |(_, depth)| depth);
            if above + 1 > MAX_DEPTH {
                return Err(format!(
                    "delegation goes at most {MAX_DEPTH} sessions deep, and session {} is at depth {above}",
                    parent.id
                ));
            }
            (Some(parent), above + 1)
        }
        _ => (None, 0),
    };
    let provider = match (text_arg(args, "provider")?, &parent) {
        (Some(provider), _) => provider.to_string(),
        (None, Some(parent)) => parent.provider.clone(),
        (None, None) => return Err("say which agent runs it: `provider` (codex, claude, …)".into()),
    };
    let title = text_arg(args, "title")?.map(str::to_string);
    let command = Command {
        v: PROTOCOL_VERSION,
        id: format!("mcp_{}", ulid::Ulid::new().to_string().to_lowercase()),
        target: None,
        kind: CommandKind::StartSession {
            session_id: None,
            workspace_id: workspace.id.clone(),
            provider,
            script: None,
            prompt,
            title,
            auto_approve: false,
            deny_approvals: false,
            worktree: false,
        },
    };
    let outcome = state.execute(command).await.map_err(|failure| failure.message().to_string())?;
    let accepted = outcome
        .into_reply::<crate::protocol::reply::TurnAccepted>()
        .map_err(|error| format!("{}: {}", error.code.as_str(), error.message))?;
    if let Some(parent) = &parent {
        lock(&state.registry)
            .link_session(accepted.session_id.as_str(), parent.id.as_str(), depth)
            .map_err(|error| error.to_string())?;
    }
    let answer = json!({"session_id": accepted.session_id, "workspace": workspace.name, "node": workspace.node,
        "parent": parent.map(|parent| parent.id), "depth": depth});
    Ok(serde_json::to_string_pretty(&answer).unwrap_or_default())
}

async fn session_wait(state: &Arc<CoreState>, args: &JsonObject) -> Answer {
    let id = required(args, "session_id")?;
    let timeout = Duration::from_secs(number_arg(args, "timeout_secs")?.unwrap_or(600).min(3600));
    let began = Instant::now();
    loop {
        let summary = session(state, id)?;
        let busy = matches!(summary.state, SessionState::Starting | SessionState::Running);
        if !busy || began.elapsed() >= timeout {
            let mut answer = described(state, &summary);
            if busy {
                answer["note"] = json!(format!("still {} after {} s", summary.state, timeout.as_secs()));
            }
            return Ok(serde_json::to_string_pretty(&answer).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn session_log(state: &CoreState, args: &JsonObject) -> Answer {
    let summary = session(state, required(args, "session_id")?)?;
    let after = number_arg(args, "after")?.unwrap_or(0);
    let limit = number_arg(args, "limit")?.unwrap_or(200).clamp(1, 200) as usize;
    let events = state.events_page(&summary.id, after, limit).map_err(|error| error.to_string())?;
    Ok(serde_json::to_string(&events).unwrap_or_default())
}

async fn session_diff(state: &Arc<CoreState>, args: &JsonObject) -> Answer {
    let summary = session(state, required(args, "session_id")?)?;
    let turn = number_arg(args, "turn")?.map(|turn| turn.min(u64::from(u32::MAX)) as u32);
    let command = Command {
        v: PROTOCOL_VERSION,
        id: format!("diff_{}", ulid::Ulid::new().to_string().to_lowercase()),
        target: None,
        kind: CommandKind::ReadDiff { session_id: summary.id, turn, files: false, context: None },
    };
    let outcome = state.execute(command).await.map_err(|failure| failure.message().to_string())?;
    let diff = outcome
        .into_reply::<crate::protocol::reply::DiffRead>()
        .map_err(|error| format!("{}: {}", error.code.as_str(), error.message))?;
    Ok(diff.patch.unwrap_or_default())
}
