//! The node monitor: derives `stale` and `offline` from heartbeat age,
//! records status changes, and marks a lost node's sessions.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{NodeId, NodeStatus};

use super::state::{CoreState, lock};

impl CoreState {
    /// Sets a node's derived status, recording the change as a node event;
    /// a node going offline takes its mid-turn sessions to `interrupted`.
    pub(crate) fn set_status(&self, node_id: &NodeId, conn_id: Option<u64>, status: NodeStatus, detail: &str) {
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
        tracing::info!(node = %node_id, status = status.as_str(), detail, "node status changed");
        if let Err(error) = lock(&self.registry).record_node_event(node_id, status.as_str(), detail) {
            tracing::error!(%error, "cannot record a node event");
        }
        if matches!(status, NodeStatus::Offline | NodeStatus::Revoked) {
            self.terminals.node_gone(node_id);
        }
        if matches!(status, NodeStatus::Offline | NodeStatus::Stale | NodeStatus::Revoked) {
            let reason = format!("node went {}: {detail}", status.as_str());
            if let Err(error) = lock(&self.index).interrupt_node_sessions(node_id.as_str(), &reason) {
                tracing::error!(%error, "cannot mark a lost node's sessions");
            }
        }
    }

    /// The monitor: derives `stale` and `offline` from heartbeat age.
    pub(super) async fn monitor(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.heartbeat.min(self.config.stale_after) / 2);
        loop {
            tick.tick().await;
            let ages: Vec<(NodeId, u64, NodeStatus, Duration)> = lock(&self.links)
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
