//! `--worktree` sessions: isolated from the main checkout, collected by
//! `cortex gc` only when eligible and only after their state is saved.

use crate::support::TestEnv;

const WRITES: &str =
    "[[turn]]\n[[turn.step]]\nwrite_file = { path = \"isolated.txt\", content = \"from the agent\\n\" }\n";

fn start_isolated(env: &TestEnv, prompt: &str) -> (String, std::path::PathBuf) {
    let script = env.script(&format!("{prompt}.toml"), WRITES);
    let run = env.cortex_ok(["session", "start", prompt, "--script", script.to_str().unwrap(), "--worktree", "--json"]);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    let meta = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:meta.toml")]);
    let path = meta.lines().find_map(|line| line.strip_prefix("worktree = ")).unwrap().trim_matches('"').to_string();
    (id, std::path::PathBuf::from(path))
}

#[test]
fn a_worktree_session_leaves_the_main_checkout_alone() {
    let env = TestEnv::new();
    let (id, path) = start_isolated(&env, "isolated");
    assert_eq!(env.git(&env.repo, ["status", "--porcelain"]), "", "the main checkout is untouched");
    assert!(!env.repo.join("isolated.txt").exists());
    assert_eq!(std::fs::read_to_string(path.join("isolated.txt")).unwrap(), "from the agent\n");
    let branch = env.git(&path, ["branch", "--show-current"]);
    assert_eq!(branch.trim(), format!("cortex/{}", &id[id.len() - 8..]));
    let diff = env.cortex_ok(["session", "diff", &id]).stdout;
    assert!(diff.contains("+from the agent"), "{diff}");
    // The next turn runs in the same worktree.
    env.cortex_ok(["session", "send", &id, "again"]);
    assert!(!env.repo.join("isolated.txt").exists());
}

#[test]
fn gc_removes_only_eligible_worktrees_and_keeps_late_changes() {
    let env = TestEnv::new();
    let (stopped, stopped_path) = start_isolated(&env, "stopped");
    let (active, active_path) = start_isolated(&env, "active");
    env.cortex_ok(["session", "stop", &stopped]);
    std::fs::write(stopped_path.join("late.txt"), "typed after the session\n").unwrap();

    let kept = env.cortex_ok(["gc", "--json"]).json();
    assert_eq!(kept.as_array().unwrap().len(), 0, "nothing is older than a week");

    let removed = env.cortex_ok(["gc", "--older-than", "0", "--json"]).json();
    let removed = removed.as_array().unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["session"], stopped.as_str());
    assert_eq!(removed[0]["captured"], true);
    assert!(!stopped_path.exists());
    assert!(active_path.exists(), "an idle session keeps its worktree");
    let saved = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{stopped}:gc/worktree/late.txt")]);
    assert_eq!(saved, "typed after the session\n");
    let branches = env.git(&env.repo, ["branch", "--list", "cortex/*"]);
    assert_eq!(branches.lines().count(), 2, "branches stay: {branches}");

    let gone = env.cortex(["session", "send", &stopped, "more"]);
    assert_eq!(gone.code, 2);
    assert!(gone.stderr.contains("was removed by `cortex gc`"), "{}", gone.stderr);
    let _ = active;
}
