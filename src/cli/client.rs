//! Talking to Core over HTTP: where Core is (`--core`, `CORTEX_CORE`, or the
//! `core.url` a local Core writes), its token (`CORTEX_TOKEN`, or the admin
//! token in the data dir), JSON calls, commands with idempotency ids, and
//! SSE event streams that resume from the last seq after a dropped link.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::{Context, anyhow};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backend::Ctx;
use crate::protocol::{
    ApiError, Command, CommandKind, CommandOutcome, Event, PROTOCOL_VERSION, SessionSummary, TerminalClientMessage,
    TerminalServerMessage,
};

/// A stream this long without events makes the follower ask how the session stands.
const QUIET: Duration = Duration::from_secs(3);

/// A configured Core that did not answer. Exit code 3 (docs/cli.md).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach Core at {url}: {reason} (start one with `cortex up`, or unset CORTEX_CORE to work in-process)")]
pub struct Unreachable {
    pub url: String,
    pub reason: String,
}

pub(crate) struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// Where a command goes.
pub(crate) enum Target {
    Remote(Client),
    Local,
}

impl Target {
    /// The configured Core if it answers; in-process when none is
    /// configured, or when `--no-core` says so. A configured Core that does
    /// not answer is an error.
    pub(crate) fn find(ctx: &Ctx) -> Result<Target, Unreachable> {
        if ctx.no_core {
            return Ok(Target::Local);
        }
        let (data, core) = (ctx.data.as_path(), ctx.core.as_deref());
        let recorded = fs_err::read_to_string(data.join("core.url")).ok().map(|url| url.trim().to_string());
        let (url, explicit) = match (core, recorded) {
            (Some(url), _) => (url.trim_end_matches('/').to_string(), true),
            (None, Some(url)) if !url.is_empty() => (url, false),
            _ => return Ok(Target::Local),
        };
        let token = std::env::var("CORTEX_TOKEN")
            .ok()
            .or_else(|| fs_err::read_to_string(data.join("admin.token")).ok())
            .map(|token| token.trim().to_string())
            .unwrap_or_default();
        match Client::connect(&url, &token) {
            Ok(client) => Ok(Target::Remote(client)),
            Err(reason) if explicit => Err(Unreachable { url, reason }),
            // A `core.url` left by a Core that has stopped: work in-process.
            Err(_) => Ok(Target::Local),
        }
    }

    /// Like [`Target::find`], but an unreachable Core falls back to
    /// in-process work with a warning, for commands that can finish alone.
    pub(crate) fn find_or_local(ctx: &Ctx) -> Target {
        match Target::find(ctx) {
            Ok(target) => target,
            Err(unreachable) => {
                eprintln!("warning: {unreachable}; running in-process instead");
                Target::Local
            }
        }
    }

    /// The Core client, for commands that cannot run without one.
    pub(crate) fn require(ctx: &Ctx, what: &str) -> anyhow::Result<Client> {
        match Target::find(ctx)? {
            Target::Remote(client) => Ok(client),
            Target::Local if ctx.no_core => Err(anyhow!("{what} needs a running Core, and --no-core was given")),
            Target::Local => Err(anyhow!(
                "{what} needs a running Core: start one with `cortex up` (or pass --core URL / set CORTEX_CORE)"
            )),
        }
    }
}

