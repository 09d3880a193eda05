//! The git-native session store: the source of truth. Each session is one
//! commit chain under `refs/cortex/sessions/<id>` in the workspace repository,
//! whose tip tree alone describes the session (see DESIGN.md for the layout).
//!
//! Must not touch the user's HEAD, index, branches or working tree, and must
//! not import anything from the crate but `protocol`. The git CLI is used only
//! for what gix cannot do: snapshotting the working tree through a private
//! index file, unified diffs, and push/fetch.

mod diff;
mod git;
mod journal;
mod meta;
mod read;
pub mod redact;
mod remote;
mod session;
mod spool;
mod subject;
mod worktree;

use std::path::{Path, PathBuf};

pub use journal::JOURNAL_REF;
pub use meta::{Meta, SCHEMA as META_SCHEMA};
pub use read::{SessionView, SnapshotFile, TurnFiles};
pub use remote::{RefsSummary, fetch, push};
pub use session::{FlushReason, SessionWriter};
pub use spool::Recovered;
pub use worktree::{DiffStat, LEFT_OUT, Snapshot};

use crate::protocol::SessionId;

/// Where session refs live; the remote-tracking copies use the same suffix.
pub const SESSIONS_PREFIX: &str = "refs/cortex/sessions/";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{}` is not inside a git repository (run this from a repository, or `git init` one first)", path.display())]
    NotARepository { path: PathBuf },
    #[error("`{}` is a bare repository: sessions need a working tree", path.display())]
    Bare { path: PathBuf },
    #[error(
        "`{}` is a git repository with SHA-256 object names, which Cortex cannot store sessions in yet; use a SHA-1 repository (the default of `git init`)",
        path.display()
    )]
    Sha256 { path: PathBuf },
    #[error(
        "`{}` uses the reftable ref format, which Cortex cannot write safely yet; convert it with `git refs migrate --ref-format=files`",
        path.display()
    )]
    Reftable { path: PathBuf },
    #[error("no session `{0}` in this repository")]
    SessionNotFound(SessionId),
    #[error(
        "the worktree of session `{session}` (`{path}`) was removed by `cortex gc`; branch `{branch}` keeps its commits"
    )]
    WorktreeGone { session: SessionId, path: String, branch: String },
    #[error("session `{session}` has no turn {turn} (it has {turns})")]
    NoSuchTurn { session: SessionId, turn: u32, turns: u32 },
    #[error("`{path}` is not a file a session keeps under `turns/` (evidence, prompts, diffs)")]
    NotASessionFile { path: String },
    #[error("session `{session}` has no file `{path}`")]
    NoSuchSessionFile { session: SessionId, path: String },
    #[error("session `{0}` already exists in this repository")]
    SessionExists(SessionId),
    #[error(
        "session `{0}` is running a turn, so the input was not sent: add to the turn with `cortex session steer` (agents that take it), end it with `cortex session interrupt`, or send again when it is idle"
    )]
    SessionBusy(SessionId),
    #[error("ref `{name}` moved while Cortex was writing it, {attempts} times in a row; another writer is active")]
    Contended { name: String, attempts: u32 },
    #[error("corrupt session data in `{what}`: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("{context}")]
    Git {
        context: String,
        #[source]
        source: gix::Error,
    },
    #[error("`git {args}` failed in `{}`: {stderr}", dir.display())]
    GitCommand { args: String, dir: PathBuf, stderr: String },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the noun to a gix error: what Cortex was doing when it failed.
trait GitContext<T> {
    fn git(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<gix::Error>> GitContext<T> for std::result::Result<T, E> {
    fn git(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Git { context: context(), source: source.into() })
    }
}

trait IoContext<T> {
    fn io(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: context(), source })
    }
}

/// One workspace repository opened for reading and writing session refs.
pub struct Store {
    repo: gix::Repository,
    workdir: PathBuf,
}

impl Store {
    /// Opens the repository containing `path`, as git would find it.
    pub fn discover(path: &Path) -> Result<Store> {
        let repo = gix::discover(path).map_err(|_| {
            // This build reads SHA-1 repositories only: say so rather than
            // calling a SHA-256 one "not a repository".
            let format = git::run(path, ["rev-parse", "--show-object-format"], &[]).unwrap_or_default();
            if String::from_utf8_lossy(&format).trim() == "sha256" {
                Error::Sha256 { path: path.to_path_buf() }
            } else {
                Error::NotARepository { path: path.to_path_buf() }
            }
        })?;
        Self::from_repo(repo, path)
    }

    fn from_repo(repo: gix::Repository, path: &Path) -> Result<Store> {
        let workdir = repo.workdir().ok_or_else(|| Error::Bare { path: path.to_path_buf() })?;
        let workdir = workdir.canonicalize().io(|| format!("cannot resolve `{}`", workdir.display()))?;
        let ref_storage = repo.config_snapshot().string("extensions.refStorage");
        if ref_storage.is_some_and(|value| value.eq_ignore_ascii_case(b"reftable")) {
            return Err(Error::Reftable { path: workdir });
        }
        let store = Store { repo, workdir };
        fs_err::create_dir_all(store.cortex_dir())
            .io(|| "cannot create Cortex's folder in the git directory".into())?;
        Ok(store)
    }

    /// The root of the working tree: the workspace path.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// `.git/cortex/` in the common git dir, shared by linked worktrees as
    /// `refs/cortex/*` is: spool, locks and private temp files.
    pub(crate) fn cortex_dir(&self) -> PathBuf {
        self.repo.common_dir().join("cortex")
    }

    /// Node-local files that are not part of the session's history (a fake
    /// script, say); never pushed.
    pub fn private_dir(&self) -> PathBuf {
        self.cortex_dir()
    }

    pub fn ref_name(id: &SessionId) -> String {
        format!("{SESSIONS_PREFIX}{id}")
    }

    /// The commit HEAD points at, `None` in a repository with no commits.
    pub fn head_commit(&self) -> Option<String> {
        self.repo.head_id().ok().map(|id| id.to_string())
    }

    /// The short name of the branch HEAD is on, if any.
    pub fn head_branch(&self) -> Option<String> {
        let head = self.repo.head_name().ok().flatten()?;
        Some(head.shorten().to_string())
    }

    pub fn remote_url(&self, remote: &str) -> Option<String> {
        let url = self.repo.config_snapshot().string(format!("remote.{remote}.url").as_str())?;
        Some(url.to_string())
    }

    /// Every session ref in this repository with its tip, sorted by id.
    pub fn session_tips(&self) -> Result<Vec<(SessionId, gix::ObjectId)>> {
        let platform = self.repo.references().git(|| "cannot list session refs".into())?;
        let iter = platform.prefixed(SESSIONS_PREFIX).git(|| "cannot list session refs".into())?;
        let mut tips = Vec::new();
        for reference in iter {
            let reference = reference.map_err(|source| Error::Git {
                context: "cannot read a session ref".into(),
                source: gix::Error::from_error(source),
            })?;
            let name = reference.name().as_bstr().to_string();
            let Ok(id) = name[SESSIONS_PREFIX.len()..].parse::<SessionId>() else {
                continue; // not ours: a ref someone else put under the prefix
            };
            // Session refs are direct; not peeling keeps a tip whose object is
            // missing visible, so it can be repaired rather than hidden.
            let Some(tip) = reference.try_id() else {
                continue;
            };
            tips.push((id, tip.detach()));
        }
        tips.sort();
        Ok(tips)
    }

    pub fn session_tip(&self, id: &SessionId) -> Result<Option<gix::ObjectId>> {
        let name = Self::ref_name(id);
        let reference = self.repo.try_find_reference(name.as_str()).git(|| format!("cannot read `{name}`"))?;
        Ok(reference.and_then(|reference| reference.try_id()).map(|id| id.detach()))
    }

    /// Moves `name` to `new` only if it still points at `expected` (or does not
    /// exist, for `None`), with a forced reflog entry by Cortex.
    pub(crate) fn cas_ref(
        &self,
        name: &str,
        expected: Option<gix::ObjectId>,
        new: gix::ObjectId,
        message: &str,
    ) -> std::result::Result<(), gix::Error> {
        use gix::refs::Target;
        use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
        let expected = match expected {
            Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
            None => PreviousValue::MustNotExist,
        };
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange { mode: RefLog::AndReference, force_create_reflog: true, message: message.into() },
                expected,
                new: Target::Object(new),
            },
            name: name.try_into().map_err(gix::Error::from_error)?,
            deref: false,
        };
        let committer = session::signature(jiff::Timestamp::now());
        let mut time = gix::date::parse::TimeBuf::default();
        self.repo.edit_references_as([edit], Some(committer.to_ref(&mut time)))?;
        Ok(())
    }
}
