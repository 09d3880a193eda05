//! The Tool Registry and the Plugin Registry as they cross boundaries:
//! a dependency (an MCP server, by stdio command or streamable-HTTP URL)
//! with its scope and the names of the secrets it needs on a node, never
//! their values; and plugins in the Agent Plugins 1.0 layout (`plugin.json`,
//! `mcp.json`, `skills/<name>/SKILL.md`), checked against the spec's closed
//! schemas so a bad package is refused, naming the field, before anything
//! is installed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a dependency applies.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every node.
    #[default]
    All,
    Node(String),
    Workspace(String),
    Session(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Node(name) => write!(f, "node:{name}"),
            Scope::Workspace(name) => write!(f, "workspace:{name}"),
            Scope::Session(id) => write!(f, "session:{id}"),
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Scope, String> {
        let named = |kind: &str, name: &str| {
            let valid = !name.is_empty()
                && name.len() <= 100
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if valid { Ok(name.to_string()) } else { Err(format!("`{name}` is not a {kind} name")) }
        };
        match text.split_once(':') {
            None if text == "all" => Ok(Scope::All),
            Some(("node", name)) => Ok(Scope::Node(named("node", name)?)),
            Some(("workspace", name)) => Ok(Scope::Workspace(named("workspace", name)?)),
            Some(("session", id)) => Ok(Scope::Session(named("session", id)?)),
            _ => Err(format!("scope `{text}` is not `all`, `node:NAME`, `workspace:NAME` or `session:ID`")),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scope, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// How a node reaches an MCP server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Server {
    /// A process the node starts: the program and its arguments.
    Stdio { command: Vec<String> },
    /// A streamable-HTTP endpoint.
    Http { url: String },
    /// A program on the node, with a semver requirement its `--version`
    /// must meet; the gateway offers it as the tool `run` (arguments, no
    /// shell, in the session's workspace).
    Binary {
        program: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
}

impl Server {
    /// How a node reaches it, in words.
    pub fn transport(&self) -> &'static str {
        match self {
            Server::Stdio { .. } => "stdio",
            Server::Http { .. } => "streamable HTTP",
            Server::Binary { .. } => "CLI binary",
        }
    }

    /// What a node runs or reaches: the command, the URL, or the program
    /// with its version requirement.
    pub fn reach(&self) -> String {
        match self {
            Server::Stdio { command } => command.join(" "),
            Server::Http { url } => url.clone(),
            Server::Binary { program, version: Some(version) } => format!("{program} {version}"),
            Server::Binary { program, version: None } => program.clone(),
        }
    }
}

/// A dependency in the Tool Registry: an MCP server, where it applies, and
/// the environment variables it needs on the node (references only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    pub server: Server,
    pub scope: Scope,
    /// Variables the node must have set; their values never leave it.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The rule per tool of this server, by the tool's own name; `*` for
    /// every tool without one. A tool with no rule is allowed, low risk.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, super::ToolPolicy>,
    /// Rules that hold only on a node, in a workspace or for a session,
    /// over `policies` where they hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scoped_policies: Vec<super::ScopedPolicy>,
    /// The plugin that contributed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The workspaces its plugin is enabled in (`*`: every one), filled in
    /// by Core from the plugin; none for a tool added by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_in: Option<Vec<String>>,
    /// Where a project's own server runs (its workspace), set by the node
    /// that read `.cortex/tools.toml`; never sent or taken over the wire.
    #[serde(skip)]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<jiff::Timestamp>,
}

impl Dependency {
    /// The rule for `tool`: its own, else the server's `*`, else allowed.
    pub fn policy_for(&self, tool: &str) -> super::ToolPolicy {
        self.policies.get(tool).or_else(|| self.policies.get("*")).copied().unwrap_or_default()
    }

    /// The rule for `tool` at `place`: the most specific scoped rule that
    /// holds there (session, then workspace, then node; the tool's own
    /// before that scope's `*`), else [`Dependency::policy_for`].
    pub fn policy_at(&self, tool: &str, place: &super::CallPlace<'_>) -> super::ToolPolicy {
        let holding = |rule: &&super::ScopedPolicy| place.rank(&rule.scope).map(|rank| (rank, rule.tool != tool));
        self.scoped_policies
            .iter()
            .filter(|rule| rule.tool == tool || rule.tool == "*")
            .filter_map(|rule| holding(&rule).map(|key| (key, rule.rule)))
            .min_by_key(|(key, _)| *key)
            .map_or_else(|| self.policy_for(tool), |(_, rule)| rule)
    }

    /// Whether every tool of this server is denied everywhere (`*` and
    /// every rule of its own, scoped ones too): nothing it offers could be
    /// called, so no node runs it.
    pub fn all_denied(&self) -> bool {
        let denied = |rule: &super::ToolPolicy| rule.policy == super::Policy::Denied;
        self.policies.get("*").is_some_and(denied)
            && self.policies.values().all(denied)
            && self.scoped_policies.iter().all(|scoped| denied(&scoped.rule))
    }

    /// Whether its plugin (if any) is enabled for a session of `workspace`.
    pub fn enabled_for(&self, workspace: Option<&str>) -> bool {
        self.enabled_in.as_ref().is_none_or(|list| enabled_in(list, workspace))
    }

    /// Why a session at `place` is not offered this tool (out of its scope,
    /// or its plugin not enabled in the session's workspace); `None`: it is.
    pub fn unavailable_at(&self, place: &super::CallPlace<'_>) -> Option<String> {
        let node = place.node_name.or(place.node_id).unwrap_or("an unknown node");
        let workspace = place.workspace.unwrap_or("not bound");
        let out_of_scope = match &self.scope {
            Scope::All => None,
            scope if place.rank(scope).is_some() => None,
            Scope::Node(name) => Some(format!("scoped to node {name}; this session runs on {node}")),
            Scope::Workspace(name) => {
                Some(format!("scoped to workspace {name}; this session's workspace is {workspace}"))
            }
            Scope::Session(id) => Some(format!("scoped to session {id}")),
        };
        if out_of_scope.is_some() {
            return out_of_scope;
        }
        let plugin = self.plugin.as_deref().filter(|_| !self.enabled_for(place.workspace))?;
        let here = place.workspace.unwrap_or("this session's");
        Some(format!("plugin {plugin} is not enabled in workspace {here} (`cortex plugin enable {plugin} {here}`)"))
    }

    /// Whether `other` runs the same server (policies aside): a changed
    /// rule never restarts it.
    pub fn same_server(&self, other: &Dependency) -> bool {
        self.name == other.name && self.server == other.server && self.secrets == other.secrets && self.cwd == other.cwd
    }

    /// Every field checked: a name of letters, digits, `-`, `_`, `.`; a
    /// command with a program; an http(s) URL; secrets named as variables,
    /// never given as values.
    pub fn check(&self) -> Result<(), String> {
        check_name("tool", &self.name)?;
        match &self.server {
            Server::Stdio { command } if command.first().is_none_or(|program| program.trim().is_empty()) => {
                return Err(format!("tool `{}`: the command is empty", self.name));
            }
            Server::Http { url } if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(format!("tool `{}`: `{url}` is not an http(s) URL", self.name));
            }
            Server::Binary { program, .. }
                if program.trim().is_empty() || program.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                return Err(format!("tool `{}`: `{program}` is not a program's name or path", self.name));
            }
            Server::Binary { version: Some(version), .. } => {
                if let Err(error) = semver::VersionReq::parse(version) {
                    return Err(format!(
                        "tool `{}`: `{version}` is not a version requirement ({error}); e.g. `>=2.30`",
                        self.name
                    ));
                }
            }
            _ => {}
        }
        for secret in &self.secrets {
            if secret.contains('=') {
                return Err(format!(
                    "`{}`: give the name of an environment variable on the node (`--env GITHUB_TOKEN`), never its value",
                    secret.split('=').next().unwrap_or_default()
                ));
            }
            let valid = secret.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`{secret}` is not an environment variable name"));
            }
        }
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if valid { Ok(()) } else { Err(format!("{what} name `{name}` must be letters, digits, `-`, `_` or `.`")) }
}

