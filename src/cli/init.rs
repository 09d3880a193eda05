//! `cortex init`: a commented `.cortex/config.toml` for the repository it
//! runs in, with a check for the test command the repository's files point
//! to; and `cortex config`: the settings in effect and where each comes
//! from (flag, environment, file, default).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use super::Exit;
use super::backend::Ctx;
use super::output::{note, print_json};
use crate::node::config::{DEFAULT_IDLE_LIMIT_SECS, RepoConfig};
use crate::store::Store;

/// Write a commented `.cortex/config.toml` for this repository.
///
/// The checks come from what the repository holds: `Cargo.toml` gives
/// `cargo test`, a `package.json` with a test script `npm test`, Python
/// project files `pytest`, `go.mod` `go test ./...`. Every other setting is
/// written commented out, with its default. An existing file is never
/// overwritten.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex init                 in a repository: write .cortex/config.toml
  cortex init && cortex config   then see what it sets")]
pub(crate) struct InitArgs {
    /// Print `{"path": …, "checks": […]}` instead of a note.
    #[arg(long)]
    json: bool,
}

/// A test command a repository's files point to.
struct Detected {
    name: &'static str,
    command: &'static str,
    because: &'static str,
}

/// The test commands `root`'s files point to, in a fixed order.
fn detect(root: &Path) -> Vec<Detected> {
    let has = |name: &str| root.join(name).is_file();
    let mut found = Vec::new();
    if has("Cargo.toml") {
        found.push(Detected { name: "cargo-test", command: "cargo test", because: "Cargo.toml" });
    }
    let npm_test = fs_err::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|package| package["scripts"]["test"].as_str().map(str::to_string))
        // npm's placeholder fails on purpose: not a test suite.
        .is_some_and(|script| !script.contains("no test specified"));
    if npm_test {
        found.push(Detected { name: "npm-test", command: "npm test", because: "package.json's test script" });
    }
    if let Some(file) =
        ["pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini"].into_iter().find(|file| has(file))
    {
        found.push(Detected {
            name: "pytest",
            command: "pytest",
            because: match file {
                "pyproject.toml" => "pyproject.toml",
                "setup.py" => "setup.py",
                "setup.cfg" => "setup.cfg",
                "pytest.ini" => "pytest.ini",
                _ => "tox.ini",
            },
        });
    }
    if has("go.mod") {
        found.push(Detected { name: "go-test", command: "go test ./...", because: "go.mod" });
    }
    found
}

/// The file `cortex init` writes.
fn config_text(checks: &[Detected]) -> String {
    let mut text = String::from(
        "# Cortex settings for this repository (written by `cortex init`).\n\
         # Every key is optional. Unknown keys are refused, naming the file and\n\
         # the key, so a typo cannot turn a check off. `cortex config` shows what\n\
         # is in effect.\n\n\
         # A session with no activity for this long is marked `expired` (its live\n\
         # agent process is stopped); the next turn resumes it.\n",
    );
    text.push_str(&format!("# idle_limit_secs = {DEFAULT_IDLE_LIMIT_SECS}\n\n"));
    text.push_str(
        "# Checks run in the workspace as evidence: after every turn (when = \"turn\")\n\
         # or on `cortex session check ID` only (when = \"manual\"). Their output and\n\
         # outcome are kept in the session's ref; `session send --fail-on-checks`\n\
         # and `session wait --fail-on-checks` exit 1 when one fails.\n",
    );
    if checks.is_empty() {
        text.push_str(
            "# No test command was found here (Cargo.toml, package.json, pyproject.toml,\n\
             # go.mod…); name yours:\n\
             # [[checks]]\n\
             # name = \"tests\"          # letters, digits, `-`, `_`, `.`\n\
             # command = \"make test\"   # run with `sh -c` in the workspace root\n\
             # when = \"turn\"\n\
             # timeout_secs = 600      # the process group is killed after this\n",
        );
    }
    for check in checks {
        text.push_str(&format!(
            "\n# Found from {}.\n[[checks]]\nname = \"{}\"\ncommand = \"{}\"\nwhen = \"turn\"\ntimeout_secs = 600\n",
            check.because, check.name, check.command
        ));
    }
    text.push_str(
        "\n# Agents. `cortex session start --provider NAME`: fake (built in), codex,\n\
         # codex-exec, claude, the ACP agents codex-acp and gemini, or one declared\n\
         # below. Every key is optional.\n\
         # [codex]\n\
         # model = \"gpt-5.5\"\n\
         # approval_policy = \"on-request\"   # untrusted | on-request | never\n\
         # sandbox = \"workspace-write\"      # read-only | workspace-write | danger-full-access\n\
         # [claude]\n\
         # model = \"sonnet\"\n\
         # [agents.my-agent]                # any agent speaking the Agent Client Protocol\n\
         # command = [\"my-agent\", \"--acp\"]\n\
         # env = { MY_AGENT_KEY_FILE = \"/path\" }\n",
    );
    text
}

