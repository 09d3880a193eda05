//! `codex-exec`: the same mapping over `codex exec --json`, one process per
//! turn (`codex exec resume <thread>` after the first), for places where no
//! long-lived child is wanted (CI). Exec mode has no interactive approvals
//! and no steering: codex runs with approval policy `never`.
//! Facts: shared/reference/codex.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::codex::CodexConfig;
use super::{Error, Provider, TurnEnd, TurnRequest, TurnSink};
use crate::protocol::{EventKind, FileChange, OutputStream, TokenUsage};

pub struct CodexExecProvider {
    config: CodexConfig,
    thread: Option<String>,
    /// The thread's use before this turn (`codex exec` reports a running
    /// total over the thread).
    before: TokenUsage,
    log: PathBuf,
}

impl CodexExecProvider {
    pub fn new(config: CodexConfig, thread: Option<String>, before: TokenUsage, log: PathBuf) -> CodexExecProvider {
        CodexExecProvider { config, thread, before, log }
    }

    fn command(&self, workspace: &Path, prompt: &str) -> Result<Command, Error> {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(self.config.binary());
        command.args(["exec", "--json", "-C"]).arg(workspace).args(["--sandbox", self.config.sandbox()]);
        if let Some(model) = &self.config.model {
            command.args(["-m", model]);
        }
        for setting in &self.config.config {
            command.args(["-c", setting]);
        }
        command.args(["--disable", "plugins"]);
        if let Some(thread) = &self.thread {
            command.args(["resume", thread]);
        }
        command.arg("--").arg(prompt);
        if let Some(parent) = self.log.parent() {
            let _ = fs_err::create_dir_all(parent);
        }
        let stderr = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| Error::Io { context: "cannot open the codex log".into(), source })?;
        command
            .envs(&self.config.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.into_parts().0))
            .process_group(0);
        if let Some(home) = &self.config.home {
            let _ = fs_err::create_dir_all(home);
            command.env("CODEX_HOME", home);
        }
        Ok(command)
    }
}

impl Provider for CodexExecProvider {
    fn name(&self) -> &str {
        "codex-exec"
    }

    fn resume_ref(&self) -> Option<String> {
        self.thread.clone()
    }

    // Long: one arm per `codex exec --json` item kind, a table, inside the read loop.
    fn run_turn(&mut self, request: TurnRequest<'_>, sink: &mut dyn TurnSink) -> Result<TurnEnd, Error> {
        let mut child = self.command(request.workspace, request.prompt)?.spawn().map_err(|source| Error::Io {
            context: format!("cannot start `{} exec`", self.config.binary().display()),
            source,
        })?;
        let lines = super::line_reader(child.stdout.take().expect("holds because stdout is piped"));
        let workspace = request.workspace.to_path_buf();
        let relative = |path: &str| {
            Path::new(path)
                .strip_prefix(&workspace)
                .map(|path| path.display().to_string())
                .unwrap_or_else(|_| path.to_string())
        };
        let prefix = format!("t{}-", request.turn);
        let mut end = None;
        loop {
            if request.cancel.load(Ordering::SeqCst) {
                super::kill_ladder(&mut child);
                return Ok(TurnEnd::Interrupted);
            }
            let line = match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            sink.raw(&line)?;
            let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
            let item = &event["item"];
            let id = format!("{prefix}{}", item["id"].as_str().unwrap_or_default());
            match (event["type"].as_str().unwrap_or_default(), item["type"].as_str().unwrap_or_default()) {
                ("thread.started", _) => {
                    let thread = event["thread_id"].as_str().unwrap_or_default().to_string();
                    if let Some(known) = &self.thread
                        && *known != thread
                    {
                        super::kill_ladder(&mut child);
                        return Err(Error::Codex(format!(
                            "`codex exec resume {known}` answered with thread {thread}; refusing it"
                        )));
                    }
                    self.thread = Some(thread);
                }
                ("item.started", "command_execution") => {
                    let command = item["command"].as_str().unwrap_or_default().to_string();
                    sink.emit(EventKind::CommandStarted { command_id: id, command })?;
                }
                ("item.completed", "agent_message") => {
                    sink.emit(EventKind::AssistantMessage {
                        text: item["text"].as_str().unwrap_or_default().to_string(),
                    })?;
                }
                ("item.completed", "reasoning") => {
                    sink.emit(EventKind::Reasoning { text: item["text"].as_str().unwrap_or_default().to_string() })?;
                }
                ("item.completed", "command_execution") => {
                    let output = item["aggregated_output"].as_str().unwrap_or_default();
                    if !output.is_empty() {
                        sink.emit(EventKind::CommandOutput {
                            command_id: id.clone(),
                            stream: OutputStream::Stdout,
                            text: output.to_string(),
                        })?;
                    }
                    let exit_code = item["exit_code"].as_i64().map(|code| code as i32);
                    sink.emit(EventKind::CommandFinished { command_id: id, exit_code, duration_ms: 0 })?;
                }
                ("item.completed", "file_change") if item["status"] == "completed" => {
                    for change in item["changes"].as_array().into_iter().flatten() {
                        let change_kind = match change["kind"].as_str() {
                            Some("add") => FileChange::Added,
                            Some("delete") => FileChange::Deleted,
                            _ => FileChange::Modified,
                        };
                        let path = relative(change["path"].as_str().unwrap_or_default());
                        sink.emit(EventKind::FileChanged { path, change: change_kind })?;
                    }
                }
                ("item.completed", "error") | ("error", _) => {
                    let message =
                        item["message"].as_str().or(event["message"].as_str()).unwrap_or("codex reported an error");
                    sink.emit(EventKind::Warning { message: message.to_string() })?;
                }
                ("item.completed", kind @ ("mcp_tool_call" | "web_search" | "todo_list")) => {
                    sink.emit(EventKind::Warning {
                        message: format!("codex used a {kind} item; Cortex records it in raw/ only"),
                    })?;
                }
                ("turn.completed", _) => {
                    // Cumulative over the thread, like the app-server's `total`.
                    let usage = &event["usage"];
                    let input = usage["input_tokens"].as_u64().unwrap_or(0);
                    let output = usage["output_tokens"].as_u64().unwrap_or(0);
                    let total = TokenUsage {
                        input_tokens: input,
                        cached_input_tokens: usage["cached_input_tokens"].as_u64().unwrap_or(0),
                        output_tokens: output,
                        reasoning_output_tokens: usage["reasoning_output_tokens"].as_u64().unwrap_or(0),
                        total_tokens: usage["total_tokens"].as_u64().unwrap_or(input + output),
                    };
                    let tokens = total.since(self.before);
                    sink.usage(super::Usage { tokens, model: self.config.model.clone(), cost_usd: None })?;
                    end = Some(TurnEnd::Completed);
                }
                ("turn.failed", _) => {
                    let message = event["error"]["message"].as_str().unwrap_or("the codex turn failed").to_string();
                    end = Some(TurnEnd::Failed(message));
                }
                _ => {}
            }
        }
        let status = child.wait().map_err(|source| Error::Io { context: "cannot wait for codex".into(), source })?;
        Ok(end.unwrap_or_else(|| TurnEnd::Failed(format!("codex exec ended without finishing the turn ({status})"))))
    }
}
