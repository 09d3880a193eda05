//! `cortex core`: Core alone, for nodes on other machines to connect to.

use clap::Args;

use super::Exit;
use super::backend::Ctx;
use super::up::{ServeArgs, serve};

/// Run Core alone: the control plane that nodes connect to.
///
/// Enroll a node with `cortex node enroll`, then run `cortex node run --core
/// URL --token TOKEN` on its machine.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex core --bind 0.0.0.0:7777
  cortex node enroll --name build-box   # then, on that machine: cortex node run --core URL --token TOKEN")]
pub(crate) struct CoreArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

pub(crate) fn run(args: CoreArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    serve(&args.serve, ctx, false)
}
