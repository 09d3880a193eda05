//! Agent providers behind one trait. A provider runs one turn at a time in a
//! workspace and reports what the agent does as normalized [`EventKind`]s
//! through a [`TurnSink`]; it never writes the store itself.
//!
//! Only `node` and `provider` spawn processes.

pub mod acp;
pub mod claude;
pub mod codex;
pub mod codex_exec;
pub mod fake;
mod process;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use crate::protocol::{ApprovalDecision, EventKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Script(#[from] fake::ScriptError),
    #[error("codex: {0}")]
    Codex(String),
    /// An agent CLI misbehaved (exited, closed its input).
    #[error("{0}")]
    Agent(String),
    /// A path the agent named that the workspace boundary refused.
    #[error("the agent's path was refused: {0}")]
    Boundary(#[from] crate::sandbox::Error),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The sink could not record an event; the turn cannot go on safely.
    #[error("cannot record the agent's work")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `path` as the timeline names a file an agent changed: relative to the
/// workspace, or `None` when it lies outside (absolute elsewhere, or
/// climbing out with `..`). The turn's snapshot is what counts; an agent's
/// claim about a file outside the workspace is not recorded as a change.
pub(crate) fn workspace_path(workspace: &Path, path: &str) -> Option<String> {
    let relative = Path::new(path).strip_prefix(workspace).unwrap_or(Path::new(path));
    let relative = crate::sandbox::RelPath::parse(relative.to_str()?).ok()?;
    (!relative.is_root()).then(|| relative.display())
}

/// Where a provider's events go: the node's session runner, which assigns
/// seqs, persists, and answers approvals.
pub trait TurnSink {
    /// Records one event and returns its seq.
    fn emit(&mut self, kind: EventKind) -> Result<u64, Error>;
    /// Asks a person to approve `prompt`; blocks until they answer.
    fn approve(&mut self, prompt: &str) -> Result<ApprovalDecision, Error>;
    /// Keeps one of the provider's own output lines, so its events can be
    /// re-normalised later.
    fn raw(&mut self, line: &str) -> Result<(), Error>;
    /// The running turn's use so far, each time the agent reports it: the
    /// node records the last reading as the turn's usage and holds it to the
    /// repository's budget (a crossing interrupts the turn).
    fn usage(&mut self, usage: Usage) -> Result<(), Error>;
}

/// What the agent reported of the running turn's use so far: its own
/// figures, never estimated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub tokens: crate::protocol::TokenUsage,
    /// The model that used them, when the agent names it.
    pub model: Option<String>,
    /// US dollars, when the agent reports a cost.
    pub cost_usd: Option<f64>,
}

/// One turn to run.
pub struct TurnRequest<'a> {
    pub workspace: &'a Path,
    pub turn: u32,
    pub prompt: &'a str,
    /// Set when a person asked the turn to stop: the provider stops at its
    /// next step and returns.
    pub cancel: &'a AtomicBool,
    /// Input a person added to the running turn (`cortex session steer`),
    /// for providers that can take it; drained by the provider.
    pub steer: &'a Mutex<Vec<String>>,
}

/// How a turn ended, from the provider's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEnd {
    Completed,
    Failed(String),
    /// The agent ended the turn early (a cancelled approval, say).
    Interrupted,
    /// The agent's process died during the turn: the session is left
    /// interrupted with this reason, and the next turn resumes it.
    Crashed(String),
}

pub trait Provider: Send {
    fn name(&self) -> &str;
    fn run_turn(&mut self, request: TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<TurnEnd, Error>;
    /// The provider's handle to continue the conversation later (a Codex
    /// thread id), once it has one.
    fn resume_ref(&self) -> Option<String> {
        None
    }
    /// The agent's version as the agent itself reported it (an ACP agent's
    /// `agentInfo`), for agents whose CLI has no `--version`.
    fn agent_version(&self) -> Option<String> {
        None
    }
    /// Whether the provider keeps a live process between turns, so the node
    /// should keep it rather than build a new one for the next turn.
    fn is_live(&self) -> bool {
        false
    }
}

/// The longest line a provider's output may have: a longer one (an agent
/// printing hundreds of megabytes without a newline) is read and dropped,
/// never held whole.
const MAX_PROVIDER_LINE: u64 = 16 << 20;

/// Lines of a child's output on a channel, read on a thread of their own,
/// so a provider can wait for them with a timeout (and notice a cancel).
/// Bytes that are not UTF-8 are replaced, not fatal.
pub(crate) fn line_reader(output: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(output);
        while let Some(line) = next_line(&mut reader) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// The next line of `reader` without its line ending, skipping lines over
/// [`MAX_PROVIDER_LINE`]; `None` at the end.
fn next_line(reader: &mut impl std::io::BufRead) -> Option<String> {
    use std::io::{BufRead as _, Read as _};
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.by_ref().take(MAX_PROVIDER_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if line.ends_with(b"\n") || (line.len() as u64) < MAX_PROVIDER_LINE {
            break;
        }
        tracing::warn!(max = MAX_PROVIDER_LINE, "a provider printed a line longer than Cortex reads; it was dropped");
        // The rest of the oversized line, a bounded piece at a time.
        loop {
            line.clear();
            match reader.by_ref().take(MAX_PROVIDER_LINE).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line.ends_with(b"\n") => break,
                Ok(_) => {}
            }
        }
    }
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    Some(String::from_utf8_lossy(text).into_owned())
}

/// SIGINT, SIGTERM, then SIGKILL to the child's process group (it was
/// spawned as a group leader), two seconds apart, until it is gone.
pub(crate) fn kill_ladder(child: &mut std::process::Child) {
    let group = format!("-{}", child.id());
    for signal in ["INT", "TERM", "KILL"] {
        let _ = std::process::Command::new("kill").args(["-s", signal, "--", &group]).status();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < until {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_endless_line_is_dropped_and_the_next_one_read() {
        let mut input = vec![b'x'; (super::MAX_PROVIDER_LINE as usize) * 2 + 5];
        input.extend_from_slice(b"\n{\"ok\":true}\r\nlast \xff");
        let mut reader = std::io::BufReader::new(std::io::Cursor::new(input));
        assert_eq!(super::next_line(&mut reader).as_deref(), Some("{\"ok\":true}"));
        assert_eq!(super::next_line(&mut reader).as_deref(), Some("last \u{fffd}"));
        assert_eq!(super::next_line(&mut reader), None);
    }
}
