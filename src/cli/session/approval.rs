//! `cortex session approve` and `cortex session deny`: answer the approval a
//! running turn waits for.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::Target;
use crate::protocol::CommandKind;

/// Approve what a session's agent asked to do; its turn goes on.
#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Also approve every later request of this session.
    #[arg(long)]
    for_session: bool,
}

/// Deny what a session's agent asked to do; its turn goes on without it.
#[derive(Debug, Args)]
pub(crate) struct DenyArgs {
    /// The session id, or a unique prefix of it.
    id: String,
}

pub(crate) fn approve(args: ApproveArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    resolve(ctx, &args.id, true, args.for_session)
}

pub(crate) fn deny(args: DenyArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    resolve(ctx, &args.id, false, false)
}

fn resolve(ctx: &Ctx, id: &str, approve: bool, for_session: bool) -> anyhow::Result<Exit> {
    let client = Target::require(&ctx.data, ctx.core.as_deref(), "approving or denying")?;
    let (session, _) = client.session(id)?;
    let by = std::env::var("USER").ok().map(|user| format!("{user} (cli)"));
    let kind =
        CommandKind::ResolveApproval { session_id: session.id.clone(), approval_id: None, approve, for_session, by };
    client.command(kind, None)?;
    let verb = if approve { "Approved" } else { "Denied" };
    let scope = if for_session { " (and every later request of the session)" } else { "" };
    crate::cli::output::note!("{verb} the pending request of {}{scope}.", session.id);
    Ok(Exit::Ok)
}
