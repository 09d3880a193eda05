//! What the panel's forms do. Each form carries a command id minted when the
//! page was rendered, so a form sent twice (a reload, a double click) is one
//! command with one answer. Without JavaScript a form answers with a redirect
//! to the page to look at next; with htmx (`HX-Request`) a session's forms
//! answer with a notice (empty when all went well): the new state arrives
//! over the page's live stream, in order with the events that caused it.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::found;
use super::pages::{NodesPage, problem};
use super::urls;
use super::{Viewer, Web};
use crate::protocol::{CommandKind, SessionId, WorkspaceId};

#[derive(Deserialize)]
pub(super) struct Plain {
    #[serde(default)]
    command_id: String,
}

/// Runs a command for a form: `Ok(value)` or what to tell the person, with
/// the HTTP status that fits.
async fn run(
    web: &Web,
    id: &str,
    target: Option<String>,
    kind: CommandKind,
) -> Result<serde_json::Value, (StatusCode, String)> {
    web.command(id, target, kind).await.map_err(|refused| (refused.status(), refused.message))
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

#[derive(Template)]
#[template(path = "notice.html")]
struct Notice {
    message: Option<String>,
}

/// A session action's answer: a notice for htmx, otherwise the session page
/// (or a page saying what went wrong).
fn session_answer(
    web: &Web,
    headers: &HeaderMap,
    session: &str,
    result: Result<serde_json::Value, (StatusCode, String)>,
) -> Response {
    let back = urls::session(session);
    if is_htmx(headers) {
        let notice = Notice { message: result.err().map(|(_, message)| message) };
        return Html(notice.render().unwrap_or_default()).into_response();
    }
    match result {
        Ok(_) => Redirect::to(&back).into_response(),
        Err((status, message)) => problem(web, status, "That did not work", message, &back),
    }
}

#[derive(Deserialize)]
pub(super) struct SendForm {
    #[serde(default)]
    command_id: String,
    prompt: String,
}

pub(super) async fn post_send(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Response {
    let session_id = found!(&web, web.find_session(&id)).0.id;
    let result = if form.prompt.trim().is_empty() {
        Err((StatusCode::UNPROCESSABLE_ENTITY, "Write what the agent should do next.".to_string()))
    } else {
        let kind = CommandKind::SendTurn {
            session_id: session_id.clone(),
            prompt: form.prompt,
            auto_approve: false,
            deny_approvals: false,
        };
        run(&web, &form.command_id, None, kind).await
    };
    session_answer(&web, &headers, session_id.as_str(), result)
}

/// A session action that needs nothing but the session.
async fn session_action(
    web: &Web,
    id: &str,
    headers: &HeaderMap,
    form: Plain,
    kind: impl FnOnce(SessionId) -> CommandKind,
) -> Response {
    let session_id = found!(web, web.find_session(id)).0.id;
    let result = run(web, &form.command_id, None, kind(session_id.clone())).await;
    session_answer(web, headers, session_id.as_str(), result)
}

pub(super) async fn post_interrupt(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Plain>,
) -> Response {
    session_action(&web, &id, &headers, form, |session_id| CommandKind::InterruptSession { session_id }).await
}

pub(super) async fn post_stop(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Plain>,
) -> Response {
    session_action(&web, &id, &headers, form, |session_id| CommandKind::StopSession { session_id }).await
}

pub(super) async fn post_checks(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Plain>,
) -> Response {
    session_action(&web, &id, &headers, form, |session_id| CommandKind::RunChecks { session_id, name: None }).await
}

#[derive(Deserialize)]
pub(super) struct ApprovalForm {
    #[serde(default)]
    command_id: String,
    decision: String,
    #[serde(default)]
    for_session: Option<String>,
    /// The request the page showed: a later one is not answered by it.
    #[serde(default)]
    approval_id: Option<String>,
}

pub(super) async fn post_approval(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ApprovalForm>,
) -> Response {
    let session_id = found!(&web, web.find_session(&id)).0.id;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            let message = format!("`{other}` is not a decision: approve or deny");
            return session_answer(
                &web,
                &headers,
                session_id.as_str(),
                Err((StatusCode::UNPROCESSABLE_ENTITY, message)),
            );
        }
    };
    let kind = CommandKind::ResolveApproval {
        session_id: session_id.clone(),
        approval_id: form.approval_id.filter(|id| !id.is_empty()),
        approve,
        for_session: approve && form.for_session.is_some(),
        by: Some(viewer.0.clone()),
    };
    let result = run(&web, &form.command_id, None, kind).await;
    session_answer(&web, &headers, session_id.as_str(), result)
}

