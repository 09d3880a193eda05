//! `cortex session start`: start a session and run its first turn, through
//! Core when one is running, in-process otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{Reporting, follow_turn, report_turn};
use crate::cli::Exit;
use crate::cli::backend::Ctx;
use crate::cli::client::{Client, Target};
use crate::cli::local::Local;
use crate::cli::output::{Transcript, print_json};
use crate::node::ProviderSpec;
use crate::protocol::reply::TurnAccepted;
use crate::protocol::{CommandKind, Workspace};
use crate::store::Store;

/// Start an agent session and run its first turn.
///
/// From inside a git repository, its root becomes the workspace (bound on the
/// node on this machine when Core runs). Everything the session does is
/// recorded under refs/cortex/sessions/<id> in that repository.
///
/// With a running Core the session lives on its node: --detach returns at
/// once, a terminal attaches, and otherwise (CI) the command waits for the
/// turn. Without Core it runs in this process. Exit codes: 0 the turn
/// completed, 1 the agent failed, 2 bad input (nothing is written), 3 Core
/// unreachable.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session start \"fix the flaky test\"
  cortex session start --script .cortex/scripts/demo.toml --json
  cortex session start \"long job\" --detach")]
pub(crate) struct StartArgs {
    /// What the agent should do. Defaults to a note naming the script when --script is given.
    prompt: Option<String>,
    /// The agent that runs the session: `fake` (built in, scripted),
    /// `codex` (app-server), `codex-exec`, `claude`, or an agent speaking
    /// the Agent Client Protocol: `codex-acp`, `gemini`, or any declared as
    /// [agents.NAME] in .cortex/config.toml (docs/providers.md).
    #[arg(long, value_name = "NAME", default_value = "fake")]
    provider: String,
    /// A script for the `fake` provider (see docs/fake-provider.md).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// A title for the session (default: the prompt's first line).
    #[arg(long)]
    title: Option<String>,
    /// Approve every approval request without asking.
    #[arg(long)]
    yes: bool,
    /// With no terminal, let approval requests wait for a person (the panel,
    /// or `cortex session approve|deny`) instead of denying them at once;
    /// needs a Core.
    #[arg(long, conflicts_with = "yes")]
    wait_for_approval: bool,
    /// Print one JSON object (docs/json.md) instead of text; the transcript is not shown.
    #[arg(long)]
    json: bool,
    /// Exit 1 when a check run after the turn fails (the turn itself may
    /// have completed).
    #[arg(long)]
    fail_on_checks: bool,
    /// Print the session id and return at once; the session runs on its node (needs Core).
    #[arg(long)]
    detach: bool,
    /// The node to run on (id or name); default: the one the repository is bound on, or the only one online.
    #[arg(long)]
    node: Option<String>,
    /// A workspace (id or name) to run in, instead of the repository you are in.
    #[arg(long)]
    workspace: Option<String>,
    /// Run in a new git worktree on a branch `cortex/<short id>`: the main
    /// checkout stays untouched. `cortex gc` removes it once the session is
    /// stopped and its last state is in the session ref.
    #[arg(long)]
    worktree: bool,
}

pub(crate) fn run(args: StartArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let prompt = match (&args.prompt, &args.script) {
        (Some(prompt), _) if !prompt.trim().is_empty() => prompt.clone(),
        (_, Some(script)) => format!("Run the script {}", script.display()),
        _ => anyhow::bail!("a prompt is needed: cortex session start \"what the agent should do\""),
    };
    let provider = provider_spec(&args.provider, args.script.as_deref())?;
    provider.check(&std::env::current_dir().context("cannot read the current directory")?)?;
    let target = if args.detach {
        Target::require(ctx, "--detach")?
    } else {
        match Target::find_or_local(ctx) {
            Target::Remote(client) => client,
            Target::Local => return run_local(args, ctx, provider, prompt),
        }
    };
    run_remote(args, &target, provider, prompt)
}

fn run_local(args: StartArgs, ctx: &Ctx, provider: ProviderSpec, prompt: String) -> anyhow::Result<Exit> {
    if args.workspace.is_some() || args.node.is_some() {
        anyhow::bail!("--workspace and --node need a running Core: start one with `cortex up`");
    }
    let store = Store::discover(&std::env::current_dir().context("cannot read the current directory")?)?;
    let mut local = Local::open(&ctx.data)?;
    // The same commands as through Core, run by this process's node.
    let bind = CommandKind::BindWorkspace { path: store.workdir().to_string_lossy().into_owned(), name: None };
    let (workspace, _): (Workspace, _) = local.run(bind, true)?;
    let (accepted, ran): (TurnAccepted, _) =
        local.run(start_command(&args, &workspace, provider, prompt), args.json)?;
    let result = ran.turn.with_context(|| format!("session {} ran no turn", accepted.session_id))?;
    report_turn(
        result,
        store.workdir(),
        Reporting { json: args.json, fail_on_checks: args.fail_on_checks },
        &ran.evidence,
    )
}

