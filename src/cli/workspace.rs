//! `cortex workspace …`: repositories bound to nodes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::Exit;
use super::backend::Ctx;
use super::client::Target;
use super::output::print_json;
use crate::protocol::{CommandKind, Workspace};

#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// Bind a git repository as a workspace on a node (the node checks it).
    #[command(after_help = "Examples:
  cortex workspace bind                   # the repository you are in
  cortex workspace bind /srv/repos/app --node build-box --json")]
    Bind {
        /// The repository (default: the current directory). A path on the node's machine.
        path: Option<PathBuf>,
        /// The node to bind on (id or name; default: the only node online).
        #[arg(long)]
        node: Option<String>,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List workspaces and the nodes they are on.
    #[command(after_help = "Examples:
  cortex workspace list
  cortex workspace list --json")]
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Forget a workspace in Core (its files and session refs stay on the node).
    #[command(after_help = "Examples:
  cortex workspace unbind repo1            # by name, when one workspace has it
  cortex workspace unbind wsp_01m9… --json")]
    Unbind {
        /// The workspace: its id, its name, or its path.
        id: String,
        /// Print the unbound workspace as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: WorkspaceCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "workspace commands")?;
    match command {
        WorkspaceCommand::Bind { path, node, json } => {
            let path = match path {
                Some(path) => path,
                None => std::env::current_dir().context("cannot read the current directory")?,
            };
            let path = std::path::absolute(&path).context("cannot make the path absolute")?;
            let node = node.map(|node| super::node::resolve_node(&client, &node)).transpose()?;
            let bound =
                client.command(CommandKind::BindWorkspace { path: path.display().to_string(), name: None }, node)?;
            let workspace: Workspace = serde_json::from_value(bound).context("malformed workspace from Core")?;
            if json {
                print_json(&workspace)?;
            } else {
                println!("{}", workspace.id);
                crate::cli::output::note!("Bound {} on node {}.", workspace.path, workspace.node);
            }
        }
        WorkspaceCommand::List { json } => {
            let workspaces: Vec<Workspace> = client.get("/api/v1/workspaces", &[])?;
            if json {
                print_json(&workspaces)?;
                return Ok(Exit::Ok);
            }
            let mut out = std::io::stdout().lock();
            for workspace in workspaces {
                writeln!(out, "{}  {:<30} {}", workspace.id, workspace.node, workspace.path)?;
            }
        }
        WorkspaceCommand::Unbind { id, json } => {
            let workspaces: Vec<Workspace> = client.get("/api/v1/workspaces", &[])?;
            let workspace = named_workspace(&workspaces, &id)?.clone();
            client.command(
                CommandKind::UnbindWorkspace { workspace_id: workspace.id.clone() },
                Some(workspace.node.clone()),
            )?;
            if json {
                print_json(&workspace)?;
            }
            crate::cli::output::note!(
                "Unbound {} ({}); its files and session refs are untouched.",
                workspace.name,
                workspace.id
            );
        }
    }
    Ok(Exit::Ok)
}

/// The one workspace `wanted` names: its id, else its name or its path
/// when exactly one workspace has it.
fn named_workspace<'a>(workspaces: &'a [Workspace], wanted: &str) -> anyhow::Result<&'a Workspace> {
    if let Some(exact) = workspaces.iter().find(|workspace| workspace.id.as_str() == wanted) {
        return Ok(exact);
    }
    let named: Vec<&Workspace> = workspaces
        .iter()
        .filter(|workspace| {
            let canonical = std::fs::canonicalize(wanted).ok();
            workspace.name == wanted
                || workspace.path == wanted.trim_end_matches('/')
                || canonical.is_some_and(|path| std::path::Path::new(&workspace.path) == path)
        })
        .collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => anyhow::bail!("no workspace `{wanted}` (`cortex workspace list` shows their ids, names and paths)"),
        many => anyhow::bail!(
            "{} workspaces are called `{wanted}`: name one by its id ({})",
            many.len(),
            many.iter().map(|workspace| workspace.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}
