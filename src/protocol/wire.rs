//! The Node ⇄ Core WebSocket protocol and the command envelope. Every frame
//! is one JSON text message with a `type` and the protocol version `v`;
//! commands are `{v, id, kind, target, payload}`, and `id` is an idempotency
//! key: a command delivered twice has effect once and answers the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::reply::{CommandError, ErrorCode, Reply};
use super::{Event, NodeId, SessionId, SessionSummary, Verdict, Workspace, WorkspaceId};

/// How a node proves who it is in its hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// A one-time enrollment token from `cortex node enroll`, exchanged for a
    /// node credential in the welcome.
    /// `node_id` proposes the id the node already has (it ran sessions
    /// in-process before it met Core); Core takes it when it is free.
    Enroll {
        token: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node_id: Option<NodeId>,
    },
    /// The node's own credential.
    Node { node_id: NodeId, secret: String },
}

/// What a node can do, sent in its hello.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub cortex_version: String,
    pub protocol_version: u32,
    pub os: String,
    pub arch: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_version: Option<String>,
    pub providers: Vec<ProviderInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What it can do beyond running turns: `approvals` (interactive),
    /// `interrupt`, `steer`, `resume` (continues a thread after a restart),
    /// `usage` (tokens per turn), `output` (a command's output).
    #[serde(default)]
    pub features: Vec<String>,
}

/// How Cortex talks to an agent. A session carries its provider by name:
/// the built-in adapters by theirs (`fake`, `codex`, `codex-exec`,
/// `claude`), every other name is an agent speaking the Agent Client
/// Protocol (a preset such as `codex-acp` or `gemini`, or one declared in
/// `[agents.NAME]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// The scripted agent built into Cortex.
    Fake,
    /// Codex as a live `codex app-server`.
    Codex,
    /// Codex through `codex exec --json`, one process per turn.
    CodexExec,
    /// Claude Code, one headless process per session (stream-json).
    Claude,
    /// Any agent over the Agent Client Protocol.
    Acp,
}

impl ProviderKind {
    /// The built-in adapters, each under its own name.
    pub const BUILT_IN: [ProviderKind; 4] =
        [ProviderKind::Fake, ProviderKind::Codex, ProviderKind::CodexExec, ProviderKind::Claude];

    /// The built-in adapter's name (`acp` for the protocol itself: its
    /// sessions carry the agent's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fake => "fake",
            Self::Codex => "codex",
            Self::CodexExec => "codex-exec",
            Self::Claude => "claude",
            Self::Acp => "acp",
        }
    }

    /// The kind behind a provider name: a built-in adapter by its name,
    /// any other name an ACP agent.
    pub fn of(name: &str) -> ProviderKind {
        Self::BUILT_IN.into_iter().find(|kind| kind.as_str() == name).unwrap_or(ProviderKind::Acp)
    }

    /// What it can do beyond running turns (`usage`: it reports the tokens
    /// each turn used), as a node reports it in
    /// [`ProviderInfo::features`]: the one place that says which agent
    /// takes steering or answers approvals. An ACP agent's own list comes
    /// from its preset or `[agents.NAME]`; this is what every ACP agent
    /// must do.
    pub fn features(self) -> &'static [&'static str] {
        match self {
            Self::Fake => &["approvals", "interrupt", "output"],
            Self::Codex => &["approvals", "interrupt", "steer", "resume", "usage", "output"],
            // Exec mode runs with approval policy `never` and takes no steering.
            Self::CodexExec => &["interrupt", "resume", "usage", "output"],
            // Input sent during a turn is queued by Claude Code, not added.
            Self::Claude => &["approvals", "interrupt", "resume", "usage", "output"],
            // ACP has no steering; `session/request_permission` and
            // `session/cancel` are part of the protocol.
            Self::Acp => &["approvals", "interrupt"],
        }
    }

    pub fn can(self, feature: &str) -> bool {
        self.features().contains(&feature)
    }
}

/// Readings sent with every heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub load1: f64,
    pub free_memory_bytes: u64,
    pub total_memory_bytes: u64,
    /// Free space under each workspace root.
    pub disks: Vec<DiskFree>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFree {
    pub path: String,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// A session the node has, with the last seq in its store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTip {
    pub session_id: SessionId,
    pub last_seq: u64,
}

