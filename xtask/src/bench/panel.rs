//! `cargo xtask bench panel`: the web panel of a `cortex core` process with
//! a big fleet (1,000 simulated nodes speaking the real protocol, 10,000
//! sessions, one of 5,000 events): dashboard and session page render times
//! through HTTP with a logged-in cookie, and the live timeline's SSE
//! fan-out to 500 concurrent browser-like clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cortex::protocol::{Event, NodeFrame, PROTOCOL_VERSION, Resources, SessionId, SessionTip};
use eventsource_stream::Eventsource;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::core::{CoreChild, SimNode, event, sim_node, start_core, summary, text_for};
use super::{ms, row};

const NODES: usize = 1_000;
const SESSIONS_PER_NODE: usize = 10;
const BIG_SESSION_EVENTS: u64 = 5_000;
/// Renders per page: enough that p99 is not simply the slowest one.
const RENDERS: usize = 200;
const SSE_CLIENTS: usize = 500;
const SSE_EVENTS: u64 = 100;
/// The big session gets an event this often during the fan-out.
const SSE_INTERVAL: Duration = Duration::from_millis(20);

pub fn panel() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let rows = runtime.block_on(async {
        let core = start_core(&cortex, 5000)?;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let cookie = log_in(&http, &core).await?;
        let (nodes, big) = seed(&http, &core).await?;
        let mut rows = Vec::new();

        let (p50, p99, bytes) = render_times(&http, &core.url, &cookie, "/").await?;
        rows.push(row(
            &format!(
                "dashboard, {NODES} nodes / {} sessions, p50 ({} KiB page)",
                NODES * SESSIONS_PER_NODE + 1,
                bytes / 1024
            ),
            ms(p50),
        ));
        rows.push(row("same, p99", ms(p99)));
        let (p50, p99, bytes) = render_times(&http, &core.url, &cookie, &format!("/sessions/{big}")).await?;
        rows.push(row(
            &format!("session page, {BIG_SESSION_EVENTS}-event session, p50 ({} KiB page)", bytes / 1024),
            ms(p50),
        ));
        rows.push(row("same, p99", ms(p99)));

        let fanout = fan_out(&http, &core, &cookie, &nodes[0], &big).await?;
        rows.push(row(
            &format!(
                "live timeline SSE to {SSE_CLIENTS} clients, {SSE_EVENTS} events at {}/s (offered: {} blocks/s): blocks delivered",
                1000 / SSE_INTERVAL.as_millis(),
                SSE_CLIENTS as u128 * 1000 / SSE_INTERVAL.as_millis()
            ),
            format!("{} of {}", fanout.delivered, SSE_CLIENTS as u64 * SSE_EVENTS),
        ));
        rows.push(row("same, node event → block at a client, p50", ms(fanout.p50)));
        rows.push(row("same, p99", ms(fanout.p99)));
        anyhow::Ok(rows)
    })?;
    let mut rows = rows;
    rows.extend(runtime.block_on(super::diff_page::rows(&cortex))?);
    super::publish("panel", &rows)
}

/// A panel session cookie, from a one-time login link minted with the admin token.
async fn log_in(http: &reqwest::Client, core: &CoreChild) -> anyhow::Result<String> {
    panel_cookie(http, &core.url, &core.token).await
}

/// A panel cookie for the Core at `base`, from a login link minted with its admin token.
pub(super) async fn panel_cookie(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let link: serde_json::Value =
        http.post(format!("{base}/panel/login-links")).bearer_auth(token).send().await?.json().await?;
    let url = link["url"].as_str().context("no login link")?;
    let response = http.get(url).send().await?;
    let cookie = response.headers().get("set-cookie").context("no panel cookie")?.to_str()?;
    Ok(cookie.split(';').next().context("malformed cookie")?.to_string())
}

/// A simulated node kept alive: it heartbeats, reads what Core sends, and
/// sends the frames given to it.
struct LiveNode {
    frames: tokio::sync::mpsc::UnboundedSender<NodeFrame>,
    workspace: cortex::protocol::Workspace,
}

fn keep_alive(node: SimNode) -> LiveNode {
    let (frames, mut outbox) = tokio::sync::mpsc::unbounded_channel::<NodeFrame>();
    let workspace = node.workspace.clone();
    let (mut sink, mut stream) = node.socket.split();
    tokio::spawn(async move { while stream.next().await.is_some() {} });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            let frame = tokio::select! {
                _ = tick.tick() => NodeFrame::Heartbeat { v: PROTOCOL_VERSION, resources: Resources::default() },
                frame = outbox.recv() => match frame {
                    Some(frame) => frame,
                    None => break,
                },
            };
            let text = serde_json::to_string(&frame).expect("frames are JSON");
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    LiveNode { frames, workspace }
}

