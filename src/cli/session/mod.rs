//! `cortex session …`: one file per subcommand.

mod diff;
mod list;
mod log;
mod search;
mod send;
mod show;
mod start;

use std::path::Path;

use clap::Subcommand;
use serde::Serialize;

use super::Exit;
use crate::node::TurnResult;
use crate::protocol::{SessionId, SessionState, TurnOutcome};

#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    Start(start::StartArgs),
    Send(send::SendArgs),
    List(list::ListArgs),
    Show(show::ShowArgs),
    Log(log::LogArgs),
    Diff(diff::DiffArgs),
    Search(search::SearchArgs),
}

pub(crate) fn run(command: SessionCommand, data: &Path) -> anyhow::Result<Exit> {
    match command {
        SessionCommand::Start(args) => start::run(args, data),
        SessionCommand::Send(args) => send::run(args, data),
        SessionCommand::List(args) => list::run(args, data),
        SessionCommand::Show(args) => show::run(args, data),
        SessionCommand::Log(args) => log::run(args, data),
        SessionCommand::Diff(args) => diff::run(args, data),
        SessionCommand::Search(args) => search::run(args, data),
    }
}

/// What `session start --json` and `session send --json` print (docs/json.md).
#[derive(Serialize)]
struct TurnReport {
    session_id: SessionId,
    turn: u32,
    outcome: TurnOutcome,
    state: SessionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    last_seq: u64,
    workspace_path: String,
    #[serde(rename = "ref")]
    ref_name: String,
}

fn report_turn(result: TurnResult, workspace_path: &Path, json: bool) -> anyhow::Result<Exit> {
    let exit = if result.outcome == TurnOutcome::Completed {
        Exit::Ok
    } else {
        Exit::No
    };
    if json {
        super::output::print_json(&TurnReport {
            ref_name: crate::store::Store::ref_name(&result.session),
            session_id: result.session,
            turn: result.turn,
            outcome: result.outcome,
            state: result.state,
            error: result.error,
            last_seq: result.last_seq,
            workspace_path: workspace_path.display().to_string(),
        })?;
    } else {
        if let Some(error) = &result.error {
            eprintln!(
                "cortex: turn {} of {} failed: {error}",
                result.turn, result.session
            );
        }
        println!("{}", result.session);
    }
    Ok(exit)
}
