//! Cortex's own tools over MCP: `cortex mcp` answers the official MCP
//! client SDK from npm, `/mcp` on Core takes only a bearer token, and an
//! agent delegates through its gateway: real codex on one node starts a
//! session on a workspace bound to another node, waits for it and reads its
//! diff, and the two sessions are linked on their pages.

use crate::support::TestEnv;
use crate::support::agents::log;
use crate::support::cluster::{CoreProcess, free_port, wait_node_status};
use crate::support::model::Model;
use crate::support::{codex_binary, skip};

/// Runs `script` (an ES module) with node, the SDK's folder in `SDK`.
fn node_script(env: &TestEnv, core: &CoreProcess, sdk: &str, script: &str) -> serde_json::Value {
    let path = env.path("client.mjs");
    std::fs::write(&path, script.replace("SDK", sdk).replace("CORTEX", env!("CARGO_BIN_EXE_cortex"))).unwrap();
    let output = std::process::Command::new("node")
        .arg(&path)
        .env("CORTEX_HOME", &core.data)
        .current_dir(env.root.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)))
}

#[test]
fn cortex_mcp_answers_the_official_mcp_client_and_core_mcp_takes_only_a_bearer_token() {
    let Ok(sdk) = std::env::var("CORTEX_MCP_SDK_DIR") else {
        return skip("no @modelcontextprotocol/sdk (CORTEX_MCP_SDK_DIR unset; .ci/run installs it)");
    };
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let started = env.cortex_at(&core, &env.repo, ["session", "start", "a session to find", "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();

    let answer = node_script(
        &env,
        &core,
        &sdk,
        r#"import { Client } from "SDK/dist/esm/client/index.js";
import { StdioClientTransport } from "SDK/dist/esm/client/stdio.js";
const transport = new StdioClientTransport({ command: "CORTEX", args: ["mcp"], env: process.env });
const client = new Client({ name: "sdk-test", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const listed = await client.callTool({ name: "sessions_list", arguments: {} });
const bad = await client.callTool({ name: "session_log", arguments: { session_id: "ses_nowhere" } });
console.log(JSON.stringify({ server: client.getServerVersion(), tools: tools.tools.map((tool) => tool.name), listed, bad }));
await client.close();
"#,
    );
    assert_eq!(answer["server"]["name"], "cortex", "{answer}");
    let tools: Vec<&str> = answer["tools"].as_array().unwrap().iter().map(|tool| tool.as_str().unwrap()).collect();
    assert_eq!(tools, ["sessions_list", "session_start", "session_wait", "session_log", "session_diff"]);
    let listed = answer["listed"]["content"][0]["text"].as_str().unwrap();
    let sessions: serde_json::Value = serde_json::from_str(listed).unwrap();
    assert_eq!(sessions[0]["id"], id.as_str(), "{sessions}");
    assert_eq!(sessions[0]["title"], "a session to find");
    assert_eq!(answer["bad"]["isError"], true, "{answer}");

    // /mcp without the token, with a wrong one, or with a made-up node's, is refused.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let tries: [&[(&str, &str)]; 3] = [
        &[],
        &[("authorization", "Bearer wrong")],
        &[("authorization", "Bearer cnd_guess"), ("x-cortex-node", "nod_01m0000000000000000000000")],
    ];
    for headers in tries {
        let mut request = client
            .post(format!("{}/mcp", core.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let status = runtime.block_on(request.send()).unwrap().status();
        assert_eq!(status, 401, "{headers:?}");
    }
}

/// A repository whose codex talks to `model`.
fn codex_repo(env: &TestEnv, name: &str, model: &Model, codex: &std::path::Path) -> std::path::PathBuf {
    let repo = env.repo(name);
    std::fs::create_dir_all(repo.join(".cortex")).unwrap();
    let config = model.config(codex, &env.path(&format!("{name}-codex-home")), "never");
    std::fs::write(repo.join(".cortex/config.toml"), config).unwrap();
    std::fs::write(repo.join(".gitignore"), ".cortex/\n").unwrap();
    repo
}

/// The text of the last assistant message of `id`.
fn said(env: &TestEnv, core: &CoreProcess, id: &str) -> String {
    let events = log(env, core, id);
    let message = events.iter().rev().find(|event| event["kind"] == "assistant_message").unwrap();
    message["text"].as_str().unwrap().to_string()
}

#[test]
fn an_agent_starts_a_session_on_another_node_waits_for_it_and_reads_its_diff() {
    let Some(codex) = codex_binary() else { return };
    let env = TestEnv::new();
    let model = Model::start();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let (here, there) = (codex_repo(&env, "here", &model, &codex), codex_repo(&env, "there", &model, &codex));
    let _alpha = env.start_node(&core.url, &env.path("alpha-home"), Some(&env.enroll(&core, "alpha")), "alpha.log");
    let _beta = env.start_node(&core.url, &env.path("beta-home"), Some(&env.enroll(&core, "beta")), "beta.log");
    wait_node_status(&env, &core, "alpha", "online");
    wait_node_status(&env, &core, "beta", "online");
    for (repo, node) in [(&here, "alpha"), (&there, "beta")] {
        let bound = env.cortex_at(&core, repo, ["workspace", "bind", "--node", node]);
        assert_eq!(bound.code, 0, "{}", bound.stderr);
    }

    let arguments = r#"{"workspace":"there","prompt":"add child.txt made by the child","provider":"codex"}"#;
    let prompt = format!("tool cortex.session_start {arguments}");
    let start = env.cortex_at(&core, &here, ["session", "start", &prompt, "--provider", "codex", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let parent = start.json()["session_id"].as_str().unwrap().to_string();
    let answer = said(&env, &core, &parent);
    let mut ids =
        answer.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|word| word.starts_with("ses_"));
    let child = ids.find(|id| *id != parent).unwrap_or_else(|| panic!("no new session in {answer}")).to_string();
    assert!(answer.contains(&format!("\\\"parent\\\": \\\"{parent}\\\"")), "the answer names the parent: {answer}");

    let send = |prompt: String| {
        let run = env.cortex_at(&core, &here, ["session", "send", &parent, &prompt, "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        said(&env, &core, &parent)
    };
    let waited = send(format!(r#"tool cortex.session_wait {{"session_id":"{child}"}}"#));
    assert!(waited.contains("idle"), "{waited}");
    let diff = send(format!(r#"tool cortex.session_diff {{"session_id":"{child}"}}"#));
    assert!(diff.contains("+made by the child"), "{diff}");
    // The child ran on beta's repository, and only there.
    assert!(there.join("child.txt").exists() && !here.join("child.txt").exists());

    let calls: Vec<serde_json::Value> = log(&env, &core, &parent)
        .into_iter()
        .filter(|event| event["kind"] == "tool_call")
        .map(|event| event["call"].clone())
        .collect();
    let tools: Vec<&str> = calls.iter().map(|call| call["tool"].as_str().unwrap()).collect();
    assert_eq!(tools, ["session_start", "session_wait", "session_diff"]);
    assert!(calls.iter().all(|call| call["server"] == "cortex" && call["outcome"] == "ok"), "{calls:?}");

    // Linked both ways, in the API's answer and on both pages.
    let browser = crate::support::panel::logged_in(&env, &core);
    let child_page = browser.get(&format!("{}/sessions/{child}", core.url));
    assert!(child_page.body.contains(&format!("href=\"/sessions/{parent}\"")), "{}", child_page.body);
    assert!(child_page.body.contains("Started by session"), "{}", child_page.body);
    let parent_page = browser.get(&format!("{}/sessions/{parent}", core.url));
    assert!(parent_page.body.contains(&format!("href=\"/sessions/{child}\"")), "{}", parent_page.body);
}

/// One call of Core's `/mcp` as node `home`'s gateway would make it, for
/// `session`: initialize, then `tools/call`; the result's text and whether
/// it is an error.
fn call_as_node(
    core: &CoreProcess,
    home: &std::path::Path,
    session: &str,
    tool: &str,
    args: serde_json::Value,
) -> (String, bool) {
    let identity: toml::Value = toml::from_str(&std::fs::read_to_string(home.join("node.toml")).unwrap()).unwrap();
    let (node, secret) = (identity["node_id"].as_str().unwrap(), identity["secret"].as_str().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value, mcp_session: Option<&str>| {
        let mut request = client
            .post(format!("{}/mcp", core.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("x-cortex-node", node)
            .header("x-cortex-session", session)
            .bearer_auth(secret)
            .body(body.to_string());
        if let Some(id) = mcp_session {
            request = request.header("mcp-session-id", id).header("mcp-protocol-version", "2025-06-18");
        }
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            let id = response.headers().get("mcp-session-id").map(|id| id.to_str().unwrap().to_string());
            let text = response.text().await.unwrap();
            let data = text.lines().filter_map(|line| line.strip_prefix("data: ")).find(|data| data.starts_with('{'));
            (id, data.map(|data| serde_json::from_str::<serde_json::Value>(data).unwrap()))
        })
    };
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (id, _) = post(init, None);
    post(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), id.as_deref());
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    let (_, answer) = post(call, id.as_deref());
    let result = answer.expect("an answer")["result"].clone();
    (result["content"][0]["text"].as_str().unwrap_or_default().to_string(), result["isError"] == true)
}

#[test]
fn a_node_acts_only_for_its_own_sessions_and_delegation_stops_at_three_levels() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let (here, there) = (env.repo("here"), env.repo("there"));
    let (alpha, beta) = (env.path("alpha-home"), env.path("beta-home"));
    let _alpha = env.start_node(&core.url, &alpha, Some(&env.enroll(&core, "alpha")), "alpha.log");
    let _beta = env.start_node(&core.url, &beta, Some(&env.enroll(&core, "beta")), "beta.log");
    wait_node_status(&env, &core, "alpha", "online");
    wait_node_status(&env, &core, "beta", "online");
    for (repo, node) in [(&here, "alpha"), (&there, "beta")] {
        assert_eq!(env.cortex_at(&core, repo, ["workspace", "bind", "--node", node]).code, 0);
    }
    let start = env.cortex_at(&core, &here, ["session", "start", "the first", "--json"]);
    let root = start.json()["session_id"].as_str().unwrap().to_string();
    let start_on = |home: &std::path::Path, session: &str| {
        let args = serde_json::json!({"workspace": "there", "prompt": "say hi", "provider": "fake"});
        call_as_node(&core, home, session, "session_start", args)
    };

    // beta cannot act for a session of alpha's.
    let (text, error) = start_on(&beta, &root);
    assert!(error && text.contains("is not on the calling node"), "{text}");

    // Three levels below a person, then no further.
    let (text, error) = start_on(&alpha, &root);
    assert!(!error, "{text}");
    let mut parent: serde_json::Value = serde_json::from_str(&text).unwrap();
    for depth in 2..=3 {
        let (text, error) = start_on(&beta, parent["session_id"].as_str().unwrap());
        assert!(!error, "{text}");
        parent = serde_json::from_str(&text).unwrap();
        assert_eq!(parent["depth"], depth);
    }
    let (text, error) = start_on(&beta, parent["session_id"].as_str().unwrap());
    assert!(error && text.contains("at most 3 sessions deep"), "{text}");
}
