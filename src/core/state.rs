//! Core's state: its configuration, the index and registry behind their
//! locks, the live node links, and the reads every surface shares (API,
//! panel, in-process CLI through `Core`). Knows no HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::registry::{NodeRecord, Registry};
use super::{Error, Result};
use crate::index::Index;
use crate::protocol::{
    CommandOutcome, CoreFrame, Enrollment, Event, NodeId, NodeStatus, NodeSummary, PROTOCOL_VERSION, ProviderKind,
    SessionId, Workspace,
};

use super::failure::ApiFailure;

/// How Core runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// How often nodes are told to send a heartbeat.
    pub heartbeat: Duration,
    /// A node silent this long is `stale`.
    pub stale_after: Duration,
    /// A node silent this long is `offline`, and its link is closed.
    pub offline_after: Duration,
}

impl ServeConfig {
    pub fn new(data_dir: PathBuf, bind: SocketAddr) -> ServeConfig {
        ServeConfig {
            data_dir,
            bind,
            heartbeat: Duration::from_secs(5),
            stale_after: Duration::from_secs(15),
            offline_after: Duration::from_secs(45),
        }
    }
}

/// A node's live link, as the router and the monitor see it.
pub(crate) struct Link {
    pub(crate) conn_id: u64,
    pub(crate) tx: mpsc::Sender<CoreFrame>,
    pub(crate) status: NodeStatus,
    pub(crate) last_heartbeat: Instant,
    /// Wakes the link's task to close it (offline, revoked, index rebuilt).
    pub(crate) kick: Arc<tokio::sync::Notify>,
}