/// The `start_session` command for these arguments, alike in-process and
/// through Core.
fn start_command(args: &StartArgs, workspace: &Workspace, provider: ProviderSpec, prompt: String) -> CommandKind {
    let name = provider.name().to_string();
    let script = match provider {
        ProviderSpec::Fake { script, .. } => script,
        ProviderSpec::Codex | ProviderSpec::CodexExec | ProviderSpec::Claude | ProviderSpec::Acp { .. } => None,
    };
    CommandKind::StartSession {
        session_id: None,
        workspace_id: workspace.id.clone(),
        provider: name,
        script,
        prompt,
        title: args.title.clone(),
        auto_approve: args.yes,
        // Nobody at a terminal and no `--yes`: approvals are denied at
        // once (a detached session waits for the panel).
        deny_approvals: !args.yes && !args.wait_for_approval && !args.detach && !std::io::stdin().is_terminal(),
        worktree: args.worktree,
    }
}

fn run_remote(args: StartArgs, client: &Client, provider: ProviderSpec, prompt: String) -> anyhow::Result<Exit> {
    let workspace = find_workspace(client, args.workspace.as_deref(), args.node.as_deref())?;
    let accepted: TurnAccepted = client.command_as(start_command(&args, &workspace, provider, prompt), None)?;
    let session = accepted.session_id;
    if args.detach {
        if args.json {
            print_json(&serde_json::json!({ "session_id": session, "workspace_path": workspace.path }))?;
        } else {
            println!("{session}");
        }
        return Ok(Exit::Ok);
    }
    if !args.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        return super::attach::attach(client, &session, 0, args.yes);
    }
    let mut transcript = Transcript::new(args.json);
    match follow_turn(client, &session, 1, 0, &mut transcript)? {
        Some(result) => report_turn(
            result,
            Path::new(&workspace.path),
            Reporting { json: args.json, fail_on_checks: args.fail_on_checks },
            &transcript.evidence,
        ),
        None => Ok(Exit::Ok),
    }
}

/// The workspace to run in: the one named, or the repository here (bound on
/// the right node first if Core does not know it yet).
fn find_workspace(client: &Client, named: Option<&str>, node: Option<&str>) -> anyhow::Result<Workspace> {
    let workspaces: Vec<Workspace> = client.get("/api/v1/workspaces", &[])?;
    if let Some(named) = named {
        let found: Vec<_> = workspaces
            .into_iter()
            .filter(|workspace| workspace.id.as_str() == named || workspace.name == named)
            .collect();
        return match found.len() {
            1 => Ok(found.into_iter().next().expect("holds because there is one")),
            0 => anyhow::bail!("no workspace `{named}` (`cortex workspace list` shows them)"),
            _ => anyhow::bail!("`{named}` names several workspaces: use its id"),
        };
    }
    let store = Store::discover(&std::env::current_dir().context("cannot read the current directory")?)?;
    let root = store.workdir().to_string_lossy().into_owned();
    let node_id = match node {
        Some(node) => Some(super::super::node::resolve_node(client, node)?),
        None => None,
    };
    let here = workspaces
        .into_iter()
        .find(|workspace| workspace.path == root && node_id.as_ref().is_none_or(|id| *id == workspace.node));
    if let Some(workspace) = here {
        return Ok(workspace);
    }
    client.command_as(CommandKind::BindWorkspace { path: root, name: None }, node_id)
}

/// The provider as the node needs it: a script travels as text, since the
/// node may be on another machine.
fn provider_spec(name: &str, script: Option<&Path>) -> anyhow::Result<ProviderSpec> {
    let Some(spec) = ProviderSpec::named(name, None) else {
        anyhow::bail!(
            "`{name}` is not a provider name: use fake, codex, codex-exec, claude, or an ACP agent's name (letters, digits, `-`, `_`, `.`)"
        );
    };
    match (spec, script) {
        (ProviderSpec::Fake { .. }, script) => {
            let text = match script {
                Some(path) => Some(fs_err::read_to_string(path).map_err(|error| {
                    anyhow::anyhow!("script `{}`: cannot read it: {}", path.display(), error.kind())
                })?),
                None => None,
            };
            let script_name = script.map(|path| path.display().to_string()).unwrap_or_default();
            Ok(ProviderSpec::Fake { script: text, script_name })
        }
        (_, Some(_)) => anyhow::bail!("--script is for the fake provider only"),
        (spec, None) => Ok(spec),
    }
}
