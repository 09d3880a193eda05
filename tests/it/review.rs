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
        (vec!["--comment", "src/lib.rs:3-1", "x"], "ends before it starts"),
        (vec!["--viewed", "../outside.txt"], "not a file of the session"),
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
    env.cortex_ok(["session", "review", &id, "--comment", "src/lib.rs:1-2", "name it better", "--approve"]);
    env.cortex_ok(["session", "review", &id, "--viewed", "src/lib.rs"]);
    let reviewed = |run: Run| -> Vec<String> {
        run.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"].as_str().is_some_and(|kind| kind.starts_with("review")))
            .map(|event| {
                let what =
                    [&event["text"], &event["verdict"], &event["path"]].into_iter().find_map(|what| what.as_str());
                format!("{} {}", event["kind"], what.unwrap_or(""))
            })
            .collect()
    };
    let expected = ["\"review_comment\" name it better", "\"review_verdict\" approve", "\"review_viewed\" src/lib.rs"];
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

#[test]
fn commit_takes_what_was_reviewed_and_refuses_a_tree_changed_since() {
    let env = TestEnv::new();
    let script = env.script("s.toml", SCRIPT);
    let reviewed_content = "pub fn one() -> u32 {\n    1\n}\n";
    let id = env.start("write lib", &script);
    env.cortex_ok(["session", "review", &id, "--approve"]);
    let head = || env.git(&env.repo, ["rev-parse", "HEAD"]);
    let before = head();

    // The person edits the file after the review: the commit refuses.
    std::fs::write(env.repo.join("src/lib.rs"), "pub fn one() -> u32 { 2 }\n").unwrap();
    let refused = env.cortex(["session", "commit", &id]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("src/lib.rs") && refused.stderr.contains("--as-reviewed"), "{}", refused.stderr);
    assert_eq!(head(), before, "nothing is committed");

    // --as-reviewed commits the snapshot and leaves the edit in place.
    let committed = env.cortex_ok(["session", "commit", &id, "--as-reviewed", "--json"]);
    let commit = committed.json()["commit"].as_str().unwrap().to_string();
    assert_eq!(head().trim(), commit);
    assert_eq!(env.git(&env.repo, ["show", "HEAD:src/lib.rs"]), reviewed_content);
    assert_eq!(std::fs::read_to_string(env.repo.join("src/lib.rs")).unwrap(), "pub fn one() -> u32 { 2 }\n");
    assert_eq!(env.git(&env.repo, ["status", "--porcelain", "--", "src/lib.rs"]), " M src/lib.rs\n");
    let message = env.git(&env.repo, ["log", "-1", "--format=%B"]);
    assert!(message.contains(&format!("Cortex-Session: {id}")), "{message}");
    assert!(message.contains("Reviewed-by: a person"), "{message}");
}

#[test]
fn reviewed_by_is_only_for_an_approval_of_the_last_turn() {
    let env = TestEnv::new();
    let script = env.script("s.toml", SCRIPT);
    let trailers = |id: &str| {
        env.cortex_ok(["session", "commit", id]);
        env.git(&env.repo, ["log", "-1", "--format=%(trailers:only)"])
    };

    // Approved, nothing changed since: both trailers, the files as reviewed.
    let approved = env.start("write lib", &script);
    env.cortex_ok(["session", "review", &approved, "--approve"]);
    let both = trailers(&approved);
    assert!(both.contains("Cortex-Session:") && both.contains("Reviewed-by: a person"), "{both}");
    assert_eq!(env.git(&env.repo, ["show", "HEAD:src/lib.rs"]), "pub fn one() -> u32 {\n    1\n}\n");

    // Approved at turn 1, then the agent ran turn 2: the approval is stale.
    let two = "[[turn]]\n[[turn.step]]\nwrite_file = { path = \"b.txt\", content = \"1\\n\" }\n[[turn]]\n[[turn.step]]\nwrite_file = { path = \"b.txt\", content = \"2\\n\" }\n";
    let stale = env.start("write b", &env.script("two.toml", two));
    env.cortex_ok(["session", "review", &stale, "--approve"]);
    env.cortex_ok(["session", "send", &stale, "again", "--json"]);
    let only_session = trailers(&stale);
    assert!(only_session.contains("Cortex-Session:") && !only_session.contains("Reviewed-by"), "{only_session}");
}

