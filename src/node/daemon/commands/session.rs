//! Session commands: start, send, stop, interrupt, steer, answer an
//! approval, run checks, commit, and read a session's diff and files.

use std::path::Path;
use std::sync::Arc;

use super::super::{Forward, Runtime, lock};
use super::{Answer, briefly_retried, failed, session_place, spawn_turn, store_failed, wait_until_settled};
use crate::node::{Error, ProviderSpec, StartRequest};
use crate::protocol::reply::{
    ApprovalAnswered, ChecksRun, Committed, DiffRead, SessionFileRead, SessionMoved, Steered, TurnAccepted,
};
use crate::protocol::{ApprovalDecision, CommandError, ErrorCode, ProviderKind, SessionId, WorkspaceId};
use crate::store::{self, Store};

#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    runtime: &Arc<Runtime>,
    session_id: Option<SessionId>,
    workspace_id: &WorkspaceId,
    provider: &str,
    script: Option<String>,
    prompt: String,
    title: Option<String>,
    approvals: (bool, bool),
    worktree: bool,
) -> Answer {
    let node = runtime.node();
    let spec = ProviderSpec::named(provider, script).ok_or_else(|| {
        CommandError::new(ErrorCode::BadInput, format!("provider `{provider}` is not available on this node"))
    })?;
    let workspace =
        node.workspaces().unwrap_or_default().into_iter().find(|workspace| workspace.id == *workspace_id).ok_or_else(
            || CommandError::new(ErrorCode::NotFound, format!("workspace `{workspace_id}` is not bound on this node")),
        )?;
    let store = Store::discover(Path::new(&workspace.path)).map_err(store_failed)?;
    let request = StartRequest { provider: spec, prompt, title, session_id, worktree };
    let mut forward = Forward { runtime: runtime.clone(), workspace: workspace.clone() };
    match node.prepare_start(&store, &workspace, request, &mut forward) {
        Ok(prepared) => {
            let session_id = prepared.session().clone();
            spawn_turn(runtime, prepared, workspace, approvals);
            Ok(TurnAccepted { session_id, turn: 1 }.into())
        }
        // A command replayed after a restart: the session exists.
        Err(Error::Store(store::Error::SessionExists(existing))) => {
            Ok(TurnAccepted { session_id: existing, turn: 1 }.into())
        }
        Err(error) => Err(failed(error)),
    }
}

pub(super) fn send(runtime: &Arc<Runtime>, session_id: SessionId, prompt: &str, approvals: (bool, bool)) -> Answer {
    let (store, workspace) = session_place(runtime, &session_id)?;
    // Input is never held for later: it would run after a stop.
    if store.read_session(&session_id).is_ok_and(|view| view.meta.state.is_busy()) {
        return Err(store_failed(store::Error::SessionBusy(session_id)));
    }
    // A turn that has recorded its end may still be closing.
    wait_until_settled(runtime, &session_id);
    let prepared = briefly_retried(|| runtime.node().prepare_send(&store, &session_id, prompt)).map_err(failed)?;
    let turn = prepared.meta().turns + 1;
    spawn_turn(runtime, prepared, workspace, approvals);
    Ok(TurnAccepted { session_id, turn }.into())
}

pub(super) fn stop(runtime: &Arc<Runtime>, session_id: SessionId) -> Answer {
    if let Some(cancel) = lock(&runtime.running).get(&session_id) {
        cancel.cancel();
        return Ok(SessionMoved { session_id, state: "stopping".into() }.into());
    }
    let (store, workspace) = session_place(runtime, &session_id)?;
    let mut forward = Forward { runtime: runtime.clone(), workspace };
    let state = runtime.node().stop_idle(&store, &session_id, &mut forward).map_err(failed)?;
    Ok(SessionMoved { session_id, state: state.as_str().to_string() }.into())
}

pub(super) fn interrupt(runtime: &Arc<Runtime>, session_id: SessionId) -> Answer {
    // The store says whether a turn is really under way: one that is
    // closing down has already left `running`.
    let busy = super::super::find_session(runtime.node(), &session_id)
        .and_then(|(store, _)| store.read_session(&session_id).ok())
        .is_some_and(|view| view.meta.state.is_busy());
    match lock(&runtime.running).get(&session_id) {
        Some(cancel) if busy => {
            cancel.interrupt();
            Ok(SessionMoved { session_id, state: "interrupting".into() }.into())
        }
        _ => Err(CommandError::new(
            ErrorCode::IllegalTransition,
            format!("session `{session_id}` is not running a turn; there is nothing to interrupt"),
        )),
    }
}

