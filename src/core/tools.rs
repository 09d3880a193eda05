//! The registries over HTTP: `/api/v1/tools` (dependencies: MCP servers by
//! command or URL, with scope and secret references) and `/api/v1/plugins`
//! (Agent Plugins packages, checked here again whatever the client
//! checked). Core holds what is wanted; nodes will report what is there.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::failure::ApiFailure;
use super::state::{CoreState, lock};
use crate::protocol::{Dependency, ErrorCode, PluginPackage};

pub(super) fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/api/v1/tools", get(get_tools).post(post_tool))
        .route("/api/v1/tools/{name}", get(get_tool).delete(delete_tool))
        .route("/api/v1/plugins", get(get_plugins).post(post_plugin))
        .route("/api/v1/plugins/{name}", get(get_plugin).delete(delete_plugin))
}

fn answer<T: serde::Serialize>(result: super::Result<T>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_tools(State(state): State<Arc<CoreState>>) -> Response {
    answer(state.tools())
}

async fn get_tool(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match state.tools() {
        Ok(tools) => match tools.into_iter().find(|tool| tool.name == name) {
            Some(tool) => Json(tool).into_response(),
            None => ApiFailure::not_found(format!("no tool `{name}` (see `cortex tool list`)")).into_response(),
        },
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn post_tool(State(state): State<Arc<CoreState>>, Json(mut tool): Json<Dependency>) -> Response {
    // Only plugins bring plugin tools.
    tool.plugin = None;
    if let Err(message) = tool.check() {
        return ApiFailure::new(ErrorCode::BadInput, message).into_response();
    }
    match lock(&state.registry).add_dependency(tool) {
        Ok(Ok(tool)) => (axum::http::StatusCode::CREATED, Json(tool)).into_response(),
        Ok(Err(refused)) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn delete_tool(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match lock(&state.registry).remove_dependency(&name) {
        Ok(Ok(true)) => Json(serde_json::json!({"removed": name})).into_response(),
        Ok(Ok(false)) => ApiFailure::not_found(format!("no tool `{name}`")).into_response(),
        Ok(Err(refused)) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn get_plugins(State(state): State<Arc<CoreState>>) -> Response {
    answer(state.plugins())
}

async fn get_plugin(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match state.plugins() {
        Ok(plugins) => match plugins.into_iter().find(|plugin| plugin.name == name) {
            Some(plugin) => Json(plugin).into_response(),
            None => ApiFailure::not_found(format!("no plugin `{name}` (see `cortex plugin list`)")).into_response(),
        },
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn post_plugin(State(state): State<Arc<CoreState>>, Json(package): Json<PluginPackage>) -> Response {
    let plugin = match package.check() {
        Ok(plugin) => plugin,
        Err(message) => return ApiFailure::new(ErrorCode::BadInput, message).into_response(),
    };
    match lock(&state.registry).add_plugin(plugin, &package) {
        Ok(Ok(plugin)) => (axum::http::StatusCode::CREATED, Json(plugin)).into_response(),
        Ok(Err(refused)) => ApiFailure::new(ErrorCode::Conflict, refused).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}

async fn delete_plugin(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> Response {
    match lock(&state.registry).remove_plugin(&name) {
        Ok(true) => Json(serde_json::json!({"removed": name})).into_response(),
        Ok(false) => ApiFailure::not_found(format!("no plugin `{name}`")).into_response(),
        Err(error) => ApiFailure::internal(error).into_response(),
    }
}
