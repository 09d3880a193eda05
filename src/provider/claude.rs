//! Claude Code as a persistent provider: one headless `claude` process per
//! session speaking stream-json on stdin and stdout
//! (`-p --input-format stream-json --output-format stream-json --verbose
//! --include-partial-messages --permission-prompt-tool stdio`). A turn is
//! one user line in and one `result` line out; every tool call Claude Code
//! would ask about comes as a `can_use_tool` control request and is
//! answered through Cortex's approvals; an interrupt is a control request
//! that leaves the process able to take the next turn. The Claude session
//! id is the resume reference: after the process or the node dies the next
//! turn starts `claude --resume ID`, and the model gets the whole earlier
//! transcript. Facts in `docs/providers.md`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::process::AgentProcess;
use super::{Error, Provider, TurnEnd, TurnRequest, TurnSink};
use crate::protocol::{ApprovalDecision, EventKind, FileChange, OutputStream, TokenUsage};

/// The Claude Code version Cortex is tested with.
pub const SUPPORTED_VERSION: &str = "2.1.328";

/// How long an interrupted turn may take to end before the process is
/// killed (the next turn resumes the session in a new one).
const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

/// `[claude]` in `.cortex/config.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaudeConfig {
    /// The claude executable (default: `$CORTEX_CLAUDE_BIN`, else `claude` on the PATH).
    pub binary: Option<String>,
    /// Passed as `--model`.
    pub model: Option<String>,
    /// Extra environment for the child (`ANTHROPIC_BASE_URL`, an API key).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The session's URL of Cortex's MCP gateway (set by the node, never
    /// read from the file).
    #[serde(skip)]
    pub gateway: Option<String>,
}

impl ClaudeConfig {
    pub(crate) fn binary(&self) -> PathBuf {
        self.binary
            .clone()
            .or_else(|| std::env::var("CORTEX_CLAUDE_BIN").ok())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("claude"))
    }
}

pub struct ClaudeProvider {
    config: ClaudeConfig,
    /// Claude Code's session id, once it has one.
    session: Option<String>,
    /// The live process's cost so far (`total_cost_usd` counts from its
    /// start): a turn's cost is the difference.
    process_cost: f64,
    process: Option<AgentProcess>,
    /// `CLAUDE_CONFIG_DIR`: where Claude Code keeps the session's
    /// transcript (kept, so `--resume` finds it), settings and caches.
    home: PathBuf,
    /// Where the child's stderr goes.
    log: PathBuf,
}

impl ClaudeProvider {
    /// One turn on the live process (spawned, or resumed, when there is
    /// none); whether the process said anything during it comes back with
    /// how it ended.
    fn attempt(&mut self, request: &TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<(TurnEnd, bool), Error> {
        let workspace = request.workspace.to_path_buf();
        self.process(&workspace)?;
        let mut process = self.process.take().expect("holds because process() spawned it");
        let driven = self.drive(&mut process, workspace, request, sink)?;
        if driven.alive && process.is_alive() {
            self.process = Some(process);
        } else {
            super::kill_ladder(&mut process.child);
        }
        Ok((driven.end, driven.heard))
    }

    /// Whether the last process said it found no conversation to resume.
    fn no_transcript(&self) -> bool {
        std::thread::sleep(Duration::from_millis(100));
        fs_err::read_to_string(&self.log).is_ok_and(|log| log.contains("No conversation found"))
    }

    /// A provider for a session; `session` resumes an existing Claude session.
    pub fn new(config: ClaudeConfig, session: Option<String>, home: PathBuf, log: PathBuf) -> ClaudeProvider {
        ClaudeProvider { config, session, process_cost: 0.0, process: None, home, log }
    }

    /// The agent is given Cortex's MCP gateway at `url` (`--mcp-config`),
    /// and its tools need no second approval from Claude Code: the gateway
    /// holds them to Cortex's policy.
    pub fn with_gateway(mut self, url: Option<String>) -> ClaudeProvider {
        self.config.gateway = url;
        self
    }

    fn process(&mut self, workspace: &Path) -> Result<&mut AgentProcess, Error> {
        if !self.process.as_mut().is_some_and(AgentProcess::is_alive) {
            self.process = Some(spawn(&self.config, workspace, self.session.as_deref(), &self.home, &self.log)?);
            self.process_cost = 0.0;
        }
        Ok(self.process.as_mut().expect("holds because it was just spawned"))
    }
}

impl Provider for ClaudeProvider {
    fn name(&self) -> &str {
        "claude"
    }

