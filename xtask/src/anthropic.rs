//! A scripted Anthropic Messages model for the real `claude` binary: a tiny
//! SSE server on 127.0.0.1 that answers from keywords in the last user
//! text, and keeps every request so a test can see what the model was sent.
//! Shared by the integration tests (`tests/it/support/mod.rs` includes this
//! file) and the xtask benches.
//!
//! - `say TEXT`: a message, streamed in three pieces;
//! - `run CMD`: a Bash tool call, then `tool done: OUTPUT` once its result comes back;
//! - `write PATH TEXT`: a Write tool call (PATH absolute), then `tool done: …`;
//! - `recall`: `recalled: ` and every user text the model was sent, this one last;
//! - `slowstream`: a `tickN ` text delta every 200 ms for 30 s (for interrupts);
//! - `tool NAME ARGS`: a call of the offered tool whose name ends with NAME
//!   (a `.` in NAME matches any one character) with the JSON ARGS;
//! - anything else: `echo: PROMPT`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Json, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub struct Anthropic {
    /// `ANTHROPIC_BASE_URL` for the child.
    pub url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Anthropic {
    pub fn start() -> Anthropic {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/v1/messages", post(respond)).with_state(requests.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Anthropic { url, requests, _runtime: runtime }
    }

    /// `.cortex/config.toml` text that points claude at this model.
    pub fn config(&self, claude: &std::path::Path) -> String {
        format!(
            "[claude]\nbinary = \"{}\"\nmodel = \"scripted\"\nenv = {{ ANTHROPIC_BASE_URL = \"{}\", ANTHROPIC_API_KEY = \"sk-ant-scripted\", IS_SANDBOX = \"1\" }}\n",
            claude.display(),
            self.url
        )
    }

    /// The bodies of every request so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

/// The user's texts in a request, oldest first, without Claude Code's own
/// reminders and notices.
pub fn user_texts(body: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for message in body["messages"].as_array().into_iter().flatten().filter(|message| message["role"] == "user") {
        let blocks = match &message["content"] {
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            _ => Vec::new(),
        };
        for block in blocks {
            if let Some(text) = block["text"].as_str().map(str::trim)
                && !text.is_empty()
                && !text.starts_with('<')
                && !text.starts_with('[')
            {
                texts.push(text.to_string());
            }
        }
    }
    texts
}

/// The content of the tool result the last user message carries, if any.
fn tool_result(body: &Value) -> Option<String> {
    let last = body["messages"].as_array()?.iter().rev().find(|message| message["role"] == "user")?;
    let result = last["content"].as_array()?.iter().find(|block| block["type"] == "tool_result")?;
    Some(match &result["content"] {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|block| block["text"].as_str()).collect(),
        _ => String::new(),
    })
}

async fn respond(State(requests): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>) -> Response {
    requests.lock().unwrap().push(body.clone());
    // Side calls without tools get a short text.
    if body["tools"].as_array().is_none_or(Vec::is_empty) {
        return sse(&text_blocks("ok", "end_turn"));
    }
    if let Some(result) = tool_result(&body) {
        return sse(&text_blocks(&format!("tool done: {}", result.trim()), "end_turn"));
    }
    let texts = user_texts(&body);
    let prompt = texts.last().cloned().unwrap_or_default();
    let words: Vec<&str> = prompt.split_whitespace().collect();
    match words.as_slice() {
        ["say", rest @ ..] => sse(&text_blocks(&rest.join(" "), "end_turn")),
        ["recall"] => sse(&text_blocks(&format!("recalled: {}", texts.join(" | ")), "end_turn")),
        ["run", command @ ..] => {
            sse(&tool_use("Bash", json!({"command": command.join(" "), "description": "Run the command"})))
        }
        ["write", path, text @ ..] => {
            sse(&tool_use("Write", json!({"file_path": path, "content": format!("{}\n", text.join(" "))})))
        }
        ["slowstream"] => slowstream(),
        ["tool", name, arguments @ ..] => {
            let wanted: Vec<char> = name.chars().collect();
            let offered = body["tools"].as_array().into_iter().flatten().filter_map(|tool| tool["name"].as_str());
            let found = offered.clone().find(|offered| {
                let chars: Vec<char> = offered.chars().collect();
                chars.len() >= wanted.len()
                    && chars[chars.len() - wanted.len()..].iter().zip(&wanted).all(|(a, b)| a == b || *b == '.')
            });
            match found {
                Some(tool) => sse(&tool_use(tool, serde_json::from_str(&arguments.join(" ")).unwrap_or_default())),
                None => {
                    let names: Vec<&str> = offered.collect();
                    sse(&text_blocks(&format!("no tool {name} among: {}", names.join(" ")), "end_turn"))
                }
            }
        }
        _ => sse(&text_blocks(&format!("echo: {prompt}"), "end_turn")),
    }
}

fn start(id: &str) -> Value {
    json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": "scripted",
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 100, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
}

fn end(stop_reason: &str) -> [Value; 2] {
    [
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 7}}),
        json!({"type": "message_stop"}),
    ]
}

/// A text message in three deltas.
fn text_blocks(text: &str, stop_reason: &str) -> Vec<Value> {
    let third = text.len().div_ceil(3);
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = third.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    let mut events = vec![
        start("msg_text"),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ];
    for piece in pieces {
        events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.extend(end(stop_reason));
    events
}

fn tool_use(name: &str, input: Value) -> Vec<Value> {
    let mut events = vec![
        start("msg_tool"),
        json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": format!("toolu_{name}"), "name": name, "input": {}}}),
        json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
        json!({"type": "content_block_stop", "index": 0}),
    ];
    events.extend(end("tool_use"));
    events
}

fn sse(events: &[Value]) -> Response {
    let mut body = String::new();
    for event in events {
        body.push_str(&format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap_or("message")));
    }
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn slowstream() -> Response {
    let stream = futures_util::stream::unfold(0u32, |tick| async move {
        if tick >= 150 {
            return None;
        }
        let mut text = String::new();
        if tick == 0 {
            let opened = [
                start("msg_slow"),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ];
            for event in opened {
                text.push_str(&format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap_or_default()));
            }
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("tick{tick} ")}});
        text.push_str(&format!("event: content_block_delta\ndata: {delta}\n\n"));
        Some((Ok::<_, std::convert::Infallible>(text), tick + 1))
    });
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(stream)).into_response()
}
