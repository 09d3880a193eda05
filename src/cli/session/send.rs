//! `cortex session send`: run the next turn of a session.

use std::path::Path;

use clap::Args;

use super::{follow_turn, report_turn};
use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::cli::local::Local;
use crate::cli::output::{TerminalApprover, Transcript};
use crate::protocol::CommandKind;
use crate::protocol::reply::TurnAccepted;
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
    /// With no terminal, let approval requests wait for a person (the panel,
    /// or `cortex session approve|deny`) instead of denying them at once;
    /// needs a Core.
    #[arg(long, conflicts_with = "yes")]
    wait_for_approval: bool,
    /// Print one JSON object (docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SendArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    if args.prompt.trim().is_empty() {
        anyhow::bail!("the prompt is empty: say what the agent should do next (nothing was sent)");
    }
    let client = match Target::find_or_local(&ctx.data, ctx.core.as_deref()) {
        Target::Remote(client) => client,
        Target::Local => {
            let mut local = Local::open(&ctx.data)?;
            let session = local.core.resolve(&args.id)?;
            let store = Store::discover(Path::new(&session.workspace_path))?;
            let mut approver = TerminalApprover { yes: args.yes };
            let mut transcript = Transcript::new(args.json);
            let result = local.node.send_turn(&store, &session.id, &args.prompt, &mut approver, &mut transcript)?;
            local.core.sync(&local.node.workspaces()?)?;
            return report_turn(result, store.workdir(), args.json, &transcript.evidence);
        }
    };
    let (session, _) = client.session(&args.id)?;
    let accepted: TurnAccepted = client.command_as(
        CommandKind::SendTurn {
            session_id: session.id.clone(),
            prompt: args.prompt,
            auto_approve: args.yes,
            // As in-process: with no terminal and no `--yes`, nobody answers.
            deny_approvals: !args.yes
                && !args.wait_for_approval
                && !std::io::IsTerminal::is_terminal(&std::io::stdin()),
        },
        None,
    )?;
    let turn = accepted.turn;
    let mut transcript = Transcript::new(args.json);
    match follow_turn(&client, &session.id, turn, session.last_seq, &mut transcript)? {
        Some(result) => report_turn(result, Path::new(&session.workspace_path), args.json, &transcript.evidence),
        None => Ok(Exit::Ok),
    }
}
