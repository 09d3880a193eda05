//! The web side: the panel, server-rendered with askama (templates in
//! `templates/`) and htmx (vendored in `static/vendor/`). The only module that
//! knows HTML. Mounted beside Core's API by `cortex up` and `cortex core`, so
//! `core` never imports it.

mod assets;
mod auth;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

pub use auth::Panel;

use crate::core::CoreState;

/// What the panel's handlers need.
pub(crate) struct Web {
    core: Arc<CoreState>,
    panel: Arc<Panel>,
}

pub fn router(core: Arc<CoreState>, panel: Arc<Panel>) -> Router {
    let web = Arc::new(Web { core, panel: panel.clone() });
    let pages = Router::new()
        .route("/", get(pages::get_dashboard))
        .route("/sessions/{id}", get(pages::get_session))
        .with_state(web.clone())
        .route_layer(middleware::from_fn_with_state(panel.clone(), auth::require_login));
    let links = Router::new().route("/panel/login-links", post(auth::post_login_link)).with_state(web.clone());
    Router::new()
        .route("/login", get(auth::get_login))
        .with_state(panel)
        .merge(links)
        .route("/static/{*name}", get(assets::get_static))
        .merge(pages)
        .layer(middleware::from_fn(auth::same_origin))
        .layer(middleware::from_fn(auth::security_headers))
}
