//! Normalized events: what every provider's output becomes. One event is one
//! JSON line in the store's chunks, one row in the index, and (later) one item
//! in an event batch from Node to Core.

use serde::{Deserialize, Serialize};

use super::SessionState;

/// One entry of a session's ordered history. `seq` is assigned by the single
/// writer of the session and is strictly increasing with no gaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// The command id or earlier event (`seq:<n>`) this event answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Lifecycle {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<SessionState>,
        to: SessionState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    UserMessage {
        text: String,
    },
    AssistantMessage {
        text: String,
    },
    Reasoning {
        text: String,
    },
    CommandStarted {
        command_id: String,
        command: String,
    },
    CommandOutput {
        command_id: String,
        stream: OutputStream,
        text: String,
    },
    CommandFinished {
        command_id: String,
        /// `None` when the command was killed by a signal.
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    FileChanged {
        path: String,
        change: FileChange,
    },
    ApprovalRequested {
        approval_id: String,
        prompt: String,
    },
    ApprovalResolved {
        approval_id: String,
        decision: ApprovalDecision,
        by: String,
    },
    Warning {
        message: String,
    },
    Error {
        message: String,
    },
    TurnFinished {
        outcome: TurnOutcome,
    },
    DiffCaptured {
        files: u32,
        insertions: u64,
        deletions: u64,
    },
    /// A piece of an assistant message as it streams; the complete text
    /// follows as an `assistant_message`.
    AssistantDelta {
        item_id: String,
        text: String,
    },
    /// Tokens the model used during the turn, as the agent reported them,
    /// with the model and the turn's cost where known.
    TokenUsage {
        usage: TokenUsage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// US dollars.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// Whether the agent reported the cost or Cortex priced it from `[pricing]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_source: Option<CostSource>,
    },
    /// A reading crossed a limit of `[budget]`: the turn was interrupted.
    BudgetExceeded {
        /// Its key: `turn_tokens`, `session_tokens`, `turn_usd`, `session_usd`.
        budget: String,
        limit: f64,
        used: f64,
    },
    /// A person committed the session's changes to their branch.
    CommitCreated {
        commit: String,
        message: String,
    },
    /// A person acted in the workspace (an edit, a rename, a terminal), not
    /// the agent.
    Intervention {
        by: String,
        /// `edit`, `create`, `move`, `delete`, `terminal`.
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A reviewer's comment on the session's changes: a line of a file (or
    /// the whole file), with the line as the reviewed snapshot had it.
    ReviewComment {
        by: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        /// The last line of a comment on several (a hunk), inclusive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_line: Option<u32>,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quote: Option<String>,
    },
    /// A reviewer marked a file of the session's changes as viewed (or
    /// took the mark back) as of turn `reviewed_turn`: a later turn that
    /// changes the file undoes the mark.
    ReviewViewed {
        by: String,
        path: String,
        viewed: bool,
        reviewed_turn: u32,
    },
    /// A reviewer's verdict on the session as of turn `reviewed_turn`;
    /// `comments` is how many open comments it hands back (for
    /// `request_changes`). Not `turn`: the event's own field is.
    ReviewVerdict {
        by: String,
        verdict: Verdict,
        reviewed_turn: u32,
        comments: u32,
    },
    CheckResult {
        name: String,
        passed: bool,
        /// `None` when the check was killed (by its timeout, say).
        exit_code: Option<i32>,
        duration_ms: u64,
        /// Where its output is, in the session tree.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<String>,
    },
    /// A file a check declared or the agent wrote under the artifacts
    /// folder, kept at `stored` in the session tree.
    ArtifactStored {
        path: String,
        stored: String,
        bytes: u64,
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<String>,
    },
    /// The tests of a JUnit or TAP artifact.
    TestReport {
        report: super::TestReport,
    },
    /// The line coverage of an lcov artifact.
    CoverageReport {
        report: super::CoverageReport,
    },
    /// A call the agent made through Cortex's MCP gateway.
    ToolCall {
        call: super::ToolCall,
    },
}

/// Where a turn's cost came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The agent reported it.
    Provider,
    /// Cortex priced the tokens from `[pricing.MODEL]`.
    Computed,
}

/// Token counts, per turn in events, cumulative per thread in `meta.toml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
    pub total_tokens: u64,
}

