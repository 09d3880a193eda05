//! `fake`: a deterministic scripted agent shipped in the binary, for demos,
//! docs and tests. Its commands and file edits are real: they run and write
//! in the workspace. Turns beyond the script, or no script, echo the prompt.

mod script;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use script::{STEP_KINDS, Script, ScriptError, Step};

use super::{Error, Provider, TurnEnd, TurnRequest, TurnSink};
use crate::protocol::{ApprovalDecision, EventKind, FileChange, OutputStream};
use crate::sandbox::{self, RelPath, Root};

/// Output kept per command; the rest is dropped with a warning.
const MAX_COMMAND_OUTPUT: usize = 1024 * 1024;
/// The longest piece of output one event carries.
const MAX_LINE: usize = 64 * 1024;

pub struct FakeProvider {
    script: Script,
    /// The session's URL of Cortex's MCP gateway, which the script's
    /// commands see as `CORTEX_MCP_URL`.
    gateway: Option<String>,
}

impl FakeProvider {
    pub fn new(script: Script) -> FakeProvider {
        FakeProvider { script, gateway: None }
    }

    /// Its commands are given the session's gateway (`CORTEX_MCP_URL`), so a
    /// scripted session can call the session's tools as an agent would.
    pub fn with_gateway(mut self, url: Option<String>) -> FakeProvider {
        self.gateway = url;
        self
    }
}

impl Provider for FakeProvider {
    fn name(&self) -> &str {
        "fake"
    }

    fn run_turn(&mut self, request: TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<TurnEnd, Error> {
        let Some(steps) = self.script.turn(request.turn) else {
            sink.emit(EventKind::AssistantMessage { text: format!("echo: {}", request.prompt) })?;
            return Ok(TurnEnd::Completed);
        };
        let mut skip_next = false;
        let mut used = super::Usage::default();
        for (step_idx, step) in steps.iter().enumerate() {
            if request.cancel.load(Ordering::SeqCst) {
                return Ok(TurnEnd::Completed);
            }
            if std::mem::take(&mut skip_next) {
                continue;
            }
            match step {
                Step::Message(text) => {
                    sink.emit(EventKind::AssistantMessage { text: text.clone() })?;
                }
                Step::Reasoning(text) => {
                    sink.emit(EventKind::Reasoning { text: text.clone() })?;
                }
                Step::Command(command) => {
                    let command_id = format!("cmd_{}_{}", request.turn, step_idx + 1);
                    run_command(request.workspace, &command_id, command, self.gateway.as_deref(), sink)?;
                }
                Step::WriteFile { path, content } => {
                    let root = open_root(request.workspace)?;
                    let target = RelPath::parse(path)?;
                    let existed = root.kind(&target)?.is_some();
                    let change = if existed { FileChange::Modified } else { FileChange::Added };
                    root.write(&target, content.as_bytes(), false)?;
                    sink.emit(EventKind::FileChanged { path: path.clone(), change })?;
                }
                Step::DeleteFile(path) => {
                    let root = open_root(request.workspace)?;
                    let target = RelPath::parse(path)?;
                    match root.remove(&target) {
                        Ok(_) => {
                            sink.emit(EventKind::FileChanged { path: path.clone(), change: FileChange::Deleted })?;
                        }
                        Err(sandbox::Error::NotFound { .. }) => {
                            sink.emit(EventKind::Warning {
                                message: format!("`{path}` does not exist; nothing deleted"),
                            })?;
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Step::Approval(prompt) => {
                    // A denial skips the step the approval guards: the next one.
                    skip_next = sink.approve(prompt)? == ApprovalDecision::Denied;
                }
                Step::SleepMs(ms) => {
                    // In slices, so a stop request is noticed within 50 ms.
                    let until = Instant::now() + Duration::from_millis(*ms);
                    while Instant::now() < until && !request.cancel.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
                    }
                }
                Step::Fail(message) => return Ok(TurnEnd::Failed(message.clone())),
                Step::Usage(reported) => {
                    // The turn's running figures, as a model reports each request.
                    used.tokens = used.tokens.plus(reported.tokens);
                    used.model = reported.model.clone().or(used.model);
                    used.cost_usd = match (used.cost_usd, reported.cost_usd) {
                        (None, None) => None,
                        (so_far, more) => Some(so_far.unwrap_or(0.0) + more.unwrap_or(0.0)),
                    };
                    sink.usage(used.clone())?;
                }
            }
        }
        Ok(TurnEnd::Completed)
    }
}

fn io(context: String, source: std::io::Error) -> Error {
    Error::Io { context, source }
}

/// The workspace as the one filesystem boundary sees it.
fn open_root(workspace: &Path) -> Result<Root, Error> {
    Ok(Root::open(workspace)?)
}

/// Runs `command` with `sh -c` in the workspace, streaming each output line
/// as an event, then its exit code.
fn run_command(
    workspace: &Path,
    command_id: &str,
    command: &str,
    gateway: Option<&str>,
    sink: &mut dyn TurnSink,
) -> Result<(), Error> {
    sink.emit(EventKind::CommandStarted { command_id: command_id.to_string(), command: command.to_string() })?;
    let started = Instant::now();
    let mut child = Command::new("sh");
    if let Some(url) = gateway {
        child.env("CORTEX_MCP_URL", url);
    }
    let mut child = child
        .arg("-c")
        .arg(command)
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| io(format!("cannot run `{command}`"), source))?;
    // Bounded, so a command that prints faster than events are recorded
    // waits instead of filling memory.
    let (sender, receiver) = mpsc::sync_channel(64);
    let readers = [
        spawn_reader(
            child.stdout.take().map(|out| Box::new(out) as Box<dyn Read + Send>),
            OutputStream::Stdout,
            sender.clone(),
        ),
        spawn_reader(
            child.stderr.take().map(|err| Box::new(err) as Box<dyn Read + Send>),
            OutputStream::Stderr,
            sender,
        ),
    ];
    let mut kept = 0;
    let mut truncated = false;
    for (stream, text) in receiver {
        if kept + text.len() > MAX_COMMAND_OUTPUT {
            truncated = true;
            continue;
        }
        kept += text.len();
        sink.emit(EventKind::CommandOutput { command_id: command_id.to_string(), stream, text })?;
    }
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    let status = child.wait().map_err(|source| io(format!("cannot wait for `{command}`"), source))?;
    if truncated {
        sink.emit(EventKind::Warning {
            message: format!("output of `{command}` truncated after {MAX_COMMAND_OUTPUT} bytes"),
        })?;
    }
    sink.emit(EventKind::CommandFinished {
        command_id: command_id.to_string(),
        exit_code: status.code(),
        duration_ms: started.elapsed().as_millis() as u64,
    })?;
    Ok(())
}

fn spawn_reader(
    source: Option<Box<dyn Read + Send>>,
    stream: OutputStream,
    sender: mpsc::SyncSender<(OutputStream, String)>,
) -> Option<std::thread::JoinHandle<()>> {
    let source = source?;
    Some(std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        // A line longer than this is sent in pieces: a command printing
        // hundreds of megabytes with no newline is never held whole.
        while matches!((&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).into_owned();
            if sender.send((stream, text)).is_err() {
                break;
            }
            line.clear();
        }
    }))
}
