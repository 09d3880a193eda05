//! `cortex session report`: the session as one self-contained file.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::note;
use crate::protocol::reply::ReportRendered;
use crate::protocol::{CommandKind, ReportFormat};

/// Write a session's report: its prompts, answers, diffs, checks, test
/// tables, images, cost and timeline, in one file.
///
/// The HTML is self-contained (styles inline, images as data: URIs, the
/// timeline as inline SVG) and fetches nothing, so it can be attached to a
/// pull request or kept as a CI artifact. Markdown suits a pull request's
/// description. Written to stdout unless -o names a file.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session report 01m9 -o report.html
  cortex session report 01m9 --format md > SESSION.md")]
pub(crate) struct ReportArgs {
    /// The session id, or a unique prefix of it.
    id: String,
    /// html (one file, nothing fetched) or md.
    #[arg(long, value_enum, default_value_t = Format::Html)]
    format: Format,
    /// Write the report here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Html,
    Md,
}

pub(crate) fn run(args: ReportArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut backend = Backend::open(ctx)?;
    let (session, _) = backend.session(&args.id)?;
    let format = match args.format {
        Format::Html => ReportFormat::Html,
        Format::Md => ReportFormat::Md,
    };
    let kind = CommandKind::RenderReport { session_id: session.id.clone(), format };
    let report = backend.command_as::<ReportRendered>(kind)?;
    match &args.output {
        Some(path) => {
            fs_err::write(path, &report.content)?;
            note!("Wrote the report of {} to {} ({} bytes).", session.id, path.display(), report.content.len());
        }
        None => std::io::stdout().lock().write_all(report.content.as_bytes())?,
    }
    Ok(Exit::Ok)
}
