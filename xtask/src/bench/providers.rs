//! `cargo xtask bench providers`: per persistent provider (codex
//! app-server, claude, codex-acp, gemini), a three-turn session (a message,
//! a shell command, a file write) against the project's scripted model on
//! 127.0.0.1, run (a) on the bare CLI, driven over its own protocol
//! (`direct.rs`), and (b) through a warm `cortex up`; each measured as the
//! time to the first streamed text and the whole session's wall time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;

use super::direct::{self, Protocol};
use super::{ms, row};
use crate::anthropic::Anthropic;
use crate::gemini::Gemini;
use crate::model::Model;

const RUNS: usize = 3;

/// An agent CLI, where `.ci/run` installs it, and the environment variable
/// that points elsewhere.
struct Agent {
    provider: &'static str,
    variable: &'static str,
    installed: &'static str,
    protocol: Protocol,
}

const AGENTS: &[Agent] = &[
    Agent {
        provider: "codex",
        variable: "CORTEX_CODEX_BIN",
        installed: "codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        protocol: Protocol::CodexAppServer,
    },
    Agent {
        provider: "claude",
        variable: "CORTEX_CLAUDE_BIN",
        installed: "claude/node_modules/@anthropic-ai/claude-code-linux-x64/claude",
        protocol: Protocol::ClaudeStreamJson,
    },
    Agent {
        provider: "codex-acp",
        variable: "CORTEX_CODEX_ACP_BIN",
        installed: "codex-acp/node_modules/@zed-industries/codex-acp-linux-x64/bin/codex-acp",
        protocol: Protocol::Acp,
    },
    Agent {
        provider: "gemini",
        variable: "CORTEX_GEMINI_BIN",
        installed: "gemini/node_modules/.bin/gemini",
        protocol: Protocol::Acp,
    },
];

/// One run's world: a fresh repository and agent home, the direct command
/// line and environment, and the same agent as `.cortex/config.toml` says it.
struct World {
    root: tempfile::TempDir,
    repo: PathBuf,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    prompts: Vec<String>,
}

/// A scripted model server for one agent, started once per agent.
enum Server {
    OpenAi(Model),
    Anthropic(Anthropic),
    Gemini(Gemini),
}

pub fn providers() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let mut rows = Vec::new();
    for agent in AGENTS {
        let binary = binary(agent)?;
        let server = match agent.provider {
            "claude" => Server::Anthropic(Anthropic::start()),
            "gemini" => Server::Gemini(Gemini::start()),
            _ => Server::OpenAi(Model::start()),
        };
        let (mut direct_first, mut direct_total, mut cortex_first, mut cortex_total) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..RUNS {
            eprintln!("== {} run {}/{RUNS}", agent.provider, run + 1);
            let bare = world(agent, &binary, &server)?;
            let timing = direct::run(agent.protocol, &bare.argv, &bare.env, &bare.repo, &bare.prompts)
                .with_context(|| format!("{} directly", agent.provider))?;
            direct_first.push(timing.first_text);
            direct_total.push(timing.total);
            // A fresh world: nothing the direct run left behind is reused.
            let fresh = world(agent, &binary, &server)?;
            let (first, total) = through_cortex(&cortex, agent.provider, &fresh)
                .with_context(|| format!("{} through Cortex", agent.provider))?;
            cortex_first.push(first);
            cortex_total.push(total);
        }
        let (direct_first, direct_total) = (median(direct_first), median(direct_total));
        let (cortex_first, cortex_total) = (median(cortex_first), median(cortex_total));
        let ratio = |cortex: Duration, direct: Duration| cortex.as_secs_f64() / direct.as_secs_f64();
        let name = agent.provider;
        rows.push(row(
            &format!("{name}: start → first streamed text, bare CLI / through Cortex (ratio)"),
            format!("{} / {} ({:.2}×)", ms(direct_first), ms(cortex_first), ratio(cortex_first, direct_first)),
        ));
        rows.push(row(
            &format!("{name}: 3-turn session wall time, bare CLI / through Cortex (ratio)"),
            format!("{} / {} ({:.2}×)", ms(direct_total), ms(cortex_total), ratio(cortex_total, direct_total)),
        ));
    }
    let (first, total) = floor(&cortex)?;
    rows.push(row(
        "Cortex alone (`fake` agent, answers at once): start → first text / 3-turn session",
        format!("{} / {}", ms(first), ms(total)),
    ));
    super::publish("providers", &rows)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The agent CLIs `.ci/run` installed under target/tools, as the
