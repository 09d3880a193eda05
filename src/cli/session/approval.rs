//! `cortex session approve` and `cortex session deny`: answer the approval a
//! running turn waits for.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::protocol::CommandKind;
use crate::protocol::reply::ApprovalAnswered;

/// Approve what a session's agent asked to do; its turn goes on.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session approve 01m9
  cortex session approve 01m9 --for-session --json")]
pub(crate) struct ApproveArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Also approve every later request of this session.
    #[arg(long)]
    for_session: bool,
    /// Print the answer as one JSON object (docs/json.md).
    #[arg(long)]
    json: bool,
}

/// Deny what a session's agent asked to do; its turn goes on without it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session deny 01m9
  cortex session deny 01m9 --json")]
pub(crate) struct DenyArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Print the answer as one JSON object (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn approve(args: ApproveArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    resolve(ctx, &args.id, (true, args.for_session), args.json)
}

pub(crate) fn deny(args: DenyArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    resolve(ctx, &args.id, (false, false), args.json)
}

fn resolve(ctx: &Ctx, id: &str, (approve, for_session): (bool, bool), json: bool) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "approving or denying")?;
    let (session, _) = client.session(id)?;
    let by = std::env::var("USER").ok().map(|user| format!("{user} (cli)"));
    let kind =
        CommandKind::ResolveApproval { session_id: session.id.clone(), approval_id: None, approve, for_session, by };
    let answered: ApprovalAnswered = client.command_as(kind, None)?;
    if json {
        crate::cli::output::print_json(&answered)?;
    }
    let verb = if approve { "Approved" } else { "Denied" };
    let scope = if for_session { " (and every later request of the session)" } else { "" };
    crate::cli::output::note!("{verb} the pending request of {}{scope}.", session.id);
    Ok(Exit::Ok)
}
