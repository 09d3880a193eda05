//! `cargo xtask …`: project chores that are code, not shell scripts.
//!
//! - `ci`: fmt check, clippy (warnings denied), tests (tidy among them);
//! - `tidy`: the repository's own rules (tests/it/tidy.rs);
//! - `bench store|core|codex|panel|providers|budget|tools`: benchmarks, recorded in docs/benchmarks.md;
//! - `dist [--check]`: the release tarball (binary, man pages, completions),
//!   and with `--check` a try of it from a scratch prefix;
//! - `conformance`: the agent × scenario matrix on the real agent CLIs,
//!   recorded in docs/providers.md.

// The scripted model servers are shared with tests/it, which uses all of
// each; the benches use part.
#[allow(dead_code)]
mod anthropic;
mod bench;
mod dist;
#[allow(dead_code)]
mod gemini;
mod model;

use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(),
        ["tidy"] => cargo(&["test", "--test", "it", "tidy"]),
        ["soak", rest @ ..] => soak(rest),
        ["fuzz"] => fuzz("20000"),
        ["fuzz", cases] => fuzz(cases),
        ["conformance"] => conformance(),
        ["dist"] => dist::dist(false),
        ["dist", "--check"] => dist::dist(true),
        ["bench", "store"] => bench::store(),
        ["bench", "core"] => bench::core(),
        ["bench", "codex"] => bench::codex(),
        ["bench", "panel"] => bench::panel(),
        ["bench", "providers"] => bench::providers(),
        ["bench", "budget"] => bench::budget(),
        ["bench", "tools"] => bench::tools(),
        ["bench-tools-client", calls, out] => bench::tools_client(calls.parse()?, std::path::Path::new(out)),
        ["bench", ..] => bail!("unknown benchmark; available: store, core, codex, panel, providers, budget, tools"),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | tidy | dist [--check] | conformance | fuzz [CASES] | soak [--turns N] [--seed S] | bench store | bench core | bench codex | bench panel | bench providers | bench budget | bench tools>"
            );
            std::process::exit(2);
        }
    }
}

/// Runs the soak test (`tests/it/soak.rs`) with `--turns N` commands and
/// `--seed S`, and records what it did in docs/benchmarks.md.
fn soak(args: &[&str]) -> anyhow::Result<()> {
    let (mut turns, mut seed) = ("1000".to_string(), "1".to_string());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next().with_context(|| format!("`{arg}` needs a value"))?;
        value.parse::<u64>().with_context(|| format!("`{value}` is not a number"))?;
        match *arg {
            "--turns" => turns = value.to_string(),
            "--seed" => seed = value.to_string(),
            other => bail!("unknown option `{other}`; usage: cargo xtask soak [--turns N] [--seed S]"),
        }
    }
    let report = tempfile::NamedTempFile::new()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["test", "--test", "it", "soak::", "--", "--nocapture"])
        .env("CORTEX_SOAK_TURNS", &turns)
        .env("CORTEX_SOAK_SEED", &seed)
        .env("CORTEX_SOAK_REPORT", report.path())
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the soak failed (seed {seed}): its message names the kill and the invariant");
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report.path())?)?;
    let row = bench::row;
    let kills = &report["kills"];
    let rows = [
        row("commands sent (start or send a turn)", format!("{} (seed {seed})", report["commands"])),
        row("turns run", format!("{} (by provider: {})", report["turns_run"], report["turns_by_provider"])),
        row("sessions / events at the end", format!("{} / {}", report["sessions"], report["events"])),
        row(
            "`kill -9` of Core / the node / the agent's command",
            format!("{} / {} / {}", kills["core"].as_u64().unwrap_or(0), kills["node"].as_u64().unwrap_or(0), kills["agent"].as_u64().unwrap_or(0)),
        ),
        row("invariants after every kill and at the end", "held (no lost or duplicated event: store = index = API; no busy session without a writer; `git fsck --strict` clean; `index rebuild` identical)".into()),
        row(
            "sessions whose store a node recovered only at its next connection (after the last check)",
            report["late_recoveries"].to_string(),
        ),
        row("duration", format!("{} s", report["seconds"])),
    ];
    bench::publish("soak", &rows)
}

/// Runs the conformance matrix (`tests/it/conformance.rs`) with `CI=true`
/// (a missing agent CLI fails) and records it in docs/providers.md.
fn conformance() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["test", "--test", "it", "conformance::", "--", "--nocapture"])
        .envs(bench::installed_agents())
        .env("CI", "true")
        .status()
        .context("cannot run cargo test")?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the repository")?;
    let table = std::fs::read_to_string(root.join("target/conformance.md"))
        .context("the conformance test wrote no matrix (target/conformance.md)")?;
    let path = root.join("docs/providers.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (begin, end) = ("<!-- conformance -->", "<!-- /conformance -->");
    let (Some(start), Some(stop)) = (text.find(begin), text.find(end)) else {
        bail!("{} has no `{begin}` … `{end}` section", path.display());
    };
    let dated = format!("{begin}\nRun {} by `cargo xtask conformance`.\n\n{table}", today());
    std::fs::write(&path, format!("{}{dated}{}", &text[..start], &text[stop..]))?;
    println!("{table}\n(written to docs/providers.md)");
    if !status.success() {
        bail!("a supported cell failed; the matrix says which");
    }
    Ok(())
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Runs the property-based fuzz targets (`src/fuzz.rs`) with `cases`
/// inputs each, optimised; CI runs them with the default, smaller count.
fn fuzz(cases: &str) -> anyhow::Result<()> {
    cases.parse::<u32>().with_context(|| format!("`{cases}` is not a number of cases"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["test", "--release", "--lib", "fuzz_"])
        .env("PROPTEST_CASES", cases)
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("a fuzz target failed; proptest printed the smallest input that fails");
    }
    Ok(())
}

/// What CI checks, as CI does: with `CI=true`, so a test that needs a tool
/// that is missing (codex, Chromium) fails instead of skipping.
fn ci() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&["test", "--workspace"])
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .env("CI", "true")
        .status()
        .with_context(|| format!("cannot run cargo {args:?}"))?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}
