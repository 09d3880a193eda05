//! The command line's conventions: `cortex init` for Rust, Node, Python and
//! Go repositories (and never over an existing file), `cortex config`
//! naming where each setting comes from, `-q`, and `--color`.

use crate::support::{TestEnv, wait_for};

/// What `npm init` writes as the test script: not a test suite.
const NPM_PLACEHOLDER: &str = r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#;

/// A fresh repository holding `files`, with `cortex init` run in it.
fn init_in(env: &TestEnv, name: &str, files: &[(&str, &str)]) -> (std::path::PathBuf, crate::support::Run) {
    let repo = env.path(name);
    std::fs::create_dir_all(&repo).unwrap();
    env.git(&repo, ["init", "-q"]);
    for (file, text) in files {
        std::fs::write(repo.join(file), text).unwrap();
    }
    let run = env.cortex_in(&repo, ["init", "--json"]);
    (repo, run)
}

#[test]
fn init_writes_the_check_each_kind_of_repository_points_to_and_never_overwrites() {
    let env = TestEnv::new();
    for (name, files, check, command) in [
        ("rust", vec![("Cargo.toml", "[package]\nname = \"x\"\n")], "cargo-test", "cargo test"),
        ("node", vec![("package.json", "{\"scripts\": {\"test\": \"jest\"}}")], "npm-test", "npm test"),
        ("python", vec![("pyproject.toml", "[project]\nname = \"x\"\n")], "pytest", "pytest"),
        ("go", vec![("go.mod", "module x\n")], "go-test", "go test ./..."),
    ] {
        let (repo, run) = init_in(&env, name, &files);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.json()["checks"], serde_json::json!([check]), "{name}");
        let shown = env.cortex_in(&repo, ["config", "--json"]);
        assert_eq!(shown.code, 0, "{name}: {}", shown.stderr);
        let shown = shown.json();
        assert_eq!(shown["checks"][0]["command"], command, "{name}: {shown}");
        assert_eq!(shown["idle_limit_secs"]["from"], "default", "{shown}");

        // A second run refuses, exit 2, and leaves the file as it was.
        let file = repo.join(".cortex/config.toml");
        std::fs::write(&file, format!("{}\n# mine\n", std::fs::read_to_string(&file).unwrap())).unwrap();
        let before = std::fs::read_to_string(&file).unwrap();
        let again = env.cortex_in(&repo, ["init"]);
        assert_eq!(again.code, 2, "{name}");
        assert!(again.stderr.contains("already exists"), "{}", again.stderr);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    }
}

#[test]
fn init_without_a_test_suite_says_so_and_outside_a_repository_says_what_to_do() {
    let env = TestEnv::new();
    // npm's placeholder test script is not a test suite; nothing found is said.
    let (repo, run) = init_in(&env, "empty", &[("package.json", NPM_PLACEHOLDER)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["checks"], serde_json::json!([]));
    let text = std::fs::read_to_string(repo.join(".cortex/config.toml")).unwrap();
    assert!(text.contains("No test command was found"), "{text}");

    let outside = env.cortex_in(env.root.path(), ["init"]);
    assert_eq!(outside.code, 2);
    assert!(outside.stderr.contains("git init"), "{}", outside.stderr);
}

#[test]
fn config_says_where_each_setting_comes_from() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "idle_limit_secs = 60\n[[checks]]\nname = \"t\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let shown = env.cortex_ok(["config", "--json"]).json();
    assert_eq!(shown["data_dir"]["from"], "CORTEX_HOME", "{shown}");
    assert_eq!(shown["idle_limit_secs"]["value"], "60");
    assert!(shown["idle_limit_secs"]["from"].as_str().unwrap().ends_with(".cortex/config.toml"));
    assert_eq!(shown["core"]["value"], "none");
    let through = env.cortex(["config", "--json", "--core", "http://127.0.0.1:9"]).json();
    assert_eq!(
        (through["core"]["value"].as_str(), through["core"]["from"].as_str()),
        (Some("http://127.0.0.1:9"), Some("--core"))
    );
    let text = env.cortex_ok(["config"]).stdout;
    assert!(text.contains("idle_limit_secs 60") && text.contains("t: true"), "{text}");

    // A broken file is named, with its line, and nothing else is said.
    std::fs::write(env.repo.join(".cortex/config.toml"), "idle_limit = 60\n").unwrap();
    let broken = env.cortex(["config"]);
    assert_eq!(broken.code, 2);
    assert!(broken.stderr.contains("config.toml") && broken.stderr.contains("idle_limit"), "{}", broken.stderr);
}

