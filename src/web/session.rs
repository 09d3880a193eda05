//! A session's pages: its timeline of typed blocks, live over SSE, with the
//! composer and the lifecycle buttons its state allows; one turn; one event
//! with what caused it and what it caused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;
use serde::Deserialize;

use super::Web;
use super::error::{Page, Problem, found, render};
use super::pages::{Shell, command_id, node_name, shell, workspace_crumbs};
use super::urls;
use crate::protocol::{Event, EventKind, SessionId, SessionState, SessionSummary, TurnSummary};

/// Output kept inside one command block; the rest is in the store.
const MAX_BLOCK_OUTPUT: usize = 64 * 1024;

/// One block of a session's timeline.
pub(super) struct Block {
    seq: u64,
    kind: &'static str,
    time: String,
    title: String,
    body: String,
    /// Shown folded (reasoning, command output).
    collapsed: bool,
    /// What this event answers: `(label, href)`.
    cause: Option<(String, String)>,
    /// Where to look next: the diff of its turn, its evidence.
    links: Vec<(String, String)>,
    /// A command's output and end, folded into the block that started it.
    output: String,
    exit: Option<String>,
    folded: Vec<u64>,
    /// A command's block: it has an output and an exit place, filled live.
    command: bool,
    session: String,
    turn: Option<u32>,
}

/// Said once where a command block's output stops.
const MORE_OUTPUT: &str = "\n… (more in the session's events)";

/// What a command block shows of `text` after `shown` bytes of its output:
/// all of it below the cap, the marker once it is reached, then nothing.
/// The page and the live stream both fold output through here, so a
/// block streamed live ends as the reloaded page renders it.
fn shown_output(shown: usize, text: &str) -> String {
    if shown >= MAX_BLOCK_OUTPUT {
        return String::new();
    }
    let mut out = text.to_string();
    if shown + text.len() >= MAX_BLOCK_OUTPUT {
        out.push_str(MORE_OUTPUT);
    }
    out
}

fn cause_link(session: &str, cause: &str) -> (String, String) {
    match cause.strip_prefix("seq:").and_then(|seq| seq.parse::<u64>().ok()) {
        Some(seq) => (format!("answers #{seq}"), format!("{}#event-{seq}", urls::session(session))),
        None => (format!("caused by command {cause}"), urls::command(cause)),
    }
}

fn exit_text(exit_code: Option<i32>, duration_ms: u64) -> String {
    let exit = exit_code.map_or("killed".to_string(), |code| format!("exit {code}"));
    format!("{exit} in {duration_ms} ms")
}

