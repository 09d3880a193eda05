//! `cortex session attach`: follow a session live; typed lines become turns.

use std::io::BufRead;
use std::ops::ControlFlow;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::{Client, Target};
use crate::cli::output::Transcript;
use crate::protocol::{CommandKind, SessionId};

/// Follow a session live: its history first, then new events as they happen.
///
/// Type a line and press Enter to send it as the next turn. Ctrl-C detaches;
/// the session goes on. Needs a running Core.
#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Only events after this seq (default: the whole history).
    #[arg(long, default_value_t = 0, value_name = "SEQ")]
    after: u64,
    /// Approve approval requests of the turns you send.
    #[arg(long)]
    yes: bool,
}

pub(crate) fn run(args: AttachArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(&ctx.data, ctx.core.as_deref(), "attach")?;
    let (session, _) = client.session(&args.id)?;
    attach(&client, &session.id, args.after, args.yes)
}

pub(crate) fn attach(client: &Client, session: &SessionId, after: u64, yes: bool) -> anyhow::Result<Exit> {
    eprintln!("Attached to {session}. Type a line to send it as a turn; Ctrl-C detaches (the session goes on).");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Lines typed while attached; ends with stdin (or the process).
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                // A person is attached: approvals wait for them (the panel).
                let kind = CommandKind::SendTurn {
                    session_id: session.clone(),
                    prompt: line,
                    auto_approve: yes,
                    deny_approvals: false,
                };
                if let Err(error) = client.command(kind, None) {
                    eprintln!("cortex: not sent: {error:#}");
                }
            }
        });
        let mut transcript = Transcript { quiet: false };
        let followed = client.follow(session.as_str(), after, &mut |event| {
            transcript.show(event);
            ControlFlow::Continue(())
        });
        eprintln!("Detached from {session}; it goes on.");
        // The stdin reader may still be blocked reading: leave without it.
        std::process::exit(if followed.is_ok() { 0 } else { 2 });
    })
}
