//! The SQLite index: a cache of the session refs for fast listing, logs and
//! full-text search. Deleting it loses nothing: [`Index::rebuild`] restores
//! every row from the refs of the bound workspaces.
//!
//! Imports `store` to read refs and `protocol` for the shapes it answers with.

mod evidence;
mod schema;
mod tool_calls;
mod usage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::protocol::{
    Event, EventKind, SearchHit, SessionId, SessionState, SessionSummary, TurnSummary, Workspace, WorkspaceId,
};
use crate::store::{self, SessionView, Store};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("index database `{}`: {context}", path.display())]
    Sqlite {
        path: PathBuf,
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(
        "no session matches `{0}` (`cortex session list --all` shows the ids; in a fresh clone, `cortex refs fetch` brings the sessions)"
    )]
    UnknownSession(String),
    #[error("`{prefix}` matches {count} sessions ({examples}…): type more of the id")]
    AmbiguousSession { prefix: String, count: usize, examples: String },
    #[error("corrupt row in the index: {0} (run `cortex index rebuild`)")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`Index::ingest_batches`] committed of one batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingested {
    /// The last seq committed for the session, after this batch.
    pub acked: u64,
    /// Set when the batch skipped ahead: events after this seq are missing.
    pub missing_after: Option<u64>,
    /// The events committed now, in order (replays left out).
    pub fresh: Vec<Event>,
}

/// What one sync changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub sessions: usize,
    pub events: usize,
    pub removed: usize,
}

pub struct Index {
    conn: Connection,
    path: PathBuf,
}

