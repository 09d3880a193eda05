//! The per-session spool and lock under `.git/cortex/`. The spool holds every
//! accepted event, fsynced, until a flush has put it into the ref; after a
//! crash the next Cortex command replays it. The lock (an OS file lock, gone
//! with its process) tells a live writer from a dead one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Error, IoContext, Result, SessionWriter, Store};
use crate::protocol::{Event, EventKind, SessionId, SessionState, TurnOutcome};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SpoolRecord {
    Event(String),
    Raw { seq: u64, line: String },
}

pub(crate) struct Spool {
    path: PathBuf,
    file: File,
    /// Held for the writer's lifetime; released by the OS if the process dies.
    _lock: File,
}

impl Spool {
    /// Takes the session's lock and opens its spool for appending.
    pub(crate) fn open(store: &Store, id: &SessionId) -> Result<Spool> {
        let dir = store.cortex_dir().join("spool");
        fs_err::create_dir_all(&dir).io(|| "cannot create the spool folder".into())?;
        let lock_path = dir.join(format!("{id}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .io(|| format!("cannot open `{}`", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::SessionBusy(id.clone())),
            Err(TryLockError::Error(source)) => {
                return Err(Error::Io { context: format!("cannot lock `{}`", lock_path.display()), source });
            }
        }
        let path = dir.join(format!("{id}.jsonl"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .io(|| format!("cannot open the spool `{}`", path.display()))?;
        Ok(Spool { path, file, _lock: lock })
    }

    pub(crate) fn append(&mut self, records: &[SpoolRecord]) -> Result<()> {
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).expect("holds because records are plain JSON"));
            text.push('\n');
        }
        self.file.write_all(text.as_bytes()).io(|| format!("cannot write the spool `{}`", self.path.display()))?;
        self.file.sync_data().io(|| format!("cannot fsync the spool `{}`", self.path.display()))
    }

    /// Every complete record; a torn last line (the crash hit mid-write) is
    /// dropped, since its event was never acknowledged to anyone.
    pub(crate) fn read(&self) -> Result<Vec<SpoolRecord>> {
        let text = fs_err::read_to_string(&self.path).io(|| "cannot read the spool".into())?;
        Ok(text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect())
    }

    pub(crate) fn clear(&mut self) -> Result<()> {
        self.file.set_len(0).io(|| format!("cannot truncate the spool `{}`", self.path.display()))?;
        self.file.sync_data().io(|| format!("cannot fsync the spool `{}`", self.path.display()))
    }

    pub(crate) fn remove(self) -> Result<()> {
        fs_err::remove_file(&self.path).io(|| "cannot remove the spool".into())
    }
}

/// What crash recovery did for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub session: SessionId,
    /// Events found in the spool but not in the ref, now in the ref.
    pub replayed: usize,
    /// The session was mid-turn when its process died and is now `interrupted`.
    pub interrupted: bool,
}

impl Store {
    /// Replays the spool of every session whose writer died, and marks a
    /// session that was mid-turn as `interrupted`. Sessions with a live writer
    /// are left alone.
    pub fn recover(&self) -> Result<Vec<Recovered>> {
        let dir = self.cortex_dir().join("spool");
        let Ok(entries) = fs_err::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut recovered = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".jsonl").and_then(|stem| stem.parse::<SessionId>().ok()) else {
                continue;
            };
            if self.session_tip(&id)?.is_none() {
                tracing::warn!(session = %id, "spool without a session ref; leaving it for inspection");
                continue;
            }
            let mut writer = match SessionWriter::open(self, &id) {
                Ok(writer) => writer,
                Err(Error::SessionBusy(_)) => continue,
                Err(error) => return Err(error),
            };
            let replayed = writer.replayed();
            let state = writer.meta().state;
            let interrupted = state.is_busy();
            if interrupted {
                // A session that never got past `starting` has nothing to resume.
                let to = if state == SessionState::Starting { SessionState::Failed } else { SessionState::Interrupted };
                let reason = "the Cortex process running this session stopped during a turn".to_string();
                let turn = (writer.meta().turns > 0).then_some(writer.meta().turns);
                let at = jiff::Timestamp::now();
                let seq = writer.last_seq();
                let events = [
                    Event { seq: seq + 1, at, turn, cause: None, kind: EventKind::Warning { message: reason.clone() } },
                    Event {
                        seq: seq + 2,
                        at,
                        turn,
                        cause: None,
                        kind: EventKind::TurnFinished { outcome: TurnOutcome::Interrupted },
                    },
                    Event {
                        seq: seq + 3,
                        at,
                        turn,
                        cause: None,
                        kind: EventKind::Lifecycle {
                            from: Some(state),
                            to,
                            reason: Some(reason.clone()),
                        },
                    },
                ];
                writer.append(&events)?;
                writer.set_state(to, Some(reason));
            }
            writer.flush(super::FlushReason::Recovery)?;
            writer.close()?;
            recovered.push(Recovered { session: id, replayed, interrupted });
        }
        Ok(recovered)
    }
}