#[test]
fn quiet_keeps_stderr_for_errors_and_color_always_colours_a_pipe() {
    let env = TestEnv::new();
    let script = env.script("s.toml", "[[step]]\nwrite_file = { path = \"a.txt\", content = \"one\\n\" }\n");
    let started = env.cortex_ok(["session", "start", "hello", "--script", script.to_str().unwrap(), "--json"]);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    let stopped = env.cortex_ok(["session", "stop", &id]);
    assert!(stopped.stderr.contains("stopped"), "a note by default: {}", stopped.stderr);
    let quiet = env.cortex_ok(["session", "stop", &id, "-q"]);
    assert_eq!(quiet.stderr, "", "-q: no note");
    let error = env.cortex(["session", "show", "nope", "-q"]);
    assert_eq!(error.code, 2);
    assert!(error.stderr.starts_with("error:"), "errors still show: {}", error.stderr);
    assert_eq!(env.cortex(["session", "list", "-q", "-v"]).code, 2, "-q and -v contradict each other");

    let plain = env.cortex_ok(["session", "diff", &id]).stdout;
    assert!(!plain.contains('\u{1b}'), "a pipe gets no colour by default");
    let forced = env.cortex_ok(["session", "diff", &id, "--color", "always"]).stdout;
    let forced_env =
        env.cortex_command(&env.repo).args(["session", "diff", &id]).env("CLICOLOR_FORCE", "1").output().unwrap();
    let never = env
        .cortex_command(&env.repo)
        .args(["session", "diff", &id, "--color", "never"])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    let no_color = env
        .cortex_command(&env.repo)
        .args(["session", "diff", &id])
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(plain.contains("+one"), "{plain}");
    assert!(forced.contains('\u{1b}'), "{forced:?}");
    assert!(String::from_utf8_lossy(&forced_env.stdout).contains('\u{1b}'));
    assert!(!String::from_utf8_lossy(&never.stdout).contains('\u{1b}'));
    assert!(!String::from_utf8_lossy(&no_color.stdout).contains('\u{1b}'), "NO_COLOR wins over CLICOLOR_FORCE");
}

