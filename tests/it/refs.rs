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

/// A fetched ref is untrusted: one whose events, meta and layout are
/// garbage (malformed JSON, a seq from the future, a huge number, a
/// `meta.toml` that is not TOML, a chunk that is a tree) must not crash
/// the reviewer's Cortex; listing, rebuilding and reading say what is wrong.
#[test]
fn a_hostile_fetched_ref_cannot_crash_a_reviewer() {
    let env = TestEnv::new();
    let valid = env.start("a real session", &env.script("s.toml", "[[step]]\nmessage = \"real\"\n"));
    let hash = |content: &str| {
        let path = env.path("blob");
        std::fs::write(&path, content).unwrap();
        env.git(&env.repo, ["hash-object", "-w", path.to_str().unwrap()]).trim().to_string()
    };
    let hostile = [
        ("ses_01jabcdefghjkmnpqrstvwxyz0", "not toml [[[", "{\"seq\":1,\"kind\":\n{broken"),
        (
            "ses_01jabcdefghjkmnpqrstvwxyz1",
            "schema = 999\nid = \"ses_01jabcdefghjkmnpqrstvwxyz1\"\nlast_seq = 18446744073709551615\n",
            "{\"seq\":18446744073709551615,\"at\":\"2026-12-01T00:00:00Z\",\"kind\":\"assistant_message\",\"text\":\"\\u0000\"}\n",
        ),
        ("ses_01jabcdefghjkmnpqrstvwxyz2", "", "\u{0}\u{1}\u{2}"),
    ];
    let mktree = |listing: String| {
        let mut child = std::process::Command::new("git")
            .current_dir(&env.repo)
            .args(["mktree"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(listing.as_bytes()).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
    };
    for (id, meta, events) in hostile {
        let (meta, events) = (hash(meta), hash(events));
        // The store's layout: events/<bucket>/<first-seq>.jsonl beside meta.toml.
        let bucket = mktree(format!("100644 blob {events}\t0000000001.jsonl\n"));
        let chunks = mktree(format!("040000 tree {bucket}\t0000\n"));
        let tree = mktree(format!("100644 blob {meta}\tmeta.toml\n040000 tree {chunks}\tevents\n"));
        let commit = env.git(&env.repo, ["commit-tree", &tree, "-m", "hostile"]).trim().to_string();
        env.git(&env.repo, ["update-ref", &format!("refs/cortex/sessions/{id}"), &commit]);
    }
    for args in [
        vec!["index", "rebuild"],
        vec!["session", "list", "--json"],
        vec!["session", "log", "ses_01jabcdefghjkmnpqrstvwxyz0"],
        vec!["session", "log", "ses_01jabcdefghjkmnpqrstvwxyz1", "--json"],
        vec!["session", "show", "ses_01jabcdefghjkmnpqrstvwxyz2"],
        vec!["session", "search", "real"],
    ] {
        let run = env.cortex(&args);
        assert!(matches!(run.code, 0..=2), "{args:?} crashed ({}): {}", run.code, run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
    // The real session is still there, whole.
    let log = env.cortex_ok(["session", "log", &valid, "--json"]).json();
    assert!(log.to_string().contains("\"real\""), "{log}");
}
