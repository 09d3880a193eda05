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

/// A corpus of secret shapes, each the part that must never be stored.
const CORPUS: &[(&str, &str)] = &[
    ("openai", "sk-proj-Corpus0penAIkey1234567890abcdef"),
    ("openai after _", "sk-UnderscoreCorpusKey1234567890abcd"),
    ("github", "ghp_CorpusGithubToken0123456789abcdefgh"),
    ("aws key id", "AKIACORPUSKEYID12345"),
    ("aws secret", "cOrPuS/SecretAccessKey+0123456789abcdefg"),
    ("slack", "xoxb-123456789012-CorpusSlackToken"),
    ("google", "AIzaCorpusGoogleKey0123456789abcdefghij"),
    ("stripe", "sk_live_CorpusStripe0123456789"),
    ("stripe restricted", "rk_live_CorpusRestricted012345"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJjb3JwdXMiOiJ5ZXMifQ.CorpusSignature0123"),
    ("url password", "CorpusUrlP4ss"),
    ("password assignment", "CorpusPassw0rd!"),
    ("basic auth", "Q29ycHVzOkJhc2ljQXV0aA=="),
    ("npm", "npm_CorpusNpmToken0123456789abcdefghijkl"),
    ("pem line 1", "MIIEcorpusPEMkeyLineOne0123456789abcdefgh"),
    ("pem line 2", "CorpusPEMkeyLineTwoAfterAFlush0123456789"),
    ("dotenv", "corpus-dotenv-value-7"),
];

fn corpus_text() -> String {
    let secret = |name: &str| CORPUS.iter().find(|(shape, _)| *shape == name).unwrap().1;
    format!(
        "openai {}\n_{}\ngithub {}\naws {}\naws_secret_access_key = {}\nslack {}\ngoogle {}\nstripe {} {}\njwt {}\n\
         db postgres://admin:{}@db.internal/app\nDB_PASSWORD={}\nAuthorization: Basic {}\nnpm {}\n",
        secret("openai"),
        secret("openai after _"),
        secret("github"),
        secret("aws key id"),
        secret("aws secret"),
        secret("slack"),
        secret("google"),
        secret("stripe"),
        secret("stripe restricted"),
        secret("jwt"),
        secret("url password"),
        secret("password assignment"),
        secret("basic auth"),
        secret("npm"),
    )
}

/// Every file below `dir`, as bytes.
fn files_below(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        if meta.is_dir() {
            files_below(&path, out);
        } else if meta.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap_or_default()));
        }
    }
}

fn leaks(places: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (place, bytes) in places {
        let text = String::from_utf8_lossy(bytes);
        for (shape, secret) in CORPUS {
            if text.contains(secret) {
                found.push(format!("{shape} in {place}"));
            }
        }
    }
    found
}

/// Round 1 redacted only in-process: through `cortex up` the node sent Core
/// the original events, snapshots put raw files into `.git/objects`, and
/// Core kept prompts verbatim. Here a session runs through Core with the
/// corpus in its prompt, in files it prints (a key split across flushes),
/// in an untracked `.env` and in a check's output; then every byte Cortex
/// wrote or served is scanned.
#[test]
fn no_secret_from_the_corpus_reaches_any_byte_cortex_writes_or_serves() {
    use crate::support::cluster::{Http, free_port};
    let env = TestEnv::new();
    let secret = |name: &str| CORPUS.iter().find(|(shape, _)| *shape == name).unwrap().1;
    std::fs::write(env.repo.join("notes.txt"), corpus_text()).unwrap();
    std::fs::write(
        env.repo.join("key.pem"),
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----\n",
            secret("pem line 1"),
            secret("pem line 2")
        ),
    )
    .unwrap();
    std::fs::write(env.repo.join(".env"), format!("APP_SETTING={}\n", secret("dotenv"))).unwrap();
    std::fs::create_dir_all(env.repo.join(".cortex")).unwrap();
    std::fs::write(env.repo.join(".cortex/config.toml"), "[[checks]]\nname = \"env\"\ncommand = \"cat notes.txt\"\n")
        .unwrap();
    let script = env.script(
        "corpus.toml",
        // The key's halves are printed 2.5 s apart: past the 2 s flush timer.
        "[[step]]\ncommand = \"cat notes.txt; head -n 2 key.pem; sleep 2.5; tail -n +3 key.pem; echo after-the-key\"\n\
         [[step]]\nmessage = \"done\"\n",
    );
    let core = env.start_core("up", &env.cortex_home, free_port());
    let prompt = format!("deploy with {} and {}", secret("openai"), secret("github"));
    let start =
        env.cortex_at(&core, &env.repo, ["session", "start", &prompt, "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(start.code, 0, "{}\n{}", start.stdout, start.stderr);
    let id = start.json()["session_id"].as_str().unwrap().to_string();
    let mut places =
        vec![("session start output".to_string(), format!("{}{}", start.stdout, start.stderr).into_bytes())];
    for args in
        [vec!["session", "log", &id, "--json"], vec!["session", "show", &id, "--json"], vec!["session", "diff", &id]]
    {
        let run = env.cortex_at(&core, &env.repo, &args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        places.push((args.join(" "), format!("{}{}", run.stdout, run.stderr).into_bytes()));
    }
    let log = env.cortex_at(&core, &env.repo, ["session", "log", &id, "--json"]).json();
    let outputs: Vec<&str> =
        log.as_array().unwrap().iter().filter_map(|event| event["text"].as_str()).map(str::trim_end).collect();
    assert!(outputs.contains(&"after-the-key"), "the event after the key is kept: {outputs:?}");
    assert!(outputs.iter().any(|text| text.contains("[REDACTED]")), "{outputs:?}");
    crate::support::assert_gapless(&log);

    // What Core serves: the API (JSON and SSE) and the panel.
    let http = Http::new(&core);
    let (_, session) = http.get(&format!("/api/v1/sessions/{id}"), Some(http.token()));
    places.push(("GET session".into(), session.to_string().into_bytes()));
    let (_, search) = http.get("/api/v1/search?q=corpus", Some(http.token()));
    places.push(("GET search".into(), search.to_string().into_bytes()));
    let sse = http.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/sessions/{id}/events?after=0", core.url))
            .bearer_auth(http.token())
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        use futures_util::StreamExt;
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(std::time::Duration::from_secs(2), stream.next()).await {
            body.extend_from_slice(&chunk);
        }
        body
    });
    assert!(String::from_utf8_lossy(&sse).contains("after-the-key"), "the SSE stream was read");
    places.push(("SSE".into(), sse));

    // Every object in the repository (reachable or not), Cortex's private
    // folder in it (spool, kept script, temp), and Cortex's data dir.
    let objects = std::process::Command::new("git")
        .current_dir(&env.repo)
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .output()
        .unwrap();
    places.push(("the object store".into(), objects.stdout));
    files_below(&env.repo.join(".git/cortex"), &mut places);
    files_below(&core.data, &mut places);
    places.push((
        "Core's log".into(),
        std::fs::read(env.path(&format!("up-{}.log", core.url.rsplit(':').next().unwrap()))).unwrap_or_default(),
    ));
    let leaked = leaks(&places);
    assert!(leaked.is_empty(), "secrets leaked:\n{}", leaked.join("\n"));
    assert!(places.iter().any(|(place, _)| place.ends_with("core.sqlite")), "core.sqlite was scanned");
    assert!(places.iter().any(|(place, _)| place.ends_with("index.sqlite")), "index.sqlite was scanned");
}
