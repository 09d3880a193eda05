//! `cargo xtask bench codex`: one scripted three-turn session (a message, a
//! shell command, an apply_patch) against the scripted model on 127.0.0.1,
//! run (a) with `codex exec` / `exec resume` directly and (b) through Cortex
//! with each adapter; plus the time from sending a turn to its first event
//! on the stream with the live app-server adapter.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;

use super::{ms, row};
use crate::model::Model;

const PROMPTS: [&str; 3] = ["say hello there", "run echo from-the-shell", "add notes.txt written by codex"];
const RUNS: usize = 3;

pub fn codex() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let codex = codex_binary()?;
    let model = Model::start();
    let mut direct = Vec::new();
    let mut exec = Vec::new();
    let mut live = Vec::new();
    let mut first_event = Vec::new();
    let mut startup = Vec::new();
    for _ in 0..RUNS {
        direct.push(run_direct(&codex, &model)?);
        exec.push(run_cortex_in_process(&cortex, &codex, &model, "codex-exec")?);
        let (ready, total, first) = run_cortex_live(&cortex, &codex, &model)?;
        startup.push(ready);
        live.push(total);
        first_event.push(first);
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (direct, exec, live, first, startup) =
        (median(&mut direct), median(&mut exec), median(&mut live), median(&mut first_event), median(&mut startup));
    let ratio = |cortex: Duration| format!("{:.2}", cortex.as_secs_f64() / direct.as_secs_f64());
    super::publish(
        "codex",
        &[
            row("3 turns with `codex exec` / `exec resume` directly (median of 3)", ms(direct)),
            row("3 turns through Cortex, codex-exec adapter, in-process CLI", ms(exec)),
            row("ratio codex-exec adapter / direct", ratio(exec)),
            row("3 turns through Cortex, app-server adapter, `cortex up` (one live child)", ms(live)),
            row("ratio app-server adapter / direct", ratio(live)),
            row("starting `cortex up` until it answers (not in the row above)", ms(startup)),
            row("ratio app-server adapter including that start / direct", ratio(live + startup)),
            row("send (HTTP command) → the agent's first output on the SSE stream, app-server adapter", ms(first)),
        ],
    )
}

pub(crate) fn codex_binary() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the repository")?;
    let installed =
        root.join("target/tools/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
    let binary = std::env::var_os("CORTEX_CODEX_BIN").map(PathBuf::from).unwrap_or(installed);
    if !binary.exists() {
        bail!("no codex binary at {}: run .ci/run once, or set CORTEX_CODEX_BIN", binary.display());
    }
    Ok(binary)
}

fn repo(root: &Path, model: &Model, codex: &Path) -> anyhow::Result<PathBuf> {
    let repo = super::git_repo(root)?;
    std::fs::write(repo.join(".cortex/config.toml"), model.config(codex, &root.join("codex-home"), "never"))?;
    Ok(repo)
}

fn check(output: std::process::Output, what: &str) -> anyhow::Result<std::process::Output> {
    if !output.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(output)
}

fn run_direct(codex: &Path, model: &Model) -> anyhow::Result<Duration> {
    let root = tempfile::tempdir()?;
    let repo = repo(root.path(), model, codex)?;
    std::fs::create_dir_all(root.path().join("codex-home"))?;
    let settings = model.settings();
    let started = Instant::now();
    let mut thread = None::<String>;
    for prompt in PROMPTS {
        let mut command = Command::new(codex);
        command.env("CODEX_HOME", root.path().join("codex-home")).env("FAKE_API_KEY", "dummy");
        command.args(["exec", "--json", "-C"]).arg(&repo).args(["--sandbox", "workspace-write", "-m", "gpt-5.5"]);
        for setting in &settings {
            command.args(["-c", setting]);
        }
        command.args(["--disable", "plugins"]);
        if let Some(thread) = &thread {
            command.args(["resume", thread]);
        }
        let output = check(command.arg("--").arg(prompt).stdin(Stdio::null()).output()?, "codex exec")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let started_line = stdout.lines().find(|line| line.contains("thread.started")).context("no thread.started")?;
        let value: serde_json::Value = serde_json::from_str(started_line)?;
        thread = value["thread_id"].as_str().map(str::to_string);
    }
    Ok(started.elapsed())
}

fn run_cortex_in_process(cortex: &Path, codex: &Path, model: &Model, provider: &str) -> anyhow::Result<Duration> {
    let root = tempfile::tempdir()?;
    let repo = repo(root.path(), model, codex)?;
    let data = root.path().join("data");
    let started = Instant::now();
    let run = |args: &[&str]| super::cortex_json(cortex, &repo, &data, args);
    let started_session = run(&["session", "start", PROMPTS[0], "--provider", provider, "--json"])?;
    let id = started_session["session_id"].as_str().context("no session id")?.to_string();
    for prompt in &PROMPTS[1..] {
        run(&["session", "send", &id, prompt, "--json"])?;
    }
    Ok(started.elapsed())
}

/// Through `cortex up`: three turns, then the latency of a fourth turn's
/// first event on the SSE stream.
fn run_cortex_live(cortex: &Path, codex: &Path, model: &Model) -> anyhow::Result<(Duration, Duration, Duration)> {
    let root = tempfile::tempdir()?;
    let repo = repo(root.path(), model, codex)?;
    let data = root.path().join("data");
    let spawned = Instant::now();
    let _up = super::Up::start(cortex, &data)?;
    let url = super::wait_url(&data)?;
    let ready = spawned.elapsed();
    std::thread::sleep(Duration::from_millis(500)); // its node connects
    let run = |args: &[&str]| super::cortex_json(cortex, &repo, &data, args);
    // From here on the clock runs: `cortex up` is warm, its codex child
    // is not (the first turn starts it), like the direct runs' codex.
    let started = Instant::now();
    let session = run(&["session", "start", PROMPTS[0], "--provider", "codex", "--json"])?;
    let id = session["session_id"].as_str().context("no session id")?.to_string();
    for prompt in &PROMPTS[1..] {
        run(&["session", "send", &id, prompt, "--json"])?;
    }
    let total = started.elapsed();
    let token = std::fs::read_to_string(data.join("admin.token"))?.trim().to_string();
    let last_seq = run(&["session", "show", &id, "--json"])?["session"]["last_seq"].as_u64().unwrap_or(0);
    let first = tokio::runtime::Runtime::new()?.block_on(first_event(&url, &token, &id, last_seq))?;
    Ok((ready, total, first))
}

async fn first_event(url: &str, token: &str, session: &str, after: u64) -> anyhow::Result<Duration> {
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{url}/api/v1/sessions/{session}/events?after={after}"))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .send()
        .await?;
    let mut events = response.bytes_stream().eventsource();
    let command = serde_json::json!({
        "v": 1, "id": format!("bench_{}", std::process::id()) + &after.to_string(),
        "kind": "send_turn", "payload": {"session_id": session, "prompt": "say one more"}
    });
    let started = Instant::now();
    http.post(format!("{url}/api/v1/commands")).bearer_auth(token).json(&command).send().await?;
    // The agent's first output, not Cortex's own lifecycle and prompt events.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(Ok(message)))
                if ["assistant_delta", "assistant_message", "reasoning", "command_started"]
                    .contains(&message.event.as_str()) =>
            {
                return Ok(started.elapsed());
            }
            Ok(Some(Ok(_))) => continue,
            other => bail!("no output from the agent after sending a turn: {other:?}"),
        }
    }
}
