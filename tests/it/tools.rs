//! The Tool Registry and the Plugin Registry in Core: tools registered with
//! scope and secret references (never values), plugins checked against the
//! Agent Plugins 1.0 schemas before anything is installed, through the CLI
//! and through the API alike.

use std::path::Path;

use crate::support::TestEnv;
use crate::support::cluster::{CoreProcess, Http, free_port};

pub(crate) const SCHEMA: &str = "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json";
pub(crate) const MCP_SCHEMA: &str = "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json";

fn write_plugin(dir: &Path, manifest: &str) {
    std::fs::create_dir_all(dir.join("skills/review")).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest).unwrap();
    let mcp = format!(
        r#"{{"$schema": "{MCP_SCHEMA}", "mcpServers": {{
            "fs": {{"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."]}},
            "web": {{"type": "streamable-http", "url": "http://127.0.0.1:9/mcp"}}}}}}"#
    );
    std::fs::write(dir.join("mcp.json"), mcp).unwrap();
    std::fs::write(
        dir.join("skills/review/SKILL.md"),
        "---\nname: review\ndescription: Reviews a diff line by line\n---\n\nRead the diff.\n",
    )
    .unwrap();
}

fn names(value: &serde_json::Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|item| item["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn tools_are_registered_with_scopes_and_secret_names_never_values() {
    let env = TestEnv::new();
    let core: CoreProcess = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    assert_eq!(cortex(&["tool", "list", "--json"]).json(), serde_json::json!([]));

    let added = cortex(&[
        "tool",
        "add",
        "files",
        "--command",
        "npx -y '@modelcontextprotocol/server-filesystem' .",
        "--env",
        "GITHUB_TOKEN",
        "--json",
    ]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let tool = added.json();
    assert_eq!(
        tool["server"],
        serde_json::json!({"transport": "stdio", "command": ["npx", "-y", "@modelcontextprotocol/server-filesystem", "."]})
    );
    assert_eq!((tool["scope"].as_str(), tool["secrets"][0].as_str()), (Some("all"), Some("GITHUB_TOKEN")));
    let web = cortex(&["tool", "add", "search", "--url", "http://127.0.0.1:9/mcp", "--scope", "node:build-box"]);
    assert_eq!(web.code, 0, "{}", web.stderr);
    let listed = cortex(&["tool", "list"]).stdout;
    assert!(listed.contains("search  url: http://127.0.0.1:9/mcp  scope: node:build-box"), "{listed}");
    assert!(
        listed.contains(
            "files  command: npx -y @modelcontextprotocol/server-filesystem .  scope: all  needs: GITHUB_TOKEN"
        ),
        "{listed}"
    );

    // Refused, each naming why, and nothing written.
    let value = cortex(&[
        "tool",
        "add",
        "gh",
        "--command",
        "gh-mcp",
        "--env",
        "GITHUB_TOKEN=ghp_CorpusGithubToken0123456789abcdefgh",
    ]);
    assert_ne!(value.code, 0);
    assert!(value.stderr.contains("never its value"), "{}", value.stderr);
    let twice = cortex(&["tool", "add", "files", "--url", "http://127.0.0.1:9/x"]);
    assert!(twice.code != 0 && twice.stderr.contains("tool `files` already exists"), "{}", twice.stderr);
    let scope = cortex(&["tool", "add", "x", "--command", "x", "--scope", "planet:mars"]);
    assert!(scope.code != 0 && scope.stderr.contains("is not `all`, `node:NAME`"), "{}", scope.stderr);
    let http = Http::new(&core);
    let (status, answer) = http.post(
        "/api/v1/tools",
        &serde_json::json!({"name": "y", "server": {"transport": "http", "url": "file:///etc/passwd"}, "scope": "all"}),
    );
    assert_eq!(status, 422, "Core checks again: {answer}");
    let secret = serde_json::json!({"name": "gh", "server": {"transport": "stdio", "command": ["gh-mcp"]}, "scope": "all",
        "secrets": ["GITHUB_TOKEN=ghp_CorpusGithubToken0123456789abcdefgh"]});
    let (status, answer) = http.post("/api/v1/tools", &secret);
    assert_eq!(status, 422, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("never its value"), "{answer}");
    assert_eq!(names(&cortex(&["tool", "list", "--json"]).json()), ["files", "search"]);
    let stored = std::fs::read(env.cortex_home.join("core.sqlite")).unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("ghp_CorpusGithubToken"), "a secret value reached core.sqlite");

    assert_eq!(cortex(&["tool", "show", "files", "--json"]).json()["name"], "files");
    assert_eq!(cortex(&["tool", "remove", "search"]).code, 0);
    let gone = cortex(&["tool", "show", "search"]);
    assert!(gone.code != 0 && gone.stderr.contains("no tool `search`"), "{}", gone.stderr);
    let no_core = env.cortex(["tool", "list", "--no-core"]);
    assert!(no_core.code != 0 && no_core.stderr.contains("needs a running Core"), "{}", no_core.stderr);
}

#[test]
fn a_bad_plugin_is_refused_naming_the_field_and_a_good_one_brings_its_servers_and_skill() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let dir = env.path("review-kit");

    for (manifest, expected) in [
        (
            format!(r#"{{"$schema": "{SCHEMA}", "name": "review-kit", "hooks": {{"pre": "rm -rf ~"}}}}"#),
            "unknown field `hooks`",
        ),
        (r#"{"name": "review-kit"}"#.to_string(), "missing field `$schema`"),
        (format!(r#"{{"$schema": "{SCHEMA}", "name": "Review-Kit"}}"#), "`name` `Review-Kit` must be"),
    ] {
        write_plugin(&dir, &manifest);
        let refused = cortex(&["plugin", "add", dir.to_str().unwrap()]);
        assert!(refused.code != 0 && refused.stderr.contains(expected), "{manifest}: {}", refused.stderr);
        assert!(refused.stderr.contains("plugin.json"), "{}", refused.stderr);
        // Core refuses it too when asked directly.
        let package = serde_json::json!({"manifest": manifest, "skills": []});
        let (status, answer) = Http::new(&core).post("/api/v1/plugins", &package);
        assert_eq!(status, 422, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(expected), "{answer}");
    }
    assert_eq!(cortex(&["plugin", "list", "--json"]).json(), serde_json::json!([]), "nothing installed");
    assert_eq!(cortex(&["tool", "list", "--json"]).json(), serde_json::json!([]), "no server installed");

    // A skill file that leads out of the plugin is refused, not followed.
    write_plugin(&dir, &format!(r#"{{"$schema": "{SCHEMA}", "name": "review-kit", "version": "1.2.0"}}"#));
    std::fs::create_dir_all(dir.join("skills/evil")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("skills/evil/SKILL.md")).unwrap();
    let escaped = cortex(&["plugin", "add", dir.to_str().unwrap()]);
    assert!(escaped.code != 0 && escaped.stderr.contains("leads outside the plugin"), "{}", escaped.stderr);
    std::fs::remove_dir_all(dir.join("skills/evil")).unwrap();

    let installed = cortex(&["plugin", "add", dir.to_str().unwrap(), "--json"]);
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    let plugins = cortex(&["plugin", "list", "--json"]).json();
    assert_eq!(names(&plugins), ["review-kit"]);
    assert_eq!(plugins[0]["version"], "1.2.0");
    assert_eq!(
        plugins[0]["skills"],
        serde_json::json!([{"name": "review", "description": "Reviews a diff line by line"}])
    );
    let tools = cortex(&["tool", "list", "--json"]).json();
    assert_eq!(names(&tools), ["review-kit.fs", "review-kit.web"]);
    assert!(tools.as_array().unwrap().iter().all(|tool| tool["plugin"] == "review-kit"));
    let text = cortex(&["plugin", "list"]).stdout;
    assert!(text.contains("review-kit 1.2.0  servers: review-kit.fs, review-kit.web  skills: review"), "{text}");
    let owned = cortex(&["tool", "remove", "review-kit.fs"]);
    assert!(owned.code != 0 && owned.stderr.contains("remove the plugin instead"), "{}", owned.stderr);
    let again = cortex(&["plugin", "add", dir.to_str().unwrap()]);
    assert!(again.code != 0 && again.stderr.contains("already installed"), "{}", again.stderr);

    // Removed with its servers; then installed again from a git URL.
    assert_eq!(cortex(&["plugin", "remove", "review-kit"]).code, 0);
    assert_eq!(cortex(&["tool", "list", "--json"]).json(), serde_json::json!([]));
    env.git(&dir, ["init", "-q", "-b", "main"]);
    env.git(&dir, ["add", "."]);
    env.git(&dir, ["commit", "-q", "-m", "plugin"]);
    let url = format!("file://{}", dir.display());
    let cloned = cortex(&["plugin", "add", &url, "--json"]);
    assert_eq!(cloned.code, 0, "{}", cloned.stderr);
    assert_eq!(cloned.json()["servers"].as_array().unwrap().len(), 2);

    // The panel shows the same registry.
    let page = crate::support::panel::logged_in(&env, &core).get(&format!("{}/tools", core.url));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<tr id=\"tool-review-kit.fs\"><td><a href=\"/tools/review-kit.fs\"><code>review-kit.fs</code></a></td><td>stdio</td><td><code>npx -y @modelcontextprotocol/server-filesystem .</code></td><td>all</td>"), "{}", page.body);
    assert!(page.body.contains("<strong>review</strong>: Reviews a diff line by line"), "{}", page.body);
}

/// `cortex node run` for a new node named `name`, with `secret` set or not.
fn start_node(env: &TestEnv, core: &CoreProcess, name: &str, secret: bool) -> crate::support::Background {
    let token = env.enroll(core, name);
    let log = std::fs::File::create(env.path(&format!("{name}.log"))).unwrap();
    let mut command = env.cortex_command(env.root.path());
    command
        .env("CORTEX_HOME", env.path(&format!("{name}-node")))
        .env("CORTEX_LOG", "cortex=debug")
        .env_remove("CORTEX_TEST_MCP_SECRET")
        .args(["node", "run", "--core", &core.url, "--token", &token, "--name", name]);
    if secret {
        command.env("CORTEX_TEST_MCP_SECRET", "present");
    }
    crate::support::Background(command.stdout(std::process::Stdio::null()).stderr(log).spawn().unwrap())
}

#[test]
fn registered_once_real_mcp_servers_run_on_two_nodes_and_a_missing_secret_fails_on_one() {
    let (Some(files), Some(everything)) =
        (std::env::var_os("CORTEX_MCP_FILESYSTEM_BIN"), std::env::var_os("CORTEX_MCP_EVERYTHING_BIN"))
    else {
        return crate::support::skip(
            "no MCP servers from npm (CORTEX_MCP_FILESYSTEM_BIN unset; .ci/run installs them)",
        );
    };
    let env = TestEnv::new();
    let core = env.start_core("core", &env.path("core"), free_port());
    let _alpha = start_node(&env, &core, "alpha", true);
    let _beta = start_node(&env, &core, "beta", false);
    crate::support::cluster::wait_node_status(&env, &core, "alpha", "online");
    crate::support::cluster::wait_node_status(&env, &core, "beta", "online");
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let shared = env.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let files_command = format!("{} {}", files.to_str().unwrap(), shared.display());
    assert_eq!(cortex(&["tool", "add", "files", "--command", &files_command]).code, 0);
    let everything_command = everything.to_str().unwrap();
    let added =
        cortex(&["tool", "add", "everything", "--command", everything_command, "--env", "CORTEX_TEST_MCP_SECRET"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(cortex(&["tool", "add", "ghost", "--command", "/nowhere/mcp-ghost"]).code, 0);
    assert_eq!(cortex(&["tool", "add", "alpha-only", "--command", &files_command, "--scope", "node:alpha"]).code, 0);

    let state = |statuses: &serde_json::Value, tool: &str, node: &str| -> Option<serde_json::Value> {
        statuses.as_array()?.iter().find(|status| status["name"] == tool && status["node_name"] == node).cloned()
    };
    let statuses = crate::support::wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        let settled = ["alpha", "beta"]
            .iter()
            .all(|node| ["files", "everything", "ghost"].iter().all(|tool| state(&statuses, tool, node).is_some()))
            && state(&statuses, "alpha-only", "alpha").is_some();
        settled.then_some(statuses)
    })
    .unwrap_or_else(|| panic!("not every node reported: {}", cortex(&["tool", "status"]).stdout));

    for node in ["alpha", "beta"] {
        let running = state(&statuses, "files", node).unwrap();
        assert_eq!(running["phase"], "running", "{running}");
        let tools: Vec<&str> =
            running["tools"].as_array().unwrap().iter().map(|tool| tool["name"].as_str().unwrap()).collect();
        assert!(tools.contains(&"list_directory"), "{tools:?}");
        assert!(running["tools"][0]["schema_hash"].as_str().unwrap().len() == 64);
        let ghost = state(&statuses, "ghost", node).unwrap();
        assert_eq!(
            (ghost["phase"].as_str(), ghost["reason"].as_str()),
            (Some("failed"), Some("missing binary /nowhere/mcp-ghost"))
        );
    }
    assert_eq!(state(&statuses, "everything", "alpha").unwrap()["phase"], "running");
    let beta = state(&statuses, "everything", "beta").unwrap();
    assert_eq!(
        (beta["phase"].as_str(), beta["reason"].as_str()),
        (Some("failed"), Some("missing secret CORTEX_TEST_MCP_SECRET"))
    );
    assert!(state(&statuses, "alpha-only", "beta").is_none(), "a node-scoped tool goes to its node only");
    let text = cortex(&["tool", "status"]).stdout;
    assert!(text.contains("everything  on beta  failed: missing secret CORTEX_TEST_MCP_SECRET"), "{text}");

    // Removed from the registry: the nodes stop it and say so.
    assert_eq!(cortex(&["tool", "remove", "ghost"]).code, 0);
    let gone = crate::support::wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        (state(&statuses, "ghost", "alpha").is_none() && state(&statuses, "ghost", "beta").is_none()).then_some(())
    });
    assert!(gone.is_some(), "{}", cortex(&["tool", "status"]).stdout);
}

#[test]
fn a_crashed_server_is_degraded_restarted_with_backoff_and_failed_when_it_keeps_crashing() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let folder = env.path("crashy");
    std::fs::create_dir_all(&folder).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/crashy_mcp.py");
    let command = format!("python3 {} {}", script.display(), folder.display());
    assert_eq!(cortex(&["tool", "add", "crashy", "--command", &command]).code, 0);
    let phase = |wanted: &str, reason: &str| wait_phase(&cortex, "crashy", wanted, reason);
    let running = phase("running", "");
    assert_eq!(running["tools"][0]["name"], "echo");

    // Crashed once: degraded, then running again by itself.
    std::fs::write(folder.join("crash-now"), "").unwrap();
    phase("degraded", "crashed: it exited; restart 1 of 4 in 0.5 s");
    phase("running", "");

    // Crashing for good: within a minute of the last crash, restarts go on
    // counting; after the fourth, it is left failed.
    std::fs::write(folder.join("crash-always"), "").unwrap();
    std::fs::write(folder.join("crash-now"), "").unwrap();
    phase("degraded", "restart 2 of 4 in 1.0 s");
    let failed = phase("failed", "restarted 4 times in a row, then left stopped");
    assert!(failed["reason"].as_str().unwrap().contains("the restart failed"), "{failed}");
}

/// Waits until `tool` is reported `wanted` with a reason containing `reason`.
pub(crate) fn wait_phase(
    cortex: &dyn Fn(&[&str]) -> crate::support::Run,
    tool: &str,
    wanted: &str,
    reason: &str,
) -> serde_json::Value {
    crate::support::wait_for(|| {
        let statuses = cortex(&["tool", "status", "--json"]).json();
        let status = statuses.as_array()?.iter().find(|status| status["name"] == tool)?.clone();
        let matches = status["phase"] == wanted && status["reason"].as_str().unwrap_or_default().contains(reason);
        matches.then_some(status)
    })
    .unwrap_or_else(|| panic!("{tool} never {wanted} ({reason}): {}", cortex(&["tool", "status"]).stdout))
}

/// A fake session's script whose one command calls `echo.echo` through
/// the session's gateway, as an agent would.
fn calling_script(env: &TestEnv) -> std::path::PathBuf {
    script_calling(env, "echo.echo", r#"{"text": "through the gateway"}"#)
}

/// A fake session's script whose one command calls `tool` with `arguments`
/// (JSON) through the session's gateway.
pub(crate) fn script_calling(env: &TestEnv, tool: &str, arguments: &str) -> std::path::PathBuf {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/mcp_call.py");
    let step = format!("python3 {} {tool} '{arguments}'", client.display());
    env.script(&format!("call-{tool}.toml"), &format!("[[step]]\ncommand = {}\n", toml::Value::String(step)))
}

pub(crate) fn start_session(env: &TestEnv, core: &CoreProcess, script: &Path, prompt: &str) -> String {
    let run =
        env.cortex_at(core, &env.repo, ["session", "start", prompt, "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["session_id"].as_str().unwrap().to_string()
}

/// `python3 crashy_mcp.py FOLDER`, the tests' MCP server with one `echo` tool.
pub(crate) fn echo_command(env: &TestEnv) -> (String, std::path::PathBuf) {
    let folder = env.path("echo");
    std::fs::create_dir_all(&folder).unwrap();
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/crashy_mcp.py");
    (format!("python3 {} {}", server.display(), folder.display()), folder)
}

fn is_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid.trim()).exists()
}

#[test]
fn a_server_stops_with_its_last_session_starts_again_when_needed_and_is_blocked_when_every_tool_is_denied() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let folder = env.path("echo");
    std::fs::create_dir_all(&folder).unwrap();
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/crashy_mcp.py");
    assert_eq!(
        cortex(&["tool", "add", "echo", "--command", &format!("python3 {} {}", server.display(), folder.display())])
            .code,
        0
    );
    wait_phase(&cortex, "echo", "running", "");
    let first = std::fs::read_to_string(folder.join("pid")).unwrap();

    // A session calls the tool as an agent would, through its gateway.
    let script = calling_script(&env);
    let start = |prompt: &str| start_session(&env, &core, &script, prompt);
    let (one, two) = (start("first user"), start("second user"));
    let calls = |id: &str| -> Vec<serde_json::Value> {
        let log = env.cortex_at(&core, &env.repo, ["session", "log", id, "--json"]);
        log.json().as_array().unwrap().iter().filter(|event| event["kind"] == "tool_call").cloned().collect()
    };
    let call = calls(&one).pop().unwrap_or_else(|| panic!("no tool call in {one}"));
    assert_eq!(
        (call["call"]["server"].as_str(), call["call"]["outcome"].as_str()),
        (Some("echo"), Some("ok")),
        "{call}"
    );

    // Idle sessions hold it up; it stops with the last one to end.
    assert_eq!(cortex(&["session", "stop", &one]).code, 0);
    assert_eq!(wait_phase(&cortex, "echo", "running", "")["phase"], "running");
    assert!(is_alive(&first), "stopped while a session still uses it");
    assert_eq!(cortex(&["session", "stop", &two]).code, 0);
    let stopped = wait_phase(&cortex, "echo", "configured", "stopped with its last session");
    assert!(stopped["reason"].as_str().unwrap().contains(&two), "{stopped}");
    assert!(crate::support::wait_for(|| (!is_alive(&first)).then_some(())).is_some(), "pid {first} still runs");

    // The next session that needs it starts it again.
    let three = start("third user");
    assert_eq!(calls(&three).pop().unwrap()["call"]["outcome"], "ok");
    wait_phase(&cortex, "echo", "running", "");
    let second = std::fs::read_to_string(folder.join("pid")).unwrap();
    assert!(second != first && is_alive(&second), "{first} then {second}");

    // Every tool denied: nothing it offers could be called, so it is not run.
    assert_eq!(cortex(&["tool", "policy", "echo", "*", "denied"]).code, 0);
    let blocked = wait_phase(&cortex, "echo", "blocked", "blocked by policy: every tool of echo is denied");
    assert!(blocked["tools"].as_array().unwrap().is_empty(), "{blocked}");
    assert!(crate::support::wait_for(|| (!is_alive(&second)).then_some(())).is_some(), "pid {second} still runs");
    assert_eq!(cortex(&["tool", "policy", "echo", "*", "allowed"]).code, 0);
    wait_phase(&cortex, "echo", "running", "");
}

#[test]
fn the_panel_shows_each_tool_wanted_against_reported_why_a_session_lacks_one_and_its_calls() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let (command, _) = echo_command(&env);
    assert_eq!(cortex(&["tool", "add", "echo", "--command", &command]).code, 0);
    assert_eq!(cortex(&["tool", "policy", "echo", "echo", "allowed", "--risk", "medium"]).code, 0);
    assert_eq!(cortex(&["tool", "add", "ghost", "--command", "/nowhere/mcp-ghost"]).code, 0);
    assert_eq!(cortex(&["tool", "add", "elsewhere", "--command", &command, "--scope", "workspace:other"]).code, 0);
    wait_phase(&cortex, "echo", "running", "");
    wait_phase(&cortex, "ghost", "failed", "missing binary");
    let id = start_session(&env, &core, &calling_script(&env), "calls echo");
    let browser = crate::support::panel::logged_in(&env, &core);
    let get = |path: &str| {
        let page = browser.get(&format!("{}{path}", core.url));
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        page.body
    };

    // Wanted against reported, per node.
    let tools = get("/tools");
    let row = |name: &str| {
        tools.split(&format!("<tr id=\"tool-{name}\">")).nth(1).unwrap().split("</tr>").next().unwrap().to_string()
    };
    assert!(row("echo").contains("<span class=\"badge running\">running</span>"), "{}", row("echo"));
    assert!(
        row("ghost").contains(
            "<span class=\"badge failed\">failed</span> <span class=\"reason\">missing binary /nowhere/mcp-ghost</span>"
        ),
        "{}",
        row("ghost")
    );
    assert!(row("elsewhere").contains("no node in its scope"), "{}", row("elsewhere"));

    // One tool: its tools with their rules, and its calls.
    let echo = get("/tools/echo");
    assert!(
        echo.contains("<td><code>echo.echo</code></td>") && echo.contains("<td>allowed, medium risk</td>"),
        "{echo}"
    );
    assert!(echo.contains("<td>Echo: answers with the text it is given (the project echo tool)</td>"), "{echo}");
    assert!(echo.contains("&#34;required&#34;: [\n    &#34;text&#34;\n  ]"), "the schema, in full: {echo}");
    let calls = echo.split("<table id=\"calls\">").nth(1).expect("a calls table");
    assert!(
        calls.contains("<code>echo.echo</code>") && calls.contains("<span class=\"badge ok\">ok</span>"),
        "{calls}"
    );
    assert!(calls.contains(&format!("href=\"/sessions/{id}\"")), "{calls}");

    // What the session is offered, and why not.
    let offered = get(&format!("/sessions/{id}/tools"));
    let row = |name: &str| {
        offered.split(&format!("<tr id=\"tool-{name}\">")).nth(1).unwrap().split("</tr>").next().unwrap().to_string()
    };
    assert!(
        row("echo").contains("available</span>") && row("echo").contains("<code>echo.echo</code>"),
        "{}",
        row("echo")
    );
    assert!(
        row("ghost").contains("unavailable</span> <span class=\"why\">failed on ")
            && row("ghost").contains(": missing binary /nowhere/mcp-ghost"),
        "{}",
        row("ghost")
    );
    let workspace = env.repo.file_name().unwrap().to_str().unwrap();
    assert!(
        row("elsewhere").contains(&format!("scoped to workspace other; this session&#39;s workspace is {workspace}")),
        "{}",
        row("elsewhere")
    );
    // The API answers the same.
    let http = Http::new(&core);
    let (status, api) = http.get(&format!("/api/v1/sessions/{id}/tools"), Some(http.token()));
    assert_eq!(status, 200, "{api}");
    let ghost = api.as_array().unwrap().iter().find(|tool| tool["name"] == "ghost").unwrap();
    assert_eq!(ghost["available"], false);
    assert!(ghost["why"].as_str().unwrap().ends_with("missing binary /nowhere/mcp-ghost"), "{ghost}");
    // The session's timeline links each call to its tool's page.
    assert!(get(&format!("/sessions/{id}")).contains("href=\"/tools/echo\""));
}

