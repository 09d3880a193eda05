//! Any agent that speaks the Agent Client Protocol (v1: JSON-RPC 2.0, one
//! object per line on stdio): one process per session, `initialize`,
//! `session/new` in the workspace (or `session/load` to resume, when the
//! agent advertises it), `session/prompt` per turn with its `session/update`
//! notifications mapped to Cortex's events, `session/request_permission`
//! answered through Cortex's approvals (the option chosen by its kind), and
//! `session/cancel` for an interrupt. Cortex advertises no client fs or
//! terminal methods: the agent works in the workspace itself, and any
//! request it sends Cortex is answered with "method not found", so it never
//! waits. Facts in `docs/providers.md`.

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

/// How long the agent may take to answer `initialize` or to open a session.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cancelled turn may take to end before the process is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// `[agents.NAME]` in `.cortex/config.toml`: how to run an ACP agent.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The command line; the first word is the program.
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra environment for the agent.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What Cortex may count on beyond the protocol's own approvals and
    /// interrupt: `resume` (the agent loads a session after a restart),
    /// `usage` (tokens per turn), `output` (it reports a command's output).
    /// Default: nothing more.
    #[serde(default)]
    pub features: Vec<String>,
    /// The session's URL of Cortex's MCP gateway (set by the node).
    #[serde(skip)]
    pub gateway: Option<String>,
}

/// The ACP agents Cortex knows by name, with what the conformance matrix
/// showed each can do (docs/providers.md).
pub const PRESETS: [&str; 2] = ["codex-acp", "gemini"];

impl AgentConfig {
    /// The built-in preset for `name`, when Cortex knows the agent:
    /// `codex-acp` (`$CORTEX_CODEX_ACP_BIN`, else `codex-acp` on the PATH)
    /// and `gemini` (`$CORTEX_GEMINI_BIN`, else `gemini`, with `--acp`).
    pub fn preset(name: &str) -> Option<AgentConfig> {
        let program = |variable: &str, default: &str| std::env::var(variable).unwrap_or_else(|_| default.into());
        let features = |list: &[&str]| list.iter().map(|feature| feature.to_string()).collect();
        match name {
            "codex-acp" => Some(AgentConfig {
                command: vec![program("CORTEX_CODEX_ACP_BIN", "codex-acp")],
                env: BTreeMap::new(),
                features: features(&["resume", "output", "usage"]),
                gateway: None,
            }),
            // Gemini CLI 0.61.0 advertises loadSession, but its
            // session/load rewrites the chat record before reading it and
            // answers "No previous sessions found for this project."; a
            // shell command's output reaches only the model.
            "gemini" => Some(AgentConfig {
                command: vec![program("CORTEX_GEMINI_BIN", "gemini"), "--acp".into()],
                env: BTreeMap::new(),
                features: features(&["usage"]),
                gateway: None,
            }),
            _ => None,
        }
    }

    /// The agent `name` as the repository declares it, else its preset.
    pub fn resolve(name: &str, declared: &BTreeMap<String, AgentConfig>) -> Option<AgentConfig> {
        declared.get(name).cloned().or_else(|| Self::preset(name))
    }

    /// What to install when the agent's program is missing.
    pub fn install_hint(name: &str) -> String {
        match name {
            "codex-acp" => {
                "@zed-industries/codex-acp 0.16.0 from npm (and bubblewrap), or set its command in [agents.codex-acp]"
                    .into()
            }
            "gemini" => "@google/gemini-cli 0.61.0 from npm, or set its command in [agents.gemini]".into(),
            _ => format!("the agent, or fix its command in [agents.{name}]"),
        }
    }
}

pub struct AcpProvider {
    name: String,
    config: AgentConfig,
    /// The agent's session id, once it has one.
    session: Option<String>,
    process: Option<Process>,
    log: PathBuf,
    /// What the agent said it is (`agentInfo.version`).
    version: Option<String>,
}

impl AcpProvider {
    /// A provider for a session; `session` is the agent's id to load.
    pub fn new(name: String, config: AgentConfig, session: Option<String>, log: PathBuf) -> AcpProvider {
        AcpProvider { name, config, session, process: None, log, version: None }
    }