pub(super) fn block(session: &str, event: &Event) -> Block {
    let mut links = Vec::new();
    let turn_diff = |turn: Option<u32>| turn.map(|turn| urls::diff(session, Some(turn)));
    let mut collapsed = false;
    let (title, body) = match &event.kind {
        EventKind::UserMessage { text } => ("you".to_string(), text.clone()),
        EventKind::AssistantMessage { text } => ("agent".to_string(), text.clone()),
        EventKind::Reasoning { text } => {
            collapsed = true;
            ("reasoning".to_string(), text.clone())
        }
        EventKind::CommandStarted { command, .. } => ("command".to_string(), command.clone()),
        EventKind::CommandOutput { text, stream, .. } => {
            collapsed = true;
            (format!("output ({})", format!("{stream:?}").to_lowercase()), text.clone())
        }
        EventKind::CommandFinished { exit_code, duration_ms, .. } => {
            ("command finished".to_string(), exit_text(*exit_code, *duration_ms))
        }
        EventKind::FileChanged { path, change } => {
            if let Some(href) = turn_diff(event.turn) {
                links.push(("see the diff".to_string(), href));
            }
            (format!("file {}", format!("{change:?}").to_lowercase()), path.clone())
        }
        EventKind::ApprovalRequested { prompt, .. } => ("approval requested".to_string(), prompt.clone()),
        EventKind::ApprovalResolved { decision, by, .. } => {
            (format!("{decision:?}").to_lowercase(), format!("answered by {by}"))
        }
        EventKind::Lifecycle { from, to, reason } => {
            let from = from.map(|from| format!("{from} → ")).unwrap_or_default();
            let reason = reason.as_ref().map(|reason| format!(" ({reason})")).unwrap_or_default();
            ("state".to_string(), format!("{from}{to}{reason}"))
        }
        EventKind::Warning { message } => ("warning".to_string(), message.clone()),
        EventKind::Error { message } => ("error".to_string(), message.clone()),
        EventKind::TurnFinished { outcome } => {
            if let Some(turn) = event.turn {
                links.push((format!("turn {turn}"), urls::turn(session, turn)));
            }
            ("turn finished".to_string(), outcome.as_str().to_string())
        }
        EventKind::DiffCaptured { files, insertions, deletions } => {
            if let Some(href) = turn_diff(event.turn) {
                links.push(("see the diff".to_string(), href));
            }
            ("changes".to_string(), format!("{files} file(s), +{insertions} -{deletions}"))
        }
        EventKind::CheckResult { name, passed, exit_code, duration_ms, .. } => {
            links.push(("output".to_string(), format!("{}#check-{}", urls::evidence(session), event.seq)));
            let verdict = if *passed { "passed" } else { "failed" };
            ("check".to_string(), format!("{name} {verdict}: {}", exit_text(*exit_code, *duration_ms)))
        }
        EventKind::CommitCreated { commit, message } => ("commit".to_string(), format!("{commit} {message}")),
        EventKind::Intervention { by, action, path, detail } => {
            let what = [path.as_deref(), detail.as_deref()].into_iter().flatten().collect::<Vec<_>>().join("\n");
            (format!("{by}: {action}"), what)
        }
        EventKind::ReviewComment { by, path, line, text, quote } => {
            let place = line.map_or(path.clone(), |line| format!("{path}:{line}"));
            let quote = quote.as_ref().map(|quote| format!("> {quote}\n")).unwrap_or_default();
            (format!("{by} on {place}"), format!("{quote}{text}"))
        }
        EventKind::ReviewVerdict { by, verdict, reviewed_turn: turn, comments } => {
            let what = match verdict {
                crate::protocol::Verdict::Approve => format!("approved the changes as of turn {turn}"),
                crate::protocol::Verdict::RequestChanges => {
                    format!("requested changes as of turn {turn}; {comments} comments handed back to the agent")
                }
            };
            (format!("review by {by}"), what)
        }
        EventKind::AssistantDelta { text, .. } => ("agent (streaming)".to_string(), text.clone()),
        EventKind::TokenUsage { usage } => {
            ("tokens".to_string(), format!("{} in, {} out", usage.input_tokens, usage.output_tokens))
        }
    };
    let kind = match &event.kind {
        EventKind::CheckResult { passed: false, .. } => "check_failed",
        kind => kind.name(),
    };
    Block {
        seq: event.seq,
        kind,
        time: event.at.strftime("%H:%M:%S").to_string(),
        title,
        body,
        collapsed,
        cause: event.cause.as_deref().map(|cause| cause_link(session, cause)),
        links,
        output: String::new(),
        exit: None,
        folded: Vec::new(),
        command: matches!(event.kind, EventKind::CommandStarted { .. }),
        session: session.to_string(),
        turn: event.turn,
    }
}

/// The blocks of a page: each event once (streamed deltas are left out:
/// the complete message follows), a command's output and end folded into
/// the block that started it.
pub(super) fn blocks<'a>(session: &str, events: impl IntoIterator<Item = &'a Event>) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut commands: HashMap<String, usize> = HashMap::new();
    for event in events {
        match &event.kind {
            EventKind::AssistantDelta { .. } => {}
            EventKind::CommandStarted { command_id, .. } => {
                commands.insert(command_id.clone(), blocks.len());
                blocks.push(block(session, event));
            }
            EventKind::CommandOutput { command_id, text, .. } if commands.contains_key(command_id) => {
                let started = &mut blocks[commands[command_id]];
                let shown = shown_output(started.output.len(), text);
                started.output.push_str(&shown);
                started.folded.push(event.seq);
            }
            EventKind::CommandFinished { command_id, exit_code, duration_ms } if commands.contains_key(command_id) => {
                let started = &mut blocks[commands[command_id]];
                started.exit = Some(exit_text(*exit_code, *duration_ms));
                started.folded.push(event.seq);
            }
            _ => blocks.push(block(session, event)),
        }
    }
    blocks
}

