//! A reviewer's comments and verdict on a session, recorded as the
//! reviewer's events in the session ref; `request_changes` hands the open
//! comments back to the agent as the next turn's prompt.

use super::{Answer, Approvals, Host, briefly_retried, failed, session_place, store_failed, wait_until_settled};
use crate::protocol::reply::{Reviewed, TurnAccepted};
use crate::protocol::{
    CommandError, ErrorCode, EventKind, Reply, ReviewNote, SessionId, Verdict, open_review_comments,
};
use crate::store::Store;

/// The longest comment, in characters.
const MAX_COMMENT: usize = 10_000;
/// The longest quoted line kept with a comment, in characters.
const MAX_QUOTE: usize = 400;

/// What a `review_session` command asks for.
pub(super) struct Review {
    pub comments: Vec<ReviewNote>,
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
    for note in &review.comments {
        check(note)?;
    }
    if review.comments.is_empty() && review.verdict.is_none() {
        return Err(bad("nothing to record: give a comment, approve, or request changes".into()));
    }
    let by = review.by.unwrap_or_else(|| "a person".into());
    let events = store.events_after(&view, 0).map_err(store_failed)?;
    let mut open: Vec<EventKind> = open_review_comments(&events).map(|event| event.kind.clone()).collect();
    let mut kinds = Vec::new();
    for note in review.comments.iter() {
        let quote = note.line.and_then(|line| quoted(&store, &session_id, turn, &note.path, line));
        let comment = EventKind::ReviewComment {
            by: by.clone(),
            path: note.path.clone(),
            line: note.line,
            text: note.text.clone(),
            quote,
        };
        open.push(comment.clone());
        kinds.push(comment);
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
/// from 1, and says something on one or more lines of text.
fn check(note: &ReviewNote) -> Result<(), CommandError> {
    let parsed = crate::sandbox::RelPath::parse(&note.path).map_err(|error| error.to_string());
    let refused = match parsed {
        Ok(path) if path.is_root() => Some("it names no file".to_string()),
        Ok(_) if note.path.contains('\\') || note.path.chars().any(char::is_control) => {
            Some("it has a backslash or a control character".into())
        }
        Ok(_) => None,
        Err(error) => Some(error),
    };
    if let Some(why) = refused {
        return Err(bad(format!(
            "`{}` is not a file of the session ({why}): name it by its path in the repository (src/main.rs)",
            note.path.escape_debug()
        )));
    }
    if note.line == Some(0) {
        return Err(bad(format!("{}: lines are counted from 1", note.path)));
    }
    if note.text.trim().is_empty() {
        return Err(bad(format!("the comment on {} is empty", note.path)));
    }
    if note.text.chars().count() > MAX_COMMENT {
        return Err(bad(format!("the comment on {} is over {MAX_COMMENT} characters", note.path)));
    }
    Ok(())
}

/// Line `line` of `path` as the session's last turn left it (the snapshot
/// the reviewer saw), when the file has that line.
fn quoted(store: &Store, session: &SessionId, turn: u32, path: &str, line: u32) -> Option<String> {
    let bytes = store.session_file(session, &format!("turns/{turn}/worktree/{path}")).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text.lines().nth(line as usize - 1)?;
    Some(found.chars().take(MAX_QUOTE).collect())
}

/// The next turn's prompt: every open comment with its file, line and the
/// code it is about.
fn prompt_of(comments: &[EventKind]) -> String {
    let mut prompt = String::from("A reviewer requested changes. Address each comment:\n");
    for (index, comment) in comments.iter().enumerate() {
        let EventKind::ReviewComment { path, line, text, quote, .. } = comment else { continue };
        let place = line.map_or(path.clone(), |line| format!("{path}:{line}"));
        prompt.push_str(&format!("\n{}. {place}\n", index + 1));
        if let Some(quote) = quote {
            prompt.push_str(&format!("   > {quote}\n"));
        }
        for text_line in text.lines() {
            prompt.push_str(&format!("   {text_line}\n"));
        }
    }
    prompt
}
