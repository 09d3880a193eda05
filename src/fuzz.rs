//! Property-based fuzzing of every decoder that reads input from outside:
//! node frames and Core's frames, API command bodies, fake scripts,
//! `.cortex/config.toml`, event lines and `meta.toml` read back from a
//! (possibly hostile, pushed) ref, search queries and workspace paths.
//! Inputs are valid samples with random edits, so the decoders are driven
//! past their first byte. The property: no panic, and a refusal is an
//! error value. CI runs the default number of cases; `cargo xtask fuzz`
//! runs many more (`PROPTEST_CASES`).

use proptest::prelude::*;

use crate::protocol::{Command, CoreFrame, Event, NodeFrame};

const NODE_FRAMES: &[&str] = &[
    r#"{"type":"hello","v":1,"credential":{"kind":"enroll","token":"cen_x","name":"n"},"capabilities":{"cortex_version":"0.1.0","protocol_version":1,"os":"linux","arch":"x86_64","cpus":2,"memory_bytes":1,"providers":[{"name":"fake","version":"1","features":["approvals"]}]},"workspaces":[{"id":"wsp_01jabcdefghjkmnpqrstvwxyz0","node":"","path":"/r","name":"r"}],"sessions":[]}"#,
    r#"{"type":"events","v":1,"session":{"id":"ses_01jabcdefghjkmnpqrstvwxyz0","title":"t","state":"running","provider":"fake","node":"n","workspace_id":"wsp_01jabcdefghjkmnpqrstvwxyz0","workspace_path":"/r","turns":1,"last_seq":2,"created_at":"2026-12-01T00:00:00Z","updated_at":"2026-12-01T00:00:00Z"},"events":[{"seq":2,"at":"2026-12-01T00:00:00Z","kind":"command_output","command_id":"c","stream":"stdout","text":"hi"}]}"#,
    r#"{"type":"command_result","v":1,"id":"c1","outcome":{"status":"error","code":"bad_input","message":"no"}}"#,
    r#"{"type":"heartbeat","v":1,"resources":{"load1":0.5,"free_memory_bytes":1,"total_memory_bytes":2,"disks":[{"path":"/","free_bytes":1,"total_bytes":2}]}}"#,
    r#"{"type":"term_output","v":1,"terminal":"t1","data":"\u001b[0m$ "}"#,
];

const COMMANDS: &[&str] = &[
    r#"{"v":1,"id":"a","kind":"start_session","payload":{"workspace_id":"wsp_01jabcdefghjkmnpqrstvwxyz0","provider":"fake","prompt":"p","script":"[[step]]\nmessage = \"x\"\n"}}"#,
    r#"{"v":1,"id":"b","kind":"write_file","payload":{"workspace_id":"wsp_01jabcdefghjkmnpqrstvwxyz0","path":"a/b.txt","content":"x","expected_hash":"00"}}"#,
    r#"{"v":1,"id":"c","kind":"resolve_approval","payload":{"session_id":"ses_01jabcdefghjkmnpqrstvwxyz0","decision":"approved","for_session":true}}"#,
    r#"{"type":"command","command":{"v":1,"id":"d","kind":"stop_session","payload":{"session_id":"ses_01jabcdefghjkmnpqrstvwxyz0"}}}"#,
    r#"{"type":"ack","v":1,"session":"ses_01jabcdefghjkmnpqrstvwxyz0","seq":4}"#,
];

const SCRIPTS: &[&str] = &[
    "[[step]]\nmessage = \"hi\"\n[[step]]\ncommand = \"echo x\"\n[[step]]\nwrite_file = { path = \"a.txt\", content = \"x\" }\n",
    "[[turn]]\n[[turn.step]]\napproval = \"ok?\"\n[[turn.step]]\nsleep_ms = 5\n[[turn]]\n[[turn.step]]\nfail = \"no\"\n",
];

const CONFIGS: &[&str] = &[
    "idle_limit_secs = 60\n[[checks]]\nname = \"t\"\ncommand = \"true\"\nwhen = \"turn\"\ntimeout_secs = 5\n",
    "[codex]\nmodel = \"m\"\napproval_policy = \"untrusted\"\n",
];

const META: &str = "schema = 1\nid = \"ses_01jabcdefghjkmnpqrstvwxyz0\"\ntitle = \"t\"\nprovider = \"fake\"\nnode = \"n\"\nworkspace = \"wsp_01jabcdefghjkmnpqrstvwxyz0\"\nstate = \"idle\"\nlast_seq = 3\nturns = 1\ncreated_at = \"2026-12-01T00:00:00Z\"\nupdated_at = \"2026-12-01T00:00:00Z\"\n";

