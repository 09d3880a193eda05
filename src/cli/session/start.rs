//! `cortex session start`: bind the repository, start a session, run turn 1.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::report_turn;
use crate::cli::Exit;
use crate::cli::local::Local;
use crate::cli::output::{TerminalApprover, Transcript};
use crate::node::{ProviderSpec, StartRequest};
use crate::store::Store;

/// Start an agent session in the current repository and run its first turn.
///
/// The repository's root becomes a workspace. Everything the session does is
/// recorded under refs/cortex/sessions/<id> in it. Exit codes: 0 the turn
/// completed, 1 the agent failed, 2 bad input (nothing is written).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cortex session start \"fix the flaky test\"\n  cortex session start --provider fake --script .cortex/demo.toml --json"
)]
pub(crate) struct StartArgs {
    /// What the agent should do. Defaults to a note naming the script when --script is given.
    prompt: Option<String>,
    /// The agent that runs the session.
    #[arg(long, value_enum, default_value_t = ProviderName::Fake)]
    provider: ProviderName,
    /// A script for the `fake` provider (see docs/fake-provider.md).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// A title for the session (default: the prompt's first line).
    #[arg(long)]
    title: Option<String>,
    /// Approve every approval request without asking.
    #[arg(long)]
    yes: bool,
    /// Print one JSON object (docs/json.md) instead of text; the transcript is not shown.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProviderName {
    /// The scripted agent built into Cortex.
    Fake,
}

pub(crate) fn run(args: StartArgs, data: &Path) -> anyhow::Result<Exit> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let store = Store::discover(&cwd)?;
    let prompt = match (&args.prompt, &args.script) {
        (Some(prompt), _) if !prompt.trim().is_empty() => prompt.clone(),
        (_, Some(script)) => format!("Run the script {}", script.display()),
        _ => anyhow::bail!("a prompt is needed: cortex session start \"what the agent should do\""),
    };
    let provider = provider_spec(args.provider, args.script.as_deref())?;
    let local = Local::open(data)?;
    let request = StartRequest {
        provider,
        prompt,
        title: args.title,
        session_id: None,
    };
    let mut approver = TerminalApprover { yes: args.yes };
    let mut transcript = Transcript { quiet: args.json };
    let result = local
        .node
        .start_session(&store, request, &mut approver, &mut transcript)?;
    let mut local = local;
    local.core.sync(&local.node.workspaces()?)?;
    report_turn(result, store.workdir(), args.json)
}

/// The provider as the node needs it: a script travels as text, since the
/// node may be on another machine.
fn provider_spec(name: ProviderName, script: Option<&Path>) -> anyhow::Result<ProviderSpec> {
    match name {
        ProviderName::Fake => {
            let text = match script {
                Some(path) => Some(fs_err::read_to_string(path).map_err(|error| {
                    anyhow::anyhow!(
                        "script `{}`: cannot read it: {}",
                        path.display(),
                        error.kind()
                    )
                })?),
                None => None,
            };
            let script_name = script
                .map(|path| path.display().to_string())
                .unwrap_or_default();
            Ok(ProviderSpec::Fake {
                script: text,
                script_name,
            })
        }
    }
}
