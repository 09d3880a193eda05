//! Cortex's MCP gateway: the one MCP server a session's agent is given
//! (streamable HTTP on 127.0.0.1, one secret URL per session). It lists the
//! tools of the servers this node runs for the session's scope, namespaced
//! `server.tool`; forwards each call to its server; holds it to the
//! registry's policy (a denied tool is refused, one that needs approval
//! waits for a person through the session's approval path); redacts what
//! comes back; and records every call as a `tool_call` event of the
//! session's running turn.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::mcp::{Offered, Reach, Servers, schema_hash};
use super::runner::Turns;
use crate::protocol::{ApprovalDecision, EventKind, Policy, SessionId, ToolCall, ToolOutcome};

/// How long a forwarded call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of a call's arguments an event keeps.
const MAX_ARGUMENTS: usize = 4096;

/// The gateway of one node: its address and the sessions it serves.
pub struct Gateway {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    servers: Arc<Servers>,
    turns: Turns,
    /// How to reach Core's own tools (`/mcp`), once the node is connected.
    core: Mutex<Option<CoreAccess>>,
    /// Core's tools as Core listed them last, by workspace (plugins'
    /// skills are offered where their plugin is enabled).
    native: tokio::sync::Mutex<HashMap<Option<String>, Vec<Tool>>>,
    /// Each session's secret key (in its URL), and the session it names.
    keys: Mutex<HashMap<String, Place>>,
}

/// The session a key stands for, its workspace's name for scopes, and
/// where it works (its worktree, else its workspace), where CLI tools run.
#[derive(Clone)]
struct Place {
    session: SessionId,
    workspace: Option<String>,
    cwd: Option<std::path::PathBuf>,
}

impl Gateway {
    /// Listens on 127.0.0.1 (a port of the system's choosing) until the
    /// process ends.
    pub async fn start(servers: Arc<Servers>, turns: Turns) -> std::io::Result<Arc<Gateway>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            servers,
            turns,
            core: Mutex::default(),
            native: tokio::sync::Mutex::default(),
            keys: Mutex::default(),
        });
        let handler = Handler(Arc::clone(&shared));
        let config = StreamableHttpServerConfig::default();
        let service: StreamableHttpService<Handler, LocalSessionManager> =
            StreamableHttpService::new(move || Ok(handler.clone()), Default::default(), config);
        let app = axum::Router::new().route_service("/mcp", service);
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the MCP gateway stopped");
            }
        });
        tracing::info!(%addr, "the MCP gateway listens");
        Ok(Arc::new(Gateway { addr, shared }))
    }

    /// Core's address and this node's credential: Cortex's own tools
    /// (`cortex.session_start`, …) are Core's, called for the session.
    pub fn set_core(&self, url: &str, node: &crate::protocol::NodeId, name: &str, secret: &str) {
        let access = CoreAccess {
            url: url.trim_end_matches('/').to_string(),
            node: node.to_string(),
            node_name: name.to_string(),
            secret: secret.to_string(),
        };
        *lock(&self.shared.core) = Some(access);
    }

    /// Core's tools are listed again on next use (plugins, and their
    /// skills, may have come or gone).
    pub async fn forget_native(&self) {
        self.shared.native.lock().await.clear();
    }

    /// The URL `session`'s agent reaches the gateway at: the same for the
    /// session's life, with a key nobody else knows.
    pub fn url_for(&self, session: &SessionId, workspace: Option<&str>, cwd: Option<&std::path::Path>) -> String {
        let mut keys = lock(&self.shared.keys);
        let key = keys.iter().find(|(_, place)| place.session == *session).map(|(key, _)| key.clone());
        let key = key.unwrap_or_else(|| {
            let key = hex::encode(rand::random::<[u8; 32]>());
            let place = Place {
                session: session.clone(),
                workspace: workspace.map(str::to_string),
                cwd: cwd.map(std::path::Path::to_path_buf),
            };
            keys.insert(key.clone(), place);
            key
        });
        format!("http://{}/mcp?key={key}", self.addr)
    }
}

