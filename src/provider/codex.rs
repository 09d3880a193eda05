//! `codex`: the persistent runtime. One live `codex app-server` child per
//! session, spoken to over stdio as JSON-RPC lines; the thread id is the
//! session's resume reference, so a new child continues with `thread/resume`
//! after a crash, a restart or expiry. Codex's items become normalized
//! events, its approval requests Cortex approvals, and `turn/interrupt` ends
//! a turn (with a signal ladder when codex does not answer).
//! Facts: shared/reference/codex-app-server.md.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Error, Provider, TurnEnd, TurnRequest, TurnSink, Usage};
use crate::protocol::{ApprovalDecision, EventKind, FileChange, OutputStream, TokenUsage};

pub use crate::protocol::CODEX_VERSION as SUPPORTED_VERSION;
/// How long codex has to end a turn after `turn/interrupt`.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);
/// How long a request (initialize, thread/start, …) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `[codex]` in `.cortex/config.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodexConfig {
    /// The codex executable (default: `$CORTEX_CODEX_BIN`, else `codex` on the PATH).
    pub binary: Option<String>,
    /// `CODEX_HOME` for the child (default: inherited, so your codex login works).
    pub home: Option<String>,
    pub model: Option<String>,
    /// `untrusted`, `on-request` (default) or `never`.
    pub approval_policy: Option<String>,
    /// `read-only`, `workspace-write` (default) or `danger-full-access`.
    pub sandbox: Option<String>,
    /// Extra `-c key=value` overrides, passed as they are.
    #[serde(default)]
    pub config: Vec<String>,
    /// Extra environment for the child (a provider's API key variable, say).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl CodexConfig {
    pub(crate) fn binary(&self) -> PathBuf {
        self.binary
            .clone()
            .or_else(|| std::env::var("CORTEX_CODEX_BIN").ok())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("codex"))
    }

    fn approval_policy(&self) -> &str {
        self.approval_policy.as_deref().unwrap_or("on-request")
    }

    pub(crate) fn sandbox(&self) -> &str {
        self.sandbox.as_deref().unwrap_or("workspace-write")
    }
}

pub struct CodexProvider {
    config: CodexConfig,
    thread: Option<String>,
    /// The model the thread runs on, as codex answered (else as configured).
    model: Option<String>,
    server: Option<AppServer>,
    /// Where the child's stderr goes.
    log: PathBuf,
}

impl CodexProvider {
    /// A provider for a session; `thread` continues an existing thread.
    pub fn new(config: CodexConfig, thread: Option<String>, log: PathBuf) -> CodexProvider {
        CodexProvider { config, thread, model: None, server: None, log }
    }

    /// The live child, spawned and on the session's thread.
    fn server(&mut self, workspace: &Path) -> Result<&mut AppServer, Error> {
        if self.server.as_mut().is_some_and(|server| server.is_alive()) {
            return Ok(self.server.as_mut().expect("holds because it was just checked"));
        }
        let mut server = AppServer::spawn(&self.config, &self.log)?;
        server.request(
            "initialize",
            json!({
                "clientInfo": {"name": "cortex", "title": "Cortex", "version": env!("CARGO_PKG_VERSION")},
                "capabilities": {"experimentalApi": false}
            }),
        )?;
        server.notify("initialized", Value::Null)?;
        let mut params = json!({
            "cwd": workspace.to_string_lossy(),
            "approvalPolicy": self.config.approval_policy(),
            "sandbox": self.config.sandbox(),
        });
        if let Some(model) = &self.config.model {
            params["model"] = json!(model);
        }
        // Settings are passed again on resume: codex does not reliably keep them.
        let result = match &self.thread {
            Some(thread) => {
                params["threadId"] = json!(thread);
                params["excludeTurns"] = json!(true);
                server.request("thread/resume", params)?
            }
            None => server.request("thread/start", params)?,
        };
        let thread =
            result["thread"]["id"].as_str().ok_or_else(|| Error::Codex(format!("no thread id in {result}")))?;
        if self.thread.as_deref().is_some_and(|known| known != thread) {
            return Err(Error::Codex(format!(
                "codex resumed thread {thread}, not {}",
                self.thread.as_deref().unwrap_or("")
            )));
        }
        self.thread = Some(thread.to_string());
        self.model = result["model"].as_str().map(str::to_string).or_else(|| self.config.model.clone());
        Ok(self.server.insert(server))
    }
}

