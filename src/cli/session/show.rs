//! `cortex session show`.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{print_json, printable};
use crate::protocol::{CheckSummary, SessionSummary, TurnSummary};

/// Show a session: its state, workspace and turns.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session show 01m9
  cortex session show 01m9 --json | jq '.turns[-1].checks'")]
pub(crate) struct ShowArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Print a JSON object (docs/json.md).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ShowReport {
    session: SessionSummary,
    turns: Vec<TurnSummary>,
}

pub(crate) fn run(args: ShowArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let (session, turns) = backend.session(&args.id)?;
    if args.json {
        print_json(&ShowReport { session, turns })?;
        return Ok(Exit::Ok);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "session   {}", session.id)?;
    writeln!(out, "title     {}", session.title)?;
    match &session.state_reason {
        Some(reason) => writeln!(out, "state     {} ({reason})", session.state)?,
        None => writeln!(out, "state     {}", session.state)?,
    }
    match &session.provider_version {
        Some(version) => writeln!(out, "provider  {} {}", session.provider, printable(version))?,
        None => writeln!(out, "provider  {}", session.provider)?,
    }
    writeln!(out, "node      {}", session.node)?;
    writeln!(out, "workspace {}", session.workspace_path)?;
    writeln!(out, "ref       refs/cortex/sessions/{}", session.id)?;
    writeln!(out, "created   {}", session.created_at)?;
    writeln!(out, "events    {}", session.last_seq)?;
    for turn in turns {
        let outcome = turn.outcome.map(|outcome| outcome.as_str()).unwrap_or("in progress");
        writeln!(
            out,
            "turn {:<3} {:<11} {} file(s) +{} -{}  {}",
            turn.turn, outcome, turn.files_changed, turn.insertions, turn.deletions, turn.prompt
        )?;
        for check in &turn.checks {
            writeln!(out, "  {}", check_line(check))?;
        }
        for tests in &turn.tests {
            writeln!(out, "  tests {}", tests.summary())?;
        }
        for coverage in &turn.coverage {
            writeln!(out, "  coverage {}", coverage.summary())?;
        }
        for artifact in &turn.artifacts {
            writeln!(out, "  artifact {} ({} bytes, {})", artifact.stored, artifact.bytes, artifact.media_type)?;
        }
    }
    Ok(Exit::Ok)
}

/// One line for a check: verdict, exit code, time, and where its output is.
pub(crate) fn check_line(check: &CheckSummary) -> String {
    let verdict = if check.passed { "passed" } else { "FAILED" };
    let exit = match check.exit_code {
        Some(code) => format!("exit {code}"),
        None => "killed".to_string(),
    };
    let evidence = check.evidence.as_deref().map(|path| format!("  output: {path}")).unwrap_or_default();
    format!("check {} {verdict} ({exit}, {} ms){evidence}", check.name, check.duration_ms)
}