pub(super) fn steer(runtime: &Arc<Runtime>, session_id: SessionId, text: String) -> Answer {
    let (store, _) = session_place(runtime, &session_id)?;
    let view = store.read_session(&session_id).map_err(store_failed)?;
    let steerable = ProviderKind::parse(&view.meta.provider).is_some_and(|kind| kind.can("steer"));
    if !steerable {
        return Err(CommandError::new(
            ErrorCode::Unsupported,
            format!("the {} provider cannot take input during a turn; send it as the next turn", view.meta.provider),
        ));
    }
    match lock(&runtime.running).get(&session_id) {
        Some(control) if view.meta.state.is_busy() => {
            control.steer(text);
            Ok(Steered { session_id, steered: true }.into())
        }
        _ => Err(CommandError::new(
            ErrorCode::IllegalTransition,
            format!("session `{session_id}` is not running a turn; send the text as the next turn"),
        )),
    }
}

pub(super) fn resolve_approval(
    runtime: &Arc<Runtime>,
    session_id: SessionId,
    approval_id: Option<String>,
    approve: bool,
    for_session: bool,
    by: Option<String>,
) -> Answer {
    let mut approvals = lock(&runtime.approvals);
    let Some(waiting) = approvals.get(&session_id) else {
        return Err(CommandError::new(
            ErrorCode::NotFound,
            format!("session `{session_id}` has no approval waiting (`cortex session show` tells its state)"),
        ));
    };
    // An answer to a question already answered must not answer the next one.
    if let Some(asked) = approval_id
        && asked != waiting.approval_id
    {
        return Err(CommandError::new(
            ErrorCode::NotFound,
            format!(
                "approval `{asked}` of session `{session_id}` was answered already; it now asks `{}`",
                waiting.approval_id
            ),
        ));
    }
    let pending = approvals.remove(&session_id).expect("holds because it was just found");
    drop(approvals);
    if approve && for_session {
        lock(&runtime.approved_sessions).insert(session_id.clone());
    }
    let by = by.unwrap_or_else(|| "a person".into());
    let decision = if approve { ApprovalDecision::Approved } else { ApprovalDecision::Denied };
    let _ = pending.reply.send((decision, by));
    Ok(ApprovalAnswered { session_id, approved: approve, for_session }.into())
}

pub(super) fn run_checks(runtime: &Arc<Runtime>, session_id: SessionId, name: Option<String>) -> Answer {
    wait_until_settled(runtime, &session_id);
    let (store, workspace) = session_place(runtime, &session_id)?;
    let mut forward = Forward { runtime: runtime.clone(), workspace };
    let checks = runtime.node().run_checks(&store, &session_id, name.as_deref(), &mut forward).map_err(failed)?;
    Ok(ChecksRun { session_id, checks }.into())
}

pub(super) fn commit(runtime: &Arc<Runtime>, session_id: SessionId, message: Option<String>) -> Answer {
    let (store, workspace) = session_place(runtime, &session_id)?;
    let mut forward = Forward { runtime: runtime.clone(), workspace };
    let commit =
        runtime.node().commit_session(&store, &session_id, message.as_deref(), &mut forward).map_err(failed)?;
    Ok(Committed { session_id, commit }.into())
}

pub(super) fn read_diff(runtime: &Arc<Runtime>, session_id: &SessionId, turn: Option<u32>, files: bool) -> Answer {
    let (store, _) = session_place(runtime, session_id)?;
    if files {
        let files = store.session_file_diffs(session_id, turn).map_err(store_failed)?;
        return Ok(DiffRead { files: Some(files), patch: None }.into());
    }
    let patch = store.session_diff(session_id, turn).map_err(store_failed)?;
    Ok(DiffRead { files: None, patch: Some(patch) }.into())
}

/// A file the session keeps under `turns/`, as redacted text.
pub(super) fn read_file(runtime: &Arc<Runtime>, session_id: &SessionId, path: String) -> Answer {
    let (store, _) = session_place(runtime, session_id)?;
    let bytes = store.session_file(session_id, &path).map_err(store_failed)?;
    let text = store::redact::redact_str(&String::from_utf8_lossy(&bytes)).into_owned();
    Ok(SessionFileRead { path, bytes: bytes.len(), text }.into())
}
