//! Reconciling the Tool Registry on this node: Core sends the dependencies
//! this node should run; each is checked (its secrets set here, its program
//! on this machine), started (a stdio server as a child this node owns, a
//! streamable-HTTP server reached), asked for its tools (`tools/list`
//! through the official Rust MCP SDK, `rmcp`), and reported as it actually
//! is: `running` with its tools and their schema hashes, or `failed` with
//! why (`missing secret NAME`, `missing binary X`, the server's error).
//! Core never assumes desired equals actual.
//!
//! A server that exits is `degraded` while it is restarted with backoff
//! (0.5 s, doubling), and `failed` after [`MAX_RESTARTS`] tries in a row;
//! one that ran a minute counts as healthy again.
//!
//! A server runs from reconciliation (to find its tools) for as long as a
//! session of this node uses it: when the last session that listed or
//! called its tools ends (stopped, expired or failed), it is stopped and
//! `configured`, and started again when a session needs it. A server whose
//! every tool the registry denies is never started: it is `blocked`.

use std::collections::HashMap;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use sha2::{Digest, Sha256};

use crate::protocol::{Dependency, Server, SessionId, ToolInfo, ToolPhase, ToolState};

/// How long a server has to start and list its tools.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often exited servers are looked for.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// The first wait before a restart; each next one doubles.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// Restarts in a row before a server is left `failed`.
pub const MAX_RESTARTS: u32 = 4;
/// How long a server must run before its restarts count from zero again.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The servers this node runs, by name.
pub struct Servers {
    running: tokio::sync::Mutex<HashMap<String, Entry>>,
    /// Tools that could not even be read (a bad `.cortex/tools.toml`).
    problems: std::sync::Mutex<Vec<ToolState>>,
    /// Bumped whenever a state changes outside `reconcile` (a crash, a
    /// restart), for whoever reports states to Core.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Servers {
    fn default() -> Servers {
        Servers { running: Default::default(), problems: Default::default(), changed: tokio::sync::watch::channel(0).0 }
    }
}

struct Entry {
    dependency: Dependency,
    state: ToolState,
    /// The tools as the server listed them, for the gateway.
    tools: Vec<rmcp::model::Tool>,
    /// The live connection; dropping it stops a stdio server.
    service: Option<RunningService<RoleClient, ()>>,
    /// Restarts tried in a row, when the next one is due, and since when
    /// the server has been running.
    restarts: u32,
    retry_at: Option<std::time::Instant>,
    started: std::time::Instant,
    /// The sessions that listed or called its tools and have not ended.
    users: std::collections::HashSet<SessionId>,
}

impl Entry {
    /// Stopped with its last session, ready to start again.
    fn is_idle(&self) -> bool {
        self.state.phase == ToolPhase::Configured && self.service.is_none()
    }
}

/// A running server as the gateway offers it: its rules, its tools and
/// how to forward calls.
#[derive(Clone)]
pub struct Offered {
    pub dependency: Dependency,
    pub tools: Vec<rmcp::model::Tool>,
    pub reach: Reach,
}

/// Where a call goes.
#[derive(Clone)]
pub enum Reach {
    /// An MCP server's live connection.
    Mcp(rmcp::service::Peer<RoleClient>),
    /// A CLI binary, run for each call.
    Binary { program: String },
}

impl Servers {
    /// Makes this node run exactly `desired`: what is gone or changed is
    /// stopped, what is new is started; every dependency's state comes back,
    /// with `problems` (tools that could not be read) among them.
    pub async fn reconcile(&self, desired: Vec<Dependency>, problems: Vec<ToolState>) -> Vec<ToolState> {
        *self.problems.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = problems;
        self.reconcile_running(desired).await;
        self.states().await
    }

