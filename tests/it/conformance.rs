//! The conformance matrix: one provider-neutral scenario suite run against
//! every real agent CLI (pinned in `.ci/run`) through a real Core and an
//! enrolled node, each agent on its scripted model. Every cell passes, fails,
//! or is "not supported" because the agent does not advertise the feature.
//! The matrix is written to `target/conformance.md` (and printed);
//! `cargo xtask conformance` records it in docs/providers.md. A failing
//! supported cell fails the test.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::support::anthropic::Anthropic;
use crate::support::cluster::{CoreProcess, wait_node_status, wait_state};
use crate::support::gemini::Gemini;
use crate::support::model::Model;
use crate::support::panel::Browser;
use crate::support::{Background, TestEnv, skip, wait_for};

/// An agent under test: its provider name and where its CLI is.
struct Agent {
    provider: &'static str,
    binary: &'static str,
}

const AGENTS: &[Agent] = &[
    Agent { provider: "codex", binary: "CORTEX_CODEX_BIN" },
    Agent { provider: "claude", binary: "CORTEX_CLAUDE_BIN" },
    Agent { provider: "codex-acp", binary: "CORTEX_CODEX_ACP_BIN" },
    Agent { provider: "gemini", binary: "CORTEX_GEMINI_BIN" },
];

/// The scenarios, each with the feature it needs (none: every agent).
const SCENARIOS: &[(&str, Option<&str>)] = &[
    ("streamed message", None),
    ("shell command with output", Some("output")),
    ("file edit", None),
    ("approval allowed", Some("approvals")),
    ("approval denied, nothing happens", Some("approvals")),
    ("interrupt mid-stream, then a turn", Some("interrupt")),
    ("agent killed, send resumes", Some("resume")),
    ("agent killed mid-turn: interrupted with the reason, send resumes", Some("resume")),
    ("node killed, send resumes", Some("resume")),
    ("per-turn token usage", Some("usage")),
    ("a token budget interrupts the turn that crosses it", Some("usage")),
];

/// One agent's world: a Core, an enrolled node, a repository configured for
/// the agent, and its scripted model.
struct World<'a> {
    env: &'a TestEnv,
    agent: &'a Agent,
    core: CoreProcess,
    node: Mutex<Background>,
    repo: PathBuf,
    marker: String,
    _model: Box<dyn std::any::Any>,
}

type Outcome = Result<(), String>;

fn check(ok: bool, what: impl Into<String>) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

