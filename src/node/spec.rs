//! Which agent a session runs and how it is built: the provider's spec as
//! a command carries it, checked completely before anything is written,
//! and the live provider built from a session's meta and kept script.

use std::path::PathBuf;

use super::config::RepoConfig;
use super::{Error, Result};
use crate::protocol::{ProviderKind, SessionId};
use crate::provider::acp::{AcpProvider, AgentConfig};
use crate::provider::claude::ClaudeProvider;
use crate::provider::codex::CodexProvider;
use crate::provider::codex_exec::CodexExecProvider;
use crate::provider::fake::{FakeProvider, Script};
use crate::provider::{self, Provider};
use crate::store::{Meta, Store};

/// Which agent runs the session, with its options.
#[derive(Clone, Debug)]
pub enum ProviderSpec {
    /// The scripted agent; `script` is the script's text, `script_name` names
    /// it in errors.
    Fake { script: Option<String>, script_name: String },
    /// Codex as a live `codex app-server`, configured by `[codex]` in the
    /// repository's `.cortex/config.toml`.
    Codex,
    /// The same over `codex exec --json`, one process per turn.
    CodexExec,
    /// Claude Code, configured by `[claude]`.
    Claude,
    /// An agent over the Agent Client Protocol: a preset (`codex-acp`,
    /// `gemini`) or one declared in `[agents.NAME]`.
    Acp { name: String },
}

impl ProviderSpec {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Fake { .. } => ProviderKind::Fake,
            Self::Codex => ProviderKind::Codex,
            Self::CodexExec => ProviderKind::CodexExec,
            Self::Claude => ProviderKind::Claude,
            Self::Acp { .. } => ProviderKind::Acp,
        }
    }

    /// The name sessions carry: the adapter's, or the ACP agent's.
    pub fn name(&self) -> &str {
        match self {
            Self::Acp { name } => name,
            other => other.kind().as_str(),
        }
    }

    /// The spec for a provider by name, as commands carry it; a name that
    /// is no built-in adapter is an ACP agent (checked against the
    /// repository's config by [`ProviderSpec::check`]).
    pub fn named(name: &str, script: Option<String>) -> Option<ProviderSpec> {
        Some(match ProviderKind::of(name) {
            ProviderKind::Fake => ProviderSpec::Fake { script, script_name: "the script".into() },
            ProviderKind::Codex => ProviderSpec::Codex,
            ProviderKind::CodexExec => ProviderSpec::CodexExec,
            ProviderKind::Claude => ProviderSpec::Claude,
            ProviderKind::Acp if is_agent_name(name) => ProviderSpec::Acp { name: name.to_string() },
            ProviderKind::Acp => return None,
        })
    }

    /// Checks the provider's configuration completely (a script's every
    /// step, the repository's config, an ACP agent declared or known), so
    /// bad input is refused before anything is written.
    pub fn check(&self, workdir: &std::path::Path) -> Result<()> {
        // The repository's config, for every provider: a typo (`[[check]]`)
        // must not silently turn checks off.
        let config = RepoConfig::load(workdir)?;
        if let Self::Fake { script: Some(text), script_name } = self {
            Script::parse(text, script_name).map_err(provider::Error::from)?;
        }
        if let Self::Acp { name } = self
            && AgentConfig::resolve(name, &config.agents).is_none()
        {
            return Err(Error::UnknownAgent { name: name.clone(), known: known_providers(&config) });
        }
        Ok(())
    }

    /// The version of the agent this session runs, when its CLI says one.
    pub fn version(&self, workdir: &std::path::Path) -> Option<String> {
        match self.kind() {
            ProviderKind::Fake => Some(env!("CARGO_PKG_VERSION").to_string()),
            kind => installed_version(kind, &self.program(workdir).ok()?.0),
        }
    }

    /// The agent's program is on this node: a missing one is refused before
    /// anything is written, naming what to install.
    pub fn check_installed(&self, workdir: &std::path::Path) -> Result<()> {
        if self.kind() == ProviderKind::Fake {
            return Ok(());
        }
        let (program, install) = self.program(workdir)?;
        if is_installed(&program) {
            return Ok(());
        }
        Err(Error::AgentMissing { agent: self.name().to_string(), program: program.display().to_string(), install })
    }

    /// The agent's program as this repository configures it, and what to
    /// install when it is missing.
    fn program(&self, workdir: &std::path::Path) -> Result<(PathBuf, String)> {
        let config = RepoConfig::load(workdir)?;
        Ok(match self {
            Self::Fake { .. } => (PathBuf::new(), String::new()),
            Self::Codex | Self::CodexExec => (
                config.codex.unwrap_or_default().binary(),
                "@openai/codex 0.169.0 from npm, or point [codex] binary or CORTEX_CODEX_BIN at it".into(),
            ),
            Self::Claude => (
                config.claude.unwrap_or_default().binary(),
                "@anthropic-ai/claude-code 2.1.328 from npm, or point [claude] binary or CORTEX_CLAUDE_BIN at its platform binary".into(),
            ),
            Self::Acp { name } => {
                let agent = AgentConfig::resolve(name, &config.agents);
                let program = agent.and_then(|agent| agent.command.first().cloned()).unwrap_or_default();
                (PathBuf::from(program), AgentConfig::install_hint(name))
            }
        })
    }
}

