//! `cortex session stop`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::print_json;
use crate::protocol::CommandKind;
use crate::protocol::reply::SessionMoved;

/// Stop a session: a running turn stops at the agent's next step, and the
/// session becomes `stopped` (resume it later with `session send`).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session stop 01m9
  cortex session stop 01m9 --json   # {\"session_id\": …, \"state\": \"stopped\"}")]
pub(crate) struct StopArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Print the answer as one JSON object (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: StopArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    // Stopping a stopped session is done already: say so, succeed.
    if session.state == crate::protocol::SessionState::Stopped {
        if args.json {
            print_json(&SessionMoved { session_id: session.id.clone(), state: "stopped".into() })?;
        }
        crate::cli::output::note!("Session {} was already stopped.", session.id);
        return Ok(Exit::Ok);
    }
    let kind = CommandKind::StopSession { session_id: session.id.clone() };
    let moved = backend.command_as::<SessionMoved>(kind)?;
    if args.json {
        print_json(&moved)?;
    }
    crate::cli::output::note!("Session {} is {}.", session.id, moved.state);
    Ok(Exit::Ok)
}
