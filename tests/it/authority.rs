//! Node authority: an enrolled but rogue node may speak only for the
//! workspaces Core bound to it. Claiming another node's workspace in its
//! hello, injecting events into another node's session and answering a
//! command Core sent elsewhere are all refused, recorded as the rogue's
//! warning, and change nothing.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::TestEnv;
use crate::support::cluster::{Http, free_port, next_json, wait_state};

#[test]
fn a_rogue_node_cannot_take_over_another_nodes_workspace_sessions_or_commands() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let http = Http::new(&core);
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "hello", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let session_id = start.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &session_id, "idle");
    let (_, workspaces) = http.get("/api/v1/workspaces", Some(http.token()));
    let victim = workspaces[0].clone();
    let victim_node = victim["node"].as_str().unwrap().to_string();
    let (_, details) = http.get(&format!("/api/v1/sessions/{session_id}"), Some(http.token()));
    let summary = details["session"].clone();
    let last_seq = summary["last_seq"].as_u64().unwrap();
    // A command the victim answered, recorded with its answer.
    let stop = serde_json::json!({ "v": 1, "id": "cmd_victims_stop", "kind": "stop_session", "payload": { "session_id": session_id } });
    let (status, first_answer) = http.post("/api/v1/commands", &stop);
    assert_eq!(status, 200, "{first_answer}");

    let token = env.enroll(&core, "rogue");
    let url = format!("{}/api/v1/nodes/connect", core.url.replacen("http://", "ws://", 1));
    let own_workspace = serde_json::json!({
        "id": "wsp_01jabcdefghjkmnpqrstvwxyz0", "node": "", "path": "/tmp/rogue", "name": "rogue"
    });
    let frames = http.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let hello = serde_json::json!({
            "type": "hello", "v": 1,
            "credential": { "kind": "enroll", "token": token, "name": "rogue" },
            "capabilities": { "cortex_version": env!("CARGO_PKG_VERSION"), "protocol_version": 1, "os": "", "arch": "", "cpus": 1, "memory_bytes": 0, "providers": [] },
            "workspaces": [victim, own_workspace], "sessions": []
        });
        socket.send(Message::text(hello.to_string())).await.unwrap();
        let welcome = next_json(&mut socket).await;
        let forged = |workspace_id: &serde_json::Value| {
            let mut session = summary.clone();
            session["workspace_id"] = workspace_id.clone();
            serde_json::json!({
                "type": "events", "v": 1, "session": session,
                "events": [{ "seq": last_seq + 1, "at": "2026-12-01T00:00:00Z", "kind": "assistant_message", "text": "forged by the rogue" }]
            })
        };
        let mut answers = vec![welcome];
        // Events for the victim's session, as it is, and claiming the rogue's own workspace.
        for workspace_id in [summary["workspace_id"].clone(), own_workspace["id"].clone()] {
            socket.send(Message::text(forged(&workspace_id).to_string())).await.unwrap();
            answers.push(next_json(&mut socket).await);
        }
        // Answers to a command Core sent the victim, and to one it never sent.
        for id in ["cmd_victims_stop", "cmd_never_sent"] {
            let result = serde_json::json!({ "type": "command_result", "v": 1, "id": id, "outcome": { "status": "ok", "value": { "forged": true } } });
            socket.send(Message::text(result.to_string())).await.unwrap();
            answers.push(next_json(&mut socket).await);
        }
        answers
    });
    assert_eq!(frames[0]["type"], "welcome", "{}", frames[0]);
    for refusal in &frames[1..] {
        assert_eq!(
            (refusal["type"].as_str(), refusal["code"].as_str()),
            (Some("error"), Some("not_owner")),
            "{refusal}"
        );
    }

    // Nothing changed: the binding, the session's events, the command's answer.
    let (_, workspaces) = http.get("/api/v1/workspaces", Some(http.token()));
    let bound: Vec<(String, String)> = workspaces
        .as_array()
        .unwrap()
        .iter()
        .map(|workspace| (workspace["id"].as_str().unwrap().into(), workspace["node"].as_str().unwrap().into()))
        .collect();
    assert!(bound.contains(&(summary["workspace_id"].as_str().unwrap().into(), victim_node)), "{bound:?}");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &session_id, "--json"]);
    assert!(!log.stdout.contains("forged"), "{}", log.stdout);
    let (_, again) = http.post("/api/v1/commands", &stop);
    assert_eq!(again, first_answer);
    let rogue = env.cortex_at(&core, env.root.path(), ["node", "show", "rogue", "--json"]).json();
    let warnings = rogue["node"]["warnings"].to_string();
    assert!(warnings.contains("5 claim(s) refused"), "{rogue}");
    // Commands for the victim's workspace still reach the victim.
    let list = serde_json::json!({ "v": 1, "id": "cmd_list_after", "kind": "list_files", "payload": { "workspace_id": summary["workspace_id"] } });
    let (status, listing) = http.post("/api/v1/commands", &list);
    assert_eq!(status, 200, "{listing}");
    assert!(listing.to_string().contains("README.md"), "{listing}");
}

#[test]
fn a_rogue_node_cannot_get_a_tools_file_trusted_for_a_workspace_it_does_not_hold() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let http = Http::new(&core);
    assert_eq!(env.cortex_at(&core, &env.repo, ["workspace", "bind"]).code, 0);
    let token = env.enroll(&core, "rogue");
    let url = format!("{}/api/v1/nodes/connect", core.url.replacen("http://", "ws://", 1));
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let trusted = http.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let hello = serde_json::json!({
            "type": "hello", "v": 1,
            "credential": { "kind": "enroll", "token": token, "name": "rogue" },
            "capabilities": { "cortex_version": env!("CARGO_PKG_VERSION"), "protocol_version": 1, "os": "", "arch": "", "cpus": 1, "memory_bytes": 0, "providers": [] },
            "workspaces": [], "sessions": []
        });
        socket.send(Message::text(hello.to_string())).await.unwrap();
        next_json(&mut socket).await;
        // The rogue says the victim's workspace has a tools file waiting, with its own digest.
        let report = serde_json::json!({"type": "tool_states", "v": 1, "states": [{
            "name": "project:repo", "phase": "blocked", "reason": "looks harmless", "digest": "ab".repeat(32)
        }]});
        socket.send(Message::text(report.to_string())).await.unwrap();
        let seen = crate::support::wait_for(|| {
            let statuses = cortex(&["tool", "status", "--json"]).json();
            statuses.as_array()?.iter().any(|status| status["node_name"] == "rogue").then_some(())
        });
        assert!(seen.is_some(), "Core never took the rogue's report");
        cortex(&["tool", "trust", "repo"])
    });
    assert_ne!(trusted.code, 0, "trusted what a node that does not hold the workspace reported");
    assert!(trusted.stderr.contains("has no .cortex/tools.toml waiting for trust"), "{}", trusted.stderr);
}
