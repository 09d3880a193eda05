//! The node's ledger of the commands it was given (`commands.sqlite` in its
//! data dir): a command id runs once, ever. A command is claimed (written,
//! synced) before it runs and its answer recorded after, so a copy that
//! arrives later (Core resending after a dropped link or a restart of
//! either side) gets the first answer; a command a crash cut short is
//! answered as such, never run a second time. Reads are not kept: running
//! one again is harmless, and their answers hold file contents.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::protocol::{CommandKind, CommandOutcome};

/// Answers are kept this long.
const RETENTION_DAYS: i64 = 14;

pub(crate) struct Ledger {
    conn: Mutex<Connection>,
}

/// Whether a command is kept in the ledger (it changes something).
pub(crate) fn is_kept(kind: &CommandKind) -> bool {
    !matches!(
        kind,
        CommandKind::ReadFile { .. }
            | CommandKind::ListFiles { .. }
            | CommandKind::ReadDiff { .. }
            | CommandKind::ReadSessionFile { .. }
            | CommandKind::RenderReport { .. }
    )
}

impl Ledger {
    pub(crate) fn open(data_dir: &Path) -> rusqlite::Result<Ledger> {
        let conn = Connection::open(data_dir.join("commands.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS commands (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                outcome TEXT,
                claimed_at TEXT NOT NULL
            )",
        )?;
        let horizon = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * RETENTION_DAYS);
        conn.execute("DELETE FROM commands WHERE claimed_at < ?1", [horizon.to_string()])?;
        Ok(Ledger { conn: Mutex::new(conn) })
    }

    /// Claims `id` to run now: `None` when it is new (and now recorded as
    /// running), else the answer it already has.
    pub(crate) fn claim(&self, id: &str, kind: &str) -> rusqlite::Result<Option<CommandOutcome>> {
        let conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO commands (id, kind, claimed_at) VALUES (?1, ?2, ?3)",
            params![id, kind, jiff::Timestamp::now().to_string()],
        )?;
        if inserted == 1 {
            return Ok(None);
        }
        let outcome: Option<String> =
            conn.query_row("SELECT outcome FROM commands WHERE id = ?1", [id], |row| row.get(0)).optional()?.flatten();
        Ok(Some(match outcome.and_then(|text| serde_json::from_str(&text).ok()) {
            Some(outcome) => outcome,
            None => CommandOutcome::error(
                crate::protocol::ErrorCode::Interrupted,
                format!(
                    "command `{id}` ({kind}) was already started on this node and cut short (the node stopped while it ran); it was not run again: check the session's state"
                ),
            ),
        }))
    }

    pub(crate) fn finish(&self, id: &str, outcome: &CommandOutcome) -> rusqlite::Result<()> {
        let text = serde_json::to_string(outcome).expect("holds because outcomes are JSON");
        let conn = self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        conn.execute("UPDATE commands SET outcome = ?2 WHERE id = ?1", params![id, text])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_once_across_restarts_and_a_cut_one_is_not_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.claim("c1", "send_turn").unwrap(), None);
        let answer = CommandOutcome::Ok { value: serde_json::json!({ "turn": 2 }) };
        ledger.finish("c1", &answer).unwrap();
        assert_eq!(ledger.claim("c2", "send_turn").unwrap(), None);
        drop(ledger);
        let reopened = Ledger::open(dir.path()).unwrap();
        assert_eq!(reopened.claim("c1", "send_turn").unwrap(), Some(answer));
        let cut = reopened.claim("c2", "send_turn").unwrap().unwrap();
        assert!(matches!(cut, CommandOutcome::Error { code: crate::protocol::ErrorCode::Interrupted, .. }), "{cut:?}");
        assert_eq!(reopened.claim("c3", "stop_session").unwrap(), None);
    }
}
