//! Core and node daemons as separate processes on 127.0.0.1: `cortex up`,
//! enrollment, placement, revocation, nodes and Core killed mid-turn,
//! idempotent commands, bad frames, and an unreachable Core.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::cluster::{Http, free_port, next_json, state_of, wait_node_status, wait_state};
use crate::support::{TestEnv, assert_gapless, wait_for};

#[test]
fn up_runs_a_detached_session_to_completion_after_the_cli_exits() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    // The turn cannot end before the test lets it: no clock involved.
    let release = env.path("release");
    let script = env.script(
        "gated.toml",
        &format!(
            "[[step]]\nmessage = \"working\"\n[[step]]\ncommand = \"while [ ! -e {} ]; do sleep 0.05; done\"\n[[step]]\nmessage = \"done\"\n",
            release.display()
        ),
    );
    let run = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "background job", "--script", script.to_str().unwrap(), "--detach"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.stdout.trim().to_string();
    // --detach came back while the turn cannot have ended.
    let listed = env.cortex_at(&core, &env.repo, ["session", "list", "--json"]).json();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(["starting", "running"].contains(&listed[0]["state"].as_str().unwrap()), "{listed}");
    std::fs::write(&release, "").unwrap();

    let done = wait_state(&env, &core, &id, "idle");
    assert_eq!(done["turns"], 1);
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    assert_gapless(&log);
    assert!(log.as_array().unwrap().iter().any(|event| event["text"] == "done"));
    // The store in the repository says the same as Core.
    let from_store =
        env.cortex_in(&env.repo, ["--data", env.path("offline-home").to_str().unwrap(), "index", "rebuild"]);
    assert_eq!(from_store.code, 0, "{}", from_store.stderr);
    let store_log = env
        .cortex_in(&env.repo, ["--data", env.path("offline-home").to_str().unwrap(), "session", "log", &id, "--json"]);
    assert_eq!(store_log.json(), log);

    // The panel is served beside the API, behind its login.
    let (status, _) = Http::new(&core).get("/", None);
    assert_eq!(status, 401);
}

#[test]
fn two_nodes_place_sessions_and_a_revoked_node_stays_out() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let repo_a = env.repo("repo-a");
    let repo_b = env.repo("repo-b");
    let token_a = env.enroll(&core, "alpha");
    let token_b = env.enroll(&core, "beta");
    let _alpha = env.start_node(&core.url, &env.path("alpha-home"), Some(&token_a), "alpha.log");
    let mut beta = env.start_node(&core.url, &env.path("beta-home"), Some(&token_b), "beta.log");
    wait_node_status(&env, &core, "alpha", "online");
    wait_node_status(&env, &core, "beta", "online");
    // Credentials are kept 0600, the enrollment token is spent.
    let identity = env.path("alpha-home").join("node.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777, 0o600);

    let bind_a = env.cortex_at(&core, &repo_a, ["workspace", "bind", "--node", "alpha", "--json"]);
    assert_eq!(bind_a.code, 0, "{}", bind_a.stderr);
    let bind_b = env.cortex_at(&core, &repo_b, ["workspace", "bind", "--node", "beta", "--json"]);
    assert_eq!(bind_b.code, 0, "{}", bind_b.stderr);
    let (workspace_a, workspace_b) = (bind_a.json(), bind_b.json());

    let on_a = env.cortex_at(&core, &repo_a, ["session", "start", "on alpha", "--json"]);
    assert_eq!(on_a.code, 0, "{}", on_a.stderr);
    let on_b = env.cortex_at(&core, &repo_b, ["session", "start", "on beta", "--json"]);
    assert_eq!(on_b.code, 0, "{}", on_b.stderr);
    let (session_a, session_b) = (on_a.json()["session_id"].clone(), on_b.json()["session_id"].clone());

    let nodes = env.cortex_at(&core, env.root.path(), ["node", "list", "--json"]).json();
    let id_of = |name: &str| nodes.as_array().unwrap().iter().find(|node| node["name"] == name).unwrap()["id"].clone();
    assert_eq!(workspace_a["node"], id_of("alpha"));
    assert_eq!(workspace_b["node"], id_of("beta"));
    let sessions = env.cortex_at(&core, env.root.path(), ["session", "list", "--json"]).json();
    let placed = |session: &serde_json::Value| {
        sessions.as_array().unwrap().iter().find(|row| row["id"] == *session).unwrap()["workspace_id"].clone()
    };
    assert_eq!(placed(&session_a), workspace_a["id"]);
    assert_eq!(placed(&session_b), workspace_b["id"]);
    // The node that ran it wrote it into its own repository.
    assert_eq!(env.session_refs(&repo_a), vec![format!("refs/cortex/sessions/{}", session_a.as_str().unwrap())]);
    assert_eq!(env.session_refs(&repo_b), vec![format!("refs/cortex/sessions/{}", session_b.as_str().unwrap())]);

    let revoke = env.cortex_at(&core, env.root.path(), ["node", "revoke", "beta"]);
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let exited = wait_for(|| beta.0.try_wait().unwrap());
    assert!(exited.is_some_and(|status| !status.success()), "a revoked node stops instead of retrying");
    assert!(env.log("beta.log").contains("revoked"), "{}", env.log("beta.log"));
    wait_node_status(&env, &core, "beta", "revoked");

    // Started again, it is refused at once and gives up.
    let mut again = env.start_node(&core.url, &env.path("beta-home"), None, "beta-again.log");
    let status = wait_for(|| again.0.try_wait().unwrap()).expect("a refused node exits");
    assert!(!status.success());
    assert!(env.log("beta-again.log").contains("revoked"), "{}", env.log("beta-again.log"));
    wait_node_status(&env, &core, "alpha", "online");
}

