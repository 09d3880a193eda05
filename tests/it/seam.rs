//! Issue 11: one command path. The bugs found where the surfaces (in-process,
//! through Core, an attached terminal, the API) disagreed, each driven
//! through the real binary.

use crate::support::TestEnv;
use crate::support::cluster::{free_port, wait_state};

const ONE_TURN: &str = "[[turn]]\n[[turn.step]]\nmessage = \"done\"\n";

/// Bug 3: a session run in-process first, then `cortex up`, then a command
/// that fell back to in-process (a stale `CORTEX_CORE`) rebound the
/// repository to the host name, and every later session through Core failed
/// with "node `vm` is not connected".
#[test]
fn the_in_process_node_and_the_local_daemon_are_one_node() {
    let env = TestEnv::new();
    let script = env.script("one.toml", ONE_TURN);
    let script = script.to_str().unwrap();
    env.cortex_ok(["session", "start", "first", "--script", script, "--json"]);
    let core = env.start_core("up", &env.cortex_home, free_port());
    let stale = format!("http://127.0.0.1:{}", free_port());
    let fallback = crate::support::Run::from(
        env.cortex_command(&env.repo)
            .env("CORTEX_CORE", &stale)
            .args(["session", "start", "second", "--script", script, "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(fallback.code, 0, "{}", fallback.stderr);
    assert!(fallback.stderr.contains("running in-process instead"), "{}", fallback.stderr);

    let through_core = env.cortex_at(&core, &env.repo, ["session", "start", "third", "--script", script, "--json"]);
    assert_eq!(through_core.code, 0, "the repository still runs through Core: {}", through_core.stderr);
    let id = through_core.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");

    let nodes = env.cortex_at(&core, &env.repo, ["node", "list", "--json"]).json();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 1, "one node, not one per surface: {nodes:?}");
    let node_id = nodes[0]["id"].as_str().unwrap();
    assert!(node_id.starts_with("nod_"), "a typed id: {node_id}");
    let workspaces = env.cortex_at(&core, &env.repo, ["workspace", "list", "--json"]).json();
    for workspace in workspaces.as_array().unwrap() {
        assert_eq!(workspace["node"], node_id, "bound to the node's id, never a display name: {workspace}");
    }
    let sessions = env.cortex_at(&core, &env.repo, ["session", "list", "--json"]).json();
    assert_eq!(sessions.as_array().unwrap().len(), 3, "{sessions}");
}