/// Where a dependency stands on a node, as the node found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolPhase {
    Configured,
    Starting,
    Running,
    Degraded,
    Failed,
    Blocked,
}

impl ToolPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::Blocked => "blocked",
        }
    }
}

/// A tool an MCP server exposes: its name, what it says it does, its
/// input schema and the schema's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    /// SHA-256 of the schema's JSON, hex.
    pub schema_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The input schema, when its JSON is at most [`MAX_SCHEMA`] bytes
    /// (the hash always names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
}

/// The largest input schema a node reports in full.
pub const MAX_SCHEMA: usize = 16 * 1024;

/// A dependency as a node reports it: what is actually there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolState {
    pub name: String,
    pub phase: ToolPhase,
    /// Why it is not running: `missing secret NAME`, `missing binary X`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub tools: Vec<ToolInfo>,
    /// A CLI binary's version, as its `--version` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The SHA-256 of a project's `.cortex/tools.toml` waiting for a
    /// person's trust (`cortex tool trust WORKSPACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A node's report on one dependency, as Core answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolStatus {
    pub node: String,
    pub node_name: String,
    #[serde(flatten)]
    pub state: ToolState,
}

/// The identifiers `$schema` may take for Agent Plugins 1.0.0 (the spec's
/// text and its schema files name different hosts).
const PLUGIN_SCHEMAS: [&str; 2] = [
    "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json",
    "https://open-plugins.com/schemas/1.0.0/plugin.schema.json",
];
const MCP_SCHEMAS: [&str; 2] = [
    "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json",
    "https://open-plugins.com/schemas/1.0.0/mcp.schema.json",
];

