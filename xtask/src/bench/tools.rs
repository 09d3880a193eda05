//! `cargo xtask bench tools`: what Cortex's MCP gateway adds to a tool
//! call. The same MCP server (the tests' `echo` server, Python, stdio) is
//! called directly by an rmcp client, and through a real `cortex up`'s
//! gateway by the same client run as a fake session's command (it finds the
//! gateway in `CORTEX_MCP_URL`, as an agent is given it); every gateway
//! call is held to policy and recorded as a `tool_call` event. Target:
//! under 5 ms added at p50.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;

use super::{ms, row};

/// Calls per side.
const CALLS: usize = 300;

pub fn tools() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let root = tempfile::tempdir()?;
    let repo = super::git_repo(root.path())?;
    let data = root.path().join("data");
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/it/crashy_mcp.py");
    let server = std::fs::canonicalize(server)?;
    let folder = root.path().join("echo");
    std::fs::create_dir_all(&folder)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let mut direct = runtime.block_on(direct_calls(&server, &folder))?;

    let _up = super::Up::start(&cortex, &data)?;
    super::wait_url(&data)?;
    let command = format!("python3 {} {}", server.display(), folder.display());
    super::cortex_json(&cortex, &repo, &data, &["tool", "add", "echo", "--command", &command, "--json"])?;
    // Running means the local node is online: only then can it take the workspace.
    wait_running(&cortex, &repo, &data)?;
    super::cortex_json(&cortex, &repo, &data, &["workspace", "bind", "--json"])?;
    let out = root.path().join("through.json");
    let client = std::env::current_exe()?;
    let script = root.path().join("s.toml");
    let step = format!("{} bench-tools-client {CALLS} {}", client.display(), out.display());
    std::fs::write(&script, format!("[[step]]\ncommand = {}\n", toml_string(&step)))?;
    let script = script.to_str().context("a UTF-8 temp path")?;
    let started =
        super::cortex_json(&cortex, &repo, &data, &["session", "start", "call", "--script", script, "--json"])?;
    let id = started["session_id"].as_str().context("no session id")?.to_string();
    super::cortex_json(&cortex, &repo, &data, &["session", "wait", &id, "--json"])?;
    let mut through: Vec<Duration> = serde_json::from_str::<Vec<u64>>(&std::fs::read_to_string(&out)?)?
        .into_iter()
        .map(Duration::from_micros)
        .collect();
    let log = super::cortex_json(&cortex, &repo, &data, &["session", "log", &id, "--json"])?;
    let recorded =
        log.as_array().map_or(0, |events| events.iter().filter(|event| event["kind"] == "tool_call").count());
    if recorded != CALLS {
        bail!("{recorded} tool_call events for {CALLS} calls");
    }

    let (direct50, direct99) = super::p50_p99(&mut direct);
    let (through50, through99) = super::p50_p99(&mut through);
    let rows = vec![
        row(&format!("direct call of `echo` (stdio server), p50 of {CALLS}"), ms(direct50)),
        row("direct, p99", ms(direct99)),
        row("through the gateway (policy, redaction, a `tool_call` event each), p50", ms(through50)),
        row("through the gateway, p99", ms(through99)),
        row("added by the gateway, p50", ms(through50.saturating_sub(direct50))),
        row("added by the gateway, p99", ms(through99.saturating_sub(direct99))),
    ];
    super::publish("tools", &rows)
}

/// `xtask bench-tools-client N OUT`: N calls of `echo.echo` through the
/// gateway at `CORTEX_MCP_URL`, each one's microseconds written to OUT.
pub fn client(calls: usize, out: &Path) -> anyhow::Result<()> {
    let url = std::env::var("CORTEX_MCP_URL").context("CORTEX_MCP_URL is not set: run me as a session's command")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let times = runtime.block_on(async {
        let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str());
        let client = ().serve(transport).await?;
        let times = timed_calls(&client, "echo.echo", calls).await;
        let _ = client.cancel().await;
        times
    })?;
    let micros: Vec<u64> = times.iter().map(|time| time.as_micros() as u64).collect();
    std::fs::write(out, serde_json::to_string(&micros)?)?;
    Ok(())
}

async fn direct_calls(server: &Path, folder: &Path) -> anyhow::Result<Vec<Duration>> {
    let mut command = tokio::process::Command::new("python3");
    command.arg(server).arg(folder);
    let transport = rmcp::transport::TokioChildProcess::new(command)?;
    let client = ().serve(transport).await?;
    let times = timed_calls(&client, "echo", CALLS).await;
    let _ = client.cancel().await;
    times
}

async fn timed_calls(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    calls: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(calls);
    for call in 0..calls {
        let mut arguments = serde_json::Map::new();
        arguments.insert("text".into(), format!("call {call}").into());
        let mut request = CallToolRequestParams::new(tool.to_string());
        request.arguments = Some(arguments);
        let began = Instant::now();
        let result = client.call_tool(request).await?;
        times.push(began.elapsed());
        if result.is_error == Some(true) {
            bail!("the call failed: {result:?}");
        }
    }
    Ok(times)
}

fn wait_running(cortex: &Path, repo: &Path, data: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let statuses = super::cortex_json(cortex, repo, data, &["tool", "status", "--json"])?;
        let running = statuses.as_array().is_some_and(|statuses| {
            statuses.iter().any(|status| status["name"] == "echo" && status["phase"] == "running")
        });
        if running {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the echo server never ran: {statuses}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
