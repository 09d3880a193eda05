//! The web side: server-rendered pages (askama). Until the panel lands this
//! is one status page; the only module that knows HTML. Mounted beside
//! Core's API by `cortex up` and `cortex core`, so `core` never imports it.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::core::CoreState;
use crate::protocol::NodeStatus;

pub fn router(state: Arc<CoreState>) -> Router {
    Router::new().route("/", get(get_status)).with_state(state)
}

#[derive(Template, WebTemplate)]
#[template(path = "status.html")]
struct StatusPage {
    version: &'static str,
    nodes_online: usize,
    nodes_total: usize,
    sessions: usize,
}

async fn get_status(State(state): State<Arc<CoreState>>) -> StatusPage {
    let nodes = state.node_summaries().unwrap_or_default();
    StatusPage {
        version: env!("CARGO_PKG_VERSION"),
        nodes_online: nodes.iter().filter(|node| node.status == NodeStatus::Online).count(),
        nodes_total: nodes.len(),
        sessions: state.session_count(),
    }
}
