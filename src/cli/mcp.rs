//! `cortex mcp`: Cortex's own tools (list sessions, start one on any
//! workspace, wait for it, read its log and diff) for any MCP client, over
//! stdin and stdout. A thin bridge to the running Core's `/mcp`, so the
//! answers are Core's whatever the surface.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};

use super::Exit;
use super::backend::Ctx;
use super::client::Target;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cortex mcp                       # speak MCP on stdin/stdout (an MCP client starts this)
  claude mcp add cortex -- cortex mcp
  codex -c 'mcp_servers.cortex.command=\"cortex\"' -c 'mcp_servers.cortex.args=[\"mcp\"]'")]
pub(crate) struct McpArgs {}

pub(crate) fn run(_args: McpArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let client = Target::require(ctx, "cortex mcp")?;
    let (url, token) = (format!("{}/mcp", client.url()), client.token().to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let config = StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token);
        let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
        let core = ().serve(transport).await.map_err(|error| anyhow::anyhow!("cannot reach {url}: {error}"))?;
        let bridge = Bridge(core.peer().clone());
        let served = bridge.serve(rmcp::transport::stdio()).await?;
        served.waiting().await?;
        let _ = core.cancel().await;
        anyhow::Ok(())
    })?;
    Ok(Exit::Ok)
}

#[derive(Clone)]
struct Bridge(Peer<RoleClient>);

fn upstream(error: rmcp::ServiceError) -> ErrorData {
    ErrorData::internal_error(format!("Core: {error}"), None)
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cortex", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.0.list_all_tools().await.map_err(upstream)?))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut call = CallToolRequestParams::new(request.name);
        call.arguments = request.arguments;
        Ok(self.0.call_tool(call).await.map_err(upstream)?.into())
    }
}
