//! `cortex node …`: the node daemon, and nodes as Core sees them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tokio::sync::watch;

use super::Exit;
use super::backend::Ctx;
use super::client::{Client, Target};
use super::output::{print_json, printable};
use crate::node::daemon::{self, DaemonConfig};
use crate::protocol::{Enrollment, NodeDetail, NodeSummary};

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run this machine's node daemon: it connects to Core and runs sessions.
    Run(RunArgs),
    /// Make a one-time token (valid one hour) for a new node to enroll with.
    #[command(after_help = "Examples:
  cortex node enroll --name build-box
  cortex node enroll --json")]
    Enroll {
        /// The name the new node will have (default: its host name).
        #[arg(long)]
        name: Option<String>,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List nodes with their status.
    #[command(after_help = "Examples:
  cortex node list
  cortex node list --json")]
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a node: capabilities, resources, workspaces, status history.
    #[command(after_help = "Examples:
  cortex node show build-box
  cortex node show nod_01m9… --json")]
    Show {
        /// The node's id or name.
        id: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a node: it is disconnected and cannot connect again.
    #[command(after_help = "Examples:
  cortex node revoke build-box
  cortex node revoke nod_01m9… --json")]
    Revoke {
        /// The node's id or name.
        id: String,
        /// Print the revoked node as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Run the node daemon.
///
/// The first run enrolls with a token from `cortex node enroll`; the node's
/// credential is then kept (mode 0600) in its data dir, and later runs need
/// no token. It reconnects by itself when Core goes away.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex node run --core http://core.example:7777 --token TOKEN   # the first run enrolls
  cortex node run --core http://core.example:7777 --allow-root /srv/repos")]
pub(crate) struct RunArgs {
    /// A one-time enrollment token (only for the first run).
    #[arg(long, env = "CORTEX_ENROLL_TOKEN")]
    token: Option<String>,
    /// This node's name (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Only allow workspaces under this folder (repeatable; default: anywhere).
    #[arg(long = "allow-root", value_name = "DIR")]
    allowed_roots: Vec<PathBuf>,
}

pub(crate) fn run(command: NodeCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    match command {
        NodeCommand::Run(args) => run_daemon(args, ctx),
        NodeCommand::Enroll { name, json } => {
            let client = Target::require(ctx, "node enroll")?;
            let enrollment: Enrollment = client.post("/api/v1/nodes/enroll", &serde_json::json!({ "name": name }))?;
            if json {
                print_json(&enrollment)?;
            } else {
                println!("{}", enrollment.token);
                eprintln!(
                    "On the new node's machine, run (before {}):\n  cortex node run --core {} --token {}",
                    enrollment.expires_at,
                    client.url(),
                    enrollment.token
                );
            }
            Ok(Exit::Ok)
        }
        NodeCommand::List { json } => {
            let client = Target::require(ctx, "node list")?;
            let nodes: Vec<NodeSummary> = client.get("/api/v1/nodes", &[])?;
            if json {
                print_json(&nodes)?;
                return Ok(Exit::Ok);
            }
            let mut out = std::io::stdout().lock();
            if nodes.is_empty() {
                writeln!(out, "No nodes yet. Enroll one with: cortex node enroll")?;
            }
            for node in nodes {
                let heartbeat = node.last_heartbeat.map(|at| at.to_string()).unwrap_or_else(|| "never".into());
                writeln!(out, "{}  {:<8} {:<20} last heartbeat {heartbeat}", node.id, node.status, node.name)?;
                for warning in &node.warnings {
                    writeln!(out, "    warning: {warning}")?;
                }
            }
            Ok(Exit::Ok)
        }
        NodeCommand::Show { id, json } => {
            let client = Target::require(ctx, "node show")?;
            let detail: NodeDetail = client.get(&format!("/api/v1/nodes/{}", checked(&id)?), &[])?;
            if json {
                print_json(&detail)?;
                return Ok(Exit::Ok);
            }
            let node = &detail.node;
            let mut out = std::io::stdout().lock();
            writeln!(out, "node      {}\nname      {}\nstatus    {}", node.id, node.name, node.status)?;
            if let Some(caps) = &node.capabilities {
                writeln!(out, "cortex    {} (protocol {})", caps.cortex_version, caps.protocol_version)?;
                writeln!(
                    out,
                    "system    {} {}, {} CPU(s), {} MiB",
                    caps.os,
                    caps.arch,
                    caps.cpus,
                    caps.memory_bytes >> 20
                )?;
                for provider in &caps.providers {
                    let version = provider.version.as_deref().unwrap_or("?");
                    writeln!(out, "provider  {} {version} ({})", provider.name, provider.features.join(", "))?;
                }
            }
            if let Some(resources) = &node.resources {
                writeln!(out, "load      {:.2}, {} MiB free", resources.load1, resources.free_memory_bytes >> 20)?;
            }
            for warning in &node.warnings {
                writeln!(out, "warning   {warning}")?;
            }
            for workspace in &detail.workspaces {
                writeln!(out, "workspace {} {}", workspace.id, printable(&workspace.path))?;
            }
            for event in &detail.events {
                writeln!(out, "event     {} {} ({})", event.at, event.kind, printable(&event.detail))?;
            }
            Ok(Exit::Ok)
        }
        NodeCommand::Revoke { id, json } => {
            let client = Target::require(ctx, "node revoke")?;
            let node: NodeSummary =
                client.post(&format!("/api/v1/nodes/{}/revoke", checked(&id)?), &serde_json::json!({}))?;
            if json {
                print_json(&node)?;
            }
            crate::cli::output::note!("Node {} ({}) is revoked and disconnected.", node.name, node.id);
            Ok(Exit::Ok)
        }
    }
}

/// Node ids and names travel in URL paths: keep them to safe characters.
fn checked(id: &str) -> anyhow::Result<&str> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        anyhow::bail!("no node `{id}` (`cortex node list` shows them)");
    }
    Ok(id)
}

/// The id of the node `id_or_name` names.
pub(crate) fn resolve_node(client: &Client, id_or_name: &str) -> anyhow::Result<String> {
    let detail: NodeDetail = client.get(&format!("/api/v1/nodes/{}", checked(id_or_name)?), &[])?;
    Ok(detail.node.id.to_string())
}

fn run_daemon(args: RunArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let core_url = match &ctx.core {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => anyhow::bail!("pass Core's address: cortex node run --core http://HOST:PORT (or set CORTEX_CORE)"),
    };
    let config = DaemonConfig {
        core_url: core_url.clone(),
        enroll_token: args.token,
        data_dir: ctx.data.clone(),
        name: args.name,
        allowed_roots: args.allowed_roots,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (stop, stopped) = watch::channel(false);
        let daemon = tokio::spawn(daemon::run(config, stopped));
        crate::cli::output::note!(
            "Node daemon for {core_url} running; data in {}. Stop with Ctrl-C.",
            ctx.data.display()
        );
        tokio::select! {
            result = daemon => {
                result.context("the node daemon failed")??;
            }
            _ = super::up::shutdown_signal() => {
                let _ = stop.send(true);
            }
        }
        Ok(Exit::Ok)
    })
}
