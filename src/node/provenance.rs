//! Provenance: committing a session's changes to the person's branch with a
//! `Cortex-Session` trailer, so any commit leads back to the session that
//! produced it. Unlike the store, this touches the user's index and branch:
//! on purpose, and only on request.

use super::git::git;
use super::{Error, Node, Observer, Result, runner};
use crate::protocol::{EventKind, SessionId};
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
        let store = &store.for_session(session)?;
        let view = store.read_session(session)?;
        if view.meta.state.is_busy() {
            return Err(Error::Store(crate::store::Error::SessionBusy(session.clone())));
        }
        // The session's paths that differ from HEAD now: a file it deleted
        // that is already committed away is not "changed" any more.
        let session_paths = store.session_paths(session)?;
        let status = if session_paths.is_empty() {
            String::new()
        } else {
            git(
                store.workdir(),
                &["status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", "--"],
                &session_paths,
            )?
        };
        let paths: Vec<String> =
            status.split('\0').filter(|entry| entry.len() > 3).map(|entry| entry[3..].to_string()).collect();
        if paths.is_empty() {
            return Err(Error::NothingToCommit(session.clone()));
        }
        let message = message.map(str::to_string).unwrap_or_else(|| view.meta.title.clone());
        let workdir = store.workdir();
        git(workdir, &["add", "--all", "--"], &paths)?;
        let trailer = format!("Cortex-Session: {session}");
        git(workdir, &["commit", "--quiet", "--message", &message, "--trailer", &trailer, "--"], &paths)?;
        let commit = git(workdir, &["rev-parse", "HEAD"], &[])?.trim().to_string();
        let kind = EventKind::CommitCreated { commit: commit.clone(), message };
        runner::record_event(store, session, kind, None, observer)?;
        Ok(commit)
    }
}
