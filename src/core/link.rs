//! The WebSocket link from a node: hello and authentication (enrollment
//! tokens are exchanged for a node credential here), then heartbeats, event
//! batches (committed, acknowledged, broadcast to streams) and command
//! results. A frame Core cannot use gets a typed error frame; the link goes
//! on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::state::{CoreState, Link, lock};
use crate::protocol::{
    Capabilities, CoreFrame, Credential, NodeFrame, NodeId, NodeStatus, PROTOCOL_VERSION, Refusal, SessionSummary,
    Workspace,
};

/// How long a new link may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame a node may send (a batch of events is at most a few
/// MiB); a larger one ends the link before it is buffered.
const MAX_FRAME: usize = 16 << 20;
/// The largest hello: it is read before the node is authenticated.
const MAX_HELLO: usize = 1 << 20;

pub(crate) async fn connect(ws: WebSocketUpgrade, State(state): State<Arc<CoreState>>) -> Response {
    ws.max_message_size(MAX_FRAME).max_frame_size(MAX_FRAME).on_upgrade(move |socket| link(socket, state))
}

fn text(frame: &CoreFrame) -> Message {
    Message::Text(serde_json::to_string(frame).expect("holds because frames are JSON").into())
}

fn error_frame(code: &str, message: impl Into<String>) -> CoreFrame {
    CoreFrame::Error { v: PROTOCOL_VERSION, code: code.into(), message: message.into() }
}

/// The hello and the welcome: the version first, then the credential and
/// the node's claims. `None` when the node was refused (it has been told
/// why) or the link failed.
async fn handshake(
    state: &CoreState,
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
) -> Option<NodeId> {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(Message::Text(hello)))) if hello.len() > MAX_HELLO => {
            let message = format!("a hello is at most {MAX_HELLO} bytes; this one was {}", hello.len());
            let _ = sink.send(text(&error_frame("too_large", message))).await;
            return None;
        }
        Ok(Some(Ok(Message::Text(text)))) => text,
        _ => {
            let _ = sink.send(text(&error_frame("no_hello", "the first frame must be a hello"))).await;
            return None;
        }
    };
    // The version first: a hello from another protocol version may not even
    // have this version's shape.
    if let Some(version) = frame_version(hello.as_str())
        && version != u64::from(PROTOCOL_VERSION)
    {
        let message = format!(
            "this Core speaks protocol {PROTOCOL_VERSION}, the node {version}: run the same Cortex version on both"
        );
        let _ = sink.send(text(&refused(Refusal::UnsupportedVersion, message))).await;
        return None;
    }
    let (credential, capabilities, workspaces) = match serde_json::from_str::<NodeFrame>(hello.as_str()) {
        Ok(NodeFrame::Hello { credential, capabilities, workspaces, .. }) => (credential, capabilities, workspaces),
        Ok(_) => {
            let _ = sink.send(text(&error_frame("no_hello", "the first frame must be a hello"))).await;
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "malformed hello from a node");
            let _ = sink.send(text(&error_frame("malformed", format!("malformed hello: {error}")))).await;
            return None;
        }
    };
    let (typed_id, secret) = match authenticate(state, credential) {
        Ok(identity) => identity,
        Err(refusal) => {
            tracing::warn!(?refusal, "refused a node");
            let _ = sink.send(text(&refusal)).await;
            let _ = sink.close().await;
            return None;
        }
    };
    let node_id = typed_id;
    if let Err(error) = accept_hello(state, &node_id, &capabilities, &workspaces) {
        tracing::error!(%error, "cannot record a node's hello");
        return None;
    }
    let acked = lock(&state.index).acked_for_node(node_id.as_str()).unwrap_or_default();
    let welcome = CoreFrame::Welcome {
        v: PROTOCOL_VERSION,
        node_id: node_id.clone(),
        secret,
        acked,
        heartbeat_ms: state.config.heartbeat.as_millis() as u64,
    };
    sink.send(text(&welcome)).await.ok()?;
    Some(node_id)
}