/// The session's state, what may be done now, and the composer.
pub(super) struct Controls {
    session: String,
    state: String,
    reason: Option<String>,
    can_send: bool,
    can_interrupt: bool,
    can_stop: bool,
    can_check: bool,
    /// The pending approval request: `(seq, approval id, what it asks)`.
    approval: Option<(u64, String, String)>,
    command_id: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "controls.html")]
pub(super) struct ControlsFragment {
    pub(super) controls: Controls,
}

/// The turns pane, sent with the controls on the live page and swapped out
/// of band, so the state box and the turns agree.
#[derive(Template)]
#[template(path = "turns_oob.html")]
struct TurnsFragment {
    session: String,
    turns: Vec<TurnSummary>,
}

/// Takes a lifecycle event's state as the session's: the summary Core keeps
/// can trail the events a page has already shown.
fn settle(session: &mut SessionSummary, event: &Event) {
    if let EventKind::Lifecycle { to, reason, .. } = &event.kind {
        session.state = *to;
        session.state_reason = reason.clone();
    }
}

pub(super) fn controls(web: &Web, session: &SessionSummary) -> Controls {
    let state = session.state;
    let approval = if state == SessionState::AwaitingApproval { pending_approval(web, session) } else { None };
    Controls {
        session: session.id.to_string(),
        state: state.as_str().to_string(),
        reason: session.state_reason.clone(),
        can_send: matches!(
            state,
            SessionState::Idle | SessionState::Interrupted | SessionState::Stopped | SessionState::Expired
        ),
        can_interrupt: state.can_become(SessionState::Interrupted),
        can_stop: state.can_become(SessionState::Stopped),
        can_check: matches!(state, SessionState::Idle | SessionState::Interrupted | SessionState::Stopped),
        approval,
        command_id: command_id(),
    }
}

fn pending_approval(web: &Web, session: &SessionSummary) -> Option<(u64, String, String)> {
    let events = web.core.approval_events(&session.id).ok()?;
    let mut pending: Option<(u64, String, String)> = None;
    for event in &events {
        match &event.kind {
            EventKind::ApprovalRequested { approval_id, prompt } => {
                pending = Some((event.seq, approval_id.clone(), prompt.clone()));
            }
            EventKind::ApprovalResolved { approval_id, .. }
                if pending.as_ref().is_some_and(|(_, id, _)| id == approval_id) =>
            {
                pending = None;
            }
            _ => {}
        }
    }
    pending
}

/// Events a session page shows at first; `?all` shows every one.
const PAGE_EVENTS: usize = 500;
/// "The whole session" shows at most this many (the latest); the API and
/// the CLI read the rest in pages.
const ALL_EVENTS: usize = 20_000;
/// A turn page shows at most this many of its events (the first).
const TURN_EVENTS: usize = 5_000;

#[derive(Deserialize)]
pub(super) struct SessionQuery {
    all: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "session.html")]
pub(super) struct SessionPage {
    shell: Shell,
    /// Earlier events left out of a long session's page.
    earlier: u64,
    session: SessionSummary,
    node_name: String,
    turns: Vec<TurnSummary>,
    blocks: Vec<Block>,
    controls: Controls,
    last_seq: u64,
}

pub(super) fn session_crumbs(web: &Web, session: &SessionSummary) -> Vec<(String, String)> {
    let mut crumbs = workspace_crumbs(web, session.workspace_id.as_str());
    crumbs.push((session.title.clone(), urls::session(&session.id)));
    crumbs
}

pub(super) async fn get_session(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Query(query): Query<SessionQuery>,
) -> Response {
    render(&web, session_page(&web, &id, query))
}

