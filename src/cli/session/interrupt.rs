//! `cortex session interrupt`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::protocol::CommandKind;
use crate::protocol::reply::SessionMoved;

/// Interrupt a session's running turn at the agent's next step; the session
/// goes back to `idle`, ready for the next turn.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session interrupt 01m9
  cortex session interrupt 01m9 --json")]
pub(crate) struct InterruptArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Print the answer as one JSON object (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: InterruptArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "interrupt")?;
    let (session, _) = client.session(&args.id)?;
    let moved: SessionMoved =
        client.command_as(CommandKind::InterruptSession { session_id: session.id.clone() }, None)?;
    if args.json {
        crate::cli::output::print_json(&moved)?;
    }
    crate::cli::output::note!("Interrupting {}; it stops at the agent's next step.", session.id);
    Ok(Exit::Ok)
}