    async fn reconcile_running(&self, desired: Vec<Dependency>) {
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
                && (entry.state.phase == ToolPhase::Running || entry.is_idle())
                && entry.dependency.same_server(&dependency)
                && !dependency.all_denied()
            {
                // Same server; its rules may have changed.
                entry.dependency = dependency;
                continue;
            }
            let mut users = Default::default();
            if let Some(old) = running.remove(&dependency.name) {
                if let Some(service) = old.service {
                    let _ = service.cancel().await;
                }
                users = old.users;
            }
            let mut entry = start(dependency).await;
            entry.users = users;
            running.insert(entry.dependency.name.clone(), entry);
        }
    }

    /// Every dependency's state as it stands.
    pub async fn states(&self) -> Vec<ToolState> {
        let running = self.running.lock().await;
        let mut states: Vec<ToolState> = running.values().map(|entry| entry.state.clone()).collect();
        states.extend(self.problems.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned());
        states.sort_by(|a, b| a.name.cmp(&b.name));
        states
    }

    /// Changes made outside `reconcile`: wait on it, then send `states()`.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Watches the running servers until the process ends: one that exited
    /// is `degraded` and restarted after its backoff, or `failed` once it
    /// has been restarted [`MAX_RESTARTS`] times in a row.
    pub async fn supervise(self: std::sync::Arc<Self>) {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let due = self.look().await;
            for dependency in due {
                let mut entry = start(dependency.clone()).await;
                let mut running = self.running.lock().await;
                // Removed or changed meanwhile: what reconcile decided stands.
                let Some(old) = running.get(&dependency.name).filter(|old| old.dependency.same_server(&dependency))
                else {
                    continue;
                };
                entry.dependency = old.dependency.clone();
                entry.restarts = old.restarts;
                entry.users = old.users.clone();
                if entry.state.phase != ToolPhase::Running {
                    let reason = entry.state.reason.clone().unwrap_or_default();
                    crashed(&mut entry, &format!("the restart failed: {reason}"));
                }
                running.insert(dependency.name.clone(), entry);
                drop(running);
                self.changed.send_modify(|generation| *generation += 1);
            }
        }
    }

    /// Marks servers that exited, and answers those due for a restart.
    async fn look(&self) -> Vec<Dependency> {
        let mut running = self.running.lock().await;
        let now = std::time::Instant::now();
        let mut changed = false;
        let mut due = Vec::new();
        for entry in running.values_mut() {
            let exited = entry.service.as_ref().is_some_and(|service| service.peer().is_transport_closed());
            if entry.state.phase == ToolPhase::Running && exited {
                if entry.started.elapsed() > HEALTHY_AFTER {
                    entry.restarts = 0;
                }
                entry.service = None;
                crashed(entry, "it exited");
                changed = true;
            } else if entry.state.phase == ToolPhase::Degraded && entry.retry_at.is_some_and(|at| at <= now) {
                entry.retry_at = None;
                due.push(entry.dependency.clone());
            }
        }
        if changed {
            self.changed.send_modify(|generation| *generation += 1);
        }
        due
    }

    /// The running servers `wants` picks, for `session`'s gateway: one
    /// stopped with its last session is started again, and each counts
    /// `session` among its users until [`Servers::release`].
    pub async fn offered(&self, session: &SessionId, wants: impl Fn(&Dependency) -> bool) -> Vec<Offered> {
        let mut running = self.running.lock().await;
        let mut changed = false;
        for entry in running.values_mut().filter(|entry| wants(&entry.dependency)) {
            if entry.is_idle() {
                let users = std::mem::take(&mut entry.users);
                *entry = start(entry.dependency.clone()).await;
                entry.users = users;
                changed = true;
            }
            if entry.service.is_some() || entry.state.phase == ToolPhase::Running {
                entry.users.insert(session.clone());
            }
        }
        let mut offered: Vec<Offered> = running
            .values()
            .filter(|entry| wants(&entry.dependency))
            .filter_map(|entry| {
                let reach = match (&entry.dependency.server, &entry.service) {
                    (Server::Binary { program, .. }, _) if entry.state.phase == ToolPhase::Running => {
                        Reach::Binary { program: program.clone() }
                    }
                    (_, Some(service)) => Reach::Mcp(service.peer().clone()),
                    _ => return None,
                };
                Some(Offered { dependency: entry.dependency.clone(), tools: entry.tools.clone(), reach })
            })
            .collect();
        drop(running);
        if changed {
            self.changed.send_modify(|generation| *generation += 1);
        }
        offered.sort_by(|a, b| a.dependency.name.cmp(&b.dependency.name));
        offered
    }

    /// `session` has ended: each server it was the last user of is stopped,
    /// `configured` (its tools still known) until a session needs it again.
    pub async fn release(&self, session: &SessionId) {
        let mut running = self.running.lock().await;
        let mut changed = false;
        for entry in running.values_mut() {
            if !entry.users.remove(session) || !entry.users.is_empty() {
                continue;
            }
            let Some(service) = entry.service.take() else { continue };
            let _ = service.cancel().await;
            entry.tools.clear();
            entry.state.phase = ToolPhase::Configured;
            entry.state.reason =
                Some(format!("stopped with its last session ({session}); it starts again when a session needs it"));
            tracing::info!(tool = %entry.dependency.name, %session, "a tool stopped with its last session");
            changed = true;
        }
        drop(running);
        if changed {
            self.changed.send_modify(|generation| *generation += 1);
        }
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
            version: None,
            digest: None,
        };
        Entry {
            dependency,
            state,
            tools: Vec::new(),
            service: None,
            restarts: 0,
            retry_at: None,
            started: std::time::Instant::now(),
            users: Default::default(),
        }
    };
    if dependency.all_denied() {
        let name = dependency.name.clone();
        let mut entry = failed(
            dependency,
            format!(
                "blocked by policy: every tool of {name} is denied (`cortex tool policy {name} '*' allowed` allows them)"
            ),
        );
        entry.state.phase = ToolPhase::Blocked;
        return entry;
    }
    if let Some(missing) =
        dependency.secrets.iter().find(|name| std::env::var_os(name).is_none_or(|value| value.is_empty()))
    {
        return failed(dependency.clone(), format!("missing secret {missing}"));
    }
    let connected = match &dependency.server {
        Server::Binary { program, version } => {
            let (program, version) = (program.clone(), version.clone());
            return match check_binary(&program, version.as_deref()).await {
                Ok((found, tool)) => running(dependency, vec![tool], None, found),
                Err(reason) => failed(dependency, reason),
            };
        }
        Server::Stdio { command } => {
            let program = &command[0];
            if !is_installed(program) {
                return failed(dependency.clone(), format!("missing binary {program}"));
            }
            let mut child = tokio::process::Command::new(program);
            child.args(&command[1..]).kill_on_drop(true);
            if let Some(cwd) = &dependency.cwd {
                child.current_dir(cwd);
            }
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
    running(dependency, tools, Some(service), None)
}

fn running(
    dependency: Dependency,
    tools: Vec<rmcp::model::Tool>,
    service: Option<RunningService<RoleClient, ()>>,
    version: Option<String>,
) -> Entry {
    let infos = tools.iter().map(info).collect();
    tracing::info!(tool = %dependency.name, "a tool is running");
    let state = ToolState {
        name: dependency.name.clone(),
        phase: ToolPhase::Running,
        reason: None,
        tools: infos,
        version,
        digest: None,
    };
    Entry {
        dependency,
        state,
        tools,
        service,
        restarts: 0,
        retry_at: None,
        started: std::time::Instant::now(),
        users: Default::default(),
    }
}

/// How long `PROGRAM --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A CLI binary checked: installed, and its version (`PROGRAM --version`,
/// the first `X.Y[.Z]` in what it prints) meeting `wanted`. Answers the
/// version found and the `run` tool the gateway offers for it.
async fn check_binary(program: &str, wanted: Option<&str>) -> Result<(Option<String>, rmcp::model::Tool), String> {
    if !is_installed(program) {
        return Err(format!("missing binary {program}"));
    }
    let mut command = tokio::process::Command::new(program);
    command.arg("--version").stdin(std::process::Stdio::null()).kill_on_drop(true);
    let text = match tokio::time::timeout(VERSION_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => {
            format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
        }
        Ok(Err(error)) => return Err(format!("cannot run `{program} --version`: {error}")),
        Err(_) => return Err(format!("`{program} --version` did not answer within {} s", VERSION_TIMEOUT.as_secs())),
    };
    let found = version_in(&text);
    if let Some(wanted) = wanted {
        let requirement = semver::VersionReq::parse(wanted).map_err(|error| format!("`{wanted}`: {error}"))?;
        match &found {
            None => {
                return Err(format!(
                    "cannot tell {program}'s version from `{program} --version`; {wanted} is required"
                ));
            }
            Some(version) if !requirement.matches(version) => {
                return Err(format!("{program} {version} does not meet {wanted}"));
            }
            Some(_) => {}
        }
    }
    let found = found.map(|version| version.to_string());
    let description = format!(
        "Runs {program}{} on this session's node, in its workspace, with the given arguments (no shell); answers its exit code and output.",
        found.as_deref().map(|version| format!(" {version}")).unwrap_or_default()
    );
    let tool = serde_json::from_value(serde_json::json!({
        "name": "run",
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": {"args": {"type": "array", "items": {"type": "string"}, "description": "the arguments, one word each"}},
            "required": ["args"],
        },
    }))
    .map_err(|error| format!("cannot describe the run tool: {error}"))?;
    Ok((found, tool))
}