impl TokenUsage {
    /// This reading and `more` together (a running total).
    pub fn plus(self, more: TokenUsage) -> TokenUsage {
        // Saturating: the figures come from agents, which may report anything.
        TokenUsage {
            input_tokens: self.input_tokens.saturating_add(more.input_tokens),
            cached_input_tokens: self.cached_input_tokens.saturating_add(more.cached_input_tokens),
            output_tokens: self.output_tokens.saturating_add(more.output_tokens),
            reasoning_output_tokens: self.reasoning_output_tokens.saturating_add(more.reasoning_output_tokens),
            total_tokens: self.total_tokens.saturating_add(more.total_tokens),
        }
    }

    /// What was used since `earlier`, a previous cumulative reading.
    pub fn since(self, earlier: TokenUsage) -> TokenUsage {
        TokenUsage {
            input_tokens: self.input_tokens.saturating_sub(earlier.input_tokens),
            cached_input_tokens: self.cached_input_tokens.saturating_sub(earlier.cached_input_tokens),
            output_tokens: self.output_tokens.saturating_sub(earlier.output_tokens),
            reasoning_output_tokens: self.reasoning_output_tokens.saturating_sub(earlier.reasoning_output_tokens),
            total_tokens: self.total_tokens.saturating_sub(earlier.total_tokens),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    Added,
    Modified,
    Deleted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Denied,
}

/// A reviewer's verdict on a session's changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    RequestChanges,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::RequestChanges => "request_changes",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Completed,
    Failed,
    Interrupted,
}

impl TurnOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

impl EventKind {
    /// The snake_case name used on the wire and in the index.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Lifecycle { .. } => "lifecycle",
            Self::UserMessage { .. } => "user_message",
            Self::AssistantMessage { .. } => "assistant_message",
            Self::Reasoning { .. } => "reasoning",
            Self::CommandStarted { .. } => "command_started",
            Self::CommandOutput { .. } => "command_output",
            Self::CommandFinished { .. } => "command_finished",
            Self::FileChanged { .. } => "file_changed",
            Self::ApprovalRequested { .. } => "approval_requested",
            Self::ApprovalResolved { .. } => "approval_resolved",
            Self::Warning { .. } => "warning",
            Self::Error { .. } => "error",
            Self::TurnFinished { .. } => "turn_finished",
            Self::DiffCaptured { .. } => "diff_captured",
            Self::CheckResult { .. } => "check_result",
            Self::ArtifactStored { .. } => "artifact_stored",
            Self::TestReport { .. } => "test_report",
            Self::CoverageReport { .. } => "coverage_report",
            Self::ToolCall { .. } => "tool_call",
            Self::CommitCreated { .. } => "commit_created",
            Self::AssistantDelta { .. } => "assistant_delta",
            Self::TokenUsage { .. } => "token_usage",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::Intervention { .. } => "intervention",
            Self::ReviewComment { .. } => "review_comment",
            Self::ReviewViewed { .. } => "review_viewed",
            Self::ReviewVerdict { .. } => "review_verdict",
        }
    }

    /// The words a person would search this event by: messages, reasoning,
    /// commands and their output. `None` for purely structural events.
    pub fn search_text(&self) -> Option<&str> {
        match self {
            Self::UserMessage { text }
            | Self::AssistantMessage { text }
            | Self::Reasoning { text }
            | Self::CommandOutput { text, .. } => Some(text),
            Self::CommandStarted { command, .. } => Some(command),
            Self::ApprovalRequested { prompt, .. } => Some(prompt),
            Self::ReviewComment { text, .. } => Some(text),
            Self::Warning { message } | Self::Error { message } => Some(message),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(event: Event, expect: &str) {
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(line, expect);
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn events_are_flat_json_lines_that_round_trip() {
        let at: jiff::Timestamp = "2026-11-24T08:00:00Z".parse().unwrap();
        check(
            Event { seq: 3, at, turn: Some(1), cause: None, kind: EventKind::AssistantMessage { text: "hi".into() } },
            r#"{"seq":3,"at":"2026-11-24T08:00:00Z","turn":1,"kind":"assistant_message","text":"hi"}"#,
        );
        check(
            Event {
                seq: 1,
                at,
                turn: None,
                cause: Some("seq:0".into()),
                kind: EventKind::Lifecycle { from: None, to: SessionState::Starting, reason: None },
            },
            r#"{"seq":1,"at":"2026-11-24T08:00:00Z","cause":"seq:0","kind":"lifecycle","to":"starting"}"#,
        );
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let error =
            serde_json::from_str::<Event>(r#"{"seq":1,"at":"2026-11-24T08:00:00Z","kind":"telepathy"}"#).unwrap_err();
        assert!(error.to_string().contains("unknown variant `telepathy`"), "{error}");
    }
}
