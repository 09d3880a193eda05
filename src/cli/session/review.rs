//! `cortex session review`: comment on a session's changes, approve them,
//! or request changes (the open comments become the agent's next turn).

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use super::{TurnReport, follow_turn, turn_report};
use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{Transcript, print_json};
use crate::protocol::reply::Reviewed;
use crate::protocol::{CommandKind, ReviewNote, TurnOutcome, Verdict, parse_lines};

/// Review a session's changes: comment on lines of its files, mark files
/// viewed, then approve the changes or request changes.
///
/// Comments, viewed marks and the verdict are recorded in the session (its
/// timeline and its ref, so they travel with `cortex refs push`). A file
/// marked viewed shows folded in the panel until a later turn changes it. `--request-changes`
/// hands every open comment (those since the last verdict), with its file,
/// line and the quoted code, to the agent as the next turn, and waits for
/// that turn like `session send`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session review 01m9 --comment src/lib.rs:42 \"this unwrap panics on empty input\"
  cortex session review 01m9 --comment src/lib.rs:40-52 \"split this function\" --viewed src/main.rs
  cortex session review 01m9 --comment README.md \"say how to install\" --request-changes
  cortex session review 01m9 --approve --json")]
pub(crate) struct ReviewArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// A comment on FILE (a path in the repository), on a line of it
    /// (FILE:LINE) or on a range of lines (FILE:FIRST-LAST, a hunk);
    /// repeat for more.
    #[arg(long, num_args = 2, value_names = ["FILE[:LINE[-LAST]]", "TEXT"])]
    comment: Vec<String>,
    /// Mark FILE viewed as of the last turn; repeat for more.
    #[arg(long, value_name = "FILE")]
    viewed: Vec<String>,
    /// Take the viewed mark off FILE; repeat for more.
    #[arg(long, value_name = "FILE")]
    unviewed: Vec<String>,
    /// Approve the session's changes as of its last turn.
    #[arg(long, conflicts_with = "request_changes")]
    approve: bool,
    /// Hand the open comments back to the agent as its next turn.
    #[arg(long)]
    request_changes: bool,
    /// For the turn --request-changes starts: approve every approval
    /// request without asking.
    #[arg(long, requires = "request_changes")]
    yes: bool,
    /// Print one JSON object (docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
}

/// What `session review --json` prints: the review, and the turn it
/// started when it requested changes.
#[derive(Serialize)]
struct ReviewReport {
    #[serde(flatten)]
    reviewed: Reviewed,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_report: Option<TurnReport>,
}

pub(crate) fn run(args: ReviewArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let comments = notes(&args.comment)?;
    let verdict = match (args.approve, args.request_changes) {
        (true, _) => Some(Verdict::Approve),
        (_, true) => Some(Verdict::RequestChanges),
        _ => None,
    };
    let viewed: Vec<(String, bool)> = (args.viewed.iter().map(|path| (path.clone(), true)))
        .chain(args.unviewed.iter().map(|path| (path.clone(), false)))
        .collect();
    if comments.is_empty() && viewed.is_empty() && verdict.is_none() {
        bail!("nothing to record: give --comment FILE[:LINE] TEXT, --viewed FILE, --approve or --request-changes");
    }
    let mut backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let kind = CommandKind::ReviewSession {
        session_id: session.id.clone(),
        comments,
        viewed,
        verdict,
        by: None,
        auto_approve: args.yes,
        deny_approvals: !args.yes && !std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    let workspace = Path::new(&session.workspace_path);
    let (reviewed, turn_report) = match &mut backend {
        Backend::Local(local) => {
            let (reviewed, ran): (Reviewed, _) = local.run(kind, args.json)?;
            let report = ran.turn.map(|result| turn_report(result, workspace, &ran.evidence));
            (reviewed, report)
        }
        Backend::Remote(client) => {
            let reviewed: Reviewed = client.command_as(kind, None)?;
            let mut report = None;
            if let Some(turn) = reviewed.turn {
                let mut transcript = Transcript::new(args.json);
                let result = follow_turn(client, &session.id, turn, session.last_seq, &mut transcript)?
                    .context("stopped following; the turn goes on (`cortex session attach` follows it)")?;
                report = Some(turn_report(result, workspace, &transcript.evidence));
            }
            (reviewed, report)
        }
    };
    let exit = match &turn_report {
        Some(report) if report.outcome != TurnOutcome::Completed => Exit::No,
        _ => Exit::Ok,
    };
    if args.json {
        print_json(&ReviewReport { reviewed, turn_report })?;
    } else {
        let recorded = match reviewed.verdict {
            Some(Verdict::Approve) => "approved".to_string(),
            Some(Verdict::RequestChanges) => format!("requested changes (turn {})", reviewed.turn.unwrap_or(0)),
            None => "commented".to_string(),
        };
        println!("{}", reviewed.session_id);
        let marks = args.viewed.len() + args.unviewed.len();
        let marks = if marks > 0 { format!(", {marks} viewed mark(s)") } else { String::new() };
        crate::cli::output::note!("Recorded {} comment(s){marks}; {recorded}.", reviewed.comments);
    }
    Ok(exit)
}

/// `--comment FILE[:LINE[-LAST]] TEXT` pairs as review notes.
fn notes(values: &[String]) -> anyhow::Result<Vec<ReviewNote>> {
    values
        .chunks(2)
        .map(|pair| {
            let [place, text] = pair else { bail!("--comment takes FILE[:LINE] and TEXT") };
            let (path, line, end_line) = match place.rsplit_once(':') {
                Some((path, lines))
                    if !lines.is_empty() && lines.bytes().all(|byte| byte.is_ascii_digit() || byte == b'-') =>
                {
                    let (line, end) = parse_lines(lines).map_err(|why| anyhow::anyhow!("--comment {place}: {why}"))?;
                    (path.to_string(), Some(line), end)
                }
                _ => (place.clone(), None, None),
            };
            Ok(ReviewNote { path, line, end_line, text: text.clone() })
        })
        .collect()
}
