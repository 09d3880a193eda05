//! `cortex index …`.

use std::io::IsTerminal;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Exit;
use super::backend::Ctx;
use super::client::Target;
use crate::core::Core;
use crate::node::Node;

#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Throw the index away and rebuild it from the session refs. Loses
    /// nothing: the refs are the source of truth. With Core running, its
    /// nodes send every session again; otherwise the refs of every bound
    /// workspace (and of the repository you are in) are read here.
    #[command(after_help = "Examples:
  cortex index rebuild
  cortex index rebuild --json   # {\"sessions\": N, \"events\": N, \"workspaces\": N}")]
    Rebuild {
        /// Print what was rebuilt as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: IndexCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    match command {
        IndexCommand::Rebuild { json } => rebuild(ctx, json),
    }
}

fn rebuild(ctx: &Ctx, json: bool) -> anyhow::Result<Exit> {
    if let Target::Remote(client) = Target::find_or_local(ctx) {
        let answer: crate::protocol::IndexReset = client.post("/api/v1/index/rebuild", &serde_json::json!({}))?;
        if json {
            crate::cli::output::print_json(&answer)?;
        }
        crate::cli::output::note!(
            "Core's index was reset; {} connected node(s) are sending their sessions again.",
            answer.nodes_resending
        );
        return Ok(Exit::Ok);
    }
    let node = Node::open(&ctx.data)?;
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
    if !std::io::stderr().is_terminal() || crate::cli::output::quiet() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let (_, stats) = Core::rebuild(&ctx.data, &workspaces, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    if json {
        crate::cli::output::print_json(&serde_json::json!({
            "sessions": stats.sessions,
            "events": stats.events,
            "workspaces": workspaces.len(),
        }))?;
    }
    crate::cli::output::note!(
        "Rebuilt the index: {} session(s), {} event(s) from {} workspace(s).",
        stats.sessions,
        stats.events,
        workspaces.len()
    );
    Ok(Exit::Ok)
}
