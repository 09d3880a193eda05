//! The node daemon: connects outbound to Core over WebSocket, enrolls or
//! authenticates, heartbeats, runs the commands Core routes to it, and sends
//! every event of its sessions until Core acknowledges it. Events are
//! durable in the store's spool before they are sent; after a reconnect (or
//! a restart, or an index rebuild on Core) the welcome says what Core has,
//! and the rest is sent again from the refs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::config::RepoConfig;
use super::outbox::Outbox;
use super::{Approver, Cancel, Error, Node, Observer, ProviderSpec, Result, StartRequest};
use crate::protocol::{
    ApprovalDecision, Capabilities, Command, CommandKind, CommandOutcome, CoreFrame, Credential, DiskFree, Event,
    EventKind, NodeFrame, NodeId, PROTOCOL_VERSION, ProviderInfo, Refusal, Resources, SessionId, SessionState,
    SessionTip, Workspace, WorkspaceId,
};
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
    approvals: Mutex<HashMap<SessionId, PendingApproval>>,
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
    });
    {
        let (keys, typed_keys) = std::sync::mpsc::channel::<(String, String)>();
        *lock(&runtime.keys) = Some(keys);
        let runtime = Arc::downgrade(&runtime);
        std::thread::spawn(move || {
            for (terminal, data) in typed_keys {
                let Some(runtime) = runtime.upgrade() else { break };
                typed(&runtime, &terminal, &data);
            }
        });
    }
    let mut delay = BACKOFF_FIRST;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match link(&runtime, &mut shutdown).await {
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

fn websocket_url(core_url: &str) -> String {
    let base = core_url.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .unwrap_or_else(|| base.replacen("http://", "ws://", 1));
    format!("{base}/api/v1/nodes/connect")
}

async fn link(runtime: &Arc<Runtime>, shutdown: &mut watch::Receiver<bool>) -> Result<Ended> {
    let config = &runtime.config;
    let identity = super::identity::Identity::load_or_create(&config.data_dir)?;
    let name = match (&config.name, identity.unconfirmed) {
        (Some(name), true) => name.clone(),
        _ => identity.name.clone(),
    };
    let credential = match (identity.unconfirmed, &config.enroll_token) {
        (false, _) => Credential::Node { node_id: identity.node_id.clone(), secret: identity.secret.clone() },
        // Enrolling proposes the id the node has had in-process, so its
        // workspaces keep naming it.
        (true, Some(token)) => {
            Credential::Enroll { token: token.clone(), name: name.clone(), node_id: Some(identity.node_id.clone()) }
        }
        (true, None) => return Err(Error::NotEnrolled),
    };
    let url = websocket_url(&config.core_url);
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|error| Error::Link(format!("cannot connect to {url}: {error}")))?;
    let (mut sink, mut stream) = socket.split();

    let hello_data = {
        let data_dir = config.data_dir.clone();
        let node_id = identity.node_id.clone();
        tokio::task::spawn_blocking(move || hello_parts(&data_dir, &node_id))
            .await
            .map_err(|error| Error::Link(error.to_string()))??
    };
    let (workspaces, sessions) = hello_data;
    let hello =
        NodeFrame::Hello { v: PROTOCOL_VERSION, credential, capabilities: capabilities(), workspaces, sessions };
    send(&mut sink, &hello).await?;

    let welcome = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .map_err(|_| Error::Link("Core did not answer the hello".into()))?;
    let frame = match welcome {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<CoreFrame>(text.as_str())
            .map_err(|error| Error::Link(format!("malformed welcome: {error}")))?,
        other => return Err(Error::Link(format!("no welcome from Core: {other:?}"))),
    };
    let (node_id, acked, heartbeat) = match frame {
        CoreFrame::Welcome { node_id, secret, acked, heartbeat_ms, .. } => {
            if let Some(secret) = secret {
                let confirmed = super::identity::Identity {
                    node_id: node_id.clone(),
                    secret,
                    name: name.clone(),
                    unconfirmed: false,
                };
                confirmed.save(&config.data_dir)?;
                tracing::info!(%node_id, "enrolled with Core");
            }
            (node_id, acked, Duration::from_millis(heartbeat_ms.max(100)))
        }
        CoreFrame::Refused { reason, message, .. } => return Err(Error::Refused { reason, message }),
        CoreFrame::Error { code, message, .. } => {
            return Err(Error::Link(format!("Core refused the hello ({code}): {message}")));
        }
        other => return Err(Error::Link(format!("expected a welcome, got {other:?}"))),
    };
    let node = runtime.node.get_or_init(|| Node::with_identity(&config.data_dir, &node_id, &name));
    if *node.id() != node_id {
        return Err(Error::Link(format!("Core now calls this node {node_id}, but it was {}; restart it", node.id())));
    }
    tracing::info!(%node_id, "connected to Core");

    lock(&runtime.outbox).restart(&acked);
    {
        // Sessions Core is behind on: load what the outbox lacks from the refs.
        let runtime = runtime.clone();
        tokio::task::spawn_blocking(move || catch_up(&runtime, &acked))
            .await
            .map_err(|error| Error::Link(error.to_string()))??;
    }
    runtime.wake.notify_one();

    let (out_tx, mut out_rx) = mpsc::channel::<NodeFrame>(256);
    *lock(&runtime.outlet) = Some(out_tx.clone());
    let mut ticker = tokio::time::interval(heartbeat);
    loop {
        tokio::select! {
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Ok(Ended::Dropped("Core closed the link".into())),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Ok(Ended::Dropped(error.to_string())),
                };
                match serde_json::from_str::<CoreFrame>(text.as_str()) {
                    Ok(CoreFrame::Ack { session, seq, .. }) => lock(&runtime.outbox).ack(&session, seq),
                    Ok(CoreFrame::Resend { session, after, .. }) => {
                        let runtime = runtime.clone();
                        tokio::task::spawn_blocking(move || resend(&runtime, &session, after));
                    }
                    Ok(CoreFrame::Command { command }) => {
                        let runtime = runtime.clone();
                        let out_tx = out_tx.clone();
                        tokio::spawn(async move {
                            let id = command.id.clone();
                            let outcome = execute(&runtime, command).await;
                            let _ = out_tx.send(NodeFrame::CommandResult { v: PROTOCOL_VERSION, id, outcome }).await;
                        });
                    }
                    Ok(CoreFrame::TermInput { terminal, data, .. }) => {
                        if let Some(keys) = lock(&runtime.keys).as_ref() {
                            let _ = keys.send((terminal, data));
                        }
                    }
                    Ok(CoreFrame::TermResize { terminal, cols, rows, .. }) => runtime.terminals.resize(&terminal, cols, rows),
                    Ok(CoreFrame::Refused { reason, message, .. }) => return Err(Error::Refused { reason, message }),
                    Ok(CoreFrame::Error { code, message, .. }) => tracing::warn!(%code, %message, "Core reported an error"),
                    Ok(CoreFrame::Welcome { .. }) => tracing::warn!("unexpected second welcome"),
                    Err(error) => tracing::warn!(%error, "malformed frame from Core"),
                }
            }
            frame = out_rx.recv() => {
                if let Some(frame) = frame {
                    // Events first: a command's answer may name a session whose
                    // first events are waiting in the outbox.
                    let batches = lock(&runtime.outbox).take_batches();
                    for (session, events) in batches {
                        send(&mut sink, &NodeFrame::Events { v: PROTOCOL_VERSION, session, events }).await?;
                    }
                    send(&mut sink, &frame).await?;
                }
            }
            _ = runtime.wake.notified() => {
                let batches = lock(&runtime.outbox).take_batches();
                for (session, events) in batches {
                    send(&mut sink, &NodeFrame::Events { v: PROTOCOL_VERSION, session, events }).await?;
                }
            }
            _ = ticker.tick() => {
                let expiring = runtime.clone();
                tokio::task::spawn_blocking(move || expire_idle(&expiring));
                let roots: Vec<String> = runtime.node().workspaces().unwrap_or_default().into_iter().map(|workspace| workspace.path).collect();
                let resources = tokio::task::spawn_blocking(move || resources(&roots)).await.unwrap_or_default();
                send(&mut sink, &NodeFrame::Heartbeat { v: PROTOCOL_VERSION, resources }).await?;
            }
            _ = shutdown.changed() => {
                let _ = sink.close().await;
                return Ok(Ended::Shutdown);
            }
        }
    }
}

