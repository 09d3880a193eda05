//! The node: owns workspaces and runs sessions in them, writing each
//! session's store. In this build the node runs in the CLI's process; the
//! daemon that connects to Core reuses exactly these parts.
//!
//! Only `node` and `provider` spawn processes (the store's git plumbing
//! aside).

mod artifacts;
mod checks;
mod cli_tool;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod files;
mod gateway;
mod gc;
mod git;
pub mod identity;
mod ledger;
mod mcp;
mod meter;
mod outbox;
mod project_tools;
mod provenance;
mod runner;
mod spec;
pub mod terminals;
mod workspaces;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use gc::Collected;

/// Reads a workspace's `.cortex/config.toml`, for the fuzz tests.
#[cfg(test)]
pub(crate) fn fuzz_load_config(workdir: &Path) -> Result<()> {
    config::RepoConfig::load(workdir).map(|_| ())
}
pub use runner::{Approver, Cancel, Observer, PreparedTurn, ProviderSpec, StartRequest, TurnResult};

use crate::protocol::{NodeId, SessionId, Workspace};
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
    #[error("`{agent}` is not installed on this node: there is no `{program}`; install {install}")]
    AgentMissing { agent: String, program: String, install: String },
    #[error(
        "no agent `{name}`: declare it as [agents.{name}] in .cortex/config.toml (command = [...]); providers here: {known}"
    )]
    UnknownAgent { name: String, known: String },
    #[error("session `{0}` changed nothing that could be committed")]
    NothingToCommit(SessionId),
    #[error(
        "{} changed since turn {turn}'s snapshot, the state that was reviewed; review the new state, or commit the reviewed snapshot with --as-reviewed (your later changes stay in the working tree)",
        paths.join(", ")
    )]
    ChangedSinceReview { turn: u32, paths: Vec<String> },
    #[error(
        "`{path}` changed since the review and held a secret Cortex redacted in the snapshot: the reviewed content is not kept, so commit it yourself"
    )]
    RedactedInSnapshot { path: String },
    /// The session's budget is used up: no new turn until it is raised.
    #[error("{0}; raise it to continue the session")]
    BudgetSpent(String),
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

impl Error {
    /// The code a command answers with when it fails this way.
    pub fn code(&self) -> crate::protocol::ErrorCode {
        use crate::protocol::ErrorCode;
        match self {
            Error::Provider(crate::provider::Error::Script(_)) => ErrorCode::BadInput,
            Error::Lifecycle(_) => ErrorCode::IllegalTransition,
            Error::Config { .. }
            | Error::NothingToCommit(_)
            | Error::RedactedInSnapshot { .. }
            | Error::AgentMissing { .. }
            | Error::UnknownAgent { .. } => ErrorCode::BadInput,
            Error::Store(store::Error::SessionBusy(_)) => ErrorCode::Busy,
            Error::ChangedSinceReview { .. } => ErrorCode::Conflict,
            Error::BudgetSpent(_) => ErrorCode::Forbidden,
            Error::Store(
                store::Error::SessionNotFound(_)
                | store::Error::NoSuchTurn { .. }
                | store::Error::NoSuchSessionFile { .. },
            ) => ErrorCode::NotFound,
            Error::Store(
                store::Error::NotASessionFile { .. }
                | store::Error::NotARepository { .. }
                | store::Error::Bare { .. }
                | store::Error::Reftable { .. }
                | store::Error::Sha256 { .. },
            ) => ErrorCode::BadInput,
            _ => ErrorCode::Failed,
        }
    }
}

/// A node rooted at a data dir.
#[derive(Clone)]
pub struct Node {
    data_dir: PathBuf,
    name: String,
    /// The node's one id, in-process and as a daemon (`node.toml`).
    id: NodeId,
    /// Providers with a live process between turns, by session.
    live: runner::LiveProviders,
    /// Turns running now, for the MCP gateway.
    turns: runner::Turns,
    /// The MCP gateway sessions' agents are given, on a node daemon.
    gateway: Option<Arc<gateway::Gateway>>,
}

impl Node {
    /// The node on `data_dir`, with the identity kept there (made on first
    /// use): the in-process node of the CLI is the node `cortex up` runs.
    pub fn open(data_dir: &Path) -> Result<Node> {
        let identity = identity::Identity::load_or_create(data_dir)?;
        Ok(Node::with_identity(data_dir, &identity.node_id, &identity.name))
    }

    /// A node enrolled with Core under `id`.
    pub fn with_identity(data_dir: &Path, id: &NodeId, name: &str) -> Node {
        Node {
            data_dir: data_dir.to_path_buf(),
            id: id.clone(),
            name: name.to_string(),
            live: Default::default(),
            turns: Default::default(),
            gateway: None,
        }
    }

    /// This node with an MCP gateway serving its sessions' agents.
    pub(crate) fn with_gateway(mut self, gateway: Arc<gateway::Gateway>) -> Node {
        self.gateway = Some(gateway);
        self
    }

    /// Where `meta`'s agent reaches Cortex's MCP gateway, on a node daemon.
    fn gateway_url(&self, meta: &store::Meta) -> Option<String> {
        let gateway = self.gateway.as_ref()?;
        let workspaces = self.workspaces().unwrap_or_default();
        let workspace = workspaces.iter().find(|workspace| workspace.id.as_str() == meta.workspace);
        let cwd = meta.worktree.as_deref().or(workspace.map(|workspace| workspace.path.as_str()));
        Some(gateway.url_for(&meta.id, workspace.map(|ws| ws.name.as_str()), cwd.map(Path::new)))
    }

    /// This node recording its turns' gateway calls through `turns`.
    pub(crate) fn with_turns(mut self, turns: runner::Turns) -> Node {
        self.turns = turns;
        self
    }

    /// The turns running on this node, where a gateway records its calls.
    pub fn turns(&self) -> &runner::Turns {
        &self.turns
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The workspaces bound on this node, each naming this node by its id
    /// (a registry written before nodes had one id may name a host).
    pub fn workspaces(&self) -> Result<Vec<Workspace>> {
        let mut workspaces = workspaces::load(&self.data_dir)?;
        for workspace in &mut workspaces {
            workspace.node = self.id.to_string();
        }
        Ok(workspaces)
    }

    /// Binds the repository `store` belongs to (idempotent).
    pub fn bind(&self, store: &Store) -> Result<Workspace> {
        workspaces::bind(&self.data_dir, self.id.as_str(), store)
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
