//! The real `codex` binary (app-server) against a scripted model on
//! 127.0.0.1: turns, approvals, interrupts, resume after the child dies.
//! Skipped with a printed reason when codex is not installed, except with
//! `CI=true`, where that fails.

use std::path::{Path, PathBuf};

use crate::support::TestEnv;
use crate::support::agents::{log, send_later};
use crate::support::cluster::{CoreProcess, free_port, wait_state};
use crate::support::model::Model;
use crate::support::{app_servers, codex_binary, wait_for};

/// A Core with a local node, and a repository whose codex talks to `model`.
fn setup(env: &TestEnv, policy: &str) -> Option<(Model, CoreProcess)> {
    setup_with(env, policy, "")
}

/// Like [`setup`], with `extra` at the top of `.cortex/config.toml`.
fn setup_with(env: &TestEnv, policy: &str, extra: &str) -> Option<(Model, CoreProcess)> {
    let codex = codex_binary()?;
    let model = Model::start();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    let config = format!("{extra}\n{}", model.config(&codex, &env.path("codex-home"), policy));
    std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    Some((model, core))
}

fn send(env: &TestEnv, core: &CoreProcess, id: &str, prompt: &str) -> serde_json::Value {
    let run = env.cortex_at(core, &env.repo, ["session", "send", id, prompt, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
}

fn thread_of(env: &TestEnv, id: &str) -> String {
    crate::support::agents::resume_ref(env, id)
}

#[test]
fn three_turns_on_one_live_codex_thread() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env, "never") else { return };
    let codex_home: PathBuf = env.path("codex-home");
    let start =
        env.cortex_at(&core, &env.repo, ["session", "start", "say hello there", "--provider", "codex", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let thread = thread_of(&env, &id);
    assert!(!thread.is_empty(), "the thread id is the resume reference");
    let first_child = app_servers(&codex_home);
    assert_eq!(first_child.len(), 1);

    send(&env, &core, &id, "run echo from-the-shell");
    send(&env, &core, &id, "add notes.txt written by codex");

    let events = log(&env, &core, &id);
    let messages: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "assistant_message")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "hello there");
    let finished = events.iter().find(|event| event["kind"] == "command_finished").unwrap();
    assert_eq!(finished["exit_code"], 0);
    let output: String = events
        .iter()
        .filter(|event| event["kind"] == "command_output")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert!(output.contains("from-the-shell"), "{output}");
    assert!(
        events
            .iter()
            .any(|event| event["kind"] == "file_changed" && event["path"] == "notes.txt" && event["change"] == "added")
    );
    let patch = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:turns/3/diff.patch")]);
    assert!(patch.contains("+written by codex"), "{patch}");
    assert_eq!(std::fs::read_to_string(env.repo.join("notes.txt")).unwrap(), "written by codex\n");
    assert_eq!(thread_of(&env, &id), thread, "one thread throughout");
    assert_eq!(app_servers(&codex_home), first_child, "one live child for all three turns");
    let raw = env.git(&env.repo, ["ls-tree", "-r", "--name-only", &format!("refs/cortex/sessions/{id}"), "raw/"]);
    assert!(!raw.trim().is_empty(), "codex's own lines are kept under raw/");
}

#[test]
fn codex_approvals_wait_for_a_person() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env, "untrusted") else { return };
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "say ready", "--provider", "codex", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();

    let denied = send_later(&env, &core, &id, "run touch denied.txt");
    wait_state(&env, &core, &id, "awaiting_approval");
    let deny = env.cortex_at(&core, env.root.path(), ["session", "deny", &id]);
    assert_eq!(deny.code, 0, "{}", deny.stderr);
    let output = denied.join().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "completed", "a declined command does not end the turn");
    assert!(!env.repo.join("denied.txt").exists(), "a denied command leaves the workspace untouched");

    let approved = send_later(&env, &core, &id, "run touch approved.txt");
    wait_state(&env, &core, &id, "awaiting_approval");
    let approve = env.cortex_at(&core, env.root.path(), ["session", "approve", &id]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    assert!(approved.join().unwrap().status.success());
    assert!(env.repo.join("approved.txt").exists(), "the approved command ran");

    let events = log(&env, &core, &id);
    let decisions: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "approval_resolved")
        .map(|event| event["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["denied", "approved"]);
    let requests: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "approval_requested")
        .map(|event| event["prompt"].as_str().unwrap())
        .collect();
    assert!(requests[0].contains("touch denied.txt"), "{requests:?}");
}