    /// The agent is given Cortex's MCP gateway at `url` in `mcpServers`,
    /// when it takes HTTP servers.
    pub fn with_gateway(mut self, url: Option<String>) -> AcpProvider {
        self.config.gateway = url;
        self
    }

    /// The live agent with the session open.
    fn process(&mut self, workspace: &Path, sink: &mut dyn TurnSink) -> Result<(), Error> {
        if self.process.as_mut().is_some_and(Process::is_alive) {
            return Ok(());
        }
        let mut process = Process::spawn(&self.config, workspace, &self.log)?;
        let init = process.call(
            "initialize",
            json!({"protocolVersion": 1,
                "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false},
                "clientInfo": {"name": "cortex", "version": env!("CARGO_PKG_VERSION")}}),
            sink,
        )?;
        let loads = init["agentCapabilities"]["loadSession"] == json!(true);
        self.version = init["agentInfo"]["version"]
            .as_str()
            .map(|version| version.chars().filter(|c| !c.is_control()).take(64).collect());
        let cwd = workspace.display().to_string();
        let servers = match &self.config.gateway {
            Some(url) if init["agentCapabilities"]["mcpCapabilities"]["http"] == json!(true) => {
                json!([{"type": "http", "name": "cortex", "url": url, "headers": []}])
            }
            Some(_) => {
                sink.emit(EventKind::Warning {
                    message: "the agent takes no HTTP MCP servers, so it is not given Cortex's tools".into(),
                })?;
                json!([])
            }
            None => json!([]),
        };
        let session = match self.session.clone() {
            // The history the agent replays while loading is already in the store.
            Some(id) if loads => {
                match process.call("session/load", json!({"sessionId": id, "cwd": cwd, "mcpServers": servers}), sink) {
                    Ok(_) => id,
                    // The agent is still there and said why: the session
                    // goes on in a new conversation, and says so.
                    Err(Error::Agent(reason)) if process.is_alive() => {
                        sink.emit(EventKind::Warning {
                            message: format!(
                                "the agent could not load session {id} ({reason}): this turn starts a new conversation without the earlier turns"
                            ),
                        })?;
                        new_session(&mut process, &cwd, &servers, sink)?
                    }
                    Err(error) => return Err(error),
                }
            }
            Some(id) => {
                sink.emit(EventKind::Warning {
                    message: format!(
                        "the agent cannot load session {id} (it does not advertise loadSession): this turn starts a new conversation"
                    ),
                })?;
                new_session(&mut process, &cwd, &servers, sink)?
            }
            None => new_session(&mut process, &cwd, &servers, sink)?,
        };
        self.session = Some(session);
        self.process = Some(process);
        Ok(())
    }
}

