//! `cortex session search`.

use std::io::Write;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::print_json;

/// Search messages, reasoning, commands and command output of every session.
///
/// Every word must appear; words are matched literally. Exit 1 when nothing matches.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session search \"flaky test\"
  cortex session search timeout --limit 5 --json")]
pub(crate) struct SearchArgs {
    /// Words to look for.
    query: String,
    /// At most this many hits.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print a JSON array of hits (docs/json.md).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: SearchArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let hits = backend.search(&args.query, args.limit)?;
    let exit = if hits.is_empty() { Exit::No } else { Exit::Ok };
    if args.json {
        print_json(&hits)?;
        return Ok(exit);
    }
    let mut out = std::io::stdout().lock();
    for hit in hits {
        writeln!(
            out,
            "{} #{:<5} {:<18} {}",
            hit.session_id,
            hit.seq,
            hit.kind,
            crate::cli::output::printable(&hit.snippet.replace('\n', " "))
        )?;
    }
    Ok(exit)
}