pub struct CoreState {
    pub(crate) config: ServeConfig,
    pub(crate) admin_token: String,
    pub(crate) index: Mutex<Index>,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) links: Mutex<HashMap<NodeId, Link>>,
    /// What each node last reported of the dependencies it was sent.
    pub(crate) tool_states: Mutex<HashMap<NodeId, Vec<crate::protocol::ToolState>>>,
    pub(super) waiters: Mutex<HashMap<String, Vec<oneshot::Sender<CommandOutcome>>>>,
    pub(crate) events: broadcast::Sender<Arc<(SessionId, Event)>>,
    pub(super) next_conn_id: std::sync::atomic::AtomicU64,
    pub(crate) terminals: super::terminals::Terminals,
    pub(crate) authority: super::authority::Authority,
    /// The address the HTTP server listens on, once it does.
    pub(super) bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// The group-commit queue for nodes' events, once Core serves.
    pub(crate) ingest: std::sync::OnceLock<super::ingest::Queue>,
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CoreState {
    /// Opens Core's registry and index in `config.data_dir`, creating the
    /// admin token (mode 0600) on first use.
    pub fn open(config: ServeConfig) -> Result<Arc<CoreState>> {
        fs_err::create_dir_all(&config.data_dir)
            .map_err(|source| Error::Io { context: "cannot create the data dir".into(), source })?;
        let admin_token = admin_token(&config.data_dir)?;
        let registry = Registry::open(&config.data_dir.join("core.sqlite"))?;
        let index = Index::open(&super::Core::index_path(&config.data_dir))?;
        // Bindings made before Core kept them in its registry are taken over
        // from the index once; from then on the registry decides.
        for workspace in index.workspaces()? {
            registry.bind(workspace.id.as_str(), &workspace.node)?;
        }
        let (events, _) = broadcast::channel(4096);
        Ok(Arc::new(CoreState {
            config,
            admin_token,
            index: Mutex::new(index),
            registry: Mutex::new(registry),
            links: Mutex::new(HashMap::new()),
            tool_states: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            events,
            next_conn_id: std::sync::atomic::AtomicU64::new(1),
            terminals: Default::default(),
            authority: Default::default(),
            bound: Default::default(),
            ingest: Default::default(),
        }))
    }

    /// The address Core's HTTP server listens on (`None` before it does,
    /// and in-process).
    pub fn bound_addr(&self) -> Option<std::net::SocketAddr> {
        self.bound.get().copied()
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub fn url_file(&self) -> PathBuf {
        self.config.data_dir.join("core.url")
    }

    pub fn session_count(&self) -> usize {
        lock(&self.index).sessions(None).map_or(0, |sessions| sessions.len())
    }

    /// Every session, newest first.
    pub fn sessions(&self) -> Result<Vec<crate::protocol::SessionSummary>> {
        Ok(lock(&self.index).sessions(None)?)
    }

    /// Sessions where a check is failing (its latest run failed), with their names.
    pub fn failed_checks(&self) -> Result<std::collections::HashMap<crate::protocol::SessionId, Vec<String>>> {
        Ok(lock(&self.index).failed_checks()?)
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>> {
        Ok(lock(&self.index).workspaces()?)
    }

    /// A session (a unique prefix is enough) with its turns; `None` if no
    /// session matches.
    pub fn session(
        &self,
        id: &str,
    ) -> Result<Option<(crate::protocol::SessionSummary, Vec<crate::protocol::TurnSummary>)>> {
        let index = lock(&self.index);
        let session = match index.resolve_session(id) {
            Ok(session) => session,
            Err(crate::index::Error::UnknownSession(_) | crate::index::Error::AmbiguousSession { .. }) => {
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let turns = index.turns(&session.id)?;
        Ok(Some((session, turns)))
    }

    pub fn events(&self, session: &SessionId, after: u64) -> Result<Vec<Event>> {
        Ok(lock(&self.index).events(session, after)?)
    }

    /// At most `limit` events after `after`.
    pub fn events_page(&self, session: &SessionId, after: u64, limit: usize) -> Result<Vec<Event>> {
        Ok(lock(&self.index).events_page(session, after, limit)?)
    }

    /// At most `limit` events of one turn.
    pub fn turn_events(&self, session: &SessionId, turn: u32, limit: usize) -> Result<Vec<Event>> {
        Ok(lock(&self.index).turn_events(session, turn, limit)?)
    }

    /// The last `limit` events and how many came before them.
    pub fn tail_events(&self, session: &SessionId, limit: usize) -> Result<(Vec<Event>, u64)> {
        Ok(lock(&self.index).tail_events(session, limit)?)
    }

    pub fn approval_events(&self, session: &SessionId) -> Result<Vec<Event>> {
        Ok(lock(&self.index).approval_events(session)?)
    }

    /// A session's events of one kind (`diff_captured`, say), in order.
    pub fn events_of_kind(&self, session: &SessionId, kind: &str) -> Result<Vec<Event>> {
        Ok(lock(&self.index).events_of_kind(session, kind)?)
    }

    /// The credential of the node embedded in `cortex up`: the one given if
    /// Core still knows it, a new one otherwise.
    /// The credential of `cortex up`'s own node: the one it has when Core
    /// knows it, else a new node that keeps the id (and secret) the node
    /// made in-process when that id is free.
    pub fn local_node(&self, known: Option<(&NodeId, &str)>, name: &str) -> Result<(NodeId, String)> {
        let registry = lock(&self.registry);
        let (id, secret) = match known {
            Some((id, secret)) if registry.authenticate(id, secret)?.is_some_and(|node| !node.revoked) => {
                (id.clone(), secret.to_string())
            }
            _ => registry.create_node(name, known)?,
        };
        let taken = registry.take_over_host_bindings(&id)?;
        if taken > 0 {
            tracing::info!(node = %id, taken, "bindings made under the host name now belong to the local node");
        }
        drop(registry);
        self.authority.bindings_changed();
        Ok((id, secret))
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Every node with its derived status.
    pub fn node_summaries(&self) -> Result<Vec<NodeSummary>> {
        let records = lock(&self.registry).nodes()?;
        let links = lock(&self.links);
        Ok(records
            .into_iter()
            .map(|record| {
                let refused = self.authority.warning(&record.id);
                let mut summary = summarize(record, &links);
                summary.warnings.extend(refused);
                summary
            })
            .collect())
    }

    pub fn find_node(&self, id_or_name: &str) -> Result<Option<NodeSummary>> {
        let nodes = self.node_summaries()?;
        let exact = nodes.iter().find(|node| node.id == *id_or_name).cloned();
        Ok(exact.or_else(|| {
            let named: Vec<_> = nodes.into_iter().filter(|node| node.name == id_or_name).collect();
            if named.len() == 1 { named.into_iter().next() } else { None }
        }))
    }

    /// What Core recorded of a command: its envelope and its answer.
    pub fn command_record(&self, id: &str) -> Result<Option<super::registry::CommandRecord>> {
        lock(&self.registry).command(id)
    }

    /// A node's status changes, newest first: `(at, kind, detail)`.
    pub fn node_events(&self, node_id: &str, limit: usize) -> Result<Vec<(String, String, String)>> {
        lock(&self.registry).node_events(node_id, limit)
    }

    /// Token use and cost summed by `by` since `since`, nodes by name.
    /// The Tool Registry, by name.
    /// The Tool Registry, by name; a plugin's servers say where their
    /// plugin is enabled.
    pub fn tools(&self) -> Result<Vec<crate::protocol::Dependency>> {
        let registry = lock(&self.registry);
        let plugins = registry.plugins()?;
        let mut tools = registry.dependencies()?;
        for tool in &mut tools {
            tool.enabled_in = tool.plugin.as_ref().map(|name| {
                plugins
                    .iter()
                    .find(|plugin| plugin.name == *name)
                    .map(|plugin| plugin.enabled.clone())
                    .unwrap_or_default()
            });
        }
        Ok(tools)
    }

    /// The Plugin Registry, by name.
    pub fn plugins(&self) -> Result<Vec<crate::protocol::Plugin>> {
        lock(&self.registry).plugins()
    }

    pub fn usage(&self, by: crate::protocol::UsageBy, since: Option<&str>) -> Result<crate::protocol::UsageReport> {
        let mut rows = lock(&self.index).usage(by, since)?;
        if by == crate::protocol::UsageBy::Node {
            let nodes = lock(&self.registry).nodes()?;
            for row in &mut rows {
                if let Some(node) = nodes.iter().find(|node| node.id.as_str() == row.key) {
                    row.label = node.name.clone();
                }
            }
        }
        Ok(crate::protocol::UsageReport::new(by, since.map(str::to_string), rows))
    }

    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<crate::protocol::SearchHit>> {
        Ok(lock(&self.index).search(query, limit)?)
    }

    /// A one-time enrollment token, valid for an hour.
    pub fn enroll(&self, name: Option<&str>) -> Result<Enrollment> {
        let ttl = jiff::SignedDuration::from_hours(1);
        let (token, expires_at) = lock(&self.registry).create_enrollment(name, ttl)?;
        Ok(Enrollment { token, name: name.map(str::to_string), expires_at })
    }

    /// Revokes a node: it is told why, its link dropped, its credential
    /// refused from now on.
    pub async fn revoke_node(&self, id: &str) -> Result<NodeSummary, ApiFailure> {
        let node = self
            .find_node(id)
            .map_err(ApiFailure::internal)?
            .ok_or_else(|| ApiFailure::not_found(format!("no node `{id}` (`cortex node list` shows them)")))?;
        lock(&self.registry).revoke(node.id.as_str()).map_err(ApiFailure::internal)?;
        let sender = lock(&self.links).get(&node.id).map(|link| link.tx.clone());
        if let Some(tx) = sender {
            let _ = tx
                .send(CoreFrame::Refused {
                    v: PROTOCOL_VERSION,
                    reason: crate::protocol::Refusal::Revoked,
                    message: "this node was revoked; enroll it again with a new token".into(),
                })
                .await;
        }
        self.set_status(&node.id, None, NodeStatus::Revoked, "revoked by an admin");
        self.find_node(node.id.as_str())
            .map_err(ApiFailure::internal)?
            .ok_or_else(|| ApiFailure::not_found("the node vanished"))
    }
}

pub(super) fn summarize(record: NodeRecord, links: &HashMap<NodeId, Link>) -> NodeSummary {
    let link = links.get(&record.id);
    let status =
        if record.revoked { NodeStatus::Revoked } else { link.map_or(NodeStatus::Offline, |link| link.status) };
    let mut warnings = record.capabilities.as_ref().map(skew_warnings).unwrap_or_default();
    if let Some(resources) = &record.resources {
        warnings.extend(resource_warnings(resources, record.capabilities.as_ref().map_or(1, |caps| caps.cpus)));
    }
    NodeSummary {
        id: record.id,
        name: record.name,
        status,
        last_heartbeat: record.last_heartbeat,
        capabilities: record.capabilities,
        resources: record.resources,
        warnings,
        enrolled_at: record.enrolled_at,
    }
}

/// Protocol or version differences between a node and this Core.
pub(super) fn skew_warnings(capabilities: &crate::protocol::Capabilities) -> Vec<String> {
    let mut warnings = Vec::new();
    if capabilities.protocol_version != PROTOCOL_VERSION {
        warnings.push(format!(
            "version skew: node speaks protocol {}, Core {PROTOCOL_VERSION}",
            capabilities.protocol_version
        ));
    } else if capabilities.cortex_version != env!("CARGO_PKG_VERSION") {
        warnings.push(format!(
            "version skew: node runs Cortex {}, Core {}",
            capabilities.cortex_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    for provider in &capabilities.providers {
        if ProviderKind::of(&provider.name) == ProviderKind::Codex
            && let Some(version) = &provider.version
            && version != crate::protocol::CODEX_VERSION
        {
            warnings.push(format!(
                "codex {version} is not the version Cortex supports ({})",
                crate::protocol::CODEX_VERSION
            ));
        }
    }
    warnings
}

/// Free disk under 1 GiB (or 5%), free memory under 256 MiB (or 5%), load
/// above twice the CPUs.
pub(crate) fn resource_warnings(resources: &crate::protocol::Resources, cpus: u32) -> Vec<String> {
    const GIB: u64 = 1 << 30;
    let mut warnings = Vec::new();
    for disk in &resources.disks {
        if disk.free_bytes < GIB || disk.free_bytes * 20 < disk.total_bytes {
            warnings.push(format!("low disk: {} MiB free under {}", disk.free_bytes >> 20, disk.path));
        }
    }
    if resources.total_memory_bytes > 0
        && (resources.free_memory_bytes < 256 << 20 || resources.free_memory_bytes * 20 < resources.total_memory_bytes)
    {
        warnings.push(format!("low memory: {} MiB free", resources.free_memory_bytes >> 20));
    }
    if resources.load1 > 2.0 * f64::from(cpus.max(1)) {
        warnings.push(format!("overload: load {:.1} on {cpus} CPU(s)", resources.load1));
    }
    warnings
}

/// Reads or creates `admin.token` (mode 0600) in the data dir.
pub(super) fn admin_token(data_dir: &std::path::Path) -> Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(token) = fs_err::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let token = super::registry::new_secret("cat_");
    write_private(&path, &format!("{token}\n"))?;
    Ok(token)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io { context: format!("cannot write `{}`", path.display()), source };
    // Written beside and renamed: a reader sees the old file or the whole
    // new one, never an empty or half-written one.
    let partial = path.with_extension("partial");
    let mut file =
        std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&partial).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}