async fn link(socket: WebSocket, state: Arc<CoreState>) {
    let (mut sink, mut stream) = socket.split();
    let Some(node_id) = handshake(&state, &mut sink, &mut stream).await else { return };

    let (tx, mut rx) = mpsc::channel::<CoreFrame>(1024);
    let conn_id = state.next_conn_id();
    let kick = std::sync::Arc::new(tokio::sync::Notify::new());
    // Registered offline, then moved online, so the change is recorded.
    lock(&state.links).insert(
        node_id.clone(),
        Link {
            conn_id,
            tx: tx.clone(),
            status: NodeStatus::Offline,
            last_heartbeat: Instant::now(),
            kick: kick.clone(),
        },
    );
    state.set_status(&node_id, Some(conn_id), NodeStatus::Online, "connected");
    for command in state.unfinished_for(&node_id) {
        let _ = tx.send(CoreFrame::Command { command }).await;
    }
    let _ = tx.send(state.tools_frame(&node_id)).await;

    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let closing = matches!(frame, CoreFrame::Refused { .. });
            if sink.send(text(&frame)).await.is_err() {
                break;
            }
            if closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut reason = "link closed".to_string();
    loop {
        tokio::select! {
            message = stream.next() => {
                match message {
                    Some(Ok(Message::Text(text))) => handle_frame(&state, &node_id, conn_id, text.as_str(), &tx).await,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = tx.send(error_frame("malformed", "binary frames are not part of the protocol")).await;
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        reason = format!("link error: {error}");
                        break;
                    }
                }
            }
            _ = kick.notified() => {
                reason = "link closed by Core".into();
                break;
            }
        }
    }
    state.set_status(&node_id, Some(conn_id), NodeStatus::Offline, &reason);
    // With every sender gone the writer sends what is queued (a refusal, say)
    // and closes the socket.
    drop(tx);
    if tokio::time::timeout(Duration::from_secs(2), writer).await.is_err() {
        tracing::warn!(node = %node_id, "a link's writer did not finish; dropping it");
    }
}

/// The `v` of a frame, read before the frame is parsed as this version's.
fn frame_version(text: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(text).ok()?.get("v")?.as_u64()
}

fn refused(reason: Refusal, message: impl Into<String>) -> CoreFrame {
    CoreFrame::Refused { v: PROTOCOL_VERSION, reason, message: message.into() }
}

/// The node's id, and its new secret when this hello enrolled it.
fn authenticate(state: &CoreState, credential: Credential) -> Result<(NodeId, Option<String>), Box<CoreFrame>> {
    let mut registry = lock(&state.registry);
    let internal = |error: super::Error| Box::new(error_frame("internal", error.to_string()));
    match credential {
        Credential::Enroll { token, name, node_id } => {
            match registry.enroll(&token, &name, node_id.as_ref()).map_err(internal)? {
                Some((id, secret)) => Ok((id, Some(secret))),
                None => Err(Box::new(refused(
                    Refusal::BadEnrollmentToken,
                    "the enrollment token is unknown, used or expired; get a new one with `cortex node enroll`",
                ))),
            }
        }
        Credential::Node { node_id, secret } => match registry.authenticate(&node_id, &secret).map_err(internal)? {
            Some(node) if node.revoked => {
                Err(Box::new(refused(Refusal::Revoked, "this node was revoked; enroll it again with a new token")))
            }
            Some(_) => Ok((node_id, None)),
            None => Err(Box::new(refused(
                Refusal::UnknownCredential,
                "Core does not know this node's credential; enroll it with a token from `cortex node enroll`",
            ))),
        },
    }
}

