//! Resource limits under hostile clients: a huge hello before
//! authentication, silent and trickling sockets, a descriptor limit,
//! unbounded history reads, numbers past 2^63, NULs, a command printing
//! megabytes with no newline, names with CR/LF, long command ids.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::cluster::{Http, free_port, wait_state};
use crate::support::{TestEnv, wait_for};

/// A hello is read before the node is known: one over 1 MiB is refused
/// with a typed frame, one over the frame limit ends the link, and Core
/// goes on answering.
#[test]
fn a_huge_hello_is_refused_before_it_is_parsed() {
    let env = TestEnv::new();
    let core = env.start_core("core", &env.cortex_home, free_port());
    let http = Http::new(&core);
    let url = format!("{}/api/v1/nodes/connect", core.url.replacen("http://", "ws://", 1));
    let (refused, closed) = http.block_on(async {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let padding = "x".repeat(4 << 20);
        socket.send(Message::text(format!("{{\"type\":\"hello\",\"v\":1,\"pad\":\"{padding}\"}}"))).await.unwrap();
        let refused = match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap(),
            other => panic!("no answer: {other:?}"),
        };
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
        let _ = socket.send(Message::text("y".repeat(40 << 20))).await;
        // At most an error frame, then the end of the link.
        let mut closed = false;
        for _ in 0..3 {
            match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                    closed = true;
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Err(_) => break,
            }
        }
        (refused, closed)
    });
    assert_eq!(refused["code"], "too_large", "{refused}");
    assert!(closed, "a 40 MiB frame ends the link");
    let (status, _) = http.get("/api/v1/health", None);
    assert_eq!(status, 200);
}

/// Round 1: 300 silent sockets used up a 256-descriptor limit and Core
/// stopped answering. Now connections are capped below the limit and a
/// client that does not send its headers in time is dropped.
#[test]
fn silent_and_trickling_sockets_cannot_starve_core() {
    let env = TestEnv::new();
    let port = free_port();
    let core = env.start_core_with("core", &env.cortex_home, port, |command| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 128, rlim_max: 128 };
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                Ok(())
            });
        }
    });
    let address = format!("127.0.0.1:{port}");
    let mut silent: Vec<std::net::TcpStream> =
        (0..300).filter_map(|_| std::net::TcpStream::connect(&address).ok()).collect();
    assert!(silent.len() >= 100, "only {} sockets opened", silent.len());
    let mut trickle = std::net::TcpStream::connect(&address).unwrap();
    trickle.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    // A real request gets its answer (once silent sockets are dropped).
    let http = Http::new(&core);
    let (status, _) = http.get("/api/v1/health", None);
    assert_eq!(status, 200);
    // The first silent socket is closed by Core: a read ends, not hangs.
    let first = &mut silent[0];
    first.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buffer = [0u8; 1];
    let ended = first.read(&mut buffer);
    assert!(matches!(ended, Ok(0) | Err(_)), "a silent socket is dropped: {ended:?}");
    trickle.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = trickle.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "a request whose headers never end gets no answer: {answer}");
}

#[test]
fn history_numbers_and_names_past_the_edges_are_answered_not_500() {
    let env = TestEnv::new();
    let core = env.start_core("up", &env.cortex_home, free_port());
    let http = Http::new(&core);
    let token = Some(http.token().to_string());
    let script = env.script(
        "s.toml",
        // 5 MB with no newline, then more lines.
        "[[step]]\ncommand = \"head -c 5000000 /dev/zero | tr '\\\\0' a; echo; echo tail\"\n",
    );
    let start =
        env.cortex_at(&core, &env.repo, ["session", "start", "go", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    wait_state(&env, &core, &id, "idle");

    let (status, page) = http.get(&format!("/api/v1/sessions/{id}/events?limit=2"), token.as_deref());
    assert_eq!((status, page.as_array().map(Vec::len)), (200, Some(2)), "{page}");
    let (status, all) = http.get(&format!("/api/v1/sessions/{id}/events"), token.as_deref());
    assert_eq!(status, 200);
    let outputs: Vec<usize> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "command_output")
        .map(|event| event["text"].as_str().unwrap().len())
        .collect();
    assert!(outputs.iter().all(|len| *len <= 64 * 1024), "one event per 64 KiB at most: {outputs:?}");
    assert!(all.to_string().contains("truncated"), "the cut is said");
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]);
    assert_eq!(log.json().as_array().unwrap().len(), all.as_array().unwrap().len(), "the CLI reads every page");

    for path in [
        format!("/api/v1/sessions/{id}/events?after=9223372036854775808"),
        format!("/api/v1/sessions/{id}/events?after=18446744073709551615&limit=18446744073709551615"),
        "/api/v1/search?q=%00".to_string(),
        "/api/v1/search?q=a%00b&limit=18446744073709551615".to_string(),
    ] {
        let (status, body) = http.get(&path, token.as_deref());
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = http.post("/api/v1/nodes/enroll", &serde_json::json!({ "name": "evil\r\nX-Injected: 1" }));
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed")), "{body}");
    let long_id = "c".repeat(10_000);
    let (status, body) = http.post(
        "/api/v1/commands",
        &serde_json::json!({ "v": 1, "id": long_id, "kind": "stop_session", "payload": { "session_id": id } }),
    );
    assert_eq!(status, 400, "{body}");
    // Someone else's session id, given for a new session.
    let (_, workspaces) = http.get("/api/v1/workspaces", token.as_deref());
    let (status, body) = http.post(
        "/api/v1/commands",
        &serde_json::json!({ "v": 1, "id": "steal", "kind": "start_session", "payload": {
            "session_id": id, "workspace_id": workspaces[0]["id"], "provider": "fake", "prompt": "mine now" } }),
    );
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")), "{body}");
    // An 8 MB body, announced: refused before it is read, as JSON.
    let mut socket = std::net::TcpStream::connect(core.url.trim_start_matches("http://")).unwrap();
    write!(
        socket,
        "POST /api/v1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\nConnection: close\r\n\r\n{{\"v\":1,",
        http.token()
    )
    .unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"too_large\""), "413 is JSON like every API error: {answer}");
    assert!(wait_for(|| (http.get("/api/v1/health", None).0 == 200).then_some(())).is_some());
}