#[test]
fn a_cli_binary_is_checked_on_the_node_reported_with_its_version_and_run_in_the_sessions_workspace() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let added = cortex(&["tool", "add", "git", "--binary", "git", "--version-req", ">=2", "--json"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(added.json()["server"], serde_json::json!({"transport": "binary", "program": "git", "version": ">=2"}));
    assert_eq!(cortex(&["tool", "add", "future-git", "--binary", "git", "--version-req", ">=999"]).code, 0);
    assert_eq!(cortex(&["tool", "add", "nope", "--binary", "/nowhere/nope"]).code, 0);
    let bad = cortex(&["tool", "add", "bad", "--binary", "git", "--version-req", "two"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("`two` is not a version requirement"), "{}", bad.stderr);

    let git = wait_phase(&cortex, "git", "running", "");
    let version = git["version"].as_str().unwrap().to_string();
    assert!(version.starts_with("2."), "{git}");
    assert_eq!(git["tools"][0]["name"], "run");
    wait_phase(&cortex, "future-git", "failed", &format!("git {version} does not meet >=999"));
    wait_phase(&cortex, "nope", "failed", "missing binary /nowhere/nope");
    let status = cortex(&["tool", "status"]).stdout;
    let line = status.lines().find(|line| line.starts_with("git  on ")).unwrap_or_else(|| panic!("{status}"));
    assert!(line.ends_with(&format!("running (version {version})")), "{status}");

    // Called through the gateway: run with the call's words, in the session's workspace.
    let script = script_calling(&env, "git.run", r#"{"args": ["rev-parse", "--show-toplevel"]}"#);
    let id = start_session(&env, &core, &script, "asks git");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let events = log.as_array().unwrap();
    let call = events.iter().find(|event| event["kind"] == "tool_call").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(
        (call["call"]["name"].as_str(), call["call"]["outcome"].as_str()),
        (Some("git.run"), Some("ok")),
        "{call}"
    );
    let said: String = events
        .iter()
        .filter(|event| event["kind"] == "command_output")
        .map(|event| event["text"].as_str().unwrap())
        .collect();
    let top = std::fs::canonicalize(&env.repo).unwrap();
    assert!(said.contains("exit 0") && said.contains(top.to_str().unwrap()), "{said}");

    // Arguments are words, never a shell line; policy holds as for any tool.
    let script = script_calling(&env, "git.run", r#"{"args": "status; touch pwned"}"#);
    let id = start_session(&env, &core, &script, "tries a shell line");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let call = log.as_array().unwrap().iter().find(|event| event["kind"] == "tool_call").unwrap().clone();
    assert_eq!(call["call"]["outcome"], "error", "{call}");
    assert!(!env.repo.join("pwned").exists());
    assert_eq!(cortex(&["tool", "policy", "git", "run", "denied"]).code, 0);
    let script = script_calling(&env, "git.run", r#"{"args": ["status"]}"#);
    let id = start_session(&env, &core, &script, "denied");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let call = log.as_array().unwrap().iter().find(|event| event["kind"] == "tool_call").unwrap().clone();
    assert_eq!(call["call"]["outcome"], "denied", "{call}");
}

#[test]
fn a_rule_scoped_to_a_workspace_or_node_holds_there_and_the_most_specific_wins() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let (command, _) = echo_command(&env);
    assert_eq!(cortex(&["tool", "add", "echo", "--command", &command]).code, 0);
    wait_phase(&cortex, "echo", "running", "");
    let workspace = format!("workspace:{}", env.repo.file_name().unwrap().to_str().unwrap());
    let node = format!("node:{}", cortex(&["node", "list", "--json"]).json()[0]["name"].as_str().unwrap());
    let script = calling_script(&env);
    let outcome = |prompt: &str| {
        let id = start_session(&env, &core, &script, prompt);
        let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
        let call = log.as_array().unwrap().iter().find(|event| event["kind"] == "tool_call").cloned();
        (id, call.unwrap_or_else(|| panic!("no call in {log}"))["call"]["outcome"].as_str().unwrap().to_string())
    };

    // Denied in this workspace, allowed on this node: the workspace is more specific.
    let policy = |args: &[&str]| {
        let run = cortex(&[&["tool", "policy", "echo"][..], args].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        run
    };
    policy(&["echo", "denied", "--scope", &workspace]);
    let shown = policy(&["echo", "allowed", "--scope", &node, "--json"]).json();
    assert_eq!(shown["scoped_policies"].as_array().unwrap().len(), 2, "{shown}");
    let (id, denied) = outcome("denied here");
    assert_eq!(denied, "denied");
    let http = Http::new(&core);
    let (_, tools) = http.get(&format!("/api/v1/sessions/{id}/tools"), Some(http.token()));
    assert_eq!(tools[0]["tools"][0]["policy"], "denied", "{tools}");
    // The tool's own rule beats the same scope's `*`.
    policy(&["*", "allowed", "--scope", &workspace]);
    assert_eq!(outcome("still denied").1, "denied");
    // Replaced in the workspace: allowed.
    policy(&["echo", "allowed", "--scope", &workspace]);
    assert_eq!(outcome("allowed now").1, "ok");
    // Denied everywhere but allowed in a workspace: not blocked, it still runs.
    policy(&["*", "denied"]);
    assert_eq!(outcome("allowed in the workspace").1, "ok");
    assert_eq!(wait_phase(&cortex, "echo", "running", "")["phase"], "running");

    let all = cortex(&["tool", "policy", "echo", "echo", "denied", "--scope", "all"]);
    assert_eq!(all.code, 2, "{}", all.stderr);
    assert!(all.stderr.contains("leave --scope out"), "{}", all.stderr);
    let bad = cortex(&["tool", "policy", "echo", "echo", "denied", "--scope", "room:1"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn a_projects_tools_run_only_once_a_person_trusted_that_very_file() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let (command, folder) = echo_command(&env);
    let words: Vec<String> = command.split(' ').map(|word| format!("{word:?}")).collect();
    let file = format!("[[tool]]\nname = \"proj\"\ncommand = [{}]\n", words.join(", "));
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/tools.toml"), &file).unwrap();
    let bind = || assert_eq!(env.cortex_at(&core, &env.repo, ["workspace", "bind"]).code, 0);
    bind();

    // Cloned, not trusted: nothing runs, and it says what it would run.
    let blocked = wait_phase(&cortex, "project:repo", "blocked", "is not trusted; it would run `python3 ");
    let reason = blocked["reason"].as_str().unwrap();
    assert!(reason.ends_with("read it, then `cortex tool trust repo`"), "{reason}");
    let digest = blocked["digest"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64);
    assert!(!folder.join("pid").exists(), "a server of an untrusted file ran");

    // Trusted as read: it runs.
    let trusted = cortex(&["tool", "trust", "repo", "--json"]);
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    assert_eq!(trusted.json()["digest"], digest.as_str());
    wait_phase(&cortex, "proj", "running", "");
    let pid = std::fs::read_to_string(folder.join("pid")).unwrap();

    // Changed: blocked again, and the running server stops.
    std::fs::write(env.repo.join(".cortex/tools.toml"), format!("{file}env = [\"HOME\"]\n")).unwrap();
    bind();
    let again = wait_phase(&cortex, "project:repo", "blocked", "is not trusted");
    assert_ne!(again["digest"].as_str().unwrap(), digest);
    assert!(crate::support::wait_for(|| (!is_alive(&pid)).then_some(())).is_some(), "pid {pid} still runs");
    let none = cortex(&["tool", "trust", "elsewhere"]);
    assert_ne!(none.code, 0);
    assert!(
        none.stderr.contains("workspace `elsewhere` has no .cortex/tools.toml waiting for trust"),
        "{}",
        none.stderr
    );
}
