//! Cortex's MCP gateway with a real agent: codex (and Claude Code) on a
//! scripted model is given one MCP server, Cortex's, listing the tools of
//! the registry's servers as `server.tool`. Calls are forwarded to the real
//! filesystem server from npm, held to the registry's policy (denied,
//! needs approval) and recorded as `tool_call` events.

use crate::support::TestEnv;
use crate::support::agents::{log, send_later};
use crate::support::cluster::{CoreProcess, free_port, wait_state};
use crate::support::model::Model;
use crate::support::{codex_binary, skip, wait_for};

/// A `cortex up` whose repository's codex talks to `model`, with the npm
/// filesystem server registered as `files` on the repository, running.
fn setup(env: &TestEnv) -> Option<(Model, CoreProcess)> {
    let codex = codex_binary()?;
    let Some(files) = std::env::var_os("CORTEX_MCP_FILESYSTEM_BIN") else {
        skip("no MCP servers from npm (CORTEX_MCP_FILESYSTEM_BIN unset; .ci/run installs them)");
        return None;
    };
    let model = Model::start();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    // Codex defers MCP tools behind its `tool_search` tool, which the
    // scripted model does not speak: it is offered them upfront instead.
    let config = model.config(&codex, &env.path("codex-home"), "never");
    let config = config.replace("config = [\n", "config = [\n  'features.tool_search=false',\n");
    std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let command = format!("{} {}", files.to_str().unwrap(), env.repo.display());
    assert_eq!(cortex(&["tool", "add", "files", "--command", &command]).code, 0);
    let running = wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        statuses
            .as_array()?
            .iter()
            .any(|status| status["name"] == "files" && status["phase"] == "running")
            .then_some(())
    });
    assert!(running.is_some(), "{}", cortex(&["tool", "status"]).stdout);
    Some((model, core))
}

fn tool_calls(env: &TestEnv, core: &CoreProcess, id: &str) -> Vec<serde_json::Value> {
    log(env, core, id)
        .into_iter()
        .filter(|event| event["kind"] == "tool_call")
        .map(|event| event["call"].clone())
        .collect()
}

