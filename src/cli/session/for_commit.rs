//! `cortex session for-commit`: from a commit back to its session.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::print_json;
use crate::store::Store;

/// Find the session behind a commit of the repository you are in, by its
/// `Cortex-Session` trailer. Exit 1 when the commit names no session.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session for-commit HEAD
  cortex session for-commit HEAD~2 --json")]
pub(crate) struct ForCommitArgs {
    /// A commit: a hash, a branch, HEAD~2, …
    rev: String,
    /// Print the session as a JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ForCommitArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let store = Store::discover(&std::env::current_dir().context("cannot read the current directory")?)?;
    let Some(id) = store.session_of_commit(&args.rev)? else {
        crate::cli::output::note!("Commit {} has no Cortex-Session trailer.", args.rev);
        return Ok(Exit::No);
    };
    let backend = Backend::open(ctx)?;
    let (session, _) = backend.session(id.as_str())?;
    if args.json {
        print_json(&session)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}  {}  {}", session.id, session.state, session.title)?;
    }
    Ok(Exit::Ok)
}
