//! Numbered migrations under `PRAGMA user_version`. Every table is derivable
//! from the refs: a schema this build does not know is rebuilt, not patched.

/// Each entry moves the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first index.
    "
    CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        node TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        remote_url TEXT,
        default_branch TEXT
    );
    -- The tip each session ref had when it was last indexed.
    CREATE TABLE store_refs (
        session_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        tip TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        title TEXT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT,
        provider TEXT NOT NULL,
        node TEXT NOT NULL,
        base_commit TEXT,
        turns INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_state ON sessions (state, id);
    CREATE INDEX sessions_by_workspace ON sessions (workspace_id, id);
    CREATE TABLE turns (
        session_id TEXT NOT NULL,
        turn INTEGER NOT NULL,
        prompt TEXT NOT NULL DEFAULT '',
        outcome TEXT,
        files_changed INTEGER NOT NULL DEFAULT 0,
        insertions INTEGER NOT NULL DEFAULT 0,
        deletions INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, turn)
    );
    CREATE TABLE events (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        turn INTEGER,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (session_id, seq)
    );
    -- rowid = events.rowid
    CREATE VIRTUAL TABLE events_fts USING fts5 (text, tokenize = 'unicode61');
    ",
    "
    ALTER TABLE sessions ADD COLUMN provider_version TEXT;
    ",
    "
    CREATE INDEX events_by_kind ON events (kind, session_id, turn);
    ",
];
