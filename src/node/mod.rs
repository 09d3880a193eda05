//! The node: owns workspaces and runs sessions in them, writing each
//! session's store. In this build the node runs in the CLI's process; the
//! daemon that connects to Core reuses exactly these parts.
//!
//! Only `node` and `provider` spawn processes (the store's git plumbing
//! aside).

mod checks;
mod config;
pub mod daemon;
pub mod files;
mod gc;
mod git;
mod ledger;
mod outbox;
mod provenance;
mod runner;
mod spec;
pub mod terminals;
mod workspaces;

use std::path::{Path, PathBuf};

pub use gc::Collected;

/// Reads a workspace's `.cortex/config.toml`, for the fuzz tests.
#[cfg(test)]
pub(crate) fn fuzz_load_config(workdir: &Path) -> Result<()> {
    config::RepoConfig::load(workdir).map(|_| ())
}
pub use runner::{Approver, Cancel, Observer, PreparedTurn, ProviderSpec, StartRequest, TurnResult};

use crate::protocol::{SessionId, Workspace};
use crate::store::{self, Recovered, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Provider(#[from] crate::provider::Error),
    #[error(transparent)]
    Lifecycle(#[from] crate::protocol::IllegalTransition),
    #[error("session `{session}` uses provider `{provider}`, which this node does not have")]
    UnknownProvider { session: SessionId, provider: String },
    #[error("session `{0}` changed nothing that could be committed")]
    NothingToCommit(SessionId),
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("Core refused this node ({reason:?}): {message}")]
    Refused { reason: crate::protocol::Refusal, message: String },
    #[error(
        "this node is not enrolled: get a token with `cortex node enroll` on Core's machine and pass it with --token"
    )]
    NotEnrolled,
    #[error("{0}")]
    Link(String),
    #[error("`{}` is malformed: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A node rooted at a data dir.
#[derive(Clone)]
pub struct Node {
    data_dir: PathBuf,
    name: String,
    /// Core's id for this node; the host name when running in-process.
    id: String,
    /// Providers with a live process between turns, by session.
    live: runner::LiveProviders,
}

impl Node {
    /// The in-process node of the CLI, named after this machine.
    pub fn new(data_dir: &Path) -> Node {
        let name = host_name();
        Node { data_dir: data_dir.to_path_buf(), id: name.clone(), name, live: Default::default() }
    }

    /// A node enrolled with Core under `id`.
    pub fn with_identity(data_dir: &Path, id: &str, name: &str) -> Node {
        Node { data_dir: data_dir.to_path_buf(), id: id.to_string(), name: name.to_string(), live: Default::default() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The workspaces bound on this node.
    pub fn workspaces(&self) -> Result<Vec<Workspace>> {
        workspaces::load(&self.data_dir)
    }

    /// Binds the repository `store` belongs to (idempotent).
    pub fn bind(&self, store: &Store) -> Result<Workspace> {
        workspaces::bind(&self.data_dir, &self.id, store)
    }

    /// Forgets a binding (the files and refs stay); `false` if unknown.
    pub fn unbind(&self, workspace: &crate::protocol::WorkspaceId) -> Result<bool> {
        workspaces::unbind(&self.data_dir, workspace)
    }

    /// Replays the spools of sessions whose process died, in every bound
    /// workspace that still exists.
    pub fn recover(&self) -> Result<Vec<Recovered>> {
        let mut recovered = Vec::new();
        for workspace in self.workspaces()? {
            match Store::discover(Path::new(&workspace.path)) {
                Ok(store) => recovered.extend(store.recover()?),
                Err(error) => {
                    tracing::debug!(workspace = %workspace.path, %error, "workspace unavailable")
                }
            }
        }
        Ok(recovered)
    }
}

pub fn host_name() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "local".to_string())
}
