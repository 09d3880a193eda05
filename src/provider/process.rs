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
        Ok(AgentProcess { child, stdin: Some(stdin), lines, name })
    }

    pub(crate) fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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
