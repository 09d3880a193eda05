//! `cortex session …` end to end: what a session leaves in the repository,
//! what it must not touch, and what the commands print.

use crate::support::{TestEnv, assert_gapless, wait_for};

const SCRIPT: &str = r#"
[[turn]]
[[turn.step]]
message = "Looking at the tests"
[[turn.step]]
reasoning = "the flaky one races on a port"
[[turn.step]]
write_file = { path = "src/a.rs", content = "fn main() {}\n" }
[[turn.step]]
command = "echo checked; echo oops >&2; exit 3"
[[turn.step]]
message = "Done"

[[turn]]
[[turn.step]]
write_file = { path = "src/a.rs", content = "fn main() { println!(\"hi\"); }\n" }
[[turn.step]]
delete_file = "README.md"
"#;

#[test]
fn a_scripted_session_leaves_one_ref_with_the_whole_story() {
    let env = TestEnv::new();
    let script = env.script("s.toml", SCRIPT);
    let id = env.start("fix the flaky test", &script);

    assert_eq!(env.session_refs(&env.repo), vec![format!("refs/cortex/sessions/{id}")]);
    let reference = format!("refs/cortex/sessions/{id}");
    let files = env.git(&env.repo, ["ls-tree", "-r", "--name-only", &reference]);
    for expected in ["meta.toml", "turns/1/prompt.md", "turns/1/diff.patch", "events/0000/0000000001.jsonl"] {
        assert!(files.lines().any(|line| line == expected), "{expected} missing from:\n{files}");
    }
    let worktree = env.git(&env.repo, ["cat-file", "-t", &format!("{reference}:turns/1/worktree")]);
    assert_eq!(worktree.trim(), "tree");
    let snapshot = env.git(&env.repo, ["show", &format!("{reference}:turns/1/worktree/src/a.rs")]);
    assert_eq!(snapshot, "fn main() {}\n");

    let patch = env.git(&env.repo, ["show", &format!("{reference}:turns/1/diff.patch")]);
    assert!(patch.contains("+++ b/src/a.rs") && patch.contains("+fn main() {}"), "{patch}");
    let prompt = env.git(&env.repo, ["show", &format!("{reference}:turns/1/prompt.md")]);
    assert_eq!(prompt, "fix the flaky test");
    let meta = env.git(&env.repo, ["show", &format!("{reference}:meta.toml")]);
    assert!(meta.contains(&format!("id = \"{id}\"")) && meta.contains("state = \"idle\""), "{meta}");

    let message = env.git(&env.repo, ["log", "-1", "--format=%an <%ae>%n%B", &reference]);
    assert!(message.starts_with("Cortex <cortex@localhost>"), "{message}");
    assert!(message.contains(&format!("Cortex-Session: {id}")) && message.contains("Cortex-Turn: 1"), "{message}");

    let fsck = env.git_run(&env.repo, ["fsck", "--strict", "--no-dangling"]);
    assert_eq!(fsck.code, 0, "{}{}", fsck.stdout, fsck.stderr);
    assert_eq!(fsck.stdout.trim(), "");
}

#[test]
fn the_users_index_head_branch_and_untracked_files_are_untouched() {
    let env = TestEnv::new();
    std::fs::write(env.repo.join("staged.txt"), "staged\n").unwrap();
    env.git(&env.repo, ["add", "staged.txt"]);
    std::fs::write(env.repo.join("README.md"), "# demo\nunstaged edit\n").unwrap();
    std::fs::write(env.repo.join("notes.txt"), "untracked\n").unwrap();
    let git_dir = env.repo.join(".git");
    let read = |path: &str| std::fs::read(git_dir.join(path)).unwrap();
    let before = (read("index"), read("HEAD"), read("refs/heads/main"));
    let status_before = env.git(&env.repo, ["status", "--porcelain"]);

    let script = env.script("s.toml", "[[step]]\nwrite_file = { path = \"agent.txt\", content = \"mine\\n\" }\n[[step]]\ncommand = \"git status --porcelain\"\n");
    env.start("work", &script);

    assert_eq!((read("index"), read("HEAD"), read("refs/heads/main")), before);
    let status_after = env.git(&env.repo, ["status", "--porcelain"]);
    let mut expected: Vec<&str> = status_before.lines().chain(["?? agent.txt"]).collect();
    expected.sort();
    let mut got: Vec<&str> = status_after.lines().collect();
    got.sort();
    assert_eq!(got, expected, "only the agent's own file may be new");
    assert_eq!(std::fs::read_to_string(env.repo.join("notes.txt")).unwrap(), "untracked\n");
    assert_eq!(std::fs::read_to_string(env.repo.join("README.md")).unwrap(), "# demo\nunstaged edit\n");
}

