//! `cortex session steer`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::protocol::CommandKind;

/// Add input to a session's running turn, without waiting for it to end
/// (codex sessions; other providers take it as the next turn instead).
#[derive(Debug, Args)]
pub(crate) struct SteerArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// What to add.
    text: String,
}

pub(crate) fn run(args: SteerArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(&ctx.data, ctx.core.as_deref(), "steer")?;
    let (session, _) = client.session(&args.id)?;
    client.command(CommandKind::SteerSession { session_id: session.id.clone(), text: args.text }, None)?;
    crate::cli::output::note!("Added to the running turn of {}.", session.id);
    Ok(Exit::Ok)
}