#[test]
fn wait_exits_by_how_the_turn_ended_and_fail_on_checks_counts_a_failed_check() {
    use crate::support::cluster::free_port;
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[[checks]]\nname = \"lint\"\ncommand = \"test ! -e broken\"\n",
    )
    .unwrap();
    // In-process: a failed check fails the command only when asked.
    std::fs::write(env.repo.join("broken"), "").unwrap();
    let plain = env.cortex(["session", "start", "one", "--json"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(plain.json()["checks"][0]["passed"], false);
    let strict = env.cortex(["session", "start", "two", "--json", "--fail-on-checks"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    let id = strict.json()["session_id"].as_str().unwrap().to_string();
    std::fs::remove_file(env.repo.join("broken")).unwrap();
    assert_eq!(env.cortex(["session", "send", &id, "again", "--fail-on-checks"]).code, 0);

    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let slow = env.script("slow.toml", "[[step]]\nsleep_ms = 1500\n[[step]]\nmessage = \"done\"\n");
    let detached = |title: &str| {
        let run = cortex(&["session", "start", title, "--script", slow.to_str().unwrap(), "--detach"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.trim().to_string()
    };
    let passing = detached("passing");
    let waited = cortex(&["session", "wait", &passing, "--fail-on-checks", "--json"]);
    assert_eq!(waited.code, 0, "{}", waited.stderr);
    let waited = waited.json();
    assert_eq!((waited["state"].as_str(), waited["outcome"].as_str()), (Some("idle"), Some("completed")), "{waited}");
    assert_eq!(waited["checks"][0]["name"], "lint");

    std::fs::write(env.repo.join("broken"), "").unwrap();
    let failing = detached("failing");
    let strict = cortex(&["session", "wait", &failing, "--fail-on-checks", "--json"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert_eq!(strict.json()["failed_checks"], serde_json::json!(["lint"]));
    let lenient = cortex(&["session", "wait", &failing]);
    assert_eq!(lenient.code, 0, "without the flag a failed check is reported, not an exit: {}", lenient.stderr);
    assert!(lenient.stdout.contains("1 of 1 check(s) failed: lint"), "{}", lenient.stdout);

    let endless = env.script("endless.toml", "[[step]]\nsleep_ms = 60000\n");
    let run = cortex(&["session", "start", "endless", "--script", endless.to_str().unwrap(), "--detach"]);
    let endless_id = run.stdout.trim().to_string();
    let timed = cortex(&["session", "wait", &endless_id, "--timeout", "1s", "--json"]);
    assert_eq!(timed.code, 1, "{}", timed.stderr);
    assert_eq!(timed.json()["timed_out"], true);
    assert_eq!(timed.json()["state"], "running", "the session goes on");
    assert_eq!(cortex(&["session", "wait", &endless_id, "--timeout", "soon"]).code, 2);
    cortex(&["session", "stop", &endless_id]);
}

#[test]
fn a_long_json_run_writes_progress_to_stderr_and_one_document_to_stdout() {
    let env = TestEnv::new();
    let script = env.script(
        "s.toml",
        "[[step]]\ncommand = \"echo warming up\"\n[[step]]\nsleep_ms = 2500\n[[step]]\nmessage = \"done\"\n",
    );
    let run = |extra: &[&str]| {
        let mut command = env.cortex_command(&env.repo);
        command.args(["session", "start", "slow", "--script", script.to_str().unwrap(), "--json"]).args(extra);
        crate::support::Run::from(command.env("CORTEX_PROGRESS_SECS", "0.5").output().unwrap())
    };
    let out = run(&[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(document["outcome"], "completed");
    let progress: Vec<&str> = out.stderr.lines().filter(|line| line.starts_with("cortex: progress after")).collect();
    assert!(progress.len() >= 2, "a 2.5 s turn with a 0.5 s interval: {}", out.stderr);
    assert!(out.stderr.contains("command_started"), "counted by kind: {}", out.stderr);
    let quiet = run(&["-q"]);
    assert_eq!(quiet.code, 0);
    assert!(!quiet.stderr.contains("progress"), "-q: {}", quiet.stderr);
}

/// Every command's usage line and summary, as `--help` gives them, walking
/// the `Commands:` lists down from `cortex --help`.
fn command_table(env: &TestEnv, path: &mut Vec<String>, rows: &mut Vec<String>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = env.cortex_ok(args).stdout;
    // The first paragraph (wrapped by clap), up to its first sentence's end.
    let paragraph = help.split("\n\n").next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    let about = paragraph.split(". ").next().unwrap_or_default().trim_end_matches('.').to_string();
    let usage = help.lines().find_map(|line| line.strip_prefix("Usage: ")).unwrap_or_default();
    if !path.is_empty() {
        rows.push(format!("| `{}` | {about} |", usage.replace('|', "\\|")));
        // Every command teaches by example (a group lists its commands instead).
        assert!(
            help.contains("Example") || help.contains("Commands:"),
            "`cortex {} --help` has no example",
            path.join(" ")
        );
    }
    let Some(commands) = help.split("Commands:\n").nth(1) else { return };
    let names: Vec<String> = commands
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect();
    for name in names {
        path.push(name);
        command_table(env, path, rows);
        path.pop();
    }
}

#[test]
fn docs_cli_md_lists_every_command_as_its_help_does() {
    let env = TestEnv::new();
    let mut rows = Vec::new();
    command_table(&env, &mut Vec::new(), &mut rows);
    assert!(rows.len() > 40, "{rows:?}");
    let generated = format!(
        "<!-- commands: generated from --help; CORTEX_UPDATE_DOCS=1 cargo test --test it cli::docs rewrites it -->\n| usage | what |\n| --- | --- |\n{}\n<!-- /commands -->",
        rows.join("\n")
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find("<!-- commands").expect("docs/cli.md has a <!-- commands --> block");
    let end = doc.find("<!-- /commands -->").expect("and its end") + "<!-- /commands -->".len();
    if doc[start..end] == generated {
        return;
    }
    if std::env::var("CORTEX_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, format!("{}{generated}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    panic!(
        "docs/cli.md's command list drifted from --help; rewrite it with CORTEX_UPDATE_DOCS=1 cargo test --test it cli::docs\nexpected:\n{generated}"
    );
}

#[test]
fn session_list_shows_this_repository_by_default_with_a_header_and_filters() {
    let env = TestEnv::new();
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    env.git(&other, ["init", "-q"]);
    env.git(&other, ["commit", "-q", "--allow-empty", "-m", "start"]);
    env.cortex_ok(["session", "start", "here one"]);
    env.cortex_ok(["session", "start", "here two"]);
    let elsewhere = env.cortex_in(&other, ["session", "start", "over there"]);
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.stderr);

    let titles = |run: crate::support::Run| -> Vec<String> {
        run.json().as_array().unwrap().iter().map(|session| session["title"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(
        titles(env.cortex_ok(["session", "list", "--json"])),
        ["here two", "here one"],
        "this repository's, newest first"
    );
    assert_eq!(titles(env.cortex_ok(["session", "list", "--json", "--all"])).len(), 3);
    assert_eq!(
        titles(env.cortex_ok(["session", "list", "--json", "--workspace", "other"])),
        ["over there"],
        "a workspace by name"
    );
    assert_eq!(titles(env.cortex_ok(["session", "list", "--json", "--limit", "1"])), ["here two"]);
    assert_eq!(
        titles(env.cortex_ok(["session", "list", "--json", "--all", "--node", "vm"])).len(),
        3,
        "a node by name"
    );
    assert!(titles(env.cortex_ok(["session", "list", "--json", "--all", "--node", "elsewhere"])).is_empty());
    assert!(titles(env.cortex_ok(["session", "list", "--json", "--all", "--provider", "codex"])).is_empty());
    assert_eq!(titles(env.cortex_ok(["session", "list", "--json", "--since", "1h"])).len(), 2);
    let unknown = env.cortex(["session", "list", "--workspace", "nowhere"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("cortex workspace list"), "{}", unknown.stderr);

    let table = env.cortex_ok(["session", "list"]).stdout;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID") && header.contains("STATE") && header.contains("UPDATED"), "{table}");
    assert!(lines.next().unwrap().contains("s ago"), "relative ages: {table}");
    assert!(!table.contains('\u{1b}'), "no colour into a pipe");
    let coloured = env.cortex_ok(["session", "list", "--color", "always"]).stdout;
    assert!(coloured.contains("\u{1b}[32midle"), "idle in green: {coloured:?}");

    let fresh = env.path("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    env.git(&fresh, ["init", "-q"]);
    let empty = env.cortex_in(&fresh, ["session", "list"]);
    assert!(empty.stdout.contains("cortex refs fetch") && empty.stdout.contains("--all"), "{}", empty.stdout);
}

#[test]
fn log_and_diff_page_on_a_terminal_and_diff_summarises_with_stat_and_name_only() {
    let env = TestEnv::new();
    let script = env.script(
        "s.toml",
        "[[step]]\nwrite_file = { path = \"src/a.txt\", content = \"one\\ntwo\\n\" }\n[[step]]\nmessage = \"wrote it\"\n",
    );
    let id = env.cortex_ok(["session", "start", "write", "--script", script.to_str().unwrap(), "--json"]).json()
        ["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let names = env.cortex_ok(["session", "diff", &id, "--name-only"]).stdout;
    assert_eq!(names.lines().collect::<Vec<_>>(), ["src/a.txt"]);
    let stat = env.cortex_ok(["session", "diff", &id, "--stat"]).stdout;
    assert!(stat.contains("src/a.txt |     2 ++"), "{stat}");
    assert!(stat.contains("1 file(s) changed, 2 insertion(s)(+), 0 deletion(s)(-)"), "{stat}");

    // Piped: no pager, whatever CORTEX_PAGER says.
    let piped = env
        .cortex_command(&env.repo)
        .args(["session", "log", &id])
        .env("CORTEX_PAGER", "sed s/^/PAGED:/")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stdout).contains("PAGED:"));

    // On a terminal: through the pager, unless --no-pager.
    for (command, paged) in [
        (format!("CORTEX_PAGER='sed s/^/PAGED:/' cortex session log {id}; echo END"), true),
        (format!("CORTEX_PAGER='sed s/^/PAGED:/' cortex session diff {id}; echo END"), true),
        (format!("CORTEX_PAGER='sed s/^/PAGED:/' cortex session log {id} --no-pager; echo END"), false),
    ] {
        let terminal = env.on_terminal("sh", &env.repo, &env.cortex_home, &["-c", &command]);
        terminal.expect("END");
        let output = terminal.output();
        assert_eq!(output.contains("PAGED:"), paged, "{command}: {output}");
        assert!(output.contains("wrote it") || output.contains("+one"), "{command}: {output}");
    }

    // With neither CORTEX_PAGER nor PAGER set, a log longer than the screen
    // is held by `less -FRX`: it waits for keys, and `q` ends it.
    let steps: String = (1..=80).map(|n| format!("[[step]]\nmessage = \"line {n} of the long log\"\n")).collect();
    let long = env.script("long.toml", &steps);
    let id =
        env.cortex_ok(["session", "start", "long", "--script", long.to_str().unwrap(), "--json"]).json()["session_id"]
            .as_str()
            .unwrap()
            .to_string();
    let command = format!("TERM=xterm cortex session log {id}; echo DONE");
    let mut terminal = env.on_terminal("sh", &env.repo, &env.cortex_home, &["-c", &command]);
    terminal.expect("line 1 of the long log");
    terminal.type_keys("G");
    terminal.expect("(END)");
    terminal.type_keys("q");
    terminal.expect("DONE");
    assert!(terminal.output().contains("line 80 of the long log"), "{}", terminal.output());
}

#[test]
fn ctrl_c_interrupts_an_in_process_turn_cleanly_and_a_second_one_forces() {
    let env = TestEnv::new();
    let script = env.script(
        "s.toml",
        "[[turn]]\n[[turn.step]]\nmessage = \"started\"\n[[turn.step]]\nsleep_ms = 30000\n[[turn.step]]\nmessage = \"never reached\"\n\
         [[turn]]\n[[turn.step]]\nmessage = \"second turn\"\n",
    );
    let mut terminal = env.cortex_on_terminal(
        &env.repo,
        &env.cortex_home,
        &["session", "start", "long", "--script", script.to_str().unwrap()],
    );
    terminal.expect("started");
    terminal.type_keys("\u{3}");
    terminal.expect("interrupting the turn");
    assert_eq!(terminal.wait_exit(), 1, "an interrupted turn is not a completed one:\n{}", terminal.output());
    let id = env.cortex_ok(["session", "list", "--json"]).json()[0]["id"].as_str().unwrap().to_string();
    let shown = env.cortex_ok(["session", "show", &id, "--json"]).json();
    assert_eq!(shown["turns"][0]["outcome"], "interrupted", "{shown}");
    assert_eq!(shown["session"]["state"], "idle", "{shown}");
    let log = env.cortex_ok(["session", "log", &id, "--json"]).json();
    let events = log.as_array().unwrap();
    assert!(events.iter().any(|event| event["kind"] == "lifecycle" && event["to"] == "interrupted"), "{log}");
    assert!(!log.to_string().contains("never reached"), "{log}");
    let next = env.cortex(["session", "send", &id, "go on", "--json"]);
    assert_eq!(next.code, 0, "send continues it: {}", next.stderr);
    assert_eq!(next.json()["outcome"], "completed");

    // A second Ctrl-C forces: exit 130, and the session is still there to continue.
    let hung = env.script("h.toml", "[[step]]\nmessage = \"started\"\n[[step]]\napproval = \"may I?\"\n");
    let mut terminal = env.cortex_on_terminal(
        &env.repo,
        &env.cortex_home,
        &["session", "start", "ask", "--script", hung.to_str().unwrap()],
    );
    terminal.expect("may I?");
    terminal.type_keys("\u{3}");
    terminal.expect("interrupting the turn");
    terminal.type_keys("\u{3}");
    terminal.expect("forced");
    assert_eq!(terminal.wait_exit(), 130, "{}", terminal.output());
    let forced = env.cortex_ok(["session", "list", "--json"]).json()[0]["id"].as_str().unwrap().to_string();
    let again = env.cortex(["session", "send", &forced, "go on", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

#[test]
fn git_log_of_a_session_ref_reads_as_what_happened() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[[checks]]\nname = \"ok\"\ncommand = \"true\"\n").unwrap();
    let script = env.script(
        "s.toml",
        "[[step]]\nwrite_file = { path = \"a.txt\", content = \"a\\n\" }\n[[step]]\nwrite_file = { path = \"b.txt\", content = \"b\\n\" }\n",
    );
    let run = env.cortex_ok(["session", "start", "fix the flaky test", "--script", script.to_str().unwrap(), "--json"]);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    let subjects = env.git(&env.repo, ["log", "--format=%s", &format!("refs/cortex/sessions/{id}")]);
    assert!(subjects.lines().any(|line| line == "turn 1: fix the flaky test (2 files, checks passed)"), "{subjects}");
    assert!(subjects.lines().any(|line| line.starts_with("session created: fix the flaky test")), "{subjects}");
    assert!(subjects.lines().all(|line| !line.contains("seq")), "subjects say what happened, not seqs: {subjects}");
    let body = env.git(&env.repo, ["log", "-1", "--format=%b", &format!("refs/cortex/sessions/{id}")]);
    assert!(body.contains(&format!("Cortex-Session: {id}")), "the trailers stay: {body}");
}

#[test]
fn changing_commands_answer_json_take_names_and_errors_say_what_to_do() {
    use crate::support::cluster::{free_port, wait_state};
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let cortex = |args: &[&str]| env.cortex_at(&core, &env.repo, args);
    let started = cortex(&["session", "start", "hello", "--json"]);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    let stopped = cortex(&["session", "stop", &id, "--json"]);
    assert_eq!((stopped.code, stopped.json()["state"].as_str()), (0, Some("stopped")), "{}", stopped.stderr);
    let again = cortex(&["session", "stop", &id, "--json"]);
    assert_eq!(again.json()["state"], "stopped", "stopping a stopped session answers the same");

    // A workspace by its name.
    let name = env.repo.file_name().unwrap().to_str().unwrap().to_string();
    let unbound = cortex(&["workspace", "unbind", &name, "--json"]);
    assert_eq!(unbound.code, 0, "{}", unbound.stderr);
    assert_eq!(unbound.json()["name"], name.as_str());
    let gone = cortex(&["workspace", "unbind", &name]);
    assert_eq!(gone.code, 2);
    assert!(gone.stderr.contains("cortex workspace list"), "{}", gone.stderr);
    let rebuilt = cortex(&["index", "rebuild", "--json"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert!(rebuilt.json().is_object());

    // Core not answering: one line, in words, no transport layers.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let unreachable = env.cortex(["session", "approve", "x", "--core", &dead]);
    assert_eq!(unreachable.code, 3);
    assert_eq!(unreachable.stderr.trim().lines().count(), 1, "{}", unreachable.stderr);
    assert!(unreachable.stderr.contains("nothing listens there"), "{}", unreachable.stderr);
    assert!(!unreachable.stderr.contains("error sending request"), "{}", unreachable.stderr);

    // An address in use names --bind.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let other_home = env.path("other-home");
    let clash = env
        .cortex_command(&env.repo)
        .env("CORTEX_HOME", &other_home)
        .args(["up", "--bind", &address])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&clash.stderr);
    assert_eq!(clash.status.code(), Some(2), "{said}");
    assert!(said.contains("--bind 127.0.0.1:"), "{said}");

    // A session id this repository does not know points at `refs fetch`.
    let unknown = env.cortex(["session", "show", "ses_01m9zzzzzzzzzzzzzzzzzzzzzz"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("cortex refs fetch"), "{}", unknown.stderr);
}

/// Ctrl-C during an in-process turn of a real agent on its scripted model:
/// the turn ends interrupted, no process of the agent is left, and `send`
/// continues the session on a fresh one.
#[test]
fn ctrl_c_during_a_real_agents_in_process_turn_leaves_no_agent_process() {
    use crate::support::agents::processes;
    let env = TestEnv::new();
    let (key, value) = ("CORTEX_CTRL_C_TEST", std::process::id().to_string());
    let marker = format!("{key}={value}");
    let mut agents: Vec<(&str, String, Box<dyn std::any::Any>)> = Vec::new();
    if let Some(codex) = crate::support::codex_binary() {
        let model = crate::support::model::Model::start();
        agents.push(("codex", model.config(&codex, &env.path("codex-home"), "never"), Box::new(model)));
    }
    if let Some(claude) = crate::support::claude_binary() {
        let model = crate::support::anthropic::Anthropic::start();
        agents.push(("claude", model.config(&claude), Box::new(model)));
    }
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".gitignore"), "target/\n.cortex/\n").unwrap();
    for (provider, config, _model) in agents {
        let config = config.replace("env = { ", &format!("env = {{ {key} = \"{value}\", "));
        std::fs::write(env.repo.join(".cortex/config.toml"), config).unwrap();
        let args = ["session", "start", "slowstream", "--provider", provider, "--no-core"];
        let mut terminal = env.cortex_on_terminal(&env.repo, &env.cortex_home, &args);
        // The stream's deltas reach the ref while the turn runs (a terminal
        // shows whole messages only).
        let streaming = wait_for(|| {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let listed = env.cortex(["session", "list", "--json", "--provider", provider]).json();
            let id = listed[0]["id"].as_str()?.to_string();
            env.cortex(["session", "log", &id, "--json"]).stdout.contains("tick1 ").then_some(())
        });
        assert!(streaming.is_some(), "{provider}: the slow stream never arrived:\n{}", terminal.output());
        assert!(!processes(&marker, None).is_empty(), "{provider}: the agent runs during the turn");
        terminal.type_keys("\u{3}");
        terminal.expect("interrupting the turn");
        assert_eq!(terminal.wait_exit(), 1, "{provider}:\n{}", terminal.output());
        let left = wait_for(|| processes(&marker, None).is_empty().then_some(()));
        assert!(left.is_some(), "{provider}: agent processes left: {:?}", processes(&marker, None));
        let listed = env.cortex_ok(["session", "list", "--json", "--provider", provider]).json();
        let id = listed[0]["id"].as_str().unwrap().to_string();
        let shown = env.cortex_ok(["session", "show", &id, "--json"]).json();
        assert_eq!(shown["turns"][0]["outcome"], "interrupted", "{provider}: {shown}");
        let next = env.cortex(["session", "send", &id, "say after the interrupt", "--json", "--no-core"]);
        assert_eq!(next.code, 0, "{provider}: send continues it: {}", next.stderr);
        assert_eq!(next.json()["outcome"], "completed", "{provider}");
        let left = wait_for(|| processes(&marker, None).is_empty().then_some(()));
        assert!(left.is_some(), "{provider}: the next turn's agent is stopped with it");
    }
}

/// `--no-core` works in-process even when CORTEX_CORE names a Core (here one
/// that does not answer: a warning, or exit 3 for a command that needs it),
/// and a command that needs Core says so.
#[test]
fn no_core_works_in_process_whatever_cortex_core_says() {
    let env = TestEnv::new();
    let run = |args: &[&str]| {
        crate::support::Run::from(
            env.cortex_command(&env.repo).env("CORTEX_CORE", "http://127.0.0.1:9").args(args).output().unwrap(),
        )
    };
    let fallback = run(&["session", "start", "hello", "--json"]);
    assert!(fallback.stderr.contains("running in-process instead"), "{}", fallback.stderr);
    let local = run(&["session", "start", "hello", "--json", "--no-core"]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    assert!(!local.stderr.contains("warning"), "{}", local.stderr);
    assert_eq!(local.json()["outcome"], "completed");
    let listed = run(&["session", "list", "--no-core", "--json"]);
    assert_eq!(listed.json()[0]["id"], local.json()["session_id"]);
    assert_eq!(run(&["session", "steer", "x", "more"]).code, 3, "the named Core does not answer");
    let steer = run(&["session", "steer", "x", "more", "--no-core"]);
    assert_eq!(steer.code, 2, "{}", steer.stderr);
    assert!(steer.stderr.contains("needs a running Core, and --no-core was given"), "{}", steer.stderr);
}