#[test]
fn a_node_killed_mid_turn_shows_as_lost_then_replays_without_gaps() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let token = env.enroll(&core, "worker");
    let node_home = env.path("worker-home");
    let mut node = env.start_node(&core.url, &node_home, Some(&token), "worker.log");
    wait_node_status(&env, &core, "worker", "online");
    let script = env.script("slow.toml", "[[step]]\nmessage = \"before\"\n[[step]]\nsleep_ms = 30000\n");
    let run =
        env.cortex_at(&core, &env.repo, ["session", "start", "long", "--script", script.to_str().unwrap(), "--detach"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.stdout.trim().to_string();
    wait_for(|| {
        let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
        log.as_array()?.iter().any(|event| event["text"] == "before").then_some(())
    })
    .expect("the turn never got going");

    node.kill();
    wait_node_status(&env, &core, "worker", "offline");
    let session = wait_state(&env, &core, &id, "interrupted");
    assert!(session["state_reason"].as_str().unwrap().contains("node went offline"), "{session}");

    let _node = env.start_node(&core.url, &node_home, None, "worker-again.log");
    wait_node_status(&env, &core, "worker", "online");
    // The node recovers the spool, marks the turn interrupted in its store,
    // and Core ends up with exactly the store's events.
    let from_core = wait_for(|| {
        let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
        let last = log.as_array()?.last()?.clone();
        (last["kind"] == "lifecycle" && last["to"] == "interrupted" && last.get("reason").is_some()).then_some(log)
    })
    .unwrap_or_else(|| {
        let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).stdout;
        panic!("the replayed interruption never reached Core: {log}\nnode: {}", env.log("worker-again.log"))
    });
    assert_gapless(&from_core);
    let offline = env.path("offline-home");
    let rebuilt = env.cortex_in(&env.repo, ["--data", offline.to_str().unwrap(), "index", "rebuild"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let from_store =
        env.cortex_in(&env.repo, ["--data", offline.to_str().unwrap(), "session", "log", &id, "--json"]).json();
    assert_eq!(from_core, from_store);
}

#[test]
fn core_killed_mid_turn_comes_back_and_loses_nothing() {
    let env = TestEnv::new();
    let port = free_port();
    let mut core = env.start_core("core", &env.cortex_home, port);
    let token = env.enroll(&core, "worker");
    let _node = env.start_node(&core.url, &env.path("worker-home"), Some(&token), "worker.log");
    wait_node_status(&env, &core, "worker", "online");
    let script = env.script(
        "steps.toml",
        "[[step]]\nmessage = \"one\"\n[[step]]\nsleep_ms = 1500\n[[step]]\nmessage = \"two\"\n[[step]]\nsleep_ms = 500\n[[step]]\nmessage = \"three\"\n",
    );
    let run = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "survive", "--script", script.to_str().unwrap(), "--detach"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.stdout.trim().to_string();
    wait_state(&env, &core, &id, "running");

    core.process.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let core = env.start_core("core", &env.cortex_home, port);
    let done = wait_state(&env, &core, &id, "idle");
    let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
    assert_eq!(assert_gapless(&log) as u64, done["last_seq"].as_u64().unwrap());
    let texts: Vec<&str> = log.as_array().unwrap().iter().filter_map(|event| event["text"].as_str()).collect();
    assert_eq!(texts, ["survive", "one", "two", "three"]);
}

#[test]
fn a_command_sent_twice_has_effect_once_and_the_same_answer() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let bound = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--json"]).json();
    let http = Http::new(&core);
    let command = serde_json::json!({
        "v": 1,
        "id": "ci-job-42",
        "kind": "start_session",
        "payload": { "workspace_id": bound["id"], "provider": "fake", "prompt": "only once" }
    });
    let (first_status, first) = http.post("/api/v1/commands", &command);
    let (second_status, second) = http.post("/api/v1/commands", &command);
    assert_eq!((first_status, second_status), (200, 200), "{first} {second}");
    assert_eq!(first, second);
    assert!(first["value"]["session_id"].as_str().unwrap().starts_with("ses_"));
    let id = first["value"]["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    let sessions = env.cortex_at(&core, env.root.path(), ["session", "list", "--json"]).json();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(env.session_refs(&env.repo).len(), 1);

    // Without the token: 401, saying where the token lives, and no data.
    let (status, body) = http.get("/api/v1/sessions", None);
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("admin.token"), "{body}");
    let (status, body) = http.get("/api/v1/sessions", Some("wrong"));
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
}

#[test]
fn bad_frames_get_typed_errors_and_hurt_nobody() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    wait_node_status(&env, &core, &hostname(), "online");
    let http = Http::new(&core);
    let url = format!("{}/api/v1/nodes/connect", core.url.replacen("http://", "ws://", 1));
    let frames = http.block_on(async {
        let mut frames = Vec::new();
        // Not JSON at all, as the first frame.
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        socket.send(Message::text("{not json")).await.unwrap();
        frames.push(next_json(&mut socket).await);
        // A hello from a future protocol version.
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let hello = serde_json::json!({
            "type": "hello", "v": 99,
            "credential": { "kind": "node", "node_id": "nod_01m86a629myn3cjx91da8nn0vx", "secret": "s" },
            "capabilities": {}, "workspaces": [], "sessions": []
        });
        socket.send(Message::text(hello.to_string())).await.unwrap();
        frames.push(next_json(&mut socket).await);
        // A credential Core never issued.
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let hello = serde_json::json!({
            "type": "hello", "v": 1,
            "credential": { "kind": "node", "node_id": "nod_01m86a629myn3cjx91da8nn0vx", "secret": "s" },
            "capabilities": { "cortex_version": "0", "protocol_version": 1, "os": "", "arch": "", "cpus": 1, "memory_bytes": 0, "providers": [] },
            "workspaces": [], "sessions": []
        });
        socket.send(Message::text(hello.to_string())).await.unwrap();
        frames.push(next_json(&mut socket).await);
        frames
    });
    assert_eq!(
        (frames[0]["type"].as_str(), frames[0]["code"].as_str()),
        (Some("error"), Some("malformed")),
        "{}",
        frames[0]
    );
    assert_eq!(frames[1]["reason"], "unsupported_version", "{}", frames[1]);
    assert_eq!(frames[2]["reason"], "unknown_credential", "{}", frames[2]);

    // A real, authenticated link that then sends garbage keeps its link.
    let token = env.enroll(&core, "tester");
    let answers = http.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let hello = serde_json::json!({
            "type": "hello", "v": 1,
            "credential": { "kind": "enroll", "token": token, "name": "tester" },
            "capabilities": { "cortex_version": "0.0.1", "protocol_version": 1, "os": "", "arch": "", "cpus": 1, "memory_bytes": 0, "providers": [] },
            "workspaces": [], "sessions": []
        });
        socket.send(Message::text(hello.to_string())).await.unwrap();
        let welcome = next_json(&mut socket).await;
        socket.send(Message::text("{\"type\":\"telepathy\",\"v\":1}")).await.unwrap();
        let malformed = next_json(&mut socket).await;
        socket.send(Message::text("{\"type\":\"heartbeat\",\"v\":7,\"resources\":{}}")).await.unwrap();
        let version = next_json(&mut socket).await;
        let heartbeat = serde_json::json!({"type": "heartbeat", "v": 1, "resources": {"load1": 0.1, "free_memory_bytes": 1, "total_memory_bytes": 2, "disks": []}});
        socket.send(Message::text(heartbeat.to_string())).await.unwrap();
        (welcome, malformed, version)
    });
    assert_eq!(answers.0["type"], "welcome", "{}", answers.0);
    assert!(answers.0["secret"].as_str().is_some_and(|secret| secret.starts_with("cnd_")));
    assert_eq!((answers.1["type"].as_str(), answers.1["code"].as_str()), (Some("error"), Some("malformed")));
    assert_eq!(answers.2["code"], "unsupported_version");

    // Core and the embedded node are fine.
    let session = env.cortex_at(&core, &env.repo, ["session", "start", "still fine", "--json"]);
    assert_eq!(session.code, 0, "{}", session.stderr);
    let nodes = env.cortex_at(&core, env.root.path(), ["node", "show", "tester", "--json"]).json();
    assert!(
        nodes["node"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning.as_str().unwrap().contains("version skew")),
        "{nodes}"
    );
}