impl Place {
    /// Where a call of this session is made, for scoped rules.
    fn call_place<'a>(&'a self, node: Option<&'a CoreAccess>) -> crate::protocol::CallPlace<'a> {
        crate::protocol::CallPlace {
            session: self.session.as_str(),
            workspace: self.workspace.as_deref(),
            node_name: node.map(|node| node.node_name.as_str()),
            node_id: node.map(|node| node.node.as_str()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone)]
struct Handler(Arc<Shared>);

impl Handler {
    /// The session the request's key names.
    fn place(&self, context: &RequestContext<RoleServer>) -> Result<Place, ErrorData> {
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let key = parts
            .and_then(|parts| parts.uri.query())
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("key=")))
            .unwrap_or_default();
        lock(&self.0.keys)
            .get(key)
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("this gateway URL names no session of this node", None))
    }

    /// The servers offered to the session at `at` (its scope, its plugins).
    async fn offered(&self, place: &Place, at: &crate::protocol::CallPlace<'_>) -> Vec<Offered> {
        let wants = |dependency: &crate::protocol::Dependency| dependency.unavailable_at(at).is_none();
        self.0.servers.offered(&place.session, wants).await
    }
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cortex", env!("CARGO_PKG_VERSION")))
            .with_instructions("Tools of the MCP servers Cortex runs for this session, named SERVER.TOOL.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let place = self.place(&context)?;
        let node = lock(&self.0.core).clone();
        let at = place.call_place(node.as_ref());
        let mut tools = Vec::new();
        for server in self.offered(&place, &at).await {
            for tool in &server.tools {
                let rule = server.dependency.policy_at(&tool.name, &at);
                let mut listed: Tool = tool.clone();
                listed.name = format!("{}.{}", server.dependency.name, tool.name).into();
                let note = match rule.policy {
                    Policy::Allowed => None,
                    Policy::Denied => Some("[denied by Cortex policy: a call is refused] "),
                    Policy::NeedsApproval => Some("[needs a person's approval in Cortex] "),
                };
                if let Some(note) = note {
                    listed.description = Some(format!("{note}{}", tool.description.as_deref().unwrap_or("")).into());
                }
                tools.push(listed);
            }
        }
        for tool in self.native_tools(&place).await {
            let mut listed = tool.clone();
            listed.name = format!("{NATIVE}.{}", tool.name).into();
            tools.push(listed);
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let place = self.place(&context)?;
        let began = Instant::now();
        if let Some(tool) = request.name.strip_prefix(NATIVE).and_then(|rest| rest.strip_prefix('.')) {
            let tool = tool.to_string();
            return self.call_native(&place, tool, request, began).await;
        }
        let node = lock(&self.0.core).clone();
        let at = place.call_place(node.as_ref());
        let offered = self.offered(&place, &at).await;
        let found = offered.iter().filter_map(|server| {
            let tool = request.name.strip_prefix(server.dependency.name.as_str())?.strip_prefix('.')?;
            Some((server, server.tools.iter().find(|listed| listed.name == tool)?))
        });
        // The longest server name wins (`kit.files` before `kit`).
        let Some((server, tool)) = found.max_by_key(|(server, _)| server.dependency.name.len()) else {
            return Err(ErrorData::invalid_params(format!("no tool `{}` for this session", request.name), None));
        };
        let rule = server.dependency.policy_at(&tool.name, &at);
        let mut call = ToolCall {
            name: request.name.to_string(),
            server: server.dependency.name.clone(),
            tool: tool.name.to_string(),
            schema_hash: Some(schema_hash(tool)),
            arguments: arguments_text(&request),
            policy: rule.policy,
            risk: rule.risk,
            outcome: ToolOutcome::Ok,
            duration_ms: 0,
            result_bytes: 0,
            error: None,
            approved_by: None,
        };
        let refusal = match rule.policy {
            Policy::Allowed => None,
            Policy::Denied => Some((ToolOutcome::Denied, format!("`{}` is denied by Cortex policy", call.name))),
            Policy::NeedsApproval => {
                let prompt = format!("call tool {} with {}", call.name, call.arguments);
                match self.approve(&place.session, prompt).await? {
                    (ApprovalDecision::Approved, by) => {
                        call.approved_by = Some(by);
                        None
                    }
                    (_, by) => Some((ToolOutcome::Declined, format!("`{}` was declined by {by}", call.name))),
                }
            }
        };
        let result = match refusal {
            Some((outcome, message)) => {
                call.outcome = outcome;
                call.error = Some(message.clone());
                CallToolResult::error(vec![ContentBlock::text(message)])
            }
            None => forward(server, tool, request, &mut call, place.cwd.as_deref()).await,
        };
        call.duration_ms = began.elapsed().as_millis() as u64;
        call.result_bytes = serde_json::to_vec(&result).map_or(0, |bytes| bytes.len() as u64);
        self.record(&place.session, call).await?;
        Ok(result.into())
    }
}