    fn resume_ref(&self) -> Option<String> {
        self.session.clone()
    }

    fn is_live(&self) -> bool {
        self.process.is_some()
    }

    fn run_turn(&mut self, request: TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<TurnEnd, Error> {
        let mut reused = self.process.as_mut().is_some_and(AgentProcess::is_alive);
        let mut resuming = self.session.clone().filter(|_| !reused);
        let (mut end, heard) = self.attempt(&request, sink)?;
        if reused && !heard && matches!(end, TurnEnd::Crashed(_)) {
            // The process died between turns and its end raced this prompt,
            // which it never read: the turn goes to a new process that
            // resumes the session.
            reused = false;
            resuming = self.session.clone();
            self.process = None;
            end = self.attempt(&request, sink)?.0;
        }
        // Claude Code writes a session's transcript just after the turn's
        // `result`: a process killed in that instant leaves nothing to
        // resume. Say so, and go on in a new Claude session.
        if let (false, Some(session), TurnEnd::Failed(_) | TurnEnd::Crashed(_)) = (reused, &resuming, &end)
            && self.no_transcript()
        {
            sink.emit(EventKind::Warning {
                message: format!(
                    "Claude Code has no transcript of session {session} (its process died before writing it): this turn starts a new Claude session without the earlier turns"
                ),
            })?;
            self.session = None;
            self.process = None;
            return Ok(self.attempt(&request, sink)?.0);
        }
        Ok(end)
    }
}

/// How one turn on a process went.
struct Driven {
    end: TurnEnd,
    /// Whether the process can take the next turn.
    alive: bool,
    /// Whether the process said anything (a process that died between
    /// turns never read the prompt).
    heard: bool,
}

impl ClaudeProvider {
    /// Runs one turn on `process`.
    fn drive(
        &mut self,
        process: &mut AgentProcess,
        workspace: PathBuf,
        request: &TurnRequest<'_>,
        sink: &mut dyn TurnSink,
    ) -> Result<Driven, Error> {
        let prompt = json!({
            "type": "user",
            "message": {"role": "user", "content": request.prompt},
            "parent_tool_use_id": null,
            "session_id": "",
        });
        if process.send(&prompt).is_err() {
            return Ok(Driven {
                end: TurnEnd::Crashed(process.exit_reason("during the turn")),
                alive: false,
                heard: false,
            });
        }
        let mut heard = false;
        let mut turn = Turn { workspace, ..Turn::default() };
        let mut interrupt_sent: Option<Instant> = None;
        loop {
            if request.cancel.load(Ordering::SeqCst) && interrupt_sent.is_none() {
                process.send(&json!({"type": "control_request", "request_id": "cortex_interrupt",
                    "request": {"subtype": "interrupt"}}))?;
                interrupt_sent = Some(Instant::now());
            }
            if interrupt_sent.is_some_and(|sent| sent.elapsed() > INTERRUPT_GRACE) {
                // Claude Code did not end the turn: the next one resumes the
                // session in a new process.
                turn.close_commands(sink)?;
                return Ok(Driven { end: TurnEnd::Interrupted, alive: false, heard });
            }
            let line = match process.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    turn.close_commands(sink)?;
                    return Ok(Driven {
                        end: TurnEnd::Crashed(process.exit_reason("during the turn")),
                        alive: false,
                        heard,
                    });
                }
            };
            heard = true;
            sink.raw(&line)?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
            if let Some(id) = message["session_id"].as_str().filter(|id| !id.is_empty()) {
                self.session = Some(id.to_string());
            }
            match message["type"].as_str().unwrap_or_default() {
                "control_request" => {
                    let answer = answer_control(&message, sink)?;
                    process.send(&answer)?;
                }
                "stream_event" => turn.stream_event(&message["event"], sink)?,
                "assistant" => turn.assistant(&message["message"], sink)?,
                "user" => turn.tool_results(&message, sink)?,
                "result" => {
                    turn.close_commands(sink)?;
                    let tokens = turn_usage(&message["usage"]);
                    let cost = message["total_cost_usd"].as_f64().map(|total| {
                        let turn = (total - self.process_cost).max(0.0);
                        self.process_cost = total;
                        turn
                    });
                    let model = message["modelUsage"].as_object().and_then(|models| models.keys().next().cloned());
                    sink.usage(super::Usage { tokens, model, cost_usd: cost })?;
                    return Ok(Driven { end: turn_end(&message, interrupt_sent.is_some()), alive: true, heard });
                }
                _ => {}
            }
        }
    }
}

