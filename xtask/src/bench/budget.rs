//! `cargo xtask bench budget`: how long a turn runs on after its reading
//! crosses a `[budget]`: from the `budget_exceeded` event to the turn's
//! `turn_finished` (interrupted), with the fake provider (a reading of 2,000
//! tokens against 1,000, then a 30 s sleep) and with codex on the scripted
//! model (its first request's 15 tokens against 10, then `sleep 20`). The
//! target is under one second.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use super::{ms, row};
use crate::model::Model;

const RUNS: usize = 5;

pub fn budget() -> anyhow::Result<()> {
    let cortex = super::build_cortex()?;
    let mut rows = Vec::new();
    let mut fake = Vec::new();
    for _ in 0..RUNS {
        let root = tempfile::tempdir()?;
        let repo = super::git_repo(root.path())?;
        std::fs::write(repo.join(".cortex/config.toml"), "[budget]\nturn_tokens = 1000\n")?;
        let script = root.path().join("s.toml");
        std::fs::write(
            &script,
            "[[step]]\nusage = { input = 2000 }\n[[step]]\nsleep_ms = 30000\n[[step]]\nmessage = \"never\"\n",
        )?;
        let script = script.to_str().context("a UTF-8 temp path")?;
        fake.push(stop_after_crossing(&cortex, &repo, &root.path().join("data"), &["--script", script], "go")?);
    }
    rows.extend(summary("fake: `budget_exceeded` → `turn_finished` (interrupted)", &mut fake));
    match super::codex::codex_binary() {
        Ok(codex) => {
            let model = Model::start();
            let mut live = Vec::new();
            for _ in 0..RUNS {
                let root = tempfile::tempdir()?;
                let repo = super::git_repo(root.path())?;
                let config = model.config(&codex, &root.path().join("codex-home"), "never");
                std::fs::write(repo.join(".cortex/config.toml"), format!("{config}\n[budget]\nturn_tokens = 10\n"))?;
                let data = root.path().join("data");
                live.push(stop_after_crossing(&cortex, &repo, &data, &["--provider", "codex"], "run sleep 20")?);
            }
            rows.extend(summary("codex app-server: `budget_exceeded` → `turn_finished` (interrupted)", &mut live));
        }
        Err(error) => rows.push(row("codex", format!("not measured: {error}"))),
    }
    super::publish("budget", &rows)
}

/// Starts a session whose first turn crosses its budget; the time from the
/// crossing to the turn's end, as the session's events record it.
fn stop_after_crossing(
    cortex: &Path,
    repo: &Path,
    data: &Path,
    extra: &[&str],
    prompt: &str,
) -> anyhow::Result<Duration> {
    let run = |args: &[&str]| {
        Command::new(cortex).current_dir(repo).env("CORTEX_HOME", data).args(args).stdin(Stdio::null()).output()
    };
    let mut args = vec!["session", "start", prompt, "--json", "--no-core"];
    args.extend(extra);
    let started = run(&args)?;
    let report: serde_json::Value = serde_json::from_slice(&started.stdout)
        .with_context(|| format!("no report: {}", String::from_utf8_lossy(&started.stderr)))?;
    if report["outcome"] != "interrupted" {
        bail!("the turn was not interrupted: {report}");
    }
    let id = report["session_id"].as_str().context("no session id")?;
    let log = run(&["session", "log", id, "--json", "--no-core"])?;
    let events: Vec<serde_json::Value> = serde_json::from_slice(&log.stdout)?;
    let at = |kind: &str| -> anyhow::Result<jiff::Timestamp> {
        let event = events.iter().find(|event| event["kind"] == kind).with_context(|| format!("no {kind}"))?;
        Ok(event["at"].as_str().context("no time")?.parse()?)
    };
    let gap = at("turn_finished")? - at("budget_exceeded")?;
    Ok(Duration::try_from(gap).unwrap_or_default())
}

fn summary(what: &str, samples: &mut [Duration]) -> Vec<String> {
    samples.sort();
    vec![
        row(&format!("{what}, median of {RUNS}"), ms(samples[samples.len() / 2])),
        row(&format!("{what}, slowest of {RUNS}"), ms(samples[samples.len() - 1])),
    ]
}