#[test]
fn a_file_holding_a_secret_commits_as_it_is_and_its_redacted_snapshot_is_never_committed() {
    let env = TestEnv::new();
    let key = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    // The agent's shell builds the secret, so no script text holds it.
    let script =
        "[[step]]\ncommand = \"printf 'token = ghp_%s\\\\n' abcdefghijklmnopqrstuvwxyz0123456789 > conf.txt\"\n";
    let id = env.start("configure", &env.script("s.toml", script));
    let snapshot = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:turns/1/worktree/conf.txt")]);
    assert!(!snapshot.contains(key), "the snapshot keeps no secret: {snapshot}");

    // Unchanged since the snapshot (compared redacted): committed as it is.
    let unchanged = env.start("configure again", &env.script("t.toml", &script.replace("conf.txt", "other.txt")));
    env.cortex_ok(["session", "commit", &unchanged]);
    assert!(env.git(&env.repo, ["show", "HEAD:other.txt"]).contains(key));

    // Changed since: the reviewed content is not kept, so it is refused.
    std::fs::write(env.repo.join("conf.txt"), "token = changed\n").unwrap();
    let refused = env.cortex(["session", "commit", &id, "--as-reviewed"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("redacted"), "{}", refused.stderr);
    assert!(env.git(&env.repo, ["log", "--format=%s"]).lines().all(|subject| subject != "configure"));
}

/// A `cortex up` with one idle session that wrote `src/lib.rs`, and its id.
fn idle_session(env: &TestEnv) -> (crate::support::cluster::CoreProcess, String) {
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script("s.toml", SCRIPT);
    let started = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "write lib", "--script", script.to_str().unwrap(), "--json"],
    );
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    crate::support::cluster::wait_state(env, &core, &id, "idle");
    (core, id)
}

#[test]
fn the_panel_reviews_a_diff_hands_it_back_and_its_approval_signs_the_commit() {
    use crate::support::cluster::wait_state;
    use crate::support::panel::{Browser, logged_in};
    let env = TestEnv::new();
    let (core, id) = idle_session(&env);
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let browser = logged_in(&env, &core);
    let base = core.url.clone();
    let diff = browser.get(&format!("{base}/sessions/{id}/diff"));
    assert_eq!(diff.status, 200);
    assert!(diff.body.contains(&format!("action=\"/sessions/{id}/review\"")), "{}", diff.body);
    assert!(diff.body.contains("<option>src/lib.rs</option>"), "{}", diff.body);

    let url = format!("{base}/sessions/{id}/review");
    let form = [
        ("command_id", "web_review_1"),
        ("path", "src/lib.rs"),
        ("line", "2"),
        ("text", "make it two"),
        ("verdict", "request_changes"),
    ];
    assert_eq!(browser.post(&url, &form, Some("http://evil.example")).status, 403);
    assert_eq!(Browser::new().post(&url, &form, Some(&base)).status, 401);
    let bad_line = [("command_id", "web_review_bad"), ("path", "src/lib.rs"), ("line", "two"), ("text", "x")];
    assert_eq!(browser.post(&url, &bad_line, Some(&base)).status, 422);
    let handed = browser.post(&url, &form, Some(&base));
    assert_eq!((handed.status, handed.location()), (303, format!("/sessions/{id}").as_str()), "{}", handed.body);
    // The same form twice (a reload, a double click) is one review.
    assert_eq!(browser.post(&url, &form, Some(&base)).status, 303);
    let turn_two_done = |events: &serde_json::Value| {
        events.as_array().unwrap().iter().any(|event| event["kind"] == "turn_finished" && event["turn"] == 2)
    };
    let log = crate::support::wait_for(|| {
        Some(cortex(&["session", "log", &id, "--json"]).json()).filter(|events| turn_two_done(events))
    })
    .expect("the handed-back turn ran");
    wait_state(&env, &core, &id, "idle");
    let events = log.as_array().unwrap();
    let comments: Vec<_> = events.iter().filter(|event| event["kind"] == "review_comment").collect();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!((comments[0]["by"].as_str(), comments[0]["quote"].as_str()), (Some("panel"), Some("    1")));
    let prompt = events.iter().find(|event| event["kind"] == "user_message" && event["turn"] == 2).unwrap();
    let prompt = prompt["text"].as_str().unwrap();
    assert!(prompt.contains("src/lib.rs:2") && prompt.contains("make it two"), "{prompt}");

    // A comment goes back to the diff it was made on, never elsewhere.
    let diff_page = format!("/sessions/{id}/diff");
    for (back, to) in [
        (diff_page.as_str(), format!("{diff_page}#review")),
        ("https://evil.example/sessions/x/diff", format!("/sessions/{id}")),
        ("//evil.example/diff", format!("/sessions/{id}")),
    ] {
        let command = format!("web_back_{}", back.len());
        let note = [("command_id", command.as_str()), ("path", "src/lib.rs"), ("text", "noted"), ("back", back)];
        let noted = browser.post(&url, &note, Some(&base));
        assert_eq!((noted.status, noted.location()), (303, to.as_str()), "{back}");
    }
    let approve = [("command_id", "web_review_2"), ("verdict", "approve")];
    assert_eq!(browser.post(&url, &approve, Some(&base)).status, 303);
    let committed = cortex(&["session", "commit", &id]);
    assert_eq!(committed.code, 0, "{}", committed.stderr);
    let trailers = env.git(&env.repo, ["log", "-1", "--format=%(trailers:only)"]);
    assert!(trailers.contains("Reviewed-by: panel"), "{trailers}");
}

