//! `cortex term`: a shell in a workspace on whichever node has it, through
//! Core, in this terminal (raw mode; Ctrl-] detaches). The same terminals as
//! the panel's: attach to one by id, or open a new one.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;

use super::Exit;
use super::backend::Ctx;
use super::client::{Target, TerminalEnd};
use crate::protocol::reply::TerminalOpened;
use crate::protocol::{CommandKind, Workspace};

/// Ctrl-]: detach, as telnet and docker do.
const DETACH: u8 = 0x1d;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cortex term                      # a shell in the repository you are in, on its node
  cortex term repo1 --session 01m9  # in that session's worktree, recorded in the session
  cortex term --attach trm_01m9…    # back to a terminal that goes on")]
pub(crate) struct TermArgs {
    /// The workspace: its id, its name, or a path inside it (default: the
    /// repository you are in).
    workspace: Option<String>,
    /// Open it in this session's worktree; commands typed are recorded in
    /// the session as yours.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Attach to an open terminal (its id, from the panel or an earlier run)
    /// instead of opening one.
    #[arg(long, value_name = "TERMINAL", conflicts_with_all = ["workspace", "session"])]
    attach: Option<String>,
}

/// Puts the terminal in raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> Option<RawMode> {
        crossterm::terminal::enable_raw_mode().ok().map(|()| RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

fn pick_workspace(workspaces: Vec<Workspace>, given: Option<&str>) -> anyhow::Result<Workspace> {
    let here = std::env::current_dir()?;
    let wanted = given.map(str::to_string);
    let as_path = wanted.as_deref().map(Path::new).unwrap_or(&here).canonicalize().ok();
    let by_name: Vec<&Workspace> = match &wanted {
        Some(wanted) => {
            workspaces.iter().filter(|workspace| workspace.id.as_str() == wanted || &workspace.name == wanted).collect()
        }
        None => Vec::new(),
    };
    if by_name.len() == 1 {
        return Ok(by_name[0].clone());
    }
    if by_name.len() > 1 {
        bail!("several workspaces are called `{}`: give its id (`cortex workspace list`)", wanted.unwrap_or_default());
    }
    let inside = as_path.and_then(|path| {
        workspaces
            .iter()
            .filter(|workspace| Path::new(&workspace.path).canonicalize().is_ok_and(|root| path.starts_with(root)))
            .max_by_key(|workspace| workspace.path.len())
            .cloned()
    });
    inside.with_context(|| match wanted {
        Some(wanted) => format!("no workspace `{wanted}` (`cortex workspace list` shows them)"),
        None => "this directory is in no bound workspace: name one, or bind it with `cortex workspace bind`".into(),
    })
}

pub(crate) fn run(args: TermArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "a terminal")?;
    let interactive = std::io::stdin().is_terminal();
    let size = crossterm::terminal::size().ok().filter(|_| interactive);
    let terminal = match args.attach {
        Some(terminal) => terminal,
        None => {
            let workspaces: Vec<Workspace> = client.get("/api/v1/workspaces", &[])?;
            let workspace = pick_workspace(workspaces, args.workspace.as_deref())?;
            let session_id = match args.session {
                Some(session) => Some(client.session(&session)?.0.id),
                None => None,
            };
            let (cols, rows) = size.unwrap_or((100, 30));
            let kind = CommandKind::OpenTerminal {
                workspace_id: workspace.id.clone(),
                session_id,
                terminal_id: None,
                cols,
                rows,
                by: std::env::var("USER").ok(),
                check: None,
            };
            let opened: TerminalOpened = client.command_as(kind, None)?;
            let terminal = opened.terminal_id;
            eprintln!(
                "terminal {terminal} in {} ({}); Ctrl-] detaches, `cortex term --attach {terminal}` comes back\r",
                opened.dir, workspace.name
            );
            terminal
        }
    };
    let (keys, typed) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 1024];
        loop {
            let read = match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let chunk = &buffer[..read];
            if let Some(stop) = chunk.iter().position(|byte| *byte == DETACH) {
                let _ = keys.blocking_send(chunk[..stop].to_vec());
                break;
            }
            if keys.blocking_send(chunk.to_vec()).is_err() {
                break;
            }
        }
    });
    let raw = if interactive { RawMode::enable() } else { None };
    let mut stdout = std::io::stdout();
    let ended = client.attach_terminal(&terminal, size, typed, &mut |text| {
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    });
    drop(raw);
    match ended? {
        TerminalEnd::Detached => {
            eprintln!("\ndetached from {terminal}; it goes on (`cortex term --attach {terminal}`)")
        }
        TerminalEnd::Exited(code) => {
            eprintln!(
                "\nthe shell of {terminal} exited{}",
                code.map(|code| format!(" with {code}")).unwrap_or_default()
            )
        }
    }
    Ok(Exit::Ok)
}