impl Client {
    fn connect(url: &str, token: &str) -> Result<Client, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| error.to_string())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|error| error.to_string())?;
        let client = Client { base: url.to_string(), token: token.to_string(), http, runtime };
        let health = client.runtime.block_on(async {
            client.http.get(format!("{url}/api/v1/health")).timeout(Duration::from_secs(5)).send().await
        });
        match health {
            Ok(response) if response.status().is_success() => Ok(client),
            Ok(response) => Err(format!("it answered {}", response.status())),
            Err(error) => Err(error_text(&error)),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.base
    }

    /// The bearer token this client presents.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<T> {
        self.runtime.block_on(async {
            decode(self.request(reqwest::Method::GET, path).query(query).send().await, &self.base).await
        })
    }

    /// The session `id` names (a unique prefix is enough) and its turns.
    pub(crate) fn session(&self, id: &str) -> anyhow::Result<(SessionSummary, Vec<crate::protocol::TurnSummary>)> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            anyhow::bail!(
                "no session matches `{id}` (`cortex session list --all` shows the ids; in a fresh clone, `cortex refs fetch` brings the sessions)"
            );
        }
        let detail: crate::protocol::SessionDetail = self.get(&format!("/api/v1/sessions/{id}"), &[])?;
        Ok((detail.session, detail.turns))
    }

    pub(crate) fn get_text(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<String> {
        self.runtime.block_on(async {
            let response = self
                .request(reqwest::Method::GET, path)
                .query(query)
                .send()
                .await
                .map_err(|error| unreachable(&self.base, &error))?;
            if response.status().is_success() {
                return Ok(response.text().await?);
            }
            Err(api_error(response).await)
        })
    }

    pub(crate) fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        self.runtime.block_on(async {
            decode(self.request(reqwest::Method::POST, path).json(body).send().await, &self.base).await
        })
    }

    pub(crate) fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        self.runtime.block_on(async {
            decode(self.request(reqwest::Method::PUT, path).json(body).send().await, &self.base).await
        })
    }

    pub(crate) fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.runtime
            .block_on(async { decode(self.request(reqwest::Method::DELETE, path).send().await, &self.base).await })
    }

    /// Sends a command with a fresh id and returns its answer's value.
    pub(crate) fn command(&self, kind: CommandKind, target: Option<String>) -> anyhow::Result<serde_json::Value> {
        let command = Command {
            v: PROTOCOL_VERSION,
            id: format!("cli_{}", ulid::Ulid::new().to_string().to_lowercase()),
            target,
            kind,
        };
        self.runtime.block_on(async {
            let response = self
                .request(reqwest::Method::POST, "/api/v1/commands")
                .json(&command)
                .send()
                .await
                .map_err(|error| unreachable(&self.base, &error))?;
            // A command's answer, whatever the status its code maps to; any
            // other body is Core's own refusal.
            let status = response.status();
            let body = response.bytes().await.map_err(|error| unreachable(&self.base, &error))?;
            if let Ok(outcome) = serde_json::from_slice::<CommandOutcome>(&body) {
                return match outcome {
                    CommandOutcome::Ok { value } => Ok(value),
                    CommandOutcome::Error { message, .. } => Err(anyhow!(message)),
                };
            }
            Err(match serde_json::from_slice::<ApiError>(&body) {
                Ok(error) => anyhow!(error.message),
                Err(_) => anyhow!("Core answered {status}"),
            })
        })
    }

    /// [`Self::command`], its answer read as the reply type of its kind.
    pub(crate) fn command_as<T: serde::de::DeserializeOwned>(
        &self,
        kind: CommandKind,
        target: Option<String>,
    ) -> anyhow::Result<T> {
        let value = self.command(kind, target)?;
        Ok(crate::protocol::reply::decode(value)?)
    }

    /// Streams a session's events after `after` (history first, then live)
    /// to `on_event` until it breaks or Ctrl-C; a dropped stream is resumed
    /// from the last seq seen. Returns the last seq seen.
    pub(crate) fn follow(
        &self,
        session: &str,
        after: u64,
        on_event: &mut dyn FnMut(&Event) -> ControlFlow<()>,
    ) -> anyhow::Result<u64> {
        self.follow_watching(session, after, on_event, &mut |_| ControlFlow::Continue(()))
    }

    /// Like [`Self::follow`]; when no event has come for a while, asks Core
    /// how the session stands and lets `on_quiet` decide (a node that died
    /// mid-turn sends nothing more, but Core marks its session interrupted).
    pub(crate) fn follow_watching(
        &self,
        session: &str,
        after: u64,
        on_event: &mut dyn FnMut(&Event) -> ControlFlow<()>,
        on_quiet: &mut dyn FnMut(&SessionSummary) -> ControlFlow<()>,
    ) -> anyhow::Result<u64> {
        let mut last = after;
        self.runtime.block_on(async {
            loop {
                let response = self
                    .request(reqwest::Method::GET, &format!("/api/v1/sessions/{session}/events"))
                    .header(reqwest::header::ACCEPT, "text/event-stream")
                    .header("Last-Event-ID", last.to_string())
                    .send()
                    .await
                    .map_err(|error| unreachable(&self.base, &error))?;
                if !response.status().is_success() {
                    return Err(api_error(response).await);
                }
                let mut stream = response.bytes_stream().eventsource();
                loop {
                    let next = tokio::select! {
                        next = tokio::time::timeout(QUIET, stream.next()) => next,
                        _ = tokio::signal::ctrl_c() => return Ok(last),
                    };
                    let Ok(next) = next else {
                        let detail =
                            self.request(reqwest::Method::GET, &format!("/api/v1/sessions/{session}")).send().await;
                        if let Ok(response) = detail
                            && let Ok(detail) = response.json::<serde_json::Value>().await
                            && let Ok(summary) = serde_json::from_value::<SessionSummary>(detail["session"].clone())
                            && on_quiet(&summary).is_break()
                        {
                            return Ok(last);
                        }
                        continue;
                    };
                    match next {
                        Some(Ok(message)) => {
                            let event: Event =
                                serde_json::from_str(&message.data).context("malformed event from Core")?;
                            if event.seq <= last {
                                continue;
                            }
                            last = event.seq;
                            if on_event(&event).is_break() {
                                return Ok(last);
                            }
                        }
                        Some(Err(error)) => {
                            tracing::debug!(%error, "event stream dropped; resuming");
                            break;
                        }
                        None => break,
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
}

/// Why Core could not be reached, in a person's words: what the network
/// said at the bottom of the chain, not each layer's wrapping of it.
fn error_text(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    if let Some(io) = innermost.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return "nothing listens there (connection refused)".into(),
            std::io::ErrorKind::TimedOut => return "it did not answer in time".into(),
            std::io::ErrorKind::ConnectionReset => return "the connection was cut".into(),
            _ => {}
        }
    }
    if error.is_timeout() {
        return "it did not answer in time".into();
    }
    let text = innermost.to_string();
    // A name that does not resolve says so at the bottom of the chain.
    if text.contains("failed to lookup address") || text.contains("Name or service not known") {
        return "its host name does not resolve".into();
    }
    text
}

fn unreachable(url: &str, error: &reqwest::Error) -> anyhow::Error {
    Unreachable { url: url.to_string(), reason: error_text(error) }.into()
}

async fn decode<T: DeserializeOwned>(response: reqwest::Result<reqwest::Response>, url: &str) -> anyhow::Result<T> {
    let response = response.map_err(|error| unreachable(url, &error))?;
    if response.status().is_success() {
        return response.json::<T>().await.context("malformed answer from Core");
    }
    Err(api_error(response).await)
}

/// Core's typed error as a one-line message.
async fn api_error(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    match response.json::<ApiError>().await {
        Ok(error) => anyhow!(error.message),
        Err(_) => anyhow!("Core answered {status}"),
    }
}

/// How a terminal attachment ended.
pub(crate) enum TerminalEnd {
    /// The person detached (Ctrl-]) or their input ended.
    Detached,
    /// The shell exited, with its code if it had one.
    Exited(Option<i32>),
}

impl Client {
    /// Attaches to terminal `id`: its recent output, then live output, to
    /// `output`; `keys` go to it until they end or the shell exits.
    pub(crate) fn attach_terminal(
        &self,
        id: &str,
        size: Option<(u16, u16)>,
        mut keys: tokio::sync::mpsc::Receiver<Vec<u8>>,
        output: &mut dyn FnMut(&str),
    ) -> anyhow::Result<TerminalEnd> {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let url = format!("{}/api/v1/terminals/{id}/ws", self.base.replacen("http", "ws", 1));
        self.runtime.block_on(async {
            let mut request = url.as_str().into_client_request()?;
            request.headers_mut().insert("Authorization", format!("Bearer {}", self.token).parse()?);
            let (socket, _) = tokio_tungstenite::connect_async(request)
                .await
                .with_context(|| format!("cannot attach to terminal `{id}` at {}", self.base))?;
            let (mut sink, mut stream) = socket.split();
            if let Some((cols, rows)) = size {
                sink.send(client_message(&TerminalClientMessage::Resize { cols, rows })).await?;
            }
            let mut shown_size = size;
            let mut size_check = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = size_check.tick(), if size.is_some() => {
                        // The window may have changed: tell the shell.
                        let now = crossterm::terminal::size().ok();
                        if let Some((cols, rows)) = now.filter(|_| now != shown_size) {
                            shown_size = now;
                            sink.send(client_message(&TerminalClientMessage::Resize { cols, rows })).await?;
                        }
                    }
                    typed = keys.recv() => {
                        let Some(bytes) = typed else {
                            // Show what is already on its way before leaving.
                            while let Ok(Some(Ok(Message::Text(text)))) =
                                tokio::time::timeout(Duration::from_millis(300), stream.next()).await
                            {
                                if let Ok(TerminalServerMessage::Output { data }) = serde_json::from_str(text.as_str()) {
                                    output(&data);
                                }
                            }
                            return Ok(TerminalEnd::Detached);
                        };
                        let data = String::from_utf8_lossy(&bytes).into_owned();
                        sink.send(client_message(&TerminalClientMessage::Input { data })).await?;
                    }
                    message = stream.next() => {
                        let text = match message {
                            Some(Ok(Message::Text(text))) => text,
                            Some(Ok(Message::Close(_))) | None => anyhow::bail!("Core closed the terminal's connection"),
                            Some(Ok(_)) => continue,
                            Some(Err(error)) => return Err(error.into()),
                        };
                        match serde_json::from_str::<TerminalServerMessage>(text.as_str()) {
                            Ok(TerminalServerMessage::Output { data }) => output(&data),
                            Ok(TerminalServerMessage::Exit { code }) => return Ok(TerminalEnd::Exited(code)),
                            Ok(TerminalServerMessage::Error { message }) => anyhow::bail!("{message}"),
                            Err(error) => tracing::debug!(%error, "a terminal message this version does not read"),
                        }
                    }
                }
            }
        })
    }
}

fn client_message(message: &TerminalClientMessage) -> tokio_tungstenite::tungstenite::Message {
    tokio_tungstenite::tungstenite::Message::text(
        serde_json::to_string(message).expect("holds because terminal messages are JSON"),
    )
}
