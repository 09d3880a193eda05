//! Core's own state in `core.sqlite`: enrolled nodes (credentials stored as
//! hashes only), one-time enrollment tokens, commands with their answers
//! (the idempotency record), node status events, and the tool and plugin
//! registries (`registry/tools.rs`). Unlike the index this
//! is not derivable from the refs, so `index rebuild` never touches it.

use std::path::{Path, PathBuf};

use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

mod links;
mod tools;

use super::{Error, Result};
use crate::protocol::{Capabilities, CommandOutcome, NodeId, Resources};

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        enrolled_at TEXT NOT NULL,
        revoked_at TEXT,
        capabilities TEXT,
        resources TEXT,
        last_heartbeat TEXT
    );
    CREATE TABLE enrollments (
        token_hash TEXT PRIMARY KEY,
        name TEXT,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        node_id TEXT,
        body TEXT NOT NULL,
        outcome TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE node_events (
        id INTEGER PRIMARY KEY,
        node_id TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    ",
    "
    CREATE TABLE bindings (
        workspace_id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        bound_at TEXT NOT NULL
    );
    ",
    "
    CREATE TABLE tool_deps (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        plugin TEXT,
        added_at TEXT NOT NULL
    );
    CREATE TABLE plugins (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        package TEXT NOT NULL,
        added_at TEXT NOT NULL
    );
    ",
    "
    CREATE TABLE session_links (
        child TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        depth INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX session_links_by_parent ON session_links (parent, child);
    ",
    "
    CREATE TABLE trusted_tools (
        workspace TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        trusted_at TEXT NOT NULL
    );
    ",
];

/// A node as Core recorded it.
#[derive(Clone, Debug)]
pub struct NodeRecord {
    pub id: NodeId,
    pub name: String,
    pub enrolled_at: jiff::Timestamp,
    pub revoked: bool,
    pub capabilities: Option<Capabilities>,
    pub resources: Option<Resources>,
    pub last_heartbeat: Option<jiff::Timestamp>,
}

/// A command as Core recorded it: `outcome` is `None` while it runs.
#[derive(Clone, Debug)]
pub struct CommandRecord {
    pub kind: String,
    pub outcome: Option<CommandOutcome>,
    /// The envelope as Core received it (JSON).
    pub body: String,
    pub node_id: Option<String>,
    pub created_at: String,
}

pub struct Registry {
    conn: Connection,
    path: PathBuf,
}

/// A fresh secret: 32 random bytes, hex, behind a readable prefix.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Registry {
    pub fn open(path: &Path) -> Result<Registry> {
        let wrap = |context: &'static str| {
            let path = path.to_path_buf();
            move |source| Error::Registry { path, context, source }
        };
        let mut conn = Connection::open(path).map_err(wrap("cannot open"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(wrap("cannot switch to WAL"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(wrap("cannot set the busy timeout"))?;
        let version: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(wrap("cannot read the schema version"))?;
        for (idx, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction().map_err(wrap("cannot migrate"))?;
            tx.execute_batch(sql).map_err(wrap("cannot migrate"))?;
            tx.pragma_update(None, "user_version", idx + 1).map_err(wrap("cannot migrate"))?;
            tx.commit().map_err(wrap("cannot migrate"))?;
        }
        Ok(Registry { conn, path: path.to_path_buf() })
    }

    fn err(&self, context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + use<> {
        let path = self.path.clone();
        move |source| Error::Registry { path, context, source }
    }

    /// A one-time enrollment token valid for `ttl`; only its hash is kept.
    pub fn create_enrollment(
        &self,
        name: Option<&str>,
        ttl: jiff::SignedDuration,
    ) -> Result<(String, jiff::Timestamp)> {
        let token = new_secret("cen_");
        let expires_at = jiff::Timestamp::now() + ttl;
        self.conn
            .execute(
                "INSERT INTO enrollments (token_hash, name, expires_at) VALUES (?1, ?2, ?3)",
                params![hash_secret(&token), name, expires_at.to_string()],
            )
            .map_err(self.err("cannot record an enrollment"))?;
        Ok((token, expires_at))
    }

    /// Spends an enrollment token: a new node with a new secret, or `None`
    /// when the token is unknown, used or expired. The node keeps the id it
    /// proposes when no node and no binding has it.
    pub fn enroll(&mut self, token: &str, name: &str, proposed: Option<&NodeId>) -> Result<Option<(NodeId, String)>> {
        let tx = self.conn.transaction().map_err(sql(&self.path, "cannot enroll"))?;
        let row: Option<(Option<String>, String, Option<String>)> = tx
            .query_row(
                "SELECT name, expires_at, used_at FROM enrollments WHERE token_hash = ?1",
                [hash_secret(token)],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(sql(&self.path, "cannot enroll"))?;
        let Some((enrolled_name, expires_at, used_at)) = row else {
            return Ok(None);
        };
        let expired = expires_at.parse::<jiff::Timestamp>().map_or(true, |at| at < jiff::Timestamp::now());
        if used_at.is_some() || expired {
            return Ok(None);
        }
        let now = jiff::Timestamp::now().to_string();
        tx.execute("UPDATE enrollments SET used_at = ?2 WHERE token_hash = ?1", params![hash_secret(token), now])
            .map_err(sql(&self.path, "cannot enroll"))?;
        // An id in use, or named by a binding (the in-process node of this
        // Core's own data dir), is not given to a token holder.
        let taken = |id: &NodeId| {
            tx.query_row(
                "SELECT 1 FROM nodes WHERE id = ?1 UNION SELECT 1 FROM bindings WHERE node_id = ?1",
                [id.as_str()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
        };
        let id = match proposed {
            Some(id) if !taken(id).map_err(sql(&self.path, "cannot enroll"))? => id.clone(),
            _ => NodeId::generate(),
        };
        let secret = new_secret("cnd_");
        let name = enrolled_name.unwrap_or_else(|| name.to_string());
        tx.execute(
            "INSERT INTO nodes (id, name, secret_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![id.as_str(), name, hash_secret(&secret), now],
        )
        .map_err(sql(&self.path, "cannot enroll"))?;
        tx.commit().map_err(sql(&self.path, "cannot enroll"))?;
        Ok(Some((id, secret)))
    }

    /// Creates a node directly (the embedded node of `cortex up`).
    /// A node made by Core itself (the local node of `cortex up`), taking
    /// `proposed` (an id and secret the node made in-process) when the id
    /// is free.
    pub fn create_node(&self, name: &str, proposed: Option<(&NodeId, &str)>) -> Result<(NodeId, String)> {
        let (id, secret) = match proposed {
            Some((id, secret)) if self.node(id.as_str())?.is_none() => (id.clone(), secret.to_string()),
            _ => (NodeId::generate(), new_secret("cnd_")),
        };
        self.conn
            .execute(
                "INSERT INTO nodes (id, name, secret_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
                params![id.as_str(), name, hash_secret(&secret), jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot create a node"))?;
        Ok((id, secret))
    }

    /// The node whose credential this is, if any (revoked ones included).
    pub fn authenticate(&self, node_id: &NodeId, secret: &str) -> Result<Option<NodeRecord>> {
        let node = self.node(node_id.as_str())?;
        let hash: Option<String> = self
            .conn
            .query_row("SELECT secret_hash FROM nodes WHERE id = ?1", [node_id.as_str()], |row| row.get(0))
            .optional()
            .map_err(self.err("cannot read a node"))?;
        Ok(node.filter(|_| hash.is_some_and(|hash| hash == hash_secret(secret))))
    }

    pub fn node(&self, id: &str) -> Result<Option<NodeRecord>> {
        self.conn
            .query_row(&format!("{NODE_SELECT} WHERE id = ?1"), [id], node_from_row)
            .optional()
            .map_err(self.err("cannot read a node"))
    }

    pub fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let mut statement =
            self.conn.prepare(&format!("{NODE_SELECT} ORDER BY name, id")).map_err(self.err("cannot list nodes"))?;
        let rows = statement.query_map([], node_from_row).map_err(self.err("cannot list nodes"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err("cannot list nodes"))
    }

    pub fn revoke(&self, id: &str) -> Result<bool> {
        let changed = self
            .conn
            .execute(
                "UPDATE nodes SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot revoke a node"))?;
        Ok(changed > 0)
    }

    pub fn record_hello(&self, id: &NodeId, capabilities: &Capabilities) -> Result<()> {
        let capabilities = serde_json::to_string(capabilities).expect("holds because capabilities are JSON");
        self.conn
            .execute("UPDATE nodes SET capabilities = ?2 WHERE id = ?1", params![id.as_str(), capabilities])
            .map_err(self.err("cannot record a hello"))?;
        Ok(())
    }

    pub fn record_heartbeat(&self, id: &NodeId, resources: &Resources, at: jiff::Timestamp) -> Result<()> {
        let resources = serde_json::to_string(resources).expect("holds because resources are JSON");
        self.conn
            .execute(
                "UPDATE nodes SET resources = ?2, last_heartbeat = ?3 WHERE id = ?1",
                params![id.as_str(), resources, at.to_string()],
            )
            .map_err(self.err("cannot record a heartbeat"))?;
        Ok(())
    }

    pub fn record_node_event(&self, node_id: &NodeId, kind: &str, detail: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO node_events (node_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![node_id.as_str(), jiff::Timestamp::now().to_string(), kind, detail],
            )
            .map_err(self.err("cannot record a node event"))?;
        Ok(())
    }

    /// The newest status events of a node, newest first.
    pub fn node_events(&self, node_id: &str, limit: usize) -> Result<Vec<(String, String, String)>> {
        let mut statement = self
            .conn
            .prepare("SELECT at, kind, detail FROM node_events WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2")
            .map_err(self.err("cannot read node events"))?;
        let rows = statement
            .query_map(params![node_id, limit], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(self.err("cannot read node events"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err("cannot read node events"))
    }

    pub fn command(&self, id: &str) -> Result<Option<CommandRecord>> {
        self.conn
            .query_row("SELECT kind, outcome, body, node_id, created_at FROM commands WHERE id = ?1", [id], |row| {
                let outcome: Option<String> = row.get(1)?;
                Ok(CommandRecord {
                    kind: row.get(0)?,
                    outcome: outcome.and_then(|text| serde_json::from_str(&text).ok()),
                    body: row.get(2)?,
                    node_id: row.get(3)?,
                    created_at: row.get(4)?,
                })
            })
            .optional()
            .map_err(self.err("cannot read a command"))
    }

    /// The node a workspace is bound to, as Core decided.
    pub fn binding(&self, workspace_id: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT node_id FROM bindings WHERE workspace_id = ?1", [workspace_id], |row| row.get(0))
            .optional()
            .map_err(self.err("cannot read a binding"))
    }

    /// Binds a workspace to a node; `false` (and nothing changed) when it
    /// is bound to another node already.
    pub fn bind(&self, workspace_id: &str, node_id: &str) -> Result<bool> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO bindings (workspace_id, node_id, bound_at) VALUES (?1, ?2, ?3)",
                params![workspace_id, node_id, jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot record a binding"))?;
        Ok(self.binding(workspace_id)?.as_deref() == Some(node_id))
    }

    /// Gives `node` the bindings made before nodes had one id, when the
    /// in-process node was named after its host (`vm`): they were this
    /// machine's, and `node` is its node now.
    pub fn take_over_host_bindings(&self, node: &NodeId) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE bindings SET node_id = ?1 WHERE node_id NOT LIKE 'nod\\_%' ESCAPE '\\'
                 AND node_id NOT IN (SELECT id FROM nodes)",
                [node.as_str()],
            )
            .map_err(self.err("cannot take over bindings"))
    }

    pub fn unbind(&self, workspace_id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM bindings WHERE workspace_id = ?1", [workspace_id])
            .map_err(self.err("cannot remove a binding"))?;
        Ok(())
    }

    /// Records a new command; `false` if one with this id exists already.
    pub fn insert_command(&self, id: &str, kind: &str, node_id: Option<&NodeId>, body: &str) -> Result<bool> {
        let inserted = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO commands (id, kind, node_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, kind, node_id.map(NodeId::as_str), body, jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot record a command"))?;
        Ok(inserted == 1)
    }

    /// Records a command's answer, once: a later answer for the same id is
    /// ignored, so every caller sees the first.
    pub fn finish_command(&self, id: &str, outcome: &CommandOutcome) -> Result<()> {
        let outcome = serde_json::to_string(outcome).expect("holds because outcomes are JSON");
        self.conn
            .execute(
                "UPDATE commands SET outcome = ?2, finished_at = ?3 WHERE id = ?1 AND outcome IS NULL",
                params![id, outcome, jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot record a command's answer"))?;
        Ok(())
    }

    /// Commands sent to `node_id` that never got an answer (Core or the link
    /// died mid-command), oldest first.
    pub fn unfinished_commands(&self, node_id: &NodeId) -> Result<Vec<String>> {
        let mut statement = self
            .conn
            .prepare("SELECT body FROM commands WHERE node_id = ?1 AND outcome IS NULL ORDER BY created_at")
            .map_err(self.err("cannot read unfinished commands"))?;
        let rows = statement
            .query_map([node_id.as_str()], |row| row.get(0))
            .map_err(self.err("cannot read unfinished commands"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err("cannot read unfinished commands"))
    }
}

const NODE_SELECT: &str =
    "SELECT id, name, enrolled_at, revoked_at, capabilities, resources, last_heartbeat FROM nodes";

fn node_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRecord> {
    let enrolled_at: String = row.get(2)?;
    let revoked_at: Option<String> = row.get(3)?;
    let capabilities: Option<String> = row.get(4)?;
    let resources: Option<String> = row.get(5)?;
    let last_heartbeat: Option<String> = row.get(6)?;
    let id: String = row.get(0)?;
    Ok(NodeRecord {
        // Every id in `nodes` was made by Core as a `NodeId`.
        id: id.parse().map_err(|error: String| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, error.into())
        })?,
        name: row.get(1)?,
        enrolled_at: enrolled_at.parse().unwrap_or_default(),
        revoked: revoked_at.is_some(),
        capabilities: capabilities.and_then(|text| serde_json::from_str(&text).ok()),
        resources: resources.and_then(|text| serde_json::from_str(&text).ok()),
        last_heartbeat: last_heartbeat.and_then(|text| text.parse().ok()),
    })
}

fn sql(path: &Path, context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Registry { path, context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proposed_id_is_kept_only_when_nobody_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::open(&dir.path().join("core.sqlite")).unwrap();
        let local = NodeId::generate();
        let (id, secret) = registry.create_node("vm", Some((&local, "cnd_local"))).unwrap();
        assert_eq!((&id, secret.as_str()), (&local, "cnd_local"), "the in-process id is kept");
        let (again, _) = registry.create_node("vm", Some((&local, "cnd_other"))).unwrap();
        assert_ne!(again, local, "a taken id is never handed out twice");

        let bound_elsewhere = NodeId::generate();
        registry.bind("wsp_01m86a629myn3cjx91da8nn0vx", bound_elsewhere.as_str()).unwrap();
        let ttl = jiff::SignedDuration::from_secs(60);
        for proposed in [&local, &bound_elsewhere] {
            let (token, _) = registry.create_enrollment(None, ttl).unwrap();
            let (enrolled, _) = registry.enroll(&token, "worker", Some(proposed)).unwrap().unwrap();
            assert_ne!(&enrolled, proposed, "a token holder cannot take an id in use or bound");
        }
        let fresh = NodeId::generate();
        let (token, _) = registry.create_enrollment(None, ttl).unwrap();
        assert_eq!(registry.enroll(&token, "worker", Some(&fresh)).unwrap().unwrap().0, fresh);
    }

    #[test]
    fn bindings_made_under_a_host_name_go_to_the_local_node_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("core.sqlite")).unwrap();
        let (other, _) = registry.create_node("other", None).unwrap();
        let unknown = NodeId::generate();
        registry.bind("wsp_01m86a629myn3cjx91da8nn0v1", "vm").unwrap();
        registry.bind("wsp_01m86a629myn3cjx91da8nn0v2", other.as_str()).unwrap();
        registry.bind("wsp_01m86a629myn3cjx91da8nn0v3", unknown.as_str()).unwrap();
        let (local, _) = registry.create_node("vm", None).unwrap();
        assert_eq!(registry.take_over_host_bindings(&local).unwrap(), 1);
        assert_eq!(registry.binding("wsp_01m86a629myn3cjx91da8nn0v1").unwrap().as_deref(), Some(local.as_str()));
        assert_eq!(registry.binding("wsp_01m86a629myn3cjx91da8nn0v2").unwrap().as_deref(), Some(other.as_str()));
        assert_eq!(registry.binding("wsp_01m86a629myn3cjx91da8nn0v3").unwrap().as_deref(), Some(unknown.as_str()));
    }
}
