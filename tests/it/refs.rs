//! Sharing sessions through a git remote with `cortex refs push|fetch`.

use crate::support::TestEnv;

#[test]
fn sessions_pushed_from_one_clone_are_fetched_by_another() {
    let env = TestEnv::new();
    let remote = env.origin("remote.git");
    env.git(&env.repo, ["push", "-q", "origin", "main"]);

    let script = env.script("s.toml", "[[step]]\nwrite_file = { path = \"shared.txt\", content = \"hello\\n\" }\n");
    let id = env.start("share me", &script);
    let pushed = env.cortex_ok(["refs", "push"]);
    assert!(pushed.stderr.contains("Pushed 1 session ref(s) to origin."), "{}", pushed.stderr);

    // A plain clone does not bring the session refs: sharing is opt-in.
    let clone = env.path("clone");
    env.git(env.root.path(), ["clone", "-q", remote.to_str().unwrap(), clone.to_str().unwrap()]);
    assert!(env.session_refs(&clone).is_empty());

    // The second clone is another machine: its own CORTEX_HOME.
    let mut other = env.cortex_command(&clone);
    other.env("CORTEX_HOME", env.path("other-home")).args(["refs", "fetch"]);
    let fetched = other.output().unwrap();
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    assert!(String::from_utf8_lossy(&fetched.stderr).contains("1 new"));

    let run = |args: &[&str]| {
        let output = env.cortex_command(&clone).env("CORTEX_HOME", env.path("other-home")).args(args).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let listed: serde_json::Value = serde_json::from_str(&run(&["session", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    let show = run(&["session", "show", &id]);
    assert!(show.contains("share me"), "{show}");
    let diff = run(&["session", "diff", &id]);
    assert!(diff.contains("+hello"), "{diff}");
    let here: serde_json::Value =
        serde_json::from_str(&env.cortex_ok(["session", "show", &id, "--json"]).stdout).unwrap();
    let there: serde_json::Value = serde_json::from_str(&run(&["session", "show", &id, "--json"])).unwrap();
    assert_eq!(here["turns"], there["turns"]);
    assert_eq!(here["session"]["last_seq"], there["session"]["last_seq"]);

    // A second turn pushed later fast-forwards the fetched copy.
    env.cortex_ok(["session", "send", &id, "more"]);
    env.cortex_ok(["refs", "push"]);
    let output =
        env.cortex_command(&clone).env("CORTEX_HOME", env.path("other-home")).args(["refs", "fetch"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("1 updated"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_push_never_overwrites_history_the_remote_has() {
    let env = TestEnv::new();
    let remote = env.origin("remote.git");
    let id = env.start("one", &env.script("s.toml", ""));
    env.cortex_ok(["refs", "push"]);
    env.cortex_ok(["session", "send", &id, "two"]);
    env.cortex_ok(["refs", "push"]);
    // Rewind the local ref to the older tip: a push would now be a rewrite.
    let reference = format!("refs/cortex/sessions/{id}");
    env.git(&env.repo, ["update-ref", &reference, &format!("{reference}~1")]);
    let refused = env.cortex(["refs", "push"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("cortex refs fetch origin"), "{}", refused.stderr);
    let remote_tip = env.git(&remote, ["rev-parse", &reference]);
    let local_tip = env.git(&env.repo, ["rev-parse", &reference]);
    assert_ne!(remote_tip, local_tip, "the remote keeps its newer history");
}