/// Node → Core.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeFrame {
    Hello {
        v: u32,
        credential: Credential,
        capabilities: Capabilities,
        workspaces: Vec<Workspace>,
        sessions: Vec<SessionTip>,
    },
    Heartbeat {
        v: u32,
        resources: Resources,
    },
    /// What the node actually runs of the dependencies Core sent.
    ToolStates {
        v: u32,
        states: Vec<super::ToolState>,
    },
    /// Events of one session in seq order, with the session as it stands.
    Events {
        v: u32,
        session: SessionSummary,
        events: Vec<Event>,
    },
    CommandResult {
        v: u32,
        id: String,
        outcome: CommandOutcome,
    },
    /// Output of a terminal, as text (a UTF-8 sequence split by a read is
    /// held back until it is whole).
    TermOutput {
        v: u32,
        terminal: String,
        data: String,
    },
    /// A command line a person typed into a terminal, redacted; `offset` is
    /// where its output starts in the terminal's output, in bytes.
    TermCommand {
        v: u32,
        terminal: String,
        command: String,
        at: jiff::Timestamp,
        offset: u64,
    },
    TermExit {
        v: u32,
        terminal: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
    },
}

/// Why Core will not talk to a node; the node must not retry in a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Revoked,
    UnknownCredential,
    BadEnrollmentToken,
    UnsupportedVersion,
}

/// Core → Node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoreFrame {
    Welcome {
        v: u32,
        node_id: NodeId,
        /// Set when the hello enrolled: the node's new secret, to keep.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// The last seq Core has committed, per session it knows on this node.
        acked: BTreeMap<SessionId, u64>,
        heartbeat_ms: u64,
    },
    Refused {
        v: u32,
        reason: Refusal,
        message: String,
    },
    /// Core has committed every event of `session` up to `seq`.
    Ack {
        v: u32,
        session: SessionId,
        seq: u64,
    },
    /// Core is missing events after `after`: send them again.
    Resend {
        v: u32,
        session: SessionId,
        after: u64,
    },
    Command {
        #[serde(flatten)]
        command: Command,
    },
    /// The dependencies this node should run (the whole set, each time the
    /// registry changes and on every welcome).
    Tools {
        v: u32,
        tools: Vec<super::Dependency>,
        /// The `.cortex/tools.toml` a person trusted, by workspace name:
        /// the SHA-256 of the file; a project's tools run only from it.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        trusted: std::collections::BTreeMap<String, String>,
    },
    /// Keys for a terminal.
    TermInput {
        v: u32,
        terminal: String,
        data: String,
    },
    TermResize {
        v: u32,
        terminal: String,
        cols: u16,
        rows: u16,
    },
    /// A frame Core could not use; the connection goes on.
    Error {
        v: u32,
        code: String,
        message: String,
    },
}

fn default_journal_limit() -> usize {
    50
}

fn default_cols() -> u16 {
    100
}

fn default_rows() -> u16 {
    30
}

