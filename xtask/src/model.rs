//! A scripted model for the real `codex` binary: a tiny Responses-API
//! server on 127.0.0.1 that answers from keywords in the last user prompt.
//! Shared by the integration tests (`tests/it/support/mod.rs` includes this
//! file) and `cargo xtask bench codex`.
//!
//! - `say TEXT`: an assistant message, streamed in two deltas;
//! - `run CMD`: an `exec_command` call, then a message once its output comes back;
//! - `add FILE TEXT`: an `apply_patch` adding FILE, then a message;
//! - `update FILE OLD NEW` / `delete FILE`: `apply_patch` updating or deleting;
//! - `fail TEXT`: `response.failed` with TEXT;
//! - `slowstream`: text deltas every 200 ms for 30 s (for interrupts);
//! - `tools [QUERY]`: a message naming every tool codex offered the model,
//!   and those its `tool_search` finds for QUERY;
//! - `tool NAME ARGS`: a call of the offered tool whose name ends with NAME
//!   (dots may be any one character) with the JSON ARGS, then a message
//!   quoting what the tool answered;
//! - anything else: `echo: PROMPT`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub struct Model {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Model {
    pub fn start() -> Model {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let app = Router::new().route("/v1/responses", post(respond));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Model { url, _runtime: runtime }
    }

    /// The `-c` settings that point codex at this model.
    pub fn settings(&self) -> Vec<String> {
        vec![
            r#"model_provider="fake""#.to_string(),
            r#"model_providers.fake.name="fake""#.to_string(),
            format!(r#"model_providers.fake.base_url="{}""#, self.url),
            r#"model_providers.fake.env_key="FAKE_API_KEY""#.to_string(),
            r#"model_providers.fake.wire_api="responses""#.to_string(),
            "model_providers.fake.stream_max_retries=0".to_string(),
            "model_providers.fake.request_max_retries=0".to_string(),
        ]
    }

    /// `.cortex/config.toml` text that points codex at this model.
    /// Codex's sandbox (bubblewrap, when installed) refuses a `CODEX_HOME`
    /// inside the temp dir, and test homes live in one: the child gets a
    /// `TMPDIR` of its own beside the home.
    pub fn config(&self, codex: &std::path::Path, codex_home: &std::path::Path, approval_policy: &str) -> String {
        let settings: Vec<String> = self.settings().iter().map(|setting| format!("  '{setting}',")).collect();
        let tmp = codex_home.with_file_name("codex-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        format!(
            "[codex]\nbinary = \"{}\"\nhome = \"{}\"\nmodel = \"gpt-5.5\"\napproval_policy = \"{approval_policy}\"\nsandbox = \"workspace-write\"\nconfig = [\n{}\n]\nenv = {{ FAKE_API_KEY = \"dummy\", TMPDIR = \"{}\" }}\n",
            codex.display(),
            codex_home.display(),
            settings.join("\n"),
            tmp.display()
        )
    }
}

