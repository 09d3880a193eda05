//! `cortex session log`.

use std::io::Write;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{describe, print_json};

/// Print a session's events in order.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Only events after this seq.
    #[arg(long, default_value_t = 0, value_name = "SEQ")]
    after: u64,
    /// Print a JSON array of events (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: LogArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let events = backend.events(&session.id, args.after)?;
    if args.json {
        print_json(&events)?;
        return Ok(Exit::Ok);
    }
    let mut out = std::io::stdout().lock();
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
    Ok(Exit::Ok)
}
