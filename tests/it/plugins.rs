//! A plugin is enabled per workspace: its servers run on the nodes holding
//! a workspace it is enabled in, and a session's gateway offers its servers
//! and skills only where it is enabled; the session's tools say why not.

use crate::support::TestEnv;
use crate::support::cluster::{CoreProcess, Http, free_port};
use crate::tools::{MCP_SCHEMA, SCHEMA, echo_command, script_calling, start_session, wait_phase};

/// A plugin `kit` whose one server is the tests' echo server, with a skill.
fn write_kit(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.path("kit");
    std::fs::create_dir_all(dir.join("skills/review")).unwrap();
    std::fs::write(dir.join("plugin.json"), format!(r#"{{"$schema": "{SCHEMA}", "name": "kit"}}"#)).unwrap();
    let (command, _) = echo_command(env);
    let words: Vec<&str> = command.split(' ').collect();
    let servers = serde_json::json!({"$schema": MCP_SCHEMA, "mcpServers": {"echo": {"type": "stdio", "command": words[0], "args": &words[1..]}}});
    std::fs::write(dir.join("mcp.json"), servers.to_string()).unwrap();
    std::fs::write(
        dir.join("skills/review/SKILL.md"),
        "---\nname: review\ndescription: Reviews a diff\n---\n\nRead it.\n",
    )
    .unwrap();
    dir
}

/// The tools a new session's gateway lists.
fn listed(env: &TestEnv, core: &CoreProcess) -> (String, Vec<String>) {
    let script = script_calling(env, "--list", "");
    let id = start_session(env, core, &script, "lists its tools");
    let log = env.cortex_at(core, &env.repo, ["session", "log", &id, "--json"]).json();
    let names = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "command_output")
        .flat_map(|event| event["text"].as_str().unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|line| line.strip_prefix("listed: ").map(str::to_string))
        .collect();
    (id, names)
}

fn is_reported(cortex: &dyn Fn(&[&str]) -> crate::support::Run, tool: &str) -> bool {
    let statuses = cortex(&["tool", "status", "--json"]).json();
    statuses.as_array().unwrap().iter().any(|status| status["name"] == tool)
}

#[test]
fn a_plugin_enabled_per_workspace_offers_its_servers_and_skills_only_there() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, env.root.path(), args);
    let workspace = env.repo.file_name().unwrap().to_str().unwrap().to_string();
    let kit = write_kit(&env);
    let added = cortex(&["plugin", "add", kit.to_str().unwrap(), "--workspace", "other", "--json"]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(added.json()["enabled"], serde_json::json!(["other"]));
    let line = cortex(&["plugin", "list"]).stdout;
    assert!(line.contains("enabled in: other"), "{line}");
    let page = crate::support::panel::logged_in(&env, &core).get(&format!("{}/tools", core.url));
    assert!(page.body.contains("<p>Enabled in: <code>other</code>"), "{}", page.body);

    // Not enabled here: no node runs it, no session is offered it, and the
    // session's tools say why.
    let (id, names) = listed(&env, &core);
    assert!(names.iter().any(|name| name == "cortex.session_start"), "{names:?}");
    assert!(!names.iter().any(|name| name.starts_with("kit.") || name.starts_with("cortex.skill.kit")), "{names:?}");
    assert!(!is_reported(&cortex, "kit.echo"));
    let http = Http::new(&core);
    let (_, tools) = http.get(&format!("/api/v1/sessions/{id}/tools"), Some(http.token()));
    let echo = tools.as_array().unwrap().iter().find(|tool| tool["name"] == "kit.echo").unwrap().clone();
    assert_eq!(echo["available"], false, "{echo}");
    let why = format!("plugin kit is not enabled in workspace {workspace} (`cortex plugin enable kit {workspace}`)");
    assert_eq!(echo["why"], why.as_str());

    // Enabled here: the node runs its server, sessions get it and its skill.
    let enabled = cortex(&["plugin", "enable", "kit", &workspace, "--json"]);
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    let mut expected = vec!["other".to_string(), workspace.clone()];
    expected.sort();
    assert_eq!(enabled.json()["enabled"], serde_json::json!(expected));
    wait_phase(&cortex, "kit.echo", "running", "");
    let (_, names) = listed(&env, &core);
    for name in ["kit.echo.echo", "cortex.skill.kit.review"] {
        assert!(names.iter().any(|listed| listed == name), "{name} not in {names:?}");
    }

    // Disabled everywhere: its server is no longer wanted, and stops.
    assert_eq!(cortex(&["plugin", "disable", "kit", "*"]).code, 0);
    assert!(crate::support::wait_for(|| (!is_reported(&cortex, "kit.echo")).then_some(())).is_some());
    let (_, names) = listed(&env, &core);
    assert!(!names.iter().any(|name| name.contains("kit")), "{names:?}");

    // Enabled everywhere, one workspace cannot be carved out: it says how.
    assert_eq!(cortex(&["plugin", "enable", "kit", "*"]).code, 0);
    let refused = cortex(&["plugin", "disable", "kit", &workspace]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("enabled in every workspace (`*`): disable `*`, then enable it"),
        "{}",
        refused.stderr
    );
    let bad = cortex(&["plugin", "enable", "kit", "no/such"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
