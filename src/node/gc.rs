//! `cortex gc`: removes the worktrees of isolated sessions that have been
//! stopped (or failed) for longer than the retention period, after putting
//! their last state in the session ref, so no uncommitted work is lost.

use std::path::Path;
use std::time::Duration;

use super::{Node, Observer, Result, runner};
use crate::protocol::{EventKind, SessionId, SessionState};
use crate::store::Store;

/// One worktree `gc` removed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Collected {
    pub session: SessionId,
    pub path: String,
    pub branch: Option<String>,
    /// The worktree held changes made after the session's last turn; they
    /// are in the session tree under `gc/worktree`.
    pub captured: bool,
}

impl Node {
    /// Removes eligible session worktrees in every bound workspace.
    pub fn gc(&self, retention: Duration, observer: &mut dyn Observer) -> Result<Vec<Collected>> {
        let now = jiff::Timestamp::now();
        let mut collected = Vec::new();
        for workspace in self.workspaces()? {
            let Ok(store) = Store::discover(Path::new(&workspace.path)) else { continue };
            for (session, tip) in store.session_tips()? {
                let Ok(view) = store.view_at(tip) else { continue };
                let Some(path) = view.meta.worktree.clone() else { continue };
                let settled = matches!(view.meta.state, SessionState::Stopped | SessionState::Failed);
                let age = now.duration_since(view.meta.updated_at).unsigned_abs();
                if !settled || age < retention || !Path::new(&path).exists() {
                    continue;
                }
                let captured = capture(&store, &session, &view, Path::new(&path), observer)?;
                super::git::remove_worktree(store.workdir(), Path::new(&path))?;
                collected.push(Collected { session, path, branch: view.meta.branch.clone(), captured });
            }
        }
        Ok(collected)
    }
}

/// Snapshots the worktree; if it differs from the last turn's, records it.
fn capture(
    store: &Store,
    session: &SessionId,
    view: &crate::store::SessionView,
    path: &Path,
    observer: &mut dyn Observer,
) -> Result<bool> {
    let worktree = Store::discover(path)?;
    let last = store.tree_at(view, &format!("turns/{}/worktree", view.meta.turns))?;
    let snapshot = worktree.snapshot_worktree(last.unwrap_or_else(|| worktree.head_tree()))?;
    if Some(snapshot.tree) == last {
        return Ok(false);
    }
    let message = format!(
        "the worktree `{}` had changes after the last turn; they are kept under gc/worktree before it is removed",
        path.display()
    );
    runner::record_event(
        store,
        session,
        EventKind::Warning { message },
        Some(("gc/worktree".into(), snapshot.tree)),
        observer,
    )?;
    Ok(true)
}
