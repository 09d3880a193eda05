//! `cortex session stop`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::protocol::CommandKind;
use crate::protocol::reply::SessionMoved;

/// Stop a session: a running turn stops at the agent's next step, and the
/// session becomes `stopped` (resume it later with `session send`).
#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// The session id, or a unique prefix of it.
    id: String,
}

pub(crate) fn run(args: StopArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    // Stopping a stopped session is done already: say so, succeed.
    if session.state == crate::protocol::SessionState::Stopped {
        crate::cli::output::note!("Session {} was already stopped.", session.id);
        return Ok(Exit::Ok);
    }
    let kind = CommandKind::StopSession { session_id: session.id.clone() };
    let state = backend.command_as::<SessionMoved>(kind)?.state;
    crate::cli::output::note!("Session {} is {state}.", session.id);
    Ok(Exit::Ok)
}
