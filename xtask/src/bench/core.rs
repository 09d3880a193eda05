//! `cargo xtask bench core`: Core as a separate `cortex core` process, fed
//! by simulated nodes speaking the real protocol over WebSocket: ingest rate
//! against a raw batched SQLite insert of the same rows, event-to-SSE
//! latency, and Core's CPU and memory under 500 heartbeating nodes; plus an
//! idle node daemon's memory.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cortex::protocol::{
    Capabilities, CoreFrame, Credential, Event, EventKind, NodeFrame, PROTOCOL_VERSION, Resources, SessionId,
    SessionState, SessionSummary, SessionTip, Workspace, WorkspaceId,
};
use eventsource_stream::Eventsource;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{ms, row};

const INGEST_SESSIONS: usize = 20;
const INGEST_EVENTS_PER_SESSION: u64 = 10_000;
const LATENCY_SESSIONS: usize = 100;
const LATENCY_EVENTS_PER_SESSION: u64 = 40;
/// Paces measured: each session emits an event every 100 ms (100 sessions:
/// 1,000 events/s) and every 20 ms (5,000 events/s, each in its own frame).
const LATENCY_INTERVALS: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(20)];
const FLEET_NODES: usize = 500;
const FLEET_SESSIONS_PER_NODE: usize = 10;
const FLEET_SECONDS: u64 = 20;

pub fn core() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();

    let (through_core, raw, raw_with_text) = runtime.block_on(ingest_rates(&cortex))?;
    rows.push(row(
        &format!("event ingest node → Core → SQLite ({INGEST_SESSIONS} sessions × {INGEST_EVENTS_PER_SESSION}, batches of 256)"),
        format!("{through_core:.0} events/s"),
    ));
    rows.push(row("raw batched SQLite insert of the event rows alone (256/transaction)", format!("{raw:.0} events/s")));
    rows.push(row("ratio Core / raw event rows", format!("{:.2}", through_core / raw)));
    rows.push(row(
        "raw batched SQLite insert of the rows Core keeps: events and their full-text rows (256/transaction)",
        format!("{raw_with_text:.0} events/s"),
    ));
    rows.push(row("ratio Core / raw rows Core keeps", format!("{:.2}", through_core / raw_with_text)));

    for interval in LATENCY_INTERVALS {
        let latency = runtime.block_on(sse_latency(&cortex, interval))?;
        rows.push(row(
            &format!(
                "node event → SSE client latency, {LATENCY_SESSIONS} sessions at {} events/s each ({} samples), p50",
                1000 / interval.as_millis(),
                latency.samples
            ),
            ms(latency.p50),
        ));
        rows.push(row("same, p99", ms(latency.p99)));
        rows.push(row("same, pace the node held", format!("{:.0} events/s", latency.pace)));
    }

    let fleet = runtime.block_on(fleet(&cortex))?;
    rows.push(row(
        &format!("{FLEET_NODES} nodes × {FLEET_SESSIONS_PER_NODE} sessions heartbeating every second: Core CPU"),
        format!("{:.1}% of one core over {FLEET_SECONDS} s", fleet.cpu_share * 100.0),
    ));
    rows.push(row("same: Core peak RSS", format!("{} MiB", fleet.peak_rss_kib / 1024)));

    let idle = runtime.block_on(idle_node(&cortex))?;
    rows.push(row("idle node daemon (one workspace): RSS after 5 s", format!("{} MiB", idle / 1024)));
    super::publish("core", &rows)
}

/// A `cortex core` child process with its data in a temp dir.
pub(super) struct CoreChild {
    pub(super) child: Child,
    pub(super) url: String,
    pub(super) token: String,
    _data: tempfile::TempDir,
}

