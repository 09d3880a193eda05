//! The link to Core: connect, hello (with the node's identity, workspaces
//! and session tips), welcome, then frames both ways until it drops; the
//! outbox is resent from what Core acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::{Ended, Runtime, commands, expire_idle, host, lock};
use crate::node::commands::find_session;
use crate::node::identity::Identity;
use crate::node::{Error, Node, Result};
use crate::protocol::{
    CoreFrame, Credential, NodeFrame, NodeId, PROTOCOL_VERSION, SessionId, SessionState, SessionTip, Workspace,
};
use crate::store::{self, Store};

fn websocket_url(core_url: &str) -> String {
    let base = core_url.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .unwrap_or_else(|| base.replacen("http://", "ws://", 1));
    format!("{base}/api/v1/nodes/connect")
}

pub(super) async fn link(runtime: &Arc<Runtime>, shutdown: &mut watch::Receiver<bool>) -> Result<Ended> {
    let config = &runtime.config;
    let identity = Identity::load_or_create(&config.data_dir)?;
    let (credential, name) = credential(config, &identity)?;
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
        NodeFrame::Hello { v: PROTOCOL_VERSION, credential, capabilities: host::capabilities(), workspaces, sessions };
    send(&mut sink, &hello).await?;

    let (node_id, acked, heartbeat) = welcome(&mut stream, &config.data_dir, &name).await?;
    let node = runtime.node.get_or_init(|| {
        Node::with_identity(&config.data_dir, &node_id, &name)
            .with_turns(runtime.turns.clone())
            .with_gateway(Arc::clone(&runtime.gateway))
    });
    if *node.id() != node_id {
        return Err(Error::Link(format!("Core now calls this node {node_id}, but it was {}; restart it", node.id())));
    }
    tracing::info!(%node_id, "connected to Core");
    // The credential as it stands after the welcome (an enrollment sets it).
    if let Ok(identity) = Identity::load_or_create(&config.data_dir) {
        runtime.gateway.set_core(&config.core_url, &node_id, &name, &identity.secret);
    }

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
    report_tool_changes(runtime, &out_tx);
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
                on_frame(runtime, &out_tx, text.as_str())?;
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
                let resources = tokio::task::spawn_blocking(move || host::resources(&roots)).await.unwrap_or_default();
                send(&mut sink, &NodeFrame::Heartbeat { v: PROTOCOL_VERSION, resources }).await?;
            }
            _ = shutdown.changed() => {
                let _ = sink.close().await;
                return Ok(Ended::Shutdown);
            }
        }
    }
}

/// The credential the hello presents, and the node's name.
fn credential(config: &super::DaemonConfig, identity: &Identity) -> Result<(Credential, String)> {
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
    Ok((credential, name))
}

/// Core's answer to the hello: the node's id, what Core has of each
/// session, and the heartbeat period; a new credential is saved first.
async fn welcome<S>(stream: &mut S, data_dir: &Path, name: &str) -> Result<(NodeId, BTreeMap<SessionId, u64>, Duration)>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let welcome = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .map_err(|_| Error::Link("Core did not answer the hello".into()))?;
    let frame = match welcome {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<CoreFrame>(text.as_str())
            .map_err(|error| Error::Link(format!("malformed welcome: {error}")))?,
        other => return Err(Error::Link(format!("no welcome from Core: {other:?}"))),
    };
    match frame {
        CoreFrame::Welcome { node_id, secret, acked, heartbeat_ms, .. } => {
            if let Some(secret) = secret {
                let confirmed =
                    Identity { node_id: node_id.clone(), secret, name: name.to_string(), unconfirmed: false };
                confirmed.save(data_dir)?;
                tracing::info!(%node_id, "enrolled with Core");
            }
            Ok((node_id, acked, Duration::from_millis(heartbeat_ms.max(100))))
        }
        CoreFrame::Refused { reason, message, .. } => Err(Error::Refused { reason, message }),
        CoreFrame::Error { code, message, .. } => {
            Err(Error::Link(format!("Core refused the hello ({code}): {message}")))
        }
        other => Err(Error::Link(format!("expected a welcome, got {other:?}"))),
    }
}

/// A crash or a restart of a tool's server is reported as it happens,
/// while this link lasts.
fn report_tool_changes(runtime: &Arc<Runtime>, out: &mpsc::Sender<NodeFrame>) {
    let mut changes = runtime.servers.changes();
    let (runtime, out) = (runtime.clone(), out.clone());
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let states = runtime.servers.states().await;
            if out.send(NodeFrame::ToolStates { v: PROTOCOL_VERSION, states }).await.is_err() {
                break;
            }
        }
    });
}

/// One frame from Core: acks, resends, commands (run on their own task,
/// answered through `out`), terminal keys. A refusal ends the link.
fn on_frame(runtime: &Arc<Runtime>, out: &mpsc::Sender<NodeFrame>, text: &str) -> Result<()> {
    match serde_json::from_str::<CoreFrame>(text) {
        Ok(CoreFrame::Ack { session, seq, .. }) => lock(&runtime.outbox).ack(&session, seq),
        Ok(CoreFrame::Resend { session, after, .. }) => {
            let runtime = runtime.clone();
            tokio::task::spawn_blocking(move || resend(&runtime, &session, after));
        }
        Ok(CoreFrame::Command { command }) => {
            let runtime = runtime.clone();
            let out = out.clone();
            tokio::spawn(async move {
                let id = command.id.clone();
                let binding = matches!(
                    command.kind,
                    crate::protocol::CommandKind::BindWorkspace { .. }
                        | crate::protocol::CommandKind::UnbindWorkspace { .. }
                );
                let outcome = commands::execute(&runtime, command).await;
                let _ = out.send(NodeFrame::CommandResult { v: PROTOCOL_VERSION, id, outcome }).await;
                // A workspace's own tools come and go with it.
                if binding {
                    let states = super::reconcile_tools(&runtime).await;
                    let _ = out.send(NodeFrame::ToolStates { v: PROTOCOL_VERSION, states }).await;
                }
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
        Ok(CoreFrame::Tools { tools, trusted, .. }) => {
            let runtime = runtime.clone();
            let out = out.clone();
            *lock(&runtime.core_tools) = tools;
            *lock(&runtime.trusted_tools) = trusted;
            tokio::spawn(async move {
                let states = super::reconcile_tools(&runtime).await;
                let _ = out.send(NodeFrame::ToolStates { v: PROTOCOL_VERSION, states }).await;
            });
        }
        Err(error) => tracing::warn!(%error, "malformed frame from Core"),
    }
    Ok(())
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