fn accept_hello(
    state: &CoreState,
    node_id: &NodeId,
    capabilities: &Capabilities,
    workspaces: &[Workspace],
) -> super::Result<()> {
    lock(&state.registry).record_hello(node_id, capabilities)?;
    // Core's registry is the authority: a workspace bound to another node is
    // refused, one Core never saw is bound to this node now.
    let accepted = state.claimed_workspaces(node_id, workspaces)?;
    let index = lock(&state.index);
    for mut workspace in accepted {
        workspace.node = node_id.to_string();
        index.put_workspace(&workspace)?;
    }
    Ok(())
}

async fn handle_frame(
    state: &Arc<CoreState>,
    node_id: &NodeId,
    conn_id: u64,
    text: &str,
    tx: &mpsc::Sender<CoreFrame>,
) {
    if let Some(version) = frame_version(text)
        && version != u64::from(PROTOCOL_VERSION)
    {
        tracing::warn!(node = %node_id, version, "frame with an unsupported protocol version");
        let message =
            format!("protocol version {version} is not supported (this Core speaks {PROTOCOL_VERSION}); frame ignored");
        let _ = tx.send(error_frame("unsupported_version", message)).await;
        return;
    }
    let frame = match serde_json::from_str::<NodeFrame>(text) {
        Ok(frame) => frame,
        Err(error) => {
            tracing::warn!(node = %node_id, %error, "malformed frame from a node");
            let _ = tx.send(error_frame("malformed", format!("malformed frame ignored: {error}"))).await;
            return;
        }
    };
    let was_quiet = {
        let mut links = lock(&state.links);
        match links.get_mut(node_id) {
            Some(link) if link.conn_id == conn_id => {
                link.last_heartbeat = Instant::now();
                link.status != NodeStatus::Online
            }
            _ => false,
        }
    };
    if was_quiet {
        state.set_status(node_id, Some(conn_id), NodeStatus::Online, "heard from again");
    }
    match frame {
        NodeFrame::Hello { .. } => {
            let _ = tx.send(error_frame("unexpected", "hello was already said on this link")).await;
        }
        NodeFrame::Heartbeat { resources, .. } => {
            if let Err(error) = lock(&state.registry).record_heartbeat(node_id, &resources, jiff::Timestamp::now()) {
                tracing::error!(%error, "cannot record a heartbeat");
            }
        }
        NodeFrame::Events { session, events, .. } => ingest(state, node_id, session, events, tx).await,
        NodeFrame::CommandResult { id, outcome, .. } => {
            if let Err(refusal) = state.may_answer(node_id, &id) {
                state.refuse_claim(node_id, refusal.clone());
                let _ = tx.send(error_frame("not_owner", format!("{refusal}; ignored"))).await;
                return;
            }
            state.answered(node_id, &id, outcome);
        }
        NodeFrame::TermOutput { terminal, data, .. } => state.terminals.output(node_id, &terminal, data),
        NodeFrame::TermCommand { terminal, command, at, offset, .. } => {
            state.terminals.command(node_id, &terminal, super::TerminalCommand { at, command, offset });
        }
        NodeFrame::TermExit { terminal, code, .. } => state.terminals.exit(node_id, &terminal, code),
        NodeFrame::ToolStates { states, .. } => {
            lock(&state.tool_states).insert(node_id.clone(), states);
        }
    }
}

async fn ingest(
    state: &Arc<CoreState>,
    node_id: &NodeId,
    session: SessionSummary,
    events: Vec<crate::protocol::Event>,
    tx: &mpsc::Sender<CoreFrame>,
) {
    if let Err(refusal) = state.may_send_events(node_id, &session) {
        state.refuse_claim(node_id, refusal.clone());
        let _ = tx.send(error_frame("not_owner", format!("{refusal}; not committed"))).await;
        return;
    }
    // Committed with whatever else is waiting; the committer answers.
    let queue = state.ingest.get().expect("holds because links arrive only once Core serves");
    let job = super::ingest::Job { session, events, reply: tx.clone() };
    if queue.send(job).await.is_err() {
        let _ = tx.send(error_frame("internal", "Core is stopping; events not committed")).await;
    }
}
