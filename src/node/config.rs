//! `.cortex/config.toml`: a repository's Cortex settings, read by the node
//! (documented in `.cortex-example/config.toml`).

use std::path::Path;

use serde::Deserialize;

use super::{Error, Result};

/// `.cortex/config.toml` in a workspace. Unknown keys are refused, so a typo
/// does not silently turn a check off.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    #[serde(default)]
    pub checks: Vec<Check>,
    /// A session idle this long is `expired` (its live process, if any,
    /// stopped); the next turn brings it back. Default 24 hours.
    #[serde(default)]
    pub idle_limit_secs: Option<u64>,
    /// How the `codex` provider runs here.
    #[serde(default)]
    pub codex: Option<crate::provider::codex::CodexConfig>,
    /// How the `claude` provider runs here.
    #[serde(default)]
    pub claude: Option<crate::provider::claude::ClaudeConfig>,
    /// ACP agents by name (`[agents.codex-acp]`): their command and environment.
    #[serde(default)]
    pub agents: std::collections::BTreeMap<String, crate::provider::acp::AgentConfig>,
    /// Limits on a turn's and a session's use; crossing one interrupts the turn.
    #[serde(default)]
    pub budget: Budget,
    /// US dollars per million tokens by model (`[pricing."gpt-5.5"]`), for
    /// agents that report tokens but no cost.
    #[serde(default)]
    pub pricing: std::collections::BTreeMap<String, Price>,
    /// Files kept as evidence of a turn besides the checks' own.
    #[serde(default)]
    pub artifacts: Artifacts,
}

/// `[artifacts]`: the folder the agent's own evidence goes in, and caps.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    /// Files the agent writes under this folder (relative to the workspace)
    /// during a turn are kept as the turn's artifacts. Off when unset.
    pub folder: Option<String>,
    /// A bigger file is named in a warning, not stored. Default 10 MiB.
    pub max_file_bytes: Option<u64>,
    /// What one turn (or one `session check`) stores at most. Default 50 MiB.
    pub max_turn_bytes: Option<u64>,
}

impl Artifacts {
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes.unwrap_or(10 * 1024 * 1024)
    }

    pub fn max_turn_bytes(&self) -> u64 {
        self.max_turn_bytes.unwrap_or(50 * 1024 * 1024)
    }
}

/// `[budget]`: each limit is off unless set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub turn_tokens: Option<u64>,
    pub session_tokens: Option<u64>,
    pub turn_usd: Option<f64>,
    pub session_usd: Option<f64>,
}

/// `[pricing.MODEL]`: US dollars per million tokens.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    /// Input tokens read from the provider's cache; priced as `input` when unset.
    #[serde(default)]
    pub cached_input: Option<f64>,
    pub output: f64,
}

impl Price {
    /// What `tokens` cost at these prices (cached input at its own price;
    /// reasoning is part of the output).
    pub fn of(&self, tokens: &crate::protocol::TokenUsage) -> f64 {
        let cached = tokens.cached_input_tokens.min(tokens.input_tokens);
        let fresh = tokens.input_tokens - cached;
        (fresh as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + tokens.output_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    pub command: String,
    #[serde(default)]
    pub when: When,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Files it writes that are kept as evidence: paths or globs relative
    /// to the workspace (`target/junit.xml`, `shots/*.png`, `**/*.tap`).
    #[serde(default)]
    pub artifacts: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// After every turn.
    #[default]
    Turn,
    /// Only on `cortex session check`.
    Manual,
}

fn default_timeout() -> u64 {
    600
}

/// The managed lifetime of a session when the repository sets none.
pub const DEFAULT_IDLE_LIMIT_SECS: u64 = 24 * 60 * 60;

impl RepoConfig {
    pub fn idle_limit(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_limit_secs.unwrap_or(DEFAULT_IDLE_LIMIT_SECS))
    }

    /// The workspace's config; none is an empty one.
    pub fn load(workdir: &Path) -> Result<RepoConfig> {
        let path = workdir.join(".cortex/config.toml");
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(RepoConfig::default()),
            Err(source) => return Err(Error::Io { context: format!("cannot read `{}`", path.display()), source }),
        };
        let config: RepoConfig = toml::from_str(&text)
            // The whole message: it names the line, the column and the key.
            .map_err(|error| Error::Config { path: path.clone(), detail: error.to_string().trim().to_string() })?;
        for check in &config.checks {
            let valid = !check.name.is_empty()
                && check.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !check.name.starts_with('.');
            if !valid {
                return Err(Error::Config {
                    path,
                    detail: format!("check name `{}` must be letters, digits, `-`, `_` or `.`", check.name),
                });
            }
        }
        for pattern in config.checks.iter().flat_map(|check| &check.artifacts) {
            super::artifacts::check_pattern(pattern)
                .map_err(|detail| Error::Config { path: path.clone(), detail: format!("artifacts: {detail}") })?;
        }
        if let Some(folder) = &config.artifacts.folder {
            super::artifacts::check_pattern(folder).map_err(|detail| Error::Config {
                path: path.clone(),
                detail: format!("[artifacts] folder: {detail}"),
            })?;
        }
        Ok(config)
    }
}
