//! Terminals as Core sees them: which node runs each, its recent output
//! (the scrollback a reattaching browser or `cortex term` gets first), the
//! command lines typed into it, and the bridge from a WebSocket (a browser
//! or `cortex term`) to the node's PTY through the node's link.
//!
//! On the client WebSocket, text frames are JSON: the client sends
//! `{"type":"input","data":…}` and `{"type":"resize","cols":…,"rows":…}`;
//! Core sends `{"type":"output","data":…}` and `{"type":"exit","code":…}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::state::{CoreState, lock};
use crate::protocol::{
    CoreFrame, NodeId, PROTOCOL_VERSION, SessionId, TerminalClientMessage, TerminalServerMessage, WorkspaceId,
};

/// Output kept per terminal for reattaching.
const SCROLLBACK: usize = 256 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TerminalCommand {
    pub at: jiff::Timestamp,
    pub command: String,
    /// Where its output starts in the terminal's output, in bytes.
    pub offset: u64,
}

/// A terminal's public description.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TerminalSummary {
    pub id: String,
    pub node_id: NodeId,
    pub workspace_id: WorkspaceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    pub opened_at: jiff::Timestamp,
    /// `Some` once the shell has ended, with its exit code if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited: Option<Option<i32>>,
    pub history: Vec<TerminalCommand>,
}

#[derive(Clone, Debug)]
pub enum TerminalUpdate {
    Output(String),
    Exit(Option<i32>),
}

struct Terminal {
    summary: TerminalSummary,
    scrollback: String,
    updates: broadcast::Sender<TerminalUpdate>,
}

#[derive(Default)]
pub struct Terminals {
    open: Mutex<HashMap<String, Terminal>>,
}

impl Terminals {
    pub fn register(&self, id: &str, node_id: &NodeId, workspace_id: WorkspaceId, session_id: Option<SessionId>) {
        let (updates, _) = broadcast::channel(1024);
        let summary = TerminalSummary {
            id: id.to_string(),
            node_id: node_id.clone(),
            workspace_id,
            session_id,
            opened_at: jiff::Timestamp::now(),
            exited: None,
            history: Vec::new(),
        };
        lock(&self.open).insert(id.to_string(), Terminal { summary, scrollback: String::new(), updates });
    }

    pub fn forget(&self, id: &str) {
        lock(&self.open).remove(id);
    }

    /// Output from the node that runs `id`; anything else is ignored.
    pub fn output(&self, node_id: &NodeId, id: &str, data: String) {
        let mut open = lock(&self.open);
        let Some(terminal) = open.get_mut(id).filter(|terminal| terminal.summary.node_id == *node_id) else { return };
        terminal.scrollback.push_str(&data);
        if terminal.scrollback.len() > SCROLLBACK {
            let mut cut = terminal.scrollback.len() - SCROLLBACK;
            while !terminal.scrollback.is_char_boundary(cut) {
                cut += 1;
            }
            terminal.scrollback.drain(..cut);
        }
        let _ = terminal.updates.send(TerminalUpdate::Output(data));
    }

    pub fn command(&self, node_id: &NodeId, id: &str, command: TerminalCommand) {
        if let Some(terminal) = lock(&self.open).get_mut(id).filter(|terminal| terminal.summary.node_id == *node_id) {
            terminal.summary.history.push(command);
        }
    }

    pub fn exit(&self, node_id: &NodeId, id: &str, code: Option<i32>) {
        if let Some(terminal) = lock(&self.open).get_mut(id).filter(|terminal| terminal.summary.node_id == *node_id) {
            terminal.summary.exited = Some(code);
            let _ = terminal.updates.send(TerminalUpdate::Exit(code));
        }
    }

    /// A node went away: its shells are gone with it.
    pub fn node_gone(&self, node_id: &NodeId) {
        for terminal in lock(&self.open).values_mut() {
            if terminal.summary.node_id == *node_id && terminal.summary.exited.is_none() {
                terminal.summary.exited = Some(None);
                let _ = terminal.updates.send(TerminalUpdate::Exit(None));
            }
        }
    }

