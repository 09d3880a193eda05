//! The daemon as a command [`Host`]: commands run once per id (a copy in
//! flight waits for the first; the ledger answers copies after a restart),
//! turns run on threads of their own with their events forwarded to Core,
//! approvals wait for a person's `resolve_approval`, and terminals exist.

use std::path::PathBuf;
use std::sync::Arc;

use super::approvals::Policy;
use super::{Forward, Runtime, lock};
use crate::node::commands::{self, Answer, Approvals, Host};
use crate::node::{Cancel, Node, Observer, PreparedTurn};
use crate::protocol::{
    ApprovalDecision, Command, CommandError, CommandKind, CommandOutcome, ErrorCode, SessionId, Workspace,
};

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
    let host = runtime.clone();
    let outcome = tokio::task::spawn_blocking(move || CommandOutcome::of(commands::handle(&host, command.kind)))
        .await
        .unwrap_or_else(|error| CommandOutcome::error(ErrorCode::Failed, format!("the command panicked: {error}")));
    if let Some(ledger) = kept
        && let Err(error) = ledger.finish(&id, &outcome)
    {
        tracing::error!(%error, command = id, "cannot record a command's answer in the ledger");
    }
    outcome
}

impl Host for Arc<Runtime> {
    fn node(&self) -> &Node {
        Runtime::node(self)
    }

    fn observer(&self, workspace: &Workspace) -> Box<dyn Observer + '_> {
        Box::new(Forward { runtime: self.clone(), workspace: workspace.clone() })
    }

    /// On a thread of its own, forwarding its events; the command answers
    /// at once.
    fn run_turn(&self, prepared: PreparedTurn, workspace: Workspace, (auto_approve, deny_approvals): Approvals) {
        let cancel = Cancel::default();
        let session = prepared.session().clone();
        lock(&self.running).insert(session.clone(), cancel.clone());
        let runtime = self.clone();
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
                && let Some((store, _)) = commands::find_session(runtime.node(), &session)
                && store.read_session(&session).is_ok_and(|view| !view.meta.state.is_final())
                && let Err(error) = runtime.node().stop_idle(&store, &session, &mut forward)
            {
                tracing::warn!(%error, %session, "a stop asked at the end of a turn could not be carried out");
            }
        });
    }

    fn running(&self, session: &SessionId) -> Option<Cancel> {
        lock(&self.running).get(session).cloned()
    }

    fn answer_approval(
        &self,
        session: &SessionId,
        approval_id: Option<String>,
        approve: bool,
        for_session: bool,
        by: Option<String>,
    ) -> Result<(), CommandError> {
        let mut approvals = lock(&self.approvals);
        let Some(waiting) = approvals.get(session) else {
            return Err(CommandError::new(
                ErrorCode::NotFound,
                format!("session `{session}` has no approval waiting (`cortex session show` tells its state)"),
            ));
        };
        // An answer to a question already answered must not answer the next one.
        if let Some(asked) = approval_id
            && asked != waiting.approval_id
        {
            return Err(CommandError::new(
                ErrorCode::NotFound,
                format!(
                    "approval `{asked}` of session `{session}` was answered already; it now asks `{}`",
                    waiting.approval_id
                ),
            ));
        }
        let pending = approvals.remove(session).expect("holds because it was just found");
        drop(approvals);
        if approve && for_session {
            lock(&self.approved_sessions).insert(session.clone());
        }
        let by = by.unwrap_or_else(|| "a person".into());
        let decision = if approve { ApprovalDecision::Approved } else { ApprovalDecision::Denied };
        let _ = pending.reply.send((decision, by));
        Ok(())
    }

    fn allowed_roots(&self) -> &[PathBuf] {
        &self.config.allowed_roots
    }

    fn terminal(&self, kind: CommandKind) -> Answer {
        match kind {
            CommandKind::OpenTerminal { workspace_id, session_id, terminal_id, cols, rows, by, check } => {
                super::terminals::open(self, &workspace_id, session_id, terminal_id, (cols, rows), by, check)
            }
            CommandKind::CloseTerminal { terminal_id, .. } => super::terminals::close(self, terminal_id),
            other => commands::handle(self, other),
        }
    }
}
