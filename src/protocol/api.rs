//! The shapes Core answers with: workspaces, session summaries, turns and
//! search hits. `--json` output of the CLI is exactly these, so they are a
//! documented, stable contract (docs/json.md).

use serde::{Deserialize, Serialize};

use super::{
    ArtifactSummary, Capabilities, CoverageReport, Resources, SessionId, SessionState, TestReport, TurnOutcome,
    WorkspaceId,
};

/// A git repository on a node that sessions run in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub node: String,
    pub path: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_branch: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub id: SessionId,
    pub title: String,
    pub state: SessionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    pub provider: String,
    /// The agent CLI's version the session started with, when it says one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_version: Option<String>,
    pub node: String,
    pub workspace_id: WorkspaceId,
    pub workspace_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    pub turns: u32,
    pub last_seq: u64,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnSummary {
    pub turn: u32,
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TurnOutcome>,
    pub files_changed: u32,
    pub insertions: u64,
    pub deletions: u64,
    /// Checks run as evidence of this turn, in order.
    #[serde(default)]
    pub checks: Vec<CheckSummary>,
    /// Files kept as its evidence (`turns/<n>/artifacts/`).
    #[serde(default)]
    pub artifacts: Vec<ArtifactSummary>,
    /// Test reports read from its artifacts.
    #[serde(default)]
    pub tests: Vec<TestReport>,
    #[serde(default)]
    pub coverage: Vec<CoverageReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The seq of its `check_result` event.
    pub seq: u64,
    pub name: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// Its output's path in the session tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub session_id: SessionId,
    pub seq: u64,
    pub kind: String,
    pub snippet: String,
}

/// What Core derives from a node's link and heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Online,
    Stale,
    Offline,
    Revoked,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Stale => "stale",
            Self::Offline => "offline",
            Self::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub id: super::NodeId,
    pub name: String,
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    pub warnings: Vec<String>,
    pub enrolled_at: jiff::Timestamp,
}

/// A one-time token that lets a new node enroll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub expires_at: jiff::Timestamp,
}

/// The body of every HTTP error: what was wrong, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: super::ErrorCode,
    pub message: String,
}

/// One file of a diff, ready to show: what happened to it, its line
/// counts and its hunks (none for binary or too-large files).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    pub path: String,
    /// The path before a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub status: FileStatus,
    pub binary: bool,
    /// Too large to show line by line (over 1 MiB on a side).
    #[serde(default)]
    pub too_large: bool,
    pub insertions: u64,
    pub deletions: u64,
    pub hunks: Vec<DiffHunk>,
    /// In a whole-session diff: the turns that changed this path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    TypeChanged,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Modified => "modified",
            Self::Deleted => "deleted",
            Self::Renamed => "renamed",
            Self::TypeChanged => "type changed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffHunk {
    pub old_start: u32,
    pub old_lines: u32,
    pub new_start: u32,
    pub new_lines: u32,
    pub lines: Vec<DiffLine>,
}

/// One line of a hunk; `old`/`new` are 1-based line numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    /// `' '`, `'+'` or `'-'`.
    pub tag: char,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<u32>,
    pub text: String,
}

/// One entry of a workspace directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: String,
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Git's view: `modified`, `added`, `deleted`, `renamed`, `untracked`,
    /// `ignored`, `conflicted`; none when clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// A workspace file as the inspector shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContent {
    pub path: String,
    pub state: FileState,
    pub size: u64,
    /// SHA-256 of the bytes on disk: the precondition for a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// `utf-8`, `utf-16le`, `utf-16be` or `latin-1` (a guess for bytes that
    /// are not UTF-8); only text can be edited, and only UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Ignored by `.gitignore`.
    #[serde(default)]
    pub ignored: bool,
    /// Marked generated (`linguist-generated`, or `@generated` / `DO NOT
    /// EDIT` near the top).
    #[serde(default)]
    pub generated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The text is shown with secrets replaced by `[REDACTED]`; the
    /// inspector will not save it back.
    #[serde(default)]
    pub redacted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Text,
    Binary,
    TooLarge,
    NotFound,
    PermissionDenied,
    Directory,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Binary => "binary",
            Self::TooLarge => "too large",
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::Directory => "a directory",
        }
    }
}

/// One thing a person did in a workspace outside any session: a line of
/// the workspace journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: jiff::Timestamp,
    pub by: String,
    /// `edit`, `create`, `move`, `delete`, `terminal`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /api/v1/sessions/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    pub session: SessionSummary,
    pub turns: Vec<TurnSummary>,
}

/// A change of a node's status, as Core recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub at: String,
    pub kind: String,
    pub detail: String,
}

/// `GET /api/v1/nodes/{id}`: the node, its workspaces, its newest status
/// changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDetail {
    pub node: NodeSummary,
    pub workspaces: Vec<Workspace>,
    pub events: Vec<NodeEvent>,
}

/// `POST /api/v1/index/rebuild`: the index was reset, and this many
/// connected nodes are sending their sessions again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexReset {
    pub reset: bool,
    pub nodes_resending: usize,
}

/// `GET /api/v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub service: String,
    pub version: String,
    pub protocol: u32,
}

/// `POST /panel/login-links`: a one-time panel login link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginLink {
    pub url: String,
}

/// What a terminal's WebSocket carries from Core to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalServerMessage {
    Output {
        data: String,
    },
    Exit {
        #[serde(default)]
        code: Option<i32>,
    },
    Error {
        message: String,
    },
}

/// What a client sends on a terminal's WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalClientMessage {
    Input { data: String },
    Resize { cols: u16, rows: u16 },
}
