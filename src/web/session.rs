//! A session's pages: its timeline of typed blocks, live over SSE, with the
//! composer and the lifecycle buttons its state allows; one turn; one event
//! with what caused it and what it caused.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
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
use super::timeline::{Block, TurnHead, block, blocks, exit_text, grouped, shown_output};
use super::urls;
use crate::protocol::{Event, EventKind, SessionId, SessionState, SessionSummary, TurnSummary};

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
    /// The session that started this one through Cortex's tools, if any.
    parent: Option<SessionSummary>,
    /// The sessions this one started.
    children: Vec<SessionSummary>,
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
    let (parent, children) = web.core.lineage(&session.id);
    Ok(SessionPage {
        parent,
        children,
        shell,
        node_name: node_name(&nodes, &session.node),
        blocks: grouped(session.id.as_str(), &events),
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
    // Commands seen: command id → (its block's seq, output bytes the block
    // shows), or `None` for one with no block to fold into (looked up once,
    // not again for each of its output lines).
    let mut commands: HashMap<String, Option<(u64, usize)>> = HashMap::new();
    // Each turn's header as the page has it.
    let mut heads: HashMap<u32, TurnHead> = HashMap::new();
    let live = web.core.follow(session.id.clone(), after).flat_map(move |event| {
        let mut out: Vec<Result<SseEvent, Infallible>> = Vec::new();
        if !matches!(event.kind, EventKind::AssistantDelta { .. }) {
            let item = block(session_id.as_str(), &event);
            let mut html = BlockFragment { item: &item }.render().unwrap_or_default();
            if let Some(turn) = event.turn {
                let (head, new) = match heads.entry(turn) {
                    Entry::Occupied(known) => (known.into_mut(), false),
                    Entry::Vacant(place) => {
                        let (head, on_page) = head_so_far(&web, &session_id, turn, after);
                        (place.insert(head), !on_page)
                    }
                };
                let changed = head.take(&event);
                if new {
                    // A new turn: its header goes before its first event.
                    html.insert_str(0, &HeadFragment { head }.render().unwrap_or_default());
                } else if changed {
                    let replace = TurnHead { oob: true, ..head.clone() };
                    html.push_str(&HeadFragment { head: &replace }.render().unwrap_or_default());
                }
            }
            let folded = match &event.kind {
                EventKind::CommandStarted { command_id, .. } => {
                    commands.insert(command_id.clone(), Some((event.seq, 0)));
                    None
                }
                EventKind::CommandOutput { command_id, .. } | EventKind::CommandFinished { command_id, .. } => {
                    let known = *commands
                        .entry(command_id.clone())
                        .or_insert_with(|| command_so_far(&web, &session_id, command_id, after));
                    known.map(|(started, shown)| {
                        let (append, exit) = match &event.kind {
                            EventKind::CommandOutput { text, .. } => (shown_output(shown, text), None),
                            EventKind::CommandFinished { exit_code, duration_ms, .. } => {
                                (String::new(), Some(exit_text(*exit_code, *duration_ms)))
                            }
                            _ => unreachable!("matched above"),
                        };
                        commands.insert(command_id.clone(), Some((started, shown + append.len())));
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

/// The header of turn `turn` as a page rendered up to `after` shows it,
/// and whether the page has it at all.
fn head_so_far(web: &Web, session: &SessionId, turn: u32, after: u64) -> (TurnHead, bool) {
    let mut head = TurnHead::new(session.as_str(), turn);
    let events = web.core.turn_events(session, turn, TURN_EVENTS).unwrap_or_default();
    let mut on_page = false;
    for event in events.iter().filter(|event| event.seq <= after) {
        on_page = true;
        head.take(event);
    }
    (head, on_page)
}

#[derive(Template)]
#[template(path = "turn_head.html")]
struct HeadFragment<'a> {
    head: &'a TurnHead,
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
