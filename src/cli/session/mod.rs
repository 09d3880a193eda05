//! `cortex session …`: one file per subcommand.

mod approval;
mod attach;
mod check;
mod commit;
mod diff;
mod for_commit;
mod interrupt;
mod list;
mod log;
mod report;
mod review;
mod search;
mod send;
mod show;
mod start;
mod steer;
mod stop;
mod wait;

use std::ops::ControlFlow;
use std::path::Path;

use clap::Subcommand;
use serde::Serialize;

use super::Exit;
use super::backend::Ctx;
use super::client::Client;
use super::output::Transcript;
use crate::node::TurnResult;
use crate::protocol::{ApprovalDecision, Event, EventKind, SessionId, SessionState, TurnOutcome};

#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    Start(start::StartArgs),
    Send(send::SendArgs),
    Attach(attach::AttachArgs),
    Approve(approval::ApproveArgs),
    Deny(approval::DenyArgs),
    Interrupt(interrupt::InterruptArgs),
    Steer(steer::SteerArgs),
    Check(check::CheckArgs),
    Commit(commit::CommitArgs),
    Review(review::ReviewArgs),
    ForCommit(for_commit::ForCommitArgs),
    Stop(stop::StopArgs),
    Wait(wait::WaitArgs),
    List(list::ListArgs),
    Show(show::ShowArgs),
    Log(log::LogArgs),
    Diff(diff::DiffArgs),
    Report(report::ReportArgs),
    Search(search::SearchArgs),
}

pub(crate) fn run(command: SessionCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    match command {
        SessionCommand::Start(args) => start::run(args, ctx),
        SessionCommand::Send(args) => send::run(args, ctx),
        SessionCommand::Attach(args) => attach::run(args, ctx),
        SessionCommand::Approve(args) => approval::approve(args, ctx),
        SessionCommand::Deny(args) => approval::deny(args, ctx),
        SessionCommand::Interrupt(args) => interrupt::run(args, ctx),
        SessionCommand::Steer(args) => steer::run(args, ctx),
        SessionCommand::Check(args) => check::run(args, ctx),
        SessionCommand::Commit(args) => commit::run(args, ctx),
        SessionCommand::Review(args) => review::run(args, ctx),
        SessionCommand::ForCommit(args) => for_commit::run(args, ctx),
        SessionCommand::Stop(args) => stop::run(args, ctx),
        SessionCommand::Wait(args) => wait::run(args, ctx),
        SessionCommand::List(args) => list::run(args, ctx),
        SessionCommand::Show(args) => show::run(args, ctx),
        SessionCommand::Log(args) => log::run(args, ctx),
        SessionCommand::Diff(args) => diff::run(args, ctx),
        SessionCommand::Report(args) => report::run(args, ctx),
        SessionCommand::Search(args) => search::run(args, ctx),
    }
}

/// What `session start --json` and `session send --json` print (docs/json.md).
#[derive(Serialize)]
pub(super) struct TurnReport {
    session_id: SessionId,
    turn: u32,
    pub(super) outcome: TurnOutcome,
    state: SessionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    last_seq: u64,
    workspace_path: String,
    #[serde(rename = "ref")]
    ref_name: String,
    /// Every approval the turn asked for, with the answer and who gave it.
    approvals: Vec<ApprovalReport>,
    /// The checks that ran after the turn.
    checks: Vec<CheckReport>,
}

