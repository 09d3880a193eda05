//! `cortex term` through Core to a shell on a second node: keys in, output
//! out, Ctrl-] detaches, the command is in the terminal's history.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use crate::support::cluster::{Http, free_port, wait_node_status};
use crate::support::{TestEnv, wait_for};

#[test]
fn cortex_term_reaches_a_workspace_on_a_second_node_through_core() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let (repo_a, repo_b) = (env.repo("repo-a"), env.repo("repo-b"));
    let (token_a, token_b) = (env.enroll(&core, "alpha"), env.enroll(&core, "beta"));
    let _alpha = env.start_node(&core.url, &env.path("alpha-home"), Some(&token_a), "alpha.log");
    let _beta = env.start_node(&core.url, &env.path("beta-home"), Some(&token_b), "beta.log");
    wait_node_status(&env, &core, "alpha", "online");
    wait_node_status(&env, &core, "beta", "online");
    assert_eq!(env.cortex_at(&core, &repo_a, ["workspace", "bind", "--node", "alpha"]).code, 0);
    let bound = env.cortex_at(&core, &repo_b, ["workspace", "bind", "--node", "beta", "--json"]);
    let workspace_b = bound.json()["id"].as_str().unwrap().to_string();

    // From the first repository's directory, name the second node's workspace.
    let mut term = env
        .cortex_command(&repo_a)
        .env("CORTEX_HOME", &core.data)
        .args(["term", "repo-b"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = term.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                seen.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        })
    };
    let mut stdin = term.stdin.take().unwrap();
    stdin.write_all(b"echo hi-from-$((6*7)) && pwd\n").unwrap();
    let repo_b_real = repo_b.canonicalize().unwrap().display().to_string();
    wait_for(|| {
        let text = seen.lock().unwrap().clone();
        (text.contains("hi-from-42") && text.contains(&repo_b_real)).then_some(())
    })
    .unwrap_or_else(|| panic!("no output from beta's shell: {}", seen.lock().unwrap()));
    stdin.write_all(&[0x1d]).unwrap();
    let status = term.wait().unwrap();
    reader.join().unwrap();
    let mut stderr = String::new();
    term.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("detached from trm_"), "{stderr}");
    let terminal = stderr.split_whitespace().find(|word| word.starts_with("trm_")).unwrap().trim_end_matches(';');

    let http = Http::new(&core);
    let (code, summary) = http.get(&format!("/api/v1/terminals/{terminal}"), Some(http.token()));
    assert_eq!(code, 200, "{summary}");
    assert_eq!(summary["workspace_id"], workspace_b);
    let nodes = env.cortex_at(&core, env.root.path(), ["node", "list", "--json"]).json();
    let beta = nodes.as_array().unwrap().iter().find(|node| node["name"] == "beta").unwrap()["id"].clone();
    assert_eq!(summary["node_id"], beta, "the shell ran on the workspace's node");
    assert_eq!(summary["history"][0]["command"], "echo hi-from-$((6*7)) && pwd");

    // Attaching again shows what happened while away.
    let again = env
        .cortex_command(&repo_a)
        .env("CORTEX_HOME", &core.data)
        .args(["term", "--attach", terminal])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut again_stdin = again.stdin.as_ref().unwrap();
    again_stdin.write_all(&[0x1d]).unwrap();
    let output = again.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("hi-from-42"), "the scrollback comes first");
    let missing = env.cortex_at(&core, &repo_a, ["term", "nowhere"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("no workspace `nowhere`"), "{}", missing.stderr);
}

#[test]
fn commands_typed_in_a_sessions_terminal_are_the_persons_events_and_redacted() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let script = env.script("one.toml", "[[step]]\nmessage = \"ready\"\n");
    let run =
        env.cortex_at(&core, &env.repo, ["session", "start", "work", "--script", script.to_str().unwrap(), "--json"]);
    let session = run.json()["session_id"].as_str().unwrap().to_string();
    crate::support::cluster::wait_state(&env, &core, &session, "idle");

    let mut term = env
        .cortex_command(&env.repo)
        .env("CORTEX_HOME", &core.data)
        .args(["term", "--session", &session])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = term.stdin.take().unwrap();
    stdin.write_all(b"echo recorded-$((1+2)) sk-abcdefghijklmnopqrstuvwxyz0123\n").unwrap();
    let log = || env.cortex_at(&core, &env.repo, ["session", "log", &session, "--json"]).json();
    let typed = wait_for(|| {
        log()
            .as_array()
            .unwrap()
            .iter()
            .find(|event| {
                event["action"] == "terminal" && event["detail"].as_str().unwrap_or_default().contains("recorded-")
            })
            .cloned()
    })
    .expect("the typed command is recorded in the session");
    stdin.write_all(&[0x1d]).unwrap();
    assert!(term.wait().unwrap().success());
    let detail = typed["detail"].as_str().unwrap();
    assert!(detail.starts_with("echo recorded-$((1+2)) [REDACTED]"), "{detail}");
    assert_eq!(typed["kind"], "intervention");
    assert!(typed["by"].as_str().is_some_and(|by| !by.is_empty()));
    let opened = log().as_array().unwrap().iter().any(|event| {
        event["action"] == "terminal"
            && event["detail"].as_str().unwrap_or_default().starts_with("opened terminal trm_")
    });
    assert!(opened, "opening the terminal is on record too");
    assert!(!env.all_cortex_objects(&env.repo).contains("abcdefghijklmnopqrstuvwxyz0123"), "no secret in any object");
}