impl Drop for CoreChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_core(cortex: &Path, heartbeat_ms: u64) -> anyhow::Result<CoreChild> {
    let data = tempfile::tempdir()?;
    let child = Command::new(cortex)
        .env("CORTEX_HOME", data.path())
        .args(["core", "--bind", "127.0.0.1:0", "--heartbeat-ms", &heartbeat_ms.to_string()])
        .args(["--stale-after-ms", "60000", "--offline-after-ms", "120000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Ok(url) = std::fs::read_to_string(data.path().join("core.url")) {
            break url.trim().to_string();
        }
        if Instant::now() > deadline {
            bail!("cortex core did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let token = std::fs::read_to_string(data.path().join("admin.token"))?.trim().to_string();
    Ok(CoreChild { child, url, token, _data: data })
}

pub(super) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A node simulated in this process: enrolled, said hello, has a workspace.
pub(super) struct SimNode {
    pub(super) socket: Socket,
    pub(super) workspace: Workspace,
}

pub(super) async fn enroll_token(http: &reqwest::Client, core: &CoreChild, name: &str) -> anyhow::Result<String> {
    let answer: serde_json::Value = http
        .post(format!("{}/api/v1/nodes/enroll", core.url))
        .bearer_auth(&core.token)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await?
        .json()
        .await?;
    answer["token"].as_str().map(str::to_string).context("no enrollment token")
}

pub(super) async fn sim_node(
    http: &reqwest::Client,
    core: &CoreChild,
    name: &str,
    sessions: Vec<SessionTip>,
) -> anyhow::Result<SimNode> {
    let token = enroll_token(http, core, name).await?;
    let url = format!("{}/api/v1/nodes/connect", core.url.replacen("http://", "ws://", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let workspace = Workspace {
        id: WorkspaceId::generate(),
        node: String::new(),
        path: format!("/sim/{name}"),
        name: name.to_string(),
        remote_url: None,
        default_branch: None,
    };
    let hello = NodeFrame::Hello {
        v: PROTOCOL_VERSION,
        credential: Credential::Enroll { token, name: name.to_string(), node_id: None },
        capabilities: Capabilities {
            cortex_version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: PROTOCOL_VERSION,
            cpus: 2,
            ..Capabilities::default()
        },
        workspaces: vec![workspace.clone()],
        sessions,
    };
    socket.send(Message::text(serde_json::to_string(&hello)?)).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<CoreFrame>(text.as_str())? {
                CoreFrame::Welcome { .. } => break,
                other => bail!("expected a welcome, got {other:?}"),
            },
            Some(Ok(_)) => continue,
            other => bail!("no welcome: {other:?}"),
        }
    }
    Ok(SimNode { socket, workspace })
}

pub(super) fn summary(id: &SessionId, workspace: &Workspace, last_seq: u64) -> SessionSummary {
    let now = jiff::Timestamp::now();
    SessionSummary {
        provider_version: None,
        id: id.clone(),
        title: "bench".into(),
        state: SessionState::Running,
        state_reason: None,
        provider: "fake".into(),
        node: workspace.name.clone(),
        workspace_id: workspace.id.clone(),
        workspace_path: workspace.path.clone(),
        base_commit: None,
        turns: 1,
        last_seq,
        created_at: now,
        updated_at: now,
    }
}

pub(super) fn event(seq: u64, text: String) -> Event {
    Event { seq, at: jiff::Timestamp::now(), turn: Some(1), cause: None, kind: EventKind::AssistantMessage { text } }
}

pub(super) fn text_for(seq: u64) -> String {
    format!("event {seq}: the quick brown fox jumps over the lazy dog while the tests run on port {seq} and pass")
}

async fn ingest_rates(cortex: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let core = start_core(cortex, 5000)?;
    let http = reqwest::Client::new();
    let mut node = sim_node(&http, &core, "ingest", Vec::new()).await?;
    let sessions: Vec<SessionId> = (0..INGEST_SESSIONS).map(|_| SessionId::generate()).collect();
    let mut batches = Vec::new();
    for session in &sessions {
        for first in (1..=INGEST_EVENTS_PER_SESSION).step_by(256) {
            let last = (first + 255).min(INGEST_EVENTS_PER_SESSION);
            let events: Vec<Event> = (first..=last).map(|seq| event(seq, text_for(seq))).collect();
            batches.push(NodeFrame::Events {
                v: PROTOCOL_VERSION,
                session: summary(session, &node.workspace, last),
                events,
            });
        }
    }
    let total = INGEST_SESSIONS as u64 * INGEST_EVENTS_PER_SESSION;
    let started = Instant::now();
    let (mut sink, mut stream) = node.socket.split();
    let sender = tokio::spawn(async move {
        for batch in batches {
            sink.send(Message::text(serde_json::to_string(&batch).expect("frames are JSON"))).await?;
        }
        anyhow::Ok(sink)
    });
    let mut acked: HashMap<SessionId, u64> = HashMap::new();
    while acked.values().filter(|seq| **seq == INGEST_EVENTS_PER_SESSION).count() < INGEST_SESSIONS {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Ok(CoreFrame::Ack { session, seq, .. }) = serde_json::from_str(text.as_str()) {
                    acked.insert(session, seq);
                }
            }
            Some(Ok(_)) => {}
            other => bail!("link ended during ingest: {other:?}"),
        }
    }
    let through_core = total as f64 / started.elapsed().as_secs_f64();
    let sink = sender.await??;
    node.socket = sink.reunite(stream)?;

    // The same rows, inserted directly in batches of 256 per transaction:
    // the events alone, then with the full-text rows Core also writes.
    let raw = raw_insert(&sessions, false)?;
    let raw_with_text = raw_insert(&sessions, true)?;
    Ok((through_core, raw, raw_with_text))
}

/// Events per second inserting the benchmark's rows straight into SQLite
/// (WAL, `synchronous = NORMAL`, as Core's index), with or without the
/// full-text table Core keeps beside them.
fn raw_insert(sessions: &[SessionId], with_text: bool) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.sqlite"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, turn INTEGER, kind TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (session_id, seq));
         CREATE VIRTUAL TABLE events_fts USING fts5 (text, tokenize = 'unicode61');",
    )?;
    let started = Instant::now();
    for session in sessions {
        for first in (1..=INGEST_EVENTS_PER_SESSION).step_by(256) {
            let last = (first + 255).min(INGEST_EVENTS_PER_SESSION);
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (session_id, seq, turn, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut insert_text = tx.prepare_cached("INSERT INTO events_fts (rowid, text) VALUES (?1, ?2)")?;
                for seq in first..=last {
                    let text = text_for(seq);
                    let body = serde_json::to_string(&event(seq, text.clone()))?;
                    insert.execute(rusqlite::params![session.as_str(), seq, 1, "assistant_message", body])?;
                    if with_text {
                        insert_text.execute(rusqlite::params![tx.last_insert_rowid(), text])?;
                    }
                }
            }
            tx.commit()?;
        }
    }
    Ok((sessions.len() as u64 * INGEST_EVENTS_PER_SESSION) as f64 / started.elapsed().as_secs_f64())
}

