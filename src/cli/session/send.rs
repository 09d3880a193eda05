//! `cortex session send`: run the next turn of a session.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use super::{Reporting, follow_turn, report_turn};
use crate::cli::Exit;
use crate::cli::backend::Backend;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::cli::local::Local;
use crate::cli::output::Transcript;
use crate::protocol::CommandKind;
use crate::protocol::reply::TurnAccepted;

/// Send a prompt to a session: runs its next turn.
///
/// Works on idle, interrupted, stopped and expired sessions. Exit codes as
/// for `session start`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session send 01m9 \"now add a test for it\"
  cortex session send 01m9 \"fix the lint\" --json --fail-on-checks")]
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
    /// Exit 1 when a check run after the turn fails (the turn itself may
    /// have completed).
    #[arg(long)]
    fail_on_checks: bool,
}

pub(crate) fn run(args: SendArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    if args.prompt.trim().is_empty() {
        anyhow::bail!("the prompt is empty: say what the agent should do next (nothing was sent)");
    }
    let target = Target::find_or_local(ctx);
    let mut backend = match target {
        Target::Remote(client) => Backend::Remote(client),
        Target::Local => Backend::Local(Box::new(Local::open(&ctx.data)?)),
    };
    let (session, _) = backend.session(&args.id)?;
    let kind = CommandKind::SendTurn {
        session_id: session.id.clone(),
        prompt: args.prompt,
        auto_approve: args.yes,
        // With no terminal and no `--yes`, nobody answers: denied at once.
        deny_approvals: !args.yes && !args.wait_for_approval && !std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    match &mut backend {
        Backend::Local(local) => {
            let (accepted, ran): (TurnAccepted, _) = local.run(kind, args.json)?;
            let result = ran.turn.with_context(|| format!("session {} ran no turn", accepted.session_id))?;
            report_turn(
                result,
                Path::new(&session.workspace_path),
                Reporting { json: args.json, fail_on_checks: args.fail_on_checks },
                &ran.evidence,
            )
        }
        Backend::Remote(client) => {
            let accepted: TurnAccepted = client.command_as(kind, None)?;
            let mut transcript = Transcript::new(args.json);
            match follow_turn(client, &session.id, accepted.turn, session.last_seq, &mut transcript)? {
                Some(result) => report_turn(
                    result,
                    Path::new(&session.workspace_path),
                    Reporting { json: args.json, fail_on_checks: args.fail_on_checks },
                    &transcript.evidence,
                ),
                None => Ok(Exit::Ok),
            }
        }
    }
}