impl CodexProvider {
    /// Sends `turn/start` on the live child (spawned if need be).
    fn start_turn(&mut self, workspace: &Path, prompt: &str, sink: &mut dyn TurnSink) -> Result<Value, Error> {
        self.server(workspace)?;
        let thread = self.thread.clone().expect("holds because server() set it");
        let server = self.server.as_mut().expect("holds because server() spawned it");
        server.request_logged(
            "turn/start",
            json!({"threadId": thread, "input": [{"type": "text", "text": prompt, "text_elements": []}]}),
            sink,
        )
    }
}

impl Provider for CodexProvider {
    fn name(&self) -> &str {
        "codex"
    }

    fn resume_ref(&self) -> Option<String> {
        self.thread.clone()
    }

    fn is_live(&self) -> bool {
        self.server.is_some()
    }

    fn run_turn(&mut self, request: TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<TurnEnd, Error> {
        let workspace = request.workspace.to_path_buf();
        let reused = self.server.as_mut().is_some_and(AppServer::is_alive);
        let result = match self.start_turn(&workspace, request.prompt, sink) {
            // The live process died between turns (killed, or crashed as the
            // turn began): a new one resumes the thread, once.
            Err(error) if reused && self.server.as_mut().is_none_or(AppServer::is_dead_soon) => {
                tracing::warn!(%error, "codex's live process was gone; a new one resumes the thread");
                if let Some(mut server) = self.server.take() {
                    server.kill_ladder();
                }
                self.start_turn(&workspace, request.prompt, sink)?
            }
            started => started?,
        };
        let thread = self.thread.clone().expect("holds because server() set it");
        let server = self.server.as_mut().expect("holds because server() spawned it");
        let turn = result["turn"]["id"].as_str().unwrap_or_default().to_string();
        let mut turn_state = TurnState { workspace, ..TurnState::default() };
        let mut interrupt_sent: Option<Instant> = None;
        let mut turn_usage = TokenUsage::default();
        loop {
            let steered: Vec<String> =
                std::mem::take(&mut *request.steer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            for text in steered {
                let input = json!([{"type": "text", "text": text, "text_elements": []}]);
                server.notify_request(
                    "turn/steer",
                    json!({"threadId": thread, "expectedTurnId": turn, "input": input}),
                )?;
                sink.emit(EventKind::UserMessage { text })?;
            }
            if request.cancel.load(Ordering::SeqCst) && interrupt_sent.is_none() {
                server.notify_request("turn/interrupt", json!({"threadId": thread, "turnId": turn}))?;
                interrupt_sent = Some(Instant::now());
            }
            if let Some(sent) = interrupt_sent
                && sent.elapsed() > INTERRUPT_GRACE
            {
                // Codex did not end the turn: signals, then the next turn
                // starts a new child and resumes the thread.
                let mut server = self.server.take().expect("holds because it is running");
                server.kill_ladder();
                turn_state.close_open_items(sink)?;
                return Ok(TurnEnd::Interrupted);
            }
            let line = match server.next_line(Duration::from_millis(50)) {
                Next::Line(line) => line,
                Next::Timeout => continue,
                Next::Closed => {
                    self.server = None;
                    turn_state.close_open_items(sink)?;
                    return Ok(TurnEnd::Crashed("the codex process exited during the turn".into()));
                }
            };
            sink.raw(&line)?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
            let method = message["method"].as_str().unwrap_or_default().to_string();
            if method.is_empty() {
                continue; // a response to a request already answered
            }
            if message.get("id").is_some() {
                let reply = match answer_request(&method, &message["params"], &turn_state, sink)? {
                    Ok(result) => json!({"id": message["id"], "result": result}),
                    Err(error) => json!({"id": message["id"], "error": error}),
                };
                server.send(&reply)?;
                continue;
            }
            // One per model request: the turn's use is the sum of `last` over
            // its requests (`total` also counts earlier processes).
            if method == "thread/tokenUsage/updated" && message["params"]["turnId"] == turn.as_str() {
                let last = &message["params"]["tokenUsage"]["last"];
                let number = |key: &str| last[key].as_u64().unwrap_or(0);
                turn_usage = turn_usage.plus(TokenUsage {
                    input_tokens: number("inputTokens"),
                    cached_input_tokens: number("cachedInputTokens"),
                    output_tokens: number("outputTokens"),
                    reasoning_output_tokens: number("reasoningOutputTokens"),
                    total_tokens: number("totalTokens"),
                });
                sink.usage(Usage { tokens: turn_usage, model: self.model.clone(), cost_usd: None })?;
            }
            if let Some(end) = turn_state.notification(&method, &message["params"], sink)? {
                turn_state.close_open_items(sink)?;
                return Ok(match end {
                    TurnEnd::Interrupted if interrupt_sent.is_some() => TurnEnd::Completed,
                    other => other,
                });
            }
        }
    }
}

/// The answer to a server request: a result, or a JSON-RPC error. Every
/// request gets one, so codex never waits on Cortex.
fn answer_request(
    method: &str,
    params: &Value,
    turn: &TurnState,
    sink: &mut dyn TurnSink,
) -> Result<Result<Value, Value>, Error> {
    let prompt = match method {
        "item/commandExecution/requestApproval" => {
            let command = params["command"].as_str().unwrap_or("a command");
            let reason = params["reason"].as_str().map(|reason| format!(" ({reason})")).unwrap_or_default();
            format!("run `{command}`{reason}")
        }
        "item/fileChange/requestApproval" => {
            let item = params["itemId"].as_str().unwrap_or_default();
            let paths = turn.file_changes.get(item).cloned().unwrap_or_default();
            format!("change files: {}", if paths.is_empty() { "(unknown)".to_string() } else { paths.join(", ") })
        }
        other => {
            return Ok(Err(json!({"code": -32601, "message": format!("Cortex does not handle `{other}`")})));
        }
    };
    let decision = match sink.approve(&prompt)? {
        ApprovalDecision::Approved => "accept",
        ApprovalDecision::Denied => "decline",
    };
    Ok(Ok(json!({"decision": decision})))
}

/// What a turn has seen so far, to map items and close them at the end.
#[derive(Default)]
struct TurnState {
    workspace: PathBuf,
    /// Command items started and not completed, with whether output streamed.
    open_commands: HashMap<String, bool>,
    /// Paths of each file-change item, for approval prompts.
    file_changes: HashMap<String, Vec<String>>,
}

impl TurnState {
    /// A path for an approval prompt: relative inside the workspace, whole
    /// outside it, so a person sees where a change would land.
    fn shown(&self, path: &str) -> String {
        super::workspace_path(&self.workspace, path).unwrap_or_else(|| path.to_string())
    }

    /// Maps one notification; `Some` when it ends the turn.
    // Long: one match arm per app-server notification, a table.
    fn notification(
        &mut self,
        method: &str,
        params: &Value,
        sink: &mut dyn TurnSink,
    ) -> Result<Option<TurnEnd>, Error> {
        let item = &params["item"];
        let id = item["id"].as_str().unwrap_or_default().to_string();
        match (method, item["type"].as_str().unwrap_or_default()) {
            ("item/started", "commandExecution") => {
                self.open_commands.insert(id.clone(), false);
                let command = item["command"].as_str().unwrap_or_default().to_string();
                sink.emit(EventKind::CommandStarted { command_id: id, command })?;
            }
            ("item/started", "fileChange") => {
                let paths = item["changes"].as_array().into_iter().flatten();
                let paths = paths.filter_map(|change| change["path"].as_str()).map(|path| self.shown(path)).collect();
                self.file_changes.insert(id, paths);
            }
            ("item/agentMessage/delta", _) => {
                let item_id = params["itemId"].as_str().unwrap_or_default().to_string();
                let text = params["delta"].as_str().unwrap_or_default().to_string();
                sink.emit(EventKind::AssistantDelta { item_id, text })?;
            }
            ("item/commandExecution/outputDelta", _) => {
                let command_id = params["itemId"].as_str().unwrap_or_default().to_string();
                if let Some(streamed) = self.open_commands.get_mut(&command_id) {
                    *streamed = true;
                }
                let text = params["delta"].as_str().unwrap_or_default().to_string();
                sink.emit(EventKind::CommandOutput { command_id, stream: OutputStream::Stdout, text })?;
            }
            ("item/completed", "agentMessage") => {
                let text = item["text"].as_str().unwrap_or_default().to_string();
                sink.emit(EventKind::AssistantMessage { text })?;
            }
            ("item/completed", "reasoning") => {
                let parts =
                    ["summary", "content"].iter().flat_map(|key| item[*key].as_array().cloned().unwrap_or_default());
                let text: Vec<String> = parts
                    .filter_map(|part| {
                        part.as_str().map(str::to_string).or_else(|| part["text"].as_str().map(str::to_string))
                    })
                    .collect();
                if !text.is_empty() {
                    sink.emit(EventKind::Reasoning { text: text.join("\n") })?;
                }
            }
            ("item/completed", "commandExecution") => {
                let streamed = self.open_commands.remove(&id).unwrap_or(false);
                let output = item["aggregatedOutput"].as_str().unwrap_or_default();
                if !streamed && !output.is_empty() {
                    sink.emit(EventKind::CommandOutput {
                        command_id: id.clone(),
                        stream: OutputStream::Stdout,
                        text: output.to_string(),
                    })?;
                }
                if item["status"] == "declined" {
                    sink.emit(EventKind::Warning {
                        message: format!("command `{}` was declined", item["command"].as_str().unwrap_or_default()),
                    })?;
                }
                let exit_code = item["exitCode"].as_i64().map(|code| code as i32);
                let duration_ms = item["durationMs"].as_u64().unwrap_or(0);
                sink.emit(EventKind::CommandFinished { command_id: id, exit_code, duration_ms })?;
            }
            ("item/completed", "fileChange") => {
                if item["status"] == "completed" {
                    for change in item["changes"].as_array().into_iter().flatten() {
                        let change_kind = match change["kind"]["type"].as_str() {
                            Some("add") => FileChange::Added,
                            Some("delete") => FileChange::Deleted,
                            _ => FileChange::Modified,
                        };
                        if let Some(path) =
                            super::workspace_path(&self.workspace, change["path"].as_str().unwrap_or_default())
                        {
                            sink.emit(EventKind::FileChanged { path, change: change_kind })?;
                        }
                    }
                } else {
                    sink.emit(EventKind::Warning {
                        message: format!("file change {id} was {}", item["status"].as_str().unwrap_or("not applied")),
                    })?;
                }
            }
            ("item/completed", kind @ ("mcpToolCall" | "webSearch" | "dynamicToolCall")) => {
                sink.emit(EventKind::Warning {
                    message: format!("codex used a {kind} item; Cortex records it in raw/ only"),
                })?;
            }
            ("error", _) => {
                let message = params["error"]["message"].as_str().unwrap_or("codex reported an error").to_string();
                if params["willRetry"] == true {
                    sink.emit(EventKind::Warning { message })?;
                }
            }
            ("turn/completed", _) => {
                let turn = &params["turn"];
                return Ok(Some(match turn["status"].as_str() {
                    Some("completed") => TurnEnd::Completed,
                    Some("interrupted") => TurnEnd::Interrupted,
                    _ => TurnEnd::Failed(
                        turn["error"]["message"].as_str().unwrap_or("the codex turn failed").to_string(),
                    ),
                }));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Items codex left open when the turn ended get their end from Cortex.
    fn close_open_items(&mut self, sink: &mut dyn TurnSink) -> Result<(), Error> {
        for (command_id, _) in self.open_commands.drain() {
            sink.emit(EventKind::CommandFinished { command_id, exit_code: None, duration_ms: 0 })?;
        }
        Ok(())
    }
}

/// A `codex app-server` child speaking JSON-RPC lines over stdio.
struct AppServer {
    child: Child,
    /// `None` once closed, which tells codex to exit.
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

enum Next {
    Line(String),
    Timeout,
    Closed,
}

impl AppServer {
    fn spawn(config: &CodexConfig, log: &Path) -> Result<AppServer, Error> {
        use std::os::unix::process::CommandExt;
        let binary = config.binary();
        if let Some(parent) = log.parent() {
            let _ = fs_err::create_dir_all(parent);
        }
        let stderr = fs_err::File::create(log)
            .map_err(|source| Error::Io { context: "cannot create the codex log".into(), source })?;
        let mut command = Command::new(&binary);
        command.arg("app-server");
        for setting in &config.config {
            command.args(["-c", setting]);
        }
        command
            .args(["--disable", "unbounded_connection_retries", "--disable", "plugins"])
            .envs(&config.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.into_parts().0))
            .process_group(0);
        if let Some(home) = &config.home {
            let _ = fs_err::create_dir_all(home);
            command.env("CODEX_HOME", home);
        }
        let mut child = command.spawn().map_err(|source| Error::Io {
            context: format!(
                "cannot start `{} app-server` (install codex {SUPPORTED_VERSION}, or set [codex] binary)",
                binary.display()
            ),
            source,
        })?;
        let stdin = child.stdin.take().expect("holds because stdin is piped");
        let lines = super::line_reader(child.stdout.take().expect("holds because stdout is piped"));
        Ok(AppServer { child, stdin: Some(stdin), lines, next_id: 0 })
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether it has exited, or does within a second (its output closed).
    fn is_dead_soon(&mut self) -> bool {
        let until = Instant::now() + Duration::from_secs(1);
        while self.is_alive() {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn send(&mut self, message: &Value) -> Result<(), Error> {
        let mut line = serde_json::to_string(message).expect("holds because messages are JSON");
        line.push('\n');
        let stdin = self.stdin.as_mut().ok_or_else(|| Error::Codex("codex's input is closed".into()))?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|source| Error::Io { context: "cannot write to codex".into(), source })
    }

    fn notify(&mut self, method: &str, params: Value) -> Result<(), Error> {
        let message =
            if params.is_null() { json!({"method": method}) } else { json!({"method": method, "params": params}) };
        self.send(&message)
    }

    /// Sends a request whose answer is not awaited (the loop sees it pass).
    fn notify_request(&mut self, method: &str, params: Value) -> Result<(), Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "id": id, "params": params}))
    }

    fn next_line(&mut self, timeout: Duration) -> Next {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Next::Line(line),
            Err(mpsc::RecvTimeoutError::Timeout) => Next::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    /// A request and its result; anything else that arrives meanwhile is
    /// answered (server requests) or dropped (notifications before a turn).
    fn request(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        self.exchange(method, params, &mut |_| Ok(()))
    }

    /// Like [`Self::request`], keeping every line in the session's raw log.
    fn request_logged(&mut self, method: &str, params: Value, sink: &mut dyn TurnSink) -> Result<Value, Error> {
        self.exchange(method, params, &mut |line| sink.raw(line))
    }

    fn exchange(
        &mut self,
        method: &str,
        params: Value,
        keep: &mut dyn FnMut(&str) -> Result<(), Error>,
    ) -> Result<Value, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "id": id, "params": params}))?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let line = match self.next_line(Duration::from_millis(100)) {
                Next::Line(line) => line,
                Next::Timeout if Instant::now() < deadline => continue,
                Next::Timeout => return Err(Error::Codex(format!("no answer to `{method}`"))),
                Next::Closed => return Err(Error::Codex(format!("codex exited while answering `{method}`"))),
            };
            keep(&line)?;
            let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
            if message.get("method").is_none() && message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    return Err(Error::Codex(format!(
                        "`{method}` failed: {}",
                        error["message"].as_str().unwrap_or("unknown error")
                    )));
                }
                return Ok(message["result"].clone());
            }
            if message.get("method").is_some() && message.get("id").is_some() {
                let reply =
                    json!({"id": message["id"], "error": {"code": -32601, "message": "Cortex is not in a turn"}});
                self.send(&reply)?;
            }
        }
    }

    fn kill_ladder(&mut self) {
        super::kill_ladder(&mut self.child);
    }
}

impl Drop for AppServer {
    /// Closing stdin ends codex within about 60 ms, even mid-turn; after
    /// half a second it is killed.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if !self.is_alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
