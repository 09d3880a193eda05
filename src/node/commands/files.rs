//! File commands: list, read, write, move and delete inside a workspace
//! (or a session's worktree) through the sandboxed root; a person's change
//! is recorded in the session named, or else in the workspace journal.

use std::path::Path;

use super::{Answer, Host, briefly_retried, store_failed};
use crate::node::Node;
use crate::node::files::FileError;
use crate::protocol::reply::{FileWritten, Listing, PathDeleted, PathMoved};
use crate::protocol::{CommandError, ErrorCode, EventKind, SessionId, Workspace, WorkspaceId};
use crate::store::Store;

/// Where a file command works: the workspace, or the worktree of the
/// session named, and that session (where a person's change is recorded).
pub(crate) struct FilePlace {
    pub(crate) root: crate::node::files::Root,
    pub(crate) workspace: Workspace,
    /// The workspace's store (the session's refs live there too).
    pub(crate) store: Store,
    pub(crate) session: Option<SessionId>,
}

impl FilePlace {
    pub(crate) fn find(
        node: &Node,
        workspace_id: &WorkspaceId,
        session: Option<&SessionId>,
    ) -> std::result::Result<FilePlace, CommandError> {
        let workspace = node
            .workspaces()
            .unwrap_or_default()
            .into_iter()
            .find(|workspace| &workspace.id == workspace_id)
            .ok_or_else(|| {
                CommandError::new(ErrorCode::NotFound, format!("workspace `{workspace_id}` is not on this node"))
            })?;
        let store = Store::discover(Path::new(&workspace.path)).map_err(store_failed)?;
        let (dir, session) = match session {
            None => (store.workdir().to_path_buf(), None),
            Some(session) => {
                if store.session_tip(session).ok().flatten().is_none() {
                    let message = format!("session `{session}` is not in workspace `{}`", workspace.name);
                    return Err(CommandError::new(ErrorCode::NotFound, message));
                }
                let own = store.for_session(session).map_err(store_failed)?;
                (own.workdir().to_path_buf(), Some(session.clone()))
            }
        };
        let root = crate::node::files::Root::new(&dir).map_err(file_failed)?;
        Ok(FilePlace { root, workspace, store, session })
    }

    /// A person's change must not race the agent's turn in the same session.
    fn not_busy(&self) -> std::result::Result<(), CommandError> {
        let Some(session) = self.session.as_ref() else { return Ok(()) };
        let Ok(view) = self.store.read_session(session) else { return Ok(()) };
        let state = view.meta.state;
        if !state.is_busy() {
            return Ok(());
        }
        Err(CommandError::new(
            ErrorCode::Busy,
            format!(
                "session `{session}` is {state}: wait for its turn to end, or interrupt it, before changing its files"
            ),
        ))
    }

    /// Records the change as the person's: in the session named, or else in
    /// the workspace journal.
    pub(crate) fn record(
        &self,
        host: &dyn Host,
        by: Option<String>,
        action: &str,
        path: Option<String>,
        detail: Option<String>,
    ) -> bool {
        let by = by.unwrap_or_else(|| "a person".into());
        record_intervention(host, &self.store, self.session.as_ref(), &self.workspace, by, action, path, detail)
    }
}

/// A person's act: an `intervention` event in the session it was made
/// from, or a line in the workspace journal (`refs/cortex/workspace/journal`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_intervention(
    host: &dyn Host,
    store: &Store,
    session: Option<&SessionId>,
    workspace: &Workspace,
    by: String,
    action: &str,
    path: Option<String>,
    detail: Option<String>,
) -> bool {
    let Some(session) = session else {
        let entry =
            crate::protocol::JournalEntry { at: jiff::Timestamp::now(), by, action: action.into(), path, detail };
        return match store.append_journal(&entry) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "a person's change could not be recorded in the workspace journal");
                false
            }
        };
    };
    let kind = EventKind::Intervention { by, action: action.into(), path, detail };
    let mut observer = host.observer(workspace);
    match briefly_retried(|| crate::node::runner::record_event(store, session, kind.clone(), None, &mut *observer)) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, %session, "a person's change could not be recorded in the session");
            false
        }
    }
}

fn file_failed(error: FileError) -> CommandError {
    CommandError::new(error.code(), error.to_string())
}

pub(super) fn list(host: &dyn Host, workspace: &WorkspaceId, session: Option<SessionId>, path: String) -> Answer {
    let place = FilePlace::find(host.node(), workspace, session.as_ref())?;
    let entries = place.root.list(&path).map_err(file_failed)?;
    Ok(Listing { path, entries }.into())
}

pub(super) fn read(host: &dyn Host, workspace: &WorkspaceId, session: Option<SessionId>, path: &str) -> Answer {
    let place = FilePlace::find(host.node(), workspace, session.as_ref())?;
    Ok(place.root.read(path).map_err(file_failed)?.into())
}

pub(super) fn write(
    host: &dyn Host,
    workspace: &WorkspaceId,
    session: Option<SessionId>,
    path: String,
    content: &str,
    expected_hash: Option<String>,
    by: Option<String>,
) -> Answer {
    let place = FilePlace::find(host.node(), workspace, session.as_ref())?;
    place.not_busy()?;
    let action = if expected_hash.is_some() { "edit" } else { "create" };
    let hash = place.root.write(&path, content, expected_hash.as_deref()).map_err(file_failed)?;
    let detail = format!("{} bytes, sha256 {}", content.len(), &hash[..12]);
    let recorded = place.record(host, by, action, Some(path.clone()), Some(detail));
    Ok(FileWritten { path, hash, recorded }.into())
}

pub(super) fn move_path(
    host: &dyn Host,
    workspace: &WorkspaceId,
    session: Option<SessionId>,
    from: &str,
    to: &str,
    by: Option<String>,
) -> Answer {
    let place = FilePlace::find(host.node(), workspace, session.as_ref())?;
    place.not_busy()?;
    let (from, to) = place.root.rename(from, to).map_err(file_failed)?;
    let recorded = place.record(host, by, "move", Some(to.clone()), Some(format!("from {from}")));
    Ok(PathMoved { from, to, recorded }.into())
}

pub(super) fn delete(
    host: &dyn Host,
    workspace: &WorkspaceId,
    session: Option<SessionId>,
    path: &str,
    expected_hash: Option<String>,
    by: Option<String>,
) -> Answer {
    let place = FilePlace::find(host.node(), workspace, session.as_ref())?;
    place.not_busy()?;
    let path = place.root.delete(path, expected_hash.as_deref()).map_err(file_failed)?;
    let recorded = place.record(host, by, "delete", Some(path.clone()), None);
    Ok(PathDeleted { path, recorded }.into())
}