impl World<'_> {
    /// What the node reports the agent can do (its capabilities).
    fn features(&self) -> Vec<String> {
        let node = self.cortex(&["node", "show", "worker", "--json"]).json();
        let providers = node["node"]["capabilities"]["providers"].as_array().cloned().unwrap_or_default();
        let mine = providers.into_iter().find(|provider| provider["name"] == self.agent.provider);
        let features = mine.map(|provider| provider["features"].clone()).unwrap_or_default();
        features.as_array().into_iter().flatten().filter_map(|feature| feature.as_str().map(str::to_string)).collect()
    }

    fn cortex(&self, args: &[&str]) -> crate::support::Run {
        self.env.cortex_at(&self.core, &self.repo, args)
    }

    fn start(&self, prompt: &str) -> Result<String, String> {
        let run = self.cortex(&["session", "start", prompt, "--provider", self.agent.provider, "--json", "--yes"]);
        check(run.code == 0, format!("start: exit {}: {} {}", run.code, run.stderr.trim(), run.stdout.trim()))?;
        Ok(run.json()["session_id"].as_str().unwrap_or_default().to_string())
    }

    fn send(&self, id: &str, prompt: &str, extra: &[&str]) -> Result<serde_json::Value, String> {
        let mut args = vec!["session", "send", id, prompt, "--json"];
        args.extend(extra);
        let run = self.cortex(&args);
        check(run.code == 0, format!("send: exit {}: {} {}", run.code, run.stderr.trim(), run.stdout.trim()))?;
        Ok(run.json())
    }

    /// A send that waits for a person's answer, in the background.
    fn send_later(&self, id: &str, prompt: &str) -> std::thread::JoinHandle<std::process::Output> {
        let mut command = self.env.cortex_command(&self.repo);
        command.env("CORTEX_HOME", &self.core.data).args([
            "session",
            "send",
            id,
            prompt,
            "--json",
            "--wait-for-approval",
        ]);
        std::thread::spawn(move || command.output().unwrap())
    }

    fn events(&self, id: &str) -> Vec<serde_json::Value> {
        self.cortex(&["session", "log", id, "--json"]).json().as_array().cloned().unwrap_or_default()
    }

    fn texts(&self, id: &str) -> Vec<String> {
        self.events(id)
            .iter()
            .filter(|event| event["kind"] == "assistant_message")
            .filter_map(|event| event["text"].as_str().map(str::to_string))
            .collect()
    }

    /// What the model recalled instead of the earlier turn, with what the
    /// session warned (an agent's own reason for not resuming).
    fn missed(&self, id: &str, recalled: &Option<String>) -> String {
        let warnings: Vec<String> = self
            .events(id)
            .iter()
            .filter(|event| matches!(event["kind"].as_str(), Some("warning" | "error")))
            .filter_map(|event| event["message"].as_str().map(str::to_string))
            .collect();
        let recalled = match recalled {
            Some(text) => format!("the model recalled `{text}`"),
            None => format!("nothing was recalled (the agent's last words: {:?})", self.texts(id).last()),
        };
        let state = self.cortex(&["session", "show", id, "--json"]).json();
        let state = &state["session"];
        format!(
            "{recalled}; the session is {} {}; it said: {}",
            state["state"],
            state["state_reason"],
            warnings.join("; ")
        )
    }

    /// The prompt that makes the agent write `text` into `file`.
    fn edit_prompt(&self, file: &str, text: &str) -> String {
        match self.agent.provider {
            "claude" | "gemini" => format!("write {} {text}", self.repo.join(file).display()),
            _ => format!("add {file} {text}"),
        }
    }

    /// Every process of the agent (and its children): they carry the marker.
    fn agent_processes(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ.split(|byte| *byte == 0).any(|part| part == self.marker.as_bytes()) {
                pids.push(pid);
            }
        }
        pids
    }
}

