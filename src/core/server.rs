//! Core as a server: the HTTP API under `/api/v1/`, SSE event streams, the
//! command router, and the monitor that derives node status from heartbeats.
//! The WebSocket link to nodes is in `link.rs`. `web::router()` is mounted
//! beside these routes by the caller, so this module knows no HTML.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::registry::{NodeRecord, Registry};
use super::{Error, Result};
use crate::index::Index;
use crate::protocol::{
    ApiError, Command, CommandKind, CommandOutcome, CoreFrame, Enrollment, ErrorCode, Event, NodeId, NodeStatus,
    NodeSummary, PROTOCOL_VERSION, ProviderKind, SessionId, SessionState, Workspace,
};

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
    pub(crate) links: Mutex<HashMap<String, Link>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<CommandOutcome>>>>,
    pub(crate) events: broadcast::Sender<Arc<(SessionId, Event)>>,
    next_conn_id: std::sync::atomic::AtomicU64,
    pub(crate) terminals: super::terminals::Terminals,
    pub(crate) authority: super::authority::Authority,
    /// The address the HTTP server listens on, once it does.
    bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// The group-commit queue for nodes' events, once Core serves.
    pub(crate) ingest: std::sync::OnceLock<super::ingest::Queue>,
}

/// How long a command may take on its node before the HTTP call gives up
/// (the command goes on; asking again with its id answers when it is done).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

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
            Some((id, secret)) if registry.authenticate(id.as_str(), secret)?.is_some_and(|node| !node.revoked) => {
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
        let exact = nodes.iter().find(|node| node.id == id_or_name).cloned();
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
        lock(&self.registry).revoke(&node.id).map_err(ApiFailure::internal)?;
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
        self.find_node(&node.id)
            .map_err(ApiFailure::internal)?
            .ok_or_else(|| ApiFailure::not_found("the node vanished"))
    }

    /// A session's events after `after`: history from the index, then live
    /// ones as they are committed, in seq order with no gap and no
    /// duplicate (a lagging reader refills from the index).
    pub fn follow(self: &Arc<Self>, session: SessionId, after: u64) -> impl Stream<Item = Event> + use<> {
        // Subscribe before reading history, so nothing falls between the two.
        let receiver = self.events.subscribe();
        let mut follow = Follow {
            state: self.clone(),
            session,
            receiver,
            last: after,
            backlog: Default::default(),
            caught_up: false,
        };
        follow.refill();
        stream::unfold(follow, |mut follow| async move {
            loop {
                if let Some(event) = follow.backlog.pop_front() {
                    if event.seq <= follow.last {
                        continue;
                    }
                    follow.last = event.seq;
                    return Some((event, follow));
                }
                if !follow.caught_up {
                    follow.refill();
                    continue;
                }
                match follow.receiver.recv().await {
                    Ok(item) => {
                        let (session, event) = item.as_ref();
                        if *session != follow.session || event.seq <= follow.last {
                            continue;
                        }
                        if event.seq == follow.last + 1 {
                            follow.backlog.push_back(event.clone());
                        } else {
                            follow.refill();
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => follow.refill(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Records a command's answer and wakes whoever waits for it.
    pub(crate) fn complete_command(&self, id: &str, outcome: CommandOutcome) {
        self.authority.read_done(id);
        if let Err(error) = lock(&self.registry).finish_command(id, &outcome) {
            tracing::error!(%error, command = id, "cannot record a command's answer");
        }
        let recorded = lock(&self.registry).command(id).ok().flatten().and_then(|record| record.outcome);
        let outcome = recorded.unwrap_or(outcome);
        for waiter in lock(&self.waiters).remove(id).unwrap_or_default() {
            let _ = waiter.send(outcome.clone());
        }
    }

    /// Runs a command: answered from the record if it was seen before,
    /// otherwise routed to its node and awaited.
    pub async fn execute(self: &Arc<Self>, mut command: Command) -> Result<CommandOutcome, ApiFailure> {
        if command.v != PROTOCOL_VERSION {
            return Err(ApiFailure::bad_request(format!(
                "command envelope version {} is not supported (this Core speaks {PROTOCOL_VERSION})",
                command.v
            )));
        }
        crate::protocol::check_command_id(&command.id).map_err(ApiFailure::bad_request)?;
        let name = match &command.kind {
            CommandKind::StartSession { title: Some(title), .. } => Some(("session title", title)),
            CommandKind::BindWorkspace { name: Some(name), .. } => Some(("workspace name", name)),
            _ => None,
        };
        if let Some((what, name)) = name {
            crate::protocol::check_name(what, name).map_err(ApiFailure::bad_request)?;
        }
        if let CommandKind::SendTurn { prompt, .. } | CommandKind::SteerSession { text: prompt, .. } = &command.kind
            && prompt.trim().is_empty()
        {
            return Err(ApiFailure::bad_request("the prompt is empty: say what the agent should do next"));
        }
        let existing = lock(&self.registry).command(&command.id).map_err(ApiFailure::internal)?;
        if let Some(record) = existing {
            return match record.outcome {
                Some(outcome) => Ok(outcome),
                None => self.wait_for(&command.id).await,
            };
        }
        if let CommandKind::UnbindWorkspace { workspace_id } = &command.kind {
            // Core metadata only: the node's files and refs stay.
            let removed = lock(&self.index).remove_workspace(workspace_id).map_err(ApiFailure::internal)?;
            lock(&self.registry).unbind(workspace_id.as_str()).map_err(ApiFailure::internal)?;
            self.authority.bindings_changed();
            if !removed {
                return Err(ApiFailure::not_found(format!(
                    "no workspace `{workspace_id}` (`cortex workspace list` shows them)"
                )));
            }
        }
        let node_id = self.route(&mut command)?;
        if let CommandKind::OpenTerminal { workspace_id, session_id, terminal_id: Some(terminal), .. } = &command.kind {
            self.terminals.register(terminal, &node_id, workspace_id.clone(), session_id.clone());
        }
        let body = serde_json::to_string(&recorded(&command)).expect("holds because commands are JSON");
        if is_read(&command.kind) {
            self.authority.read_sent(&command.id, &node_id);
        }
        let fresh = is_read(&command.kind)
            || lock(&self.registry)
                .insert_command(&command.id, command.kind.name(), Some(&node_id), &body)
                .map_err(ApiFailure::internal)?;
        if !fresh {
            return self.wait_for(&command.id).await;
        }
        let receiver = self.add_waiter(&command.id);
        let sender = lock(&self.links).get(&node_id).map(|link| link.tx.clone());
        let sent = match sender {
            Some(tx) => tx.send(CoreFrame::Command { command: command.clone() }).await.is_ok(),
            None => false,
        };
        if !sent {
            if let CommandKind::UnbindWorkspace { .. } = command.kind {
                // The node learns of it when it is back; Core's part is done.
                self.complete_command(&command.id, CommandOutcome::Ok { value: serde_json::json!({"unbound": true}) });
            } else {
                let name = lock(&self.registry).node(&node_id).ok().flatten().map(|node| node.name).unwrap_or(node_id);
                self.complete_command(
                    &command.id,
                    CommandOutcome::error(
                        ErrorCode::NodeOffline,
                        format!("node `{name}` is not connected; start it with `cortex node run`"),
                    ),
                );
            }
        }
        let outcome = await_outcome(receiver).await;
        if let CommandKind::OpenTerminal { terminal_id: Some(terminal), .. } = &command.kind
            && !matches!(outcome, Ok(CommandOutcome::Ok { .. }))
        {
            self.terminals.forget(terminal);
        }
        outcome
    }

    /// Open terminals of a workspace.
    pub fn terminals_of(&self, workspace_id: &crate::protocol::WorkspaceId) -> Vec<super::TerminalSummary> {
        self.terminals.of_workspace(workspace_id)
    }

    pub fn terminal(&self, id: &str) -> Option<super::TerminalSummary> {
        self.terminals.summary(id)
    }

    fn add_waiter(&self, id: &str) -> oneshot::Receiver<CommandOutcome> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).entry(id.to_string()).or_default().push(sender);
        receiver
    }

    async fn wait_for(&self, id: &str) -> Result<CommandOutcome, ApiFailure> {
        let receiver = self.add_waiter(id);
        // It may have finished between the read and the subscription.
        if let Some(outcome) = lock(&self.registry).command(id).ok().flatten().and_then(|record| record.outcome) {
            return Ok(outcome);
        }
        await_outcome(receiver).await
    }

    /// Picks the node that owns the command's target, filling in what Core
    /// assigns (a new session's id).
    fn route(&self, command: &mut Command) -> Result<String, ApiFailure> {
        let index = lock(&self.index);
        let workspace_node = |workspace_id: &crate::protocol::WorkspaceId| -> Result<String, ApiFailure> {
            index.workspace_node(workspace_id).map_err(ApiFailure::internal)?.ok_or_else(|| {
                ApiFailure::not_found(format!("no workspace `{workspace_id}` (`cortex workspace list` shows them)"))
            })
        };
        match &mut command.kind {
            CommandKind::StartSession { session_id, workspace_id, .. } => {
                // A client may name the new session, but never one that exists.
                if let Some(id) = session_id
                    && index.session_workspace(id).map_err(ApiFailure::internal)?.is_some()
                {
                    return Err(ApiFailure::new(
                        ErrorCode::Conflict,
                        format!("session `{id}` exists already; leave `session_id` out for a new one"),
                    ));
                }
                session_id.get_or_insert_with(SessionId::generate);
                workspace_node(workspace_id)
            }
            CommandKind::SendTurn { session_id, .. }
            | CommandKind::StopSession { session_id }
            | CommandKind::InterruptSession { session_id }
            | CommandKind::ResolveApproval { session_id, .. }
            | CommandKind::RunChecks { session_id, .. }
            | CommandKind::SteerSession { session_id, .. }
            | CommandKind::CommitSession { session_id, .. }
            | CommandKind::ReadDiff { session_id, .. }
            | CommandKind::ReadSessionFile { session_id, .. } => {
                let session = index
                    .resolve_session(session_id.as_str())
                    .map_err(|error| ApiFailure::not_found(error.to_string()))?;
                workspace_node(&session.workspace_id)
            }
            CommandKind::ListFiles { workspace_id, .. }
            | CommandKind::ReadFile { workspace_id, .. }
            | CommandKind::WriteFile { workspace_id, .. }
            | CommandKind::MovePath { workspace_id, .. }
            | CommandKind::DeletePath { workspace_id, .. }
            | CommandKind::CloseTerminal { workspace_id, .. }
            | CommandKind::ReadJournal { workspace_id, .. }
            | CommandKind::ListChecks { workspace_id } => workspace_node(workspace_id),
            CommandKind::OpenTerminal { workspace_id, terminal_id, .. } => {
                terminal_id.get_or_insert_with(|| format!("trm_{}", ulid::Ulid::new().to_string().to_lowercase()));
                workspace_node(workspace_id)
            }
            CommandKind::UnbindWorkspace { .. } => {
                // Already removed from the index: route by the target given.
                command.target.clone().ok_or_else(|| ApiFailure::bad_request("unbind needs the node as `target`"))
            }
            CommandKind::BindWorkspace { .. } => {
                drop(index);
                let target = command.target.clone();
                let nodes = self.node_summaries().map_err(ApiFailure::internal)?;
                let node = match target {
                    Some(target) => self.find_node(&target).map_err(ApiFailure::internal)?.ok_or_else(|| {
                        ApiFailure::not_found(format!("no node `{target}` (`cortex node list` shows them)"))
                    })?,
                    None => {
                        let online: Vec<_> =
                            nodes.into_iter().filter(|node| node.status == NodeStatus::Online).collect();
                        match online.len() {
                            1 => online.into_iter().next().expect("holds because there is one"),
                            0 => {
                                return Err(ApiFailure::unavailable("no node is online to bind the workspace on"));
                            }
                            _ => {
                                return Err(ApiFailure::bad_request("several nodes are online: name one with --node"));
                            }
                        }
                    }
                };
                command.target = Some(node.id.clone());
                Ok(node.id)
            }
        }
    }

    /// Sets a node's derived status, recording the change as a node event;
    /// a node going offline takes its mid-turn sessions to `interrupted`.
    pub(crate) fn set_status(&self, node_id: &str, conn_id: Option<u64>, status: NodeStatus, detail: &str) {
        let changed = {
            let mut links = lock(&self.links);
            match links.get_mut(node_id) {
                Some(link) if conn_id.is_none_or(|id| id == link.conn_id) => {
                    let changed = link.status != status;
                    link.status = status;
                    if matches!(status, NodeStatus::Offline | NodeStatus::Revoked)
                        && let Some(link) = links.remove(node_id)
                    {
                        link.kick.notify_one();
                    }
                    changed
                }
                Some(_) => false, // a newer link owns the node now
                None => status == NodeStatus::Online,
            }
        };
        if !changed {
            return;
        }
        tracing::info!(node = node_id, status = status.as_str(), detail, "node status changed");
        if let Err(error) = lock(&self.registry).record_node_event(node_id, status.as_str(), detail) {
            tracing::error!(%error, "cannot record a node event");
        }
        if matches!(status, NodeStatus::Offline | NodeStatus::Revoked) {
            self.terminals.node_gone(node_id);
        }
        if matches!(status, NodeStatus::Offline | NodeStatus::Stale | NodeStatus::Revoked) {
            let reason = format!("node went {}: {detail}", status.as_str());
            if let Err(error) = lock(&self.index).interrupt_node_sessions(node_id, &reason) {
                tracing::error!(%error, "cannot mark a lost node's sessions");
            }
        }
    }

    /// The monitor: derives `stale` and `offline` from heartbeat age.
    async fn monitor(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.heartbeat.min(self.config.stale_after) / 2);
        loop {
            tick.tick().await;
            let ages: Vec<(String, u64, NodeStatus, Duration)> = lock(&self.links)
                .iter()
                .map(|(id, link)| (id.clone(), link.conn_id, link.status, link.last_heartbeat.elapsed()))
                .collect();
            for (node_id, conn_id, status, age) in ages {
                let derived = if age >= self.config.offline_after {
                    NodeStatus::Offline
                } else if age >= self.config.stale_after {
                    NodeStatus::Stale
                } else {
                    NodeStatus::Online
                };
                if derived != status {
                    let detail = format!("no heartbeat for {} ms", age.as_millis());
                    self.set_status(&node_id, Some(conn_id), derived, &detail);
                }
            }
        }
    }
}

/// A command as Core keeps it: a file's content is summarised, never stored
/// (no secrets or megabytes at rest in `core.sqlite`); such a command is not
/// sent again after a dropped link.
/// The command as Core keeps it: no file content (size and hash only),
/// and every string redacted, since a prompt or a script may carry a
/// secret the person pasted. A command replayed after a dropped link
/// carries the redacted text.
fn recorded(command: &Command) -> Command {
    let mut kept = command.clone();
    if let CommandKind::WriteFile { content, .. } = &mut kept.kind {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(content.as_bytes()));
        *content = format!("[{} bytes, sha256 {digest}; not kept]", content.len());
    }
    let text = serde_json::to_string(&kept).expect("holds because commands are JSON");
    match crate::store::redact::redact_lines(text.as_bytes()) {
        std::borrow::Cow::Borrowed(_) => kept,
        std::borrow::Cow::Owned(redacted) => serde_json::from_slice(&redacted).unwrap_or(kept),
    }
}

/// Reads are not recorded: their answers hold workspace content, which Core
/// does not keep, and asking again simply reads again.
fn is_read(kind: &CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::ReadFile { .. }
            | CommandKind::ListFiles { .. }
            | CommandKind::ReadDiff { .. }
            | CommandKind::ReadSessionFile { .. }
    )
}

async fn await_outcome(receiver: oneshot::Receiver<CommandOutcome>) -> Result<CommandOutcome, ApiFailure> {
    match tokio::time::timeout(COMMAND_TIMEOUT, receiver).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(_)) => Err(ApiFailure::unavailable("Core stopped before the command finished")),
        Err(_) => Err(ApiFailure::unavailable(
            "the command is still running on its node; ask again with the same command id for its answer",
        )),
    }
}