/// A request to change something, routed by Core to the node that owns the
/// target. Serialized as `{v, id, kind, target, payload}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub v: u32,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub kind: CommandKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum CommandKind {
    StartSession {
        /// Assigned by Core when it accepts the command, so a repeated command
        /// answers with the same session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        workspace_id: WorkspaceId,
        provider: String,
        /// The `fake` provider's script, as text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        script: Option<String>,
        prompt: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default)]
        auto_approve: bool,
        /// No person will answer approvals (a CLI with no terminal and no
        /// `--yes`): deny them at once, with that reason, instead of waiting.
        #[serde(default)]
        deny_approvals: bool,
        /// Run in a new git worktree, leaving the main checkout alone.
        #[serde(default)]
        worktree: bool,
    },
    SendTurn {
        session_id: SessionId,
        prompt: String,
        #[serde(default)]
        auto_approve: bool,
        /// As for `start_session`.
        #[serde(default)]
        deny_approvals: bool,
    },
    StopSession {
        session_id: SessionId,
    },
    /// Ends the running turn at the agent's next step; the session stays.
    InterruptSession {
        session_id: SessionId,
    },
    /// Runs the workspace's checks (all, or the one named) as evidence of
    /// the session's last turn.
    RunChecks {
        session_id: SessionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Commits the session's changes to the workspace's current branch with
    /// a `Cortex-Session` trailer.
    CommitSession {
        session_id: SessionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Commit the last turn's snapshot (what was reviewed) even where the
        /// working tree has changed since; the working tree is left as it is.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        as_reviewed: bool,
    },
    /// Adds input to the running turn (providers that can take it: codex).
    SteerSession {
        session_id: SessionId,
        text: String,
    },
    /// Answers the session's pending approval request.
    ResolveApproval {
        session_id: SessionId,
        /// The `approval_id` of the request answered; when given, an answer
        /// to a request that is no longer waiting is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval_id: Option<String>,
        approve: bool,
        /// Approve this and every later request of the session.
        #[serde(default)]
        for_session: bool,
        /// Who answered, as recorded in the event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    BindWorkspace {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    UnbindWorkspace {
        workspace_id: WorkspaceId,
    },
    ReadDiff {
        session_id: SessionId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        turn: Option<u32>,
        /// Answer with the changed files and their hunks instead of a patch.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        files: bool,
        /// Lines of context around each change in `files` (3 by default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<u32>,
    },
    /// Reads a file the session keeps under `turns/` (check output, say).
    ReadSessionFile {
        session_id: SessionId,
        path: String,
        /// Answer with the stored bytes (base64) instead of text: an image,
        /// an artifact to download.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        raw: bool,
    },
    /// Writes the session's report (prompts, answers, diffs, checks, test
    /// tables, images, cost, timeline) as one self-contained file.
    RenderReport {
        session_id: SessionId,
        format: ReportFormat,
    },
    /// Lists a directory of a workspace (of the session's worktree when a
    /// session is named). Paths are relative to the workspace root.
    ListFiles {
        workspace_id: WorkspaceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        #[serde(default)]
        path: String,
    },
    ReadFile {
        workspace_id: WorkspaceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        path: String,
    },
    /// Writes a file if its content still hashes to `expected_hash` (none:
    /// the file must not exist yet); a person's edit, recorded in the
    /// session named.
    WriteFile {
        workspace_id: WorkspaceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        path: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_hash: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    MovePath {
        workspace_id: WorkspaceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// Opens a terminal (a shell on a PTY) in the workspace, or in the
    /// session's worktree; Core assigns its id.
    OpenTerminal {
        workspace_id: WorkspaceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        terminal_id: Option<String>,
        #[serde(default = "default_cols")]
        cols: u16,
        #[serde(default = "default_rows")]
        rows: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// Run this configured check instead of a shell: its output streams
        /// like a terminal's, its result lands in the workspace journal (or
        /// the session) with the output as evidence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check: Option<String>,
    },
    CloseTerminal {
        workspace_id: WorkspaceId,
        terminal_id: String,
    },
    /// The checks `.cortex/config.toml` declares in a workspace.
    ListChecks {
        workspace_id: WorkspaceId,
    },
    /// The newest entries of the workspace journal: what people did there
    /// outside any session.
    ReadJournal {
        workspace_id: WorkspaceId,
        #[serde(default = "default_journal_limit")]
        limit: usize,
    },
    /// A reviewer's comments and verdict on a session's changes, recorded
    /// as their events; `request_changes` hands the open comments back to
    /// the agent as the next turn's prompt.
    ReviewSession {
        session_id: SessionId,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        comments: Vec<ReviewNote>,
        /// Files to mark viewed (`true`) or take the mark off (`false`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        viewed: Vec<(String, bool)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// For the turn `request_changes` starts, as with `send_turn`.
        #[serde(default)]
        auto_approve: bool,
        #[serde(default)]
        deny_approvals: bool,
    },
    DeletePath {
        workspace_id: WorkspaceId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<SessionId>,
        path: String,
        /// A file is deleted only if it still hashes to this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_hash: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

impl CommandKind {
    pub fn name(&self) -> &str {
        match self {
            Self::StartSession { .. } => "start_session",
            Self::SendTurn { .. } => "send_turn",
            Self::StopSession { .. } => "stop_session",
            Self::InterruptSession { .. } => "interrupt_session",
            Self::ResolveApproval { .. } => "resolve_approval",
            Self::RunChecks { .. } => "run_checks",
            Self::SteerSession { .. } => "steer_session",
            Self::CommitSession { .. } => "commit_session",
            Self::BindWorkspace { .. } => "bind_workspace",
            Self::UnbindWorkspace { .. } => "unbind_workspace",
            Self::ReadDiff { .. } => "read_diff",
            Self::ReadSessionFile { .. } => "read_session_file",
            Self::RenderReport { .. } => "render_report",
            Self::ListFiles { .. } => "list_files",
            Self::ReadFile { .. } => "read_file",
            Self::WriteFile { .. } => "write_file",
            Self::MovePath { .. } => "move_path",
            Self::DeletePath { .. } => "delete_path",
            Self::OpenTerminal { .. } => "open_terminal",
            Self::CloseTerminal { .. } => "close_terminal",
            Self::ReadJournal { .. } => "read_journal",
            Self::ListChecks { .. } => "list_checks",
            Self::ReviewSession { .. } => "review_session",
        }
    }
}

/// One review comment as a reviewer writes it: a file in the session's
/// changes, a line of it (1-based; none for the whole file) or a range of
/// lines (a hunk: `line` to `end_line`), the text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewNote {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    pub text: String,
}

/// Checks a name a person gives (a node, a workspace, a session title):
/// 1 to 200 characters, no control characters (a CR/LF would split a log
/// line or a header).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if name.chars().count() > 200 {
        return Err(format!("the {what} is longer than 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("the {what} has a control character (a newline, say); use one line of text"));
    }
    Ok(())
}

/// Checks a command id (an idempotency key): 1 to 128 printable ASCII
/// characters.
pub fn check_command_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err("a command `id` (an idempotency key) is 1 to 128 printable ASCII characters, no spaces".into());
    }
    Ok(())
}

/// The answer to a command: a JSON value, or a typed error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandOutcome {
    Ok { value: serde_json::Value },
    Error { code: ErrorCode, message: String },
}

