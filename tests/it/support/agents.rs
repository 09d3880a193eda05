//! Helpers the real-agent tests share (codex, claude, ACP agents): start and
//! send through Core, read a session back, find an agent's processes.

use super::TestEnv;
use super::cluster::CoreProcess;

/// `session start PROMPT --provider PROVIDER --json`; the turn must complete.
pub fn start(env: &TestEnv, core: &CoreProcess, provider: &str, prompt: &str) -> String {
    let run = env.cortex_at(core, &env.repo, ["session", "start", prompt, "--provider", provider, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["outcome"], "completed", "{}", run.stdout);
    run.json()["session_id"].as_str().unwrap().to_string()
}

/// `session send ID ARGS… --json`, which must exit 0.
pub fn send(env: &TestEnv, core: &CoreProcess, id: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["session", "send", id];
    all.extend(args);
    all.push("--json");
    let run = env.cortex_at(core, &env.repo, all);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.json()
}

/// A send in the background that waits for a person's answer (as a CI job
/// would that leaves approvals to the panel).
pub fn send_later(
    env: &TestEnv,
    core: &CoreProcess,
    id: &str,
    prompt: &str,
) -> std::thread::JoinHandle<std::process::Output> {
    let mut command = env.cortex_command(&env.repo);
    command.env("CORTEX_HOME", &core.data).args(["session", "send", id, prompt, "--json", "--wait-for-approval"]);
    std::thread::spawn(move || command.output().unwrap())
}

/// The session's events, as `session log --json` prints them.
pub fn log(env: &TestEnv, core: &CoreProcess, id: &str) -> Vec<serde_json::Value> {
    env.cortex_at(core, env.root.path(), ["session", "log", id, "--json"]).json().as_array().unwrap().clone()
}

/// The provider's resume reference, from the session's meta in its ref.
pub fn resume_ref(env: &TestEnv, id: &str) -> String {
    let meta = env.git(&env.repo, ["show", &format!("refs/cortex/sessions/{id}:meta.toml")]);
    meta.lines().find_map(|line| line.strip_prefix("resume_ref = ")).unwrap_or_default().trim_matches('"').to_string()
}

/// Live processes whose environment holds `marker` (`KEY=value`) and whose
/// command line contains `program`, when one is given.
pub fn processes(marker: &str, program: Option<&str>) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let runs = program.is_none_or(|program| String::from_utf8_lossy(&cmdline).contains(program));
        if runs && environ.split(|byte| *byte == 0).any(|part| part == marker.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}
