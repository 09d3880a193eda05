//! `cortex session diff`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{colour_stdout, write_diff};

/// Show what a session changed, as a unified diff.
///
/// Without --turn: everything from the start of turn 1 to the end of the
/// last turn. Coloured on a terminal (NO_COLOR turns it off).
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Only this turn's changes.
    #[arg(long, value_name = "N")]
    turn: Option<u32>,
}

pub(crate) fn run(args: DiffArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let patch = backend.diff(&session, args.turn)?;
    write_diff(&mut std::io::stdout().lock(), &patch, colour_stdout())?;
    Ok(Exit::Ok)
}
