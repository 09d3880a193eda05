//! Why a page cannot be shown, so handlers can use `?`: a thing that does
//! not exist is a 404 page; Core failing to read its own index or registry
//! is a 500 page that says so (never a 404 that would send a person looking
//! for a session that is there). The lookups every page starts with live
//! here too.

use axum::http::StatusCode;
use axum::response::Response;

use super::Web;
use super::pages::problem;
use crate::protocol::{SessionId, SessionSummary, TurnSummary, Workspace};

pub(super) enum Problem {
    NotFound(String),
    /// Core could not read its own state.
    Internal(String),
}

/// A page, or why it cannot be shown.
pub(super) type Page = Result<Response, Problem>;

impl From<crate::core::Error> for Problem {
    fn from(error: crate::core::Error) -> Problem {
        tracing::error!(%error, "a page could not read Core's state");
        Problem::Internal(format!("Core could not read its state: {error}. Its log has the details."))
    }
}

/// The page, or the page saying what went wrong.
pub(super) fn render(web: &Web, page: Page) -> Response {
    match page {
        Ok(response) => response,
        Err(Problem::NotFound(message)) => problem(web, StatusCode::NOT_FOUND, "Not found", message, "/"),
        Err(Problem::Internal(message)) => {
            problem(web, StatusCode::INTERNAL_SERVER_ERROR, "Something broke", message, "/")
        }
    }
}

impl Web {
    /// The session `id` names (a unique prefix is enough), with its turns.
    pub(super) fn find_session(&self, id: &str) -> Result<(SessionSummary, Vec<TurnSummary>), Problem> {
        self.core.session(id)?.ok_or_else(|| Problem::NotFound(format!("No session `{id}`.")))
    }

    /// The session's id when `given` names one; none when it is empty.
    pub(super) fn session_named(&self, given: Option<&str>) -> Result<Option<SessionId>, Problem> {
        match given.filter(|id| !id.is_empty()) {
            None => Ok(None),
            Some(id) => Ok(Some(self.find_session(id)?.0.id)),
        }
    }

    pub(super) fn find_workspace(&self, id: &str) -> Result<Workspace, Problem> {
        self.core
            .workspaces()?
            .into_iter()
            .find(|workspace| workspace.id.as_str() == id)
            .ok_or_else(|| Problem::NotFound(format!("No workspace `{id}`: it may have been unbound.")))
    }
}

/// `?` for a handler that answers a `Response` itself (a stream, a form's
/// redirect): the value, or the page saying what went wrong.
macro_rules! found {
    ($web:expr, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(problem) => return $crate::web::error::render($web, Err(problem.into())),
        }
    };
}
pub(super) use found;
