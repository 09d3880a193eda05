//! Every type that crosses a boundary: session ids, lifecycle states and the
//! normalized event stream written to the store, indexed, and later sent over
//! the wire between Node and Core.
//!
//! Must not import anything else from the crate: `store`, `index`, `node` and
//! `cli` all speak these types, so they live at the bottom of the graph.

mod api;
mod event;
mod evidence;
mod id;
mod lifecycle;
mod policy;
pub mod reply;
mod review;
mod tool_view;
mod tools;
mod usage;
mod wire;

pub use api::{
    ApiError, CheckSummary, DiffHunk, DiffLine, DirEntry, Enrollment, EntryKind, FileContent, FileDiff, FileState,
    FileStatus, Health, IndexReset, JournalEntry, LoginLink, NodeDetail, NodeEvent, NodeStatus, NodeSummary, SearchHit,
    SessionDetail, SessionSummary, TerminalClientMessage, TerminalServerMessage, TurnSummary, Workspace,
};
pub use event::{
    ApprovalDecision, CostSource, Event, EventKind, FileChange, OutputStream, TokenUsage, TurnOutcome, Verdict,
};
pub use evidence::{
    ArtifactSummary, CoverageReport, FileCoverage, TestCase, TestChanges, TestHistory, TestOutcome, TestReport,
};
pub use id::{NodeId, SessionId, WorkspaceId};
pub use lifecycle::{IllegalTransition, SessionState};
pub use policy::{CallPlace, Policy, Risk, ScopedPolicy, ToolCall, ToolOutcome, ToolPolicy};
pub use reply::{CommandError, ErrorCode, Reply};
pub use review::{comment_place, open_review_comments, parse_lines, viewed_files};
pub use tool_view::{OfferedTool, SessionTool, ToolCallRecord, ToolPlacement};
pub use tools::{
    Author, Dependency, EVERY_WORKSPACE, MAX_SCHEMA, Manifest, Plugin, PluginPackage, Scope, Server, Skill, ToolInfo,
    ToolPhase, ToolState, ToolStatus, check_workspace_name, enabled_in,
};
pub use usage::{UsageBy, UsageReport, UsageRow, budget_text, dollars, usage_text};
pub use wire::{
    Capabilities, Command, CommandKind, CommandOutcome, CoreFrame, Credential, DiskFree, NodeFrame, ProviderInfo,
    ProviderKind, Refusal, ReportFormat, Resources, ReviewNote, SessionTip, check_command_id, check_name,
};

/// Lines of context around each change of a diff, unless asked for more.
pub const DIFF_CONTEXT: u32 = 3;
/// The most context a diff gives: the whole file (blobs over 1 MiB are not
/// shown line by line anyway).
pub const DIFF_CONTEXT_MAX: u32 = 100_000;

/// Version of the normalized event schema and of the envelopes built on it.
/// Bumped on any change a reader of an older version would misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// The Codex CLI version Cortex is tested with; nodes with another one get a
/// warning.
pub const CODEX_VERSION: &str = "0.169.0";
