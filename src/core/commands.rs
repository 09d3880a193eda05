//! Core's command path, one place for every kind's policy: the id check
//! and assignment (a new session's id), routing to the node that owns the
//! target, the record of the command and its first answer, waiting for
//! the answer, and what an answer completes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::Result;
use crate::protocol::{
    Command, CommandKind, CommandOutcome, CoreFrame, ErrorCode, NodeStatus, PROTOCOL_VERSION, SessionId,
};
use crate::protocol::{NodeId, Workspace};

use super::failure::ApiFailure;
use super::state::{CoreState, lock};

/// How long a command may take on its node before the HTTP call gives up
/// (the command goes on; asking again with its id answers when it is done).
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

impl CoreState {
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
            CommandKind::ReviewSession { by: Some(by), .. } => Some(("reviewer's name", by)),
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
                self.complete_command(
                    &command.id,
                    CommandOutcome::of(Ok(crate::protocol::reply::Unbound { unbound: true }.into())),
                );
            } else {
                let name = lock(&self.registry)
                    .node(node_id.as_str())
                    .ok()
                    .flatten()
                    .map(|node| node.name)
                    .unwrap_or(node_id.to_string());
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
        if let (CommandKind::StartSession { session_id: Some(session), .. }, Ok(CommandOutcome::Ok { .. })) =
            (&command.kind, &outcome)
        {
            self.until_indexed(session).await;
        }
        outcome
    }

    /// A new session's first events are committed by the ingest thread,
    /// which the node's answer can overtake: the answer waits (a few
    /// seconds at most) until the session is in the index, so whoever
    /// follows it at once finds it.
    async fn until_indexed(&self, session: &SessionId) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if lock(&self.index).session_workspace(session).ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::warn!(%session, "a started session is not in the index after 5 s");
    }

    pub(super) fn add_waiter(&self, id: &str) -> oneshot::Receiver<CommandOutcome> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.waiters).entry(id.to_string()).or_default().push(sender);
        receiver
    }

    pub(super) async fn wait_for(&self, id: &str) -> Result<CommandOutcome, ApiFailure> {
        let receiver = self.add_waiter(id);
        // It may have finished between the read and the subscription.
        if let Some(outcome) = lock(&self.registry).command(id).ok().flatten().and_then(|record| record.outcome) {
            return Ok(outcome);
        }
        await_outcome(receiver).await
    }

    /// Picks the node that owns the command's target, filling in what Core
    /// assigns (a new session's id).
    pub(super) fn route(&self, command: &mut Command) -> Result<NodeId, ApiFailure> {
        let index = lock(&self.index);
        let workspace_node = |workspace_id: &crate::protocol::WorkspaceId| -> Result<NodeId, ApiFailure> {
            let node = index.workspace_node(workspace_id).map_err(ApiFailure::internal)?.ok_or_else(|| {
                ApiFailure::not_found(format!("no workspace `{workspace_id}` (`cortex workspace list` shows them)"))
            })?;
            node.parse().map_err(|_| {
                ApiFailure::new(
                    ErrorCode::NodeOffline,
                    format!("workspace `{workspace_id}` was bound by `{node}`, which is no node Core knows; start its node (`cortex up`, or `cortex node run`) so it claims the workspace again"),
                )
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
            | CommandKind::ReadSessionFile { session_id, .. }
            | CommandKind::RenderReport { session_id, .. }
            | CommandKind::ReviewSession { session_id, .. } => {
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
                let target = command
                    .target
                    .clone()
                    .ok_or_else(|| ApiFailure::bad_request("unbind needs the node as `target`"))?;
                target.parse().map_err(|error: String| ApiFailure::bad_request(error))
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
                command.target = Some(node.id.to_string());
                Ok(node.id)
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
pub(super) fn recorded(command: &Command) -> Command {
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
pub(super) fn is_read(kind: &CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::ReadFile { .. }
            | CommandKind::ListFiles { .. }
            | CommandKind::ReadDiff { .. }
            | CommandKind::ReadSessionFile { .. }
            | CommandKind::RenderReport { .. }
    )
}

pub(super) async fn await_outcome(receiver: oneshot::Receiver<CommandOutcome>) -> Result<CommandOutcome, ApiFailure> {
    match tokio::time::timeout(COMMAND_TIMEOUT, receiver).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(_)) => Err(ApiFailure::unavailable("Core stopped before the command finished")),
        Err(_) => Err(ApiFailure::unavailable(
            "the command is still running on its node; ask again with the same command id for its answer",
        )),
    }
}

/// What happens after a node answers, and after its link comes back: the
/// rest of each kind's policy.
impl CoreState {
    /// A node's answer to command `id`: what the kind implies (a bound
    /// workspace is Core's to list from now on), then the record and the
    /// waiters.
    pub(crate) fn answered(&self, node_id: &NodeId, id: &str, outcome: CommandOutcome) {
        let kind = lock(&self.registry).command(id).ok().flatten().map(|record| record.kind);
        if kind.as_deref() == Some("bind_workspace")
            && let CommandOutcome::Ok { value } = &outcome
            && let Ok(workspace) = serde_json::from_value::<Workspace>(value.clone())
        {
            self.record_binding(node_id, workspace);
        }
        self.complete_command(id, outcome);
    }

    fn record_binding(&self, node_id: &NodeId, mut workspace: Workspace) {
        match lock(&self.registry).bind(workspace.id.as_str(), node_id.as_str()) {
            Ok(true) => {}
            Ok(false) => {
                let detail = format!("it answered a bind with workspace {}, bound to another node", workspace.id);
                self.refuse_claim(node_id, detail);
                return;
            }
            Err(error) => {
                tracing::error!(%error, "cannot record a binding");
                return;
            }
        }
        workspace.node = node_id.to_string();
        if let Err(error) = lock(&self.index).put_workspace(&workspace) {
            tracing::error!(%error, "cannot record a bound workspace");
        }
    }

    /// Commands sent to `node_id` before its last link dropped, still
    /// unanswered, to send again: the node runs an id once, so that is safe.
    /// A file write, whose content Core does not keep, is answered as not
    /// delivered instead.
    pub(crate) fn unfinished_for(&self, node_id: &NodeId) -> Vec<Command> {
        let bodies = lock(&self.registry).unfinished_commands(node_id).unwrap_or_default();
        let mut again = Vec::new();
        for body in bodies {
            let Ok(command) = serde_json::from_str::<Command>(&body) else { continue };
            if let CommandKind::WriteFile { path, .. } = &command.kind {
                let message =
                    format!("`{path}` was not saved: the node was disconnected before it answered; save again");
                self.complete_command(&command.id, CommandOutcome::error(ErrorCode::NodeOffline, message));
                continue;
            }
            again.push(command);
        }
        again
    }
}