/// environment variables that point the tests at them; a variable already
/// set is left to win.
pub fn installed_agents() -> Vec<(&'static str, PathBuf)> {
    AGENTS
        .iter()
        .filter(|agent| std::env::var_os(agent.variable).is_none())
        .filter_map(|agent| binary(agent).ok().map(|path| (agent.variable, path)))
        .collect()
}

fn binary(agent: &Agent) -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the repository")?;
    let installed = root.join("target/tools").join(agent.installed);
    let binary = std::env::var_os(agent.variable).map(PathBuf::from).unwrap_or(installed);
    if !binary.exists() {
        bail!("no {} at {}: run .ci/run once, or set {}", agent.provider, binary.display(), agent.variable);
    }
    Ok(binary)
}

/// A fresh repository, agent home and temp dir, and the agent's direct
/// command line and environment in them.
fn world(agent: &Agent, binary: &Path, server: &Server) -> anyhow::Result<World> {
    let root = tempfile::tempdir()?;
    let repo = super::git_repo(root.path())?;
    let (home, tmp) = (root.path().join("agent-home"), root.path().join("agent-tmp"));
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&tmp)?;
    let bin = binary.display().to_string();
    let pair = |name: &str, value: &Path| (name.to_string(), value.display().to_string());
    let (argv, env, config) = match server {
        Server::Anthropic(model) => {
            let argv = [&bin, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]
                .into_iter()
                .chain(["--include-partial-messages", "--permission-prompt-tool", "stdio", "--model", "scripted"]);
            let env = vec![
                pair("CLAUDE_CONFIG_DIR", &home),
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()),
                ("DISABLE_AUTOUPDATER".into(), "1".into()),
                ("ANTHROPIC_BASE_URL".into(), model.url.clone()),
                ("ANTHROPIC_API_KEY".into(), "sk-ant-scripted".into()),
                ("IS_SANDBOX".into(), "1".into()),
            ];
            (argv.map(str::to_string).collect(), env, model.config(binary))
        }
        Server::Gemini(model) => {
            let argv: Vec<String> = [&bin, "--acp", "-m", "gemini-2.5-flash"].map(str::to_string).to_vec();
            let env = model.home(&home);
            (argv.clone(), env.clone(), agent_table(agent.provider, &argv, &env))
        }
        Server::OpenAi(model) if agent.provider == "codex" => {
            let mut argv = vec![bin.clone(), "app-server".into()];
            for setting in model.settings() {
                argv.extend(["-c".into(), setting]);
            }
            argv.extend(["--disable", "unbounded_connection_retries", "--disable", "plugins"].map(str::to_string));
            let config = model.config(binary, &home, "never");
            // Model::config gives the child a TMPDIR beside its home.
            let env = vec![
                pair("CODEX_HOME", &home),
                ("FAKE_API_KEY".into(), "dummy".into()),
                pair("TMPDIR", &home.with_file_name("codex-tmp")),
            ];
            (argv, env, config)
        }
        Server::OpenAi(model) => {
            codex_acp_home(model, &home)?;
            let argv = vec![bin.clone()];
            let env = vec![pair("CODEX_HOME", &home), ("FAKE_API_KEY".into(), "dummy".into()), pair("TMPDIR", &tmp)];
            (argv.clone(), env.clone(), agent_table(agent.provider, &argv, &env))
        }
    };
    std::fs::write(repo.join(".cortex/config.toml"), config)?;
    let prompts = match agent.provider {
        "claude" | "gemini" => {
            vec![
                "say hello there".into(),
                "run echo from-the-shell".into(),
                format!("write {} written by the agent", repo.join("notes.txt").display()),
            ]
        }
        _ => vec![
            "say hello there".into(),
            "run echo from-the-shell".into(),
            "add notes.txt written by the agent".into(),
        ],
    };
    Ok(World { root, repo, argv, env, prompts })
}