impl Index {
    /// Opens (creating if needed) the index at `path`, migrated to this
    /// build's schema. An index from a newer build is rebuilt from scratch.
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir).map_err(|source| Error::Sqlite {
                path: path.to_path_buf(),
                context: "cannot create its folder".into(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(source)),
            })?;
        }
        let mut index = Index { conn: Self::connect(path)?, path: path.to_path_buf() };
        let version: usize = index
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql_err(&index.path, "cannot read the schema version"))?;
        if version > schema::MIGRATIONS.len() {
            tracing::warn!(version, "index written by a newer Cortex; starting a fresh one");
            drop(index);
            remove_database(path);
            index = Index { conn: Self::connect(path)?, path: path.to_path_buf() };
        }
        index.migrate()?;
        Ok(index)
    }

    fn connect(path: &Path) -> Result<Connection> {
        let wrap = |context: &str| {
            let path = path.to_path_buf();
            let context = context.to_string();
            move |source| Error::Sqlite { path, context, source }
        };
        let conn = Connection::open(path).map_err(wrap("cannot open"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(wrap("cannot switch to WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(wrap("cannot set synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(wrap("cannot set the busy timeout"))?;
        Ok(conn)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql_err(&self.path, "cannot read the schema version"))?;
        for (idx, sql) in schema::MIGRATIONS.iter().enumerate().skip(version) {
            let err = sql_err(&self.path, &format!("migration {} failed", idx + 1));
            let tx = self.conn.transaction().map_err(sql_err(&self.path, "cannot begin a migration"))?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", idx + 1)
                .map_err(sql_err(&self.path, "cannot record the schema version"))?;
            tx.commit().map_err(sql_err(&self.path, "cannot commit a migration"))?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records (or updates) a workspace binding.
    pub fn put_workspace(&self, workspace: &Workspace) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO workspaces (id, node, path, name, remote_url, default_branch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET node = ?2, path = ?3, name = ?4, remote_url = ?5, default_branch = ?6",
                params![
                    workspace.id.as_str(),
                    workspace.node,
                    workspace.path,
                    workspace.name,
                    workspace.remote_url,
                    workspace.default_branch
                ],
            )
            .map_err(sql_err(&self.path, "cannot record a workspace"))?;
        Ok(())
    }

    /// Brings the rows of one workspace's sessions in step with its refs:
    /// new refs are ingested, moved refs add only their new chunks (or are
    /// re-read whole when history was rewritten), vanished refs are dropped.
    pub fn sync_workspace(&mut self, workspace: &Workspace, store: &Store) -> Result<SyncStats> {
        self.sync_workspace_with(workspace, store, &mut |_| {})
    }

    fn sync_workspace_with(
        &mut self,
        workspace: &Workspace,
        store: &Store,
        on_session: &mut dyn FnMut(&SessionId),
    ) -> Result<SyncStats> {
        let tips = store.session_tips()?;
        let mut known: HashMap<String, (Option<gix::ObjectId>, u64)> = HashMap::new();
        {
            let mut statement = self
                .conn
                .prepare(
                    "SELECT r.session_id, r.tip, COALESCE(s.last_seq, 0) FROM store_refs r
                     LEFT JOIN sessions s ON s.id = r.session_id WHERE r.workspace_id = ?1",
                )
                .map_err(sql_err(&self.path, "cannot read indexed tips"))?;
            let rows = statement
                .query_map([workspace.id.as_str()], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
                .map_err(sql_err(&self.path, "cannot read indexed tips"))?;
            for row in rows {
                let (id, (tip, last_seq)): (String, (String, u64)) =
                    row.map_err(sql_err(&self.path, "cannot read indexed tips"))?;
                known.insert(id, (gix::ObjectId::from_hex(tip.as_bytes()).ok(), last_seq));
            }
        }
        let mut stats = SyncStats::default();
        for (id, tip) in &tips {
            on_session(id);
            let previous = known.remove(id.as_str());
            if previous.is_some_and(|(old_tip, _)| old_tip == Some(*tip)) {
                continue;
            }
            let owner: Option<String> = self
                .conn
                .query_row("SELECT workspace_id FROM store_refs WHERE session_id = ?1", [id.as_str()], |row| row.get(0))
                .optional()
                .map_err(sql_err(&self.path, "cannot read a session's workspace"))?;
            if owner.is_some_and(|owner| owner != workspace.id.as_str()) {
                continue; // a clone of a session indexed under another workspace
            }
            let view = match store.view_at(*tip) {
                Ok(view) => view,
                Err(error) => {
                    tracing::warn!(session = %id, %error, "cannot read a session ref; skipping it");
                    continue;
                }
            };
            let (after_seq, reset) = match previous {
                Some((Some(old), last_seq)) if store.is_ancestor(old, *tip).unwrap_or(false) => (last_seq, false),
                Some(_) => (0, true),
                None => (0, false),
            };
            let events = store.events_after(&view, after_seq)?;
            let tx = self.conn.transaction().map_err(sql_err(&self.path, "cannot begin a sync"))?;
            if reset {
                delete_session(&tx, id.as_str()).map_err(sql_err(&self.path, "cannot reset a rewritten session"))?;
            }
            ingest(&tx, workspace, &view, &events).map_err(sql_err(&self.path, "cannot index a session"))?;
            tx.commit().map_err(sql_err(&self.path, "cannot commit a sync"))?;
            stats.sessions += 1;
            stats.events += events.len();
        }
        for gone in known.keys() {
            let tx = self.conn.transaction().map_err(sql_err(&self.path, "cannot begin a sync"))?;
            delete_session(&tx, gone).map_err(sql_err(&self.path, "cannot drop a vanished session"))?;
            tx.commit().map_err(sql_err(&self.path, "cannot commit a sync"))?;
            stats.removed += 1;
        }
        Ok(stats)
    }

    /// Deletes the database and opens an empty one.
    pub fn reset(path: &Path) -> Result<Index> {
        remove_database(path);
        Index::open(path)
    }

    /// Deletes the database and rebuilds it from the refs of `workspaces`.
    /// `progress(done, total)` is called as sessions are read.
    pub fn rebuild(
        path: &Path,
        workspaces: &[Workspace],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Index, SyncStats)> {
        remove_database(path);
        let mut index = Index::open(path)?;
        let mut stores = Vec::new();
        let mut total = 0;
        for workspace in workspaces {
            match Store::discover(Path::new(&workspace.path)) {
                Ok(store) => {
                    total += store.session_tips()?.len();
                    stores.push((workspace, store));
                }
                Err(error) => {
                    tracing::warn!(workspace = %workspace.path, %error, "skipping an unreadable workspace")
                }
            }
        }
        let mut stats = SyncStats::default();
        let mut done = 0;
        progress(0, total);
        for (workspace, store) in stores {
            index.put_workspace(workspace)?;
            let synced = index.sync_workspace_with(workspace, &store, &mut |_| {
                done += 1;
                progress(done, total);
            })?;
            stats.sessions += synced.sessions;
            stats.events += synced.events;
        }
        Ok((index, stats))
    }

    /// Takes batches of events nodes sent (from any nodes and sessions) in
    /// one transaction: Core's group commit. In each batch every event must
    /// follow the last one committed for its session: already committed
    /// events are skipped (a replay); a gap stops the batch and is
    /// reported, so the node can send again from the last committed seq.
    /// Batches are taken in order, so two of one session follow each other.
    pub fn ingest_batches(&mut self, batches: Vec<(&SessionSummary, Vec<Event>)>) -> Result<Vec<Ingested>> {
        let tx = self.conn.transaction().map_err(sql_err(&self.path, "cannot begin an ingest"))?;
        let mut answers = Vec::with_capacity(batches.len());
        for (session, events) in batches {
            let mut last = max_seq(&tx, &session.id).map_err(sql_err(&self.path, "cannot read the last seq"))?;
            let mut fresh = Vec::with_capacity(events.len());
            let mut missing_after = None;
            for event in events {
                if event.seq <= last {
                    continue;
                }
                if event.seq != last + 1 {
                    missing_after = Some(last);
                    break;
                }
                last = event.seq;
                fresh.push(event);
            }
            let mut summary = session.clone();
            summary.last_seq = last;
            upsert_session(&tx, &summary).map_err(sql_err(&self.path, "cannot record a session"))?;
            insert_events(&tx, &session.id, &fresh).map_err(sql_err(&self.path, "cannot record events"))?;
            answers.push(Ingested { acked: last, missing_after, fresh });
        }
        tx.commit().map_err(sql_err(&self.path, "cannot commit an ingest"))?;
        Ok(answers)
    }

    /// The last committed seq of every session in a workspace of `node`.
    pub fn acked_for_node(&self, node: &str) -> Result<BTreeMap<SessionId, u64>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT s.id, (SELECT COALESCE(MAX(seq), 0) FROM events e WHERE e.session_id = s.id) FROM sessions s
                 JOIN workspaces w ON w.id = s.workspace_id WHERE w.node = ?1",
            )
            .map_err(sql_err(&self.path, "cannot read acknowledged seqs"))?;
        let rows = statement
            .query_map([node], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?)))
            .map_err(sql_err(&self.path, "cannot read acknowledged seqs"))?;
        let mut acked = BTreeMap::new();
        for row in rows {
            let (id, seq) = row.map_err(sql_err(&self.path, "cannot read acknowledged seqs"))?;
            acked.insert(id.parse().map_err(Error::Corrupt)?, seq);
        }
        Ok(acked)
    }

    /// Marks the sessions of `node` that were mid-turn as `interrupted`, with
    /// `reason`, and returns them. The node's own events will say what really
    /// happened once it is back.
    pub fn interrupt_node_sessions(&self, node: &str, reason: &str) -> Result<Vec<SessionId>> {
        let mut statement = self
            .conn
            .prepare(
                "UPDATE sessions SET state = 'interrupted', state_reason = ?2
                 WHERE state IN ('starting', 'running', 'awaiting_approval')
                 AND workspace_id IN (SELECT id FROM workspaces WHERE node = ?1) RETURNING id",
            )
            .map_err(sql_err(&self.path, "cannot mark sessions interrupted"))?;
        let rows = statement
            .query_map(params![node, reason], |row| row.get::<_, String>(0))
            .map_err(sql_err(&self.path, "cannot mark sessions interrupted"))?;
        let mut ids = Vec::new();
        for row in rows {
            ids.push(
                row.map_err(sql_err(&self.path, "cannot mark sessions interrupted"))?
                    .parse()
                    .map_err(Error::Corrupt)?,
            );
        }
        Ok(ids)
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>> {
        let mut statement = self
            .conn
            .prepare("SELECT id, node, path, name, remote_url, default_branch FROM workspaces ORDER BY node, path")
            .map_err(sql_err(&self.path, "cannot list workspaces"))?;
        let rows = statement
            .query_map([], |row| {
                let id: String = row.get(0)?;
                Ok((id, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
            })
            .map_err(sql_err(&self.path, "cannot list workspaces"))?;
        let mut workspaces = Vec::new();
        for row in rows {
            let (id, node, path, name, remote_url, default_branch) =
                row.map_err(sql_err(&self.path, "cannot list workspaces"))?;
            workspaces.push(Workspace {
                id: id.parse().map_err(Error::Corrupt)?,
                node,
                path,
                name,
                remote_url,
                default_branch,
            });
        }
        Ok(workspaces)
    }

    /// The workspace a session belongs to, by its exact id.
    pub fn session_workspace(&self, id: &SessionId) -> Result<Option<WorkspaceId>> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT workspace_id FROM sessions WHERE id = ?1", [id.as_str()], |row| row.get(0))
            .optional()
            .map_err(sql_err(&self.path, "cannot read a session"))?;
        found.map(|id| id.parse().map_err(Error::Corrupt)).transpose()
    }

    /// The node a workspace is bound on.
    pub fn workspace_node(&self, id: &WorkspaceId) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT node FROM workspaces WHERE id = ?1", [id.as_str()], |row| row.get(0))
            .optional()
            .map_err(sql_err(&self.path, "cannot read a workspace"))
    }

    /// Forgets a workspace binding; its sessions' rows stay until a sync or
    /// rebuild drops them.
    pub fn remove_workspace(&self, id: &WorkspaceId) -> Result<bool> {
        let removed = self
            .conn
            .execute("DELETE FROM workspaces WHERE id = ?1", [id.as_str()])
            .map_err(sql_err(&self.path, "cannot remove a workspace"))?;
        Ok(removed > 0)
    }

    /// Sessions, newest first, optionally only those in `state`.
    pub fn sessions(&self, state: Option<SessionState>) -> Result<Vec<SessionSummary>> {
        let mut statement = self
            .conn
            .prepare(&format!("{SESSION_SELECT} WHERE (?1 IS NULL OR s.state = ?1) ORDER BY s.id DESC"))
            .map_err(sql_err(&self.path, "cannot list sessions"))?;
        let rows = statement
            .query_map([state.map(|state| state.as_str())], session_from_row)
            .map_err(sql_err(&self.path, "cannot list sessions"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err(&self.path, "cannot list sessions"))
    }

    /// Sessions where a check is failing (its latest run failed), with the
    /// names of those checks.
    pub fn failed_checks(&self) -> Result<HashMap<SessionId, Vec<String>>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT e.session_id, json_extract(e.body, '$.name') FROM events e \
                 WHERE e.kind = 'check_result' AND json_extract(e.body, '$.passed') = 0 \
                 AND NOT EXISTS (SELECT 1 FROM events f WHERE f.kind = 'check_result' AND f.session_id = e.session_id \
                 AND f.seq > e.seq AND json_extract(f.body, '$.name') = json_extract(e.body, '$.name')) \
                 ORDER BY e.session_id, e.seq",
            )
            .map_err(sql_err(&self.path, "cannot find failed checks"))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?)))
            .map_err(sql_err(&self.path, "cannot find failed checks"))?;
        let mut failed: HashMap<SessionId, Vec<String>> = HashMap::new();
        for row in rows {
            let (session, name) = row.map_err(sql_err(&self.path, "cannot find failed checks"))?;
            let Ok(session) = session.parse::<SessionId>() else { continue };
            failed.entry(session).or_default().push(name.unwrap_or_default());
        }
        Ok(failed)
    }

    /// The session whose id is `prefix` or starts with it (`ses_` optional).
    pub fn resolve_session(&self, prefix: &str) -> Result<SessionSummary> {
        let prefix = prefix.trim().to_lowercase();
        let full = if prefix.starts_with(SessionId::PREFIX) {
            prefix.clone()
        } else {
            format!("{}{prefix}", SessionId::PREFIX)
        };
        if prefix.is_empty() || !full.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::UnknownSession(prefix));
        }
        let mut statement = self
            .conn
            .prepare(&format!("{SESSION_SELECT} WHERE s.id >= ?1 AND s.id < ?1 || '~' ORDER BY s.id LIMIT 4"))
            .map_err(sql_err(&self.path, "cannot look up a session"))?;
        let matches = statement
            .query_map([&full], session_from_row)
            .map_err(sql_err(&self.path, "cannot look up a session"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err(&self.path, "cannot look up a session"))?;
        match matches.len() {
            0 => Err(Error::UnknownSession(prefix)),
            1 => Ok(matches.into_iter().next().expect("holds because there is one match")),
            _ => {
                let count: usize = self
                    .conn
                    .query_row("SELECT COUNT(*) FROM sessions WHERE id >= ?1 AND id < ?1 || '~'", [&full], |row| {
                        row.get(0)
                    })
                    .map_err(sql_err(&self.path, "cannot count matching sessions"))?;
                let examples =
                    matches.iter().take(3).map(|session| session.id.to_string()).collect::<Vec<_>>().join(", ");
                Err(Error::AmbiguousSession { prefix, count, examples })
            }
        }
    }

    /// The session's events with `seq > after`, in seq order.
    pub fn events(&self, session: &SessionId, after: u64) -> Result<Vec<Event>> {
        self.read_events(
            session,
            "SELECT body FROM events WHERE session_id = ?1 AND seq > ?2 ORDER BY seq",
            params![session.as_str(), after.min(i64::MAX as u64)],
        )
    }

    /// At most `limit` events after `after`: one page of a long history.
    pub fn events_page(&self, session: &SessionId, after: u64, limit: usize) -> Result<Vec<Event>> {
        self.read_events(
            session,
            "SELECT body FROM events WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            params![session.as_str(), after.min(i64::MAX as u64), limit.min(i64::MAX as usize) as i64],
        )
    }

    /// At most `limit` events of one turn, in order.
    pub fn turn_events(&self, session: &SessionId, turn: u32, limit: usize) -> Result<Vec<Event>> {
        self.read_events(
            session,
            "SELECT body FROM events WHERE session_id = ?1 AND turn = ?2 ORDER BY seq LIMIT ?3",
            params![session.as_str(), turn, limit.min(i64::MAX as usize) as i64],
        )
    }

    /// The last `limit` events, in order, and how many came before them.
    pub fn tail_events(&self, session: &SessionId, limit: usize) -> Result<(Vec<Event>, u64)> {
        let total: u64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM events WHERE session_id = ?1", [session.as_str()], |row| row.get(0))
            .map_err(sql_err(&self.path, "cannot count events"))?;
        let events = self.read_events(
            session,
            "SELECT body FROM (SELECT body, seq FROM events WHERE session_id = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
            params![session.as_str(), limit.min(i64::MAX as usize) as i64],
        )?;
        let earlier = total.saturating_sub(events.len() as u64);
        Ok((events, earlier))
    }

    /// A session's approval requests and answers, in order.
    pub fn approval_events(&self, session: &SessionId) -> Result<Vec<Event>> {
        self.read_events(
            session,
            "SELECT body FROM events WHERE session_id = ?1 AND kind IN ('approval_requested', 'approval_resolved') ORDER BY seq",
            params![session.as_str()],
        )
    }

    pub fn events_of_kind(&self, session: &SessionId, kind: &str) -> Result<Vec<Event>> {
        self.read_events(
            session,
            "SELECT body FROM events WHERE session_id = ?1 AND kind = ?2 ORDER BY seq",
            params![session.as_str(), kind],
        )
    }

    /// Events whose bodies `sql` selects, parsed.
    fn read_events(&self, session: &SessionId, sql: &str, parameters: impl rusqlite::Params) -> Result<Vec<Event>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(sql_err(&self.path, "cannot read events"))?;
        let rows = statement
            .query_map(parameters, |row| row.get::<_, String>(0))
            .map_err(sql_err(&self.path, "cannot read events"))?;
        let mut events = Vec::new();
        for body in rows {
            let body = body.map_err(sql_err(&self.path, "cannot read events"))?;
            events.push(
                serde_json::from_str(&body).map_err(|error| Error::Corrupt(format!("event of {session}: {error}")))?,
            );
        }
        Ok(events)
    }

    pub fn turns(&self, session: &SessionId) -> Result<Vec<TurnSummary>> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT turn, prompt, outcome, files_changed, insertions, deletions FROM turns
                 WHERE session_id = ?1 ORDER BY turn",
            )
            .map_err(sql_err(&self.path, "cannot read turns"))?;
        let rows = statement
            .query_map([session.as_str()], |row| {
                let outcome: Option<String> = row.get(2)?;
                Ok(TurnSummary {
                    turn: row.get(0)?,
                    prompt: row.get(1)?,
                    outcome: outcome.and_then(|text| serde_json::from_value(serde_json::Value::String(text)).ok()),
                    files_changed: row.get(3)?,
                    insertions: row.get(4)?,
                    deletions: row.get(5)?,
                    checks: Vec::new(),
                    artifacts: Vec::new(),
                    tests: Vec::new(),
                    coverage: Vec::new(),
                })
            })
            .map_err(sql_err(&self.path, "cannot read turns"))?;
        let mut turns = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err(&self.path, "cannot read turns"))?;
        self.attach_evidence(session, &mut turns)?;
        Ok(turns)
    }

    /// Full-text search over messages, reasoning, commands and their output.
    /// Every word must match; words are taken literally, not as FTS syntax.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        // Each word a quoted FTS5 string; control characters (a NUL ends an
        // FTS5 string early) are spaces.
        let cleaned: String = query.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let terms: Vec<String> =
            cleaned.split_whitespace().take(32).map(|word| format!("\"{}\"", word.replace('"', "\"\""))).collect();
        let limit = limit.clamp(1, 1000) as i64;
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let mut statement = self
            .conn
            .prepare(
                "SELECT e.session_id, e.seq, e.kind, snippet(events_fts, 0, '[', ']', '…', 12)
                 FROM events_fts JOIN events e ON e.rowid = events_fts.rowid
                 WHERE events_fts MATCH ?1 ORDER BY e.session_id DESC, e.seq LIMIT ?2",
            )
            .map_err(sql_err(&self.path, "cannot search"))?;
        let rows = statement
            .query_map(params![terms.join(" "), limit], |row| {
                let session: String = row.get(0)?;
                Ok((session, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(sql_err(&self.path, "cannot search"))?;
        let mut hits = Vec::new();
        for row in rows {
            let (session, seq, kind, snippet) = row.map_err(sql_err(&self.path, "cannot search"))?;
            let session_id = session.parse().map_err(Error::Corrupt)?;
            hits.push(SearchHit { session_id, seq, kind, snippet });
        }
        Ok(hits)
    }
}

/// A session's node is its workspace's (a node id); the name its ref
/// recorded stands in for a workspace the index does not know.
const SESSION_SELECT: &str =
    "SELECT s.id, s.title, s.state, s.state_reason, s.provider, COALESCE(w.node, s.node), s.workspace_id,
    COALESCE(w.path, ''), s.base_commit, s.turns, s.last_seq, s.created_at, s.updated_at, s.provider_version
    FROM sessions s LEFT JOIN workspaces w ON w.id = s.workspace_id";

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    fn parsed<T: std::str::FromStr>(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let text: String = row.get(idx)?;
        text.parse().map_err(|error: T::Err| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, error.to_string().into())
        })
    }
    Ok(SessionSummary {
        id: parsed(row, 0)?,
        title: row.get(1)?,
        state: parsed(row, 2)?,
        state_reason: row.get(3)?,
        provider: row.get(4)?,
        node: row.get(5)?,
        workspace_id: parsed::<WorkspaceId>(row, 6)?,
        workspace_path: row.get(7)?,
        base_commit: row.get(8)?,
        turns: row.get(9)?,
        last_seq: row.get(10)?,
        created_at: parsed(row, 11)?,
        updated_at: parsed(row, 12)?,
        provider_version: row.get(13)?,
    })
}

