//! Benchmarks: each prints a Markdown table for docs/benchmarks.md, and
//! measures a plain baseline in the same run where there is one.

mod codex;
mod core;
mod panel;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

pub use self::codex::codex;
pub use self::core::core;
pub use self::panel::panel;
pub use self::store::store;

pub(crate) fn row(what: &str, result: String) -> String {
    format!("| {what} | {result} |")
}

pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

pub(crate) fn print_table(rows: &[String]) {
    println!("\n| benchmark | result |\n| --- | --- |");
    for line in rows {
        println!("{line}");
    }
}

/// Builds the release `cortex` binary and returns its path.
pub(crate) fn build_cortex() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(["build", "--release", "--bin", "cortex"]).status()?;
    if !status.success() {
        bail!("cannot build the cortex binary");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("xtask lives in the repository")?;
    Ok(root.join("target/release/cortex"))
}
