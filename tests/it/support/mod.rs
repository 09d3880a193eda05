//! The test sandbox: a temp dir with its own HOME and CORTEX_HOME, hermetic
//! git (no global or system config, fixed author and dates), and helpers to
//! run the real `cortex` binary and real `git` in it.

#![allow(dead_code)]

pub mod agents;
#[path = "../../../xtask/src/anthropic.rs"]
pub mod anthropic;
pub mod chrome;
pub mod cluster;
#[path = "../../../xtask/src/gemini.rs"]
pub mod gemini;
#[path = "../../../xtask/src/model.rs"]
pub mod model;
pub mod panel;
pub mod pty;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct TestEnv {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub cortex_home: PathBuf,
    /// The main repository, with one commit on `main`.
    pub repo: PathBuf,
}

/// What a command printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}\n{}", self.stdout, self.stderr))
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let root = tempfile::Builder::new().prefix("cortex-it-").tempdir().expect("temp dir");
        let home = root.path().join("home");
        let cortex_home = root.path().join("cortex-home");
        let repo = root.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&repo).unwrap();
        let env = TestEnv { root, home, cortex_home, repo };
        env.git(&env.repo, ["init", "-q", "-b", "main"]);
        std::fs::write(env.repo.join("README.md"), "# demo\n").unwrap();
        std::fs::write(env.repo.join(".gitignore"), "target/\n").unwrap();
        env.git(&env.repo, ["add", "."]);
        env.git(&env.repo, ["commit", "-q", "-m", "initial"]);
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn hermetic(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CORTEX_HOME", &self.cortex_home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .stdin(Stdio::null());
        // Where the machine's codex is (installed by .ci/run), as a node would know.
        if let Some(codex) = std::env::var_os("CORTEX_CODEX_BIN") {
            command.env("CORTEX_CODEX_BIN", codex);
        }
        if let Some(claude) = std::env::var_os("CORTEX_CLAUDE_BIN") {
            command.env("CORTEX_CLAUDE_BIN", claude);
        }
        for agent in ["CORTEX_CODEX_ACP_BIN", "CORTEX_GEMINI_BIN"] {
            if let Some(program) = std::env::var_os(agent) {
                command.env(agent, program);
            }
        }
    }

    /// Runs git in `dir` and returns stdout; panics on failure.
    pub fn git<I, S>(&self, dir: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let run = self.git_run(dir, args);
        assert_eq!(run.code, 0, "git failed: {}", run.stderr);
        run.stdout
    }

    pub fn git_run<I, S>(&self, dir: &Path, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("git");
        self.hermetic(&mut command);
        Run::from(command.current_dir(dir).args(args).output().expect("git runs"))
    }

    pub fn cortex_command(&self, dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cortex"));
        self.hermetic(&mut command);
        command.current_dir(dir);
        command
    }

    /// Runs `cortex` in `dir`.
    pub fn cortex_in<I, S>(&self, dir: &Path, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(self.cortex_command(dir).args(args).output().expect("cortex runs"))
    }

    /// Runs `cortex` in the main repository.
    pub fn cortex<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cortex_in(&self.repo, args)
    }

    /// Runs `cortex` in the main repository and expects exit 0.
    pub fn cortex_ok<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let run = self.cortex(args);
        assert_eq!(run.code, 0, "cortex failed\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
        run
    }

    /// Writes a fake-provider script outside the repository and returns its path.
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts a session with `script` and returns its id.
    pub fn start(&self, prompt: &str, script: &Path) -> String {
        let run = self.cortex_ok(["session", "start", prompt, "--script", script.to_str().unwrap(), "--json"]);
        run.json()["session_id"].as_str().unwrap().to_string()
    }

    /// Starts `cortex session start PROMPT --script SCRIPT` in `dir` in the
    /// background, output discarded; the child is killed on drop.
    pub fn spawn_start(&self, dir: &Path, prompt: &str, script: &Path) -> Background {
        let child = self
            .cortex_command(dir)
            .args(["session", "start", prompt, "--script", script.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cortex starts");
        Background(child)
    }

    /// A bare repository `name` added as remote `origin` of the main repository.
    pub fn origin(&self, name: &str) -> PathBuf {
        let remote = self.path(name);
        self.git(self.root.path(), ["init", "-q", "--bare", remote.to_str().unwrap()]);
        self.git(&self.repo, ["remote", "add", "origin", remote.to_str().unwrap()]);
        remote
    }

    /// Session refs of `repo`, as `git for-each-ref` sees them.
    pub fn session_refs(&self, repo: &Path) -> Vec<String> {
        self.git(repo, ["for-each-ref", "--format=%(refname)", "refs/cortex/"]).lines().map(str::to_string).collect()
    }

    /// The content of every object reachable from `refs/cortex/`, as text.
    pub fn all_cortex_objects(&self, repo: &Path) -> String {
        let objects = self.git(repo, ["rev-list", "--objects", "--glob=refs/cortex/*"]);
        let mut text = String::new();
        for line in objects.lines() {
            let oid = line.split(' ').next().unwrap();
            let kind = self.git(repo, ["cat-file", "-t", oid]);
            let content = self.git_run(repo, ["cat-file", "-p", oid]);
            text.push_str(&format!("== {oid} {kind}"));
            text.push_str(&content.stdout);
        }
        text
    }
}

impl TestEnv {
    /// insta settings that hide what changes between runs: ids, times, paths.
    pub fn redactions(&self) -> insta::Settings {
        let mut settings = redactions();
        let root = self.root.path().canonicalize().unwrap();
        settings.add_filter(&regex::escape(&root.to_string_lossy()), "[TMP]");
        settings.add_filter(&regex::escape(&self.root.path().to_string_lossy()), "[TMP]");
        settings
    }
}

fn redactions() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"ses_[0-9a-z]{26}", "[SESSION]");
    settings.add_filter(r"wsp_[0-9a-z]{26}", "[WORKSPACE]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    settings.add_filter(r#""base_commit": "[0-9a-f]{40}""#, r#""base_commit": "[COMMIT]""#);
    settings.add_filter(r#""node": "[^"]+""#, r#""node": "[NODE]""#);
    settings.add_filter(r#""duration_ms": \d+"#, r#""duration_ms": "[MS]""#);
    settings
}

/// A child process killed (SIGKILL) when dropped.
pub struct Background(pub std::process::Child);

impl Background {
    pub fn is_running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `probe` every few milliseconds until it returns `Some`, for at most
/// 30 seconds (a generous bound: machines here are shared and slow).
pub fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Asserts that `events` (a `session log --json` array) have seqs 1..=n, in
/// order, with no gap and no duplicate; returns n.
pub fn assert_gapless(events: &serde_json::Value) -> usize {
    let seqs: Vec<u64> = events.as_array().unwrap().iter().map(|event| event["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "seqs must be 1..n with no gap or duplicate");
    seqs.len()
}

/// The codex binary the tests drive: `CORTEX_CODEX_BIN`, or `codex` on the
/// PATH. `None` (with the reason printed) when there is none; under
/// `CI=true` that is a failure instead.
pub fn codex_binary() -> Option<PathBuf> {
    let from_env = std::env::var_os("CORTEX_CODEX_BIN").map(PathBuf::from).filter(|path| path.exists());
    let found = from_env.or_else(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("codex")).find(|path| path.exists()))
    });
    if found.is_none() {
        skip("no codex binary (install @openai/codex@0.169.0 and set CORTEX_CODEX_BIN; .ci/run does)");
    }
    found
}

pub fn claude_binary() -> Option<PathBuf> {
    let found = std::env::var_os("CORTEX_CLAUDE_BIN").map(PathBuf::from).filter(|path| path.exists());
    if found.is_none() {
        skip("no claude binary (install @anthropic-ai/claude-code@2.1.328 and set CORTEX_CLAUDE_BIN; .ci/run does)");
    }
    found
}

/// Says that the running test is skipped and why, where a person sees it:
/// straight to the process's stderr, past the harness's capture (which
/// swallows `eprintln!`). Under `CI=true` a skip is a failure.
pub fn skip(reason: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test} cannot run: {reason}, and CI=true requires it");
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason}");
}

