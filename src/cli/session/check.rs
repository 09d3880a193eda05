//! `cortex session check`: run the repository's checks now.

use std::io::Write;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::print_json;
use crate::protocol::CommandKind;
use crate::protocol::reply::ChecksRun;

/// Run the checks of `.cortex/config.toml` now, as evidence of the session's
/// last turn (all of them, or the one named). Exit 1 when one fails.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session check 01m9
  cortex session check 01m9 --name lint --json")]
pub(crate) struct CheckArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Only the check with this name.
    #[arg(long)]
    name: Option<String>,
    /// Print the results as a JSON array.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CheckArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let kind = CommandKind::RunChecks { session_id: session.id.clone(), name: args.name };
    let checks = backend.command_as::<ChecksRun>(kind)?.checks;
    let exit = if checks.iter().all(|check| check.passed) { Exit::Ok } else { Exit::No };
    if args.json {
        print_json(&checks)?;
        return Ok(exit);
    }
    let mut out = std::io::stdout().lock();
    for check in &checks {
        writeln!(out, "{}", super::show::check_line(check))?;
    }
    Ok(exit)
}