    pub fn summary(&self, id: &str) -> Option<TerminalSummary> {
        lock(&self.open).get(id).map(|terminal| terminal.summary.clone())
    }

    /// Every terminal of a workspace, oldest first.
    pub fn of_workspace(&self, workspace_id: &WorkspaceId) -> Vec<TerminalSummary> {
        let mut found: Vec<TerminalSummary> = lock(&self.open)
            .values()
            .filter(|terminal| &terminal.summary.workspace_id == workspace_id)
            .map(|terminal| terminal.summary.clone())
            .collect();
        found.sort_by_key(|summary| summary.opened_at);
        found
    }

    /// The scrollback and a subscription to what follows, taken together so
    /// nothing falls between them.
    fn attach(&self, id: &str) -> Option<(String, Option<Option<i32>>, broadcast::Receiver<TerminalUpdate>)> {
        let open = lock(&self.open);
        let terminal = open.get(id)?;
        Some((terminal.scrollback.clone(), terminal.summary.exited, terminal.updates.subscribe()))
    }
}

fn server_message(update: &TerminalUpdate) -> String {
    let message = match update {
        TerminalUpdate::Output(data) => TerminalServerMessage::Output { data: data.clone() },
        TerminalUpdate::Exit(code) => TerminalServerMessage::Exit { code: *code },
    };
    serde_json::to_string(&message).expect("holds because terminal messages are JSON")
}

/// Bridges a client's WebSocket to terminal `id`: its scrollback first,
/// then live output; keys and sizes go to the node.
pub async fn bridge(state: Arc<CoreState>, id: String, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let Some((scrollback, exited, mut updates)) = state.terminals.attach(&id) else {
        let message = serde_json::to_string(&TerminalServerMessage::Error { message: format!("no terminal `{id}`") })
            .expect("holds because terminal messages are JSON");
        let _ = sink.send(Message::Text(message.into())).await;
        return;
    };
    if !scrollback.is_empty() {
        let _ = sink.send(Message::Text(server_message(&TerminalUpdate::Output(scrollback)).into())).await;
    }
    if let Some(code) = exited {
        let _ = sink.send(Message::Text(server_message(&TerminalUpdate::Exit(code)).into())).await;
    }
    let node_id = state.terminals.summary(&id).map(|summary| summary.node_id);
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(update) => {
                    if sink.send(Message::Text(server_message(&update).into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let frame = match serde_json::from_str::<TerminalClientMessage>(text.as_str()) {
                    Ok(TerminalClientMessage::Input { data }) => CoreFrame::TermInput { v: PROTOCOL_VERSION, terminal: id.clone(), data },
                    Ok(TerminalClientMessage::Resize { cols, rows }) => {
                        CoreFrame::TermResize { v: PROTOCOL_VERSION, terminal: id.clone(), cols, rows }
                    }
                    Err(_) => continue,
                };
                let link = node_id.as_ref().and_then(|node| lock(&state.links).get(node).map(|link| link.tx.clone()));
                match link {
                    Some(tx) => {
                        let _ = tx.send(frame).await;
                    }
                    None => {
                        let gone = TerminalServerMessage::Error { message: "the terminal's node is not connected".into() };
                        let gone = serde_json::to_string(&gone).expect("holds because terminal messages are JSON");
                        let _ = sink.send(Message::Text(gone.into())).await;
                    }
                }
            }
        }
    }
}

impl CoreState {
    /// Open terminals of a workspace.
    pub fn terminals_of(&self, workspace_id: &crate::protocol::WorkspaceId) -> Vec<super::TerminalSummary> {
        self.terminals.of_workspace(workspace_id)
    }

    pub fn terminal(&self, id: &str) -> Option<super::TerminalSummary> {
        self.terminals.summary(id)
    }
}
