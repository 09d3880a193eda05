//! A real ACP agent (`codex-acp`, Codex over the Agent Client Protocol)
//! against the scripted Responses model on 127.0.0.1: turns on one agent
//! process, permissions through Cortex, cancel, and `session/load` after the
//! process dies. Skipped with a printed reason when codex-acp is not
//! installed, except with `CI=true`, where that fails.

use std::path::PathBuf;

use crate::support::agents::{self, log, resume_ref, send, send_later};
use crate::support::cluster::{CoreProcess, decisions, free_port, wait_state};
use crate::support::model::Model;
use crate::support::{TestEnv, skip, wait_for};

fn agent_binary() -> Option<PathBuf> {
    let found = std::env::var_os("CORTEX_CODEX_ACP_BIN").map(PathBuf::from).filter(|path| path.exists());
    if found.is_none() {
        skip(
            "no codex-acp (install @zed-industries/codex-acp@0.16.0 and bubblewrap, set CORTEX_CODEX_ACP_BIN; .ci/run does)",
        );
    }
    found
}

/// A Core with a local node, and a repository whose codex-acp talks to the
/// model; Codex asks before anything that is not known to be safe.
fn setup(env: &TestEnv) -> Option<(Model, CoreProcess)> {
    let agent = agent_binary()?;
    let model = Model::start();
    let codex_home = env.path("codex-home");
    let tmp = env.path("agent-tmp");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let settings: Vec<String> = model.settings();
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            "model = \"gpt-5.5\"\napproval_policy = \"untrusted\"\nsandbox_mode = \"danger-full-access\"\n{}\n",
            to_toml(&settings)
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    let config = format!(
        "[agents.codex-acp]\ncommand = [\"{}\"]\nenv = {{ CODEX_HOME = \"{}\", FAKE_API_KEY = \"dummy\", TMPDIR = \"{}\" }}\n",
        agent.display(),
        codex_home.display(),
        tmp.display()
    );
    std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    Some((model, core))
}

/// The model's `-c` settings as TOML lines (`a.b.c=value` → a table).
fn to_toml(settings: &[String]) -> String {
    let mut top = Vec::new();
    let mut table = vec!["[model_providers.fake]".to_string()];
    for setting in settings {
        match setting.strip_prefix("model_providers.fake.") {
            Some(key) => table.push(key.to_string()),
            None => top.push(setting.clone()),
        }
    }
    format!("{}\n{}", top.join("\n"), table.join("\n"))
}

fn start(env: &TestEnv, core: &CoreProcess, prompt: &str) -> String {
    agents::start(env, core, "codex-acp", prompt)
}

/// Live codex-acp processes of this test.
fn agents(env: &TestEnv) -> Vec<u32> {
    agents::processes(&format!("CODEX_HOME={}", env.path("codex-home").display()), Some("codex-acp"))
}

#[test]
fn three_turns_on_one_acp_agent() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say hello there");
    let session = resume_ref(&env, &id);
    assert!(!session.is_empty(), "the agent's session id is the resume reference");
    let first = agents(&env);
    assert_eq!(first.len(), 1, "one agent process");
    send(&env, &core, &id, &["run echo from-the-shell"]);
    let added = send(&env, &core, &id, &["add notes.txt written by codex-acp", "--yes"]);
    assert_eq!(added["outcome"], "completed", "{added}");

    let events = log(&env, &core, &id);
    let text: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "assistant_message")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert_eq!(text[0], "hello there");
    let output: String = events
        .iter()
        .filter(|event| event["kind"] == "command_output")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert!(output.contains("from-the-shell"), "{events:#?}");
    assert!(events.iter().any(|event| event["kind"] == "file_changed" && event["path"] == "notes.txt"), "{events:#?}");
    let patch = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:turns/3/diff.patch")]);
    assert!(patch.contains("+written by codex-acp"), "{patch}");
    assert_eq!(resume_ref(&env, &id), session, "one agent session throughout");
    assert_eq!(agents(&env), first, "one live agent for all three turns");
}

