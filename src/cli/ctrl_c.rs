//! Ctrl-C during a turn run in this process: the first press interrupts
//! the turn cleanly (the agent is told, the session ends `interrupted`,
//! its process group is ended by the provider as always), the second
//! forces: every agent process group this process started is killed and
//! the command exits 130. Outside a turn, Ctrl-C does what it always does.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;

use crate::node::Cancel;

/// True outside a turn: a Ctrl-C then ends the process (SIGINT's default).
fn default_outside_turns() -> &'static Arc<AtomicBool> {
    static RESTORE: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    RESTORE.get_or_init(|| {
        let restore = Arc::new(AtomicBool::new(true));
        if let Err(error) = signal_hook::flag::register_conditional_default(SIGINT, restore.clone()) {
            tracing::warn!(%error, "Ctrl-C keeps its default: cannot register a handler");
        }
        restore
    })
}

/// Ctrl-C handling for one turn; dropping it hands Ctrl-C back.
pub(crate) struct TurnKeys {
    handle: Option<signal_hook::iterator::Handle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TurnKeys {
    pub(crate) fn watch(cancel: Cancel) -> TurnKeys {
        let restore = default_outside_turns();
        let Ok(mut signals) = Signals::new([SIGINT]) else {
            return TurnKeys { handle: None, thread: None };
        };
        restore.store(false, Ordering::SeqCst);
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            let mut presses = 0;
            for _ in signals.forever() {
                presses += 1;
                if presses == 1 {
                    eprintln!("\ncortex: interrupting the turn at the agent's next step (Ctrl-C again to force)…");
                    cancel.interrupt();
                } else {
                    eprintln!(
                        "\ncortex: forced: the agent's processes are killed; `cortex session send` continues the session"
                    );
                    kill_agent_groups();
                    std::process::exit(130);
                }
            }
        });
        TurnKeys { handle: Some(handle), thread: Some(thread) }
    }
}

impl Drop for TurnKeys {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        default_outside_turns().store(true, Ordering::SeqCst);
    }
}

/// Kills the process group of every child of this process: agents and
/// checks are started as leaders of their own group.
fn kill_agent_groups() {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parens.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) == Some(&me.as_str()) && fields.get(2) == Some(&pid.to_string().as_str()) {
            // SAFETY: killpg only sends a signal; the group is this child's own.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}
