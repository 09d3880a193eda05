//! Terminal commands: open a shell on a PTY (or run a configured check
//! like one) in a workspace or a session's worktree, close it, and type
//! keys into it; finished command lines are recorded as the person's.

use std::sync::Arc;

use super::{Runtime, lock};
use crate::node::commands::{Answer, FilePlace, failed, record_intervention};
use crate::node::config::RepoConfig;
use crate::protocol::reply::{TerminalClosed, TerminalOpened};
use crate::protocol::{CommandError, ErrorCode, NodeFrame, PROTOCOL_VERSION, SessionId, WorkspaceId};
use crate::store;

pub(super) fn open(
    runtime: &Arc<Runtime>,
    workspace: &WorkspaceId,
    session: Option<SessionId>,
    terminal_id: Option<String>,
    (cols, rows): (u16, u16),
    by: Option<String>,
    check: Option<String>,
) -> Answer {
    let place = FilePlace::find(runtime.node(), workspace, session.as_ref())?;
    let terminal = terminal_id
        .ok_or_else(|| CommandError::new(ErrorCode::BadInput, "a terminal needs an id (Core assigns one)"))?;
    if let Some(name) = check {
        return run_workspace_check(runtime, place, terminal, &name, by);
    }
    runtime
        .terminals
        .open(&terminal, place.root.dir(), cols, rows, runtime.outlet.clone())
        .map_err(|error| CommandError::new(ErrorCode::Failed, format!("cannot start a terminal: {error}")))?;
    let by = by.unwrap_or_else(|| "a person".into());
    let detail = format!("opened terminal {terminal}");
    let recorded = place.record(runtime, Some(by.clone()), "terminal", None, Some(detail));
    let dir = place.root.dir().display().to_string();
    lock(&runtime.terminal_sessions)
        .insert(terminal.clone(), (place.store.clone(), place.session.clone(), place.workspace.clone(), by));
    Ok(TerminalOpened { terminal_id: terminal, dir, recorded: Some(recorded), check: None }.into())
}

pub(super) fn close(runtime: &Arc<Runtime>, terminal_id: String) -> Answer {
    lock(&runtime.terminal_sessions).remove(&terminal_id);
    let closed = runtime.terminals.close(&terminal_id);
    Ok(TerminalClosed { terminal_id, closed }.into())
}

/// Keys for a terminal: typed into its PTY; each command line finished is
/// history for Core and, for a terminal opened from a session, an event of
/// the person's in that session.
pub(super) fn typed(runtime: &Arc<Runtime>, terminal: &str, data: &str) {
    for (line, offset) in runtime.terminals.input(terminal, data) {
        let command = store::redact::redact_str(&line).into_owned();
        let at = jiff::Timestamp::now();
        let frame = NodeFrame::TermCommand {
            v: PROTOCOL_VERSION,
            terminal: terminal.to_string(),
            command: command.clone(),
            at,
            offset,
        };
        let outlet = lock(&runtime.outlet).clone();
        if let Some(outlet) = outlet {
            let _ = outlet.blocking_send(frame);
        }
        let place = lock(&runtime.terminal_sessions).get(terminal).cloned();
        if let Some((store, session, workspace, by)) = place {
            let detail = Some(format!("{command}  (terminal {terminal}, output from byte {offset})"));
            // Recording may wait for the session; the keys must not.
            let runtime = runtime.clone();
            std::thread::spawn(move || {
                record_intervention(&runtime, &store, session.as_ref(), &workspace, by, "terminal", None, detail);
            });
        }
    }
}

/// Runs a configured check in a workspace outside any session: its output
/// streams as terminal `terminal`'s (read-only), its result is a journal line
/// by the person, with the output stored beside it as evidence.
fn run_workspace_check(
    runtime: &Arc<Runtime>,
    place: FilePlace,
    terminal: String,
    name: &str,
    by: Option<String>,
) -> Answer {
    let config = RepoConfig::load(place.root.dir()).map_err(failed)?;
    let Some(check) = config.checks.into_iter().find(|check| check.name == name) else {
        let message =
            format!("workspace `{}` has no check named `{name}` in .cortex/config.toml", place.workspace.name);
        return Err(CommandError::new(ErrorCode::BadInput, message));
    };
    let outlet = runtime.outlet.clone();
    let by = by.unwrap_or_else(|| "a person".into());
    let answer = TerminalOpened {
        terminal_id: terminal.clone(),
        dir: place.root.dir().display().to_string(),
        recorded: None,
        check: Some(name.to_string()),
    };
    std::thread::spawn(move || {
        let send = |frame: NodeFrame| {
            let sender = lock(&outlet).clone();
            if let Some(sender) = sender {
                let _ = sender.blocking_send(frame);
            }
        };
        send(NodeFrame::TermOutput {
            v: PROTOCOL_VERSION,
            terminal: terminal.clone(),
            data: format!("$ {}\r\n", store::redact::redact_str(&check.command)),
        });
        // Whole lines are redacted and shown; a secret split by a read is not.
        let mut pending: Vec<u8> = Vec::new();
        let show = |bytes: &[u8]| {
            let data = store::redact::redact_str(&String::from_utf8_lossy(bytes)).replace('\n', "\r\n");
            send(NodeFrame::TermOutput { v: PROTOCOL_VERSION, terminal: terminal.clone(), data });
        };
        let ran = crate::node::checks::run(&check, place.root.dir(), &mut |chunk| {
            pending.extend_from_slice(chunk);
            if let Some(end) = pending.iter().rposition(|byte| *byte == b'\n') {
                let lines: Vec<u8> = pending.drain(..=end).collect();
                show(&lines);
            }
        });
        if !pending.is_empty() {
            show(&pending);
        }
        let (code, verdict) = match &ran {
            Ok(run) => (run.exit_code, if run.passed { "passed" } else { "failed" }),
            Err(_) => (None, "could not run"),
        };
        let at = jiff::Timestamp::now();
        let evidence = format!("checks/{}-{}.log", at.strftime("%Y%m%dT%H%M%S"), check.name);
        let exit = code.map_or("no exit code".to_string(), |code| format!("exit {code}"));
        let entry = crate::protocol::JournalEntry {
            at,
            by,
            action: "check".into(),
            path: None,
            detail: Some(format!("{} {verdict} ({exit}); output at {evidence}", check.name)),
        };
        let output = match &ran {
            Ok(run) => run.output.clone(),
            Err(error) => error.to_string().into_bytes(),
        };
        if let Err(error) = place.store.append_journal_with(&entry, Some((&evidence, &output))) {
            tracing::warn!(%error, "a workspace check's result could not be recorded");
        }
        send(NodeFrame::TermOutput {
            v: PROTOCOL_VERSION,
            terminal: terminal.clone(),
            data: format!("\r\n[{} {verdict}, {exit}]\r\n", check.name),
        });
        send(NodeFrame::TermExit { v: PROTOCOL_VERSION, terminal, code });
    });
    Ok(answer.into())
}
