//! What an agent may do with a tool behind Cortex's MCP gateway: a policy
//! (allowed, denied, needs approval) and a risk level per tool of a
//! dependency, and how a call through the gateway ended.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether a session's agent may call a tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    #[default]
    Allowed,
    /// Listed to the agent as denied; a call is refused and recorded.
    Denied,
    /// Each call waits for a person through Cortex's approval path.
    NeedsApproval,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::NeedsApproval => "needs_approval",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(text: &str) -> Result<Policy, String> {
        match text {
            "allowed" | "allow" => Ok(Self::Allowed),
            "denied" | "deny" => Ok(Self::Denied),
            "needs_approval" | "needs-approval" | "ask" => Ok(Self::NeedsApproval),
            _ => Err(format!("policy `{text}` is not `allowed`, `denied` or `needs-approval`")),
        }
    }
}

/// How much harm a tool can do, as the person who registered it judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    #[default]
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl FromStr for Risk {
    type Err = String;

    fn from_str(text: &str) -> Result<Risk, String> {
        match text {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err(format!("risk `{text}` is not `low`, `medium` or `high`")),
        }
    }
}

/// The rule for one tool of a dependency (or `*`, every tool it has no
/// rule of its own for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolPolicy {
    pub policy: Policy,
    #[serde(default)]
    pub risk: Risk,
}

/// A rule that holds only where its scope does: on a node, in a
/// workspace, or for one session. The most specific one wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedPolicy {
    pub scope: super::Scope,
    /// The tool's own name, or `*` for every tool without a rule there.
    pub tool: String,
    #[serde(flatten)]
    pub rule: ToolPolicy,
}

/// Where a call is made, for the rules that hold there.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallPlace<'a> {
    pub session: &'a str,
    pub workspace: Option<&'a str>,
    /// The node's name and id (a node scope may name either).
    pub node_name: Option<&'a str>,
    pub node_id: Option<&'a str>,
}

impl CallPlace<'_> {
    /// How specific `scope` is here: 0 for this session, 1 this workspace,
    /// 2 this node; `None` when it does not hold here.
    pub fn rank(&self, scope: &super::Scope) -> Option<u8> {
        match scope {
            super::Scope::Session(id) => (id == self.session).then_some(0),
            super::Scope::Workspace(name) => (Some(name.as_str()) == self.workspace).then_some(1),
            super::Scope::Node(name) => {
                (Some(name.as_str()) == self.node_name || Some(name.as_str()) == self.node_id).then_some(2)
            }
            super::Scope::All => None,
        }
    }
}

/// How a call through the gateway ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    /// The server answered, and not with an error.
    Ok,
    /// The server answered with `isError`, or the call failed on its way.
    Error,
    /// Refused by policy, never forwarded.
    Denied,
    /// A person declined it.
    Declined,
    /// The server did not answer in time.
    TimedOut,
}

impl ToolOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Denied => "denied",
            Self::Declined => "declined",
            Self::TimedOut => "timed_out",
        }
    }
}

/// The event of one call through the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// `server.tool`, as the agent saw it.
    pub name: String,
    pub server: String,
    pub tool: String,
    /// SHA-256 of the tool's input schema when it was listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_hash: Option<String>,
    /// The arguments' JSON (at most 4 KiB), redacted like every event.
    pub arguments: String,
    pub policy: Policy,
    pub risk: Risk,
    pub outcome: ToolOutcome,
    pub duration_ms: u64,
    /// Bytes of the result's JSON the agent was given.
    pub result_bytes: u64,
    /// The error, when the call did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who approved it, for a tool that needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

impl ToolCall {
    /// One line: `files.read_text_file ok in 12 ms (412 B) · approved by ada`.
    pub fn summary(&self) -> String {
        let mut line =
            format!("{} {} in {} ms ({} B)", self.name, self.outcome.as_str(), self.duration_ms, self.result_bytes);
        if let Some(by) = &self.approved_by {
            line.push_str(&format!(" · approved by {by}"));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!(": {error}"));
        }
        line
    }
}
