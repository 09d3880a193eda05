//! The workspace inspector: browse a workspace (or a session's worktree)
//! with git status markers, read a file with linkable lines, edit it with a
//! plain textarea. Every read and write is a command to the owning node,
//! whose file service enforces the workspace boundary; a save carries the
//! hash of what was read, so a file changed on disk meanwhile is a conflict
//! shown side by side, never an overwrite.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::diff::PAGE_HIGHLIGHT_LINES;
use super::error::found;
use super::highlight::{self, Budget};
use super::pages::{Shell, command_id, shell, workspace_crumbs};
use super::urls;
use super::{Viewer, Web};
use crate::protocol::reply::{Listing, PathMoved};
use crate::protocol::{CommandKind, DirEntry, FileContent, FileState, SessionId, Workspace};

#[derive(Deserialize)]
pub(super) struct PlaceQuery {
    #[serde(default)]
    path: String,
    session: Option<String>,
    /// `12` or `12-20`: lines to highlight.
    lines: Option<String>,
    edit: Option<String>,
    saved: Option<String>,
}

/// Asks the workspace's node: its answer, or its `(code, message)`.
async fn ask<T: serde::de::DeserializeOwned>(
    web: &Web,
    id: &str,
    kind: CommandKind,
) -> Result<T, (StatusCode, String)> {
    web.command_as(id, None, kind).await.map_err(|refused| (refused.status(), refused.message))
}

/// `(label, path)` for each folder from the root down to `path`.
fn path_crumbs(path: &str) -> Vec<(String, String)> {
    let mut crumbs = Vec::new();
    let mut so_far = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        crumbs.push((part.to_string(), so_far.clone()));
    }
    crumbs
}

/// The session links keep (empty: none), for [`urls::file`].
fn session_text(session: &Option<SessionId>) -> String {
    session.as_ref().map(SessionId::to_string).unwrap_or_default()
}

#[derive(Template, WebTemplate)]
#[template(path = "files.html")]
pub(super) struct FilesPage {
    shell: Shell,
    workspace: Workspace,
    session: Option<SessionId>,
    /// The session links keep, or empty.
    in_session: String,
    crumbs: Vec<(String, String)>,
    entries: Vec<DirEntry>,
    problem: Option<String>,
}

pub(super) async fn get_files(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Query(query): Query<PlaceQuery>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let session = found!(&web, web.session_named(query.session.as_deref()));
    let kind = CommandKind::ListFiles {
        workspace_id: workspace.id.clone(),
        session_id: session.clone(),
        path: query.path.clone(),
    };
    let (entries, problem) = match ask::<Listing>(&web, "", kind).await {
        Ok(listing) => (listing.entries, None),
        Err((_, message)) => (Vec::new(), Some(message)),
    };
    let mut crumbs = workspace_crumbs(&web, workspace.id.as_str());
    crumbs.push(("files".into(), urls::files(&workspace.id, "", session_text(&session))));
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = FilesPage {
        shell: shell(&web, crumbs),
        in_session: session_text(&session),
        crumbs: path_crumbs(&query.path),
        workspace,
        session,
        entries,
        problem,
    };
    (status, page).into_response()
}

pub(super) struct Line {
    number: usize,
    /// Highlighted, escaped.
    html: String,
    marked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "file.html")]
pub(super) struct FilePage {
    shell: Shell,
    workspace: Workspace,
    session: Option<SessionId>,
    /// The session links keep, or empty.
    in_session: String,
    folder: String,
    crumbs: Vec<(String, String)>,
    file: FileContent,
    lines: Vec<Line>,
    editing: bool,
    /// What the person wrote, kept when a save was refused.
    draft: Option<String>,
    problem: Option<String>,
    saved: bool,
    command_id: String,
}

fn marked_range(lines: Option<&str>) -> (usize, usize) {
    let Some(lines) = lines else { return (0, 0) };
    let mut parts = lines.splitn(2, '-').map(|part| part.trim().trim_start_matches('L').parse::<usize>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(first), Some(last)) if last >= first => (first, last),
        (Some(first), _) => (first, first),
        _ => (0, 0),
    }
}