#[derive(Serialize)]
struct ApprovalReport {
    approval_id: String,
    prompt: String,
    /// `approved` or `denied`; none when the turn ended while it waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<ApprovalDecision>,
    /// Who answered, or why nobody could (`no terminal to ask …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

#[derive(Serialize)]
struct CheckReport {
    name: String,
    passed: bool,
    exit_code: Option<i32>,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
}

/// The approvals and check results of turn `turn`, from its events: the
/// same on every surface, since every surface sees the same events.
fn turn_evidence(events: &[Event], turn: u32) -> (Vec<ApprovalReport>, Vec<CheckReport>) {
    let mut approvals: Vec<ApprovalReport> = Vec::new();
    let mut checks = Vec::new();
    for event in events.iter().filter(|event| event.turn == Some(turn)) {
        match &event.kind {
            EventKind::ApprovalRequested { approval_id, prompt } => approvals.push(ApprovalReport {
                approval_id: approval_id.clone(),
                prompt: prompt.clone(),
                decision: None,
                by: None,
            }),
            EventKind::ApprovalResolved { approval_id, decision, by } => {
                if let Some(asked) = approvals.iter_mut().find(|asked| asked.approval_id == *approval_id) {
                    asked.decision = Some(*decision);
                    asked.by = Some(by.clone());
                }
            }
            EventKind::CheckResult { name, passed, exit_code, duration_ms, evidence } => checks.push(CheckReport {
                name: name.clone(),
                passed: *passed,
                exit_code: *exit_code,
                duration_ms: *duration_ms,
                evidence: evidence.clone(),
            }),
            _ => {}
        }
    }
    (approvals, checks)
}

/// How a finished turn is reported: `--json`, and whether a failed check
/// makes the exit 1 (`--fail-on-checks`).
#[derive(Clone, Copy)]
pub(super) struct Reporting {
    pub json: bool,
    pub fail_on_checks: bool,
}

fn report_turn(result: TurnResult, workspace_path: &Path, how: Reporting, seen: &[Event]) -> anyhow::Result<Exit> {
    let mut exit = if result.outcome == TurnOutcome::Completed { Exit::Ok } else { Exit::No };
    let error = result.error.clone();
    let report = turn_report(result, workspace_path, seen);
    let failed: Vec<&str> =
        report.checks.iter().filter(|check| !check.passed).map(|check| check.name.as_str()).collect();
    if how.fail_on_checks && !failed.is_empty() {
        exit = Exit::No;
    }
    if how.json {
        super::output::print_json(&report)?;
    } else {
        if let Some(error) = &error {
            eprintln!("cortex: turn {} of {} failed: {error}", report.turn, report.session_id);
        }
        if !failed.is_empty() {
            eprintln!("cortex: check(s) failed after turn {}: {}", report.turn, failed.join(", "));
        }
        println!("{}", report.session_id);
    }
    Ok(exit)
}

/// A finished turn as `--json` reports it, with its approvals and checks
/// from the events seen.
fn turn_report(result: TurnResult, workspace_path: &Path, seen: &[Event]) -> TurnReport {
    let (approvals, checks) = turn_evidence(seen, result.turn);
    TurnReport {
        ref_name: crate::store::Store::ref_name(&result.session),
        session_id: result.session,
        turn: result.turn,
        outcome: result.outcome,
        state: result.state,
        error: result.error,
        last_seq: result.last_seq,
        workspace_path: workspace_path.display().to_string(),
        approvals,
        checks,
    }
}

/// Follows a session through Core until turn `turn` has ended and the
/// session has settled, printing the transcript unless `quiet`. `None` when
/// the person pressed Ctrl-C first (the session goes on).
fn follow_turn(
    client: &Client,
    session: &SessionId,
    turn: u32,
    after: u64,
    transcript: &mut Transcript,
) -> anyhow::Result<Option<TurnResult>> {
    let quiet = transcript.quiet;
    let mut outcome = None;
    let mut error = None;
    let mut settled = None;
    let mut gave_up = None;
    let last_seq = client.follow_watching(
        session.as_str(),
        after,
        &mut |event| {
            transcript.show(event);
            if event.turn != Some(turn) {
                return ControlFlow::Continue(());
            }
            match &event.kind {
                EventKind::Error { message } => error = Some(message.clone()),
                EventKind::TurnFinished { outcome: finished } => outcome = Some(*finished),
                EventKind::Lifecycle { to, .. }
                    if outcome.is_some()
                        && matches!(to, SessionState::Idle | SessionState::Failed | SessionState::Stopped) =>
                {
                    settled = Some(*to);
                    return ControlFlow::Break(());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        },
        &mut |summary| {
            // Nothing moves and Core says the turn is over (its node died, say):
            // report what Core knows instead of waiting for events that will not come.
            if summary.state.is_busy() {
                return ControlFlow::Continue(());
            }
            gave_up = Some((summary.state, summary.state_reason.clone()));
            ControlFlow::Break(())
        },
    )?;
    if outcome.is_none()
        && let Some((state, reason)) = gave_up
    {
        if !quiet {
            eprintln!(
                "cortex: the session is {state} without finishing the turn{}",
                reason.map(|reason| format!(": {reason}")).unwrap_or_default()
            );
        }
        let outcome = TurnOutcome::Interrupted;
        return Ok(Some(TurnResult {
            session: session.clone(),
            turn,
            outcome,
            error: Some(format!("the session is {state}")),
            state,
            last_seq,
        }));
    }
    // A turn that ended without settling the session (its agent died: the
    // session waits `interrupted`) is settled as Core says it stands.
    let settled = settled.or(gave_up.as_ref().map(|(state, _)| *state));
    let (Some(outcome), Some(state)) = (outcome, settled) else {
        if !quiet {
            crate::cli::output::note!(
                "Detached; the session goes on. Follow it again with: cortex session attach {session}"
            );
        }
        return Ok(None);
    };
    Ok(Some(TurnResult { session: session.clone(), turn, outcome, error, state, last_seq }))
}
