//! The Tool Registry as people read it: a tool wanted against what each
//! node reports (`ToolPlacement`), what one session is offered or why not
//! (`SessionTool`), and the calls made through the gateways
//! (`ToolCallRecord`). Core answers these to the API and the panel alike.

use serde::{Deserialize, Serialize};

use super::{Policy, Risk, Scope, SessionId, ToolCall, ToolState};

/// One node and one registry tool: whether Core wants it there, and what
/// the node last reported (none yet: offline, or not reconciled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolPlacement {
    pub node: String,
    pub node_name: String,
    /// Core wants it on this node (the tool's scope names it).
    pub wanted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ToolState>,
}

/// A registry tool as one session sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTool {
    pub name: String,
    pub scope: Scope,
    /// Whether the session's gateway lists its tools now.
    pub available: bool,
    /// Why it is, or is not, in one sentence.
    pub why: String,
    /// Its tools as the session's node found them, each with its rule.
    #[serde(default)]
    pub tools: Vec<OfferedTool>,
}

/// One tool of a server, with the policy a call meets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedTool {
    pub name: String,
    pub schema_hash: String,
    pub policy: Policy,
    pub risk: Risk,
}

/// One call through a gateway, as the index holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub session: SessionId,
    pub seq: u64,
    pub at: jiff::Timestamp,
    pub call: ToolCall,
}
