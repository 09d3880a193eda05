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

const LONG_TURN: &str = "[[turn]]\n[[turn.step]]\nmessage = \"working\"\n[[turn.step]]\nsleep_ms = 4000\n[[turn.step]]\nmessage = \"done\"\n\n[[turn]]\n[[turn.step]]\nmessage = \"a second turn ran\"\n";

/// Bug 1: a `send` while a turn ran was held and ran after the next `stop`
/// (`stopped → running`). Input to a busy session is refused with a hint,
/// at once, and nothing runs after a stop unless someone sends after it.
#[test]
fn input_to_a_busy_session_is_refused_and_nothing_runs_after_a_stop() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script("long.toml", LONG_TURN);
    let started =
        env.cortex_at(&core, &env.repo, ["session", "start", "long", "--script", script.to_str().unwrap(), "--detach"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.stdout.trim().to_string();
    wait_state(&env, &core, &id, "running");

    let busy = env.cortex_at(&core, &env.repo, ["session", "send", &id, "next, please", "--json"]);
    assert_eq!(busy.code, 2, "refused, not held: {}\n{}", busy.stdout, busy.stderr);
    assert!(busy.stderr.contains("running a turn") && busy.stderr.contains("steer"), "{}", busy.stderr);

    let stopped = env.cortex_at(&core, &env.repo, ["session", "stop", &id]);
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    wait_state(&env, &core, &id, "stopped");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let prompts: Vec<_> = log.as_array().unwrap().iter().filter(|event| event["kind"] == "user_message").collect();
    assert_eq!(prompts.len(), 1, "the refused input never became a turn: {prompts:?}");
    assert_eq!(crate::support::cluster::state_of(&env, &core, &id)["state"], "stopped");
}

const TWO_APPROVALS: &str = "[[turn]]\n[[turn.step]]\napproval = \"write first.txt?\"\n[[turn.step]]\nwrite_file = { path = \"first.txt\", content = \"1\\n\" }\n[[turn.step]]\napproval = \"write second.txt?\"\n[[turn.step]]\nwrite_file = { path = \"second.txt\", content = \"2\\n\" }\n[[turn.step]]\nmessage = \"both asked\"\n";

use crate::support::cluster::decisions as approvals;

/// `cortex session start guarded --script two.toml` on a terminal; it asks
/// the first question.
fn start_on_a_terminal(env: &TestEnv) -> crate::support::pty::Terminal {
    let script = env.script("two.toml", TWO_APPROVALS);
    let terminal = env.cortex_on_terminal(
        &env.repo,
        &env.cortex_home,
        &["session", "start", "guarded", "--script", script.to_str().unwrap()],
    );
    terminal.expect("Approve: write first.txt? [y]es, [N]o, [a]lways for this session:");
    terminal
}

/// Bug 2: on a terminal attached through Core, `session start` printed
/// "approval requested" but never asked, and a typed `y` became a later
/// turn. It asks as in-process does, and the answer goes through Core.
#[test]
fn an_attached_terminal_asks_for_approvals_and_answers_through_core() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let mut terminal = start_on_a_terminal(&env);
    terminal.type_line("y");
    terminal.expect("Approve: write second.txt?");
    terminal.type_line("n");
    terminal.expect("both asked");

    let sessions = env.cortex_at(&core, &env.repo, ["session", "list", "--json"]).json();
    let id = sessions[0]["id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    assert_eq!(
        approvals(&env, &core, &id),
        [("approved".to_string(), "tester (terminal)".to_string()), ("denied".into(), "tester (terminal)".into())]
    );
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let prompts = log.as_array().unwrap().iter().filter(|event| event["kind"] == "user_message").count();
    assert_eq!(prompts, 1, "the answers never became turns");
    assert!(env.repo.join("first.txt").exists() && !env.repo.join("second.txt").exists());
}

/// The same question in-process, where "always" covers the rest of the
/// session.
#[test]
fn in_process_the_terminal_asks_the_same_and_always_covers_the_session() {
    let env = TestEnv::new();
    let mut terminal = start_on_a_terminal(&env);
    terminal.type_line("maybe");
    terminal.expect("Answer y, n or a.");
    terminal.type_line("a");
    terminal.expect("both asked");
    assert!(!terminal.output().contains("Approve: write second.txt?"), "{}", terminal.output());
    assert!(env.repo.join("first.txt").exists() && env.repo.join("second.txt").exists());
}

/// An answer names the request it answers: a `y` meant for a question that
/// was answered elsewhere (the panel) never answers the next one.
#[test]
fn an_answer_to_a_request_already_answered_does_not_answer_the_next() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script("two.toml", TWO_APPROVALS);
    let started = env.cortex_at(
        &core,
        &env.repo,
        ["session", "start", "guarded", "--script", script.to_str().unwrap(), "--detach"],
    );
    let id = started.stdout.trim().to_string();
    wait_state(&env, &core, &id, "awaiting_approval");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let first =
        log.as_array().unwrap().iter().find(|event| event["kind"] == "approval_requested").unwrap()["approval_id"]
            .as_str()
            .unwrap()
            .to_string();
    let http = crate::support::cluster::Http::new(&core);
    let answer = |approval_id: &str| {
        // A new command each time (the same id would be answered from the record).
        http.post(
            "/api/v1/commands",
            &serde_json::json!({"v": 1, "id": format!("answer-{}", ulid_ish()), "kind": "resolve_approval",
                "payload": {"session_id": id, "approval_id": approval_id, "approve": true}}),
        )
    };
    let (status, body) = answer(&first);
    assert_eq!(status, 200, "{body}");
    // The second question is asked.
    let asked = crate::support::wait_for(|| {
        let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
        let count = log.as_array()?.iter().filter(|event| event["kind"] == "approval_requested").count();
        (count == 2).then_some(())
    });
    assert!(asked.is_some(), "the second approval was never asked");
    wait_state(&env, &core, &id, "awaiting_approval");
    // The node may record the question a moment before it waits for it.
    let stale = crate::support::wait_for(|| {
        let (_, stale) = answer(&first);
        let early = stale["message"].as_str().is_some_and(|message| message.contains("no approval waiting"));
        (!early).then_some(stale)
    })
    .unwrap();
    assert_eq!(stale["status"], "error", "the first question's answer again: {stale}");
    assert!(stale["message"].as_str().unwrap().contains("answered already"), "{stale}");
    assert_eq!(approvals(&env, &core, &id).len(), 1, "the second question still waits");
}

