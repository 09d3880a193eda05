//! Traces: with `[telemetry] otlp_endpoint` in Core's `core.toml`, a real
//! OTLP/HTTP receiver (decoding with `opentelemetry-proto`) gets one trace
//! per turn: the turn's `invoke_agent` span with the session id and its
//! tokens, a child per command and per check. Without the key, nothing is
//! sent, even with the OpenTelemetry environment pointing at the receiver.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::support::cluster::{free_port, wait_state};
use crate::support::{TestEnv, wait_for};

/// An OTLP/HTTP receiver on 127.0.0.1: every span posted to `/v1/traces`.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    requests: Arc<Mutex<usize>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let requests: Arc<Mutex<usize>> = Arc::default();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (kept, counted) = (spans.clone(), requests.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let (kept, counted) = (kept.clone(), counted.clone());
            async move {
                *counted.lock().unwrap() += 1;
                assert_eq!(uri.path(), "/v1/traces");
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        kept.lock().unwrap().extend(scope.spans);
                    }
                }
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        });
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, spans, requests, _runtime: runtime }
    }
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

#[test]
fn each_turn_is_one_trace_with_a_span_per_command_and_check() {
    let receiver = Receiver::start();
    let env = TestEnv::new();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[[checks]]\nname = \"unit\"\ncommand = \"true\"\n").unwrap();
    std::fs::create_dir_all(&env.cortex_home).unwrap();
    let config = format!("[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"cortex-test\"\n", receiver.url);
    std::fs::write(env.cortex_home.join("core.toml"), config).unwrap();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let turn = |tokens: u32| {
        format!(
            "[[turn]]\n[[turn.step]]\ncommand = \"echo hi\"\n[[turn.step]]\nusage = {{ input = {tokens}, output = 5, model = \"m1\" }}\n"
        )
    };
    let script = env.script("s.toml", &[turn(100), turn(200)].concat());
    let started =
        env.cortex_at(&core, &env.repo, ["session", "start", "one", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let id = started.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");
    assert_eq!(env.cortex_at(&core, &env.repo, ["session", "send", &id, "two"]).code, 0);
    wait_state(&env, &core, &id, "idle");

    let spans = wait_for(|| {
        let spans = receiver.spans.lock().unwrap().clone();
        (spans.iter().filter(|span| span.name.starts_with("invoke_agent")).count() == 2).then_some(spans)
    })
    .expect("two turn spans within 30 s");
    let roots: Vec<&Span> = spans.iter().filter(|span| span.name == "invoke_agent fake").collect();
    assert_ne!(roots[0].trace_id, roots[1].trace_id, "one trace per turn");
    for (root, input) in roots.iter().zip([100, 200]) {
        assert!(root.parent_span_id.is_empty(), "the turn is the trace's root");
        assert_eq!(attribute(root, "gen_ai.conversation.id"), Some(Value::StringValue(id.clone())));
        assert_eq!(attribute(root, "gen_ai.operation.name"), Some(Value::StringValue("invoke_agent".into())));
        assert_eq!(attribute(root, "gen_ai.usage.input_tokens"), Some(Value::IntValue(input)));
        assert_eq!(attribute(root, "gen_ai.usage.output_tokens"), Some(Value::IntValue(5)));
        assert_eq!(attribute(root, "gen_ai.response.model"), Some(Value::StringValue("m1".into())));
        let children: Vec<&Span> = spans.iter().filter(|span| span.parent_span_id == root.span_id).collect();
        let mut names: Vec<&str> = children.iter().map(|span| span.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["check unit", "execute_tool command"], "turn of {input}");
        for child in children {
            assert_eq!(child.trace_id, root.trace_id);
            assert!(child.start_time_unix_nano >= root.start_time_unix_nano);
            assert!(
                child.end_time_unix_nano <= root.end_time_unix_nano
                    && child.end_time_unix_nano >= child.start_time_unix_nano
            );
        }
    }
    let command = spans.iter().find(|span| span.name == "execute_tool command").unwrap();
    assert_eq!(attribute(command, "gen_ai.tool.name"), Some(Value::StringValue("command".into())));
    assert_eq!(attribute(command, "process.exit.code"), Some(Value::IntValue(0)));
}

#[test]
fn without_the_key_nothing_is_sent() {
    let receiver = Receiver::start();
    let env = TestEnv::new();
    let core = env.start_core_with("up", &env.cortex_home, free_port(), |command| {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url).env("OTEL_TRACES_EXPORTER", "otlp");
    });
    let script = env.script("s.toml", "[[step]]\ncommand = \"echo hi\"\n");
    let started =
        env.cortex_at(&core, &env.repo, ["session", "start", "one", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    wait_state(&env, &core, started.json()["session_id"].as_str().unwrap(), "idle");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(*receiver.requests.lock().unwrap(), 0);
}
