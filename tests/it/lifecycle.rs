//! The session lifecycle through Core: approvals answered from the CLI,
//! interrupts, and moves that are refused.

use crate::support::TestEnv;
use crate::support::cluster::{CoreProcess, decisions, free_port, wait_state};

const GUARDED: &str = "[[turn]]\n[[turn.step]]\napproval = \"write the file?\"\n[[turn.step]]\nwrite_file = { path = \"guarded.txt\", content = \"yes\\n\" }\n[[turn.step]]\nmessage = \"after the question\"\n";

fn start(env: &TestEnv, core: &CoreProcess, script: &str) -> String {
    let script = env.script("script.toml", script);
    let run = env.cortex_at(
        core,
        &env.repo,
        ["session", "start", "guarded", "--script", script.to_str().unwrap(), "--detach"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout.trim().to_string()
}

#[test]
fn a_denied_approval_skips_the_step_and_the_turn_goes_on() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let id = start(&env, &core, GUARDED);
    wait_state(&env, &core, &id, "awaiting_approval");
    let deny = env.cortex_at(&core, env.root.path(), ["session", "deny", &id]);
    assert_eq!(deny.code, 0, "{}", deny.stderr);
    wait_state(&env, &core, &id, "idle");
    assert!(!env.repo.join("guarded.txt").exists(), "a denied step leaves the workspace untouched");
    assert_eq!(decisions(&env, &core, &id)[0].0, "denied");
    let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
    assert!(log.as_array().unwrap().iter().any(|event| event["text"] == "after the question"));

    // Nothing is waiting any more: a second answer is refused and says why.
    let again = env.cortex_at(&core, env.root.path(), ["session", "approve", &id]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("has no approval waiting"), "{}", again.stderr);
}

#[test]
fn an_approval_runs_the_step_and_for_session_covers_the_rest() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let twice = format!(
        "{GUARDED}[[turn.step]]\napproval = \"and again?\"\n[[turn.step]]\nwrite_file = {{ path = \"second.txt\", content = \"2\\n\" }}\n"
    );
    let id = start(&env, &core, &twice);
    wait_state(&env, &core, &id, "awaiting_approval");
    let approve = env.cortex_at(&core, env.root.path(), ["session", "approve", &id, "--for-session"]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    wait_state(&env, &core, &id, "idle");
    assert_eq!(std::fs::read_to_string(env.repo.join("guarded.txt")).unwrap(), "yes\n");
    assert_eq!(std::fs::read_to_string(env.repo.join("second.txt")).unwrap(), "2\n");
    let decisions = decisions(&env, &core, &id);
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0].0, "approved");
    assert_eq!(decisions[1], ("approved".to_string(), "approved for the session".to_string()));
}

#[test]
fn an_interrupt_ends_the_turn_and_the_session_takes_the_next_one() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let id = start(
        &env,
        &core,
        "[[turn]]\n[[turn.step]]\nsleep_ms = 30000\n[[turn.step]]\nmessage = \"never\"\n[[turn]]\n[[turn.step]]\nmessage = \"next\"\n",
    );
    wait_state(&env, &core, &id, "running");
    let interrupt = env.cortex_at(&core, env.root.path(), ["session", "interrupt", &id]);
    assert_eq!(interrupt.code, 0, "{}", interrupt.stderr);
    let session = wait_state(&env, &core, &id, "idle");
    assert_eq!(session["turns"], 1);
    let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
    let events = log.as_array().unwrap();
    assert!(events.iter().any(|event| event["kind"] == "turn_finished" && event["outcome"] == "interrupted"));
    assert!(!events.iter().any(|event| event["text"] == "never"));
    assert!(events.iter().any(|event| event["to"] == "interrupted"));

    // Nothing runs now: another interrupt is refused, a turn is welcome.
    let idle = env.cortex_at(&core, env.root.path(), ["session", "interrupt", &id]);
    assert_eq!(idle.code, 2);
    assert!(idle.stderr.contains("not running a turn"), "{}", idle.stderr);
    let next = env.cortex_at(&core, &env.repo, ["session", "send", &id, "go", "--json"]);
    assert_eq!(next.json()["outcome"], "completed", "{}", next.stderr);
}

#[test]
fn approve_and_interrupt_need_a_core_and_say_so() {
    let env = TestEnv::new();
    let id = env.start("local", &env.script("s.toml", ""));
    for command in ["approve", "deny", "interrupt"] {
        let run = env.cortex(["session", command, &id]);
        assert_eq!(run.code, 2, "{command}");
        assert!(run.stderr.contains("needs a running Core"), "{command}: {}", run.stderr);
    }
}

#[test]
fn an_idle_session_expires_and_the_next_turn_resumes_it() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "idle_limit_secs = 1\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let run = env.cortex_at(&core, &env.repo, ["session", "start", "short-lived", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    let expired = wait_state(&env, &core, &id, "expired");
    assert!(expired["state_reason"].as_str().unwrap().contains("past the idle limit of 1 s"), "{expired}");
    let resumed = env.cortex_at(&core, &env.repo, ["session", "send", &id, "still there?", "--json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(resumed.json()["turn"], 2);
    let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
    let moves: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "lifecycle")
        .map(|event| event["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(moves[moves.len() - 4..], ["idle", "expired", "running", "idle"]);
}
