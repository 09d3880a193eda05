//! The node's command table: one handler per command kind, each answering
//! its typed reply (`protocol::reply`) or a [`CommandError`], never JSON
//! built by hand. The daemon and the CLI's in-process path run the same
//! table; what differs between them is the [`Host`]: where events go, how a
//! turn runs (on a thread of its own, or here at a terminal), who answers
//! approvals.

mod files;
mod report;
mod review;
mod session;
mod workspace;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use files::{FilePlace, record_intervention};

use super::{Cancel, Error, Node, Observer, PreparedTurn, Result};
use crate::protocol::{CommandError, CommandKind, ErrorCode, Reply, SessionId, Workspace};
use crate::store::{self, Store};

/// What a handler answers.
pub type Answer = std::result::Result<Reply, CommandError>;

/// Who answers a turn's approvals: `(auto_approve, deny_approvals)` as the
/// command said.
pub type Approvals = (bool, bool);

/// Where the commands run: the daemon, or the CLI in-process.
pub trait Host: Send + Sync {
    fn node(&self) -> &Node;

    /// Where a session's events go as they are recorded.
    fn observer(&self, workspace: &Workspace) -> Box<dyn Observer + '_>;

    /// Runs a prepared turn: the daemon on a thread of its own (the command
    /// answers at once), the CLI here, asking at its terminal.
    fn run_turn(&self, prepared: PreparedTurn, workspace: Workspace, approvals: Approvals);

    /// The control of the session's running turn, if one runs here.
    fn running(&self, session: &SessionId) -> Option<Cancel>;

    /// Answers the approval the session waits for.
    fn answer_approval(
        &self,
        session: &SessionId,
        approval_id: Option<String>,
        approve: bool,
        for_session: bool,
        by: Option<String>,
    ) -> std::result::Result<(), CommandError>;

    /// Where workspaces may be bound (empty: anywhere).
    fn allowed_roots(&self) -> &[PathBuf] {
        &[]
    }

    /// Opens or closes a terminal; only a daemon has them.
    fn terminal(&self, kind: CommandKind) -> Answer {
        Err(CommandError::new(
            ErrorCode::Unsupported,
            format!("`{}` needs the node daemon: start one with `cortex up`", kind.name()),
        ))
    }
}

/// The table: every kind to its handler.
pub fn handle(host: &dyn Host, kind: CommandKind) -> Answer {
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
            let start = session::Start { session_id, provider, script, prompt, title, worktree };
            session::start(host, &workspace_id, start, (auto_approve, deny_approvals))
        }
        K::SendTurn { session_id, prompt, auto_approve, deny_approvals } => {
            session::send(host, session_id, &prompt, (auto_approve, deny_approvals))
        }
        K::StopSession { session_id } => session::stop(host, session_id),
        K::InterruptSession { session_id } => session::interrupt(host, session_id),
        K::SteerSession { session_id, text } => session::steer(host, session_id, text),
        K::ResolveApproval { session_id, approval_id, approve, for_session, by } => {
            host.answer_approval(&session_id, approval_id, approve, for_session, by)?;
            Ok(crate::protocol::reply::ApprovalAnswered { session_id, approved: approve, for_session }.into())
        }
        K::RunChecks { session_id, name } => session::run_checks(host, session_id, name),
        K::CommitSession { session_id, message, as_reviewed } => {
            session::commit(host, session_id, message, as_reviewed)
        }
        K::ReadDiff { session_id, turn, files, context } => session::read_diff(host, &session_id, turn, files, context),
        K::ReadSessionFile { session_id, path, raw } => session::read_file(host, &session_id, path, raw),
        K::RenderReport { session_id, format } => report::render(host, &session_id, format),
        K::BindWorkspace { path, name: _ } => workspace::bind(host, &path),
        K::UnbindWorkspace { workspace_id } => workspace::unbind(host, &workspace_id),
        K::ListChecks { workspace_id } => workspace::list_checks(host, &workspace_id),
        K::ReadJournal { workspace_id, limit } => workspace::read_journal(host, &workspace_id, limit),
        K::ListFiles { workspace_id, session_id, path } => files::list(host, &workspace_id, session_id, path),
        K::ReadFile { workspace_id, session_id, path } => files::read(host, &workspace_id, session_id, &path),
        K::WriteFile { workspace_id, session_id, path, content, expected_hash, by } => {
            files::write(host, &workspace_id, session_id, path, &content, expected_hash, by)
        }
        K::MovePath { workspace_id, session_id, from, to, by } => {
            files::move_path(host, &workspace_id, session_id, &from, &to, by)
        }
        K::DeletePath { workspace_id, session_id, path, expected_hash, by } => {
            files::delete(host, &workspace_id, session_id, &path, expected_hash, by)
        }
        K::ReviewSession { session_id, comments, viewed, verdict, by, auto_approve, deny_approvals } => {
            let review = review::Review { comments, viewed, verdict, by };
            review::review(host, session_id, review, (auto_approve, deny_approvals))
        }
        kind @ (K::OpenTerminal { .. } | K::CloseTerminal { .. }) => host.terminal(kind),
    }
}

/// A node error as the command's error, with its code.
pub fn failed(error: Error) -> CommandError {
    CommandError::new(error.code(), error.to_string())
}

pub(crate) fn store_failed(error: store::Error) -> CommandError {
    failed(Error::Store(error))
}

/// The workspace and store a session lives in, on this node.
pub(crate) fn find_session(node: &Node, session: &SessionId) -> Option<(Store, Workspace)> {
    for workspace in node.workspaces().ok()? {
        let Ok(store) = Store::discover(std::path::Path::new(&workspace.path)) else {
            continue;
        };
        if store.session_tip(session).ok().flatten().is_some() {
            return Some((store, workspace));
        }
    }
    None
}

/// The session's store and workspace on this node.
fn session_place(host: &dyn Host, session: &SessionId) -> std::result::Result<(Store, Workspace), CommandError> {
    find_session(host.node(), session)
        .ok_or_else(|| CommandError::new(ErrorCode::NotFound, format!("session `{session}` is not on this node")))
}

/// A turn that has recorded its last event may still be closing its store;
/// a follow-up waits for that (briefly) rather than finding it busy.
fn wait_until_settled(host: &dyn Host, session: &SessionId) {
    for _ in 0..100 {
        if host.running(session).is_none() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Retries `attempt` while the session is held for a moment by other work
/// of this node (expiry, checks, a commit), for up to five seconds.
pub(crate) fn briefly_retried<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
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
