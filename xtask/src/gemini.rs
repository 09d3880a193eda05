//! A scripted Gemini API model for the real Gemini CLI: a tiny server on
//! 127.0.0.1 answering `models/MODEL:streamGenerateContent?alt=sse` (and
//! the plain `generateContent` and `countTokens`) from keywords in the last
//! user text, keeping every request so a test can see what the model was
//! sent. Shared by the integration tests (`tests/it/support/mod.rs`
//! includes this file) and the xtask benches.
//!
//! - `say TEXT`: a message, streamed in two chunks;
//! - `run CMD`: a `run_shell_command` call, then `tool done: OUTPUT` once its result comes back;
//! - `write PATH TEXT`: a `write_file` call (PATH absolute), then `tool done: …`;
//! - `recall`: `recalled: ` and every user text the model was sent, this one last;
//! - `slowstream`: a `tickN ` chunk every 200 ms for 30 s (for interrupts);
//! - anything else: `echo: PROMPT`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Json, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub struct Gemini {
    /// `GOOGLE_GEMINI_BASE_URL` for the child.
    pub url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Gemini {
    pub fn start() -> Gemini {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/v1beta/models/{call}", post(respond)).with_state(requests.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Gemini { url, requests, _runtime: runtime }
    }

    /// A Gemini CLI home pointed at this model (API-key auth, no update
    /// checks, no telemetry), and the environment that goes with it.
    pub fn home(&self, home: &std::path::Path) -> Vec<(String, String)> {
        let settings = json!({
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"disableAutoUpdate": true, "disableUpdateNag": true},
            "telemetry": {"enabled": false},
            "privacy": {"usageStatisticsEnabled": false},
        });
        std::fs::create_dir_all(home.join(".gemini")).unwrap();
        std::fs::write(home.join(".gemini/settings.json"), settings.to_string()).unwrap();
        vec![
            ("HOME".into(), home.display().to_string()),
            ("GEMINI_API_KEY".into(), "scripted-key".into()),
            ("GOOGLE_GEMINI_BASE_URL".into(), self.url.clone()),
        ]
    }

    /// The bodies of every request so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

/// The person's texts in a request, oldest first, without the CLI's own
/// context blocks and tool results.
pub fn gemini_user_texts(body: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for content in body["contents"].as_array().into_iter().flatten().filter(|content| content["role"] == "user") {
        for part in content["parts"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str().map(str::trim)
                && !text.is_empty()
                && !text.starts_with('<')
            {
                texts.push(text.to_string());
            }
        }
    }
    texts
}

/// The output of the tool result the last content carries, if any.
fn tool_result(body: &Value) -> Option<String> {
    let last = body["contents"].as_array()?.last()?;
    let part = last["parts"].as_array()?.iter().find(|part| part.get("functionResponse").is_some())?;
    let response = &part["functionResponse"]["response"];
    Some(response["output"].as_str().map(str::to_string).unwrap_or_else(|| response.to_string()))
}

async fn respond(
    State(requests): State<Arc<Mutex<Vec<Value>>>>,
    Path(call): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    requests.lock().unwrap().push(body.clone());
    if call.ends_with(":countTokens") {
        return Json(json!({"totalTokens": 100})).into_response();
    }
    let parts = match tool_result(&body) {
        Some(output) => vec![json!({"text": format!("tool done: {}", output.trim())})],
        None => {
            let texts = gemini_user_texts(&body);
            let prompt = texts.last().cloned().unwrap_or_default();
            let words: Vec<&str> = prompt.split_whitespace().collect();
            match words.as_slice() {
                ["say", rest @ ..] => {
                    let text = rest.join(" ");
                    let half = (0..=text.len() / 2).rev().find(|cut| text.is_char_boundary(*cut)).unwrap_or(0);
                    vec![json!({"text": &text[..half]}), json!({"text": &text[half..]})]
                }
                ["recall"] => vec![json!({"text": format!("recalled: {}", texts.join(" | "))})],
                ["run", command @ ..] => vec![json!({"functionCall": {"name": "run_shell_command",
                    "args": {"command": command.join(" "), "description": "Run the command"}}})],
                ["write", path, text @ ..] => vec![json!({"functionCall": {"name": "write_file",
                    "args": {"file_path": path, "content": format!("{}\n", text.join(" "))}}})],
                ["slowstream"] if call.ends_with(":streamGenerateContent") => return slowstream(),
                _ => vec![json!({"text": format!("echo: {prompt}")})],
            }
        }
    };
    if call.ends_with(":generateContent") {
        return Json(chunk(&parts, true)).into_response();
    }
    let last = parts.len().saturating_sub(1);
    let body: String =
        parts.iter().enumerate().map(|(at, part)| format!("data: {}\r\n\r\n", chunk(&[part], at == last))).collect();
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

/// One response chunk; the last says why the model stopped and what it used.
fn chunk<T: serde::Serialize>(parts: &[T], last: bool) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    let mut chunk = json!({"modelVersion": "gemini-2.5-flash"});
    if last {
        candidate["finishReason"] = json!("STOP");
        chunk["usageMetadata"] = json!({"promptTokenCount": 100, "candidatesTokenCount": 7, "totalTokenCount": 107});
    }
    chunk["candidates"] = json!([candidate]);
    chunk
}

fn slowstream() -> Response {
    let stream = futures_util::stream::unfold(0u32, |tick| async move {
        if tick >= 150 {
            return None;
        }
        if tick > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let text = format!("data: {}\r\n\r\n", chunk(&[json!({"text": format!("tick{tick} ")})], tick == 149));
        Some((Ok::<_, std::convert::Infallible>(text), tick + 1))
    });
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(stream)).into_response()
}