/// `plugin.json`: the closed manifest schema of Agent Plugins 1.0.0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<BTreeMap<String, serde_json::Map<String, serde_json::Value>>>,
    #[serde(default, rename = "displayName", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `mcp.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct McpFile {
    #[serde(rename = "$schema")]
    schema: String,
    #[serde(rename = "mcpServers")]
    servers: BTreeMap<String, McpServer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum McpServer {
    #[serde(rename = "stdio")]
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        cwd: Option<String>,
    },
    #[serde(rename = "streamable-http")]
    StreamableHttp {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    #[serde(rename = "sse")]
    Sse {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
}

/// A skill a plugin brings: `skills/<name>/SKILL.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skill {
    pub name: String,
    pub description: String,
}

/// A plugin package as a client sends it to Core: the files' text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginPackage {
    /// `plugin.json`.
    pub manifest: String,
    /// `mcp.json`, when the package has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<String>,
    /// Each `skills/<dir>/SKILL.md`: the directory's name and the file.
    #[serde(default)]
    pub skills: Vec<(String, String)>,
    /// The workspaces to enable it in; every one (`*`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Vec<String>>,
}

/// Every workspace, as a plugin's `enabled` list says it.
pub const EVERY_WORKSPACE: &str = "*";

/// Whether a plugin's `enabled` list holds for a session of `workspace`.
pub fn enabled_in(list: &[String], workspace: Option<&str>) -> bool {
    list.iter().any(|name| name == EVERY_WORKSPACE || Some(name.as_str()) == workspace)
}

fn everywhere() -> Vec<String> {
    vec![EVERY_WORKSPACE.to_string()]
}

/// `*`, or a workspace's name.
pub fn check_workspace_name(name: &str) -> Result<(), String> {
    if name == EVERY_WORKSPACE { Ok(()) } else { check_name("workspace", name) }
}

/// A plugin in the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plugin {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MCP servers it contributes, as dependencies (scope: every node).
    pub servers: Vec<Dependency>,
    pub skills: Vec<Skill>,
    /// The workspaces its servers and skills are offered in (`*`: every
    /// one; empty: none).
    #[serde(default = "everywhere")]
    pub enabled: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<jiff::Timestamp>,
}

impl PluginPackage {
    /// The plugin this package installs, every file checked first: a
    /// manifest outside the closed schema, an unknown `$schema`, a name
    /// that is not lowercase, a bad `mcp.json` or a skill without its
    /// `name` and `description` refuses the whole package, naming the field.
    pub fn check(&self) -> Result<Plugin, String> {
        let manifest: Manifest =
            serde_json::from_str(&self.manifest).map_err(|error| format!("plugin.json: {}", field_error(&error)))?;
        if !PLUGIN_SCHEMAS.contains(&manifest.schema.as_str()) {
            return Err(format!(
                "plugin.json: `$schema` `{}` is not Agent Plugins 1.0.0 (`{}`)",
                manifest.schema, PLUGIN_SCHEMAS[0]
            ));
        }
        check_plugin_name(&manifest.name)?;
        let servers = match &self.mcp {
            Some(text) => mcp_servers(&manifest.name, text)?,
            None => Vec::new(),
        };
        let mut skills = Vec::new();
        for (directory, text) in &self.skills {
            skills.push(skill(directory, text)?);
        }
        Ok(Plugin {
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            servers,
            skills,
            enabled: match &self.enabled {
                Some(list) => {
                    for name in list {
                        check_workspace_name(name)?;
                    }
                    list.clone()
                }
                None => everywhere(),
            },
            added_at: None,
        })
    }
}