struct Latency {
    p50: Duration,
    p99: Duration,
    samples: usize,
    /// Events per second the simulated node really sent.
    pace: f64,
}

async fn sse_latency(cortex: &Path, interval: Duration) -> anyhow::Result<Latency> {
    let core = start_core(cortex, 5000)?;
    let http = reqwest::Client::new();
    let node = sim_node(&http, &core, "latency", Vec::new()).await?;
    let sessions: Vec<SessionId> = (0..LATENCY_SESSIONS).map(|_| SessionId::generate()).collect();
    let (mut sink, mut stream) = node.socket.split();
    // Each session exists before its stream is opened.
    for session in &sessions {
        let frame = NodeFrame::Events {
            v: PROTOCOL_VERSION,
            session: summary(session, &node.workspace, 1),
            events: vec![event(1, "start".into())],
        };
        sink.send(Message::text(serde_json::to_string(&frame)?)).await?;
    }
    let mut waiting = LATENCY_SESSIONS;
    while waiting > 0 {
        if let Some(Ok(Message::Text(text))) = stream.next().await
            && matches!(serde_json::from_str(text.as_str()), Ok(CoreFrame::Ack { .. }))
        {
            waiting -= 1;
        }
    }
    tokio::spawn(async move { while stream.next().await.is_some() {} });

    let sent_at: Arc<Mutex<HashMap<(SessionId, u64), Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut clients = Vec::new();
    for session in &sessions {
        let response = http
            .get(format!("{}/api/v1/sessions/{session}/events?after=1", core.url))
            .bearer_auth(&core.token)
            .header("Accept", "text/event-stream")
            .send()
            .await?;
        let (session, sent_at, latencies) = (session.clone(), sent_at.clone(), latencies.clone());
        clients.push(tokio::spawn(async move {
            let mut events = response.bytes_stream().eventsource();
            let mut seen = 0;
            while let Some(Ok(message)) = events.next().await {
                let Ok(event) = serde_json::from_str::<Event>(&message.data) else { continue };
                let now = Instant::now();
                if let Some(at) = sent_at.lock().expect("not poisoned").get(&(session.clone(), event.seq)) {
                    latencies.lock().expect("not poisoned").push(now - *at);
                }
                seen += 1;
                if seen == LATENCY_EVENTS_PER_SESSION {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A ticker holds the pace: the time spent sending is not added to it.
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let sending = Instant::now();
    for seq in 2..=LATENCY_EVENTS_PER_SESSION + 1 {
        ticker.tick().await;
        for session in &sessions {
            let frame = NodeFrame::Events {
                v: PROTOCOL_VERSION,
                session: summary(session, &node.workspace, seq),
                events: vec![event(seq, text_for(seq))],
            };
            let text = serde_json::to_string(&frame)?;
            sent_at.lock().expect("not poisoned").insert((session.clone(), seq), Instant::now());
            sink.send(Message::text(text)).await?;
        }
    }
    let pace = (LATENCY_SESSIONS as u64 * LATENCY_EVENTS_PER_SESSION) as f64 / sending.elapsed().as_secs_f64();
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client).await??;
    }
    let mut latencies = latencies.lock().expect("not poisoned").clone();
    if latencies.is_empty() {
        bail!("no event reached an SSE client");
    }
    if latencies.len() < LATENCY_SESSIONS * LATENCY_EVENTS_PER_SESSION as usize {
        bail!(
            "only {} of {} events reached their SSE clients",
            latencies.len(),
            LATENCY_SESSIONS as u64 * LATENCY_EVENTS_PER_SESSION
        );
    }
    let (p50, p99) = super::p50_p99(&mut latencies);
    Ok(Latency { p50, p99, samples: latencies.len(), pace })
}

struct Fleet {
    cpu_share: f64,
    peak_rss_kib: u64,
}

/// User plus system CPU time of a process, from /proc, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with(key)).context("no such /proc status line")?;
    Ok(line.split_whitespace().nth(1).context("malformed /proc status line")?.parse()?)
}

async fn fleet(cortex: &Path) -> anyhow::Result<Fleet> {
    let core = start_core(cortex, 1000)?;
    let http = reqwest::Client::new();
    let mut nodes = Vec::new();
    for idx in 0..FLEET_NODES {
        let sessions: Vec<SessionTip> = (0..FLEET_SESSIONS_PER_NODE)
            .map(|_| SessionTip { session_id: SessionId::generate(), last_seq: 3 })
            .collect();
        let mut node = sim_node(&http, &core, &format!("node-{idx:03}"), sessions.clone()).await?;
        for tip in &sessions {
            let events: Vec<Event> = (1..=3).map(|seq| event(seq, text_for(seq))).collect();
            let frame = NodeFrame::Events {
                v: PROTOCOL_VERSION,
                session: summary(&tip.session_id, &node.workspace, 3),
                events,
            };
            node.socket.send(Message::text(serde_json::to_string(&frame)?)).await?;
        }
        nodes.push(node);
    }
    let pid = core.child.id();
    let ticks_before = cpu_ticks(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for node in nodes {
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = node.socket.split();
            tokio::spawn(async move { while stream.next().await.is_some() {} });
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let until = Instant::now() + Duration::from_secs(FLEET_SECONDS);
            while Instant::now() < until {
                tick.tick().await;
                let heartbeat = NodeFrame::Heartbeat {
                    v: PROTOCOL_VERSION,
                    resources: Resources {
                        load1: 0.5,
                        free_memory_bytes: 8 << 30,
                        total_memory_bytes: 16 << 30,
                        disks: Vec::new(),
                    },
                };
                if sink.send(Message::text(serde_json::to_string(&heartbeat).expect("frames are JSON"))).await.is_err()
                {
                    break;
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid)? - ticks_before;
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu_share = ticks as f64 / ticks_per_second / elapsed;
    let peak_rss_kib = status_kib(pid, "VmHWM:")?;
    Ok(Fleet { cpu_share, peak_rss_kib })
}

/// A real `cortex node run`, enrolled, with one bound repository, left idle.
async fn idle_node(cortex: &Path) -> anyhow::Result<u64> {
    let core = start_core(cortex, 5000)?;
    let http = reqwest::Client::new();
    let token = enroll_token(&http, &core, "idle").await?;
    let home = tempfile::tempdir()?;
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo)?;
    Command::new("git").current_dir(&repo).args(["init", "-q"]).status()?;
    let mut node = Command::new(cortex)
        .env("CORTEX_HOME", home.path().join("data"))
        .args(["node", "run", "--core", &core.url, "--token", &token])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bind = Command::new(cortex)
        .env("CORTEX_HOME", core._data.path())
        .current_dir(&repo)
        .args(["workspace", "bind"])
        .output()?;
    if !bind.status.success() {
        let _ = node.kill();
        bail!("cannot bind the idle node's workspace: {}", String::from_utf8_lossy(&bind.stderr));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss = status_kib(node.id(), "VmRSS:");
    let _ = node.kill();
    let _ = node.wait();
    rss
}
