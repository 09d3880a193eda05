//! `cortex tool …` and `cortex plugin …`: the Tool Registry and the Plugin
//! Registry in Core. A plugin is read from a directory (or a git URL,
//! cloned into a scratch folder), checked here so mistakes are named before
//! anything is sent, and checked by Core again before it installs it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Exit;
use super::backend::Ctx;
use super::client::Target;
use super::output::{note, print_json, printable};
use crate::protocol::{Dependency, Plugin, PluginPackage, Policy, Risk, Scope, Server, ToolStatus};

#[derive(Debug, Subcommand)]
pub(crate) enum ToolCommand {
    /// Register an MCP server Core's nodes should run (or reach) for agents,
    /// or a CLI binary they must have.
    ///
    /// Secrets are named, never given: `--env GITHUB_TOKEN` means the node
    /// must have GITHUB_TOKEN set; its value never leaves the node.
    #[command(after_help = "Examples:
  cortex tool add files --command 'npx -y @modelcontextprotocol/server-filesystem .'
  cortex tool add search --url https://mcp.example.com/mcp --scope node:build-box
  cortex tool add github --command 'github-mcp-server stdio' --env GITHUB_TOKEN --json
  cortex tool add git --binary git --version-req '>=2.30'")]
    Add {
        /// Its name: letters, digits, `-`, `_`, `.`.
        name: String,
        /// The program and its arguments, as one string (split on spaces; quote with '…').
        #[arg(long, conflicts_with_all = ["url", "binary"], required_unless_present_any = ["url", "binary"])]
        command: Option<String>,
        /// A streamable-HTTP MCP endpoint.
        #[arg(long, conflicts_with = "binary")]
        url: Option<String>,
        /// A CLI program each node must have (on PATH, or a path): checked
        /// and reported with its version, offered to agents as NAME.run.
        #[arg(long, value_name = "PROGRAM")]
        binary: Option<String>,
        /// The version `PROGRAM --version` must report, as a semver
        /// requirement (`>=2.30`, `^1.4`).
        #[arg(long, value_name = "REQ", requires = "binary")]
        version_req: Option<String>,
        /// all (default), node:NAME, workspace:NAME or session:ID.
        #[arg(long, default_value = "all")]
        scope: String,
        /// An environment variable the server needs on the node (repeatable).
        #[arg(long = "env", value_name = "VAR")]
        secrets: Vec<String>,
        /// Print the registered tool as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List registered tools.
    #[command(after_help = "Examples:
  cortex tool list
  cortex tool list --json | jq '.[].name'")]
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one tool.
    #[command(after_help = "Examples:
  cortex tool show files
  cortex tool show files --json")]
    Show {
        /// The tool's name.
        name: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// What each node actually runs: running (with its tools), or failed and why.
    #[command(after_help = "Examples:
  cortex tool status
  cortex tool status --json | jq '.[] | select(.phase != \"running\")'")]
    Status {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Set what agents may do with one tool of a server: allowed (the
    /// default), denied (listed as denied; a call is refused and recorded)
    /// or needs-approval (each call waits for a person, as an agent's
    /// approval does). With --scope, the rule holds only there, over the
    /// tool's own rules: the most specific wins (session, then workspace,
    /// then node).
    #[command(after_help = "Examples:
  cortex tool policy files write_file needs-approval --risk high
  cortex tool policy files move_file denied
  cortex tool policy everything '*' allowed --risk low
  cortex tool policy files write_file denied --scope workspace:prod")]
    Policy {
        /// The server's name, as registered.
        name: String,
        /// The tool's own name (as `cortex tool status --json` lists it), or `*` for every tool without a rule.
        tool: String,
        /// allowed, denied or needs-approval.
        policy: String,
        /// low (default), medium or high.
        #[arg(long, default_value = "low")]
        risk: String,
        /// Only on node:NAME, in workspace:NAME or for session:ID.
        #[arg(long)]
        scope: Option<String>,
        /// Print the tool, with its rules, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Trust a workspace's `.cortex/tools.toml` as its node last read it, so
    /// the node runs the programs it names. Read the file first: `cortex
    /// tool status` says what it would run. Any change to the file needs
    /// trust again.
    #[command(after_help = "Examples:
  cortex tool status          # project:api  on box  blocked: api/.cortex/tools.toml (sha256 …) is not trusted; it would run …
  cortex tool trust api")]
    Trust {
        /// The workspace's name.
        workspace: String,
        /// Print what was trusted as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tool added by hand (a plugin's go with the plugin).
    #[command(after_help = "Examples:
  cortex tool remove search")]
    Remove {
        /// The tool's name.
        name: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Install a plugin from a directory or a git URL (Agent Plugins 1.0).
    ///
    /// The package's `plugin.json` must follow the closed manifest schema
    /// (`$schema` and a lowercase `name` required, no other keys), its
    /// `mcp.json` the MCP schema, and each `skills/NAME/SKILL.md` have
    /// `name` and `description`. Anything wrong refuses the whole package,
    /// naming the field; nothing is installed.
    #[command(after_help = "Examples:
  cortex plugin add ./plugins/review-kit
  cortex plugin add https://github.com/acme/review-kit.git --json
  cortex plugin add ./plugins/review-kit --workspace api --workspace web")]
    Add {
        /// A plugin directory, or a git URL to clone.
        source: String,
        /// Enable it only in this workspace (repeatable); every workspace without one.
        #[arg(long = "workspace", value_name = "NAME")]
        workspaces: Vec<String>,
        /// Print the installed plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List installed plugins with their servers and skills.
    #[command(after_help = "Examples:
  cortex plugin list
  cortex plugin list --json")]
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Enable a plugin's servers and skills in a workspace (`*`: every one).
    #[command(after_help = "Examples:
  cortex plugin enable review-kit api
  cortex plugin enable review-kit '*'")]
    Enable {
        /// The plugin's name.
        name: String,
        /// A workspace's name, or `*` for every workspace.
        workspace: String,
        /// Print the plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop offering a plugin's servers and skills in a workspace (`*`: in
    /// every one). Its servers stop on nodes where no workspace wants them.
    #[command(after_help = "Examples:
  cortex plugin disable review-kit api
  cortex plugin disable review-kit '*'")]
    Disable {
        /// The plugin's name.
        name: String,
        /// A workspace's name, or `*` for every workspace.
        workspace: String,
        /// Print the plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a plugin and the servers it brought.
    #[command(after_help = "Examples:
  cortex plugin remove review-kit")]
    Remove {
        /// The plugin's name.
        name: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn tool(command: ToolCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "the tool registry")?;
    match command {
        ToolCommand::Add { name, command, url, binary, version_req, scope, secrets, json } => {
            let scope: Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let server = match (command, url, binary) {
                (Some(command), _, _) => Server::Stdio { command: split_command(&command)? },
                (None, Some(url), _) => Server::Http { url },
                (None, None, Some(program)) => Server::Binary { program, version: version_req },
                (None, None, None) => bail!("give --command, --url or --binary"),
            };
            let tool = Dependency {
                name,
                server,
                scope,
                secrets,
                policies: Default::default(),
                scoped_policies: Vec::new(),
                plugin: None,
                enabled_in: None,
                cwd: None,
                added_at: None,
            };
            tool.check().map_err(anyhow::Error::msg)?;
            let added: Dependency = client.post("/api/v1/tools", &tool)?;
            if json {
                print_json(&added)?;
            } else {
                note!("Registered tool {} for {}.", added.name, added.scope);
            }
        }
        ToolCommand::List { json } => {
            let tools: Vec<Dependency> = client.get("/api/v1/tools", &[])?;
            if json {
                print_json(&tools)?;
            } else if tools.is_empty() {
                note!("No tools registered. Add one with `cortex tool add NAME --command '…'`.");
            } else {
                let mut out = std::io::stdout().lock();
                for tool in &tools {
                    writeln!(out, "{}", printable(&tool_line(tool)))?;
                }
            }
        }
        ToolCommand::Show { name, json } => {
            let tool: Dependency = client.get(&format!("/api/v1/tools/{}", path_part(&name)), &[])?;
            if json {
                print_json(&tool)?;
            } else {
                writeln!(std::io::stdout().lock(), "{}", printable(&tool_line(&tool)))?;
            }
        }
        ToolCommand::Status { json } => status(&client, json)?,
        ToolCommand::Policy { name, tool, policy, risk, scope, json } => {
            let policy: Policy = policy.parse().map_err(anyhow::Error::msg)?;
            let risk: Risk = risk.parse().map_err(anyhow::Error::msg)?;
            let scope: Option<Scope> = scope.map(|scope| scope.parse()).transpose().map_err(anyhow::Error::msg)?;
            if scope == Some(Scope::All) {
                bail!("--scope all is every place the tool reaches: leave --scope out");
            }
            let body = serde_json::json!({"tool": tool, "policy": policy, "risk": risk, "scope": scope});
            let updated: Dependency = client.put(&format!("/api/v1/tools/{}/policy", path_part(&name)), &body)?;
            if json {
                print_json(&updated)?;
            } else {
                let place = scope.map(|scope| format!(" in {scope}")).unwrap_or_default();
                note!("{name}.{tool}: {policy} ({} risk){place}.", risk.as_str());
            }
        }
        ToolCommand::Trust { workspace, json } => {
            let trusted: serde_json::Value =
                client.post("/api/v1/tools/trust", &serde_json::json!({"workspace": workspace}))?;
            if json {
                print_json(&trusted)?;
            } else {
                let digest = trusted["digest"].as_str().unwrap_or_default();
                note!("Trusted {workspace}/.cortex/tools.toml (sha256 {digest}); its node runs its tools now.");
            }
        }
        ToolCommand::Remove { name, json } => {
            let removed: serde_json::Value = client.delete(&format!("/api/v1/tools/{}", path_part(&name)))?;
            if json {
                print_json(&removed)?;
            } else {
                note!("Removed tool {name}.");
            }
        }
    }
    Ok(Exit::Ok)
}

pub(crate) fn plugin(command: PluginCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "the plugin registry")?;
    match command {
        PluginCommand::Add { source, workspaces, json } => {
            let mut package = read_source(&source)?;
            package.enabled = (!workspaces.is_empty()).then_some(workspaces);
            // Named here first, so a mistake is said before Core is asked.
            package.check().map_err(anyhow::Error::msg)?;
            let plugin: Plugin = client.post("/api/v1/plugins", &package)?;
            if json {
                print_json(&plugin)?;
            } else {
                note!(
                    "Installed plugin {} ({} server(s), {} skill(s)).",
                    plugin.name,
                    plugin.servers.len(),
                    plugin.skills.len()
                );
            }
        }
        PluginCommand::List { json } => {
            let plugins: Vec<Plugin> = client.get("/api/v1/plugins", &[])?;
            if json {
                print_json(&plugins)?;
            } else if plugins.is_empty() {
                note!("No plugins installed. Add one with `cortex plugin add PATH`.");
            } else {
                let mut out = std::io::stdout().lock();
                for plugin in &plugins {
                    let servers: Vec<&str> = plugin.servers.iter().map(|server| server.name.as_str()).collect();
                    let skills: Vec<&str> = plugin.skills.iter().map(|skill| skill.name.as_str()).collect();
                    let line = format!(
                        "{} {}  servers: {}  skills: {}  enabled in: {}",
                        plugin.name,
                        plugin.version.as_deref().unwrap_or("-"),
                        if servers.is_empty() { "-".into() } else { servers.join(", ") },
                        if skills.is_empty() { "-".into() } else { skills.join(", ") },
                        enabled_text(plugin)
                    );
                    writeln!(out, "{}", printable(&line))?;
                }
            }
        }
        PluginCommand::Enable { name, workspace, json } => set_enabled(&client, &name, &workspace, true, json)?,
        PluginCommand::Disable { name, workspace, json } => set_enabled(&client, &name, &workspace, false, json)?,
        PluginCommand::Remove { name, json } => {
            let removed: serde_json::Value = client.delete(&format!("/api/v1/plugins/{}", path_part(&name)))?;
            if json {
                print_json(&removed)?;
            } else {
                note!("Removed plugin {name} and its servers.");
            }
        }
    }
    Ok(Exit::Ok)
}

/// `cortex tool status`: each node's report, one line per tool and node.
fn status(client: &super::client::Client, json: bool) -> anyhow::Result<()> {
    let statuses: Vec<ToolStatus> = client.get("/api/v1/tools/status", &[])?;
    if json {
        print_json(&statuses)?;
    } else if statuses.is_empty() {
        note!("No node has reported tools yet.");
    } else {
        let mut out = std::io::stdout().lock();
        for status in &statuses {
            let state = &status.state;
            let detail = match (&state.reason, &state.version, state.tools.len()) {
                (Some(reason), _, _) => format!("{}: {reason}", state.phase.as_str()),
                (None, Some(version), _) => format!("{} (version {version})", state.phase.as_str()),
                (None, None, count) => format!("{} ({count} tools)", state.phase.as_str()),
            };
            writeln!(out, "{}", printable(&format!("{}  on {}  {detail}", state.name, status.node_name)))?;
        }
    }
    Ok(())
}

/// `cortex plugin enable|disable NAME WORKSPACE`.
fn set_enabled(
    client: &super::client::Client,
    name: &str,
    workspace: &str,
    on: bool,
    json: bool,
) -> anyhow::Result<()> {
    crate::protocol::check_workspace_name(workspace).map_err(anyhow::Error::msg)?;
    let verb = if on { "enable" } else { "disable" };
    let path = format!("/api/v1/plugins/{}/{verb}", path_part(name));
    let plugin: Plugin = client.post(&path, &serde_json::json!({"workspace": workspace}))?;
    if json {
        print_json(&plugin)?;
    } else {
        note!("Plugin {name} {verb}d in {workspace}; enabled in: {}.", enabled_text(&plugin));
    }
    Ok(())
}

/// Where a plugin is enabled, in words.
fn enabled_text(plugin: &Plugin) -> String {
    match plugin.enabled.as_slice() {
        [] => "no workspace".into(),
        [every] if every == crate::protocol::EVERY_WORKSPACE => "every workspace".into(),
        list => list.join(", "),
    }
}

fn tool_line(tool: &Dependency) -> String {
    let how = match &tool.server {
        Server::Stdio { command } => format!("command: {}", command.join(" ")),
        Server::Http { url } => format!("url: {url}"),
        Server::Binary { .. } => format!("binary: {}", tool.server.reach()),
    };
    let secrets = if tool.secrets.is_empty() { String::new() } else { format!("  needs: {}", tool.secrets.join(", ")) };
    let from = tool.plugin.as_ref().map(|plugin| format!("  (plugin {plugin})")).unwrap_or_default();
    let rules: Vec<String> = tool
        .policies
        .iter()
        .map(|(name, rule)| format!("{name}: {} ({} risk)", rule.policy, rule.risk.as_str()))
        .collect();
    let rules: Vec<String> = rules
        .into_iter()
        .chain(tool.scoped_policies.iter().map(|scoped| {
            format!("{} in {}: {} ({} risk)", scoped.tool, scoped.scope, scoped.rule.policy, scoped.rule.risk.as_str())
        }))
        .collect();
    let rules = if rules.is_empty() { String::new() } else { format!("  rules: {}", rules.join(", ")) };
    format!("{}  {}  scope: {}{secrets}{from}{rules}", tool.name, how, tool.scope)
}

/// A name as one URL path segment.
fn path_part(name: &str) -> String {
    askama::filters::urlencode(name).map(|encoded| encoded.to_string()).unwrap_or_default()
}

/// `npx -y 'a b'` → `["npx", "-y", "a b"]`: spaces split, single or double
/// quotes keep a word whole.
fn split_command(command: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    if quote.is_some() {
        bail!("the command has an unclosed quote: {command}");
    }
    words.extend(word);
    if words.is_empty() {
        bail!("the command is empty");
    }
    Ok(words)
}

/// A plugin package from a directory, or from a git URL cloned (shallow)
/// into a scratch folder.
fn read_source(source: &str) -> anyhow::Result<PluginPackage> {
    let is_url = ["https://", "http://", "git@", "ssh://", "file://"].iter().any(|scheme| source.starts_with(scheme));
    if !is_url {
        return read_package(Path::new(source));
    }
    let scratch = tempfile::tempdir()?;
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1", "--", source])
        .arg(scratch.path().join("plugin"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .status()
        .context("cannot run git")?;
    if !status.success() {
        bail!("cannot clone {source}");
    }
    read_package(&scratch.path().join("plugin"))
}

/// The package's files as text, every one a regular file inside the
/// plugin's root (a symlink out of it is refused, never followed).
fn read_package(root: &Path) -> anyhow::Result<PluginPackage> {
    let root = root.canonicalize().with_context(|| format!("no plugin directory `{}`", root.display()))?;
    let read = |relative: &str| -> anyhow::Result<Option<String>> {
        let path = root.join(relative);
        let Ok(meta) = path.symlink_metadata() else { return Ok(None) };
        let real = path.canonicalize()?;
        if !real.starts_with(&root) {
            bail!("`{relative}` leads outside the plugin (a symlink?)");
        }
        if !meta.is_file() && !real.is_file() {
            bail!("`{relative}` is not a file");
        }
        if real.metadata()?.len() > 1024 * 1024 {
            bail!("`{relative}` is over 1 MiB");
        }
        Ok(Some(fs_err::read_to_string(&real)?))
    };
    let manifest = read("plugin.json")?
        .with_context(|| format!("`{}` has no plugin.json: not an Agent Plugins package", root.display()))?;
    let mcp = read("mcp.json")?;
    let mut skills = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("skills")) {
        let mut names: Vec<String> =
            entries.flatten().filter_map(|entry| entry.file_name().to_str().map(str::to_string)).collect();
        names.sort();
        for name in names {
            if let Some(text) = read(&format!("skills/{name}/SKILL.md"))? {
                skills.push((name, text));
            }
        }
    }
    Ok(PluginPackage { manifest, mcp, skills, enabled: None })
}

#[cfg(test)]
mod tests {
    use super::split_command;

    #[test]
    fn commands_split_on_spaces_and_keep_quoted_words() {
        assert_eq!(split_command("npx -y 'a b' \"c d\"").unwrap(), ["npx", "-y", "a b", "c d"]);
        assert!(split_command("npx 'open").unwrap_err().to_string().contains("unclosed quote"));
        assert!(split_command("   ").is_err());
    }
}
