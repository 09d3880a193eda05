//! The bare-CLI side of `cargo xtask bench providers`: each agent CLI
//! spawned with the command line and environment Cortex gives it, and
//! driven over its own protocol by the smallest client that can (codex
//! app-server JSON-RPC, Claude Code stream-json, ACP JSON-RPC 2.0).
//! Approvals are allowed, as `--yes` does through Cortex.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How long the agent may stay silent before the run fails.
const QUIET: Duration = Duration::from_secs(120);

/// The protocol an agent CLI speaks on stdin/stdout.
#[derive(Clone, Copy)]
pub(super) enum Protocol {
    CodexAppServer,
    ClaudeStreamJson,
    Acp,
}

/// One agent child and the JSON lines it writes.
struct Agent {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    next_id: u64,
    /// ACP says `"jsonrpc":"2.0"`; codex's app-server leaves it out.
    jsonrpc: bool,
}

/// What one direct run measured: spawn → the first streamed text, and
/// spawn → the end of the last turn.
pub(super) struct Timing {
    pub first_text: Duration,
    pub total: Duration,
}

/// Spawns `argv` in `cwd` with `env` and runs `prompts` as consecutive turns
/// of one session on that one process.
pub(super) fn run(
    protocol: Protocol,
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
    prompts: &[String],
) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let mut agent = Agent::spawn(argv, env, cwd, matches!(protocol, Protocol::Acp))?;
    let first = Cell::new(None::<Instant>);
    match protocol {
        Protocol::CodexAppServer => codex(&mut agent, cwd, prompts, &first)?,
        Protocol::ClaudeStreamJson => claude(&mut agent, prompts, &first)?,
        Protocol::Acp => acp(&mut agent, cwd, prompts, &first)?,
    }
    let total = started.elapsed();
    let first_text = first.get().context("the agent streamed no text")? - started;
    Ok(Timing { first_text, total })
}

fn codex(agent: &mut Agent, cwd: &Path, prompts: &[String], first: &Cell<Option<Instant>>) -> anyhow::Result<()> {
    let client = json!({"clientInfo": {"name": "bench", "version": "0"}, "capabilities": {"experimentalApi": false}});
    agent.call("initialize", client, &mut |_| None)?;
    agent.write(&json!({"method": "initialized"}))?;
    let params = json!({"cwd": cwd.display().to_string(), "approvalPolicy": "never",
        "sandbox": "workspace-write", "model": "gpt-5.5"});
    let started = agent.call("thread/start", params, &mut |_| None)?;
    let thread = started["thread"]["id"].as_str().context("no thread id")?.to_string();
    for prompt in prompts {
        let done = Cell::new(false);
        let mut watch = |message: &Value| {
            match message["method"].as_str() {
                Some("item/agentMessage/delta") => note(first),
                Some("turn/completed") => done.set(true),
                _ => {}
            }
            None
        };
        let input = json!([{"type": "text", "text": prompt, "text_elements": []}]);
        agent.call("turn/start", json!({"threadId": thread, "input": input}), &mut watch)?;
        while !done.get() {
            let message = agent.next()?;
            watch(&message);
        }
    }
    Ok(())
}

fn claude(agent: &mut Agent, prompts: &[String], first: &Cell<Option<Instant>>) -> anyhow::Result<()> {
    for prompt in prompts {
        agent.write(&json!({"type": "user", "message": {"role": "user", "content": prompt},
            "parent_tool_use_id": null, "session_id": ""}))?;
        loop {
            let line = agent.next()?;
            match line["type"].as_str() {
                Some("stream_event") if line["event"]["delta"]["type"] == "text_delta" => note(first),
                Some("control_request") if line["request"]["subtype"] == "can_use_tool" => {
                    agent.write(&json!({"type": "control_response", "response": {"subtype": "success",
                        "request_id": line["request_id"],
                        "response": {"behavior": "allow", "updatedInput": line["request"]["input"]}}}))?;
                }
                Some("result") => break,
                _ => {}
            }
        }
    }
    Ok(())
}

fn acp(agent: &mut Agent, cwd: &Path, prompts: &[String], first: &Cell<Option<Instant>>) -> anyhow::Result<()> {
    let client = json!({"protocolVersion": 1,
        "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false},
        "clientInfo": {"name": "bench", "version": "0"}});
    agent.call("initialize", client, &mut |_| None)?;
    let session =
        agent.call("session/new", json!({"cwd": cwd.display().to_string(), "mcpServers": []}), &mut |_| None)?;
    let session = session["sessionId"].as_str().context("no sessionId")?.to_string();
    for prompt in prompts {
        let mut watch = |message: &Value| match message["method"].as_str() {
            Some("session/update") => {
                if message["params"]["update"]["sessionUpdate"] == "agent_message_chunk" {
                    note(first);
                }
                None
            }
            Some("session/request_permission") => {
                let options = message["params"]["options"].as_array().cloned().unwrap_or_default();
                let allow = options.iter().find(|option| option["kind"] == "allow_once").or(options.first());
                Some(json!({"outcome": {"outcome": "selected", "optionId": allow.map(|option| &option["optionId"])}}))
            }
            _ => None,
        };
        let prompt = json!({"sessionId": session, "prompt": [{"type": "text", "text": prompt}]});
        let ended = agent.call("session/prompt", prompt, &mut watch)?;
        if ended["stopReason"] != "end_turn" {
            bail!("the turn ended with {ended}");
        }
    }
    Ok(())
}

fn note(first: &Cell<Option<Instant>>) {
    if first.get().is_none() {
        first.set(Some(Instant::now()));
    }
}

impl Agent {
    fn spawn(argv: &[String], env: &[(String, String)], cwd: &Path, jsonrpc: bool) -> anyhow::Result<Agent> {
        let (program, args) = argv.split_first().context("an empty command")?;
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {program}"))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && sender.send(value).is_err()
                {
                    break;
                }
            }
        });
        Ok(Agent { child, stdin, lines, next_id: 0, jsonrpc })
    }

    fn write(&mut self, message: &Value) -> anyhow::Result<()> {
        let mut message = message.clone();
        if self.jsonrpc && message.get("type").is_none() {
            message["jsonrpc"] = json!("2.0");
        }
        writeln!(self.stdin, "{message}")?;
        Ok(self.stdin.flush()?)
    }

    fn next(&self) -> anyhow::Result<Value> {
        self.lines.recv_timeout(QUIET).context("the agent went quiet or exited")
    }

    /// Sends a request and returns its result. Everything that arrives
    /// before the answer goes to `on`; what `on` returns answers a request
    /// from the agent.
    fn call(
        &mut self,
        method: &str,
        params: Value,
        on: &mut dyn FnMut(&Value) -> Option<Value>,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&json!({"id": id, "method": method, "params": params}))?;
        loop {
            let message = self.next()?;
            if message.get("method").is_none() && message["id"] == id {
                if let Some(error) = message.get("error") {
                    bail!("{method} failed: {error}");
                }
                return Ok(message["result"].clone());
            }
            if let Some(result) = on(&message) {
                self.write(&json!({"id": message["id"], "result": result}))?;
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
