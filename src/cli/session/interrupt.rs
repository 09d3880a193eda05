//! `cortex session interrupt`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::protocol::CommandKind;

/// Interrupt a session's running turn at the agent's next step; the session
/// goes back to `idle`, ready for the next turn.
#[derive(Debug, Args)]
pub(crate) struct InterruptArgs {
    /// The session id, or a unique prefix of it.
    id: String,
}

pub(crate) fn run(args: InterruptArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(&ctx.data, ctx.core.as_deref(), "interrupt")?;
    let (session, _) = client.session(&args.id)?;
    client.command(CommandKind::InterruptSession { session_id: session.id.clone() }, None)?;
    crate::cli::output::note!("Interrupting {}; it stops at the agent's next step.", session.id);
    Ok(Exit::Ok)
}
