//! Provenance: committing a session's changes to the person's branch with a
//! `Cortex-Session` trailer, so any commit leads back to the session that
//! produced it. Unlike the store, this touches the user's index and branch:
//! on purpose, and only on request.

use std::process::{Command, Stdio};

use super::{Error, Node, Observer, Result, runner};
use crate::protocol::SessionId;
use crate::store::Store;

impl Node {
    /// Commits the files the session changed (and only those: other staged
    /// or modified files are left as they are) and records the commit in the
    /// session. Returns the commit id.
    pub fn commit_session(
        &self,
        store: &Store,
        session: &SessionId,
        message: Option<&str>,
        observer: &mut dyn Observer,
    ) -> Result<String> {
        let view = store.read_session(session)?;
        if view.meta.state.is_busy() {
            return Err(Error::Store(crate::store::Error::SessionBusy(session.clone())));
        }
        let paths = store.session_paths(session)?;
        if paths.is_empty() {
            return Err(Error::NothingToCommit(session.clone()));
        }
        let message = message.map(str::to_string).unwrap_or_else(|| view.meta.title.clone());
        let workdir = store.workdir();
        git(workdir, &["add", "--all", "--"], &paths)?;
        let staged = git(workdir, &["diff", "--cached", "--name-only", "--"], &paths)?;
        if staged.trim().is_empty() {
            return Err(Error::NothingToCommit(session.clone()));
        }
        let trailer = format!("Cortex-Session: {session}");
        git(workdir, &["commit", "--quiet", "--message", &message, "--trailer", &trailer, "--"], &paths)?;
        let commit = git(workdir, &["rev-parse", "HEAD"], &[])?.trim().to_string();
        runner::record_commit(store, session, &commit, &message, observer)?;
        Ok(commit)
    }
}

/// Runs git in the workspace as the person would: their config and identity.
fn git(workdir: &std::path::Path, args: &[&str], paths: &[String]) -> Result<String> {
    let output = Command::new("git")
        .current_dir(workdir)
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