async fn send<S>(sink: &mut S, frame: &NodeFrame) -> Result<()>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let text = serde_json::to_string(frame).expect("holds because frames are JSON");
    sink.send(Message::text(text)).await.map_err(|error| Error::Link(format!("cannot send to Core: {error}")))
}

/// The node's workspaces (tagged with its id) and the last seq of every
/// session in them, for the hello. Also replays what crashed writers left.
fn hello_parts(data_dir: &Path, node_id: &NodeId) -> Result<(Vec<Workspace>, Vec<SessionTip>)> {
    let node = Node::with_identity(data_dir, node_id, "");
    node.recover()?;
    let workspaces = node.workspaces()?;
    let mut sessions = Vec::new();
    for workspace in &workspaces {
        let Ok(store) = Store::discover(Path::new(&workspace.path)) else {
            continue;
        };
        for (session_id, tip) in store.session_tips()? {
            if let Ok(view) = store.view_at(tip) {
                sessions.push(SessionTip { session_id, last_seq: view.meta.last_seq });
            }
        }
    }
    Ok((workspaces, sessions))
}

/// Loads, from the refs, the events of every session Core is behind on
/// and the outbox cannot supply.
fn catch_up(runtime: &Runtime, acked: &BTreeMap<SessionId, u64>) -> Result<()> {
    for workspace in runtime.node().workspaces()? {
        let Ok(store) = Store::discover(Path::new(&workspace.path)) else {
            continue;
        };
        for (session_id, tip) in store.session_tips()? {
            let Ok(view) = store.view_at(tip) else {
                continue;
            };
            if view.meta.state == SessionState::Idle {
                lock(&runtime.idle_since)
                    .entry(session_id.clone())
                    .or_insert((view.meta.updated_at, workspace.clone()));
            }
            let core_has = acked.get(&session_id).copied().unwrap_or(0);
            tracing::debug!(%session_id, core_has, node_has = view.meta.last_seq, "catching Core up");
            if view.meta.last_seq > core_has && !lock(&runtime.outbox).has_from(&session_id, core_has) {
                load_from_store(runtime, &store, &workspace, &view, core_has)?;
            }
        }
    }
    Ok(())
}

