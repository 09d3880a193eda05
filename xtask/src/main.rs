//! `cargo xtask …`: project chores that are code, not shell scripts.
//!
//! - `ci`: fmt check, clippy (warnings denied), tests (tidy among them);
//! - `tidy`: the repository's own rules (tests/it/tidy.rs);
//! - `bench store|core|codex|panel`: benchmarks, recorded in docs/benchmarks.md.

mod bench;
mod model;

use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(),
        ["tidy"] => cargo(&["test", "--test", "it", "tidy"]),
        ["fuzz"] => fuzz("20000"),
        ["fuzz", cases] => fuzz(cases),
        ["bench", "store"] => bench::store(),
        ["bench", "core"] => bench::core(),
        ["bench", "codex"] => bench::codex(),
        ["bench", "panel"] => bench::panel(),
        ["bench", ..] => bail!("unknown benchmark; available: store, core, codex, panel"),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | tidy | fuzz [CASES] | bench store | bench core | bench codex | bench panel>"
            );
            std::process::exit(2);
        }
    }
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
    cargo(&["clippy", "--all-targets", "--", "-D", "warnings"])?;
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
