//! The command line: clap types and one file per subcommand, each with its
//! `Args` and `run()`. The only module that prints.

mod backend;
mod client;
mod core;
mod ctrl_c;
mod gc;
mod index;
mod init;
mod local;
mod mcp;
mod node;
mod output;
mod pager;
mod panel;
mod refs;
mod session;
mod shell;
mod term;
mod tools;
mod up;
mod usage;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use client::Unreachable;

/// `cortex --version`: the package version, the commit and its date.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("CORTEX_COMMIT"), " ", env!("CORTEX_COMMIT_DATE"), ")");

const GLOBAL: &str = "Global options";

/// Cortex runs AI coding agents as durable sessions and keeps every trace of
/// their work as git objects under `refs/cortex/*` in your repository.
#[derive(Debug, Parser)]
#[command(name = "cortex", version = VERSION, propagate_version = true)]
#[command(after_help = "Start here:
  cortex up                                  Core, web page and a local node in one process
  cortex init                                write .cortex/config.toml for this repository
  cortex session start \"fix the flaky test\"   run an agent session in this repository
  cortex session list                        see this repository's sessions and their state
  cortex session diff <ID>                   review what a session changed

Environment:
  CORTEX_HOME    the data dir (as --data)
  CORTEX_CORE    Core's URL (as --core)
  CORTEX_TOKEN   the token for Core's API (default: the admin token in the data dir)
  CORTEX_LOG     log filter for stderr, e.g. info or cortex=debug (as -v)
  CORTEX_PAGER, PAGER   the pager for `session log` and `session diff` (default: less -FRX)
  NO_COLOR, CLICOLOR_FORCE   colour off, or on even when not a terminal

Exit codes: 0 done; 1 ran, and the answer is no (the agent failed, a check failed, nothing found);
2 error (bad input, unknown id); 3 the configured Core could not be reached.")]
pub struct Cli {
    /// Where Cortex keeps its data: index, workspace bindings, Core's tokens.
    #[arg(long, global = true, env = "CORTEX_HOME", value_name = "DIR", help_heading = GLOBAL)]
    data: Option<PathBuf>,

    /// Core's URL. Without it, a Core started by `cortex up` on this data dir
    /// is used when running, and commands that can finish alone run in-process.
    #[arg(long, global = true, env = "CORTEX_CORE", value_name = "URL", help_heading = GLOBAL)]
    core: Option<String>,

    /// Work in-process on this machine even when a Core is running or
    /// CORTEX_CORE is set (commands that need Core then say so).
    #[arg(long, global = true, help_heading = GLOBAL)]
    no_core: bool,

    /// When to colour the output: auto (on a terminal, unless NO_COLOR is
    /// set; CLICOLOR_FORCE forces it), always, never.
    #[arg(long, global = true, value_enum, default_value_t = output::Colour::Auto, value_name = "WHEN", help_heading = GLOBAL)]
    color: output::Colour,

    /// Only errors on stderr: no notes, no progress.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    quiet: bool,

    /// More on stderr: -v what Cortex does, -vv debugging detail (CORTEX_LOG, when set, wins).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The log filter stderr gets: `CORTEX_LOG` when set, else from -q/-v.
    pub fn log_filter(&self) -> String {
        match std::env::var("CORTEX_LOG") {
            Ok(filter) if !filter.trim().is_empty() => filter,
            _ if self.quiet => "error".into(),
            _ => ["warn", "info", "debug"][usize::from(self.verbose.min(2))].into(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Core, its web page and a local node in one process: start here.
    Up(up::UpArgs),
    /// Run Core alone: the control plane nodes connect to.
    Core(core::CoreArgs),
    /// Write a commented .cortex/config.toml for this repository.
    Init(init::InitArgs),
    /// Show the settings in effect and where each comes from.
    Config(init::ConfigArgs),
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
    /// Tokens and cost summed by session, workspace, node or day.
    Usage(usage::UsageArgs),
    /// The Tool Registry: MCP servers Core wants on its nodes.
    #[command(subcommand)]
    Tool(tools::ToolCommand),
    /// The Plugin Registry: Agent Plugins packages (MCP servers and skills).
    #[command(subcommand)]
    Plugin(tools::PluginCommand),
    /// Cortex's own tools for any MCP client, on stdin/stdout.
    Mcp(mcp::McpArgs),
    /// Print a completion script for your shell.
    Completions(shell::CompletionsArgs),
    /// Write the man pages into a folder.
    ManPages(shell::ManArgs),
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
    output::set_style(cli.color, cli.quiet);
    let data_flag = cli.data.is_some();
    let ctx = backend::Ctx { data: local::data_dir(cli.data)?, core: cli.core, no_core: cli.no_core };
    let exit = match cli.command {
        Command::Up(args) => up::run(args, &ctx)?,
        Command::Core(args) => core::run(args, &ctx)?,
        Command::Init(args) => init::init(args)?,
        Command::Config(args) => init::config(args, &ctx, data_flag)?,
        Command::Session(command) => session::run(command, &ctx)?,
        Command::Node(command) => node::run(command, &ctx)?,
        Command::Workspace(command) => workspace::run(command, &ctx)?,
        Command::Index(command) => index::run(command, &ctx)?,
        Command::Refs(command) => refs::run(command, &ctx.data)?,
        Command::Gc(args) => gc::run(args, &ctx)?,
        Command::Panel(command) => panel::run(command, &ctx)?,
        Command::Term(args) => term::run(args, &ctx)?,
        Command::Usage(args) => usage::run(args, &ctx)?,
        Command::Tool(command) => tools::tool(command, &ctx)?,
        Command::Plugin(command) => tools::plugin(command, &ctx)?,
        Command::Mcp(args) => mcp::run(args, &ctx)?,
        Command::Completions(args) => shell::completions(args)?,
        Command::ManPages(args) => shell::man_pages(args)?,
    };
    Ok(exit.into())
}
