//! The command line: clap types and one file per subcommand, each with its
//! `Args` and `run()`. The only module that prints.

mod index;
mod local;
mod output;
mod refs;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Cortex runs AI coding agents as durable sessions and keeps every trace of
/// their work as git objects under `refs/cortex/*` in your repository.
#[derive(Debug, Parser)]
#[command(name = "cortex", version, propagate_version = true)]
#[command(
    after_help = "Start here:\n  cortex session start \"fix the flaky test\"   run an agent session in this repository\n  cortex session list                        see every session and its state\n  cortex session diff <ID>                   review what a session changed"
)]
pub struct Cli {
    /// Where Cortex keeps its index and workspace bindings.
    #[arg(long, global = true, env = "CORTEX_HOME", value_name = "DIR")]
    data: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start, continue and inspect agent sessions.
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Maintain the SQLite index (a cache of the session refs).
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Share session refs with a git remote (opt-in; nothing is pushed otherwise).
    #[command(subcommand)]
    Refs(refs::RefsCommand),
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
    let data = local::data_dir(cli.data)?;
    let exit = match cli.command {
        Command::Session(command) => session::run(command, &data)?,
        Command::Index(command) => index::run(command, &data)?,
        Command::Refs(command) => refs::run(command, &data)?,
    };
    Ok(exit.into())
}