#[test]
fn a_named_panel_login_signs_its_review_and_the_commit_and_logs_out() {
    use crate::support::panel::Browser;
    let env = TestEnv::new();
    let (core, id) = idle_session(&env);
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);

    // A name that could forge a line or a trailer is refused, by the CLI and by the API.
    for bad in ["Ada\nReviewed-by: root", "", " Ada", "a:b"] {
        let refused = cortex(&["panel", "login", "--as", bad]);
        assert_eq!(refused.code, 2, "{bad:?}: {}", refused.stderr);
        assert!(refused.stderr.contains("is not a name"), "{}", refused.stderr);
    }
    let bearer = format!("Bearer {}", core.token());
    let api = Browser::new().post_json(
        &format!("{}/panel/login-links", core.url),
        &[("Authorization", bearer.as_str())],
        &serde_json::json!({ "name": "x\ny" }),
    );
    assert_eq!(api.status, 422, "{}", api.body);

    let link = cortex(&["panel", "login", "--as", "Ada Lovelace", "--json"]);
    assert_eq!(link.code, 0, "{}", link.stderr);
    assert!(link.stderr.contains("as Ada Lovelace"), "{}", link.stderr);
    let browser = Browser::log_in(link.json()["url"].as_str().unwrap());
    let base = core.url.clone();
    let review = [
        ("command_id", "web_named_1"),
        ("path", "src/lib.rs"),
        ("line", "1"),
        ("text", "fine"),
        ("verdict", "approve"),
    ];
    assert_eq!(browser.post(&format!("{base}/sessions/{id}/review"), &review, Some(&base)).status, 303);
    let log = cortex(&["session", "log", &id, "--json"]).json();
    let by: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "review_comment" || event["kind"] == "review_verdict")
        .map(|event| event["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["Ada Lovelace", "Ada Lovelace"]);
    let committed =
        browser.post(&format!("{base}/sessions/{id}/commit"), &[("command_id", "web_named_commit")], Some(&base));
    assert_eq!(committed.status, 303, "{}", committed.body);
    let trailers = env.git(&env.repo, ["log", "-1", "--format=%(trailers:only)"]);
    assert!(trailers.contains("Reviewed-by: Ada Lovelace"), "{trailers}");

    assert_eq!(browser.post(&format!("{base}/logout"), &[], Some(&base)).status, 200);
    assert_eq!(browser.get(&format!("{base}/")).status, 401, "logged out");
}