/// An agent's name: 1 to 64 ASCII letters, digits, `-`, `_` and `.`, not
/// starting with `-` or `.` (it reaches command lines and file names).
pub fn is_agent_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(['-', '.'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Every provider name this repository can use, for an error.
fn known_providers(config: &RepoConfig) -> String {
    let mut names: Vec<&str> = ProviderKind::BUILT_IN.iter().map(|kind| kind.as_str()).collect();
    names.extend(crate::provider::acp::PRESETS);
    names.extend(config.agents.keys().map(String::as_str).filter(|name| !crate::provider::acp::PRESETS.contains(name)));
    names.join(", ")
}

/// Whether `program` is there: a path is a file, a bare name is on the PATH.
pub fn is_installed(program: &std::path::Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    !program.as_os_str().is_empty()
        && std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// What `PROGRAM --version` says, as a version (`codex-cli 0.169.0` and
/// `2.1.328 (Claude Code)` both give the number); asked once per program
/// in a process. ACP agents are not asked (codex-acp has no `--version`).
pub fn installed_version(kind: ProviderKind, program: &std::path::Path) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static ASKED: OnceLock<Mutex<HashMap<PathBuf, Option<String>>>> = OnceLock::new();
    if matches!(kind, ProviderKind::Fake | ProviderKind::Acp) {
        return None;
    }
    let asked = ASKED.get_or_init(Default::default);
    if let Some(known) = asked.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(program) {
        return known.clone();
    }
    let version = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| {
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.split_whitespace()
                .find(|word| word.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .map(str::to_string)
        });
    asked.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(program.to_path_buf(), version.clone());
    version
}

/// Builds a session's provider: the fake from its kept script, codex from
/// the repository's config and the session's thread. With `gateway` (the
/// session's URL of Cortex's MCP gateway), the agent is given that one MCP
/// server in its own way.
pub(super) fn build_provider(store: &Store, meta: &Meta, gateway: Option<String>) -> Result<Box<dyn Provider>> {
    let unknown = || Error::UnknownProvider { session: meta.id.clone(), provider: meta.provider.clone() };
    match ProviderKind::of(&meta.provider) {
        ProviderKind::Fake => {
            let path = script_path(store, &meta.id);
            let script =
                if path.exists() { Script::load(&path).map_err(provider::Error::from)? } else { Script::default() };
            Ok(Box::new(FakeProvider::new(script).with_gateway(gateway)))
        }
        ProviderKind::Codex => {
            let mut config = RepoConfig::load(store.workdir())?.codex.unwrap_or_default();
            if let Some(url) = gateway {
                config.config.extend(codex_gateway(&url));
            }
            let log = store.private_dir().join("codex").join(format!("{}.log", meta.id));
            Ok(Box::new(CodexProvider::new(config, meta.resume_ref.clone(), log)))
        }
        ProviderKind::CodexExec => {
            let mut config = RepoConfig::load(store.workdir())?.codex.unwrap_or_default();
            if let Some(url) = gateway {
                config.config.extend(codex_gateway(&url));
            }
            let log = store.private_dir().join("codex").join(format!("{}.log", meta.id));
            let before = meta.usage_total.unwrap_or_default();
            Ok(Box::new(CodexExecProvider::new(config, meta.resume_ref.clone(), before, log)))
        }
        ProviderKind::Claude => {
            let config = RepoConfig::load(store.workdir())?.claude.unwrap_or_default();
            let dir = store.private_dir().join("claude");
            let log = dir.join(format!("{}.log", meta.id));
            let provider = ClaudeProvider::new(config, meta.resume_ref.clone(), dir.join("home"), log);
            Ok(Box::new(provider.with_gateway(gateway)))
        }
        ProviderKind::Acp => {
            let declared = RepoConfig::load(store.workdir())?.agents;
            let config = AgentConfig::resolve(&meta.provider, &declared).ok_or_else(unknown)?;
            let log = store.private_dir().join("agents").join(format!("{}.log", meta.id));
            let provider = AcpProvider::new(meta.provider.clone(), config, meta.resume_ref.clone(), log);
            Ok(Box::new(provider.with_gateway(gateway)))
        }
    }
}

/// Codex's `-c` settings for Cortex's gateway: a streamable-HTTP server
/// named `cortex`, with time for a person to approve a call. Codex asks
/// nobody itself: the gateway holds every call to Cortex's policy.
fn codex_gateway(url: &str) -> [String; 4] {
    [
        format!("mcp_servers.cortex.url=\"{url}\""),
        "mcp_servers.cortex.default_tools_approval_mode=\"approve\"".to_string(),
        "mcp_servers.cortex.tool_timeout_sec=3600".to_string(),
        "mcp_servers.cortex.startup_timeout_sec=30".to_string(),
    ]
}

/// Where a fake session keeps its (redacted) script.
pub(super) fn script_path(store: &Store, session: &SessionId) -> PathBuf {
    store.private_dir().join("scripts").join(format!("{session}.toml"))
}
