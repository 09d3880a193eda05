//! `cortex session steer`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::protocol::CommandKind;
use crate::protocol::reply::Steered;

/// Add input to a session's running turn, without waiting for it to end.
///
/// Only agents that take input during a turn accept it (codex; see the
/// conformance matrix in docs/providers.md); the others refuse it, exit 2,
/// and the text can be sent as the next turn with `session send`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session steer 01m9 \"also update the changelog\"
  cortex session steer 01m9 \"stop after the tests pass\" --json")]
pub(crate) struct SteerArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// What to add.
    text: String,
    /// Print the answer as one JSON object (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SteerArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "steer")?;
    let (session, _) = client.session(&args.id)?;
    let steered: Steered =
        client.command_as(CommandKind::SteerSession { session_id: session.id.clone(), text: args.text }, None)?;
    if args.json {
        crate::cli::output::print_json(&steered)?;
    }
    crate::cli::output::note!("Added to the running turn of {}.", session.id);
    Ok(Exit::Ok)
}
