//! The node daemon: connects outbound to Core over WebSocket, enrolls or
//! authenticates, heartbeats, runs the commands Core routes to it, and sends
//! every event of its sessions until Core acknowledges it. Events are
//! durable in the store's spool before they are sent; after a reconnect (or
//! a restart, or an index rebuild on Core) the welcome says what Core has,
//! and the rest is sent again from the refs.
//!
//! `link.rs` is the WebSocket link, `commands/` the handler table (one file
//! per area), `approvals.rs` who answers an agent's questions, `host.rs`
//! what the machine has. The identity is `node/identity.rs`, the outbox
//! `node/outbox.rs`.

mod approvals;
mod commands;
mod host;
mod link;
mod terminals;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::config::RepoConfig;
use super::outbox::Outbox;
use super::{Cancel, Error, Node, Observer, Result};
use crate::protocol::{CommandOutcome, Event, EventKind, Refusal, SessionId, SessionState, Workspace};
use crate::store::{self, Meta, Store};

/// Reconnect delays grow from the first to the cap, with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Core's base URL, e.g. `http://127.0.0.1:7777`.
    pub core_url: String,
    /// A one-time enrollment token, for a node that has no credential yet.
    pub enroll_token: Option<String>,
    pub data_dir: PathBuf,
    pub name: Option<String>,
    /// When set, workspaces may only be bound under these folders.
    pub allowed_roots: Vec<PathBuf>,
}

/// State that outlives any one link.
struct Runtime {
    config: DaemonConfig,
    node: OnceLock<Node>,
    outbox: Mutex<Outbox>,
    wake: Notify,
    running: Mutex<HashMap<SessionId, Cancel>>,
    /// Commands running now, so a copy that arrives meanwhile waits for
    /// the first one's answer instead of running again.
    results: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<CommandOutcome>>>>,
    /// Every command that changes something, with its answer: a command id
    /// runs once, also across restarts.
    ledger: Option<super::ledger::Ledger>,
    approvals: Mutex<HashMap<SessionId, approvals::PendingApproval>>,
    approved_sessions: Mutex<std::collections::HashSet<SessionId>>,
    /// Idle sessions and since when, for their managed lifetime.
    idle_since: Mutex<HashMap<SessionId, (jiff::Timestamp, Workspace)>>,
    terminals: super::terminals::Terminals,
    /// The link's outgoing frames, for terminal output from PTY threads.
    outlet: super::terminals::Outlet,
    /// Terminals opened from a session: where their command lines are recorded.
    terminal_sessions: Mutex<HashMap<String, TerminalPlace>>,
    /// Keys for terminals, typed in arrival order by one worker.
    keys: Mutex<Option<std::sync::mpsc::Sender<(String, String)>>>,
    /// The MCP servers this node runs for the Tool Registry.
    servers: Arc<super::mcp::Servers>,
    /// The MCP gateway this node's sessions' agents are given.
    gateway: Arc<super::gateway::Gateway>,
    /// The turns running here, shared by the node and the gateway.
    turns: super::runner::Turns,
    /// The registry's tools for this node, as Core last sent them.
    core_tools: Mutex<Vec<crate::protocol::Dependency>>,
    /// The `.cortex/tools.toml` files people trusted, as Core last sent them.
    trusted_tools: Mutex<std::collections::BTreeMap<String, String>>,
}

/// Runs the registry's tools for this node and its workspaces' own
/// (`.cortex/tools.toml`; a name the registry has is the registry's), and
/// answers every tool's state.
async fn reconcile_tools(runtime: &Arc<Runtime>) -> Vec<crate::protocol::ToolState> {
    let mut desired = lock(&runtime.core_tools).clone();
    let workspaces = runtime.node.get().map(|node| node.workspaces().unwrap_or_default()).unwrap_or_default();
    let trusted = lock(&runtime.trusted_tools).clone();
    let (project, mut problems) = super::project_tools::load_all(&workspaces, &trusted);
    for tool in project {
        if desired.iter().any(|taken| taken.name == tool.name) {
            problems.push(crate::protocol::ToolState {
                name: tool.name.clone(),
                phase: crate::protocol::ToolPhase::Failed,
                reason: Some(format!("{}'s .cortex/tools.toml names a tool the registry has; rename it", tool.scope)),
                tools: Vec::new(),
                version: None,
                digest: None,
            });
        } else {
            desired.push(tool);
        }
    }
    runtime.gateway.forget_native().await;
    runtime.servers.reconcile(desired, problems).await
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    fn node(&self) -> &Node {
        self.node.get().expect("holds because the node is known after the first welcome")
    }
}

/// Where a terminal's command lines are recorded: its workspace's store,
/// the session it was opened from (else the workspace journal), and who
/// opened it.
type TerminalPlace = (Store, Option<SessionId>, Workspace, String);

/// Why a link ended.
enum Ended {
    Shutdown,
    Dropped(String),
}