fn max_seq(tx: &Transaction<'_>, session: &SessionId) -> rusqlite::Result<u64> {
    tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?1", [session.as_str()], |row| row.get(0))
}

fn delete_session(tx: &Transaction<'_>, session: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM events_fts WHERE rowid IN (SELECT rowid FROM events WHERE session_id = ?1)", [session])?;
    tx.execute("DELETE FROM events WHERE session_id = ?1", [session])?;
    tx.execute("DELETE FROM turns WHERE session_id = ?1", [session])?;
    tx.execute("DELETE FROM sessions WHERE id = ?1", [session])?;
    tx.execute("DELETE FROM store_refs WHERE session_id = ?1", [session])?;
    Ok(())
}

/// Writes a session's row, its new events and the turns they touch, and
/// records the ref tip they were read from.
fn ingest(tx: &Transaction<'_>, workspace: &Workspace, view: &SessionView, events: &[Event]) -> rusqlite::Result<()> {
    upsert_session(tx, &view.meta.summary(workspace))?;
    insert_events(tx, &view.meta.id, events)?;
    tx.execute(
        "INSERT INTO store_refs (session_id, workspace_id, tip) VALUES (?1, ?2, ?3)
         ON CONFLICT (session_id) DO UPDATE SET workspace_id = ?2, tip = ?3",
        params![view.meta.id.as_str(), workspace.id.as_str(), view.tip.to_string()],
    )?;
    Ok(())
}

