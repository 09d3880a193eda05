//! Terminals: a shell on a PTY (portable-pty) in a workspace, its output
//! sent to Core as it comes, keys and sizes taken from Core. The command
//! lines a person types are picked out of the keys (Enter ends one,
//! Backspace edits it), redacted, sent to Core as history and recorded in
//! the session the terminal was opened from.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};

use crate::protocol::{NodeFrame, PROTOCOL_VERSION};

/// Where terminal frames go: the current link to Core, if any.
pub type Outlet = Arc<Mutex<Option<tokio::sync::mpsc::Sender<NodeFrame>>>>;

struct Pty {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    /// The line being typed, for the history.
    line: String,
    /// Output bytes so far.
    offset: Arc<Mutex<u64>>,
}

/// The terminals open on this node.
#[derive(Default)]
pub struct Terminals {
    open: Mutex<HashMap<String, Pty>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn send(outlet: &Outlet, frame: NodeFrame) {
    let sender = lock(outlet).clone();
    if let Some(sender) = sender {
        let _ = sender.blocking_send(frame);
    }
}

impl Terminals {
    /// Starts the person's shell in `dir`; output flows to `outlet` until
    /// the shell exits.
    pub fn open(&self, id: &str, dir: &Path, cols: u16, rows: u16, outlet: Outlet) -> std::io::Result<()> {
        let other = |error: anyhow::Error| std::io::Error::other(error.to_string());
        let pair = native_pty_system()
            .openpty(PtySize { rows: rows.max(2), cols: cols.max(10), pixel_width: 0, pixel_height: 0 })
            .map_err(other)?;
        let shell =
            std::env::var("SHELL").ok().filter(|shell| Path::new(shell).exists()).unwrap_or_else(|| "/bin/sh".into());
        let mut command = CommandBuilder::new(shell);
        command.cwd(dir);
        command.env("TERM", "xterm-256color");
        let mut child = pair.slave.spawn_command(command).map_err(other)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().map_err(other)?;
        let writer = pair.master.take_writer().map_err(other)?;
        let offset = Arc::new(Mutex::new(0u64));
        lock(&self.open)
            .insert(id.to_string(), Pty { master: pair.master, writer, line: String::new(), offset: offset.clone() });
        let terminal = id.to_string();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            let mut carry: Vec<u8> = Vec::new();
            loop {
                // Linux ends a PTY with EIO rather than a zero read.
                let read = match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                *lock(&offset) += read as u64;
                carry.extend_from_slice(&buffer[..read]);
                let whole = match std::str::from_utf8(&carry) {
                    Ok(_) => carry.len(),
                    Err(error) if error.error_len().is_none() => error.valid_up_to(),
                    Err(_) => carry.len(),
                };
                let data = String::from_utf8_lossy(&carry[..whole]).into_owned();
                carry.drain(..whole);
                if !data.is_empty() {
                    send(&outlet, NodeFrame::TermOutput { v: PROTOCOL_VERSION, terminal: terminal.clone(), data });
                }
            }
            let code = child.wait().ok().map(|status| status.exit_code() as i32);
            send(&outlet, NodeFrame::TermExit { v: PROTOCOL_VERSION, terminal, code });
        });
        Ok(())
    }

    /// Types `data`; returns each command line it completed, with the
    /// output offset it starts at.
    pub fn input(&self, id: &str, data: &str) -> Vec<(String, u64)> {
        let mut open = lock(&self.open);
        let Some(pty) = open.get_mut(id) else { return Vec::new() };
        if pty.writer.write_all(data.as_bytes()).and_then(|()| pty.writer.flush()).is_err() {
            return Vec::new();
        }
        let mut finished = Vec::new();
        let mut chars = data.chars().peekable();
        while let Some(char) = chars.next() {
            match char {
                '\r' | '\n' => {
                    let line = std::mem::take(&mut pty.line);
                    if !line.trim().is_empty() {
                        finished.push((line.trim().to_string(), *lock(&pty.offset)));
                    }
                }
                '\u{7f}' | '\u{8}' => {
                    pty.line.pop();
                }
                '\u{3}' | '\u{15}' => pty.line.clear(),
                // An escape sequence (arrows, …): the line can no longer be
                // followed key by key; keep what was typed.
                '\u{1b}' => {
                    while chars.peek().is_some_and(|next| !next.is_ascii_alphabetic() && *next != '~') {
                        chars.next();
                    }
                    chars.next();
                }
                char if !char.is_control() => pty.line.push(char),
                _ => {}
            }
        }
        finished
    }

    pub fn resize(&self, id: &str, cols: u16, rows: u16) {
        if let Some(pty) = lock(&self.open).get(id) {
            let _ =
                pty.master.resize(PtySize { rows: rows.max(2), cols: cols.max(10), pixel_width: 0, pixel_height: 0 });
        }
    }

    /// Ends a terminal: its shell gets a hangup when the PTY closes.
    pub fn close(&self, id: &str) -> bool {
        lock(&self.open).remove(id).is_some()
    }

    pub fn forget_exited(&self, id: &str) {
        lock(&self.open).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_become_history_with_backspace_and_arrows_handled() {
        let terminals = Terminals::default();
        let outlet: Outlet = Arc::default();
        let dir = tempfile::tempdir().unwrap();
        terminals.open("t1", dir.path(), 80, 24, outlet).unwrap();
        assert!(terminals.input("t1", "echo helo").is_empty());
        let lines = terminals.input("t1", "\u{7f}lo\r");
        assert_eq!(lines.iter().map(|(line, _)| line.as_str()).collect::<Vec<_>>(), ["echo hello"]);
        let lines = terminals.input("t1", "ls\u{1b}[Ab\r\r");
        assert_eq!(lines.iter().map(|(line, _)| line.as_str()).collect::<Vec<_>>(), ["lsb"]);
        assert!(terminals.close("t1"));
        assert!(terminals.input("t1", "x\r").is_empty());
    }
}
