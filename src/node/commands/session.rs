//! Session commands: start, send, stop, interrupt, steer, run checks,
//! commit, and read a session's diff and files.

use std::path::Path;

use super::{Answer, Approvals, Host, briefly_retried, failed, session_place, store_failed, wait_until_settled};
use crate::node::{Error, ProviderSpec, StartRequest};
use crate::protocol::reply::{ChecksRun, Committed, DiffRead, SessionFileRead, SessionMoved, Steered, TurnAccepted};
use crate::protocol::{CommandError, ErrorCode, ProviderKind, SessionId, WorkspaceId};
use crate::store::{self, Store};

/// What a `start_session` command asks for, besides where and who answers.
pub(super) struct Start {
    pub session_id: Option<SessionId>,
    pub provider: String,
    pub script: Option<String>,
    pub prompt: String,
    pub title: Option<String>,
    pub worktree: bool,
}

pub(super) fn start(host: &dyn Host, workspace_id: &WorkspaceId, start: Start, approvals: Approvals) -> Answer {
    let node = host.node();
    let provider = &start.provider;
    let spec = ProviderSpec::named(provider, start.script).ok_or_else(|| {
        CommandError::new(ErrorCode::BadInput, format!("provider `{provider}` is not available on this node"))
    })?;
    let workspace =
        node.workspaces().unwrap_or_default().into_iter().find(|workspace| workspace.id == *workspace_id).ok_or_else(
            || CommandError::new(ErrorCode::NotFound, format!("workspace `{workspace_id}` is not bound on this node")),
        )?;
    let store = Store::discover(Path::new(&workspace.path)).map_err(store_failed)?;
    // Nothing is written before the provider's whole configuration is good
    // and its program is on this node.
    spec.check(store.workdir()).map_err(failed)?;
    spec.check_installed(store.workdir()).map_err(failed)?;
    let request = StartRequest {
        provider: spec,
        prompt: start.prompt,
        title: start.title,
        session_id: start.session_id,
        worktree: start.worktree,
    };
    let prepared = {
        let mut observer = host.observer(&workspace);
        node.prepare_start(&store, &workspace, request, &mut *observer)
    };
    match prepared {
        Ok(prepared) => {
            let session_id = prepared.session().clone();
            host.run_turn(prepared, workspace, approvals);
            Ok(TurnAccepted { session_id, turn: 1 }.into())
        }
        // A command replayed after a restart: the session exists.
        Err(Error::Store(store::Error::SessionExists(existing))) => {
            Ok(TurnAccepted { session_id: existing, turn: 1 }.into())
        }
        Err(error) => Err(failed(error)),
    }
}

pub(super) fn send(host: &dyn Host, session_id: SessionId, prompt: &str, approvals: Approvals) -> Answer {
    let (store, workspace) = session_place(host, &session_id)?;
    // Input is never held for later: it would run after a stop.
    if store.read_session(&session_id).is_ok_and(|view| view.meta.state.is_busy()) {
        return Err(store_failed(store::Error::SessionBusy(session_id)));
    }
    // A turn that has recorded its end may still be closing.
    wait_until_settled(host, &session_id);
    let prepared = briefly_retried(|| host.node().prepare_send(&store, &session_id, prompt)).map_err(failed)?;
    let turn = prepared.meta().turns + 1;
    host.run_turn(prepared, workspace, approvals);
    Ok(TurnAccepted { session_id, turn }.into())
}

/// Stops a session: its running turn at the agent's next step, or at once
/// when idle. Stopping a stopped session is done already.
pub(super) fn stop(host: &dyn Host, session_id: SessionId) -> Answer {
    if let Some(cancel) = host.running(&session_id) {
        cancel.cancel();
        return Ok(SessionMoved { session_id, state: "stopping".into() }.into());
    }
    let (store, workspace) = session_place(host, &session_id)?;
    let mut observer = host.observer(&workspace);
    let state = host.node().stop_idle(&store, &session_id, &mut *observer).map_err(failed)?;
    Ok(SessionMoved { session_id, state: state.as_str().to_string() }.into())
}

pub(super) fn interrupt(host: &dyn Host, session_id: SessionId) -> Answer {
    // The store says whether a turn is really under way: one that is
    // closing down has already left `running`.
    let busy = super::find_session(host.node(), &session_id)
        .and_then(|(store, _)| store.read_session(&session_id).ok())
        .is_some_and(|view| view.meta.state.is_busy());
    match host.running(&session_id) {
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

pub(super) fn steer(host: &dyn Host, session_id: SessionId, text: String) -> Answer {
    let (store, _) = session_place(host, &session_id)?;
    let view = store.read_session(&session_id).map_err(store_failed)?;
    let steerable = ProviderKind::of(&view.meta.provider).can("steer");
    if !steerable {
        return Err(CommandError::new(
            ErrorCode::Unsupported,
            format!("the {} provider cannot take input during a turn; send it as the next turn", view.meta.provider),
        ));
    }
    match host.running(&session_id) {
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

pub(super) fn run_checks(host: &dyn Host, session_id: SessionId, name: Option<String>) -> Answer {
    wait_until_settled(host, &session_id);
    let (store, workspace) = session_place(host, &session_id)?;
    let mut observer = host.observer(&workspace);
    let checks = host.node().run_checks(&store, &session_id, name.as_deref(), &mut *observer).map_err(failed)?;
    Ok(ChecksRun { session_id, checks }.into())
}

pub(super) fn commit(host: &dyn Host, session_id: SessionId, message: Option<String>, as_reviewed: bool) -> Answer {
    let (store, workspace) = session_place(host, &session_id)?;
    let mut observer = host.observer(&workspace);
    let commit = host
        .node()
        .commit_session(&store, &session_id, message.as_deref(), as_reviewed, &mut *observer)
        .map_err(failed)?;
    Ok(Committed { session_id, commit }.into())
}

pub(super) fn read_diff(
    host: &dyn Host,
    session_id: &SessionId,
    turn: Option<u32>,
    files: bool,
    context: Option<u32>,
) -> Answer {
    let (store, _) = session_place(host, session_id)?;
    if files {
        let context = context.unwrap_or(crate::protocol::DIFF_CONTEXT).min(crate::protocol::DIFF_CONTEXT_MAX);
        let files = store.session_file_diffs(session_id, turn, context).map_err(store_failed)?;
        return Ok(DiffRead { files: Some(files), patch: None }.into());
    }
    let patch = store.session_diff(session_id, turn).map_err(store_failed)?;
    Ok(DiffRead { files: None, patch: Some(patch) }.into())
}

/// A file the session keeps under `turns/`, as redacted text, or as the
/// bytes stored (redacted when they were written) for `raw`.
pub(super) fn read_file(host: &dyn Host, session_id: &SessionId, path: String, raw: bool) -> Answer {
    use base64::Engine;
    let (store, _) = session_place(host, session_id)?;
    let bytes = store.session_file(session_id, &path).map_err(store_failed)?;
    if raw {
        let base64 = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
        return Ok(SessionFileRead { path, bytes: bytes.len(), text: String::new(), base64 }.into());
    }
    let text = store::redact::redact_str(&String::from_utf8_lossy(&bytes)).into_owned();
    Ok(SessionFileRead { path, bytes: bytes.len(), text, base64: None }.into())
}
