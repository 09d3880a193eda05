//! Secrets in what an agent says or prints never reach a git object under
//! `refs/cortex/` nor the index.

use crate::support::TestEnv;

const SECRETS: [&str; 5] = [
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.secretpayload.sig",
    "MIIEowIBAAKCAQEAsecretkeymaterial",
];

#[test]
fn secrets_in_messages_output_and_files_are_redacted_everywhere() {
    let env = TestEnv::new();
    let script = env.script(
        "s.toml",
        &format!(
            r#"
[[step]]
message = "use {0} and {1}"
[[step]]
command = "echo {2}; echo 'Authorization: Bearer {3}' >&2; printf -- '-----BEGIN RSA PRIVATE KEY-----\n{4}\n-----END RSA PRIVATE KEY-----\n'"
[[step]]
write_file = {{ path = "config.env", content = "OPENAI_API_KEY={0}\n" }}
"#,
            SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[4]
        ),
    );
    let id = env.start("deploy with sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", &script);

    let objects = env.all_cortex_objects(&env.repo);
    assert!(objects.contains("[REDACTED]"), "redaction markers expected");
    assert!(objects.contains("OPENAI_API_KEY=[REDACTED]"), "the snapshot of config.env is redacted");
    for secret in SECRETS {
        assert!(!objects.contains(secret), "{secret} leaked into an object under refs/cortex/");
    }
    let mut index = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(env.cortex_home.join(format!("index.sqlite{suffix}"))) {
            index.extend(bytes);
        }
    }
    let index = String::from_utf8_lossy(&index);
    assert!(index.contains("[REDACTED]"));
    for secret in SECRETS {
        assert!(!index.contains(secret), "{secret} leaked into the index");
    }
    let log = env.cortex_ok(["session", "log", &id]);
    for secret in SECRETS {
        assert!(!log.stdout.contains(secret) && !log.stderr.contains(secret));
    }
}