#[test]
fn turns_continue_the_seq_and_add_their_own_files() {
    let env = TestEnv::new();
    let script = env.script("s.toml", SCRIPT);
    let id = env.start("first", &script);
    let first = env.cortex_ok(["session", "log", &id, "--json"]).json();
    let first_len = first.as_array().unwrap().len();

    // A unique prefix is enough, as with git.
    let sent = env.cortex_ok(["session", "send", &id[..10], "second", "--json"]).json();
    assert_eq!(sent["turn"], 2);
    assert_eq!(sent["outcome"], "completed");

    let events = env.cortex_ok(["session", "log", &id, "--json"]).json();
    assert!(assert_gapless(&events) > first_len);
    assert_eq!(&events.as_array().unwrap()[..first_len], first.as_array().unwrap().as_slice());
    let turn_two: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["turn"] == 2)
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        turn_two,
        ["lifecycle", "user_message", "file_changed", "file_changed", "diff_captured", "turn_finished", "lifecycle"]
    );

    let reference = format!("refs/cortex/sessions/{id}");
    let patch = env.git(&env.repo, ["show", &format!("{reference}:turns/2/diff.patch")]);
    assert!(patch.contains("deleted file mode") && patch.contains("println!"), "{patch}");
    assert!(!env.repo.join("README.md").exists());

    let events = events.as_array().unwrap();
    let stderr_line = events.iter().find(|event| event["stream"] == "stderr").unwrap();
    assert_eq!(stderr_line["text"], "oops\n");
    let finished = events.iter().find(|event| event["kind"] == "command_finished").unwrap();
    assert_eq!(finished["exit_code"], 3);

    let per_turn = env.cortex_ok(["session", "diff", &id, "--turn", "1"]).stdout;
    assert!(per_turn.contains("+fn main() {}") && !per_turn.contains("README"), "{per_turn}");
    let whole = env.cortex_ok(["session", "diff", &id]).stdout;
    assert!(whole.contains("println!") && whole.contains("-# demo"), "{whole}");
    let missing = env.cortex(["session", "diff", &id, "--turn", "9"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("has no turn 9 (it has 2)"), "{}", missing.stderr);
}