/// serde's message, which names the field (`unknown field `hooks``,
/// `missing field `name``), with its place.
fn field_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    message.split(" at line ").next().unwrap_or(&message).to_string()
}

/// §5.5: 1–64 of `a-z 0-9 - .`, alphanumeric at both ends, no `--` or `..`.
fn check_plugin_name(name: &str) -> Result<(), String> {
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && alphanumeric(name.chars().next())
        && alphanumeric(name.chars().last())
        && !name.contains("--")
        && !name.contains("..");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "plugin.json: `name` `{name}` must be 1-64 lowercase letters, digits, `-` or `.`, alphanumeric at both ends, without `--` or `..`"
        ))
    }
}

fn mcp_servers(plugin: &str, text: &str) -> Result<Vec<Dependency>, String> {
    let file: McpFile = serde_json::from_str(text).map_err(|error| format!("mcp.json: {}", field_error(&error)))?;
    if !MCP_SCHEMAS.contains(&file.schema.as_str()) {
        return Err(format!("mcp.json: `$schema` `{}` is not Agent Plugins 1.0.0 (`{}`)", file.schema, MCP_SCHEMAS[0]));
    }
    let mut servers = Vec::new();
    for (name, server) in file.servers {
        let server = match server {
            McpServer::Stdio { command, args, env: _, cwd } => {
                if command.starts_with("../") || command.contains("/../") || command.starts_with('/') {
                    return Err(format!("mcp.json: server `{name}`: `command` `{command}` leaves the plugin"));
                }
                if let Some(cwd) = cwd.filter(|cwd| !(cwd.starts_with("./") || cwd.starts_with("${PLUGIN_"))) {
                    return Err(format!("mcp.json: server `{name}`: `cwd` `{cwd}` must start with `./`"));
                }
                Server::Stdio { command: std::iter::once(command).chain(args).collect() }
            }
            McpServer::StreamableHttp { url, .. } => Server::Http { url },
            McpServer::Sse { .. } => {
                return Err(format!(
                    "mcp.json: server `{name}` uses the legacy `sse` transport, which Cortex does not run"
                ));
            }
        };
        let dependency = Dependency {
            name: format!("{plugin}.{name}"),
            server,
            scope: Scope::All,
            secrets: Vec::new(),
            policies: BTreeMap::new(),
            scoped_policies: Vec::new(),
            plugin: Some(plugin.to_string()),
            enabled_in: None,
            cwd: None,
            added_at: None,
        };
        dependency.check().map_err(|error| format!("mcp.json: {error}"))?;
        servers.push(dependency);
    }
    Ok(servers)
}

