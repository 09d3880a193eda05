//! What a command answers: one reply type per command kind, and one error
//! type whose [`ErrorCode`] maps to one HTTP status everywhere (the API,
//! the panel, the CLI). On the wire a reply is the `value` of a
//! `command_result`, field for field as documented in `docs/protocol.md`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{CheckSummary, DirEntry, FileContent, FileDiff, JournalEntry, SessionId, Workspace};

/// Why a command (or an API call) was refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be read (not JSON, a missing field).
    Malformed,
    /// Read, but the input is wrong (an empty prompt, a path outside).
    BadInput,
    NotFound,
    /// The session is running a turn, or a file is held by one.
    Busy,
    /// A file changed since it was read (its hash differs).
    Conflict,
    /// The lifecycle does not allow it (interrupting an idle session).
    IllegalTransition,
    /// The agent or node cannot do it (steering a provider that takes no input).
    Unsupported,
    Unauthorized,
    Forbidden,
    /// A node spoke for what is not its own.
    NotOwner,
    NodeOffline,
    Unavailable,
    TooLarge,
    MethodNotAllowed,
    /// It ran and did not succeed (git failed, a process would not start).
    Failed,
    /// It was cut short (its node stopped while it ran) and is not run again.
    Interrupted,
    Internal,
    /// A code from a newer peer.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status of this error, the one mapping every surface uses.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Malformed => 400,
            Self::Unauthorized => 401,
            Self::Forbidden | Self::NotOwner => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Busy | Self::Conflict | Self::IllegalTransition | Self::Interrupted => 409,
            Self::TooLarge => 413,
            Self::BadInput | Self::Unsupported => 422,
            Self::Failed | Self::Internal | Self::Unknown => 500,
            Self::NodeOffline | Self::Unavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadInput => "bad_input",
            Self::NotFound => "not_found",
            Self::Busy => "busy",
            Self::Conflict => "conflict",
            Self::IllegalTransition => "illegal_transition",
            Self::Unsupported => "unsupported",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotOwner => "not_owner",
            Self::NodeOffline => "node_offline",
            Self::Unavailable => "unavailable",
            Self::TooLarge => "too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that did not do what was asked: the code, and one line for a
/// person saying what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> CommandError {
        CommandError { code, message: message.into() }
    }
}

/// `start_session` and `send_turn`: the turn is under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnAccepted {
    pub session_id: SessionId,
    pub turn: u32,
}

/// `stop_session` and `interrupt_session`: where the session is going —
/// `stopping`/`interrupting` while a turn winds down, else its new state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMoved {
    pub session_id: SessionId,
    pub state: String,
}

/// `steer_session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steered {
    pub session_id: SessionId,
    pub steered: bool,
}

/// `resolve_approval`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswered {
    pub session_id: SessionId,
    pub approved: bool,
    pub for_session: bool,
}

/// `run_checks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksRun {
    pub session_id: SessionId,
    pub checks: Vec<CheckSummary>,
}

/// `commit_session`: the new commit's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub session_id: SessionId,
    pub commit: String,
}

/// `unbind_workspace`: whether the node had it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unbound {
    pub unbound: bool,
}

/// `read_diff`: the changed files with hunks (`files: true`), or a patch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRead {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileDiff>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// `read_session_file`: its text, redacted, and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFileRead {
    pub path: String,
    pub bytes: usize,
    pub text: String,
    /// The stored bytes in standard base64, when asked for `raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// `render_report`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRendered {
    pub session_id: crate::protocol::SessionId,
    pub format: crate::protocol::ReportFormat,
    /// A file name to save it under: `cortex-<session>.html`.
    pub file_name: String,
    pub content: String,
}

/// `list_files`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub path: String,
    pub entries: Vec<DirEntry>,
}

/// `write_file`: the new content's hash; `recorded` when the person's act
/// is in the session or the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWritten {
    pub path: String,
    pub hash: String,
    pub recorded: bool,
}

/// `move_path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathMoved {
    pub from: String,
    pub to: String,
    pub recorded: bool,
}

/// `delete_path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathDeleted {
    pub path: String,
    pub recorded: bool,
}

/// `open_terminal`: a shell (`recorded`), or a check's run (`check`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalOpened {
    pub terminal_id: String,
    pub dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// `close_terminal`: whether it was open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalClosed {
    pub terminal_id: String,
    pub closed: bool,
}

/// A check `.cortex/config.toml` declares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub command: String,
}

/// `list_checks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckList {
    pub checks: Vec<CheckSpec>,
}

/// `read_journal`: newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRead {
    pub entries: Vec<JournalEntry>,
}

/// A review recorded: how many comments it added, its verdict, and for
/// `request_changes` the turn it started with the prompt it handed back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reviewed {
    pub session_id: SessionId,
    pub comments: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::protocol::Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// Every reply, one variant per reply type; serialized as the type alone.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    TurnAccepted(TurnAccepted),
    SessionMoved(SessionMoved),
    Steered(Steered),
    ApprovalAnswered(ApprovalAnswered),
    ChecksRun(ChecksRun),
    Committed(Committed),
    Workspace(Workspace),
    Unbound(Unbound),
    DiffRead(DiffRead),
    SessionFileRead(SessionFileRead),
    ReportRendered(ReportRendered),
    Listing(Listing),
    FileContent(FileContent),
    FileWritten(FileWritten),
    PathMoved(PathMoved),
    PathDeleted(PathDeleted),
    TerminalOpened(TerminalOpened),
    TerminalClosed(TerminalClosed),
    CheckList(CheckList),
    JournalRead(JournalRead),
    Reviewed(Reviewed),
}

macro_rules! reply_from {
    ($($name:ident),*) => {
        $(impl From<$name> for Reply {
            fn from(reply: $name) -> Reply {
                Reply::$name(reply)
            }
        })*
    };
}

reply_from!(
    TurnAccepted,
    SessionMoved,
    Steered,
    ApprovalAnswered,
    ChecksRun,
    Committed,
    Workspace,
    Unbound,
    DiffRead,
    SessionFileRead,
    ReportRendered,
    Listing,
    FileContent,
    FileWritten,
    PathMoved,
    PathDeleted,
    TerminalOpened,
    TerminalClosed,
    CheckList,
    JournalRead,
    Reviewed
);

/// Reads a command's answer as the reply type its kind has.
pub fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, CommandError> {
    serde_json::from_value(value)
        .map_err(|error| CommandError::new(ErrorCode::Malformed, format!("a malformed answer: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_unknown_codes_are_kept_apart() {
        let code: ErrorCode = serde_json::from_str("\"bad_input\"").unwrap();
        assert_eq!((code, code.http_status()), (ErrorCode::BadInput, 422));
        assert_eq!(serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(), ErrorCode::Unknown);
        for code in [ErrorCode::Busy, ErrorCode::NotFound, ErrorCode::NodeOffline, ErrorCode::Malformed] {
            let text = serde_json::to_string(&code).unwrap();
            assert_eq!(text, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn a_reply_is_its_type_on_the_wire() {
        let reply =
            Reply::from(TurnAccepted { session_id: "ses_01m86a629myn3cjx91da8nn0vx".parse().unwrap(), turn: 2 });
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"session_id":"ses_01m86a629myn3cjx91da8nn0vx","turn":2}"#
        );
        let back: TurnAccepted = decode(serde_json::to_value(&reply).unwrap()).unwrap();
        assert_eq!(back.turn, 2);
    }
}
