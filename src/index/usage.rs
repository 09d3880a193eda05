//! Token use and cost summed from the `token_usage` events the index holds,
//! by session, workspace, node or UTC day.

use rusqlite::params;

use super::{Index, Result, sql_err};
use crate::protocol::{UsageBy, UsageRow};

impl Index {
    /// Usage summed by `by`, counting turns recorded at or after `since`
    /// (RFC 3339), largest spend first (tokens, then key). A node's label is
    /// its id here; Core names it.
    pub fn usage(&self, by: UsageBy, since: Option<&str>) -> Result<Vec<UsageRow>> {
        let (key, label) = match by {
            UsageBy::Session => ("s.id", "s.title"),
            UsageBy::Workspace => ("s.workspace_id", "COALESCE(w.name, s.workspace_id)"),
            UsageBy::Node => ("COALESCE(w.node, s.node)", "COALESCE(w.node, s.node)"),
            UsageBy::Day => {
                ("substr(json_extract(e.body, '$.at'), 1, 10)", "substr(json_extract(e.body, '$.at'), 1, 10)")
            }
        };
        let sql = format!(
            "SELECT {key}, MAX({label}), COUNT(*),
                SUM(json_extract(e.body, '$.usage.input_tokens')),
                SUM(json_extract(e.body, '$.usage.cached_input_tokens')),
                SUM(json_extract(e.body, '$.usage.output_tokens')),
                SUM(json_extract(e.body, '$.usage.reasoning_output_tokens')),
                SUM(json_extract(e.body, '$.usage.total_tokens')),
                SUM(json_extract(e.body, '$.cost_usd')),
                MAX(json_extract(e.body, '$.cost_source') = 'computed'),
                SUM(json_extract(e.body, '$.cost_usd') IS NULL)
             FROM events e JOIN sessions s ON s.id = e.session_id LEFT JOIN workspaces w ON w.id = s.workspace_id
             WHERE e.kind = 'token_usage' AND (?1 IS NULL OR json_extract(e.body, '$.at') >= ?1)
             GROUP BY 1 ORDER BY 8 DESC, 1"
        );
        let context = "cannot sum token usage";
        let mut statement = self.conn.prepare(&sql).map_err(sql_err(&self.path, context))?;
        let rows = statement
            .query_map(params![since], |row| {
                let count =
                    |index: usize| row.get::<_, Option<i64>>(index).map(|value| value.unwrap_or(0).max(0) as u64);
                Ok(UsageRow {
                    key: row.get(0)?,
                    label: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    turns: count(2)?,
                    input_tokens: count(3)?,
                    cached_input_tokens: count(4)?,
                    output_tokens: count(5)?,
                    reasoning_output_tokens: count(6)?,
                    total_tokens: count(7)?,
                    cost_usd: row.get(8)?,
                    cost_computed: row.get::<_, Option<bool>>(9)?.unwrap_or(false),
                    unpriced_turns: count(10)?,
                })
            })
            .map_err(sql_err(&self.path, context))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err(&self.path, context))
    }
}