fn load_from_store(
    runtime: &Runtime,
    store: &Store,
    workspace: &Workspace,
    view: &store::SessionView,
    after: u64,
) -> Result<()> {
    let events = store.events_after(view, 0)?;
    let summary = view.meta.summary(workspace);
    let mut outbox = lock(&runtime.outbox);
    for event in events.into_iter().filter(|event| event.seq > after) {
        outbox.push(summary.clone(), event);
    }
    Ok(())
}

/// Core asked for events after `after` again.
fn resend(runtime: &Arc<Runtime>, session: &SessionId, after: u64) {
    let missing = !lock(&runtime.outbox).has_from(session, after);
    if missing
        && let Some((store, workspace)) = find_session(runtime.node(), session)
        && let Ok(view) = store.read_session(session)
        && let Err(error) = load_from_store(runtime, &store, &workspace, &view, after)
    {
        tracing::warn!(%error, %session, "cannot reload events to resend");
    }
    if let Some(pending) = lock(&runtime.outbox).sessions.get_mut(session) {
        pending.sent_upto = after;
    }
    runtime.wake.notify_one();
}

fn find_session(node: &Node, session: &SessionId) -> Option<(Store, Workspace)> {
    for workspace in node.workspaces().ok()? {
        let Ok(store) = Store::discover(Path::new(&workspace.path)) else {
            continue;
        };
        if store.session_tip(session).ok().flatten().is_some() {
            return Some((store, workspace));
        }
    }
    None
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

/// Approvals in the daemon: granted at once when the session was started
/// with auto-approve or approved for the session; otherwise the turn waits
/// for `cortex session approve|deny` (a `resolve_approval` command), or
/// until the turn is interrupted.
struct Policy {
    runtime: Arc<Runtime>,
    auto_approve: bool,
    /// Nobody will answer: deny at once, as the in-process CLI does.
    deny_approvals: bool,
    cancel: Cancel,
}

/// A turn waiting for a person's answer.
struct PendingApproval {
    /// The `approval_id` of its `approval_requested` event: an answer that
    /// names another one (already answered) is refused.
    approval_id: String,
    reply: std::sync::mpsc::Sender<(ApprovalDecision, String)>,
}

impl Approver for Policy {
    fn decide(&mut self, session: &SessionId, approval_id: &str, _prompt: &str) -> (ApprovalDecision, String) {
        if self.auto_approve {
            return (ApprovalDecision::Approved, "auto-approve (--yes)".into());
        }
        if self.deny_approvals {
            return (ApprovalDecision::Denied, "no terminal to ask (pass --yes to approve)".into());
        }
        if lock(&self.runtime.approved_sessions).contains(session) {
            return (ApprovalDecision::Approved, "approved for the session".into());
        }
        let (reply, answers) = std::sync::mpsc::channel();
        let pending = PendingApproval { approval_id: approval_id.to_string(), reply };
        lock(&self.runtime.approvals).insert(session.clone(), pending);
        let answer = loop {
            match answers.recv_timeout(Duration::from_millis(100)) {
                Ok(answer) => break answer,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !self.cancel.is_cancelled() => continue,
                Err(_) => break (ApprovalDecision::Denied, "the turn was interrupted while waiting".into()),
            }
        };
        lock(&self.runtime.approvals).remove(session);
        answer
    }
}

/// Runs a command once: a copy arriving while it runs waits for its
/// answer, and the ledger answers copies that arrive later, also after a
/// restart.
async fn execute(runtime: &Arc<Runtime>, command: Command) -> CommandOutcome {
    let id = command.id.clone();
    let cell = lock(&runtime.results).entry(id.clone()).or_default().clone();
    let outcome = cell.get_or_init(|| run_once(runtime, command)).await.clone();
    lock(&runtime.results).remove(&id);
    outcome
}

async fn run_once(runtime: &Arc<Runtime>, command: Command) -> CommandOutcome {
    let id = command.id.clone();
    let kept = super::ledger::is_kept(&command.kind).then_some(runtime.ledger.as_ref()).flatten();
    if let Some(ledger) = kept {
        match ledger.claim(&id, command.kind.name()) {
            Ok(None) => {}
            Ok(Some(answer)) => return answer,
            Err(error) => return CommandOutcome::error("failed", format!("cannot record the command: {error}")),
        }
    }
    let worker = runtime.clone();
    let outcome = tokio::task::spawn_blocking(move || execute_blocking(&worker, command))
        .await
        .unwrap_or_else(|error| CommandOutcome::error("failed", format!("the command panicked: {error}")));
    if let Some(ledger) = kept
        && let Err(error) = ledger.finish(&id, &outcome)
    {
        tracing::error!(%error, command = id, "cannot record a command's answer in the ledger");
    }
    outcome
}

fn failure(error: &Error) -> CommandOutcome {
    let code = match error {
        Error::Provider(crate::provider::Error::Script(_)) => "bad_input",
        Error::Lifecycle(_) => "illegal_transition",
        Error::Config { .. } | Error::NothingToCommit(_) => "bad_input",
        Error::Store(store::Error::SessionBusy(_)) => "busy",
        Error::Store(
            store::Error::SessionNotFound(_) | store::Error::NoSuchTurn { .. } | store::Error::NoSuchSessionFile { .. },
        ) => "not_found",
        Error::Store(store::Error::NotASessionFile { .. }) => "bad_input",
        Error::Store(
            store::Error::NotARepository { .. }
            | store::Error::Bare { .. }
            | store::Error::Reftable { .. }
            | store::Error::Sha256 { .. },
        ) => "bad_input",
        _ => "failed",
    };
    CommandOutcome::error(code, error.to_string())
}

fn ok(value: serde_json::Value) -> CommandOutcome {
    CommandOutcome::Ok { value }
}

fn execute_blocking(runtime: &Arc<Runtime>, command: Command) -> CommandOutcome {
    let node = runtime.node();
    match command.kind {
        CommandKind::StartSession {
            session_id,
            workspace_id,
            provider,
            script,
            prompt,
            title,
            auto_approve,
            deny_approvals,
            worktree,
        } => {
            let Some(spec) = ProviderSpec::named(&provider, script) else {
                return CommandOutcome::error(
                    "bad_input",
                    format!("provider `{provider}` is not available on this node"),
                );
            };
            let Some(workspace) =
                node.workspaces().unwrap_or_default().into_iter().find(|workspace| workspace.id == workspace_id)
            else {
                return CommandOutcome::error(
                    "not_found",
                    format!("workspace `{workspace_id}` is not bound on this node"),
                );
            };
            let store = match Store::discover(Path::new(&workspace.path)) {
                Ok(store) => store,
                Err(error) => return failure(&error.into()),
            };
            let request = StartRequest { provider: spec, prompt, title, session_id: session_id.clone(), worktree };
            let mut forward = Forward { runtime: runtime.clone(), workspace: workspace.clone() };
            match node.prepare_start(&store, &workspace, request, &mut forward) {
                Ok(prepared) => {
                    let session_id = prepared.session().clone();
                    spawn_turn(runtime, prepared, workspace, (auto_approve, deny_approvals));
                    ok(serde_json::json!({ "session_id": session_id, "turn": 1 }))
                }
                // A command replayed after a restart: the session exists.
                Err(Error::Store(store::Error::SessionExists(existing))) => {
                    ok(serde_json::json!({ "session_id": existing, "turn": 1 }))
                }
                Err(error) => failure(&error),
            }
        }
        CommandKind::SendTurn { session_id, prompt, auto_approve, deny_approvals } => {
            let Some((store, workspace)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            // Input is never held for later: it would run after a stop.
            if store.read_session(&session_id).is_ok_and(|view| view.meta.state.is_busy()) {
                return failure(&Error::Store(store::Error::SessionBusy(session_id)));
            }
            // A turn that has recorded its end may still be closing.
            wait_until_settled(runtime, &session_id);
            match briefly_retried(|| node.prepare_send(&store, &session_id, &prompt)) {
                Ok(prepared) => {
                    let turn = prepared.meta().turns + 1;
                    spawn_turn(runtime, prepared, workspace, (auto_approve, deny_approvals));
                    ok(serde_json::json!({ "session_id": session_id, "turn": turn }))
                }
                Err(error) => failure(&error),
            }
        }
        CommandKind::StopSession { session_id } => {
            if let Some(cancel) = lock(&runtime.running).get(&session_id) {
                cancel.cancel();
                return ok(serde_json::json!({ "session_id": session_id, "state": "stopping" }));
            }
            let Some((store, workspace)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            let mut forward = Forward { runtime: runtime.clone(), workspace };
            match node.stop_idle(&store, &session_id, &mut forward) {
                Ok(state) => ok(serde_json::json!({ "session_id": session_id, "state": state })),
                Err(error) => failure(&error),
            }
        }
        CommandKind::InterruptSession { session_id } => {
            // The store says whether a turn is really under way: one that is
            // closing down has already left `running`.
            let busy = find_session(node, &session_id)
                .and_then(|(store, _)| store.read_session(&session_id).ok())
                .is_some_and(|view| view.meta.state.is_busy());
            match lock(&runtime.running).get(&session_id) {
                Some(cancel) if busy => {
                    cancel.interrupt();
                    ok(serde_json::json!({ "session_id": session_id, "state": "interrupting" }))
                }
                _ => CommandOutcome::error(
                    "illegal_transition",
                    format!("session `{session_id}` is not running a turn; there is nothing to interrupt"),
                ),
            }
        }
        CommandKind::SteerSession { session_id, text } => {
            let Some((store, _)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            let view = match store.read_session(&session_id) {
                Ok(view) => view,
                Err(error) => return failure(&error.into()),
            };
            if view.meta.provider != "codex" {
                return CommandOutcome::error(
                    "unsupported",
                    format!(
                        "the {} provider cannot take input during a turn; send it as the next turn",
                        view.meta.provider
                    ),
                );
            }
            match lock(&runtime.running).get(&session_id) {
                Some(control) if view.meta.state.is_busy() => {
                    control.steer(text);
                    ok(serde_json::json!({ "session_id": session_id, "steered": true }))
                }
                _ => CommandOutcome::error(
                    "illegal_transition",
                    format!("session `{session_id}` is not running a turn; send the text as the next turn"),
                ),
            }
        }
        CommandKind::ResolveApproval { session_id, approval_id, approve, for_session, by } => {
            let mut approvals = lock(&runtime.approvals);
            let Some(waiting) = approvals.get(&session_id) else {
                return CommandOutcome::error(
                    "not_found",
                    format!("session `{session_id}` has no approval waiting (`cortex session show` tells its state)"),
                );
            };
            // An answer to a question already answered must not answer the next one.
            if let Some(asked) = approval_id
                && asked != waiting.approval_id
            {
                return CommandOutcome::error(
                    "not_found",
                    format!(
                        "approval `{asked}` of session `{session_id}` was answered already; it now asks `{}`",
                        waiting.approval_id
                    ),
                );
            }
            let pending = approvals.remove(&session_id).expect("holds because it was just found");
            drop(approvals);
            if approve && for_session {
                lock(&runtime.approved_sessions).insert(session_id.clone());
            }
            let by = by.unwrap_or_else(|| "a person".into());
            let decision = if approve { ApprovalDecision::Approved } else { ApprovalDecision::Denied };
            let _ = pending.reply.send((decision, by));
            ok(serde_json::json!({ "session_id": session_id, "approved": approve, "for_session": for_session }))
        }
        CommandKind::RunChecks { session_id, name } => {
            wait_until_settled(runtime, &session_id);
            let Some((store, workspace)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            let mut forward = Forward { runtime: runtime.clone(), workspace };
            match node.run_checks(&store, &session_id, name.as_deref(), &mut forward) {
                Ok(checks) => ok(serde_json::json!({ "session_id": session_id, "checks": checks })),
                Err(error) => failure(&error),
            }
        }
        CommandKind::CommitSession { session_id, message } => {
            let Some((store, workspace)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            let mut forward = Forward { runtime: runtime.clone(), workspace };
            match node.commit_session(&store, &session_id, message.as_deref(), &mut forward) {
                Ok(commit) => ok(serde_json::json!({ "session_id": session_id, "commit": commit })),
                Err(error) => failure(&error),
            }
        }
        CommandKind::BindWorkspace { path, name: _ } => bind(runtime, &path),
        CommandKind::UnbindWorkspace { workspace_id } => match node.unbind(&workspace_id) {
            Ok(found) => ok(serde_json::json!({ "unbound": found })),
            Err(error) => failure(&error),
        },
        CommandKind::ReadDiff { session_id, turn, files } => {
            let Some((store, _)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            if files {
                return match store.session_file_diffs(&session_id, turn) {
                    Ok(files) => ok(serde_json::json!({ "files": files })),
                    Err(error) => failure(&error.into()),
                };
            }
            match store.session_diff(&session_id, turn) {
                Ok(patch) => ok(serde_json::json!({ "patch": patch })),
                Err(error) => failure(&error.into()),
            }
        }
        CommandKind::ListFiles { workspace_id, session_id, path } => {
            let place = match FilePlace::find(node, &workspace_id, session_id.as_ref()) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            match place.root.list(&path) {
                Ok(entries) => ok(serde_json::json!({ "path": path, "entries": entries })),
                Err(error) => file_failure(&error),
            }
        }
        CommandKind::ReadFile { workspace_id, session_id, path } => {
            let place = match FilePlace::find(node, &workspace_id, session_id.as_ref()) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            match place.root.read(&path) {
                Ok(content) => ok(serde_json::to_value(content).expect("holds because file contents are JSON")),
                Err(error) => file_failure(&error),
            }
        }
        CommandKind::WriteFile { workspace_id, session_id, path, content, expected_hash, by } => {
            let place = match FilePlace::find(node, &workspace_id, session_id.as_ref()) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            if let Some(outcome) = place.busy() {
                return outcome;
            }
            let action = if expected_hash.is_some() { "edit" } else { "create" };
            match place.root.write(&path, &content, expected_hash.as_deref()) {
                Ok(hash) => {
                    let detail = format!("{} bytes, sha256 {}", content.len(), &hash[..12]);
                    let recorded = place.record(runtime, by, action, Some(path.clone()), Some(detail));
                    ok(serde_json::json!({ "path": path, "hash": hash, "recorded": recorded }))
                }
                Err(error) => file_failure(&error),
            }
        }
        CommandKind::MovePath { workspace_id, session_id, from, to, by } => {
            let place = match FilePlace::find(node, &workspace_id, session_id.as_ref()) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            if let Some(outcome) = place.busy() {
                return outcome;
            }
            match place.root.rename(&from, &to) {
                Ok((from, to)) => {
                    let recorded = place.record(runtime, by, "move", Some(to.clone()), Some(format!("from {from}")));
                    ok(serde_json::json!({ "from": from, "to": to, "recorded": recorded }))
                }
                Err(error) => file_failure(&error),
            }
        }
        CommandKind::DeletePath { workspace_id, session_id, path, expected_hash, by } => {
            let place = match FilePlace::find(node, &workspace_id, session_id.as_ref()) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            if let Some(outcome) = place.busy() {
                return outcome;
            }
            match place.root.delete(&path, expected_hash.as_deref()) {
                Ok(path) => {
                    let recorded = place.record(runtime, by, "delete", Some(path.clone()), None);
                    ok(serde_json::json!({ "path": path, "recorded": recorded }))
                }
                Err(error) => file_failure(&error),
            }
        }
        CommandKind::OpenTerminal { workspace_id, session_id, terminal_id, cols, rows, by, check } => {
            let place = match FilePlace::find(node, &workspace_id, session_id.as_ref()) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            let Some(terminal) = terminal_id else {
                return CommandOutcome::error("bad_input", "a terminal needs an id (Core assigns one)");
            };
            if let Some(name) = check {
                return run_workspace_check(runtime, place, terminal, &name, by);
            }
            if let Err(error) = runtime.terminals.open(&terminal, place.root.dir(), cols, rows, runtime.outlet.clone())
            {
                return CommandOutcome::error("failed", format!("cannot start a terminal: {error}"));
            }
            let by = by.unwrap_or_else(|| "a person".into());
            let detail = format!("opened terminal {terminal}");
            let recorded = place.record(runtime, Some(by.clone()), "terminal", None, Some(detail));
            lock(&runtime.terminal_sessions)
                .insert(terminal.clone(), (place.store.clone(), place.session.clone(), place.workspace.clone(), by));
            ok(serde_json::json!({
                "terminal_id": terminal, "dir": place.root.dir().display().to_string(), "recorded": recorded,
            }))
        }
        CommandKind::ListChecks { workspace_id } => {
            let place = match FilePlace::find(node, &workspace_id, None) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            match super::config::RepoConfig::load(place.root.dir()) {
                Ok(config) => {
                    let checks: Vec<_> = config
                        .checks
                        .iter()
                        .map(|check| serde_json::json!({ "name": check.name, "command": check.command }))
                        .collect();
                    ok(serde_json::json!({ "checks": checks }))
                }
                Err(error) => failure(&error),
            }
        }
        CommandKind::ReadJournal { workspace_id, limit } => {
            let place = match FilePlace::find(node, &workspace_id, None) {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            match place.store.journal(limit.min(1000)) {
                Ok(entries) => ok(serde_json::json!({ "entries": entries })),
                Err(error) => failure(&error.into()),
            }
        }
        CommandKind::CloseTerminal { terminal_id, .. } => {
            lock(&runtime.terminal_sessions).remove(&terminal_id);
            ok(serde_json::json!({ "terminal_id": terminal_id, "closed": runtime.terminals.close(&terminal_id) }))
        }
        CommandKind::ReadSessionFile { session_id, path } => {
            let Some((store, _)) = find_session(node, &session_id) else {
                return CommandOutcome::error("not_found", format!("session `{session_id}` is not on this node"));
            };
            match store.session_file(&session_id, &path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let text = store::redact::redact_str(&text);
                    ok(serde_json::json!({ "path": path, "bytes": bytes.len(), "text": text }))
                }
                Err(error) => failure(&error.into()),
            }
        }
    }
}

/// Keys for a terminal: typed into its PTY; each command line finished is
/// history for Core and, for a terminal opened from a session, an event of
/// the person's in that session.
fn typed(runtime: &Arc<Runtime>, terminal: &str, data: &str) {
    for (line, offset) in runtime.terminals.input(terminal, data) {
        let command = store::redact::redact_str(&line).into_owned();
        let at = jiff::Timestamp::now();
        let frame = NodeFrame::TermCommand {
            v: PROTOCOL_VERSION,
            terminal: terminal.to_string(),
            command: command.clone(),
            at,
            offset,
        };
        let outlet = lock(&runtime.outlet).clone();
        if let Some(outlet) = outlet {
            let _ = outlet.blocking_send(frame);
        }
        let place = lock(&runtime.terminal_sessions).get(terminal).cloned();
        if let Some((store, session, workspace, by)) = place {
            let detail = Some(format!("{command}  (terminal {terminal}, output from byte {offset})"));
            // Recording may wait for the session; the keys must not.
            let runtime = runtime.clone();
            std::thread::spawn(move || {
                record_intervention(&runtime, &store, session.as_ref(), &workspace, by, "terminal", None, detail);
            });
        }
    }
}

/// Runs a configured check in a workspace outside any session: its output
/// streams as terminal `terminal`'s (read-only), its result is a journal line
/// by the person, with the output stored beside it as evidence.
fn run_workspace_check(
    runtime: &Arc<Runtime>,
    place: FilePlace,
    terminal: String,
    name: &str,
    by: Option<String>,
) -> CommandOutcome {
    let config = match super::config::RepoConfig::load(place.root.dir()) {
        Ok(config) => config,
        Err(error) => return failure(&error),
    };
    let Some(check) = config.checks.into_iter().find(|check| check.name == name) else {
        let message =
            format!("workspace `{}` has no check named `{name}` in .cortex/config.toml", place.workspace.name);
        return CommandOutcome::error("bad_input", message);
    };
    let outlet = runtime.outlet.clone();
    let by = by.unwrap_or_else(|| "a person".into());
    let answer =
        serde_json::json!({ "terminal_id": terminal, "dir": place.root.dir().display().to_string(), "check": name });
    std::thread::spawn(move || {
        let send = |frame: NodeFrame| {
            let sender = lock(&outlet).clone();
            if let Some(sender) = sender {
                let _ = sender.blocking_send(frame);
            }
        };
        send(NodeFrame::TermOutput {
            v: PROTOCOL_VERSION,
            terminal: terminal.clone(),
            data: format!("$ {}\r\n", store::redact::redact_str(&check.command)),
        });
        // Whole lines are redacted and shown; a secret split by a read is not.
        let mut pending: Vec<u8> = Vec::new();
        let show = |bytes: &[u8]| {
            let data = store::redact::redact_str(&String::from_utf8_lossy(bytes)).replace('\n', "\r\n");
            send(NodeFrame::TermOutput { v: PROTOCOL_VERSION, terminal: terminal.clone(), data });
        };
        let ran = super::checks::run(&check, place.root.dir(), &mut |chunk| {
            pending.extend_from_slice(chunk);
            if let Some(end) = pending.iter().rposition(|byte| *byte == b'\n') {
                let lines: Vec<u8> = pending.drain(..=end).collect();
                show(&lines);
            }
        });
        if !pending.is_empty() {
            show(&pending);
        }
        let (code, verdict) = match &ran {
            Ok(run) => (run.exit_code, if run.passed { "passed" } else { "failed" }),
            Err(_) => (None, "could not run"),
        };
        let at = jiff::Timestamp::now();
        let evidence = format!("checks/{}-{}.log", at.strftime("%Y%m%dT%H%M%S"), check.name);
        let exit = code.map_or("no exit code".to_string(), |code| format!("exit {code}"));
        let entry = crate::protocol::JournalEntry {
            at,
            by,
            action: "check".into(),
            path: None,
            detail: Some(format!("{} {verdict} ({exit}); output at {evidence}", check.name)),
        };
        let output = match &ran {
            Ok(run) => run.output.clone(),
            Err(error) => error.to_string().into_bytes(),
        };
        if let Err(error) = place.store.append_journal_with(&entry, Some((&evidence, &output))) {
            tracing::warn!(%error, "a workspace check's result could not be recorded");
        }
        send(NodeFrame::TermOutput {
            v: PROTOCOL_VERSION,
            terminal: terminal.clone(),
            data: format!("\r\n[{} {verdict}, {exit}]\r\n", check.name),
        });
        send(NodeFrame::TermExit { v: PROTOCOL_VERSION, terminal, code });
    });
    ok(answer)
}

/// Where a file command works: the workspace, or the worktree of the
/// session named, and that session (where a person's change is recorded).
struct FilePlace {
    root: super::files::Root,
    workspace: Workspace,
    /// The workspace's store (the session's refs live there too).
    store: Store,
    session: Option<SessionId>,
}

impl FilePlace {
    fn find(node: &Node, workspace_id: &WorkspaceId, session: Option<&SessionId>) -> Result<FilePlace, CommandOutcome> {
        let workspace = node
            .workspaces()
            .unwrap_or_default()
            .into_iter()
            .find(|workspace| &workspace.id == workspace_id)
            .ok_or_else(|| {
                CommandOutcome::error("not_found", format!("workspace `{workspace_id}` is not on this node"))
            })?;
        let store = Store::discover(Path::new(&workspace.path)).map_err(|error| failure(&error.into()))?;
        let (dir, session) = match session {
            None => (store.workdir().to_path_buf(), None),
            Some(session) => {
                if store.session_tip(session).ok().flatten().is_none() {
                    let message = format!("session `{session}` is not in workspace `{}`", workspace.name);
                    return Err(CommandOutcome::error("not_found", message));
                }
                let own = store.for_session(session).map_err(|error| failure(&error.into()))?;
                (own.workdir().to_path_buf(), Some(session.clone()))
            }
        };
        let root = super::files::Root::new(&dir).map_err(|error| file_failure(&error))?;
        Ok(FilePlace { root, workspace, store, session })
    }

    /// A person's change must not race the agent's turn in the same session.
    fn busy(&self) -> Option<CommandOutcome> {
        let session = self.session.as_ref()?;
        let state = self.store.read_session(session).ok()?.meta.state;
        state.is_busy().then(|| {
            CommandOutcome::error(
                "busy",
                format!("session `{session}` is {state}: wait for its turn to end, or interrupt it, before changing its files"),
            )
        })
    }

    /// Records the change as the person's: in the session named, or else in
    /// the workspace journal.
    fn record(
        &self,
        runtime: &Arc<Runtime>,
        by: Option<String>,
        action: &str,
        path: Option<String>,
        detail: Option<String>,
    ) -> bool {
        let by = by.unwrap_or_else(|| "a person".into());
        record_intervention(runtime, &self.store, self.session.as_ref(), &self.workspace, by, action, path, detail)
    }
}

/// A person's act: an `intervention` event in the session it was made
/// from, or a line in the workspace journal (`refs/cortex/workspace/journal`).
#[allow(clippy::too_many_arguments)]
fn record_intervention(
    runtime: &Arc<Runtime>,
    store: &Store,
    session: Option<&SessionId>,
    workspace: &Workspace,
    by: String,
    action: &str,
    path: Option<String>,
    detail: Option<String>,
) -> bool {
    let Some(session) = session else {
        let entry =
            crate::protocol::JournalEntry { at: jiff::Timestamp::now(), by, action: action.into(), path, detail };
        return match store.append_journal(&entry) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "a person's change could not be recorded in the workspace journal");
                false
            }
        };
    };
    let kind = EventKind::Intervention { by, action: action.into(), path, detail };
    let mut forward = Forward { runtime: runtime.clone(), workspace: workspace.clone() };
    match briefly_retried(|| super::runner::record_event(store, session, kind.clone(), None, &mut forward)) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, %session, "a person's change could not be recorded in the session");
            false
        }
    }
}

fn file_failure(error: &super::files::FileError) -> CommandOutcome {
    CommandOutcome::error(error.code(), error.to_string())
}

/// Binds a repository after checking it: it exists, is a git repository
/// with a working tree, and lies under an allowed root if any are set.
fn bind(runtime: &Runtime, path: &str) -> CommandOutcome {
    let path = Path::new(path);
    if !path.is_absolute() {
        return CommandOutcome::error("bad_input", format!("`{}` is not an absolute path", path.display()));
    }
    if !path.exists() {
        return CommandOutcome::error("bad_input", format!("`{}` does not exist on this node", path.display()));
    }
    let store = match Store::discover(path) {
        Ok(store) => store,
        Err(error) => return failure(&error.into()),
    };
    let roots = &runtime.config.allowed_roots;
    let allowed = roots.is_empty()
        || roots.iter().any(|root| root.canonicalize().is_ok_and(|root| store.workdir().starts_with(root)));
    if !allowed {
        let roots: Vec<_> = roots.iter().map(|root| root.display().to_string()).collect();
        return CommandOutcome::error(
            "bad_input",
            format!("`{}` is outside this node's allowed roots ({})", store.workdir().display(), roots.join(", ")),
        );
    }
    match runtime.node().bind(&store) {
        Ok(workspace) => ok(serde_json::to_value(workspace).expect("holds because workspaces are JSON")),
        Err(error) => failure(&error),
    }
}

/// A turn that has recorded its last event may still be closing its store;
/// a follow-up turn waits for that (briefly) rather than finding it busy.
fn wait_until_settled(runtime: &Runtime, session: &SessionId) {
    for _ in 0..100 {
        if !lock(&runtime.running).contains_key(session) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Retries `attempt` while the session is held for a moment by other work
/// of this node (expiry, checks, a commit), for up to five seconds.
fn briefly_retried<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut left = 100;
    loop {
        match attempt() {
            Err(Error::Store(store::Error::SessionBusy(_))) if left > 0 => {
                left -= 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Runs a prepared turn on a thread of its own, forwarding its events.
/// `approvals` is `(auto_approve, deny_approvals)` as the command said.
fn spawn_turn(
    runtime: &Arc<Runtime>,
    prepared: super::PreparedTurn,
    workspace: Workspace,
    (auto_approve, deny_approvals): (bool, bool),
) {
    let cancel = Cancel::default();
    let session = prepared.session().clone();
    lock(&runtime.running).insert(session.clone(), cancel.clone());
    let runtime = runtime.clone();
    std::thread::spawn(move || {
        let mut forward = Forward { runtime: runtime.clone(), workspace };
        let mut policy = Policy { runtime: runtime.clone(), auto_approve, deny_approvals, cancel: cancel.clone() };
        if let Err(error) = prepared.run(&mut policy, &mut forward, &cancel) {
            tracing::error!(%error, %session, "a turn failed to run; the spool keeps its events for recovery");
        }
        lock(&runtime.running).remove(&session);
        // A stop that came as the turn was ending found it still listed:
        // carry it out now that the session is idle.
        if cancel.stops()
            && let Some((store, _)) = find_session(runtime.node(), &session)
            && store.read_session(&session).is_ok_and(|view| !view.meta.state.is_final())
            && let Err(error) = runtime.node().stop_idle(&store, &session, &mut forward)
        {
            tracing::warn!(%error, %session, "a stop asked at the end of a turn could not be carried out");
        }
    });
}

/// What the node can do: sent in every hello.
fn capabilities() -> Capabilities {
    let (_, total_memory) = memory();
    let git_version =
        std::process::Command::new("git").arg("--version").output().ok().filter(|output| output.status.success()).map(
            |output| String::from_utf8_lossy(&output.stdout).trim().trim_start_matches("git version ").to_string(),
        );
    Capabilities {
        cortex_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |cpus| cpus.get() as u32),
        memory_bytes: total_memory,
        git_version,
        providers: providers(),
    }
}

/// The providers this node can run: `fake` always, `codex` when its binary
/// answers `--version` (`CORTEX_CODEX_BIN`, or `codex` on the PATH).
fn providers() -> Vec<ProviderInfo> {
    let features = |names: &[&str]| names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
    let mut providers = vec![ProviderInfo {
        name: "fake".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        features: features(&["approvals", "interrupt"]),
    }];
    let binary = std::env::var("CORTEX_CODEX_BIN").unwrap_or_else(|_| "codex".into());
    let version = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().trim_start_matches("codex-cli ").to_string());
    if let Some(version) = version {
        // Exec mode runs with approval policy `never` and takes no steering.
        providers.push(ProviderInfo {
            name: "codex".into(),
            version: Some(version.clone()),
            features: features(&["approvals", "interrupt", "steer", "resume"]),
        });
        providers.push(ProviderInfo {
            name: "codex-exec".into(),
            version: Some(version),
            features: features(&["interrupt", "resume"]),
        });
    }
    providers
}

/// Load, free memory, and free disk under each workspace root.
fn resources(roots: &[String]) -> Resources {
    let (free_memory_bytes, total_memory_bytes) = memory();
    let Ok(disks) = sysinfo::Disks::new_with_refreshed_list() else {
        return Resources { load1: load(), free_memory_bytes, total_memory_bytes, disks: Vec::new() };
    };
    let disks = roots
        .iter()
        .filter_map(|root| {
            let disk = disks
                .iter()
                .filter(|disk| Path::new(root).starts_with(disk.mount_point()))
                .max_by_key(|disk| disk.mount_point().as_os_str().len())?;
            Some(DiskFree { path: root.clone(), free_bytes: disk.available_space(), total_bytes: disk.total_space() })
        })
        .collect();
    Resources { load1: load(), free_memory_bytes, total_memory_bytes, disks }
}

/// Available and total memory in bytes; zeros where the OS will not say.
fn memory() -> (u64, u64) {
    match sysinfo::System::new() {
        Ok(mut system) => {
            system.refresh_memory();
            (system.available_memory(), system.total_memory())
        }
        Err(_) => (0, 0),
    }
}

fn load() -> f64 {
    sysinfo::System::load_average().map_or(0.0, |load| load.one)
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
