//! Workspace commands: bind a repository (checked against the node's
//! allowed roots), unbind it, list its checks, read its journal.

use std::path::Path;

use super::files::FilePlace;
use super::{Answer, Host, failed, store_failed};
use crate::node::config::RepoConfig;
use crate::protocol::reply::{CheckList, CheckSpec, JournalRead, Unbound};
use crate::protocol::{CommandError, ErrorCode, WorkspaceId};
use crate::store::Store;

/// Binds a repository after checking it: it exists, is a git repository
/// with a working tree, and lies under an allowed root if any are set.
pub(super) fn bind(host: &dyn Host, path: &str) -> Answer {
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(CommandError::new(ErrorCode::BadInput, format!("`{}` is not an absolute path", path.display())));
    }
    if !path.exists() {
        return Err(CommandError::new(
            ErrorCode::BadInput,
            format!("`{}` does not exist on this node", path.display()),
        ));
    }
    let store = Store::discover(path).map_err(store_failed)?;
    let roots = host.allowed_roots();
    let allowed = roots.is_empty()
        || roots.iter().any(|root| root.canonicalize().is_ok_and(|root| store.workdir().starts_with(root)));
    if !allowed {
        let roots: Vec<_> = roots.iter().map(|root| root.display().to_string()).collect();
        return Err(CommandError::new(
            ErrorCode::BadInput,
            format!("`{}` is outside this node's allowed roots ({})", store.workdir().display(), roots.join(", ")),
        ));
    }
    Ok(host.node().bind(&store).map_err(failed)?.into())
}

pub(super) fn unbind(host: &dyn Host, workspace: &WorkspaceId) -> Answer {
    Ok(Unbound { unbound: host.node().unbind(workspace).map_err(failed)? }.into())
}

pub(super) fn list_checks(host: &dyn Host, workspace: &WorkspaceId) -> Answer {
    let place = FilePlace::find(host.node(), workspace, None)?;
    let config = RepoConfig::load(place.root.dir()).map_err(failed)?;
    let checks =
        config.checks.into_iter().map(|check| CheckSpec { name: check.name, command: check.command }).collect();
    Ok(CheckList { checks }.into())
}

pub(super) fn read_journal(host: &dyn Host, workspace: &WorkspaceId, limit: usize) -> Answer {
    let place = FilePlace::find(host.node(), workspace, None)?;
    Ok(JournalRead { entries: place.store.journal(limit.min(1000)).map_err(store_failed)? }.into())
}
