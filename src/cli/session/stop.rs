//! `cortex session stop`.

use std::path::Path;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::Transcript;
use crate::protocol::CommandKind;
use crate::protocol::reply::SessionMoved;
use crate::store::Store;

/// Stop a session: a running turn stops at the agent's next step, and the
/// session becomes `stopped` (resume it later with `session send`).
#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// The session id, or a unique prefix of it.
    id: String,
}

pub(crate) fn run(args: StopArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    // Stopping a stopped session is done already: say so, succeed.
    if session.state == crate::protocol::SessionState::Stopped {
        eprintln!("Session {} was already stopped.", session.id);
        return Ok(Exit::Ok);
    }
    match &backend {
        Backend::Remote(client) => {
            let kind = CommandKind::StopSession { session_id: session.id.clone() };
            let state = client.command_as::<SessionMoved>(kind, None)?.state;
            eprintln!("Session {} is {state}.", session.id);
        }
        Backend::Local(local) => {
            let store = Store::discover(Path::new(&session.workspace_path))?;
            local.node.stop_idle(&store, &session.id, &mut Transcript::new(true))?;
            eprintln!("Session {} is stopped.", session.id);
        }
    }
    Ok(Exit::Ok)
}