fn send(env: &TestEnv, core: &CoreProcess, id: &str, prompt: &str) -> serde_json::Value {
    let run = env.cortex_at(core, &env.repo, ["session", "send", id, prompt, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()
}

#[test]
fn codex_calls_a_filesystem_tool_through_the_gateway_held_to_policy_and_recorded() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    std::fs::write(env.repo.join("notes.txt"), "the gateway read this\n").unwrap();
    let denied = cortex(&["tool", "policy", "files", "move_file", "denied", "--risk", "medium"]);
    assert_eq!(denied.code, 0, "{}", denied.stderr);
    let ask = cortex(&["tool", "policy", "files", "write_file", "needs-approval", "--risk", "high", "--json"]);
    assert_eq!(ask.code, 0, "{}", ask.stderr);
    assert_eq!(ask.json()["policies"]["write_file"], serde_json::json!({"policy": "needs_approval", "risk": "high"}));

    // The session's tool list is the gateway's: the registry's tools, namespaced.
    let start = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "tools files directory file", "--provider", "codex", "--json"],
    );
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let events = log(&env, &core, &id);
    let listed = events.iter().find(|event| event["kind"] == "assistant_message").unwrap()["text"].clone();
    let listed = listed.as_str().unwrap();
    assert!(listed.contains("cortex") && listed.contains("files") && listed.contains("read_text_file"), "{listed}");

    // An allowed call: forwarded, answered, recorded with its schema hash.
    let path = env.repo.join("notes.txt");
    let read = send(&env, &core, &id, &format!(r#"tool files.read_text_file {{"path":"{}"}}"#, path.display()));
    assert_eq!(read["outcome"], "completed", "{read}");
    let said = log(&env, &core, &id).into_iter().rev().find(|event| event["kind"] == "assistant_message").unwrap();
    assert!(said["text"].as_str().unwrap().contains("the gateway read this"), "{said}");
    let calls = tool_calls(&env, &core, &id);
    let call = &calls[0];
    assert_eq!((call["server"].as_str(), call["tool"].as_str()), (Some("files"), Some("read_text_file")), "{call}");
    assert_eq!((call["outcome"].as_str(), call["policy"].as_str()), (Some("ok"), Some("allowed")), "{call}");
    let statuses = cortex(&["tool", "status", "--json"]).json();
    let listed_hash = statuses[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == "read_text_file")
        .unwrap()["schema_hash"]
        .clone();
    assert_eq!(call["schema_hash"], listed_hash, "the call names the schema the node listed");
    assert!(call["duration_ms"].is_u64() && call["result_bytes"].as_u64().unwrap() > 20, "{call}");
    assert!(call["arguments"].as_str().unwrap().contains("notes.txt"), "{call}");

    // A denied tool: refused, never forwarded, recorded.
    let target = env.repo.join("moved.txt");
    let arguments = format!(r#"{{"source":"{}","destination":"{}"}}"#, path.display(), target.display());
    send(&env, &core, &id, &format!("tool files.move_file {arguments}"));
    assert!(path.exists() && !target.exists(), "a denied tool never ran");
    let call = tool_calls(&env, &core, &id).pop().unwrap();
    assert_eq!((call["tool"].as_str(), call["outcome"].as_str()), (Some("move_file"), Some("denied")), "{call}");
    assert_eq!(call["risk"], "medium");

    // A tool that needs approval waits as awaiting_approval, then runs.
    let written = env.repo.join("written.txt");
    let arguments = format!(r#"{{"path":"{}","content":"approved"}}"#, written.display());
    let waiting = send_later(&env, &core, &id, &format!("tool files.write_file {arguments}"));
    let session = wait_state(&env, &core, &id, "awaiting_approval");
    assert!(!written.exists(), "nothing runs before the approval: {session}");
    let approve = cortex(&["session", "approve", &id]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    let output = waiting.join().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "approved");
    let call = tool_calls(&env, &core, &id).pop().unwrap();
    assert_eq!((call["tool"].as_str(), call["outcome"].as_str()), (Some("write_file"), Some("ok")), "{call}");
    assert!(call["approved_by"].is_string(), "{call}");
    let requested =
        log(&env, &core, &id).into_iter().rev().find(|event| event["kind"] == "approval_requested").unwrap();
    assert!(requested["prompt"].as_str().unwrap().contains("files.write_file"), "{requested}");

    // The timeline says what each call did.
    let text = env.cortex_at(&core, &env.repo, ["session", "log", &id]).stdout;
    assert!(text.contains("tool files.move_file denied"), "{text}");
}

#[test]
fn claude_calls_a_filesystem_tool_through_the_gateway_and_a_denied_one_is_refused() {
    let env = TestEnv::new();
    let Some(claude) = crate::support::claude_binary() else { return };
    let Some(files) = std::env::var_os("CORTEX_MCP_FILESYSTEM_BIN") else {
        return skip("no MCP servers from npm (CORTEX_MCP_FILESYSTEM_BIN unset; .ci/run installs them)");
    };
    let model = crate::support::anthropic::Anthropic::start();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    // Claude Code defers MCP tools behind ToolSearch, which the scripted
    // model does not speak: they are offered upfront instead.
    let config = model.config(&claude).replace("env = { ", "env = { ENABLE_TOOL_SEARCH = \"false\", ");
    std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    std::fs::write(env.repo.join("notes.txt"), "claude read this through cortex\n").unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let command = format!("{} {}", files.to_str().unwrap(), env.repo.display());
    assert_eq!(cortex(&["tool", "add", "files", "--command", &command]).code, 0);
    assert_eq!(cortex(&["tool", "policy", "files", "write_file", "denied"]).code, 0);
    let running = wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        statuses
            .as_array()?
            .iter()
            .any(|status| status["name"] == "files" && status["phase"] == "running")
            .then_some(())
    });
    assert!(running.is_some(), "{}", cortex(&["tool", "status"]).stdout);

    let path = env.repo.join("notes.txt");
    let prompt = format!(r#"tool files.read_text_file {{"path":"{}"}}"#, path.display());
    let id = crate::support::agents::start(&env, &core, "claude", &prompt);
    let events = log(&env, &core, &id);
    let said = events.iter().rev().find(|event| event["kind"] == "assistant_message").unwrap();
    assert!(said["text"].as_str().unwrap().contains("claude read this through cortex"), "{said}");
    let call = tool_calls(&env, &core, &id).pop().expect("the call is recorded");
    assert_eq!((call["name"].as_str(), call["outcome"].as_str()), (Some("files.read_text_file"), Some("ok")), "{call}");
    assert_eq!(call["schema_hash"].as_str().map(str::len), Some(64), "{call}");

    let written = env.repo.join("written.txt");
    let arguments = format!(r#"{{"path":"{}","content":"no"}}"#, written.display());
    send(&env, &core, &id, &format!("tool files.write_file {arguments}"));
    assert!(!written.exists(), "a denied tool never ran");
    let call = tool_calls(&env, &core, &id).pop().unwrap();
    assert_eq!((call["tool"].as_str(), call["outcome"].as_str()), (Some("write_file"), Some("denied")), "{call}");
}

#[test]
fn a_plugins_server_and_skill_are_in_the_sessions_tool_list_and_answer_through_the_gateway() {
    let env = TestEnv::new();
    let Some((_model, core)) = setup(&env) else { return };
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let server = std::fs::canonicalize(std::env::var_os("CORTEX_MCP_FILESYSTEM_BIN").unwrap()).unwrap();
    let kit = env.path("kit");
    std::fs::create_dir_all(kit.join("skills/review")).unwrap();
    std::fs::write(
        kit.join("plugin.json"),
        r#"{"$schema": "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json", "name": "kit", "version": "1.0.0"}"#,
    )
    .unwrap();
    let mcp = serde_json::json!({"$schema": "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json",
        "mcpServers": {"fs": {"type": "stdio", "command": "node", "args": [server, env.repo]}}});
    std::fs::write(kit.join("mcp.json"), mcp.to_string()).unwrap();
    std::fs::write(
        kit.join("skills/review/SKILL.md"),
        "---\nname: review\ndescription: Reviews a diff\n---\n\nRead the diff twice.\n",
    )
    .unwrap();
    let added = cortex(&["plugin", "add", kit.to_str().unwrap()]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let running = wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        statuses
            .as_array()?
            .iter()
            .any(|status| status["name"] == "kit.fs" && status["phase"] == "running")
            .then_some(())
    });
    assert!(running.is_some(), "{}", cortex(&["tool", "status"]).stdout);

    let start = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "tools kit fs read skill review", "--provider", "codex", "--json"],
    );
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let said = |id: &str| {
        let events = log(&env, &core, id);
        events.iter().rev().find(|event| event["kind"] == "assistant_message").unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let listed = said(&id);
    assert!(listed.contains("kit_fs_read_text_file") && listed.contains("cortex_skill_kit_review"), "{listed}");

    send(&env, &core, &id, "tool cortex.skill.kit.review {}");
    assert!(said(&id).contains("Read the diff twice."), "{}", said(&id));
    std::fs::write(env.repo.join("notes.txt"), "through the plugin\n").unwrap();
    let path = env.repo.join("notes.txt");
    send(&env, &core, &id, &format!(r#"tool kit.fs.read_text_file {{"path":"{}"}}"#, path.display()));
    assert!(said(&id).contains("through the plugin"), "{}", said(&id));
    let calls = tool_calls(&env, &core, &id);
    let names: Vec<(&str, &str)> =
        calls.iter().map(|call| (call["server"].as_str().unwrap(), call["tool"].as_str().unwrap())).collect();
    assert_eq!(names, [("cortex", "skill.kit.review"), ("kit.fs", "read_text_file")]);
}

#[test]
fn a_projects_own_tools_toml_gives_its_sessions_and_only_them_its_tools() {
    let env = TestEnv::new();
    let Some((model, core)) = setup(&env) else { return };
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/crashy_mcp.py");
    let folder = env.path("proj");
    std::fs::create_dir_all(&folder).unwrap();
    let tools = format!(
        "[[tool]]\nname = \"proj\"\ncommand = [\"python3\", \"{}\", \"{}\"]\npolicies = {{ echo = {{ policy = \"allowed\", risk = \"low\" }} }}\n",
        script.display(),
        folder.display()
    );
    std::fs::write(env.repo.join(".cortex/tools.toml"), tools).unwrap();
    // Another workspace, whose tools file is wrong.
    let other = env.repo("other");
    std::fs::create_dir_all(other.join(".cortex")).unwrap();
    std::fs::write(
        other.join(".cortex/config.toml"),
        std::fs::read_to_string(env.repo.join(".cortex/config.toml")).unwrap(),
    )
    .unwrap();
    std::fs::write(other.join(".cortex/tools.toml"), "[[tool]]\nname = \"x\"\ncomand = [\"x\"]\n").unwrap();
    for repo in [&env.repo, &other] {
        assert_eq!(env.cortex_at(&core, repo, ["workspace", "bind"]).code, 0);
    }
    // A person trusts the file the node read.
    crate::tools::wait_phase(&cortex, "project:repo", "blocked", "is not trusted");
    assert_eq!(cortex(&["tool", "trust", "repo"]).code, 0);
    let settled = wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        let find = |name: &str| statuses.as_array()?.iter().find(|status| status["name"] == name).cloned();
        let (proj, bad) = (find("proj")?, find("project:other")?);
        (proj["phase"] == "running").then_some(bad)
    });
    let bad = settled.unwrap_or_else(|| panic!("{}", cortex(&["tool", "status"]).stdout));
    assert_eq!(bad["phase"], "failed");
    let reason = bad["reason"].as_str().unwrap();
    assert!(reason.starts_with("other/.cortex/tools.toml") && reason.contains("unknown field `comand`"), "{reason}");

    let start = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", r#"tool proj.echo {"text":"from the project"}"#, "--provider", "codex", "--json"],
    );
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let events = log(&env, &core, &id);
    let said = events.iter().rev().find(|event| event["kind"] == "assistant_message").unwrap();
    assert!(said["text"].as_str().unwrap().contains("from the project"), "{said}");
    assert_eq!(tool_calls(&env, &core, &id)[0]["server"], "proj");

    // The other workspace's sessions are not given it.
    let start = env.cortex_at(&core, &other, ["session", "start", "tools proj echo", "--provider", "codex", "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let events = log(&env, &core, &id);
    let said = events.iter().rev().find(|event| event["kind"] == "assistant_message").unwrap();
    assert!(!said["text"].as_str().unwrap().contains("proj_echo"), "{said}");
    drop(model);
}