/// Runs the daemon until `shutdown` turns true or Core refuses the node.
pub async fn run(config: DaemonConfig, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let _ = fs_err::create_dir_all(&config.data_dir);
    let servers = Arc::new(super::mcp::Servers::default());
    tokio::spawn(Arc::clone(&servers).supervise());
    let turns = super::runner::Turns::default();
    let gateway = super::gateway::Gateway::start(Arc::clone(&servers), turns.clone())
        .await
        .map_err(|error| Error::Link(format!("cannot start the MCP gateway on 127.0.0.1: {error}")))?;
    let runtime = Arc::new(Runtime {
        ledger: match super::ledger::Ledger::open(&config.data_dir) {
            Ok(ledger) => Some(ledger),
            Err(error) => {
                tracing::error!(%error, "cannot open the command ledger; duplicate commands are caught only while the node runs");
                None
            }
        },
        config,
        node: OnceLock::new(),
        outbox: Mutex::new(Outbox::default()),
        wake: Notify::new(),
        running: Mutex::new(HashMap::new()),
        results: Mutex::new(HashMap::new()),
        approvals: Mutex::new(HashMap::new()),
        approved_sessions: Mutex::new(std::collections::HashSet::new()),
        idle_since: Mutex::new(HashMap::new()),
        terminals: Default::default(),
        outlet: Default::default(),
        terminal_sessions: Mutex::new(HashMap::new()),
        keys: Mutex::new(None),
        servers,
        gateway,
        turns,
        core_tools: Mutex::default(),
        trusted_tools: Mutex::default(),
    });
    {
        let (keys, typed_keys) = std::sync::mpsc::channel::<(String, String)>();
        *lock(&runtime.keys) = Some(keys);
        let runtime = Arc::downgrade(&runtime);
        std::thread::spawn(move || {
            for (terminal, data) in typed_keys {
                let Some(runtime) = runtime.upgrade() else { break };
                terminals::typed(&runtime, &terminal, &data);
            }
        });
    }
    let mut delay = BACKOFF_FIRST;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match link::link(&runtime, &mut shutdown).await {
            Ok(Ended::Shutdown) => break,
            Ok(Ended::Dropped(reason)) => {
                tracing::warn!(%reason, "link to Core lost; reconnecting");
                delay = BACKOFF_FIRST;
            }
            Err(error @ (Error::Refused { .. } | Error::NotEnrolled)) => return Err(error),
            Err(error) => {
                tracing::warn!(%error, url = %runtime.config.core_url, "cannot reach Core; retrying")
            }
        }
        let jitter = Duration::from_millis(rand::random_range(0..=delay.as_millis() as u64 / 2));
        tokio::select! {
            _ = tokio::time::sleep(delay + jitter) => {}
            _ = shutdown.changed() => break,
        }
        delay = (delay * 2).min(BACKOFF_CAP);
    }
    stop_running_sessions(&runtime).await;
    Ok(())
}

/// Stops every running turn (its store is flushed by the runner, and the
/// session can be resumed with `send`), waiting a little for each.
async fn stop_running_sessions(runtime: &Arc<Runtime>) {
    let cancels: Vec<Cancel> = lock(&runtime.running).values().cloned().collect();
    for cancel in &cancels {
        cancel.cancel();
    }
    for _ in 0..100 {
        if lock(&runtime.running).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("some turns did not stop in time; their spools will be recovered on the next start");
}

/// Forwards each recorded event to the outbox and wakes the link.
struct Forward {
    runtime: Arc<Runtime>,
    workspace: Workspace,
}

impl Observer for Forward {
    fn event(&mut self, event: &Event, meta: &Meta) {
        lock(&self.runtime.outbox).push(meta.summary(&self.workspace), event.clone());
        self.runtime.wake.notify_one();
        if let EventKind::Lifecycle { to, .. } = &event.kind {
            let mut idle = lock(&self.runtime.idle_since);
            if *to == SessionState::Idle {
                idle.insert(meta.id.clone(), (event.at, self.workspace.clone()));
            } else {
                idle.remove(&meta.id);
            }
            // An ended session no longer holds its tools' servers up.
            let ended = matches!(to, SessionState::Stopped | SessionState::Expired | SessionState::Failed);
            if let (true, Ok(handle)) = (ended, tokio::runtime::Handle::try_current()) {
                let (servers, session) = (Arc::clone(&self.runtime.servers), meta.id.clone());
                handle.spawn(async move { servers.release(&session).await });
            }
        }
    }
}

/// Expires sessions idle past their repository's limit (managed lifetime).
fn expire_idle(runtime: &Arc<Runtime>) {
    let now = jiff::Timestamp::now();
    let candidates: Vec<(SessionId, jiff::Timestamp, Workspace)> = lock(&runtime.idle_since)
        .iter()
        .map(|(id, (since, workspace))| (id.clone(), *since, workspace.clone()))
        .collect();
    for (session, since, workspace) in candidates {
        let limit = RepoConfig::load(Path::new(&workspace.path)).unwrap_or_default().idle_limit();
        let idle_for = now.duration_since(since).unsigned_abs();
        if idle_for < limit || lock(&runtime.running).contains_key(&session) {
            continue;
        }
        lock(&runtime.idle_since).remove(&session);
        let Ok(store) = Store::discover(Path::new(&workspace.path)) else { continue };
        let reason = format!("idle for {} s, past the idle limit of {} s", idle_for.as_secs(), limit.as_secs());
        let mut forward = Forward { runtime: runtime.clone(), workspace };
        match runtime.node().expire(&store, &session, &reason, &mut forward) {
            Ok(_) => tracing::info!(%session, %reason, "session expired"),
            Err(error) => tracing::debug!(%session, %error, "session not expired"),
        }
    }
}

impl From<store::Error> for Box<Error> {
    fn from(error: store::Error) -> Self {
        Box::new(Error::Store(error))
    }
}

/// Whether an error from [`run`] means the node must not be restarted as is.
pub fn is_permanent(error: &Error) -> Option<Refusal> {
    match error {
        Error::Refused { reason, .. } => Some(*reason),
        _ => None,
    }
}