/// The first `X.Y` or `X.Y.Z` in `text`, as a version.
fn version_in(text: &str) -> Option<semver::Version> {
    static VERSION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(\d+)\.(\d+)(?:\.(\d+))?").expect("holds because the pattern is valid")
    });
    let found = VERSION.captures(text)?;
    let part = |index: usize| found.get(index).map_or(Some(0), |part| part.as_str().parse().ok());
    Some(semver::Version::new(part(1)?, part(2)?, part(3)?))
}

/// A server that is down: `degraded` with its next restart, or `failed`
/// when it has had its restarts.
fn crashed(entry: &mut Entry, why: &str) {
    entry.restarts += 1;
    entry.tools.clear();
    entry.state.tools.clear();
    if entry.restarts > MAX_RESTARTS {
        entry.state.phase = ToolPhase::Failed;
        entry.state.reason =
            Some(format!("crashed: {why}; restarted {MAX_RESTARTS} times in a row, then left stopped"));
        tracing::warn!(tool = %entry.dependency.name, "a tool keeps crashing; it is left stopped");
        return;
    }
    let delay = BACKOFF_FIRST * 2u32.pow(entry.restarts - 1);
    entry.retry_at = Some(std::time::Instant::now() + delay);
    entry.state.phase = ToolPhase::Degraded;
    entry.state.reason =
        Some(format!("crashed: {why}; restart {} of {MAX_RESTARTS} in {:.1} s", entry.restarts, delay.as_secs_f64()));
    tracing::warn!(tool = %entry.dependency.name, ?delay, "a tool crashed; restarting it");
}

/// A listed tool as this node reports it to Core.
fn info(tool: &rmcp::model::Tool) -> ToolInfo {
    let schema = serde_json::Value::Object((*tool.input_schema).clone());
    let small = serde_json::to_vec(&schema).is_ok_and(|bytes| bytes.len() <= crate::protocol::MAX_SCHEMA);
    let description = tool.description.as_deref().map(|text| text.chars().take(2000).collect());
    ToolInfo {
        name: tool.name.to_string(),
        schema_hash: schema_hash(tool),
        description,
        input_schema: small.then_some(schema),
    }
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
