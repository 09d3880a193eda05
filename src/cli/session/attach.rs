//! `cortex session attach`: follow a session live; typed lines become turns,
//! or answer the approval the session waits for.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::sync::Mutex;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::{Client, Target};
use crate::cli::output::{Transcript, approval_answer, approval_question};
use crate::protocol::{CommandKind, EventKind, SessionId};

/// Follow a session live: its history first, then new events as they happen.
///
/// Type a line and press Enter to send it as the next turn. When the agent
/// asks for approval, the terminal asks you (y, n, or a for every later
/// request of the session) and your answer goes to the session through
/// Core; nothing you type then becomes a turn. Ctrl-C detaches; the session
/// goes on. Needs a running Core.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session attach 01m9")]
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
    let client = Target::require(ctx, "attach")?;
    let (session, _) = client.session(&args.id)?;
    attach(&client, &session.id, args.after, args.yes)
}

/// The approval the session waits for, as the followed events tell:
/// `(approval id, what it asks)`.
type Waiting = Mutex<Option<(String, String)>>;

pub(crate) fn attach(client: &Client, session: &SessionId, after: u64, yes: bool) -> anyhow::Result<Exit> {
    crate::cli::output::note!(
        "Attached to {session}. Type a line to send it as a turn; Ctrl-C detaches (the session goes on)."
    );
    let waiting: Waiting = Mutex::new(None);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Lines typed while attached; ends with stdin (or the process).
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                typed(client, session, &waiting, line, yes);
            }
        });
        let mut transcript = Transcript::new(false);
        let followed = client.follow(session.as_str(), after, &mut |event| {
            transcript.show(event);
            let mut waiting = waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match &event.kind {
                EventKind::ApprovalRequested { approval_id, prompt } => {
                    *waiting = Some((approval_id.clone(), prompt.clone()));
                    eprint!("{}", approval_question(prompt));
                    let _ = std::io::stderr().flush();
                }
                EventKind::ApprovalResolved { approval_id, .. }
                    if waiting.as_ref().is_some_and(|(id, _)| id == approval_id) =>
                {
                    *waiting = None;
                }
                _ => {}
            }
            ControlFlow::Continue(())
        });
        crate::cli::output::note!("Detached from {session}; it goes on.");
        // The stdin reader may still be blocked reading: leave without it.
        std::process::exit(if followed.is_ok() { 0 } else { 2 });
    })
}

/// A line typed while attached: the answer to the approval that waits, or
/// else the next turn (refused by the node while a turn runs).
fn typed(client: &Client, session: &SessionId, waiting: &Waiting, line: String, yes: bool) {
    let asked = waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    if let Some((approval_id, prompt)) = asked {
        let Some((approve, for_session)) = approval_answer(&line) else {
            eprint!("Answer y, n or a. {}", approval_question(&prompt));
            return;
        };
        let by = std::env::var("USER").unwrap_or_else(|_| "terminal".into());
        let kind = CommandKind::ResolveApproval {
            session_id: session.clone(),
            approval_id: Some(approval_id),
            approve,
            for_session,
            by: Some(format!("{by} (terminal)")),
        };
        if let Err(error) = client.command(kind, None) {
            eprintln!("cortex: the answer was not taken: {error:#}");
        }
        return;
    }
    if line.trim().is_empty() {
        return;
    }
    // A person is attached: approvals of this turn wait for them.
    let kind =
        CommandKind::SendTurn { session_id: session.clone(), prompt: line, auto_approve: yes, deny_approvals: false };
    if let Err(error) = client.command(kind, None) {
        eprintln!("cortex: not sent: {error:#}");
    }
}