#[test]
fn an_interrupted_codex_turn_ends_idle_and_the_thread_goes_on() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env, "never") else { return };
    let codex_home = env.path("codex-home");
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "say hi", "--provider", "codex", "--json"]);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let thread = thread_of(&env, &id);
    let streaming = send_later(&env, &core, &id, "slowstream");
    wait_state(&env, &core, &id, "running");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let interrupt = env.cortex_at(&core, env.root.path(), ["session", "interrupt", &id]);
    assert_eq!(interrupt.code, 0, "{}", interrupt.stderr);
    let output = streaming.join().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "interrupted");
    assert_eq!(report["state"], "idle");
    let events = log(&env, &core, &id);
    assert!(
        events.iter().any(|event| event["kind"] == "assistant_delta" && event["text"] == "tick0 "),
        "streamed text arrives as deltas while the turn runs"
    );
    assert_eq!(app_servers(&codex_home).len(), 1, "no codex process is left over");
    let next = send(&env, &core, &id, "say after the interrupt");
    assert_eq!(next["outcome"], "completed");
    assert_eq!(thread_of(&env, &id), thread);
}

#[test]
fn a_killed_codex_child_is_replaced_and_resumes_the_thread() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env, "never") else { return };
    let codex_home = env.path("codex-home");
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "say one", "--provider", "codex", "--json"]);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let thread = thread_of(&env, &id);
    for pid in app_servers(&codex_home) {
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    }
    wait_for(|| app_servers(&codex_home).is_empty().then_some(())).expect("the child is gone");
    let next = send(&env, &core, &id, "say two");
    assert_eq!(next["outcome"], "completed");
    assert_eq!(thread_of(&env, &id), thread, "the same codex thread continues");
    let events = log(&env, &core, &id);
    assert!(events.iter().any(|event| event["text"] == "two"));
    // Not Cortex's word for it: the model, asked by the new child, sees the
    // turns the killed child had.
    send(&env, &core, &id, "recall");
    let events = log(&env, &core, &id);
    let recalled = events.iter().filter_map(|event| event["text"].as_str()).find(|text| text.starts_with("recalled:"));
    assert_eq!(recalled, Some("recalled: say one | say two | recall"), "{events:#?}");
}

#[test]
fn an_expired_codex_session_has_no_child_and_send_resumes_it() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup_with(&env, "never", "idle_limit_secs = 1") else { return };
    let codex_home = env.path("codex-home");
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "say before", "--provider", "codex", "--json"]);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let thread = thread_of(&env, &id);
    wait_state(&env, &core, &id, "expired");
    wait_for(|| app_servers(&codex_home).is_empty().then_some(())).expect("expiry stops the live child");
    let next = send(&env, &core, &id, "say after");
    assert_eq!(next["outcome"], "completed");
    assert_eq!(thread_of(&env, &id), thread);
    assert_eq!(app_servers(&codex_home).len(), 1);
}

/// What a session did, in the terms both adapters report alike.
fn projection(events: &[serde_json::Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|event| {
            let kind = event["kind"].as_str()?;
            let value = match kind {
                "user_message" | "assistant_message" => event["text"].as_str()?.to_string(),
                "command_finished" => event["exit_code"].to_string(),
                "file_changed" => format!("{} {}", event["change"].as_str()?, event["path"].as_str()?),
                "turn_finished" => event["outcome"].as_str()?.to_string(),
                "token_usage" => event["usage"]["total_tokens"].to_string(),
                _ => return None,
            };
            Some((kind.to_string(), value))
        })
        .collect()
}