#[derive(Deserialize)]
pub(super) struct StartForm {
    #[serde(default)]
    command_id: String,
    provider: String,
    prompt: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    script: String,
    #[serde(default)]
    worktree: Option<String>,
    #[serde(default)]
    auto_approve: Option<String>,
}

pub(super) async fn post_start(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Form(form): Form<StartForm>,
) -> Response {
    let back = urls::workspace(&id);
    let Ok(workspace_id) = id.parse::<WorkspaceId>() else {
        return problem(&web, StatusCode::NOT_FOUND, "Not found", format!("No workspace `{id}`."), "/");
    };
    if form.prompt.trim().is_empty() && form.script.trim().is_empty() {
        let message = "Write what the agent should do (or, for `fake`, paste a script).".to_string();
        return problem(&web, StatusCode::UNPROCESSABLE_ENTITY, "Nothing to do", message, &back);
    }
    let script = (!form.script.trim().is_empty()).then_some(form.script);
    let kind = CommandKind::StartSession {
        session_id: None,
        workspace_id,
        provider: form.provider,
        script,
        prompt: form.prompt,
        title: (!form.title.trim().is_empty()).then_some(form.title),
        auto_approve: form.auto_approve.is_some(),
        deny_approvals: false,
        worktree: form.worktree.is_some(),
    };
    match run(&web, &form.command_id, None, kind).await {
        Ok(value) => match value.get("session_id").and_then(|id| id.as_str()) {
            Some(session) => Redirect::to(&urls::session(session)).into_response(),
            None => Redirect::to(&back).into_response(),
        },
        Err((status, message)) => problem(&web, status, "The session did not start", message, &back),
    }
}

#[derive(Deserialize)]
pub(super) struct BindForm {
    #[serde(default)]
    command_id: String,
    path: String,
    #[serde(default)]
    name: String,
}

pub(super) async fn post_bind(
    State(web): State<Arc<Web>>,
    Path(node): Path<String>,
    Form(form): Form<BindForm>,
) -> Response {
    let back = urls::node(&node);
    let kind = CommandKind::BindWorkspace {
        path: form.path.trim().to_string(),
        name: (!form.name.trim().is_empty()).then(|| form.name.trim().to_string()),
    };
    match run(&web, &form.command_id, Some(node), kind).await {
        Ok(value) => match value.get("id").and_then(|id| id.as_str()) {
            Some(workspace) => Redirect::to(&urls::workspace(workspace)).into_response(),
            None => Redirect::to(&back).into_response(),
        },
        Err((status, message)) => problem(&web, status, "The workspace was not bound", message, &back),
    }
}

pub(super) async fn post_unbind(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Form(form): Form<Plain>,
) -> Response {
    let workspaces = web.core.workspaces().unwrap_or_default();
    let Some(workspace) = workspaces.into_iter().find(|workspace| workspace.id.as_str() == id) else {
        return problem(&web, StatusCode::NOT_FOUND, "Not found", format!("No workspace `{id}`."), "/");
    };
    let back = urls::node(&workspace.node);
    let kind = CommandKind::UnbindWorkspace { workspace_id: workspace.id };
    match run(&web, &form.command_id, Some(workspace.node), kind).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err((status, message)) => problem(&web, status, "The workspace was not unbound", message, &back),
    }
}

#[derive(Deserialize)]
pub(super) struct EnrollForm {
    #[serde(default)]
    name: String,
}

/// Mints an enrollment token and shows it once, with the command to run on
/// the new machine.
pub(super) async fn post_enroll(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<EnrollForm>,
) -> Response {
    let name = form.name.trim();
    match web.core.enroll((!name.is_empty()).then_some(name)) {
        Ok(enrollment) => {
            let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1");
            let shown = (enrollment.token, enrollment.expires_at.to_string(), format!("http://{host}"));
            NodesPage::new(&web, Some(shown)).into_response()
        }
        Err(error) => problem(&web, StatusCode::INTERNAL_SERVER_ERROR, "No token", error.to_string(), "/nodes"),
    }
}