fn sse(events: &[Value]) -> Response {
    let mut body = String::new();
    for event in events {
        body.push_str(&format!("data: {event}\n\n"));
    }
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn done(item: Value) -> Value {
    json!({"type": "response.output_item.done", "item": item})
}

fn completed() -> Value {
    json!({"type": "response.completed", "response": {"id": "resp", "usage": {
        "input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}}})
}

fn message(text: &str) -> Value {
    done(
        json!({"type": "message", "role": "assistant", "id": "msg_1", "content": [{"type": "output_text", "text": text}]}),
    )
}

/// Every user prompt the model was sent in this request's input, oldest
/// first: what codex remembers of the thread.
fn history_of(body: &Value) -> Vec<String> {
    let items = body["input"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|item| item["type"] == "message" && item["role"] == "user")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|content| content["text"].as_str().map(str::to_string))
        .filter(|text| !text.starts_with('<'))
        .collect()
}

/// The prompt of this turn: the last one the model was sent.
fn prompt_of(body: &Value) -> String {
    history_of(body).pop().unwrap_or_default()
}

async fn respond(Json(body): Json<Value>) -> Response {
    let prompt = prompt_of(&body);
    let last_type = body["input"].as_array().and_then(|items| items.last()).map(|item| item["type"].clone());
    let after_tool =
        matches!(last_type.as_ref().and_then(Value::as_str), Some("function_call_output" | "custom_tool_call_output"));
    let words: Vec<&str> = prompt.split_whitespace().collect();
    if after_tool {
        if words.first() == Some(&"tool") {
            let output = body["input"].as_array().and_then(|items| items.last()).map(|item| item["output"].clone());
            let output = output.map(|output| output.as_str().map_or_else(|| output.to_string(), str::to_string));
            return sse(&[message(&format!("tool said: {}", output.unwrap_or_default())), completed()]);
        }
        return sse(&[message(&format!("done with: {prompt}")), completed()]);
    }
    match words.as_slice() {
        ["say", rest @ ..] => say(&rest.join(" ")),
        // The earlier prompts the model sees: proof that a thread goes on.
        ["recall"] => sse(&[message(&format!("recalled: {}", history_of(&body).join(" | "))), completed()]),
        ["run", command @ ..] => {
            let arguments = json!({"cmd": command.join(" ")}).to_string();
            sse(&[
                done(
                    json!({"type": "function_call", "call_id": "call_run", "name": "exec_command", "arguments": arguments}),
                ),
                completed(),
            ])
        }
        ["add", file, text @ ..] => patch(format!("*** Add File: {file}\n+{}\n", text.join(" "))),
        ["update", file, old, new] => patch(format!("*** Update File: {file}\n@@\n-{old}\n+{new}\n")),
        ["delete", file] => patch(format!("*** Delete File: {file}\n")),
        ["fail", message @ ..] => sse(&[json!({"type": "response.failed", "response": {"id": "resp",
            "error": {"code": "insufficient_quota", "message": message.join(" ")}}})]),
        ["slowstream"] => slowstream(),
        ["tools", query @ ..] => list_tools(&body, &query.join(" ")),
        ["tool", name, arguments @ ..] => call_tool(&body, name, &arguments.join(" ")),
        _ => sse(&[message(&format!("echo: {prompt}")), completed()]),
    }
}

/// The names of the function tools in the request, nested ones included.
fn offered_tools(body: &Value) -> Vec<String> {
    tool_names(&body["tools"]).into_iter().map(|(name, _)| name).collect()
}

/// Each function tool in `tools` with the namespace it sits in.
fn tool_names(tools: &Value) -> Vec<(String, Option<String>)> {
    fn walk(tool: &Value, namespace: Option<&str>, names: &mut Vec<(String, Option<String>)>) {
        let name = tool["name"].as_str();
        if tool["type"] == "namespace" {
            for nested in tool["tools"].as_array().into_iter().flatten() {
                walk(nested, name, names);
            }
        } else if let Some(name) = name {
            names.push((name.to_string(), namespace.map(str::to_string)));
        }
    }
    let mut names = Vec::new();
    for tool in tools.as_array().into_iter().flatten() {
        walk(tool, None, &mut names);
    }
    names
}

fn list_tools(body: &Value, query: &str) -> Response {
    let last = body["input"].as_array().and_then(|items| items.last()).cloned().unwrap_or_default();
    let mut names = offered_tools(body);
    if last["type"] == "tool_search_output" {
        names.extend(tool_names(&last["tools"]).into_iter().map(|(name, namespace)| match namespace {
            Some(namespace) => format!("{namespace}{name}"),
            None => name,
        }));
    } else if !query.is_empty() {
        let search = json!({"type": "tool_search_call", "call_id": "call_search", "execution": "client",
            "status": "completed", "arguments": {"query": query, "limit": 50}});
        return sse(&[done(search), completed()]);
    }
    sse(&[message(&format!("tools: {}", names.join(" "))), completed()])
}

/// `tool NAME ARGS`: calls the offered tool whose name ends with NAME;
/// one codex defers (MCP tools are) is first looked up with `tool_search`.
fn call_tool(body: &Value, name: &str, arguments: &str) -> Response {
    let wanted: Vec<char> = name.chars().collect();
    let ends_with = |offered: &str| {
        let chars: Vec<char> = offered.chars().collect();
        chars.len() >= wanted.len()
            && chars[chars.len() - wanted.len()..].iter().zip(&wanted).all(|(a, b)| a == b || *b == '.')
    };
    let last = body["input"].as_array().and_then(|items| items.last()).cloned().unwrap_or_default();
    let mut candidates = tool_names(&body["tools"]);
    if last["type"] == "tool_search_output" {
        candidates.extend(tool_names(&last["tools"]));
    }
    if let Some((tool, namespace)) = candidates.into_iter().find(|(offered, _)| ends_with(offered)) {
        let mut call = json!({"type": "function_call", "call_id": "call_tool", "name": tool, "arguments": arguments});
        if let Some(namespace) = namespace {
            call["namespace"] = json!(namespace);
        }
        return sse(&[done(call), completed()]);
    }
    let searchable =
        body["tools"].as_array().is_some_and(|tools| tools.iter().any(|tool| tool["type"] == "tool_search"));
    if searchable && last["type"] != "tool_search_output" {
        let query = name.replace(['.', '_'], " ");
        let search = json!({"type": "tool_search_call", "call_id": "call_search", "execution": "client",
            "status": "completed", "arguments": {"query": query, "limit": 8}});
        return sse(&[done(search), completed()]);
    }
    sse(&[message(&format!("no tool {name} among: {}", offered_tools(body).join(" "))), completed()])
}

/// A message streamed as two deltas, then the whole item.
fn say(text: &str) -> Response {
    let cut = (0..=text.len() / 2).rev().find(|cut| text.is_char_boundary(*cut)).unwrap_or(0);
    let added = json!({"type": "response.output_item.added", "output_index": 0,
        "item": {"type": "message", "role": "assistant", "id": "msg_1", "content": []}});
    let delta = |piece: &str| {
        json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
        "content_index": 0, "delta": piece})
    };
    let created = json!({"type": "response.created", "response": {"id": "resp"}});
    sse(&[created, added, delta(&text[..cut]), delta(&text[cut..]), message(text), completed()])
}

fn patch(operation: String) -> Response {
    let input = format!("*** Begin Patch\n{operation}*** End Patch\n");
    sse(&[
        done(json!({"type": "custom_tool_call", "call_id": "call_patch", "name": "apply_patch", "input": input})),
        completed(),
    ])
}

fn slowstream() -> Response {
    let stream = async_stream_lines();
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(stream)).into_response()
}

fn async_stream_lines() -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> {
    futures_util::stream::unfold(0u32, |tick| async move {
        if tick >= 150 {
            return None;
        }
        if tick > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let delta = json!({"type": "response.output_text.delta", "item_id": "msg_slow", "output_index": 0,
            "content_index": 0, "delta": format!("tick{tick} ")});
        let mut text = String::new();
        if tick == 0 {
            // The message item opens first, so codex streams its deltas.
            let added = json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "role": "assistant", "id": "msg_slow", "content": []}});
            let created = json!({"type": "response.created", "response": {"id": "resp"}});
            text.push_str(&format!("data: {created}\n\ndata: {added}\n\n"));
        }
        text.push_str(&format!("data: {delta}\n\n"));
        Some((Ok(text), tick + 1))
    })
}