/// Runs the three-turn script in-process (no Core) in a fresh repository.
fn three_turns_in_process(env: &TestEnv, model: &Model, codex: &Path, provider: &str) -> Vec<serde_json::Value> {
    let repo = env.repo(&format!("repo-{provider}"));
    std::fs::create_dir_all(repo.join(".cortex")).unwrap();
    let home = env.path(&format!("codex-home-{provider}"));
    std::fs::write(repo.join(".cortex/config.toml"), model.config(codex, &home, "never")).unwrap();
    std::fs::write(repo.join(".gitignore"), ".cortex/\n").unwrap();
    let start = env.cortex_in(&repo, ["session", "start", "say hello there", "--provider", provider, "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    for prompt in ["run echo from-the-shell", "add notes.txt written by codex"] {
        let sent = env.cortex_in(&repo, ["session", "send", &id, prompt, "--json"]);
        assert_eq!(sent.code, 0, "{}", sent.stderr);
        assert_eq!(sent.json()["outcome"], "completed");
    }
    assert_eq!(std::fs::read_to_string(repo.join("notes.txt")).unwrap(), "written by codex\n");
    let log = env.cortex_in(&repo, ["session", "log", &id, "--json"]);
    log.json().as_array().unwrap().clone()
}

#[test]
fn both_adapters_report_the_same_session() {
    let env = TestEnv::new();
    let Some(codex) = codex_binary() else { return };
    let model = Model::start();
    let live = three_turns_in_process(&env, &model, &codex, "codex");
    let exec = three_turns_in_process(&env, &model, &codex, "codex-exec");
    let expected: Vec<(String, String)> = [
        ("user_message", "say hello there"),
        ("assistant_message", "hello there"),
        ("token_usage", "15"),
        ("turn_finished", "completed"),
        ("user_message", "run echo from-the-shell"),
        ("command_finished", "0"),
        ("assistant_message", "done with: run echo from-the-shell"),
        ("token_usage", "30"),
        ("turn_finished", "completed"),
        ("user_message", "add notes.txt written by codex"),
        ("file_changed", "added notes.txt"),
        ("assistant_message", "done with: add notes.txt written by codex"),
        ("token_usage", "30"),
        ("turn_finished", "completed"),
    ]
    .iter()
    .map(|(kind, value)| (kind.to_string(), value.to_string()))
    .collect();
    assert_eq!(projection(&live), expected);
    assert_eq!(projection(&exec), expected);
}

#[test]
fn steering_adds_input_to_a_running_codex_turn() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env, "never") else { return };
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "say hi", "--provider", "codex", "--json"]);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let streaming = send_later(&env, &core, &id, "slowstream");
    wait_state(&env, &core, &id, "running");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let steer = env.cortex_at(&core, env.root.path(), ["session", "steer", &id, "say steered answer"]);
    assert_eq!(steer.code, 0, "{}", steer.stderr);
    let output = streaming.join().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "completed", "{}", String::from_utf8_lossy(&output.stderr));
    let events = log(&env, &core, &id);
    let turn_two: Vec<&serde_json::Value> = events.iter().filter(|event| event["turn"] == 2).collect();
    assert!(turn_two.iter().any(|event| event["kind"] == "user_message" && event["text"] == "say steered answer"));
    assert!(turn_two.iter().any(|event| event["kind"] == "assistant_message" && event["text"] == "steered answer"));
    // Nothing to steer once the turn is over, and the fake cannot be steered.
    let idle = env.cortex_at(&core, env.root.path(), ["session", "steer", &id, "late"]);
    assert_eq!(idle.code, 2);
    assert!(idle.stderr.contains("not running a turn"), "{}", idle.stderr);
}

#[test]
fn a_killed_node_comes_back_and_continues_the_codex_thread() {
    let env = TestEnv::new();
    let Some(codex) = codex_binary() else { return };
    let model = Model::start();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), model.config(&codex, &env.path("codex-home"), "never"))
        .unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let token = env.enroll(&core, "worker");
    let node_home = env.path("worker-home");
    let mut node = env.start_node(&core.url, &node_home, Some(&token), "worker.log");
    crate::support::cluster::wait_node_status(&env, &core, "worker", "online");
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "say first", "--provider", "codex", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let thread = thread_of(&env, &id);
    // The capabilities say what each provider can do.
    let shown = env.cortex_at(&core, env.root.path(), ["node", "show", "worker"]).stdout;
    let exec = shown.lines().find(|line| line.starts_with("provider  codex-exec "));
    assert!(exec.is_some_and(|line| line.ends_with("(interrupt, resume, usage, output)")), "{shown}");

    node.kill(); // SIGKILL while idle
    wait_for(|| app_servers(&env.path("codex-home")).is_empty().then_some(())).expect("codex exits with its node");
    let _node = env.start_node(&core.url, &node_home, None, "worker-again.log");
    crate::support::cluster::wait_node_status(&env, &core, "worker", "online");
    let next = send(&env, &core, &id, "say second");
    assert_eq!(next["outcome"], "completed");
    assert_eq!(thread_of(&env, &id), thread, "the same codex thread continues after the node restart");
    send(&env, &core, &id, "recall");
    let events = log(&env, &core, &id);
    let recalled = events.iter().filter_map(|event| event["text"].as_str()).find(|text| text.starts_with("recalled:"));
    assert_eq!(recalled, Some("recalled: say first | say second | recall"), "the model sees the earlier turns");
}
