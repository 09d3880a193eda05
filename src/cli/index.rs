//! `cortex index …`.

use std::io::IsTerminal;
use std::path::Path;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Exit;
use crate::core::Core;
use crate::node::Node;

#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Throw the index away and rebuild it from the session refs of every
    /// bound workspace (and of the repository you are in). Loses nothing:
    /// the refs are the source of truth.
    Rebuild,
}

pub(crate) fn run(command: IndexCommand, data: &Path) -> anyhow::Result<Exit> {
    match command {
        IndexCommand::Rebuild => rebuild(data),
    }
}

fn rebuild(data: &Path) -> anyhow::Result<Exit> {
    let node = Node::new(data);
    if let Ok(store) = crate::store::Store::discover(&std::env::current_dir()?) {
        node.bind(&store)?;
    }
    node.recover()?;
    let workspaces = node.workspaces()?;
    let bar = ProgressBar::no_length();
    bar.set_style(
        ProgressStyle::with_template("{spinner} indexing {pos}/{len} sessions [{bar:30}] {eta}")
            .expect("holds because the template is fixed")
            .progress_chars("=> "),
    );
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let (_, stats) = Core::rebuild(data, &workspaces, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "Rebuilt the index: {} session(s), {} event(s) from {} workspace(s).",
        stats.sessions,
        stats.events,
        workspaces.len()
    );
    Ok(Exit::Ok)
}
