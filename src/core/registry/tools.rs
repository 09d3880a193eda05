//! The Tool Registry and the Plugin Registry in `core.sqlite`: what Core
//! wants on its nodes. A plugin and the MCP servers it contributes are
//! written in one transaction, and removed together.

use rusqlite::{OptionalExtension, params};

use super::Registry;
use crate::core::Result;
use crate::protocol::{Dependency, EVERY_WORKSPACE, Plugin, PluginPackage, Scope, ScopedPolicy, ToolPolicy};

/// Why the registry refused a change, for the person who asked.
pub type Refusal = String;

impl Registry {
    /// Adds `dependency`; a name already taken is refused.
    pub fn add_dependency(&self, mut dependency: Dependency) -> Result<Result<Dependency, Refusal>> {
        let tx = self.conn.unchecked_transaction().map_err(self.err("cannot add a tool"))?;
        if let Some(owner) = owner(&tx, &dependency.name).map_err(self.err("cannot read tools"))? {
            return Ok(Err(taken(&dependency.name, owner)));
        }
        dependency.added_at = Some(jiff::Timestamp::now());
        insert(&tx, &dependency).map_err(self.err("cannot add a tool"))?;
        tx.commit().map_err(self.err("cannot add a tool"))?;
        Ok(Ok(dependency))
    }