fn upsert_session(tx: &Transaction<'_>, session: &SessionSummary) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sessions (id, workspace_id, title, state, state_reason, provider, node, base_commit, turns,
             last_seq, created_at, updated_at, provider_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET workspace_id = ?2, title = ?3, state = ?4, state_reason = ?5, provider = ?6,
             node = ?7, base_commit = ?8, turns = ?9, last_seq = ?10, created_at = ?11, updated_at = ?12,
             provider_version = ?13",
        params![
            session.id.as_str(),
            session.workspace_id.as_str(),
            session.title,
            session.state.as_str(),
            session.state_reason,
            session.provider,
            session.node,
            session.base_commit,
            session.turns,
            session.last_seq,
            session.created_at.to_string(),
            session.updated_at.to_string(),
            session.provider_version
        ],
    )?;
    Ok(())
}

fn insert_events(tx: &Transaction<'_>, session: &SessionId, events: &[Event]) -> rusqlite::Result<()> {
    let mut insert_event = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (session_id, seq, turn, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut insert_text = tx.prepare_cached("INSERT INTO events_fts (rowid, text) VALUES (?1, ?2)")?;
    let mut insert_turn = tx.prepare_cached("INSERT OR IGNORE INTO turns (session_id, turn) VALUES (?1, ?2)")?;
    let mut last_turn = None;
    for event in events {
        let body = serde_json::to_string(event).expect("holds because events serialize to JSON");
        let inserted =
            insert_event.execute(params![session.as_str(), event.seq, event.turn, event.kind.name(), body])?;
        if inserted == 1
            && let Some(text) = event.kind.search_text()
        {
            insert_text.execute(params![tx.last_insert_rowid(), text])?;
        }
        if let Some(turn) = event.turn {
            // A turn's row once per batch, not once per event.
            if last_turn != Some(turn) {
                insert_turn.execute(params![session.as_str(), turn])?;
                last_turn = Some(turn);
            }
            apply_to_turn(tx, session.as_str(), turn, &event.kind)?;
        }
    }
    Ok(())
}

/// What an event says about its turn's summary row (which exists).
fn apply_to_turn(tx: &Transaction<'_>, session: &str, turn: u32, kind: &EventKind) -> rusqlite::Result<()> {
    match kind {
        EventKind::UserMessage { text } => {
            tx.prepare_cached("UPDATE turns SET prompt = ?3 WHERE session_id = ?1 AND turn = ?2 AND prompt = ''")?
                .execute(params![session, turn, text])?;
        }
        EventKind::TurnFinished { outcome } => {
            tx.prepare_cached("UPDATE turns SET outcome = ?3 WHERE session_id = ?1 AND turn = ?2")?
                .execute(params![session, turn, outcome.as_str()])?;
        }
        EventKind::DiffCaptured { files, insertions, deletions } => {
            tx.prepare_cached(
                "UPDATE turns SET files_changed = ?3, insertions = ?4, deletions = ?5 WHERE session_id = ?1 AND turn = ?2",
            )?
            .execute(params![session, turn, files, insertions, deletions])?;
        }
        _ => {}
    }
    Ok(())
}

fn sql_err(path: &Path, context: &str) -> impl FnOnce(rusqlite::Error) -> Error + use<> {
    let path = path.to_path_buf();
    let context = context.to_string();
    move |source| Error::Sqlite { path, context, source }
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = fs_err::remove_file(PathBuf::from(file));
    }
}
