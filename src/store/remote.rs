//! Sharing sessions with plain git, opt-in: narrow refspecs, fetch into
//! remote-tracking refs, reconcile, push without force.

use super::{Error, GitContext, Result, SESSIONS_PREFIX, Store, git};
use crate::protocol::SessionId;

/// What a fetch or push did, session by session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefsSummary {
    pub created: Vec<SessionId>,
    pub fast_forwarded: Vec<SessionId>,
    pub unchanged: usize,
    /// Both sides wrote the session: the local ref is kept, the remote copy
    /// stays under `refs/remotes/<remote>/cortex/sessions/`.
    pub diverged: Vec<SessionId>,
}

fn tracking_prefix(remote: &str) -> String {
    format!("refs/remotes/{remote}/cortex/sessions/")
}

/// Fetches the remote's session refs into remote-tracking refs and brings
/// local session refs up to date where that loses nothing.
pub fn fetch(store: &Store, remote: &str) -> Result<RefsSummary> {
    let refspec = format!("+{SESSIONS_PREFIX}*:{}*", tracking_prefix(remote));
    git::run(store.workdir(), ["fetch", "--no-tags", "--no-write-fetch-head", "--prune", remote, &refspec], &[])?;
    // The fetch wrote refs behind gix's back: read them afresh.
    let store = Store::discover(store.workdir())?;
    let prefix = tracking_prefix(remote);
    let platform = store.repo.references().git(|| "cannot list fetched session refs".into())?;
    let mut summary = RefsSummary::default();
    let mut fetched = Vec::new();
    for reference in platform.prefixed(prefix.as_str()).git(|| "cannot list fetched session refs".into())? {
        let mut reference = reference.map_err(|source| Error::Git {
            context: "cannot read a fetched session ref".into(),
            source: gix::Error::from_error(source),
        })?;
        let name = reference.name().as_bstr().to_string();
        let Ok(id) = name[prefix.len()..].parse::<SessionId>() else {
            continue;
        };
        let tip = reference.peel_to_id().git(|| format!("cannot resolve `{name}`"))?.detach();
        fetched.push((id, tip));
    }
    for (id, remote_tip) in fetched {
        let name = Store::ref_name(&id);
        let message = format!("cortex: fetched from {remote}");
        match store.session_tip(&id)? {
            None => {
                store.cas_ref(&name, None, remote_tip, &message).git(|| format!("cannot create `{name}`"))?;
                summary.created.push(id);
            }
            Some(local) if local == remote_tip => summary.unchanged += 1,
            Some(local) if store.is_ancestor(local, remote_tip)? => {
                store.cas_ref(&name, Some(local), remote_tip, &message).git(|| format!("cannot update `{name}`"))?;
                summary.fast_forwarded.push(id);
            }
            Some(local) if store.is_ancestor(remote_tip, local)? => summary.unchanged += 1,
            Some(_) => {
                tracing::warn!(session = %id, "session diverged from {remote}; keeping the local ref");
                summary.diverged.push(id);
            }
        }
    }
    Ok(summary)
}

/// Pushes every local session ref, never forcing: a remote that has moved
/// on refuses, and the answer is to fetch first.
pub fn push(store: &Store, remote: &str) -> Result<usize> {
    let tips = store.session_tips()?;
    if tips.is_empty() {
        return Ok(0);
    }
    let refspec = format!("{SESSIONS_PREFIX}*:{SESSIONS_PREFIX}*");
    git::run(store.workdir(), ["push", "--no-verify", remote, &refspec], &[]).map_err(|error| match error {
        Error::GitCommand { args, dir, stderr } if stderr.contains("rejected") || stderr.contains("failed to push") => {
            Error::GitCommand {
                args,
                dir,
                stderr: format!("{stderr}\n(the remote has session history this repository lacks: run `cortex refs fetch {remote}` first)"),
            }
        }
        other => other,
    })?;
    Ok(tips.len())
}
