//! Which session started which through Cortex's native `session_start`
//! tool, and how deep the delegation goes: Core's own knowledge, since
//! Core ran the tool.

use rusqlite::{OptionalExtension, params};

use super::Registry;
use crate::core::Result;

impl Registry {
    /// Records that `parent` started `child`, `depth` levels below a person.
    pub fn link_session(&self, child: &str, parent: &str, depth: u32) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO session_links (child, parent, depth, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![child, parent, depth, jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot link a session to its parent"))?;
        Ok(())
    }

    /// The session that started `child`, and `child`'s depth.
    pub fn parent_of(&self, child: &str) -> Result<Option<(String, u32)>> {
        self.conn
            .query_row("SELECT parent, depth FROM session_links WHERE child = ?1", [child], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(self.err("cannot read session links"))
    }

    /// The sessions `parent` started, oldest first.
    pub fn children_of(&self, parent: &str) -> Result<Vec<String>> {
        let mut statement = self
            .conn
            .prepare("SELECT child FROM session_links WHERE parent = ?1 ORDER BY created_at, child")
            .map_err(self.err("cannot read session links"))?;
        let rows = statement.query_map([parent], |row| row.get(0)).map_err(self.err("cannot read session links"))?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(self.err("cannot read session links"))
    }
}
