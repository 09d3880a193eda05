//! Review: a turn's or a whole session's diff (file list with counts,
//! unified or side by side, large files folded, binary files named, every
//! hunk linkable and traced back to its turn), and the evidence of each
//! turn: its checks with their output. Core never reads a workspace: the
//! node that owns the session answers.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Web;
use super::error::found;
use super::pages::{Shell, not_found, shell};
use super::session::session_crumbs;
use super::urls;
use crate::protocol::reply::{DiffRead, SessionFileRead};
use crate::protocol::{CheckSummary, CommandKind, DiffHunk, FileDiff, SessionSummary, TurnSummary};

/// Files with more changed lines than this start folded.
const FOLD_LINES: u64 = 400;

/// Asks the session's node; `Err` says why it could not answer.
async fn ask<T: serde::de::DeserializeOwned>(web: &Web, kind: CommandKind) -> Result<T, String> {
    web.command_as("", None, kind).await.map_err(|refused| refused.message)
}

pub(super) struct Cell {
    number: String,
    text: String,
    class: &'static str,
}

pub(super) struct Row {
    class: &'static str,
    sign: char,
    old: String,
    new: String,
    text: String,
}

pub(super) struct HunkView {
    anchor: String,
    header: String,
    rows: Vec<Row>,
    pairs: Vec<(Option<Cell>, Option<Cell>)>,
}

pub(super) struct FileView {
    anchor: String,
    path: String,
    old_path: Option<String>,
    status: &'static str,
    binary: bool,
    too_large: bool,
    insertions: u64,
    deletions: u64,
    open: bool,
    hunks: Vec<HunkView>,
    /// `(turn, link to that turn's diff)`.
    turns: Vec<(u32, String)>,
}

fn number(value: Option<u32>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

fn class_of(tag: char) -> &'static str {
    match tag {
        '+' => "add",
        '-' => "del",
        _ => "ctx",
    }
}

/// Side by side: context on both sides; within a change, the n-th removed
/// line faces the n-th added one.
fn pairs(hunk: &DiffHunk) -> Vec<(Option<Cell>, Option<Cell>)> {
    let cell = |line: &crate::protocol::DiffLine, number: Option<u32>| Cell {
        number: self::number(number),
        text: line.text.clone(),
        class: class_of(line.tag),
    };
    let mut out = Vec::new();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let flush = |removed: &mut Vec<Cell>, added: &mut Vec<Cell>, out: &mut Vec<(Option<Cell>, Option<Cell>)>| {
        let count = removed.len().max(added.len());
        let mut removed = removed.drain(..);
        let mut added = added.drain(..);
        for _ in 0..count {
            out.push((removed.next(), added.next()));
        }
    };
    for line in &hunk.lines {
        match line.tag {
            '-' => removed.push(cell(line, line.old)),
            '+' => added.push(cell(line, line.new)),
            _ => {
                flush(&mut removed, &mut added, &mut out);
                out.push((Some(cell(line, line.old)), Some(cell(line, line.new))));
            }
        }
    }
    flush(&mut removed, &mut added, &mut out);
    out
}

fn file_view(session: &str, index: usize, file: FileDiff) -> FileView {
    let hunks = file
        .hunks
        .iter()
        .enumerate()
        .map(|(number, hunk)| HunkView {
            anchor: format!("f{index}-h{}", number + 1),
            header: format!("@@ -{},{} +{},{} @@", hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines),
            rows: hunk
                .lines
                .iter()
                .map(|line| Row {
                    class: class_of(line.tag),
                    sign: line.tag,
                    old: self::number(line.old),
                    new: self::number(line.new),
                    text: line.text.clone(),
                })
                .collect(),
            pairs: pairs(hunk),
        })
        .collect();
    FileView {
        anchor: format!("f{index}"),
        open: !file.binary && !file.too_large && file.insertions + file.deletions <= FOLD_LINES,
        status: file.status.as_str(),
        binary: file.binary,
        too_large: file.too_large,
        insertions: file.insertions,
        deletions: file.deletions,
        turns: file.turns.iter().map(|turn| (*turn, urls::diff(session, Some(*turn)))).collect(),
        path: file.path,
        old_path: file.old_path,
        hunks,
    }
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
    insertions: u64,
    deletions: u64,
    /// The `diff_captured` event of the turn shown.
    captured: Option<u64>,
    problem: Option<String>,
    /// The review form's command id, minted with the page.
    command_id: String,
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    view: Option<String>,
}