impl Handler {
    async fn approve(&self, session: &SessionId, prompt: String) -> Result<(ApprovalDecision, String), ErrorData> {
        let turns = self.0.turns.clone();
        let session = session.clone();
        let asked = tokio::task::spawn_blocking(move || turns.approve(&session, prompt)).await;
        match asked {
            Ok(Some(Ok(answer))) => Ok(answer),
            Ok(Some(Err(error))) => Err(ErrorData::internal_error(format!("cannot ask for approval: {error}"), None)),
            _ => Err(no_turn()),
        }
    }

    async fn record(&self, session: &SessionId, call: ToolCall) -> Result<(), ErrorData> {
        let turns = self.0.turns.clone();
        let session = session.clone();
        let recorded = tokio::task::spawn_blocking(move || turns.record(&session, EventKind::ToolCall { call })).await;
        match recorded {
            Ok(Some(Ok(_))) => Ok(()),
            Ok(Some(Err(error))) => Err(ErrorData::internal_error(format!("cannot record the call: {error}"), None)),
            _ => Err(no_turn()),
        }
    }
}

/// The namespace of Cortex's own tools in a session's list.
const NATIVE: &str = "cortex";

/// Core's `/mcp` and this node's credential.
#[derive(Clone)]
struct CoreAccess {
    url: String,
    node: String,
    node_name: String,
    secret: String,
}

impl CoreAccess {
    /// A client of Core's `/mcp` acting for `session`.
    async fn connect(
        &self,
        session: &SessionId,
    ) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ()>, String> {
        use rmcp::ServiceExt;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let header = |value: &str| axum::http::HeaderValue::from_str(value).map_err(|error| error.to_string());
        let headers = HashMap::from([
            (axum::http::HeaderName::from_static("x-cortex-node"), header(&self.node)?),
            (axum::http::HeaderName::from_static("x-cortex-session"), header(session.as_str())?),
        ]);
        let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.url))
            .auth_header(self.secret.clone())
            .custom_headers(headers);
        let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
        match tokio::time::timeout(Duration::from_secs(30), ().serve(transport)).await {
            Ok(Ok(service)) => Ok(service),
            Ok(Err(error)) => Err(format!("Core's tools did not answer: {error}")),
            Err(_) => Err("Core's tools did not answer within 30 s".into()),
        }
    }
}

impl Handler {
    /// Core's tools for `place`'s workspace (listed once per registry
    /// change; empty while Core is unknown).
    async fn native_tools(&self, place: &Place) -> Vec<Tool> {
        let mut native = self.0.native.lock().await;
        if let Some(listed) = native.get(&place.workspace) {
            return listed.clone();
        }
        let access = lock(&self.0.core).clone();
        if let Some(access) = access
            && let Ok(client) = access.connect(&place.session).await
        {
            let listed = client.list_all_tools().await.unwrap_or_default();
            let _ = client.cancel().await;
            native.insert(place.workspace.clone(), listed.clone());
            return listed;
        }
        Vec::new()
    }