fn ulid_ish() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

const SCRIPTED: &str = r#"
[[turn]]
[[turn.step]]
message = "I'll add a greeting."
[[turn.step]]
write_file = { path = "hello.sh", content = "echo hello\n" }
[[turn.step]]
command = "sh hello.sh"
[[turn.step]]
approval = "deploy it?"
[[turn.step]]
message = "deployed"
[[turn.step]]
message = "done"

[[turn]]
[[turn.step]]
message = "second turn"
[[turn.step]]
write_file = { path = "bye.txt", content = "bye\n" }
"#;

/// A surface a person or a CI job drives the same session from; the
/// processes it holds run until it is dropped.
enum Surface {
    InProcess,
    Up(#[allow(dead_code)] crate::support::cluster::CoreProcess),
    /// A Core without a node of its own, and a second, enrolled node.
    Enrolled(#[allow(dead_code)] (crate::support::cluster::CoreProcess, crate::support::Background)),
}

/// What a session's `--json` answers and events look like with what must
/// differ between runs (ids, times, paths, object ids) taken out.
fn comparable(value: serde_json::Value, root: &std::path::Path) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| {
                    !matches!(key.as_str(), "at" | "duration_ms" | "started_at" | "updated_at" | "created_at")
                })
                .map(|(key, value)| (key, comparable(value, root)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|item| comparable(item, root)).collect()),
        Value::String(text) => {
            let mut text = text.replace(&root.display().to_string(), "<repo>");
            for prefix in ["ses_", "wsp_", "nod_"] {
                while let Some(at) = text.find(prefix).filter(|at| text.len() >= at + 30) {
                    text.replace_range(at..at + 30, &format!("<{}>", &prefix[..3]));
                }
            }
            let hex = text.len() == 40 && text.bytes().all(|byte| byte.is_ascii_hexdigit());
            Value::String(if hex { "<oid>".into() } else { text })
        }
        other => other,
    }
}

/// The same scripted session, with no terminal (so the approval is denied
/// at once), run in-process, through `cortex up`, and on a second enrolled
/// node, answers the same `--json` and records the same events.
#[test]
fn the_same_session_gives_the_same_answers_on_every_surface() {
    let env = TestEnv::new();
    let script = env.script("scripted.toml", SCRIPTED);
    let script = script.to_str().unwrap();
    let mut results = Vec::new();
    for name in ["in-process", "up", "enrolled"] {
        let home = env.path(&format!("{name}-home"));
        let repo = env.path(&format!("{name}/project"));
        std::fs::create_dir_all(&repo).unwrap();
        env.git(&repo, ["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("README.md"), "# project\n").unwrap();
        env.git(&repo, ["add", "."]);
        env.git(&repo, ["commit", "-q", "-m", "initial"]);
        let surface = match name {
            "in-process" => Surface::InProcess,
            "up" => Surface::Up(env.start_core("up", &home, free_port())),
            _ => {
                let core = env.start_core("core", &home, free_port());
                let token = env.enroll(&core, "worker");
                let node = env.start_node(&core.url, &env.path("worker-data"), Some(&token), "worker.log");
                crate::support::cluster::wait_node_status(&env, &core, "worker", "online");
                Surface::Enrolled((core, node))
            }
        };
        let run = |args: &[&str]| {
            let mut command = env.cortex_command(&repo);
            command.env("CORTEX_HOME", &home).args(args);
            let run = crate::support::Run::from(command.output().unwrap());
            assert_eq!(run.code, 0, "{name}: cortex {args:?}: {}", run.stderr);
            run.json()
        };
        let mut start_args = vec!["session", "start", "greet", "--script", script, "--json"];
        if matches!(surface, Surface::Enrolled(..)) {
            start_args.extend(["--node", "worker"]);
        }
        let started = run(&start_args);
        let id = started["session_id"].as_str().unwrap().to_string();
        let sent = run(&["session", "send", &id, "and say bye", "--json"]);
        let shown = run(&["session", "show", &id, "--json"]);
        let log = run(&["session", "log", &id, "--json"]);
        let root = repo.as_path();
        results.push((
            name,
            serde_json::json!({
                "start": comparable(started, root),
                "send": comparable(sent, root),
                "show": comparable(shown, root),
                "log": comparable(log, root),
            }),
        ));
        drop(surface);
    }
    let (first, expected) = &results[0];
    assert_eq!(expected["start"]["approvals"][0]["decision"], "denied", "{expected:#}");
    for (name, result) in &results[1..] {
        for part in ["start", "send", "show", "log"] {
            assert_eq!(
                result[part], expected[part],
                "`{part}` differs between {first} and {name}:\n{first}: {:#}\n{name}: {:#}",
                expected[part], result[part]
            );
        }
    }
}
