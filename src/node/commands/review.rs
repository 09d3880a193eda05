//! A reviewer's comments, viewed marks and verdict on a session, recorded
//! as the reviewer's events in the session ref; `request_changes` hands the
//! open comments back to the agent as the next turn's prompt.

use super::{Answer, Approvals, Host, briefly_retried, failed, session_place, store_failed, wait_until_settled};
use crate::protocol::reply::{Reviewed, TurnAccepted};
use crate::protocol::{
    CommandError, ErrorCode, EventKind, Reply, ReviewNote, SessionId, Verdict, comment_place, open_review_comments,
};
use crate::store::Store;

/// The longest comment, in characters.
const MAX_COMMENT: usize = 10_000;
/// The longest quoted line kept with a comment, in characters.
const MAX_QUOTE: usize = 400;
/// The most lines a comment on a range quotes; the rest are counted.
const MAX_QUOTED_LINES: usize = 20;
/// The most comments and viewed marks one review records.
const MAX_NOTES: usize = 500;

/// What a `review_session` command asks for.
pub(super) struct Review {
    pub comments: Vec<ReviewNote>,
    pub viewed: Vec<(String, bool)>,
    pub verdict: Option<Verdict>,
    pub by: Option<String>,
}

pub(super) fn review(host: &dyn Host, session_id: SessionId, review: Review, approvals: Approvals) -> Answer {
    let (store, workspace) = session_place(host, &session_id)?;
    wait_until_settled(host, &session_id);
    let view = store.read_session(&session_id).map_err(store_failed)?;
    if view.meta.state.is_busy() {
        return Err(CommandError::new(
            ErrorCode::Busy,
            format!("session `{session_id}` is running a turn; review it when the turn has ended"),
        ));
    }
    let turn = view.meta.turns;
    if turn == 0 {
        return Err(bad(format!("session `{session_id}` has no turn yet: there is nothing to review")));
    }
    // Everything is checked before anything is written.
    if review.comments.len() + review.viewed.len() > MAX_NOTES {
        return Err(bad(format!("a review records at most {MAX_NOTES} comments and viewed marks at once")));
    }
    for note in &review.comments {
        check(note)?;
    }
    for (path, _) in &review.viewed {
        check_path(path)?;
    }
    if review.comments.is_empty() && review.viewed.is_empty() && review.verdict.is_none() {
        return Err(bad("nothing to record: give a comment, mark a file viewed, approve, or request changes".into()));
    }
    let by = review.by.unwrap_or_else(|| "a person".into());
    let events = store.events_after(&view, 0).map_err(store_failed)?;
    let mut open: Vec<EventKind> = open_review_comments(&events).map(|event| event.kind.clone()).collect();
    let mut kinds = Vec::new();
    for note in review.comments.iter() {
        let lines = note.line.map(|line| line..=note.end_line.unwrap_or(line));
        let quote = lines.and_then(|lines| quoted(&store, &session_id, turn, &note.path, lines));
        let comment = EventKind::ReviewComment {
            by: by.clone(),
            path: note.path.clone(),
            line: note.line,
            end_line: note.end_line.filter(|end| Some(*end) > note.line),
            text: note.text.clone(),
            quote,
        };
        open.push(comment.clone());
        kinds.push(comment);
    }
    for (path, viewed) in &review.viewed {
        kinds.push(EventKind::ReviewViewed {
            by: by.clone(),
            path: path.clone(),
            viewed: *viewed,
            reviewed_turn: turn,
        });
    }
    if review.verdict == Some(Verdict::RequestChanges) && open.is_empty() {
        return Err(bad("there are no open comments to hand back: add a comment with the request".into()));
    }
    let prompt = (review.verdict == Some(Verdict::RequestChanges)).then(|| prompt_of(&open));
    if let Some(verdict) = review.verdict {
        let comments = if verdict == Verdict::RequestChanges { open.len() as u32 } else { 0 };
        kinds.push(EventKind::ReviewVerdict { by: by.clone(), verdict, reviewed_turn: turn, comments });
    }
    let added = review.comments.len() as u32;
    {
        let mut observer = host.observer(&workspace);
        briefly_retried(|| {
            crate::node::runner::record_events(&store, &session_id, kinds.clone(), None, &mut *observer)
        })
        .map_err(failed)?;
    }
    let mut reviewed =
        Reviewed { session_id: session_id.clone(), comments: added, verdict: review.verdict, turn: None, prompt };
    if let Some(prompt) = &reviewed.prompt {
        let accepted = super::session::send(host, session_id, prompt, approvals)?;
        if let Reply::TurnAccepted(TurnAccepted { turn, .. }) = accepted {
            reviewed.turn = Some(turn);
        }
    }
    Ok(reviewed.into())
}

