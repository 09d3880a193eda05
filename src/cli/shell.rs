//! What a shell and a man reader need: `cortex completions SHELL` (from
//! `clap_complete`) and the man pages (`clap_mangen`, one per command and
//! subcommand), both generated from the same clap definitions as `--help`,
//! so they never drift from it. `cargo xtask dist` ships both.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};

use super::{Cli, Exit};

/// Print a completion script for SHELL.
///
/// Load it in the running shell, or install it where the shell looks:
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  source <(cortex completions bash)
  cortex completions bash > ~/.local/share/bash-completion/completions/cortex
  cortex completions zsh > \"${fpath[1]}/_cortex\"
  cortex completions fish > ~/.config/fish/completions/cortex.fish")]
pub(crate) struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "cortex", &mut std::io::stdout());
    Ok(Exit::Ok)
}

/// Write the man pages (cortex.1, cortex-session.1, cortex-session-start.1,
/// …) into DIR.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  cortex man-pages /usr/local/share/man/man1 && man cortex-session-start")]
pub(crate) struct ManArgs {
    /// The folder to write into (created when missing).
    dir: PathBuf,
}

pub(crate) fn man_pages(args: ManArgs) -> anyhow::Result<Exit> {
    fs_err::create_dir_all(&args.dir)?;
    let command = Cli::command();
    clap_mangen::generate_to(command, &args.dir)
        .with_context(|| format!("cannot write the man pages into `{}`", args.dir.display()))?;
    let written = fs_err::read_dir(&args.dir)?.count();
    crate::cli::output::note!("Wrote {written} man page(s) into {}.", args.dir.display());
    Ok(Exit::Ok)
}
