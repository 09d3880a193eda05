//! The node's command table: one handler per command kind, each answering
//! its typed reply (`protocol::reply`) or a [`CommandError`], never JSON
//! built by hand. `execute` runs a command once per id (in flight and, for
//! commands that change something, across restarts through the ledger).

mod files;
mod session;
mod terminals;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

pub(super) use terminals::typed;

use super::approvals::Policy;
use super::{Forward, Runtime, find_session, lock};
use crate::node::{Cancel, Error, PreparedTurn, Result};
use crate::protocol::{Command, CommandError, CommandKind, CommandOutcome, ErrorCode, Reply, SessionId, Workspace};
use crate::store::{self, Store};

/// What a handler answers.
type Answer = std::result::Result<Reply, CommandError>;

/// Runs a command once: a copy arriving while it runs waits for its
/// answer, and the ledger answers copies that arrive later, also after a
/// restart.
pub(super) async fn execute(runtime: &Arc<Runtime>, command: Command) -> CommandOutcome {
    let id = command.id.clone();
    let cell = lock(&runtime.results).entry(id.clone()).or_default().clone();
    let outcome = cell.get_or_init(|| run_once(runtime, command)).await.clone();
    lock(&runtime.results).remove(&id);
    outcome
}

async fn run_once(runtime: &Arc<Runtime>, command: Command) -> CommandOutcome {
    let id = command.id.clone();
    let kept = crate::node::ledger::is_kept(&command.kind).then_some(runtime.ledger.as_ref()).flatten();
    if let Some(ledger) = kept {
        match ledger.claim(&id, command.kind.name()) {
            Ok(None) => {}
            Ok(Some(answer)) => return answer,
            Err(error) => {
                return CommandOutcome::error(ErrorCode::Failed, format!("cannot record the command: {error}"));
            }
        }
    }
    let worker = runtime.clone();
    let outcome = tokio::task::spawn_blocking(move || CommandOutcome::of(handle(&worker, command.kind)))
        .await
        .unwrap_or_else(|error| CommandOutcome::error(ErrorCode::Failed, format!("the command panicked: {error}")));
    if let Some(ledger) = kept
        && let Err(error) = ledger.finish(&id, &outcome)
    {
        tracing::error!(%error, command = id, "cannot record a command's answer in the ledger");
    }
    outcome
}

/// The table: every kind to its handler.
fn handle(runtime: &Arc<Runtime>, kind: CommandKind) -> Answer {
    use CommandKind as K;
    match kind {
        K::StartSession {
            session_id,
            workspace_id,
            provider,
            script,
            prompt,
            title,
            auto_approve,
            deny_approvals,
            worktree,
        } => {
            let approvals = (auto_approve, deny_approvals);
            session::start(runtime, session_id, &workspace_id, &provider, script, prompt, title, approvals, worktree)
        }
        K::SendTurn { session_id, prompt, auto_approve, deny_approvals } => {
            session::send(runtime, session_id, &prompt, (auto_approve, deny_approvals))
        }
        K::StopSession { session_id } => session::stop(runtime, session_id),
        K::InterruptSession { session_id } => session::interrupt(runtime, session_id),
        K::SteerSession { session_id, text } => session::steer(runtime, session_id, text),
        K::ResolveApproval { session_id, approval_id, approve, for_session, by } => {
            session::resolve_approval(runtime, session_id, approval_id, approve, for_session, by)
        }
        K::RunChecks { session_id, name } => session::run_checks(runtime, session_id, name),
        K::CommitSession { session_id, message } => session::commit(runtime, session_id, message),
        K::ReadDiff { session_id, turn, files } => session::read_diff(runtime, &session_id, turn, files),
        K::ReadSessionFile { session_id, path } => session::read_file(runtime, &session_id, path),
        K::BindWorkspace { path, name: _ } => workspace::bind(runtime, &path),
        K::UnbindWorkspace { workspace_id } => workspace::unbind(runtime, &workspace_id),
        K::ListChecks { workspace_id } => workspace::list_checks(runtime, &workspace_id),
        K::ReadJournal { workspace_id, limit } => workspace::read_journal(runtime, &workspace_id, limit),
        K::ListFiles { workspace_id, session_id, path } => files::list(runtime, &workspace_id, session_id, path),
        K::ReadFile { workspace_id, session_id, path } => files::read(runtime, &workspace_id, session_id, &path),
        K::WriteFile { workspace_id, session_id, path, content, expected_hash, by } => {
            files::write(runtime, &workspace_id, session_id, path, &content, expected_hash, by)
        }
        K::MovePath { workspace_id, session_id, from, to, by } => {
            files::move_path(runtime, &workspace_id, session_id, &from, &to, by)
        }
        K::DeletePath { workspace_id, session_id, path, expected_hash, by } => {
            files::delete(runtime, &workspace_id, session_id, &path, expected_hash, by)
        }
        K::OpenTerminal { workspace_id, session_id, terminal_id, cols, rows, by, check } => {
            terminals::open(runtime, &workspace_id, session_id, terminal_id, (cols, rows), by, check)
        }
        K::CloseTerminal { terminal_id, .. } => terminals::close(runtime, terminal_id),
    }
}

