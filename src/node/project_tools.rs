//! A project's own tools: `.cortex/tools.toml` in the repository, versioned
//! and reviewed with its code. Each `[[tool]]` is a dependency scoped to
//! that workspace (only its sessions' gateways list it), run by the node
//! that holds the workspace, like the registry's. A file Cortex cannot use
//! is reported as a failed tool naming the file and why, never half-read.
//!
//! A cloned repository is not trusted to run programs on the node: its
//! tools run only once a person trusted that very file (its SHA-256,
//! `cortex tool trust WORKSPACE`); until then, and again after any change,
//! the file is `blocked`, saying what it would run.
//!
//! ```toml
//! [[tool]]
//! name = "files"
//! command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "."]
//! env = ["GITHUB_TOKEN"]            # names of variables on the node
//! policies = { write_file = { policy = "needs_approval", risk = "high" } }
//!
//! [[tool]]
//! name = "jq"
//! binary = "jq"                     # a CLI the node must have, offered as jq.run
//! version = ">=1.6"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::protocol::{Dependency, Scope, Server, ToolPhase, ToolPolicy, ToolState, Workspace};

/// The most a tools file may hold.
const MAX_FILE: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    #[serde(default, rename = "tool")]
    tools: Vec<ProjectTool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectTool {
    name: String,
    /// The program and its arguments (run in the workspace).
    command: Option<Vec<String>>,
    /// A streamable-HTTP endpoint instead.
    url: Option<String>,
    /// Or a CLI program the node must have, with a semver requirement.
    binary: Option<String>,
    version: Option<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    policies: BTreeMap<String, ToolPolicy>,
}

/// The tools every workspace declares in a file `trusted` (workspace name
/// to SHA-256) names; a failed state for each file Cortex cannot use, a
/// blocked one for each no person trusted as it is.
pub fn load_all(workspaces: &[Workspace], trusted: &BTreeMap<String, String>) -> (Vec<Dependency>, Vec<ToolState>) {
    let mut tools = Vec::new();
    let mut problems = Vec::new();
    for workspace in workspaces {
        let state = |phase, reason, digest| ToolState {
            name: format!("project:{}", workspace.name),
            phase,
            reason: Some(reason),
            tools: Vec::new(),
            version: None,
            digest,
        };
        match load(workspace) {
            Ok((_, found)) if found.is_empty() => {}
            Ok((digest, found)) if trusted.get(&workspace.name) == Some(&digest) => tools.extend(found),
            Ok((digest, found)) => {
                let runs: Vec<String> = found.iter().map(|tool| format!("`{}`", tool.server.reach())).collect();
                let reason = format!(
                    "{}/.cortex/tools.toml (sha256 {}) is not trusted; it would run {}: read it, then `cortex tool trust {}`",
                    workspace.name,
                    &digest[..12],
                    runs.join(", "),
                    workspace.name
                );
                problems.push(state(ToolPhase::Blocked, reason, Some(digest)));
            }
            Err(reason) => problems.push(state(ToolPhase::Failed, reason, None)),
        }
    }
    (tools, problems)
}

/// The file's SHA-256 and its tools (none when there is no file).
fn load(workspace: &Workspace) -> Result<(String, Vec<Dependency>), String> {
    let path = Path::new(&workspace.path).join(".cortex/tools.toml");
    let shown = format!("{}/.cortex/tools.toml", workspace.name);
    let metadata = match std::fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((String::new(), Vec::new())),
        Err(error) => return Err(format!("{shown}: {error}")),
    };
    if !metadata.is_file() {
        return Err(format!("{shown}: not a regular file (a link is never followed)"));
    }
    if metadata.len() > MAX_FILE {
        return Err(format!("{shown}: larger than 1 MiB"));
    }
    let text = std::fs::read_to_string(&path).map_err(|error| format!("{shown}: {error}"))?;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    let file: ToolsFile = toml::from_str(&text).map_err(|error| format!("{shown}: {}", error.to_string().trim()))?;
    let mut tools = Vec::new();
    for tool in file.tools {
        if tool.version.is_some() && tool.binary.is_none() {
            return Err(format!("{shown}: tool `{}`: `version` goes with `binary`", tool.name));
        }
        let server = match (tool.command, tool.url, tool.binary) {
            (Some(command), None, None) => Server::Stdio { command },
            (None, Some(url), None) => Server::Http { url },
            (None, None, Some(program)) => Server::Binary { program, version: tool.version },
            _ => return Err(format!("{shown}: tool `{}` needs one of `command`, `url` or `binary`", tool.name)),
        };
        let dependency = Dependency {
            name: tool.name,
            server,
            scope: Scope::Workspace(workspace.name.clone()),
            secrets: tool.env,
            policies: tool.policies,
            scoped_policies: Vec::new(),
            plugin: None,
            enabled_in: None,
            cwd: Some(workspace.path.clone()),
            added_at: None,
        };
        dependency.check().map_err(|error| format!("{shown}: {error}"))?;
        tools.push(dependency);
    }
    Ok((digest, tools))
}