#[derive(Serialize)]
struct Initialized {
    path: PathBuf,
    checks: Vec<String>,
}

fn repository() -> anyhow::Result<Store> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Store::discover(&cwd)
        .map_err(|error| anyhow::anyhow!("{error}; run `cortex init` inside a git repository (`git init` makes one)"))
}

pub(crate) fn init(args: InitArgs) -> anyhow::Result<Exit> {
    let store = repository()?;
    let root = store.workdir();
    let path = root.join(".cortex/config.toml");
    if path.exists() {
        bail!(
            "`{}` already exists and is left as it is: edit it (`cortex config` shows what it sets), or remove it to start over",
            path.display()
        );
    }
    let checks = detect(root);
    fs_err::create_dir_all(root.join(".cortex"))?;
    let text = config_text(&checks);
    // Written only if absent, even against a racing second `init`.
    let mut file = fs_err::OpenOptions::new().write(true).create_new(true).open(&path)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    RepoConfig::load(root).context("the written configuration does not read back (a Cortex bug)")?;
    let names: Vec<String> = checks.iter().map(|check| format!("{} ({})", check.name, check.command)).collect();
    if args.json {
        print_json(&Initialized { path, checks: checks.iter().map(|check| check.name.to_string()).collect() })?;
    } else {
        println!("{}", path.display());
        match names.is_empty() {
            true => note!("Wrote it with no check: no test command found; add yours under [[checks]]."),
            false => note!("Wrote it with the check(s): {}. Commit it to share them.", names.join(", ")),
        }
    }
    Ok(Exit::Ok)
}

/// Show the settings in effect and where each comes from.
///
/// The data dir, the Core commands talk to and its token, and, inside a
/// repository, what its `.cortex/config.toml` sets (checks, idle limit,
/// agents), defaults named as such.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex config
  cortex config --json | jq .checks")]
pub(crate) struct ConfigArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// One setting and where it came from.
#[derive(Serialize)]
struct Setting {
    value: String,
    from: String,
}

#[derive(Serialize)]
struct CheckShown {
    name: String,
    command: String,
    when: String,
    timeout_secs: u64,
}

#[derive(Serialize)]
struct Effective {
    data_dir: Setting,
    core: Setting,
    token: Setting,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_file: Option<Setting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_limit_secs: Option<Setting>,
    checks: Vec<CheckShown>,
    agents: Vec<String>,
}

fn setting(value: impl Into<String>, from: impl Into<String>) -> Setting {
    Setting { value: value.into(), from: from.into() }
}

