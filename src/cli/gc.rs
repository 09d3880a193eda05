//! `cortex gc`: clean up what finished sessions left on this machine.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::Exit;
use super::backend::Ctx;
use super::output::{Transcript, print_json};
use crate::node::Node;

/// Remove the worktrees of `--worktree` sessions stopped (or failed) longer
/// than the retention period, in every workspace bound on this machine.
///
/// Before a worktree goes, its state is compared with the session's last
/// turn; changes made since are saved in the session ref (`gc/worktree`) and
/// reported, so nothing is lost silently. Branches `cortex/<id>` stay.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex gc
  cortex gc --older-than 3600 --json")]
pub(crate) struct GcArgs {
    /// Retention: only sessions settled at least this many seconds ago.
    #[arg(long, default_value_t = 7 * 24 * 60 * 60, value_name = "SECS")]
    older_than: u64,
    /// Print what was removed as a JSON array.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: GcArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let node = Node::open(&ctx.data)?;
    node.recover()?;
    let collected = node.gc(Duration::from_secs(args.older_than), &mut Transcript::new(true))?;
    if args.json {
        print_json(&collected)?;
        return Ok(Exit::Ok);
    }
    let mut out = std::io::stdout().lock();
    for item in &collected {
        let note = if item.captured { " (uncommitted changes saved in the session ref under gc/worktree)" } else { "" };
        writeln!(out, "removed {} of {}{note}", item.path, item.session)?;
    }
    if collected.is_empty() {
        crate::cli::output::note!("Nothing to collect.");
    }
    Ok(Exit::Ok)
}
