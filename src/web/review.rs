//! Review: a turn's or a whole session's diff (file list with counts,
//! unified or side by side, large files folded, binary files named, every
//! hunk linkable and traced back to its turn), and the evidence of each
//! turn: its checks with their output. Core never reads a workspace: the
//! node that owns the session answers.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Web;
use super::auth::Viewer;
use super::diff::{FileView, PAGE_HIGHLIGHT_LINES, TreeDir, Viewing, file_view, tree};
use super::error::found;
use super::highlight::Budget;
use super::pages::{Shell, not_found, shell};
use super::session::session_crumbs;
use super::urls;
use crate::protocol::reply::DiffRead;
use crate::protocol::{
    CommandKind, EventKind, FileDiff, SessionId, SessionSummary, TurnSummary, comment_place, open_review_comments,
    viewed_files,
};

/// Asks the session's node; `Err` says why it could not answer.
pub(super) async fn ask<T: serde::de::DeserializeOwned>(web: &Web, kind: CommandKind) -> Result<T, String> {
    web.command_as("", None, kind).await.map_err(|refused| refused.message)
}

#[derive(Template, WebTemplate)]
#[template(path = "diff.html")]
pub(super) struct DiffPage {
    shell: Shell,
    session: SessionSummary,
    turn: Option<u32>,
    turns: Vec<TurnSummary>,
    split: bool,
    /// This page without the view choice.
    here: String,
    files: Vec<FileView>,
    /// The files by folder, beside the diff.
    tree: Vec<TreeDir>,
    viewed_count: usize,
    /// The context choices: `(label, link, chosen)`.
    contexts: Vec<(&'static str, String, bool)>,
    /// This page's view choices as its own links keep them.
    keep: String,
    insertions: u64,
    deletions: u64,
    /// The `diff_captured` event of the turn shown.
    captured: Option<u64>,
    problem: Option<String>,
    /// The review form's command id, minted with the page.
    command_id: String,
    /// The commit form's command id.
    commit_command_id: String,
    /// Comments a request for changes would hand back: `(place, text)`.
    open_comments: Vec<(String, String)>,
    /// The file and line the review form starts on (a line's link).
    comment_on: Option<String>,
    comment_line: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    view: Option<String>,
    /// Lines of context around each change (3 by default).
    context: Option<u32>,
    /// A line's or a hunk's "comment" link: the review form starts on this
    /// file and line (`42`) or lines (`40-52`).
    path: Option<String>,
    line: Option<String>,
}

/// The context a page may ask for: a few lines, a screenful, the file.
const CONTEXTS: [(&str, u32); 4] =
    [("3 lines", 3), ("10", 10), ("25", 25), ("whole file", crate::protocol::DIFF_CONTEXT_MAX)];

pub(super) async fn get_session_diff(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Response {
    diff_page(&web, &viewer, &id, None, query).await
}

pub(super) async fn get_turn_diff(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path((id, turn)): Path<(String, u32)>,
    Query(query): Query<DiffQuery>,
) -> Response {
    diff_page(&web, &viewer, &id, Some(turn), query).await
}

async fn diff_page(web: &Web, viewer: &Viewer, id: &str, turn: Option<u32>, query: DiffQuery) -> Response {
    let (session, turns) = found!(web, web.find_session(id));
    if let Some(number) = turn
        && !turns.iter().any(|turn| turn.turn == number)
    {
        return not_found(web, format!("Session `{id}` has no turn {number}."));
    }
    let here = match turn {
        Some(turn) => urls::diff(&session.id, Some(turn)),
        None => urls::diff(&session.id, None),
    };
    let mut crumbs = session_crumbs(web, &session);
    crumbs.push((turn.map_or("all changes".into(), |turn| format!("turn {turn} diff")), here.clone()));
    let split = query.view.as_deref() == Some("split");
    let context = query.context.filter(|lines| *lines != crate::protocol::DIFF_CONTEXT);
    let kind = CommandKind::ReadDiff { session_id: session.id.clone(), turn, files: true, context };
    let (files, problem): (Vec<FileDiff>, _) = match ask::<DiffRead>(web, kind).await {
        Ok(diff) => (diff.files.unwrap_or_default(), None),
        Err(message) => (Vec::new(), Some(message)),
    };
    let open_comments = open_comments(web, &session.id);
    let captured = turn.and_then(|turn| {
        let events = web.core.events_of_kind(&session.id, "diff_captured").ok()?;
        events.iter().find(|event| event.turn == Some(turn)).map(|event| event.seq)
    });
    let mut budget = Budget(PAGE_HIGHLIGHT_LINES);
    let view = if split { "view=split&" } else { "" };
    let keep = match context {
        Some(lines) => format!("{view}context={lines}&"),
        None => view.to_string(),
    };
    let viewed = viewed_by(web, &session.id, &viewer.0);
    let viewing = Viewing { split, keep: &keep, viewed: &viewed };
    let files: Vec<FileView> = files
        .into_iter()
        .enumerate()
        .map(|(index, file)| file_view(session.id.as_str(), index + 1, file, &viewing, &mut budget))
        .collect();
    let contexts = CONTEXTS
        .iter()
        .map(|(label, lines)| {
            let chosen = context.unwrap_or(crate::protocol::DIFF_CONTEXT) == *lines;
            let link = if *lines == crate::protocol::DIFF_CONTEXT {
                format!("?{view}")
            } else {
                format!("?{view}context={lines}")
            };
            (*label, link, chosen)
        })
        .collect();
    let comment_on = query.path.filter(|path| files.iter().any(|file| &file.path == path));
    let comment_line =
        query.line.as_deref().and_then(|text| crate::protocol::parse_lines(text).ok()).map(|lines| match lines {
            (line, Some(end)) => format!("{line}-{end}"),
            (line, None) => line.to_string(),
        });
    DiffPage {
        shell: shell(web, crumbs),
        insertions: files.iter().map(|file| file.insertions).sum(),
        deletions: files.iter().map(|file| file.deletions).sum(),
        split,
        comment_line: comment_on.as_ref().and(comment_line),
        comment_on,
        tree: tree(&files),
        viewed_count: files.iter().filter(|file| file.viewed).count(),
        contexts,
        keep,
        turn,
        turns,
        here,
        files,
        captured,
        problem,
        session,
        command_id: super::pages::command_id(),
        commit_command_id: super::pages::command_id(),
        open_comments,
    }
    .into_response()
}

/// The files `name` marked viewed in the session: `path` → turn.
fn viewed_by(web: &Web, session: &SessionId, name: &str) -> HashMap<String, u32> {
    let events = web.core.events_of_kind(session, "review_viewed").unwrap_or_default();
    viewed_files(&events, name)
}

/// The session's open review comments, by the same rule the node applies.
fn open_comments(web: &Web, session: &SessionId) -> Vec<(String, String)> {
    let mut events = Vec::new();
    for kind in ["review_comment", "review_verdict"] {
        events.extend(web.core.events_of_kind(session, kind).unwrap_or_default());
    }
    events.sort_by_key(|event| event.seq);
    open_review_comments(&events)
        .filter_map(|event| match &event.kind {
            EventKind::ReviewComment { path, line, end_line, text, by, .. } => {
                Some((format!("{} ({by})", comment_place(path, *line, *end_line)), text.clone()))
            }
            _ => None,
        })
        .collect()
}
