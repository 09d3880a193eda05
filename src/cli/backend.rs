//! The read side of the CLI, answered by Core when one is running and by
//! the in-process Core otherwise, so every read command has one code path.

use std::path::PathBuf;

use super::client::{Client, Target};
use super::local::Local;
use crate::protocol::{CommandKind, Event, SearchHit, SessionId, SessionState, SessionSummary, TurnSummary};

/// Events asked of Core per request when reading a whole history.
const EVENTS_PAGE: usize = 2000;

/// Where the CLI was told Core is, and where its data lives.
pub(crate) struct Ctx {
    pub data: PathBuf,
    pub core: Option<String>,
    /// `--no-core`: work in-process even when a Core is running.
    pub no_core: bool,
}

pub(crate) enum Backend {
    Remote(Client),
    Local(Box<Local>),
}

impl Backend {
    pub(crate) fn open(ctx: &Ctx) -> anyhow::Result<Backend> {
        Ok(match Target::find_or_local(ctx) {
            Target::Remote(client) => Backend::Remote(client),
            Target::Local => Backend::Local(Box::new(Local::open(&ctx.data)?)),
        })
    }

    /// Runs a command, through Core or in-process, and reads its reply as
    /// the type of its kind: one path for every write command.
    pub(crate) fn command_as<T: serde::de::DeserializeOwned>(&mut self, kind: CommandKind) -> anyhow::Result<T> {
        match self {
            Backend::Remote(client) => client.command_as(kind, None),
            Backend::Local(local) => Ok(local.run(kind, true)?.0),
        }
    }

    pub(crate) fn sessions(&self, state: Option<SessionState>) -> anyhow::Result<Vec<SessionSummary>> {
        match self {
            Backend::Remote(client) => {
                let query: Vec<_> = state.map(|state| ("state", state.as_str().to_string())).into_iter().collect();
                client.get("/api/v1/sessions", &query)
            }
            Backend::Local(local) => Ok(local.core.sessions(state)?),
        }
    }

    /// Every node's `(id, name)`, as Core knows them (in-process: this
    /// machine's node).
    pub(crate) fn node_names(&self) -> anyhow::Result<Vec<(String, String)>> {
        match self {
            Backend::Remote(client) => {
                let nodes: Vec<crate::protocol::NodeSummary> = client.get("/api/v1/nodes", &[])?;
                Ok(nodes.into_iter().map(|node| (node.id.to_string(), node.name)).collect())
            }
            Backend::Local(local) => Ok(vec![(local.node.id().to_string(), local.node.name().to_string())]),
        }
    }

    /// Every bound workspace.
    pub(crate) fn workspaces(&self) -> anyhow::Result<Vec<crate::protocol::Workspace>> {
        match self {
            Backend::Remote(client) => client.get("/api/v1/workspaces", &[]),
            Backend::Local(local) => Ok(local.node.workspaces()?),
        }
    }

    /// The session `id` names (a unique prefix is enough) and its turns.
    pub(crate) fn session(&self, id: &str) -> anyhow::Result<(SessionSummary, Vec<TurnSummary>)> {
        match self {
            Backend::Remote(client) => client.session(id),
            Backend::Local(local) => {
                let session = local.core.resolve(id)?;
                let turns = local.core.turns(&session.id)?;
                Ok((session, turns))
            }
        }
    }

    pub(crate) fn events(&self, session: &SessionId, after: u64) -> anyhow::Result<Vec<Event>> {
        match self {
            Backend::Remote(client) => {
                // Core answers in pages; ask until a page comes back short.
                let mut events: Vec<Event> = Vec::new();
                loop {
                    let from = events.last().map_or(after, |event| event.seq);
                    let page: Vec<Event> = client.get(
                        &format!("/api/v1/sessions/{session}/events"),
                        &[("after", from.to_string()), ("limit", EVENTS_PAGE.to_string())],
                    )?;
                    let done = page.len() < EVENTS_PAGE;
                    events.extend(page);
                    if done {
                        return Ok(events);
                    }
                }
            }
            Backend::Local(local) => Ok(local.core.events(session, after)?),
        }
    }

    /// Token use and cost summed by `by` since `since` (RFC 3339).
    pub(crate) fn usage(
        &self,
        by: crate::protocol::UsageBy,
        since: Option<&str>,
    ) -> anyhow::Result<crate::protocol::UsageReport> {
        match self {
            Backend::Remote(client) => {
                let mut query = vec![("by", by.as_str().to_string())];
                query.extend(since.map(|since| ("since", since.to_string())));
                client.get("/api/v1/usage", &query)
            }
            Backend::Local(local) => {
                let mut report = local.core.usage(by, since)?;
                for row in &mut report.rows {
                    if by == crate::protocol::UsageBy::Node && row.key == local.node.id().as_str() {
                        row.label = local.node.name().to_string();
                    }
                }
                Ok(report)
            }
        }
    }

    pub(crate) fn search(&self, query: &str, limit: usize) -> anyhow::Result<Vec<SearchHit>> {
        match self {
            Backend::Remote(client) => {
                client.get("/api/v1/search", &[("q", query.to_string()), ("limit", limit.to_string())])
            }
            Backend::Local(local) => Ok(local.core.search(query, limit)?),
        }
    }

    pub(crate) fn diff(&self, session: &SessionSummary, turn: Option<u32>) -> anyhow::Result<String> {
        match self {
            Backend::Remote(client) => {
                let query: Vec<_> = turn.map(|turn| ("turn", turn.to_string())).into_iter().collect();
                client.get_text(&format!("/api/v1/sessions/{}/diff", session.id), &query)
            }
            Backend::Local(local) => Ok(local.core.diff(session, turn)?),
        }
    }
}