const EVENT_LINES: &[&str] = &[
    r#"{"seq":1,"at":"2026-12-01T00:00:00Z","kind":"lifecycle","to":"starting"}"#,
    r#"{"seq":2,"at":"2026-12-01T00:00:00Z","turn":1,"cause":"seq:1","kind":"check_result","name":"t","passed":false,"exit_code":null,"duration_ms":5,"evidence":"turns/1/evidence/2-t.log"}"#,
    r#"{"seq":3,"at":"2026-12-01T00:00:00Z","kind":"token_usage","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1,"reasoning_output_tokens":0,"total_tokens":2}}"#,
];

/// A sample with up to 8 random edits: a byte replaced, inserted or
/// removed, or a slice duplicated (to grow nesting and repetition).
fn mutated(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    let edit = (0..4u8, any::<usize>(), any::<u8>(), 0..64usize);
    (0..samples.len(), proptest::collection::vec(edit, 0..8)).prop_map(move |(pick, edits)| {
        let mut bytes = samples[pick].as_bytes().to_vec();
        for (op, at, byte, span) in edits {
            let at = if bytes.is_empty() { 0 } else { at % bytes.len() };
            match op {
                0 if !bytes.is_empty() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                _ => {
                    let end = (at + span).min(bytes.len());
                    let slice = bytes[at..end].to_vec();
                    bytes.splice(at..at, slice);
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn fuzz_node_and_core_frames(text in mutated(NODE_FRAMES)) {
        let _ = serde_json::from_str::<NodeFrame>(&text);
        let _ = serde_json::from_str::<CoreFrame>(&text);
    }

    #[test]
    fn fuzz_api_command_bodies(text in mutated(COMMANDS)) {
        if let Ok(command) = serde_json::from_str::<Command>(&text) {
            let _ = crate::protocol::check_command_id(&command.id);
            let _ = command.kind.name();
        }
        let _ = serde_json::from_str::<CoreFrame>(&text);
    }

    #[test]
    fn fuzz_event_lines_and_meta_from_a_ref(line in mutated(EVENT_LINES), meta in mutated(&[META])) {
        if let Ok(event) = serde_json::from_str::<Event>(&line) {
            let _ = event.kind.search_text();
            let mut event = event;
            crate::store::redact::EventRedactor::new().redact(&mut event);
        }
        let _ = crate::store::Meta::from_toml(&meta);
    }

    #[test]
    fn fuzz_fake_scripts(text in mutated(SCRIPTS)) {
        let _ = crate::provider::fake::Script::parse(&text, "fuzz");
    }

    #[test]
    fn fuzz_workspace_paths(path in "[a-z./\\\\\\x00-\\x1f]{0,24}") {
        if let Ok(checked) = crate::sandbox::RelPath::parse(&path) {
            prop_assert!(!checked.display().split('/').any(|part| part == ".." || part.eq_ignore_ascii_case(".git") && checked.display().starts_with(part)));
        }
    }

    #[test]
    fn fuzz_redaction_never_panics_and_is_idempotent(text in mutated(&[
        "key sk-proj-abcdefghijklmnopqrstuvwxyz0123 -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- password=hunter22 https://u:p@h/x",
    ])) {
        let once = crate::store::redact::redact_str(&text).into_owned();
        let twice = crate::store::redact::redact_str(&once).into_owned();
        prop_assert_eq!(once, twice);
    }
}

proptest! {
    // Each case touches the disk or SQLite: fewer by default.
    #![proptest_config(cases(64))]

    #[test]
    fn fuzz_repository_config(text in mutated(CONFIGS)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".cortex")).unwrap();
        std::fs::write(dir.path().join(".cortex/config.toml"), &text).unwrap();
        let _ = crate::node::fuzz_load_config(dir.path());
    }

    #[test]
    fn fuzz_search_queries(query in "\\PC{0,40}|[\\x00-\\x1f\"*():^-]{0,20}", limit in any::<usize>()) {
        let dir = tempfile::tempdir().unwrap();
        let index = crate::index::Index::open(&dir.path().join("index.sqlite")).unwrap();
        prop_assert!(index.search(&query, limit).is_ok(), "search `{}` failed", query.escape_debug());
    }
}
