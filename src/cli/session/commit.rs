//! `cortex session commit`: the session's changes as a commit of yours.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::print_json;
use crate::protocol::CommandKind;
use crate::protocol::reply::Committed;

/// Commit the files a session changed to the current branch, with a
/// `Cortex-Session: <id>` trailer (and `Reviewed-by: <name>` when a
/// reviewer approved the last turn), and record the commit in the session.
///
/// What is committed is what was reviewed: the last turn's snapshot. A file
/// of the session that changed since is refused, naming it; --as-reviewed
/// commits the snapshot's content anyway and leaves your later changes in
/// the working tree. Only the session's files are committed; anything else
/// you have staged or modified stays as it is. The commit is yours: your
/// git identity, and your hooks (not with --as-reviewed, which builds the
/// commit without touching the working tree).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session commit 01m9
  cortex session commit 01m9 -m \"fix the flaky test\" --as-reviewed")]
pub(crate) struct CommitArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// The commit message (default: the session's title).
    #[arg(short, long)]
    message: Option<String>,
    /// Commit the last turn's snapshot even where the working tree changed
    /// since; the working tree is left as it is.
    #[arg(long)]
    as_reviewed: bool,
    /// Print a JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CommitArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let kind = CommandKind::CommitSession {
        session_id: session.id.clone(),
        message: args.message,
        as_reviewed: args.as_reviewed,
    };
    let committed = backend.command_as::<Committed>(kind)?;
    if args.json {
        print_json(&committed)?;
    } else {
        println!("{}", committed.commit);
        crate::cli::output::note!("Committed the changes of {} in {}.", session.id, session.workspace_path);
    }
    Ok(Exit::Ok)
}
