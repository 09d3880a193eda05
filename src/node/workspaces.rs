//! The node's workspace bindings, kept in `workspaces.toml` in its data dir.
//! They are node configuration, not index data: the index is rebuilt from
//! the refs of exactly these repositories.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Result};
use crate::protocol::{Workspace, WorkspaceId};
use crate::store::Store;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    #[serde(default, rename = "workspace")]
    workspaces: Vec<Workspace>,
}

pub(super) fn registry_path(data_dir: &Path) -> PathBuf {
    data_dir.join("workspaces.toml")
}

pub(super) fn load(data_dir: &Path) -> Result<Vec<Workspace>> {
    let path = registry_path(data_dir);
    match fs_err::read_to_string(&path) {
        Ok(text) => {
            let registry: Registry = toml::from_str(&text)
                .map_err(|error| Error::Config { path: path.clone(), detail: error.to_string() })?;
            Ok(registry.workspaces)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io { context: format!("cannot read `{}`", path.display()), source }),
    }
}

fn save(data_dir: &Path, workspaces: &[Workspace]) -> Result<()> {
    let path = registry_path(data_dir);
    let text = toml::to_string(&Registry { workspaces: workspaces.to_vec() })
        .expect("holds because workspaces are plain TOML");
    fs_err::create_dir_all(data_dir)
        .map_err(|source| Error::Io { context: "cannot create the data dir".into(), source })?;
    // Written whole and renamed into place, so a crash leaves the old file.
    let tmp = tempfile::NamedTempFile::new_in(data_dir)
        .map_err(|source| Error::Io { context: "cannot write the workspace registry".into(), source })?;
    fs_err::write(tmp.path(), text)
        .map_err(|source| Error::Io { context: "cannot write the workspace registry".into(), source })?;
    tmp.persist(&path)
        .map_err(|error| Error::Io { context: format!("cannot replace `{}`", path.display()), source: error.error })?;
    Ok(())
}

/// Binds the repository at `store`'s root, or returns its existing binding
/// with details refreshed.
pub(super) fn bind(data_dir: &Path, node: &str, store: &Store) -> Result<Workspace> {
    let mut workspaces = load(data_dir)?;
    let path = store.workdir().to_string_lossy().into_owned();
    let name =
        store.workdir().file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| path.clone());
    let remote_url = store.remote_url("origin");
    let default_branch = store.head_branch();
    let existing = workspaces.iter_mut().find(|workspace| workspace.path == path);
    let workspace = match existing {
        Some(workspace) => {
            if workspace.remote_url == remote_url
                && workspace.default_branch == default_branch
                && workspace.node == node
            {
                return Ok(workspace.clone());
            }
            workspace.remote_url = remote_url;
            workspace.default_branch = default_branch;
            workspace.node = node.to_string();
            workspace.clone()
        }
        None => {
            let workspace = Workspace {
                id: WorkspaceId::generate(),
                node: node.to_string(),
                path,
                name,
                remote_url,
                default_branch,
            };
            workspaces.push(workspace.clone());
            workspace
        }
    };
    save(data_dir, &workspaces)?;
    Ok(workspace)
}

pub(super) fn unbind(data_dir: &Path, id: &WorkspaceId) -> Result<bool> {
    let mut workspaces = load(data_dir)?;
    let before = workspaces.len();
    workspaces.retain(|workspace| workspace.id != *id);
    if workspaces.len() == before {
        return Ok(false);
    }
    save(data_dir, &workspaces)?;
    Ok(true)
}
