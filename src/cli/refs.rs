//! `cortex refs push|fetch`: share sessions through a git remote.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use super::Exit;
use super::local::Local;
use super::output::print_json;
use crate::store::{self, Store};

#[derive(Debug, Subcommand)]
pub(crate) enum RefsCommand {
    /// Push every session ref of this repository to REMOTE (never forced).
    #[command(after_help = "Examples:
  cortex refs push
  cortex refs push upstream --json
  git push origin 'refs/cortex/*:refs/cortex/*'   # the same with plain git")]
    Push {
        /// The git remote.
        #[arg(default_value = "origin")]
        remote: String,
        /// Print `{"remote": …, "pushed": N}`.
        #[arg(long)]
        json: bool,
    },
    /// Fetch REMOTE's session refs and bring local ones up to date.
    #[command(after_help = "Examples:
  cortex refs fetch                 # after a git clone, which does not bring refs/cortex/*
  cortex refs fetch upstream --json
  git fetch origin '+refs/cortex/*:refs/cortex/*'   # plain git, without the index update")]
    Fetch {
        /// The git remote.
        #[arg(default_value = "origin")]
        remote: String,
        /// Print the sessions created, updated, unchanged and diverged as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: RefsCommand, data: &Path) -> anyhow::Result<Exit> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let store = Store::discover(&cwd)?;
    match command {
        RefsCommand::Push { remote, json } => {
            let pushed = store::push(&store, &remote)?;
            if json {
                print_json(&serde_json::json!({ "remote": remote, "pushed": pushed }))?;
            }
            crate::cli::output::note!("Pushed {pushed} session ref(s) to {remote}.");
        }
        RefsCommand::Fetch { remote, json } => {
            let summary = store::fetch(&store, &remote)?;
            if json {
                print_json(&serde_json::json!({
                    "remote": remote,
                    "created": summary.created,
                    "fast_forwarded": summary.fast_forwarded,
                    "unchanged": summary.unchanged,
                    "diverged": summary.diverged,
                }))?;
            }
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
