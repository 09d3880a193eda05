//! Node authority: Core's registry (`bindings` in `core.sqlite`) decides
//! which workspaces a node speaks for. A node's claims are checked on its
//! hello, on every event batch and on every command result; a claim on
//! another node's workspace, session or command is refused, recorded as a
//! `refused` node event and shown as a warning on the node. A workspace
//! Core has never seen is bound to the first node that claims it (a node
//! bound it locally before it ever met this Core); from then on only that
//! node may speak for it, until it is unbound.

use std::collections::HashMap;
use std::sync::Mutex;

use super::state::{CoreState, lock};
use crate::protocol::{NodeId, SessionSummary, Workspace};

/// What Core refused, per node, and where reads (which are not recorded)
/// were sent, so their answers can be checked too.
#[derive(Default)]
pub(crate) struct Authority {
    refusals: Mutex<HashMap<NodeId, (u64, String)>>,
    /// Command id to the node it was sent to.
    reads_in_flight: Mutex<HashMap<String, NodeId>>,
    /// `(node, session)` pairs already found to be the node's own, so a
    /// busy session's batches are not checked against both databases each
    /// time (a session never changes workspace; unbinding clears this).
    allowed_sessions: Mutex<std::collections::HashSet<(NodeId, crate::protocol::SessionId)>>,
}

impl Authority {
    /// The node warning for refused claims, if any.
    pub(crate) fn warning(&self, node_id: &NodeId) -> Option<String> {
        lock(&self.refusals)
            .get(node_id)
            .map(|(count, last)| format!("{count} claim(s) refused: it spoke for what is not its own (last: {last})"))
    }

    pub(crate) fn read_sent(&self, command_id: &str, node_id: &NodeId) {
        lock(&self.reads_in_flight).insert(command_id.to_string(), node_id.clone());
    }

    pub(crate) fn read_done(&self, command_id: &str) {
        lock(&self.reads_in_flight).remove(command_id);
    }

    /// Forgets what was allowed: a binding changed.
    pub(crate) fn bindings_changed(&self) {
        lock(&self.allowed_sessions).clear();
    }
}

impl CoreState {
    /// Refuses a claim: logged, recorded as the node's event, counted.
    pub(crate) fn refuse_claim(&self, node_id: &NodeId, detail: String) {
        tracing::warn!(node = %node_id, %detail, "refused a node's claim");
        if let Err(error) = lock(&self.registry).record_node_event(node_id, "refused", &detail) {
            tracing::error!(%error, "cannot record a refused claim");
        }
        let mut refusals = lock(&self.authority.refusals);
        let entry = refusals.entry(node_id.clone()).or_default();
        entry.0 += 1;
        entry.1 = detail;
    }

    /// The workspaces of a hello that the node may speak for: those bound
    /// to it, and those Core does not know yet (which are bound to it now).
    pub(crate) fn claimed_workspaces(
        &self,
        node_id: &NodeId,
        workspaces: &[Workspace],
    ) -> super::Result<Vec<Workspace>> {
        let mut accepted = Vec::new();
        for workspace in workspaces {
            let bound = lock(&self.registry).bind(workspace.id.as_str(), node_id.as_str())?;
            if bound {
                accepted.push(workspace.clone());
            } else {
                self.refuse_claim(
                    node_id,
                    format!("its hello claimed workspace {}, which is bound to another node", workspace.id),
                );
            }
        }
        Ok(accepted)
    }

    /// Whether the node may send events of `session`: its workspace is
    /// bound to the node, and the session is not known in another one.
    pub(crate) fn may_send_events(&self, node_id: &NodeId, session: &SessionSummary) -> Result<(), String> {
        let key = (node_id.clone(), session.id.clone());
        if lock(&self.authority.allowed_sessions).contains(&key) {
            return Ok(());
        }
        let bound = lock(&self.registry).binding(session.workspace_id.as_str()).ok().flatten();
        if bound.as_deref() != Some(node_id.as_str()) {
            return Err(format!(
                "events for session {} in workspace {}, which is not bound to this node",
                session.id, session.workspace_id
            ));
        }
        let known = lock(&self.index).session_workspace(&session.id).ok().flatten();
        if let Some(known) = known
            && known != session.workspace_id
        {
            return Err(format!("events for session {}, which belongs to workspace {known}", session.id));
        }
        lock(&self.authority.allowed_sessions).insert(key);
        Ok(())
    }

    /// Whether the node may answer command `command_id`: it was sent to
    /// this node.
    pub(crate) fn may_answer(&self, node_id: &NodeId, command_id: &str) -> Result<(), String> {
        let read = lock(&self.authority.reads_in_flight).get(command_id).cloned();
        let sent_to = match read {
            Some(node) => Some(node.to_string()),
            None => lock(&self.registry).command(command_id).ok().flatten().and_then(|record| record.node_id),
        };
        match sent_to {
            Some(node) if *node_id == node => Ok(()),
            Some(_) => Err(format!("a result for command {command_id}, which was sent to another node")),
            None => Err(format!("a result for command {command_id}, which Core never sent")),
        }
    }
}