impl CommandOutcome {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> CommandOutcome {
        CommandOutcome::Error { code, message: message.into() }
    }

    /// The outcome of a handler: its reply, or its error.
    pub fn of(result: Result<Reply, CommandError>) -> CommandOutcome {
        match result {
            Ok(reply) => {
                CommandOutcome::Ok { value: serde_json::to_value(reply).expect("holds because replies are JSON") }
            }
            Err(error) => CommandOutcome::Error { code: error.code, message: error.message },
        }
    }

    /// The answer as the reply type `T` of the command's kind.
    pub fn into_reply<T: serde::de::DeserializeOwned>(self) -> Result<T, CommandError> {
        match self {
            CommandOutcome::Ok { value } => super::reply::decode(value),
            CommandOutcome::Error { code, message } => Err(CommandError { code, message }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::PROTOCOL_VERSION;

    fn check<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(value: T, expect: &str) {
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(text, expect);
        assert_eq!(serde_json::from_str::<T>(&text).unwrap(), value);
    }

    #[test]
    fn commands_have_the_documented_envelope() {
        check(
            Command {
                v: PROTOCOL_VERSION,
                id: "cmd_1".into(),
                target: Some("node_a".into()),
                kind: CommandKind::StopSession { session_id: "ses_01m86a629myn3cjx91da8nn0vx".parse().unwrap() },
            },
            r#"{"v":1,"id":"cmd_1","target":"node_a","kind":"stop_session","payload":{"session_id":"ses_01m86a629myn3cjx91da8nn0vx"}}"#,
        );
        check(
            CoreFrame::Command {
                command: Command {
                    v: 1,
                    id: "c".into(),
                    target: None,
                    kind: CommandKind::ReadDiff {
                        session_id: "ses_01m86a629myn3cjx91da8nn0vx".parse().unwrap(),
                        turn: None,
                        files: false,
                        context: None,
                    },
                },
            },
            r#"{"type":"command","v":1,"id":"c","kind":"read_diff","payload":{"session_id":"ses_01m86a629myn3cjx91da8nn0vx"}}"#,
        );
    }

    #[test]
    fn frames_are_tagged_by_type() {
        check(
            CoreFrame::Ack { v: 1, session: "ses_01m86a629myn3cjx91da8nn0vx".parse().unwrap(), seq: 7 },
            r#"{"type":"ack","v":1,"session":"ses_01m86a629myn3cjx91da8nn0vx","seq":7}"#,
        );
        check(
            NodeFrame::CommandResult { v: 1, id: "c".into(), outcome: CommandOutcome::error(ErrorCode::Busy, "later") },
            r#"{"type":"command_result","v":1,"id":"c","outcome":{"status":"error","code":"busy","message":"later"}}"#,
        );
        assert!(serde_json::from_str::<NodeFrame>(r#"{"type":"telepathy","v":1}"#).is_err());
    }
}

/// A session report's format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// One HTML file with everything inline, fetching nothing.
    #[default]
    Html,
    /// Markdown, for a pull request's description.
    Md,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Md => "md",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Html => "text/html; charset=utf-8",
            Self::Md => "text/markdown; charset=utf-8",
        }
    }
}