fn bad(message: String) -> CommandError {
    CommandError::new(ErrorCode::BadInput, message)
}

/// A comment names a file inside the workspace by a relative path, a line
/// from 1 (or a range of lines), and says something on one or more lines
/// of text.
fn check(note: &ReviewNote) -> Result<(), CommandError> {
    check_path(&note.path)?;
    if note.line == Some(0) {
        return Err(bad(format!("{}: lines are counted from 1", note.path)));
    }
    match (note.line, note.end_line) {
        (None, Some(_)) => return Err(bad(format!("{}: a range needs its first line", note.path))),
        (Some(line), Some(end)) if end < line => {
            return Err(bad(format!("{}:{line}-{end}: the range ends before it starts", note.path)));
        }
        _ => {}
    }
    if note.text.trim().is_empty() {
        return Err(bad(format!("the comment on {} is empty", note.path)));
    }
    if note.text.chars().count() > MAX_COMMENT {
        return Err(bad(format!("the comment on {} is over {MAX_COMMENT} characters", note.path)));
    }
    Ok(())
}

/// A file of the workspace, named by a relative path that stays inside it.
fn check_path(path: &str) -> Result<(), CommandError> {
    let parsed = crate::sandbox::RelPath::parse(path).map_err(|error| error.to_string());
    let refused = match parsed {
        Ok(parsed) if parsed.is_root() => Some("it names no file".to_string()),
        Ok(_) if path.contains('\\') || path.chars().any(char::is_control) => {
            Some("it has a backslash or a control character".into())
        }
        Ok(_) => None,
        Err(error) => Some(error),
    };
    match refused {
        Some(why) => Err(bad(format!(
            "`{}` is not a file of the session ({why}): name it by its path in the repository (src/main.rs)",
            path.escape_debug()
        ))),
        None => Ok(()),
    }
}

/// Lines `lines` of `path` as the session's last turn left it (the
/// snapshot the reviewer saw), when the file has them: up to
/// [`MAX_QUOTED_LINES`], each cut at [`MAX_QUOTE`] characters.
fn quoted(
    store: &Store,
    session: &SessionId,
    turn: u32,
    path: &str,
    lines: std::ops::RangeInclusive<u32>,
) -> Option<String> {
    let bytes = store.session_file(session, &format!("turns/{turn}/worktree/{path}")).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let wanted = (*lines.end() - *lines.start()) as usize + 1;
    let found: Vec<String> = text
        .lines()
        .skip(*lines.start() as usize - 1)
        .take(wanted.min(MAX_QUOTED_LINES))
        .map(|line| line.chars().take(MAX_QUOTE).collect())
        .collect();
    if found.is_empty() {
        return None;
    }
    let mut quote = found.join("\n");
    if wanted > found.len() && found.len() == MAX_QUOTED_LINES {
        quote.push_str(&format!("\n… {} more lines", wanted - MAX_QUOTED_LINES));
    }
    Some(quote)
}

/// The next turn's prompt: every open comment with its file, line and the
/// code it is about.
fn prompt_of(comments: &[EventKind]) -> String {
    let mut prompt = String::from("A reviewer requested changes. Address each comment:\n");
    for (index, comment) in comments.iter().enumerate() {
        let EventKind::ReviewComment { path, line, end_line, text, quote, .. } = comment else { continue };
        prompt.push_str(&format!("\n{}. {}\n", index + 1, comment_place(path, *line, *end_line)));
        for quoted in quote.iter().flat_map(|quote| quote.lines()) {
            prompt.push_str(&format!("   > {quoted}\n"));
        }
        for text_line in text.lines() {
            prompt.push_str(&format!("   {text_line}\n"));
        }
    }
    prompt
}