#[test]
fn an_unreachable_core_is_one_line_and_in_process_commands_still_run() {
    let env = TestEnv::new();
    env.start("work offline", &env.script("s.toml", ""));
    let url = format!("http://127.0.0.1:{}", free_port());
    let needs_core = env.cortex_command(&env.repo).env("CORTEX_CORE", &url).args(["node", "list"]).output().unwrap();
    assert_eq!(needs_core.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&needs_core.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("cannot reach Core at {url}")), "{stderr}");

    let listed =
        env.cortex_command(&env.repo).env("CORTEX_CORE", &url).args(["session", "list", "--json"]).output().unwrap();
    assert_eq!(listed.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&listed.stderr).contains("running in-process instead"));
    let sessions: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "local".into())
}

fn signal(process: &std::process::Child, signal: &str) {
    let status =
        std::process::Command::new("kill").args([&format!("-{signal}"), &process.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_silent_node_goes_stale_then_offline_and_comes_back() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let token = env.enroll(&core, "sleepy");
    let node = env.start_node(&core.url, &env.path("sleepy-home"), Some(&token), "sleepy.log");
    wait_node_status(&env, &core, "sleepy", "online");
    // Frozen: the link stays open but no heartbeat comes.
    signal(&node.0, "STOP");
    wait_node_status(&env, &core, "sleepy", "stale");
    wait_node_status(&env, &core, "sleepy", "offline");
    signal(&node.0, "CONT");
    wait_node_status(&env, &core, "sleepy", "online");
    let detail = env.cortex_at(&core, env.root.path(), ["node", "show", "sleepy", "--json"]).json();
    let kinds: Vec<&str> =
        detail["events"].as_array().unwrap().iter().rev().map(|event| event["kind"].as_str().unwrap()).collect();
    assert!(kinds.windows(3).any(|run| run == ["stale", "offline", "online"]), "{kinds:?}");
}

#[test]
fn stop_interrupts_a_running_turn_and_send_resumes_the_session() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script(
        "slow.toml",
        "[[turn]]\n[[turn.step]]\nsleep_ms = 30000\n[[turn]]\n[[turn.step]]\nmessage = \"resumed\"\n",
    );
    let run = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "stoppable", "--script", script.to_str().unwrap(), "--detach"],
    );
    let id = run.stdout.trim().to_string();
    wait_state(&env, &core, &id, "running");
    let stop = env.cortex_at(&core, &env.repo, ["session", "stop", &id]);
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    let stopped = wait_state(&env, &core, &id, "stopped");
    assert_eq!(stopped["state_reason"], "stopped by request");
    let sent = env.cortex_at(&core, &env.repo, ["session", "send", &id, "go on", "--json"]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    assert_eq!(sent.json()["state"], "idle");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    assert_gapless(&log);
    let outcomes: Vec<&str> = log.as_array().unwrap().iter().filter_map(|event| event["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["interrupted", "completed"]);
}

#[test]
fn attach_streams_live_and_sends_typed_lines_as_turns() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script(
        "chat.toml",
        "[[turn]]\n[[turn.step]]\nmessage = \"first answer\"\n[[turn]]\n[[turn.step]]\nmessage = \"second answer\"\n",
    );
    let started =
        env.cortex_at(&core, &env.repo, ["session", "start", "chat", "--script", script.to_str().unwrap(), "--json"]);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    let mut attach = env
        .cortex_command(&env.repo)
        .env("CORTEX_HOME", &core.data)
        .args(["session", "attach", &id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    attach.stdin.as_mut().unwrap().write_all(b"and now?\n").unwrap();
    let seen = wait_for(|| {
        let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
        log.as_array()?.iter().any(|event| event["text"] == "second answer").then_some(())
    });
    assert!(seen.is_some(), "the typed line never became turn 2");
    std::thread::sleep(Duration::from_millis(300));
    signal(&attach, "INT");
    let output = attach.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let transcript = String::from_utf8_lossy(&output.stderr);
    for expected in ["you: chat", "agent: first answer", "you: and now?", "agent: second answer", "Detached from"] {
        assert!(transcript.contains(expected), "{expected:?} missing from:\n{transcript}");
    }
    // Detaching does not stop the session.
    assert_eq!(state_of(&env, &core, &id)["state"], "idle");
}

#[test]
fn ctrl_c_stops_up_cleanly_and_leaves_sessions_resumable() {
    let env = TestEnv::new();
    let mut core = env.start_core("up", &env.cortex_home, free_port());
    let script =
        env.script("slow.toml", "[[turn]]\n[[turn.step]]\nmessage = \"working\"\n[[turn.step]]\nsleep_ms = 30000\n");
    let run =
        env.cortex_at(&core, &env.repo, ["session", "start", "long", "--script", script.to_str().unwrap(), "--detach"]);
    let id = run.stdout.trim().to_string();
    wait_state(&env, &core, &id, "running");
    signal(&core.process.0, "INT");
    let status = wait_for(|| core.process.0.try_wait().unwrap()).expect("up stops on Ctrl-C");
    assert!(status.success());
    assert!(!core.data.join("core.url").exists());
    // Nothing to recover: the store was flushed and says `stopped`.
    assert!(
        std::fs::read_dir(env.repo.join(".git/cortex/spool"))
            .unwrap()
            .all(|entry| { entry.unwrap().path().extension().is_none_or(|ext| ext != "jsonl") })
    );
    let show = env.cortex(["session", "show", &id, "--json"]);
    assert_eq!(show.json()["session"]["state"], "stopped", "{}", show.stderr);
    assert!(!show.stderr.contains("recovered"));
}

#[test]
fn workspaces_are_checked_on_the_node_and_unbinding_keeps_files_and_refs() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let token = env.enroll(&core, "fenced");
    let allowed = env.path("projects");
    std::fs::create_dir_all(&allowed).unwrap();
    let inside = {
        let repo = env.repo("projects/inside");
        repo.canonicalize().unwrap()
    };
    let mut command = env.cortex_command(env.root.path());
    command
        .env("CORTEX_HOME", env.path("fenced-home"))
        .args(["node", "run", "--core", &core.url, "--token", &token, "--allow-root", allowed.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _node = crate::support::Background(command.spawn().unwrap());
    wait_node_status(&env, &core, "fenced", "online");

    let outside = env.cortex_at(&core, &env.repo, ["workspace", "bind", "--node", "fenced"]);
    assert_eq!(outside.code, 2);
    assert!(outside.stderr.contains("outside this node's allowed roots"), "{}", outside.stderr);
    let plain = env.path("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let not_git = env.cortex_at(&core, &plain, ["workspace", "bind", "--node", "fenced"]);
    assert_eq!(not_git.code, 2);
    assert!(not_git.stderr.contains("not inside a git repository"), "{}", not_git.stderr);
    let missing = env.cortex_at(&core, env.root.path(), ["workspace", "bind", "/no/such/repo", "--node", "fenced"]);
    assert!(missing.stderr.contains("does not exist on this node"), "{}", missing.stderr);

    let bound = env.cortex_at(&core, &inside, ["workspace", "bind", "--node", "fenced", "--json"]);
    assert_eq!(bound.code, 0, "{}", bound.stderr);
    let workspace = bound.json();
    let started = env.cortex_at(&core, &inside, ["session", "start", "inside", "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);

    let unbind = env.cortex_at(&core, env.root.path(), ["workspace", "unbind", workspace["id"].as_str().unwrap()]);
    assert_eq!(unbind.code, 0, "{}", unbind.stderr);
    let listed = env.cortex_at(&core, env.root.path(), ["workspace", "list", "--json"]).json();
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    assert!(inside.join("README.md").exists());
    assert_eq!(env.session_refs(&inside).len(), 1, "unbinding keeps the session refs");
}

#[test]
fn rebuilding_cores_index_gets_every_event_back_from_the_nodes() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script(
        "s.toml",
        "[[turn]]\n[[turn.step]]\nmessage = \"searchable zebra\"\n[[turn]]\n[[turn.step]]\nmessage = \"more\"\n",
    );
    let first = env
        .cortex_at(&core, &env.repo, ["session", "start", "one", "--script", script.to_str().unwrap(), "--json"])
        .json();
    let id = first["session_id"].as_str().unwrap().to_string();
    env.cortex_at(&core, &env.repo, ["session", "send", &id, "two", "--json"]);
    env.cortex_at(&core, &env.repo, ["session", "start", "another", "--json"]);
    let ask = || {
        (
            env.cortex_at(&core, env.root.path(), ["session", "list", "--json"]).stdout,
            env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).stdout,
            env.cortex_at(&core, env.root.path(), ["session", "search", "zebra", "--json"]).stdout,
        )
    };
    let before = ask();
    // Damage Core's index where its own sync cannot see it: only the rebuild
    // (nodes sending everything again) repairs it.
    let index = rusqlite::Connection::open(core.data.join("index.sqlite")).unwrap();
    index.execute("DELETE FROM events WHERE session_id = ?1 AND seq > 3", [&id]).unwrap();
    index.execute("DELETE FROM events_fts", []).unwrap();
    drop(index);
    let damaged = ask();
    assert_ne!((&damaged.1, &damaged.2), (&before.1, &before.2), "the damage shows before the rebuild");
    let rebuild = env.cortex_at(&core, env.root.path(), ["index", "rebuild"]);
    assert_eq!(rebuild.code, 0, "{}", rebuild.stderr);
    assert!(rebuild.stderr.contains("sending their sessions again"), "{}", rebuild.stderr);
    let after = wait_for(|| {
        let now = ask();
        (now == before).then_some(now)
    });
    assert!(after.is_some(), "the index never came back as it was:\n{:?}\n{:?}", before, ask());
}

#[test]
fn a_waiting_cli_learns_that_the_node_died_instead_of_hanging() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let token = env.enroll(&core, "worker");
    let mut node = env.start_node(&core.url, &env.path("worker-home"), Some(&token), "worker.log");
    wait_node_status(&env, &core, "worker", "online");
    let script = env.script("slow.toml", "[[step]]\nsleep_ms = 60000\n");
    let mut waiting = env
        .cortex_command(&env.repo)
        .env("CORTEX_HOME", &core.data)
        .args(["session", "start", "ci job", "--script", script.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for(|| {
        let sessions = env.cortex_at(&core, env.root.path(), ["session", "list", "--json"]).json();
        let session = sessions.as_array()?.first()?.clone();
        (session["state"] == "running").then(|| session["id"].as_str().unwrap().to_string())
    })
    .expect("the turn never started");
    node.kill();
    wait_state(&env, &core, &id, "interrupted");
    let status = wait_for(|| waiting.try_wait().unwrap()).expect("the waiting CLI gives up once Core knows");
    assert_eq!(status.code(), Some(1));
    let mut stdout = String::new();
    std::io::Read::read_to_string(waiting.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["outcome"].as_str(), report["state"].as_str()), (Some("interrupted"), Some("interrupted")));
}

/// Round 1: the node's duplicate check lived in memory, so a `send_turn`
/// that Core resent after a restart ran a second time. Here Core loses the
/// answer (as when it dies before recording it), both restart, Core resends
/// the command, and the node answers from its ledger instead of running it.
#[test]
fn a_command_resent_after_restarts_is_answered_not_run_again() {
    let env = TestEnv::new();
    let port = free_port();
    let mut core = env.start_core("core", &env.cortex_home, port);
    let token = env.enroll(&core, "worker");
    let node_home = env.path("worker-home");
    let mut node = env.start_node(&core.url, &node_home, Some(&token), "worker.log");
    wait_node_status(&env, &core, "worker", "online");
    let start = env.cortex_at(&core, &env.repo, ["session", "start", "first", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let send = serde_json::json!({ "v": 1, "id": "send_once", "kind": "send_turn", "payload": { "session_id": id, "prompt": "again" } });
    let (status, first) = Http::new(&core).post("/api/v1/commands", &send);
    assert_eq!(status, 200, "{first}");
    let finished_turns = || {
        let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
        log.as_array().map_or(0, |events| events.iter().filter(|event| event["kind"] == "turn_finished").count())
    };
    wait_for(|| (finished_turns() == 2).then_some(())).expect("the second turn never finished");
    wait_state(&env, &core, &id, "idle");

    node.kill();
    core.process.kill();
    let registry = rusqlite::Connection::open(env.cortex_home.join("core.sqlite")).unwrap();
    let lost =
        registry.execute("UPDATE commands SET outcome = NULL, finished_at = NULL WHERE id = 'send_once'", []).unwrap();
    assert_eq!(lost, 1);
    drop(registry);
    let core = env.start_core("core", &env.cortex_home, port);
    let _node = env.start_node(&core.url, &node_home, None, "worker-again.log");
    wait_node_status(&env, &core, "worker", "online");
    // Asking again waits for the node's answer to the resent command.
    let (status, again) = Http::new(&core).post("/api/v1/commands", &send);
    assert_eq!((status, &again), (200, &first), "the first answer, from the node's ledger");
    wait_state(&env, &core, &id, "idle");
    let log = env.cortex_at(&core, env.root.path(), ["session", "log", &id, "--json"]).json();
    let prompts = log.as_array().unwrap().iter().filter(|event| event["kind"] == "user_message").count();
    assert_eq!(prompts, 2, "two turns, not three: {log}");
}

/// Issue 11: a second `cortex up` on the same data dir started on another
/// port and, when it exited, deleted `core.url` under the first.
#[test]
fn a_second_core_on_the_same_data_dir_refuses_and_names_the_first() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let second = env
        .cortex_command(env.root.path())
        .env("CORTEX_HOME", &env.cortex_home)
        .args(["core", "--bind", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already runs") && stderr.contains(&core.url), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(env.cortex_home.join("core.url")).unwrap().trim(),
        core.url,
        "core.url is the first's"
    );
    let listed = env.cortex_at(&core, &env.repo, ["node", "list", "--json"]);
    assert_eq!(listed.code, 0, "the first Core still answers: {}", listed.stderr);
}