#[test]
fn exit_codes_tell_success_failure_and_bad_input_apart() {
    let env = TestEnv::new();
    let failing =
        env.script("fail.toml", "[[step]]\nmessage = \"trying\"\n[[step]]\nfail = \"model quota exceeded\"\n");
    let run = env.cortex(["session", "start", "go", "--script", failing.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["state"], "failed");
    assert_eq!(report["error"], "model quota exceeded");
    let id = report["session_id"].as_str().unwrap().to_string();

    // A failed session is final: sending to it is refused, and says why.
    let refused = env.cortex(["session", "send", &id, "again"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("a failed session is final"), "{}", refused.stderr);

    let unknown = env.cortex(["session", "show", "ses_zzzz"]);
    assert_eq!(unknown.code, 2);
    assert_eq!(
        unknown.stderr.trim(),
        "error: no session matches `ses_zzzz` (`cortex session list --all` shows the ids; in a fresh clone, `cortex refs fetch` brings the sessions)"
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    let cases = [
        ("[[step]]\nmesage = \"hi\"\n", "turn 1, step 1: unknown step `mesage`"),
        ("[[step]]\ndelete_file = \"../outside.txt\"\n", "`../outside.txt` leaves the workspace"),
        ("[[step]]\nwrite_file = { path = \"/etc/passwd\", content = \"\" }\n", "is absolute"),
        ("[[step]\n", "not valid TOML at line 1"),
    ];
    for (text, expected) in cases {
        let script = env.script("bad.toml", text);
        let run = env.cortex(["session", "start", "go", "--script", script.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{text}");
        assert!(run.stderr.contains(expected), "{expected:?} not in {:?}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
    let missing = env.cortex(["session", "start", "go", "--script", "/nonexistent.toml"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("cannot read it"), "{}", missing.stderr);

    let outside = env.path("not-a-repo");
    std::fs::create_dir_all(&outside).unwrap();
    let run = env.cortex_in(&outside, ["session", "start", "go"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is not inside a git repository"), "{}", run.stderr);

    assert!(env.session_refs(&env.repo).is_empty());
    assert!(!env.cortex_home.join("workspaces.toml").exists(), "no workspace may be bound by a refused start");
}

#[test]
fn approvals_are_denied_without_a_terminal_unless_yes_is_given() {
    let env = TestEnv::new();
    let script = env.script(
        "a.toml",
        "[[step]]\napproval = \"run the migration?\"\n[[step]]\nwrite_file = { path = \"migrated.txt\", content = \"done\\n\" }\n[[step]]\nmessage = \"after\"\n",
    );
    let denied = env.start("migrate", &script);
    assert!(!env.repo.join("migrated.txt").exists(), "a denied approval skips the step it guards");
    let events = env.cortex_ok(["session", "log", &denied, "--json"]).json();
    let kinds: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let kind = event["kind"].as_str().unwrap();
            match kind {
                "lifecycle" => format!("lifecycle:{}", event["to"].as_str().unwrap()),
                "approval_resolved" => {
                    format!("approval_resolved:{}", event["decision"].as_str().unwrap())
                }
                _ => kind.to_string(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "lifecycle:starting",
            "lifecycle:running",
            "user_message",
            "approval_requested",
            "lifecycle:awaiting_approval",
            "approval_resolved:denied",
            "lifecycle:running",
            "assistant_message",
            "diff_captured",
            "turn_finished",
            "lifecycle:idle"
        ]
    );
    let resolved = events.as_array().unwrap().iter().find(|event| event["kind"] == "approval_resolved").unwrap();
    assert_eq!(resolved["cause"], format!("seq:{}", resolved["seq"].as_u64().unwrap() - 2));

    let run = env.cortex_ok(["session", "start", "migrate", "--script", script.to_str().unwrap(), "--yes", "--json"]);
    assert_eq!(run.json()["outcome"], "completed");
    assert_eq!(std::fs::read_to_string(env.repo.join("migrated.txt")).unwrap(), "done\n");
}

#[test]
fn no_script_echoes_the_prompt_and_list_filters_by_state() {
    let env = TestEnv::new();
    let run = env.cortex_ok(["session", "start", "hello there", "--json"]);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    let events = env.cortex_ok(["session", "log", &id, "--json"]).json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["kind"] == "assistant_message" && event["text"] == "echo: hello there")
    );
    let failing = env.script("fail.toml", "[[step]]\nfail = \"no\"\n");
    env.cortex(["session", "start", "x", "--script", failing.to_str().unwrap()]);

    let idle = env.cortex_ok(["session", "list", "--json", "--state", "idle"]).json();
    assert_eq!(idle.as_array().unwrap().len(), 1);
    assert_eq!(idle[0]["id"], id.as_str());
    let failed = env.cortex_ok(["session", "list", "--json", "--state", "failed"]).json();
    assert_eq!(failed.as_array().unwrap().len(), 1);
    let bad_state = env.cortex(["session", "list", "--state", "sleeping"]);
    assert_eq!(bad_state.code, 2);
    assert!(bad_state.stderr.contains("unknown session state `sleeping`"), "{}", bad_state.stderr);
}

#[test]
fn json_outputs_are_stable() {
    let env = TestEnv::new();
    // One output stream only: the order of lines across stdout and stderr is
    // up to the OS, and snapshots must not be.
    let script = env.script("s.toml", &SCRIPT.replace("echo oops >&2; ", ""));
    let start =
        env.cortex_ok(["session", "start", "fix the flaky test", "--script", script.to_str().unwrap(), "--json"]);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let list = env.cortex_ok(["session", "list", "--json"]);
    let show = env.cortex_ok(["session", "show", &id, "--json"]);
    let log = env.cortex_ok(["session", "log", &id, "--json", "--after", "5"]);
    let search = env.cortex_ok(["session", "search", "flaky", "--json"]);
    env.redactions().bind(|| {
        insta::assert_snapshot!("start", start.stdout);
        insta::assert_snapshot!("list", list.stdout);
        insta::assert_snapshot!("show", show.stdout);
        insta::assert_snapshot!("log_after_5", log.stdout);
        insta::assert_snapshot!("search", search.stdout);
    });
}

#[test]
fn a_quiet_turn_still_reaches_the_ref_within_seconds() {
    // While the agent is busy (a long command, a sleep), what it said so far
    // is flushed to the ref by the timer, so others can see it live.
    let env = TestEnv::new();
    let script = env.script("slow.toml", "[[step]]\nmessage = \"visible early\"\n[[step]]\nsleep_ms = 8000\n");
    let subdir = env.repo.join("deep/inside");
    std::fs::create_dir_all(&subdir).unwrap();
    let mut child = env.spawn_start(&subdir, "slow", &script);
    let seen = wait_for(|| {
        let reference = env.session_refs(&env.repo).into_iter().next()?;
        let history = env.git(&env.repo, ["log", "-p", "--format=", &reference]);
        history.contains("visible early").then_some(())
    });
    assert!(seen.is_some() && child.is_running(), "the message must be in the ref while the turn is still running");
}

/// The scripted agent's file steps go through the one boundary: `./.git`,
/// a link to `.git` and a dangling link to outside are refused (the turn
/// fails with the reason) and nothing is written.
#[test]
fn the_fake_agent_cannot_write_through_links_or_into_git() {
    let env = TestEnv::new();
    let outside = env.root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(".git", env.repo.join("gitlink")).unwrap();
    std::os::unix::fs::symlink(outside.join("planted.txt"), env.repo.join("dangling")).unwrap();
    for path in ["./.git/hooks/pre-commit", "gitlink/hooks/pre-commit", "dangling", "gitlink/config"] {
        let script = env.script(
            "hostile.toml",
            &format!("[[step]]\nwrite_file = {{ path = \"{path}\", content = \"#!/bin/sh\\necho pwned\\n\" }}\n"),
        );
        let run = env.cortex(["session", "start", "go", "--script", script.to_str().unwrap(), "--json"]);
        assert_eq!(run.code, 1, "{path}: the turn must fail\n{}\n{}", run.stdout, run.stderr);
        let reason = format!("{}{}", run.stdout, run.stderr);
        assert!(reason.contains("symlink") || reason.contains(".git"), "{path}: {reason}");
    }
    assert!(!env.repo.join(".git/hooks/pre-commit").exists());
    assert!(!outside.join("planted.txt").exists());
    let config = std::fs::read_to_string(env.repo.join(".git/config")).unwrap();
    assert!(!config.contains("pwned"));
}

/// Round 1: a path git refuses to add (a folder named `.GIT`) made every
/// snapshot fail and sessions hang in `starting`. Now the path is left out
/// and named, and a snapshot that cannot be made at all fails the turn
/// with its reason.
#[test]
fn a_path_git_refuses_is_left_out_and_a_failed_snapshot_fails_the_turn() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".GIT")).unwrap();
    std::fs::write(env.repo.join(".GIT/planted"), "x\n").unwrap();
    let script = env.script("s.toml", "[[step]]\nwrite_file = { path = \"ok.txt\", content = \"fine\\n\" }\n");
    let run = env.cortex(["session", "start", "go", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let id = run.json()["session_id"].as_str().unwrap().to_string();
    let log = env.cortex_ok(["session", "log", &id, "--json"]).stdout;
    assert!(log.contains("git refused 1 path(s)") && log.contains(".GIT/planted"), "{log}");
    let diff = env.cortex_ok(["session", "diff", &id]).stdout;
    assert!(diff.contains("ok.txt"), "{diff}");

    // Cortex's temp folder is a file: the snapshot fails, so does the turn.
    let quarantine_parent = env.repo.join(".git/cortex/tmp");
    std::fs::create_dir_all(&quarantine_parent).unwrap();
    std::fs::remove_dir_all(&quarantine_parent).unwrap();
    std::fs::write(&quarantine_parent, "not a folder").unwrap();
    let run = env.cortex(["session", "start", "again", "--script", script.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&quarantine_parent).unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let answer = run.json();
    assert_eq!(answer["state"], "failed", "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("cannot snapshot the working tree"), "{answer}");
}

/// Round 1: an agent's or a command's escape sequences reached the
/// person's terminal (OSC 52 clipboard writes, titles, `\r` overwrites).
#[test]
fn escape_sequences_from_an_agent_are_shown_not_obeyed() {
    let env = TestEnv::new();
    let script = env.script(
        "esc.toml",
        "[[step]]\ncommand = \"printf '\\\\033]52;c;ZXZpbA==\\\\007visible\\\\rFAKE\\\\n'\"\n[[step]]\nmessage = \"\\u001b[2Jcleared\"\n",
    );
    let run = env.cortex(["session", "start", "go", "--script", script.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = env.cortex_ok(["session", "list", "--json"]).json()[0]["id"].as_str().unwrap().to_string();
    let log = env.cortex_ok(["session", "log", &id]);
    for shown in [&run.stderr, &log.stdout] {
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\r'),
            "raw control characters reached the terminal: {shown:?}"
        );
        assert!(shown.contains("^[]52;c;ZXZpbA==^Gvisible^MFAKE"), "{shown}");
        assert!(shown.contains("^[[2Jcleared"), "{shown}");
    }
}

/// Issue 11's small ones: an empty prompt is refused, a stop of a stopped
/// session is a success that says so, a closed stdout is a quiet exit.
#[test]
fn empty_prompts_repeated_stops_and_closed_pipes_behave() {
    let env = TestEnv::new();
    let id = env.start("first", &env.script("s.toml", ""));
    let empty = env.cortex(["session", "send", &id, "  "]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("the prompt is empty"), "{}", empty.stderr);
    let turns = env.cortex_ok(["session", "show", &id, "--json"]).json()["session"]["turns"].clone();
    assert_eq!(turns, 1, "nothing was sent");

    env.cortex_ok(["session", "stop", &id]);
    let again = env.cortex(["session", "stop", &id]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("already stopped"), "{}", again.stderr);

    for _ in 0..3 {
        env.start("more", &env.script("s.toml", ""));
    }
    for args in [vec!["session", "list", "--json"], vec!["session", "list"], vec!["session", "log", &id]] {
        let mut child = env
            .cortex_command(&env.repo)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // `| head -0`: the reader is gone
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Issue 11, bug 6: with no terminal and no `--yes`, in-process denied the
/// approval while through Core the same command waited forever. Now both
/// deny at once, with the same reason, and exit the same way.
#[test]
fn approvals_without_a_terminal_are_denied_alike_in_process_and_through_core() {
    use crate::support::cluster::free_port;
    let env = TestEnv::new();
    let script = env.script("a.toml", "[[step]]\napproval = \"deploy?\"\n[[step]]\nmessage = \"after\"\n");
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[[checks]]\nname = \"lint\"\ncommand = \"true\"\n").unwrap();
    let args = ["session", "start", "ship it", "--script", script.to_str().unwrap(), "--json"];
    let in_process = env.cortex(args);
    let core = env.start_core("up", &env.path("core-home"), free_port());
    // Bounded by a watchdog: the old behaviour was to wait forever.
    let mut child = env
        .cortex_command(&env.repo)
        .env("CORTEX_HOME", &core.data)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let finished = crate::support::wait_for(|| child.try_wait().unwrap());
    if finished.is_none() {
        let _ = child.kill();
        panic!("through Core the command waited for an answer nobody could give");
    }
    let through_core = crate::support::Run::from(child.wait_with_output().unwrap());
    for (surface, run) in [("in-process", &in_process), ("through Core", &through_core)] {
        assert_eq!(run.code, 0, "{surface}: {}", run.stderr);
        let id = run.json()["session_id"].as_str().unwrap().to_string();
        let log = match surface {
            "in-process" => env.cortex(["session", "log", &id, "--json"]).json(),
            _ => env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json(),
        };
        let resolved = log.as_array().unwrap().iter().find(|event| event["kind"] == "approval_resolved").cloned();
        let resolved = resolved.unwrap_or_else(|| panic!("{surface}: no answer recorded: {log}"));
        assert_eq!(resolved["decision"], "denied", "{surface}");
        assert_eq!(resolved["by"], "no terminal to ask (pass --yes to approve)", "{surface}");
        // The JSON report says what was asked and answered, and the checks.
        let report = run.json();
        assert_eq!(report["approvals"].as_array().map(Vec::len), Some(1), "{surface}: {report}");
        let approval = &report["approvals"][0];
        assert_eq!(
            (&approval["prompt"], &approval["decision"], &approval["by"]),
            (&"deploy?".into(), &"denied".into(), &"no terminal to ask (pass --yes to approve)".into()),
            "{surface}"
        );
        assert_eq!(report["checks"][0]["name"], "lint", "{surface}: {report}");
        assert_eq!(report["checks"][0]["passed"], true, "{surface}: {report}");
    }
}

/// Issue 12: an agent that is not installed is refused before anything is
/// written, naming what to install, in-process and through Core alike.
#[test]
fn a_missing_agent_is_refused_naming_what_to_install() {
    use crate::support::cluster::free_port;
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[claude]\nbinary = \"/nowhere/claude\"\n").unwrap();
    let args = ["session", "start", "hello", "--provider", "claude", "--json"];
    let in_process = env.cortex(args);
    let core = env.start_core("up", &env.path("core-home"), free_port());
    let through_core = env.cortex_at(&core, &env.repo, args);
    for (surface, run) in [("in-process", &in_process), ("through Core", &through_core)] {
        assert_eq!(run.code, 2, "{surface}: {}", run.stderr);
        assert!(
            run.stderr.contains("`claude` is not installed") && run.stderr.contains("@anthropic-ai/claude-code"),
            "{surface}: {}",
            run.stderr
        );
    }
    assert!(env.session_refs(&env.repo).is_empty(), "nothing was written");
}

/// Any name that is no built-in adapter is an ACP agent: one the
/// repository does not declare, a declared one whose program is missing,
/// and a name that could reach a command line or a path are each refused
/// alike in-process and through Core, before anything is written.
#[test]
fn unknown_and_unfit_agent_names_are_refused_before_anything_is_written() {
    use crate::support::cluster::free_port;
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(
        env.repo.join(".cortex/config.toml"),
        "[agents.house-agent]\ncommand = [\"/nowhere/house-agent\"]\n",
    )
    .unwrap();
    let core = env.start_core("up", &env.path("core-home"), free_port());
    let cases = [
        ("nosuch", "no agent `nosuch`: declare it as [agents.nosuch]"),
        ("house-agent", "`house-agent` is not installed on this node: there is no `/nowhere/house-agent`"),
        ("../evil", "`../evil` is not a provider name"),
        ("-rf", "`-rf` is not a provider name"),
    ];
    for (name, says) in cases {
        let provider = format!("--provider={name}");
        let args = ["session", "start", "hello", &provider, "--json"];
        for (surface, run) in
            [("in-process", env.cortex(args)), ("through Core", env.cortex_at(&core, &env.repo, args))]
        {
            assert_eq!(run.code, 2, "{name} {surface}: {}", run.stderr);
            assert!(run.stderr.contains(says), "{name} {surface}: {}", run.stderr);
        }
    }
    let nosuch = env.cortex(["session", "start", "hello", "--provider", "nosuch"]);
    assert!(
        nosuch.stderr.contains("codex-acp, gemini, house-agent"),
        "the error lists what there is: {}",
        nosuch.stderr
    );
    assert!(env.session_refs(&env.repo).is_empty(), "nothing was written");
}
