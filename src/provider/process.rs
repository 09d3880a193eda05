//! An agent CLI as a child speaking one JSON object per line: spawned as
//! the leader of its own process group with stderr to a log, its lines read
//! on a thread of their own, messages written whole; dropped, its stdin is
//! closed and, if it is still there half a second later, the signal ladder
//! ends it (some agents, codex-acp, ignore a closed stdin).

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Error;

pub(crate) struct AgentProcess {
    pub(crate) child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    pub(crate) lines: mpsc::Receiver<String>,
    /// How errors name the agent ("claude", "the agent").
    name: &'static str,
    /// Where its stderr goes.
    log: std::path::PathBuf,
}

impl AgentProcess {
    /// Starts `command` with its stderr in `log`; `install` says what to do
    /// when the program cannot be started.
    pub(crate) fn spawn(
        mut command: Command,
        log: &Path,
        name: &'static str,
        install: &str,
    ) -> Result<AgentProcess, Error> {
        use std::os::unix::process::CommandExt;
        if let Some(parent) = log.parent() {
            fs_err::create_dir_all(parent)
                .map_err(|source| Error::Io { context: format!("cannot create `{}`", parent.display()), source })?;
        }
        let stderr = fs_err::File::create(log)
            .map_err(|source| Error::Io { context: format!("cannot create the log of {name}"), source })?;
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.into_parts().0))
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Io { context: format!("cannot start `{program}` ({install})"), source })?;
        let stdin = child.stdin.take().expect("holds because stdin is piped");
        let lines = super::line_reader(child.stdout.take().expect("holds because stdout is piped"));
        Ok(AgentProcess { child, stdin: Some(stdin), lines, name, log: log.to_path_buf() })
    }

    pub(crate) fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Why the process ended, for a person: when (`during the turn`), its
    /// exit status and the last line of its log (where agents say what went
    /// wrong).
    pub(crate) fn exit_reason(&mut self, when: &str) -> String {
        let until = Instant::now() + Duration::from_secs(1);
        let mut status = self.child.try_wait().ok().flatten();
        while status.is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
            status = self.child.try_wait().ok().flatten();
        }
        let name = self.name;
        let mut reason = match status {
            Some(status) => format!("{name} exited {when} ({status})"),
            None => format!("{name} closed its output {when}"),
        };
        if let Some(line) = last_line(&self.log) {
            reason.push_str(": ");
            reason.push_str(&line);
        }
        reason
    }

    pub(crate) fn send(&mut self, message: &Value) -> Result<(), Error> {
        let mut line = serde_json::to_string(message).expect("holds because messages are JSON");
        line.push('\n');
        let name = self.name;
        let stdin = self.stdin.as_mut().ok_or_else(|| Error::Agent(format!("the input of {name} is closed")))?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|source| Error::Io { context: format!("cannot write to {name}"), source })
    }
}

/// The last non-empty line of a log, without control characters, at most
/// 300 characters.
fn last_line(log: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs_err::File::open(log).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().map(str::trim).rfind(|line| !line.is_empty())?;
    Some(line.chars().filter(|c| !c.is_control()).take(300).collect())
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if !self.is_alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        super::kill_ladder(&mut self.child);
    }
}
