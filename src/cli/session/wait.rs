//! `cortex session wait`: block until a session's running turn has ended,
//! then exit by how it ended, like `gh run watch --exit-status`.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{note, print_json};
use crate::protocol::{CheckSummary, SessionId, SessionState, TurnOutcome};

/// Wait until a session's running turn has ended (its state is no longer
/// starting, running or awaiting approval), then say how it ended.
///
/// Exit 0 when the last turn completed, 1 when it failed or was
/// interrupted, when the session failed, when --timeout passed first, or
/// (with --fail-on-checks) when a check after the last turn failed. A
/// session that is not running answers at once.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session start \"fix the flaky test\" --detach   # prints the id
  cortex session wait 01m9 --fail-on-checks --timeout 30m
  cortex session wait 01m9 --json | jq .checks")]
pub(crate) struct WaitArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Exit 1 when a check run after the last turn failed.
    #[arg(long)]
    fail_on_checks: bool,
    /// Give up after this long: 90, 90s, 5m, 2h (the session goes on).
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::output::parse_duration)]
    timeout: Option<Duration>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What `session wait --json` prints.
#[derive(Serialize)]
struct Waited {
    session_id: SessionId,
    state: SessionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<String>,
    turn: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<TurnOutcome>,
    checks: Vec<CheckSummary>,
    failed_checks: Vec<String>,
    timed_out: bool,
    waited_ms: u64,
}

/// How often Core is asked, and how often a wait says it still waits.
const POLL: Duration = Duration::from_millis(300);
const PROGRESS: Duration = Duration::from_secs(10);

pub(crate) fn run(args: WaitArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let started = Instant::now();
    let mut said = Instant::now();
    let mut told_approval = false;
    let (session, turns) = loop {
        let (session, turns) = backend.session(&args.id)?;
        let busy = session.state.is_busy();
        let timed_out = args.timeout.is_some_and(|limit| started.elapsed() >= limit);
        if !busy || timed_out || matches!(backend, Backend::Local(_)) {
            break (session, turns);
        }
        if session.state == SessionState::AwaitingApproval && !told_approval {
            note!(
                "{} waits for an approval: `cortex session approve {}` or deny, or the panel",
                session.id,
                session.id
            );
            told_approval = true;
        }
        if said.elapsed() >= PROGRESS {
            note!(
                "waiting: {} is {}, turn {}, {} s so far",
                session.id,
                session.state,
                session.turns,
                started.elapsed().as_secs()
            );
            said = Instant::now();
        }
        std::thread::sleep(POLL);
    };
    let timed_out = session.state.is_busy();
    if timed_out && matches!(backend, Backend::Local(_)) {
        bail!(
            "session {} is {} but no Core is running to follow it: start `cortex up`, or pass --core URL",
            session.id,
            session.state
        );
    }
    let last = turns.last();
    let outcome = last.and_then(|turn| turn.outcome);
    let checks = last.map(|turn| turn.checks.clone()).unwrap_or_default();
    let failed_checks: Vec<String> =
        checks.iter().filter(|check| !check.passed).map(|check| check.name.clone()).collect();
    let ok = !timed_out
        && session.state != SessionState::Failed
        && outcome.is_none_or(|outcome| outcome == TurnOutcome::Completed)
        && (!args.fail_on_checks || failed_checks.is_empty());
    let waited = Waited {
        session_id: session.id.clone(),
        state: session.state,
        state_reason: session.state_reason.clone(),
        turn: session.turns,
        outcome,
        checks,
        failed_checks,
        timed_out,
        waited_ms: started.elapsed().as_millis() as u64,
    };
    if args.json {
        print_json(&waited)?;
    } else {
        let outcome = waited
            .outcome
            .map_or("no turn".to_string(), |outcome| format!("turn {} {}", waited.turn, outcome.as_str()));
        let checks = match (waited.checks.len(), waited.failed_checks.len()) {
            (0, _) => String::new(),
            (all, 0) => format!(", {all} check(s) passed"),
            (all, _) => format!(
                ", {} of {all} check(s) failed: {}",
                waited.failed_checks.len(),
                waited.failed_checks.join(", ")
            ),
        };
        if timed_out {
            eprintln!("cortex: still {} after {} s; it goes on", waited.state, waited.waited_ms / 1000);
        }
        println!("{} {}: {outcome}{checks}", waited.session_id, waited.state);
    }
    Ok(if ok { Exit::Ok } else { Exit::No })
}
