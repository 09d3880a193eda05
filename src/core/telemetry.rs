//! Traces for the tools people already run: when `[telemetry]
//! otlp_endpoint` is set in Core's `core.toml`, every turn Core ingests
//! becomes one OpenTelemetry trace, exported over OTLP/HTTP (protobuf) by
//! the `opentelemetry` crates. Spans follow the GenAI conventions: the turn
//! is `invoke_agent {provider}` with the session id as
//! `gen_ai.conversation.id` and its tokens as `gen_ai.usage.*`; each
//! command is an `execute_tool` child, each check a `check {name}` child,
//! each approval an `approval` child. Built from the events as they arrive,
//! with their own timestamps. Nothing is sent when the key is unset.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::state::CoreState;
use super::{Error, Result};
use crate::protocol::{Event, EventKind, SessionId};

/// `core.toml` in Core's data dir.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreFile {
    #[serde(default)]
    pub telemetry: Option<TelemetryConfig>,
}

/// `[telemetry]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP endpoint: `http://127.0.0.1:4318` (traces
    /// go to its `/v1/traces`) or a full URL ending in a path.
    pub otlp_endpoint: String,
    /// `service.name` of the traces; `cortex` unless set.
    #[serde(default)]
    pub service_name: Option<String>,
}

impl TelemetryConfig {
    /// Core's `[telemetry]`, if `core.toml` sets it; a file that cannot be
    /// read is an error naming the line.
    pub fn load(data_dir: &Path) -> Result<Option<TelemetryConfig>> {
        let path = data_dir.join("core.toml");
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { context: format!("cannot read `{}`", path.display()), source }),
        };
        let file: CoreFile = toml::from_str(&text)
            .map_err(|error| Error::Config { path: path.clone(), detail: error.to_string().trim().to_string() })?;
        if let Some(telemetry) = &file.telemetry
            && !(telemetry.otlp_endpoint.starts_with("http://") || telemetry.otlp_endpoint.starts_with("https://"))
        {
            let detail = format!("[telemetry] otlp_endpoint `{}` must be an http(s) URL", telemetry.otlp_endpoint);
            return Err(Error::Config { path, detail });
        }
        Ok(file.telemetry)
    }

    /// Where spans are posted: the base endpoint's `/v1/traces`, as the
    /// OTLP convention has it, or the URL as given when it names a path.
    fn traces_url(&self) -> String {
        let url = self.otlp_endpoint.trim_end_matches('/');
        let path = url.split_once("://").map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, path)| path));
        if path.is_empty() { format!("{url}/v1/traces") } else { url.to_string() }
    }
}

/// Starts exporting Core's turns; the exporter lives on its own thread
/// until Core's event stream closes, then flushes what is left.
pub(crate) fn start(state: &Arc<CoreState>, config: TelemetryConfig) -> Result<()> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.traces_url())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|error| Error::Config {
            path: state.config.data_dir.join("core.toml"),
            detail: format!("cannot export to {}: {error}", config.traces_url()),
        })?;
    let batch = BatchConfigBuilder::default().with_scheduled_delay(Duration::from_millis(500)).build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone().unwrap_or_else(|| "cortex".into()))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).with_batch_config(batch).build())
        .with_resource(resource)
        .build();
    let events = state.events.subscribe();
    let state = Arc::downgrade(state);
    tracing::info!(endpoint = %config.traces_url(), "exporting a trace per turn over OTLP/HTTP");
    std::thread::Builder::new()
        .name("cortex-telemetry".into())
        .spawn(move || export_loop(state, events, provider))
        .map_err(|source| Error::Io { context: "cannot start the telemetry thread".into(), source })?;
    Ok(())
}

/// One turn's trace while it runs: the turn's span in `context`, the open children.
struct TurnTrace {
    context: Context,
    children: HashMap<String, opentelemetry::global::BoxedSpan>,
}

fn export_loop(
    state: Weak<CoreState>,
    mut events: broadcast::Receiver<Arc<(SessionId, Event)>>,
    provider: SdkTracerProvider,
) {
    let tracer = opentelemetry::global::BoxedTracer::new(Box::new(provider.tracer("cortex")));
    let mut turns: HashMap<(SessionId, u32), TurnTrace> = HashMap::new();
    loop {
        let item = match events.blocking_recv() {
            Ok(item) => item,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "telemetry fell behind Core's events; some spans are missing");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let (session, event) = (&item.0, &item.1);
        let Some(turn) = event.turn else { continue };
        let key = (session.clone(), turn);
        if let EventKind::UserMessage { .. } = &event.kind
            && !turns.contains_key(&key)
        {
            let provider_name = state
                .upgrade()
                .and_then(|state| state.session(session.as_str()).ok().flatten())
                .map_or_else(|| "agent".to_string(), |(summary, _)| summary.provider);
            turns.insert(key.clone(), open_turn(&tracer, session, turn, &provider_name, event));
            continue;
        }
        let Some(trace) = turns.get_mut(&key) else { continue };
        if on_event(&tracer, trace, event) {
            turns.remove(&key);
        }
    }
    if let Err(error) = provider.shutdown() {
        tracing::warn!(%error, "telemetry did not flush on shutdown");
    }
}

