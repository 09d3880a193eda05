//! The read side of the CLI, answered by Core when one is running and by
//! the in-process Core otherwise, so every read command has one code path.

use std::path::PathBuf;

use super::client::{Client, Target};
use super::local::Local;
use crate::protocol::{Event, SearchHit, SessionId, SessionState, SessionSummary, TurnSummary};

/// Where the CLI was told Core is, and where its data lives.
pub(crate) struct Ctx {
    pub data: PathBuf,
    pub core: Option<String>,
}

pub(crate) enum Backend {
    Remote(Client),
    Local(Box<Local>),
}

impl Backend {
    pub(crate) fn open(ctx: &Ctx) -> anyhow::Result<Backend> {
        Ok(match Target::find_or_local(&ctx.data, ctx.core.as_deref()) {
            Target::Remote(client) => Backend::Remote(client),
            Target::Local => Backend::Local(Box::new(Local::open(&ctx.data)?)),
        })
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
                client.get(&format!("/api/v1/sessions/{session}/events"), &[("after", after.to_string())])
            }
            Backend::Local(local) => Ok(local.core.events(session, after)?),
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
