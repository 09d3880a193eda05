//! Core: the control plane's view of sessions across workspaces, answered
//! from the SQLite index and kept in step with the stores. In this build Core
//! runs inside the CLI process; the server (HTTP API, panel) wraps the same
//! queries.
//!
//! Never writes a workspace: reading refs to index them and to show diffs is
//! all it does with a repository.

mod api;
pub mod auth;
mod authority;
mod commands;
mod failure;
mod follow;
mod ingest;
mod link;
mod listen;
mod mcp;
mod monitor;
mod native;
mod registry;
mod state;
pub mod telemetry;
mod terminals;
mod tools;

use std::path::{Path, PathBuf};

pub use api::{Server, serve};
pub use failure::ApiFailure;
pub use registry::new_secret;
pub use state::{CoreState, ServeConfig, write_private};
pub use terminals::{TerminalCommand, TerminalSummary, bridge as terminal_bridge};
pub use tools::CALLS_SHOWN;

use crate::index::{self, Index, SyncStats};
use crate::protocol::{Event, SearchHit, SessionId, SessionState, SessionSummary, TurnSummary, Workspace};
use crate::store::{self, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Index(#[from] index::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("Core's registry `{}`: {context}", path.display())]
    Registry {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}`: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    #[error("session `{session}` has no turn {turn} (it has {turns})")]
    NoSuchTurn { session: SessionId, turn: u32, turns: u32 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub struct Core {
    index: Index,
}

impl Core {
    pub fn index_path(data_dir: &Path) -> PathBuf {
        data_dir.join("index.sqlite")
    }

    pub fn open(data_dir: &Path) -> Result<Core> {
        Ok(Core { index: Index::open(&Self::index_path(data_dir))? })
    }

    /// Brings the index in step with the refs of `workspaces`, noticing refs
    /// that changed behind Cortex's back (a plain `git fetch`).
    pub fn sync(&mut self, workspaces: &[Workspace]) -> Result<SyncStats> {
        let mut total = SyncStats::default();
        for workspace in workspaces {
            let store = match Store::discover(Path::new(&workspace.path)) {
                Ok(store) => store,
                Err(error) => {
                    tracing::debug!(workspace = %workspace.path, %error, "workspace unavailable; keeping its rows");
                    continue;
                }
            };
            self.index.put_workspace(workspace)?;
            let stats = self.index.sync_workspace(workspace, &store)?;
            total.sessions += stats.sessions;
            total.events += stats.events;
            total.removed += stats.removed;
        }
        Ok(total)
    }

    /// Throws the index away and rebuilds it from the refs.
    pub fn rebuild(
        data_dir: &Path,
        workspaces: &[Workspace],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Core, SyncStats)> {
        let (index, stats) = Index::rebuild(&Self::index_path(data_dir), workspaces, progress)?;
        Ok((Core { index }, stats))
    }

    pub fn sessions(&self, state: Option<SessionState>) -> Result<Vec<SessionSummary>> {
        Ok(self.index.sessions(state)?)
    }

    pub fn resolve(&self, prefix: &str) -> Result<SessionSummary> {
        Ok(self.index.resolve_session(prefix)?)
    }

    pub fn events(&self, session: &SessionId, after: u64) -> Result<Vec<Event>> {
        Ok(self.index.events(session, after)?)
    }

    pub fn turns(&self, session: &SessionId) -> Result<Vec<TurnSummary>> {
        Ok(self.index.turns(session)?)
    }

    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        Ok(self.index.search(query, limit)?)
    }

    /// Token use and cost summed by `by` since `since` (RFC 3339).
    pub fn usage(&self, by: crate::protocol::UsageBy, since: Option<&str>) -> Result<crate::protocol::UsageReport> {
        let rows = self.index.usage(by, since)?;
        Ok(crate::protocol::UsageReport::new(by, since.map(str::to_string), rows))
    }

    /// The unified diff of one turn, or of the whole session.
    pub fn diff(&self, session: &SessionSummary, turn: Option<u32>) -> Result<String> {
        let store = Store::discover(Path::new(&session.workspace_path))?;
        Ok(store.session_diff(&session.id, turn)?)
    }
}