    pub fn dependencies(&self) -> Result<Vec<Dependency>> {
        let mut statement =
            self.conn.prepare("SELECT body FROM tool_deps ORDER BY name").map_err(self.err("cannot read tools"))?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0)).map_err(self.err("cannot read tools"))?;
        let bodies = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err("cannot read tools"))?;
        Ok(bodies.iter().filter_map(|body| serde_json::from_str(body).ok()).collect())
    }

    /// Sets the rule for `tool` (or `*`) of dependency `name`, everywhere
    /// its scope reaches or only in `scope`; `Ok(None)`: there is no such
    /// dependency.
    pub fn set_policy(
        &self,
        name: &str,
        tool: &str,
        rule: ToolPolicy,
        scope: Option<Scope>,
    ) -> Result<Option<Dependency>> {
        let tx = self.conn.unchecked_transaction().map_err(self.err("cannot set a tool policy"))?;
        let body: Option<String> = tx
            .query_row("SELECT body FROM tool_deps WHERE name = ?1", [name], |row| row.get(0))
            .optional()
            .map_err(self.err("cannot read tools"))?;
        let Some(mut dependency) = body.and_then(|body| serde_json::from_str::<Dependency>(&body).ok()) else {
            return Ok(None);
        };
        match scope {
            None => {
                dependency.policies.insert(tool.to_string(), rule);
            }
            Some(scope) => {
                dependency.scoped_policies.retain(|known| !(known.scope == scope && known.tool == tool));
                dependency.scoped_policies.push(ScopedPolicy { scope, tool: tool.to_string(), rule });
            }
        }
        let body = serde_json::to_string(&dependency).unwrap_or_default();
        tx.execute("UPDATE tool_deps SET body = ?2 WHERE name = ?1", params![name, body])
            .map_err(self.err("cannot set a tool policy"))?;
        tx.commit().map_err(self.err("cannot set a tool policy"))?;
        Ok(Some(dependency))
    }

    /// Removes a dependency added by hand; one a plugin brought is removed
    /// with its plugin. `Ok(Ok(false))`: there was none.
    pub fn remove_dependency(&self, name: &str) -> Result<Result<bool, Refusal>> {
        if let Some(Some(plugin)) = owner(&self.conn, name).map_err(self.err("cannot read tools"))? {
            return Ok(Err(format!("tool `{name}` comes with plugin `{plugin}`: remove the plugin instead")));
        }
        let removed = self
            .conn
            .execute("DELETE FROM tool_deps WHERE name = ?1", [name])
            .map_err(self.err("cannot remove a tool"))?;
        Ok(Ok(removed > 0))
    }

    /// Installs a checked plugin with its servers; a plugin or a server
    /// name already taken refuses the whole package.
    pub fn add_plugin(&self, mut plugin: Plugin, package: &PluginPackage) -> Result<Result<Plugin, Refusal>> {
        let tx = self.conn.unchecked_transaction().map_err(self.err("cannot add a plugin"))?;
        let known: Option<String> = tx
            .query_row("SELECT name FROM plugins WHERE name = ?1", [&plugin.name], |row| row.get(0))
            .optional()
            .map_err(self.err("cannot read plugins"))?;
        if known.is_some() {
            return Ok(Err(format!("plugin `{}` is already installed; remove it first to replace it", plugin.name)));
        }
        let now = jiff::Timestamp::now();
        plugin.added_at = Some(now);
        for server in &mut plugin.servers {
            if let Some(owner) = owner(&tx, &server.name).map_err(self.err("cannot read tools"))? {
                return Ok(Err(taken(&server.name, owner)));
            }
            server.added_at = Some(now);
            insert(&tx, server).map_err(self.err("cannot add a plugin"))?;
        }
        let body = serde_json::to_string(&plugin).unwrap_or_default();
        let package = serde_json::to_string(package).unwrap_or_default();
        tx.execute(
            "INSERT INTO plugins (name, body, package, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![plugin.name, body, package, now.to_string()],
        )
        .map_err(self.err("cannot add a plugin"))?;
        tx.commit().map_err(self.err("cannot add a plugin"))?;
        Ok(Ok(plugin))
    }

    pub fn plugins(&self) -> Result<Vec<Plugin>> {
        let mut statement =
            self.conn.prepare("SELECT body FROM plugins ORDER BY name").map_err(self.err("cannot read plugins"))?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0)).map_err(self.err("cannot read plugins"))?;
        let bodies = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err("cannot read plugins"))?;
        Ok(bodies.iter().filter_map(|body| serde_json::from_str(body).ok()).collect())
    }

    /// Every installed plugin's skills: the plugin, the skill and its
    /// `SKILL.md`, as the package brought them.
    pub fn skills(&self) -> Result<Vec<(String, crate::protocol::Skill, String)>> {
        let mut statement = self
            .conn
            .prepare("SELECT body, package FROM plugins ORDER BY name")
            .map_err(self.err("cannot read plugins"))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(self.err("cannot read plugins"))?;
        let mut skills = Vec::new();
        for row in rows {
            let (body, package) = row.map_err(self.err("cannot read plugins"))?;
            let (Ok(plugin), Ok(package)) =
                (serde_json::from_str::<Plugin>(&body), serde_json::from_str::<PluginPackage>(&package))
            else {
                continue;
            };
            for skill in plugin.skills {
                if let Some((_, text)) = package.skills.iter().find(|(dir, _)| *dir == skill.name) {
                    skills.push((plugin.name.clone(), skill, text.clone()));
                }
            }
        }
        Ok(skills)
    }

    /// Enables (`on`) or disables plugin `name` in `workspace` (`*`: every
    /// workspace). `Ok(None)`: no such plugin; a refusal says why not.
    pub fn set_plugin_enabled(&self, name: &str, workspace: &str, on: bool) -> Result<Option<Result<Plugin, Refusal>>> {
        let tx = self.conn.unchecked_transaction().map_err(self.err("cannot change a plugin"))?;
        let body: Option<String> = tx
            .query_row("SELECT body FROM plugins WHERE name = ?1", [name], |row| row.get(0))
            .optional()
            .map_err(self.err("cannot read plugins"))?;
        let Some(mut plugin) = body.and_then(|body| serde_json::from_str::<Plugin>(&body).ok()) else {
            return Ok(None);
        };
        let everywhere = plugin.enabled.iter().any(|listed| listed == EVERY_WORKSPACE);
        match (on, workspace == EVERY_WORKSPACE) {
            (true, true) => plugin.enabled = vec![EVERY_WORKSPACE.to_string()],
            (true, false) if everywhere => {}
            (true, false) if !plugin.enabled.iter().any(|listed| listed == workspace) => {
                plugin.enabled.push(workspace.to_string());
                plugin.enabled.sort();
            }
            (true, false) => {}
            (false, true) => plugin.enabled.clear(),
            (false, false) if everywhere => {
                return Ok(Some(Err(format!(
                    "plugin `{name}` is enabled in every workspace (`*`): disable `*`, then enable it in the workspaces it is for"
                ))));
            }
            (false, false) => plugin.enabled.retain(|listed| listed != workspace),
        }
        let body = serde_json::to_string(&plugin).unwrap_or_default();
        tx.execute("UPDATE plugins SET body = ?2 WHERE name = ?1", params![name, body])
            .map_err(self.err("cannot change a plugin"))?;
        tx.commit().map_err(self.err("cannot change a plugin"))?;
        Ok(Some(Ok(plugin)))
    }

    /// Trusts `digest` as workspace `workspace`'s `.cortex/tools.toml`
    /// (in place of any it trusted before).
    pub fn trust_tools(&self, workspace: &str, digest: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO trusted_tools (workspace, digest, trusted_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (workspace) DO UPDATE SET digest = excluded.digest, trusted_at = excluded.trusted_at",
                params![workspace, digest, jiff::Timestamp::now().to_string()],
            )
            .map_err(self.err("cannot trust a tools file"))?;
        Ok(())
    }

    /// Every trusted `.cortex/tools.toml`: its workspace and SHA-256.
    pub fn trusted_tools(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let mut statement = self
            .conn
            .prepare("SELECT workspace, digest FROM trusted_tools")
            .map_err(self.err("cannot read trusted tools"))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(self.err("cannot read trusted tools"))?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err("cannot read trusted tools"))
    }

    /// Removes a plugin and the servers it brought; false when there was none.
    pub fn remove_plugin(&self, name: &str) -> Result<bool> {
        let tx = self.conn.unchecked_transaction().map_err(self.err("cannot remove a plugin"))?;
        let removed =
            tx.execute("DELETE FROM plugins WHERE name = ?1", [name]).map_err(self.err("cannot remove a plugin"))?;
        tx.execute("DELETE FROM tool_deps WHERE plugin = ?1", [name]).map_err(self.err("cannot remove a plugin"))?;
        tx.commit().map_err(self.err("cannot remove a plugin"))?;
        Ok(removed > 0)
    }
}

/// `Some(plugin)` when a dependency of that name exists (`Some(None)`: added by hand).
fn owner(conn: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<Option<String>>> {
    conn.query_row("SELECT plugin FROM tool_deps WHERE name = ?1", [name], |row| row.get(0)).optional()
}

fn taken(name: &str, owner: Option<String>) -> Refusal {
    match owner {
        Some(plugin) => format!("tool `{name}` already exists (from plugin `{plugin}`)"),
        None => format!("tool `{name}` already exists; remove it first to replace it"),
    }
}

fn insert(conn: &rusqlite::Connection, dependency: &Dependency) -> rusqlite::Result<usize> {
    let body = serde_json::to_string(dependency).unwrap_or_default();
    let added = dependency.added_at.map(|at| at.to_string()).unwrap_or_default();
    conn.execute(
        "INSERT INTO tool_deps (name, body, plugin, added_at) VALUES (?1, ?2, ?3, ?4)",
        params![dependency.name, body, dependency.plugin, added],
    )
}