    /// A call of one of Core's tools, for the session, recorded like any.
    async fn call_native(
        &self,
        place: &Place,
        tool: String,
        request: CallToolRequestParams,
        began: Instant,
    ) -> Result<CallToolResponse, ErrorData> {
        let listed = self.native_tools(place).await;
        let Some(known) = listed.iter().find(|listed| listed.name == tool) else {
            return Err(ErrorData::invalid_params(format!("no tool `{}` for this session", request.name), None));
        };
        let mut call = ToolCall {
            name: request.name.to_string(),
            server: NATIVE.to_string(),
            tool: tool.clone(),
            schema_hash: Some(schema_hash(known)),
            arguments: arguments_text(&request),
            policy: Policy::Allowed,
            risk: crate::protocol::Risk::Low,
            outcome: ToolOutcome::Ok,
            duration_ms: 0,
            result_bytes: 0,
            error: None,
            approved_by: None,
        };
        let access = lock(&self.0.core).clone();
        let answered = match access {
            Some(access) => match access.connect(&place.session).await {
                Ok(client) => {
                    let mut upstream = CallToolRequestParams::new(tool);
                    upstream.arguments = request.arguments;
                    let answered = client.call_tool(upstream).await.map_err(|error| error.to_string());
                    let _ = client.cancel().await;
                    answered
                }
                Err(error) => Err(error),
            },
            None => Err("this node is not connected to Core".to_string()),
        };
        let result = match answered {
            Ok(result) => {
                call.outcome = if result.is_error == Some(true) { ToolOutcome::Error } else { ToolOutcome::Ok };
                redacted(result)
            }
            Err(message) => {
                call.outcome = ToolOutcome::Error;
                call.error = Some(message.clone());
                CallToolResult::error(vec![ContentBlock::text(message)])
            }
        };
        call.duration_ms = began.elapsed().as_millis() as u64;
        call.result_bytes = serde_json::to_vec(&result).map_or(0, |bytes| bytes.len() as u64);
        self.record(&place.session, call).await?;
        Ok(result.into())
    }
}

fn no_turn() -> ErrorData {
    ErrorData::invalid_request("no turn of this session is running; tools are called during a turn", None)
}

/// Forwards the call to its server under the server's own tool name; the
/// answer comes back redacted.
async fn forward(
    server: &Offered,
    tool: &Tool,
    request: CallToolRequestParams,
    call: &mut ToolCall,
    cwd: Option<&std::path::Path>,
) -> CallToolResult {
    let peer = match &server.reach {
        Reach::Mcp(peer) => peer,
        Reach::Binary { program } => {
            let (outcome, result) = super::cli_tool::run(program, request.arguments.as_ref(), cwd, CALL_TIMEOUT).await;
            if outcome != ToolOutcome::Ok {
                call.error = result.content.first().and_then(|block| block.as_text()).map(|text| text.text.clone());
            }
            call.outcome = outcome;
            return redacted(result);
        }
    };
    let mut upstream = CallToolRequestParams::new(tool.name.clone());
    upstream.arguments = request.arguments;
    let answered = tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(upstream)).await;
    let (outcome, result) = match answered {
        Ok(Ok(result)) if result.is_error == Some(true) => (ToolOutcome::Error, redacted(result)),
        Ok(Ok(result)) => (ToolOutcome::Ok, redacted(result)),
        Ok(Err(error)) => {
            let message = format!("server `{}` failed the call: {error}", server.dependency.name);
            call.error = Some(message.clone());
            (ToolOutcome::Error, CallToolResult::error(vec![ContentBlock::text(message)]))
        }
        Err(_) => {
            let message =
                format!("server `{}` did not answer within {} s", server.dependency.name, CALL_TIMEOUT.as_secs());
            call.error = Some(message.clone());
            (ToolOutcome::TimedOut, CallToolResult::error(vec![ContentBlock::text(message)]))
        }
    };
    call.outcome = outcome;
    result
}

/// Every string of the result redacted, as the agent and the record see it.
fn redacted(result: CallToolResult) -> CallToolResult {
    let Ok(mut value) = serde_json::to_value(&result) else { return result };
    redact_strings(&mut value);
    serde_json::from_value(value).unwrap_or(result)
}

fn redact_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            if let std::borrow::Cow::Owned(clean) = crate::store::redact::redact_str(text) {
                *text = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// The arguments as JSON, cut at [`MAX_ARGUMENTS`] bytes on a character.
fn arguments_text(request: &CallToolRequestParams) -> String {
    let text = request
        .arguments
        .as_ref()
        .map_or_else(|| "{}".to_string(), |args| serde_json::to_string(args).unwrap_or_default());
    if text.len() <= MAX_ARGUMENTS {
        return text;
    }
    let cut = (0..=MAX_ARGUMENTS).rev().find(|cut| text.is_char_boundary(*cut)).unwrap_or(0);
    format!("{}…", &text[..cut])
}