fn setup<'a>(env: &'a TestEnv, agent: &'a Agent, binary: &Path) -> World<'a> {
    let repo = env.path(&format!("{}-repo", agent.provider));
    std::fs::create_dir_all(repo.join(".cortex")).unwrap();
    env.git(&repo, ["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "# conformance\n").unwrap();
    std::fs::write(repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    env.git(&repo, ["add", "."]);
    env.git(&repo, ["commit", "-q", "-m", "initial"]);
    let marker = format!("CORTEX_CONFORMANCE={}-{}", agent.provider, std::process::id());
    let (key, value) = marker.split_once('=').unwrap();
    let home = env.path(&format!("{}-agent-home", agent.provider));
    let tmp = env.path(&format!("{}-agent-tmp", agent.provider));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let (config, model): (String, Box<dyn std::any::Any>) = match agent.provider {
        "codex" => {
            let model = Model::start();
            let config = model.config(binary, &home, "untrusted");
            let config = config.replace("env = { ", &format!("env = {{ {key} = \"{value}\", "));
            (config, Box::new(model))
        }
        "claude" => {
            let model = Anthropic::start();
            let config = model.config(binary).replace("env = { ", &format!("env = {{ {key} = \"{value}\", "));
            (config, Box::new(model))
        }
        "gemini" => {
            let model = Gemini::start();
            let mut env = vec![format!("{key} = \"{value}\"")];
            env.extend(model.home(&home).into_iter().map(|(name, value)| format!("{name} = \"{value}\"")));
            let config = format!(
                "[agents.gemini]\ncommand = [\"{}\", \"--acp\", \"-m\", \"gemini-2.5-flash\"]\nenv = {{ {} }}\n",
                binary.display(),
                env.join(", ")
            );
            (config, Box::new(model))
        }
        _ => {
            let model = Model::start();
            let mut top = Vec::new();
            let mut table = vec!["[model_providers.fake]".to_string()];
            for setting in model.settings() {
                match setting.strip_prefix("model_providers.fake.") {
                    Some(rest) => table.push(rest.to_string()),
                    None => top.push(setting),
                }
            }
            std::fs::write(
                home.join("config.toml"),
                format!(
                    "model = \"gpt-5.5\"\napproval_policy = \"untrusted\"\nsandbox_mode = \"danger-full-access\"\n{}\n{}\n",
                    top.join("\n"),
                    table.join("\n")
                ),
            )
            .unwrap();
            let config = format!(
                "[agents.codex-acp]\ncommand = [\"{}\"]\nenv = {{ {key} = \"{value}\", CODEX_HOME = \"{}\", FAKE_API_KEY = \"dummy\", TMPDIR = \"{}\" }}\n",
                binary.display(),
                home.display(),
                tmp.display()
            );
            (config, Box::new(model))
        }
    };
    std::fs::write(repo.join(".cortex/config.toml"), config).unwrap();
    let data = env.path(&format!("{}-core", agent.provider));
    let core = env.start_core("core", &data, crate::support::cluster::free_port());
    let token = env.enroll(&core, "worker");
    let node = env.start_node(&core.url, &env.path(&format!("{}-node", agent.provider)), Some(&token), "node.log");
    wait_node_status(env, &core, "worker", "online");
    let world = World { env, agent, core, node: Mutex::new(node), repo, marker, _model: model };
    let bound = world.cortex(&["workspace", "bind", "--node", "worker"]);
    assert_eq!(bound.code, 0, "{}", bound.stderr);
    world
}

// Long: one arm per scenario, a table read top to bottom.
fn run_scenario(world: &World<'_>, scenario: &str) -> Outcome {
    match scenario {
        "streamed message" => {
            let id = world.start("say hello there")?;
            let events = world.events(&id);
            check(events.iter().any(|event| event["kind"] == "assistant_delta"), "no assistant_delta")?;
            check(
                world.texts(&id).first().map(String::as_str) == Some("hello there"),
                format!("{:?}", world.texts(&id)),
            )
        }
        "shell command with output" => {
            let id = world.start("say ready")?;
            world.send(&id, "run echo from-the-shell", &["--yes"])?;
            let events = world.events(&id);
            let output: String = events
                .iter()
                .filter(|event| event["kind"] == "command_output")
                .filter_map(|event| event["text"].as_str())
                .collect();
            let said = if output.is_empty() { "the agent reported no output" } else { "output" };
            check(output.contains("from-the-shell"), format!("{said}: {output:?}"))?;
            let finished = events.iter().find(|event| event["kind"] == "command_finished");
            check(finished.is_some_and(|event| event["exit_code"] == 0), "no command_finished with exit 0")
        }
        "file edit" => {
            let id = world.start("say ready")?;
            let prompt = world.edit_prompt("edited.txt", "by-the-agent");
            world.send(&id, &prompt, &["--yes"])?;
            let events = world.events(&id);
            check(
                events.iter().any(|event| event["kind"] == "file_changed" && event["path"] == "edited.txt"),
                "no file_changed",
            )?;
            let patch = world.env.git(&world.repo, ["show", &format!("refs/cortex/sessions/{id}:turns/2/diff.patch")]);
            check(patch.contains("+by-the-agent"), format!("turns/2/diff.patch: {patch}"))
        }
        "approval allowed" | "approval denied, nothing happens" => {
            let allow = scenario == "approval allowed";
            let file = if allow { "allowed.txt" } else { "denied.txt" };
            let id = world.start("say ready")?;
            let waiting = world.send_later(&id, &format!("run touch {file}"));
            wait_state(world.env, &world.core, &id, "awaiting_approval");
            // Allowed from the panel's form, denied from the CLI: both
            // surfaces answer every agent.
            if allow {
                let link = world.cortex(&["panel", "login"]);
                check(link.code == 0, link.stderr.clone())?;
                let browser = Browser::log_in(link.stdout.trim());
                let base = world.core.url.as_str();
                let form = [("decision", "approve"), ("command_id", "conformance_allow")];
                let answer = browser.post(&format!("{base}/sessions/{id}/approval"), &form, Some(base));
                check(answer.status == 303, format!("the panel answered {}: {}", answer.status, answer.body))?;
            } else {
                let answer = world.cortex(&["session", "deny", &id]);
                check(answer.code == 0, answer.stderr.clone())?;
            }
            let output = waiting.join().unwrap();
            check(output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())?;
            let by: Vec<String> = world
                .events(&id)
                .iter()
                .filter(|event| event["kind"] == "approval_resolved")
                .map(|event| {
                    format!("{} by {}", event["decision"].as_str().unwrap_or("?"), event["by"].as_str().unwrap_or("?"))
                })
                .collect();
            let expected = if allow { "approved by panel" } else { "denied by" };
            check(by.iter().any(|line| line.starts_with(expected)), format!("approvals: {by:?}"))?;
            check(world.repo.join(file).exists() == allow, format!("{file} exists: {}", world.repo.join(file).exists()))
        }
        "interrupt mid-stream, then a turn" => {
            let id = world.start("say ready")?;
            let streaming = world.send_later(&id, "slowstream");
            let streamed = wait_for(|| world.events(&id).iter().any(|event| event["text"] == "tick1 ").then_some(()));
            check(streamed.is_some(), "the slow stream never arrived")?;
            let interrupt = world.cortex(&["session", "interrupt", &id]);
            check(interrupt.code == 0, interrupt.stderr.clone())?;
            let report: serde_json::Value =
                serde_json::from_slice(&streaming.join().unwrap().stdout).map_err(|error| error.to_string())?;
            check(report["state"] == "idle", format!("after the interrupt: {report}"))?;
            let next = world.send(&id, "say after the interrupt", &[])?;
            check(next["outcome"] == "completed", format!("next turn: {next}"))
        }
        "agent killed, send resumes" => {
            let id = world.start("say one")?;
            if world.agent.provider == "claude" {
                let written =
                    wait_for(|| crate::support::claude_transcript_has(&world.repo, "\"text\":\"one\"").then_some(()));
                check(written.is_some(), "claude never wrote its transcript")?;
            }
            for pid in world.agent_processes() {
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            check(wait_for(|| world.agent_processes().is_empty().then_some(())).is_some(), "the agent did not die")?;
            world.send(&id, "recall", &[])?;
            let recalled = world.texts(&id).into_iter().find(|text| text.starts_with("recalled:"));
            check(recalled.as_deref() == Some("recalled: say one | recall"), world.missed(&id, &recalled))
        }
        "agent killed mid-turn: interrupted with the reason, send resumes" => {
            let id = world.start("say ready")?;
            let streaming = world.send_later(&id, "slowstream");
            let streamed = wait_for(|| world.events(&id).iter().any(|event| event["text"] == "tick1 ").then_some(()));
            check(streamed.is_some(), "the slow stream never arrived")?;
            for pid in world.agent_processes() {
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let output = streaming.join().unwrap();
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|error| {
                format!("{error}: exit {:?}, {}", output.status.code(), String::from_utf8_lossy(&output.stderr))
            })?;
            check(report["state"] == "interrupted", format!("after the crash: {report}"))?;
            let shown = world.cortex(&["session", "show", &id, "--json"]).json();
            let reason = shown["session"]["state_reason"].as_str().unwrap_or_default().to_string();
            check(reason.contains("exited during the turn"), format!("reason: {reason:?}"))?;
            let next = world.send(&id, "say after the crash", &[])?;
            check(next["outcome"] == "completed", format!("next turn: {next}"))
        }
        "node killed, send resumes" => {
            let id = world.start("say first")?;
            let mut node = world.node.lock().unwrap();
            node.kill();
            let restarted = world.env.start_node(
                &world.core.url,
                &world.env.path(&format!("{}-node", world.agent.provider)),
                None,
                "node-again.log",
            );
            *node = restarted;
            drop(node);
            wait_node_status(world.env, &world.core, "worker", "online");
            world.send(&id, "recall", &[])?;
            let recalled = world.texts(&id).into_iter().find(|text| text.starts_with("recalled:"));
            check(recalled.as_deref() == Some("recalled: say first | recall"), world.missed(&id, &recalled))
        }
        "per-turn token usage" => {
            let id = world.start("say counted")?;
            let usage: Vec<serde_json::Value> =
                world.events(&id).into_iter().filter(|event| event["kind"] == "token_usage").collect();
            check(usage.len() == 1, format!("token_usage events: {usage:?}"))?;
            // What each scripted model reports for one request, as the agent
            // passes it on: codex-acp's `usage_update` has the total alone.
            let expected = match world.agent.provider {
                "codex" => (10, 5, 15),
                "codex-acp" => (0, 0, 15),
                _ => (100, 7, 107),
            };
            let tokens = &usage[0]["usage"];
            let number = |key: &str| tokens[key].as_u64().unwrap_or(u64::MAX);
            let got = (number("input_tokens"), number("output_tokens"), number("total_tokens"));
            check(got == expected, format!("usage: {}", usage[0]))
        }
        "a token budget interrupts the turn that crosses it" => {
            let id = world.start("say ready")?;
            let config = world.repo.join(".cortex/config.toml");
            let original = std::fs::read_to_string(&config).map_err(|error| error.to_string())?;
            std::fs::write(&config, format!("{original}\n[budget]\nturn_tokens = 1\n"))
                .map_err(|error| error.to_string())?;
            let run = world.cortex(&["session", "send", &id, "say over budget", "--json"]);
            std::fs::write(&config, original).map_err(|error| error.to_string())?;
            let report: serde_json::Value =
                serde_json::from_str(&run.stdout).map_err(|error| format!("{error}: {}", run.stderr))?;
            check(report["outcome"] == "interrupted" && report["state"] == "idle", format!("the turn: {report}"))?;
            let crossed = world.events(&id).into_iter().find(|event| event["kind"] == "budget_exceeded");
            check(
                crossed.as_ref().is_some_and(|event| {
                    event["budget"] == "turn_tokens" && event["limit"] == 1.0 && event["used"].as_f64() > Some(1.0)
                }),
                format!("budget_exceeded: {crossed:?}"),
            )?;
            let shown = world.cortex(&["session", "show", &id, "--json"]).json();
            let reason = shown["session"]["state_reason"].as_str().unwrap_or_default().to_string();
            check(reason.contains("turn_tokens"), format!("reason: {reason:?}"))?;
            let next = world.send(&id, "say within budget", &[])?;
            check(next["outcome"] == "completed", format!("next turn: {next}"))
        }
        other => Err(format!("no scenario `{other}`")),
    }
}

#[test]
fn conformance_matrix_every_agent_every_scenario() {
    let env = TestEnv::new();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    // `CORTEX_CONFORMANCE_ONLY=codex,claude` narrows the matrix while working
    // on one agent; CI runs every agent.
    let only = std::env::var("CORTEX_CONFORMANCE_ONLY").ok();
    for agent in AGENTS {
        if only.as_deref().is_some_and(|only| !only.split(',').any(|name| name == agent.provider)) {
            continue;
        }
        let Some(binary) = std::env::var_os(agent.binary).map(PathBuf::from).filter(|path| path.exists()) else {
            skip(&format!("no {} binary ({} unset; .ci/run installs it)", agent.provider, agent.binary));
            continue;
        };
        let world = setup(&env, agent, &binary);
        let features = world.features();
        assert!(!features.is_empty(), "the node does not report {} among its providers", agent.provider);
        let mut cells = Vec::new();
        for (scenario, needs) in SCENARIOS {
            let unsupported = needs.filter(|feature| !features.iter().any(|advertised| advertised == feature));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_scenario(&world, scenario)))
                .unwrap_or_else(|panic| {
                    Err(panic.downcast_ref::<String>().cloned().unwrap_or_else(|| "panicked".into()))
                });
            let outcome = outcome
                .map_err(|reason| reason.replace('\n', " ").replace('|', "/").chars().take(320).collect::<String>());
            // A scenario the agent is not said to support runs all the same:
            // its cell says what happened, and fails nothing.
            cells.push(match (unsupported, outcome) {
                (None, Ok(())) => "pass".to_string(),
                (Some(feature), Ok(())) => format!("pass (though no `{feature}` is advertised)"),
                (Some(feature), Err(reason)) => format!("not supported (no `{feature}`): {reason}"),
                (None, Err(reason)) => {
                    failures.push(format!("{} / {scenario}: {reason}", agent.provider));
                    format!("**fail**: {reason}")
                }
            });
        }
        rows.push((agent.provider, cells));
    }
    let mut table = String::from("| scenario |");
    for (provider, _) in &rows {
        table.push_str(&format!(" {provider} |"));
    }
    table.push_str("\n| --- |");
    for _ in &rows {
        table.push_str(" --- |");
    }
    table.push('\n');
    for (index, (scenario, _)) in SCENARIOS.iter().enumerate() {
        table.push_str(&format!("| {scenario} |"));
        for (_, cells) in &rows {
            table.push_str(&format!(" {} |", cells[index]));
        }
        table.push('\n');
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/conformance.md");
    let _ = std::fs::write(&target, &table);
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "conformance matrix:\n{table}");
    assert!(failures.is_empty(), "conformance failures:\n{}", failures.join("\n"));
}
