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
    /// Opened on the first append, so a writer that records nothing leaves
    /// no spool behind for recovery to find.
    file: Option<File>,
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
        Ok(Spool { path, file: None, _lock: lock })
    }

    pub(crate) fn append(&mut self, records: &[SpoolRecord]) -> Result<()> {
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).expect("holds because records are plain JSON"));
            text.push('\n');
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .io(|| format!("cannot open the spool `{}`", self.path.display()))?;
                self.file.insert(file)
            }
        };
        file.write_all(text.as_bytes()).io(|| format!("cannot write the spool `{}`", self.path.display()))?;
        file.sync_data().io(|| format!("cannot fsync the spool `{}`", self.path.display()))
    }

    /// Every complete record; a torn last line (the crash hit mid-write) is
    /// dropped, since its event was never acknowledged to anyone.
    pub(crate) fn read(&self) -> Result<Vec<SpoolRecord>> {
        let text = match fs_err::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io { context: "cannot read the spool".into(), source });
            }
        };
        Ok(text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect())
    }

    pub(crate) fn clear(&mut self) -> Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        file.set_len(0).io(|| format!("cannot truncate the spool `{}`", self.path.display()))?;
        file.sync_data().io(|| format!("cannot fsync the spool `{}`", self.path.display()))
    }

    pub(crate) fn remove(self) -> Result<()> {
        match fs_err::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { context: "cannot remove the spool".into(), source: error })
            }
            _ => Ok(()),
        }
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
            let outcome = writer.recover_in_place()?;
            writer.close()?;
            if let Some(outcome) = outcome {
                recovered.push(outcome);
            }
        }
        Ok(recovered)
    }
}

impl SessionWriter {
    /// Called right after [`SessionWriter::open`], which took the session's
    /// lock: if the session still looks mid-turn, its writer died. Spooled
    /// events go into the ref, and the session becomes `interrupted` (or
    /// `failed`, if it never got past `starting`). `None` when there was
    /// nothing to recover.
    pub fn recover_in_place(&mut self) -> Result<Option<Recovered>> {
        let replayed = self.replayed();
        let state = self.meta().state;
        let interrupted = state.is_busy();
        if interrupted {
            let to = if state == SessionState::Starting { SessionState::Failed } else { SessionState::Interrupted };
            let reason = "the Cortex process running this session stopped during a turn".to_string();
            let turn = (self.meta().turns > 0).then_some(self.meta().turns);
            let at = jiff::Timestamp::now();
            let seq = self.last_seq();
            let event = |offset: u64, kind: EventKind| Event { seq: seq + offset, at, turn, cause: None, kind };
            self.append(&mut [
                event(1, EventKind::Warning { message: reason.clone() }),
                event(2, EventKind::TurnFinished { outcome: TurnOutcome::Interrupted }),
                event(3, EventKind::Lifecycle { from: Some(state), to, reason: Some(reason.clone()) }),
            ])?;
            self.set_state(to, Some(reason));
        }
        if replayed == 0 && !interrupted {
            return Ok(None);
        }
        self.flush(super::FlushReason::Recovery)?;
        Ok(Some(Recovered { session: self.id().clone(), replayed, interrupted }))
    }
}
