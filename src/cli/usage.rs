//! `cortex usage`: tokens and cost summed by session, workspace, node or day,
//! from the agents' own figures (cost priced from `[pricing]` where an agent
//! reports none, and marked so).

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::Exit;
use super::backend::{Backend, Ctx};
use super::output::{parse_duration, print_json};
use crate::protocol::{UsageBy, UsageRow, dollars};

/// Show tokens and cost summed by session, workspace, node or day.
///
/// Figures are the agents' own (per turn, as each reported them); a cost
/// marked `*` was computed from `[pricing.MODEL]` in .cortex/config.toml.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex usage                       per session, largest first
  cortex usage --by day --since 30d  per day over the last 30 days
  cortex usage --by node --json")]
pub(crate) struct UsageArgs {
    /// What to sum by.
    #[arg(long, value_enum, default_value_t = By::Session)]
    by: By,
    /// Only turns within this long: 90s, 30m, 2h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    since: Option<Duration>,
    /// Print one JSON document (docs/json.md).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum By {
    Session,
    Workspace,
    Node,
    Day,
}

pub(crate) fn run(args: UsageArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let by = match args.by {
        By::Session => UsageBy::Session,
        By::Workspace => UsageBy::Workspace,
        By::Node => UsageBy::Node,
        By::Day => UsageBy::Day,
    };
    let since = args.since.map(|since| {
        let since = jiff::SignedDuration::try_from(since).unwrap_or(jiff::SignedDuration::MAX);
        jiff::Timestamp::now().checked_sub(since).unwrap_or(jiff::Timestamp::MIN).to_string()
    });
    let report = Backend::open(ctx)?.usage(by, since.as_deref())?;
    if args.json {
        print_json(&report)?;
        return Ok(Exit::Ok);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<28} {:>6} {:>12} {:>12} {:>12} {:>10}",
        by.as_str().to_uppercase(),
        "TURNS",
        "INPUT",
        "OUTPUT",
        "TOTAL",
        "COST"
    )?;
    for row in report.rows.iter().chain(std::iter::once(&report.total)) {
        writeln!(out, "{}", line(row))?;
    }
    Ok(Exit::Ok)
}

fn line(row: &UsageRow) -> String {
    let name = if row.label.is_empty() || row.label == row.key { row.key.clone() } else { row.label.clone() };
    let name: String = if name.chars().count() > 28 { name.chars().take(27).chain(['…']).collect() } else { name };
    let cost = match row.cost_usd {
        Some(cost) => format!("{}{}", dollars(cost), if row.cost_computed { "*" } else { "" }),
        None => "-".to_string(),
    };
    format!(
        "{name:<28} {:>6} {:>12} {:>12} {:>12} {cost:>10}",
        row.turns, row.input_tokens, row.output_tokens, row.total_tokens
    )
}
