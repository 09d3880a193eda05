//! Provenance: committing a session's changes to the person's branch with a
//! `Cortex-Session` trailer (and `Reviewed-by` when a reviewer approved the
//! last turn), so any commit leads back to the session that produced it.
//! What is committed is what was reviewed: the last turn's snapshot. Unlike
//! the store, this touches the user's index and branch: on purpose, and
//! only on request.

use super::git::{git, git_with};
use super::{Error, Node, Observer, Result, runner};
use crate::protocol::{EventKind, SessionId, Verdict};
use crate::sandbox::{Kind, RelPath, Root};
use crate::store::{self, SessionView, SnapshotFile, Store};

/// The most of a working file compared with its snapshot: what a snapshot
/// scans (a larger file was kept as a note).
const MAX_COMPARED: u64 = 64 * 1024 * 1024;

impl Node {
    /// Commits the files the session changed (and only those: other staged
    /// or modified files are left as they are) and records the commit in the
    /// session. A file changed since the last turn's snapshot (what a
    /// reviewer saw) is refused, unless `as_reviewed`: then the snapshot's
    /// content is committed and the working tree is left as it is. Returns
    /// the commit id.
    pub fn commit_session(
        &self,
        store: &Store,
        session: &SessionId,
        message: Option<&str>,
        as_reviewed: bool,
        observer: &mut dyn Observer,
    ) -> Result<String> {
        let store = &store.for_session(session)?;
        let view = store.read_session(session)?;
        if view.meta.state.is_busy() {
            return Err(Error::Store(store::Error::SessionBusy(session.clone())));
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
        let turn = view.meta.turns;
        let root = Root::open(store.workdir()).map_err(|error| Error::Io {
            context: "cannot open the workspace".into(),
            source: std::io::Error::other(error),
        })?;
        let mut changed = Vec::new();
        for path in &session_paths {
            if !matches_snapshot(&root, path, store.snapshot_file(&view, turn, path)?.as_ref()) {
                changed.push(path.clone());
            }
        }
        if !changed.is_empty() && !as_reviewed {
            return Err(Error::ChangedSinceReview { turn, paths: changed });
        }
        if paths.is_empty() && changed.is_empty() {
            return Err(Error::NothingToCommit(session.clone()));
        }
        let message = message.map(str::to_string).unwrap_or_else(|| view.meta.title.clone());
        let mut trailers = vec![format!("Cortex-Session: {session}")];
        if let Some(reviewer) = approved_by(store, &view)? {
            trailers.push(format!("Reviewed-by: {reviewer}"));
        }
        let workdir = store.workdir();
        let commit = if changed.is_empty() {
            git(workdir, &["add", "--all", "--"], &paths)?;
            let mut args = vec!["commit", "--quiet", "--message", &message];
            for trailer in &trailers {
                args.extend(["--trailer", trailer]);
            }
            args.push("--");
            git(workdir, &args, &paths)?;
            git(workdir, &["rev-parse", "HEAD"], &[])?.trim().to_string()
        } else {
            commit_snapshot(
                store,
                &view,
                turn,
                &session_paths,
                &changed,
                &format!("{message}\n\n{}", trailers.join("\n")),
            )?
        };
        let kind = EventKind::CommitCreated { commit: commit.clone(), message };
        runner::record_event(store, session, kind, None, observer)?;
        Ok(commit)
    }
}

/// Whether the working tree's `path` is what the snapshot kept (as stored:
/// redacted, so the working file is compared redacted too). A file too
/// large to scan was kept as a note, not its content: it cannot be told,
/// and counts as unchanged. The file is read through the sandbox: no link
/// is followed, and no more is read than a snapshot scans.
fn matches_snapshot(root: &Root, path: &str, snapshot: Option<&SnapshotFile>) -> bool {
    if snapshot.is_some_and(|kept| kept.data.starts_with(store::LEFT_OUT.as_bytes())) {
        return true;
    }
    let working = RelPath::parse(path).ok().and_then(|relative| match root.kind(&relative) {
        Ok(Some((Kind::Symlink, _))) => root.link_target(&relative).ok().map(String::into_bytes),
        Ok(Some((Kind::File, _))) => root.read(&relative, MAX_COMPARED).ok(),
        _ => None,
    });
    match (snapshot, working) {
        (None, None) => true,
        (Some(kept), Some(working)) => store::redact::redact_file(path, &working).as_ref() == kept.data.as_slice(),
        _ => false,
    }
}

/// Who approved the session as of its last turn, with no comment since.
fn approved_by(store: &Store, view: &SessionView) -> Result<Option<String>> {
    let events = store.events_after(view, 0)?;
    let last_review = events
        .iter()
        .rev()
        .find(|event| matches!(event.kind, EventKind::ReviewVerdict { .. } | EventKind::ReviewComment { .. }));
    Ok(match last_review.map(|event| &event.kind) {
        Some(EventKind::ReviewVerdict { by, verdict: Verdict::Approve, reviewed_turn, .. })
            if *reviewed_turn == view.meta.turns =>
        {
            Some(by.clone())
        }
        _ => None,
    })
}

/// Commits HEAD with the session's paths as the snapshot has them (those
/// changed since) or as the working tree has them (the rest), built in an
/// index of its own; then points the person's index at the commit for
/// those paths. Their working tree is not touched.
fn commit_snapshot(
    store: &Store,
    view: &SessionView,
    turn: u32,
    session_paths: &[String],
    changed: &[String],
    message: &str,
) -> Result<String> {
    let workdir = store.workdir();
    let scratch =
        tempfile::tempdir().map_err(|source| Error::Io { context: "cannot make a scratch index".into(), source })?;
    let index = scratch.path().join("index");
    let scratch_env = [("GIT_INDEX_FILE", index.as_os_str())];
    let with_index = |args: &[&str], paths: &[String]| git_with(workdir, &scratch_env, args, paths);
    let head = git(workdir, &["rev-parse", "HEAD"], &[])?.trim().to_string();
    with_index(&["read-tree", &head], &[])?;
    for path in session_paths {
        if !changed.contains(path) {
            with_index(&["update-index", "--add", "--remove", "--"], std::slice::from_ref(path))?;
            continue;
        }
        match store.snapshot_file(view, turn, path)? {
            Some(kept)
                if kept
                    .data
                    .windows(store::redact::REDACTED.len())
                    .any(|w| w == store::redact::REDACTED.as_bytes()) =>
            {
                return Err(Error::RedactedInSnapshot { path: path.clone() });
            }
            Some(kept) => {
                let info = format!("{},{},{path}", kept.mode, kept.oid);
                with_index(&["update-index", "--add", "--cacheinfo", &info], &[])?;
            }
            None => {
                with_index(&["update-index", "--force-remove", "--"], std::slice::from_ref(path))?;
            }
        }
    }
    let tree = with_index(&["write-tree"], &[])?.trim().to_string();
    let commit = git(workdir, &["commit-tree", &tree, "-p", &head, "-m", message], &[])?.trim().to_string();
    git(workdir, &["update-ref", "-m", "cortex: commit the reviewed snapshot", "HEAD", &commit, &head], &[])?;
    // The person's index follows the new HEAD for these paths only.
    let mut reset = vec!["reset".to_string(), "--quiet".into(), commit.clone(), "--".into()];
    reset.extend(session_paths.iter().cloned());
    let reset: Vec<&str> = reset.iter().map(String::as_str).collect();
    git(workdir, &reset, &[])?;
    Ok(commit)
}