/// Cortex's own cost of a session: the same three turns through `cortex
/// up` with the built-in `fake` agent, which answers at once (median of
/// `RUNS`): what every provider's row pays on top of its agent.
fn floor(cortex: &Path) -> anyhow::Result<(Duration, Duration)> {
    let (mut first, mut total) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let root = tempfile::tempdir()?;
        let repo = super::git_repo(root.path())?;
        let prompts = ["say hello there", "run echo from-the-shell", "add notes.txt"].map(str::to_string).to_vec();
        let world = World { root, repo, argv: Vec::new(), env: Vec::new(), prompts };
        let (one, all) = through_cortex(cortex, "fake", &world)?;
        first.push(one);
        total.push(all);
    }
    Ok((median(first), median(total)))
}

/// `[agents.NAME]` with the direct run's command and environment.
fn agent_table(name: &str, argv: &[String], env: &[(String, String)]) -> String {
    let command: Vec<String> = argv.iter().map(|arg| format!("{arg:?}")).collect();
    let env: Vec<String> = env.iter().map(|(name, value)| format!("{name} = {value:?}")).collect();
    format!("[agents.{name}]\ncommand = [{}]\nenv = {{ {} }}\n", command.join(", "), env.join(", "))
}

/// codex-acp reads its model and policies from `CODEX_HOME/config.toml`.
fn codex_acp_home(model: &Model, home: &Path) -> anyhow::Result<()> {
    let (mut top, mut table) = (Vec::new(), vec!["[model_providers.fake]".to_string()]);
    for setting in model.settings() {
        match setting.strip_prefix("model_providers.fake.") {
            Some(rest) => table.push(rest.to_string()),
            None => top.push(setting),
        }
    }
    let text = format!(
        "model = \"gpt-5.5\"\napproval_policy = \"never\"\nsandbox_mode = \"danger-full-access\"\n{}\n{}\n",
        top.join("\n"),
        table.join("\n")
    );
    Ok(std::fs::write(home.join("config.toml"), text)?)
}

/// Through a warm `cortex up` (started before the clock): `session start
/// --detach`, the first text and the turn's end on the SSE stream, then two
/// blocking `session send`s.
fn through_cortex(cortex: &Path, provider: &str, world: &World) -> anyhow::Result<(Duration, Duration)> {
    let data = world.root.path().join("data");
    let _up = super::Up::start(cortex, &data)?;
    let url = super::wait_url(&data)?;
    std::thread::sleep(Duration::from_millis(500)); // its node connects
    let token = std::fs::read_to_string(data.join("admin.token"))?.trim().to_string();
    let run = |args: &[&str]| super::cortex_json(cortex, &world.repo, &data, args);
    let started = Instant::now();
    let session = run(&["session", "start", &world.prompts[0], "--provider", provider, "--detach", "--yes", "--json"])?;
    let id = session["session_id"].as_str().context("no session id")?.to_string();
    let first = tokio::runtime::Runtime::new()?.block_on(first_turn(&url, &token, &id))?;
    for prompt in &world.prompts[1..] {
        run(&["session", "send", &id, prompt, "--yes", "--json"])?;
    }
    let total = started.elapsed();
    let _ = run(&["session", "stop", &id, "--json"]);
    Ok((first - started, total))
}

/// Follows the session from its first event: returns when its first turn
/// finished, with the instant its first streamed text arrived.
async fn first_turn(url: &str, token: &str, session: &str) -> anyhow::Result<Instant> {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v1/sessions/{session}/events?after=0"))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .send()
        .await?;
    let mut events = response.bytes_stream().eventsource();
    let mut first = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(120), events.next()).await {
            Ok(Some(Ok(message))) => match message.event.as_str() {
                "assistant_delta" | "assistant_message" => {
                    first.get_or_insert_with(Instant::now);
                }
                "turn_finished" => return first.context("the first turn streamed no text"),
                _ => {}
            },
            other => bail!("the first turn did not finish: {other:?}"),
        }
    }
}
