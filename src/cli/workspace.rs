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
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Forget a workspace in Core (its files and session refs stay on the node).
    Unbind {
        /// The workspace id.
        id: String,
    },
}

pub(crate) fn run(command: WorkspaceCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(&ctx.data, ctx.core.as_deref(), "workspace commands")?;
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
        WorkspaceCommand::Unbind { id } => {
            let workspace_id = id.parse().map_err(|error: String| anyhow::anyhow!(error))?;
            let workspaces: Vec<Workspace> = client.get("/api/v1/workspaces", &[])?;
            let node = workspaces
                .iter()
                .find(|workspace| workspace.id == workspace_id)
                .map(|workspace| workspace.node.clone());
            let Some(node) = node else {
                anyhow::bail!("no workspace `{id}` (`cortex workspace list` shows them)");
            };
            client.command(CommandKind::UnbindWorkspace { workspace_id }, Some(node))?;
            crate::cli::output::note!("Unbound {id}; its files and session refs are untouched.");
        }
    }
    Ok(Exit::Ok)
}