fn summarize(record: NodeRecord, links: &HashMap<String, Link>) -> NodeSummary {
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
fn skew_warnings(capabilities: &crate::protocol::Capabilities) -> Vec<String> {
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
        if ProviderKind::parse(&provider.name) == Some(ProviderKind::Codex)
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
fn admin_token(data_dir: &std::path::Path) -> Result<String> {
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

/// A failed API call: the status and the typed, actionable body.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    body: ApiError,
}

impl ApiFailure {
    /// A failure with the status its code maps to (`ErrorCode::http_status`).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiFailure {
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiFailure { status, body: ApiError { code, message: message.into() } }
    }

    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, and what to do about it.
    pub fn message(&self) -> &str {
        &self.body.message
    }

    pub fn bad_request(message: impl Into<String>) -> ApiFailure {
        Self::new(ErrorCode::Malformed, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiFailure {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiFailure {
        Self::new(ErrorCode::Unavailable, message)
    }
    pub fn internal(error: impl std::fmt::Display) -> ApiFailure {
        tracing::error!(%error, "internal error answering an API call");
        Self::new(ErrorCode::Internal, format!("Core failed: {error}"))
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The API routes, with bearer-token authentication (all but health and the
/// node link, which authenticates in its hello).
pub fn api_router(state: Arc<CoreState>) -> Router {
    let protected = Router::new()
        .route("/api/v1/commands", post(post_command))
        .route("/api/v1/sessions", get(get_sessions))
        .route("/api/v1/sessions/{id}", get(get_session))
        .route("/api/v1/sessions/{id}/events", get(get_session_events))
        .route("/api/v1/sessions/{id}/diff", get(get_session_diff))
        .route("/api/v1/search", get(get_search))
        .route("/api/v1/nodes", get(get_nodes))
        .route("/api/v1/nodes/enroll", post(post_enroll))
        .route("/api/v1/nodes/{id}", get(get_node))
        .route("/api/v1/nodes/{id}/revoke", post(post_revoke))
        .route("/api/v1/workspaces", get(get_workspaces))
        .route("/api/v1/index/rebuild", post(post_rebuild))
        .route("/api/v1/terminals/{id}", get(get_terminal))
        .route("/api/v1/terminals/{id}/ws", get(get_terminal_socket))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/api/v1/health", get(get_health))
        .route("/api/v1/nodes/connect", get(super::link::connect))
        .merge(protected)
        .with_state(state)
        .layer(middleware::from_fn(errors_as_json))
}

/// The largest request body the API reads (axum's own limit too).
const MAX_BODY: u64 = 2 * 1024 * 1024;

/// Every API error is JSON with a `code` and a `message`, also the ones
/// axum answers by itself (a body too large, a body that is not JSON). A
/// body announced larger than [`MAX_BODY`] is refused before it is read.
async fn errors_as_json(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY) {
        let message = format!("a request body is at most {MAX_BODY} bytes");
        return ApiFailure::new(ErrorCode::TooLarge, message).into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
            ErrorCode::Malformed
        }
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        _ => ErrorCode::Internal,
    };
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    ApiFailure::new(code, message).into_response()
}

async fn get_terminal(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    match state.terminal(&id) {
        Some(terminal) => Json(terminal).into_response(),
        None => ApiFailure::not_found(format!("no terminal `{id}` (open one with `cortex term`)")).into_response(),
    }
}

/// A terminal's WebSocket (see `core::terminals` for the messages).
async fn get_terminal_socket(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    if state.terminal(&id).is_none() {
        return ApiFailure::not_found(format!("no terminal `{id}`")).into_response();
    }
    upgrade.on_upgrade(move |socket| super::terminals::bridge(state, id, socket))
}

/// A running Core: its URL, and a way to stop it.
pub struct Server {
    pub url: String,
    pub state: Arc<CoreState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = self.task.await;
    }
}

/// Binds and serves Core with `extra` routes (the web panel) mounted beside
/// the API. Writes `core.url` in the data dir so local CLIs find it.
pub async fn serve(state: Arc<CoreState>, extra: Router) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(state.config.bind)
        .await
        .map_err(|source| Error::Io { context: format!("cannot listen on {}", state.config.bind), source })?;
    let address = listener
        .local_addr()
        .map_err(|source| Error::Io { context: "cannot read the bound address".into(), source })?;
    let url = format!("http://{address}");
    let _ = state.bound.set(address);
    let _ = state.ingest.set(super::ingest::start(&state));
    write_private(&state.config.data_dir.join("core.url"), &format!("{url}\n"))?;
    tokio::spawn(state.clone().monitor());
    let app = api_router(state.clone()).merge(extra);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(super::listen::serve(listener, app, stopped));
    Ok(Server { url, state, shutdown: Some(shutdown), task })
}

async fn require_token(State(state): State<Arc<CoreState>>, request: Request, next: Next) -> Response {
    let presented = super::auth::bearer(request.headers());
    let valid = presented.is_some_and(|token| super::auth::tokens_match(token, &state.admin_token));
    if !valid {
        let path = state.config.data_dir.join("admin.token");
        return ApiFailure::new(
            ErrorCode::Unauthorized,
            format!(
                "missing or wrong bearer token: use the admin token in `{}` on Core's machine, or set CORTEX_TOKEN elsewhere",
                path.display()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

async fn get_health() -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "service": "cortex-core", "version": env!("CARGO_PKG_VERSION"), "protocol": PROTOCOL_VERSION }),
    )
}

async fn post_command(State(state): State<Arc<CoreState>>, body: axum::body::Bytes) -> Response {
    let command: Command = match serde_json::from_slice(&body) {
        Ok(command) => command,
        Err(error) => {
            return ApiFailure::bad_request(format!("malformed command envelope: {error}")).into_response();
        }
    };
    match state.execute(command).await {
        Ok(outcome @ CommandOutcome::Ok { .. }) => (StatusCode::OK, Json(outcome)).into_response(),
        Ok(outcome @ CommandOutcome::Error { code, .. }) => {
            let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(outcome)).into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct SessionsQuery {
    state: Option<String>,
}

async fn get_sessions(State(state): State<Arc<CoreState>>, Query(query): Query<SessionsQuery>) -> Response {
    let filter = match query.state.as_deref().map(str::parse::<SessionState>) {
        Some(Err(error)) => return ApiFailure::bad_request(error).into_response(),
        Some(Ok(filter)) => Some(filter),
        None => None,
    };
    match lock(&state.index).sessions(filter) {
        Ok(sessions) => Json(sessions).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

fn resolve(state: &CoreState, id: &str) -> Result<crate::protocol::SessionSummary, ApiFailure> {
    lock(&state.index).resolve_session(id).map_err(|error| match error {
        crate::index::Error::UnknownSession(_) | crate::index::Error::AmbiguousSession { .. } => {
            ApiFailure::not_found(error.to_string())
        }
        other => ApiFailure::internal(other),
    })
}

async fn get_session(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    let session = match resolve(&state, &id) {
        Ok(session) => session,
        Err(failure) => return failure.into_response(),
    };
    match lock(&state.index).turns(&session.id) {
        Ok(turns) => Json(serde_json::json!({ "session": session, "turns": turns })).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<u64>,
    /// At most this many events (default and ceiling [`EVENTS_PAGE_MAX`]);
    /// ask again with `after` set to the last seq for the next page.
    limit: Option<usize>,
}

/// The largest page of events one request answers.
pub(crate) const EVENTS_PAGE_MAX: usize = 5000;
/// History is read for a stream in pages this size, so a follower of a long
/// session holds neither the whole history in memory nor the index lock.
const FOLLOW_PAGE: usize = 256;

/// JSON history, or (with `Accept: text/event-stream`) history then live
/// events as SSE, each with its seq as the SSE id so a reconnect resumes
/// from `Last-Event-ID` with no gap and no duplicate.
async fn get_session_events(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let session = match resolve(&state, &id) {
        Ok(session) => session,
        Err(failure) => return failure.into_response(),
    };
    let last_event_id =
        headers.get("last-event-id").and_then(|value| value.to_str().ok()).and_then(|value| value.parse().ok());
    let after = last_event_id.or(query.after).unwrap_or(0);
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if !wants_stream {
        let limit = query.limit.unwrap_or(EVENTS_PAGE_MAX).clamp(1, EVENTS_PAGE_MAX);
        return match lock(&state.index).events_page(&session.id, after, limit) {
            Ok(events) => Json(events).into_response(),
            Err(error) => ApiFailure::internal(error).into_response(),
        };
    }
    Sse::new(event_stream(state, session.id, after)).keep_alive(KeepAlive::default()).into_response()
}

struct Follow {
    state: Arc<CoreState>,
    session: SessionId,
    receiver: broadcast::Receiver<Arc<(SessionId, Event)>>,
    last: u64,
    backlog: std::collections::VecDeque<Event>,
    /// The last page of history read was not full: live events follow.
    caught_up: bool,
}

impl Follow {
    /// Reads what the index has after `last`; used at the start, after a
    /// lagging receiver, and when a live event skips ahead.
    /// Reads the next page of history after the last event given (or
    /// queued), unless history is known to be caught up with.
    fn refill(&mut self) {
        match lock(&self.state.index).events_page(&self.session, self.last, FOLLOW_PAGE) {
            Ok(events) => {
                self.caught_up = events.len() < FOLLOW_PAGE;
                self.backlog.extend(events);
            }
            Err(error) => tracing::error!(%error, "cannot read events for a stream"),
        }
    }
}

fn event_stream(
    state: Arc<CoreState>,
    session: SessionId,
    after: u64,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    state.follow(session, after).map(|event| {
        Ok(SseEvent::default()
            .id(event.seq.to_string())
            .event(event.kind.name())
            .json_data(&event)
            .expect("holds because events serialize to JSON"))
    })
}

#[derive(Deserialize)]
struct DiffQuery {
    turn: Option<u32>,
}

/// Core never reads a workspace: the owning node computes the diff.
async fn get_session_diff(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let session = match resolve(&state, &id) {
        Ok(session) => session,
        Err(failure) => return failure.into_response(),
    };
    let command = Command {
        v: PROTOCOL_VERSION,
        id: format!("diff_{}", ulid::Ulid::new().to_string().to_lowercase()),
        target: None,
        kind: CommandKind::ReadDiff { session_id: session.id, turn: query.turn, files: false },
    };
    match state.execute(command).await {
        Ok(outcome @ CommandOutcome::Ok { .. }) => match outcome.into_reply::<crate::protocol::reply::DiffRead>() {
            Ok(diff) => {
                let patch = diff.patch.unwrap_or_default();
                ([(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")], patch).into_response()
            }
            Err(error) => ApiFailure::new(error.code, error.message).into_response(),
        },
        Ok(CommandOutcome::Error { code, message }) => ApiFailure::new(code, message).into_response(),
        Err(failure) => failure.into_response(),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

async fn get_search(State(state): State<Arc<CoreState>>, Query(query): Query<SearchQuery>) -> Response {
    match state.search(&query.q, query.limit.unwrap_or(50)) {
        Ok(hits) => Json(hits).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_nodes(State(state): State<Arc<CoreState>>) -> Response {
    match state.node_summaries() {
        Ok(nodes) => Json(nodes).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_node(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    let node = match state.find_node(&id) {
        Ok(Some(node)) => node,
        Ok(None) => {
            return ApiFailure::not_found(format!("no node `{id}` (`cortex node list` shows them)")).into_response();
        }
        Err(error) => return ApiFailure::internal(error).into_response(),
    };
    let events = lock(&state.registry).node_events(&node.id, 20).unwrap_or_default();
    let workspaces: Vec<Workspace> = lock(&state.index)
        .workspaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|workspace| workspace.node == node.id)
        .collect();
    let events: Vec<_> = events
        .into_iter()
        .map(|(at, kind, detail)| serde_json::json!({"at": at, "kind": kind, "detail": detail}))
        .collect();
    Json(serde_json::json!({ "node": node, "workspaces": workspaces, "events": events })).into_response()
}

#[derive(Deserialize, Default)]
struct EnrollBody {
    name: Option<String>,
}

async fn post_enroll(State(state): State<Arc<CoreState>>, body: Option<Json<EnrollBody>>) -> Response {
    let name = body.and_then(|Json(body)| body.name);
    if let Some(name) = &name
        && let Err(problem) = crate::protocol::check_name("node name", name)
    {
        return ApiFailure::bad_request(problem).into_response();
    }
    match state.enroll(name.as_deref()) {
        Ok(enrollment) => Json(enrollment).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn post_revoke(State(state): State<Arc<CoreState>>, Path(id): Path<String>) -> Response {
    match state.revoke_node(&id).await {
        Ok(node) => Json(node).into_response(),
        Err(failure) => failure.into_response(),
    }
}

async fn get_workspaces(State(state): State<Arc<CoreState>>) -> Response {
    match lock(&state.index).workspaces() {
        Ok(workspaces) => Json(workspaces).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

/// Throws the index away and drops every node link: each node reconnects,
/// learns that Core has nothing, and sends everything again from its refs.
async fn post_rebuild(State(state): State<Arc<CoreState>>) -> Response {
    let path = super::Core::index_path(&state.config.data_dir);
    let fresh = {
        let mut index = lock(&state.index);
        match Index::reset(&path) {
            Ok(fresh) => {
                *index = fresh;
                Ok(())
            }
            Err(error) => Err(error),
        }
    };
    if let Err(error) = fresh {
        return ApiFailure::internal(error).into_response();
    }
    let nodes: Vec<String> = lock(&state.links)
        .drain()
        .map(|(id, link)| {
            link.kick.notify_one();
            id
        })
        .collect();
    Json(serde_json::json!({ "reset": true, "nodes_resending": nodes.len() })).into_response()
}
