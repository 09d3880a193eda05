//! `cortex session send`: run the next turn of a session.

use std::path::Path;

use clap::Args;

use super::report_turn;
use crate::cli::Exit;
use crate::cli::local::Local;
use crate::cli::output::{TerminalApprover, Transcript};
use crate::store::Store;

/// Send a prompt to a session: runs its next turn.
///
/// Works on idle, interrupted, stopped and expired sessions. Exit codes as
/// for `session start`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// What the agent should do next.
    prompt: String,
    /// Approve every approval request without asking.
    #[arg(long)]
    yes: bool,
    /// Print one JSON object (docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SendArgs, data: &Path) -> anyhow::Result<Exit> {
    let mut local = Local::open(data)?;
    let session = local.core.resolve(&args.id)?;
    let store = Store::discover(Path::new(&session.workspace_path))?;
    let mut approver = TerminalApprover { yes: args.yes };
    let mut transcript = Transcript { quiet: args.json };
    let result = local.node.send_turn(
        &store,
        &session.id,
        &args.prompt,
        &mut approver,
        &mut transcript,
    )?;
    local.core.sync(&local.node.workspaces()?)?;
    report_turn(result, store.workdir(), args.json)
}
