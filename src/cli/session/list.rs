//! `cortex session list`.

use std::io::Write;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::print_json;
use crate::protocol::SessionState;

/// List sessions, newest first.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only sessions in this state (starting, running, idle, awaiting_approval, interrupted, stopped, failed, expired).
    #[arg(long, value_name = "STATE")]
    state: Option<SessionState>,
    /// Print a JSON array (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ListArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let sessions = backend.sessions(args.state)?;
    if args.json {
        print_json(&sessions)?;
        return Ok(Exit::Ok);
    }
    let mut out = std::io::stdout().lock();
    if sessions.is_empty() {
        writeln!(out, "No sessions yet. Start one with: cortex session start \"what the agent should do\"")?;
        return Ok(Exit::Ok);
    }
    for session in sessions {
        writeln!(
            out,
            "{}  {:<17}  {:>2} turn(s)  {}  {}",
            session.id, session.state, session.turns, session.workspace_path, session.title
        )?;
    }
    Ok(Exit::Ok)
}