#[test]
fn the_agent_asks_cortex_and_a_denial_runs_nothing() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say ready");
    let denied = send_later(&env, &core, &id, "run touch denied.txt");
    wait_state(&env, &core, &id, "awaiting_approval");
    assert_eq!(env.cortex_at(&core, env.root.path(), ["session", "deny", &id]).code, 0);
    let report: serde_json::Value = serde_json::from_slice(&denied.join().unwrap().stdout).unwrap();
    assert_eq!(report["state"], "idle", "{report}");
    assert!(!env.repo.join("denied.txt").exists(), "a denied command does not run");

    let approved = send_later(&env, &core, &id, "run touch approved.txt");
    wait_state(&env, &core, &id, "awaiting_approval");
    assert_eq!(env.cortex_at(&core, env.root.path(), ["session", "approve", &id]).code, 0);
    assert!(approved.join().unwrap().status.success());
    assert!(env.repo.join("approved.txt").exists(), "the approved command ran");
    let answers: Vec<String> = decisions(&env, &core, &id).into_iter().map(|(decision, _)| decision).collect();
    assert_eq!(answers, ["denied", "approved"]);
}

#[test]
fn a_cancelled_acp_turn_ends_idle_and_the_agent_takes_the_next() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say hi");
    let streaming = send_later(&env, &core, &id, "slowstream");
    wait_for(|| log(&env, &core, &id).iter().any(|event| event["text"] == "tick1 ").then_some(()))
        .expect("the slow stream arrives as deltas");
    assert_eq!(env.cortex_at(&core, env.root.path(), ["session", "interrupt", &id]).code, 0);
    let report: serde_json::Value = serde_json::from_slice(&streaming.join().unwrap().stdout).unwrap();
    assert_eq!((&report["outcome"], &report["state"]), (&"interrupted".into(), &"idle".into()), "{report}");
    assert_eq!(agents(&env).len(), 1, "the agent lives on");
    assert_eq!(send(&env, &core, &id, &["say after the cancel"])["outcome"], "completed");
}

#[test]
fn a_killed_acp_agent_is_loaded_again_with_its_history() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say one");
    let session = resume_ref(&env, &id);
    for pid in agents(&env) {
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    }
    wait_for(|| agents(&env).is_empty().then_some(())).expect("the agent is gone");
    let next = send(&env, &core, &id, &["recall"]);
    assert_eq!(next["outcome"], "completed", "{next}");
    assert_eq!(resume_ref(&env, &id), session, "the same agent session continues");
    let events = log(&env, &core, &id);
    let recalled = events.iter().filter_map(|event| event["text"].as_str()).find(|text| text.starts_with("recalled:"));
    assert_eq!(recalled, Some("recalled: say one | recall"), "the model is sent the earlier turn");
    assert_eq!(
        events.iter().filter(|event| event["kind"] == "user_message").count(),
        2,
        "the history the agent replays on load is not recorded twice"
    );
}

/// An agent the repository declares under a name of its own runs as
/// `--provider NAME`, and the session carries that name.
#[test]
fn an_acp_agent_declared_under_any_name_runs_under_it() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let config = std::fs::read_to_string(env.repo.join(".cortex/config.toml")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), config.replace("[agents.codex-acp]", "[agents.house-agent]"))
        .unwrap();
    let id = agents::start(&env, &core, "house-agent", "say hello there");
    let shown = env.cortex_at(&core, &env.repo, ["session", "show", &id, "--json"]).json();
    assert_eq!(shown["session"]["provider"], "house-agent", "{shown}");
    assert_eq!(shown["session"]["provider_version"], "0.16.0", "the agent's own word for its version: {shown}");
    let texts: Vec<_> =
        log(&env, &core, &id).into_iter().filter(|event| event["kind"] == "assistant_message").collect();
    assert_eq!(texts[0]["text"], "hello there");
    let next = send(&env, &core, &id, &["say again"]);
    assert_eq!(next["outcome"], "completed", "{next}");
}
