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
        ["bench", "store"] => bench::store(),
        ["bench", "core"] => bench::core(),
        ["bench", "codex"] => bench::codex(),
        ["bench", "panel"] => bench::panel(),
        ["bench", ..] => bail!("unknown benchmark; available: store, core, codex, panel"),
        _ => {
            eprintln!("usage: cargo xtask <ci | tidy | bench store | bench core | bench codex | bench panel>");
            std::process::exit(2);
        }
    }
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
