//! Reconciling the Tool Registry on this node: Core sends the dependencies
//! this node should run; each is checked (its secrets set here, its program
//! on this machine), started (a stdio server as a child this node owns, a
//! streamable-HTTP server reached), asked for its tools (`tools/list`
//! through the official Rust MCP SDK, `rmcp`), and reported as it actually
//! is: `running` with its tools and their schema hashes, or `failed` with
//! why (`missing secret NAME`, `missing binary X`, the server's error).
//! Core never assumes desired equals actual.

use std::collections::HashMap;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use sha2::{Digest, Sha256};

use crate::protocol::{Dependency, Server, ToolInfo, ToolPhase, ToolState};

/// How long a server has to start and list its tools.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The servers this node runs, by name.
#[derive(Default)]
pub struct Servers {
    running: tokio::sync::Mutex<HashMap<String, Entry>>,
}

struct Entry {
    dependency: Dependency,
    state: ToolState,
    /// The tools as the server listed them, for the gateway.
    tools: Vec<rmcp::model::Tool>,
    /// The live connection; dropping it stops a stdio server.
    service: Option<RunningService<RoleClient, ()>>,
}

/// A running server as the gateway offers it: its rules, its tools and
/// the connection to forward calls on.
#[derive(Clone)]
pub struct Offered {
    pub dependency: Dependency,
    pub tools: Vec<rmcp::model::Tool>,
    pub peer: rmcp::service::Peer<RoleClient>,
}

impl Servers {
    /// Makes this node run exactly `desired`: what is gone or changed is
    /// stopped, what is new is started; every dependency's state comes back.
    pub async fn reconcile(&self, desired: Vec<Dependency>) -> Vec<ToolState> {
        let mut running = self.running.lock().await;
        let stale: Vec<String> = running
            .iter()
            .filter(|(_, entry)| !desired.iter().any(|wanted| wanted.same_server(&entry.dependency)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(Entry { service: Some(service), .. }) = running.remove(&name) {
                let _ = service.cancel().await;
            }
        }
        for dependency in desired {
            if let Some(entry) = running.get_mut(&dependency.name)
                && entry.state.phase == ToolPhase::Running
            {
                // Same server; its rules may have changed.
                entry.dependency = dependency;
                continue;
            }
            let entry = start(dependency).await;
            running.insert(entry.dependency.name.clone(), entry);
        }
        let mut states: Vec<ToolState> = running.values().map(|entry| entry.state.clone()).collect();
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states
    }

    /// The running servers, for a session's gateway.
    pub async fn offered(&self) -> Vec<Offered> {
        let running = self.running.lock().await;
        let mut offered: Vec<Offered> = running
            .values()
            .filter_map(|entry| {
                let service = entry.service.as_ref()?;
                Some(Offered {
                    dependency: entry.dependency.clone(),
                    tools: entry.tools.clone(),
                    peer: service.peer().clone(),
                })
            })
            .collect();
        offered.sort_by(|a, b| a.dependency.name.cmp(&b.dependency.name));
        offered
    }
}

async fn start(dependency: Dependency) -> Entry {
    let failed = |dependency: Dependency, reason: String| {
        tracing::warn!(tool = %dependency.name, %reason, "a tool is not running");
        let state = ToolState {
            name: dependency.name.clone(),
            phase: ToolPhase::Failed,
            reason: Some(reason),
            tools: Vec::new(),
        };
        Entry { dependency, state, tools: Vec::new(), service: None }
    };
    if let Some(missing) =
        dependency.secrets.iter().find(|name| std::env::var_os(name).is_none_or(|value| value.is_empty()))
    {
        return failed(dependency.clone(), format!("missing secret {missing}"));
    }
    let connected = match &dependency.server {
        Server::Stdio { command } => {
            let program = &command[0];
            if !is_installed(program) {
                return failed(dependency.clone(), format!("missing binary {program}"));
            }
            let mut child = tokio::process::Command::new(program);
            child.args(&command[1..]).kill_on_drop(true);
            let spawned = rmcp::transport::TokioChildProcess::builder(child)
                .stderr(std::process::Stdio::null())
                .spawn()
                .map(|(transport, _)| transport);
            match spawned {
                Ok(transport) => tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await,
                Err(error) => return failed(dependency.clone(), format!("cannot start {program}: {error}")),
            }
        }
        Server::Http { url } => {
            let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str());
            tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await
        }
    };
    let service = match connected {
        Ok(Ok(service)) => service,
        Ok(Err(error)) => return failed(dependency.clone(), format!("it did not start: {error}")),
        Err(_) => return failed(dependency.clone(), format!("it did not answer within {} s", START_TIMEOUT.as_secs())),
    };
    let tools = match tokio::time::timeout(START_TIMEOUT, service.list_all_tools()).await {
        Ok(Ok(tools)) => tools,
        Ok(Err(error)) => return failed(dependency.clone(), format!("tools/list failed: {error}")),
        Err(_) => return failed(dependency.clone(), "tools/list did not answer".into()),
    };
    let infos =
        tools.iter().map(|tool| ToolInfo { name: tool.name.to_string(), schema_hash: schema_hash(tool) }).collect();
    tracing::info!(tool = %dependency.name, "a tool is running");
    let state = ToolState { name: dependency.name.clone(), phase: ToolPhase::Running, reason: None, tools: infos };
    Entry { dependency, state, tools, service: Some(service) }
}

/// SHA-256 of a tool's input schema as JSON, hex: what the registry and
/// every call's event name it by.
pub fn schema_hash(tool: &rmcp::model::Tool) -> String {
    let schema = serde_json::to_vec(&*tool.input_schema).unwrap_or_default();
    hex::encode(Sha256::digest(&schema))
}

/// Whether `program` can be run here: a path to a file, or a name on PATH.
fn is_installed(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
