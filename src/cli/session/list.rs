//! `cortex session list`: a table people can scan (a header, state colours,
//! relative ages), this repository's sessions by default, filters like the
//! panel's `/sessions`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use crate::cli::Exit;
use crate::cli::backend::{Backend, Ctx};
use crate::cli::output::{colour_stdout, paint_state, parse_duration, print_json};
use crate::protocol::{SessionState, SessionSummary};
use crate::web::ago;

/// List sessions, newest update first.
///
/// Inside a git repository, only that repository's sessions: those whose
/// refs it holds, fetched ones included (`--all` for every one); elsewhere,
/// every session Core (or this machine) knows.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex session list                          this repository's sessions
  cortex session list --all --state running    every running session
  cortex session list --node build-box --since 1d --limit 20
  cortex session list --json | jq '.[].id'")]
pub(crate) struct ListArgs {
    /// Only sessions in this state (starting, running, idle, awaiting_approval, interrupted, stopped, failed, expired).
    #[arg(long, value_name = "STATE")]
    state: Option<SessionState>,
    /// Only sessions of this workspace: its id, its name, or its path.
    #[arg(long, value_name = "WORKSPACE")]
    workspace: Option<String>,
    /// Only sessions on this node: its id or its name.
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// Only sessions of this agent (fake, codex, claude, codex-acp, …).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// Only sessions updated within this long: 90s, 30m, 2h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    since: Option<Duration>,
    /// At most this many sessions.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Every repository's sessions, not only the one you are in.
    #[arg(long, conflicts_with = "workspace")]
    all: bool,
    /// Print a JSON array (docs/json.md).
    #[arg(long)]
    json: bool,
}

/// The repository the command runs in, and the sessions whose refs it
/// holds (its own, and those fetched into it).
fn current_repository() -> Option<(PathBuf, Vec<crate::protocol::SessionId>)> {
    let cwd = std::env::current_dir().ok()?;
    let store = crate::store::Store::discover(&cwd).ok()?;
    let ids = store.session_tips().map(|tips| tips.into_iter().map(|(id, _)| id).collect()).unwrap_or_default();
    Some((store.workdir().canonicalize().unwrap_or_else(|_| store.workdir().to_path_buf()), ids))
}

fn same_path(recorded: &str, path: &Path) -> bool {
    let recorded = Path::new(recorded);
    recorded == path || recorded.canonicalize().is_ok_and(|canonical| canonical == path)
}

pub(crate) fn run(args: ListArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let backend = Backend::open(ctx)?;
    let mut sessions = backend.sessions(args.state)?;
    let mut scope = None;
    if let Some(wanted) = &args.workspace {
        let workspaces = backend.workspaces()?;
        let found: Vec<_> = workspaces
            .iter()
            .filter(|workspace| {
                workspace.id.as_str() == wanted
                    || workspace.name == *wanted
                    || same_path(&workspace.path, Path::new(wanted))
            })
            .collect();
        if found.is_empty() {
            bail!("no workspace `{wanted}`: `cortex workspace list` shows their ids, names and paths");
        }
        sessions.retain(|session| found.iter().any(|workspace| workspace.id == session.workspace_id));
    } else if !args.all
        && let Some((repo, here)) = current_repository()
    {
        sessions.retain(|session| here.contains(&session.id) || same_path(&session.workspace_path, &repo));
        scope = Some(repo);
    }
    if let Some(wanted) = &args.node {
        let ids: Vec<String> = backend
            .node_names()?
            .into_iter()
            .filter(|(id, name)| id == wanted || name == wanted)
            .map(|(id, _)| id)
            .chain([wanted.clone()])
            .collect();
        sessions.retain(|session| ids.contains(&session.node));
    }
    if let Some(provider) = &args.provider {
        sessions.retain(|session| session.provider == *provider);
    }
    if let Some(since) = args.since {
        let now = jiff::Timestamp::now();
        sessions.retain(|session| (now - session.updated_at).get_seconds() <= since.as_secs() as i64);
    }
    sessions.sort_by_key(|session| std::cmp::Reverse(session.updated_at));
    if let Some(limit) = args.limit {
        sessions.truncate(limit);
    }
    if args.json {
        print_json(&sessions)?;
        return Ok(Exit::Ok);
    }
    print_table(&sessions, scope.as_deref())?;
    Ok(Exit::Ok)
}

fn print_table(sessions: &[SessionSummary], scope: Option<&Path>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if sessions.is_empty() {
        match scope {
            Some(repo) => writeln!(
                out,
                "No sessions in {} (`--all` lists every repository's). Start one with: cortex session start \"what the agent should do\"\nA fresh clone has none until `cortex refs fetch` brings them.",
                repo.display()
            )?,
            None => writeln!(out, "No sessions. Start one with: cortex session start \"what the agent should do\"")?,
        }
        return Ok(());
    }
    let colour = colour_stdout();
    let id_width = sessions.iter().map(|session| session.id.as_str().len()).max().unwrap_or(2);
    writeln!(
        out,
        "{:<id_width$}  {:<17}  {:>5}  {:<12}  {:<9}  {}",
        "ID",
        "STATE",
        "TURNS",
        "UPDATED",
        "AGENT",
        if scope.is_some() { "TITLE" } else { "WORKSPACE  TITLE" }
    )?;
    for session in sessions {
        let state = paint_state(session.state, &format!("{:<17}", session.state.as_str()), colour);
        let place = if scope.is_some() { String::new() } else { format!("{}  ", session.workspace_path) };
        writeln!(
            out,
            "{:<id_width$}  {state}  {:>5}  {:<12}  {:<9}  {place}{}",
            session.id.as_str(),
            session.turns,
            ago(session.updated_at),
            session.provider,
            session.title
        )?;
    }
    Ok(())
}
