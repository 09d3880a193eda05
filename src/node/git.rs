//! The git commands the node runs in a person's repository on their behalf,
//! as they would: their config and identity. Unlike the store, these touch
//! the user's index, branches and worktrees: on request only (a session
//! commit, a `--worktree` session, `cortex gc`).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{Error, Result};
use crate::store::Store;

/// Runs git in the workspace as the person would: their config and identity.
pub(super) fn git(workdir: &Path, args: &[&str], paths: &[String]) -> Result<String> {
    git_with(workdir, &[], args, paths)
}

/// [`git`] with more environment (`GIT_INDEX_FILE` for an index of its own).
pub(super) fn git_with(
    workdir: &Path,
    envs: &[(&str, &std::ffi::OsStr)],
    args: &[&str],
    paths: &[String],
) -> Result<String> {
    let output = Command::new("git")
        .current_dir(workdir)
        .envs(envs.iter().copied())
        .args(args)
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Io { context: "cannot run git".into(), source })?;
    if !output.status.success() {
        return Err(Error::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Adds a worktree at `path` on a new branch `branch` from HEAD, and opens it.
pub(super) fn add_worktree(repo: &Path, path: &Path, branch: &str) -> Result<Store> {
    let path_text = path.to_string_lossy().into_owned();
    git(repo, &["worktree", "add", "--quiet", "-b", branch, &path_text, "HEAD"], &[])?;
    Ok(Store::discover(path)?)
}

/// Removes a session worktree; its branch stays.
pub(super) fn remove_worktree(repo: &Path, path: &Path) -> Result<()> {
    if path.exists() {
        git(repo, &["worktree", "remove", "--force", &path.to_string_lossy()], &[])?;
    } else {
        git(repo, &["worktree", "prune"], &[])?;
    }
    Ok(())
}