fn new_session(process: &mut Process, cwd: &str, servers: &Value, sink: &mut dyn TurnSink) -> Result<String, Error> {
    let opened = process.call("session/new", json!({"cwd": cwd, "mcpServers": servers}), sink)?;
    opened["sessionId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Agent("the agent's session/new answer has no sessionId".into()))
}

impl Provider for AcpProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn resume_ref(&self) -> Option<String> {
        self.session.clone()
    }

    fn is_live(&self) -> bool {
        self.process.is_some()
    }

    fn agent_version(&self) -> Option<String> {
        self.version.clone()
    }

    fn run_turn(&mut self, request: TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<TurnEnd, Error> {
        let reused = self.process.as_mut().is_some_and(Process::is_alive);
        let (end, heard) = self.attempt(&request, sink)?;
        if reused && !heard && matches!(end, TurnEnd::Crashed(_)) {
            // The agent died between turns and its end raced this prompt,
            // which it never read: the turn goes to a new process that loads
            // the session.
            self.process = None;
            return Ok(self.attempt(&request, sink)?.0);
        }
        Ok(end)
    }
}

impl AcpProvider {
    /// One turn on the live agent (spawned, with the session loaded, when
    /// there is none); whether the agent said anything during it comes back
    /// with how it ended.
    fn attempt(&mut self, request: &TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<(TurnEnd, bool), Error> {
        self.process(request.workspace, sink)?;
        let session = self.session.clone().expect("holds because process() opened one");
        let mut process = self.process.take().expect("holds because process() spawned it");
        let prompt = json!({"sessionId": session, "prompt": [{"type": "text", "text": request.prompt}]});
        let Ok(id) = process.send_request("session/prompt", prompt) else {
            return Ok((TurnEnd::Crashed(process.agent.exit_reason("during the turn")), false));
        };
        let mut heard = false;
        let mut turn = Turn { workspace: request.workspace.to_path_buf(), ..Turn::default() };
        let mut cancelled: Option<Instant> = None;
        let end = loop {
            if request.cancel.load(Ordering::SeqCst) && cancelled.is_none() {
                process
                    .send(&json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}}))?;
                cancelled = Some(Instant::now());
            }
            if cancelled.is_some_and(|at| at.elapsed() > CANCEL_GRACE) {
                turn.finish(sink)?;
                super::kill_ladder(&mut process.agent.child);
                return Ok((TurnEnd::Interrupted, heard));
            }
            let line = match process.agent.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    turn.finish(sink)?;
                    return Ok((TurnEnd::Crashed(process.agent.exit_reason("during the turn")), heard));
                }
            };
            heard = true;
            sink.raw(&line)?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
            match (message.get("method").and_then(Value::as_str), message.get("id")) {
                (Some("session/update"), None) => turn.update(&message["params"]["update"], sink)?,
                (Some(method), Some(request_id)) => {
                    let answer = match answer_request(method, &message["params"], sink)? {
                        Ok(result) => json!({"jsonrpc": "2.0", "id": request_id, "result": result}),
                        Err(error) => json!({"jsonrpc": "2.0", "id": request_id, "error": error}),
                    };
                    process.send(&answer)?;
                }
                (None, Some(answered)) if *answered == json!(id) => {
                    if let Some(usage) = quota_usage(&message["result"]) {
                        sink.usage(usage)?;
                    }
                    if let Some(error) = message.get("error") {
                        break TurnEnd::Failed(
                            error["message"].as_str().unwrap_or("the agent failed the prompt").to_string(),
                        );
                    }
                    break match message["result"]["stopReason"].as_str() {
                        Some("end_turn") | None => TurnEnd::Completed,
                        // Cortex asked for it (the runner records the interrupt),
                        // or a denied approval made the agent stop.
                        Some("cancelled") => TurnEnd::Completed,
                        Some(other) => TurnEnd::Failed(format!("the agent stopped: {other}")),
                    };
                }
                _ => {}
            }
        };
        turn.finish(sink)?;
        self.process = Some(process);
        Ok((end, heard))
    }
}

/// A turn's tokens where the agent puts them in its prompt answer
/// (`_meta.quota.token_count`, Gemini CLI's extension), with its model.
fn quota_usage(result: &Value) -> Option<crate::provider::Usage> {
    let quota = result.get("_meta")?.get("quota")?;
    let count = quota.get("token_count")?;
    let number = |key: &str| count[key].as_u64().unwrap_or(0);
    let (input, output) = (number("input_tokens"), number("output_tokens"));
    let tokens = TokenUsage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        ..TokenUsage::default()
    };
    let model = quota["model_usage"][0]["model"].as_str().map(str::to_string);
    (input + output > 0).then_some(crate::provider::Usage { tokens, model, cost_usd: None })
}

/// The answer to the agent's request: a permission asked through Cortex,
/// anything else "method not found": the result, or the JSON-RPC error.
fn answer_request(method: &str, params: &Value, sink: &mut dyn TurnSink) -> Result<Result<Value, Value>, Error> {
    if method != "session/request_permission" {
        return Ok(Err(json!({"code": -32601, "message": format!("Cortex does not implement {method}")})));
    }
    let call = &params["toolCall"];
    let title = call["title"].as_str().unwrap_or("a tool call");
    let prompt = match call["kind"].as_str() {
        Some(kind) => format!("{kind}: {title}"),
        None => title.to_string(),
    };
    let wanted = match sink.approve(&prompt)? {
        ApprovalDecision::Approved => "allow_once",
        ApprovalDecision::Denied => "reject_once",
    };
    let options = params["options"].as_array().cloned().unwrap_or_default();
    let chosen = options.iter().find(|option| option["kind"] == wanted).and_then(|option| option["optionId"].as_str());
    let outcome = match chosen {
        Some(option) => json!({"outcome": {"outcome": "selected", "optionId": option}}),
        None => json!({"outcome": {"outcome": "cancelled"}}),
    };
    Ok(Ok(outcome))
}