/// How a turn ended, from its `result` line.
fn turn_end(result: &Value, interrupted_by_cortex: bool) -> TurnEnd {
    let aborted = result["terminal_reason"].as_str().is_some_and(|reason| reason.starts_with("aborted"));
    match result["subtype"].as_str() {
        Some("success") if result["is_error"] != json!(true) => TurnEnd::Completed,
        // An interrupt Cortex asked for: the runner records it.
        _ if interrupted_by_cortex => TurnEnd::Completed,
        _ if aborted => TurnEnd::Interrupted,
        _ => TurnEnd::Failed(
            result["result"]
                .as_str()
                .or_else(|| result["errors"][0].as_str())
                .unwrap_or("claude ended the turn with an error")
                .to_string(),
        ),
    }
}

/// Answers a control request from Claude Code: a tool call to approve goes
/// to Cortex's approvals; anything else is refused, so Claude never waits.
fn answer_control(message: &Value, sink: &mut dyn TurnSink) -> Result<Value, Error> {
    let request = &message["request"];
    let id = message["request_id"].clone();
    if request["subtype"] != "can_use_tool" {
        return Ok(json!({"type": "control_response", "response": {"subtype": "error", "request_id": id,
            "error": "Cortex does not handle this request"}}));
    }
    let tool = request["tool_name"].as_str().unwrap_or("a tool");
    let input = &request["input"];
    let what = input["command"].as_str().or_else(|| input["file_path"].as_str()).unwrap_or_default();
    let prompt = match request["description"].as_str().filter(|text| !text.is_empty() && *text != what) {
        Some(description) => format!("{tool}: {what} ({description})"),
        None => format!("{tool}: {what}"),
    };
    let response = match sink.approve(&prompt)? {
        ApprovalDecision::Approved => json!({"behavior": "allow", "updatedInput": input}),
        ApprovalDecision::Denied => json!({"behavior": "deny", "message": "Denied in Cortex: do not do this."}),
    };
    Ok(json!({"type": "control_response", "response": {"subtype": "success", "request_id": id, "response": response}}))
}

/// What a turn has seen: tool calls waiting for their results.
#[derive(Default)]
struct Turn {
    workspace: PathBuf,
    /// Tool uses by id: the tool's name, its input, when it started.
    tools: HashMap<String, (String, Value, Instant)>,
}

impl Turn {
    /// A streamed text delta (`--include-partial-messages`).
    fn stream_event(&mut self, event: &Value, sink: &mut dyn TurnSink) -> Result<(), Error> {
        if event["type"] == "content_block_delta" && event["delta"]["type"] == "text_delta" {
            let text = event["delta"]["text"].as_str().unwrap_or_default().to_string();
            let item = format!("msg_{}", event["index"]);
            sink.emit(EventKind::AssistantDelta { item_id: item, text })?;
        }
        Ok(())
    }