pub(super) async fn post_revoke(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    match web.core.revoke_node(&id).await {
        Ok(node) => Redirect::to(&urls::node(&node.id)).into_response(),
        Err(failure) => {
            problem(&web, failure.status(), "The node was not revoked", failure.message().to_string(), &urls::node(&id))
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ReviewForm {
    #[serde(default)]
    command_id: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    line: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    verdict: String,
    /// A file's "Viewed" button: the file, and "1" to mark it, "" to take
    /// the mark off.
    #[serde(default)]
    viewed: String,
    #[serde(default)]
    mark: String,
    /// The diff page the form is on: a comment or an approval goes back
    /// there; a request for changes goes to the session, where the turn runs.
    #[serde(default)]
    back: String,
    /// Where on that page to go back to (`f3`, a file).
    #[serde(default)]
    anchor: String,
}

/// The diff page's review form: a comment (when a file is chosen), then
/// nothing more, approve, or request changes; or a file's Viewed button.
/// Recorded as the signed-in person's.
pub(super) async fn post_review(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ReviewForm>,
) -> Response {
    let session_id = found!(&web, web.find_session(&id)).0.id;
    let invalid = |message: String| {
        session_answer(&web, &headers, session_id.as_str(), Err((StatusCode::UNPROCESSABLE_ENTITY, message)))
    };
    let verdict = match form.verdict.as_str() {
        "" => None,
        "approve" => Some(crate::protocol::Verdict::Approve),
        "request_changes" => Some(crate::protocol::Verdict::RequestChanges),
        other => return invalid(format!("`{other}` is not a verdict: approve or request_changes")),
    };
    let (line, end_line) = match form.line.trim() {
        "" => (None, None),
        text => match crate::protocol::parse_lines(text) {
            Ok((line, end)) => (Some(line), end),
            Err(why) => return invalid(why),
        },
    };
    let mut comments = Vec::new();
    if !form.path.is_empty() || !form.text.trim().is_empty() {
        comments.push(crate::protocol::ReviewNote { path: form.path, line, end_line, text: form.text });
    }
    let viewed: Vec<(String, bool)> =
        if form.viewed.is_empty() { Vec::new() } else { vec![(form.viewed, !form.mark.is_empty())] };
    let marked = !viewed.is_empty();
    let kind = CommandKind::ReviewSession {
        session_id: session_id.clone(),
        comments,
        viewed,
        verdict,
        by: Some(viewer.0.clone()),
        auto_approve: false,
        deny_approvals: false,
    };
    let result = run(&web, &form.command_id, None, kind).await;
    // Back only to this session's own diff pages, keeping their view choices.
    let (back_path, back_query) = form.back.split_once('?').unwrap_or((&form.back, ""));
    let diff_page = back_path.starts_with(&format!("{}/", urls::session(&session_id)))
        && back_path.ends_with("/diff")
        && back_path.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"/_-".contains(&byte))
        && back_query.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"=&".contains(&byte));
    let anchor = form.anchor.strip_prefix('f').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    match (&result, verdict) {
        (Ok(_), None) if marked && anchor && diff_page && !is_htmx(&headers) => {
            Redirect::to(&format!("{}#{}", form.back, form.anchor)).into_response()
        }
        (Ok(_), None) if diff_page && !is_htmx(&headers) => {
            Redirect::to(&format!("{}#review", form.back)).into_response()
        }
        (Ok(_), Some(crate::protocol::Verdict::Approve)) if diff_page && !is_htmx(&headers) => {
            Redirect::to(&format!("{}#commit", form.back)).into_response()
        }
        _ => session_answer(&web, &headers, session_id.as_str(), result),
    }
}

#[derive(Deserialize)]
pub(super) struct CommitForm {
    #[serde(default)]
    command_id: String,
    #[serde(default)]
    message: String,
    /// "1" when the box "commit the reviewed snapshot anyway" is ticked.
    #[serde(default)]
    as_reviewed: String,
}

/// The diff page's Commit button: the same `commit_session` as
/// `cortex session commit [--as-reviewed]`. A working tree changed since
/// the reviewed turn is refused, naming the files, unless the box is ticked.
pub(super) async fn post_commit(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CommitForm>,
) -> Response {
    let session_id = found!(&web, web.find_session(&id)).0.id;
    let message = form.message.trim();
    let kind = CommandKind::CommitSession {
        session_id: session_id.clone(),
        message: (!message.is_empty()).then(|| message.to_string()),
        as_reviewed: !form.as_reviewed.is_empty(),
    };
    let result = run(&web, &form.command_id, None, kind).await;
    session_answer(&web, &headers, session_id.as_str(), result)
}