/// A tool call not finished yet: its kind (`command` for a shell
/// command), the files its diffs touch, when it started.
type OpenTool = (String, Vec<(String, FileChange)>, Instant);

/// A turn's streamed text and open tool calls.
#[derive(Default)]
struct Turn {
    workspace: PathBuf,
    message: String,
    thought: String,
    /// Tool calls by id.
    tools: HashMap<String, OpenTool>,
    /// The ids of tool calls already ended (a late update opens nothing).
    closed: Vec<String>,
    warned: Vec<String>,
    /// Total tokens of the turn's model requests so far (`usage_update`).
    used: u64,
}

/// The shell command a tool call runs: `rawInput.command` (a word list,
/// `bash -lc CMD` giving its last word, or a string), else an `execute`
/// call's title (Gemini CLI titles it with the command).
fn command_of(update: &Value) -> Option<String> {
    match &update["rawInput"]["command"] {
        Value::Array(words) => words.last().and_then(Value::as_str).map(str::to_string),
        Value::String(command) => Some(command.clone()),
        _ if update["kind"] == "execute" => update["title"].as_str().map(str::to_string),
        _ => None,
    }
}

impl Turn {
    fn update(&mut self, update: &Value, sink: &mut dyn TurnSink) -> Result<(), Error> {
        let kind = update["sessionUpdate"].as_str().unwrap_or_default();
        match kind {
            "agent_message_chunk" => {
                self.flush_thought(sink)?;
                let text = update["content"]["text"].as_str().unwrap_or_default().to_string();
                self.message.push_str(&text);
                sink.emit(EventKind::AssistantDelta { item_id: "acp_message".into(), text })?;
            }
            "agent_thought_chunk" => self.thought.push_str(update["content"]["text"].as_str().unwrap_or_default()),
            "tool_call" => {
                self.flush(sink)?;
                self.open(update, sink)?;
            }
            "tool_call_update" => {
                let id = update["toolCallId"].as_str().unwrap_or_default().to_string();
                // Some agents (Gemini CLI after a permission) send no
                // `tool_call` first: the update opens the call.
                if !self.tools.contains_key(&id) && !self.closed.contains(&id) {
                    self.flush(sink)?;
                    return self.open(update, sink);
                }
                self.note_diffs(&id, update);
                if matches!(update["status"].as_str(), Some("completed" | "failed")) {
                    self.close(&id, update, sink)?;
                }
            }
            "plan" => {
                let entries: Vec<String> = update["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|entry| {
                        format!(
                            "[{}] {}",
                            entry["status"].as_str().unwrap_or("?"),
                            entry["content"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                sink.emit(EventKind::Reasoning { text: format!("Plan:\n{}", entries.join("\n")) })?;
            }
            // The last model request's total tokens (codex-acp sends no
            // split and no cost): the turn's use is their sum.
            "usage_update" => {
                self.used = self.used.saturating_add(update["used"].as_u64().unwrap_or(0));
                let tokens = crate::protocol::TokenUsage { total_tokens: self.used, ..Default::default() };
                sink.usage(crate::provider::Usage { tokens, model: None, cost_usd: None })?;
            }
            // Session bookkeeping with nothing to record.
            "available_commands_update"
            | "config_option_update"
            | "current_mode_update"
            | "user_message_chunk"
            | "session_info_update" => {}
            other => {
                if !self.warned.iter().any(|seen| seen == other) {
                    self.warned.push(other.to_string());
                    sink.emit(EventKind::Warning {
                        message: format!("the agent sent a `{other}` update Cortex does not map (kept under raw/)"),
                    })?;
                }
            }
        }
        Ok(())
    }

    fn note_diffs(&mut self, id: &str, update: &Value) {
        let Some((_, paths, _)) = self.tools.get_mut(id) else { return };
        for content in update["content"].as_array().into_iter().flatten().filter(|content| content["type"] == "diff") {
            let path = content["path"].as_str().unwrap_or_default();
            let change = match (content["oldText"].as_str(), content["newText"].as_str()) {
                (None, _) => FileChange::Added,
                (Some(_), Some("")) => FileChange::Deleted,
                _ => FileChange::Modified,
            };
            let Some(relative) = super::workspace_path(&self.workspace, path) else { continue };
            if !paths.iter().any(|(seen, _)| *seen == relative) {
                paths.push((relative, change));
            }
        }
    }

    /// A tool call's end: a command's output and exit code, a file's change.
    /// A tool call begins: a shell command is a command event, the rest
    /// wait for their diffs.
    fn open(&mut self, update: &Value, sink: &mut dyn TurnSink) -> Result<(), Error> {
        let id = update["toolCallId"].as_str().unwrap_or_default().to_string();
        let tool_kind = update["kind"].as_str().unwrap_or_default().to_string();
        match command_of(update).filter(|_| matches!(tool_kind.as_str(), "execute" | "search" | "read")) {
            Some(command) => {
                sink.emit(EventKind::CommandStarted { command_id: id.clone(), command })?;
                self.tools.insert(id.clone(), ("command".into(), Vec::new(), Instant::now()));
            }
            None => {
                self.tools.insert(id.clone(), (tool_kind, Vec::new(), Instant::now()));
            }
        }
        self.note_diffs(&id, update);
        if matches!(update["status"].as_str(), Some("completed" | "failed")) {
            self.close(&id, update, sink)?;
        }
        Ok(())
    }

    fn close(&mut self, id: &str, update: &Value, sink: &mut dyn TurnSink) -> Result<(), Error> {
        let Some((kind, paths, started)) = self.tools.remove(id) else { return Ok(()) };
        self.closed.push(id.to_string());
        let failed = update["status"] == "failed";
        if kind == "command" {
            let output = &update["rawOutput"];
            for (stream, key) in [(OutputStream::Stdout, "stdout"), (OutputStream::Stderr, "stderr")] {
                let text = output[key].as_str().unwrap_or_default();
                if !text.is_empty() {
                    sink.emit(EventKind::CommandOutput { command_id: id.to_string(), stream, text: text.to_string() })?;
                }
            }
            let exit_code = output["exit_code"].as_i64().map(|code| code as i32).or(Some(if failed { 1 } else { 0 }));
            let duration_ms = started.elapsed().as_millis() as u64;
            sink.emit(EventKind::CommandFinished { command_id: id.to_string(), exit_code, duration_ms })?;
        } else if !failed {
            for (path, change) in paths {
                sink.emit(EventKind::FileChanged { path, change })?;
            }
        }
        Ok(())
    }

    fn flush_thought(&mut self, sink: &mut dyn TurnSink) -> Result<(), Error> {
        if !self.thought.is_empty() {
            sink.emit(EventKind::Reasoning { text: std::mem::take(&mut self.thought) })?;
        }
        Ok(())
    }

    fn flush(&mut self, sink: &mut dyn TurnSink) -> Result<(), Error> {
        self.flush_thought(sink)?;
        if !self.message.is_empty() {
            sink.emit(EventKind::AssistantMessage { text: std::mem::take(&mut self.message) })?;
        }
        Ok(())
    }

    /// The turn's end: text still open is recorded; a command left running
    /// (a denial ended the turn) ends without an exit code.
    fn finish(&mut self, sink: &mut dyn TurnSink) -> Result<(), Error> {
        self.flush(sink)?;
        let open: Vec<_> = self.tools.drain().filter(|(_, (kind, _, _))| kind == "command").collect();
        for (id, (_, _, started)) in open {
            let duration_ms = started.elapsed().as_millis() as u64;
            sink.emit(EventKind::CommandFinished { command_id: id, exit_code: None, duration_ms })?;
        }
        Ok(())
    }
}

/// The live agent process, and the id of its next request.
struct Process {
    agent: AgentProcess,
    next_id: u64,
}

impl Process {
    fn spawn(config: &AgentConfig, workspace: &Path, log: &Path) -> Result<Process, Error> {
        let Some((program, args)) = config.command.split_first() else {
            return Err(Error::Agent("the agent has no command: set `command` in its [agents.NAME] table".into()));
        };
        let mut command = Command::new(program);
        command.args(args).current_dir(workspace).envs(&config.env);
        let install = "install it, or set its command in [agents.NAME]";
        Ok(Process { agent: AgentProcess::spawn(command, log, "the agent", install)?, next_id: 0 })
    }

    fn is_alive(&mut self) -> bool {
        self.agent.is_alive()
    }

    fn send(&mut self, message: &Value) -> Result<(), Error> {
        self.agent.send(message)
    }

    fn send_request(&mut self, method: &str, params: Value) -> Result<u64, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        Ok(id)
    }

    /// A request and its result; what arrives meanwhile (a replayed
    /// history, the agent's own requests) is kept raw and answered.
    fn call(&mut self, method: &str, params: Value, sink: &mut dyn TurnSink) -> Result<Value, Error> {
        let id = self.send_request(method, params)?;
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            let line = match self.agent.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(Error::Agent(format!("the agent did not answer `{method}`")));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Agent(self.agent.exit_reason(&format!("while answering `{method}`"))));
                }
            };
            sink.raw(&line)?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
            if message.get("method").is_none() && message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    let mut reason = error["message"].as_str().unwrap_or("unknown error").to_string();
                    if let Some(details) = error["data"]["details"].as_str() {
                        reason = format!("{reason}: {details}");
                    }
                    return Err(Error::Agent(format!("the agent refused `{method}`: {reason}")));
                }
                return Ok(message["result"].clone());
            }
            if let (Some(other), Some(request_id)) = (message["method"].as_str(), message.get("id")) {
                let error = json!({"code": -32601, "message": format!("Cortex does not implement {other} here")});
                self.send(&json!({"jsonrpc": "2.0", "id": request_id, "error": error}))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what a turn emits; answers every approval with `answer`.
    struct Recorder {
        events: Vec<EventKind>,
        answer: ApprovalDecision,
        asked: Vec<String>,
    }

    impl TurnSink for Recorder {
        fn emit(&mut self, kind: EventKind) -> Result<u64, Error> {
            self.events.push(kind);
            Ok(self.events.len() as u64)
        }
        fn approve(&mut self, prompt: &str) -> Result<ApprovalDecision, Error> {
            self.asked.push(prompt.to_string());
            Ok(self.answer)
        }
        fn raw(&mut self, _line: &str) -> Result<(), Error> {
            Ok(())
        }
        fn usage(&mut self, _usage: crate::provider::Usage) -> Result<(), Error> {
            Ok(())
        }
    }

    fn recorder() -> Recorder {
        Recorder { events: Vec::new(), answer: ApprovalDecision::Denied, asked: Vec::new() }
    }

    fn run(updates: &[Value]) -> Vec<EventKind> {
        let mut turn = Turn { workspace: PathBuf::from("/ws"), ..Turn::default() };
        let mut sink = recorder();
        for update in updates {
            turn.update(update, &mut sink).unwrap();
        }
        turn.finish(&mut sink).unwrap();
        sink.events
    }

    #[test]
    fn chunks_stream_and_end_as_one_message_after_the_thought() {
        let events = run(&[
            json!({"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "think"}}),
            json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "hel"}}),
            json!({"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "lo"}}),
        ]);
        assert_eq!(
            events,
            [
                EventKind::Reasoning { text: "think".into() },
                EventKind::AssistantDelta { item_id: "acp_message".into(), text: "hel".into() },
                EventKind::AssistantDelta { item_id: "acp_message".into(), text: "lo".into() },
                EventKind::AssistantMessage { text: "hello".into() },
            ]
        );
    }

    #[test]
    fn a_shell_tool_call_is_a_command_with_its_output_and_exit_code() {
        let events = run(&[
            json!({"sessionUpdate": "tool_call", "toolCallId": "t1", "kind": "execute", "status": "pending",
                   "rawInput": {"command": ["bash", "-lc", "echo hi"]}}),
            json!({"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed",
                   "rawOutput": {"stdout": "hi\n", "stderr": "", "exit_code": 3}}),
            // A late update of a closed call opens nothing.
            json!({"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed"}),
        ]);
        assert_eq!(events[0], EventKind::CommandStarted { command_id: "t1".into(), command: "echo hi".into() });
        assert_eq!(
            events[1],
            EventKind::CommandOutput { command_id: "t1".into(), stream: OutputStream::Stdout, text: "hi\n".into() }
        );
        assert!(matches!(&events[2], EventKind::CommandFinished { exit_code: Some(3), .. }), "{events:?}");
        assert_eq!(events.len(), 3, "{events:?}");
    }

    #[test]
    fn diffs_inside_the_workspace_become_file_changes_when_the_call_completes() {
        let edit = |id: &str, status: &str| {
            json!({"sessionUpdate": "tool_call", "toolCallId": id, "kind": "edit", "status": status,
                   "content": [{"type": "diff", "path": "/ws/src/new.rs", "oldText": null, "newText": "x"},
                               {"type": "diff", "path": "/ws/old.txt", "oldText": "a", "newText": ""}]})
        };
        let outside = json!({"sessionUpdate": "tool_call", "toolCallId": "e3", "kind": "edit", "status": "completed",
               "content": [{"type": "diff", "path": "/etc/passwd", "oldText": "a", "newText": "b"},
                           {"type": "diff", "path": "/ws/../etc/shadow", "oldText": "a", "newText": "b"},
                           {"type": "diff", "path": "../up.txt", "oldText": null, "newText": "b"}]});
        let events = run(&[edit("e1", "completed"), edit("e2", "failed"), outside]);
        assert_eq!(
            events,
            [
                EventKind::FileChanged { path: "src/new.rs".into(), change: FileChange::Added },
                EventKind::FileChanged { path: "old.txt".into(), change: FileChange::Deleted },
            ]
        );
    }

    #[test]
    fn plans_are_shown_bookkeeping_is_quiet_and_an_unknown_kind_warns_once() {
        let events = run(&[
            json!({"sessionUpdate": "plan", "entries": [{"content": "read", "status": "completed"},
                                                        {"content": "write", "status": "pending"}]}),
            json!({"sessionUpdate": "current_mode_update", "currentModeId": "code"}),
            json!({"sessionUpdate": "usage_update", "used": 10, "size": 100}),
            json!({"sessionUpdate": "from_the_future"}),
            json!({"sessionUpdate": "from_the_future"}),
        ]);
        assert_eq!(events[0], EventKind::Reasoning { text: "Plan:\n[completed] read\n[pending] write".into() });
        let warnings: Vec<_> = events.iter().filter(|event| matches!(event, EventKind::Warning { .. })).collect();
        assert_eq!(warnings.len(), 1, "{events:?}");
        assert_eq!(events.len(), 2, "{events:?}");
    }

    #[test]
    fn a_permission_picks_the_option_by_kind_and_other_requests_are_refused() {
        let params = json!({"toolCall": {"kind": "execute", "title": "touch x"}, "options": [
            {"optionId": "yes", "kind": "allow_once"}, {"optionId": "no", "kind": "reject_once"}]});
        let mut sink = recorder();
        let denied = answer_request("session/request_permission", &params, &mut sink).unwrap().unwrap();
        assert_eq!(denied, json!({"outcome": {"outcome": "selected", "optionId": "no"}}));
        assert_eq!(sink.asked, ["execute: touch x"]);
        sink.answer = ApprovalDecision::Approved;
        let allowed = answer_request("session/request_permission", &params, &mut sink).unwrap().unwrap();
        assert_eq!(allowed["outcome"]["optionId"], "yes");
        // No option of the wanted kind: cancelled, never another option.
        let only_allow = json!({"toolCall": {"title": "x"}, "options": [{"optionId": "yes", "kind": "allow_always"}]});
        sink.answer = ApprovalDecision::Denied;
        let cancelled = answer_request("session/request_permission", &only_allow, &mut sink).unwrap().unwrap();
        assert_eq!(cancelled, json!({"outcome": {"outcome": "cancelled"}}));
        let refused = answer_request("fs/write_text_file", &json!({"path": "/etc/passwd"}), &mut sink).unwrap();
        assert_eq!(refused.unwrap_err()["code"], -32601);
    }
}