/// A `SKILL.md`'s front matter: `name` (its directory's) and `description`.
fn skill(directory: &str, text: &str) -> Result<Skill, String> {
    let place = format!("skills/{directory}/SKILL.md");
    let front = text
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---"))
        .map(|(front, _)| front)
        .ok_or_else(|| format!("{place}: no front matter (`---` lines with `name` and `description`)"))?;
    let field = |key: &str| {
        front.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?.trim();
            Some(value.trim_matches(|c| c == '"' || c == '\'').to_string())
        })
    };
    let name = field("name").ok_or_else(|| format!("{place}: `name` is missing"))?;
    if name != directory {
        return Err(format!("{place}: `name` `{name}` is not its directory's name `{directory}`"));
    }
    let description = field("description")
        .filter(|description| !description.is_empty())
        .ok_or_else(|| format!("{place}: `description` is missing"))?;
    Ok(Skill { name, description })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(manifest: &str) -> PluginPackage {
        PluginPackage { manifest: manifest.into(), mcp: None, skills: Vec::new(), enabled: None }
    }

    const SCHEMA: &str = "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json";

    #[test]
    fn a_manifest_outside_the_closed_schema_is_refused_naming_the_field() {
        let bad = [
            (r#"{"name": "a"}"#.to_string(), "missing field `$schema`"),
            (format!(r#"{{"$schema": "{SCHEMA}"}}"#), "missing field `name`"),
            (format!(r#"{{"$schema": "{SCHEMA}", "name": "a", "hooks": {{}}}}"#), "unknown field `hooks`"),
            (format!(r#"{{"$schema": "{SCHEMA}", "name": "My-Plugin"}}"#), "`name` `My-Plugin` must be"),
            (format!(r#"{{"$schema": "{SCHEMA}", "name": "has--double"}}"#), "`name` `has--double`"),
            (
                format!(r#"{{"$schema": "{SCHEMA}", "name": "a", "author": {{"twitter": "x"}}}}"#),
                "unknown field `twitter`",
            ),
            (format!(r#"{{"$schema": "{SCHEMA}", "name": "a", "keywords": "x"}}"#), "invalid type"),
            (r#"{"$schema": "https://example.com/2.0", "name": "a"}"#.to_string(), "is not Agent Plugins 1.0.0"),
        ];
        for (manifest, expected) in bad {
            let error = package(&manifest).check().unwrap_err();
            assert!(error.contains(expected), "{manifest}: {error}");
            assert!(error.starts_with("plugin.json: "), "{error}");
        }
        let good = package(&format!(r#"{{"$schema": "{SCHEMA}", "name": "acme.tools", "version": "1.0.0"}}"#));
        assert_eq!(good.check().unwrap().name, "acme.tools");
    }

    #[test]
    fn servers_and_skills_are_checked_too() {
        let manifest = format!(r#"{{"$schema": "{SCHEMA}", "name": "p"}}"#);
        let mcp = |servers: &str| {
            format!(
                r#"{{"$schema": "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json", "mcpServers": {servers}}}"#
            )
        };
        let mut plugin = package(&manifest);
        plugin.mcp = Some(mcp(
            r#"{"fs": {"type": "stdio", "command": "npx", "args": ["-y", "srv"]}, "web": {"type": "streamable-http", "url": "http://127.0.0.1:9/mcp"}}"#,
        ));
        plugin.skills = vec![("review".into(), "---\nname: review\ndescription: Reviews a diff\n---\nBody\n".into())];
        let checked = plugin.check().unwrap();
        let names: Vec<&str> = checked.servers.iter().map(|server| server.name.as_str()).collect();
        assert_eq!(names, ["p.fs", "p.web"]);
        assert_eq!(checked.servers[0].server, Server::Stdio { command: vec!["npx".into(), "-y".into(), "srv".into()] });
        assert_eq!(checked.skills, [Skill { name: "review".into(), description: "Reviews a diff".into() }]);

        for (servers, expected) in [
            (r#"{"x": {"type": "stdio", "command": "../up"}}"#, "leaves the plugin"),
            (r#"{"x": {"type": "stdio", "command": "a", "shell": true}}"#, "unknown field `shell`"),
            (r#"{"x": {"type": "ftp", "url": "x"}}"#, "unknown variant `ftp`"),
            (r#"{"x": {"type": "stdio", "command": "a", "cwd": "data"}}"#, "`cwd` `data` must start with `./`"),
        ] {
            plugin.mcp = Some(mcp(servers));
            let error = plugin.check().unwrap_err();
            assert!(error.contains(expected) && error.starts_with("mcp.json: "), "{servers}: {error}");
        }
        plugin.mcp = None;
        plugin.skills = vec![("review".into(), "---\nname: other\ndescription: d\n---\n".into())];
        assert!(plugin.check().unwrap_err().contains("is not its directory's name"));
    }

    #[test]
    fn scopes_and_secret_references_are_parsed_and_checked() {
        assert_eq!("all".parse::<Scope>(), Ok(Scope::All));
        assert_eq!("node:gpu-1".parse::<Scope>(), Ok(Scope::Node("gpu-1".into())));
        assert!("planet:x".parse::<Scope>().unwrap_err().contains("is not `all`"));
        assert!("node:../x".parse::<Scope>().is_err());
        let mut dependency = Dependency {
            name: "fs".into(),
            server: Server::Stdio { command: vec!["npx".into()] },
            scope: Scope::All,
            secrets: vec!["GITHUB_TOKEN=ghp_x".into()],
            policies: BTreeMap::new(),
            scoped_policies: Vec::new(),
            plugin: None,
            enabled_in: None,
            cwd: None,
            added_at: None,
        };
        assert!(dependency.check().unwrap_err().contains("never its value"));
        dependency.secrets = vec!["GITHUB_TOKEN".into()];
        assert!(dependency.check().is_ok());
        dependency.server = Server::Http { url: "file:///etc/passwd".into() };
        assert!(dependency.check().unwrap_err().contains("not an http(s) URL"));
    }
}
