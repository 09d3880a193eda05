//! `/tools`: the Tool Registry and the Plugin Registry as Core holds them
//! (what is wanted on the nodes): each tool's server, scope, the secrets
//! it needs and the plugin it came with; each plugin's servers and skills.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::Web;
use super::error::found;
use super::pages::{Shell, shell};
use crate::protocol::{Dependency, Plugin, Server};

#[derive(Template, WebTemplate)]
#[template(path = "tools.html")]
pub(super) struct ToolsPage {
    shell: Shell,
    tools: Vec<Dependency>,
    plugins: Vec<Plugin>,
}

pub(super) async fn get_tools(State(web): State<Arc<Web>>) -> Response {
    let tools = found!(&web, web.core.tools());
    let plugins = found!(&web, web.core.plugins());
    let crumbs = vec![("tools".to_string(), "/tools".to_string())];
    ToolsPage { shell: shell(&web, crumbs), tools, plugins }.into_response()
}

/// How a node reaches the server, in words.
pub(super) fn reach(server: &Server) -> String {
    match server {
        Server::Stdio { command } => command.join(" "),
        Server::Http { url } => url.clone(),
    }
}
