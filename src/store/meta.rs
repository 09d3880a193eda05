//! `meta.toml`: the session's identity and current state, rewritten in the
//! tip tree whenever it changes, so the tip alone describes the session.

use serde::{Deserialize, Serialize};

use crate::protocol::{SessionId, SessionState};

pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub schema: u32,
    pub id: SessionId,
    pub title: String,
    pub provider: String,
    /// The agent CLI's version the session started with, when it says one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_version: Option<String>,
    pub node: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    pub state: SessionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// The provider's own handle to continue the conversation (a Codex
    /// thread id); `None` for providers that need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_ref: Option<String>,
    /// The git worktree the session runs in, when it was started isolated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    /// The provider's cumulative token use for the session's thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_total: Option<crate::protocol::TokenUsage>,
    /// The session's cost so far in US dollars, over the turns with a known one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd_total: Option<f64>,
    /// That worktree's branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub last_seq: u64,
    pub turns: u32,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

impl Meta {
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("holds because Meta has only TOML-representable fields")
    }

    pub fn from_toml(text: &str) -> Result<Meta, String> {
        let meta: Meta = toml::from_str(text).map_err(|error| error.to_string())?;
        if meta.schema > SCHEMA {
            return Err(format!(
                "schema {} is newer than this Cortex understands ({SCHEMA}); upgrade Cortex",
                meta.schema
            ));
        }
        Ok(meta)
    }
}

impl Meta {
    /// The session as Core lists it, given the workspace it lives in.
    pub fn summary(&self, workspace: &crate::protocol::Workspace) -> crate::protocol::SessionSummary {
        crate::protocol::SessionSummary {
            id: self.id.clone(),
            title: self.title.clone(),
            state: self.state,
            state_reason: self.state_reason.clone(),
            provider: self.provider.clone(),
            provider_version: self.provider_version.clone(),
            node: self.node.clone(),
            workspace_id: workspace.id.clone(),
            workspace_path: workspace.path.clone(),
            base_commit: self.base_commit.clone(),
            turns: self.turns,
            last_seq: self.last_seq,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
