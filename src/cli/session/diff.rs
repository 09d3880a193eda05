//! `cortex session diff`: the patch (paged on a terminal), or its
//! `--stat` and `--name-only` summaries as git gives them.

use std::io::Write;

use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{colour_stdout, write_diff};
use crate::cli::pager::Paged;

/// Show what a session changed, as a unified diff.
///
/// Without --turn: everything from the start of turn 1 to the end of the
/// last turn. Coloured on a terminal (--color, NO_COLOR), and paged there
/// ($CORTEX_PAGER, $PAGER, else less -FRX; --no-pager writes straight out).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session diff 01m9
  cortex session diff 01m9 --turn 2 --stat
  cortex session diff 01m9 --name-only | xargs cargo fmt --check --")]
pub(crate) struct DiffArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// Only this turn's changes.
    #[arg(long, value_name = "N")]
    turn: Option<u32>,
    /// Each file with its lines added and removed, and the totals.
    #[arg(long, conflicts_with = "name_only")]
    stat: bool,
    /// Only the names of the changed files.
    #[arg(long)]
    name_only: bool,
    /// Write to stdout even on a terminal.
    #[arg(long)]
    no_pager: bool,
}

/// A changed file of a patch: its path and lines added and removed
/// (`None` for a binary file).
pub(crate) struct FileStat {
    pub path: String,
    pub lines: Option<(u64, u64)>,
}

/// The files of a unified patch (`git diff` output), in order.
pub(crate) fn stat(patch: &str) -> Vec<FileStat> {
    let mut files: Vec<FileStat> = Vec::new();
    for line in patch.lines() {
        if let Some(names) = line.strip_prefix("diff --git ") {
            let path = names.rsplit_once(" b/").map_or(names, |(_, new)| new).to_string();
            files.push(FileStat { path, lines: Some((0, 0)) });
            continue;
        }
        let Some(file) = files.last_mut() else { continue };
        if line.starts_with("Binary files ") || line == "GIT binary patch" {
            file.lines = None;
        } else if let Some((added, removed)) = &mut file.lines {
            if line.starts_with('+') && !line.starts_with("+++ ") {
                *added += 1;
            } else if line.starts_with('-') && !line.starts_with("--- ") {
                *removed += 1;
            }
        }
    }
    files
}

fn write_stat(out: &mut dyn Write, files: &[FileStat]) -> std::io::Result<()> {
    let width = files.iter().map(|file| file.path.chars().count()).max().unwrap_or(0);
    let (mut added, mut removed) = (0, 0);
    for file in files {
        match file.lines {
            Some((plus, minus)) => {
                added += plus;
                removed += minus;
                let bar = "+".repeat(plus.min(40) as usize) + &"-".repeat(minus.min(40) as usize);
                writeln!(out, " {:<width$} | {:>5} {bar}", file.path, plus + minus)?;
            }
            None => writeln!(out, " {:<width$} | Bin", file.path)?,
        }
    }
    writeln!(out, " {} file(s) changed, {added} insertion(s)(+), {removed} deletion(s)(-)", files.len())
}

pub(crate) fn run(args: DiffArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let patch = backend.diff(&session, args.turn)?;
    if args.name_only {
        let mut out = std::io::stdout().lock();
        for file in stat(&patch) {
            writeln!(out, "{}", file.path)?;
        }
        return Ok(Exit::Ok);
    }
    let mut paged = Paged::start(args.no_pager);
    if args.stat {
        write_stat(paged.out(), &stat(&patch))?;
    } else {
        write_diff(paged.out(), &patch, colour_stdout())?;
    }
    paged.finish()?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_is_counted_per_file_and_binary_files_are_named() {
        let patch = "diff --git a/src/a.rs b/src/a.rs\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1,2 +1,2 @@\n-old\n+new\n+more\n \
                     same\ndiff --git a/logo.png b/logo.png\nBinary files a/logo.png and b/logo.png differ\n";
        let files = stat(patch);
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].path.as_str(), files[0].lines), ("src/a.rs", Some((2, 1))));
        assert_eq!((files[1].path.as_str(), files[1].lines), ("logo.png", None));
    }
}