/// Live `codex app-server` processes using this test's CODEX_HOME.
pub fn app_servers(codex_home: &Path) -> Vec<u32> {
    let marker = format!("CODEX_HOME={}", codex_home.display());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has =
            |haystack: &[u8], needle: &str| haystack.split(|byte| *byte == 0).any(|part| part == needle.as_bytes());
        if has(&cmdline, "app-server") && has(&environ, &marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether Claude Code has written `text` into a session transcript under
/// `repo`'s private Cortex dir, and stopped writing it for a moment: it
/// writes the transcript after the turn's `result` line, so a kill right
/// after a turn can come before (or in the middle of) that.
pub fn claude_transcript_has(repo: &std::path::Path, text: &str) -> bool {
    fn find(dir: &std::path::Path, text: &str) -> Option<std::path::PathBuf> {
        let entries = std::fs::read_dir(dir).ok()?;
        entries.flatten().find_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                find(&path, text)
            } else {
                let written = path.extension().is_some_and(|ext| ext == "jsonl")
                    && std::fs::read_to_string(&path).is_ok_and(|content| content.contains(text));
                written.then_some(path)
            }
        })
    }
    let Some(path) = find(&repo.join(".git/cortex/claude/home/projects"), text) else { return false };
    let size = || std::fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
    let before = size();
    std::thread::sleep(std::time::Duration::from_millis(300));
    size() == before
}
