//! A `cortex` process killed mid-turn loses nothing: the next command in the
//! repository replays the spool into the ref.

use crate::support::{TestEnv, assert_gapless, wait_for};

#[test]
fn events_spooled_before_a_sigkill_are_recovered_once() {
    let env = TestEnv::new();
    let script = env.script(
        "slow.toml",
        "[[turn]]\n[[turn.step]]\nmessage = \"one\"\n[[turn.step]]\nmessage = \"two\"\n[[turn.step]]\nreasoning = \"three\"\n[[turn.step]]\nsleep_ms = 60000\n[[turn.step]]\nmessage = \"never\"\n",
    );
    let mut child = env.spawn_start(&env.repo, "slow", &script);

    // Wait until the reasoning event is durable in the spool, then kill.
    let spool_dir = env.repo.join(".git/cortex/spool");
    let spool = wait_for(|| {
        let entries = std::fs::read_dir(&spool_dir).ok()?;
        let path = entries
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "jsonl"))?;
        std::fs::read_to_string(&path).ok()?.contains("three").then_some(path)
    })
    .expect("the session never reached its sleep");
    child.kill(); // SIGKILL
    let id = spool.file_stem().unwrap().to_str().unwrap().to_string();

    let run = env.cortex_ok(["session", "log", &id, "--json"]);
    assert!(run.stderr.contains(&format!("of session {id}, marked interrupted")), "{}", run.stderr);
    let events = run.json();
    let count = assert_gapless(&events);
    let events = events.as_array().unwrap();
    let texts: Vec<&str> = events.iter().filter_map(|event| event["text"].as_str()).collect();
    assert_eq!(texts, ["slow", "one", "two", "three"]);
    let last = events.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["to"].as_str()), (Some("lifecycle"), Some("interrupted")));

    // The ref holds the same history, and the session can go on.
    let show = env.cortex_ok(["session", "show", &id, "--json"]).json();
    assert_eq!(show["session"]["state"], "interrupted");
    assert_eq!(show["session"]["last_seq"], count as u64);
    assert!(!spool.exists(), "the spool is gone once replayed");
    let sent = env.cortex_ok(["session", "send", &id, "go on", "--json"]).json();
    assert_eq!(sent["state"], "idle");
    assert_gapless(&env.cortex_ok(["session", "log", &id, "--json"]).json());
}