fn open_turn(
    tracer: &impl Tracer<Span = opentelemetry::global::BoxedSpan>,
    session: &SessionId,
    turn: u32,
    provider: &str,
    event: &Event,
) -> TurnTrace {
    let span = tracer
        .span_builder(format!("invoke_agent {provider}"))
        .with_kind(SpanKind::Internal)
        .with_start_time(SystemTime::from(event.at))
        .with_attributes([
            KeyValue::new("gen_ai.operation.name", "invoke_agent"),
            KeyValue::new("gen_ai.agent.name", provider.to_string()),
            KeyValue::new("gen_ai.provider.name", provider.to_string()),
            KeyValue::new("gen_ai.conversation.id", session.to_string()),
            KeyValue::new("cortex.turn", i64::from(turn)),
        ])
        .start_with_context(tracer, &Context::new());
    TurnTrace { context: Context::new().with_span(span), children: HashMap::new() }
}

/// Adds `event` to its turn's trace; true when it ended the turn.
fn on_event(
    tracer: &impl Tracer<Span = opentelemetry::global::BoxedSpan>,
    trace: &mut TurnTrace,
    event: &Event,
) -> bool {
    let at = SystemTime::from(event.at);
    let child = |name: String, attributes: Vec<KeyValue>| {
        tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(at)
            .with_attributes(attributes)
            .start_with_context(tracer, &trace.context)
    };
    match &event.kind {
        EventKind::CommandStarted { command_id, command } => {
            let span = match command_id.strip_prefix("check:") {
                Some(rest) => {
                    let name = rest.rsplit_once(':').map_or(rest, |(name, _)| name).to_string();
                    child(format!("check {name}"), vec![KeyValue::new("cortex.check.name", name)])
                }
                None => child(
                    "execute_tool command".into(),
                    vec![
                        KeyValue::new("gen_ai.operation.name", "execute_tool"),
                        KeyValue::new("gen_ai.tool.name", "command"),
                        KeyValue::new("gen_ai.tool.call.id", command_id.clone()),
                        KeyValue::new("cortex.command", command.clone()),
                    ],
                ),
            };
            trace.children.insert(command_id.clone(), span);
        }
        EventKind::CommandFinished { command_id, exit_code, .. } => {
            if let Some(mut span) = trace.children.remove(command_id) {
                if let Some(code) = exit_code {
                    span.set_attribute(KeyValue::new("process.exit.code", i64::from(*code)));
                }
                if *exit_code != Some(0) {
                    span.set_status(Status::error(format!("exit {exit_code:?}")));
                }
                span.end_with_timestamp(at);
            }
        }
        EventKind::CheckResult { name, passed, .. } => {
            let span = trace.context.span();
            span.set_attribute(KeyValue::new(format!("cortex.check.{name}.passed"), *passed));
        }
        EventKind::ApprovalRequested { approval_id, .. } => {
            let span = child("approval".into(), vec![KeyValue::new("cortex.approval.id", approval_id.clone())]);
            trace.children.insert(format!("approval:{approval_id}"), span);
        }
        EventKind::ApprovalResolved { approval_id, decision, by } => {
            if let Some(mut span) = trace.children.remove(&format!("approval:{approval_id}")) {
                span.set_attribute(KeyValue::new("cortex.approval.decision", format!("{decision:?}").to_lowercase()));
                span.set_attribute(KeyValue::new("cortex.approval.by", by.clone()));
                span.end_with_timestamp(at);
            }
        }
        EventKind::TokenUsage { usage, model, cost_usd, .. } => {
            let span = trace.context.span();
            span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", usage.input_tokens as i64));
            span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", usage.output_tokens as i64));
            span.set_attribute(KeyValue::new("gen_ai.usage.cached_input_tokens", usage.cached_input_tokens as i64));
            span.set_attribute(KeyValue::new("gen_ai.usage.reasoning_tokens", usage.reasoning_output_tokens as i64));
            if let Some(model) = model {
                span.set_attribute(KeyValue::new("gen_ai.response.model", model.clone()));
            }
            if let Some(cost) = cost_usd {
                span.set_attribute(KeyValue::new("cortex.cost_usd", *cost));
            }
        }
        EventKind::TurnFinished { outcome } => {
            for (_, mut open) in trace.children.drain() {
                open.end_with_timestamp(at);
            }
            let span = trace.context.span();
            span.set_attribute(KeyValue::new("cortex.turn.outcome", outcome.as_str()));
            if *outcome != crate::protocol::TurnOutcome::Completed {
                span.set_status(Status::error(outcome.as_str()));
            }
            span.end_with_timestamp(at);
            return true;
        }
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_a_base_or_a_full_url() {
        let config = |url: &str| TelemetryConfig { otlp_endpoint: url.into(), service_name: None };
        assert_eq!(config("http://127.0.0.1:4318").traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(config("http://127.0.0.1:4318/").traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(config("https://otel.example/otlp/v1/traces").traces_url(), "https://otel.example/otlp/v1/traces");
    }

    #[test]
    fn core_toml_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(TelemetryConfig::load(dir.path()).unwrap().is_none(), "no file, no telemetry");
        std::fs::write(dir.path().join("core.toml"), "[telemetry]\notlp_endpiont = \"http://x\"\n").unwrap();
        let error = TelemetryConfig::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("unknown field `otlp_endpiont`") && error.contains("core.toml"), "{error}");
        std::fs::write(dir.path().join("core.toml"), "[telemetry]\notlp_endpoint = \"127.0.0.1:4318\"\n").unwrap();
        assert!(TelemetryConfig::load(dir.path()).unwrap_err().to_string().contains("must be an http(s) URL"));
    }
}
