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
    /// codex-acp over the Agent Client Protocol, configured by `[agents.codex-acp]`.
    CodexAcp,
}

impl ProviderSpec {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Fake { .. } => ProviderKind::Fake,
            Self::Codex => ProviderKind::Codex,
            Self::CodexExec => ProviderKind::CodexExec,
            Self::Claude => ProviderKind::Claude,
            Self::CodexAcp => ProviderKind::CodexAcp,
        }
    }

    pub(super) fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The spec for a provider by name, as commands carry it.
    pub fn named(name: &str, script: Option<String>) -> Option<ProviderSpec> {
        Some(match ProviderKind::parse(name)? {
            ProviderKind::Fake => ProviderSpec::Fake { script, script_name: "the script".into() },
            ProviderKind::Codex => ProviderSpec::Codex,
            ProviderKind::CodexExec => ProviderSpec::CodexExec,
            ProviderKind::Claude => ProviderSpec::Claude,
            ProviderKind::CodexAcp => ProviderSpec::CodexAcp,
        })
    }

    /// Checks the provider's configuration completely (a script's every
    /// step, the repository's `[codex]` table), so bad input is refused
    /// before anything is written.
    pub fn check(&self, workdir: &std::path::Path) -> Result<()> {
        // The repository's config, for every provider: a typo (`[[check]]`)
        // must not silently turn checks off.
        RepoConfig::load(workdir)?;
        if let Self::Fake { script: Some(text), script_name } = self {
            Script::parse(text, script_name).map_err(provider::Error::from)?;
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
        let on_path = |program: &std::path::Path| {
            std::env::var_os("PATH")
                .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        };
        let found = if program.components().count() > 1 { program.is_file() } else { on_path(&program) };
        if found {
            return Ok(());
        }
        Err(Error::AgentMissing { agent: self.kind().as_str(), program: program.display().to_string(), install })
    }

    /// The agent's program as this repository configures it, and what to
    /// install when it is missing.
    fn program(&self, workdir: &std::path::Path) -> Result<(PathBuf, &'static str)> {
        let config = RepoConfig::load(workdir)?;
        let kind = self.kind();
        Ok(match kind {
            ProviderKind::Fake => (PathBuf::new(), ""),
            ProviderKind::Codex | ProviderKind::CodexExec => (
                config.codex.unwrap_or_default().binary(),
                "@openai/codex 0.169.0 from npm, or point [codex] binary or CORTEX_CODEX_BIN at it",
            ),
            ProviderKind::Claude => (
                config.claude.unwrap_or_default().binary(),
                "@anthropic-ai/claude-code 2.1.328 from npm, or point [claude] binary or CORTEX_CLAUDE_BIN at its platform binary",
            ),
            ProviderKind::CodexAcp => {
                let agent = config.agents.get(kind.as_str()).cloned().or_else(|| AgentConfig::preset(kind.as_str()));
                let program = agent.and_then(|agent| agent.command.first().cloned()).unwrap_or_default();
                (
                    PathBuf::from(program),
                    "@zed-industries/codex-acp 0.16.0 from npm (and bubblewrap), or set its command in [agents.codex-acp]",
                )
            }
        })
    }
}

/// What `PROGRAM --version` says, as a version (`codex-cli 0.169.0` and
/// `2.1.328 (Claude Code)` both give the number); asked once per program
/// in a process. codex-acp prints none.
pub fn installed_version(kind: ProviderKind, program: &std::path::Path) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static ASKED: OnceLock<Mutex<HashMap<PathBuf, Option<String>>>> = OnceLock::new();
    if matches!(kind, ProviderKind::Fake | ProviderKind::CodexAcp) {
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
/// the repository's config and the session's thread.
pub(super) fn build_provider(store: &Store, meta: &Meta) -> Result<Box<dyn Provider>> {
    let unknown = || Error::UnknownProvider { session: meta.id.clone(), provider: meta.provider.clone() };
    match ProviderKind::parse(&meta.provider).ok_or_else(unknown)? {
        ProviderKind::Fake => {
            let path = script_path(store, &meta.id);
            let script =
                if path.exists() { Script::load(&path).map_err(provider::Error::from)? } else { Script::default() };
            Ok(Box::new(FakeProvider::new(script)))
        }
        ProviderKind::Codex => {
            let config = RepoConfig::load(store.workdir())?.codex.unwrap_or_default();
            let log = store.private_dir().join("codex").join(format!("{}.log", meta.id));
            Ok(Box::new(CodexProvider::new(config, meta.resume_ref.clone(), log)))
        }
        ProviderKind::CodexExec => {
            let config = RepoConfig::load(store.workdir())?.codex.unwrap_or_default();
            let log = store.private_dir().join("codex").join(format!("{}.log", meta.id));
            Ok(Box::new(CodexExecProvider::new(config, meta.resume_ref.clone(), log)))
        }
        ProviderKind::Claude => {
            let config = RepoConfig::load(store.workdir())?.claude.unwrap_or_default();
            let dir = store.private_dir().join("claude");
            let log = dir.join(format!("{}.log", meta.id));
            Ok(Box::new(ClaudeProvider::new(config, meta.resume_ref.clone(), dir.join("home"), log)))
        }
        ProviderKind::CodexAcp => {
            let name = ProviderKind::CodexAcp.as_str();
            let configured = RepoConfig::load(store.workdir())?.agents.get(name).cloned();
            let config = configured.or_else(|| AgentConfig::preset(name)).unwrap_or_default();
            let log = store.private_dir().join("agents").join(format!("{}.log", meta.id));
            Ok(Box::new(AcpProvider::new(name, config, meta.resume_ref.clone(), log)))
        }
    }
}

/// Where a fake session keeps its (redacted) script.
pub(super) fn script_path(store: &Store, session: &SessionId) -> PathBuf {
    store.private_dir().join("scripts").join(format!("{session}.toml"))
}