    /// One content block of the assistant's message.
    fn assistant(&mut self, message: &Value, sink: &mut dyn TurnSink) -> Result<(), Error> {
        for block in message["content"].as_array().into_iter().flatten() {
            match block["type"].as_str().unwrap_or_default() {
                "text" => {
                    let text = block["text"].as_str().unwrap_or_default().to_string();
                    if !text.is_empty() {
                        sink.emit(EventKind::AssistantMessage { text })?;
                    }
                }
                "thinking" => {
                    let text = block["thinking"].as_str().unwrap_or_default().to_string();
                    if !text.is_empty() {
                        sink.emit(EventKind::Reasoning { text })?;
                    }
                }
                "tool_use" => {
                    let id = block["id"].as_str().unwrap_or_default().to_string();
                    let name = block["name"].as_str().unwrap_or_default().to_string();
                    if name == "Bash" {
                        let command = block["input"]["command"].as_str().unwrap_or_default().to_string();
                        sink.emit(EventKind::CommandStarted { command_id: id.clone(), command })?;
                    }
                    self.tools.insert(id, (name, block["input"].clone(), Instant::now()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Tool results: a command's output and end, a file's change.
    fn tool_results(&mut self, message: &Value, sink: &mut dyn TurnSink) -> Result<(), Error> {
        for block in message["message"]["content"].as_array().into_iter().flatten() {
            if block["type"] != "tool_result" {
                continue;
            }
            let id = block["tool_use_id"].as_str().unwrap_or_default();
            let Some((name, input, started)) = self.tools.remove(id) else { continue };
            let failed = block["is_error"] == json!(true);
            match name.as_str() {
                "Bash" => {
                    let structured = &message["tool_use_result"];
                    let stdout =
                        structured["stdout"].as_str().map(str::to_string).unwrap_or_else(|| text_of(&block["content"]));
                    for (stream, text) in [
                        (OutputStream::Stdout, stdout),
                        (OutputStream::Stderr, structured["stderr"].as_str().unwrap_or_default().to_string()),
                    ] {
                        if !text.is_empty() {
                            sink.emit(EventKind::CommandOutput { command_id: id.to_string(), stream, text })?;
                        }
                    }
                    sink.emit(EventKind::CommandFinished {
                        command_id: id.to_string(),
                        exit_code: Some(if failed { 1 } else { 0 }),
                        duration_ms: started.elapsed().as_millis() as u64,
                    })?;
                }
                "Write" | "Edit" | "MultiEdit" | "NotebookEdit" if !failed => {
                    let path =
                        input["file_path"].as_str().or_else(|| input["notebook_path"].as_str()).unwrap_or_default();
                    let created = name == "Write" && message["tool_use_result"]["type"] == "create";
                    let change = if created { FileChange::Added } else { FileChange::Modified };
                    if let Some(path) = super::workspace_path(&self.workspace, path) {
                        sink.emit(EventKind::FileChanged { path, change })?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Commands that never got their result (an interrupt, a crash) end
    /// without an exit code.
    fn close_commands(&mut self, sink: &mut dyn TurnSink) -> Result<(), Error> {
        let open: Vec<_> = self.tools.drain().filter(|(_, (name, _, _))| name == "Bash").collect();
        for (id, (_, _, started)) in open {
            let duration_ms = started.elapsed().as_millis() as u64;
            sink.emit(EventKind::CommandFinished { command_id: id, exit_code: None, duration_ms })?;
        }
        Ok(())
    }
}

/// A tool result's text, whether a string or a list of text blocks.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|block| block["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// A turn's usage from its `result` line (per turn, summed over its model calls).
fn turn_usage(usage: &Value) -> TokenUsage {
    let number = |key: &str| usage[key].as_u64().unwrap_or(0);
    let input = number("input_tokens") + number("cache_creation_input_tokens") + number("cache_read_input_tokens");
    let output = number("output_tokens");
    TokenUsage {
        input_tokens: input,
        cached_input_tokens: number("cache_read_input_tokens"),
        output_tokens: output,
        reasoning_output_tokens: 0,
        total_tokens: input + output,
    }
}

/// Starts `claude` for the session in `workspace`, resuming `session`.
fn spawn(
    config: &ClaudeConfig,
    workspace: &Path,
    session: Option<&str>,
    home: &Path,
    log: &Path,
) -> Result<AgentProcess, Error> {
    fs_err::create_dir_all(home)
        .map_err(|source| Error::Io { context: format!("cannot create `{}`", home.display()), source })?;
    let mut command = Command::new(config.binary());
    command.args([
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--permission-prompt-tool",
        "stdio",
    ]);
    if let Some(model) = &config.model {
        command.args(["--model", model]);
    }
    if let Some(session) = session {
        command.args(["--resume", session]);
    }
    if let Some(url) = &config.gateway {
        let servers = serde_json::json!({"mcpServers": {"cortex": {"type": "http", "url": url}}});
        command.args(["--mcp-config", &servers.to_string(), "--allowedTools", "mcp__cortex"]);
    }
    command
        .current_dir(workspace)
        .env("CLAUDE_CONFIG_DIR", home)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .envs(&config.env);
    let install = format!(
        "install @anthropic-ai/claude-code {SUPPORTED_VERSION} and point [claude] binary or CORTEX_CLAUDE_BIN at its platform binary"
    );
    AgentProcess::spawn(command, log, "claude", &install)
}
