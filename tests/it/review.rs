//! `cortex session review`: comments and a verdict recorded as the
//! reviewer's events in the session ref, open comments handed back to the
//! agent as its next turn, bad input refused before anything is written;
//! alike in-process and through Core.

use serde_json::Value;

use crate::support::cluster::free_port;
use crate::support::{Run, TestEnv};

const SCRIPT: &str =
    "[[step]]\nwrite_file = { path = \"src/lib.rs\", content = \"pub fn one() -> u32 {\\n    1\\n}\\n\" }\n";

/// One reviewer's loop on a fresh session; returns the answers and the
/// session's event kinds, for comparing surfaces.
fn review_loop(env: &TestEnv, cortex: &dyn Fn(&[&str]) -> Run) -> (Vec<Value>, Vec<String>) {
    let script = env.script("s.toml", SCRIPT);
    let started = cortex(&["session", "start", "write lib", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    let events = |id: &str| -> Vec<Value> {
        let log = cortex(&["session", "log", id, "--json"]);
        assert_eq!(log.code, 0, "{}", log.stderr);
        log.json().as_array().unwrap().clone()
    };

    let first = cortex(&["session", "review", &id, "--comment", "src/lib.rs:2", "this should be two", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first = first.json();
    assert_eq!((first["comments"].as_u64(), first.get("verdict"), first.get("turn")), (Some(1), None, None));

    // Bad input is refused, exit 2, and nothing is written.
    let before = events(&id).len();
    for (args, says) in [
        (vec!["--comment", "../outside.txt:1", "x"], "not a file of the session"),
        (vec!["--comment", "/etc/passwd:1", "x"], "not a file of the session"),
        (vec!["--comment", "src/lib.rs:0", "x"], "counted from 1"),
        (vec!["--comment", "src/lib.rs:1", "  "], "empty"),
        (vec![], "nothing to record"),
    ] {
        let mut all = vec!["session", "review", id.as_str()];
        all.extend(args.iter());
        let refused = cortex(&all);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(refused.stderr.contains(says), "{args:?}: {}", refused.stderr);
    }
    assert_eq!(events(&id).len(), before, "a refused review writes nothing");

    let handed = cortex(&[
        "session",
        "review",
        &id,
        "--comment",
        "src/lib.rs",
        "add a doc comment",
        "--request-changes",
        "--json",
    ]);
    assert_eq!(handed.code, 0, "{}", handed.stderr);
    let handed = handed.json();
    assert_eq!(handed["verdict"], "request_changes");
    assert_eq!(handed["turn"], 2);
    assert_eq!(handed["turn_report"]["outcome"], "completed", "{handed}");
    let prompt = handed["prompt"].as_str().unwrap();
    for part in ["1. src/lib.rs:2\n", "   >     1\n", "this should be two", "2. src/lib.rs\n", "add a doc comment"] {
        assert!(prompt.contains(part), "{part:?} missing from the prompt:\n{prompt}");
    }
    // The next turn is that prompt, for every provider: the fake echoes it.
    let log = events(&id);
    let asked = log.iter().find(|event| event["kind"] == "user_message" && event["turn"] == 2).unwrap();
    assert_eq!(asked["text"], prompt);
    let comment = log.iter().find(|event| event["kind"] == "review_comment" && event["line"] == 2).unwrap();
    assert_eq!((comment["quote"].as_str(), comment["path"].as_str()), (Some("    1"), Some("src/lib.rs")));

    // The comments were handed back: a second request has nothing to hand.
    let again = cortex(&["session", "review", &id, "--request-changes"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("no open comments"), "{}", again.stderr);
    let approved = cortex(&["session", "review", &id, "--approve", "--json"]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let approved = approved.json();
    assert_eq!(approved["verdict"], "approve");

    let kinds = events(&id)
        .iter()
        .filter_map(|event| event["kind"].as_str().filter(|kind| kind.starts_with("review")).map(str::to_string))
        .collect();
    let mut answers = vec![first, handed, approved];
    for answer in &mut answers {
        let object = answer.as_object_mut().unwrap();
        object.remove("session_id");
        if let Some(report) = object.get_mut("turn_report").and_then(Value::as_object_mut) {
            for volatile in ["session_id", "ref", "workspace_path", "last_seq"] {
                report.remove(volatile);
            }
        }
    }
    (answers, kinds)
}

#[test]
fn a_review_is_recorded_and_handed_back_alike_in_process_and_through_core() {
    let local = TestEnv::new();
    let (answers, kinds) = review_loop(&local, &|args| local.cortex(args));
    assert_eq!(kinds, ["review_comment", "review_comment", "review_verdict", "review_verdict"]);

    let remote = TestEnv::new();
    let core = remote.start_core("up", &remote.cortex_home, free_port());
    let through_core = review_loop(&remote, &|args| remote.cortex_at(&core, &remote.repo, args));
    assert_eq!(through_core, (answers, kinds), "the same review gives the same answers through Core");
}

#[test]
fn review_events_survive_an_index_rebuild_and_travel_with_the_ref() {
    let env = TestEnv::new();
    let remote = env.origin("remote.git");
    env.git(&env.repo, ["push", "-q", "origin", "main"]);
    let script = env.script("s.toml", SCRIPT);
    let id = env.start("write lib", &script);
    env.cortex_ok(["session", "review", &id, "--comment", "src/lib.rs:1", "name it better", "--approve"]);
    let reviewed = |run: Run| -> Vec<String> {
        run.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"].as_str().is_some_and(|kind| kind.starts_with("review")))
            .map(|event| {
                format!(
                    "{} {}",
                    event["kind"],
                    event["text"].as_str().unwrap_or(event["verdict"].as_str().unwrap_or(""))
                )
            })
            .collect()
    };
    let expected = ["\"review_comment\" name it better", "\"review_verdict\" approve"];
    assert_eq!(reviewed(env.cortex_ok(["session", "log", &id, "--json"])), expected);
    env.cortex_ok(["index", "rebuild"]);
    assert_eq!(reviewed(env.cortex_ok(["session", "log", &id, "--json"])), expected, "after index rebuild");

    env.cortex_ok(["refs", "push"]);
    let clone = env.path("clone");
    env.git(env.root.path(), ["clone", "-q", remote.to_str().unwrap(), clone.to_str().unwrap()]);
    let other = |args: &[&str]| {
        Run::from(env.cortex_command(&clone).env("CORTEX_HOME", env.path("other")).args(args).output().unwrap())
    };
    assert_eq!(other(&["refs", "fetch"]).code, 0);
    assert_eq!(reviewed(other(&["session", "log", &id, "--json"])), expected, "in another clone");
}
