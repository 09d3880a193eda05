//! `cortex session log`.

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{describe, print_json};
use crate::cli::pager::Paged;

/// Print a session's events in order.
///
/// Paged on a terminal ($CORTEX_PAGER, $PAGER, else less -FRX).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session log 01m9
  cortex session log 01m9 --after 120 --no-pager
  cortex session log 01m9 --json | jq 'map(select(.kind == \"command_started\"))'")]
pub(crate) struct LogArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Only events after this seq.
    #[arg(long, default_value_t = 0, value_name = "SEQ")]
    after: u64,
    /// Print a JSON array of events (docs/json.md).
    #[arg(long)]
    json: bool,
    /// Write to stdout even on a terminal.
    #[arg(long)]
    no_pager: bool,
}

pub(crate) fn run(args: LogArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let events = backend.events(&session.id, args.after)?;
    if args.json {
        print_json(&events)?;
        return Ok(Exit::Ok);
    }
    let mut paged = Paged::start(args.no_pager);
    let out = paged.out();
    for event in events {
        let time = event.at.strftime("%H:%M:%S");
        for (idx, line) in describe(&event).lines().enumerate() {
            if idx == 0 {
                writeln!(out, "{:>5}  {time}  {line}", event.seq)?;
            } else {
                writeln!(out, "{:>5}  {:8}  {line}", "", "")?;
            }
        }
    }
    paged.finish()?;
    Ok(Exit::Ok)
}
