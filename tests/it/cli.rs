//! The command line's conventions: `cortex init` for Rust, Node, Python and
//! Go repositories (and never over an existing file), `cortex config`
//! naming where each setting comes from, `-q`, and `--color`.

use crate::support::TestEnv;

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

    // npm's placeholder test script is not a test suite; nothing found is said.
    let (repo, run) = init_in(
        &env,
        "empty",
        &[("package.json", r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#)],
    );
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
