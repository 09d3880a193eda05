//! Every rule with a secret it must catch and a near miss it must leave;
//! the event pass never swallowing an event; dotenv files.

use super::*;
use crate::protocol::{Event, EventKind, OutputStream};

fn check(input: &str, expect: &str) {
    assert_eq!(redact_str(input), expect, "input: {input}");
}

/// `(rule id, text with a secret, what is left)`: one per rule, so a rule
/// that stops matching fails here.
const CAUGHT: &[(&str, &str, &str)] = &[
    (
        "private-key",
        "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY-----\nb",
        "a\n[REDACTED]\nb",
    ),
    ("private-key-unterminated", "x -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz", "x [REDACTED]"),
    ("authorization-header", "Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer [REDACTED]"),
    ("openai-api-key", "key sk-proj-abcdefghijklmnopqrstuvwxyz0123 end", "key [REDACTED] end"),
    ("github-token", "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token=[REDACTED]"),
    ("github-fine-grained-pat", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "[REDACTED]"),
    ("gitlab-pat", "glpat-abcdefghij0123456789", "[REDACTED]"),
    ("aws-access-key-id", "aws AKIAIOSFODNN7EXAMPLE.", "aws [REDACTED]."),
    (
        "aws-secret-access-key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = [REDACTED]",
    ),
    ("slack-token", "SLACK=xoxb-123456789012-abcdefghijklmnop", "SLACK=[REDACTED]"),
    (
        "slack-webhook",
        "https://hooks.slack.com/services/T000/B000/abcdefghijklmnopqrstuvwx",
        "https://hooks.slack.com/services/[REDACTED]",
    ),
    ("google-api-key", "maps AIzaSyA1234567890abcdefghijklmnopqrstuv ok", "maps [REDACTED] ok"),
    ("stripe-key", "stripe sk_live_abcdefghijklmnop1234", "stripe [REDACTED]"),
    ("npm-token", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED]"),
    ("npmrc-auth", "//registry.example/:_authToken=deadbeefcafe", "//registry.example/:_authToken=[REDACTED]"),
    ("pypi-token", "pypi-AgEIcHlwaS5vcmcCJDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMAACKlsz", "[REDACTED]"),
    ("huggingface-token", "HF hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "HF [REDACTED]"),
    ("sendgrid-api-key", "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ", "[REDACTED]"),
    ("twilio-api-key", "twilio SK0123456789abcdef0123456789abcdef", "twilio [REDACTED]"),
    (
        "digitalocean-token",
        concat!("dop_v1_", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        "[REDACTED]",
    ),
    ("shopify-token", "shpat_0123456789abcdef0123456789abcdef", "[REDACTED]"),
    ("jwt", "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijKLMN", "jwt [REDACTED]"),
    (
        "url-password",
        "postgres://admin:hunter2@db.internal:5432/app",
        "postgres://admin:[REDACTED]@db.internal:5432/app",
    ),
    ("password-assignment", "DB_PASSWORD=S3cr3t!pass", "DB_PASSWORD=[REDACTED]"),
    ("generic-credential", r#"{"client_secret": "Zq8vN2xR5tLp9wKs3mYb"}"#, r#"{"client_secret": "[REDACTED]"}"#),
];

#[test]
fn every_rule_compiles_and_catches_its_example() {
    let ids: Vec<&str> = RULES.rules.iter().map(|rule| rule.id.as_str()).collect();
    for (id, _, _) in CAUGHT {
        assert!(ids.contains(id), "no rule `{id}`");
    }
    for id in &ids {
        assert!(CAUGHT.iter().any(|(caught, _, _)| caught == id), "rule `{id}` has no example here");
    }
    for (_, input, expect) in CAUGHT {
        check(input, expect);
    }
}

#[test]
fn the_shapes_round_one_missed_are_caught() {
    check("x_sk-proj-abcdefghijklmnopqrstuvwxyz0123", "x_[REDACTED]");
    check("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED]");
    check("authorization:bearer abc123", "authorization:bearer [REDACTED]");
    check("passwd: 9f8e7d6c", "passwd: [REDACTED]");
    check("https://user:pa55@example.com/x", "https://user:[REDACTED]@example.com/x");
    check(
        r#"{"text":"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"}"#,
        r#"{"text":"[REDACTED]"}"#,
    );
}

#[test]
fn ordinary_text_and_code_are_left_alone() {
    for text in [
        "ask-me about the sk- prefix",
        "Bearer of good news",
        "AKIA is a prefix",
        "fn login(password: String, user: &str)",
        "let password = read_password();",
        "password = \"${DB_PASSWORD}\"",
        "password: <your password here>",
        "secret = \"aaaaaaaaaaaaaaaaaaaa\"",
        "https://example.com/path?user=a",
        "the task list has 12 items",
        "git@github.com:org/repo.git",
        "[REDACTED]",
    ] {
        check(text, text);
    }
}

#[test]
fn a_line_pass_never_spans_two_lines() {
    let chunk = "{\"seq\":1,\"text\":\"-----BEGIN RSA PRIVATE KEY-----\"}\n{\"seq\":2,\"kind\":\"command_started\"}\n{\"seq\":3,\"text\":\"-----END RSA PRIVATE KEY-----\"}\n";
    let redacted = String::from_utf8(redact_lines(chunk.as_bytes()).into_owned()).unwrap();
    assert_eq!(redacted.lines().count(), 3, "{redacted}");
    assert!(redacted.contains("\"seq\":2,\"kind\":\"command_started\""), "{redacted}");
    assert!(!redacted.contains("BEGIN RSA PRIVATE KEY"), "{redacted}");
}

fn output(seq: u64, command_id: &str, text: &str) -> Event {
    Event {
        seq,
        at: "2026-12-01T00:00:00Z".parse().unwrap(),
        turn: Some(1),
        cause: None,
        kind: EventKind::CommandOutput {
            command_id: command_id.into(),
            stream: OutputStream::Stdout,
            text: text.into(),
        },
    }
}

fn text_of(event: &Event) -> &str {
    match &event.kind {
        EventKind::CommandOutput { text, .. } => text,
        other => panic!("{other:?}"),
    }
}

/// Round 1: a key printed line by line made the chunk pass swallow every
/// event between BEGIN and END.
#[test]
fn a_key_printed_line_by_line_is_redacted_event_by_event() {
    let mut redactor = EventRedactor::new();
    let lines = [
        "before",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAsecretkeymaterial",
        "c2Vjb25kbGluZW9ma2V5",
        "-----END RSA PRIVATE KEY----- after",
        "ordinary",
    ];
    let mut events: Vec<Event> =
        lines.iter().enumerate().map(|(idx, line)| output(idx as u64 + 1, "c1", line)).collect();
    // Another command's event in the middle is not part of the key.
    events.insert(3, output(99, "c2", "other command output"));
    for event in &mut events {
        redactor.redact(event);
    }
    let texts: Vec<&str> = events.iter().map(text_of).collect();
    assert_eq!(
        texts,
        ["before", "[REDACTED]", "[REDACTED]", "other command output", "[REDACTED]", "[REDACTED] after", "ordinary"]
    );
}

#[test]
fn a_finished_command_closes_its_key_block() {
    let mut redactor = EventRedactor::new();
    let mut begin = output(1, "c1", "-----BEGIN PRIVATE KEY-----");
    redactor.redact(&mut begin);
    let mut finished = Event {
        kind: EventKind::CommandFinished { command_id: "c1".into(), exit_code: Some(0), duration_ms: 1 },
        ..output(2, "c1", "")
    };
    redactor.redact(&mut finished);
    let mut next = output(3, "c1", "visible again");
    redactor.redact(&mut next);
    assert_eq!(text_of(&next), "visible again");
}

#[test]
fn every_string_of_an_event_is_redacted() {
    let mut redactor = EventRedactor::new();
    let mut event = Event {
        kind: EventKind::ApprovalRequested {
            approval_id: "apr_1".into(),
            prompt: "run curl -H 'Authorization: Bearer abcdef123456'".into(),
        },
        ..output(1, "c", "")
    };
    redactor.redact(&mut event);
    let line = serde_json::to_string(&event).unwrap();
    assert!(!line.contains("abcdef123456"), "{line}");
}

#[test]
fn dotenv_values_are_all_redacted() {
    let env = "# comment\nDATABASE_URL=postgres://u:p@h/db\nexport API_TOKEN=\"plainvalue\"\nEMPTY=\nREF=${OTHER}\n";
    let redacted = String::from_utf8(redact_file("app/.env", env.as_bytes()).into_owned()).unwrap();
    assert_eq!(redacted, "# comment\nDATABASE_URL=[REDACTED]\nexport API_TOKEN=\"[REDACTED]\"\nEMPTY=\nREF=${OTHER}\n");
    assert_eq!(redact_file("src/main.rs", b"let x = 1;\n").as_ref(), b"let x = 1;\n");
    assert!(is_dotenv(".env.local") && is_dotenv("deploy/prod.env") && !is_dotenv("envelope.rs"));
}
