//! The command line: clap types and one file per subcommand, each with its
//! `Args` and `run()`. The only module that prints.

mod backend;
mod client;
mod core;
mod gc;
mod index;
mod local;
mod node;
mod output;
mod panel;
mod refs;
mod session;
mod term;
mod up;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use client::Unreachable;

/// Cortex runs AI coding agents as durable sessions and keeps every trace of
/// their work as git objects under `refs/cortex/*` in your repository.
#[derive(Debug, Parser)]
#[command(name = "cortex", version, propagate_version = true)]
#[command(after_help = "Start here:
  cortex up                                  Core, web page and a local node in one process
  cortex session start \"fix the flaky test\"   run an agent session in this repository
  cortex session list                        see every session and its state
  cortex session diff <ID>                   review what a session changed

Exit codes: 0 done; 1 ran, and the answer is no (the agent failed, nothing found);
2 error (bad input, unknown id); 3 the configured Core could not be reached.")]
pub struct Cli {
    /// Where Cortex keeps its data: index, workspace bindings, Core's tokens.
    #[arg(long, global = true, env = "CORTEX_HOME", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Core's URL. Without it, a Core started by `cortex up` on this data dir
    /// is used when running, and commands that can finish alone run in-process.
    #[arg(long, global = true, env = "CORTEX_CORE", value_name = "URL")]
    core: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Core, its web page and a local node in one process: start here.
    Up(up::UpArgs),
    /// Run Core alone: the control plane nodes connect to.
    Core(core::CoreArgs),
    /// Start, continue, follow and inspect agent sessions.
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Run a node daemon, and enroll, list or revoke nodes.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Bind repositories as workspaces on nodes.
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCommand),
    /// Maintain the SQLite index (a cache of the session refs).
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Share session refs with a git remote (opt-in; nothing is pushed otherwise).
    #[command(subcommand)]
    Refs(refs::RefsCommand),
    /// Remove worktrees of finished `--worktree` sessions (their state is kept).
    Gc(gc::GcArgs),
    /// The web panel: fresh login links.
    #[command(subcommand)]
    Panel(panel::PanelCommand),
    /// A shell in a workspace on its node, through Core (Ctrl-] detaches).
    Term(term::TermArgs),
}

/// Exit codes, as documented in `--help` and docs/cli.md.
pub(crate) enum Exit {
    Ok,
    /// The command ran and the answer is no: the agent's turn failed.
    No,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        match exit {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::No => ExitCode::from(1),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = backend::Ctx { data: local::data_dir(cli.data)?, core: cli.core };
    let exit = match cli.command {
        Command::Up(args) => up::run(args, &ctx)?,
        Command::Core(args) => core::run(args, &ctx)?,
        Command::Session(command) => session::run(command, &ctx)?,
        Command::Node(command) => node::run(command, &ctx)?,
        Command::Workspace(command) => workspace::run(command, &ctx)?,
        Command::Index(command) => index::run(command, &ctx)?,
        Command::Refs(command) => refs::run(command, &ctx.data)?,
        Command::Gc(args) => gc::run(args, &ctx)?,
        Command::Panel(command) => panel::run(command, &ctx)?,
        Command::Term(args) => term::run(args, &ctx)?,
    };
    Ok(exit.into())
}
