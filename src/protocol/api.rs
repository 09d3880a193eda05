//! The shapes Core answers with: workspaces, session summaries, turns and
//! search hits. `--json` output of the CLI is exactly these, so they are a
//! documented, stable contract (docs/json.md).

use serde::{Deserialize, Serialize};

use super::{SessionId, SessionState, TurnOutcome, WorkspaceId};

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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub session_id: SessionId,
    pub seq: u64,
    pub kind: String,
    pub snippet: String,
}