/// A node error as the command's error, with its code.
fn failed(error: Error) -> CommandError {
    CommandError::new(error.code(), error.to_string())
}

fn store_failed(error: store::Error) -> CommandError {
    failed(Error::Store(error))
}

/// The session's store and workspace on this node.
fn session_place(runtime: &Runtime, session: &SessionId) -> std::result::Result<(Store, Workspace), CommandError> {
    find_session(runtime.node(), session)
        .ok_or_else(|| CommandError::new(ErrorCode::NotFound, format!("session `{session}` is not on this node")))
}

/// A turn that has recorded its last event may still be closing its store;
/// a follow-up waits for that (briefly) rather than finding it busy.
fn wait_until_settled(runtime: &Runtime, session: &SessionId) {
    for _ in 0..100 {
        if !lock(&runtime.running).contains_key(session) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Retries `attempt` while the session is held for a moment by other work
/// of this node (expiry, checks, a commit), for up to five seconds.
fn briefly_retried<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut left = 100;
    loop {
        match attempt() {
            Err(Error::Store(store::Error::SessionBusy(_))) if left > 0 => {
                left -= 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Runs a prepared turn on a thread of its own, forwarding its events.
/// `approvals` is `(auto_approve, deny_approvals)` as the command said.
fn spawn_turn(
    runtime: &Arc<Runtime>,
    prepared: PreparedTurn,
    workspace: Workspace,
    (auto_approve, deny_approvals): (bool, bool),
) {
    let cancel = Cancel::default();
    let session = prepared.session().clone();
    lock(&runtime.running).insert(session.clone(), cancel.clone());
    let runtime = runtime.clone();
    std::thread::spawn(move || {
        let mut forward = Forward { runtime: runtime.clone(), workspace };
        let mut policy = Policy { runtime: runtime.clone(), auto_approve, deny_approvals, cancel: cancel.clone() };
        if let Err(error) = prepared.run(&mut policy, &mut forward, &cancel) {
            tracing::error!(%error, %session, "a turn failed to run; the spool keeps its events for recovery");
        }
        lock(&runtime.running).remove(&session);
        // A stop that came as the turn was ending found it still listed:
        // carry it out now that the session is idle.
        if cancel.stops()
            && let Some((store, _)) = find_session(runtime.node(), &session)
            && store.read_session(&session).is_ok_and(|view| !view.meta.state.is_final())
            && let Err(error) = runtime.node().stop_idle(&store, &session, &mut forward)
        {
            tracing::warn!(%error, %session, "a stop asked at the end of a turn could not be carried out");
        }
    });
}