pub(super) async fn get_session_diff(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Response {
    diff_page(&web, &id, None, query).await
}

pub(super) async fn get_turn_diff(
    State(web): State<Arc<Web>>,
    Path((id, turn)): Path<(String, u32)>,
    Query(query): Query<DiffQuery>,
) -> Response {
    diff_page(&web, &id, Some(turn), query).await
}

async fn diff_page(web: &Web, id: &str, turn: Option<u32>, query: DiffQuery) -> Response {
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
    let kind = CommandKind::ReadDiff { session_id: session.id.clone(), turn, files: true };
    let (files, problem): (Vec<FileDiff>, _) = match ask::<DiffRead>(web, kind).await {
        Ok(diff) => (diff.files.unwrap_or_default(), None),
        Err(message) => (Vec::new(), Some(message)),
    };
    let captured = turn.and_then(|turn| {
        let events = web.core.events_of_kind(&session.id, "diff_captured").ok()?;
        events.iter().find(|event| event.turn == Some(turn)).map(|event| event.seq)
    });
    let files: Vec<FileView> =
        files.into_iter().enumerate().map(|(index, file)| file_view(session.id.as_str(), index + 1, file)).collect();
    DiffPage {
        shell: shell(web, crumbs),
        insertions: files.iter().map(|file| file.insertions).sum(),
        deletions: files.iter().map(|file| file.deletions).sum(),
        split: query.view.as_deref() == Some("split"),
        turn,
        turns,
        here,
        files,
        captured,
        problem,
        session,
        command_id: super::pages::command_id(),
    }
    .into_response()
}

pub(super) struct CheckView {
    check: CheckSummary,
    output: Result<String, String>,
}

pub(super) struct TurnEvidence {
    turn: TurnSummary,
    checks: Vec<CheckView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence.html")]
pub(super) struct EvidencePage {
    shell: Shell,
    session: SessionSummary,
    turns: Vec<TurnEvidence>,
}

/// Outputs fetched for one page; older ones are a link away.
const MAX_OUTPUTS: usize = 100;

pub(super) async fn get_evidence(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let (session, turns) = found!(&web, web.find_session(&id));
    let mut fetched = 0;
    let mut outputs: HashMap<u64, Result<String, String>> = HashMap::new();
    for check in turns.iter().rev().flat_map(|turn| turn.checks.iter().rev()) {
        let Some(path) = &check.evidence else { continue };
        if fetched == MAX_OUTPUTS {
            break;
        }
        fetched += 1;
        let kind = CommandKind::ReadSessionFile { session_id: session.id.clone(), path: path.clone() };
        let output = ask::<SessionFileRead>(&web, kind).await.map(|file| file.text);
        outputs.insert(check.seq, output);
    }
    let mut crumbs = session_crumbs(&web, &session);
    crumbs.push(("evidence".into(), urls::evidence(&session.id)));
    let turns = turns
        .into_iter()
        .map(|turn| TurnEvidence {
            checks: turn
                .checks
                .iter()
                .map(|check| CheckView {
                    output: outputs.remove(&check.seq).unwrap_or_else(|| Err("no output recorded".into())),
                    check: check.clone(),
                })
                .collect(),
            turn,
        })
        .collect();
    EvidencePage { shell: shell(&web, crumbs), session, turns }.into_response()
}