/// 1,000 connected nodes with 10 sessions each, and one session of 5,000 events.
async fn seed(http: &reqwest::Client, core: &CoreChild) -> anyhow::Result<(Vec<LiveNode>, SessionId)> {
    let started = Instant::now();
    let mut nodes = Vec::new();
    for index in 0..NODES {
        let tips: Vec<SessionTip> =
            (0..SESSIONS_PER_NODE).map(|_| SessionTip { session_id: SessionId::generate(), last_seq: 3 }).collect();
        let node = keep_alive(sim_node(http, core, &format!("node-{index:04}"), tips.clone()).await?);
        for tip in &tips {
            let events: Vec<Event> = (1..=3).map(|seq| event(seq, text_for(seq))).collect();
            let session = summary(&tip.session_id, &node.workspace, 3);
            node.frames.send(NodeFrame::Events { v: PROTOCOL_VERSION, session, events })?;
        }
        nodes.push(node);
    }
    let big = SessionId::generate();
    let node = &nodes[0];
    for first in (1..=BIG_SESSION_EVENTS).step_by(256) {
        let last = (first + 255).min(BIG_SESSION_EVENTS);
        let events: Vec<Event> = (first..=last).map(|seq| event(seq, text_for(seq))).collect();
        let session = summary(&big, &node.workspace, last);
        node.frames.send(NodeFrame::Events { v: PROTOCOL_VERSION, session, events })?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let sessions: serde_json::Value =
            http.get(format!("{}/api/v1/sessions", core.url)).bearer_auth(&core.token).send().await?.json().await?;
        let count = sessions.as_array().map_or(0, Vec::len);
        let big_done = sessions
            .as_array()
            .into_iter()
            .flatten()
            .any(|session| session["id"] == big.as_str() && session["last_seq"] == BIG_SESSION_EVENTS);
        if count == NODES * SESSIONS_PER_NODE + 1 && big_done {
            break;
        }
        if Instant::now() > deadline {
            bail!("Core took in {count} sessions only");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("seeded {NODES} nodes in {:.1} s", started.elapsed().as_secs_f64());
    Ok((nodes, big))
}

/// p50 and p99 of full GETs of `path` (body read), and the page size.
pub(super) async fn render_times(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..RENDERS {
        let started = Instant::now();
        let response = http.get(format!("{base}{path}")).header("Cookie", cookie).send().await?;
        if !response.status().is_success() {
            bail!("{path} answered {}", response.status());
        }
        bytes = response.bytes().await?.len();
        times.push(started.elapsed());
    }
    let (p50, p99) = super::p50_p99(&mut times);
    Ok((p50, p99, bytes))
}

struct FanOut {
    delivered: u64,
    p50: Duration,
    p99: Duration,
}

async fn fan_out(
    http: &reqwest::Client,
    core: &CoreChild,
    cookie: &str,
    node: &LiveNode,
    big: &SessionId,
) -> anyhow::Result<FanOut> {
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..SSE_CLIENTS {
        let response = http
            .get(format!("{}/sessions/{big}/live?after={BIG_SESSION_EVENTS}", core.url))
            .header("Cookie", cookie)
            .header("Accept", "text/event-stream")
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("the live stream answered {}", response.status());
        }
        let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
        clients.push(tokio::spawn(async move {
            let mut events = response.bytes_stream().eventsource();
            let mut seen = 0u64;
            while let Some(Ok(message)) = events.next().await {
                if message.event != "block" {
                    continue;
                }
                let now = Instant::now();
                let Ok(seq) = message.id.parse::<u64>() else { continue };
                if let Some(at) = sent_at.lock().expect("not poisoned").get(&seq) {
                    latencies.lock().expect("not poisoned").push(now - *at);
                }
                seen += 1;
                if seen == SSE_EVENTS {
                    break;
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for seq in BIG_SESSION_EVENTS + 1..=BIG_SESSION_EVENTS + SSE_EVENTS {
        let session = summary(big, &node.workspace, seq);
        sent_at.lock().expect("not poisoned").insert(seq, Instant::now());
        node.frames.send(NodeFrame::Events {
            v: PROTOCOL_VERSION,
            session,
            events: vec![event(seq, text_for(seq))],
        })?;
        tokio::time::sleep(SSE_INTERVAL).await;
    }
    let mut delivered = 0;
    for client in clients {
        delivered += tokio::time::timeout(Duration::from_secs(120), client).await??;
    }
    let mut latencies = latencies.lock().expect("not poisoned").clone();
    if latencies.is_empty() {
        bail!("no block reached an SSE client");
    }
    let (p50, p99) = super::p50_p99(&mut latencies);
    Ok(FanOut { delivered, p50, p99 })
}
