//! `/mcp` on Core: the Cortex-native tools (`sessions_list`,
//! `session_start`, `session_wait`, `session_log`, `session_diff`) as a
//! streamable-HTTP MCP server. A bearer token is required: the admin token
//! (any MCP client, and `cortex mcp`), or a node's credential with
//! `X-Cortex-Node` (a node's gateway, on behalf of one of its sessions,
//! named by `X-Cortex-Session`: sessions started that way are its
//! children, at most [`super::native::MAX_DEPTH`] levels deep).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::failure::ApiFailure;
use super::state::{CoreState, lock};
use crate::protocol::{ErrorCode, NodeId};

/// Who called: a person or client with the admin token, or a node's
/// gateway acting for one of its sessions.
#[derive(Clone, Debug)]
pub(super) enum Caller {
    Admin,
    Node { node: NodeId, session: Option<String> },
}

pub(super) fn routes(state: Arc<CoreState>) -> axum::Router<Arc<CoreState>> {
    let handler = Native(Arc::clone(&state));
    // Core may listen beyond loopback (`--bind`): the bearer token guards it.
    let mut config = StreamableHttpServerConfig::default();
    config.allowed_hosts.clear();
    let service: StreamableHttpService<Native, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(handler.clone()), Default::default(), config);
    axum::Router::new().route_service("/mcp", service).route_layer(middleware::from_fn_with_state(state, caller))
}

/// Names the caller, or refuses the request.
async fn caller(State(state): State<Arc<CoreState>>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let presented = super::auth::bearer(headers).unwrap_or_default().to_string();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_string);
    let caller = if super::auth::tokens_match(&presented, &state.admin_token) {
        Some(Caller::Admin)
    } else if let Some(node) = header("x-cortex-node").and_then(|node| node.parse::<NodeId>().ok()) {
        let known = lock(&state.registry).authenticate(&node, &presented).ok().flatten();
        known.filter(|record| !record.revoked).map(|_| Caller::Node { node, session: header("x-cortex-session") })
    } else {
        None
    };
    let Some(caller) = caller else {
        return ApiFailure::new(
            ErrorCode::Unauthorized,
            "missing or wrong bearer token: /mcp takes the admin token (`cortex mcp` finds it by itself)",
        )
        .into_response();
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[derive(Clone)]
pub(super) struct Native(pub(super) Arc<CoreState>);

impl ServerHandler for Native {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cortex", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Cortex's own tools: list sessions, start a session on any workspace of any node, wait for it, read its log and diff.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let caller = parts.and_then(|parts| parts.extensions.get::<Caller>());
        Ok(ListToolsResult::with_all_items(super::native::tools(&self.0, caller)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let caller = parts.and_then(|parts| parts.extensions.get::<Caller>()).cloned();
        let Some(caller) = caller else {
            return Err(ErrorData::invalid_request("the caller is not known", None));
        };
        let arguments = request.arguments.unwrap_or_default();
        Ok(super::native::call(&self.0, &caller, &request.name, arguments).await.into())
    }
}