#[allow(clippy::too_many_arguments)]
fn file_page(
    web: &Web,
    workspace: Workspace,
    session: Option<SessionId>,
    file: FileContent,
    lines: Option<&str>,
    editing: bool,
    draft: Option<String>,
    problem: Option<String>,
    saved: bool,
) -> FilePage {
    let (first, last) = marked_range(lines);
    let numbered = file
        .text
        .as_deref()
        .map(|text| {
            let texts: Vec<&str> = text.lines().collect();
            let mut budget = Budget(PAGE_HIGHLIGHT_LINES);
            let tokens = highlight::run(highlight::syntax_for(&file.path), &texts, &mut budget);
            texts
                .iter()
                .zip(&tokens)
                .enumerate()
                .map(|(index, (text, tokens))| Line {
                    number: index + 1,
                    html: highlight::render(text, tokens.as_ref(), &[]),
                    marked: (first..=last).contains(&(index + 1)),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut crumbs = workspace_crumbs(web, workspace.id.as_str());
    crumbs.push((file.path.clone(), urls::file(&workspace.id, &file.path, session_text(&session))));
    let folder = file.path.rsplit_once('/').map(|(folder, _)| folder.to_string()).unwrap_or_default();
    FilePage {
        shell: shell(web, crumbs),
        in_session: session_text(&session),
        crumbs: path_crumbs(&file.path),
        editing: editing && file.state == FileState::Text && file.encoding.as_deref() == Some("utf-8"),
        lines: numbered,
        folder,
        workspace,
        session,
        file,
        draft,
        problem,
        saved,
        command_id: command_id(),
    }
}

pub(super) async fn get_file(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    Query(query): Query<PlaceQuery>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let session = found!(&web, web.session_named(query.session.as_deref()));
    let kind = CommandKind::ReadFile {
        workspace_id: workspace.id.clone(),
        session_id: session.clone(),
        path: query.path.clone(),
    };
    match ask::<FileContent>(&web, "", kind).await {
        Ok(file) => {
            let status = if file.state == FileState::NotFound { StatusCode::NOT_FOUND } else { StatusCode::OK };
            let page = file_page(
                &web,
                workspace,
                session,
                file,
                query.lines.as_deref(),
                query.edit.is_some(),
                None,
                None,
                query.saved.is_some(),
            );
            (status, page).into_response()
        }
        Err((status, message)) => {
            let back = urls::files(&workspace.id, "", session_text(&session));
            super::pages::problem(&web, status, "Cannot open that file", message, &back)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct SaveForm {
    #[serde(default)]
    command_id: String,
    path: String,
    content: String,
    /// The hash of what the editor was opened on; empty for a new file.
    #[serde(default)]
    hash: String,
    #[serde(default)]
    session: String,
}

pub(super) async fn post_file(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<SaveForm>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let session = found!(&web, web.session_named(Some(&form.session)));
    // Browsers send textarea lines with CRLF; the file keeps LF.
    let content = form.content.replace("\r\n", "\n");
    let kind = CommandKind::WriteFile {
        workspace_id: workspace.id.clone(),
        session_id: session.clone(),
        path: form.path.clone(),
        content: content.clone(),
        expected_hash: (!form.hash.is_empty()).then(|| form.hash.clone()),
        by: Some(viewer.0.clone()),
    };
    match ask::<serde_json::Value>(&web, &form.command_id, kind).await {
        Ok(_) => {
            let url = urls::file(&workspace.id, &form.path, session_text(&session));
            Redirect::to(&format!("{url}&saved=1")).into_response()
        }
        Err((status, message)) => {
            // Show what is on disk now beside the person's text: nothing is lost.
            let read = CommandKind::ReadFile {
                workspace_id: workspace.id.clone(),
                session_id: session.clone(),
                path: form.path.clone(),
            };
            let current = match ask(&web, "", read).await {
                Ok(value) => serde_json::from_value::<FileContent>(value).ok(),
                Err(_) => None,
            };
            match current {
                Some(file) => {
                    let page =
                        file_page(&web, workspace, session, file, None, true, Some(content), Some(message), false);
                    (status, page).into_response()
                }
                None => super::pages::problem(&web, status, "Not saved", message, &urls::files(&id, "", "")),
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct MoveForm {
    #[serde(default)]
    command_id: String,
    from: String,
    to: String,
    #[serde(default)]
    session: String,
}

pub(super) async fn post_move(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let session = found!(&web, web.session_named(Some(&form.session)));
    let kind = CommandKind::MovePath {
        workspace_id: workspace.id.clone(),
        session_id: session.clone(),
        from: form.from.clone(),
        to: form.to.clone(),
        by: Some(viewer.0.clone()),
    };
    let keep = session_text(&session);
    match ask::<PathMoved>(&web, &form.command_id, kind).await {
        Ok(PathMoved { to, .. }) => Redirect::to(&urls::file(&workspace.id, &to, &keep)).into_response(),
        Err((status, message)) => {
            let back = urls::file(&workspace.id, &form.from, &keep);
            super::pages::problem(&web, status, "Not moved", message, &back)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    command_id: String,
    path: String,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    session: String,
}

pub(super) async fn post_delete(
    State(web): State<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let workspace = found!(&web, web.find_workspace(&id));
    let session = found!(&web, web.session_named(Some(&form.session)));
    let kind = CommandKind::DeletePath {
        workspace_id: workspace.id.clone(),
        session_id: session.clone(),
        path: form.path.clone(),
        expected_hash: (!form.hash.is_empty()).then(|| form.hash.clone()),
        by: Some(viewer.0.clone()),
    };
    let keep = session_text(&session);
    let folder = form.path.rsplit_once('/').map(|(folder, _)| folder.to_string()).unwrap_or_default();
    match ask::<serde_json::Value>(&web, &form.command_id, kind).await {
        Ok(_) => Redirect::to(&urls::files(&workspace.id, &folder, &keep)).into_response(),
        Err((status, message)) => {
            let back = urls::file(&workspace.id, &form.path, &keep);
            super::pages::problem(&web, status, "Not deleted", message, &back)
        }
    }
}