fn session_page(web: &Web, id: &str, query: SessionQuery) -> Page {
    let (mut session, turns) = web.find_session(id)?;
    // Only the events shown are read: a long session is never loaded whole.
    let shown = if query.all.is_some() { ALL_EVENTS } else { PAGE_EVENTS };
    let (events, earlier) = web.core.tail_events(&session.id, shown)?;
    let last_seq = events.last().map_or(0, |event| event.seq);
    if let Some(last) = events.iter().rev().find(|event| matches!(event.kind, EventKind::Lifecycle { .. })) {
        settle(&mut session, last);
    }
    let nodes = web.core.node_summaries()?;
    let mut shell = shell(web, session_crumbs(web, &session));
    shell.state = Some(session.state.as_str().to_string());
    Ok(SessionPage {
        shell,
        node_name: node_name(&nodes, &session.node),
        blocks: blocks(session.id.as_str(), &events),
        earlier,
        controls: controls(web, &session),
        last_seq,
        turns,
        session,
    }
    .into_response())
}

#[derive(Template)]
#[template(path = "block.html")]
struct BlockFragment<'a> {
    item: &'a Block,
}

#[derive(Deserialize)]
pub(super) struct LiveQuery {
    after: Option<u64>,
}

/// The live timeline: each new event as a rendered block (SSE event
/// `block`, its seq as the SSE id), and fresh controls (`controls`) when the
/// state may have changed. A reconnect resumes after `Last-Event-ID` or
/// `after`, whichever is later: no gap, no duplicate.
pub(super) async fn get_live(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> Response {
    let (session, _) = found!(&web, web.find_session(&id));
    let last_event_id =
        headers.get("last-event-id").and_then(|value| value.to_str().ok()).and_then(|value| value.parse().ok());
    let after = last_event_id.max(query.after).unwrap_or(0);
    let session_id = session.id.clone();
    let mut lifecycle: Option<Event> = None;
    // Commands whose block may be on the page: command id → (its block's
    // seq, output bytes the block shows).
    let mut commands: HashMap<String, (u64, usize)> = HashMap::new();
    let live = web.core.follow(session.id.clone(), after).flat_map(move |event| {
        let mut out: Vec<Result<SseEvent, Infallible>> = Vec::new();
        if !matches!(event.kind, EventKind::AssistantDelta { .. }) {
            let item = block(session_id.as_str(), &event);
            let html = BlockFragment { item: &item }.render().unwrap_or_default();
            let folded = match &event.kind {
                EventKind::CommandStarted { command_id, .. } => {
                    commands.insert(command_id.clone(), (event.seq, 0));
                    None
                }
                EventKind::CommandOutput { command_id, .. } | EventKind::CommandFinished { command_id, .. } => {
                    let known = match commands.get(command_id) {
                        Some(known) => Some(*known),
                        None => command_so_far(&web, &session_id, command_id, after),
                    };
                    known.map(|(started, shown)| {
                        let (append, exit) = match &event.kind {
                            EventKind::CommandOutput { text, .. } => (shown_output(shown, text), None),
                            EventKind::CommandFinished { exit_code, duration_ms, .. } => {
                                (String::new(), Some(exit_text(*exit_code, *duration_ms)))
                            }
                            _ => unreachable!("matched above"),
                        };
                        commands.insert(command_id.clone(), (started, shown + append.len()));
                        serde_json::json!({ "command": started, "append": append, "exit": exit, "block": html })
                    })
                }
                _ => None,
            };
            out.push(Ok(match folded {
                // Into the command's block when the page has it; else a block of its own.
                Some(fold) => SseEvent::default().id(event.seq.to_string()).event("output").data(fold.to_string()),
                None => SseEvent::default().id(event.seq.to_string()).event("block").data(html),
            }));
        }
        let may_change_state = matches!(
            event.kind,
            EventKind::Lifecycle { .. }
                | EventKind::ApprovalRequested { .. }
                | EventKind::ApprovalResolved { .. }
                | EventKind::TurnFinished { .. }
        );
        if matches!(event.kind, EventKind::Lifecycle { .. }) {
            lifecycle = Some(event.clone());
        }
        if may_change_state && let Ok(Some((mut session, turns))) = web.core.session(session_id.as_str()) {
            if let Some(lifecycle) = &lifecycle {
                settle(&mut session, lifecycle);
            }
            let mut html = ControlsFragment { controls: controls(&web, &session) }.render().unwrap_or_default();
            let pane = TurnsFragment { session: session.id.to_string(), turns };
            html.push_str(&pane.render().unwrap_or_default());
            out.push(Ok(SseEvent::default().event("controls").data(html)));
        }
        stream::iter(out)
    });
    Sse::new(live).keep_alive(KeepAlive::default()).into_response()
}

/// A command started before a live stream's `after`: its block's seq and
/// the output bytes the page shows of it, folded as the page folds them.
fn command_so_far(web: &Web, session: &SessionId, command_id: &str, after: u64) -> Option<(u64, usize)> {
    let started =
        web.core.events_of_kind(session, "command_started").ok()?.into_iter().find(
            |event| matches!(&event.kind, EventKind::CommandStarted { command_id: id, .. } if id == command_id),
        )?;
    let turn = started.turn?;
    let events = web.core.turn_events(session, turn, TURN_EVENTS).ok()?;
    let shown = blocks(session.as_str(), events.iter().filter(|event| event.seq <= after));
    let block = shown.iter().find(|block| block.seq == started.seq)?;
    Some((started.seq, block.output.len()))
}

#[derive(Template, WebTemplate)]
#[template(path = "turn.html")]
pub(super) struct TurnPage {
    shell: Shell,
    session: SessionSummary,
    turn: TurnSummary,
    blocks: Vec<Block>,
    /// More events than are shown.
    cut: bool,
}

pub(super) async fn get_turn(State(web): State<Arc<Web>>, Path((id, number)): Path<(String, u32)>) -> Response {
    render(&web, turn_page(&web, &id, number))
}

fn turn_page(web: &Web, id: &str, number: u32) -> Page {
    let (session, turns) = web.find_session(id)?;
    let Some(turn) = turns.into_iter().find(|turn| turn.turn == number) else {
        return Err(Problem::NotFound(format!("Session `{id}` has no turn {number}.")));
    };
    let events = web.core.turn_events(&session.id, number, TURN_EVENTS + 1)?;
    let cut = events.len() > TURN_EVENTS;
    let mut crumbs = session_crumbs(web, &session);
    crumbs.push((format!("turn {number}"), urls::turn(&session.id, number)));
    Ok(TurnPage {
        shell: shell(web, crumbs),
        cut,
        blocks: blocks(session.id.as_str(), events.iter().take(TURN_EVENTS)),
        session,
        turn,
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "event.html")]
pub(super) struct EventPage {
    shell: Shell,
    session: SessionSummary,
    item: Block,
    caused: Vec<Block>,
    json: String,
}

pub(super) async fn get_event(State(web): State<Arc<Web>>, Path((id, seq)): Path<(String, u64)>) -> Response {
    render(&web, event_page(&web, &id, seq))
}

fn event_page(web: &Web, id: &str, seq: u64) -> Page {
    let (session, _) = web.find_session(id)?;
    // The event and what follows it: what it caused comes after it.
    let events = web.core.events_page(&session.id, seq.saturating_sub(1), 5_000)?;
    let Some(event) = events.iter().find(|event| event.seq == seq) else {
        return Err(Problem::NotFound(format!("Session `{id}` has no event #{seq}.")));
    };
    let reference = format!("seq:{seq}");
    let caused = events
        .iter()
        .filter(|other| other.cause.as_deref() == Some(reference.as_str()))
        .map(|other| block(session.id.as_str(), other))
        .collect();
    let mut crumbs = session_crumbs(web, &session);
    crumbs.push((format!("#{seq}"), urls::event(&session.id, seq)));
    Ok(EventPage {
        shell: shell(web, crumbs),
        item: block(session.id.as_str(), event),
        caused,
        json: serde_json::to_string_pretty(event).unwrap_or_default(),
        session,
    }
    .into_response())
}
