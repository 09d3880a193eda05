//! The real `claude` binary (Claude Code, one headless process per session)
//! against a scripted Anthropic model on 127.0.0.1: turns on one process,
//! approvals through Cortex, interrupts, resume after the process dies.
//! Skipped with a printed reason when claude is not installed, except with
//! `CI=true`, where that fails.

use crate::support::agents::{self, log, resume_ref, send, send_later};
use crate::support::anthropic::{Anthropic, user_texts};
use crate::support::cluster::{CoreProcess, free_port, wait_state};
use crate::support::panel::Browser;
use crate::support::{TestEnv, claude_binary, wait_for};

/// A Core with a local node, and a repository whose claude talks to the model.
fn setup(env: &TestEnv) -> Option<(Anthropic, CoreProcess)> {
    let claude = claude_binary()?;
    let model = Anthropic::start();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), model.config(&claude)).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    Some((model, core))
}

fn start(env: &TestEnv, core: &CoreProcess, prompt: &str) -> String {
    agents::start(env, core, "claude", prompt)
}

/// Live claude processes talking to `model`.
fn processes(model: &Anthropic) -> Vec<u32> {
    agents::processes(&format!("ANTHROPIC_BASE_URL={}", model.url), None)
}

#[test]
fn three_turns_on_one_claude_process() {
    let env = TestEnv::new();
    let Some((model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say hello there");
    let session = resume_ref(&env, &id);
    assert!(!session.is_empty(), "Claude Code's session id is the resume reference");
    let first = processes(&model);
    assert_eq!(first.len(), 1, "one claude process");

    send(&env, &core, &id, &["run echo from-the-shell"]);
    let notes = env.repo.join("notes.txt");
    let write = format!("write {} written by claude", notes.display());
    let written = send(&env, &core, &id, &[&write, "--yes"]);
    assert_eq!(written["outcome"], "completed", "{written}");

    let events = log(&env, &core, &id);
    let text: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "assistant_message")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert_eq!(text[0], "hello there");
    assert!(events.iter().any(|event| event["kind"] == "assistant_delta"), "text is streamed");
    let output: String = events
        .iter()
        .filter(|event| event["kind"] == "command_output")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    assert!(output.contains("from-the-shell"), "{output}");
    let finished = events.iter().find(|event| event["kind"] == "command_finished").unwrap();
    assert_eq!(finished["exit_code"], 0);
    assert!(events.iter().any(|event| event["kind"] == "file_changed" && event["path"] == "notes.txt"));
    assert!(events.iter().any(|event| event["kind"] == "token_usage"), "usage per turn");
    let patch = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:turns/3/diff.patch")]);
    assert!(patch.contains("+written by claude"), "{patch}");
    assert_eq!(resume_ref(&env, &id), session, "one Claude session throughout");
    assert_eq!(processes(&model), first, "one live process for all three turns");
    let raw = env.git(&env.repo, ["ls-tree", "-r", "--name-only", &format!("refs/cortex/sessions/{id}"), "raw/"]);
    assert!(!raw.trim().is_empty(), "claude's own lines are kept under raw/");
    let shown = env.cortex_at(&core, &env.repo, ["session", "show", &id, "--json"]).json();
    assert_eq!(
        (&shown["session"]["provider"], &shown["session"]["provider_version"]),
        (&"claude".into(), &"2.1.328".into()),
        "the session names its agent and version"
    );
}

#[test]
fn claude_asks_cortex_before_it_writes_and_a_denial_writes_nothing() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say ready");
    let denied_path = env.repo.join("denied.txt");
    let denied = send_later(&env, &core, &id, &format!("write {} no", denied_path.display()));
    wait_state(&env, &core, &id, "awaiting_approval");
    // Denied from the panel here, approved from the CLI below (the
    // conformance matrix answers the other way round).
    let link = env.cortex_at(&core, env.root.path(), ["panel", "login"]);
    let browser = Browser::log_in(link.stdout.trim());
    let form = [("decision", "deny"), ("command_id", "claude_deny")];
    let deny = browser.post(&format!("{}/sessions/{id}/approval", core.url), &form, Some(&core.url));
    assert_eq!(deny.status, 303, "{}", deny.body);
    let output = denied.join().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"], "completed", "a denied write does not end the turn: {report}");
    assert!(!denied_path.exists(), "a denied write leaves the workspace untouched");

    let approved_path = env.repo.join("approved.txt");
    let approved = send_later(&env, &core, &id, &format!("write {} yes", approved_path.display()));
    wait_state(&env, &core, &id, "awaiting_approval");
    let approve = env.cortex_at(&core, env.root.path(), ["session", "approve", &id]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    assert!(approved.join().unwrap().status.success());
    assert_eq!(std::fs::read_to_string(&approved_path).unwrap(), "yes\n");

    let events = log(&env, &core, &id);
    let decisions: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "approval_resolved")
        .map(|event| event["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["denied", "approved"]);
    let by: Vec<&str> = events
        .iter()
        .filter(|event| event["kind"] == "approval_resolved")
        .map(|event| event["by"].as_str().unwrap())
        .collect();
    assert!(by[0].starts_with("panel"), "the denial is the panel's: {by:?}");
    let asked = events.iter().find(|event| event["kind"] == "approval_requested").unwrap();
    assert!(asked["prompt"].as_str().unwrap().starts_with("Write: "), "{asked}");
}

#[test]
fn an_interrupted_claude_turn_ends_idle_and_the_process_takes_the_next() {
    let env = TestEnv::new();
    let Some((model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say hi");
    let streaming = send_later(&env, &core, &id, "slowstream");
    wait_for(|| log(&env, &core, &id).iter().any(|event| event["text"] == "tick1 ").then_some(()))
        .expect("the slow stream arrives as deltas");
    let interrupt = env.cortex_at(&core, env.root.path(), ["session", "interrupt", &id]);
    assert_eq!(interrupt.code, 0, "{}", interrupt.stderr);
    let report: serde_json::Value = serde_json::from_slice(&streaming.join().unwrap().stdout).unwrap();
    assert_eq!((&report["outcome"], &report["state"]), (&"interrupted".into(), &"idle".into()), "{report}");
    assert_eq!(processes(&model).len(), 1, "the process lives on");
    let next = send(&env, &core, &id, &["say after the interrupt"]);
    assert_eq!(next["outcome"], "completed");
}

#[test]
fn a_killed_claude_process_is_resumed_with_its_transcript() {
    let env = TestEnv::new();
    let Some((model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say one");
    let session = resume_ref(&env, &id);
    wait_for(|| crate::support::claude_transcript_has(&env.repo, "\"text\":\"one\"").then_some(()))
        .expect("claude writes its transcript");
    for pid in processes(&model) {
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    }
    wait_for(|| processes(&model).is_empty().then_some(())).expect("the process is gone");
    let next = send(&env, &core, &id, &["recall"]);
    assert_eq!(next["outcome"], "completed", "{next}");
    assert_eq!(resume_ref(&env, &id), session, "the same Claude session continues");
    // Not Cortex's word for it: the model, asked by the new process, is
    // sent the turn the killed one had.
    let last = model.requests().last().cloned().unwrap();
    assert_eq!(user_texts(&last), ["say one", "recall"], "{last:#}");
}

/// A process killed before Claude Code wrote its transcript leaves nothing
/// to resume: the next turn says so and goes on in a new Claude session.
#[test]
fn a_lost_claude_transcript_is_said_and_the_session_goes_on() {
    let env = TestEnv::new();
    let Some((model, core)) = setup(&env) else { return };
    let id = start(&env, &core, "say one");
    for pid in processes(&model) {
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    }
    wait_for(|| processes(&model).is_empty().then_some(())).expect("the process is gone");
    std::fs::remove_dir_all(env.repo.join(".git/cortex/claude/home/projects")).unwrap();
    let next = send(&env, &core, &id, &["say two"]);
    assert_eq!(next["outcome"], "completed", "{next}");
    let events = log(&env, &core, &id);
    let warning = events.iter().find(|event| event["kind"] == "warning").expect("a warning says what was lost");
    assert!(warning["message"].as_str().unwrap().contains("no transcript"), "{warning}");
    assert!(events.iter().any(|event| event["text"] == "two"));
}
