//! Checks from `.cortex/config.toml` as evidence: after each turn, and on
//! request, in-process and through Core.

use crate::support::TestEnv;
use crate::support::cluster::{free_port, wait_state};

const CONFIG: &str = r#"
[[checks]]
name = "lint"
command = "echo 'boom: line 3 is too long'; exit 4"

[[checks]]
name = "unit"
command = "test -f README.md && echo ok"
timeout_secs = 30

[[checks]]
name = "slow-suite"
command = "echo manual only"
when = "manual"
"#;

fn configure(env: &TestEnv) {
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), CONFIG).unwrap();
}

#[test]
fn turn_checks_are_recorded_with_status_and_output() {
    let env = TestEnv::new();
    configure(&env);
    let id = env.start("change things", &env.script("s.toml", "[[step]]\nmessage = \"done\"\n"));
    let show = env.cortex_ok(["session", "show", &id, "--json"]).json();
    let checks = show["turns"][0]["checks"].as_array().unwrap().clone();
    let names: Vec<&str> = checks.iter().map(|check| check["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lint", "unit"], "manual checks do not run after a turn");
    assert_eq!((checks[0]["passed"].as_bool(), checks[0]["exit_code"].as_i64()), (Some(false), Some(4)));
    assert_eq!((checks[1]["passed"].as_bool(), checks[1]["exit_code"].as_i64()), (Some(true), Some(0)));

    let evidence = checks[0]["evidence"].as_str().unwrap();
    assert!(evidence.starts_with("turns/1/evidence/"), "{evidence}");
    let output = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:{evidence}")]);
    assert_eq!(output, "boom: line 3 is too long\n");

    let text = env.cortex_ok(["session", "show", &id]).stdout;
    assert!(text.contains("check lint FAILED (exit 4,") && text.contains("check unit passed (exit 0,"), "{text}");
    let log = env.cortex_ok(["session", "log", &id, "--json"]).json();
    let kinds: Vec<&str> = log.as_array().unwrap().iter().map(|event| event["kind"].as_str().unwrap()).collect();
    let position = |kind: &str| kinds.iter().position(|seen| *seen == kind).unwrap();
    assert!(position("check_result") < position("turn_finished"), "checks belong to the turn: {kinds:?}");
}

#[test]
fn checks_run_on_request_and_say_when_something_is_wrong() {
    let env = TestEnv::new();
    configure(&env);
    let id = env.start("work", &env.script("s.toml", ""));
    let manual = env.cortex(["session", "check", &id, "--name", "slow-suite", "--json"]);
    assert_eq!(manual.code, 0, "{}", manual.stderr);
    assert_eq!(manual.json()[0]["name"], "slow-suite");
    let all = env.cortex(["session", "check", &id]);
    assert_eq!(all.code, 1, "a failing check answers no");
    assert!(
        all.stdout.contains("check lint FAILED") && all.stdout.contains("check slow-suite passed"),
        "{}",
        all.stdout
    );
    let unknown = env.cortex(["session", "check", &id, "--name", "nope"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("no check named `nope`"), "{}", unknown.stderr);
    let show = env.cortex_ok(["session", "show", &id, "--json"]).json();
    assert_eq!(show["turns"][0]["checks"].as_array().unwrap().len(), 2 + 1 + 3);

    std::fs::write(env.repo.join(".cortex/config.toml"), "[[checks]]\nname = \"x\"\ncomand = \"true\"\n").unwrap();
    let typo = env.cortex(["session", "check", &id]);
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("unknown field `comand`"), "{}", typo.stderr);
}

#[test]
fn checks_run_through_core_too() {
    let env = TestEnv::new();
    configure(&env);
    let core = env.start_core("up", &env.cortex_home, free_port());
    let run = env.cortex_at(&core, &env.repo, ["session", "start", "remote", "--json"]);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    let checked = env.cortex_at(&core, &env.repo, ["session", "check", &id, "--name", "unit", "--json"]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    assert_eq!(checked.json()[0]["passed"], true);
    let show = crate::support::wait_for(|| {
        let show = env.cortex_at(&core, &env.repo, ["session", "show", &id, "--json"]).json();
        (show["turns"][0]["checks"].as_array()?.len() == 3).then_some(show)
    });
    assert!(show.is_some(), "the manual check never reached Core");
}

/// Issue 11: `[[check]]` for `[[checks]]` silently turned checks off
/// (`"checks": []`, exit 0). Now the config is refused before anything is
/// written, naming the file, the line and the key.
#[test]
fn a_config_typo_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "idle_limit_secs = 60\n\n[[check]]\nname = \"tests\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let run = env.cortex(["session", "start", "hello", "--json"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(".cortex/config.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("line 3") && run.stderr.contains("check"), "{}", run.stderr);
    assert!(env.session_refs(&env.repo).is_empty(), "nothing was written");
}
