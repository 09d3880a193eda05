//! The SQLite index is a cache: deleting it loses nothing, and it notices
//! refs that changed behind Cortex's back.

use crate::support::TestEnv;

#[test]
fn a_deleted_index_is_rebuilt_from_the_refs_with_the_same_answers() {
    let env = TestEnv::new();
    let script = env.script(
        "s.toml",
        "[[turn]]\n[[turn.step]]\nmessage = \"patching the flaky port test\"\n[[turn.step]]\ncommand = \"echo zebra-output\"\n[[turn]]\n[[turn.step]]\nmessage = \"second turn\"\n",
    );
    let first = env.start("one", &script);
    env.cortex_ok(["session", "send", &first, "two"]);
    let second = env.start("another", &script);

    let ask = |env: &TestEnv| {
        (
            env.cortex_ok(["session", "list", "--json"]).stdout,
            env.cortex_ok(["session", "log", &first, "--json"]).stdout,
            env.cortex_ok(["session", "show", &second, "--json"]).stdout,
            {
                let search = env.cortex(["session", "search", "zebra-output"]);
                format!("exit {}\n{}", search.code, search.stdout)
            },
        )
    };
    let before = ask(&env);
    assert!(before.3.contains(&first) && before.3.contains(&second), "{}", before.3);

    // Damage the index where an incremental sync cannot see it (the
    // recorded tips still match the refs): only a rebuild repairs it, so
    // this test fails if `index rebuild` does nothing.
    let index = rusqlite::Connection::open(env.cortex_home.join("index.sqlite")).unwrap();
    index.execute("DELETE FROM events WHERE session_id = ?1 AND seq > 3", [&first]).unwrap();
    index.execute("DELETE FROM events_fts", []).unwrap();
    index.execute("UPDATE sessions SET title = 'tampered' WHERE id = ?1", [&second]).unwrap();
    drop(index);
    let damaged = ask(&env);
    assert_ne!(damaged.1, before.1, "the damage shows before the rebuild");
    assert_ne!(damaged.3, before.3);
    let rebuild = env.cortex_ok(["index", "rebuild"]);
    assert!(rebuild.stderr.contains("Rebuilt the index: 2 session(s)"), "{}", rebuild.stderr);
    assert_eq!(ask(&env), before);

    // And from nothing at all.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.cortex_home.join(format!("index.sqlite{suffix}")));
    }
    env.cortex_ok(["index", "rebuild"]);
    assert_eq!(ask(&env), before);
}

#[test]
fn a_plain_git_fetch_of_session_refs_is_noticed() {
    let env = TestEnv::new();
    let other = env.path("other");
    env.git(env.root.path(), ["clone", "-q", env.repo.to_str().unwrap(), other.to_str().unwrap()]);
    // Bind the clone by running a session there first.
    let own = env.cortex_in(&other, ["session", "start", "local work", "--json"]).json();
    let script = env.script("s.toml", "[[step]]\nmessage = \"from upstream\"\n");
    let upstream = env.start("upstream work", &script);

    env.git(&other, ["fetch", "-q", "origin", "refs/cortex/sessions/*:refs/cortex/sessions/*"]);
    let listed = env.cortex_in(&other, ["session", "list", "--json"]).json();
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|session| session["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&own["session_id"].as_str().unwrap()));
    assert!(ids.contains(&upstream.as_str()), "a ref fetched with plain git must be indexed: {ids:?}");
}
