//! Calls made through the MCP gateways, read back from their `tool_call`
//! events: a server's history across every session.

use super::{Error, Index, Result, sql_err};
use crate::protocol::{Event, EventKind, SessionId, ToolCallRecord};

impl Index {
    /// The last `limit` calls to `server`'s tools, newest first.
    pub fn tool_calls(&self, server: &str, limit: usize) -> Result<Vec<ToolCallRecord>> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT session_id, body FROM events WHERE kind = 'tool_call' \
                 AND json_extract(body, '$.call.server') = ?1 ORDER BY rowid DESC LIMIT ?2",
            )
            .map_err(sql_err(&self.path, "cannot read tool calls"))?;
        let rows = statement
            .query_map(rusqlite::params![server, limit as i64], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(sql_err(&self.path, "cannot read tool calls"))?;
        let mut calls = Vec::new();
        for row in rows {
            let (session, body) = row.map_err(sql_err(&self.path, "cannot read tool calls"))?;
            let event: Event = serde_json::from_str(&body)
                .map_err(|error| Error::Corrupt(format!("tool call of {session}: {error}")))?;
            let session: SessionId =
                session.parse().map_err(|error| Error::Corrupt(format!("session id {session}: {error}")))?;
            if let EventKind::ToolCall { call } = event.kind {
                calls.push(ToolCallRecord { session, seq: event.seq, at: event.at, call });
            }
        }
        Ok(calls)
    }
}
