//! What a shell and a man reader get: completion scripts that a real bash
//! loads and completes with on a pseudo-terminal, and man pages, one per
//! command, that groff renders without a warning.

use std::path::Path;
use std::process::Command;

use crate::support::{TestEnv, skip};

fn found(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|out| out.status.success())
}

#[test]
fn every_shell_gets_a_completion_script_and_bash_completes_subcommands_on_a_terminal() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.cortex_ok(["completions", shell]);
        assert!(run.stdout.contains("cortex") && run.stdout.contains("session"), "{shell}: {}", run.stdout);
    }
    let refused = env.cortex(["completions", "tcsh"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("possible values"), "{}", refused.stderr);

    let script = env.path("cortex.bash");
    std::fs::write(&script, env.cortex_ok(["completions", "bash"]).stdout).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));

    let mut bash = env.on_terminal("bash", &env.repo, &env.cortex_home, &["--norc", "--noprofile", "-i"]);
    bash.type_line(&format!("PS1='ready> '; source {}", script.display()));
    bash.expect("ready> ");
    bash.type_keys("cortex sess\t");
    bash.expect("cortex session ");
    bash.type_keys("sta\t");
    bash.expect("cortex session start ");
    // Two tabs list what can follow: the session subcommands.
    bash.type_keys("\u{15}cortex session s\t\t");
    for subcommand in ["start", "send", "show", "steer", "stop", "search"] {
        bash.expect(subcommand);
    }
}

#[test]
fn every_command_has_a_man_page_that_groff_renders_without_a_warning() {
    if !found("groff") || !found("man") {
        return skip("no groff or man (Debian: groff-base, man-db; .ci/run installs them)");
    }
    let env = TestEnv::new();
    let dir = env.path("man1");
    env.cortex_ok(["man-pages", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in ["cortex.1", "cortex-session.1", "cortex-session-start.1", "cortex-session-review.1", "cortex-up.1"]
    {
        assert!(pages.iter().any(|page| page == expected), "{expected} missing from {pages:?}");
    }
    let help = env.cortex_ok(["session", "--help"]).stdout;
    let commands = help.split("Commands:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    let names: Vec<&str> = commands
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(names.len() > 10, "{commands}");
    for name in names {
        assert!(pages.contains(&format!("cortex-session-{name}.1")), "no man page for `session {name}`");
    }
    for page in &pages {
        let path = dir.join(page);
        let rendered = groff(&path);
        assert!(
            rendered.status.success() && rendered.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
    let man = Command::new("man")
        .arg("-l")
        .arg(dir.join("cortex-session-start.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success(), "{}", String::from_utf8_lossy(&man.stderr));
    assert!(text.contains("cortex-session-start - Start an agent session"), "{text}");
    assert!(text.contains("--provider"), "{text}");
}

/// `groff` with every warning on, input decoded as UTF-8 (as `man` does).
fn groff(page: &Path) -> std::process::Output {
    Command::new("groff").args(["-k", "-man", "-Tutf8", "-ww", "-z"]).arg(page).output().unwrap()
}