pub(crate) fn config(args: ConfigArgs, ctx: &Ctx, data_flag: bool) -> anyhow::Result<Exit> {
    let env_set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let data_from = match (data_flag, env_set("CORTEX_HOME")) {
        (_, true) => "CORTEX_HOME",
        (true, false) => "--data",
        _ => "default for this user",
    };
    let recorded = fs_err::read_to_string(ctx.data.join("core.url")).ok().map(|url| url.trim().to_string());
    let core = match (&ctx.core, recorded) {
        (Some(url), _) if env_set("CORTEX_CORE") => setting(url, "CORTEX_CORE"),
        (Some(url), _) => setting(url, "--core"),
        (None, Some(url)) if !url.is_empty() => {
            setting(url, "core.url in the data dir, written by a running `cortex up`")
        }
        _ => setting("none", "no Core configured: commands that can finish alone run in-process"),
    };
    let token = if env_set("CORTEX_TOKEN") {
        setting("(set)", "CORTEX_TOKEN")
    } else if ctx.data.join("admin.token").is_file() {
        setting("(set)", "admin.token in the data dir")
    } else {
        setting("none", "no CORTEX_TOKEN and no admin.token in the data dir")
    };
    let mut effective = Effective {
        data_dir: setting(ctx.data.display().to_string(), data_from),
        core,
        token,
        repository: None,
        config_file: None,
        idle_limit_secs: None,
        checks: Vec::new(),
        agents: Vec::new(),
    };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if let Ok(store) = Store::discover(&cwd) {
        let root = store.workdir();
        let path = root.join(".cortex/config.toml");
        let repo = RepoConfig::load(root).map_err(|error| anyhow::anyhow!("{error}"))?;
        let file = path.display().to_string();
        effective.repository = Some(root.display().to_string());
        effective.config_file = Some(match path.is_file() {
            true => setting(&file, "found"),
            false => setting("none", "no .cortex/config.toml: `cortex init` writes one"),
        });
        effective.idle_limit_secs = Some(match repo.idle_limit_secs {
            Some(secs) => setting(secs.to_string(), &file),
            None => setting(DEFAULT_IDLE_LIMIT_SECS.to_string(), "default"),
        });
        effective.checks = repo
            .checks
            .iter()
            .map(|check| CheckShown {
                name: check.name.clone(),
                command: check.command.clone(),
                when: format!("{:?}", check.when).to_lowercase(),
                timeout_secs: check.timeout_secs,
            })
            .collect();
        effective.agents =
            [repo.codex.as_ref().map(|_| "codex".to_string()), repo.claude.as_ref().map(|_| "claude".to_string())]
                .into_iter()
                .flatten()
                .chain(repo.agents.keys().cloned())
                .collect();
    }
    if args.json {
        print_json(&effective)?;
    } else {
        show(&effective);
    }
    Ok(Exit::Ok)
}

/// `cortex config` as text: one setting a line, where it comes from after.
fn show(effective: &Effective) {
    let line = |key: &str, setting: &Setting| println!("{key:<16}{}  ({})", setting.value, setting.from);
    line("data dir", &effective.data_dir);
    line("core", &effective.core);
    line("token", &effective.token);
    match &effective.repository {
        None => println!("{:<16}none  (not inside a git repository)", "repository"),
        Some(root) => {
            println!("{:<16}{root}", "repository");
            if let Some(file) = &effective.config_file {
                line("config file", file);
            }
            if let Some(idle) = &effective.idle_limit_secs {
                line("idle_limit_secs", idle);
            }
            match effective.checks.is_empty() {
                true => println!("{:<16}none", "checks"),
                false => {
                    for (index, check) in effective.checks.iter().enumerate() {
                        let key = if index == 0 { "checks" } else { "" };
                        println!(
                            "{key:<16}{}: {}  (when {}, timeout {} s)",
                            check.name, check.command, check.when, check.timeout_secs
                        );
                    }
                }
            }
            let agents =
                if effective.agents.is_empty() { "built-in defaults".to_string() } else { effective.agents.join(", ") };
            println!("{:<16}{agents}", "agents set");
        }
    }
}
