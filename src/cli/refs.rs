//! `cortex refs push|fetch`: share sessions through a git remote.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use super::Exit;
use super::local::Local;
use crate::store::{self, Store};

#[derive(Debug, Subcommand)]
pub(crate) enum RefsCommand {
    /// Push every session ref of this repository to REMOTE (never forced).
    Push {
        /// The git remote.
        #[arg(default_value = "origin")]
        remote: String,
    },
    /// Fetch REMOTE's session refs and bring local ones up to date.
    Fetch {
        /// The git remote.
        #[arg(default_value = "origin")]
        remote: String,
    },
}

pub(crate) fn run(command: RefsCommand, data: &Path) -> anyhow::Result<Exit> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let store = Store::discover(&cwd)?;
    match command {
        RefsCommand::Push { remote } => {
            let pushed = store::push(&store, &remote)?;
            crate::cli::output::note!("Pushed {pushed} session ref(s) to {remote}.");
        }
        RefsCommand::Fetch { remote } => {
            let summary = store::fetch(&store, &remote)?;
            crate::cli::output::note!(
                "Fetched from {remote}: {} new, {} updated, {} unchanged session(s).",
                summary.created.len(),
                summary.fast_forwarded.len(),
                summary.unchanged
            );
            for id in &summary.diverged {
                eprintln!(
                    "warning: session {id} differs on both sides; kept the local one (theirs: refs/remotes/{remote}/cortex/sessions/{id})"
                );
            }
            // Fetched sessions belong to this repository from now on.
            let local = Local::open(data)?;
            local.node.bind(&store)?;
            let mut local = local;
            local.core.sync(&local.node.workspaces()?)?;
        }
    }
    Ok(Exit::Ok)
}
