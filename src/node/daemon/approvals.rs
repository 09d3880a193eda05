//! Who answers an agent's question in the daemon: `--yes`, nobody (denied
//! at once, with the reason), an earlier "always for this session", or a
//! person through a `resolve_approval` command naming the request.

use std::sync::Arc;
use std::time::Duration;

use super::{Runtime, lock};
use crate::node::{Approver, Cancel};
use crate::protocol::{ApprovalDecision, SessionId};

/// Approvals in the daemon: granted at once when the session was started
/// with auto-approve or approved for the session; otherwise the turn waits
/// for `cortex session approve|deny` (a `resolve_approval` command), or
/// until the turn is interrupted.
pub(super) struct Policy {
    pub(super) runtime: Arc<Runtime>,
    pub(super) auto_approve: bool,
    /// Nobody will answer: deny at once, as the in-process CLI does.
    pub(super) deny_approvals: bool,
    pub(super) cancel: Cancel,
}

/// A turn waiting for a person's answer.
pub(super) struct PendingApproval {
    /// The `approval_id` of its `approval_requested` event: an answer that
    /// names another one (already answered) is refused.
    pub(super) approval_id: String,
    pub(super) reply: std::sync::mpsc::Sender<(ApprovalDecision, String)>,
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
